//! What ticketing publishes — every step of an order, and the customer's
//! timeline in identity — and what it does with identity's erasures and merges.

use hotline_proto::{events::v1::WorkOrderChanged, ticketing::v1 as wire};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Desk, until};

crate::on_both_backends!(
    every_step_is_published_and_the_milestones_reach_the_customers_timeline,
    an_erased_customer_leaves_no_personal_data_on_their_orders,
    a_merged_customers_orders_move_to_the_survivor,
);

async fn every_step_is_published_and_the_milestones_reach_the_customers_timeline(desk: Desk) {
    let recording = desk.record(&["ticketing.#"]);
    let customer = desk.customer("冯雪", "13800138020").await;
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap();
    let number = order["number"].as_str().unwrap();
    desk.step(
        id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    desk.step(
        id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.shop_a_assignee}),
    )
    .await;
    desk.step(id, "accept", &desk.shop_a, json!({})).await;
    desk.step(id, "start", &desk.shop_a, json!({})).await;
    desk.step(
        id,
        "resolve",
        &desk.shop_a,
        json!({"resolution_code": "fixed"}),
    )
    .await;
    desk.step(id, "close", &desk.agent, json!({})).await;

    let expected = [
        "ticketing.ticket.created",
        "ticketing.ticket.dispatched",
        "ticketing.ticket.withdrawn",
        "ticketing.ticket.dispatched",
        "ticketing.ticket.accepted",
        "ticketing.ticket.status_changed",
        "ticketing.ticket.resolved",
        "ticketing.ticket.closed",
    ];
    let recorder = recording.recorder.clone();
    until("every step published", async || {
        recorder
            .kinds()
            .iter()
            .filter(|k| k.starts_with("ticketing.ticket."))
            .count()
            >= expected.len()
    })
    .await;
    let events = recording.recorder.events();
    let changes: Vec<(String, WorkOrderChanged)> = events
        .iter()
        .filter(|e| e.kind.starts_with("ticketing.ticket."))
        .map(|e| {
            (
                e.kind.clone(),
                WorkOrderChanged::decode(e.data.as_slice()).unwrap(),
            )
        })
        .collect();
    let kinds: Vec<&str> = changes.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, expected);
    assert!(
        changes
            .iter()
            .all(|(_, c)| c.work_order_id == id && c.number == number)
    );
    let (_, withdrawn) = &changes[2];
    assert_eq!(
        withdrawn.assignee_id, desk.technician,
        "the withdrawal names whom it left"
    );
    let (_, to_shop) = &changes[3];
    assert_eq!(to_shop.assignee_kind(), wire::AssigneeKind::Shop);
    assert_eq!(to_shop.partner_id, "shop-a");
    assert_eq!(
        to_shop.previous_status,
        wire::WorkOrderStatus::Dispatched as i32
    );
    let (_, resolved) = &changes[6];
    assert_eq!(resolved.status, wire::WorkOrderStatus::Resolved as i32);
    assert_eq!(resolved.resolution_code, "fixed");
    assert_eq!(resolved.category_path, "/tv/itv/no_signal/");
    assert_eq!(resolved.customer_id, customer);
    assert_eq!(
        resolved.resolution_met,
        Some(true),
        "resolved at once, within 48 h"
    );
    assert_eq!(resolved.response_met, Some(true));
    assert!(resolved.resolution_due_at.is_some());
    assert_eq!(changes[0].1.response_met, None, "not decided at creation");
    let versions: Vec<i64> = changes.iter().map(|(_, c)| c.version).collect();
    assert_eq!(versions, [1, 2, 2, 3, 4, 5, 6, 7]);
    let encoded = format!("{events:?}");
    assert!(
        !encoded.contains("冯雪") && !encoded.contains("13800138020"),
        "no personal data in events"
    );

    // Identity's timeline shows the milestones, newest first.
    until("the timeline filled", async || {
        let timeline = desk
            .ok_json(
                desk.get(
                    &format!("/api/v1/customers/{customer}/timeline"),
                    &desk.agent,
                )
                .await,
                StatusCode::OK,
            )
            .await;
        timeline["items"].as_array().unwrap().len() >= 6
    })
    .await;
    let timeline = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/customers/{customer}/timeline"),
                &desk.agent,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    let entries = timeline["items"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e["kind"] == "ticket" && e["reference"] == number)
    );
    let summaries: Vec<&str> = entries
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(summaries[0].ends_with("closed"), "{summaries:?}");
    assert!(
        summaries.iter().any(|s| s.ends_with("resolved: fixed")),
        "{summaries:?}"
    );
    assert_eq!(
        summaries.len(),
        6,
        "opened, dispatched twice, accepted, resolved, closed: {summaries:?}"
    );
}

async fn an_erased_customer_leaves_no_personal_data_on_their_orders(desk: Desk) {
    let customer = desk.customer("陈静", "13800138021").await;
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap();
    let erased = desk
        .app
        .client
        .delete(desk.app.url(&format!("/api/v1/customers/{customer}")))
        .bearer_auth(&desk.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::OK);
    until("the snapshot scrubbed", async || {
        desk.read(id, &desk.agent).await["customer"]
            .get("name")
            .is_none()
    })
    .await;
    let scrubbed = desk.read(id, &desk.agent).await;
    assert_eq!(scrubbed["customer"], json!({"id": customer}));
    assert!(scrubbed.get("service_address").is_none());
    assert_eq!(
        scrubbed["region_path"], "/bj/bj_cy/",
        "the region stays for the statistics"
    );
}

async fn a_merged_customers_orders_move_to_the_survivor(desk: Desk) {
    let survivor = desk.customer("林峰", "13800138022").await;
    let duplicate = desk.customer("林峰", "13800138023").await;
    let order = desk.order(&duplicate).await;
    let id = order["id"].as_str().unwrap();
    let merged = desk
        .post(
            &format!("/api/v1/customers/{survivor}/merge"),
            &desk.lead,
            &json!({"merged_id": duplicate}),
        )
        .await;
    assert_eq!(merged.status(), StatusCode::OK);
    until("the order moved", async || {
        desk.read(id, &desk.agent).await["customer"]["id"] == Value::String(survivor.clone())
    })
    .await;
    let listed = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/work-orders?customer_id={survivor}"),
                &desk.agent,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["items"][0]["id"], id);
}
