//! `GET /api/v1/escalations/stream`: supervisors' live feed of deadlines
//! nearing and passed, as Server-Sent Events.

use std::time::Duration;

use actix_web::{Responder, get, web};
use futures::StreamExt;
use hotline_kit::{ApiResult, auth::Principal, sse};
use tokio_stream::wrappers::BroadcastStream;
use tokio_util::sync::CancellationToken;
use utoipa_actix_web::service_config::ServiceConfig;

use super::Service;

/// How the streams end and keep alive.
#[derive(Clone)]
pub struct Streams {
    pub keep_alive: Duration,
    /// Cancelled when the process begins shutting down: clients reconnect elsewhere.
    pub end: CancellationToken,
}

pub fn configure(config: &mut ServiceConfig) {
    config.service(utoipa_actix_web::scope("/api/v1/escalations").service(stream));
}

/// Every escalation from now on, on any replica: `escalated` at 80 % of a
/// deadline, `sla_breached` at the deadline, each with the order's number,
/// type, priority, status, region, assignee, `clock` (response or resolution)
/// and `escalation_level`; the event id is `<order id>.<version>`.
/// Supervisors and admins.
#[utoipa::path(
    tag = "work-orders",
    responses(
        (status = 200, content_type = "text/event-stream", description = "escalated and sla_breached events"),
        (status = 403, description = "not a supervisor or admin"),
    ),
    security(("oauth2" = []))
)]
#[get("/stream")]
async fn stream(
    principal: Principal,
    service: Service,
    streams: web::Data<Streams>,
) -> ApiResult<impl Responder> {
    let receiver = service.watch_escalations(&principal)?;
    // A stream that lagged skips what it missed rather than ending.
    let events = BroadcastStream::new(receiver).filter_map(|event| async move { event.ok() });
    Ok(sse::stream(events, streams.keep_alive, streams.end.clone()))
}
