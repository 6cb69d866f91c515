use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{Identity, problem, zhang_wei};

crate::on_both_backends!(
    bad_input_gets_a_problem_and_changes_nothing,
    a_patch_with_bad_fields_changes_nothing,
    control_characters_in_any_text_input_get_a_problem,
    a_known_path_with_another_method_is_405_and_a_page_size_out_of_range_is_400,
);

async fn a_known_path_with_another_method_is_405_and_a_page_size_out_of_range_is_400(
    app: Identity,
) {
    // No route serves TRACE; PATCH on /customers/lookup reaches the handler of
    // PATCH /customers/{id} first. Both name what the path serves.
    for (method, path, allow) in [
        (Method::TRACE, "/api/v1/customers", "GET, POST"),
        (Method::PATCH, "/api/v1/customers/lookup", "GET"),
    ] {
        let answer = app
            .request(method.clone(), path, &app.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer
                .headers()
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let refused = problem(answer, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(refused["code"], "method_not_allowed");
    }
    problem(
        app.get("/api/v1/no-such-thing", &app.admin).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    for limit in ["0", "101"] {
        let refused = app
            .get(&format!("/api/v1/clients?limit={limit}"), &app.admin)
            .await;
        assert_eq!(
            problem(refused, StatusCode::BAD_REQUEST).await["code"],
            "invalid_query",
            "limit={limit}"
        );
    }
    let page = app.get("/api/v1/clients?limit=100", &app.admin).await;
    assert_eq!(page.status(), StatusCode::OK);
}

async fn bad_input_gets_a_problem_and_changes_nothing(app: Identity) {
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"name": "坏号码", "phones": [{"number": "12345"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/phones/0/number",
        ),
        (
            json!({"name": "坏号码", "id_number": "110105194912310021"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/id_number",
        ),
        (
            json!({"name": "坏号码", "nmae": "typo"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            json!({"name": "坏号码", "vip_level": "gold"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            json!({"name": "坏号码", "phones": "13800138000"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            json!({"name": "坏号码", "vip_level": 10}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "/vip_level",
        ),
    ];
    for (body, status, pointer) in cases {
        let response = app.post("/api/v1/customers", &app.admin, &body).await;
        let problem = problem(response, status).await;
        if !pointer.is_empty() {
            assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
        }
    }

    let malformed = app
        .request(Method::POST, "/api/v1/customers", &app.admin)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    problem(malformed, StatusCode::BAD_REQUEST).await;

    let oversized = json!({"name": "坏号码", "attributes": {"blob": "x".repeat(200 * 1024)}});
    problem(
        app.post("/api/v1/customers", &app.admin, &oversized).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    let not_json = app
        .request(Method::POST, "/api/v1/customers", &app.admin)
        .header(header::CONTENT_TYPE, "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    problem(
        app.lookup_raw("not a number").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        app.get("/api/v1/customers/lookup", &app.admin).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        app.get("/api/v1/customers/not-a-uuid", &app.admin).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get(
            "/api/v1/customers/0190a0a0-0000-7000-8000-000000000000",
            &app.admin,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/api/v1/nothing-here", &app.admin).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/api/v1/customers?name=x&cursor=garbage", &app.admin)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    assert_eq!(app.count_named("坏号码").await, 0, "nothing was created");
}

async fn a_patch_with_bad_fields_changes_nothing(app: Identity) {
    let created = app.create(zhang_wei()).await;
    let path = format!("/api/v1/customers/{}", created["id"].as_str().unwrap());
    let response = app
        .request(Method::PATCH, &path, &app.admin)
        .json(&json!({"name": "新名字", "phones": [{"number": "+86 999"}]}))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let unchanged: Value = app.get(&path, &app.admin).await.json().await.unwrap();
    assert_eq!(unchanged, created);
}

/// A NUL reached PostgreSQL as a 500 (it refuses NUL in text) and was stored
/// as is by SQLite: every text input now refuses control characters first.
async fn control_characters_in_any_text_input_get_a_problem(app: Identity) {
    let nul = "张\u{0}伟";
    let bodies = [
        (json!({"name": nul}), "/name"),
        (
            json!({"name": "坏字符", "email": "zhang\u{0}@example.com"}),
            "/email",
        ),
        (
            json!({"name": "坏字符", "addresses": [{"city": nul}]}),
            "/addresses/0/city",
        ),
        (json!({"name": "坏字符", "tags": [nul]}), "/tags/0"),
        (
            json!({"name": "坏字符", "attributes": {"note": nul}}),
            "/attributes",
        ),
    ];
    for (body, pointer) in &bodies {
        let response = app.post("/api/v1/customers", &app.admin, body).await;
        let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["pointer"], *pointer, "{problem}");
    }

    let created = app.create(zhang_wei()).await;
    let path = format!("/api/v1/customers/{}", created["id"].as_str().unwrap());
    for (patch, _) in &bodies {
        let response = app
            .request(Method::PATCH, &path, &app.admin)
            .json(patch)
            .send()
            .await
            .unwrap();
        problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let unchanged: Value = app.get(&path, &app.admin).await.json().await.unwrap();
    assert_eq!(unchanged, created);

    for field in ["name", "address", "phone", "id_number"] {
        let response = app
            .request(Method::GET, "/api/v1/customers", &app.admin)
            .query(&[(field, nul)])
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["errors"][0]["pointer"], format!("/{field}"), "{body}");
    }

    for client in [
        json!({"name": nul, "roles": ["agent"]}),
        json!({"name": "shop", "roles": ["partner"], "partner_id": nul}),
    ] {
        let response = app.post("/api/v1/clients", &app.admin, &client).await;
        problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let revoke = app
        .request(Method::DELETE, "/api/v1/clients/hc_%00x", &app.admin)
        .send()
        .await
        .unwrap();
    problem(revoke, StatusCode::BAD_REQUEST).await;

    // The client id of /oauth/token, as HTTP Basic (raw and percent-encoded)
    // and as a form field.
    let token = || app.app.client.post(app.app.url("/oauth/token"));
    for request in [
        token()
            .basic_auth("hc_\u{0}x", Some("secret"))
            .form(&[("grant_type", "client_credentials")]),
        token()
            .basic_auth("hc_%00x", Some("secret"))
            .form(&[("grant_type", "client_credentials")]),
        token().form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "hc_\u{0}x"),
            ("client_secret", "secret"),
        ]),
    ] {
        let body = problem(request.send().await.unwrap(), StatusCode::BAD_REQUEST).await;
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
    assert_eq!(app.count_named("坏字符").await, 0, "nothing was created");
}

impl Identity {
    async fn lookup_raw(&self, phone: &str) -> reqwest::Response {
        self.request(Method::GET, "/api/v1/customers/lookup", &self.admin)
            .query(&[("phone", phone)])
            .send()
            .await
            .unwrap()
    }
}
