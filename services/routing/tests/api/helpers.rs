//! Starts identity and routing together on the chosen backends, with API
//! clients for a supervisor, the switch's adapter and agents, and talks to
//! them like those clients would.

use std::{sync::Arc, time::Duration};

use hotline_identity::{IdentityComponent, IdentityConfig, pii::PiiCipher};
use hotline_kit::{component::Component, config::Validate};
use hotline_routing::{RoutingComponent, RoutingConfig};
use hotline_testkit::{Infra, TestApp, auth_config};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_ID: &str = "routing-admin";
pub const ADMIN_SECRET: &str = "routing-admin-secret-0123456789";

fn identity_config() -> IdentityConfig {
    let mut settings = hotline_testkit::identity_settings();
    settings["pii_key"] = json!(PiiCipher::generate_key_base64().expect("randomness"));
    let config: IdentityConfig = serde_json::from_value(settings).expect("identity settings");
    assert!(config.validate().is_empty());
    config
}

/// Routing's settings for tests: the production defaults, with callbacks
/// retried within seconds.
pub fn routing_config() -> RoutingConfig {
    let config: RoutingConfig = serde_json::from_value(json!({
        "offer_timeout": "15s",
        "no_answer_activity": "not_ready",
        "priority_aging": "60s",
        "resume_window": "2m",
        "callback_retry": ["1s"],
        "time_zone": "Asia/Shanghai",
        "handle_time_samples": 100,
        "screen_pop_timeout": "2s",
        "lease_ttl": "3s",
        "lease_renew": "500ms",
        "advertise_grpc": "",
        "forward_timeout": "10s",
        "batch_max": 256,
        "stream_keep_alive": "15s",
    }))
    .expect("routing settings");
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    config
}

pub struct Center {
    pub app: TestApp,
    pub routing: Arc<RoutingComponent>,
    /// The bootstrap admin's token.
    pub admin: String,
    /// A supervisor's token.
    pub lead: String,
    /// The switch's adapter (role service).
    pub switch: String,
    identity_config: IdentityConfig,
}

/// An agent with an API client of their own.
pub struct Agent {
    pub id: String,
    pub token: String,
}

impl Center {
    pub async fn spawn(infra: Infra) -> Self {
        Self::spawn_with(infra, routing_config()).await
    }

    pub async fn spawn_with(infra: Infra, config: RoutingConfig) -> Self {
        let platform = infra.platform().await;
        Self::start(infra, platform, identity_config(), config).await
    }

    async fn start(
        infra: Infra,
        platform: hotline_kit::platform::Platform,
        identity_config: IdentityConfig,
        config: RoutingConfig,
    ) -> Self {
        let (identity, _) = IdentityComponent::build(
            &identity_config,
            &auth_config(),
            (ADMIN_ID, ADMIN_SECRET),
            &platform,
        )
        .await
        .expect("identity starts");
        let keys = identity.key_source();
        let routing = Arc::new(
            RoutingComponent::build(&config, &platform, identity.api())
                .await
                .expect("routing starts"),
        );
        let components: Vec<Arc<dyn Component>> = vec![Arc::new(identity), routing.clone()];
        let app = TestApp::start_with_descriptors(
            infra,
            platform,
            components,
            keys,
            hotline_proto::FILE_DESCRIPTOR_SET,
        )
        .await;
        let admin =
            hotline_testkit::client_token(&app.client, &app.http_url, ADMIN_ID, ADMIN_SECRET).await;
        let mut center = Self {
            app,
            routing,
            admin,
            lead: String::new(),
            switch: String::new(),
            identity_config,
        };
        center.lead = center.client(&["supervisor"]).await.1;
        center.switch = center.client(&["service"]).await.1;
        assert!(center.routed().await, "the router starts");
        center
    }

    /// Stops the process and starts it again on the same data.
    pub async fn restart(self) -> Self {
        let identity_config = self.identity_config.clone();
        let (infra, ended) = self.app.stop_keeping_infra().await;
        ended.expect("a clean stop");
        let platform = infra.platform().await;
        Self::start(infra, platform, identity_config, routing_config()).await
    }

    /// Waits until this process holds the router.
    pub async fn routed(&self) -> bool {
        let routing = self.routing.clone();
        hotline_testkit::eventually(Duration::from_secs(10), move || {
            let routing = routing.clone();
            async move { routing.is_leader() }
        })
        .await
    }

    /// A new API client with `roles`: its id and a token.
    pub async fn client(&self, roles: &[&str]) -> (String, String) {
        let created = self
            .post(
                "/api/v1/clients",
                &self.admin,
                &json!({"name": format!("{roles:?}"), "roles": roles}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.unwrap();
        let (id, secret) = (
            created["client_id"].as_str().unwrap().to_owned(),
            created["client_secret"].as_str().unwrap().to_owned(),
        );
        let token =
            hotline_testkit::client_token(&self.app.client, &self.app.http_url, &id, &secret).await;
        (id, token)
    }

    /// A signed-in agent with their own login, created from `spec`.
    pub async fn agent(&self, mut spec: Value) -> Agent {
        let (login, token) = self.client(&["agent"]).await;
        spec["login"] = json!(login);
        let created = self
            .ok_json(
                self.post("/api/v1/agents", &self.lead, &spec).await,
                StatusCode::CREATED,
            )
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        let signed_in = self
            .post(&format!("/api/v1/agents/{id}/sign-in"), &token, &json!({}))
            .await;
        self.ok_json(signed_in, StatusCode::OK).await;
        Agent { id, token }
    }

    pub async fn queue(&self, spec: Value) -> Value {
        self.ok_json(
            self.post("/api/v1/queues", &self.lead, &spec).await,
            StatusCode::CREATED,
        )
        .await
    }

    /// The switch offers a call; the task as answered.
    pub async fn call(&self, call: Value) -> Value {
        self.ok_json(
            self.post("/api/v1/cti/calls", &self.switch, &call).await,
            StatusCode::CREATED,
        )
        .await
    }

    pub async fn task(&self, id: &str) -> Value {
        self.ok_json(
            self.get(&format!("/api/v1/tasks/{id}"), &self.lead).await,
            StatusCode::OK,
        )
        .await
    }

    /// Polls a task until `check` holds on it.
    pub async fn task_until(&self, id: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let task = self.task(id).await;
            if check(&task) {
                return task;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task never got there: {task}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn queue_stats(&self, queue: &str) -> Value {
        self.ok_json(
            self.get(&format!("/api/v1/queues/{queue}/stats"), &self.lead)
                .await,
            StatusCode::OK,
        )
        .await
    }

    pub async fn ok_json(&self, response: Response, status: StatusCode) -> Value {
        hotline_testkit::ok_json(response, status).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.app.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.app.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Response {
        self.app.call(Method::PUT, path, token, Some(body)).await
    }
}

pub use hotline_testkit::problem;

pub use hotline_testkit::Sse;

/// Runs each named scenario on the embedded backends and on the real ones.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        hotline_testkit::on_both_backends!($crate::helpers::Center::spawn => $($name),*);
    };
}
