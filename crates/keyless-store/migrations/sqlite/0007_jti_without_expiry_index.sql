-- `jti` records without a second index on `keep_until`: its entries sorted like the key's random `jti`s
-- within a second, so every insert dirtied a page of its own there too (a second database page written
-- per exchange). Purging walks each issuer's range of the key, (issuer_id, keep_until, jti), instead.
DROP INDEX jti_records_expiry;
