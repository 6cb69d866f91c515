//! Test support for Hotline services: the backends a test runs on (embedded, or
//! real PostgreSQL + RabbitMQ + Redis), a started process on loopback, and
//! tokens signed by keys the test controls.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod events;
mod infra;
mod keys;
mod proxy;
mod python;
mod rest;
mod smsc;
mod sse;
mod whoami;

use std::sync::Arc;

use hotline_kit::{
    auth::{Authenticator, KeySource},
    component::Component,
    config::{AuthConfig, ServerConfig},
    platform::Platform,
    server::{Process, Running},
};
use tokio_util::sync::CancellationToken;

pub use events::{EventRecorder, Recording, broker_queue};
pub use infra::{Backends, Infra, infra_required, redis_url};
pub use keys::TestKeys;
pub use proxy::{Link, TcpProxy};
pub use python::python_with;
pub use rest::{ok_json, problem};
pub use smsc::{Behaviour, Part, Smsc};
pub use sse::Sse;
pub use whoami::WhoAmI;

/// Runs each named scenario on the embedded backends (`mod embedded`) and on
/// the real ones (`mod real`: skipped when they are unreachable, failing when
/// `HOTLINE_REQUIRE_INFRA=1`). `setup` is an async fn turning the run's
/// [`Infra`] into what the scenarios take (`std::future::ready` for the `Infra`
/// itself).
#[macro_export]
macro_rules! on_both_backends {
    ($setup:path => $($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($setup($crate::Infra::embedded()).await).await;
                }
            )*
        }
        mod real {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(infra) = $crate::Infra::real().await else { return };
                    super::$name($setup(infra).await).await;
                }
            )*
        }
    };
}

/// Identity's settings for suites that run it beside the service they test
/// (its `IdentityConfig` as JSON; set `pii_key` before decoding): a token
/// endpoint that tolerates a test's many clients.
pub fn identity_settings() -> serde_json::Value {
    serde_json::json!({
        "default_region": "CN",
        "pii_key": "",
        "pii_previous_keys": [],
        "token_ttl": "15m",
        "key_rotation": "30d",
        "lookup_cache_ttl": "10m",
        "lookup_history": 5,
        "billing": {"url": "", "timeout": "300ms", "cache_ttl": "60s"},
        "token_endpoint": {
            "failures_per_address": 1000, "failures_per_client": 100, "failure_window": "1m",
            "max_concurrent": 64, "tracked": 10000, "trusted_proxies": [],
        },
    })
}

pub fn auth_config() -> AuthConfig {
    AuthConfig {
        issuer: "hotline".into(),
        audience: "hotline".into(),
        jwks_url: String::new(),
        jwks_refresh: std::time::Duration::from_secs(300),
        leeway: std::time::Duration::from_secs(5),
    }
}

fn server_config() -> ServerConfig {
    ServerConfig {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        shutdown_delay: std::time::Duration::ZERO,
        drain_timeout: std::time::Duration::from_secs(10),
        max_body_bytes: 64 * 1024,
        http_workers: 1,
    }
}

/// A started process serving `components` on loopback ports.
pub struct TestApp {
    pub http_url: String,
    pub grpc_url: String,
    pub client: reqwest::Client,
    pub platform: Platform,
    running: Option<Running>,
    _infra: Infra,
}

impl TestApp {
    pub async fn start(
        infra: Infra,
        platform: Platform,
        components: Vec<Arc<dyn Component>>,
        keys: Arc<dyn KeySource>,
    ) -> Self {
        Self::start_with_descriptors(infra, platform, components, keys, &[]).await
    }

    /// Same as `start`, with a descriptor set for gRPC reflection.
    pub async fn start_with_descriptors(
        infra: Infra,
        platform: Platform,
        components: Vec<Arc<dyn Component>>,
        keys: Arc<dyn KeySource>,
        descriptors: &'static [u8],
    ) -> Self {
        hotline_kit::telemetry::init_for_tests();
        let process = Process {
            components,
            authenticator: Arc::new(Authenticator::new(keys, &auth_config())),
            file_descriptor_set: descriptors,
            platform: platform.clone(),
            service: "hotline-test".into(),
            version: "test",
            revision: "",
        };
        let running = process
            .start(&server_config(), CancellationToken::new())
            .await
            .unwrap();
        Self {
            http_url: format!("http://{}", running.http_addr),
            grpc_url: format!("http://{}", running.grpc_addr),
            client: reqwest::Client::new(),
            platform,
            running: Some(running),
            _infra: infra,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http_url)
    }

    /// Shuts the process down gracefully and reports how it ended.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        match self.running.take() {
            Some(running) => {
                running.shutdown();
                let ended = running.wait().await;
                self.platform.bus.close().await;
                ended
            }
            None => Ok(()),
        }
    }

    /// Shuts the process down gracefully and hands back its backends, so a
    /// test can start the service again on the same data (a restart).
    pub async fn stop_keeping_infra(mut self) -> (Infra, anyhow::Result<()>) {
        let ended = match self.running.take() {
            Some(running) => {
                running.shutdown();
                let ended = running.wait().await;
                self.platform.bus.close().await;
                ended
            }
            None => Ok(()),
        };
        (
            std::mem::replace(&mut self._infra, Infra::embedded()),
            ended,
        )
    }

    /// Begins a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        if let Some(running) = &self.running {
            running.shutdown();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.shutdown();
        }
    }
}

/// An access token for an API client, by OAuth2 client credentials (HTTP Basic).
pub async fn client_token(
    client: &reqwest::Client,
    base_url: &str,
    id: &str,
    secret: &str,
) -> String {
    let response = client
        .post(format!("{base_url}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK, "token for {id}");
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
