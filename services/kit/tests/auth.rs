//! Every request is authenticated: tokens are checked for signature, key,
//! expiry, start time, issuer and audience before a handler runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hotline_kit::auth::Role;
use hotline_testkit::{Infra, TestApp, TestKeys, WhoAmI};

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
