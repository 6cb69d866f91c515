//! SLA clocks on the manual clock: deadlines from the policy of the order's
//! type and priority, in business time when the policy has hours, paused
//! while the order waits for the customer, compliance decided at acceptance
//! and resolution; and repeat repairs linked to the order they repeat.

use chrono::Duration;
use hotline_proto::events::v1::WorkOrderChanged;
use hotline_testkit::{Recording, Sse};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Desk, problem};

/// The (kind, clock, level) of every escalation recorded, once `count` are.
async fn escalations(recording: &Recording, count: usize) -> Vec<(String, String, i32)> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while recording.recorder.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {:?} of {count} escalations",
            recording.recorder.kinds()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    recording
        .recorder
        .events()
        .iter()
        .map(|event| {
            let change = WorkOrderChanged::decode(event.data.as_slice()).unwrap();
            (event.kind.clone(), change.clock, change.escalation_level)
        })
        .collect()
}

async fn warnings_and_breaches_fire_once_each_and_are_published(desk: Desk) {
    let recording = desk.record(&[
        "ticketing.ticket.escalated",
        "ticketing.ticket.sla_breached",
    ]);
    let mut supervisors = Sse::open(&desk.app, "/api/v1/escalations/stream", &desk.lead).await;
    problem(
        desk.get("/api/v1/escalations/stream", &desk.agent).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let customer = desk.customer("邓超", "13800138044").await;
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap();
    // 3 h 15 min of a 4 h response: the warning, once however long it waits.
    desk.clock.advance(Duration::minutes(195));
    let pushed = supervisors.next("escalated").await;
    assert_eq!(
        (
            &pushed["clock"],
            &pushed["escalation_level"],
            &pushed["status"],
            &pushed["priority"]
        ),
        (
            &json!("response"),
            &json!(1),
            &json!("new"),
            &json!("normal")
        )
    );
    let fired = escalations(&recording, 1).await;
    assert_eq!(
        fired,
        [(
            "ticketing.ticket.escalated".to_owned(),
            "response".to_owned(),
            1
        )]
    );
    let warned = desk.read(id, &desk.agent).await;
    assert_eq!(warned["sla"]["escalation_level"], 1);
    assert!(
        warned["sla"].get("response_met").is_none(),
        "warned, not breached"
    );
    // Past the deadline: the breach is recorded at once, not at acceptance.
    desk.clock.advance(Duration::hours(1));
    let fired = escalations(&recording, 2).await;
    assert_eq!(
        fired[1],
        (
            "ticketing.ticket.sla_breached".to_owned(),
            "response".to_owned(),
            2
        )
    );
    assert_eq!(
        supervisors.next("sla_breached").await["escalation_level"],
        2
    );
    assert_eq!(
        desk.read(id, &desk.agent).await["sla"]["response_met"],
        false
    );
    desk.step(
        id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    let accepted = desk.step(id, "accept", &desk.agent, json!({})).await;
    assert_eq!(accepted["sla"]["response_met"], false, "a breach stays one");
    // Waiting for the customer stops the resolution clock: two days pass, nothing fires.
    desk.step(
        id,
        "hold",
        &desk.agent,
        json!({"reason": "waiting_customer"}),
    )
    .await;
    desk.clock.advance(Duration::hours(48));
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        recording.recorder.len(),
        2,
        "{:?}",
        recording.recorder.kinds()
    );
    // Resumed with 43 h 45 min left: its warning at 38 h 24 min of 48, then the breach.
    desk.step(id, "resume", &desk.agent, json!({})).await;
    desk.clock.advance(Duration::hours(35));
    let fired = escalations(&recording, 3).await;
    assert_eq!(
        fired[2],
        (
            "ticketing.ticket.escalated".to_owned(),
            "resolution".to_owned(),
            3
        )
    );
    desk.clock.advance(Duration::hours(9));
    let fired = escalations(&recording, 4).await;
    assert_eq!(
        fired[3],
        (
            "ticketing.ticket.sla_breached".to_owned(),
            "resolution".to_owned(),
            4
        )
    );
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        recording.recorder.len(),
        4,
        "each fired once: {:?}",
        recording.recorder.kinds()
    );
    let resolved = desk
        .step(
            id,
            "resolve",
            &desk.agent,
            json!({"resolution_code": "fixed"}),
        )
        .await;
    assert_eq!(resolved["sla"]["resolution_met"], false);
    let history = desk.history(id, &desk.agent).await;
    let system: Vec<&str> = history
        .iter()
        .filter(|entry| entry["actor_kind"] == "system")
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        system,
        ["escalated", "sla_breached", "escalated", "sla_breached"]
    );
    // A resolved order's deadlines are over: nothing more fires.
    desk.clock.advance(Duration::days(10));
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(recording.recorder.len(), 4);
}

crate::on_both_backends!(
    warnings_and_breaches_fire_once_each_and_are_published,
    a_resolved_order_closes_itself_three_days_later,
    a_deadline_set_before_a_restart_fires_after_it_once,
    deadlines_follow_the_policy_pause_for_the_customer_and_compliance_is_recorded,
    a_policy_with_business_hours_counts_only_open_time,
    a_repeat_repair_links_to_the_order_it_repeats,
);

fn due(order: &Value, clock: &str) -> String {
    order["sla"][clock]
        .as_str()
        .unwrap_or_else(|| panic!("no {clock} in {order}"))
        .to_owned()
}

async fn deadlines_follow_the_policy_pause_for_the_customer_and_compliance_is_recorded(desk: Desk) {
    let customer = desk.customer("何平", "13800138040").await;
    // Tuesday 10:00 in Shanghai: a normal fault, 4 h to respond and 48 h to resolve.
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(due(&order, "response_due_at"), "2026-12-01T06:00:00Z");
    assert_eq!(due(&order, "resolution_due_at"), "2026-12-03T02:00:00Z");
    assert_eq!(order["sla"]["paused"], false);

    desk.clock.advance(Duration::hours(3));
    desk.step(
        id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    let accepted = desk.step(id, "accept", &desk.agent, json!({})).await;
    assert_eq!(accepted["sla"]["response_met"], true);
    assert_eq!(accepted["sla"]["responded_at"], "2026-12-01T05:00:00Z");
    // Parts don't stop the clock under this policy; the customer does.
    let parts = desk
        .step(id, "hold", &desk.agent, json!({"reason": "waiting_parts"}))
        .await;
    assert_eq!(parts["sla"]["paused"], false);
    desk.step(id, "resume", &desk.agent, json!({})).await;
    let waiting = desk
        .step(
            id,
            "hold",
            &desk.agent,
            json!({"reason": "waiting_customer"}),
        )
        .await;
    assert_eq!(waiting["sla"]["paused"], true);
    assert_eq!(waiting["sla"]["resolution_used_seconds"], 3 * 3600);

    // Four days away; back with 45 hours left.
    desk.clock.advance(Duration::hours(100));
    let resumed = desk.step(id, "resume", &desk.agent, json!({})).await;
    assert_eq!(due(&resumed, "resolution_due_at"), "2026-12-07T06:00:00Z");
    desk.clock.advance(Duration::hours(10));
    let resolved = desk
        .step(
            id,
            "resolve",
            &desk.agent,
            json!({"resolution_code": "fixed"}),
        )
        .await;
    assert_eq!(resolved["sla"]["resolution_met"], true);
    assert_eq!(resolved["sla"]["resolution_used_seconds"], 13 * 3600);
    assert!(resolved["sla"].get("response_due_at").is_some());

    // A major fault: 2 h to respond; accepted after 3 is late.
    let major = desk
        .ok_json(
            desk.post(
                "/api/v1/work-orders",
                &desk.agent,
                &json!({"type": "fault_repair", "priority": "major", "category_id": desk.no_signal,
                        "customer_id": customer, "region_id": desk.chaoyang, "description": "Area down"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    let major_id = major["id"].as_str().unwrap();
    desk.clock.advance(Duration::hours(3));
    desk.step(
        major_id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    let late = desk.step(major_id, "accept", &desk.agent, json!({})).await;
    assert_eq!(late["sla"]["response_met"], false);
    // A 25-hour resolution misses the 24 hours.
    desk.clock.advance(Duration::hours(22));
    let missed = desk
        .step(
            major_id,
            "resolve",
            &desk.agent,
            json!({"resolution_code": "fixed"}),
        )
        .await;
    assert_eq!(missed["sla"]["resolution_met"], false);

    // An inquiry has no policy: no deadlines.
    let inquiry = desk
        .ok_json(
            desk.post(
                "/api/v1/work-orders",
                &desk.agent,
                &json!({"type": "inquiry", "category_id": desk.broadband, "customer_id": customer,
                        "region_id": desk.chaoyang, "description": "Prices?"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    assert!(inquiry.get("sla").is_none(), "{inquiry}");
}

async fn a_policy_with_business_hours_counts_only_open_time(desk: Desk) {
    let policy = json!({
        "first_response": "1h",
        "resolution": "10h",
        "business_hours": {
            "time_zone": "Asia/Shanghai",
            "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "18:00"}],
            "closed_on": ["2026-12-02"],
        },
    });
    let set = desk
        .ok_json(
            desk.put("/api/v1/sla-policies/complaint/normal", &desk.lead, &policy)
                .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(set["resolution_seconds"], 36_000);
    assert_eq!(set["pause_on"], json!(["waiting_customer"]));
    let customer = desk.customer("马丽", "13800138041").await;
    let complaint = desk
        .ok_json(
            desk.post(
                "/api/v1/work-orders",
                &desk.agent,
                &json!({"type": "complaint", "category_id": desk.broadband, "customer_id": customer,
                        "region_id": desk.chaoyang, "description": "Rude technician"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    // Tuesday 10:00 + 1 h; and 8 h on Tuesday, Wednesday a holiday, 2 h on Thursday.
    assert_eq!(due(&complaint, "response_due_at"), "2026-12-01T03:00:00Z");
    assert_eq!(due(&complaint, "resolution_due_at"), "2026-12-03T03:00:00Z");

    // A fault raised from normal to major an hour in keeps the hour it used.
    let fault = desk.order(&customer).await;
    desk.clock.advance(Duration::hours(1));
    let raised = desk
        .ok_json(
            desk.patch(
                &format!("/api/v1/work-orders/{}", fault["id"].as_str().unwrap()),
                &desk.agent,
                &json!({"priority": "major"}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(due(&raised, "response_due_at"), "2026-12-01T04:00:00Z");
    assert_eq!(due(&raised, "resolution_due_at"), "2026-12-02T02:00:00Z");

    let listed = desk
        .ok_json(
            desk.get("/api/v1/sla-policies", &desk.agent).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        3,
        "two seeded, one set: {listed}"
    );
    for (body, pointer) in [
        (
            json!({"first_response": "0s", "resolution": "1h"}),
            "/first_response",
        ),
        (
            json!({"first_response": "1h", "resolution": "100d"}),
            "/resolution",
        ),
        (
            json!({"first_response": "1h", "resolution": "2h", "pause_on": ["resolved"]}),
            "/pause_on/0",
        ),
        (
            json!({"first_response": "1h", "resolution": "2h", "business_hours": {"weekly": [{"days": ["mon"], "from": "18:00", "to": "09:00"}]}}),
            "/business_hours/weekly/0",
        ),
        (
            json!({"first_response": "soon", "resolution": "2h"}),
            "/first_response",
        ),
    ] {
        let refused = problem(
            desk.put("/api/v1/sla-policies/complaint/major", &desk.lead, &body)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(
            refused["errors"][0]["pointer"], pointer,
            "{body}: {refused}"
        );
    }
    problem(
        desk.put("/api/v1/sla-policies/teleport/normal", &desk.lead, &policy)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        desk.put("/api/v1/sla-policies/complaint/urgent", &desk.lead, &policy)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        desk.put("/api/v1/sla-policies/complaint/major", &desk.agent, &policy)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn a_repeat_repair_links_to_the_order_it_repeats(desk: Desk) {
    let customer = desk.customer("高远", "13800138042").await;
    let other = desk.customer("高峰", "13800138043").await;
    let first = desk.order(&customer).await;
    let first_id = first["id"].as_str().unwrap();
    assert!(first.get("repeat_of").is_none());
    desk.step(
        first_id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.shop_a_assignee}),
    )
    .await;
    desk.step(first_id, "accept", &desk.shop_a, json!({})).await;
    desk.step(
        first_id,
        "resolve",
        &desk.shop_a,
        json!({"resolution_code": "fixed"}),
    )
    .await;
    desk.clock.advance(Duration::days(3));

    // The same customer, the same kind of fault (TV), within 30 days.
    let again = desk.order(&customer).await;
    assert_eq!(again["repeat_of"], first_id);
    let tv_again = desk
        .ok_json(
            desk.post(
                "/api/v1/work-orders",
                &desk.agent,
                &json!({"type": "fault_repair", "category_id": desk.tv, "customer_id": customer,
                        "region_id": desk.chaoyang, "description": "TV broken again"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(tv_again["repeat_of"], first_id);
    // Another fault, another customer: no repeat. The shop never sees the link.
    let broadband = desk
        .ok_json(
            desk.post(
                "/api/v1/work-orders",
                &desk.agent,
                &json!({"type": "fault_repair", "category_id": desk.broadband, "customer_id": customer,
                        "region_id": desk.chaoyang, "description": "No internet"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    assert!(broadband.get("repeat_of").is_none());
    assert!(desk.order(&other).await.get("repeat_of").is_none());
    assert!(
        desk.read(first_id, &desk.shop_a)
            .await
            .get("repeat_of")
            .is_none()
    );
    // A month later it is a new fault.
    desk.clock.advance(Duration::days(28));
    assert!(desk.order(&customer).await.get("repeat_of").is_none());
}

async fn a_resolved_order_closes_itself_three_days_later(desk: Desk) {
    let recording = desk.record(&["ticketing.ticket.closed"]);
    let customer = desk.customer("宋佳", "13800138045").await;
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap();
    let resolve = async || {
        desk.step(
            id,
            "dispatch",
            &desk.agent,
            json!({"assignee_id": desk.shop_a_assignee}),
        )
        .await;
        desk.step(id, "accept", &desk.shop_a, json!({})).await;
        desk.step(
            id,
            "resolve",
            &desk.shop_a,
            json!({"resolution_code": "fixed"}),
        )
        .await;
    };
    resolve().await;
    desk.clock.advance(Duration::hours(71));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        desk.read(id, &desk.agent).await["status"],
        "resolved",
        "not yet"
    );
    desk.clock.advance(Duration::hours(2));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while desk.read(id, &desk.agent).await["status"] != "closed" {
        assert!(tokio::time::Instant::now() < deadline, "never closed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let history = desk.history(id, &desk.agent).await;
    let last = history.last().unwrap();
    assert_eq!(
        (last["action"].as_str(), last["actor_kind"].as_str()),
        (Some("close"), Some("system"))
    );
    assert_eq!(last["changes"]["reason"], "auto_close");
    let closed = escalations(&recording, 1).await;
    assert_eq!(closed[0].0, "ticketing.ticket.closed");

    // Reopened and resolved again: three days from the second resolution,
    // and the first closing's timer is long gone.
    desk.step(id, "reopen", &desk.agent, json!({"reason": "broken again"}))
        .await;
    desk.clock.advance(Duration::hours(48));
    resolve().await;
    desk.clock.advance(Duration::hours(48));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(desk.read(id, &desk.agent).await["status"], "resolved");
    desk.clock.advance(Duration::hours(25));
    escalations(&recording, 2).await;
    assert_eq!(desk.read(id, &desk.agent).await["status"], "closed");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(recording.recorder.len(), 2, "closed once each time");
}

async fn a_deadline_set_before_a_restart_fires_after_it_once(desk: Desk) {
    let customer = desk.customer("韩梅", "13800138046").await;
    let order = desk.order(&customer).await;
    let desk = desk.restart().await;
    let recording = desk.record(&[
        "ticketing.ticket.escalated",
        "ticketing.ticket.sla_breached",
    ]);
    desk.clock.advance(Duration::minutes(195));
    let fired = escalations(&recording, 1).await;
    assert_eq!(
        fired,
        [(
            "ticketing.ticket.escalated".to_owned(),
            "response".to_owned(),
            1
        )]
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(recording.recorder.len(), 1, "once");
    let read = desk.read(order["id"].as_str().unwrap(), &desk.agent).await;
    assert_eq!(read["sla"]["escalation_level"], 1);
}
