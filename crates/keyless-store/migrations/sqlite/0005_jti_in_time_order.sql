-- `jti` records keyed by (issuer, keep_until, jti): a replay of a token carries the same `exp`, so the
-- same key, and a batch's inserts land at the end of the issuer's range instead of on random pages.
CREATE TABLE jti_records_by_time (
    issuer_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    keep_until INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, keep_until, jti)
) STRICT, WITHOUT ROWID;
INSERT INTO jti_records_by_time (issuer_id, jti, keep_until) SELECT issuer_id, jti, keep_until FROM jti_records;
DROP TABLE jti_records;
ALTER TABLE jti_records_by_time RENAME TO jti_records;
CREATE INDEX jti_records_expiry ON jti_records (keep_until);
