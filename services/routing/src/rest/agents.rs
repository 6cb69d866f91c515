//! `/api/v1/agents` and `/api/v1/activities`: who works, their skills and
//! capacity, sign-in, sign-out and activities.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use hotline_kit::{
    ApiResult,
    auth::Principal,
    rest::{OptionalJson, decode_cursor},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Service, tagged};
use crate::{
    domain::{
        command::Command,
        model::{Activity, AgentPatch, AgentSpec},
    },
    views::{AgentView, TaskView},
};
use hotline_kit::rest::if_match_version;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(
            utoipa_actix_web::scope("/api/v1/agents")
                .service(create)
                .service(list)
                .service(get_one)
                .service(update)
                .service(remove)
                .service(sign_in)
                .service(sign_out)
                .service(set_activity)
                .service(tasks)
                .service(super::streams::agent_stream),
        )
        .service(
            utoipa_actix_web::scope("/api/v1/activities")
                .service(list_activities)
                .service(put_activity)
                .service(delete_activity),
        );
}

async fn agent(
    service: &Service,
    principal: &Principal,
    command: Command,
) -> ApiResult<HttpResponse> {
    let agent = service.agent_outcome(principal, command).await?;
    Ok(tagged(HttpResponse::Ok(), &agent.id, agent.version, &agent))
}

/// Creates an agent (signed off). Supervisors and admins.
#[utoipa::path(
    tag = "agents",
    request_body = AgentSpec,
    responses(
        (status = 201, body = AgentView, headers(("ETag" = String), ("Location" = String))),
        (status = 409, description = "another agent has this login"),
        (status = 422, description = "invalid fields, listed in `errors`"),
    ),
    security(("oauth2" = []))
)]
#[post("")]
async fn create(
    principal: Principal,
    service: Service,
    spec: web::Json<AgentSpec>,
) -> ApiResult<HttpResponse> {
    let agent = service
        .agent_outcome(
            &principal,
            Command::CreateAgent {
                spec: spec.into_inner(),
            },
        )
        .await?;
    let mut response = HttpResponse::Created();
    response.insert_header(("Location", format!("/api/v1/agents/{}", agent.id)));
    Ok(tagged(response, &agent.id, agent.version, &agent))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Page size, 1 to 1000 (100 by default).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists agents, with their state and load, a page at a time.
#[utoipa::path(
    tag = "agents",
    params(ListParams),
    responses((status = 200, body = inline(hotline_kit::rest::Page<AgentView>)), (status = 400)),
    security(("oauth2" = []))
)]
#[get("")]
async fn list(
    principal: Principal,
    service: Service,
    params: web::Query<ListParams>,
) -> ApiResult<HttpResponse> {
    let params = params.into_inner();
    let after = params
        .cursor
        .as_deref()
        .map(decode_cursor::<Uuid>)
        .transpose()?;
    let command = Command::ListAgents {
        after,
        limit: params.limit.unwrap_or(100),
    };
    let page = service.execute(&principal, command).await?.agents()?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(
    tag = "agents",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentView, headers(("ETag" = String))), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}")]
async fn get_one(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    agent(
        &service,
        &principal,
        Command::GetAgent {
            id: id.into_inner(),
        },
    )
    .await
}

/// Changes an agent's name, login, groups, skills, capacity or attributes;
/// absent fields stay. Send the `ETag` as `If-Match` to refuse a stale change (412).
#[utoipa::path(
    tag = "agents",
    request_body = AgentPatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, body = AgentView, headers(("ETag" = String))),
        (status = 404), (status = 409), (status = 412, description = "stale If-Match"), (status = 422),
    ),
    security(("oauth2" = []))
)]
#[patch("/{id}")]
async fn update(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<Uuid>,
    patch: web::Json<AgentPatch>,
) -> ApiResult<HttpResponse> {
    let command = Command::UpdateAgent {
        id: id.into_inner(),
        patch: patch.into_inner(),
        if_version: if_match_version(&request)?,
    };
    agent(&service, &principal, command).await
}

/// Deletes a signed-off agent who holds no task.
#[utoipa::path(
    tag = "agents",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "signed in or holding tasks")),
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
            Command::DeleteAgent {
                id: id.into_inner(),
            },
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignIn {
    /// The activity to start in; `ready` when absent.
    activity: Option<String>,
}

/// Signs an agent in. Agents sign themselves in; supervisors, admins and CTI
/// adapters anyone.
#[utoipa::path(
    tag = "agents",
    request_body = inline(Option<SignIn>),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentView), (status = 403), (status = 404), (status = 422)),
    security(("oauth2" = []))
)]
#[post("/{id}/sign-in")]
async fn sign_in(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    body: OptionalJson<SignIn>,
) -> ApiResult<HttpResponse> {
    let activity = body.into_inner().and_then(|body| body.activity);
    agent(
        &service,
        &principal,
        Command::SignIn {
            agent: id.into_inner(),
            activity,
        },
    )
    .await
}

/// Signs an agent out. Offers still ringing go to other agents; refused (409)
/// while the agent works on a task.
#[utoipa::path(
    tag = "agents",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentView), (status = 403), (status = 404), (status = 409)),
    security(("oauth2" = []))
)]
#[post("/{id}/sign-out")]
async fn sign_out(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    agent(
        &service,
        &principal,
        Command::SignOut {
            agent: id.into_inner(),
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetActivity {
    activity: String,
}

/// Puts an agent in an activity (ready, break, lunch...). Work in hand goes on;
/// an unavailable activity only stops new offers.
#[utoipa::path(
    tag = "agents",
    request_body = inline(SetActivity),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentView), (status = 403), (status = 404), (status = 409), (status = 422)),
    security(("oauth2" = []))
)]
#[put("/{id}/activity")]
async fn set_activity(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    body: web::Json<SetActivity>,
) -> ApiResult<HttpResponse> {
    let command = Command::SetActivity {
        agent: id.into_inner(),
        activity: body.into_inner().activity,
    };
    agent(&service, &principal, command).await
}

/// The tasks an agent holds now: offered, assigned or in wrap-up.
#[utoipa::path(
    tag = "agents",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<TaskView>), (status = 403), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}/tasks")]
async fn tasks(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let tasks = service
        .execute(
            &principal,
            Command::AgentOffers {
                agent: id.into_inner(),
            },
        )
        .await?
        .tasks()?;
    Ok(HttpResponse::Ok().json(tasks))
}

/// Lists the activities agents can be in.
#[utoipa::path(
    tag = "agents",
    responses((status = 200, body = Vec<Activity>)),
    security(("oauth2" = []))
)]
#[get("")]
async fn list_activities(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    let activities = service
        .execute(&principal, Command::ListActivities)
        .await?
        .activities()?;
    Ok(HttpResponse::Ok().json(activities))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ActivityBody {
    available: bool,
    #[serde(default)]
    description: String,
}

/// Creates or changes an activity. Supervisors and admins.
#[utoipa::path(
    tag = "agents",
    request_body = inline(ActivityBody),
    params(("name" = String, Path)),
    responses((status = 200, body = Activity), (status = 422)),
    security(("oauth2" = []))
)]
#[put("/{name}")]
async fn put_activity(
    principal: Principal,
    service: Service,
    name: web::Path<String>,
    body: web::Json<ActivityBody>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let activity = Activity {
        name: name.into_inner(),
        available: body.available,
        description: body.description,
    };
    let activity = service
        .execute(&principal, Command::PutActivity { activity })
        .await?
        .activity()?;
    Ok(HttpResponse::Ok().json(activity))
}

/// Deletes an activity nobody is in (built-in ones stay).
#[utoipa::path(
    tag = "agents",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404), (status = 409)),
    security(("oauth2" = []))
)]
#[delete("/{name}")]
async fn delete_activity(
    principal: Principal,
    service: Service,
    name: web::Path<String>,
) -> ApiResult<HttpResponse> {
    service
        .execute(
            &principal,
            Command::DeleteActivity {
                name: name.into_inner(),
            },
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
