//! Shared by the benchmarks (`make seed`, `make bench`): settings, tokens, the seeded population.

pub mod in_process;
pub mod population;
pub mod suite;

pub use population::seeded_phone;

use hotline::Config;
use serde_json::Value;

/// The bootstrap admin of the suites the benchmarks start.
pub const ADMIN: (&str, &str) = ("bench-admin", "bench-admin-secret-0123456789");

/// The value at quantile `q` (0 to 1) of sorted `values`, 0 when there are none.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    let last = sorted.len().saturating_sub(1);
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(last))
        .copied()
        .unwrap_or(0)
}

/// `hotline`'s own configuration (defaults, environment); the Makefile points
/// it at PostgreSQL and Redis. The benchmarks refuse the embedded backends.
pub fn bench_config() -> anyhow::Result<Config> {
    let config = Config::load(None).map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        !config.database.url.is_empty(),
        "set HOTLINE_DATABASE__URL to a PostgreSQL database (make seed/bench do)"
    );
    Ok(config)
}

/// A benchmark setting from the environment; `default` when unset or unreadable.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An access token by OAuth2 client credentials.
pub async fn token(
    client: &reqwest::Client,
    http: &str,
    id: &str,
    secret: &str,
) -> anyhow::Result<String> {
    let body: serde_json::Value = client
        .post(format!("{http}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no access_token in {body}"))
}

/// POSTs `body` to `path`, expecting 201: the created resource.
pub async fn create(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let created: Value = response.json().await?;
    anyhow::ensure!(status == 201, "{url}: {status} {created}");
    Ok(created)
}
