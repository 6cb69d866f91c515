//! Routing's REST resources: configuration for supervisors, agents' desktops,
//! tasks and reservations, the CTI adapter's call events, live statistics and
//! Server-Sent Events streams.

mod agents;
mod cti;
mod queues;
mod streams;
mod tasks;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use hotline_kit::{ApiError, ApiResult, rest};
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

/// The version an `If-Match` names (`"<id>.<version>"`), or none for `*`/absent.
fn if_match_version(request: &HttpRequest) -> ApiResult<Option<i64>> {
    let Some(value) = request.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid_if_match", "If-Match is not valid text"))?
        .trim();
    if value == "*" {
        return Ok(None);
    }
    value
        .trim_matches('"')
        .rsplit('.')
        .next()
        .and_then(|version| version.parse().ok())
        .map(Some)
        .ok_or_else(rest::stale_version)
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
