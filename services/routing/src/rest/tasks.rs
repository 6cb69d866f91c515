//! `/api/v1/tasks` and `/api/v1/reservations`: work items, their end, wrap-up,
//! transfers and callbacks; offers accepted or rejected.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use hotline_kit::{
    ApiError, ApiResult,
    auth::Principal,
    idempotency,
    rest::{OptionalJson, require_plain_text},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Service, task_answer};
use crate::{
    domain::{
        command::{AttemptResult, Command, NewTask, TransferTarget},
        model::TaskStatus,
    },
    store::TaskFilter,
    views::TaskView,
};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(
            utoipa_actix_web::scope("/api/v1/tasks")
                .service(create)
                .service(list)
                .service(get_one)
                .service(cancel)
                .service(complete)
                .service(end_wrap_up)
                .service(transfer)
                .service(callback)
                .service(attempt),
        )
        .service(
            utoipa_actix_web::scope("/api/v1/reservations")
                .service(accept)
                .service(reject),
        );
}

async fn answer(
    service: &Service,
    principal: &Principal,
    command: Command,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.task_outcome(principal, command).await?.task))
}

/// Adds a task (a chat, an e-mail, back-office work, a call): routed to its
/// queue, offered to the best free agent. An `external_id` (or an
/// `Idempotency-Key`) already used answers with that task (200) instead of a second one.
#[utoipa::path(
    tag = "tasks",
    request_body = NewTask,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[ -~]*$", description = "Used as external_id (`<client id>:<key>`, at most 200 characters) when that is absent")),
    responses(
        (status = 201, body = TaskView, headers(("Location" = String))),
        (status = 200, body = TaskView, description = "the task existed already"),
        (status = 404, description = "no such queue or agent"),
        (status = 422, description = "invalid fields, listed in `errors`"),
    ),
    security(("oauth2" = []))
)]
#[post("")]
async fn create(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    task: web::Json<NewTask>,
) -> ApiResult<HttpResponse> {
    let mut task = task.into_inner();
    if task.external_id.is_none()
        && let Some(key) = request.headers().get(idempotency::HEADER)
    {
        let key = key.to_str().map_err(|_| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key is not valid text",
            )
        })?;
        require_plain_text("/Idempotency-Key", key)?;
        task.external_id = Some(format!("{}:{key}", principal.subject));
    }
    task.customer = None;
    task.customer_id = None;
    Ok(task_answer(service.create_task(&principal, task).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// pending, reserved, assigned, wrapping, completed, canceled, abandoned or overflowed.
    status: Option<String>,
    queue_id: Option<Uuid>,
    agent_id: Option<Uuid>,
    /// Created at or after (RFC 3339).
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    /// Page size, 1 to 100 (20 by default).
    #[param(inline)]
    limit: Option<hotline_kit::rest::Limit>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists tasks, newest first, from the history (no position or estimated wait).
#[utoipa::path(
    tag = "tasks",
    params(ListParams),
    responses((status = 200, body = inline(hotline_kit::rest::Page<TaskView>)), (status = 400)),
    security(("oauth2" = []))
)]
#[get("")]
async fn list(
    principal: Principal,
    service: Service,
    params: web::Query<ListParams>,
) -> ApiResult<HttpResponse> {
    let params = params.into_inner();
    let status = params
        .status
        .as_deref()
        .map(|status| {
            TaskStatus::parse(status).ok_or_else(|| {
                ApiError::bad_request("invalid_query", format!("no task status {status}"))
            })
        })
        .transpose()?;
    let filter = TaskFilter {
        status,
        queue_id: params.queue_id,
        agent_id: params.agent_id,
        created_after: params.created_after,
        created_before: params.created_before,
    };
    let page = service
        .list_tasks(
            &principal,
            filter,
            params.cursor.as_deref(),
            params.limit.map(u64::from),
        )
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A task; while it waits, with its position and estimated wait.
#[utoipa::path(
    tag = "tasks",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TaskView), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}")]
async fn get_one(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.task(&principal, id.into_inner()).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: Option<String>,
}

/// Cancels a task nobody works on yet (an offer ringing is withdrawn).
#[utoipa::path(
    tag = "tasks",
    request_body = inline(Option<Reason>),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TaskView), (status = 404), (status = 409, description = "an agent works on it")),
    security(("oauth2" = []))
)]
#[post("/{id}/cancel")]
async fn cancel(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    body: OptionalJson<Reason>,
) -> ApiResult<HttpResponse> {
    let reason = body.into_inner().and_then(|body| body.reason);
    answer(
        &service,
        &principal,
        Command::CancelTask {
            id: id.into_inner(),
            reason,
        },
    )
    .await
}

/// The agent finished the work: wrap-up begins for the queue's wrap-up time
/// (or the task completes). In wrap-up, ends it.
#[utoipa::path(
    tag = "tasks",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TaskView), (status = 403, description = "another agent's task"), (status = 404), (status = 409)),
    security(("oauth2" = []))
)]
#[post("/{id}/complete")]
async fn complete(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    answer(
        &service,
        &principal,
        Command::CompleteTask {
            id: id.into_inner(),
        },
    )
    .await
}

/// Ends wrap-up early: the agent is free for the next task.
#[utoipa::path(
    tag = "tasks",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TaskView), (status = 403), (status = 404), (status = 409)),
    security(("oauth2" = []))
)]
#[post("/{id}/wrap-up/end")]
async fn end_wrap_up(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    answer(
        &service,
        &principal,
        Command::EndWrapUp {
            id: id.into_inner(),
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Transfer {
    /// `{"agent": "<id>"}` or `{"queue": "<name or id>"}`.
    #[schema(schema_with = transfer_target)]
    to: TransferTarget,
}

/// [`TransferTarget`] as serde reads it: an object with exactly one of the
/// two keys (utoipa's schema of an enum lets other keys through).
fn transfer_target() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
    let one = |key: &str, value: ObjectBuilder, description: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(description))
            .property(key, value)
            .required(key)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
    };
    OneOfBuilder::new()
        .item(one(
            "agent",
            ObjectBuilder::new().schema_type(Type::String).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid),
            )),
            "Offered to this agent only.",
        ))
        .item(one(
            "queue",
            ObjectBuilder::new().schema_type(Type::String),
            "Back in line in this queue (name or id), keeping its place.",
        ))
        .build()
        .into()
}

/// Transfers a task an agent works on to another agent or a queue; the
/// customer data travels with it.
#[utoipa::path(
    tag = "tasks",
    request_body = inline(Transfer),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TaskView), (status = 403), (status = 404), (status = 409), (status = 422)),
    security(("oauth2" = []))
)]
#[post("/{id}/transfer")]
async fn transfer(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    body: web::Json<Transfer>,
) -> ApiResult<HttpResponse> {
    answer(
        &service,
        &principal,
        Command::TransferTask {
            id: id.into_inner(),
            to: body.into_inner().to,
        },
    )
    .await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CallbackBody {
    /// The number to call back; the calling number when absent.
    number: Option<String>,
}

/// A waiting caller leaves the queue and keeps their place: when they reach the
/// front, an agent is offered the call back.
#[utoipa::path(
    tag = "tasks",
    request_body = inline(Option<CallbackBody>),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TaskView), (status = 404), (status = 409), (status = 422)),
    security(("oauth2" = []))
)]
#[post("/{id}/callback")]
async fn callback(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    body: OptionalJson<CallbackBody>,
) -> ApiResult<HttpResponse> {
    let number = body.into_inner().and_then(|body| body.number);
    answer(
        &service,
        &principal,
        Command::RequestCallback {
            id: id.into_inner(),
            number,
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Attempt {
    result: AttemptResult,
}

/// How a callback or outbound call went: `no_answer` and `busy` are tried again
/// on the retry schedule (`routing.callback_retry`), then given up.
#[utoipa::path(
    tag = "tasks",
    request_body = inline(Attempt),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TaskView), (status = 403), (status = 404), (status = 409)),
    security(("oauth2" = []))
)]
#[post("/{id}/attempts")]
async fn attempt(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    body: web::Json<Attempt>,
) -> ApiResult<HttpResponse> {
    answer(
        &service,
        &principal,
        Command::ReportAttempt {
            id: id.into_inner(),
            result: body.into_inner().result,
        },
    )
    .await
}

/// Accepts an offer: the task is the agent's. Agents answer only their own offers.
#[utoipa::path(
    tag = "reservations",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = TaskView),
        (status = 403, description = "an offer to another agent"),
        (status = 404),
        (status = 409, description = "no longer open: timed out, withdrawn or answered"),
    ),
    security(("oauth2" = []))
)]
#[post("/{id}/accept")]
async fn accept(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    answer(
        &service,
        &principal,
        Command::Accept {
            reservation: id.into_inner(),
        },
    )
    .await
}

/// Rejects an offer: the task goes to the next agent, never back to this one.
#[utoipa::path(
    tag = "reservations",
    request_body = inline(Option<Reason>),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TaskView), (status = 403), (status = 404), (status = 409)),
    security(("oauth2" = []))
)]
#[post("/{id}/reject")]
async fn reject(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    body: OptionalJson<Reason>,
) -> ApiResult<HttpResponse> {
    let reason = body.into_inner().and_then(|body| body.reason);
    answer(
        &service,
        &principal,
        Command::Reject {
            reservation: id.into_inner(),
            reason,
        },
    )
    .await
}
