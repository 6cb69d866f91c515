//! Dispatch rules: supervisors set them, staff read them.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use hotline_kit::{ApiResult, auth::Principal, rest::if_match_version};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Service, tagged};
use crate::{
    input::{DispatchRulePatch, NewDispatchRule},
    views::DispatchRuleView,
};

pub fn configure(config: &mut ServiceConfig) {
    config.service(
        utoipa_actix_web::scope("/api/v1/dispatch-rules")
            .service(list_rules)
            .service(create_rule)
            .service(get_rule)
            .service(update_rule)
            .service(delete_rule),
    );
}

/// The dispatch rules. For an order, the most specific matching rule with a
/// candidate open and with room decides: deepest region, then deepest
/// category, then type, then skill, then the lowest precedence.
#[utoipa::path(tag = "dispatch", responses((status = 200, body = Vec<DispatchRuleView>)), security(("oauth2" = [])))]
#[get("")]
async fn list_rules(principal: Principal, service: Service) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.list_rules(&principal).await?))
}

/// Adds a dispatch rule.
#[utoipa::path(
    tag = "dispatch",
    request_body = NewDispatchRule,
    responses((status = 201, body = DispatchRuleView, headers(("ETag" = String))), (status = 403), (status = 422)),
    security(("oauth2" = []))
)]
#[post("")]
async fn create_rule(
    principal: Principal,
    service: Service,
    body: web::Json<NewDispatchRule>,
) -> ApiResult<HttpResponse> {
    let rule = service.create_rule(&principal, body.into_inner()).await?;
    Ok(tagged(
        HttpResponse::Created(),
        &rule.id,
        rule.version,
        &rule,
    ))
}

#[utoipa::path(
    tag = "dispatch",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DispatchRuleView, headers(("ETag" = String))), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}")]
async fn get_rule(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let rule = service.rule(&principal, id.into_inner()).await?;
    Ok(tagged(HttpResponse::Ok(), &rule.id, rule.version, &rule))
}

/// Changes a rule's name, strategy, candidates, timing, precedence or whether it is in force.
#[utoipa::path(
    tag = "dispatch",
    request_body = DispatchRulePatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = DispatchRuleView, headers(("ETag" = String))), (status = 403), (status = 404), (status = 412), (status = 422)),
    security(("oauth2" = []))
)]
#[patch("/{id}")]
async fn update_rule(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<DispatchRulePatch>,
) -> ApiResult<HttpResponse> {
    let rule = service
        .update_rule(
            &principal,
            id.into_inner(),
            body.into_inner(),
            if_match_version(&request)?,
        )
        .await?;
    Ok(tagged(HttpResponse::Ok(), &rule.id, rule.version, &rule))
}

/// Removes a rule; orders it dispatched keep their assignee and attempts.
#[utoipa::path(
    tag = "dispatch",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403), (status = 404)),
    security(("oauth2" = []))
)]
#[delete("/{id}")]
async fn delete_rule(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    service.delete_rule(&principal, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
