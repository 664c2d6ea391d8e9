-- High-volume events (the request log's `api_request`) stored as batches: one row per up to 512 events
-- of one organization and type, the events a JSON array, instead of one `activities` row with five index
-- entries per event. Event IDs come from the feed's own sequence (the `activities` row of
-- `sqlite_sequence`, advanced by the batch's size), so batched events and `activities` rows share one
-- ID order. `activity_batch_keys` finds the batches that hold an actor's, a resource's or a request-ID
-- prefix's events: a few rows per batch.
CREATE TABLE activity_batches (
    id INTEGER PRIMARY KEY,
    last_id INTEGER NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    activity_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    events TEXT NOT NULL
) STRICT;
CREATE INDEX activity_batches_feed ON activity_batches (organization_id, id);
CREATE INDEX activity_batches_type ON activity_batches (organization_id, activity_type, id);
CREATE TABLE activity_batch_keys (
    organization_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    batch_id INTEGER NOT NULL,
    PRIMARY KEY (organization_id, kind, key, batch_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX activity_batch_keys_batch ON activity_batch_keys (organization_id, batch_id);
-- AUTOINCREMENT creates this row on the first insert; batches advance it before any may have.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'activities', COALESCE((SELECT MAX(id) FROM activities), 0)
WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'activities');
