//! `Principal` as an actix extractor: a handler that takes one is authenticated.

use std::{future::Future, pin::Pin, sync::Arc};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header::AUTHORIZATION, web};

use super::{Authenticator, Principal};
use crate::error::ApiError;

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let authenticator = request.app_data::<web::Data<Arc<Authenticator>>>().cloned();
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let authenticator = authenticator.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("no authenticator configured"))
            })?;
            authenticator.authenticate(header.as_deref()).await
        })
    }
}
