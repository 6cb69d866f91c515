//! Routing's REST resources: configuration for supervisors, agents' desktops,
//! tasks and reservations, the CTI adapter's call events, live statistics and
//! Server-Sent Events streams.

mod agents;
mod cti;
mod queues;
mod streams;
mod tasks;

use std::sync::Arc;

use actix_web::{HttpResponse, http::header, web};
use hotline_kit::rest;
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::service::{Created, RoutingService};

type Service = web::Data<Arc<RoutingService>>;

pub fn configure(config: &mut ServiceConfig, service: Arc<RoutingService>) {
    config
        .app_data(web::Data::new(service))
        .configure(agents::configure)
        .configure(queues::configure)
        .configure(tasks::configure)
        .configure(cti::configure);
}

fn tagged<T: Serialize>(
    response: actix_web::HttpResponseBuilder,
    id: &uuid::Uuid,
    version: i64,
    body: &T,
) -> HttpResponse {
    rest::with_etag(response, &rest::etag(&id.to_string(), version), body)
}

/// 201 with `Location` for a task this request made, 200 for one that existed.
fn task_answer(created: Created) -> HttpResponse {
    if created.created {
        let mut response = HttpResponse::Created();
        response.insert_header((
            header::LOCATION,
            format!("/api/v1/tasks/{}", created.task.id),
        ));
        response.json(created.task)
    } else {
        HttpResponse::Ok().json(created.task)
    }
}
