-- A rule's mode: `enforce` mints tokens; `shadow` only records what it would decide.
ALTER TABLE federation_rules ADD COLUMN mode TEXT NOT NULL DEFAULT 'enforce' CHECK (mode IN ('enforce', 'shadow'));
