//! Layered configuration: embedded defaults (every key commented) → an optional
//! file → `HOTLINE_<SECTION>__<KEY>` environment, validated before anything starts.

use std::{fmt, net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Variables with the `HOTLINE_` prefix that are not configuration keys (besides
/// `HOTLINE_TEST_*` and `HOTLINE_BENCH_*`, read by tests and benchmarks).
const NOT_CONFIG: &[&str] = &["target", "require_infra"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(String),
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// Reads defaults, then `file`, then the environment into `T`. Unknown keys are errors,
/// so a typo in a variable name fails loudly instead of being ignored.
pub fn load<T: DeserializeOwned + Validate>(
    defaults: &str,
    file: Option<&Path>,
) -> Result<T, ConfigError> {
    let mut figment = Figment::from(Toml::string(defaults));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::MissingFile(path.display().to_string()));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let env = Env::prefixed("HOTLINE_")
        .filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            !key.starts_with("test_")
                && !key.starts_with("bench_")
                && !NOT_CONFIG.contains(&key.as_str())
        })
        .split("__");
    // figment reads `007` or `+86…` as a number and drops the zeros or the
    // sign; such values are given back exactly as written.
    let verbatim: Vec<(String, String)> = env
        .iter()
        .filter(|(_, raw)| integer_loses_text(raw))
        .map(|(key, raw)| (key.to_string(), raw))
        .collect();
    figment = figment.merge(env);
    for (key, raw) in verbatim {
        figment = figment.merge(Serialized::default(&key, raw));
    }
    let config: T = figment
        .extract()
        .map_err(|error| ConfigError::Parse(describe(error)))?;
    let problems = config.validate();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// Whether `raw` reads as an integer that doesn't write back the same
/// (`007`, `+8610690000`).
fn integer_loses_text(raw: &str) -> bool {
    let raw = raw.trim();
    raw.parse::<i128>().is_ok_and(|n| n.to_string() != raw)
}

fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| m.name.to_string())
                .unwrap_or_default();
            if key.is_empty() {
                format!("{} ({source})", e.kind)
            } else {
                format!("`{key}`: {} ({source})", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Cross-field rules that types alone can't express. Returns one message per
/// problem, each saying what to fix.
pub trait Validate {
    fn validate(&self) -> Vec<String>;
}

/// A setting that is text even when it reads as a number: an SMSC's system id,
/// a sender number, a password. The environment gives `10690000` as a number
/// (and `0106900` as the text it was, see `load`); use with
/// `#[serde(deserialize_with = "kit::config::text")]`.
pub fn text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<String, E> {
            Ok(value.to_owned())
        }
        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<String, E> {
            Ok(value.to_string())
        }
    }
    deserializer.deserialize_any(Text)
}

/// A secret setting: never printed, logged or serialised in clear.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(#[serde(deserialize_with = "text")] String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"[redacted]\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "[redacted]" })
    }
}

/// A URL that may carry a password (`postgres://user:pass@host/db`): shown with
/// the password replaced.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

/// `scheme://user:[redacted]@host/...`: a URL safe to print.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:[redacted]@{host}"),
        None => url.to_owned(),
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    #[serde(with = "humantime_serde")]
    pub shutdown_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    pub max_body_bytes: usize,
    pub http_workers: usize,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    pub level: String,
    pub service_name: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: SecretUrl,
    pub max_connections: u32,
    pub schema_prefix: String,
    pub migrate_on_start: bool,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    Memory,
    Amqp,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    pub kind: BusKind,
    pub amqp_url: SecretUrl,
    pub exchange: String,
    pub dead_letter_exchange: String,
    pub prefetch: u16,
    pub delivery_limit: u32,
    #[serde(with = "humantime_serde")]
    pub retry_initial_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub outbox_poll_interval: Duration,
}

impl BusConfig {
    /// How consumers retry a failing handler.
    pub fn retry_policy(&self) -> crate::bus::RetryPolicy {
        crate::bus::RetryPolicy {
            delivery_limit: self.delivery_limit,
            initial_delay: self.retry_initial_delay,
            max_delay: self.retry_max_delay,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CacheKind {
    Memory,
    Redis,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub kind: CacheKind,
    pub redis_url: SecretUrl,
    pub prefix: String,
    pub max_entries: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
    #[serde(with = "humantime_serde")]
    pub jwks_refresh: Duration,
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeersConfig {
    pub identity_grpc: String,
    pub identity_http: String,
}

/// The sections every process has, whatever services it runs.
impl Validate for DatabaseConfig {
    fn validate(&self) -> Vec<String> {
        let url = self.url.expose();
        let mut problems = Vec::new();
        if !url.is_empty()
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
            && !url.starts_with("sqlite:")
        {
            problems.push(format!(
                "database.url: {} is neither postgres://... nor sqlite:...; leave it empty for the embedded SQLite files",
                self.url.redacted()
            ));
        }
        if self.max_connections == 0 {
            problems.push("database.max_connections must be at least 1".into());
        }
        problems
    }
}

impl Validate for BusConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.kind == BusKind::Amqp && self.amqp_url.is_empty() {
            problems.push("bus.kind = \"amqp\" needs bus.amqp_url (HOTLINE_BUS__AMQP_URL=amqp://user:pass@host:5672/%2f)".into());
        }
        if self.delivery_limit == 0 {
            problems.push("bus.delivery_limit must be at least 1".into());
        }
        if self.prefetch == 0 {
            problems.push("bus.prefetch must be at least 1".into());
        }
        if self.retry_initial_delay.is_zero() || self.retry_max_delay < self.retry_initial_delay {
            problems.push(
                "bus.retry_initial_delay must be above zero and at most bus.retry_max_delay".into(),
            );
        }
        problems
    }
}

impl Validate for CacheConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.kind == CacheKind::Redis && self.redis_url.is_empty() {
            problems.push("cache.kind = \"redis\" needs cache.redis_url (HOTLINE_CACHE__REDIS_URL=redis://host:6379)".into());
        }
        if self.prefix.is_empty() || self.prefix.contains(':') {
            problems.push("cache.prefix must be a non-empty word without ':'".into());
        }
        problems
    }
}

impl Validate for TelemetryConfig {
    fn validate(&self) -> Vec<String> {
        match tracing_subscriber::EnvFilter::try_new(&self.level) {
            Ok(_) => Vec::new(),
            Err(error) => vec![format!(
                "telemetry.level {:?} is not a valid filter: {error}",
                self.level
            )],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_show_no_password() {
        let url = SecretUrl::new("postgres://hotline:s3cret@db:5432/hotline");
        assert_eq!(
            url.redacted(),
            "postgres://hotline:[redacted]@db:5432/hotline"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(
            SecretUrl::new("redis://cache:6379").redacted(),
            "redis://cache:6379"
        );
    }

    #[test]
    fn secrets_serialise_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(
            serde_json::to_string(&secret).ok().as_deref(),
            Some("\"[redacted]\"")
        );
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        bus: BusConfig,
    }

    impl Validate for Sample {
        fn validate(&self) -> Vec<String> {
            self.bus.validate()
        }
    }

    const SAMPLE: &str = r#"
        [bus]
        kind = "amqp"
        amqp_url = ""
        exchange = "x"
        dead_letter_exchange = "d"
        prefetch = 1
        delivery_limit = 1
        retry_initial_delay = "1s"
        retry_max_delay = "30s"
        outbox_poll_interval = "1s"
    "#;

    #[test]
    fn cross_field_rules_say_what_to_fix() {
        let error = load::<Sample>(SAMPLE, None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("bus.amqp_url"), "{error}");
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let typo = format!("{SAMPLE}\nprefetsh = 3\n");
        let error = load::<Sample>(&typo.replace("[bus]", "[bus]\nextra = 1"), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("extra"), "{error}");
        assert!(matches!(
            load::<Sample>(SAMPLE, Some(Path::new("/nonexistent/hotline.toml"))),
            Err(ConfigError::MissingFile(_))
        ));
    }
}
