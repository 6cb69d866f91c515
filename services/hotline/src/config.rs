//! The whole configuration of a process: the platform's sections plus one per service.

use std::path::PathBuf;

use hotline_identity::IdentityConfig;
use hotline_kit::config::{
    AuthConfig, BusConfig, BusKind, CacheConfig, CacheKind, ConfigError, DatabaseConfig,
    PeersConfig, Secret, ServerConfig, TelemetryConfig, Validate,
};
use hotline_routing::RoutingConfig;
use hotline_ticketing::TicketingConfig;
use serde::{Deserialize, Serialize};

/// The defaults, every key commented: the file `hotline config` starts from.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bootstrap_client_id: String,
    pub bootstrap_client_secret: Secret,
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    pub database: DatabaseConfig,
    pub bus: BusConfig,
    pub cache: CacheConfig,
    pub auth: AuthConfig,
    pub peers: PeersConfig,
    pub identity: IdentityConfig,
    pub routing: RoutingConfig,
    pub ticketing: TicketingConfig,
}

impl Config {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        hotline_kit::config::load(DEFAULTS, file)
    }

    /// The checks that hold only when the process runs more than one replica's worth of state.
    pub fn validate_for(&self, replicated: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if replicated && self.database.url.is_empty() {
            problems.push(
                "database.url must name PostgreSQL when services run in separate processes"
                    .to_owned(),
            );
        }
        if replicated && self.bus.kind == BusKind::Memory {
            problems.push(
                "bus.kind must be \"amqp\" when services run in separate processes".to_owned(),
            );
        }
        if replicated && self.cache.kind == CacheKind::Memory {
            tracing::warn!(
                "cache.kind = \"memory\" with split services: each process keeps its own cache"
            );
        }
        problems
    }
}

impl Validate for Config {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        problems.extend(self.telemetry.validate());
        problems.extend(self.database.validate());
        problems.extend(self.bus.validate());
        problems.extend(self.cache.validate());
        problems.extend(self.identity.validate());
        problems.extend(self.routing.validate());
        problems.extend(self.ticketing.validate());
        if self.bootstrap_client_id.is_empty() != self.bootstrap_client_secret.is_empty() {
            problems.push(
                "set both HOTLINE_BOOTSTRAP_CLIENT_ID and HOTLINE_BOOTSTRAP_CLIENT_SECRET, or neither".to_owned(),
            );
        }
        if !self.bootstrap_client_secret.is_empty()
            && self.bootstrap_client_secret.expose().len() < 16
        {
            problems
                .push("HOTLINE_BOOTSTRAP_CLIENT_SECRET must be at least 16 characters".to_owned());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_defaults_are_valid() {
        let config = Config::load(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.server.http_addr.port(), 8080);
        assert!(config.database.url.is_empty());
        assert_eq!(config.bus.kind, BusKind::Memory);
    }
}
