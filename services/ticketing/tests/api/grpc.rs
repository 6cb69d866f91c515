//! Internal apps over gRPC: an order opened, stepped, refused an illegal
//! step with the richer error model, found by number, its history read.

use hotline_proto::ticketing::v1::{self as pb, ticketing_service_client::TicketingServiceClient};
use tonic::{Code, Request, metadata::MetadataValue, transport::Channel};
use tonic_types::StatusExt;

use crate::helpers::Desk;

crate::on_both_backends!(an_order_is_opened_stepped_and_read_over_grpc);

fn request<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    request
}

async fn an_order_is_opened_stepped_and_read_over_grpc(desk: Desk) {
    let customer = desk.customer("黄蓉", "13800138030").await;
    let channel = Channel::from_shared(desk.app.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = TicketingServiceClient::new(channel);
    let created = client
        .create_work_order(request(
            &desk.agent,
            pb::CreateWorkOrderRequest {
                r#type: "fault_repair".into(),
                category_id: desk.no_signal.clone(),
                priority: pb::Priority::Major.into(),
                customer_id: customer.clone(),
                region_id: desk.chaoyang.clone(),
                description: "No picture".into(),
                idempotency_key: "grpc-1".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(created.status(), pb::WorkOrderStatus::New);
    assert_eq!(created.priority(), pb::Priority::Major);
    assert_eq!(created.customer.as_ref().unwrap().phone, "+8613800138030");
    assert_eq!(
        created.allowed_actions,
        [pb::Action::Dispatch as i32, pb::Action::Cancel as i32]
    );

    let illegal = client
        .act(request(
            &desk.agent,
            pb::ActRequest {
                id: created.id.clone(),
                action: pb::Action::Close.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(illegal.code(), Code::FailedPrecondition);
    let info = illegal.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.reason, "ILLEGAL_TRANSITION");

    let invalid = client
        .act(request(
            &desk.agent,
            pb::ActRequest {
                id: created.id.clone(),
                action: pb::Action::Dispatch.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    // Naming no one asks the dispatch rules; there are none here.
    assert_eq!(invalid.code(), Code::FailedPrecondition);
    let info = invalid.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.metadata["code"], "no_dispatch_rule");

    let dispatched = client
        .act(request(
            &desk.agent,
            pb::ActRequest {
                id: created.id.clone(),
                action: pb::Action::Dispatch.into(),
                assignee_id: desk.technician.clone(),
                expected_version: created.version,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(dispatched.status(), pb::WorkOrderStatus::Dispatched);
    let stale = client
        .act(request(
            &desk.agent,
            pb::ActRequest {
                id: created.id.clone(),
                action: pb::Action::Accept.into(),
                expected_version: created.version,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition);

    let note = client
        .add_note(request(
            &desk.agent,
            pb::AddNoteRequest {
                work_order_id: created.number.clone(),
                body: "Bring a spare decoder".into(),
                internal: false,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .note
        .unwrap();
    assert_eq!(note.work_order_id, created.id);

    let found = client
        .get_work_order(request(
            &desk.agent,
            pb::GetWorkOrderRequest {
                id: created.number.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .work_order
        .unwrap();
    assert_eq!(found.id, created.id);
    assert_eq!(found.assignee_id, desk.technician);

    let listed = client
        .list_work_orders(request(
            &desk.agent,
            pb::ListWorkOrdersRequest {
                status: pb::WorkOrderStatus::Dispatched.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items.len(), 1);

    let history = client
        .get_history(request(
            &desk.agent,
            pb::GetHistoryRequest {
                work_order_id: created.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<&str> = history.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["created", "dispatch", "noted"]);
    let actors: Vec<pb::ActorKind> = history.entries.iter().map(|e| e.actor_kind()).collect();
    assert_eq!(actors, [pb::ActorKind::Staff; 3]);
    assert_eq!(
        history.entries[1].to_status(),
        pb::WorkOrderStatus::Dispatched
    );

    let unknown = client
        .get_work_order(request(
            &desk.shop_b,
            pb::GetWorkOrderRequest {
                id: created.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let unauthenticated = client
        .get_work_order(Request::new(pb::GetWorkOrderRequest { id: created.id }))
        .await
        .unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
}
