//! Ticketing's configuration: work-order types, the category tree, regions,
//! resolution codes, and the technicians and shops orders go to.
//! Supervisors and admins change it; staff read it.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, put, web};
use hotline_kit::{ApiResult, auth::Principal, rest::if_match_version};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Service, tagged};
use crate::{
    input::{
        AssigneePatch, NewAssignee, NewNode, NewResolutionCode, NewWorkOrderType, SlaPolicyInput,
    },
    views::{AssigneeView, NodeView, ResolutionCodeView, SlaPolicyView, WorkOrderTypeView},
};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(
            utoipa_actix_web::scope("/api/v1/work-order-types")
                .service(list_types)
                .service(create_type),
        )
        .service(
            utoipa_actix_web::scope("/api/v1/categories")
                .service(list_categories)
                .service(create_category),
        )
        .service(
            utoipa_actix_web::scope("/api/v1/regions")
                .service(list_regions)
                .service(create_region),
        )
        .service(
            utoipa_actix_web::scope("/api/v1/resolution-codes")
                .service(list_codes)
                .service(create_code),
        )
        .service(
            utoipa_actix_web::scope("/api/v1/sla-policies")
                .service(list_policies)
                .service(put_policy),
        )
        .service(
            utoipa_actix_web::scope("/api/v1/assignees")
                .service(list_assignees)
                .service(create_assignee)
                .service(get_assignee)
                .service(update_assignee),
        );
}

/// Work-order types (fault_repair, installation, complaint, inquiry are there from the start).
#[utoipa::path(tag = "ticketing-setup", responses((status = 200, body = Vec<WorkOrderTypeView>)), security(("oauth2" = [])))]
#[get("")]
async fn list_types(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.list_types(&principal).await?))
}

/// Adds a work-order type.
#[utoipa::path(
    tag = "ticketing-setup",
    request_body = NewWorkOrderType,
    responses((status = 201, body = WorkOrderTypeView), (status = 403), (status = 409, description = "the key exists"), (status = 422)),
    security(("oauth2" = []))
)]
#[post("")]
async fn create_type(
    principal: Principal,
    service: Service,
    body: web::Json<NewWorkOrderType>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(service.create_type(&principal, body.into_inner()).await?))
}

/// The category tree, in path order (a parent before its children).
#[utoipa::path(tag = "ticketing-setup", responses((status = 200, body = Vec<NodeView>)), security(("oauth2" = [])))]
#[get("")]
async fn list_categories(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.list_categories(&principal).await?))
}

/// Adds a category under `parent_id` (e.g. tv → itv → no_signal), five levels at most.
#[utoipa::path(
    tag = "ticketing-setup",
    request_body = NewNode,
    responses((status = 201, body = NodeView), (status = 403), (status = 409, description = "a sibling has the code"), (status = 422)),
    security(("oauth2" = []))
)]
#[post("")]
async fn create_category(
    principal: Principal,
    service: Service,
    body: web::Json<NewNode>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(
        service
            .create_category(&principal, body.into_inner())
            .await?,
    ))
}

/// The regions, in path order.
#[utoipa::path(tag = "ticketing-setup", responses((status = 200, body = Vec<NodeView>)), security(("oauth2" = [])))]
#[get("")]
async fn list_regions(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.list_regions(&principal).await?))
}

/// Adds a region (city → district → area, a province above where needed) with
/// a code unique among all regions.
#[utoipa::path(
    tag = "ticketing-setup",
    request_body = NewNode,
    responses((status = 201, body = NodeView), (status = 403), (status = 409, description = "the code exists"), (status = 422)),
    security(("oauth2" = []))
)]
#[post("")]
async fn create_region(
    principal: Principal,
    service: Service,
    body: web::Json<NewNode>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(service.create_region(&principal, body.into_inner()).await?))
}

/// Resolution codes (partners read them too).
#[utoipa::path(tag = "ticketing-setup", responses((status = 200, body = Vec<ResolutionCodeView>)), security(("oauth2" = [])))]
#[get("")]
async fn list_codes(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.list_resolution_codes(&principal).await?))
}

/// Adds a resolution code, for some types or all.
#[utoipa::path(
    tag = "ticketing-setup",
    request_body = NewResolutionCode,
    responses((status = 201, body = ResolutionCodeView), (status = 403), (status = 409), (status = 422)),
    security(("oauth2" = []))
)]
#[post("")]
async fn create_code(
    principal: Principal,
    service: Service,
    body: web::Json<NewResolutionCode>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(
        service
            .create_resolution_code(&principal, body.into_inner())
            .await?,
    ))
}

/// Technicians and shops.
#[utoipa::path(tag = "ticketing-setup", responses((status = 200, body = Vec<AssigneeView>)), security(("oauth2" = [])))]
#[get("")]
async fn list_assignees(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.list_assignees(&principal).await?))
}

/// Adds a technician (with a mobile phone) or a shop (with the partner id of its API clients).
#[utoipa::path(
    tag = "ticketing-setup",
    request_body = NewAssignee,
    responses((status = 201, body = AssigneeView, headers(("ETag" = String))), (status = 403), (status = 409, description = "the partner id is taken"), (status = 422)),
    security(("oauth2" = []))
)]
#[post("")]
async fn create_assignee(
    principal: Principal,
    service: Service,
    body: web::Json<NewAssignee>,
) -> ApiResult<HttpResponse> {
    let assignee = service
        .create_assignee(&principal, body.into_inner())
        .await?;
    Ok(tagged(
        HttpResponse::Created(),
        &assignee.id,
        assignee.version,
        &assignee,
    ))
}

#[utoipa::path(
    tag = "ticketing-setup",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AssigneeView, headers(("ETag" = String))), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}")]
async fn get_assignee(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let assignee = service.assignee(&principal, id.into_inner()).await?;
    Ok(tagged(
        HttpResponse::Ok(),
        &assignee.id,
        assignee.version,
        &assignee,
    ))
}

/// Changes a technician or shop: name, phone, skills, capacity, active.
#[utoipa::path(
    tag = "ticketing-setup",
    request_body = AssigneePatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = AssigneeView, headers(("ETag" = String))), (status = 404), (status = 412), (status = 422)),
    security(("oauth2" = []))
)]
#[patch("/{id}")]
async fn update_assignee(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<AssigneePatch>,
) -> ApiResult<HttpResponse> {
    let assignee = service
        .update_assignee(
            &principal,
            id.into_inner(),
            body.into_inner(),
            if_match_version(&request)?,
        )
        .await?;
    Ok(tagged(
        HttpResponse::Ok(),
        &assignee.id,
        assignee.version,
        &assignee,
    ))
}

/// SLA policies per (type, priority). An order follows its own priority's
/// policy, else its type's normal one, else none.
#[utoipa::path(tag = "ticketing-setup", responses((status = 200, body = Vec<SlaPolicyView>)), security(("oauth2" = [])))]
#[get("")]
async fn list_policies(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.list_policies(&principal).await?))
}

/// Sets the deadlines of a type and priority: new orders follow them, and
/// open ones whose priority changes (with the time they already used).
#[utoipa::path(
    tag = "ticketing-setup",
    request_body = SlaPolicyInput,
    params(("type" = String, Path), ("priority" = String, Path, description = "low, normal, major or critical")),
    responses((status = 200, body = SlaPolicyView), (status = 403), (status = 404, description = "no such type or priority"), (status = 422)),
    security(("oauth2" = []))
)]
#[put("/{type}/{priority}")]
async fn put_policy(
    principal: Principal,
    service: Service,
    path: web::Path<(String, String)>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let (type_key, priority) = path.into_inner();
    let input: SlaPolicyInput = hotline_kit::rest::from_json_value(body.into_inner())?;
    Ok(HttpResponse::Ok().json(
        service
            .put_policy(&principal, &type_key, &priority, input)
            .await?,
    ))
}
