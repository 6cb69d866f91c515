//! What routing publishes: every task and agent change, with the timestamps
//! reports compute service level, speed of answer and handle time from.

use std::time::Duration;

use hotline_kit::bus::{Fanout, Subscription};
use hotline_proto::{
    events::v1::{AgentChanged, RoutedTask},
    routing::v1::{Channel, TaskKind, TaskStatus},
};
use hotline_testkit::Recording;
use prost::Message;
use serde_json::json;

use crate::helpers::Center;

crate::on_both_backends!(
    every_change_of_a_call_is_published_in_order_with_its_timestamps,
    a_rejected_offer_is_published_with_the_reservation_it_ended
);

/// Records what routing publishes under `binding`, as reporting would.
fn record(center: &Center, binding: &str) -> Recording {
    let subscription = Subscription {
        name: "reporting.test".into(),
        bindings: vec![binding.into()],
        fanout: Fanout::Shared,
    };
    let bus = center.app.platform.bus.clone();
    bus.declare(std::slice::from_ref(&subscription));
    Recording::start(bus, subscription)
}

/// Waits until an event of `kind` has been recorded.
async fn published(recording: &Recording, kind: &str) {
    let recorder = recording.recorder.clone();
    let seen = hotline_testkit::eventually(Duration::from_secs(10), || {
        let recorder = recorder.clone();
        async move { recorder.kinds().iter().any(|k| k == kind) }
    })
    .await;
    assert!(seen, "no {kind} in {:?}", recording.recorder.kinds());
}

async fn every_change_of_a_call_is_published_in_order_with_its_timestamps(center: Center) {
    let recording = record(&center, "routing.#");
    center
        .queue(json!({"name": "q", "target": "true", "wrap_up_seconds": 1}))
        .await;
    let agent = center.agent(json!({"name": "a"})).await;
    let call = center.call(json!({"call_id": "e1", "queue": "q"})).await;
    let reservation = call["reservation"]["id"].as_str().unwrap();
    center
        .post(
            &format!("/api/v1/reservations/{reservation}/accept"),
            &agent.token,
            &json!({}),
        )
        .await;
    center
        .post("/api/v1/cti/calls/e1/ended", &center.switch, &json!({}))
        .await;
    let id = call["id"].as_str().unwrap();
    center
        .task_until(id, |task| task["status"] == "completed")
        .await;
    published(&recording, "routing.task.completed").await;
    // The agent's return to ready comes with the completion, and may be
    // delivered just after it: stopping at the completion lost it under load.
    let recorder = recording.recorder.clone();
    let back_to_ready = hotline_testkit::eventually(Duration::from_secs(10), || {
        let recorder = recorder.clone();
        async move {
            let states = agent_states(&recorder.events());
            states.len() > 1 && states.last().map(String::as_str) == Some("ready")
        }
    })
    .await;
    assert!(
        back_to_ready,
        "{:?}",
        agent_states(&recording.recorder.events())
    );
    let events = recording.finish().await;
    let task_kinds: Vec<&str> = events
        .iter()
        .filter(|e| e.subject.as_deref() == Some(id))
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(
        task_kinds,
        [
            "routing.task.created",
            "routing.task.reserved",
            "routing.task.assigned",
            "routing.task.ended",
            "routing.task.completed"
        ]
    );
    let sequences: Vec<u64> = events.iter().filter_map(|e| e.sequence).collect();
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "in commit order"
    );
    let completed = events
        .iter()
        .find(|e| e.kind == "routing.task.completed")
        .unwrap();
    let task = RoutedTask::decode(completed.data.as_slice()).unwrap();
    assert_eq!(task.agent_id, agent.id);
    assert_eq!(
        (task.kind(), task.channel(), task.status()),
        (TaskKind::Inbound, Channel::Voice, TaskStatus::Completed)
    );
    assert_eq!(task.service_level_seconds, 20);
    for (name, stamp) in [
        ("created", &task.created_at),
        ("offered", &task.offered_at),
        ("answered", &task.answered_at),
        ("ended", &task.ended_at),
        ("wrap-up end", &task.wrap_up_until),
        ("completed", &task.completed_at),
    ] {
        assert!(stamp.is_some(), "{name} missing");
    }
    assert_eq!(
        agent_states(&events),
        ["ready", "reserved", "busy", "wrap_up", "ready"]
    );
}

/// The states the agent went through, as its events say.
fn agent_states(events: &[hotline_kit::bus::Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == "routing.agent.state_changed")
        .map(|e| AgentChanged::decode(e.data.as_slice()).unwrap().state)
        .collect()
}

/// Reports count offers per agent: an offer's end names the offer, although
/// the task, back in line, holds none.
async fn a_rejected_offer_is_published_with_the_reservation_it_ended(center: Center) {
    let recording = record(&center, "routing.task.#");
    center.queue(json!({"name": "q", "target": "true"})).await;
    let agent = center.agent(json!({"name": "a"})).await;
    let call = center.call(json!({"call_id": "r1", "queue": "q"})).await;
    let reservation = call["reservation"]["id"].as_str().unwrap();
    center
        .post(
            &format!("/api/v1/reservations/{reservation}/reject"),
            &agent.token,
            &json!({"reason": "wrong skill"}),
        )
        .await;
    published(&recording, "routing.task.rejected").await;
    let events = recording.finish().await;
    let event = events
        .iter()
        .find(|e| e.kind == "routing.task.rejected")
        .unwrap();
    let task = RoutedTask::decode(event.data.as_slice()).unwrap();
    assert_eq!(task.status(), TaskStatus::Pending);
    assert_eq!(task.reservation_id, reservation);
    assert_eq!(task.agent_id, agent.id);
    assert!(task.offered_at.is_some());
}
