//! Webhook endpoints of partner systems, their secrets, and the delivery log
//! with replay: a partner manages its own, supervisors and admins any.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use hotline_kit::{ApiResult, auth::Principal, rest::if_match_version};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Service, tagged};
use crate::{
    input::{NewWebhookEndpoint, WebhookEndpointPatch},
    views::{WebhookDeliveryView, WebhookEndpointView, WebhookSecretView},
};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(
            utoipa_actix_web::scope("/api/v1/webhook-endpoints")
                .service(list_endpoints)
                .service(create_endpoint)
                .service(get_endpoint)
                .service(update_endpoint)
                .service(delete_endpoint)
                .service(rotate_secret)
                .service(list_deliveries),
        )
        .service(
            utoipa_actix_web::scope("/api/v1/webhook-deliveries")
                .service(get_delivery)
                .service(replay_delivery),
        );
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct EndpointQuery {
    /// Only this partner's endpoints (staff; a partner sees its own only).
    partner_id: Option<String>,
    cursor: Option<String>,
    /// Page size, 1 to 100 (20 by default).
    #[param(inline)]
    limit: Option<hotline_kit::rest::Limit>,
}

/// Webhook endpoints, oldest first.
#[utoipa::path(
    tag = "webhooks",
    params(EndpointQuery),
    responses((status = 200, body = hotline_kit::rest::Page<WebhookEndpointView>), (status = 403)),
    security(("oauth2" = []))
)]
#[get("")]
async fn list_endpoints(
    principal: Principal,
    service: Service,
    query: web::Query<EndpointQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    Ok(HttpResponse::Ok().json(
        service
            .list_endpoints(
                &principal,
                query.partner_id.as_deref(),
                query.cursor.as_deref(),
                query.limit.map(u64::from),
            )
            .await?,
    ))
}

/// Registers an endpoint: the answer carries its signing secret, shown this
/// once. Refused (422) when the URL isn't https or resolves to an address
/// that isn't public.
#[utoipa::path(
    tag = "webhooks",
    request_body = NewWebhookEndpoint,
    responses((status = 201, body = WebhookSecretView, headers(("ETag" = String))), (status = 403), (status = 422)),
    security(("oauth2" = []))
)]
#[post("")]
async fn create_endpoint(
    principal: Principal,
    service: Service,
    body: web::Json<NewWebhookEndpoint>,
) -> ApiResult<HttpResponse> {
    let created = service
        .create_endpoint(&principal, body.into_inner())
        .await?;
    let (id, version) = (created.endpoint.id, created.endpoint.version);
    Ok(tagged(HttpResponse::Created(), &id, version, &created))
}

#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookEndpointView, headers(("ETag" = String))), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}")]
async fn get_endpoint(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let endpoint = service.endpoint(&principal, id.into_inner()).await?;
    Ok(tagged(
        HttpResponse::Ok(),
        &endpoint.id,
        endpoint.version,
        &endpoint,
    ))
}

/// Changes the URL, the event types or the description; disables or
/// enables the endpoint (enabling resumes deliveries, also after a 410).
#[utoipa::path(
    tag = "webhooks",
    request_body = WebhookEndpointPatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = WebhookEndpointView, headers(("ETag" = String))), (status = 403), (status = 404), (status = 412), (status = 422)),
    security(("oauth2" = []))
)]
#[patch("/{id}")]
async fn update_endpoint(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<WebhookEndpointPatch>,
) -> ApiResult<HttpResponse> {
    let endpoint = service
        .update_endpoint(
            &principal,
            id.into_inner(),
            body.into_inner(),
            if_match_version(&request)?,
        )
        .await?;
    Ok(tagged(
        HttpResponse::Ok(),
        &endpoint.id,
        endpoint.version,
        &endpoint,
    ))
}

/// Removes the endpoint with its delivery log.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403), (status = 404)),
    security(("oauth2" = []))
)]
#[delete("/{id}")]
async fn delete_endpoint(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    service.delete_endpoint(&principal, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret. Deliveries carry signatures with both the new and
/// the old secret for `ticketing.webhooks.secret_overlap` (24 h by default).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookSecretView, headers(("ETag" = String))), (status = 403), (status = 404), (status = 412)),
    security(("oauth2" = []))
)]
#[post("/{id}/rotate-secret")]
async fn rotate_secret(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let rotated = service.rotate_secret(&principal, id.into_inner()).await?;
    let (id, version) = (rotated.endpoint.id, rotated.endpoint.version);
    Ok(tagged(HttpResponse::Ok(), &id, version, &rotated))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    /// pending, delivered or failed.
    status: Option<String>,
    cursor: Option<String>,
    /// Page size, 1 to 100 (20 by default).
    #[param(inline)]
    limit: Option<hotline_kit::rest::Limit>,
}

/// The endpoint's deliveries, newest first.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path), DeliveryQuery),
    responses((status = 200, body = hotline_kit::rest::Page<WebhookDeliveryView>), (status = 404), (status = 422)),
    security(("oauth2" = []))
)]
#[get("/{id}/deliveries")]
async fn list_deliveries(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    query: web::Query<DeliveryQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    Ok(HttpResponse::Ok().json(
        service
            .list_deliveries(
                &principal,
                id.into_inner(),
                query.status.as_deref(),
                query.cursor.as_deref(),
                query.limit.map(u64::from),
            )
            .await?,
    ))
}

/// A delivery with every attempt: when, the answer's status and start, or
/// why there was none.
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookDeliveryView), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}")]
async fn get_delivery(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.delivery(&principal, id.into_inner()).await?))
}

/// Sends a delivery again with the same `webhook-id` and body, on a fresh
/// retry schedule (409 while its endpoint is disabled).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path)),
    responses((status = 202, body = WebhookDeliveryView), (status = 403), (status = 404), (status = 409)),
    security(("oauth2" = []))
)]
#[post("/{id}/replay")]
async fn replay_delivery(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Accepted().json(service.replay_delivery(&principal, id.into_inner()).await?))
}
