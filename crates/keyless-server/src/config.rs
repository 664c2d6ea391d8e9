//! Server configuration: where settings come from, and the validated [`Config`] the server runs on.
//!
//! Layers, later ones winning: built-in defaults → the TOML file (`--config FILE`, else
//! `<data-dir>/keyless.toml` when it exists) → `KEYLESS_*` environment variables (`__` nests:
//! `KEYLESS_ISSUERS__ALLOW_INSECURE_URLS=true` sets `issuers.allow_insecure_urls`) → command-line
//! flags. Secrets have `*_file` twins (`KEYLESS_KEYS__ENCRYPTION_KEY_FILE`, `KEYLESS_DATABASE_URL_FILE`).
//!
//! Parsing is two-stage: [`RawConfig`] mirrors the file (unknown keys refused, so a typo is an error,
//! not a silently ignored setting), then [`Config::from_raw`] validates it into [`Config`]. Only the
//! environment variables of the keys below are read: other `KEYLESS_*` variables belong to the client
//! and the CLI (`KEYLESS_BASE_URL`, `KEYLESS_PROFILE`, …) and must not break `keyless serve`.
//!
//! Secrets (`database_url` with a password, `keys.encryption_key`) are [`SecretString`]s: `Debug`
//! prints nothing of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use keyless_core::route::{RouteSpec, RouteTable};

use crate::service::authorize::{AuthorizeSettings, Rate, RateLimits};
use crate::service::jwks::{FetchSettings, KeySettings, PollSettings};
use crate::service::purge::{MAX_RETENTION_DAYS, Retention};
use crate::service::request_log;

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The SQLite database file inside the data directory.
pub const SQLITE_FILE: &str = "keyless.db";
/// The generated key-encryption key inside the data directory (embedded default only).
pub const GENERATED_KEK_FILE: &str = "key-encryption-key";
/// The configuration file looked for in the data directory when `--config` is not given.
pub const CONFIG_FILE: &str = "keyless.toml";

/// The top-level keys, which are also the only `KEYLESS_*` variables the server reads.
const TOP_LEVEL_KEYS: [&str; 13] = [
    "listen",
    "data_dir",
    "database_url",
    "database_url_file",
    "public_url",
    "log",
    "issuers",
    "keys",
    "authorize",
    "rate_limits",
    "request_log",
    "retention",
    "upstream",
];

/// The configuration as written in `keyless.toml` (and mirrored by the environment).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// `listen`: the socket address to bind (default `127.0.0.1:8080`).
    pub listen: Option<String>,
    /// `data_dir`: where the embedded database, the generated key-encryption key and
    /// `bootstrap.json` live (default: the per-user data directory).
    pub data_dir: Option<PathBuf>,
    /// `database_url`: `postgres://…` for PostgreSQL; absent means SQLite in the data directory.
    pub database_url: Option<SecretString>,
    /// `database_url_file`: a file holding `database_url`.
    pub database_url_file: Option<PathBuf>,
    /// `public_url`: the URL workloads and clients reach this server at; also the default audience.
    pub public_url: Option<String>,
    /// `[log]`.
    pub log: RawLog,
    /// `[issuers]`.
    pub issuers: RawIssuers,
    /// `[keys]`.
    pub keys: RawKeys,
    /// `[authorize]`: the route table of the protected API.
    pub authorize: RawAuthorize,
    /// `[rate_limits]`.
    pub rate_limits: RawRateLimits,
    /// `[request_log]`.
    pub request_log: RawRequestLog,
    /// `[retention]`.
    pub retention: RawRetention,
    /// `[upstream]`: the built-in reverse proxy.
    pub upstream: RawUpstream,
}

/// `[authorize]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuthorize {
    /// `routes`: `[{methods, path, scopes}]`, first match wins; absent: the built-in table.
    pub routes: Option<Vec<RawRoute>>,
    /// `unmatched`: the scopes (space-separated, any one) a request no route matches needs; `""`
    /// refuses such requests (default `workspace:developer`).
    pub unmatched: Option<String>,
    /// `cache_entries`: the most credentials cached (100000).
    pub cache_entries: Option<usize>,
}

/// One `[[authorize.routes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// `methods`: e.g. `["GET"]`; absent or empty: every method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// `path`: a pattern (`/v1/files/*`, `/v1/files/**`).
    pub path: String,
    /// `scopes`: space-separated; any one admits the request.
    pub scopes: String,
}

/// `[rate_limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRateLimits {
    /// `workspace`: each workspace's limit.
    pub workspace: Option<RawRate>,
    /// `service_account`: each service account's limit.
    pub service_account: Option<RawRate>,
    /// `api_key`: each API key's limit.
    pub api_key: Option<RawRate>,
    /// `overrides`: limits of particular IDs (`wrkspc_…`, `svac_…`, `apikey_…`).
    pub overrides: std::collections::HashMap<String, RawRate>,
}

/// A rate limit: `{ requests_per_second, burst }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    /// Sustained requests per second (> 0).
    pub requests_per_second: f64,
    /// Requests allowed at once (≥ 1; default: one second's worth, at least 1).
    pub burst: Option<u32>,
}

/// `[request_log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRequestLog {
    /// `queue`: the most request records waiting for the database (65536); more are dropped and counted.
    pub queue: Option<usize>,
    /// `flush_ms`: how long the writer gathers records after the first before it writes them (50,
    /// 0–1000; 0 writes whatever is queued at once).
    pub flush_ms: Option<u64>,
}

/// `[retention]`: how long the high-volume activity events and the usage counts are kept; `0` keeps
/// them forever. Admin changes and the other events are always kept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetention {
    /// `request_days`: `api_request` events, one per checked request (90).
    pub request_days: Option<u32>,
    /// `exchange_days`: `platform_federated_authentication` events and their `_shadow` twins (0: forever).
    pub exchange_days: Option<u32>,
    /// `usage_days`: the hourly usage counts (400).
    pub usage_days: Option<u32>,
}

/// `[upstream]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpstream {
    /// `url`: where the built-in proxy forwards authorized requests (`--upstream`).
    pub url: Option<String>,
    /// `connect_timeout_seconds`: how long a connect to the upstream may take (10).
    pub connect_timeout_seconds: Option<u64>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    /// `format`: `text` (default) or `json`.
    pub format: Option<LogFormat>,
    /// `level`: a tracing filter such as `info` (default) or `keyless_server=debug,info`.
    pub level: Option<String>,
}

/// `[issuers]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIssuers {
    /// `allow_insecure_urls`: fetch issuer documents over http and from loopback/private addresses.
    /// For tests and local development only; logged loudly when on.
    pub allow_insecure_urls: bool,
    /// `jwks_cache_min_seconds`: shortest freshness of fetched keys, whatever their response says (60).
    pub jwks_cache_min_seconds: Option<i64>,
    /// `jwks_cache_max_seconds`: longest freshness of fetched keys, whatever their response says (86400).
    pub jwks_cache_max_seconds: Option<i64>,
    /// `jwks_cache_default_seconds`: freshness when the response has no caching header (900).
    pub jwks_cache_default_seconds: Option<i64>,
    /// `jwks_refetch_cooldown_seconds`: least time between two fetches of one issuer's keys (30).
    pub jwks_refetch_cooldown_seconds: Option<i64>,
    /// `jwks_max_staleness_seconds`: how long the last good keys stay in use while fetches fail (86400).
    pub jwks_max_staleness_seconds: Option<i64>,
    /// `jwks_connect_timeout_seconds`: connection timeout of a fetch (5).
    pub jwks_connect_timeout_seconds: Option<u64>,
    /// `jwks_fetch_timeout_seconds`: total timeout of one request of a fetch (10).
    pub jwks_fetch_timeout_seconds: Option<u64>,
    /// `poll_interval_seconds`: seconds between two ticks of the background poller (5).
    pub poll_interval_seconds: Option<u64>,
    /// `poll_batch_size`: most issuers polled per tick, 1–100 (20).
    pub poll_batch_size: Option<u32>,
    /// `poll_failures_before_pause`: consecutive failed polls after which polling pauses (10).
    pub poll_failures_before_pause: Option<i64>,
}

/// `[keys]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawKeys {
    /// `encryption_key`: the key-encryption key, 32 bytes in base64.
    pub encryption_key: Option<SecretString>,
    /// `encryption_key_file`: a file holding `encryption_key`.
    pub encryption_key_file: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings given on the command line; they override every other layer.
#[derive(Debug, Default)]
pub struct Overrides {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--data-dir DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url URL`.
    pub database_url: Option<SecretString>,
    /// `--upstream URL`.
    pub upstream: Option<String>,
}

/// Where the organization's data lives.
#[derive(Debug)]
pub enum Database {
    /// The embedded default: a SQLite file.
    Sqlite(PathBuf),
    /// PostgreSQL at this URL (it may carry a password, hence secret).
    Postgres(SecretString),
}

/// Where the key-encryption key comes from.
#[derive(Debug)]
pub enum KekSource {
    /// Given inline (`keys.encryption_key`).
    Inline(SecretString),
    /// Read from a file (`keys.encryption_key_file`).
    File(PathBuf),
    /// Generated on first start into the data directory (SQLite only).
    Generated(PathBuf),
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The socket address to bind.
    pub listen: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The database.
    pub database: Database,
    /// The public URL, without a trailing slash: the issuer of keyless's tokens and the default
    /// audience workload tokens must carry.
    pub public_url: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Whether issuer URLs may be http or non-public (tests and development only).
    pub allow_insecure_urls: bool,
    /// Issuer key cache and fetch bounds (`[issuers] jwks_*`).
    pub jwks: KeySettings,
    /// The background poller (`[issuers] poll_*`).
    pub poll: PollSettings,
    /// Where the key-encryption key comes from.
    pub kek: KekSource,
    /// The route table, rate limits and credential cache of request authorization.
    pub authorize: AuthorizeSettings,
    /// The request log's queue bound and flush interval.
    pub request_log: request_log::Settings,
    /// How long the high-volume activity events and the usage counts are kept (`[retention]`).
    pub retention: Retention,
    /// Where the built-in proxy forwards authorized requests, if anywhere.
    pub upstream: Option<Url>,
    /// How long a connect to the upstream may take (`[upstream] connect_timeout_seconds`).
    pub upstream_connect_timeout: Duration,
}

/// Why the configuration cannot be used. Messages name the setting, e.g. `listen: …`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read or has an unknown or ill-typed key.
    #[error("{0}")]
    Layer(String),
    /// A setting has an unusable value.
    #[error("{key}: {reason}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl Config {
    /// Loads every layer. The data directory is settled first (flag, then environment, then the
    /// per-user default) because it is where `keyless.toml` is looked for.
    pub fn load(overrides: Overrides) -> Result<Config, ConfigError> {
        let env = Env::prefixed("KEYLESS_").split("__").filter(|key| {
            // Keys arrive with their original case, `__` already turned into `.`.
            let top = key.as_str().split('.').next().unwrap_or_default();
            TOP_LEVEL_KEYS.iter().any(|known| known.eq_ignore_ascii_case(top))
        });
        let early: RawConfig = Figment::new().merge(env.clone()).extract().map_err(layer_error)?;
        let data_dir = match overrides.data_dir.clone().or(early.data_dir) {
            Some(dir) => dir,
            None => default_data_dir()?,
        };
        let file = match &overrides.config_file {
            Some(path) if !path.is_file() => {
                return Err(invalid(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            Some(path) => Some(path.clone()),
            None => Some(data_dir.join(CONFIG_FILE)).filter(|path| path.is_file()),
        };
        let mut figment = Figment::new();
        if let Some(file) = &file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let mut raw: RawConfig = figment.merge(env).extract().map_err(layer_error)?;
        raw.data_dir = Some(data_dir);
        if let Some(listen) = overrides.listen {
            raw.listen = Some(listen);
        }
        if let Some(url) = overrides.database_url {
            raw.database_url = Some(url);
            raw.database_url_file = None;
        }
        if let Some(upstream) = overrides.upstream {
            raw.upstream.url = Some(upstream);
        }
        Config::from_raw(raw)
    }

    /// Validates a raw configuration (second stage). `data_dir` must be set by now.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| invalid("listen", format!("{listen_text:?} is not an IP:port address")))?;
        let data_dir = raw.data_dir.ok_or_else(|| invalid("data_dir", "is required"))?;

        let database_url = match (raw.database_url, &raw.database_url_file) {
            (Some(_), Some(_)) => return Err(invalid("database_url", "set either database_url or database_url_file")),
            (Some(url), None) => Some(url),
            (None, Some(path)) => Some(read_secret_file("database_url_file", path)?),
            (None, None) => None,
        };
        let database = match database_url {
            None => Database::Sqlite(data_dir.join(SQLITE_FILE)),
            Some(url) => {
                let text = url.expose_secret();
                if let Some(path) = text.strip_prefix("sqlite://") {
                    Database::Sqlite(PathBuf::from(path))
                } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
                    Database::Postgres(url)
                } else {
                    return Err(invalid(
                        "database_url",
                        "must start with postgres://, postgresql:// or sqlite://",
                    ));
                }
            }
        };

        let public_url = match raw.public_url {
            Some(text) => checked_public_url(&text)?,
            None if listen.ip().is_unspecified() => {
                return Err(invalid(
                    "public_url",
                    format!("is required when listening on {listen}: set the URL clients use to reach this server"),
                ));
            }
            None => format!("http://{listen}"),
        };

        let kek = match (raw.keys.encryption_key, raw.keys.encryption_key_file, &database) {
            (Some(_), Some(_), _) => {
                return Err(invalid(
                    "keys.encryption_key",
                    "set either encryption_key or encryption_key_file",
                ));
            }
            (Some(key), None, _) => KekSource::Inline(key),
            (None, Some(path), _) => KekSource::File(path),
            (None, None, Database::Sqlite(_)) => KekSource::Generated(data_dir.join(GENERATED_KEK_FILE)),
            (None, None, Database::Postgres(_)) => {
                return Err(invalid(
                    "keys.encryption_key",
                    "is required with PostgreSQL (every node needs the same key): set KEYLESS_KEYS__ENCRYPTION_KEY_FILE",
                ));
            }
        };

        Ok(Config {
            listen,
            data_dir,
            database,
            public_url,
            log_format: raw.log.format.unwrap_or_default(),
            log_level: raw.log.level.unwrap_or_else(|| "info".to_owned()),
            allow_insecure_urls: raw.issuers.allow_insecure_urls,
            jwks: key_settings(&raw.issuers)?,
            poll: poll_settings(&raw.issuers)?,
            kek,
            authorize: authorize_settings(&raw.authorize, &raw.rate_limits)?,
            request_log: request_log_settings(&raw.request_log)?,
            retention: retention(&raw.retention)?,
            upstream: raw.upstream.url.as_deref().map(checked_upstream).transpose()?,
            upstream_connect_timeout: Duration::from_secs(within(
                "upstream.connect_timeout_seconds",
                raw.upstream.connect_timeout_seconds,
                10,
                1..=300,
            )?),
        })
    }
}

fn retention(raw: &RawRetention) -> Result<Retention, ConfigError> {
    let defaults = Retention::default();
    let days = |key, value, default| within(key, value, default, 0..=MAX_RETENTION_DAYS);
    Ok(Retention {
        request_days: days("retention.request_days", raw.request_days, defaults.request_days)?,
        exchange_days: days("retention.exchange_days", raw.exchange_days, defaults.exchange_days)?,
        usage_days: days("retention.usage_days", raw.usage_days, defaults.usage_days)?,
    })
}

fn authorize_settings(raw: &RawAuthorize, limits: &RawRateLimits) -> Result<AuthorizeSettings, ConfigError> {
    let defaults = AuthorizeSettings::default();
    let routes = match (&raw.routes, &raw.unmatched) {
        (None, None) => defaults.routes,
        (routes, unmatched) => {
            let specs: Vec<RouteSpec> = routes
                .iter()
                .flatten()
                .map(|route| RouteSpec {
                    methods: route.methods.clone(),
                    path: route.path.clone(),
                    scopes: route.scopes.clone(),
                })
                .collect();
            let unmatched = unmatched.as_deref().unwrap_or(keyless_core::scope::WORKSPACE_DEVELOPER);
            RouteTable::new(&specs, unmatched).map_err(|error| invalid("authorize.routes", error.to_string()))?
        }
    };
    let rate = |key: &'static str, raw: &RawRate| -> Result<Rate, ConfigError> {
        if !(raw.requests_per_second.is_finite() && raw.requests_per_second > 0.0) {
            return Err(invalid(key, "requests_per_second must be a number above 0"));
        }
        let burst = match raw.burst {
            Some(0) => return Err(invalid(key, "burst must be at least 1")),
            Some(burst) => burst,
            // One second's worth.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "bounded by the max"
            )]
            None => raw.requests_per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
        };
        Ok(Rate {
            per_second: raw.requests_per_second,
            burst,
        })
    };
    let mut overrides = std::collections::HashMap::new();
    for (id, raw) in &limits.overrides {
        let known = ["wrkspc_", "svac_", "apikey_"]
            .iter()
            .any(|prefix| id.starts_with(prefix));
        if !known {
            return Err(invalid(
                "rate_limits.overrides",
                format!("`{id}` is not a workspace, service account or API key ID"),
            ));
        }
        overrides.insert(id.clone(), rate("rate_limits.overrides", raw)?);
    }
    Ok(AuthorizeSettings {
        routes,
        rate_limits: RateLimits {
            workspace: limits
                .workspace
                .as_ref()
                .map(|raw| rate("rate_limits.workspace", raw))
                .transpose()?,
            service_account: limits
                .service_account
                .as_ref()
                .map(|raw| rate("rate_limits.service_account", raw))
                .transpose()?,
            api_key: limits
                .api_key
                .as_ref()
                .map(|raw| rate("rate_limits.api_key", raw))
                .transpose()?,
            overrides,
        },
        cache_entries: within(
            "authorize.cache_entries",
            raw.cache_entries,
            defaults.cache_entries,
            1..=10_000_000,
        )?,
    })
}

/// The upstream URL: http or https, a host, no query or fragment; its path is a prefix for every
/// forwarded request.
fn checked_upstream(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|error| invalid("upstream.url", format!("{text:?}: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            "upstream.url",
            "must be an http:// or https:// URL with a host",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "upstream.url",
            "must not have a query, fragment or credentials",
        ));
    }
    Ok(url)
}

/// `value` when it lies in `range`, else a refusal naming `key`.
fn within<T: PartialOrd + std::fmt::Display + Copy>(
    key: &'static str,
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError> {
    let value = value.unwrap_or(default);
    if !range.contains(&value) {
        return Err(invalid(
            key,
            format!("{value} is out of range {}..={}", range.start(), range.end()),
        ));
    }
    Ok(value)
}

const DAY: i64 = 24 * 3600;

fn request_log_settings(raw: &RawRequestLog) -> Result<request_log::Settings, ConfigError> {
    let defaults = request_log::Settings::default();
    let flush_ms = u64::try_from(defaults.flush.as_millis()).unwrap_or(u64::MAX);
    Ok(request_log::Settings {
        queue: within("request_log.queue", raw.queue, defaults.queue, 1..=16_777_216)?,
        flush: Duration::from_millis(within("request_log.flush_ms", raw.flush_ms, flush_ms, 0..=1000)?),
    })
}

fn key_settings(raw: &RawIssuers) -> Result<KeySettings, ConfigError> {
    let defaults = KeySettings::default();
    let fetch = FetchSettings {
        connect_timeout: Duration::from_secs(within(
            "issuers.jwks_connect_timeout_seconds",
            raw.jwks_connect_timeout_seconds,
            defaults.fetch.connect_timeout.as_secs(),
            1..=60,
        )?),
        timeout: Duration::from_secs(within(
            "issuers.jwks_fetch_timeout_seconds",
            raw.jwks_fetch_timeout_seconds,
            defaults.fetch.timeout.as_secs(),
            1..=120,
        )?),
        ..defaults.fetch
    };
    let settings = KeySettings {
        cache_min_seconds: within(
            "issuers.jwks_cache_min_seconds",
            raw.jwks_cache_min_seconds,
            defaults.cache_min_seconds,
            1..=DAY,
        )?,
        cache_max_seconds: within(
            "issuers.jwks_cache_max_seconds",
            raw.jwks_cache_max_seconds,
            defaults.cache_max_seconds,
            1..=7 * DAY,
        )?,
        cache_default_seconds: within(
            "issuers.jwks_cache_default_seconds",
            raw.jwks_cache_default_seconds,
            defaults.cache_default_seconds,
            1..=7 * DAY,
        )?,
        refetch_cooldown_seconds: within(
            "issuers.jwks_refetch_cooldown_seconds",
            raw.jwks_refetch_cooldown_seconds,
            defaults.refetch_cooldown_seconds,
            1..=3600,
        )?,
        max_staleness_seconds: within(
            "issuers.jwks_max_staleness_seconds",
            raw.jwks_max_staleness_seconds,
            defaults.max_staleness_seconds,
            0..=30 * DAY,
        )?,
        fetch,
    };
    if settings.cache_min_seconds > settings.cache_max_seconds {
        return Err(invalid(
            "issuers.jwks_cache_min_seconds",
            "must not exceed issuers.jwks_cache_max_seconds",
        ));
    }
    if !(settings.cache_min_seconds..=settings.cache_max_seconds).contains(&settings.cache_default_seconds) {
        return Err(invalid(
            "issuers.jwks_cache_default_seconds",
            "must lie between issuers.jwks_cache_min_seconds and issuers.jwks_cache_max_seconds",
        ));
    }
    Ok(settings)
}

fn poll_settings(raw: &RawIssuers) -> Result<PollSettings, ConfigError> {
    let defaults = PollSettings::default();
    Ok(PollSettings {
        interval_seconds: within(
            "issuers.poll_interval_seconds",
            raw.poll_interval_seconds,
            defaults.interval_seconds,
            1..=3600,
        )?,
        batch_size: within(
            "issuers.poll_batch_size",
            raw.poll_batch_size,
            defaults.batch_size,
            1..=100,
        )?,
        failures_before_pause: within(
            "issuers.poll_failures_before_pause",
            raw.poll_failures_before_pause,
            defaults.failures_before_pause,
            1..=10_000,
        )?,
        ..defaults
    })
}

fn layer_error(err: figment::Error) -> ConfigError {
    ConfigError::Layer(err.to_string())
}

/// The per-user data directory `keyless serve` uses when none is configured (e.g. `~/.local/share/keyless`).
pub fn default_data_dir() -> Result<PathBuf, ConfigError> {
    directories::ProjectDirs::from("", "", "keyless")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .ok_or_else(|| invalid("data_dir", "no per-user data directory is known here: pass --data-dir"))
}

/// Reads a secret from a file, trimming surrounding whitespace (files written with `echo` end in a newline).
pub fn read_secret_file(key: &'static str, path: &Path) -> Result<SecretString, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|err| invalid(key, format!("reading {}: {err}", path.display())))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

/// An absolute http(s) URL without query or fragment; the trailing slash is dropped.
fn checked_public_url(text: &str) -> Result<String, ConfigError> {
    let url = Url::parse(text).map_err(|err| invalid("public_url", format!("{text:?} is not a URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("public_url", "must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(
            "public_url",
            "must not carry credentials, a query or a fragment",
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::panic,
        clippy::result_large_err,
        reason = "figment's Jail API"
    )]
    use figment::Jail;

    use super::*;

    fn load_in(jail: &Jail, overrides: Overrides) -> Result<Config, String> {
        let overrides = Overrides {
            data_dir: overrides.data_dir.or_else(|| Some(jail.directory().to_path_buf())),
            ..overrides
        };
        Config::load(overrides).map_err(|err| err.to_string())
    }

    #[test]
    fn defaults_are_the_embedded_loopback_setup() {
        Jail::expect_with(|jail| {
            let config = load_in(jail, Overrides::default()).unwrap();
            assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
            assert_eq!(config.public_url, "http://127.0.0.1:8080");
            assert!(matches!(&config.database, Database::Sqlite(path) if path.ends_with(SQLITE_FILE)));
            assert!(matches!(&config.kek, KekSource::Generated(path) if path.ends_with(GENERATED_KEK_FILE)));
            assert!(!config.allow_insecure_urls);
            assert_eq!(config.log_format, LogFormat::Text);
            Ok(())
        });
    }

    #[test]
    fn layers_file_then_env_then_flags() {
        Jail::expect_with(|jail| {
            jail.create_file(
                CONFIG_FILE,
                "listen = \"127.0.0.1:9000\"\npublic_url = \"https://keyless.example/\"\n[log]\nformat = \"json\"\n",
            )?;
            let config = load_in(jail, Overrides::default()).unwrap();
            assert_eq!(config.listen.to_string(), "127.0.0.1:9000");
            assert_eq!(config.public_url, "https://keyless.example");
            assert_eq!(config.log_format, LogFormat::Json);

            jail.set_env("KEYLESS_LISTEN", "127.0.0.1:9100");
            jail.set_env("KEYLESS_ISSUERS__ALLOW_INSECURE_URLS", "true");
            let config = load_in(jail, Overrides::default()).unwrap();
            assert_eq!(config.listen.to_string(), "127.0.0.1:9100");
            assert!(config.allow_insecure_urls);

            let flags = Overrides {
                listen: Some("127.0.0.1:9200".into()),
                ..Overrides::default()
            };
            assert_eq!(load_in(jail, flags).unwrap().listen.to_string(), "127.0.0.1:9200");
            Ok(())
        });
    }

    #[test]
    fn client_variables_do_not_break_the_server() {
        Jail::expect_with(|jail| {
            jail.set_env("KEYLESS_BASE_URL", "https://keyless.example");
            jail.set_env("KEYLESS_PROFILE", "ci");
            jail.set_env("KEYLESS_TEST_POSTGRES_URL", "postgres://x@127.0.0.1/test");
            assert!(load_in(jail, Overrides::default()).is_ok());
            Ok(())
        });
    }

    #[test]
    fn each_refusal_names_its_setting() {
        let check = |toml: &str, env: &[(&str, &str)], want: &str| {
            Jail::expect_with(|jail| {
                jail.create_file(CONFIG_FILE, toml)?;
                for (key, value) in env {
                    jail.set_env(key, value);
                }
                let err = load_in(jail, Overrides::default()).err().unwrap_or_default();
                assert!(
                    err.to_lowercase().contains(&want.to_lowercase()),
                    "{toml:?} {env:?}: got {err:?}, want {want:?}"
                );
                Ok(())
            });
        };
        check("listen = \"localhost\"", &[], "listen: ");
        check("lisen = \"127.0.0.1:1\"", &[], "lisen");
        check("[issuers]\nallow_insecure = true", &[], "allow_insecure");
        check("listen = \"0.0.0.0:8080\"", &[], "public_url: is required");
        check("public_url = \"ftp://x\"", &[], "public_url: ");
        check("public_url = \"https://x/?a=1\"", &[], "public_url: ");
        check("database_url = \"mysql://x\"", &[], "database_url: ");
        check(
            "database_url = \"postgres://db/keyless\"",
            &[],
            "keys.encryption_key: is required with PostgreSQL",
        );
        check(
            "",
            &[("KEYLESS_ISSUERS__ALLOW_INSECURE_URLS", "maybe")],
            "allow_insecure_urls",
        );
    }

    #[test]
    fn issuer_key_settings_have_defaults_and_layer_like_the_rest() {
        Jail::expect_with(|jail| {
            let config = load_in(jail, Overrides::default()).unwrap();
            assert_eq!(config.jwks, KeySettings::default());
            assert_eq!(config.poll, PollSettings::default());

            jail.create_file(
                CONFIG_FILE,
                "[issuers]\njwks_max_staleness_seconds = 3600\njwks_refetch_cooldown_seconds = 10\n\
                 jwks_cache_min_seconds = 30\njwks_cache_default_seconds = 300\njwks_cache_max_seconds = 600\n\
                 jwks_fetch_timeout_seconds = 3\njwks_connect_timeout_seconds = 2\npoll_batch_size = 50\n",
            )?;
            jail.set_env("KEYLESS_ISSUERS__POLL_FAILURES_BEFORE_PAUSE", "4");
            jail.set_env("KEYLESS_ISSUERS__POLL_INTERVAL_SECONDS", "2");
            jail.set_env("KEYLESS_ISSUERS__JWKS_MAX_STALENESS_SECONDS", "7200");
            let config = load_in(jail, Overrides::default()).unwrap();
            assert_eq!(config.jwks.max_staleness_seconds, 7200, "env wins over the file");
            assert_eq!(config.jwks.refetch_cooldown_seconds, 10);
            assert_eq!(
                (
                    config.jwks.cache_min_seconds,
                    config.jwks.cache_default_seconds,
                    config.jwks.cache_max_seconds
                ),
                (30, 300, 600)
            );
            assert_eq!(config.jwks.fetch.timeout, Duration::from_secs(3));
            assert_eq!(config.jwks.fetch.connect_timeout, Duration::from_secs(2));
            assert_eq!(config.poll.failures_before_pause, 4);
            assert_eq!(config.poll.interval_seconds, 2);
            assert_eq!(config.poll.batch_size, 50);
            Ok(())
        });
    }

    #[test]
    fn retention_defaults_layers_and_bounds() {
        Jail::expect_with(|jail| {
            let config = load_in(jail, Overrides::default()).unwrap();
            assert_eq!(config.retention, Retention::default());
            let retention = config.retention;
            assert_eq!(
                (retention.request_days, retention.exchange_days, retention.usage_days),
                (90, 0, 400)
            );

            jail.create_file(CONFIG_FILE, "[retention]\nexchange_days = 40000\n")?;
            let err = load_in(jail, Overrides::default()).err().unwrap_or_default();
            assert!(
                err.starts_with("retention.exchange_days: 40000 is out of range"),
                "{err}"
            );
            jail.create_file(CONFIG_FILE, "[retention]\nrequests_days = 1\n")?;
            let err = load_in(jail, Overrides::default()).err().unwrap_or_default();
            assert!(err.contains("requests_days"), "{err}");
            jail.create_file(CONFIG_FILE, "[retention]\nrequest_days = -1\n")?;
            assert!(load_in(jail, Overrides::default()).is_err());

            jail.create_file(
                CONFIG_FILE,
                "[retention]\nrequest_days = 30\nexchange_days = 400\nusage_days = 0\n",
            )?;
            jail.set_env("KEYLESS_RETENTION__REQUEST_DAYS", "0");
            jail.set_env("KEYLESS_RETENTION__USAGE_DAYS", "731");
            let retention = load_in(jail, Overrides::default()).unwrap().retention;
            assert_eq!(
                (retention.request_days, retention.exchange_days, retention.usage_days),
                (0, 400, 731)
            );
            Ok(())
        });
    }

    #[test]
    fn issuer_key_settings_are_validated() {
        let check = |toml: &str, want: &str| {
            Jail::expect_with(|jail| {
                jail.create_file(CONFIG_FILE, &format!("[issuers]\n{toml}"))?;
                let err = load_in(jail, Overrides::default()).err().unwrap_or_default();
                assert!(err.contains(want), "{toml:?}: got {err:?}, want {want:?}");
                Ok(())
            });
        };
        check(
            "jwks_refetch_cooldown_seconds = 0",
            "issuers.jwks_refetch_cooldown_seconds: ",
        );
        check(
            "jwks_max_staleness_seconds = -1",
            "issuers.jwks_max_staleness_seconds: ",
        );
        check("jwks_cache_min_seconds = 0", "issuers.jwks_cache_min_seconds: ");
        check(
            "jwks_cache_min_seconds = 900\njwks_cache_max_seconds = 600",
            "issuers.jwks_cache_min_seconds: must not exceed",
        );
        check(
            "jwks_cache_default_seconds = 30",
            "issuers.jwks_cache_default_seconds: must lie",
        );
        check("jwks_fetch_timeout_seconds = 0", "issuers.jwks_fetch_timeout_seconds: ");
        check("poll_batch_size = 101", "issuers.poll_batch_size: ");
        check("poll_failures_before_pause = 0", "issuers.poll_failures_before_pause: ");
        check("poll_interval_seconds = 0", "issuers.poll_interval_seconds: ");
        check("jwks_max_stalenes_seconds = 1", "jwks_max_stalenes_seconds");
        check("poll_batch_size = \"many\"", "poll_batch_size");
    }

    #[test]
    fn the_request_log_settings_have_defaults_bounds_and_an_env_override() {
        Jail::expect_with(|jail| {
            let config = load_in(jail, Overrides::default()).unwrap();
            assert_eq!(config.request_log, request_log::Settings::default());
            assert_eq!(config.request_log.flush, Duration::from_millis(50));
            jail.set_env("KEYLESS_REQUEST_LOG__FLUSH_MS", "0");
            jail.set_env("KEYLESS_REQUEST_LOG__QUEUE", "1024");
            let config = load_in(jail, Overrides::default()).unwrap();
            assert_eq!(config.request_log.flush, Duration::ZERO);
            assert_eq!(config.request_log.queue, 1024);
            jail.set_env("KEYLESS_REQUEST_LOG__FLUSH_MS", "1001");
            let err = load_in(jail, Overrides::default()).err().unwrap_or_default();
            assert!(
                err.contains("request_log.flush_ms: 1001 is out of range 0..=1000"),
                "{err}"
            );
            jail.set_env("KEYLESS_REQUEST_LOG__FLUSH_MS", "50");
            jail.set_env("KEYLESS_REQUEST_LOG__QUEUE", "0");
            let err = load_in(jail, Overrides::default()).err().unwrap_or_default();
            assert!(err.contains("request_log.queue: 0 is out of range"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_come_from_files_and_never_show_in_debug() {
        Jail::expect_with(|jail| {
            jail.create_file("db-url", "postgres://keyless:hunter2@db/keyless\n")?;
            jail.set_env(
                "KEYLESS_DATABASE_URL_FILE",
                jail.directory().join("db-url").display().to_string(),
            );
            jail.set_env(
                "KEYLESS_KEYS__ENCRYPTION_KEY",
                "c2VjcmV0LWtleS1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcw",
            );
            let config = load_in(jail, Overrides::default()).unwrap();
            let Database::Postgres(url) = &config.database else {
                panic!("{:?}", config.database)
            };
            assert_eq!(url.expose_secret(), "postgres://keyless:hunter2@db/keyless");
            let shown = format!("{config:?}");
            assert!(!shown.contains("hunter2") && !shown.contains("c2VjcmV0"), "{shown}");
            Ok(())
        });
    }
}
