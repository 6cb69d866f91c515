//! Ticketing on a bad day: identity unreachable, the database cut mid-dispatch.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use hotline_testkit::{Infra, Link, TcpProxy, eventually};
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

/// PostgreSQL cut while orders are being opened and dispatched by a rule:
/// each order is there whole (dispatched, its one offer, its claim counted)
/// or not at all, and orders go through again once the database returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_cut_mid_dispatch_leaves_no_half_made_order_and_no_stray_claim() {
    let Some(mut infra) = Infra::real().await else {
        return;
    };
    let (proxy, url) = TcpProxy::in_front_of(&infra.database_url, 5432, Link::Up).await;
    infra.database_url = url;
    let desk = Desk::spawn(infra).await;
    let technician = desk
        .assignee(
            json!({"kind": "technician", "name": "李师傅", "phone": "13900139001",
                         "capacity": 100, "region_ids": [desk.beijing]}),
        )
        .await;
    desk.ok_json(
        desk.post(
            "/api/v1/dispatch-rules",
            &desk.lead,
            &json!({"name": "Beijing", "region_id": desk.beijing, "strategy": "least_loaded"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let open = || async {
        desk.post(
            "/api/v1/work-orders",
            &desk.agent,
            &json!({"type": "fault_repair", "category_id": desk.no_signal, "contact_phone": "13800138052",
                    "region_id": desk.chaoyang, "description": "No signal"}),
        )
        .await
        .status()
    };
    let answered = AtomicUsize::new(0);
    let load = futures::stream::iter(0..40)
        .map(|_| async {
            let status = open().await;
            answered.fetch_add(1, Ordering::SeqCst);
            status
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>();
    let outage = async {
        // Cut with orders in flight, back a moment later.
        while answered.load(Ordering::SeqCst) < 8 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        proxy.set(Link::Down);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        proxy.set(Link::Up);
    };
    let (statuses, ()) = tokio::join!(load, outage);
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    eprintln!(
        "{created} of {} orders created, the others refused while the database was cut",
        statuses.len()
    );
    assert!(created < statuses.len(), "the cut caught orders in flight");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || s.is_server_error()),
        "{statuses:?}"
    );
    let back = eventually(std::time::Duration::from_secs(30), || async {
        open().await == StatusCode::CREATED
    })
    .await;
    assert!(back, "orders go through again once the database returns");

    let orders = desk
        .ok_json(
            desk.get("/api/v1/work-orders?limit=100", &desk.lead).await,
            StatusCode::OK,
        )
        .await;
    let orders = orders["items"].as_array().unwrap();
    assert!(orders.len() > created, "every 201 kept, and the one after");
    for order in orders {
        assert_eq!(order["status"], "dispatched", "{order}");
        let id = order["id"].as_str().unwrap();
        let offers = desk
            .ok_json(
                desk.get(
                    &format!("/api/v1/work-orders/{id}/dispatch-attempts"),
                    &desk.lead,
                )
                .await,
                StatusCode::OK,
            )
            .await;
        assert_eq!(offers.as_array().unwrap().len(), 1, "{offers}");
    }
    let assignee = desk
        .ok_json(
            desk.get(&format!("/api/v1/assignees/{technician}"), &desk.lead)
                .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        assignee["open_orders"].as_u64(),
        Some(orders.len() as u64),
        "one claim per order that exists"
    );
}
