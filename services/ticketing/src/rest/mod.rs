//! Ticketing's REST resources: work orders and their steps, notes and
//! history for agents, supervisors and partner shops; the supervisors'
//! escalation stream; types, categories, regions, resolution codes, SLA
//! policies, assignees and dispatch rules for supervisors; partner systems'
//! webhook endpoints and their delivery log.

mod dispatch;
mod escalations;
mod setup;
mod sms;
mod webhooks;
mod work_orders;

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use hotline_kit::rest;
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::service::TicketingService;

type Service = web::Data<Arc<TicketingService>>;

pub use escalations::Streams;

pub fn configure(config: &mut ServiceConfig, service: Arc<TicketingService>, streams: Streams) {
    config
        .app_data(web::Data::new(service))
        .app_data(web::Data::new(streams))
        .configure(work_orders::configure)
        .configure(escalations::configure)
        .configure(setup::configure)
        .configure(dispatch::configure)
        .configure(sms::configure)
        .configure(webhooks::configure);
}

/// 200 with the resource's `ETag`.
fn tagged<T: Serialize>(
    response: actix_web::HttpResponseBuilder,
    id: &Uuid,
    version: i64,
    body: &T,
) -> HttpResponse {
    rest::with_etag(response, &rest::etag(&id.to_string(), version), body)
}
