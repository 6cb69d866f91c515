//! The CTI adapter and an agent desktop over gRPC: a call offered, the offer
//! streamed to the agent, accepted, and the queue's figures.

use hotline_proto::routing::v1::{self as pb, routing_service_client::RoutingServiceClient};
use serde_json::json;
use tonic::{Code, Request, metadata::MetadataValue, transport::Channel};

use crate::helpers::Center;

crate::on_both_backends!(a_call_is_offered_streamed_and_accepted_over_grpc);

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
            pb::AgentRequest {
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
        if update.kind == "offer" {
            break update;
        }
    };
    let reservation = update.task.unwrap().reservation.unwrap();
    assert_eq!(reservation.agent_id, agent.id);

    let other = center.agent(json!({"name": "b"})).await;
    let refused = client
        .accept_reservation(request(
            &other.token,
            pb::ReservationRequest {
                id: reservation.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let accepted = client
        .accept_reservation(request(
            &agent.token,
            pb::ReservationRequest { id: reservation.id },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.task.unwrap().status, "assigned");
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
            pb::CallRequest {
                call_id: "g1".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.task.unwrap().id, task.id);
}
