//! The CTI adapter and an agent desktop over gRPC: a call offered, the offer
//! streamed to the agent, accepted, and the queue's figures.

use hotline_proto::routing::v1::{
    self as pb, router_peer_service_client::RouterPeerServiceClient,
    routing_service_client::RoutingServiceClient,
};
use serde_json::json;
use tonic::{Code, Request, metadata::MetadataValue, transport::Channel};

use crate::helpers::Center;

crate::on_both_backends!(
    a_call_is_offered_streamed_and_accepted_over_grpc,
    only_replicas_reach_the_router_peer_service
);

fn request<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
}

async fn a_call_is_offered_streamed_and_accepted_over_grpc(center: Center) {
    center.queue(json!({"name": "q", "target": "true"})).await;
    let agent = center.agent(json!({"name": "a"})).await;
    let channel = Channel::from_shared(center.app.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = RoutingServiceClient::new(channel);
    let mut offers = client
        .watch_offers(request(
            &agent.token,
            pb::WatchOffersRequest {
                agent_id: agent.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let offered = client
        .offer_call(request(
            &center.switch,
            pb::OfferCallRequest {
                call_id: "g1".into(),
                queue: "q".into(),
                calling_number: "13800138000".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(offered.created);
    let task = offered.task.unwrap();
    let update = loop {
        let update = offers.message().await.unwrap().unwrap();
        if update.kind() == pb::UpdateKind::Offer {
            break update;
        }
    };
    let reservation = update.task.unwrap().reservation.unwrap();
    assert_eq!(reservation.agent_id, agent.id);

    let other = center.agent(json!({"name": "b"})).await;
    let refused = client
        .accept_reservation(request(
            &other.token,
            pb::AcceptReservationRequest {
                id: reservation.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let accepted = client
        .accept_reservation(request(
            &agent.token,
            pb::AcceptReservationRequest { id: reservation.id },
        ))
        .await
        .unwrap()
        .into_inner();
    let accepted = accepted.task.unwrap();
    assert_eq!(accepted.status(), pb::TaskStatus::Assigned);
    assert_eq!(
        (accepted.kind(), accepted.channel()),
        (pb::TaskKind::Inbound, pb::Channel::Voice)
    );
    let missing = client
        .offer_call(request(
            &center.switch,
            pb::OfferCallRequest {
                call_id: "g2".into(),
                queue: "nowhere".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let stats = client
        .get_queue_stats(request(
            &agent.token,
            pb::GetQueueStatsRequest { queue: "q".into() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.queues[0].offered, stats.queues[0].answered), (1, 1));
    let done = client
        .call_ended(request(
            &center.switch,
            pb::CallEndedRequest {
                call_id: "g1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.task.unwrap().id, task.id);
}

/// The peer service runs commands as they come, past the checks routing's
/// public API makes (a screen pop is routing's to fill in): a client with a
/// valid token but without the replicas' peer key is refused, nothing done.
async fn only_replicas_reach_the_router_peer_service(center: Center) {
    center.queue(json!({"name": "q", "target": "true"})).await;
    let channel = Channel::from_shared(center.app.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut peer = RouterPeerServiceClient::new(channel);
    let forged = serde_json::to_vec(&json!({
        "command": "create_task",
        "task": {"queue": "q", "customer": {"name": "not from identity"}, "customer_id": "c-1"},
    }))
    .unwrap();
    for key in [None, Some("0000"), Some("")] {
        let mut attempt = request(
            &center.switch,
            pb::ExecuteRequest {
                command: forged.clone(),
            },
        );
        if let Some(key) = key {
            attempt
                .metadata_mut()
                .insert("x-hotline-peer-key", MetadataValue::try_from(key).unwrap());
        }
        let refused = peer.execute(attempt).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "key {key:?}");
    }
    let refused = peer
        .subscribe(request(&center.admin, pb::SubscribeRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let stats = center.queue_stats("q").await;
    assert_eq!(stats["offered"], 0, "{stats}");
    assert_eq!(stats["waiting"], 0, "{stats}");
}
