//! Starts identity on the chosen backends and talks to it like a client would.

use std::{sync::Arc, time::Duration};

use hotline_identity::migration::Migrator;
use hotline_identity::{
    IdentityComponent, IdentityConfig,
    config::{BillingConfig, TokenEndpointConfig},
    pii::PiiCipher,
    service::IdentityService,
};
use hotline_kit::{config::Secret, platform::Platform};
use hotline_testkit::{Infra, TestApp, auth_config};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_ID: &str = "test-admin";
pub const ADMIN_SECRET: &str = "test-admin-secret-0123456789";

pub fn identity_config(billing_url: &str) -> IdentityConfig {
    IdentityConfig {
        default_region: "CN".into(),
        pii_key: Secret::new(PiiCipher::generate_key_base64().expect("randomness")),
        pii_previous_keys: Vec::new(),
        token_ttl: Duration::from_secs(900),
        key_rotation: Duration::from_secs(30 * 24 * 3600),
        lookup_cache_ttl: Duration::from_secs(600),
        lookup_history: 5,
        billing: BillingConfig {
            url: billing_url.into(),
            timeout: Duration::from_millis(300),
            cache_ttl: Duration::from_secs(60),
        },
        token_endpoint: TokenEndpointConfig {
            failures_per_address: 20,
            failures_per_client: 10,
            failure_window: Duration::from_secs(60),
            max_concurrent: 64,
            tracked: 10_000,
            trusted_proxies: Vec::new(),
        },
    }
}

pub struct Identity {
    pub app: TestApp,
    pub config: IdentityConfig,
    pub service: Arc<IdentityService>,
    /// A token of the bootstrap admin client.
    pub admin: String,
    pub redis_url: Option<String>,
    pub cache_prefix: String,
}

impl Identity {
    pub async fn spawn(infra: Infra) -> Self {
        Self::spawn_with(infra, identity_config("")).await
    }

    pub async fn spawn_with(infra: Infra, config: IdentityConfig) -> Self {
        let platform = infra.platform().await;
        Self::spawn_on(infra, platform, config).await
    }

    /// Identity on a platform the test assembled (e.g. its bus behind a proxy).
    pub async fn spawn_on(infra: Infra, platform: Platform, config: IdentityConfig) -> Self {
        let redis_url =
            (infra.backends == hotline_testkit::Backends::Real).then(|| infra.redis_url.clone());
        let cache_prefix = infra.run_id.clone();
        let (component, _) =
            IdentityComponent::build(&config, &auth_config(), (ADMIN_ID, ADMIN_SECRET), &platform)
                .await
                .expect("identity starts");
        let service = component.service();
        let keys = component.key_source();
        let app = TestApp::start_with_descriptors(
            infra,
            platform,
            vec![Arc::new(component)],
            keys,
            hotline_proto::FILE_DESCRIPTOR_SET,
        )
        .await;
        let mut identity = Self {
            app,
            config,
            service,
            admin: String::new(),
            redis_url,
            cache_prefix,
        };
        identity.admin = identity.token(ADMIN_ID, ADMIN_SECRET).await;
        identity
    }

    /// A second identity process on the same database and bus: another replica.
    pub async fn replica(&self) -> TestApp {
        let platform = self.app.platform.clone();
        let (component, _) = IdentityComponent::build(
            &self.config,
            &auth_config(),
            (ADMIN_ID, ADMIN_SECRET),
            &platform,
        )
        .await
        .expect("the replica starts");
        let keys = component.key_source();
        // The first replica's Infra owns the data; this one only holds a spare directory.
        TestApp::start(Infra::embedded(), platform, vec![Arc::new(component)], keys).await
    }

    /// Identity's own database, for what no API shows (stored hashes, private keys).
    pub async fn database(&self) -> sea_orm::DatabaseConnection {
        self.app
            .platform
            .database::<Migrator>(hotline_identity::component::NAME)
            .await
            .expect("identity's database")
    }

    /// A token for a client, by HTTP Basic client authentication.
    pub async fn token(&self, id: &str, secret: &str) -> String {
        hotline_testkit::client_token(&self.app.client, &self.app.http_url, id, secret).await
    }

    /// The JSON at a path that needs no token (`/.well-known/jwks.json`, `/readyz`).
    pub async fn public_json(&self, path: &str) -> Value {
        self.app
            .client
            .get(self.app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The key ids of the published JWKS, newest first.
    pub async fn published_kids(&self) -> Vec<String> {
        self.public_json("/.well-known/jwks.json").await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The Prometheus text at `/metrics`.
    pub async fn metrics(&self) -> String {
        self.app
            .client
            .get(self.app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Creates a client with `roles` and returns a token for it.
    pub async fn token_for(&self, roles: &[&str], partner_id: Option<&str>) -> String {
        let mut body = json!({"name": format!("{roles:?} client"), "roles": roles});
        if let Some(partner) = partner_id {
            body["partner_id"] = json!(partner);
        }
        let created = self.post("/api/v1/clients", &self.admin, &body).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.expect("client json");
        self.token(
            created["client_id"].as_str().expect("client_id"),
            created["client_secret"].as_str().expect("client_secret"),
        )
        .await
    }

    pub fn request(&self, method: reqwest::Method, path: &str, token: &str) -> RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(token)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(reqwest::Method::GET, path, token)
            .send()
            .await
            .expect("get")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path, token)
            .json(body)
            .send()
            .await
            .expect("post")
    }

    /// Creates a customer and returns its JSON.
    pub async fn create(&self, body: Value) -> Value {
        let response = self.post("/api/v1/customers", &self.admin, &body).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("customer json")
    }

    pub async fn lookup(&self, phone: &str, token: &str) -> Value {
        let response = self
            .request(reqwest::Method::GET, "/api/v1/customers/lookup", token)
            .query(&[("phone", phone)])
            .send()
            .await
            .expect("lookup");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("lookup json")
    }

    /// How many live customers match a name fragment.
    pub async fn count_named(&self, name: &str) -> usize {
        let response = self
            .request(reqwest::Method::GET, "/api/v1/customers", &self.admin)
            .query(&[("name", name), ("limit", "100")])
            .send()
            .await
            .expect("search");
        let body: Value = response.json().await.expect("search json");
        body["items"].as_array().map_or(0, Vec::len)
    }

    pub fn lookup_cache_key(&self, e164: &str) -> String {
        format!("{}:identity:lookup:{e164}", self.cache_prefix)
    }
}

/// Asserts an RFC 9457 problem response and returns it.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem json");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["code"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

pub fn zhang_wei() -> Value {
    json!({
        "name": "张伟",
        "phones": [{"number": "138 0013 8000"}, {"number": "010 6552 9988", "label": "home"}],
        "addresses": [{"province": "北京市", "city": "北京市", "district": "朝阳区", "street": "建国路 88 号", "building": "3 号楼 2 单元 501"}],
        "id_number": "11010519491231002X",
        "email": "zhang.wei@example.com",
        "tags": ["broadband"],
        "vip_level": 2,
        "attributes": {"billing_account": "BA-1001"},
        "assets": [{"kind": "set_top_box", "serial": "STB-0001"}],
    })
}

/// Runs each named scenario on the embedded backends and on the real ones, with
/// the test configuration changed by `$adjust`.
#[macro_export]
macro_rules! on_both_backends_with {
    ($adjust:expr, $($name:ident),* $(,)?) => {
        mod adjusted {
            fn config() -> hotline_identity::IdentityConfig {
                let mut config = $crate::helpers::identity_config("");
                let adjust: fn(&mut hotline_identity::IdentityConfig) = $adjust;
                adjust(&mut config);
                config
            }
            mod embedded {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let identity = $crate::helpers::Identity::spawn_with(hotline_testkit::Infra::embedded(), super::config()).await;
                        super::super::$name(identity).await;
                    }
                )*
            }
            mod real {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let Some(infra) = hotline_testkit::Infra::real().await else { return };
                        let identity = $crate::helpers::Identity::spawn_with(infra, super::config()).await;
                        super::super::$name(identity).await;
                    }
                )*
            }
        }
    };
}

/// Runs each named scenario on the embedded backends and on the real ones.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        hotline_testkit::on_both_backends!($crate::helpers::Identity::spawn => $($name),*);
    };
}

/// The JSON of a token's header (0) or claims (1).
pub fn decode_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// The id of the key that signed a token.
pub fn header_kid(token: &str) -> String {
    decode_part(token, 0)["kid"].as_str().unwrap().to_owned()
}
