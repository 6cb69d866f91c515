//! Ticketing's events: every work-order change and the customer-timeline
//! milestones, published through the outbox; and identity's customer changes,
//! consumed.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hotline_kit::{
    bus::{Event, EventHandler, Fanout, HandlerError, Subscription},
    outbox::Outbox,
    sse::SseEvent,
};
use hotline_proto::{
    convert::{self, timestamp},
    events::v1::{
        CustomerActivity, CustomerChanged, CustomerMerged, SmsChanged, SmsPurpose,
        WebhookDeliveryChanged, WorkOrderChanged,
    },
    ticketing::v1 as wire,
};
use prost::Message;
use serde_json::json;
use tokio::sync::broadcast;

use crate::{
    domain::{order::Status, setup::Priority},
    service::TicketingService,
    store::{sms_message, webhook_delivery, work_order},
};

pub const TICKET_CREATED: &str = "ticketing.ticket.created";
pub const TICKET_UPDATED: &str = "ticketing.ticket.updated";
pub const TICKET_DISPATCHED: &str = "ticketing.ticket.dispatched";
pub const TICKET_WITHDRAWN: &str = "ticketing.ticket.withdrawn";
pub const TICKET_ACCEPTED: &str = "ticketing.ticket.accepted";
pub const TICKET_DECLINED: &str = "ticketing.ticket.declined";
pub const TICKET_STATUS_CHANGED: &str = "ticketing.ticket.status_changed";
pub const TICKET_RESOLVED: &str = "ticketing.ticket.resolved";
pub const TICKET_CLOSED: &str = "ticketing.ticket.closed";
pub const TICKET_REOPENED: &str = "ticketing.ticket.reopened";
pub const TICKET_CANCELLED: &str = "ticketing.ticket.cancelled";
pub const TICKET_ESCALATED: &str = "ticketing.ticket.escalated";
pub const TICKET_SLA_BREACHED: &str = "ticketing.ticket.sla_breached";
/// Identity's timeline contract (`hotline.events.v1.CustomerActivity`).
pub const SMS_SENT: &str = "ticketing.sms.sent";
pub const SMS_DELIVERED: &str = "ticketing.sms.delivered";
pub const SMS_FAILED: &str = "ticketing.sms.failed";
pub const WEBHOOK_DELIVERED: &str = "ticketing.webhook.delivered";
pub const WEBHOOK_FAILED: &str = "ticketing.webhook.failed";

/// What a partner's endpoint may subscribe to: its orders' changes.
pub const PARTNER_EVENTS: &[&str] = &[
    TICKET_DISPATCHED,
    TICKET_WITHDRAWN,
    TICKET_ACCEPTED,
    TICKET_DECLINED,
    TICKET_STATUS_CHANGED,
    TICKET_RESOLVED,
    TICKET_CLOSED,
    TICKET_REOPENED,
    TICKET_CANCELLED,
    TICKET_UPDATED,
    TICKET_ESCALATED,
    TICKET_SLA_BREACHED,
];

pub const ACTIVITY_RECORDED: &str = "ticketing.activity.recorded";

const CUSTOMER_ERASED: &str = "identity.customer.erased";
const CUSTOMER_MERGED: &str = "identity.customer.merged";

pub fn wire_status(status: Status) -> wire::WorkOrderStatus {
    use wire::WorkOrderStatus as W;
    match status {
        Status::New => W::New,
        Status::Dispatched => W::Dispatched,
        Status::Accepted => W::Accepted,
        Status::InProgress => W::InProgress,
        Status::WaitingCustomer => W::WaitingCustomer,
        Status::WaitingParts => W::WaitingParts,
        Status::Resolved => W::Resolved,
        Status::Closed => W::Closed,
        Status::Cancelled => W::Cancelled,
    }
}

pub fn wire_priority(priority: &str) -> wire::Priority {
    match Priority::parse(priority) {
        Some(Priority::Low) => wire::Priority::Low,
        Some(Priority::Normal) => wire::Priority::Normal,
        Some(Priority::Major) => wire::Priority::Major,
        Some(Priority::Critical) => wire::Priority::Critical,
        None => wire::Priority::Unspecified,
    }
}

/// What happened to an order, for its event.
pub struct Change<'a> {
    pub kind: &'static str,
    pub order: &'a work_order::Model,
    pub previous: Option<Status>,
    pub assignee_kind: Option<&'a str>,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    pub at: DateTime<Utc>,
    /// A deadline's warning or breach: its clock and the level reached.
    pub escalation: Option<(&'static str, i32)>,
}

pub fn changed(outbox: &Outbox, change: &Change<'_>) -> Event {
    let order = change.order;
    let status = Status::parse(&order.status).unwrap_or(Status::New);
    let data = WorkOrderChanged {
        work_order_id: order.id.to_string(),
        number: order.number.clone(),
        r#type: order.type_key.clone(),
        category_path: order.category_path.clone(),
        priority: wire_priority(&order.priority).into(),
        status: wire_status(status).into(),
        previous_status: change
            .previous
            .map_or(wire::WorkOrderStatus::Unspecified, wire_status)
            .into(),
        region_path: order.region_path.clone(),
        customer_id: order.customer_id.clone().unwrap_or_default(),
        assignee_id: order
            .assignee_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        assignee_kind: convert::wire::<wire::AssigneeKind>(
            change.assignee_kind.unwrap_or_default(),
        ),
        partner_id: order.partner_id.clone().unwrap_or_default(),
        resolution_code: order.resolution_code.clone().unwrap_or_default(),
        actor: change.actor.to_owned(),
        version: order.version,
        reason: change.reason.unwrap_or_default().to_owned(),
        source_task_id: order.source_task_id.clone().unwrap_or_default(),
        created_at: Some(timestamp(order.created_at)),
        occurred_at: Some(timestamp(change.at)),
        response_due_at: order.response_due_at.map(timestamp),
        resolution_due_at: order.resolution_due_at.map(timestamp),
        response_met: order.response_met,
        resolution_met: order.resolution_met,
        repeat_of: order.repeat_of.map(|id| id.to_string()).unwrap_or_default(),
        clock: change
            .escalation
            .map(|(clock, _)| clock.to_owned())
            .unwrap_or_default(),
        escalation_level: order.escalation_level,
    };
    outbox.event(change.kind, order.id.to_string(), data.encode_to_vec())
}

/// The customer-timeline entry of a milestone, for orders of a known customer.
pub fn timeline(outbox: &Outbox, change: &Change<'_>) -> Option<Event> {
    let order = change.order;
    let customer_id = order.customer_id.clone()?;
    let verb = match change.kind {
        TICKET_CREATED => "opened",
        TICKET_DISPATCHED => "dispatched",
        TICKET_ACCEPTED => "accepted by the assignee",
        TICKET_RESOLVED => "resolved",
        TICKET_CLOSED => "closed",
        TICKET_REOPENED => "reopened",
        TICKET_CANCELLED => "cancelled",
        _ => return None,
    };
    let mut summary = format!("Work order {} ({}) {verb}", order.number, order.type_key);
    if let (TICKET_RESOLVED, Some(code)) = (change.kind, &order.resolution_code) {
        summary.push_str(&format!(": {code}"));
    }
    let activity = CustomerActivity {
        customer_id,
        phone: String::new(),
        kind: "ticket".to_owned(),
        reference: order.number.clone(),
        summary,
        occurred_at: Some(timestamp(change.at)),
        actor: change.actor.to_owned(),
    };
    Some(outbox.event(
        ACTIVITY_RECORDED,
        order.number.clone(),
        activity.encode_to_vec(),
    ))
}

/// Identity's customer changes, on one shared queue: erasures scrub the
/// orders' snapshots, merges move orders to the survivor, every change drops
/// the cached customer.
pub fn identity_subscription() -> Subscription {
    Subscription {
        name: "ticketing.identity".into(),
        bindings: vec!["identity.customer.*".into()],
        fanout: Fanout::Shared,
    }
}

pub struct IdentityConsumer(pub Arc<TicketingService>);

#[async_trait]
impl EventHandler for IdentityConsumer {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let undecodable = |e: prost::DecodeError| {
            HandlerError(anyhow::anyhow!("undecodable {}: {e}", event.kind))
        };
        match event.kind.as_str() {
            CUSTOMER_MERGED => {
                let merged = CustomerMerged::decode(event.data.as_slice()).map_err(undecodable)?;
                self.0
                    .customer_merged(event.id, &merged.merged_id, &merged.survivor_id)
                    .await
                    .map_err(anyhow::Error::from)?;
            }
            CUSTOMER_ERASED => {
                let erased = CustomerChanged::decode(event.data.as_slice()).map_err(undecodable)?;
                self.0
                    .customer_erased(event.id, &erased.customer_id)
                    .await
                    .map_err(anyhow::Error::from)?;
            }
            _ => {
                let changed =
                    CustomerChanged::decode(event.data.as_slice()).map_err(undecodable)?;
                self.0.forget_customer(&changed.customer_id).await;
            }
        }
        Ok(())
    }
}

/// Every replica hears the escalations, for the supervisors' streams it serves.
pub fn escalation_subscription() -> Subscription {
    Subscription {
        name: "ticketing.escalations".into(),
        bindings: vec![TICKET_ESCALATED.into(), TICKET_SLA_BREACHED.into()],
        fanout: Fanout::EveryReplica,
    }
}

/// Passes escalations on to this replica's `GET /api/v1/escalations/stream`s.
pub struct EscalationFeed(pub broadcast::Sender<SseEvent>);

#[async_trait]
impl EventHandler for EscalationFeed {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let change = WorkOrderChanged::decode(event.data.as_slice())
            .map_err(|e| HandlerError(anyhow::anyhow!("undecodable {}: {e}", event.kind)))?;
        let name = event
            .kind
            .rsplit('.')
            .next()
            .unwrap_or("escalated")
            .to_owned();
        let status = Status::ALL
            .into_iter()
            .find(|status| wire_status(*status) as i32 == change.status)
            .map(Status::as_str);
        let priority = Priority::ALL
            .into_iter()
            .find(|priority| wire_priority(priority.as_str()) as i32 == change.priority)
            .map(Priority::as_str);
        let data = json!({
            "work_order_id": change.work_order_id,
            "number": change.number,
            "type": change.r#type,
            "priority": priority,
            "status": status,
            "region_path": change.region_path,
            "assignee_id": change.assignee_id,
            "partner_id": change.partner_id,
            "clock": change.clock,
            "escalation_level": change.escalation_level,
        });
        let id = format!("{}.{}", change.work_order_id, change.version);
        // Nobody watching is fine: the event is in the stream of record.
        let _ = self.0.send(SseEvent::new(name, data).with_id(id));
        Ok(())
    }
}

/// A webhook delivery's end (`kind`: [`WEBHOOK_DELIVERED`] or [`WEBHOOK_FAILED`]).
pub fn webhook(
    outbox: &Outbox,
    kind: &str,
    delivery: &webhook_delivery::Model,
    at: DateTime<Utc>,
) -> Event {
    let data = WebhookDeliveryChanged {
        delivery_id: delivery.id.to_string(),
        endpoint_id: delivery.endpoint_id.to_string(),
        partner_id: delivery.partner_id.clone(),
        event_type: delivery.event_type.clone(),
        work_order_id: delivery
            .work_order_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        attempts: delivery.attempts,
        last_status_code: delivery.last_status_code.unwrap_or_default(),
        error: delivery.last_error.clone().unwrap_or_default(),
        occurred_at: Some(timestamp(at)),
    };
    outbox.event(kind, delivery.endpoint_id.to_string(), data.encode_to_vec())
}

/// A text's step (`kind`: [`SMS_SENT`], [`SMS_DELIVERED`] or [`SMS_FAILED`]).
pub fn sms(outbox: &Outbox, kind: &str, message: &sms_message::Model, at: DateTime<Utc>) -> Event {
    let data = SmsChanged {
        sms_id: message.id.to_string(),
        work_order_id: message
            .work_order_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        assignee_id: message
            .assignee_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        purpose: convert::wire::<SmsPurpose>(&message.purpose),
        provider: message.provider.clone().unwrap_or_default(),
        parts: message.parts,
        attempts: message.attempts,
        error: message.error.clone().unwrap_or_default(),
        occurred_at: Some(timestamp(at)),
    };
    outbox.event(kind, message.id.to_string(), data.encode_to_vec())
}
