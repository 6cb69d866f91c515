//! `/api/v1/customers`: create, read, change, search, screen pop, merge, timeline,
//! audit, export and erasure.

use std::sync::Arc;

use actix_web::{
    HttpRequest, HttpResponse, delete, get,
    http::header::{self, HeaderMap},
    patch, post, web,
};
use hotline_kit::{
    ApiResult,
    auth::Principal,
    error::ApiError,
    idempotency::IdempotencyKey,
    rest::{self, Page},
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::PageParams;
use crate::{
    domain::customer::{CustomerPatch, NewCustomer},
    service::{IdentityService, SearchQuery, view_etag},
    views::{AuditEntryView, CustomerExport, CustomerView, LookupResult, TimelineEntryView},
};

type Service = web::Data<Arc<IdentityService>>;

pub fn configure(config: &mut ServiceConfig) {
    config.service(
        utoipa_actix_web::scope("/api/v1/customers")
            .service(lookup)
            .service(search)
            .service(create)
            .service(get_one)
            .service(update)
            .service(erase)
            .service(merge)
            .service(timeline)
            .service(audit)
            .service(export),
    );
}

fn if_match(headers: &HeaderMap) -> ApiResult<Option<String>> {
    headers
        .get(header::IF_MATCH)
        .map(|value| {
            value.to_str().map(str::to_owned).map_err(|_| {
                ApiError::bad_request("invalid_if_match", "If-Match is not valid text")
            })
        })
        .transpose()
}

fn with_etag(mut response: actix_web::HttpResponseBuilder, view: &CustomerView) -> HttpResponse {
    response
        .insert_header((header::ETAG, view_etag(view)))
        .json(view)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct LookupParams {
    /// The calling number in any notation.
    phone: String,
}

/// Screen pop: who is calling from this number.
///
/// Ranked candidates with their recent history and billing status; empty when the
/// number is unknown, several when it is shared. Served from the cache.
#[utoipa::path(
    tag = "customers",
    params(LookupParams),
    responses(
        (status = 200, body = LookupResult),
        (status = 400, description = "missing phone"),
        (status = 422, description = "not a phone number"),
    ),
    security(("oauth2" = []))
)]
#[get("/lookup")]
async fn lookup(
    principal: Principal,
    service: Service,
    params: web::Query<LookupParams>,
) -> ApiResult<HttpResponse> {
    let answer = service.lookup_json(&principal, &params.phone).await?;
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(answer))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    /// Part of the name (case-insensitive).
    name: Option<String>,
    /// A phone number in any notation (exact match).
    phone: Option<String>,
    /// Part of any address.
    address: Option<String>,
    /// A full resident ID number (exact match).
    id_number: Option<String>,
    /// Page size, 1 to 100 (20 by default).
    #[param(inline)]
    limit: Option<hotline_kit::rest::Limit>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Searches customers by name, phone, address fragment or ID number.
#[utoipa::path(
    tag = "customers",
    params(SearchParams),
    responses((status = 200, body = inline(Page<CustomerView>)), (status = 400), (status = 422)),
    security(("oauth2" = []))
)]
#[get("")]
async fn search(
    principal: Principal,
    service: Service,
    params: web::Query<SearchParams>,
) -> ApiResult<HttpResponse> {
    let params = params.into_inner();
    let page = service
        .search(
            &principal,
            SearchQuery {
                name: params.name,
                phone: params.phone,
                address: params.address,
                id_number: params.id_number,
                limit: params.limit.map(u64::from),
                cursor: params.cursor,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Creates a customer.
///
/// Send an `Idempotency-Key` header to make retries safe: the same key and body
/// return the first response instead of creating a second customer.
#[utoipa::path(
    tag = "customers",
    request_body = NewCustomer,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", description = "Makes retries create one customer: 1 to 255 visible ASCII characters")),
    responses(
        (status = 201, body = CustomerView, headers(("ETag" = String), ("Location" = String))),
        (status = 400, description = "malformed JSON"),
        (status = 413, description = "body too large"),
        (status = 422, description = "invalid fields, listed in `errors`"),
    ),
    security(("oauth2" = []))
)]
#[post("")]
async fn create(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let key = IdempotencyKey::from_request(
        &request,
        &principal.subject,
        "POST /api/v1/customers",
        &body,
    )?;
    let input: NewCustomer = rest::from_json_value(body)?;
    let view = service.create_customer(&principal, input, key).await?;
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/api/v1/customers/{}", view.id)));
    Ok(with_etag(response, &view))
}

/// Reads a customer. A merged customer's id answers with the survivor.
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CustomerView, headers(("ETag" = String))), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}")]
async fn get_one(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let view = service.get_customer(&principal, id.into_inner()).await?;
    Ok(with_etag(HttpResponse::Ok(), &view))
}

/// Changes a customer (JSON merge patch: absent fields stay, `null` clears).
///
/// Send the `ETag` you read as `If-Match`; if someone changed the customer since,
/// the answer is 412 and nothing changes.
#[utoipa::path(
    tag = "customers",
    request_body = CustomerPatch,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, body = CustomerView, headers(("ETag" = String))),
        (status = 404), (status = 409, description = "erased"), (status = 412, description = "stale If-Match"), (status = 422),
    ),
    security(("oauth2" = []))
)]
#[patch("/{id}")]
async fn update(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<Uuid>,
    patch: web::Json<CustomerPatch>,
) -> ApiResult<HttpResponse> {
    let precondition = if_match(request.headers())?;
    let view = service
        .update_customer(
            &principal,
            id.into_inner(),
            patch.into_inner(),
            precondition.as_deref(),
        )
        .await?;
    Ok(with_etag(HttpResponse::Ok(), &view))
}

/// Erases a customer's personal data (PIPL/GDPR): tombstones replace it, the id
/// and statistics stay. Admins only.
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = CustomerView), (status = 403), (status = 404), (status = 412)),
    security(("oauth2" = []))
)]
#[delete("/{id}")]
async fn erase(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let precondition = if_match(request.headers())?;
    let view = service
        .erase_customer(&principal, id.into_inner(), precondition.as_deref())
        .await?;
    Ok(with_etag(HttpResponse::Ok(), &view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    /// The customer folded into this one; its id keeps resolving here.
    merged_id: Uuid,
}

/// Merges another customer into this one: phones and history move here.
#[utoipa::path(
    tag = "customers",
    request_body = MergeRequest,
    params(("id" = Uuid, Path, description = "The surviving customer")),
    responses((status = 200, body = CustomerView), (status = 403), (status = 404), (status = 409)),
    security(("oauth2" = []))
)]
#[post("/{id}/merge")]
async fn merge(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    body: web::Json<MergeRequest>,
) -> ApiResult<HttpResponse> {
    let view = service
        .merge_customers(&principal, id.into_inner(), body.merged_id)
        .await?;
    Ok(with_etag(HttpResponse::Ok(), &view))
}

/// The customer's history of calls, orders and surveys, newest first.
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = inline(Page<TimelineEntryView>)), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}/timeline")]
async fn timeline(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    params: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let page = service
        .timeline(
            &principal,
            id.into_inner(),
            params.limit.map(u64::from),
            params.cursor.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Who changed the customer, when and what (personal data masked). Supervisors and admins.
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = inline(Page<AuditEntryView>)), (status = 400), (status = 403), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}/audit")]
async fn audit(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
    params: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let page = service
        .audit_trail(
            &principal,
            id.into_inner(),
            params.limit.map(u64::from),
            params.cursor.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Everything held about the customer, as JSON (PIPL/GDPR access request). Admins only.
#[utoipa::path(
    tag = "customers",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CustomerExport), (status = 403), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}/export")]
async fn export(
    principal: Principal,
    service: Service,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let export = service.export(&principal, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"customer-{}.json\"",
                export.customer.id
            ),
        ))
        .json(export))
}
