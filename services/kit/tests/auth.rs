//! Every request is authenticated: tokens are checked for signature, key,
//! expiry, start time, issuer and audience before a handler runs. Key ids the
//! verifier doesn't know make it refetch the key set, within bounds a forger
//! can't push.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hotline_kit::{
    ErrorCode,
    auth::{Authenticator, HttpKeySource, KeySource, Role},
};
use hotline_testkit::{Infra, TestApp, TestKeys, WhoAmI, auth_config};
use jsonwebtoken::jwk::JwkSet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(keys: &TestKeys) -> TestApp {
    let infra = Infra::embedded();
    let platform = infra.platform().await;
    TestApp::start(infra, platform, vec![Arc::new(WhoAmI)], keys.key_source()).await
}

async fn status_with(app: &TestApp, token: &str) -> (u16, serde_json::Value) {
    let response = app
        .client
        .get(app.url("/api/v1/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_names_its_client_and_partner() {
    let keys = TestKeys::generate("k1");
    let app = start(&keys).await;
    let mut claims = TestKeys::claims("shop-client", &[Role::Partner]);
    claims.partner_id = Some("shop-9".into());
    let (status, body) = status_with(&app, &keys.sign(&claims)).await;
    assert_eq!(status, 200);
    assert_eq!(body["subject"], "shop-client");
    assert_eq!(body["partner_id"], "shop-9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_early_foreign_or_misaddressed_tokens_are_refused() {
    let keys = TestKeys::generate("k1");
    let app = start(&keys).await;
    let now = chrono::Utc::now().timestamp();
    let base = TestKeys::claims("c", &[Role::Admin]);

    let mut expired = base.clone();
    expired.exp = now - 120;
    let mut early = base.clone();
    early.nbf = now + 600;
    let mut other_audience = base.clone();
    other_audience.aud = "someone-else".into();
    let mut other_issuer = base.clone();
    other_issuer.iss = "https://evil.example".into();
    let foreign = TestKeys::generate("k1").sign(&base);
    let unknown_key = TestKeys::generate("k9").sign(&base);

    let cases = [
        (keys.sign(&expired), "token expired"),
        (keys.sign(&early), "token not valid yet"),
        (keys.sign(&other_audience), "token issued for someone else"),
        (keys.sign(&other_issuer), "token issued for someone else"),
        (foreign, "token signature invalid"),
        (unknown_key, "token signed by an unknown key"),
        ("a.b.c".to_owned(), "malformed token"),
    ];
    for (token, detail) in cases {
        let (status, body) = status_with(&app, &token).await;
        assert_eq!(status, 401, "{detail}");
        assert_eq!(body["detail"], detail);
        assert_eq!(body["code"], "unauthenticated");
    }
    let missing = app
        .client
        .get(app.url("/api/v1/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
}

/// A JWKS endpoint over HTTP that counts its fetches.
#[derive(Clone)]
struct JwksEndpoint {
    url: String,
    fetches: Arc<AtomicUsize>,
    keys: Arc<Mutex<JwkSet>>,
    failing: Arc<AtomicBool>,
    delay: Arc<Mutex<Duration>>,
}

impl JwksEndpoint {
    async fn start(keys: &[&TestKeys]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = Self {
            url: format!(
                "http://{}/.well-known/jwks.json",
                listener.local_addr().unwrap()
            ),
            fetches: Arc::default(),
            keys: Arc::new(Mutex::new(JwkSet { keys: Vec::new() })),
            failing: Arc::default(),
            delay: Arc::default(),
        };
        for key in keys {
            endpoint.publish(key).await;
        }
        let serving = endpoint.clone();
        tokio::spawn(async move {
            while let Ok((connection, _)) = listener.accept().await {
                tokio::spawn(serving.clone().answer(connection));
            }
        });
        endpoint
    }

    async fn answer(self, mut connection: tokio::net::TcpStream) {
        let mut request = Vec::new();
        let mut buffer = [0_u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            match connection.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => request.extend_from_slice(&buffer[..read]),
            }
        }
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        let (status, body) = if self.failing.load(Ordering::SeqCst) {
            ("500 Internal Server Error", "{}".to_owned())
        } else {
            let keys = self.keys.lock().unwrap();
            ("200 OK", serde_json::to_string(&*keys).unwrap())
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = connection.write_all(response.as_bytes()).await;
    }

    async fn publish(&self, key: &TestKeys) {
        let set = key.key_source().jwks().await.unwrap();
        self.keys.lock().unwrap().keys.extend(set.keys);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn authenticator(&self) -> Authenticator {
        Authenticator::new(
            Arc::new(HttpKeySource::new(self.url.clone())),
            &auth_config(),
        )
    }
}

/// `token` with its header's key id replaced (the signature no longer matters:
/// the key is looked up first).
fn with_kid(token: &str, kid: &str) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

fn forged(keys: &TestKeys, count: usize) -> Vec<String> {
    let token = keys.token(&[Role::Admin]);
    (0..count)
        .map(|_| with_kid(&token, &uuid::Uuid::new_v4().to_string()))
        .collect()
}

async fn refused_as_unknown(authenticator: &Authenticator, tokens: &[String]) {
    let outcomes = futures::future::join_all(tokens.iter().map(|t| authenticator.verify(t))).await;
    for outcome in outcomes {
        let error = outcome.expect_err("a forged key id is refused");
        assert_eq!(error.code, ErrorCode::Unauthenticated);
        assert_eq!(error.message, "token signed by an unknown key");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_key_ids_cost_at_most_one_fetch_a_second() {
    let k1 = TestKeys::generate("k1");
    let endpoint = JwksEndpoint::start(&[&k1]).await;
    let authenticator = endpoint.authenticator();
    authenticator
        .verify(&k1.token(&[Role::Agent]))
        .await
        .unwrap();
    assert_eq!(endpoint.fetches(), 1);

    // A burst of 1,000 different forged key ids shares one fetch.
    let tokens = forged(&k1, 1000);
    refused_as_unknown(&authenticator, &tokens).await;
    let after_burst = endpoint.fetches();
    assert!(after_burst <= 3, "{after_burst} fetches for one burst");

    // Key ids a fetch did not find are refused without another, however long they keep coming.
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        refused_as_unknown(&authenticator, &tokens[..100]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(endpoint.fetches(), after_burst, "remembered as unknown");

    // A real new key is still picked up.
    let k2 = TestKeys::generate("k2");
    endpoint.publish(&k2).await;
    authenticator
        .verify(&k2.token(&[Role::Agent]))
        .await
        .unwrap();
    assert_eq!(endpoint.fetches(), after_burst + 1);
}

/// Identity's own key source reads its key table and asks for no interval at all.
struct Eager {
    keys: Arc<dyn KeySource>,
    fetches: AtomicUsize,
}

#[async_trait]
impl KeySource for Eager {
    async fn jwks(&self) -> anyhow::Result<JwkSet> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.keys.jwks().await
    }

    fn min_refetch(&self) -> Duration {
        Duration::ZERO
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_source_without_interval_is_still_fetched_at_most_once_a_second() {
    let k1 = TestKeys::generate("k1");
    let source = Arc::new(Eager {
        keys: k1.key_source(),
        fetches: AtomicUsize::new(0),
    });
    let authenticator = Authenticator::new(source.clone(), &auth_config());
    authenticator
        .verify(&k1.token(&[Role::Agent]))
        .await
        .unwrap();
    refused_as_unknown(&authenticator, &forged(&k1, 1000)).await;
    let fetches = source.fetches.load(Ordering::SeqCst);
    assert!(fetches <= 3, "{fetches} fetches for 1,000 forged key ids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_key_source_is_backed_off() {
    let k1 = TestKeys::generate("k1");
    let endpoint = JwksEndpoint::start(&[&k1]).await;
    endpoint.failing.store(true, Ordering::SeqCst);
    let authenticator = endpoint.authenticator();
    let token = k1.token(&[Role::Agent]);
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let error = authenticator.verify(&token).await.expect_err("no keys");
        assert_eq!(error.code, ErrorCode::Unavailable);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fetches = endpoint.fetches();
    assert!(fetches <= 2, "{fetches} fetches while failing");

    endpoint.failing.store(false, Ordering::SeqCst);
    let recovered = hotline_testkit::eventually(Duration::from_secs(10), || async {
        authenticator.verify(&token).await.is_ok()
    })
    .await;
    assert!(recovered, "keys are fetched again once the source answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_keys_verify_while_a_slow_fetch_runs() {
    let k1 = TestKeys::generate("k1");
    let endpoint = JwksEndpoint::start(&[&k1]).await;
    let authenticator = Arc::new(endpoint.authenticator());
    let token = k1.token(&[Role::Agent]);
    authenticator.verify(&token).await.unwrap();

    *endpoint.delay.lock().unwrap() = Duration::from_secs(3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let forger = authenticator.clone();
    let forged_token = forged(&k1, 1).remove(0);
    let slow = tokio::spawn(async move { forger.verify(&forged_token).await.is_err() });
    assert!(
        hotline_testkit::eventually(Duration::from_secs(2), || async { endpoint.fetches() == 2 })
            .await,
        "the forged key id started a fetch"
    );
    let started = Instant::now();
    authenticator.verify(&token).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a known key waited {:?} for an unrelated fetch",
        started.elapsed()
    );
    assert!(slow.await.unwrap());
}

/// A verified token is remembered, but only until it expires: the cache never
/// lets a token outlive its `exp`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_token_is_refused_once_it_expires() {
    let keys = TestKeys::generate("k1");
    let mut config = auth_config();
    config.leeway = Duration::ZERO;
    let authenticator = Authenticator::new(keys.key_source(), &config);
    let mut claims = TestKeys::claims("c", &[Role::Admin]);
    claims.exp = chrono::Utc::now().timestamp() + 1;
    let token = keys.sign(&claims);

    assert_eq!(authenticator.verify(&token).await.unwrap().subject, "c");
    assert_eq!(
        authenticator.verify(&token).await.unwrap().subject,
        "c",
        "remembered"
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let refused = authenticator.verify(&token).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::Unauthenticated);
    assert_eq!(refused.message, "token expired");
}
