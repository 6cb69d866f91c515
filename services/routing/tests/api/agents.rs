//! Agents and what they may do; bad input and its clear answers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Center, problem};

crate::on_both_backends!(
    an_agent_acts_only_on_their_own_offers_and_tasks,
    agents_sign_in_and_out_and_change_activity,
    bad_input_gets_a_clear_answer_and_changes_nothing,
    who_may_configure_and_feed_the_center,
    a_stale_if_match_changes_nothing,
);

async fn an_agent_acts_only_on_their_own_offers_and_tasks(center: Center) {
    center.queue(json!({"name": "q", "target": "true"})).await;
    let mine = center.agent(json!({"name": "mine"})).await;
    let other = center.agent(json!({"name": "other"})).await;
    let first = center.call(json!({"call_id": "1", "queue": "q"})).await;
    let offered_to = first["reservation"]["agent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (owner, intruder) = if offered_to == mine.id {
        (&mine, &other)
    } else {
        (&other, &mine)
    };
    let reservation = first["reservation"]["id"].as_str().unwrap();

    let refused = center
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &intruder.token,
            &json!({}),
        )
        .await;
    assert_eq!(
        problem(refused, StatusCode::FORBIDDEN).await["code"],
        "forbidden"
    );
    let refused = center
        .post(
            &format!("/api/v1/reservations/{reservation}/reject"),
            &intruder.token,
            &json!({}),
        )
        .await;
    problem(refused, StatusCode::FORBIDDEN).await;
    let unchanged = center.task(first["id"].as_str().unwrap()).await;
    assert_eq!(unchanged["status"], "reserved");
    assert_eq!(unchanged["reservation"]["id"], reservation);
    assert_eq!(unchanged["version"], first["version"], "nothing changed");

    let stream = center
        .get(
            &format!("/api/v1/agents/{}/stream", owner.id),
            &intruder.token,
        )
        .await;
    problem(stream, StatusCode::FORBIDDEN).await;
    let sign_out = center
        .post(
            &format!("/api/v1/agents/{}/sign-out", owner.id),
            &intruder.token,
            &json!({}),
        )
        .await;
    problem(sign_out, StatusCode::FORBIDDEN).await;

    center
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &owner.token,
            &json!({}),
        )
        .await;
    let id = first["id"].as_str().unwrap();
    let complete = center
        .post(
            &format!("/api/v1/tasks/{id}/complete"),
            &intruder.token,
            &json!({}),
        )
        .await;
    problem(complete, StatusCode::FORBIDDEN).await;
    let again = center
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &owner.token,
            &json!({}),
        )
        .await;
    assert_eq!(
        problem(again, StatusCode::CONFLICT).await["code"],
        "reservation_not_pending"
    );
    let complete = center
        .post(
            &format!("/api/v1/tasks/{id}/complete"),
            &owner.token,
            &json!({}),
        )
        .await;
    assert_eq!(
        center.ok_json(complete, StatusCode::OK).await["status"],
        "completed"
    );
}

async fn agents_sign_in_and_out_and_change_activity(center: Center) {
    center.queue(json!({"name": "q", "target": "true"})).await;
    let agent = center
        .agent(json!({"name": "a", "capacity": {"voice": 1, "chat": 2}}))
        .await;
    let path = format!("/api/v1/agents/{}", agent.id);
    let view = center
        .ok_json(center.get(&path, &agent.token).await, StatusCode::OK)
        .await;
    assert_eq!(
        (view["state"].as_str(), view["available"].as_bool()),
        (Some("ready"), Some(true))
    );
    let lunch = center
        .put(
            &format!("{path}/activity"),
            &agent.token,
            &json!({"activity": "lunch"}),
        )
        .await;
    assert_eq!(
        center.ok_json(lunch, StatusCode::OK).await["state"],
        "lunch"
    );
    let call = center.call(json!({"call_id": "1", "queue": "q"})).await;
    assert_eq!(call["status"], "pending", "nobody available");
    let back = center
        .put(
            &format!("{path}/activity"),
            &agent.token,
            &json!({"activity": "ready"}),
        )
        .await;
    assert_eq!(
        center.ok_json(back, StatusCode::OK).await["state"],
        "reserved",
        "offered the waiting call at once"
    );
    let reservation = center.task(call["id"].as_str().unwrap()).await["reservation"]["id"].clone();
    center
        .post(
            &format!(
                "/api/v1/reservations/{}/accept",
                reservation.as_str().unwrap()
            ),
            &agent.token,
            &json!({}),
        )
        .await;
    let busy = center
        .post(&format!("{path}/sign-out"), &agent.token, &json!({}))
        .await;
    assert_eq!(
        problem(busy, StatusCode::CONFLICT).await["code"],
        "agent_busy"
    );
    center
        .post(
            &format!("/api/v1/tasks/{}/complete", call["id"].as_str().unwrap()),
            &agent.token,
            &json!({}),
        )
        .await;
    let out = center
        .post(&format!("{path}/sign-out"), &agent.token, &json!({}))
        .await;
    assert_eq!(
        center.ok_json(out, StatusCode::OK).await["state"],
        "offline"
    );
    let activities = center
        .ok_json(
            center.get("/api/v1/activities", &agent.token).await,
            StatusCode::OK,
        )
        .await;
    assert!(
        activities
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "training")
    );
    let coaching = center
        .put(
            "/api/v1/activities/coaching",
            &center.lead,
            &json!({"available": false, "description": "with the team lead"}),
        )
        .await;
    assert_eq!(
        center.ok_json(coaching, StatusCode::OK).await["name"],
        "coaching"
    );
}

async fn bad_input_gets_a_clear_answer_and_changes_nothing(center: Center) {
    let malformed = center
        .post(
            "/api/v1/queues",
            &center.lead,
            &json!({"name": "q", "target": "skills.broadband >= AND group == 'x'"}),
        )
        .await;
    let malformed = problem(malformed, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(malformed["errors"][0]["pointer"], "/target");
    assert!(
        malformed["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at character 20"),
        "{malformed}"
    );
    let listed = center
        .ok_json(
            center.get("/api/v1/queues", &center.lead).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(listed, json!([]), "no queue was made");

    let unknown = center
        .post(
            "/api/v1/cti/calls",
            &center.switch,
            &json!({"call_id": "1", "queue": "nowhere"}),
        )
        .await;
    assert_eq!(
        problem(unknown, StatusCode::NOT_FOUND).await["code"],
        "queue_not_found"
    );
    let unrouted = center
        .post(
            "/api/v1/cti/calls",
            &center.switch,
            &json!({"call_id": "2", "dialled_number": "96123"}),
        )
        .await;
    assert_eq!(
        problem(unrouted, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["pointer"],
        "/queue"
    );

    center.queue(json!({"name": "q", "target": "true"})).await;
    let taken = center
        .post(
            "/api/v1/queues",
            &center.lead,
            &json!({"name": "q", "target": "true"}),
        )
        .await;
    assert_eq!(
        problem(taken, StatusCode::CONFLICT).await["code"],
        "queue_name_taken"
    );
    for (body, pointer) in [
        (
            json!({"name": "r", "target": "true", "overflow": [{"when": "wait", "to": {"queue": "q"}}]}),
            "/overflow/0/after_seconds",
        ),
        (
            json!({"name": "r", "target": "true", "overflow": [{"when": "full", "to": {"outcome": "voicemail"}}]}),
            "/overflow/0/when",
        ),
        (
            json!({"name": "r", "target": "true", "overflow": [{"when": "wait", "after_seconds": 5, "to": {"queue": "elsewhere"}}]}),
            "/overflow/0/to/queue",
        ),
        (
            json!({"name": "r", "target": "true", "relaxation": [{"after_seconds": 0, "target": "true"}]}),
            "/relaxation/0/after_seconds",
        ),
        (
            json!({"name": "r", "target": "true", "strategy": "best_skill"}),
            "/strategy_skill",
        ),
        (json!({"name": "", "target": "true"}), "/name"),
        (json!({"name": "r\u{0}", "target": "true"}), "/name"),
        // The lowest i32 has no absolute value: it once panicked the router.
        (
            json!({"name": "r", "target": "true", "priority": i32::MIN}),
            "/priority",
        ),
    ] {
        let refused = center.post("/api/v1/queues", &center.lead, &body).await;
        let refused = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(refused["errors"][0]["pointer"], pointer, "{body}");
    }
    let strategy = center
        .post(
            "/api/v1/queues",
            &center.lead,
            &json!({"name": "r", "target": "true", "strategy": "fastest"}),
        )
        .await;
    problem(strategy, StatusCode::UNPROCESSABLE_ENTITY).await;
    let lowest = center
        .post(
            "/api/v1/tasks",
            &center.admin,
            &json!({"queue": "q", "priority": i32::MIN}),
        )
        .await;
    assert_eq!(
        problem(lowest, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["pointer"],
        "/priority"
    );

    let skill = center
        .post(
            "/api/v1/agents",
            &center.lead,
            &json!({"name": "a", "skills": {"broadband": 101}}),
        )
        .await;
    assert_eq!(
        problem(skill, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["pointer"],
        "/skills/broadband"
    );
    // 75.0 is the integer 75 to JSON Schema (and to many JSON writers); 7.5 is not.
    let whole = center
        .post(
            "/api/v1/agents",
            &center.lead,
            &json!({"name": "w", "skills": {"broadband": 75.0}, "capacity": {"chat": 2.0}}),
        )
        .await;
    assert_eq!(whole.status(), StatusCode::CREATED);
    let whole: Value = whole.json().await.unwrap();
    assert_eq!(whole["skills"]["broadband"], 75);
    assert_eq!(whole["capacity"]["chat"], 2);
    let fraction = center
        .post(
            "/api/v1/agents",
            &center.lead,
            &json!({"name": "f", "skills": {"broadband": 7.5}}),
        )
        .await;
    problem(fraction, StatusCode::UNPROCESSABLE_ENTITY).await;
    let agent = center.agent(json!({"name": "a"})).await;
    let activity = center
        .put(
            &format!("/api/v1/agents/{}/activity", agent.id),
            &agent.token,
            &json!({"activity": "napping"}),
        )
        .await;
    assert_eq!(
        problem(activity, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["pointer"],
        "/activity"
    );
    let nobody = center
        .get(
            "/api/v1/agents/01a23302-9772-7355-998b-2040314d9a7e",
            &center.lead,
        )
        .await;
    assert_eq!(
        problem(nobody, StatusCode::NOT_FOUND).await["code"],
        "agent_not_found"
    );
    let not_an_id = center.get("/api/v1/tasks/not-an-id", &center.lead).await;
    problem(not_an_id, StatusCode::NOT_FOUND).await;
    let nothing = center
        .post(
            "/api/v1/reservations/01a23302-9772-7355-998b-2040314d9a7e/accept",
            &agent.token,
            &json!({}),
        )
        .await;
    assert_eq!(
        problem(nothing, StatusCode::NOT_FOUND).await["code"],
        "reservation_not_found"
    );

    let call = center
        .call(json!({"call_id": "3", "queue": "q", "ivr": {"menu": "2"}}))
        .await;
    let cancel_unknown = center
        .post("/api/v1/cti/calls/nope/ended", &center.switch, &json!({}))
        .await;
    assert_eq!(
        problem(cancel_unknown, StatusCode::NOT_FOUND).await["code"],
        "call_not_found"
    );
    let not_yet = center
        .post(
            &format!("/api/v1/tasks/{}/complete", call["id"].as_str().unwrap()),
            &center.lead,
            &json!({}),
        )
        .await;
    assert_eq!(
        problem(not_yet, StatusCode::CONFLICT).await["code"],
        "task_not_assigned"
    );
    let huge_ivr: serde_json::Map<String, serde_json::Value> =
        (0..30).map(|i| (format!("k{i}"), json!("v"))).collect();
    let too_much = center
        .post(
            "/api/v1/cti/calls",
            &center.switch,
            &json!({"call_id": "4", "queue": "q", "ivr": huge_ivr}),
        )
        .await;
    assert_eq!(
        problem(too_much, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["pointer"],
        "/ivr"
    );
    let rules = center
        .put(
            "/api/v1/entry-rules",
            &center.lead,
            &json!({"rules": [{"when": "dialled_number ==", "queue": "q"}]}),
        )
        .await;
    problem(rules, StatusCode::UNPROCESSABLE_ENTITY).await;
    let rules = center
        .put("/api/v1/entry-rules", &center.lead, &json!({"rules": [{"when": "dialled_number == \"96123\" AND ivr.menu == \"2\"", "queue": "q"}]}))
        .await;
    center.ok_json(rules, StatusCode::OK).await;
    let routed = center
        .post(
            "/api/v1/cti/calls",
            &center.switch,
            &json!({"call_id": "5", "dialled_number": "96123", "ivr": {"menu": "2"}}),
        )
        .await;
    assert_eq!(
        center.ok_json(routed, StatusCode::CREATED).await["queue"],
        "q"
    );
}

async fn who_may_configure_and_feed_the_center(center: Center) {
    let agent = center.agent(json!({"name": "a"})).await;
    let queue = center
        .post(
            "/api/v1/queues",
            &agent.token,
            &json!({"name": "q", "target": "true"}),
        )
        .await;
    problem(queue, StatusCode::FORBIDDEN).await;
    center.queue(json!({"name": "q", "target": "true"})).await;
    let call = center
        .post(
            "/api/v1/cti/calls",
            &agent.token,
            &json!({"call_id": "1", "queue": "q"}),
        )
        .await;
    problem(call, StatusCode::FORBIDDEN).await;
    let stream = center.get("/api/v1/cti/stream", &agent.token).await;
    problem(stream, StatusCode::FORBIDDEN).await;
    let anonymous = center
        .app
        .client
        .get(center.app.url("/api/v1/queues"))
        .send()
        .await
        .unwrap();
    problem(anonymous, StatusCode::UNAUTHORIZED).await;
    let shop = center
        .post(
            "/api/v1/clients",
            &center.admin,
            &json!({"name": "shop", "roles": ["partner"], "partner_id": "shop-1"}),
        )
        .await;
    let shop = center.ok_json(shop, StatusCode::CREATED).await;
    let partner = hotline_testkit::client_token(
        &center.app.client,
        &center.app.http_url,
        shop["client_id"].as_str().unwrap(),
        shop["client_secret"].as_str().unwrap(),
    )
    .await;
    let partner = center.get("/api/v1/stats/queues", &partner).await;
    problem(partner, StatusCode::FORBIDDEN).await;
}

async fn a_stale_if_match_changes_nothing(center: Center) {
    let queue = center.queue(json!({"name": "q", "target": "true"})).await;
    let path = format!("/api/v1/queues/{}", queue["id"].as_str().unwrap());
    let response = center.get(&path, &center.lead).await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let changed = center
        .app
        .client
        .put(center.app.url(&path))
        .bearer_auth(&center.lead)
        .header("If-Match", &etag)
        .json(&json!({"name": "q", "target": "true", "priority": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(center.ok_json(changed, StatusCode::OK).await["version"], 2);
    let stale = center
        .app
        .client
        .put(center.app.url(&path))
        .bearer_auth(&center.lead)
        .header("If-Match", &etag)
        .json(&json!({"name": "q", "target": "true", "priority": 9}))
        .send()
        .await
        .unwrap();
    problem(stale, StatusCode::PRECONDITION_FAILED).await;
    let now = center
        .ok_json(center.get(&path, &center.lead).await, StatusCode::OK)
        .await;
    assert_eq!(now["priority"], 5);
}
