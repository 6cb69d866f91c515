//! Shared by the benchmarks (`make seed`, `make bench`).

use hotline::Config;

/// Phone number `index` of the seeded population (unique mobile numbers).
pub fn seeded_phone(index: u64) -> String {
    format!("+86138{:08}", index % 100_000_000)
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
