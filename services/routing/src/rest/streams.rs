//! Server-Sent Events: an agent's offers for their desktop, every task change
//! for the switch's adapter and wallboards.

use actix_web::{Responder, get, web};
use futures::StreamExt;
use hotline_kit::{
    ApiResult,
    auth::{Principal, Role},
    sse::{self, SseEvent},
};
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::Service;
use crate::{domain::command::Command, leader::Notification, peers::Topic};

fn event_of(topic: &Topic, notification: &Notification) -> SseEvent {
    match (topic, notification) {
        (Topic::Agent(agent), Notification::Agent { event, agent: view }) => SseEvent::new(
            notification.agent_kind(*agent),
            json!({"event": event, "agent": view}),
        ),
        (Topic::Agent(agent), Notification::Task { event, task, .. }) => SseEvent::new(
            notification.agent_kind(*agent),
            json!({"event": event, "task": task}),
        )
        .with_id(format!("{}.{}", task.id, task.version)),
        (_, Notification::Snapshot { task }) => SseEvent::new("snapshot", json!({"task": task}))
            .with_id(format!("{}.{}", task.id, task.version)),
        (
            Topic::Tasks(_),
            Notification::Task {
                event,
                concerns,
                task,
            },
        ) => SseEvent::new(event.clone(), json!({"task": task, "agent_id": concerns}))
            .with_id(format!("{}.{}", task.id, task.version)),
        (Topic::Tasks(_), Notification::Agent { event, agent }) => {
            SseEvent::new(event.clone(), json!({"agent": agent}))
        }
    }
}

/// Checks the caller may follow `topic`, then streams it.
pub async fn respond(
    service: Service,
    principal: Principal,
    topic: Topic,
) -> ApiResult<impl Responder> {
    match &topic {
        Topic::Agent(agent) => {
            service
                .execute(&principal, Command::AgentOffers { agent: *agent })
                .await?;
        }
        Topic::Tasks(_) => {
            principal.require_any(&[Role::Service, Role::Supervisor, Role::Admin])?
        }
    }
    let changes = service.stream(principal, topic.clone());
    let events = ReceiverStream::new(changes).map(move |change| match change {
        Ok(notification) => event_of(&topic, &notification),
        Err(error) => SseEvent::new("error", error.problem()),
    });
    Ok(sse::stream(
        events,
        service.keep_alive(),
        service.streams_end().clone(),
    ))
}

/// An agent's offers and task changes as Server-Sent Events. Data:
/// `{event, task}` or `{event, agent}`; reconnect and you get a `snapshot` of
/// what you hold, then changes again.
#[utoipa::path(
    tag = "agents",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, content_type = "text/event-stream", description = "the agent's stream"),
        (status = 403, description = "another agent's stream"),
        (status = 404),
    ),
    security(("oauth2" = []))
)]
#[get("/{id}/stream")]
pub async fn agent_stream(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<impl Responder> {
    respond(service, principal, Topic::Agent(id.into_inner())).await
}
