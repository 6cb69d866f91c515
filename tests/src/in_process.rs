//! The whole suite started inside the test process, as `hotline serve`
//! assembles it, on the run's own backends.

use hotline::{Config, Started, Target};
use hotline_testkit::{Backends, Infra};
use tokio_util::sync::CancellationToken;

use crate::ADMIN;

pub fn config(infra: &Infra) -> anyhow::Result<Config> {
    let mut config = Config::load(None).map_err(|e| anyhow::anyhow!("{e}"))?;
    config.data_dir = infra.data_dir();
    config.server.http_addr = "127.0.0.1:0".parse()?;
    config.server.grpc_addr = "127.0.0.1:0".parse()?;
    config.server.http_workers = 1;
    config.bootstrap_client_id = ADMIN.0.into();
    config.bootstrap_client_secret = hotline_kit::config::Secret::new(ADMIN.1);
    config.database = infra.database_config();
    config.cache = infra.cache_config();
    // The production exchange and queue names, in the run's own virtual host.
    config.bus = infra.bus_config();
    if infra.backends == Backends::Real {
        config.identity.pii_key = hotline_kit::config::Secret::new(crate::suite::PII_KEY);
    }
    Ok(config)
}

pub async fn start(infra: &Infra) -> anyhow::Result<Started> {
    hotline_kit::telemetry::init_for_tests();
    hotline::start(&config(infra)?, &[Target::All], CancellationToken::new()).await
}
