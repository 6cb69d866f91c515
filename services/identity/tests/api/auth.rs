use hotline_kit::auth::Role;
use hotline_testkit::TestKeys;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_ID, ADMIN_SECRET, Identity, problem};

crate::on_both_backends!(
    no_token_wrong_role_and_forged_tokens_are_refused,
    token_requests_follow_oauth_client_credentials,
    partner_clients_carry_their_partner_id_and_reach_no_customers,
    a_revoked_client_gets_no_new_token,
    rotated_keys_keep_earlier_tokens_valid,
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
    let jwks: Value = app
        .app
        .client
        .get(app.app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == created["client_id"])
        .unwrap();
    assert!(
        entry.get("client_secret").is_none(),
        "secrets are shown once"
    );

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
    let jwks: Value = app
        .app
        .client
        .get(app.app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

fn decode_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

fn decode_claims(token: &str) -> Value {
    decode_part(token, 1)
}

fn header_kid(token: &str) -> String {
    decode_part(token, 0)["kid"].as_str().unwrap().to_owned()
}
