//! Identity's REST resources.

mod clients;
mod customers;
mod oauth;

use std::sync::Arc;

use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{service::IdentityService, throttle::Throttle, tokens::Tokens};

pub fn configure(
    config: &mut ServiceConfig,
    service: Arc<IdentityService>,
    tokens: Arc<Tokens>,
    throttle: Arc<Throttle>,
) {
    config
        .app_data(web::Data::new(service))
        .app_data(web::Data::new(tokens))
        .app_data(web::Data::new(throttle))
        .configure(customers::configure)
        .configure(clients::configure)
        .service(oauth::token)
        .service(oauth::jwks);
}

/// `limit` and `cursor` of a paged list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    /// At most this many (1–100, default 20).
    #[param(inline)]
    pub limit: Option<hotline_kit::rest::Limit>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
