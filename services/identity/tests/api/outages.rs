//! Identity when the broker goes away: it starts and serves, events wait in the
//! outbox, and they reach the broker in order once it is back.

use std::time::Duration;

use hotline_kit::platform::connect_bus;
use hotline_testkit::{Infra, Link, Recording, TcpProxy, broker_queue, eventually};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Identity, identity_config, zhang_wei};

/// The `outbox_pending_events` gauge of identity's outbox, if reported.
fn pending(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find(|line| line.starts_with("outbox_pending_events{source=\"/hotline/identity\"}"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .map(|value| value as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_serves_with_the_broker_down_and_publishes_in_order_when_it_returns() {
    let Some(infra) = Infra::real().await else {
        return;
    };
    // Another service's queue, straight on the broker, there before anything is published.
    let (observer, subscription) = broker_queue(
        &infra.amqp_url,
        "observer.customers",
        &["identity.customer.*"],
    )
    .await;

    // Identity reaches the broker through a proxy that is down from the start.
    let (proxy, proxied) = TcpProxy::in_front_of(&infra.amqp_url, 5672, Link::Down).await;
    let mut bus_config = infra.bus_config();
    bus_config.amqp_url = hotline_kit::config::SecretUrl::new(proxied);
    let mut platform = infra.platform().await;
    platform.bus = connect_bus(&bus_config, &infra.data_dir()).unwrap();
    let app = Identity::spawn_on(infra, platform, identity_config("")).await;

    // Tokens (spawn_on got one), writes, lookups and readiness, all with the broker down.
    let ready = app
        .app
        .client
        .get(app.app.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "the broker is not a readiness dependency"
    );
    let created = app.create(zhang_wei()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    for vip_level in [3, 4] {
        let response = app
            .request(
                Method::PATCH,
                &format!("/api/v1/customers/{id}"),
                &app.admin,
            )
            .json(&json!({"vip_level": vip_level}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        app.lookup("13800138000", &app.admin).await["candidates"][0]["customer"]["id"],
        id
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            pending(&app.metrics().await) == Some(3)
        })
        .await,
        "the events wait in the outbox"
    );

    let recording = Recording::start(observer, subscription);
    let recorder = recording.recorder.clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(recorder.is_empty(), "nothing leaks past the outage");

    proxy.set(Link::Up);
    assert!(
        eventually(Duration::from_secs(30), || async { recorder.len() >= 3 }).await,
        "the outbox drains once the broker is back"
    );

    // Cut again mid-run: the next change waits, then follows.
    proxy.set(Link::Down);
    let response = app
        .request(
            Method::PATCH,
            &format!("/api/v1/customers/{id}"),
            &app.admin,
        )
        .json(&json!({"vip_level": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    proxy.set(Link::Up);
    assert!(
        eventually(Duration::from_secs(30), || async { recorder.len() >= 4 }).await,
        "a change made during the second outage follows"
    );
    let events = recording.finish().await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "identity.customer.created",
            "identity.customer.updated",
            "identity.customer.updated",
            "identity.customer.updated"
        ]
    );
    let sequences: Vec<u64> = events
        .iter()
        .map(|e| e.sequence.expect("a sequence"))
        .collect();
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "in outbox order: {sequences:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e.subject.as_deref() == Some(id.as_str()))
    );
}
