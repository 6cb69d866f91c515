//! Text messages: every provider's log of what technicians were sent, and
//! the sink's stand-in for a technician's phone.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use hotline_kit::{ApiResult, auth::Principal};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::Service;
use crate::views::{InboundView, NoticeView, SmsMessageView};

pub fn configure(config: &mut ServiceConfig) {
    config.service(
        utoipa_actix_web::scope("/api/v1/sms")
            .service(list_messages)
            .service(send_notice)
            .service(sink_inbound)
            .service(gateway_report),
    );
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct MessageQuery {
    /// Only the messages about this order (id or number).
    work_order_id: Option<String>,
    cursor: Option<String>,
    /// Page size, 1 to 100 (20 by default).
    #[param(inline)]
    limit: Option<hotline_kit::rest::Limit>,
}

/// Text messages, newest first: to whom, what, in how many parts, and
/// whether they were sent and delivered (staff).
#[utoipa::path(
    tag = "sms",
    params(MessageQuery),
    responses((status = 200, body = hotline_kit::rest::Page<SmsMessageView>), (status = 403), (status = 404)),
    security(("oauth2" = []))
)]
#[get("/messages")]
async fn list_messages(
    principal: Principal,
    service: Service,
    query: web::Query<MessageQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    Ok(HttpResponse::Ok().json(
        service
            .list_sms(
                &principal,
                query.work_order_id.as_deref(),
                query.cursor.as_deref(),
                query.limit.map(u64::from),
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Notice {
    /// Active technicians with a phone, 1 to 1,000, each once.
    #[schema(min_items = 1, max_items = 1000)]
    assignee_ids: Vec<uuid::Uuid>,
    /// Sent as written; it must fit `ticketing.sms.max_parts` parts.
    #[schema(
        max_length = 1600,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    text: String,
}

/// Texts a notice to technicians (an outage in their area, a typhoon
/// warning): queued at once, one text each, sent like every other text
/// (supervisors, admins).
#[utoipa::path(
    tag = "sms",
    request_body = Notice,
    responses((status = 202, body = NoticeView), (status = 403), (status = 422)),
    security(("oauth2" = []))
)]
#[post("/notices")]
async fn send_notice(
    principal: Principal,
    service: Service,
    body: web::Json<Notice>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    Ok(HttpResponse::Accepted().json(
        service
            .send_notice(&principal, &body.assignee_ids, &body.text)
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Incoming {
    /// The sender's phone, in any format people type.
    #[schema(
        max_length = 32,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    from: String,
    /// e.g. `接单 WO-20261201-000001`, `DONE WO-20261201-000001 fixed`.
    /// May span lines.
    #[schema(
        max_length = 1600,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    text: String,
}

/// Plays a text from a phone into the sink provider, as an SMSC would
/// deliver it: a registered technician's `ACCEPT`/`DONE`/`DECLINE` takes
/// effect and is answered (supervisors, admins, services).
#[utoipa::path(
    tag = "sms",
    request_body = Incoming,
    responses((status = 200, body = InboundView), (status = 403), (status = 422)),
    security(("oauth2" = []))
)]
#[post("/sink/inbound")]
async fn sink_inbound(
    principal: Principal,
    service: Service,
    body: web::Json<Incoming>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    Ok(HttpResponse::Ok().json(
        service
            .inbound_sms(&principal, "sink", &body.from, &body.text)
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
struct ReportQuery {
    /// `ticketing.sms.http.callback_token`.
    token: String,
}

/// An HTTP gateway's delivery report: JSON or a form, its fields named by
/// `ticketing.sms.http.callback_id_field` and `callback_status_field`.
/// Answers `delivered`, `failed`, `pending` (a status on the way) or
/// `unchanged` (the text had ended already).
#[utoipa::path(
    tag = "sms",
    params(ReportQuery),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, body = Object), (status = 401), (status = 404), (status = 422)),
)]
#[post("/http/status")]
async fn gateway_report(
    service: Service,
    request: HttpRequest,
    query: web::Query<ReportQuery>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let form = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let fields: std::collections::BTreeMap<String, String> = if form {
        url::form_urlencoded::parse(&body).into_owned().collect()
    } else {
        let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|_| {
                hotline_kit::ApiError::bad_request("malformed_body", "a JSON object or a form")
            })?;
        json.into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect()
    };
    let outcome = service.sms_report(&query.token, &fields).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"outcome": outcome})))
}
