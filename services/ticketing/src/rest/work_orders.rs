//! `/api/v1/work-orders`: opening, reading and correcting orders, each step of
//! their status machine, notes and history. Partner shops reach their own
//! orders here with their own tokens; every other order is a 404 to them.

use actix_web::{HttpRequest, HttpResponse, get, http::header, patch, post, web};
use chrono::{DateTime, Utc};
use hotline_kit::{
    ApiResult,
    auth::Principal,
    idempotency::IdempotencyKey,
    rest::{self, OptionalJson, if_match_version},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Service, tagged};
use crate::{
    domain::order::{Action, HoldReason, Status},
    input::{NewNote, NewWorkOrder, Step, WorkOrderPatch},
    store::OrderFilter,
    views::{AttemptView, HistoryView, NoteView, WorkOrderView},
};

pub fn configure(config: &mut ServiceConfig) {
    config.service(
        utoipa_actix_web::scope("/api/v1/work-orders")
            .service(create)
            .service(list)
            .service(get_one)
            .service(update)
            .service(dispatch)
            .service(accept)
            .service(decline)
            .service(start)
            .service(hold)
            .service(resume)
            .service(resolve)
            .service(close)
            .service(reopen)
            .service(cancel)
            .service(add_note)
            .service(notes)
            .service(history)
            .service(attempts),
    );
}

fn answer(order: WorkOrderView) -> HttpResponse {
    tagged(HttpResponse::Ok(), &order.id, order.version, &order)
}

/// Opens a work order. With a `customer_id`, the customer's name, phone and
/// address are copied from identity (an unknown one is 422). Send an
/// `Idempotency-Key` to make retries safe: the same key and body answer with
/// the order the first request made.
#[utoipa::path(
    tag = "work-orders",
    request_body = NewWorkOrder,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", description = "Makes retries open one order: 1 to 255 visible ASCII characters")),
    responses(
        (status = 201, body = WorkOrderView, headers(("ETag" = String), ("Location" = String))),
        (status = 200, body = WorkOrderView, description = "the Idempotency-Key's order"),
        (status = 400, description = "malformed JSON"),
        (status = 403, description = "not staff"),
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
        "POST /api/v1/work-orders",
        &body,
    )?;
    let input: NewWorkOrder = rest::from_json_value(body)?;
    let (order, created) = service.create_order(&principal, input, key).await?;
    if !created {
        return Ok(answer(order));
    }
    let mut response = HttpResponse::Created();
    response.insert_header((
        header::LOCATION,
        format!("/api/v1/work-orders/{}", order.id),
    ));
    Ok(tagged(response, &order.id, order.version, &order))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<Status>,
    /// A work-order type's key.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    type_key: Option<String>,
    /// The category and everything under it.
    category_id: Option<Uuid>,
    /// The region and everything under it.
    region_id: Option<Uuid>,
    assignee_id: Option<Uuid>,
    /// Identity's customer id (staff only).
    customer_id: Option<String>,
    /// Created at or after (RFC 3339).
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    /// Page size, 1 to 100 (20 by default).
    #[param(inline)]
    limit: Option<hotline_kit::rest::Limit>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists work orders, newest first. A partner sees only its own.
#[utoipa::path(
    tag = "work-orders",
    params(ListParams),
    responses((status = 200, body = inline(hotline_kit::rest::Page<WorkOrderView>)), (status = 400)),
    security(("oauth2" = []))
)]
#[get("")]
async fn list(
    principal: Principal,
    service: Service,
    params: web::Query<ListParams>,
) -> ApiResult<HttpResponse> {
    let params = params.into_inner();
    let filter = OrderFilter {
        status: params.status.map(|s| s.as_str().to_owned()),
        type_key: params.type_key,
        category_path: None,
        region_path: None,
        assignee_id: params.assignee_id,
        customer_id: params.customer_id,
        created_after: params.created_after,
        created_before: params.created_before,
    };
    let page = service
        .list_orders(
            &principal,
            filter,
            params.category_id,
            params.region_id,
            params.cursor.as_deref(),
            params.limit.map(u64::from),
        )
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A work order, by id or by number (`WO-20261123-000123`; `WO-` and the
/// hyphens may be left out).
#[utoipa::path(
    tag = "work-orders",
    params(("id" = String, Path, description = "id or number")),
    responses((status = 200, body = WorkOrderView, headers(("ETag" = String))), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}")]
async fn get_one(
    principal: Principal,
    service: Service,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(answer(service.order(&principal, &id).await?))
}

/// Corrects an open order: priority, category, region, service address,
/// description. Staff only; send `If-Match` to refuse a stale edit.
#[utoipa::path(
    tag = "work-orders",
    request_body = WorkOrderPatch,
    params(("id" = String, Path, description = "id or number"), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, body = WorkOrderView, headers(("ETag" = String))),
        (status = 404), (status = 409, description = "resolved, closed or cancelled"),
        (status = 412, description = "stale If-Match"), (status = 422),
    ),
    security(("oauth2" = []))
)]
#[patch("/{id}")]
async fn update(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<String>,
    patch: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let patch: WorkOrderPatch = rest::from_json_value(patch.into_inner())?;
    let order = service
        .update_order(&principal, &id, patch, if_match_version(&request)?)
        .await?;
    Ok(answer(order))
}

async fn step(
    service: &Service,
    principal: &Principal,
    request: &HttpRequest,
    id: &str,
    step: Step,
) -> ApiResult<HttpResponse> {
    let order = service
        .act(principal, id, step, if_match_version(request)?)
        .await?;
    Ok(answer(order))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NoBody {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Dispatch {
    /// The technician or shop; absent: the one the dispatch rules choose
    /// (409 `no_dispatch_rule`, `no_candidate` or `no_candidate_open` when they can't).
    assignee_id: Option<Uuid>,
    /// Past the assignee's capacity (supervisors).
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Reason {
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Hold {
    /// What the order waits for; the resolution clock pauses on waiting_customer.
    reason: HoldReason,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Resolve {
    /// A code valid for the order's type (`GET /api/v1/resolution-codes`).
    resolution_code: String,
    /// May span lines.
    #[schema(
        max_length = 4000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    note: Option<String>,
}

/// Dispatches (or re-dispatches) the order to a technician or shop, named
/// or chosen by the dispatch rules; a shop owns it from then on. The
/// assignee has until `offer_expires_at` to accept. Staff only.
#[utoipa::path(
    tag = "work-orders",
    request_body = Dispatch,
    params(("id" = String, Path, description = "id or number"), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, body = WorkOrderView), (status = 403), (status = 404),
        (status = 409, description = "illegal transition, same assignee, at capacity, or no candidate of the rules"),
        (status = 412), (status = 422),
    ),
    security(("oauth2" = []))
)]
#[post("/{id}/dispatch")]
async fn dispatch(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let body: Dispatch = rest::from_json_value(body.into_inner())?;
    let mut action = Step::new(Action::Dispatch);
    action.assignee_id = body.assignee_id;
    action.force = body.force;
    step(&service, &principal, &request, &id, action).await
}

/// The body-less steps: accept, start, resume and close.
macro_rules! simple_step {
    ($name:ident, $path:literal, $action:expr, $doc:literal, $who:literal) => {
        #[doc = $doc]
        #[doc = ""]
        #[doc = $who]
        #[utoipa::path(
            tag = "work-orders",
            request_body = inline(Option<NoBody>),
            params(("id" = String, Path, description = "id or number"), ("If-Match" = Option<String>, Header)),
            responses(
                (status = 200, body = WorkOrderView), (status = 403), (status = 404),
                (status = 409, description = "illegal transition: `allowed_actions` lists the legal ones"),
                (status = 412),
            ),
            security(("oauth2" = []))
        )]
        #[post($path)]
        async fn $name(
            principal: Principal,
            service: Service,
            request: HttpRequest,
            id: web::Path<String>,
            _body: OptionalJson<NoBody>,
        ) -> ApiResult<HttpResponse> {
            step(&service, &principal, &request, &id, Step::new($action)).await
        }
    };
}

simple_step!(
    accept,
    "/{id}/accept",
    Action::Accept,
    "The assignee takes the dispatched order on.",
    "Its shop, or staff on the assignee's behalf."
);
simple_step!(
    start,
    "/{id}/start",
    Action::Start,
    "Work on an accepted order begins.",
    "Its shop, or staff."
);
simple_step!(
    resume,
    "/{id}/resume",
    Action::Resume,
    "Work on an order on hold goes on.",
    "Its shop, or staff."
);
simple_step!(
    close,
    "/{id}/close",
    Action::Close,
    "Closes a resolved order.",
    "Staff only."
);

/// The reasoned steps: decline, reopen and cancel.
macro_rules! reasoned_step {
    ($name:ident, $path:literal, $action:expr, $doc:literal, $who:literal) => {
        #[doc = $doc]
        #[doc = ""]
        #[doc = $who]
        #[utoipa::path(
            tag = "work-orders",
            request_body = Reason,
            params(("id" = String, Path, description = "id or number"), ("If-Match" = Option<String>, Header)),
            responses(
                (status = 200, body = WorkOrderView), (status = 403), (status = 404),
                (status = 409, description = "illegal transition: `allowed_actions` lists the legal ones"),
                (status = 412), (status = 422),
            ),
            security(("oauth2" = []))
        )]
        #[post($path)]
        async fn $name(
            principal: Principal,
            service: Service,
            request: HttpRequest,
            id: web::Path<String>,
            body: web::Json<serde_json::Value>,
        ) -> ApiResult<HttpResponse> {
            let body: Reason = rest::from_json_value(body.into_inner())?;
            let mut action = Step::new($action);
            action.reason = Some(body.reason);
            step(&service, &principal, &request, &id, action).await
        }
    };
}

reasoned_step!(
    decline,
    "/{id}/decline",
    Action::Decline,
    "The assignee declines a dispatched order; it returns to new and to no one.",
    "Its shop, or staff on the assignee's behalf."
);
reasoned_step!(
    reopen,
    "/{id}/reopen",
    Action::Reopen,
    "Reopens a resolved order, or a closed one within `ticketing.reopen_window`; it returns to new.",
    "Staff only."
);
reasoned_step!(
    cancel,
    "/{id}/cancel",
    Action::Cancel,
    "Cancels an open order for good.",
    "Staff only."
);

/// Puts an accepted or started order on hold, waiting for the customer or for parts.
#[utoipa::path(
    tag = "work-orders",
    request_body = Hold,
    params(("id" = String, Path, description = "id or number"), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = WorkOrderView), (status = 404), (status = 409), (status = 412), (status = 422)),
    security(("oauth2" = []))
)]
#[post("/{id}/hold")]
async fn hold(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let body: Hold = rest::from_json_value(body.into_inner())?;
    let mut action = Step::new(Action::Hold);
    action.hold = Some(body.reason);
    step(&service, &principal, &request, &id, action).await
}

/// Resolves the order with a resolution code valid for its type.
#[utoipa::path(
    tag = "work-orders",
    request_body = Resolve,
    params(("id" = String, Path, description = "id or number"), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = WorkOrderView), (status = 404), (status = 409), (status = 412), (status = 422)),
    security(("oauth2" = []))
)]
#[post("/{id}/resolve")]
async fn resolve(
    principal: Principal,
    service: Service,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let body: Resolve = rest::from_json_value(body.into_inner())?;
    let mut action = Step::new(Action::Resolve);
    action.resolution_code = Some(body.resolution_code);
    action.note = body.note;
    step(&service, &principal, &request, &id, action).await
}

/// Adds a note shared with the assignee, or (staff only) an internal comment.
#[utoipa::path(
    tag = "work-orders",
    request_body = NewNote,
    params(("id" = String, Path, description = "id or number")),
    responses((status = 201, body = NoteView), (status = 403), (status = 404), (status = 422)),
    security(("oauth2" = []))
)]
#[post("/{id}/notes")]
async fn add_note(
    principal: Principal,
    service: Service,
    id: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let body: NewNote = rest::from_json_value(body.into_inner())?;
    let note = service.add_note(&principal, &id, body).await?;
    Ok(HttpResponse::Created().json(note))
}

/// The order's notes, oldest first (a partner sees the shared ones).
#[utoipa::path(
    tag = "work-orders",
    params(("id" = String, Path, description = "id or number")),
    responses((status = 200, body = Vec<NoteView>), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}/notes")]
async fn notes(
    principal: Principal,
    service: Service,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.notes(&principal, &id).await?))
}

/// Every change of the order, oldest first: who, when, what (a partner sees
/// the shared entries without who and what exactly).
#[utoipa::path(
    tag = "work-orders",
    params(("id" = String, Path, description = "id or number")),
    responses((status = 200, body = Vec<HistoryView>), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}/history")]
async fn history(
    principal: Principal,
    service: Service,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.history(&principal, &id).await?))
}

/// The order's offers, oldest first: to whom, by which rule or person, and
/// how each ended (staff only).
#[utoipa::path(
    tag = "dispatch",
    params(("id" = String, Path, description = "id or number")),
    responses((status = 200, body = Vec<AttemptView>), (status = 403), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/{id}/dispatch-attempts")]
async fn attempts(
    principal: Principal,
    service: Service,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(service.attempts(&principal, &id).await?))
}
