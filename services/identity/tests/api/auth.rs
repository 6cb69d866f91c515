use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use hotline_identity::store::api_client;
use hotline_kit::auth::Role;
use hotline_testkit::{Infra, TestApp, TestKeys, client_token};
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_ID, ADMIN_SECRET, Identity, decode_part, header_kid, problem};

crate::on_both_backends!(
    no_token_wrong_role_and_forged_tokens_are_refused,
    token_requests_follow_oauth_client_credentials,
    partner_clients_carry_their_partner_id_and_reach_no_customers,
    a_revoked_client_gets_no_new_token,
    rotated_keys_keep_earlier_tokens_valid,
    a_flood_of_wrong_secrets_gets_429s_and_the_right_secret_still_works,
    argon2_hashes_from_earlier_versions_still_work_and_are_replaced,
);

crate::on_both_backends_with!(
    |config| config.token_endpoint.max_concurrent = 1,
    requests_past_the_concurrency_cap_are_refused_at_once,
);

async fn no_token_wrong_role_and_forged_tokens_are_refused(app: Identity) {
    let unauthenticated = app
        .app
        .client
        .get(app.app.url("/api/v1/customers?name=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unauthenticated.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );
    problem(unauthenticated, StatusCode::UNAUTHORIZED).await;
    problem(
        app.get("/api/v1/customers?name=x", "not-a-jwt").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // Signed by a key identity never published, under an unknown id or under its own key id.
    let forger = TestKeys::generate("forged");
    let forged = forger.token(&[Role::Admin]);
    problem(
        app.get("/api/v1/customers?name=x", &forged).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let jwks = app.public_json("/.well-known/jwks.json").await;
    let real_kid = jwks["keys"][0]["kid"].as_str().unwrap();
    let impostor = TestKeys::generate(real_kid).token(&[Role::Admin]);
    let body = problem(
        app.get("/api/v1/customers?name=x", &impostor).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["detail"], "token signature invalid");

    let partner = app.token_for(&["partner"], Some("shop-7")).await;
    problem(
        app.get("/api/v1/customers?name=x", &partner).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let agent = app.token_for(&["agent"], None).await;
    problem(
        app.get("/api/v1/clients", &agent).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.post("/api/v1/keys/rotate", &agent, &json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn token_requests_follow_oauth_client_credentials(app: Identity) {
    let client = &app.app.client;
    let url = app.app.url("/oauth/token");
    let by_form = client
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ADMIN_ID),
            ("client_secret", ADMIN_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(by_form.status(), StatusCode::OK);
    assert_eq!(by_form.headers().get("cache-control").unwrap(), "no-store");
    let token: Value = by_form.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 900);
    assert_eq!(token["scope"], "admin");

    let wrong_secret = client
        .post(&url)
        .basic_auth(ADMIN_ID, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(wrong_secret, StatusCode::UNAUTHORIZED).await["error"],
        "invalid_client"
    );
    let unknown = client
        .post(&url)
        .basic_auth("nobody", Some("x"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(unknown, StatusCode::UNAUTHORIZED).await["error"],
        "invalid_client"
    );
    let wrong_grant = client
        .post(&url)
        .basic_auth(ADMIN_ID, Some(ADMIN_SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(wrong_grant, StatusCode::BAD_REQUEST).await["error"],
        "unsupported_grant_type"
    );
    let no_credentials = client
        .post(&url)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(no_credentials, StatusCode::BAD_REQUEST).await["error"],
        "invalid_request"
    );
}

async fn partner_clients_carry_their_partner_id_and_reach_no_customers(app: Identity) {
    let invalid = app
        .post(
            "/api/v1/clients",
            &app.admin,
            &json!({"name": "shop", "roles": ["partner"]}),
        )
        .await;
    assert_eq!(
        problem(invalid, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["pointer"],
        "/partner_id"
    );
    let mixed = app
        .post(
            "/api/v1/clients",
            &app.admin,
            &json!({"name": "x", "roles": ["partner", "admin"], "partner_id": "s"}),
        )
        .await;
    problem(mixed, StatusCode::UNPROCESSABLE_ENTITY).await;

    let created: Value = app
        .post(
            "/api/v1/clients",
            &app.admin,
            &json!({"name": "Chaoyang repair", "roles": ["partner"], "partner_id": "shop-7"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["partner_id"], "shop-7");
    assert!(created["client_secret"].as_str().unwrap().len() >= 40);
    let listed: Value = app
        .get("/api/v1/clients", &app.admin)
        .await
        .json()
        .await
        .unwrap();
    let entry = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == created["client_id"])
        .unwrap();
    assert!(
        entry.get("client_secret").is_none(),
        "secrets are shown once"
    );
    // Paged like every list: one at a time, every client once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get(
                &format!("/api/v1/clients?limit=1&cursor={cursor}"),
                &app.admin,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
        seen.push(page["items"][0]["client_id"].clone());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), listed["items"].as_array().unwrap().len());
    assert!(seen.contains(&created["client_id"]));
    problem(
        app.get("/api/v1/clients?cursor=garbage", &app.admin).await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    let token = app
        .token(
            created["client_id"].as_str().unwrap(),
            created["client_secret"].as_str().unwrap(),
        )
        .await;
    let claims = decode_claims(&token);
    assert_eq!(claims["partner_id"], "shop-7");
    assert_eq!(claims["roles"], json!(["partner"]));
    problem(
        app.get("/api/v1/customers/lookup?phone=13800138000", &token)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn a_revoked_client_gets_no_new_token(app: Identity) {
    let created: Value = app
        .post(
            "/api/v1/clients",
            &app.admin,
            &json!({"name": "CTI adapter", "roles": ["service"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let (id, secret) = (
        created["client_id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap(),
    );
    app.token(id, secret).await;
    let revoked = app
        .request(Method::DELETE, &format!("/api/v1/clients/{id}"), &app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(revoked.json::<Value>().await.unwrap()["revoked_at"].is_string());
    let refused = app
        .app
        .client
        .post(app.app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    problem(refused, StatusCode::UNAUTHORIZED).await;
    problem(
        app.request(Method::DELETE, "/api/v1/clients/nope", &app.admin)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn rotated_keys_keep_earlier_tokens_valid(app: Identity) {
    let before = app.admin.clone();
    let rotated: Value = app
        .post("/api/v1/keys/rotate", &app.admin, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let jwks = app.public_json("/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "old key still published: {kids:?}");
    assert_eq!(kids[0], rotated["kid"].as_str().unwrap());
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part");

    let after = app.token(ADMIN_ID, ADMIN_SECRET).await;
    assert_eq!(header_kid(&after), rotated["kid"].as_str().unwrap());
    assert_ne!(header_kid(&before), header_kid(&after));
    for token in [&before, &after] {
        assert_eq!(
            app.get("/api/v1/clients", token).await.status(),
            StatusCode::OK
        );
    }
}

fn decode_claims(token: &str) -> Value {
    decode_part(token, 1)
}

/// A client whose requests come from another loopback address (127.0.0.0/8 is
/// all loopback on Linux), as a caller on another machine would.
fn client_from(last_octet: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, last_octet]))
        .build()
        .unwrap()
}

async fn token_request(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    secret: &str,
) -> reqwest::Response {
    client
        .post(url)
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

/// Wrong secrets from one address cost no more than its failure budget: past it
/// the answer is 429 with the RateLimit fields, before any check. The same client
/// id keeps working from another address, so an attacker can't lock a client out.
async fn a_flood_of_wrong_secrets_gets_429s_and_the_right_secret_still_works(app: Identity) {
    let url = app.app.url("/oauth/token");
    let throttled = Arc::new(AtomicUsize::new(0));
    let flood = tokio::spawn({
        let (url, throttled) = (url.clone(), throttled.clone());
        async move {
            let attacker = client_from(1);
            futures::stream::iter(0..320)
                .map(|i| {
                    let (attacker, url, throttled) = (&attacker, &url, &throttled);
                    async move {
                        // Half against the admin's id, half against ids that don't exist.
                        let id = if i % 2 == 0 {
                            ADMIN_ID.to_owned()
                        } else {
                            format!("hc_guess{i}")
                        };
                        let response = token_request(attacker, url, &id, "wrong").await;
                        if response.status() == StatusCode::TOO_MANY_REQUESTS {
                            throttled.fetch_add(1, Ordering::Relaxed);
                        }
                        response
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<_>>()
                .await
        }
    });
    assert!(
        hotline_testkit::eventually(Duration::from_secs(10), || {
            let throttled = throttled.clone();
            async move { throttled.load(Ordering::Relaxed) > 0 }
        })
        .await,
        "the flood was never throttled"
    );
    let started = Instant::now();
    let legitimate = token_request(&client_from(2), &url, ADMIN_ID, ADMIN_SECRET).await;
    assert_eq!(
        legitimate.status(),
        StatusCode::OK,
        "the right secret from elsewhere works during the flood"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let responses = flood.await.unwrap();
    let count = |status| responses.iter().filter(|r| r.status() == status).count();
    let (unauthorized, throttled) = (
        count(StatusCode::UNAUTHORIZED),
        count(StatusCode::TOO_MANY_REQUESTS),
    );
    assert_eq!(unauthorized + throttled, responses.len());
    assert!(
        unauthorized <= 20 + 32,
        "at most the budget and the requests in flight were checked: {unauthorized}"
    );
    assert!(throttled >= 250, "{throttled}");
    let refused = responses
        .into_iter()
        .find(|r| {
            r.headers()
                .get("ratelimit-policy")
                .is_some_and(|p| p.to_str().unwrap().contains("per-address"))
        })
        .expect("the address's budget ran out");
    let header = |name: &str| {
        refused
            .headers()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    let retry_after: u64 = header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        header("ratelimit-policy"),
        r#""failures-per-address";q=20;w=60"#
    );
    assert!(header("ratelimit").starts_with(r#""failures-per-address";r=0;t="#));
    assert_eq!(
        problem(refused, StatusCode::TOO_MANY_REQUESTS).await["code"],
        "too_many_failed_attempts"
    );

    // One client id from one address has a smaller budget; the address keeps the rest.
    let guesser = client_from(3);
    for _ in 0..10 {
        let response = token_request(&guesser, &url, ADMIN_ID, "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = token_request(&guesser, &url, ADMIN_ID, "wrong").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers()["ratelimit-policy"],
        r#""failures-per-client";q=10;w=60"#
    );
    let other_client = token_request(&guesser, &url, "nobody", "wrong").await;
    assert_eq!(other_client.status(), StatusCode::UNAUTHORIZED);
    let elsewhere = token_request(&client_from(4), &url, ADMIN_ID, ADMIN_SECRET).await;
    assert_eq!(elsewhere.status(), StatusCode::OK);
}

/// Stores a client as earlier versions did, with an Argon2 hash of its secret.
async fn add_argon2_client(app: &Identity, id: &str, secret: &str) -> String {
    use argon2::{PasswordHasher, password_hash::SaltString};
    let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
    let hash = argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .unwrap()
        .to_string();
    api_client::ActiveModel {
        client_id: Set(id.into()),
        name: Set("made by 0.1".into()),
        secret_hash: Set(hash.clone()),
        roles: Set(json!(["service"])),
        partner_id: Set(None),
        created_by: Set("test".into()),
        created_at: Set(chrono::Utc::now()),
        revoked_at: Set(None),
    }
    .insert(&app.database().await)
    .await
    .unwrap();
    hash
}

/// Clients stored by earlier versions (Argon2 hashes) still get tokens, and their
/// hash is replaced by the current scheme on that first success.
async fn argon2_hashes_from_earlier_versions_still_work_and_are_replaced(app: Identity) {
    let secret = "an-old-clients-secret-0123456789";
    let old_hash = add_argon2_client(&app, "hc_old", secret).await;
    let db = app.database().await;
    let url = app.app.url("/oauth/token");
    let wrong = token_request(&app.app.client, &url, "hc_old", "wrong").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let stored = || async {
        api_client::Entity::find_by_id("hc_old")
            .one(&db)
            .await
            .unwrap()
            .unwrap()
            .secret_hash
    };
    assert_eq!(stored().await, old_hash, "a failure changes nothing");

    app.token("hc_old", secret).await;
    let replaced = stored().await;
    assert!(replaced.starts_with("hmac-sha256$"), "{replaced}");
    app.token("hc_old", secret).await;
    let wrong = token_request(&app.app.client, &url, "hc_old", "wrong").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

/// Past `max_concurrent` requests being checked, more are refused at once (503
/// with Retry-After) instead of queueing: here behind a slow Argon2 check.
async fn requests_past_the_concurrency_cap_are_refused_at_once(app: Identity) {
    add_argon2_client(&app, "hc_old", "an-old-clients-secret-0123456789").await;
    let url = app.app.url("/oauth/token");
    let responses = futures::future::join_all((0..8).map(|_| async {
        let started = Instant::now();
        let response = token_request(&app.app.client, &url, "hc_old", "wrong").await;
        (response, started.elapsed())
    }))
    .await;
    let mut refused = 0;
    for (response, took) in responses {
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            refused += 1;
            assert!(took < Duration::from_secs(2), "refused at once: {took:?}");
            assert_eq!(response.headers()["retry-after"], "1");
            assert_eq!(
                problem(response, StatusCode::SERVICE_UNAVAILABLE).await["code"],
                "token_endpoint_busy"
            );
        } else {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
    assert!(refused > 0, "one request at a time is checked");
}

/// A signing key that falls due while identity runs is replaced on every replica
/// without a request waiting: tokens keep flowing and verify everywhere, both
/// replicas move to the new key, and the old one stays published.
async fn a_key_falling_due_while_running_is_rotated_on_every_replica(infra: Infra) {
    let mut config = crate::helpers::identity_config("");
    config.key_rotation = Duration::from_secs(2);
    let first = Identity::spawn_with(infra, config).await;
    let second = first.replica().await;
    let replicas: [&TestApp; 2] = [&first.app, &second];
    let first_kid = header_kid(&first.admin);
    let mut kids = Vec::new();
    let mut last = [String::new(), String::new()];
    let started = Instant::now();
    // Past two due points.
    while started.elapsed() < Duration::from_millis(4500) {
        for (index, issuer) in replicas.iter().enumerate() {
            let token = tokio::time::timeout(
                Duration::from_secs(2),
                client_token(&issuer.client, &issuer.http_url, ADMIN_ID, ADMIN_SECRET),
            )
            .await
            .expect("a token within 2 s, not a hang");
            for verifier in replicas {
                let answer = verifier
                    .client
                    .get(verifier.url("/api/v1/clients"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), StatusCode::OK, "verifies on every replica");
            }
            kids.push(header_kid(&token));
            last[index] = header_kid(&token);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kids.dedup();
    assert!(kids.len() >= 2, "rotated while running: {kids:?}");
    for kid in &last {
        assert_ne!(
            kid, &first_kid,
            "every replica signs with a newer key: {last:?}"
        );
    }
    let rotated = tokio::time::timeout(
        Duration::from_secs(2),
        second
            .client
            .post(second.url("/api/v1/keys/rotate"))
            .bearer_auth(&first.admin)
            .send(),
    )
    .await
    .expect("rotating answers, not a hang")
    .unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated_kid = rotated.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let after = client_token(&second.client, &second.http_url, ADMIN_ID, ADMIN_SECRET).await;
    assert_eq!(header_kid(&after), rotated_kid);
    let published = first.published_kids().await;
    assert_eq!(published[0], rotated_kid);
    assert!(
        published.contains(&first_kid),
        "the first key is still published: {published:?}"
    );
}

mod rotation_falling_due {
    use hotline_testkit::Infra;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        super::a_key_falling_due_while_running_is_rotated_on_every_replica(Infra::embedded()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real() {
        let Some(infra) = Infra::real().await else {
            return;
        };
        super::a_key_falling_due_while_running_is_rotated_on_every_replica(infra).await;
    }
}
