-- `jti` records keyed by (issuer, keep_until, jti): a replay of a token carries the same `exp`, so the
-- same key, and a batch's inserts land at the end of the issuer's range instead of on random pages.
ALTER TABLE jti_records DROP CONSTRAINT jti_records_pkey;
ALTER TABLE jti_records ADD PRIMARY KEY (issuer_id, keep_until, jti);
