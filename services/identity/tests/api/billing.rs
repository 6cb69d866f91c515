use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use hotline_testkit::Infra;
use serde_json::json;

use crate::helpers::{Identity, identity_config, zhang_wei};

/// A billing system (BOSS) on loopback that knows account BA-1001 and answers
/// after `delay`.
async fn fake_boss(delay: Duration) -> (String, actix_web::dev::ServerHandle) {
    let server = HttpServer::new(move || {
        App::new().route(
            "/v1/accounts",
            web::get().to(move |query: web::Query<std::collections::HashMap<String, String>>| async move {
                tokio::time::sleep(delay).await;
                if query.get("account").map(String::as_str) == Some("BA-1001") {
                    assert!(query.contains_key("customer_id") && query.contains_key("phone"));
                    HttpResponse::Ok().json(json!({
                        "account_number": "BA-1001",
                        "status": "in_arrears",
                        "balance_cents": -4250,
                        "subscriptions": [{"product": "broadband 200M", "status": "active", "since": "2023-04-01"}],
                    }))
                } else {
                    HttpResponse::NotFound().finish()
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_pop_carries_billing_status_from_the_billing_system() {
    let (url, boss) = fake_boss(Duration::ZERO).await;
    let app = Identity::spawn_with(Infra::embedded(), identity_config(&url)).await;
    app.create(zhang_wei()).await;
    app.create(json!({"name": "无账户", "phones": [{"number": "13900000077"}]}))
        .await;
    let found = app.lookup("13800138000", &app.admin).await;
    let billing = &found["candidates"][0]["billing"];
    assert_eq!(billing["status"], "ok");
    assert_eq!(billing["account"]["status"], "in_arrears");
    assert_eq!(billing["account"]["balance_cents"], -4250);
    assert_eq!(
        billing["account"]["subscriptions"][0]["product"],
        "broadband 200M"
    );
    let unknown = app.lookup("13900000077", &app.admin).await;
    assert_eq!(unknown["candidates"][0]["billing"]["status"], "not_found");
    boss.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_dead_billing_system_does_not_hold_the_screen_pop() {
    let (slow_url, boss) = fake_boss(Duration::from_secs(5)).await;
    let app = Identity::spawn_with(Infra::embedded(), identity_config(&slow_url)).await;
    app.create(zhang_wei()).await;
    let found = app.lookup("13800138000", &app.admin).await;
    assert_eq!(found["candidates"][0]["billing"]["status"], "unavailable");
    assert_eq!(
        found["candidates"][0]["customer"]["name"], "张伟",
        "customer data is still there"
    );
    boss.stop(false).await;

    let dead = Identity::spawn_with(Infra::embedded(), identity_config("http://127.0.0.1:9")).await;
    dead.create(zhang_wei()).await;
    let found = dead.lookup("13800138000", &dead.admin).await;
    assert_eq!(found["candidates"][0]["billing"]["status"], "unavailable");
}
