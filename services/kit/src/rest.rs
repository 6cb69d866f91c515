//! REST conventions shared by every service: problem+json for every malformed
//! request, `ETag`/`If-Match`, cursor pagination.

use actix_web::{
    HttpRequest, HttpResponse,
    error::{JsonPayloadError, PathError, QueryPayloadError},
    http::header,
    web,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    error::{ApiError, ErrorCode},
    openapi::Routes,
};

/// JSON bodies: size-limited, and every decoding failure answered as a problem.
pub fn json_config(max_body_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(|error, _request| json_error(error).into())
}

#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "actix may add payload errors; all are bad requests"
)]
fn json_error(error: JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            "payload_too_large",
            format!("body of {length} bytes exceeds the limit of {limit}"),
        ),
        JsonPayloadError::Overflow { limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            "payload_too_large",
            format!("body exceeds the limit of {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "unsupported_content_type",
            "body must be application/json",
        ),
        JsonPayloadError::Deserialize(error) if error.is_data() => {
            ApiError::invalid_field(format!("/{}", error_path(&error)), error.to_string())
        }
        JsonPayloadError::Deserialize(error) => {
            ApiError::bad_request("malformed_json", format!("body is not valid JSON: {error}"))
        }
        other => ApiError::bad_request("malformed_body", other.to_string()),
    }
}

/// An optional JSON body: `None` when the request has none (no or a zero
/// `Content-Length`, not chunked), otherwise decoded like `web::Json` and
/// refused the same way when it is malformed. (actix's `Option<Json<T>>`
/// turns a malformed body into `None`, acting on a request the client did not
/// send.)
pub struct OptionalJson<T>(pub Option<T>);

impl<T> OptionalJson<T> {
    pub fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> actix_web::FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = futures::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let headers = request.headers();
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        if !chunked && length.unwrap_or(0) == 0 {
            return Box::pin(async { Ok(Self(None)) });
        }
        // A body of `null` says "nothing" as an absent one does.
        let body = web::Json::<Option<T>>::from_request(request, payload);
        Box::pin(async move { Ok(Self(body.await?.into_inner())) })
    }
}

/// serde_json reports only line and column; name the field when the message
/// does (a missing or unknown field), else point at the whole body.
fn error_path(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let names_a_field = ["missing field", "unknown field", "duplicate field"]
        .iter()
        .any(|start| text.starts_with(start));
    if !names_a_field {
        return String::new();
    }
    text.split('`')
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Decodes a JSON value already read with the `Json` extractor (when the raw
/// value is needed too, e.g. to fingerprint it for `Idempotency-Key`), with
/// the JSON pointer of the value at fault (`/phones/0/label`).
pub fn from_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut pointer = String::new();
        for segment in error.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    pointer.push_str(&format!("/{index}"));
                }
                serde_path_to_error::Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        let inner = error.into_inner();
        if pointer.is_empty() {
            pointer = format!("/{}", error_path(&inner));
        }
        ApiError::invalid_field(pointer, inner.to_string())
    })
}

pub fn form_config(max_body_bytes: usize) -> web::FormConfig {
    web::FormConfig::default()
        .limit(max_body_bytes)
        .error_handler(|error, _request| {
            ApiError::bad_request("invalid_form", error.to_string()).into()
        })
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _request| {
        let message = match error {
            QueryPayloadError::Deserialize(error) => error.to_string(),
            other => other.to_string(),
        };
        ApiError::bad_request("invalid_query", message).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, request| {
        let routes = request.app_data::<web::Data<Routes>>();
        if let Some(response) = routes.and_then(|routes| wrong_method(request, routes)) {
            return actix_web::error::InternalError::from_response(error, response).into();
        }
        let message = match error {
            PathError::Deserialize(error) => error.to_string(),
            other => other.to_string(),
        };
        ApiError::not_found("not_found", format!("no such resource: {message}")).into()
    })
}

/// Why [`require_plain_text`] refused a value.
pub const CONTROL_CHARACTERS: &str = "must not contain control characters";

/// Whether text input is free of control characters. None belongs in a name,
/// e-mail address, id or search term, and PostgreSQL refuses NUL in text
/// outright, which would otherwise surface as a 500.
pub fn is_plain_text(value: &str) -> bool {
    !value.chars().any(char::is_control)
}

/// 422 naming `pointer` unless `value` is [plain text](is_plain_text).
pub fn require_plain_text(pointer: &str, value: &str) -> Result<(), ApiError> {
    if is_plain_text(value) {
        Ok(())
    } else {
        Err(ApiError::invalid_field(pointer, CONTROL_CHARACTERS))
    }
}

/// Strong entity tag of a versioned resource.
pub fn etag(id: &str, version: i64) -> String {
    format!("\"{id}.{version}\"")
}

/// Checks `If-Match` against the current version. Absent header: allowed (the
/// client opted out of concurrency control). Mismatch: 412.
pub fn check_if_match(request: &HttpRequest, current: &str) -> Result<(), ApiError> {
    let Some(value) = request.headers().get(header::IF_MATCH) else {
        return Ok(());
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid_if_match", "If-Match is not valid text"))?;
    if if_match_satisfied(value, current) {
        Ok(())
    } else {
        Err(stale_version())
    }
}

/// The version an `If-Match` names (`"<id>.<version>"`, as [`etag`] makes
/// it), or none for `*` or no header; anything else is stale (412).
pub fn if_match_version(request: &HttpRequest) -> Result<Option<i64>, ApiError> {
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
        .ok_or_else(stale_version)
}

/// Whether an `If-Match` value (`*` or a list of tags) admits the current tag.
pub fn if_match_satisfied(if_match: &str, current: &str) -> bool {
    if_match.trim() == "*" || if_match.split(',').any(|tag| tag.trim() == current)
}

/// The 412 answer to a stale `If-Match`.
pub fn stale_version() -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        "stale_version",
        "the resource changed since you read it; fetch it again and retry",
    )
}

/// A JSON response with the resource's `ETag`.
pub fn with_etag<T: Serialize>(
    mut builder: actix_web::HttpResponseBuilder,
    tag: &str,
    body: &T,
) -> HttpResponse {
    builder
        .insert_header((header::ETAG, tag.to_owned()))
        .json(body)
}

/// An opaque cursor: the position after the last item of a page.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::bad_request("invalid_cursor", "cursor is not one this API issued"))
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Rows per page when the client names no `limit`, and the most it may ask.
pub const DEFAULT_PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;

/// A page size asked for over REST: 1 to [`MAX_PAGE`], anything else refused
/// (400 `invalid_query`) as the document says, not quietly clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u64")]
pub struct Limit(u64);

impl TryFrom<u64> for Limit {
    type Error = String;

    fn try_from(limit: u64) -> Result<Self, String> {
        if (1..=MAX_PAGE).contains(&limit) {
            Ok(Self(limit))
        } else {
            Err(format!("limit must be 1 to {MAX_PAGE}, not {limit}"))
        }
    }
}

impl From<Limit> for u64 {
    fn from(limit: Limit) -> Self {
        limit.0
    }
}

impl utoipa::PartialSchema for Limit {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(1))
            .maximum(Some(MAX_PAGE))
            .default(Some(DEFAULT_PAGE.into()))
            .description(Some("Page size"))
            .into()
    }
}

impl utoipa::ToSchema for Limit {}

/// The page size for a requested `limit`: clamped to 1..=`MAX_PAGE` (gRPC's
/// `page_size` too; REST refuses other values first, through [`Limit`]).
pub fn page_limit(requested: Option<u64>) -> u64 {
    requested.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

impl<T> Page<T> {
    /// A page from `rows` fetched with `limit + 1`: the extra row only says
    /// there is more, and the cursor is the last kept row's `position`.
    pub fn cut<P: Serialize>(mut rows: Vec<T>, limit: u64, position: impl Fn(&T) -> P) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next_cursor = (rows.len() > limit)
            .then(|| {
                rows.truncate(limit);
                rows.last().map(|last| encode_cursor(&position(last)))
            })
            .flatten();
        Self {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, item: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(item).collect(),
            next_cursor: self.next_cursor,
        }
    }

    pub fn try_map<U, E>(self, item: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(item).collect::<Result<_, E>>()?,
            next_cursor: self.next_cursor,
        })
    }
}

/// Answers unmatched requests with a problem document: 405 with `Allow` for a
/// documented path asked with another method, 404 for any other path.
pub async fn unmatched(request: HttpRequest, routes: web::Data<Routes>) -> HttpResponse {
    use actix_web::ResponseError;
    let (method, path) = (request.method(), request.path());
    match wrong_method(&request, &routes) {
        Some(response) => response,
        None => ApiError::not_found("route_not_found", format!("no route for {method} {path}"))
            .error_response(),
    }
}

/// 405 with `Allow` when the documented path `request` names does not serve its
/// method. A request can reach a handler of a less specific path (PATCH
/// `/customers/lookup` matches PATCH `/customers/{id}`); that handler's path
/// extractor fails, and asks here first.
fn wrong_method(request: &HttpRequest, routes: &Routes) -> Option<HttpResponse> {
    use actix_web::ResponseError;
    let (method, path) = (request.method(), request.path());
    let allowed = routes.allowed(path)?;
    if allowed.contains(&method.as_str()) {
        return None;
    }
    let allow = allowed.join(", ");
    let mut response = ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method_not_allowed",
        format!("{path} does not serve {method}; it serves {allow}"),
    )
    .error_response();
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use actix_web::FromRequest;

    use super::*;

    /// `OptionalJson` of a request with `body` (and a JSON content type).
    async fn optional(body: &'static str) -> Result<Option<serde_json::Value>, String> {
        let (request, mut payload) = actix_web::test::TestRequest::post()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(body)
            .to_http_parts();
        OptionalJson::<serde_json::Value>::from_request(&request, &mut payload)
            .await
            .map(OptionalJson::into_inner)
            .map_err(|error| error.to_string())
    }

    #[tokio::test]
    async fn an_optional_body_of_null_is_none_and_a_broken_one_is_refused() {
        assert_eq!(optional("").await, Ok(None));
        assert_eq!(optional("null").await, Ok(None));
        assert_eq!(
            optional(r#"{"agent_id": "a"}"#).await,
            Ok(Some(serde_json::json!({"agent_id": "a"})))
        );
        assert!(optional(r#"{"agent_id": "#).await.is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = encode_cursor(&("name", 42));
        assert_eq!(
            decode_cursor::<(String, i32)>(&cursor).ok(),
            Some(("name".into(), 42))
        );
        assert!(decode_cursor::<(String, i32)>("%%%").is_err());
    }

    #[test]
    fn decoding_errors_point_at_the_value_at_fault() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[expect(dead_code, reason = "only decoded")]
        struct Body {
            phones: Vec<Phone>,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[expect(dead_code, reason = "only decoded")]
        struct Phone {
            label: Label,
        }
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Label {
            Mobile,
        }
        let pointer = |value: serde_json::Value| {
            from_json_value::<Body>(value)
                .err()
                .map(|error| error.fields[0].pointer.clone())
        };
        assert_eq!(
            pointer(serde_json::json!({"phones": [{"label": "mobile"}, {"label": "fax"}]}))
                .as_deref(),
            Some("/phones/1/label")
        );
        assert_eq!(pointer(serde_json::json!({})).as_deref(), Some("/phones"));
        assert_eq!(
            pointer(serde_json::json!({"phones": [], "extra": 1})).as_deref(),
            Some("/extra")
        );
    }

    #[test]
    fn plain_text_has_no_control_characters() {
        assert!(is_plain_text("张伟 O'Brien-Smith %_\\"));
        for bad in ["a\0b", "\u{1}", "line\nbreak", "tab\t", "\u{7f}", "\u{85}"] {
            assert!(!is_plain_text(bad), "{bad:?}");
            assert!(require_plain_text("/name", bad).is_err());
        }
        assert!(require_plain_text("/name", "ok").is_ok());
    }

    #[test]
    fn if_match_compares_strong_tags() {
        let request = actix_web::test::TestRequest::default()
            .insert_header((header::IF_MATCH, "\"a.1\""))
            .to_http_request();
        assert!(check_if_match(&request, "\"a.1\"").is_ok());
        assert!(check_if_match(&request, "\"a.2\"").is_err());
    }
}
