-- keyless schema, SQLite. Keep in step with ../postgres/0001_initial.sql: same tables, columns,
-- constraints and indexes; only the column types differ. Tables are STRICT; booleans are INTEGER 0/1,
-- JSON is TEXT, bytes are BLOB, activity ids are AUTOINCREMENT (never reused).
-- Times are Unix seconds. Objects are keyed by (organization_id, id). Names are unique per
-- organization and type, archived objects included. Every reference to an object of an organization
-- carries the organization_id and is a composite foreign key, so no row can refer across
-- organizations. A unique constraint on a name column has `name` in its name, and no other unique
-- constraint does (the store reports violations of those as name conflicts).

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE workspaces (
    id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    is_default INTEGER NOT NULL CHECK (is_default IN (0, 1)),
    created_at INTEGER NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    archived_at INTEGER,
    archived_by_actor_id TEXT,
    CONSTRAINT workspaces_name_unique UNIQUE (organization_id, name),
    PRIMARY KEY (organization_id, id)
) STRICT;
CREATE UNIQUE INDEX workspaces_one_default ON workspaces (organization_id) WHERE is_default;
CREATE INDEX workspaces_list ON workspaces (organization_id, created_at, id);

CREATE TABLE service_accounts (
    id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    description TEXT,
    organization_role TEXT NOT NULL CHECK (organization_role IN ('developer', 'admin')),
    created_at INTEGER NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    archived_at INTEGER,
    archived_by_actor_id TEXT,
    CONSTRAINT service_accounts_name_unique UNIQUE (organization_id, name),
    PRIMARY KEY (organization_id, id)
) STRICT;
CREATE INDEX service_accounts_list ON service_accounts (organization_id, created_at, id);

CREATE TABLE service_account_workspaces (
    organization_id TEXT NOT NULL,
    service_account_id TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    workspace_role TEXT NOT NULL CHECK (workspace_role IN (
        'workspace_admin', 'workspace_developer', 'workspace_restricted_developer', 'workspace_user'
    )),
    created_at INTEGER NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    PRIMARY KEY (organization_id, service_account_id, workspace_id),
    FOREIGN KEY (organization_id, service_account_id) REFERENCES service_accounts (organization_id, id),
    FOREIGN KEY (organization_id, workspace_id) REFERENCES workspaces (organization_id, id)
) STRICT;

CREATE TABLE federation_issuers (
    id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    issuer_url TEXT NOT NULL,
    jwks TEXT NOT NULL,
    check_jti INTEGER NOT NULL CHECK (check_jti IN (0, 1)),
    max_jwt_lifetime_seconds INTEGER NOT NULL,
    jwks_polling_disabled_at INTEGER,
    poll_consecutive_failures INTEGER NOT NULL,
    poll_last_fetched_at INTEGER,
    poll_next_at INTEGER,
    poll_last_error TEXT,
    created_at INTEGER NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    archived_at INTEGER,
    archived_by_actor_id TEXT,
    CONSTRAINT federation_issuers_name_unique UNIQUE (organization_id, name),
    PRIMARY KEY (organization_id, id)
) STRICT;
CREATE INDEX federation_issuers_list ON federation_issuers (organization_id, created_at, id);

CREATE TABLE federation_rules (
    id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    description TEXT,
    issuer_id TEXT NOT NULL,
    match_block TEXT NOT NULL,
    service_account_id TEXT NOT NULL,
    oauth_scope TEXT NOT NULL,
    token_lifetime_seconds INTEGER NOT NULL,
    applies_to_all_workspaces INTEGER NOT NULL CHECK (applies_to_all_workspaces IN (0, 1)),
    created_at INTEGER NOT NULL,
    created_by_actor_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by_actor_id TEXT NOT NULL,
    archived_at INTEGER,
    archived_by_actor_id TEXT,
    CONSTRAINT federation_rules_name_unique UNIQUE (organization_id, name),
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, issuer_id) REFERENCES federation_issuers (organization_id, id),
    FOREIGN KEY (organization_id, service_account_id) REFERENCES service_accounts (organization_id, id)
) STRICT;
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
) STRICT;

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    encrypted_private_key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
) STRICT;

CREATE TABLE access_tokens (
    hash BLOB PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    workspace_id TEXT,
    service_account_id TEXT,
    rule_id TEXT,
    scope TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    FOREIGN KEY (organization_id, workspace_id) REFERENCES workspaces (organization_id, id),
    FOREIGN KEY (organization_id, service_account_id) REFERENCES service_accounts (organization_id, id),
    FOREIGN KEY (organization_id, rule_id) REFERENCES federation_rules (organization_id, id)
) STRICT;
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

CREATE TABLE jti_records (
    issuer_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    keep_until INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, jti)
) STRICT, WITHOUT ROWID;
CREATE INDEX jti_records_expiry ON jti_records (keep_until);

CREATE TABLE activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    activity_type TEXT NOT NULL,
    actor_id TEXT,
    resource_id TEXT,
    request_id TEXT,
    created_at INTEGER NOT NULL,
    payload TEXT NOT NULL
) STRICT;
CREATE INDEX activities_feed ON activities (organization_id, id);
CREATE INDEX activities_type ON activities (organization_id, activity_type, id);
CREATE INDEX activities_actor ON activities (organization_id, actor_id, id) WHERE actor_id IS NOT NULL;
CREATE INDEX activities_resource ON activities (organization_id, resource_id, id) WHERE resource_id IS NOT NULL;
CREATE INDEX activities_request ON activities (organization_id, request_id) WHERE request_id IS NOT NULL;
