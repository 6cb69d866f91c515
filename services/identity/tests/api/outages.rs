//! Identity when the broker goes away: it starts and serves, events wait in the
//! outbox, and they reach the broker in order once it is back.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use hotline_kit::{
    bus::{AmqpBus, AmqpSettings, Bus, Event, EventHandler, Fanout, HandlerError, Subscription},
    platform::connect_bus,
};
use hotline_testkit::{Infra, TcpProxy, eventually, host_port};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{Identity, identity_config, zhang_wei};

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

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
    let observer = AmqpBus::new(AmqpSettings {
        url: infra.amqp_url.clone(),
        ..AmqpSettings::default()
    });
    let subscription = Subscription {
        name: "observer.customers".into(),
        bindings: vec!["identity.customer.*".into()],
        fanout: Fanout::Shared,
    };
    observer.declare(std::slice::from_ref(&subscription));
    observer
        .check()
        .await
        .expect("the broker answers the observer");

    // Identity reaches the broker through a proxy that is down from the start.
    let proxy = TcpProxy::start_down(&host_port(&infra.amqp_url, 5672)).await;
    let mut bus_config = infra.bus_config();
    bus_config.amqp_url = hotline_kit::config::SecretUrl::new(proxy.url_for(&infra.amqp_url));
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

    let recorder = Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    let consumer = {
        let (bus, handler, stop) = (observer.clone(), recorder.clone(), stop.clone());
        tokio::spawn(async move { bus.consume(subscription, handler, stop).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        recorder.0.lock().unwrap().is_empty(),
        "nothing leaks past the outage"
    );

    proxy.resume().await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            recorder.0.lock().unwrap().len() >= 3
        })
        .await,
        "the outbox drains once the broker is back"
    );

    // Cut again mid-run: the next change waits, then follows.
    proxy.stop().await;
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
    proxy.resume().await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            recorder.0.lock().unwrap().len() >= 4
        })
        .await,
        "a change made during the second outage follows"
    );
    stop.cancel();
    consumer.await.unwrap().unwrap();

    let events = recorder.0.lock().unwrap().clone();
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
