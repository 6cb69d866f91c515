//! `/api/v1/clients` and `/api/v1/keys`: API clients and signing keys. Admins only.

use std::sync::Arc;

use actix_web::{HttpResponse, delete, get, post, web};
use hotline_kit::{
    ApiResult,
    auth::{Principal, Role},
    error::ApiError,
    rest::{Page, require_plain_text},
};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use super::PageParams;
use crate::{
    store::api_client::require_plain_id,
    tokens::{ClientView, CreatedClient, NewClient, Tokens},
};

type TokenService = web::Data<Arc<Tokens>>;

pub fn configure(config: &mut ServiceConfig) {
    // Scopes as narrow as their paths: a scope owns every path under it, so a
    // bare /api/v1 here would hide other services' resources.
    config
        .service(
            utoipa_actix_web::scope("/api/v1/clients")
                .service(create)
                .service(list)
                .service(revoke),
        )
        .service(utoipa_actix_web::scope("/api/v1/keys").service(rotate));
}

/// Creates an API client; the answer holds its secret, shown this once.
///
/// Partner clients (repair shops) carry a `partner_id` and reach only their own objects.
#[utoipa::path(
    tag = "clients",
    request_body = NewClient,
    responses((status = 201, body = CreatedClient), (status = 403), (status = 422)),
    security(("oauth2" = []))
)]
#[post("")]
async fn create(
    principal: Principal,
    tokens: TokenService,
    body: web::Json<NewClient>,
) -> ApiResult<HttpResponse> {
    principal.require_any(&[Role::Admin])?;
    let body = body.into_inner();
    require_plain_text("/name", &body.name)?;
    require_plain_text(
        "/partner_id",
        body.partner_id.as_deref().unwrap_or_default(),
    )?;
    let created = tokens.create_client(&principal, body).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Lists API clients (without secrets), revoked ones included.
#[utoipa::path(
    tag = "clients",
    params(PageParams),
    responses((status = 200, body = inline(Page<ClientView>)), (status = 400), (status = 403)),
    security(("oauth2" = []))
)]
#[get("")]
async fn list(
    principal: Principal,
    tokens: TokenService,
    params: web::Query<PageParams>,
) -> ApiResult<web::Json<Page<ClientView>>> {
    principal.require_any(&[Role::Admin])?;
    Ok(web::Json(
        tokens
            .list_clients(params.limit.map(u64::from), params.cursor.as_deref())
            .await?,
    ))
}

/// Revokes a client: it gets no new tokens; tokens already issued expire within the token lifetime.
#[utoipa::path(
    tag = "clients",
    params(("client_id" = String, Path)),
    responses(
        (status = 200, body = ClientView),
        (status = 403),
        (status = 404),
        (status = 409, description = "a client cannot revoke itself")
    ),
    security(("oauth2" = []))
)]
#[delete("/{client_id}")]
async fn revoke(
    principal: Principal,
    tokens: TokenService,
    client_id: web::Path<String>,
) -> ApiResult<web::Json<ClientView>> {
    principal.require_any(&[Role::Admin])?;
    require_plain_id(&client_id)?;
    if client_id.as_str() == principal.subject {
        return Err(ApiError::conflict(
            "revoking_self",
            "a client can't revoke itself",
        ));
    }
    Ok(web::Json(tokens.revoke_client(&client_id).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Rotated {
    /// The key that signs tokens from now on.
    kid: String,
}

/// Rotates the token-signing key now. The previous key stays published until
/// the tokens it signed have expired.
#[utoipa::path(tag = "clients", responses((status = 200, body = Rotated), (status = 403)), security(("oauth2" = [])))]
#[post("/rotate")]
async fn rotate(principal: Principal, tokens: TokenService) -> ApiResult<web::Json<Rotated>> {
    principal.require_any(&[Role::Admin])?;
    let kid = tokens.rotate_now().await.map_err(ApiError::internal)?;
    Ok(web::Json(Rotated { kid }))
}
