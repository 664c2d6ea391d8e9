-- Workspace API keys (stored by hash only) and the per-hour request counts behind the usage summary.
-- Keep in step with ../sqlite/0003_api_keys_and_usage.sql.

CREATE TABLE api_keys (
    id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    hash BYTEA NOT NULL,
    partial_key_hint TEXT NOT NULL,
    oauth_scope TEXT NOT NULL,
    disabled BOOLEAN NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    archived_at BIGINT,
    archived_by_actor_id TEXT,
    CONSTRAINT api_keys_name_unique UNIQUE (organization_id, name),
    CONSTRAINT api_keys_hash_unique UNIQUE (hash),
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, workspace_id) REFERENCES workspaces (organization_id, id)
);
CREATE INDEX api_keys_list ON api_keys (organization_id, created_at, id);
CREATE INDEX api_keys_workspace ON api_keys (organization_id, workspace_id);

-- One row per organization, hour (Unix seconds at the start of the hour), principal and workspace;
-- '' stands for "not known" (a request whose credential was not recognised).
CREATE TABLE api_usage (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    hour BIGINT NOT NULL,
    principal_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    requests BIGINT NOT NULL,
    refused BIGINT NOT NULL,
    rate_limited BIGINT NOT NULL,
    upstream_errors BIGINT NOT NULL,
    latency_us_sum BIGINT NOT NULL,
    last_request_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, hour, principal_id, workspace_id)
);
