-- keyless schema, PostgreSQL. Keep in step with ../sqlite/0001_initial.sql: same tables, columns,
-- constraints and indexes; only the column types differ (BIGINT, BOOLEAN, BYTEA, JSONB, identity).
-- Times are Unix seconds. Objects are keyed by (organization_id, id). Names are unique per
-- organization and type, archived objects included. Every reference to an object of an organization
-- carries the organization_id and is a composite foreign key, so no row can refer across
-- organizations. A unique constraint on a name column has `name` in its name, and no other unique
-- constraint does (the store reports violations of those as name conflicts).

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE workspaces (
    id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    is_default BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    archived_at BIGINT,
    archived_by_actor_id TEXT,
    CONSTRAINT workspaces_name_unique UNIQUE (organization_id, name),
    PRIMARY KEY (organization_id, id)
);
CREATE UNIQUE INDEX workspaces_one_default ON workspaces (organization_id) WHERE is_default;
CREATE INDEX workspaces_list ON workspaces (organization_id, created_at, id);

CREATE TABLE service_accounts (
    id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    description TEXT,
    organization_role TEXT NOT NULL CHECK (organization_role IN ('developer', 'admin')),
    created_at BIGINT NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    archived_at BIGINT,
    archived_by_actor_id TEXT,
    CONSTRAINT service_accounts_name_unique UNIQUE (organization_id, name),
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX service_accounts_list ON service_accounts (organization_id, created_at, id);

CREATE TABLE service_account_workspaces (
    organization_id TEXT NOT NULL,
    service_account_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    workspace_role TEXT NOT NULL CHECK (workspace_role IN (
        'workspace_admin', 'workspace_developer', 'workspace_restricted_developer', 'workspace_user'
    )),
    created_at BIGINT NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    PRIMARY KEY (organization_id, service_account_id, workspace_id),
    FOREIGN KEY (organization_id, service_account_id) REFERENCES service_accounts (organization_id, id),
    FOREIGN KEY (organization_id, workspace_id) REFERENCES workspaces (organization_id, id)
);

CREATE TABLE federation_issuers (
    id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    issuer_url TEXT NOT NULL,
    jwks JSONB NOT NULL,
    check_jti BOOLEAN NOT NULL,
    max_jwt_lifetime_seconds BIGINT NOT NULL,
    jwks_polling_disabled_at BIGINT,
    poll_consecutive_failures BIGINT NOT NULL,
    poll_last_fetched_at BIGINT,
    poll_next_at BIGINT,
    poll_last_error TEXT,
    created_at BIGINT NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    archived_at BIGINT,
    archived_by_actor_id TEXT,
    CONSTRAINT federation_issuers_name_unique UNIQUE (organization_id, name),
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX federation_issuers_list ON federation_issuers (organization_id, created_at, id);

CREATE TABLE federation_rules (
    id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    description TEXT,
    issuer_id TEXT NOT NULL,
    match_block JSONB NOT NULL,
    service_account_id TEXT NOT NULL,
    oauth_scope TEXT NOT NULL,
    token_lifetime_seconds BIGINT NOT NULL,
    applies_to_all_workspaces BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    archived_at BIGINT,
    archived_by_actor_id TEXT,
    CONSTRAINT federation_rules_name_unique UNIQUE (organization_id, name),
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, issuer_id) REFERENCES federation_issuers (organization_id, id),
    FOREIGN KEY (organization_id, service_account_id) REFERENCES service_accounts (organization_id, id)
);
CREATE INDEX federation_rules_list ON federation_rules (organization_id, created_at, id);
CREATE INDEX federation_rules_issuer ON federation_rules (organization_id, issuer_id);
CREATE INDEX federation_rules_service_account ON federation_rules (organization_id, service_account_id);

CREATE TABLE federation_rule_workspaces (
    organization_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    PRIMARY KEY (organization_id, rule_id, workspace_id),
    FOREIGN KEY (organization_id, rule_id) REFERENCES federation_rules (organization_id, id),
    FOREIGN KEY (organization_id, workspace_id) REFERENCES workspaces (organization_id, id)
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    encrypted_private_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE access_tokens (
    hash BYTEA PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    workspace_id TEXT,
    service_account_id TEXT,
    rule_id TEXT,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    FOREIGN KEY (organization_id, workspace_id) REFERENCES workspaces (organization_id, id),
    FOREIGN KEY (organization_id, service_account_id) REFERENCES service_accounts (organization_id, id),
    FOREIGN KEY (organization_id, rule_id) REFERENCES federation_rules (organization_id, id)
);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

CREATE TABLE jti_records (
    issuer_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    keep_until BIGINT NOT NULL,
    PRIMARY KEY (issuer_id, jti)
);
CREATE INDEX jti_records_expiry ON jti_records (keep_until);

CREATE TABLE activities (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    activity_type TEXT NOT NULL,
    actor_id TEXT,
    resource_id TEXT,
    request_id TEXT,
    created_at BIGINT NOT NULL,
    payload JSONB NOT NULL
);
CREATE INDEX activities_feed ON activities (organization_id, id);
CREATE INDEX activities_type ON activities (organization_id, activity_type, id);
CREATE INDEX activities_actor ON activities (organization_id, actor_id, id) WHERE actor_id IS NOT NULL;
CREATE INDEX activities_resource ON activities (organization_id, resource_id, id) WHERE resource_id IS NOT NULL;
CREATE INDEX activities_request ON activities (organization_id, request_id) WHERE request_id IS NOT NULL;
