//! `hotline.ticketing.v1.TicketingService` over the same use cases as REST.

use std::sync::Arc;

use hotline_kit::{ApiError, auth::principal_of, idempotency::IdempotencyKey};
use hotline_proto::{
    convert::{self, timestamp},
    ticketing::v1::{self as pb, ticketing_service_server::TicketingServiceServer},
};
use prost::Message;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    domain::{
        order::{Action, HoldReason, Status as OrderStatus},
        setup::Priority,
    },
    events::{wire_priority, wire_status},
    input::{NewNote, NewWorkOrder, Step},
    service::TicketingService,
    store::OrderFilter,
    views::{HistoryView, NoteView, WorkOrderView},
};

pub struct TicketingGrpc(pub Arc<TicketingService>);

impl TicketingGrpc {
    pub fn server(service: Arc<TicketingService>) -> TicketingServiceServer<Self> {
        TicketingServiceServer::new(Self(service))
    }
}

fn optional(value: String) -> Option<String> {
    Some(value).filter(|value| !value.is_empty())
}

fn uuid(pointer: &str, value: &str) -> Result<Uuid, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid_field(pointer, "not an id"))
}

fn optional_uuid(pointer: &str, value: &str) -> Result<Option<Uuid>, ApiError> {
    if value.is_empty() {
        Ok(None)
    } else {
        uuid(pointer, value).map(Some)
    }
}

fn priority_in(value: i32) -> Result<Option<Priority>, ApiError> {
    match pb::Priority::try_from(value) {
        Ok(pb::Priority::Unspecified) => Ok(None),
        Ok(pb::Priority::Low) => Ok(Some(Priority::Low)),
        Ok(pb::Priority::Normal) => Ok(Some(Priority::Normal)),
        Ok(pb::Priority::Major) => Ok(Some(Priority::Major)),
        Ok(pb::Priority::Critical) => Ok(Some(Priority::Critical)),
        Err(_) => Err(ApiError::invalid_field("/priority", "no such priority")),
    }
}

fn status_in(value: i32) -> Result<Option<OrderStatus>, ApiError> {
    let status = pb::WorkOrderStatus::try_from(value)
        .map_err(|_| ApiError::invalid_field("/status", "no such status"))?;
    Ok(OrderStatus::ALL
        .into_iter()
        .find(|candidate| wire_status(*candidate) == status))
}

fn action_in(value: i32) -> Result<Action, ApiError> {
    use pb::Action as A;
    let action = match A::try_from(value) {
        Ok(A::Dispatch) => Action::Dispatch,
        Ok(A::Accept) => Action::Accept,
        Ok(A::Decline) => Action::Decline,
        Ok(A::Start) => Action::Start,
        Ok(A::Hold) => Action::Hold,
        Ok(A::Resume) => Action::Resume,
        Ok(A::Resolve) => Action::Resolve,
        Ok(A::Close) => Action::Close,
        Ok(A::Reopen) => Action::Reopen,
        Ok(A::Cancel) => Action::Cancel,
        Ok(A::Unspecified) | Err(_) => {
            return Err(ApiError::invalid_field("/action", "name the step to take"));
        }
    };
    Ok(action)
}

fn action_out(action: Action) -> pb::Action {
    use pb::Action as A;
    match action {
        Action::Dispatch => A::Dispatch,
        Action::Accept => A::Accept,
        Action::Decline => A::Decline,
        Action::Start => A::Start,
        Action::Hold => A::Hold,
        Action::Resume => A::Resume,
        Action::Resolve => A::Resolve,
        Action::Close => A::Close,
        Action::Reopen => A::Reopen,
        Action::Cancel => A::Cancel,
    }
}

fn status_name(name: Option<&str>) -> i32 {
    name.and_then(OrderStatus::parse)
        .map_or(pb::WorkOrderStatus::Unspecified, wire_status)
        .into()
}

fn work_order(view: WorkOrderView) -> pb::WorkOrder {
    pb::WorkOrder {
        id: view.id.to_string(),
        number: view.number,
        r#type: view.type_key,
        category_id: view.category_id.to_string(),
        category_path: view.category_path,
        priority: wire_priority(&view.priority).into(),
        status: wire_status(view.status).into(),
        customer: Some(pb::CustomerSnapshot {
            id: view.customer.id.unwrap_or_default(),
            name: view.customer.name.unwrap_or_default(),
            phone: view.customer.phone.unwrap_or_default(),
            address: view.customer.address.unwrap_or_default(),
        }),
        service_address: view.service_address.unwrap_or_default(),
        region_id: view.region_id.to_string(),
        region_path: view.region_path,
        source_task_id: view.source_task_id.unwrap_or_default(),
        call_id: view.call_id.unwrap_or_default(),
        description: view.description,
        resolution_code: view.resolution_code.unwrap_or_default(),
        resolution_note: view.resolution_note.unwrap_or_default(),
        assignee_id: view
            .assignee_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        partner_id: view.partner_id.unwrap_or_default(),
        created_by: view.created_by.unwrap_or_default(),
        created_at: Some(timestamp(view.created_at)),
        updated_at: Some(timestamp(view.updated_at)),
        version: view.version,
        allowed_actions: view
            .allowed_actions
            .into_iter()
            .map(|action| action_out(action).into())
            .collect(),
    }
}

fn note(view: NoteView) -> pb::Note {
    pb::Note {
        id: view.id.to_string(),
        work_order_id: view.work_order_id.to_string(),
        author: view.author,
        internal: view.internal,
        body: view.body,
        created_at: Some(timestamp(view.created_at)),
    }
}

fn history_entry(view: HistoryView) -> pb::HistoryEntry {
    pb::HistoryEntry {
        seq: view.seq,
        at: Some(timestamp(view.at)),
        actor: view.actor.unwrap_or_default(),
        actor_kind: convert::wire::<pb::ActorKind>(&view.actor_kind),
        action: view.action,
        from_status: status_name(view.from_status.as_deref()),
        to_status: status_name(view.to_status.as_deref()),
        changes_json: view.changes.map(|c| c.to_string()).unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl pb::ticketing_service_server::TicketingService for TicketingGrpc {
    async fn create_work_order(
        &self,
        request: Request<pb::CreateWorkOrderRequest>,
    ) -> Result<Response<pb::CreateWorkOrderResponse>, Status> {
        let principal = principal_of(&request)?;
        let message = request.into_inner();
        let key = IdempotencyKey::from_message(
            &principal.subject,
            "CreateWorkOrder",
            &message.idempotency_key,
            || {
                let mut fingerprint = message.clone();
                fingerprint.idempotency_key.clear();
                fingerprint.encode_to_vec()
            },
        )?;
        let input = NewWorkOrder {
            type_key: message.r#type,
            category_id: uuid("/category_id", &message.category_id)?,
            priority: priority_in(message.priority)?,
            customer_id: optional(message.customer_id),
            contact_name: optional(message.contact_name),
            contact_phone: optional(message.contact_phone),
            service_address: optional(message.service_address),
            region_id: uuid("/region_id", &message.region_id)?,
            source_task_id: optional(message.source_task_id),
            call_id: optional(message.call_id),
            description: message.description,
        };
        let (view, _) = self.0.create_order(&principal, input, key).await?;
        Ok(Response::new(pb::CreateWorkOrderResponse {
            work_order: Some(work_order(view)),
        }))
    }

    async fn get_work_order(
        &self,
        request: Request<pb::GetWorkOrderRequest>,
    ) -> Result<Response<pb::GetWorkOrderResponse>, Status> {
        let principal = principal_of(&request)?;
        let view = self.0.order(&principal, &request.get_ref().id).await?;
        Ok(Response::new(pb::GetWorkOrderResponse {
            work_order: Some(work_order(view)),
        }))
    }

    async fn list_work_orders(
        &self,
        request: Request<pb::ListWorkOrdersRequest>,
    ) -> Result<Response<pb::ListWorkOrdersResponse>, Status> {
        let principal = principal_of(&request)?;
        let message = request.into_inner();
        let filter = OrderFilter {
            status: status_in(message.status)?.map(|s| s.as_str().to_owned()),
            type_key: optional(message.r#type),
            assignee_id: optional_uuid("/assignee_id", &message.assignee_id)?,
            customer_id: optional(message.customer_id),
            ..OrderFilter::default()
        };
        let page = self
            .0
            .list_orders(
                &principal,
                filter,
                optional_uuid("/category_id", &message.category_id)?,
                optional_uuid("/region_id", &message.region_id)?,
                optional(message.cursor).as_deref(),
                (message.limit > 0).then_some(u64::from(message.limit)),
            )
            .await?;
        Ok(Response::new(pb::ListWorkOrdersResponse {
            items: page.items.into_iter().map(work_order).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn act(
        &self,
        request: Request<pb::ActRequest>,
    ) -> Result<Response<pb::ActResponse>, Status> {
        let principal = principal_of(&request)?;
        let message = request.into_inner();
        let action = action_in(message.action)?;
        let mut step = Step::new(action);
        step.assignee_id = optional_uuid("/assignee_id", &message.assignee_id)?;
        step.resolution_code = optional(message.resolution_code);
        step.note = optional(message.note);
        if action == Action::Hold {
            step.hold = match message.reason.as_str() {
                "waiting_customer" => Some(HoldReason::WaitingCustomer),
                "waiting_parts" => Some(HoldReason::WaitingParts),
                _ => None,
            };
        } else {
            step.reason = optional(message.reason);
        }
        let expected = (message.expected_version > 0).then_some(message.expected_version);
        let view = self.0.act(&principal, &message.id, step, expected).await?;
        Ok(Response::new(pb::ActResponse {
            work_order: Some(work_order(view)),
        }))
    }

    async fn add_note(
        &self,
        request: Request<pb::AddNoteRequest>,
    ) -> Result<Response<pb::AddNoteResponse>, Status> {
        let principal = principal_of(&request)?;
        let message = request.into_inner();
        let input = NewNote {
            body: message.body,
            internal: message.internal,
        };
        let view = self
            .0
            .add_note(&principal, &message.work_order_id, input)
            .await?;
        Ok(Response::new(pb::AddNoteResponse {
            note: Some(note(view)),
        }))
    }

    async fn get_history(
        &self,
        request: Request<pb::GetHistoryRequest>,
    ) -> Result<Response<pb::GetHistoryResponse>, Status> {
        let principal = principal_of(&request)?;
        let entries = self
            .0
            .history(&principal, &request.get_ref().work_order_id)
            .await?;
        Ok(Response::new(pb::GetHistoryResponse {
            entries: entries.into_iter().map(history_entry).collect(),
        }))
    }
}
