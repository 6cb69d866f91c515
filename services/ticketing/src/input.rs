//! What callers send: the bodies of REST requests, also built from gRPC ones.

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use hotline_kit::calendar::BusinessHours;

use crate::domain::{
    dispatch::Strategy,
    order::{Action, HoldReason, Status},
    setup::{AssigneeKind, Priority},
};

/// Longest description, note or comment.
pub const MAX_TEXT: usize = 4000;
/// Longest reason (decline, hold, reopen, cancel) and address.
pub const MAX_REASON: usize = 500;
pub const MAX_ADDRESS: usize = 300;

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkOrder {
    /// A work-order type's key: fault_repair, installation, complaint, inquiry, …
    #[serde(rename = "type")]
    pub type_key: String,
    pub category_id: Uuid,
    /// The type's default priority when absent.
    pub priority: Option<Priority>,
    /// Identity's customer id: their name, phone and address are copied onto the order.
    pub customer_id: Option<String>,
    /// Who to contact, when not the customer's own name...
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub contact_name: Option<String>,
    /// ...or phone (any format a person types; stored as E.164). Needed when
    /// there is no `customer_id`.
    #[schema(max_length = 32)]
    pub contact_phone: Option<String>,
    /// Where the work is done; the customer's first address when absent.
    #[schema(
        max_length = 300,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub service_address: Option<String>,
    pub region_id: Uuid,
    /// The routing task (call) the order was opened from.
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub source_task_id: Option<String>,
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub call_id: Option<String>,
    /// Not blank; may span lines.
    #[schema(
        max_length = 4000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub description: String,
}

/// Fields an agent may correct while the order is open; absent ones stay.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkOrderPatch {
    pub priority: Option<Priority>,
    pub category_id: Option<Uuid>,
    pub region_id: Option<Uuid>,
    #[schema(
        max_length = 300,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub service_address: Option<String>,
    #[schema(
        max_length = 4000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
}

/// One step of the status machine, with what that step needs.
#[derive(Clone, Debug)]
pub struct Step {
    pub action: Action,
    /// dispatch: to whom.
    pub assignee_id: Option<Uuid>,
    /// dispatch: past the assignee's capacity (supervisors only).
    pub force: bool,
    /// decline, reopen, cancel: why (required).
    pub reason: Option<String>,
    /// hold: what the order waits for.
    pub hold: Option<HoldReason>,
    /// resolve: a code valid for the order's type (required), and a note.
    pub resolution_code: Option<String>,
    pub note: Option<String>,
    /// decline: the offer went unanswered in time (the timers, never a caller).
    pub unanswered: bool,
}

impl Step {
    pub fn new(action: Action) -> Self {
        Self {
            action,
            assignee_id: None,
            force: false,
            reason: None,
            hold: None,
            resolution_code: None,
            note: None,
            unanswered: false,
        }
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// Not blank; may span lines.
    #[schema(
        max_length = 4000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub body: String,
    /// An internal comment, never shown to the assignee (staff only).
    #[serde(default)]
    pub internal: bool,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkOrderType {
    /// 1 to 40 of a-z, 0-9 and _.
    #[schema(pattern = "^[a-z0-9_]{1,40}$")]
    pub key: String,
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    pub default_priority: Priority,
}

/// A category or region under `parent_id` (none: a root).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNode {
    pub parent_id: Option<Uuid>,
    /// 1 to 40 of a-z, 0-9 and _; unique among siblings (regions: everywhere).
    #[schema(pattern = "^[a-z0-9_]{1,40}$")]
    pub code: String,
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResolutionCode {
    #[schema(pattern = "^[a-z0-9_]{1,40}$")]
    pub code: String,
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// Work-order types it applies to; empty or absent: every type.
    #[serde(default)]
    pub types: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssignee {
    pub kind: AssigneeKind,
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// A technician's mobile number (required for technicians).
    #[schema(max_length = 32)]
    pub phone: Option<String>,
    /// A shop's partner id, as given to its API clients (required for shops).
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub partner_id: Option<String>,
    /// Skills (codes) it has.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Open orders it may hold at once (10 when absent).
    #[schema(minimum = 1, maximum = 10000)]
    pub capacity: Option<i32>,
    /// Regions it works in, each with its subtree: dispatch rules pick among
    /// those covering an order's region.
    #[serde(default)]
    pub region_ids: Vec<Uuid>,
    /// When it takes orders; absent: at any time.
    pub business_hours: Option<BusinessHours>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssigneePatch {
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 32)]
    pub phone: Option<String>,
    pub skills: Option<Vec<String>>,
    #[schema(minimum = 1, maximum = 10000)]
    pub capacity: Option<i32>,
    pub active: Option<bool>,
    pub region_ids: Option<Vec<Uuid>>,
    /// New working hours (absent: unchanged).
    pub business_hours: Option<BusinessHours>,
    /// Takes orders at any time from now on.
    #[serde(default)]
    pub clear_business_hours: bool,
}

/// The deadlines of one (type, priority).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicyInput {
    /// Until the assignee accepts, e.g. "4h" (1m to 90d).
    #[schema(value_type = String, example = "4h")]
    pub first_response: humantime_serde::Serde<std::time::Duration>,
    /// Until it is resolved, e.g. "48h".
    #[schema(value_type = String, example = "48h")]
    pub resolution: humantime_serde::Serde<std::time::Duration>,
    /// When the clocks run; absent: around the clock.
    pub business_hours: Option<BusinessHours>,
    /// Statuses the resolution clock stops in: waiting_customer (the default), waiting_parts.
    #[serde(default = "default_pause")]
    pub pause_on: Vec<Status>,
    /// When the first response is breached while the assignee has not
    /// accepted, withdraw the order and send it to the dispatch rules' next
    /// candidate (false when absent).
    #[serde(default)]
    pub redispatch_on_breach: bool,
}

fn default_pause() -> Vec<Status> {
    vec![Status::WaitingCustomer]
}

/// A dispatch rule: which orders it takes (absent fields match any) and how
/// it picks their assignee.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDispatchRule {
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// Orders in this region's subtree.
    pub region_id: Option<Uuid>,
    /// Orders of this type.
    #[serde(rename = "type")]
    pub type_key: Option<String>,
    /// Orders in this category's subtree.
    pub category_id: Option<Uuid>,
    /// Only assignees with this skill.
    #[schema(pattern = "^[a-z0-9_]{1,40}$")]
    pub skill: Option<String>,
    pub strategy: Strategy,
    /// Only these assignees; empty or absent: every active one covering the order's region.
    #[serde(default)]
    pub candidates: Vec<Uuid>,
    /// Dispatch new, declined, timed-out and reopened orders without anyone
    /// asking (true when absent); false: only when staff ask for the rules.
    #[serde(default = "yes")]
    pub auto: bool,
    /// How long an assignee has to accept before the order moves on, e.g. "30m"
    /// (`ticketing.accept_timeout` when absent; 1m to 7d).
    #[schema(value_type = Option<String>, example = "30m")]
    #[serde(default)]
    pub accept_timeout: Option<humantime_serde::Serde<std::time::Duration>>,
    /// Breaks ties between equally specific rules: lower first (0 when absent).
    #[serde(default)]
    pub precedence: i32,
}

fn yes() -> bool {
    true
}

/// Changes to a rule: its strategy, candidates, timing and whether it is in force.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchRulePatch {
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    pub strategy: Option<Strategy>,
    pub candidates: Option<Vec<Uuid>>,
    pub auto: Option<bool>,
    #[schema(value_type = Option<String>, example = "30m")]
    pub accept_timeout: Option<humantime_serde::Serde<std::time::Duration>>,
    pub precedence: Option<i32>,
    pub active: Option<bool>,
}

/// Longest webhook URL.
pub const MAX_URL: usize = 2000;

/// A partner system's endpoint for its orders' events.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookEndpoint {
    /// The shop whose orders it hears of. Staff name it; a partner's own
    /// token may leave it out and may not name another.
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub partner_id: Option<String>,
    /// `https://` (`http://` only where `ticketing.webhooks.allow_http` is
    /// set); every address it resolves to must be public unless
    /// `ticketing.webhooks.allow_networks` lets it through.
    #[schema(min_length = 1, max_length = 2000)]
    pub url: String,
    /// Event types it receives (`ticketing.ticket.dispatched`, …); empty or
    /// absent: all of them.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointPatch {
    #[schema(min_length = 1, max_length = 2000)]
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
    /// `false` stops deliveries (they wait); `true` resumes them, also after
    /// the endpoint answered 410 Gone.
    pub enabled: Option<bool>,
}
