-- A counter bumped by every admin change of an organization, in the change's transaction: a reader that
-- cached objects of the organization at generation N knows them current while the counter reads N.
ALTER TABLE organizations ADD COLUMN config_generation BIGINT NOT NULL DEFAULT 0;
