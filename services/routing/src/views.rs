//! What routing's REST and gRPC answers, streams and events show.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::model::{
    Callback, Channel, EntryRule, QueueSpec, Reservation, Task, TaskKind, TaskStatus,
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub kind: TaskKind,
    pub channel: Channel,
    pub queue_id: Uuid,
    /// The queue's name.
    pub queue: String,
    pub status: TaskStatus,
    pub priority: i32,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calling_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialled_number: Option<String>,
    pub ivr: BTreeMap<String, String>,
    /// The caller's screen pop from identity: `{phone, candidates: [...]}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub customer: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub queued_at: DateTime<Utc>,
    /// 1 for the next task its queue's agents will be offered, while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// While pending: the estimated wait until an agent answers, from the
    /// queue's recent handle times and current staffing (docs/api/routing.md#estimated-wait).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<f64>,
    /// Relaxation steps passed in the current queue.
    pub step: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Reservation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_offered_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
    /// When an agent first answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    /// When its current agent accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrap_up_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_agent: Option<Uuid>,
    /// Queues it left by overflow or transfer, in order.
    pub visited: Vec<Uuid>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl TaskView {
    /// The view of a task; position and estimated wait only the router knows.
    pub fn of(
        task: &Task,
        queue: String,
        position: Option<u32>,
        estimated_wait_seconds: Option<f64>,
    ) -> Self {
        Self {
            id: task.id,
            external_id: task.external_id.clone(),
            kind: task.kind,
            channel: task.channel,
            queue_id: task.queue_id,
            queue,
            status: task.status,
            priority: task.priority,
            attributes: task.attributes.clone(),
            calling_number: task.calling_number.clone(),
            dialled_number: task.dialled_number.clone(),
            ivr: task.ivr.clone(),
            customer: task.customer.clone(),
            customer_id: task.customer_id.clone(),
            created_at: task.created_at,
            queued_at: task.queued_at,
            position,
            estimated_wait_seconds,
            step: task.step,
            reservation: task.reservation.clone(),
            first_offered_at: task.first_offered_at,
            agent_id: task.agent_id,
            answered_at: task.answered_at,
            assigned_at: task.assigned_at,
            ended_at: task.ended_at,
            wrap_up_until: task.wrap_up_until,
            completed_at: task.completed_at,
            outcome: task.outcome.clone(),
            callback: task.callback.clone(),
            not_before: task.not_before,
            resumed_from: task.resumed_from,
            target_agent: task.target_agent,
            visited: task.visited.clone(),
            version: task.version,
            updated_at: task.updated_at,
        }
    }
}

/// What an agent holds on one channel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChannelLoad {
    pub capacity: u32,
    pub reserved: u32,
    pub assigned: u32,
    pub wrapping: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    pub id: Uuid,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    pub groups: BTreeSet<String>,
    pub skills: BTreeMap<String, u8>,
    pub capacity: BTreeMap<Channel, u32>,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The agent's own activity: offline, ready, break, ...
    pub activity: String,
    pub activity_since: DateTime<Utc>,
    /// Whether the activity takes offers.
    pub available: bool,
    /// What a wallboard shows: offline, reserved (an offer rings), busy,
    /// wrap_up, or the activity when none of those.
    pub state: String,
    pub state_since: DateTime<Utc>,
    pub load: BTreeMap<Channel, ChannelLoad>,
    /// Tasks offered to, assigned to or wrapping up with the agent.
    pub tasks: Vec<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: QueueSpec,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A queue's live figures (docs/api/routing.md#live-statistics). "Today" is the
/// center's day (`routing.time_zone`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueStats {
    pub queue_id: Uuid,
    pub queue: String,
    pub day: NaiveDate,
    /// Tasks waiting for an agent now (pending or being offered).
    pub waiting: u32,
    pub longest_wait_seconds: f64,
    /// The queue's agents (any relaxation step) by state.
    pub agents: BTreeMap<String, u32>,
    /// Tasks that entered the queue today.
    pub offered: u32,
    pub answered: u32,
    pub answered_within_threshold: u32,
    pub abandoned: u32,
    /// Abandoned before the threshold: not held against the service level.
    pub abandoned_within_threshold: u32,
    /// Left for another queue or a final outcome.
    pub overflowed: u32,
    /// answered within threshold / (answered + abandoned after threshold); absent before any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_level: Option<f64>,
    /// Average speed of answer: mean wait of answered tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asa_seconds: Option<f64>,
    /// abandoned / offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abandon_rate: Option<f64>,
    /// Mean time agents spent per task recently (offer to end of wrap-up).
    pub average_handle_seconds: f64,
    /// What a task arriving now would be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<f64>,
    pub service_level_seconds: u32,
    pub as_of: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentStats {
    pub agent_id: Uuid,
    pub name: String,
    pub state: String,
    pub state_since: DateTime<Utc>,
    pub activity: String,
    pub day: NaiveDate,
    /// Tasks completed today, all channels.
    pub tasks_today: u32,
    /// From accept to end, completed tasks today.
    pub talk_seconds_today: f64,
    pub current_tasks: u32,
    pub as_of: DateTime<Utc>,
}

/// Entry rules, in the order they are tried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rules {
    pub rules: Vec<EntryRule>,
}
