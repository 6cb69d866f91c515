//! The smallest service: answers callers with who they are. Tests mount it to
//! check authentication without any real service's rules in the way.

use actix_web::{get, web};
use async_trait::async_trait;
use hotline_kit::{
    auth::Principal,
    component::{Component, Tasks},
};
use tokio_util::sync::CancellationToken;

pub struct WhoAmI;

#[utoipa::path(responses((status = 200, description = "the caller's subject and partner id")))]
#[get("/api/v1/whoami")]
async fn whoami(principal: Principal) -> web::Json<serde_json::Value> {
    web::Json(serde_json::json!({"subject": principal.subject, "partner_id": principal.partner_id}))
}

#[async_trait]
impl Component for WhoAmI {
    fn name(&self) -> &'static str {
        "whoami"
    }

    fn configure_rest(&self, config: &mut utoipa_actix_web::service_config::ServiceConfig) {
        config.service(whoami);
    }

    fn add_grpc(&self, _routes: &mut tonic::service::RoutesBuilder) -> Vec<&'static str> {
        Vec::new()
    }

    fn spawn_background(&self, _tasks: &mut Tasks, _shutdown: CancellationToken) {}

    async fn check_ready(&self) -> Result<(), String> {
        Ok(())
    }
}
