//! What the API shows: the center's staff see everything; a partner shop sees
//! its own orders without the center's internals (customer ids, who created
//! them, internal comments), and the customer's contact only while it works
//! the order.

use chrono::{DateTime, Utc};
use hotline_kit::mask;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    domain::order::{Action, Status},
    store::{
        Scope, assignee, category, dispatch_attempt, dispatch_rule, history, note, region,
        resolution_code, sla_policy, sms_inbound, sms_message, webhook_attempt, webhook_delivery,
        webhook_endpoint, work_order, work_order_type,
    },
};

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CustomerSnapshot {
    /// Identity's customer id (not shown to partners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E.164.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkOrderView {
    pub id: Uuid,
    /// WO-20261123-000123.
    pub number: String,
    #[serde(rename = "type")]
    pub type_key: String,
    pub category_id: Uuid,
    /// Codes from the root: /tv/itv/no_signal/.
    pub category_path: String,
    /// low, normal, major or critical.
    pub priority: String,
    pub status: Status,
    pub customer: CustomerSnapshot,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_address: Option<String>,
    pub region_id: Uuid,
    pub region_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    pub version: i64,
    /// The deadlines and whether they were met; absent for orders no SLA policy covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaView>,
    /// The resolved order of the same customer and fault this one repeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_of: Option<Uuid>,
    /// While dispatched: accept by then, or the order moves to the next candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// While new: every candidate of the dispatch rules is closed; they are
    /// tried again then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redispatch_at: Option<DateTime<Utc>>,
    /// What the caller may do next (`POST …/{action}`).
    pub allowed_actions: Vec<Action>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SlaView {
    /// The assignee should accept by then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_due_at: Option<DateTime<Utc>>,
    /// It should be resolved by then; while the clock is paused, the time
    /// left counts from when it resumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_due_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<DateTime<Utc>>,
    /// Decided at the first acceptance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_met: Option<bool>,
    /// Decided at resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_met: Option<bool>,
    /// The resolution clock stands still (waiting for the customer, or done).
    pub paused: bool,
    /// Business time the resolution clock has run, up to its last pause.
    pub resolution_used_seconds: i64,
    /// Warnings (at 80 % of a deadline) and breaches so far.
    pub escalation_level: i32,
}

/// A stored status name as the status it is (unknown names read as new,
/// which a migration would have to introduce first).
pub fn status_of(order: &work_order::Model) -> Status {
    Status::parse(&order.status).unwrap_or(Status::New)
}

/// The actions `scope` may take on an order in `status`.
pub fn allowed(scope: &Scope, status: Status) -> Vec<Action> {
    Action::allowed_from(status)
        .into_iter()
        .filter(|action| scope.is_staff() || !action.staff_only())
        .collect()
}

impl WorkOrderView {
    pub fn of(order: work_order::Model, scope: &Scope) -> Self {
        let status = status_of(&order);
        let staff = scope.is_staff();
        // A shop needs the customer's contact to do the job, and no longer once it is done.
        let contact_masked = !staff && !status.is_open();
        let customer = CustomerSnapshot {
            id: order.customer_id.filter(|_| staff),
            name: order.customer_name.map(|name| {
                if contact_masked {
                    mask::keep_ends(&name, 1, 0)
                } else {
                    name
                }
            }),
            phone: order.customer_phone.map(|phone| {
                if contact_masked {
                    mask::keep_ends(&phone, 3, 4)
                } else {
                    phone
                }
            }),
            address: order.customer_address.filter(|_| !contact_masked),
        };
        Self {
            id: order.id,
            number: order.number,
            type_key: order.type_key,
            category_id: order.category_id,
            category_path: order.category_path,
            priority: order.priority,
            status,
            customer,
            service_address: order.service_address.filter(|_| !contact_masked),
            region_id: order.region_id,
            region_path: order.region_path,
            source_task_id: order.source_task_id.filter(|_| staff),
            call_id: order.call_id.filter(|_| staff),
            description: order.description,
            resolution_code: order.resolution_code,
            resolution_note: order.resolution_note,
            assignee_id: order.assignee_id,
            partner_id: order.partner_id,
            created_by: Some(order.created_by).filter(|_| staff),
            created_at: order.created_at,
            updated_at: order.updated_at,
            resolved_at: order.resolved_at,
            closed_at: order.closed_at,
            version: order.version,
            sla: (order.response_due_at.is_some() || order.resolution_due_at.is_some()).then(
                || SlaView {
                    response_due_at: order.response_due_at,
                    resolution_due_at: order.resolution_due_at,
                    responded_at: order.responded_at,
                    response_met: order.response_met,
                    resolution_met: order.resolution_met,
                    paused: order.resolution_running_since.is_none(),
                    resolution_used_seconds: order.resolution_used_secs,
                    escalation_level: order.escalation_level,
                },
            ),
            repeat_of: order.repeat_of.filter(|_| staff),
            offer_expires_at: order.offer_expires_at,
            redispatch_at: order.redispatch_at.filter(|_| staff),
            allowed_actions: allowed(scope, status),
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HistoryView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The client id that acted (not shown to partners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// staff, partner, sms or system.
    pub actor_kind: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_status: Option<String>,
    /// `{"field": {"from": …, "to": …}}` (not shown to partners: it may name
    /// other assignees).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub changes: Option<serde_json::Value>,
    /// shared or internal.
    pub visibility: String,
}

impl HistoryView {
    pub fn of(row: history::Model, scope: &Scope) -> Self {
        let staff = scope.is_staff();
        Self {
            seq: row.seq,
            at: row.at,
            actor: Some(row.actor).filter(|_| staff),
            actor_kind: row.actor_kind,
            action: row.action,
            from_status: row.from_status,
            to_status: row.to_status,
            changes: Some(row.changes).filter(|_| staff),
            visibility: row.visibility,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NoteView {
    pub id: Uuid,
    pub work_order_id: Uuid,
    pub author: String,
    /// Internal comments are the center's own; the others are shared with the assignee.
    pub internal: bool,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

impl From<note::Model> for NoteView {
    fn from(row: note::Model) -> Self {
        Self {
            id: row.id,
            work_order_id: row.work_order_id,
            author: row.author,
            internal: row.internal,
            body: row.body,
            created_at: row.created_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WorkOrderTypeView {
    pub key: String,
    pub name: String,
    pub default_priority: String,
    pub active: bool,
    pub version: i64,
}

impl From<work_order_type::Model> for WorkOrderTypeView {
    fn from(row: work_order_type::Model) -> Self {
        Self {
            key: row.key,
            name: row.name,
            default_priority: row.default_priority,
            active: row.active,
            version: row.version,
        }
    }
}

/// A category (fault kinds under product lines) or a region (city → district → area).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct NodeView {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Uuid>,
    pub code: String,
    pub name: String,
    /// The codes from the root: /tv/itv/no_signal/.
    pub path: String,
    pub level: i32,
    pub active: bool,
    pub version: i64,
}

impl From<category::Model> for NodeView {
    fn from(row: category::Model) -> Self {
        Self {
            id: row.id,
            parent_id: row.parent_id,
            code: row.code,
            name: row.name,
            path: row.path,
            level: row.level,
            active: row.active,
            version: row.version,
        }
    }
}

impl From<region::Model> for NodeView {
    fn from(row: region::Model) -> Self {
        Self {
            id: row.id,
            parent_id: row.parent_id,
            code: row.code,
            name: row.name,
            path: row.path,
            level: row.level,
            active: row.active,
            version: row.version,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ResolutionCodeView {
    pub code: String,
    pub name: String,
    /// The work-order types it applies to; empty: every type.
    pub types: Vec<String>,
    pub active: bool,
}

impl From<resolution_code::Model> for ResolutionCodeView {
    fn from(row: resolution_code::Model) -> Self {
        Self {
            code: row.code,
            name: row.name,
            types: serde_json::from_value(row.types).unwrap_or_default(),
            active: row.active,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AssigneeView {
    pub id: Uuid,
    /// technician or shop.
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    pub skills: Vec<String>,
    /// Open orders it may hold at once.
    pub capacity: i32,
    pub open_orders: i32,
    /// Regions it covers, each with its subtree.
    pub region_ids: Vec<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<hotline_kit::calendar::BusinessHours>)]
    pub business_hours: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_dispatched_at: Option<DateTime<Utc>>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl From<assignee::Model> for AssigneeView {
    fn from(row: assignee::Model) -> Self {
        let region_ids = row.covered().into_iter().map(|region| region.id).collect();
        Self {
            id: row.id,
            kind: row.kind,
            name: row.name,
            phone: row.phone,
            partner_id: row.partner_id,
            skills: serde_json::from_value(row.skills).unwrap_or_default(),
            capacity: row.capacity,
            open_orders: row.open_orders,
            region_ids,
            business_hours: row.business_hours,
            last_dispatched_at: row.last_dispatched_at,
            active: row.active,
            version: row.version,
            created_at: row.created_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SlaPolicyView {
    #[serde(rename = "type")]
    pub type_key: String,
    pub priority: String,
    pub first_response_seconds: i64,
    pub resolution_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<hotline_kit::calendar::BusinessHours>)]
    pub business_hours: Option<serde_json::Value>,
    pub pause_on: Vec<String>,
    pub redispatch_on_breach: bool,
    pub version: i64,
}

impl From<sla_policy::Model> for SlaPolicyView {
    fn from(row: sla_policy::Model) -> Self {
        Self {
            type_key: row.type_key,
            priority: row.priority,
            first_response_seconds: row.first_response_secs,
            resolution_seconds: row.resolution_secs,
            business_hours: row.business_hours,
            pause_on: serde_json::from_value(row.pause_on).unwrap_or_default(),
            redispatch_on_breach: row.redispatch_on_breach,
            version: row.version,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DispatchRuleView {
    pub id: Uuid,
    pub name: String,
    pub precedence: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_path: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    /// least_loaded or round_robin.
    pub strategy: String,
    pub candidates: Vec<Uuid>,
    pub auto: bool,
    pub accept_timeout_seconds: i64,
    pub active: bool,
    pub version: i64,
}

impl From<dispatch_rule::Model> for DispatchRuleView {
    fn from(row: dispatch_rule::Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            precedence: row.precedence,
            region_id: row.region_id,
            region_path: row.region_path,
            type_key: row.type_key,
            category_id: row.category_id,
            category_path: row.category_path,
            skill: row.skill,
            strategy: row.strategy,
            candidates: serde_json::from_value(row.candidates).unwrap_or_default(),
            auto: row.auto,
            accept_timeout_seconds: row.accept_timeout_secs,
            active: row.active,
            version: row.version,
        }
    }
}

/// One offer of an order to an assignee.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub id: Uuid,
    /// Offers since the order was opened, reopened or sent to the rules by
    /// staff; in a round nobody is offered an order twice.
    pub round: i32,
    pub assignee_id: Uuid,
    /// The rule that chose the assignee; absent when staff named them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<Uuid>,
    /// Who dispatched: a client id, or `ticketing` for the rules.
    pub dispatched_by: String,
    pub offered_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<DateTime<Utc>>,
    /// pending, accepted, declined, timed_out, withdrawn or cancelled.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<dispatch_attempt::Model> for AttemptView {
    fn from(row: dispatch_attempt::Model) -> Self {
        Self {
            id: row.id,
            round: row.round,
            assignee_id: row.assignee_id,
            rule_id: row.rule_id,
            dispatched_by: row.dispatched_by,
            offered_at: row.offered_at,
            responded_at: row.responded_at,
            outcome: row.outcome,
            reason: row.reason,
        }
    }
}

/// A text to a technician and what became of it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SmsMessageView {
    /// Stable across resends.
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<Uuid>,
    /// new_order, withdrawn, cancelled, reply_ok, reply_error or notice.
    pub purpose: String,
    /// E.164.
    pub to: String,
    pub body: String,
    /// gsm7 or ucs2.
    pub encoding: String,
    pub parts: i32,
    /// The provider's ids of the parts as sent (an SMSC's message ids: what
    /// its support asks for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provider_ids: Vec<String>,
    /// queued, sent, delivered or failed.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A notice queued: one text per technician, each followed like any other
/// (`GET /api/v1/sms/messages`).
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeView {
    /// The texts' ids, one per recipient.
    pub queued: Vec<Uuid>,
}

impl From<sms_message::Model> for SmsMessageView {
    fn from(row: sms_message::Model) -> Self {
        Self {
            id: row.id,
            work_order_id: row.work_order_id,
            assignee_id: row.assignee_id,
            purpose: row.purpose,
            to: row.to_phone,
            body: row.body,
            encoding: row.encoding,
            parts: row.parts,
            provider_ids: row
                .part_ids
                .and_then(|ids| serde_json::from_value(ids).ok())
                .unwrap_or_default(),
            status: row.status,
            provider: row.provider,
            attempts: row.attempts,
            error: row.error,
            created_at: row.created_at,
            sent_at: row.sent_at,
            delivered_at: row.delivered_at,
        }
    }
}

/// A text received, and what it did.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct InboundView {
    pub id: Uuid,
    /// E.164 when it reads as a number.
    pub from: String,
    /// accept, done or decline, when the text read as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// applied, already_applied, unknown_sender (kept, not answered), or why
    /// it took no effect (unknown_command, no_order_number, no_such_order,
    /// not_yours, illegal_transition, invalid_request, …).
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<Uuid>,
    /// The answer queued to the sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_id: Option<Uuid>,
}

impl From<sms_inbound::Model> for InboundView {
    fn from(row: sms_inbound::Model) -> Self {
        Self {
            id: row.id,
            from: row.from_phone,
            command: row.command,
            outcome: row.outcome,
            work_order_id: row.work_order_id,
            reply_id: row.reply_id,
        }
    }
}

/// A partner system's endpoint.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookEndpointView {
    pub id: Uuid,
    pub partner_id: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Empty: every event of the partner's orders.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// `gone` (it answered 410) or `manual`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// It failed; nothing more is sent to it before this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<DateTime<Utc>>,
    /// The secret before the last rotation signs deliveries too until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<webhook_endpoint::Model> for WebhookEndpointView {
    fn from(row: webhook_endpoint::Model) -> Self {
        Self {
            event_types: serde_json::from_value(row.event_types).unwrap_or_default(),
            id: row.id,
            partner_id: row.partner_id,
            url: row.url,
            description: row.description,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            paused_until: row.paused_until,
            previous_secret_until: row.previous_until,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// An endpoint with its signing secret, shown when it is made and rotated only.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookSecretView {
    #[serde(flatten)]
    pub endpoint: WebhookEndpointView,
    /// `whsec_…`: verify `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

/// One event for one endpoint and what became of it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryView {
    /// Also its `webhook-id`, the same on every attempt and replay.
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<Uuid>,
    /// pending, delivered or failed.
    pub status: String,
    /// Tries since it was queued or last replayed.
    pub attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body as sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Every try, oldest first (on a single delivery only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<Vec<WebhookAttemptView>>,
}

impl From<webhook_delivery::Model> for WebhookDeliveryView {
    fn from(row: webhook_delivery::Model) -> Self {
        Self {
            next_attempt_at: (row.status == "pending").then_some(row.next_attempt_at),
            payload: serde_json::from_str(&row.payload).unwrap_or_default(),
            id: row.id,
            endpoint_id: row.endpoint_id,
            event_type: row.event_type,
            work_order_id: row.work_order_id,
            status: row.status,
            attempts: row.attempts,
            last_status_code: row.last_status_code,
            last_error: row.last_error,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
            log: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookAttemptView {
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: i32,
    /// The start of the endpoint's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

impl From<webhook_attempt::Model> for WebhookAttemptView {
    fn from(row: webhook_attempt::Model) -> Self {
        Self {
            at: row.at,
            status_code: row.status_code,
            error: row.error,
            duration_ms: row.duration_ms,
            response: row.response_excerpt,
        }
    }
}
