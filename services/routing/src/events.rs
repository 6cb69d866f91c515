//! Routing's events, published through the outbox: every task and agent change,
//! and the customer-timeline entries of calls from known callers.

use chrono::{DateTime, Utc};
use hotline_kit::{bus::Event, outbox::Outbox};
use hotline_proto::{
    convert::{timestamp, wire},
    events::v1::{AgentChanged, CustomerActivity, RoutedTask},
    routing::v1 as pb,
};
use prost::Message;

use crate::{
    domain::{
        model::Reservation,
        router::{Happening, TimelineNote},
    },
    views::{AgentView, TaskView},
};

pub const TASK_CREATED: &str = "routing.task.created";
pub const TASK_RESERVED: &str = "routing.task.reserved";
pub const TASK_REJECTED: &str = "routing.task.rejected";
pub const TASK_TIMED_OUT: &str = "routing.task.timed_out";
pub const TASK_WITHDRAWN: &str = "routing.task.withdrawn";
pub const TASK_ASSIGNED: &str = "routing.task.assigned";
pub const TASK_ENDED: &str = "routing.task.ended";
pub const TASK_COMPLETED: &str = "routing.task.completed";
pub const TASK_CANCELED: &str = "routing.task.canceled";
pub const TASK_ABANDONED: &str = "routing.task.abandoned";
pub const TASK_OVERFLOWED: &str = "routing.task.overflowed";
pub const TASK_TRANSFERRED: &str = "routing.task.transferred";
pub const TASK_CALLBACK_REQUESTED: &str = "routing.task.callback_requested";
pub const TASK_REQUEUED: &str = "routing.task.requeued";
pub const TASK_UPDATED: &str = "routing.task.updated";
pub const AGENT_CREATED: &str = "routing.agent.created";
pub const AGENT_UPDATED: &str = "routing.agent.updated";
pub const AGENT_STATE_CHANGED: &str = "routing.agent.state_changed";
/// Identity's timeline contract (`hotline.events.v1.CustomerActivity`).
pub const ACTIVITY_RECORDED: &str = "routing.activity.recorded";

fn optional(at: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    at.map(timestamp)
}

/// `ended`: the offer a rejection, timeout or withdrawal ended, reported in
/// place of the task's own (it holds none any more).
pub fn routed_task(
    task: &TaskView,
    concerns: Option<uuid::Uuid>,
    ended: Option<&Reservation>,
    service_level_seconds: u32,
    now: DateTime<Utc>,
) -> RoutedTask {
    let reservation = task.reservation.as_ref().or(ended);
    RoutedTask {
        task_id: task.id.to_string(),
        external_id: task.external_id.clone().unwrap_or_default(),
        kind: wire::<pb::TaskKind>(task.kind.as_str()),
        channel: wire::<pb::Channel>(task.channel.as_str()),
        queue_id: task.queue_id.to_string(),
        queue: task.queue.clone(),
        status: wire::<pb::TaskStatus>(task.status.as_str()),
        priority: task.priority,
        agent_id: concerns
            .or(task.agent_id)
            .map(|id| id.to_string())
            .unwrap_or_default(),
        reservation_id: reservation.map(|r| r.id.to_string()).unwrap_or_default(),
        customer_id: task.customer_id.clone().unwrap_or_default(),
        calling_number: task
            .customer
            .as_ref()
            .and_then(|pop| pop.get("phone"))
            .and_then(|phone| phone.as_str())
            .map(str::to_owned)
            .or_else(|| task.calling_number.clone())
            .unwrap_or_default(),
        dialled_number: task.dialled_number.clone().unwrap_or_default(),
        created_at: Some(timestamp(task.created_at)),
        queued_at: Some(timestamp(task.queued_at)),
        first_offered_at: optional(task.first_offered_at),
        offered_at: optional(reservation.map(|r| r.offered_at)),
        answered_at: optional(task.answered_at),
        ended_at: optional(task.ended_at),
        wrap_up_until: optional(task.wrap_up_until),
        completed_at: optional(task.completed_at),
        outcome: task.outcome.clone().unwrap_or_default(),
        visited_queue_ids: task.visited.iter().map(ToString::to_string).collect(),
        step: task.step,
        service_level_seconds,
        occurred_at: Some(timestamp(now)),
        callback_number: task
            .callback
            .as_ref()
            .map(|c| c.number.clone())
            .unwrap_or_default(),
        failed_attempts: task.callback.as_ref().map_or(0, |c| c.failed_attempts),
    }
}

pub fn agent_changed(agent: &AgentView, now: DateTime<Utc>) -> AgentChanged {
    AgentChanged {
        agent_id: agent.id.to_string(),
        name: agent.name.clone(),
        activity: agent.activity.clone(),
        available: agent.available,
        state: agent.state.clone(),
        state_since: Some(timestamp(agent.state_since)),
        activity_since: Some(timestamp(agent.activity_since)),
        groups: agent.groups.iter().cloned().collect(),
        occurred_at: Some(timestamp(now)),
    }
}

fn customer_activity(note: &TimelineNote) -> CustomerActivity {
    CustomerActivity {
        customer_id: note.customer_id.clone().unwrap_or_default(),
        phone: note.phone.clone().unwrap_or_default(),
        kind: "call".to_owned(),
        reference: note.reference.clone(),
        summary: note.summary.clone(),
        occurred_at: Some(timestamp(note.occurred_at)),
        actor: "routing".to_owned(),
    }
}

/// The outbox event for a happening; `service_level_seconds` of the task's queue.
pub fn event(
    outbox: &Outbox,
    happening: &Happening,
    service_level_seconds: u32,
    traceparent: Option<String>,
    now: DateTime<Utc>,
) -> Option<Event> {
    let (subject, data) = if let Some(task) = &happening.task {
        (
            task.id.to_string(),
            routed_task(
                task,
                happening.concerns,
                happening.ended.as_ref(),
                service_level_seconds,
                now,
            )
            .encode_to_vec(),
        )
    } else if let Some(agent) = &happening.agent {
        (
            agent.id.to_string(),
            agent_changed(agent, now).encode_to_vec(),
        )
    } else if let Some(note) = &happening.timeline {
        (
            note.reference.clone(),
            customer_activity(note).encode_to_vec(),
        )
    } else {
        return None;
    };
    let mut event = outbox.event(happening.kind, subject, data);
    event.traceparent = traceparent.or(event.traceparent);
    Some(event)
}
