//! Webhooks to partner systems: a shop's endpoint hears of its own orders
//! only, signed per Standard Webhooks (checked by the `standardwebhooks`
//! package from PyPI, an independent implementation); a failing endpoint is
//! retried on the schedule, honouring Retry-After, then delivered with the
//! same webhook-id; 410 Gone disables it; replays; secret rotation; URLs
//! into the private network refused at registration and at delivery; a dead
//! endpoint holds up nobody else.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Desk, problem, production_config, until},
    receiver::{Answer, Received, Receiver},
};

crate::on_both_backends!(
    a_shop_hears_of_its_own_orders_signed,
    a_failing_endpoint_is_retried_then_delivered_once,
    an_endpoint_that_is_gone_is_disabled_and_replays_after,
    a_rotated_secret_signs_beside_the_new_one,
    a_dead_endpoint_holds_up_nobody_else,
    an_endpoint_is_checked_again_at_delivery,
);
/// On production defaults.
mod strict {
    use super::urls_into_the_private_network_are_refused;
    hotline_testkit::on_both_backends!(
        crate::helpers::Desk::spawn_strict => urls_into_the_private_network_are_refused
    );
}

/// What the `standardwebhooks` package says of each request under `secret`:
/// "ok" or its complaint. Without the package (outside CI) nothing is said.
fn verify(secret: &str, received: &[Received]) -> Option<Vec<String>> {
    const SCRIPT: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
cases = json.load(sys.stdin)
out = []
for case in cases:
    try:
        Webhook(case["secret"]).verify(case["body"], case["headers"])
        out.append("ok")
    except Exception as error:
        out.append(type(error).__name__ + ": " + str(error))
print(json.dumps(out))
"#;
    let python = hotline_testkit::python_with("standardwebhooks")?;
    let cases: Vec<Value> = received
        .iter()
        .map(|r| {
            json!({
                "secret": secret,
                "body": r.body,
                "headers": {
                    "webhook-id": r.id,
                    "webhook-timestamp": r.timestamp,
                    "webhook-signature": r.signature,
                },
            })
        })
        .collect();
    let mut child = std::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &cases).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the verifier failed");
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

fn all_ok(verdicts: Option<Vec<String>>, count: usize) {
    if let Some(verdicts) = verdicts {
        assert_eq!(verdicts, vec!["ok".to_owned(); count]);
    }
}

/// The events recorded, once there are `count`.
async fn heard(
    recording: &hotline_testkit::Recording,
    count: usize,
) -> Vec<hotline_kit::bus::Event> {
    until(&format!("{count} events"), async || {
        recording.recorder.len() >= count
    })
    .await;
    recording.recorder.events()
}

/// Registers an endpoint as `token` (a shop's own): the endpoint with its secret.
async fn endpoint(desk: &Desk, token: &str, url: &str, types: &[&str]) -> Value {
    desk.ok_json(
        desk.post(
            "/api/v1/webhook-endpoints",
            token,
            &json!({"url": url, "event_types": types}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
}

/// A new order dispatched to shop A: its id.
async fn order_for_shop_a(desk: &Desk, customer: &str) -> String {
    let order = desk.order(customer).await;
    let id = order["id"].as_str().unwrap().to_owned();
    desk.step(
        &id,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": desk.shop_a_assignee}),
    )
    .await;
    id
}

async fn deliveries(desk: &Desk, endpoint: &str) -> Vec<Value> {
    let page = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/webhook-endpoints/{endpoint}/deliveries"),
                &desk.lead,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    page["items"].as_array().unwrap().clone()
}

async fn delivery(desk: &Desk, id: &str) -> Value {
    desk.ok_json(
        desk.get(&format!("/api/v1/webhook-deliveries/{id}"), &desk.lead)
            .await,
        StatusCode::OK,
    )
    .await
}

async fn a_shop_hears_of_its_own_orders_signed(desk: Desk) {
    let a = Receiver::start(&[]).await;
    let b = Receiver::start(&[]).await;
    let delivered = desk.record(&["ticketing.webhook.delivered"]);
    let hook_a = endpoint(&desk, &desk.shop_a, &a.url, &[]).await;
    let hook_b = endpoint(&desk, &desk.shop_b, &b.url, &[]).await;
    let secret = hook_a["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(hook_a["partner_id"], "shop-a");

    let customer = desk.customer("周先生", "13800138071").await;
    let id = order_for_shop_a(&desk, &customer).await;
    desk.step(&id, "accept", &desk.shop_a, json!({})).await;
    desk.step(&id, "start", &desk.shop_a, json!({})).await;
    desk.step(
        &id,
        "resolve",
        &desk.shop_a,
        json!({"resolution_code": "fixed"}),
    )
    .await;
    let received = a.wait_for(4).await;
    assert_eq!(
        a.types(),
        [
            "ticketing.ticket.dispatched",
            "ticketing.ticket.accepted",
            "ticketing.ticket.status_changed",
            "ticketing.ticket.resolved",
        ]
    );
    all_ok(verify(secret, &received), 4);
    // Signed with A's secret, not B's: B's secret doesn't verify them.
    if let Some(verdicts) = verify(hook_b["secret"].as_str().unwrap(), &received[..1]) {
        assert_ne!(verdicts[0], "ok");
    }
    let body: Value = serde_json::from_str(&received[3].body).unwrap();
    assert_eq!(
        (&body["data"]["id"], &body["data"]["status"]),
        (&json!(id), &json!("resolved"))
    );
    // The partner's view: no customer id, nothing internal.
    assert!(body["data"]["customer"].get("id").is_none(), "{body}");
    // The log: each delivered once, its webhook-id its id.
    let log = deliveries(&desk, hook_a["id"].as_str().unwrap()).await;
    assert_eq!(log.len(), 4);
    for entry in &log {
        assert_eq!(
            (&entry["status"], &entry["attempts"]),
            (&json!("delivered"), &json!(1))
        );
    }
    let mut ids: Vec<&str> = log.iter().map(|d| d["id"].as_str().unwrap()).collect();
    ids.reverse();
    let sent: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, sent);
    let ended = heard(&delivered, 4).await;
    assert!(
        ended
            .iter()
            .all(|e| e.kind == "ticketing.webhook.delivered")
    );

    // Shop B heard nothing, and reaches none of A's endpoint or log.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(b.received().is_empty());
    let a_id = hook_a["id"].as_str().unwrap();
    for path in [
        format!("/api/v1/webhook-endpoints/{a_id}"),
        format!("/api/v1/webhook-endpoints/{a_id}/deliveries"),
        format!("/api/v1/webhook-deliveries/{}", sent[0]),
    ] {
        let response = desk.get(&path, &desk.shop_b).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for (response, what) in [
        (
            desk.post(
                &format!("/api/v1/webhook-deliveries/{}/replay", sent[0]),
                &desk.shop_b,
                &json!({}),
            )
            .await,
            "replay",
        ),
        (
            desk.post(
                &format!("/api/v1/webhook-endpoints/{a_id}/rotate-secret"),
                &desk.shop_b,
                &json!({}),
            )
            .await,
            "rotate",
        ),
        (
            desk.patch(
                &format!("/api/v1/webhook-endpoints/{a_id}"),
                &desk.shop_b,
                &json!({"enabled": false}),
            )
            .await,
            "disable",
        ),
    ] {
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{what}");
    }
    let listed = desk
        .ok_json(
            desk.get("/api/v1/webhook-endpoints", &desk.shop_b).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["partner_id"], "shop-b");
    // Nor registers one for A.
    let response = desk
        .post(
            "/api/v1/webhook-endpoints",
            &desk.shop_b,
            &json!({"partner_id": "shop-a", "url": b.url}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    a.stop().await;
    b.stop().await;
}

async fn a_failing_endpoint_is_retried_then_delivered_once(desk: Desk) {
    let shop = Receiver::start(&[Answer::Status(500), Answer::RetryAfter(503, 1000)]).await;
    let failed = desk.record(&["ticketing.webhook.failed", "ticketing.webhook.delivered"]);
    let hook = endpoint(
        &desk,
        &desk.shop_a,
        &shop.url,
        &["ticketing.ticket.dispatched"],
    )
    .await;
    let customer = desk.customer("吴女士", "13800138072").await;
    order_for_shop_a(&desk, &customer).await;
    shop.wait_for(1).await;
    let hook_id = hook["id"].as_str().unwrap();
    // The retry is scheduled from when the answer is recorded, a moment after
    // the receiver saw the request: the clock moves only once it is.
    let recorded = async |attempts: u64| {
        until("the answer recorded", async || {
            deliveries(&desk, hook_id).await[0]["attempts"] == attempts
        })
        .await;
    };
    recorded(1).await;
    let first = deliveries(&desk, hook_id).await;
    assert_eq!(
        (
            &first[0]["status"],
            &first[0]["attempts"],
            &first[0]["last_status_code"]
        ),
        (&json!("pending"), &json!(1), &json!(500))
    );
    // The first retry comes 5 s (± 20 %) later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shop.received().len(), 1);
    desk.clock.advance(chrono::Duration::seconds(7));
    shop.wait_for(2).await;
    recorded(2).await;
    // The schedule's next wait is 5 min (± 20 %), but it asked for 1000 s.
    desk.clock.advance(chrono::Duration::seconds(400));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(shop.received().len(), 2);
    desk.clock.advance(chrono::Duration::seconds(601));
    let received = shop.wait_for(3).await;
    until("the delivery recorded", async || {
        deliveries(&desk, hook_id).await[0]["status"] == "delivered"
    })
    .await;
    let id = received[0].id.clone();
    assert!(
        received.iter().all(|r| r.id == id),
        "one webhook-id throughout"
    );
    all_ok(verify(hook["secret"].as_str().unwrap(), &received), 3);
    let log = delivery(&desk, &id).await;
    let codes: Vec<&Value> = log["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(503), &json!(200)]);
    assert_eq!(log["attempts"], 3);
    let ended = heard(&failed, 1).await;
    assert_eq!(ended[0].kind, "ticketing.webhook.delivered");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        shop.received().len(),
        3,
        "nothing sent twice once delivered"
    );
    shop.stop().await;
}

async fn an_endpoint_that_is_gone_is_disabled_and_replays_after(desk: Desk) {
    let shop = Receiver::start(&[Answer::Status(410)]).await;
    let failed = desk.record(&["ticketing.webhook.failed"]);
    let hook = endpoint(&desk, &desk.shop_a, &shop.url, &[]).await;
    let hook_id = hook["id"].as_str().unwrap();
    let customer = desk.customer("郑先生", "13800138073").await;
    let id = order_for_shop_a(&desk, &customer).await;
    shop.wait_for(1).await;
    heard(&failed, 1).await;
    let gone = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/webhook-endpoints/{hook_id}"),
                &desk.shop_a,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (&gone["enabled"], &gone["disabled_reason"]),
        (&json!(false), &json!("gone"))
    );
    // Later changes aren't queued for it, and nothing more is sent.
    desk.step(&id, "accept", &desk.shop_a, json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shop.received().len(), 1);
    let log = deliveries(&desk, hook_id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "failed");
    let first = log[0]["id"].as_str().unwrap();
    // A disabled endpoint's delivery can't be replayed...
    let refused = desk
        .post(
            &format!("/api/v1/webhook-deliveries/{first}/replay"),
            &desk.shop_a,
            &json!({}),
        )
        .await;
    assert_eq!(
        problem(refused, StatusCode::CONFLICT).await["code"],
        "webhook_endpoint_disabled"
    );
    // ...until the shop enables it again.
    desk.ok_json(
        desk.patch(
            &format!("/api/v1/webhook-endpoints/{hook_id}"),
            &desk.shop_a,
            &json!({"enabled": true}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let replayed = desk
        .ok_json(
            desk.post(
                &format!("/api/v1/webhook-deliveries/{first}/replay"),
                &desk.shop_a,
                &json!({}),
            )
            .await,
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(replayed["status"], "pending");
    let received = shop.wait_for(2).await;
    assert_eq!(received[1].id, first, "a replay keeps its webhook-id");
    until("the replay delivered", async || {
        delivery(&desk, first).await["status"] == "delivered"
    })
    .await;
    assert_eq!(
        delivery(&desk, first).await["log"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    shop.stop().await;
}

async fn a_rotated_secret_signs_beside_the_new_one(desk: Desk) {
    let shop = Receiver::start(&[]).await;
    let hook = endpoint(
        &desk,
        &desk.shop_a,
        &shop.url,
        &["ticketing.ticket.dispatched"],
    )
    .await;
    let hook_id = hook["id"].as_str().unwrap();
    let old = hook["secret"].as_str().unwrap();
    let rotated = desk
        .ok_json(
            desk.post(
                &format!("/api/v1/webhook-endpoints/{hook_id}/rotate-secret"),
                &desk.shop_a,
                &json!({}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(old, new);
    assert!(rotated["previous_secret_until"].is_string());
    let customer = desk.customer("冯女士", "13800138074").await;
    order_for_shop_a(&desk, &customer).await;
    let received = shop.wait_for(1).await;
    assert_eq!(received[0].signature.split(' ').count(), 2);
    all_ok(verify(old, &received), 1);
    all_ok(verify(new, &received), 1);
    // After the overlap only the new secret signs.
    desk.clock.advance(chrono::Duration::hours(25));
    let second = desk.customer("冯先生", "13800138075").await;
    order_for_shop_a(&desk, &second).await;
    let received = shop.wait_for(2).await;
    assert_eq!(received[1].signature.split(' ').count(), 1);
    all_ok(verify(new, &received[1..]), 1);
    if let Some(verdicts) = verify(old, &received[1..]) {
        assert_ne!(verdicts[0], "ok");
    }
    shop.stop().await;
}

async fn a_dead_endpoint_holds_up_nobody_else(desk: Desk) {
    let dead = Receiver::start(&[Answer::Hang]).await;
    let alive = Receiver::start(&[]).await;
    let dead_hook = endpoint(&desk, &desk.shop_a, &dead.url, &[]).await;
    endpoint(&desk, &desk.shop_b, &alive.url, &[]).await;
    let customer = desk.customer("陈先生", "13800138076").await;
    order_for_shop_a(&desk, &customer).await;
    dead.wait_for(1).await;
    // Shop A's endpoint is now holding its request open; shop B's order goes through.
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap();
    desk.step(
        id,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": desk.shop_b_assignee}),
    )
    .await;
    desk.step(id, "accept", &desk.shop_b, json!({})).await;
    alive.wait_for(2).await;
    // A's delivery is still in its first attempt.
    let pending = deliveries(&desk, dead_hook["id"].as_str().unwrap()).await;
    assert_eq!(
        (&pending[0]["status"], &pending[0]["attempts"]),
        (&json!("pending"), &json!(0))
    );
    alive.stop().await;
}

async fn an_endpoint_is_checked_again_at_delivery(desk: Desk) {
    let shop = Receiver::start(&[]).await;
    let hook = endpoint(&desk, &desk.shop_a, &shop.url, &[]).await;
    // The allowance for this machine's address is withdrawn after registration.
    let mut strict = crate::helpers::ticketing_config();
    strict.webhooks.allow_networks.clear();
    let desk = desk.restart_with(strict).await;
    let customer = desk.customer("褚女士", "13800138077").await;
    order_for_shop_a(&desk, &customer).await;
    let hook_id = hook["id"].as_str().unwrap();
    until("an attempt refused", async || {
        deliveries(&desk, hook_id)
            .await
            .first()
            .is_some_and(|d| d["attempts"] == 1)
    })
    .await;
    let refused = &deliveries(&desk, hook_id).await[0];
    assert_eq!(refused["status"], "pending");
    assert!(
        refused["last_error"]
            .as_str()
            .unwrap()
            .contains("not a public address"),
        "{refused}"
    );
    assert!(
        shop.received().is_empty(),
        "nothing reached the private address"
    );
    shop.stop().await;
}

async fn urls_into_the_private_network_are_refused(desk: Desk) {
    // Production defaults: https only, public addresses only.
    assert!(!production_config().webhooks.allow_http);
    for url in [
        "http://shop.example/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://0x7f000001/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "https://admin:pw@shop.example/hook",
        "not a url",
        "",
    ] {
        let response = desk
            .post(
                "/api/v1/webhook-endpoints",
                &desk.shop_a,
                &json!({"url": url}),
            )
            .await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["errors"][0]["pointer"], "/url", "{url}: {body}");
    }
    let response = desk
        .post(
            "/api/v1/webhook-endpoints",
            &desk.shop_a,
            &json!({"url": "https://8.8.8.8/hook", "event_types": ["ticketing.ticket.nonsense"]}),
        )
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["pointer"], "/event_types/0");
    // Staff must say whose endpoint it is; agents may not register one.
    let response = desk
        .post(
            "/api/v1/webhook-endpoints",
            &desk.lead,
            &json!({"url": "https://8.8.8.8/hook"}),
        )
        .await;
    problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let response = desk
        .post(
            "/api/v1/webhook-endpoints",
            &desk.agent,
            &json!({"partner_id": "shop-a", "url": "https://8.8.8.8/hook"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Nothing was registered.
    let listed = desk
        .ok_json(
            desk.get("/api/v1/webhook-endpoints", &desk.lead).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["items"], json!([]));
}
