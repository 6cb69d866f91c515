//! `/api/v1/cti`: what the phone switch's adapter tells routing — a call
//! arrived, was answered, ended, the caller hung up — and asks of it: dial
//! out. Where to send calls comes back on the task stream (docs/api/cti.md).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, post, web};
use hotline_kit::{ApiResult, auth::Principal, rest::OptionalJson};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Service, task_answer};
use crate::{
    domain::{
        command::{Command, NewTask},
        model::{Channel, TaskKind},
    },
    peers::Topic,
    views::TaskView,
};

pub fn configure(config: &mut ServiceConfig) {
    config.service(
        utoipa_actix_web::scope("/api/v1/cti")
            .service(offer)
            .service(answered)
            .service(ended)
            .service(abandoned)
            .service(dial)
            .service(stream),
    );
}

/// A call the switch offers to the center, after its IVR.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OfferedCall {
    /// The switch's id for the call; repeating it answers with the same task.
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    call_id: String,
    #[schema(
        max_length = 40,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    calling_number: Option<String>,
    #[schema(
        max_length = 40,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    dialled_number: Option<String>,
    /// What the caller chose in the IVR.
    #[serde(default)]
    ivr: BTreeMap<String, String>,
    /// Queue name or id; the entry rules choose when absent.
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    queue: Option<String>,
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    priority: i32,
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

/// A call arrived: a voice task in a queue, with the caller's screen pop from
/// identity (absent when identity is slow or down). The answer says the
/// caller's position and estimated wait, for the IVR to announce.
#[utoipa::path(
    tag = "cti",
    request_body = OfferedCall,
    responses(
        (status = 201, body = TaskView, headers(("Location" = String))),
        (status = 200, body = TaskView, description = "this call_id was offered before"),
        (status = 404, description = "no such queue"),
        (status = 422, description = "invalid fields, or no entry rule matches"),
    ),
    security(("oauth2" = []))
)]
#[post("/calls")]
async fn offer(
    principal: Principal,
    service: Service,
    call: web::Json<OfferedCall>,
) -> ApiResult<HttpResponse> {
    let call = call.into_inner();
    let task = NewTask {
        external_id: Some(call.call_id),
        kind: TaskKind::Inbound,
        channel: Channel::Voice,
        queue: call.queue,
        priority: call.priority,
        attributes: call.attributes,
        calling_number: call.calling_number,
        dialled_number: call.dialled_number,
        ivr: call.ivr,
        ..NewTask::default()
    };
    Ok(task_answer(service.create_task(&principal, task).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Answered {
    /// Who picked up, when not the agent the call was offered to.
    agent_id: Option<Uuid>,
}

/// The switch connected the call to an agent (the offer is accepted).
#[utoipa::path(
    tag = "cti",
    request_body = inline(Option<Answered>),
    params(("call_id" = String, Path)),
    responses((status = 200, body = TaskView), (status = 404), (status = 409)),
    security(("oauth2" = []))
)]
#[post("/calls/{call_id}/answered")]
async fn answered(
    principal: Principal,
    service: Service,
    call_id: web::Path<String>,
    body: OptionalJson<Answered>,
) -> ApiResult<HttpResponse> {
    let call_id = call_id.into_inner();
    let agent = body.into_inner().and_then(|body| body.agent_id);
    let command = Command::CallAnswered {
        call_id: call_id.clone(),
        agent,
    };
    Ok(HttpResponse::Ok().json(service.call_event(&principal, &call_id, command).await?))
}

/// The conversation ended: wrap-up begins. Before an answer, the caller abandoned.
#[utoipa::path(
    tag = "cti",
    params(("call_id" = String, Path)),
    responses((status = 200, body = TaskView), (status = 404)),
    security(("oauth2" = []))
)]
#[post("/calls/{call_id}/ended")]
async fn ended(
    principal: Principal,
    service: Service,
    call_id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let call_id = call_id.into_inner();
    let command = Command::CallEnded {
        call_id: call_id.clone(),
    };
    Ok(HttpResponse::Ok().json(service.call_event(&principal, &call_id, command).await?))
}

/// The caller hung up while waiting. Calling again within
/// `routing.resume_window` keeps their place.
#[utoipa::path(
    tag = "cti",
    params(("call_id" = String, Path)),
    responses((status = 200, body = TaskView), (status = 404)),
    security(("oauth2" = []))
)]
#[post("/calls/{call_id}/abandoned")]
async fn abandoned(
    principal: Principal,
    service: Service,
    call_id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let call_id = call_id.into_inner();
    let command = Command::CallAbandoned {
        call_id: call_id.clone(),
    };
    Ok(HttpResponse::Ok().json(service.call_event(&principal, &call_id, command).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Dial {
    /// The caller's id for the request; repeating it answers with the same task.
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    request_id: Option<String>,
    #[schema(
        max_length = 40,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    number: String,
    /// Queue name or id whose agents make the call.
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    queue: String,
    /// Only this agent.
    agent_id: Option<Uuid>,
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    priority: i32,
    /// At most 50 attributes, 16 KiB of JSON.
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

/// An outbound call for an agent to make (a survey call, a payment reminder).
/// Once an agent accepts, the task stream tells the switch to dial.
#[utoipa::path(
    tag = "cti",
    request_body = Dial,
    responses((status = 201, body = TaskView), (status = 200, body = TaskView), (status = 404), (status = 422)),
    security(("oauth2" = []))
)]
#[post("/dial")]
async fn dial(
    principal: Principal,
    service: Service,
    body: web::Json<Dial>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let task = NewTask {
        external_id: body.request_id,
        kind: TaskKind::Outbound,
        channel: Channel::Voice,
        queue: Some(body.queue),
        priority: body.priority,
        attributes: body.attributes,
        number: Some(body.number),
        agent_id: body.agent_id,
        ..NewTask::default()
    };
    Ok(task_answer(service.create_task(&principal, task).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct StreamParams {
    /// Only this queue (id); every queue when absent.
    queue_id: Option<Uuid>,
}

/// Every task change as Server-Sent Events: `snapshot` events for the tasks
/// active when the stream starts (again after a reconnection), then one event
/// per change named after it (`routing.task.reserved`: ring that agent's
/// phone; `routing.task.assigned` of an outbound task: dial). Data: `{task, agent_id}`.
#[utoipa::path(
    tag = "cti",
    params(StreamParams),
    responses((status = 200, content_type = "text/event-stream", description = "the task stream")),
    security(("oauth2" = []))
)]
#[get("/stream")]
async fn stream(
    principal: Principal,
    service: Service,
    params: web::Query<StreamParams>,
) -> ApiResult<impl actix_web::Responder> {
    let queues = params.queue_id.into_iter().collect();
    super::streams::respond(service, principal, Topic::Tasks(queues)).await
}
