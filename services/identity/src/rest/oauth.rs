//! `POST /oauth/token` (OAuth2 client credentials, RFC 6749 section 4.4) and
//! `GET /.well-known/jwks.json`.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, http::header, post, web};
use base64::{Engine, engine::general_purpose::STANDARD};
use hotline_kit::{
    ApiResult,
    error::{ApiError, ErrorCode},
};
use serde::Deserialize;

use crate::{
    throttle::{Exceeded, Throttle},
    tokens::{TokenResponse, Tokens},
};

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
/// Failed requests are limited per source address and per client id from one
/// address; past a limit the answer is 429 until the window refills.
#[utoipa::path(
    tag = "auth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "`error`: invalid_request or unsupported_grant_type"),
        (status = 401, description = "`error`: invalid_client"),
        (status = 429, description = "too many failed requests; see `Retry-After`, `RateLimit` and `RateLimit-Policy`"),
        (status = 503, description = "too many requests at once; see `Retry-After`"),
    )
)]
#[post("/oauth/token")]
pub async fn token(
    tokens: web::Data<Arc<Tokens>>,
    throttle: web::Data<Arc<Throttle>>,
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
    let caller = throttle.caller(&request, &client_id);
    if let Err(exceeded) = throttle.check(&caller) {
        return Ok(too_many_failures(exceeded));
    }
    let Some(_slot) = throttle.slot() else {
        return Ok(problem_with(
            &ApiError::unavailable(
                "token_endpoint_busy",
                "too many token requests at once; retry shortly",
            ),
            &[(header::RETRY_AFTER.as_str(), "1".to_owned())],
        ));
    };
    match tokens.issue(&client_id, &client_secret).await {
        Ok(issued) => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(issued)),
        Err(error) => {
            if error.code == ErrorCode::Unauthenticated {
                throttle.failed(&caller);
            }
            Err(error)
        }
    }
}

/// 429 with `Retry-After` and the IETF draft's `RateLimit`/`RateLimit-Policy`
/// fields (draft-ietf-httpapi-ratelimit-headers-09).
fn too_many_failures(exceeded: Exceeded) -> HttpResponse {
    let wait = exceeded.retry_after.as_secs() + u64::from(exceeded.retry_after.subsec_nanos() > 0);
    let policy = exceeded.policy;
    let error = ApiError::new(
        ErrorCode::TooManyRequests,
        "too_many_failed_attempts",
        format!("too many failed token requests; retry in {wait}s"),
    );
    problem_with(
        &error,
        &[
            (header::RETRY_AFTER.as_str(), wait.to_string()),
            (
                "RateLimit-Policy",
                format!(
                    "\"{policy}\";q={};w={}",
                    exceeded.quota,
                    exceeded.window.as_secs()
                ),
            ),
            ("RateLimit", format!("\"{policy}\";r=0;t={wait}")),
        ],
    )
}

fn problem_with(error: &ApiError, headers: &[(&str, String)]) -> HttpResponse {
    let mut response = HttpResponse::build(error.code.http_status());
    response.content_type("application/problem+json");
    for (name, value) in headers {
        response.insert_header((*name, value.as_str()));
    }
    response.body(error.problem().to_string())
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
