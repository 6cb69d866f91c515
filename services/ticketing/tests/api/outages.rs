//! Ticketing on a bad day: identity unreachable.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Desk, problem};

hotline_testkit::on_both_backends!(
    crate::helpers::Desk::spawn_with_identity_down =>
    without_identity_an_order_for_a_customer_fails_cleanly_and_others_go_on,
);

async fn without_identity_an_order_for_a_customer_fails_cleanly_and_others_go_on(desk: Desk) {
    let customer = desk.customer("罗斌", "13800138050").await;
    let refused = problem(
        desk.post(
            "/api/v1/work-orders",
            &desk.agent,
            &json!({"type": "fault_repair", "category_id": desk.no_signal, "customer_id": customer,
                    "region_id": desk.chaoyang, "description": "No signal"}),
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_ne!(refused["code"], "internal", "{refused}");
    let listed = desk
        .ok_json(
            desk.get("/api/v1/work-orders", &desk.lead).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["items"], json!([]), "nothing half-made");
    // A caller named by phone needs no identity; the order's life goes on.
    let opened = desk
        .ok_json(
            desk.post(
                "/api/v1/work-orders",
                &desk.agent,
                &json!({"type": "fault_repair", "category_id": desk.no_signal, "contact_phone": "13800138051",
                        "region_id": desk.chaoyang, "description": "No signal"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    let id = opened["id"].as_str().unwrap();
    desk.step(
        id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    assert_eq!(
        desk.step(id, "accept", &desk.agent, json!({})).await["status"],
        "accepted"
    );
}
