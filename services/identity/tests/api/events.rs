use std::time::Duration;

use hotline_kit::bus::{Event, Fanout, Subscription};
use hotline_proto::events::v1::{CustomerActivity, CustomerChanged, CustomerMerged};
use hotline_testkit::{Recording, eventually};
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Identity, zhang_wei};

crate::on_both_backends!(
    every_customer_change_is_published_with_cloudevents_attributes,
    the_trace_of_a_request_continues_in_its_events,
    activities_of_other_services_land_in_the_timeline_once,
);

/// Listens to identity's events the way another service would: its own queue,
/// declared before anything is published.
async fn observe(app: &Identity) -> Recording {
    let subscription = Subscription {
        name: "observer.customers".into(),
        bindings: vec!["identity.customer.*".into()],
        fanout: Fanout::Shared,
    };
    let bus = app.app.platform.bus.clone();
    bus.declare(std::slice::from_ref(&subscription));
    bus.check().await.unwrap();
    Recording::start(bus, subscription)
}

async fn every_customer_change_is_published_with_cloudevents_attributes(app: Identity) {
    let recording = observe(&app).await;
    let recorder = recording.recorder.clone();
    let created = app.create(zhang_wei()).await;
    let id = created["id"].as_str().unwrap();
    let other = app
        .create(json!({"name": "重复", "phones": [{"number": "13500000009"}]}))
        .await;
    app.request(
        Method::PATCH,
        &format!("/api/v1/customers/{id}"),
        &app.admin,
    )
    .json(&json!({"vip_level": 3}))
    .send()
    .await
    .unwrap();
    app.post(
        &format!("/api/v1/customers/{id}/merge"),
        &app.admin,
        &json!({"merged_id": other["id"]}),
    )
    .await;
    app.request(
        Method::DELETE,
        &format!("/api/v1/customers/{id}"),
        &app.admin,
    )
    .send()
    .await
    .unwrap();

    let expected = [
        "identity.customer.created",
        "identity.customer.created",
        "identity.customer.updated",
        "identity.customer.merged",
        "identity.customer.erased",
        // The record merged into it is erased too.
        "identity.customer.erased",
    ];
    assert!(
        eventually(Duration::from_secs(10), || async {
            recorder.kinds().len() >= expected.len()
        })
        .await,
        "got {:?}",
        recorder.kinds()
    );
    let events = recording.finish().await;
    assert_eq!(recorder.kinds(), expected, "in commit order");
    let first = &events[0];
    assert_eq!(first.source, "/hotline/identity");
    assert_eq!(first.subject.as_deref(), Some(id));
    let changed = CustomerChanged::decode(first.data.as_slice()).unwrap();
    assert_eq!(changed.customer_id, id);
    assert_eq!(changed.version, 1);
    assert_eq!(changed.phones, ["+8613800138000", "+861065529988"]);
    assert_eq!(changed.actor, crate::helpers::ADMIN_ID);
    let merged = CustomerMerged::decode(events[3].data.as_slice()).unwrap();
    assert_eq!(merged.merged_id, other["id"].as_str().unwrap());
    let erased = CustomerChanged::decode(events[4].data.as_slice()).unwrap();
    assert!(erased.phones.is_empty());
    assert_eq!(erased.previous_phones.len(), 3);
    let erased_merged = CustomerChanged::decode(events[5].data.as_slice()).unwrap();
    assert_eq!(erased_merged.customer_id, other["id"].as_str().unwrap());
    let mut ids: Vec<_> = events.iter().map(|e| e.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "distinct event ids");
}

async fn the_trace_of_a_request_continues_in_its_events(app: Identity) {
    let recording = observe(&app).await;
    let recorder = recording.recorder.clone();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = app
        .request(Method::POST, "/api/v1/customers", &app.admin)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&zhang_wei())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(
        eventually(Duration::from_secs(10), || async {
            !recorder.kinds().is_empty()
        })
        .await
    );
    let event = recording.finish().await[0].clone();
    let traceparent = event.traceparent.expect("events carry the trace");
    assert_eq!(
        hotline_kit::telemetry::trace_id(&traceparent),
        Some(trace_id)
    );
}

fn activity_event(customer_id: &str, phone: &str, reference: &str) -> Event {
    let activity = CustomerActivity {
        customer_id: customer_id.into(),
        phone: phone.into(),
        kind: "call".into(),
        reference: reference.into(),
        summary: "inbound call about a broken set-top box".into(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp(),
            nanos: 0,
        }),
        actor: "agent-007".into(),
    };
    Event::new(
        "routing.activity.recorded",
        "/hotline/routing",
        activity.encode_to_vec(),
    )
}

async fn activities_of_other_services_land_in_the_timeline_once(app: Identity) {
    let created = app.create(zhang_wei()).await;
    let id = created["id"].as_str().unwrap();
    // Warm the screen-pop cache, so the new entry must invalidate it.
    assert_eq!(
        app.lookup("13800138000", &app.admin).await["candidates"][0]["recent_history"],
        json!([])
    );
    // Give the timeline consumer time to declare its queue.
    let timeline_path = format!("/api/v1/customers/{id}/timeline");
    let by_id = activity_event(id, "", "task-1");
    // A NUL is dropped: PostgreSQL refuses it in text, and the event would fail
    // on every delivery.
    let by_phone = activity_event("", "+86 138 0013 8000", "task-\u{0}2");
    let bus = app.app.platform.bus.clone();
    let published = eventually(Duration::from_secs(10), || {
        let (bus, event) = (bus.clone(), by_id.clone());
        let app = &app;
        let path = timeline_path.clone();
        async move {
            bus.publish(&event).await.unwrap();
            let page: Value = app.get(&path, &app.admin).await.json().await.unwrap();
            !page["items"].as_array().unwrap().is_empty()
        }
    })
    .await;
    assert!(published, "the activity reached the timeline");
    bus.publish(&by_phone).await.unwrap();
    bus.publish(&by_phone).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            let page: Value = app
                .get(&timeline_path, &app.admin)
                .await
                .json()
                .await
                .unwrap();
            page["items"].as_array().unwrap().len() == 2
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page: Value = app
        .get(&timeline_path, &app.admin)
        .await
        .json()
        .await
        .unwrap();
    let references: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        references.len(),
        2,
        "redelivered events apply once: {references:?}"
    );
    assert!(references.contains(&"task-1") && references.contains(&"task-2"));
    assert_eq!(page["items"][0]["source"], "/hotline/routing");
    let popped = app.lookup("13800138000", &app.admin).await;
    assert_eq!(
        popped["candidates"][0]["recent_history"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
