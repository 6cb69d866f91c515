//! A partner repair shop reaches its own orders with its own token — and no
//! other shop's, in any operation, list or filter.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Desk, problem, until};

crate::on_both_backends!(
    a_shop_works_its_own_orders_and_sees_no_internals,
    another_shops_orders_are_404_in_every_operation,
    every_documented_operation_on_another_shops_objects_is_refused,
);

async fn a_shop_works_its_own_orders_and_sees_no_internals(desk: Desk) {
    let customer = desk.customer("吴昊", "13800138010").await;
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap();
    desk.ok_json(
        desk.post(
            &format!("/api/v1/work-orders/{id}/notes"),
            &desk.agent,
            &json!({"body": "VIP, call before 18:00", "internal": true}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    desk.ok_json(
        desk.post(
            &format!("/api/v1/work-orders/{id}/notes"),
            &desk.agent,
            &json!({"body": "Gate code 1234"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    // Not yet dispatched to the shop: not its order.
    problem(
        desk.get(&format!("/api/v1/work-orders/{id}"), &desk.shop_a)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    desk.step(
        id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.shop_a_assignee}),
    )
    .await;

    let seen = desk.read(id, &desk.shop_a).await;
    assert_eq!(seen["status"], "dispatched");
    assert_eq!(
        seen["customer"]["name"], "吴昊",
        "the shop needs the contact to do the job"
    );
    assert_eq!(seen["customer"]["phone"], "+8613800138010");
    assert!(
        seen["customer"].get("id").is_none(),
        "no customer id for partners"
    );
    assert!(seen.get("created_by").is_none());
    assert_eq!(seen["allowed_actions"], json!(["accept", "decline"]));
    let listed = desk
        .ok_json(
            desk.get("/api/v1/work-orders", &desk.shop_a).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    let notes = desk
        .ok_json(
            desk.get(&format!("/api/v1/work-orders/{id}/notes"), &desk.shop_a)
                .await,
            StatusCode::OK,
        )
        .await;
    let bodies: Vec<&str> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["Gate code 1234"], "internal comments stay inside");
    problem(
        desk.post(
            &format!("/api/v1/work-orders/{id}/notes"),
            &desk.shop_a,
            &json!({"body": "x", "internal": true}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // The shop may not take the center's steps.
    for (action, body) in [
        ("dispatch", json!({"assignee_id": desk.shop_a_assignee})),
        ("cancel", json!({"reason": "x"})),
    ] {
        problem(
            desk.post(
                &format!("/api/v1/work-orders/{id}/{action}"),
                &desk.shop_a,
                &body,
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    problem(
        desk.patch(
            &format!("/api/v1/work-orders/{id}"),
            &desk.shop_a,
            &json!({"priority": "low"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    desk.step(id, "accept", &desk.shop_a, json!({})).await;
    desk.step(id, "start", &desk.shop_a, json!({})).await;
    desk.ok_json(
        desk.post(
            &format!("/api/v1/work-orders/{id}/notes"),
            &desk.shop_a,
            &json!({"body": "Replaced the splitter"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let resolved = desk
        .step(
            id,
            "resolve",
            &desk.shop_a,
            json!({"resolution_code": "fixed"}),
        )
        .await;
    assert_eq!(resolved["status"], "resolved");
    problem(
        desk.post(
            &format!("/api/v1/work-orders/{id}/close"),
            &desk.shop_a,
            &json!({}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    desk.step(id, "close", &desk.agent, json!({})).await;

    // Once closed, the shop still sees its order, but not the customer's contact.
    let closed = desk.read(id, &desk.shop_a).await;
    assert_eq!(closed["customer"]["phone"], "+86*******8010");
    assert_eq!(closed["customer"]["name"], "吴*");
    assert!(closed["customer"].get("address").is_none());
    let history = desk.history(id, &desk.shop_a).await;
    assert!(
        history
            .iter()
            .all(|entry| entry.get("actor").is_none() && entry.get("changes").is_none())
    );
    assert!(history.iter().all(|entry| entry["visibility"] == "shared"));
    let kinds: Vec<&str> = history
        .iter()
        .map(|e| e["actor_kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"partner") && kinds.contains(&"staff"));
    let staff_history = desk.history(id, &desk.agent).await;
    assert!(
        staff_history
            .iter()
            .any(|entry| entry["action"] == "commented" && entry["visibility"] == "internal")
    );
    assert!(staff_history.len() > history.len());
}

/// Every work-order operation a partner may call, with shop B's token on
/// shop A's order: each is a 404, and the order is as it was.
async fn another_shops_orders_are_404_in_every_operation(desk: Desk) {
    let customer = desk.customer("郑和", "13800138011").await;
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let number = order["number"].as_str().unwrap().to_owned();
    desk.step(
        &id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.shop_a_assignee}),
    )
    .await;
    let before = desk.read(&id, &desk.agent).await;

    for reference in [id.clone(), number.clone()] {
        problem(
            desk.get(&format!("/api/v1/work-orders/{reference}"), &desk.shop_b)
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        problem(
            desk.get(
                &format!("/api/v1/work-orders/{reference}/notes"),
                &desk.shop_b,
            )
            .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        problem(
            desk.get(
                &format!("/api/v1/work-orders/{reference}/history"),
                &desk.shop_b,
            )
            .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        for (action, body) in [
            ("accept", json!({})),
            ("decline", json!({"reason": "not ours"})),
            ("start", json!({})),
            ("hold", json!({"reason": "waiting_parts"})),
            ("resume", json!({})),
            ("resolve", json!({"resolution_code": "fixed"})),
            ("notes", json!({"body": "hello"})),
        ] {
            let refused = problem(
                desk.post(
                    &format!("/api/v1/work-orders/{reference}/{action}"),
                    &desk.shop_b,
                    &body,
                )
                .await,
                StatusCode::NOT_FOUND,
            )
            .await;
            assert_eq!(refused["code"], "work_order_not_found", "{action}");
        }
    }
    for query in [
        String::new(),
        "?status=dispatched".to_owned(),
        format!("?region_id={}", desk.chaoyang),
        format!("?assignee_id={}", desk.shop_a_assignee),
        format!("?customer_id={customer}"),
    ] {
        let listed: Value = desk
            .ok_json(
                desk.get(&format!("/api/v1/work-orders{query}"), &desk.shop_b)
                    .await,
                StatusCode::OK,
            )
            .await;
        assert_eq!(listed["items"], json!([]), "{query}");
    }
    assert_eq!(desk.read(&id, &desk.agent).await, before, "nothing changed");
    assert_eq!(desk.history(&id, &desk.agent).await.len(), 2);

    // Shop A loses the order when it is dispatched elsewhere.
    desk.step(
        &id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.shop_b_assignee}),
    )
    .await;
    problem(
        desk.get(&format!("/api/v1/work-orders/{id}"), &desk.shop_a)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(desk.read(&id, &desk.shop_b).await["partner_id"], "shop-b");
    // A partner token reaches no configuration but the resolution codes.
    problem(
        desk.get("/api/v1/assignees", &desk.shop_b).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    desk.ok_json(
        desk.get("/api/v1/resolution-codes", &desk.shop_b).await,
        StatusCode::OK,
    )
    .await;
}

/// What another shop must not change: the order, its history's length, the
/// endpoint's settings (its version).
async fn state(desk: &Desk, order: &str, endpoint: &str) -> (Value, usize, Value) {
    let settings = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/webhook-endpoints/{endpoint}"),
                &desk.shop_a,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    (
        desk.read(order, &desk.lead).await,
        desk.history(order, &desk.lead).await.len(),
        settings["version"].clone(),
    )
}

/// What an operation needs in its body to get as far as the ownership check.
fn body_for(method: &str, path: &str, desk: &Desk) -> Value {
    match (method, path.rsplit('/').next().unwrap_or_default()) {
        ("post", "dispatch") => json!({"assignee_id": desk.shop_b_assignee}),
        ("post", "decline" | "reopen" | "cancel") => json!({"reason": "not ours"}),
        ("post", "hold") => json!({"reason": "waiting_parts"}),
        ("post", "resolve") => json!({"resolution_code": "fixed"}),
        ("post", "notes") => json!({"body": "hello"}),
        ("post", "merge") => json!({"merged_id": uuid::Uuid::now_v7()}),
        ("put", "{priority}") => json!({"first_response": "4h", "resolution": "48h"}),
        ("patch", "{id}") if path.contains("webhook-endpoints") => json!({"enabled": false}),
        ("patch", "{id}") if path.contains("work-orders") => json!({"description": "changed"}),
        ("patch", "{id}") => json!({"name": "changed"}),
        _ => json!({}),
    }
}

/// Every operation of the served OpenAPI document that names an object in its
/// path, called with shop B's token on shop A's order, endpoint and delivery
/// (other objects: ids shop B has no business with): 404, or 403 where
/// partners may not call it at all, and nothing changes. An endpoint added
/// tomorrow is swept the day it appears; one that needs a body to reach the
/// ownership check gets it from `body_for`, and this fails until it does.
async fn every_documented_operation_on_another_shops_objects_is_refused(desk: Desk) {
    let customer = desk.customer("钱女士", "13800138012").await;
    let endpoint = desk
        .ok_json(
            desk.post(
                "/api/v1/webhook-endpoints",
                &desk.shop_a,
                &json!({"url": "http://127.0.0.1:9/hotline"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let order = desk.order(&customer).await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    desk.step(
        &order_id,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": desk.shop_a_assignee}),
    )
    .await;
    let deliveries_path = format!("/api/v1/webhook-endpoints/{endpoint_id}/deliveries");
    until("the delivery queued", async || {
        let page = desk
            .ok_json(
                desk.get(&deliveries_path, &desk.shop_a).await,
                StatusCode::OK,
            )
            .await;
        !page["items"].as_array().unwrap().is_empty()
    })
    .await;
    let deliveries = desk
        .ok_json(
            desk.get(&deliveries_path, &desk.shop_a).await,
            StatusCode::OK,
        )
        .await;
    let delivery_id = deliveries["items"][0]["id"].as_str().unwrap().to_owned();
    let before = state(&desk, &order_id, &endpoint_id).await;

    let spec: Value = desk
        .app
        .client
        .get(format!("{}/openapi.json", desk.app.http_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut swept = 0;
    let mut escaped = Vec::new();
    for (template, item) in spec["paths"].as_object().unwrap() {
        if !template.contains('{') {
            continue;
        }
        let path = template
            .replace("/work-orders/{id}", &format!("/work-orders/{order_id}"))
            .replace(
                "/webhook-endpoints/{id}",
                &format!("/webhook-endpoints/{endpoint_id}"),
            )
            .replace(
                "/webhook-deliveries/{id}",
                &format!("/webhook-deliveries/{delivery_id}"),
            )
            .replace("{type}", "fault_repair")
            .replace("{priority}", "normal");
        let path = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    uuid::Uuid::now_v7().to_string()
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let verb = match method.as_str() {
                "get" => reqwest::Method::GET,
                "post" => reqwest::Method::POST,
                "put" => reqwest::Method::PUT,
                "patch" => reqwest::Method::PATCH,
                "delete" => reqwest::Method::DELETE,
                _ => continue,
            };
            let body = (verb != reqwest::Method::GET && verb != reqwest::Method::DELETE)
                .then(|| body_for(method, template, &desk));
            let status = desk
                .app
                .call(verb, &path, &desk.shop_b, body.as_ref())
                .await
                .status();
            swept += 1;
            if status != StatusCode::NOT_FOUND && status != StatusCode::FORBIDDEN {
                escaped.push(format!("{method} {template}: {status}"));
            }
        }
    }
    assert!(escaped.is_empty(), "not refused: {escaped:#?}");
    assert!(swept >= 25, "only {swept} operations swept");

    // Nothing changed: the order, its history, the endpoint's settings (its
    // delivery to a closed port fails meanwhile, which is no change of them).
    let after = state(&desk, &order_id, &endpoint_id).await;
    assert_eq!(before, after);
}
