//! Text messages through the sink: a technician told of each order
//! dispatched to them (in Chinese, UCS-2, split correctly), of one taken
//! away or cancelled; their replies from their registered phone accepting,
//! resolving or declining it; strangers and mistakes answered as they should be.

use reqwest::StatusCode;
use serde_json::{Value, json};

use prost::Message;

use crate::{
    helpers::{Desk, problem, texts, ticketing_config, until},
    receiver::{Answer, Receiver},
};

crate::on_both_backends!(
    a_dispatched_technician_gets_the_order_by_sms,
    a_technician_accepts_and_resolves_by_replying,
    replies_that_cannot_take_effect_are_answered_or_kept,
    texts_go_through_an_http_gateway_retried_and_reported,
    a_supervisor_texts_technicians_a_notice,
);

/// A new order for `customer`, dispatched to the desk's technician: its id and number.
pub(crate) async fn dispatched_to_technician(desk: &Desk, customer: &str) -> (String, String) {
    let order = desk.order(customer).await;
    let id = order["id"].as_str().unwrap().to_owned();
    desk.step(
        &id,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    (id, order["number"].as_str().unwrap().to_owned())
}

async fn reply(desk: &Desk, from: &str, text: &str) -> Value {
    desk.ok_json(
        desk.post(
            "/api/v1/sms/sink/inbound",
            &desk.lead,
            &json!({"from": from, "text": text}),
        )
        .await,
        StatusCode::OK,
    )
    .await
}

async fn a_dispatched_technician_gets_the_order_by_sms(desk: Desk) {
    let customer = desk.customer("刘女士", "13800138055").await;
    let recording = desk.record(&["ticketing.sms.#"]);
    let (id, number) = dispatched_to_technician(&desk, &customer).await;
    let sent = texts(&desk, &id, 1).await;
    let text = &sent[0];
    // Sent, then delivered (the sink at once), announced without the phone or text.
    until("the text's events", async || recording.recorder.len() >= 2).await;
    let events = recording.recorder.events();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["ticketing.sms.sent", "ticketing.sms.delivered"]);
    let changed = hotline_proto::events::v1::SmsChanged::decode(events[1].data.as_slice()).unwrap();
    assert_eq!(
        (
            changed.sms_id.as_str(),
            changed.work_order_id.as_str(),
            changed.purpose(),
            changed.attempts
        ),
        (
            text["id"].as_str().unwrap(),
            id.as_str(),
            hotline_proto::events::v1::SmsPurpose::NewOrder,
            1
        )
    );
    assert_eq!(changed.assignee_id, desk.technician);
    let raw = String::from_utf8_lossy(&events[1].data);
    assert!(
        !raw.contains("13900139000") && !raw.contains(&number),
        "no phone, no text"
    );
    assert_eq!(
        (
            &text["purpose"],
            &text["to"],
            &text["encoding"],
            &text["provider"]
        ),
        (
            &json!("new_order"),
            &json!("+8613900139000"),
            &json!("ucs2"),
            &json!("sink")
        )
    );
    let body = text["body"].as_str().unwrap();
    for expected in [
        number.as_str(),
        "No signal",
        "建国路 88 号",
        "刘女士",
        "+8613800138055",
        "接单",
    ] {
        assert!(body.contains(expected), "{expected} in {body}");
    }
    // Chinese goes as UCS-2: 67 characters to a part of a long message.
    let units: usize = body.encode_utf16().count();
    assert_eq!(text["parts"], json!(units.div_ceil(67)));
    assert!(text["sent_at"].is_string() && text["delivered_at"].is_string());

    // Taken from them (to a shop), they are told; so is nobody at a shop.
    desk.step(
        &id,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": desk.shop_a_assignee}),
    )
    .await;
    let sent = texts(&desk, &id, 2).await;
    assert_eq!(sent.len(), 2, "shops get webhooks, not texts");
    assert_eq!(sent[1]["purpose"], "withdrawn");
    assert!(sent[1]["body"].as_str().unwrap().contains(&number));

    // Cancelled while theirs: told too.
    desk.step(
        &id,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    desk.step(&id, "cancel", &desk.lead, json!({"reason": "客户取消"}))
        .await;
    let sent = texts(&desk, &id, 4).await;
    let purposes: Vec<&str> = sent
        .iter()
        .map(|m| m["purpose"].as_str().unwrap())
        .collect();
    assert_eq!(
        purposes,
        ["new_order", "withdrawn", "new_order", "cancelled"]
    );
    problem(
        desk.get("/api/v1/sms/messages", &desk.shop_a).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn a_technician_accepts_and_resolves_by_replying(desk: Desk) {
    let customer = desk.customer("陈先生", "13800138066").await;
    let (id, number) = dispatched_to_technician(&desk, &customer).await;
    // From their phone however written, with the Chinese verb against the number.
    let accepted = reply(&desk, "139 0013 9000", &format!("接单{number}")).await;
    assert_eq!(
        (&accepted["outcome"], &accepted["command"]),
        (&json!("applied"), &json!("accept"))
    );
    let read = desk.read(&id, &desk.lead).await;
    assert_eq!(read["status"], "accepted");
    let history = desk.history(&id, &desk.lead).await;
    let last = history.last().unwrap();
    assert_eq!(
        (&last["action"], &last["actor_kind"], &last["actor"]),
        (&json!("accept"), &json!("sms"), &json!(desk.technician))
    );
    // The same text delivered twice changes nothing.
    let again = reply(&desk, "+8613900139000", &format!("ACCEPT {number}")).await;
    assert_eq!(again["outcome"], "already_applied");
    assert_eq!(desk.history(&id, &desk.lead).await.len(), history.len());
    let done = reply(&desk, "13900139000", &format!("done {number} FIXED")).await;
    assert_eq!(done["outcome"], "applied");
    let resolved = desk.read(&id, &desk.lead).await;
    assert_eq!(
        (&resolved["status"], &resolved["resolution_code"]),
        (&json!("resolved"), &json!("fixed"))
    );
    // Each was answered; the replies are in the log beside the order's texts.
    let sent = texts(&desk, &id, 4).await;
    let purposes: Vec<&str> = sent
        .iter()
        .map(|m| m["purpose"].as_str().unwrap())
        .collect();
    assert_eq!(purposes, ["new_order", "reply_ok", "reply_ok", "reply_ok"]);
    assert!(sent[3]["body"].as_str().unwrap().contains("已完成"));

    // DONE on an order not yet accepted accepts it on the way.
    let second = desk.order(&customer).await;
    let second_id = second["id"].as_str().unwrap();
    desk.step(
        second_id,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": desk.technician}),
    )
    .await;
    let done = reply(
        &desk,
        "13900139000",
        &format!("完成 {} no_fault_found", second["number"].as_str().unwrap()),
    )
    .await;
    assert_eq!(done["outcome"], "applied");
    let actions: Vec<String> = desk
        .history(second_id, &desk.lead)
        .await
        .iter()
        .map(|h| h["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["created", "dispatch", "accept", "resolve"]);
}

async fn replies_that_cannot_take_effect_are_answered_or_kept(desk: Desk) {
    let customer = desk.customer("周女士", "13800138077").await;
    let (id, number) = dispatched_to_technician(&desk, &customer).await;
    // A stranger's text is kept and not answered.
    let stranger = reply(&desk, "13700137000", &format!("ACCEPT {number}")).await;
    assert_eq!(stranger["outcome"], "unknown_sender");
    assert!(stranger.get("reply_id").is_none());
    // The technician's mistakes are answered with what went wrong.
    let cases = [
        ("hello".to_owned(), "unknown_command"),
        ("ACCEPT 12".to_owned(), "no_order_number"),
        (format!("DONE {number}"), "no_resolution_code"),
        ("ACCEPT WO-20261201-999999".to_owned(), "no_such_order"),
        (format!("DONE {number} plumbing"), "invalid_request"),
    ];
    for (text, outcome) in cases {
        let answered = reply(&desk, "13900139000", &text).await;
        assert_eq!(answered["outcome"], outcome, "{text}");
        assert!(answered["reply_id"].is_string(), "{text}");
    }
    assert_eq!(
        desk.read(&id, &desk.lead).await["status"],
        "dispatched",
        "nothing changed"
    );
    // Another technician's order is not theirs to take.
    desk.assignee(json!({"kind": "technician", "name": "孙师傅", "phone": "13900139111"}))
        .await;
    let not_theirs = reply(&desk, "13900139111", &format!("ACCEPT {number}")).await;
    assert_eq!(not_theirs["outcome"], "not_yours");
    // A decline by text frees the order (no rules here: it waits, new).
    let declined = reply(&desk, "13900139000", &format!("拒单 {number} 不在服务区")).await;
    assert_eq!(declined["outcome"], "applied");
    let read = desk.read(&id, &desk.lead).await;
    assert_eq!(read["status"], "new");
    let history = desk.history(&id, &desk.lead).await;
    assert_eq!(history.last().unwrap()["changes"]["reason"], "不在服务区");
    // Agents and shops can't play texts into the sink.
    for token in [&desk.agent, &desk.shop_a] {
        problem(
            desk.post(
                "/api/v1/sms/sink/inbound",
                token,
                &json!({"from": "13900139000", "text": "hello"}),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
}

pub(crate) async fn messages(desk: &Desk, order: &str) -> Vec<Value> {
    let page = desk
        .ok_json(
            desk.get(
                &format!("/api/v1/sms/messages?work_order_id={order}"),
                &desk.lead,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    let mut items = page["items"].as_array().unwrap().clone();
    items.reverse();
    items
}

async fn texts_go_through_an_http_gateway_retried_and_reported(desk: Desk) {
    let gateway = Receiver::start(&[
        Answer::Status(503),
        Answer::Json(200, r#"{"message_id": "gw-1"}"#),
        Answer::Json(400, r#"{"error": "number barred"}"#),
    ])
    .await;
    let mut config = ticketing_config();
    config.sms.provider = "http".into();
    config.sms.http.url = gateway.url.clone();
    config.sms.http.sender = "10690000".into();
    config.sms.http.callback_token = "gateway-token".into();
    let desk = desk.restart_with(config).await;
    let recording = desk.record(&["ticketing.sms.#"]);
    let customer = desk.customer("孙女士", "13800138081").await;
    let (id, _) = dispatched_to_technician(&desk, &customer).await;

    // The gateway is down: the text waits for its retry, 5 s later.
    gateway.wait_for(1).await;
    until("the failed attempt recorded", async || {
        messages(&desk, &id).await[0]["attempts"] == 1
    })
    .await;
    let waiting = &messages(&desk, &id).await[0];
    assert_eq!(waiting["status"], "queued");
    assert!(
        waiting["error"].as_str().unwrap().contains("503"),
        "{waiting}"
    );
    desk.clock.advance(chrono::Duration::seconds(6));
    let requests = gateway.wait_for(2).await;
    until("the text sent", async || {
        messages(&desk, &id).await[0]["status"] == "sent"
    })
    .await;
    let text = messages(&desk, &id).await[0].clone();
    assert_eq!(
        (&text["provider"], &text["attempts"]),
        (&json!("http"), &json!(2))
    );
    // Both requests carry the same reference (the text's id), its whole text.
    for request in &requests {
        let fields: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(
            (
                &fields["to"],
                &fields["from"],
                &fields["reference"],
                &fields["text"]
            ),
            (
                &json!("+8613900139000"),
                &json!("10690000"),
                &text["id"],
                &text["body"]
            )
        );
    }

    // The gateway's delivery report: only with its token; a repeat changes nothing.
    let report = json!({"reference": text["id"], "status": "DELIVRD"});
    let forged = desk
        .post("/api/v1/sms/http/status?token=guess", &desk.lead, &report)
        .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    for expected in ["delivered", "unchanged"] {
        let answer = desk
            .ok_json(
                desk.post(
                    "/api/v1/sms/http/status?token=gateway-token",
                    &desk.lead,
                    &report,
                )
                .await,
                StatusCode::OK,
            )
            .await;
        assert_eq!(answer["outcome"], expected);
    }
    assert_eq!(messages(&desk, &id).await[0]["status"], "delivered");

    // A text the gateway refuses outright fails at once.
    desk.step(
        &id,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": desk.shop_a_assignee}),
    )
    .await;
    gateway.wait_for(3).await;
    until("the refused text failed", async || {
        messages(&desk, &id)
            .await
            .get(1)
            .is_some_and(|m| m["status"] == "failed")
    })
    .await;
    let refused = &messages(&desk, &id).await[1];
    assert_eq!(
        (&refused["purpose"], &refused["attempts"]),
        (&json!("withdrawn"), &json!(1))
    );
    assert!(
        refused["error"].as_str().unwrap().contains("number barred"),
        "{refused}"
    );
    until("the texts' events", async || recording.recorder.len() >= 3).await;
    let kinds: Vec<String> = recording
        .recorder
        .events()
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "ticketing.sms.sent",
            "ticketing.sms.delivered",
            "ticketing.sms.failed"
        ]
    );
    gateway.stop().await;
}

async fn a_supervisor_texts_technicians_a_notice(desk: Desk) {
    let second = desk
        .assignee(json!({"kind": "technician", "name": "赵师傅", "phone": "13900139021"}))
        .await;
    let notice = "台风预警：今晚停止上门维修，请注意安全。";
    let body = json!({"assignee_ids": [desk.technician, second], "text": notice});
    let queued = desk
        .ok_json(
            desk.post("/api/v1/sms/notices", &desk.lead, &body).await,
            StatusCode::ACCEPTED,
        )
        .await;
    let ids = queued["queued"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 2);
    until("both notices delivered", async || {
        let page = desk
            .ok_json(
                desk.get("/api/v1/sms/messages", &desk.lead).await,
                StatusCode::OK,
            )
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| ids.contains(&m["id"]) && m["status"] == "delivered")
            .count()
            == 2
    })
    .await;
    let page = desk
        .ok_json(
            desk.get("/api/v1/sms/messages", &desk.lead).await,
            StatusCode::OK,
        )
        .await;
    let sent: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| ids.contains(&m["id"]))
        .collect();
    let mut phones: Vec<&str> = sent.iter().map(|m| m["to"].as_str().unwrap()).collect();
    phones.sort_unstable();
    assert_eq!(phones, ["+8613900139000", "+8613900139021"]);
    assert!(
        sent.iter()
            .all(|m| m["body"] == notice && m["purpose"] == "notice" && m["encoding"] == "ucs2")
    );

    // Only supervisors and admins; only active technicians with a phone, each
    // once; a text that fits. Nothing is queued by a refusal.
    let forbidden = desk.post("/api/v1/sms/notices", &desk.agent, &body).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    for (bad, pointer) in [
        (
            json!({"assignee_ids": [desk.shop_a_assignee], "text": "x"}),
            "/assignee_ids",
        ),
        (
            json!({"assignee_ids": [uuid::Uuid::now_v7()], "text": "x"}),
            "/assignee_ids",
        ),
        (
            json!({"assignee_ids": [second, second], "text": "x"}),
            "/assignee_ids",
        ),
        (json!({"assignee_ids": [], "text": "x"}), "/assignee_ids"),
        (json!({"assignee_ids": [second], "text": "  "}), "/text"),
        (
            json!({"assignee_ids": [second], "text": "长".repeat(67 * 6 + 1)}),
            "/text",
        ),
    ] {
        let refused = desk.post("/api/v1/sms/notices", &desk.lead, &bad).await;
        let problem = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
    }
    let after = desk
        .ok_json(
            desk.get("/api/v1/sms/messages", &desk.lead).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        after["items"].as_array().unwrap().len(),
        page["items"].as_array().unwrap().len()
    );
}
