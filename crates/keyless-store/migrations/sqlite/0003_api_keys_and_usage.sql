-- Workspace API keys (stored by hash only) and the per-hour request counts behind the usage summary.
-- Keep in step with ../postgres/0003_api_keys_and_usage.sql.

CREATE TABLE api_keys (
    id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    hash BLOB NOT NULL,
    partial_key_hint TEXT NOT NULL,
    oauth_scope TEXT NOT NULL,
    disabled INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    expires_at INTEGER,
    last_used_at INTEGER,
    created_at INTEGER NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    archived_at INTEGER,
    archived_by_actor_id TEXT,
    CONSTRAINT api_keys_name_unique UNIQUE (organization_id, name),
    CONSTRAINT api_keys_hash_unique UNIQUE (hash),
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, workspace_id) REFERENCES workspaces (organization_id, id)
) STRICT;
CREATE INDEX api_keys_list ON api_keys (organization_id, created_at, id);
CREATE INDEX api_keys_workspace ON api_keys (organization_id, workspace_id);

-- One row per organization, hour (Unix seconds at the start of the hour), principal and workspace;
-- '' stands for "not known" (a request whose credential was not recognised).
CREATE TABLE api_usage (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    hour INTEGER NOT NULL,
    principal_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    requests INTEGER NOT NULL,
    refused INTEGER NOT NULL,
    rate_limited INTEGER NOT NULL,
    upstream_errors INTEGER NOT NULL,
    latency_us_sum INTEGER NOT NULL,
    last_request_at INTEGER NOT NULL,
    PRIMARY KEY (organization_id, hour, principal_id, workspace_id)
) STRICT;
