//! Starts identity and ticketing together on the chosen backends, with API
//! clients for a supervisor, an agent and two partner shops, and talks to
//! them like those clients would.

use std::sync::Arc;

use hotline_identity::{IdentityComponent, IdentityConfig, pii::PiiCipher};
use hotline_kit::{
    bus::{Fanout, Subscription},
    clock::ManualClock,
    component::Component,
    config::Validate,
};
use hotline_proto::clients::{IdentityApi, IdentityGrpcClient};
use hotline_testkit::{Infra, Recording, TestApp, auth_config};
use hotline_ticketing::{TicketingComponent, TicketingConfig};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_ID: &str = "ticketing-admin";
pub const ADMIN_SECRET: &str = "ticketing-admin-secret-0123456789";

fn identity_config() -> IdentityConfig {
    let mut settings = hotline_testkit::identity_settings();
    settings["pii_key"] = json!(PiiCipher::generate_key_base64().expect("randomness"));
    let config: IdentityConfig = serde_json::from_value(settings).expect("identity settings");
    assert!(config.validate().is_empty());
    config
}

/// Ticketing's production defaults, but webhooks may go to this machine's
/// receivers over http (127.0.0.1 only).
pub fn ticketing_config() -> TicketingConfig {
    let mut config = production_config();
    config.webhooks.allow_http = true;
    config.webhooks.allow_networks = vec!["127.0.0.1/32".parse().expect("a network")];
    config.webhooks.poll = std::time::Duration::from_millis(50);
    config
}

/// Ticketing's production defaults.
pub fn production_config() -> TicketingConfig {
    let config: TicketingConfig = serde_json::from_value(json!({
        "time_zone": "Asia/Shanghai",
        "default_region": "CN",
        "number_block": 100,
        "reopen_window": "30d",
        "customer_cache_ttl": "5m",
        "repeat_window": "30d",
        "auto_close_after": "72h",
        "timer_poll": "100ms",
        "lease_ttl": "3s",
        "lease_renew": "500ms",
        "stream_keep_alive": "15s",
        "accept_timeout": "30m",
        "max_auto_attempts": 5,
    }))
    .expect("ticketing settings");
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    config
}

/// A center with its configuration in place: a category tree, a region
/// hierarchy, a technician and two shops.
pub struct Desk {
    pub app: TestApp,
    identity_config: IdentityConfig,
    config: TicketingConfig,
    /// Ticketing's clock: Tuesday 2026-12-01 10:00 in Shanghai until advanced.
    pub clock: Arc<ManualClock>,
    pub admin: String,
    /// A supervisor's token.
    pub lead: String,
    /// An agent's token and client id.
    pub agent: String,
    pub agent_id: String,
    /// Partner shops' tokens: shop-a and shop-b.
    pub shop_a: String,
    pub shop_b: String,
    pub no_signal: String,
    pub broadband: String,
    pub tv: String,
    pub chaoyang: String,
    pub beijing: String,
    pub technician: String,
    pub shop_a_assignee: String,
    pub shop_b_assignee: String,
}

impl Desk {
    pub async fn spawn(infra: Infra) -> Self {
        Self::start(infra, true, ticketing_config()).await
    }

    /// The same center on ticketing's production defaults throughout.
    pub async fn spawn_strict(infra: Infra) -> Self {
        Self::start(infra, true, production_config()).await
    }

    /// The same center, with ticketing unable to reach identity (gRPC to a
    /// closed port); identity itself still serves tokens and customers.
    pub async fn spawn_with_identity_down(infra: Infra) -> Self {
        Self::start(infra, false, ticketing_config()).await
    }

    async fn start(infra: Infra, identity_reachable: bool, config: TicketingConfig) -> Self {
        let identity_config = identity_config();
        let clock = Arc::new(ManualClock::new(
            "2026-12-01T02:00:00Z".parse().expect("an instant"),
        ));
        let app = Self::app(
            infra,
            &identity_config,
            &config,
            clock.clone(),
            identity_reachable,
        )
        .await;
        let admin =
            hotline_testkit::client_token(&app.client, &app.http_url, ADMIN_ID, ADMIN_SECRET).await;
        let mut desk = Self {
            app,
            identity_config,
            config,
            clock,
            admin,
            lead: String::new(),
            agent: String::new(),
            agent_id: String::new(),
            shop_a: String::new(),
            shop_b: String::new(),
            no_signal: String::new(),
            broadband: String::new(),
            tv: String::new(),
            chaoyang: String::new(),
            beijing: String::new(),
            technician: String::new(),
            shop_a_assignee: String::new(),
            shop_b_assignee: String::new(),
        };
        desk.lead = desk
            .client(json!({"name": "lead", "roles": ["supervisor"]}))
            .await
            .1;
        (desk.agent_id, desk.agent) = desk
            .client(json!({"name": "agent", "roles": ["agent"]}))
            .await;
        desk.shop_a = desk
            .client(
                json!({"name": "Chaoyang repair", "roles": ["partner"], "partner_id": "shop-a"}),
            )
            .await
            .1;
        desk.shop_b = desk
            .client(json!({"name": "Haidian repair", "roles": ["partner"], "partner_id": "shop-b"}))
            .await
            .1;
        desk.tv = desk
            .node("/api/v1/categories", json!({"code": "tv", "name": "TV"}))
            .await;
        let itv = desk
            .node(
                "/api/v1/categories",
                json!({"parent_id": desk.tv, "code": "itv", "name": "Interactive TV"}),
            )
            .await;
        desk.no_signal = desk
            .node(
                "/api/v1/categories",
                json!({"parent_id": itv, "code": "no_signal", "name": "No signal"}),
            )
            .await;
        desk.broadband = desk
            .node(
                "/api/v1/categories",
                json!({"code": "broadband", "name": "Broadband"}),
            )
            .await;
        desk.beijing = desk
            .node("/api/v1/regions", json!({"code": "bj", "name": "北京"}))
            .await;
        desk.chaoyang = desk
            .node(
                "/api/v1/regions",
                json!({"parent_id": desk.beijing, "code": "bj_cy", "name": "朝阳区"}),
            )
            .await;
        desk.technician = desk
            .assignee(json!({"kind": "technician", "name": "王师傅", "phone": "13900139000", "capacity": 2}))
            .await;
        desk.shop_a_assignee = desk
            .assignee(json!({"kind": "shop", "name": "Chaoyang repair", "partner_id": "shop-a"}))
            .await;
        desk.shop_b_assignee = desk
            .assignee(json!({"kind": "shop", "name": "Haidian repair", "partner_id": "shop-b"}))
            .await;
        desk
    }

    /// Identity and ticketing on `infra`'s data, ticketing on `clock`.
    async fn app(
        infra: Infra,
        identity_config: &IdentityConfig,
        config: &TicketingConfig,
        clock: Arc<ManualClock>,
        identity_reachable: bool,
    ) -> TestApp {
        let platform = infra.platform().await;
        let (identity, _) = IdentityComponent::build(
            identity_config,
            &auth_config(),
            (ADMIN_ID, ADMIN_SECRET),
            &platform,
        )
        .await
        .expect("identity starts");
        let keys = identity.key_source();
        let identity_api: Arc<dyn IdentityApi> = if identity_reachable {
            identity.api()
        } else {
            Arc::new(IdentityGrpcClient::connect_lazy("http://127.0.0.1:9").expect("an endpoint"))
        };
        let ticketing = TicketingComponent::build(config, &platform, identity_api, clock)
            .await
            .expect("ticketing starts");
        let components: Vec<Arc<dyn Component>> = vec![Arc::new(identity), Arc::new(ticketing)];
        TestApp::start_with_descriptors(
            infra,
            platform,
            components,
            keys,
            hotline_proto::FILE_DESCRIPTOR_SET,
        )
        .await
    }

    /// Stops the process and starts it again on the same data and clock; the
    /// tokens and ids stay valid.
    pub async fn restart(self) -> Self {
        let config = self.config.clone();
        self.restart_with(config).await
    }

    /// [`Self::restart`] with ticketing's configuration changed.
    pub async fn restart_with(self, config: TicketingConfig) -> Self {
        let (infra, ended) = self.app.stop_keeping_infra().await;
        ended.expect("a clean stop");
        let app = Self::app(
            infra,
            &self.identity_config,
            &config,
            self.clock.clone(),
            true,
        )
        .await;
        Self {
            app,
            config,
            ..self
        }
    }

    /// A new API client: its id and a token.
    pub async fn client(&self, spec: Value) -> (String, String) {
        let created = self
            .ok_json(
                self.post("/api/v1/clients", &self.admin, &spec).await,
                StatusCode::CREATED,
            )
            .await;
        let (id, secret) = (
            created["client_id"].as_str().unwrap().to_owned(),
            created["client_secret"].as_str().unwrap().to_owned(),
        );
        let token =
            hotline_testkit::client_token(&self.app.client, &self.app.http_url, &id, &secret).await;
        (id, token)
    }

    pub async fn node(&self, path: &str, spec: Value) -> String {
        let node = self
            .ok_json(
                self.post(path, &self.lead, &spec).await,
                StatusCode::CREATED,
            )
            .await;
        node["id"].as_str().unwrap().to_owned()
    }

    pub async fn assignee(&self, spec: Value) -> String {
        let assignee = self
            .ok_json(
                self.post("/api/v1/assignees", &self.lead, &spec).await,
                StatusCode::CREATED,
            )
            .await;
        assignee["id"].as_str().unwrap().to_owned()
    }

    /// A customer in identity: their id.
    pub async fn customer(&self, name: &str, phone: &str) -> String {
        let customer = self
            .ok_json(
                self.post(
                    "/api/v1/customers",
                    &self.agent,
                    &json!({
                        "name": name,
                        "phones": [{"number": phone, "label": "mobile"}],
                        "addresses": [{"city": "北京市", "district": "朝阳区", "street": "建国路 88 号"}],
                    }),
                )
                .await,
                StatusCode::CREATED,
            )
            .await;
        customer["id"].as_str().unwrap().to_owned()
    }

    /// A fault-repair order for `customer` in Chaoyang, as an agent opens it.
    pub async fn order(&self, customer: &str) -> Value {
        self.ok_json(
            self.post(
                "/api/v1/work-orders",
                &self.agent,
                &json!({
                    "type": "fault_repair",
                    "category_id": self.no_signal,
                    "customer_id": customer,
                    "region_id": self.chaoyang,
                    "description": "No signal on any channel since this morning",
                }),
            )
            .await,
            StatusCode::CREATED,
        )
        .await
    }

    /// Takes `action` on order `id` as `token`, expecting 200: the order after.
    pub async fn step(&self, id: &str, action: &str, token: &str, body: Value) -> Value {
        self.ok_json(
            self.post(&format!("/api/v1/work-orders/{id}/{action}"), token, &body)
                .await,
            StatusCode::OK,
        )
        .await
    }

    pub async fn read(&self, id: &str, token: &str) -> Value {
        self.ok_json(
            self.get(&format!("/api/v1/work-orders/{id}"), token).await,
            StatusCode::OK,
        )
        .await
    }

    pub async fn history(&self, id: &str, token: &str) -> Vec<Value> {
        let history = self
            .ok_json(
                self.get(&format!("/api/v1/work-orders/{id}/history"), token)
                    .await,
                StatusCode::OK,
            )
            .await;
        history.as_array().unwrap().clone()
    }

    /// Records the events of `bindings` from now on, as a consumer would.
    pub fn record(&self, bindings: &[&str]) -> Recording {
        let subscription = Subscription {
            name: "observer.test".into(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
            fanout: Fanout::Shared,
        };
        let bus = self.app.platform.bus.clone();
        bus.declare(std::slice::from_ref(&subscription));
        Recording::start(bus, subscription)
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

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.app.call(Method::PATCH, path, token, Some(body)).await
    }
}

pub use hotline_testkit::problem;

/// Waits up to 10 s for `check` (a timer firing, an event consumed).
pub async fn until(what: &str, check: impl AsyncFn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs each named scenario on the embedded backends and on the real ones.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        hotline_testkit::on_both_backends!($crate::helpers::Desk::spawn => $($name),*);
    };
}

/// Every message so far about `order`, oldest first, once `count` are delivered.
pub async fn texts(desk: &Desk, order: &str, count: usize) -> Vec<Value> {
    let path = format!("/api/v1/sms/messages?work_order_id={order}");
    until(&format!("{count} texts delivered"), async || {
        let page = desk
            .ok_json(desk.get(&path, &desk.lead).await, StatusCode::OK)
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["status"] == "delivered")
            .count()
            >= count
    })
    .await;
    let page = desk
        .ok_json(desk.get(&path, &desk.lead).await, StatusCode::OK)
        .await;
    let mut items = page["items"].as_array().unwrap().clone();
    items.reverse();
    items
}
