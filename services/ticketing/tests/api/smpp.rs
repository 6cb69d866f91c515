//! Texts over SMPP 3.4 to a stand-in SMSC (rusmpp's codec): bound as a
//! transceiver, Chinese in UCS-2 parts with one concatenation reference and
//! the text's stable id on each, receipts turning texts delivered or failed
//! (also one that overtakes its `submit_sm_resp`), a technician's reply
//! arriving as `deliver_sm`; a window of submits outstanding; throttling,
//! a cut link and refused binds retried without losing a text.

use std::time::Duration;

use hotline_testkit::Smsc;
use serde_json::{Value, json};

use crate::{
    helpers::{Desk, ticketing_config, until},
    sms::{dispatched_to_technician, messages},
};

crate::on_both_backends!(
    texts_reach_the_smsc_and_its_receipts_come_back,
    a_technician_replies_through_the_smsc,
    submits_are_windowed_and_failures_retried,
    a_cut_link_and_refused_binds_lose_nothing,
);

const SYSTEM_ID: &str = "hotline";
const PASSWORD: &str = "s3cret";

/// Ticketing on `smsc`, rebinding quickly.
async fn on_smsc(desk: Desk, smsc: &Smsc, window: usize) -> Desk {
    let mut config = ticketing_config();
    config.sms.provider = "smpp".into();
    config.sms.poll = Duration::from_millis(50);
    let smpp = &mut config.sms.smpp;
    smpp.address = smsc.url();
    smpp.system_id = SYSTEM_ID.into();
    smpp.password = hotline_kit::config::Secret::new(PASSWORD);
    smpp.source_addr = "10690000".into();
    smpp.window = window;
    smpp.response_timeout = Duration::from_secs(2);
    smpp.reconnect_min = Duration::from_millis(100);
    smpp.reconnect_max = Duration::from_millis(400);
    desk.restart_with(config).await
}

async fn one_text(desk: &Desk, order: &str) -> Value {
    messages(desk, order).await.remove(0)
}

async fn text_status(desk: &Desk, order: &str, status: &str) -> Value {
    until(&format!("the text {status}"), async || {
        one_text(desk, order).await["status"] == status
    })
    .await;
    one_text(desk, order).await
}

/// A technician of its own (capacity enough for every order of a test).
async fn technician(desk: &Desk, phone: &str) -> String {
    desk.assignee(json!({"kind": "technician", "name": "李师傅", "phone": phone, "capacity": 50}))
        .await
}

async fn texts_reach_the_smsc_and_its_receipts_come_back(desk: Desk) {
    let smsc = Smsc::start(SYSTEM_ID, PASSWORD).await;
    let desk = on_smsc(desk, &smsc, 64).await;
    let recording = desk.record(&["ticketing.sms.#"]);
    let customer = desk.customer("周女士", "13800138091").await;
    let (id, number) = dispatched_to_technician(&desk, &customer).await;

    let text = text_status(&desk, &id, "delivered").await;
    assert_eq!(smsc.binds(), 1);
    let parts = smsc.parts();
    let count = text["parts"].as_u64().unwrap() as usize;
    assert!(count >= 2, "the new-order text is long: {text}");
    assert_eq!(parts.len(), count);
    // UCS-2 parts of one message: one reference, numbered, the text's id on each.
    let reference = parts[0].concatenation().unwrap().0;
    for (part, sequence) in parts.iter().zip(1u8..) {
        assert_eq!(
            part.concatenation(),
            Some((reference, count as u8, sequence))
        );
        assert_eq!(
            (
                part.data_coding,
                part.to.as_str(),
                part.from.as_str(),
                part.receipt
            ),
            (8, "8613900139000", "10690000", true)
        );
        assert_eq!(part.stable_id.as_deref(), text["id"].as_str());
        assert!(part.short_message.len() <= 140);
    }
    let joined: String = parts.iter().map(|p| p.text()).collect();
    assert_eq!(joined, text["body"].as_str().unwrap());
    assert!(joined.contains(&number), "{joined}");
    assert_eq!(
        text["provider_ids"],
        json!(
            parts
                .iter()
                .map(|p| p.message_id.clone())
                .collect::<Vec<_>>()
        )
    );
    // Each receipt acknowledged once recorded; events sent then delivered.
    assert!(
        smsc.wait(Duration::from_secs(5), |s| s.receipts_acked() == count)
            .await
    );
    until("the text's events", async || recording.recorder.len() >= 2).await;
    let kinds: Vec<String> = recording
        .recorder
        .events()
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(kinds, ["ticketing.sms.sent", "ticketing.sms.delivered"]);

    // A receipt saying the phone was never reached fails the next text.
    smsc.behave(|b| b.receipts = Some("UNDELIV"));
    let other = technician(&desk, "13900139011").await;
    let order = desk.order(&customer).await;
    let second = order["id"].as_str().unwrap();
    desk.step(
        second,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": other}),
    )
    .await;
    let failed = text_status(&desk, second, "failed").await;
    assert!(
        failed["error"].as_str().unwrap().contains("UNDELIV"),
        "{failed}"
    );

    // A receipt that overtakes its submit_sm_resp still finds its text.
    smsc.behave(|b| {
        b.receipts = Some("DELIVRD");
        b.early_receipts = true;
        b.delay = Duration::from_millis(300);
    });
    let order = desk.order(&customer).await;
    let third = order["id"].as_str().unwrap();
    desk.step(third, "dispatch", &desk.lead, json!({"assignee_id": other}))
        .await;
    text_status(&desk, third, "delivered").await;
    // A repeated receipt changes nothing.
    let before = recording.recorder.len();
    let last = smsc.parts().last().unwrap().message_id.clone();
    smsc.send_receipt(&last, "UNDELIV");
    let acked = smsc.receipts_acked();
    assert!(
        smsc.wait(Duration::from_secs(5), |s| s.receipts_acked() > acked)
            .await
    );
    assert_eq!(one_text(&desk, third).await["status"], "delivered");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        recording
            .recorder
            .events()
            .iter()
            .skip(before)
            .filter(|e| e.kind == "ticketing.sms.failed")
            .count(),
        0
    );
}

async fn a_technician_replies_through_the_smsc(desk: Desk) {
    let smsc = Smsc::start(SYSTEM_ID, PASSWORD).await;
    let desk = on_smsc(desk, &smsc, 64).await;
    let customer = desk.customer("吴先生", "13800138092").await;
    let (id, number) = dispatched_to_technician(&desk, &customer).await;
    text_status(&desk, &id, "delivered").await;
    let sent = smsc.parts().len();

    // "接单 <number>" in UCS-2 from the technician's phone, as an SMSC passes it on.
    smsc.send_text("8613900139000", "10690000", &format!("接单 {number}"));
    until("the order accepted", async || {
        desk.read(&id, &desk.lead).await["status"] == "accepted"
    })
    .await;
    // The confirmation goes back over SMPP; the reply was acknowledged.
    assert!(
        smsc.wait(Duration::from_secs(5), |s| s.parts().len() > sent)
            .await
    );
    let reply: String = smsc.parts()[sent..].iter().map(|p| p.text()).collect();
    assert!(
        reply.contains(&number) && reply.contains("已接单"),
        "{reply}"
    );
    let history = desk.history(&id, &desk.lead).await;
    assert!(
        history
            .iter()
            .any(|h| h["action"] == "accept" && h["actor_kind"] == "sms"),
        "{history:?}"
    );

    // ASCII (GSM) from the same phone: DONE with a resolution code.
    smsc.send_text("8613900139000", "10690000", &format!("DONE {number} FIXED"));
    until("the order resolved", async || {
        desk.read(&id, &desk.lead).await["status"] == "resolved"
    })
    .await;
}

async fn submits_are_windowed_and_failures_retried(desk: Desk) {
    let smsc = Smsc::start(SYSTEM_ID, PASSWORD).await;
    smsc.behave(|b| b.delay = Duration::from_millis(400));
    let desk = on_smsc(desk, &smsc, 3).await;
    let customer = desk.customer("郑女士", "13800138093").await;
    let tech = technician(&desk, "13900139012").await;
    let mut orders = Vec::new();
    for _ in 0..6 {
        let order = desk.order(&customer).await;
        let id = order["id"].as_str().unwrap().to_owned();
        desk.step(&id, "dispatch", &desk.lead, json!({"assignee_id": tech}))
            .await;
        orders.push(id);
    }
    for id in &orders {
        text_status(&desk, id, "delivered").await;
    }
    // Several submits outstanding at once, never more than the window.
    assert!(
        (2..=3).contains(&smsc.most_outstanding()),
        "{} outstanding at most",
        smsc.most_outstanding()
    );

    // Throttled: the text waits for its next attempt and goes through then.
    smsc.behave(|b| {
        b.delay = Duration::ZERO;
        b.throttle = 1;
    });
    let order = desk.order(&customer).await;
    let throttled = order["id"].as_str().unwrap().to_owned();
    desk.step(
        &throttled,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": tech}),
    )
    .await;
    until("the throttled attempt recorded", async || {
        one_text(&desk, &throttled).await["attempts"] == 1
    })
    .await;
    let waiting = one_text(&desk, &throttled).await;
    assert_eq!(waiting["status"], "queued");
    assert!(
        waiting["error"].as_str().unwrap().contains("throttled"),
        "{waiting}"
    );
    desk.clock.advance(chrono::Duration::seconds(6));
    let sent = text_status(&desk, &throttled, "delivered").await;
    assert_eq!(sent["attempts"], 2);

    // Refused for good: failed at once, never retried.
    smsc.behave(|b| b.refuse = 1);
    let order = desk.order(&customer).await;
    let refused = order["id"].as_str().unwrap().to_owned();
    desk.step(
        &refused,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": tech}),
    )
    .await;
    let failed = text_status(&desk, &refused, "failed").await;
    assert_eq!(failed["attempts"], 1);
}

async fn a_cut_link_and_refused_binds_lose_nothing(desk: Desk) {
    let smsc = Smsc::start(SYSTEM_ID, PASSWORD).await;
    smsc.behave(|b| b.delay = Duration::from_millis(1500));
    let desk = on_smsc(desk, &smsc, 64).await;
    let customer = desk.customer("冯先生", "13800138094").await;
    let tech = technician(&desk, "13900139013").await;
    let order = desk.order(&customer).await;
    let id = order["id"].as_str().unwrap().to_owned();
    desk.step(&id, "dispatch", &desk.lead, json!({"assignee_id": tech}))
        .await;
    // The link dies with the submit outstanding: the text is tried again.
    assert!(smsc.wait(Duration::from_secs(5), |s| s.taken() >= 1).await);
    smsc.behave(|b| b.delay = Duration::ZERO);
    smsc.cut();
    until("the lost attempt recorded", async || {
        one_text(&desk, &id).await["attempts"] == 1
    })
    .await;
    assert_eq!(one_text(&desk, &id).await["status"], "queued");
    assert!(smsc.wait(Duration::from_secs(5), |s| s.binds() >= 2).await);
    desk.clock.advance(chrono::Duration::seconds(6));
    let text = text_status(&desk, &id, "delivered").await;
    // Sent again with the same id: the SMSC can tell it is the same text.
    let ids: Vec<_> = smsc.parts().iter().map(|p| p.stable_id.clone()).collect();
    assert!(ids.iter().all(|s| s.as_deref() == text["id"].as_str()));

    // Binds refused (a password changed at the SMSC): texts wait, then go.
    smsc.behave(|b| b.refuse_binds = true);
    smsc.cut();
    let order = desk.order(&customer).await;
    let waiting = order["id"].as_str().unwrap().to_owned();
    desk.step(
        &waiting,
        "dispatch",
        &desk.lead,
        json!({"assignee_id": tech}),
    )
    .await;
    until("the unbound attempt recorded", async || {
        one_text(&desk, &waiting).await["attempts"] == 1
    })
    .await;
    let queued = one_text(&desk, &waiting).await;
    assert!(
        queued["error"].as_str().unwrap().contains("not bound"),
        "{queued}"
    );
    let binds = smsc.binds();
    smsc.behave(|b| b.refuse_binds = false);
    assert!(
        smsc.wait(Duration::from_secs(5), |s| s.binds() > binds)
            .await
    );
    desk.clock.advance(chrono::Duration::seconds(6));
    text_status(&desk, &waiting, "delivered").await;
}
