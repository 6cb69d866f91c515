//! `POST /oauth/token` (OAuth2 client credentials, RFC 6749 section 4.4) and
//! `GET /.well-known/jwks.json`.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, http::header, post, web};
use base64::{Engine, engine::general_purpose::STANDARD};
use hotline_kit::{ApiResult, error::ApiError};
use serde::Deserialize;

use crate::tokens::{TokenResponse, Tokens};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    grant_type: String,
    /// With `client_secret`, instead of HTTP Basic authentication.
    client_id: Option<String>,
    client_secret: Option<String>,
    /// Ignored: a token carries all of its client's roles.
    #[allow(dead_code)]
    scope: Option<String>,
}

/// Issues an access token for an API client.
///
/// Credentials go in HTTP Basic authentication or as `client_id`/`client_secret`
/// form fields. Errors are problem documents that also carry OAuth's `error` member.
#[utoipa::path(
    tag = "auth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "`error`: invalid_request or unsupported_grant_type"),
        (status = 401, description = "`error`: invalid_client"),
    )
)]
#[post("/oauth/token")]
pub async fn token(
    tokens: web::Data<Arc<Tokens>>,
    request: HttpRequest,
    form: web::Form<TokenRequest>,
) -> ApiResult<HttpResponse> {
    let form = form.into_inner();
    if form.grant_type != "client_credentials" {
        return Err(ApiError::bad_request(
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        )
        .with_extension("error", "unsupported_grant_type"));
    }
    let (client_id, client_secret) = match (
        basic_credentials(&request)?,
        form.client_id,
        form.client_secret,
    ) {
        (Some(credentials), None, None) => credentials,
        (None, Some(id), Some(secret)) => (id, secret),
        (Some(_), _, _) => {
            return Err(invalid_request(
                "send the client credentials either as HTTP Basic or as form fields, not both",
            ));
        }
        _ => return Err(invalid_request("client_id and client_secret are required")),
    };
    crate::store::api_client::require_plain_id(&client_id)?;
    let issued = tokens.issue(&client_id, &client_secret).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(issued))
}

fn invalid_request(message: &str) -> ApiError {
    ApiError::bad_request("invalid_request", message).with_extension("error", "invalid_request")
}

/// Client id and secret from `Authorization: Basic` (RFC 6749 section 2.3.1:
/// each form-urlencoded before base64).
fn basic_credentials(request: &HttpRequest) -> ApiResult<Option<(String, String)>> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || invalid_request("malformed Basic authorization");
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .ok_or_else(malformed)?;
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| percent_decode(s).ok_or_else(malformed);
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

fn percent_decode(value: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&value.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// The public keys that verify Hotline tokens (current and recently rotated).
#[utoipa::path(tag = "auth", responses((status = 200, description = "a JSON Web Key Set")))]
#[get("/.well-known/jwks.json")]
pub async fn jwks(tokens: web::Data<Arc<Tokens>>) -> ApiResult<HttpResponse> {
    let set = tokens.jwks().await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .json(set))
}
