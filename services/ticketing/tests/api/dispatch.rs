//! Automatic dispatch through the API: rules by region, type and category,
//! least-loaded and round-robin, capacity and working hours, a decline or an
//! unanswered offer moving the order on, supervisors told when nobody is
//! left, and capacity holding under concurrent orders.

use chrono::Duration;
use hotline_kit::clock::Clock;
use hotline_proto::{events::v1::WorkOrderChanged, ticketing::v1 as wire};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Desk, problem, texts, until};

crate::on_both_backends!(
    rules_send_new_orders_to_the_least_loaded_technician_covering_their_region,
    a_decline_or_an_unanswered_offer_moves_the_order_to_the_next_candidate,
    capacity_and_working_hours_decide_who_may_take_an_order,
    rules_are_set_by_supervisors_and_checked,
    concurrent_orders_never_overfill_an_assignee,
    a_breached_response_takes_the_order_to_the_next_candidate,
    an_offer_made_before_a_restart_times_out_after_it_once,
);

/// A technician covering `regions`: their id.
async fn technician(
    desk: &Desk,
    name: &str,
    phone: &str,
    regions: &[&str],
    extra: Value,
) -> String {
    let mut spec =
        json!({"kind": "technician", "name": name, "phone": phone, "region_ids": regions});
    for (key, value) in extra.as_object().unwrap() {
        spec[key] = value.clone();
    }
    desk.assignee(spec).await
}

async fn rule(desk: &Desk, spec: Value) -> Value {
    desk.ok_json(
        desk.post("/api/v1/dispatch-rules", &desk.lead, &spec).await,
        StatusCode::CREATED,
    )
    .await
}

/// An order in `region` of `category`, as an agent opens it.
async fn order_in(desk: &Desk, region: &str, category: &str) -> Value {
    desk.ok_json(
        desk.post(
            "/api/v1/work-orders",
            &desk.agent,
            &json!({
                "type": "fault_repair",
                "category_id": category,
                "contact_phone": "13800138000",
                "region_id": region,
                "description": "无信号",
            }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
}

async fn open_orders(desk: &Desk, assignee: &str) -> i64 {
    let view = desk
        .ok_json(
            desk.get(&format!("/api/v1/assignees/{assignee}"), &desk.lead)
                .await,
            StatusCode::OK,
        )
        .await;
    view["open_orders"].as_i64().unwrap()
}

async fn attempts(desk: &Desk, id: &str) -> Vec<Value> {
    desk.ok_json(
        desk.get(
            &format!("/api/v1/work-orders/{id}/dispatch-attempts"),
            &desk.lead,
        )
        .await,
        StatusCode::OK,
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

fn assignee_of(order: &Value) -> &str {
    order["assignee_id"].as_str().unwrap_or("nobody")
}

async fn rules_send_new_orders_to_the_least_loaded_technician_covering_their_region(desk: Desk) {
    let recording = desk.record(&["ticketing.ticket.dispatched"]);
    let haidian = desk
        .node(
            "/api/v1/regions",
            json!({"parent_id": desk.beijing, "code": "bj_hd", "name": "海淀区"}),
        )
        .await;
    let (chaoyang, beijing) = (desk.chaoyang.clone(), desk.beijing.clone());
    let local = technician(
        &desk,
        "李师傅",
        "13900139001",
        &[&chaoyang],
        json!({"capacity": 2}),
    )
    .await;
    let citywide = technician(
        &desk,
        "赵师傅",
        "13900139002",
        &[&beijing],
        json!({"capacity": 4}),
    )
    .await;
    let west = technician(&desk, "钱师傅", "13900139003", &[&haidian], json!({})).await;
    let city = rule(
        &desk,
        json!({"name": "Beijing", "region_id": beijing, "strategy": "least_loaded"}),
    )
    .await;
    assert_eq!(city["accept_timeout_seconds"], 1800);

    // Ties go to the one who has waited longest; then the lower share of capacity.
    let mut sent = Vec::new();
    for _ in 0..5 {
        let order = order_in(&desk, &chaoyang, &desk.no_signal).await;
        assert_eq!(order["status"], "dispatched", "{order}");
        assert!(order["offer_expires_at"].is_string());
        sent.push(assignee_of(&order).to_owned());
    }
    assert_eq!(
        sent,
        [&local, &citywide, &citywide, &local, &citywide].map(String::as_str)
    );
    assert_eq!(open_orders(&desk, &local).await, 2);
    assert_eq!(open_orders(&desk, &citywide).await, 3);
    assert_eq!(
        open_orders(&desk, &west).await,
        0,
        "Haidian's never covers Chaoyang"
    );

    // A deeper, narrower rule wins for its orders, with its own candidates.
    let broadband = rule(
        &desk,
        json!({
            "name": "Chaoyang broadband", "region_id": chaoyang, "category_id": desk.broadband,
            "type": "fault_repair", "strategy": "round_robin", "candidates": [west],
            "accept_timeout": "10m",
        }),
    )
    .await;
    let order = order_in(&desk, &chaoyang, &desk.broadband).await;
    assert_eq!(assignee_of(&order), west);
    let id = order["id"].as_str().unwrap();
    let offered = attempts(&desk, id).await;
    assert_eq!(offered.len(), 1);
    assert_eq!(
        (
            &offered[0]["outcome"],
            &offered[0]["rule_id"],
            &offered[0]["dispatched_by"],
            &offered[0]["round"]
        ),
        (
            &json!("pending"),
            &broadband["id"],
            &json!("ticketing"),
            &json!(1)
        )
    );
    let expires: chrono::DateTime<chrono::Utc> =
        order["offer_expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires - desk.clock.now(), Duration::minutes(10));
    let history = desk.history(id, &desk.lead).await;
    let dispatched = history.iter().find(|h| h["action"] == "dispatch").unwrap();
    assert_eq!(dispatched["actor"], "ticketing");
    assert_eq!(dispatched["changes"]["rule_id"], broadband["id"]);

    // Outside every rule's region nothing happens on its own.
    let shanghai = desk
        .node("/api/v1/regions", json!({"code": "sh", "name": "上海"}))
        .await;
    let elsewhere = order_in(&desk, &shanghai, &desk.no_signal).await;
    assert_eq!(elsewhere["status"], "new");
    let nobody = problem(
        desk.post(
            &format!(
                "/api/v1/work-orders/{}/dispatch",
                elsewhere["id"].as_str().unwrap()
            ),
            &desk.agent,
            &json!({}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(nobody["code"], "no_dispatch_rule");

    // Each dispatch was published with the assignee's kind.
    until("six dispatches published", async || {
        recording.recorder.len() >= 6
    })
    .await;
    let to_west: Vec<WorkOrderChanged> = recording
        .recorder
        .events()
        .iter()
        .map(|e| WorkOrderChanged::decode(e.data.as_slice()).unwrap())
        .filter(|change| change.assignee_id == west)
        .collect();
    assert_eq!(to_west.len(), 1);
    assert_eq!(to_west[0].assignee_kind(), wire::AssigneeKind::Technician);
    assert_eq!(to_west[0].actor, "ticketing");
}

async fn a_decline_or_an_unanswered_offer_moves_the_order_to_the_next_candidate(desk: Desk) {
    let recording = desk.record(&["ticketing.ticket.escalated", "ticketing.ticket.withdrawn"]);
    let beijing = desk.beijing.clone();
    let first = technician(&desk, "李师傅", "13900139001", &[&beijing], json!({})).await;
    let second = technician(&desk, "赵师傅", "13900139002", &[&beijing], json!({})).await;
    let third = technician(&desk, "钱师傅", "13900139003", &[&beijing], json!({})).await;
    let turns = rule(
        &desk,
        json!({"name": "Beijing in turn", "region_id": beijing, "strategy": "round_robin", "accept_timeout": "10m"}),
    )
    .await;
    let order = order_in(&desk, &desk.chaoyang, &desk.no_signal).await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(assignee_of(&order), first);

    // Declined (staff on the technician's behalf): at once to the next.
    let declined = desk
        .step(
            &id,
            "decline",
            &desk.agent,
            json!({"reason": "too far away"}),
        )
        .await;
    assert_eq!(
        (declined["status"].as_str(), assignee_of(&declined)),
        (Some("dispatched"), second.as_str())
    );
    assert_eq!(open_orders(&desk, &first).await, 0);

    // Unanswered for ten minutes: withdrawn and sent on by the timers.
    desk.clock.advance(Duration::minutes(11));
    until("the offer timed out", async || {
        assignee_of(&desk.read(&id, &desk.lead).await) == third
    })
    .await;
    assert_eq!(open_orders(&desk, &second).await, 0);
    assert_eq!(open_orders(&desk, &third).await, 1);

    // The last one lets it ring too: nobody is left in this round, so the
    // supervisors are told and the order waits, new, for them.
    desk.clock.advance(Duration::minutes(11));
    until("the last offer timed out", async || {
        desk.read(&id, &desk.lead).await["status"] == "new"
    })
    .await;
    until("the escalation", async || {
        recording
            .recorder
            .kinds()
            .iter()
            .any(|k| k == "ticketing.ticket.escalated")
    })
    .await;
    let escalated = recording
        .recorder
        .events()
        .into_iter()
        .find(|e| e.kind == "ticketing.ticket.escalated")
        .unwrap();
    let change = WorkOrderChanged::decode(escalated.data.as_slice()).unwrap();
    assert_eq!(
        (change.reason.as_str(), change.status),
        ("no_candidate", wire::WorkOrderStatus::New as i32)
    );
    let withdrawn = recording
        .recorder
        .kinds()
        .iter()
        .filter(|k| *k == "ticketing.ticket.withdrawn")
        .count();
    assert_eq!(withdrawn, 2, "both timeouts withdrew the order");
    assert_eq!(open_orders(&desk, &third).await, 0);
    let offers = attempts(&desk, &id).await;
    let summary: Vec<(&str, &str, i64)> = offers
        .iter()
        .map(|a| {
            (
                a["assignee_id"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
                a["round"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (first.as_str(), "declined", 1),
            (second.as_str(), "timed_out", 1),
            (third.as_str(), "timed_out", 1)
        ]
    );
    assert_eq!(offers[0]["reason"], "too far away");
    assert!(offers.iter().all(|a| a["rule_id"] == turns["id"]));
    let actions: Vec<String> = desk
        .history(&id, &desk.lead)
        .await
        .iter()
        .map(|h| h["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "created",
            "dispatch",
            "decline",
            "dispatch",
            "offer_timed_out",
            "dispatch",
            "offer_timed_out",
            "undispatched"
        ]
    );

    // A supervisor sends it to the rules again: a new round, from the top.
    let again = desk.step(&id, "dispatch", &desk.lead, json!({})).await;
    assert_eq!(assignee_of(&again), first);
    let accepted = desk.step(&id, "accept", &desk.agent, json!({})).await;
    assert_eq!(accepted["status"], "accepted");
    assert!(accepted.get("offer_expires_at").is_none());
    let last = attempts(&desk, &id).await.pop().unwrap();
    assert_eq!(
        (&last["outcome"], &last["round"]),
        (&json!("accepted"), &json!(2))
    );
    // Accepted orders don't time out.
    desk.clock.advance(Duration::minutes(30));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(desk.read(&id, &desk.lead).await["status"], "accepted");
}

async fn capacity_and_working_hours_decide_who_may_take_an_order(desk: Desk) {
    let beijing = desk.beijing.clone();
    let day = technician(
        &desk,
        "李师傅",
        "13900139001",
        &[&beijing],
        json!({"capacity": 1}),
    )
    .await;
    // Evenings only; the desk's clock says Tuesday 10:00 in Shanghai.
    let evening = technician(
        &desk,
        "赵师傅",
        "13900139002",
        &[&beijing],
        json!({"business_hours": {"weekly": [{"days": ["tue"], "from": "18:00", "to": "23:00"}]}}),
    )
    .await;
    rule(
        &desk,
        json!({"name": "Beijing", "region_id": beijing, "strategy": "least_loaded"}),
    )
    .await;
    let first = order_in(&desk, &desk.chaoyang, &desk.no_signal).await;
    assert_eq!(assignee_of(&first), day, "the evening technician is off");
    // Taken on (else its offer would time out by evening and move on).
    desk.step(
        first["id"].as_str().unwrap(),
        "accept",
        &desk.agent,
        json!({}),
    )
    .await;
    // The day technician is full and the other closed: it waits for 18:00.
    let second = order_in(&desk, &desk.chaoyang, &desk.no_signal).await;
    let id = second["id"].as_str().unwrap().to_owned();
    assert_eq!(second["status"], "new");
    assert_eq!(second["redispatch_at"], "2026-12-01T10:00:00Z");
    // Named by hand, the full technician is refused unless a supervisor forces it.
    let full = problem(
        desk.post(
            &format!("/api/v1/work-orders/{id}/dispatch"),
            &desk.agent,
            &json!({"assignee_id": day}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(full["code"], "assignee_at_capacity");
    // Asked for, the rules say when someone opens.
    let closed = problem(
        desk.post(
            &format!("/api/v1/work-orders/{id}/dispatch"),
            &desk.agent,
            &json!({}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        (&closed["code"], &closed["opens_at"]),
        (
            &json!("no_candidate_open"),
            &json!("2026-12-01T10:00:00+00:00")
        )
    );
    desk.clock.advance(Duration::hours(8));
    until("dispatched at 18:00", async || {
        assignee_of(&desk.read(&id, &desk.lead).await) == evening
    })
    .await;
    let history = desk.history(&id, &desk.lead).await;
    assert!(history.iter().any(|h| h["action"] == "dispatch_deferred"));
    let forced = desk
        .step(
            &id,
            "dispatch",
            &desk.lead,
            json!({"assignee_id": day, "force": true}),
        )
        .await;
    assert_eq!(assignee_of(&forced), day);
    assert_eq!(open_orders(&desk, &day).await, 2);
    assert_eq!(
        open_orders(&desk, &evening).await,
        0,
        "the re-dispatch withdrew it"
    );
    let offers = attempts(&desk, &id).await;
    assert_eq!(offers[0]["outcome"], "withdrawn");
    assert!(offers[1].get("rule_id").is_none(), "named by a person");
    // An inactive technician is no candidate.
    let patched = desk
        .patch(
            &format!("/api/v1/assignees/{evening}"),
            &desk.lead,
            &json!({"active": false}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let third = order_in(&desk, &desk.chaoyang, &desk.no_signal).await;
    assert_eq!(third["status"], "new");
    assert!(third.get("redispatch_at").is_none());
    let history = desk
        .history(third["id"].as_str().unwrap(), &desk.lead)
        .await;
    let last = history.last().unwrap();
    assert_eq!(
        (&last["action"], &last["changes"]["reason"]),
        (&json!("undispatched"), &json!("no_candidate"))
    );
}

async fn rules_are_set_by_supervisors_and_checked(desk: Desk) {
    let spec = json!({"name": "Beijing", "region_id": desk.beijing, "strategy": "least_loaded"});
    problem(
        desk.post("/api/v1/dispatch-rules", &desk.agent, &spec)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        desk.post("/api/v1/dispatch-rules", &desk.shop_a, &spec)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let bad = problem(
        desk.post(
            "/api/v1/dispatch-rules",
            &desk.lead,
            &json!({
                "name": " ", "region_id": desk.no_signal, "type": "plumbing", "strategy": "least_loaded",
                "candidates": [desk.beijing], "accept_timeout": "10s", "skill": "Fibre!",
            }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mut pointers: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    pointers.sort_unstable();
    assert_eq!(
        pointers,
        [
            "/accept_timeout",
            "/candidates/0",
            "/name",
            "/region_id",
            "/skill",
            "/type"
        ]
    );
    let unknown = problem(
        desk.post(
            "/api/v1/dispatch-rules",
            &desk.lead,
            &json!({"name": "x", "strategy": "fastest"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(unknown["status"], 422);
    let bad_region = problem(
        desk.post(
            "/api/v1/assignees",
            &desk.lead,
            &json!({"kind": "technician", "name": "x", "phone": "13900139009", "region_ids": [desk.tv],
                    "business_hours": {"weekly": []}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        bad_region["errors"].as_array().unwrap().len(),
        2,
        "{bad_region}"
    );

    // A rule that only suggests: new orders stay new, staff asking get its pick.
    let technician = technician(
        &desk,
        "李师傅",
        "13900139001",
        &[&desk.beijing.clone()],
        json!({}),
    )
    .await;
    let created = desk
        .ok_json(
            desk.post(
                "/api/v1/dispatch-rules",
                &desk.lead,
                &json!({"name": "Beijing", "region_id": desk.beijing, "strategy": "least_loaded", "auto": false}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    let rule_id = created["id"].as_str().unwrap();
    let order = order_in(&desk, &desk.chaoyang, &desk.no_signal).await;
    assert_eq!(order["status"], "new");
    let asked = desk
        .step(
            order["id"].as_str().unwrap(),
            "dispatch",
            &desk.agent,
            json!({}),
        )
        .await;
    assert_eq!(assignee_of(&asked), technician);

    // Changed with If-Match; a stale one is refused; removed, it is gone.
    let path = format!("/api/v1/dispatch-rules/{rule_id}");
    let stale = desk
        .app
        .client
        .patch(format!("{}{path}", desk.app.http_url))
        .bearer_auth(&desk.lead)
        .header("If-Match", "\"0\"")
        .json(&json!({"auto": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let changed = desk
        .ok_json(
            desk.patch(
                &path,
                &desk.lead,
                &json!({"auto": true, "strategy": "round_robin", "accept_timeout": "2h"}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (
            &changed["auto"],
            &changed["strategy"],
            &changed["accept_timeout_seconds"],
            &changed["version"]
        ),
        (&json!(true), &json!("round_robin"), &json!(7200), &json!(2))
    );
    let listed = desk
        .ok_json(
            desk.get("/api/v1/dispatch-rules", &desk.agent).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let deleted = desk
        .app
        .call(reqwest::Method::DELETE, &path, &desk.lead, None)
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    problem(desk.get(&path, &desk.lead).await, StatusCode::NOT_FOUND).await;
}

async fn concurrent_orders_never_overfill_an_assignee(desk: Desk) {
    let beijing = desk.beijing.clone();
    let one = technician(
        &desk,
        "李师傅",
        "13900139001",
        &[&beijing],
        json!({"capacity": 5}),
    )
    .await;
    let two = technician(
        &desk,
        "赵师傅",
        "13900139002",
        &[&beijing],
        json!({"capacity": 5}),
    )
    .await;
    rule(
        &desk,
        json!({"name": "Beijing", "region_id": beijing, "strategy": "least_loaded"}),
    )
    .await;
    let orders = futures::future::join_all(
        (0..16).map(|_| order_in(&desk, &desk.chaoyang, &desk.no_signal)),
    )
    .await;
    let dispatched = orders
        .iter()
        .filter(|o| o["status"] == "dispatched")
        .count();
    assert_eq!(dispatched, 10, "room for ten");
    assert_eq!(open_orders(&desk, &one).await, 5);
    assert_eq!(open_orders(&desk, &two).await, 5);
    let listed = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/work-orders?assignee_id={one}&limit=100"),
                &desk.lead,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 5);
    // A dispatch whose claim lost the race is taken back whole: each order
    // keeps only the offer it was dispatched with, and those left waiting
    // show no offer and no dispatch in their history.
    let offered = futures::future::join_all(
        orders
            .iter()
            .map(|o| attempts(&desk, o["id"].as_str().unwrap())),
    )
    .await;
    for (order, offers) in orders.iter().zip(&offered) {
        if order["status"] == "dispatched" {
            assert_eq!(offers.len(), 1, "{order} {offers:?}");
            continue;
        }
        assert_eq!(order["assignee_id"], Value::Null);
        assert!(offers.is_empty(), "{order} {offers:?}");
        let history = desk
            .history(order["id"].as_str().unwrap(), &desk.lead)
            .await;
        assert!(
            history.iter().all(|entry| entry["action"] != "dispatch"),
            "{history:?}"
        );
    }
    let offers: usize = offered.iter().map(Vec::len).sum();
    assert_eq!(offers, 10);
}

async fn a_breached_response_takes_the_order_to_the_next_candidate(desk: Desk) {
    let policy = desk
        .ok_json(
            desk.put(
                "/api/v1/sla-policies/fault_repair/normal",
                &desk.lead,
                &json!({"first_response": "1h", "resolution": "48h", "redispatch_on_breach": true}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(policy["redispatch_on_breach"], true);
    let beijing = desk.beijing.clone();
    let first = technician(&desk, "李师傅", "13900139001", &[&beijing], json!({})).await;
    let second = technician(&desk, "赵师傅", "13900139002", &[&beijing], json!({})).await;
    // Offers would last two hours; the policy wants a response within one.
    rule(
        &desk,
        json!({"name": "Beijing", "region_id": beijing, "strategy": "round_robin", "accept_timeout": "2h"}),
    )
    .await;
    let order = order_in(&desk, &desk.chaoyang, &desk.no_signal).await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(assignee_of(&order), first);
    desk.clock.advance(Duration::minutes(61));
    until("the breach moved the order", async || {
        assignee_of(&desk.read(&id, &desk.lead).await) == second
    })
    .await;
    let moved = desk.read(&id, &desk.lead).await;
    assert_eq!(
        (&moved["status"], &moved["sla"]["response_met"]),
        (&json!("dispatched"), &json!(false))
    );
    let offers = attempts(&desk, &id).await;
    assert_eq!(
        (&offers[0]["outcome"], &offers[0]["reason"]),
        (&json!("timed_out"), &json!("the response deadline passed"))
    );
    assert_eq!(open_orders(&desk, &first).await, 0);
}

async fn an_offer_made_before_a_restart_times_out_after_it_once(desk: Desk) {
    let beijing = desk.beijing.clone();
    let first = technician(&desk, "李师傅", "13900139001", &[&beijing], json!({})).await;
    let second = technician(&desk, "赵师傅", "13900139002", &[&beijing], json!({})).await;
    rule(
        &desk,
        json!({"name": "Beijing in turn", "region_id": beijing, "strategy": "round_robin", "accept_timeout": "10m"}),
    )
    .await;
    let order = order_in(&desk, &desk.chaoyang, &desk.no_signal).await;
    let id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(assignee_of(&order), first);
    texts(&desk, &id, 1).await;
    // The process goes away with the offer ringing; its timer and texts are rows.
    let desk = desk.restart().await;
    desk.clock.advance(Duration::minutes(11));
    until("the offer timed out after the restart", async || {
        assignee_of(&desk.read(&id, &desk.lead).await) == second
    })
    .await;
    let sent = texts(&desk, &id, 3).await;
    let purposes: Vec<(&str, &str)> = sent
        .iter()
        .map(|m| (m["purpose"].as_str().unwrap(), m["to"].as_str().unwrap()))
        .collect();
    assert_eq!(
        purposes,
        [
            ("new_order", "+8613900139001"),
            ("withdrawn", "+8613900139001"),
            ("new_order", "+8613900139002")
        ],
        "each text once"
    );
    let offers = attempts(&desk, &id).await;
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[0]["outcome"], "timed_out");
    assert_eq!(open_orders(&desk, &first).await, 0);
}
