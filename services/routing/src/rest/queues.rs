//! `/api/v1/queues`, `/api/v1/entry-rules` and `/api/v1/stats`: what queues
//! offer to whom, where arriving calls go, and the live figures.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use hotline_kit::{ApiResult, auth::Principal};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Service, tagged};
use crate::{
    domain::{command::Command, model::QueueSpec},
    views::{AgentStats, QueueStats, QueueView, Rules},
};
use hotline_kit::rest::if_match_version;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(
            utoipa_actix_web::scope("/api/v1/queues")
                .service(create)
                .service(list)
                .service(get_one)
                .service(replace)
                .service(remove)
                .service(one_queue_stats),
        )
        .service(
            utoipa_actix_web::scope("/api/v1/entry-rules")
                .service(get_rules)
                .service(put_rules),
        )
        .service(
            utoipa_actix_web::scope("/api/v1/stats")
                .service(queue_stats)
                .service(agent_stats),
        );
}

async fn queue(
    service: &Service,
    principal: &Principal,
    command: Command,
    created: bool,
) -> ApiResult<HttpResponse> {
    let queue = service.execute(principal, command).await?.queue()?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    if created {
        response.insert_header(("Location", format!("/api/v1/queues/{}", queue.id)));
    }
    Ok(tagged(response, &queue.id, queue.version, &queue))
}

/// Creates a queue: its target (which agents), strategy, service level,
/// limits, overflow chain, relaxation steps and business hours. Supervisors and admins.
#[utoipa::path(
    tag = "queues",
    request_body = QueueSpec,
    responses(
        (status = 201, body = QueueView, headers(("ETag" = String), ("Location" = String))),
        (status = 409, description = "the name is taken"),
        (status = 422, description = "invalid fields (a malformed expression says where), listed in `errors`"),
    ),
    security(("oauth2" = []))
)]
#[post("")]
async fn create(
    principal: Principal,
    service: Service,
    spec: web::Json<QueueSpec>,
) -> ApiResult<HttpResponse> {
    queue(
        &service,
        &principal,
        Command::CreateQueue {
            spec: spec.into_inner(),
        },
        true,
    )
    .await
}

#[utoipa::path(tag = "queues", responses((status = 200, body = Vec<QueueView>)), security(("oauth2" = [])))]
#[get("")]
async fn list(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    let queues = service
        .execute(&principal, Command::ListQueues)
        .await?
        .queues()?;
    Ok(HttpResponse::Ok().json(queues))
}

/// A queue, by id or by name.
#[utoipa::path(
    tag = "queues",
    params(("id" = String, Path, description = "id or name")),
    responses((status = 200, body = QueueView, headers(("ETag" = String))), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}")]
async fn get_one(
    principal: Principal,
    service: Service,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    queue(
        &service,
        &principal,
        Command::GetQueue {
            id: id.into_inner(),
        },
        false,
    )
    .await
}

/// Replaces a queue's settings. Waiting tasks keep their places under the
/// new ones. Send the `ETag` as `If-Match` to refuse a stale change (412).
#[utoipa::path(
    tag = "queues",
    request_body = QueueSpec,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, body = QueueView, headers(("ETag" = String))),
        (status = 404), (status = 409), (status = 412), (status = 422),
    ),
    security(("oauth2" = []))
)]
#[put("/{id}")]
async fn replace(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<Uuid>,
    spec: web::Json<QueueSpec>,
) -> ApiResult<HttpResponse> {
    let command = Command::ReplaceQueue {
        id: id.into_inner(),
        spec: spec.into_inner(),
        if_version: if_match_version(&request)?,
    };
    queue(&service, &principal, command, false).await
}

/// Deletes a queue no task is in and no rule names.
#[utoipa::path(
    tag = "queues",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409)),
    security(("oauth2" = []))
)]
#[delete("/{id}")]
async fn remove(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    service
        .execute(
            &principal,
            Command::DeleteQueue {
                id: id.into_inner(),
            },
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn queue_figures(
    service: &Service,
    principal: &Principal,
    queue: Option<String>,
) -> ApiResult<Vec<QueueStats>> {
    service
        .execute(principal, Command::QueueStats { queue })
        .await?
        .queue_stats()
}

/// One queue's live figures.
#[utoipa::path(
    tag = "stats",
    params(("id" = String, Path, description = "id or name")),
    responses((status = 200, body = QueueStats), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}/stats")]
async fn one_queue_stats(
    principal: Principal,
    service: Service,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let stats = queue_figures(&service, &principal, Some(id.into_inner())).await?;
    match stats.into_iter().next() {
        Some(stats) => Ok(HttpResponse::Ok().json(stats)),
        None => Err(hotline_kit::ApiError::not_found(
            "queue_not_found",
            "no such queue",
        )),
    }
}

/// Every queue's live figures: waiting now, longest wait, agents by state, and
/// today's offered, answered, abandoned, service level and speed of answer.
/// Cheap: served from the router's memory, fine to poll every second.
#[utoipa::path(tag = "stats", responses((status = 200, body = Vec<QueueStats>)), security(("oauth2" = [])))]
#[get("/queues")]
async fn queue_stats(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(queue_figures(&service, &principal, None).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct AgentStatsParams {
    /// One agent; every agent when absent.
    agent_id: Option<Uuid>,
}

/// Agents' live figures: state and since when, tasks and talk time today.
#[utoipa::path(
    tag = "stats",
    params(AgentStatsParams),
    responses((status = 200, body = Vec<AgentStats>), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/agents")]
async fn agent_stats(
    principal: Principal,
    service: Service,
    params: web::Query<AgentStatsParams>,
) -> ApiResult<HttpResponse> {
    let stats = service
        .execute(
            &principal,
            Command::AgentStats {
                agent: params.agent_id,
            },
        )
        .await?
        .agent_stats()?;
    Ok(HttpResponse::Ok().json(stats))
}

/// The entry rules, in the order they are tried for a task that names no queue.
#[utoipa::path(tag = "queues", responses((status = 200, body = Rules)), security(("oauth2" = [])))]
#[get("")]
async fn get_rules(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    let rules = service
        .execute(&principal, Command::GetRules)
        .await?
        .rules()?;
    Ok(HttpResponse::Ok().json(rules))
}

/// Replaces the entry rules: an arriving task goes to the queue of the first
/// rule its attributes match (`dialled_number == "96123" AND ivr.menu == "2"`).
#[utoipa::path(
    tag = "queues",
    request_body = Rules,
    responses((status = 200, body = Rules), (status = 422)),
    security(("oauth2" = []))
)]
#[put("")]
async fn put_rules(
    principal: Principal,
    service: Service,
    rules: web::Json<Rules>,
) -> ApiResult<HttpResponse> {
    let rules = service
        .execute(
            &principal,
            Command::PutRules {
                rules: rules.into_inner().rules,
            },
        )
        .await?
        .rules()?;
    Ok(HttpResponse::Ok().json(rules))
}
