//! Calls through the CTI API: offered with the caller's screen pop, rung at an
//! agent over SSE, answered, ended, wrapped up; abandoned and resumed; called
//! back; timed out and redirected; and what the day's figures say of it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Center, Sse, problem};

crate::on_both_backends!(
    a_call_pops_the_customer_rings_the_agent_and_lands_on_the_timeline,
    an_unanswered_offer_goes_to_the_next_agent_within_a_second,
    a_caller_who_calls_back_keeps_their_place,
    a_callback_is_offered_when_its_turn_comes_and_retried,
    live_statistics_say_what_happened,
    an_outbound_dial_is_offered_and_the_switch_told_to_dial,
    offers_survive_a_restart_and_their_timeouts_fire_after_it,
    a_screen_pop_never_carries_a_clear_id_number,
    an_unreadable_optional_body_is_refused_not_ignored,
);

async fn a_call_pops_the_customer_rings_the_agent_and_lands_on_the_timeline(center: Center) {
    let customer = center
        .ok_json(
            center
                .post(
                    "/api/v1/customers",
                    &center.admin,
                    &json!({"name": "张伟", "phones": [{"number": "138 0013 8000"}]}),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
    center
        .queue(
            json!({"name": "broadband", "target": "skills.broadband >= 50", "wrap_up_seconds": 1}),
        )
        .await;
    let agent = center
        .agent(json!({"name": "王芳", "skills": {"broadband": 80}}))
        .await;
    let mut stream = Sse::open(
        &center.app,
        &format!("/api/v1/agents/{}/stream", agent.id),
        &agent.token,
    )
    .await;

    let call = center
        .call(json!({"call_id": "call-1", "calling_number": "13800138000", "dialled_number": "96123", "queue": "broadband"}))
        .await;
    assert_eq!(call["status"], "reserved");
    assert_eq!(call["customer_id"], customer["id"]);
    assert_eq!(call["customer"]["candidates"][0]["name"], "张伟");
    assert_eq!(
        call["calling_number"], "+8613800138000",
        "normalised by identity"
    );

    let offer = stream.next("offer").await;
    assert_eq!(offer["task"]["id"], call["id"]);
    assert_eq!(
        offer["task"]["customer"]["candidates"][0]["name"], "张伟",
        "the screen pop travels with the offer"
    );
    let reservation = offer["task"]["reservation"]["id"].as_str().unwrap();

    let accepted = center
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &agent.token,
            &json!({}),
        )
        .await;
    assert_eq!(
        center.ok_json(accepted, StatusCode::OK).await["status"],
        "assigned"
    );
    let ended = center
        .post("/api/v1/cti/calls/call-1/ended", &center.switch, &json!({}))
        .await;
    assert_eq!(
        center.ok_json(ended, StatusCode::OK).await["status"],
        "wrapping"
    );
    let done = center
        .task_until(call["id"].as_str().unwrap(), |task| {
            task["status"] == "completed"
        })
        .await;
    assert!(done["wrap_up_until"].is_string() && done["answered_at"].is_string());
    // The switch repeating itself changes nothing.
    let again = center
        .post("/api/v1/cti/calls/call-1/ended", &center.switch, &json!({}))
        .await;
    assert_eq!(
        center.ok_json(again, StatusCode::OK).await["status"],
        "completed"
    );

    let path = format!(
        "/api/v1/customers/{}/timeline",
        customer["id"].as_str().unwrap()
    );
    let found = hotline_testkit::eventually(Duration::from_secs(10), || async {
        let timeline: Value = center.get(&path, &center.admin).await.json().await.unwrap();
        let items = timeline["items"].as_array().cloned().unwrap_or_default();
        items.iter().filter(|entry| entry["kind"] == "call").count() >= 2
    })
    .await;
    assert!(
        found,
        "the call's arrival and end are on the customer's timeline"
    );
}

async fn an_unanswered_offer_goes_to_the_next_agent_within_a_second(center: Center) {
    center
        .queue(json!({"name": "q", "target": "true", "offer_timeout_seconds": 1}))
        .await;
    let sleepy = center.agent(json!({"name": "sleepy"})).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let awake = center.agent(json!({"name": "awake"})).await;
    let call = center.call(json!({"call_id": "c", "queue": "q"})).await;
    assert_eq!(call["reservation"]["agent_id"], sleepy.id.as_str());
    let expires: chrono::DateTime<chrono::Utc> = call["reservation"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let moved = center
        .task_until(call["id"].as_str().unwrap(), |task| {
            task["reservation"]["agent_id"] == awake.id.as_str()
        })
        .await;
    let offered: chrono::DateTime<chrono::Utc> = moved["reservation"]["offered_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        offered - expires < chrono::Duration::seconds(1),
        "re-offered {} after expiry",
        offered - expires
    );
    let sleepy = center
        .ok_json(
            center
                .get(&format!("/api/v1/agents/{}", sleepy.id), &center.lead)
                .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        (sleepy["activity"].as_str(), sleepy["available"].as_bool()),
        (Some("not_ready"), Some(false))
    );
}

async fn a_caller_who_calls_back_keeps_their_place(center: Center) {
    center
        .queue(json!({"name": "q", "target": "group == \"x\""}))
        .await;
    let agent = center.agent(json!({"name": "a", "groups": ["x"]})).await;
    center
        .put(
            &format!("/api/v1/agents/{}/activity", agent.id),
            &agent.token,
            &json!({"activity": "break"}),
        )
        .await;
    let first = center
        .call(json!({"call_id": "1", "calling_number": "13900000001", "queue": "q"}))
        .await;
    let second = center
        .call(json!({"call_id": "2", "calling_number": "13900000002", "queue": "q"}))
        .await;
    assert_eq!(
        (first["position"].as_u64(), second["position"].as_u64()),
        (Some(1), Some(2))
    );
    let gone = center
        .post("/api/v1/cti/calls/1/abandoned", &center.switch, &json!({}))
        .await;
    assert_eq!(
        center.ok_json(gone, StatusCode::OK).await["status"],
        "abandoned"
    );
    assert_eq!(
        center.task(second["id"].as_str().unwrap()).await["position"],
        1
    );
    let back = center
        .call(json!({"call_id": "3", "calling_number": "139 0000 0001", "queue": "q"}))
        .await;
    assert_eq!(back["resumed_from"], first["id"]);
    assert_eq!(back["position"], 1);
    assert_eq!(
        center.task(second["id"].as_str().unwrap()).await["position"],
        2
    );
}

async fn a_callback_is_offered_when_its_turn_comes_and_retried(center: Center) {
    center.queue(json!({"name": "q", "target": "true"})).await;
    let agent = center.agent(json!({"name": "a"})).await;
    center
        .put(
            &format!("/api/v1/agents/{}/activity", agent.id),
            &agent.token,
            &json!({"activity": "break"}),
        )
        .await;
    let caller = center
        .call(json!({"call_id": "1", "calling_number": "13900000001", "queue": "q"}))
        .await;
    let id = caller["id"].as_str().unwrap();
    let later = center.call(json!({"call_id": "2", "queue": "q"})).await;
    let asked = center
        .post(
            &format!("/api/v1/tasks/{id}/callback"),
            &center.switch,
            &json!({}),
        )
        .await;
    let asked = center.ok_json(asked, StatusCode::OK).await;
    assert_eq!(
        (asked["kind"].as_str(), asked["position"].as_u64()),
        (Some("callback"), Some(1))
    );
    // The caller hangs up, as asked: the switch reports the call over.
    for event in ["ended", "abandoned"] {
        let over = center
            .post(
                &format!("/api/v1/cti/calls/1/{event}"),
                &center.switch,
                &json!({}),
            )
            .await;
        let over = center.ok_json(over, StatusCode::OK).await;
        assert_eq!(
            (over["status"].as_str(), over["kind"].as_str()),
            (Some("pending"), Some("callback")),
            "the callback outlives the call ({event})"
        );
    }
    center
        .put(
            &format!("/api/v1/agents/{}/activity", agent.id),
            &agent.token,
            &json!({"activity": "ready"}),
        )
        .await;
    let offered = center.task(id).await;
    assert_eq!(
        offered["status"], "reserved",
        "the callback keeps its place"
    );
    assert_eq!(
        center.task(later["id"].as_str().unwrap()).await["status"],
        "pending"
    );
    let reservation = offered["reservation"]["id"].as_str().unwrap();
    center
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &agent.token,
            &json!({}),
        )
        .await;
    let missed = center
        .post(
            &format!("/api/v1/tasks/{id}/attempts"),
            &agent.token,
            &json!({"result": "no_answer"}),
        )
        .await;
    let missed = center.ok_json(missed, StatusCode::OK).await;
    assert_eq!(missed["callback"]["failed_attempts"], 1);
    assert!(missed["not_before"].is_string());
    // Meanwhile the agent took the other caller; done with them, the retry comes due (1 s).
    let other = center.task(later["id"].as_str().unwrap()).await;
    let reservation = other["reservation"]["id"].as_str().unwrap();
    center
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &agent.token,
            &json!({}),
        )
        .await;
    center
        .post(
            &format!("/api/v1/tasks/{}/complete", other["id"].as_str().unwrap()),
            &agent.token,
            &json!({}),
        )
        .await;
    let again = center
        .task_until(id, |task| task["status"] == "reserved")
        .await;
    let reservation = again["reservation"]["id"].as_str().unwrap();
    center
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &agent.token,
            &json!({}),
        )
        .await;
    let given_up = center
        .post(
            &format!("/api/v1/tasks/{id}/attempts"),
            &agent.token,
            &json!({"result": "busy"}),
        )
        .await;
    let given_up = center.ok_json(given_up, StatusCode::OK).await;
    assert_eq!(
        (given_up["status"].as_str(), given_up["outcome"].as_str()),
        (Some("completed"), Some("unreachable"))
    );
}

async fn live_statistics_say_what_happened(center: Center) {
    center
        .queue(json!({"name": "q", "target": "true", "service_level_seconds": 20}))
        .await;
    let agent = center.agent(json!({"name": "a"})).await;
    let answered = center.call(json!({"call_id": "1", "queue": "q"})).await;
    let reservation = answered["reservation"]["id"].as_str().unwrap();
    center
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &agent.token,
            &json!({}),
        )
        .await;
    let waiting = center.call(json!({"call_id": "2", "queue": "q"})).await;
    assert_eq!(waiting["status"], "pending");
    center
        .post("/api/v1/cti/calls/2/abandoned", &center.switch, &json!({}))
        .await;
    let stats = center.queue_stats("q").await;
    assert_eq!(
        (
            stats["offered"].as_u64(),
            stats["answered"].as_u64(),
            stats["abandoned"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(stats["agents"]["busy"], 1);
    assert_eq!(
        stats["service_level"], 1.0,
        "a short abandon is not held against it"
    );
    assert!(stats["asa_seconds"].as_f64().unwrap() < 2.0);
    let everything: Value = center
        .get("/api/v1/stats/queues", &agent.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(everything[0]["queue"], "q");
    let agents: Value = center
        .get(
            &format!("/api/v1/stats/agents?agent_id={}", agent.id),
            &center.lead,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            agents[0]["state"].as_str(),
            agents[0]["current_tasks"].as_u64()
        ),
        (Some("busy"), Some(1))
    );
}

async fn an_outbound_dial_is_offered_and_the_switch_told_to_dial(center: Center) {
    center
        .queue(json!({"name": "surveys", "target": "group == \"outbound\""}))
        .await;
    let agent = center
        .agent(json!({"name": "o", "groups": ["outbound"]}))
        .await;
    let mut switch = Sse::open(&center.app, "/api/v1/cti/stream", &center.switch).await;
    let dial = center
        .post(
            "/api/v1/cti/dial",
            &center.switch,
            &json!({"request_id": "survey-1", "number": "13900000009", "queue": "surveys"}),
        )
        .await;
    let dial = center.ok_json(dial, StatusCode::CREATED).await;
    assert_eq!(
        (dial["kind"].as_str(), dial["status"].as_str()),
        (Some("outbound"), Some("reserved"))
    );
    let rung = switch.next("routing.task.reserved").await;
    assert_eq!(rung["agent_id"], agent.id.as_str());
    let reservation = dial["reservation"]["id"].as_str().unwrap();
    center
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &agent.token,
            &json!({}),
        )
        .await;
    let assigned = switch.next("routing.task.assigned").await;
    assert_eq!(
        assigned["task"]["callback"]["number"], "13900000009",
        "the number to dial"
    );
    let repeat = center
        .post(
            "/api/v1/cti/dial",
            &center.switch,
            &json!({"request_id": "survey-1", "number": "13900000009", "queue": "surveys"}),
        )
        .await;
    assert_eq!(
        center.ok_json(repeat, StatusCode::OK).await["id"],
        dial["id"]
    );
}

async fn offers_survive_a_restart_and_their_timeouts_fire_after_it(center: Center) {
    center
        .queue(json!({"name": "q", "target": "true", "offer_timeout_seconds": 2}))
        .await;
    let agent = center.agent(json!({"name": "a"})).await;
    let call = center.call(json!({"call_id": "c", "queue": "q"})).await;
    assert_eq!(call["reservation"]["agent_id"], agent.id.as_str());
    let center = center.restart().await;
    let id = call["id"].as_str().unwrap();
    let task = center.task(id).await;
    assert_eq!(
        task["reservation"]["id"], call["reservation"]["id"],
        "the offer is still on after the restart"
    );
    let timed_out = center
        .task_until(id, |task| task["status"] == "pending")
        .await;
    assert!(timed_out["reservation"].is_null());
    let agent = center
        .ok_json(
            center
                .get(&format!("/api/v1/agents/{}", agent.id), &center.lead)
                .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(agent["activity"], "not_ready");
}

/// Identity shows an admin the customer's resident id in full; a call an
/// admin's client feeds in still pops it masked, since agents see the pop.
async fn a_screen_pop_never_carries_a_clear_id_number(center: Center) {
    center
        .ok_json(
            center
                .post(
                    "/api/v1/customers",
                    &center.admin,
                    &json!({"name": "李娜", "phones": [{"number": "13900139000"}], "id_number": "11010519491231002X"}),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
    center.queue(json!({"name": "q", "target": "true"})).await;
    let task = center
        .ok_json(
            center
                .post(
                    "/api/v1/tasks",
                    &center.admin,
                    &json!({"queue": "q", "calling_number": "13900139000"}),
                )
                .await,
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        task["customer"]["candidates"][0]["id_number"],
        "1101**********002X"
    );
    let stored = center.task(task["id"].as_str().unwrap()).await;
    assert_eq!(
        stored["customer"]["candidates"][0]["id_number"],
        "1101**********002X"
    );
}

/// `answered` may come without a body; one that is there but unreadable
/// (a switch sending the agent in a broken document) is refused, not taken
/// for "no agent named".
async fn an_unreadable_optional_body_is_refused_not_ignored(center: Center) {
    center.queue(json!({"name": "q", "target": "true"})).await;
    let agent = center.agent(json!({"name": "a"})).await;
    let call = center.call(json!({"call_id": "b1", "queue": "q"})).await;
    assert_eq!(call["status"], "reserved");
    for (content_type, body, status) in [
        (
            "application/json",
            r#"{"agent_id": "#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "text/plain",
            r#"{"agent_id": null}"#,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let refused = center
            .app
            .client
            .post(center.app.url("/api/v1/cti/calls/b1/answered"))
            .bearer_auth(&center.switch)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        problem(refused, status).await;
    }
    assert_eq!(
        center.task(call["id"].as_str().unwrap()).await["status"],
        "reserved"
    );
    let answered = center
        .app
        .client
        .post(center.app.url("/api/v1/cti/calls/b1/answered"))
        .bearer_auth(&center.switch)
        .send()
        .await
        .unwrap();
    let answered = center.ok_json(answered, StatusCode::OK).await;
    assert_eq!(
        (answered["status"].as_str(), answered["agent_id"].as_str()),
        (Some("assigned"), Some(agent.id.as_str()))
    );
}
