//! A work order's life through the REST API: opened from a customer found in
//! identity, dispatched, worked, resolved, closed, reopened; every illegal
//! step and every bad input refused with nothing changed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Desk, problem};

crate::on_both_backends!(
    an_order_lives_from_opening_to_closing_with_every_step_in_its_history,
    illegal_steps_are_refused_and_change_nothing,
    bad_input_is_refused_with_the_field_at_fault_and_opens_nothing,
    a_retried_creation_with_an_idempotency_key_opens_one_order,
    declines_reopenings_and_cancellations_move_the_assignees_load,
    capacity_holds_unless_a_supervisor_forces_it,
    lists_filter_by_subtree_status_and_page,
);

async fn an_order_lives_from_opening_to_closing_with_every_step_in_its_history(desk: Desk) {
    let customer = desk.customer("张伟", "13800138000").await;
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap();
    let number = order["number"].as_str().unwrap();
    assert!(
        number.starts_with("WO-") && number.len() == "WO-20261123-000001".len(),
        "{number}"
    );
    assert_eq!(order["status"], "new");
    assert_eq!(order["priority"], "normal", "the type's default");
    assert_eq!(order["category_path"], "/tv/itv/no_signal/");
    assert_eq!(order["region_path"], "/bj/bj_cy/");
    assert_eq!(order["customer"]["id"], customer.as_str());
    assert_eq!(order["customer"]["name"], "张伟");
    assert_eq!(order["customer"]["phone"], "+8613800138000");
    assert_eq!(order["customer"]["address"], "北京市 朝阳区 建国路 88 号");
    assert_eq!(order["service_address"], "北京市 朝阳区 建国路 88 号");
    assert_eq!(order["created_by"], desk.agent_id.as_str());
    assert_eq!(order["allowed_actions"], json!(["dispatch", "cancel"]));

    // The number finds it however it is typed.
    let compact = number.replace('-', "").to_lowercase();
    for reference in [
        number.to_owned(),
        compact,
        number.trim_start_matches("WO-").to_owned(),
    ] {
        assert_eq!(desk.read(&reference, &desk.agent).await["id"], id);
    }

    let dispatched = desk
        .step(
            id,
            "dispatch",
            &desk.agent,
            json!({"assignee_id": desk.technician}),
        )
        .await;
    assert_eq!(dispatched["status"], "dispatched");
    assert_eq!(dispatched["assignee_id"], desk.technician.as_str());
    let technician = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/assignees/{}", desk.technician),
                &desk.lead,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(technician["open_orders"], 1);

    desk.step(id, "accept", &desk.agent, json!({})).await;
    desk.step(id, "start", &desk.agent, json!({})).await;
    let held = desk
        .step(id, "hold", &desk.agent, json!({"reason": "waiting_parts"}))
        .await;
    assert_eq!(held["status"], "waiting_parts");
    desk.step(id, "resume", &desk.agent, json!({})).await;
    let resolved = desk
        .step(
            id,
            "resolve",
            &desk.agent,
            json!({"resolution_code": "device_replaced", "note": "new set-top box"}),
        )
        .await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolution_code"], "device_replaced");
    assert!(resolved["resolved_at"].is_string());
    let closed = desk.step(id, "close", &desk.lead, json!({})).await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["version"], 8);
    assert_eq!(closed["allowed_actions"], json!(["reopen"]));

    let technician = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/assignees/{}", desk.technician),
                &desk.lead,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        technician["open_orders"], 0,
        "resolving freed the technician"
    );

    let history = desk.history(id, &desk.agent).await;
    let steps: Vec<(&str, Option<&str>, &str)> = history
        .iter()
        .map(|entry| {
            (
                entry["action"].as_str().unwrap(),
                entry["from_status"].as_str(),
                entry["to_status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("created", None, "new"),
            ("dispatch", Some("new"), "dispatched"),
            ("accept", Some("dispatched"), "accepted"),
            ("start", Some("accepted"), "in_progress"),
            ("hold", Some("in_progress"), "waiting_parts"),
            ("resume", Some("waiting_parts"), "in_progress"),
            ("resolve", Some("in_progress"), "resolved"),
            ("close", Some("resolved"), "closed"),
        ]
    );
    assert!(history.iter().all(|entry| entry["actor"].is_string()));
    assert_eq!(
        history[1]["changes"]["assignee_id"]["to"],
        desk.technician.as_str()
    );
    assert_eq!(
        history[6]["changes"]["resolution_code"]["to"],
        "device_replaced"
    );
    let seqs: Vec<i64> = history.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());

    let second = desk.order(&customer).await;
    let (first_count, second_count) = (
        number.rsplit('-').next().unwrap().parse::<u64>().unwrap(),
        second["number"]
            .as_str()
            .unwrap()
            .rsplit('-')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap(),
    );
    assert_eq!(second_count, first_count + 1, "the day's count goes on");
}

async fn illegal_steps_are_refused_and_change_nothing(desk: Desk) {
    let customer = desk.customer("李娜", "13800138001").await;
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap();
    let before = desk.read(id, &desk.agent).await;
    for (action, body) in [
        ("accept", json!({})),
        ("start", json!({})),
        ("resolve", json!({"resolution_code": "fixed"})),
        ("close", json!({})),
        ("reopen", json!({"reason": "again"})),
        ("resume", json!({})),
        ("decline", json!({"reason": "too far"})),
    ] {
        let refused = problem(
            desk.post(
                &format!("/api/v1/work-orders/{id}/{action}"),
                &desk.agent,
                &body,
            )
            .await,
            StatusCode::CONFLICT,
        )
        .await;
        assert_eq!(refused["code"], "illegal_transition", "{action}");
        assert_eq!(refused["current_status"], "new");
        assert_eq!(
            refused["allowed_actions"],
            json!(["dispatch", "cancel"]),
            "{action}"
        );
    }
    assert_eq!(desk.read(id, &desk.agent).await, before, "nothing changed");
    assert_eq!(desk.history(id, &desk.agent).await.len(), 1);

    // Steps that need something refuse without it.
    desk.step(
        id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    desk.step(id, "accept", &desk.agent, json!({})).await;
    for (action, body, pointer) in [
        (
            "resolve",
            json!({"resolution_code": "no_such_code"}),
            "/resolution_code",
        ),
        (
            "resolve",
            json!({"resolution_code": ""}),
            "/resolution_code",
        ),
        ("hold", json!({"reason": "lunch"}), "/reason"),
        ("cancel", json!({"reason": ""}), "/reason"),
        (
            "dispatch",
            json!({"assignee_id": "0190c0de-0000-7000-8000-000000000000"}),
            "/assignee_id",
        ),
    ] {
        let refused = problem(
            desk.post(
                &format!("/api/v1/work-orders/{id}/{action}"),
                &desk.agent,
                &body,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(
            refused["errors"][0]["pointer"], pointer,
            "{action} {body}: {refused}"
        );
    }
    let accepted = desk.read(id, &desk.agent).await;
    assert_eq!(accepted["status"], "accepted");

    // A stale If-Match is 412.
    let stale = desk
        .app
        .client
        .post(desk.app.url(&format!("/api/v1/work-orders/{id}/start")))
        .bearer_auth(&desk.agent)
        .header("If-Match", format!("\"{id}.1\""))
        .send()
        .await
        .unwrap();
    problem(stale, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(
        desk.read(id, &desk.agent).await["version"],
        accepted["version"]
    );

    // A cancelled order is final.
    desk.step(
        id,
        "cancel",
        &desk.agent,
        json!({"reason": "customer moved"}),
    )
    .await;
    let refused = problem(
        desk.post(
            &format!("/api/v1/work-orders/{id}/reopen"),
            &desk.agent,
            &json!({"reason": "x"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(refused["allowed_actions"], json!([]));
    let edit = problem(
        desk.patch(
            &format!("/api/v1/work-orders/{id}"),
            &desk.agent,
            &json!({"priority": "major"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(edit["code"], "work_order_final");
}

async fn bad_input_is_refused_with_the_field_at_fault_and_opens_nothing(desk: Desk) {
    let customer = desk.customer("王芳", "13800138002").await;
    let valid = json!({
        "type": "fault_repair",
        "category_id": desk.no_signal,
        "customer_id": customer,
        "region_id": desk.chaoyang,
        "description": "No signal",
    });
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let unknown = "0190c0de-0000-7000-8000-000000000000";
    for (body, pointer) in [
        (with("type", json!("teleportation")), "/type"),
        (with("category_id", json!(unknown)), "/category_id"),
        (with("region_id", json!(unknown)), "/region_id"),
        (with("customer_id", json!(unknown)), "/customer_id"),
        (with("contact_phone", json!("12345")), "/contact_phone"),
        (
            with("description", json!("长".repeat(4001))),
            "/description",
        ),
        (with("description", json!("   ")), "/description"),
        (with("description", json!("bell\u{7}")), "/description"),
        (with("contact_name", json!("a\u{0}b")), "/contact_name"),
        (
            with("service_address", json!("x".repeat(301))),
            "/service_address",
        ),
    ] {
        let refused = problem(
            desk.post("/api/v1/work-orders", &desk.agent, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let pointers: Vec<&str> = refused["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["pointer"].as_str().unwrap())
            .collect();
        assert!(pointers.contains(&pointer), "{pointer}: {refused}");
    }
    let mut anonymous = valid.clone();
    anonymous.as_object_mut().unwrap().remove("customer_id");
    let refused = problem(
        desk.post("/api/v1/work-orders", &desk.agent, &anonymous)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["pointer"], "/customer_id");
    problem(
        desk.post(
            "/api/v1/work-orders",
            &desk.agent,
            &with("surprise", json!(1)),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let malformed = desk
        .app
        .client
        .post(desk.app.url("/api/v1/work-orders"))
        .bearer_auth(&desk.agent)
        .header("Content-Type", "application/json")
        .body("{\"type\": ")
        .send()
        .await
        .unwrap();
    problem(malformed, StatusCode::BAD_REQUEST).await;
    // Partners don't open orders; nobody without a token does.
    problem(
        desk.post("/api/v1/work-orders", &desk.shop_a, &valid).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        desk.post("/api/v1/work-orders", "not-a-token", &valid)
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let listed = desk
        .ok_json(
            desk.get("/api/v1/work-orders", &desk.lead).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["items"], json!([]), "nothing was opened");

    // A caller without a customer record: a contact phone is enough, stored as E.164.
    anonymous["contact_phone"] = json!("138 0013 8003");
    anonymous["contact_name"] = json!("Mr Zhao");
    let opened = desk
        .ok_json(
            desk.post("/api/v1/work-orders", &desk.agent, &anonymous)
                .await,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        opened["customer"],
        json!({"name": "Mr Zhao", "phone": "+8613800138003"})
    );

    // Configuration is checked the same way.
    for (path, body, status) in [
        (
            "/api/v1/categories",
            json!({"code": "Bad Code", "name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/categories",
            json!({"code": "tv", "name": "TV again"}),
            StatusCode::CONFLICT,
        ),
        (
            "/api/v1/regions",
            json!({"parent_id": unknown, "code": "x", "name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/assignees",
            json!({"kind": "technician", "name": "x", "phone": "555"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/assignees",
            json!({"kind": "technician", "name": "x", "phone": "+86 139 0013 9000"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/assignees",
            json!({"kind": "shop", "name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/assignees",
            json!({"kind": "shop", "name": "x", "partner_id": "shop-a"}),
            StatusCode::CONFLICT,
        ),
        (
            "/api/v1/resolution-codes",
            json!({"code": "x", "name": "x", "types": ["nope"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/work-order-types",
            json!({"key": "fault_repair", "name": "x", "default_priority": "low"}),
            StatusCode::CONFLICT,
        ),
    ] {
        problem(desk.post(path, &desk.lead, &body).await, status).await;
    }
    problem(
        desk.post(
            "/api/v1/regions",
            &desk.agent,
            &json!({"code": "x", "name": "x"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn a_retried_creation_with_an_idempotency_key_opens_one_order(desk: Desk) {
    let customer = desk.customer("赵敏", "13800138004").await;
    let body = json!({
        "type": "installation",
        "category_id": desk.broadband,
        "customer_id": customer,
        "region_id": desk.chaoyang,
        "description": "New line",
    });
    let send = |body: Value| {
        desk.app
            .client
            .post(desk.app.url("/api/v1/work-orders"))
            .bearer_auth(&desk.agent)
            .header("Idempotency-Key", "call-77-order")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["number"], first["number"]);
    let mut other = body;
    other["description"] = json!("Something else");
    problem(send(other).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
    let listed = desk
        .ok_json(
            desk.get("/api/v1/work-orders", &desk.lead).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

async fn open_orders(desk: &Desk, assignee: &str) -> i64 {
    desk.ok_json(
        desk.get(&format!("/api/v1/assignees/{assignee}"), &desk.lead)
            .await,
        StatusCode::OK,
    )
    .await["open_orders"]
        .as_i64()
        .unwrap()
}

async fn declines_reopenings_and_cancellations_move_the_assignees_load(desk: Desk) {
    let customer = desk.customer("钱进", "13800138005").await;
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap();
    desk.step(
        id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    assert_eq!(open_orders(&desk, &desk.technician).await, 1);
    let declined = desk
        .step(
            id,
            "decline",
            &desk.agent,
            json!({"reason": "not my district"}),
        )
        .await;
    assert_eq!(declined["status"], "new");
    assert!(declined.get("assignee_id").is_none());
    assert_eq!(open_orders(&desk, &desk.technician).await, 0);

    // Re-dispatch moves the load from one assignee to the other.
    desk.step(
        id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    problem(
        desk.post(
            &format!("/api/v1/work-orders/{id}/dispatch"),
            &desk.agent,
            &json!({"assignee_id": desk.technician}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    let moved = desk
        .step(
            id,
            "dispatch",
            &desk.agent,
            json!({"assignee_id": desk.shop_a_assignee}),
        )
        .await;
    assert_eq!(moved["partner_id"], "shop-a");
    assert_eq!(open_orders(&desk, &desk.technician).await, 0);
    assert_eq!(open_orders(&desk, &desk.shop_a_assignee).await, 1);
    desk.step(id, "accept", &desk.shop_a, json!({})).await;
    desk.step(
        id,
        "resolve",
        &desk.shop_a,
        json!({"resolution_code": "fixed"}),
    )
    .await;
    assert_eq!(open_orders(&desk, &desk.shop_a_assignee).await, 0);
    desk.step(id, "close", &desk.agent, json!({})).await;
    let reopened = desk
        .step(
            id,
            "reopen",
            &desk.agent,
            json!({"reason": "no signal again"}),
        )
        .await;
    assert_eq!(reopened["status"], "new");
    assert!(reopened.get("resolution_code").is_none());
    assert!(
        reopened.get("partner_id").is_none(),
        "the shop no longer owns it"
    );
    desk.step(
        id,
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    let cancelled = desk
        .step(id, "cancel", &desk.agent, json!({"reason": "duplicate"}))
        .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(open_orders(&desk, &desk.technician).await, 0);
    let history = desk.history(id, &desk.agent).await;
    assert_eq!(history.last().unwrap()["changes"]["reason"], "duplicate");
}

async fn capacity_holds_unless_a_supervisor_forces_it(desk: Desk) {
    let customer = desk.customer("孙立", "13800138006").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            desk.order(&customer).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in &ids[..2] {
        desk.step(
            id,
            "dispatch",
            &desk.agent,
            json!({"assignee_id": desk.technician}),
        )
        .await;
    }
    let full = problem(
        desk.post(
            &format!("/api/v1/work-orders/{}/dispatch", ids[2]),
            &desk.agent,
            &json!({"assignee_id": desk.technician}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(full["code"], "assignee_at_capacity");
    problem(
        desk.post(
            &format!("/api/v1/work-orders/{}/dispatch", ids[2]),
            &desk.agent,
            &json!({"assignee_id": desk.technician, "force": true}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(desk.read(&ids[2], &desk.agent).await["status"], "new");
    desk.step(
        &ids[2],
        "dispatch",
        &desk.lead,
        json!({"assignee_id": desk.technician, "force": true}),
    )
    .await;
    assert_eq!(open_orders(&desk, &desk.technician).await, 3);

    // An inactive assignee gets nothing.
    let patched = desk
        .patch(
            &format!("/api/v1/assignees/{}", desk.shop_b_assignee),
            &desk.lead,
            &json!({"active": false}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let refused = problem(
        desk.post(
            &format!("/api/v1/work-orders/{}/dispatch", ids[0]),
            &desk.agent,
            &json!({"assignee_id": desk.shop_b_assignee}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["pointer"], "/assignee_id");
}

async fn lists_filter_by_subtree_status_and_page(desk: Desk) {
    let customer = desk.customer("周杰", "13800138007").await;
    let mut tv = Vec::new();
    for _ in 0..3 {
        tv.push(
            desk.order(&customer).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let broadband = desk
        .ok_json(
            desk.post(
                "/api/v1/work-orders",
                &desk.agent,
                &json!({"type": "complaint", "category_id": desk.broadband, "customer_id": customer,
                        "region_id": desk.beijing, "priority": "major", "description": "Slow"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(broadband["priority"], "major");
    desk.step(
        &tv[0],
        "dispatch",
        &desk.agent,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let under_tv = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/work-orders?category_id={}", desk.tv),
                &desk.lead,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        ids(&under_tv),
        tv.iter().rev().cloned().collect::<Vec<_>>(),
        "newest first, the whole subtree"
    );
    let in_beijing = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/work-orders?region_id={}", desk.beijing),
                &desk.lead,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(ids(&in_beijing).len(), 4, "Chaoyang is in Beijing");
    let in_chaoyang = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/work-orders?region_id={}", desk.chaoyang),
                &desk.lead,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(ids(&in_chaoyang).len(), 3);
    let dispatched = desk
        .ok_json(
            desk.get("/api/v1/work-orders?status=dispatched", &desk.lead)
                .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(ids(&dispatched), vec![tv[0].clone()]);
    let complaints = desk
        .ok_json(
            desk.get("/api/v1/work-orders?type=complaint", &desk.lead)
                .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        ids(&complaints),
        vec![broadband["id"].as_str().unwrap().to_owned()]
    );

    let mut seen = Vec::new();
    let mut path = "/api/v1/work-orders?limit=3".to_owned();
    loop {
        let page = desk
            .ok_json(desk.get(&path, &desk.lead).await, StatusCode::OK)
            .await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/work-orders?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    problem(
        desk.get("/api/v1/work-orders?cursor=garbage", &desk.lead)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        desk.get("/api/v1/work-orders?status=open", &desk.lead)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}
