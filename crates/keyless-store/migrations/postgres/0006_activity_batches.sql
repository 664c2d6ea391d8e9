-- High-volume events stored as batches (see the SQLite migration of the same number). Event IDs are
-- drawn from the identity sequence of `activities`, so batched events and rows share one ID space.
CREATE TABLE activity_batches (
    id BIGINT PRIMARY KEY,
    last_id BIGINT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    activity_type TEXT NOT NULL,
    count BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    events TEXT NOT NULL
);
CREATE INDEX activity_batches_feed ON activity_batches (organization_id, id);
CREATE INDEX activity_batches_type ON activity_batches (organization_id, activity_type, id);
CREATE TABLE activity_batch_keys (
    organization_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    batch_id BIGINT NOT NULL,
    PRIMARY KEY (organization_id, kind, key, batch_id)
);
CREATE INDEX activity_batch_keys_batch ON activity_batch_keys (organization_id, batch_id);
