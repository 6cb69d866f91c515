//! PostgreSQL going away under the router: commits fail, the router is
//! rebuilt from the database when it returns, and nothing is lost or doubled.

use std::time::Duration;

use hotline_testkit::{Infra, Link, TcpProxy};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::Center;

/// A call that arrives while the database is down waits (up to
/// `routing.forward_timeout`) and is placed once it is back; what was routed
/// before the outage is as it was, and the switch repeating the call gets the
/// same task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_during_a_database_outage_is_placed_once_the_database_returns() {
    let Some(mut infra) = Infra::real().await else {
        return;
    };
    let (proxy, url) = TcpProxy::in_front_of(&infra.database_url, 5432, Link::Up).await;
    infra.database_url = url;
    let center = Center::spawn(infra).await;
    center.queue(json!({"name": "q", "target": "true"})).await;
    let first_agent = center.agent(json!({"name": "a"})).await;
    let second_agent = center.agent(json!({"name": "b"})).await;
    let before = center.call(json!({"call_id": "o1", "queue": "q"})).await;
    assert_eq!(before["status"], "reserved");

    proxy.set(Link::Down);
    let during = {
        let (client, url, token) = (
            center.app.client.clone(),
            center.app.url("/api/v1/cti/calls"),
            center.switch.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"call_id": "o2", "queue": "q"}))
                .send()
                .await
                .unwrap()
        })
    };
    // Longer than the lease (3 s): the router loses it and must take it back.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !during.is_finished(),
        "answered while nothing could be saved"
    );
    proxy.set(Link::Up);

    let placed = center
        .ok_json(during.await.unwrap(), StatusCode::CREATED)
        .await;
    assert!(center.routed().await, "the router is back");
    assert_eq!(placed["status"], "reserved", "{placed}");
    let agents = [
        before["reservation"]["agent_id"].clone(),
        placed["reservation"]["agent_id"].clone(),
    ];
    assert!(
        agents.contains(&json!(first_agent.id)) && agents.contains(&json!(second_agent.id)),
        "one call per agent: {agents:?}"
    );
    let kept = center.task(before["id"].as_str().unwrap()).await;
    assert_eq!(kept["status"], "reserved");
    assert_eq!(kept["reservation"]["id"], before["reservation"]["id"]);
    let repeated = center
        .ok_json(
            center
                .post(
                    "/api/v1/cti/calls",
                    &center.switch,
                    &json!({"call_id": "o2", "queue": "q"}),
                )
                .await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(repeated["id"], placed["id"], "not a second task");
}
