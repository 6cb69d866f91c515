//! One small set of error codes shared by REST and gRPC, so a failure means the same
//! thing on every wire: `ErrorCode` maps exhaustively to an HTTP status and a gRPC code.

use std::{borrow::Cow, collections::HashMap};

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;
use tonic_types::{ErrorDetails, StatusExt};

/// The metadata key that carries an error's stable `kind` across a gRPC hop.
pub const KIND_METADATA_KEY: &str = "hotline-error-kind";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    UnprocessableEntity,
    TooManyRequests,
    Unavailable,
    Timeout,
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UnprocessableEntity => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::BadRequest | Self::UnprocessableEntity | Self::UnsupportedMediaType => {
                tonic::Code::InvalidArgument
            }
            Self::MethodNotAllowed => tonic::Code::Unimplemented,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
            Self::Forbidden => tonic::Code::PermissionDenied,
            Self::NotFound => tonic::Code::NotFound,
            Self::Conflict => tonic::Code::AlreadyExists,
            Self::PreconditionFailed => tonic::Code::FailedPrecondition,
            Self::PayloadTooLarge => tonic::Code::OutOfRange,
            Self::TooManyRequests => tonic::Code::ResourceExhausted,
            Self::Unavailable => tonic::Code::Unavailable,
            Self::Timeout => tonic::Code::DeadlineExceeded,
            Self::Internal => tonic::Code::Internal,
        }
    }

    const ALL: [Self; 14] = [
        Self::BadRequest,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::PreconditionFailed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::UnprocessableEntity,
        Self::TooManyRequests,
        Self::Unavailable,
        Self::Timeout,
        Self::Internal,
    ];

    fn from_http_status(status: u16) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|code| code.http_status().as_u16() == status)
    }

    fn from_grpc(code: tonic::Code) -> Self {
        match code {
            tonic::Code::InvalidArgument => Self::UnprocessableEntity,
            tonic::Code::Unauthenticated => Self::Unauthenticated,
            tonic::Code::PermissionDenied => Self::Forbidden,
            tonic::Code::NotFound => Self::NotFound,
            tonic::Code::AlreadyExists | tonic::Code::Aborted => Self::Conflict,
            tonic::Code::FailedPrecondition => Self::PreconditionFailed,
            tonic::Code::OutOfRange => Self::PayloadTooLarge,
            tonic::Code::ResourceExhausted => Self::TooManyRequests,
            tonic::Code::Unavailable => Self::Unavailable,
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => Self::Timeout,
            tonic::Code::Ok
            | tonic::Code::Unknown
            | tonic::Code::Internal
            | tonic::Code::Unimplemented
            | tonic::Code::DataLoss => Self::Internal,
        }
    }

    fn title(self) -> &'static str {
        self.http_status().canonical_reason().unwrap_or("Error")
    }
}

/// One invalid field of a request, located by a JSON pointer (RFC 6901).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub pointer: String,
    pub message: String,
}

/// Collects every invalid field of a request, so the client fixes them in one go.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    pub fn add(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            pointer: pointer.into(),
            message: message.into(),
        });
    }

    /// `value` when nothing was found wrong, else every problem.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

/// An error as clients see it: a code, a stable machine-readable `kind`, a message,
/// and for invalid input the fields at fault.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    /// Stable and machine-readable: `customer_not_found`. Usually a literal;
    /// owned when rebuilt from another service's gRPC answer.
    pub kind: Cow<'static, str>,
    pub message: String,
    pub fields: Vec<FieldError>,
    /// Extra top-level members of the problem document (e.g. OAuth's `error`).
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            kind: Cow::Borrowed(kind),
            message: message.into(),
            fields: Vec::new(),
            extensions: serde_json::Map::new(),
        }
    }

    pub fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, kind, message)
    }

    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, kind, message)
    }

    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, kind, message)
    }

    /// gRPC's code: a 409 for something that exists already (`*_exists`,
    /// `*_taken`) is `ALREADY_EXISTS`; one for the state the resource is in
    /// (an illegal step, no room) is `FAILED_PRECONDITION`, as gRPC's guide
    /// tells the two apart.
    pub fn grpc_code(&self) -> tonic::Code {
        if self.code == ErrorCode::Conflict
            && !(self.kind.ends_with("_exists") || self.kind.ends_with("_taken"))
        {
            return tonic::Code::FailedPrecondition;
        }
        self.code.grpc_code()
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, "unauthenticated", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, "forbidden", message)
    }

    /// Invalid input: 422 with the offending fields.
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let message = fields
            .iter()
            .map(|f| format!("{}: {}", f.pointer, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut error = Self::new(ErrorCode::UnprocessableEntity, "invalid_request", message);
        error.fields = fields;
        error
    }

    pub fn invalid_field(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError {
            pointer: pointer.into(),
            message: message.into(),
        }])
    }

    /// An unexpected failure: logged here once with its cause chain, opaque to the client.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        let error = error.into();
        tracing::error!(error = format!("{error:#}"), "internal error");
        Self::new(ErrorCode::Internal, "internal", "internal error")
    }

    pub fn unavailable(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, kind, message)
    }

    pub fn with_extension(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// The RFC 9457 problem document for this error.
    pub fn problem(&self) -> serde_json::Value {
        let status = self.code.http_status();
        let mut body = serde_json::json!({
            "type": format!("https://hotline.dev/problems/{}", self.kind.replace('_', "-")),
            "title": self.code.title(),
            "status": status.as_u16(),
            "detail": self.message,
            "code": self.kind,
        });
        if let Some(object) = body.as_object_mut() {
            if !self.fields.is_empty() {
                object.insert(
                    "errors".into(),
                    serde_json::to_value(&self.fields).unwrap_or_default(),
                );
            }
            for (key, value) in &self.extensions {
                object.insert(key.clone(), value.clone());
            }
        }
        body
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::internal(error)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.http_status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(crate::openapi::PROBLEM_JSON);
        if self.code == ErrorCode::Unauthenticated {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.body(self.problem().to_string())
    }
}

/// The `ErrorInfo` domain of Hotline's errors.
pub const ERROR_DOMAIN: &str = "hotline.dev";

impl From<ApiError> for tonic::Status {
    /// The richer error model (`google.rpc.Status` details): `ErrorInfo` with
    /// the problem's `code` (as `reason`, upper-cased as Google's guide asks,
    /// and verbatim in `metadata.code`) and its extensions as JSON in
    /// `metadata.extensions`; `BadRequest` with the invalid fields (JSON
    /// pointers). The kind is also sent as `hotline-error-kind` metadata.
    fn from(error: ApiError) -> Self {
        let mut details = ErrorDetails::new();
        let mut metadata = HashMap::from([
            ("code".to_owned(), error.kind.to_string()),
            (
                "http_status".to_owned(),
                error.code.http_status().as_u16().to_string(),
            ),
        ]);
        if !error.extensions.is_empty()
            && let Ok(extensions) = serde_json::to_string(&error.extensions)
        {
            metadata.insert("extensions".to_owned(), extensions);
        }
        details.set_error_info(error.kind.to_ascii_uppercase(), ERROR_DOMAIN, metadata);
        for field in &error.fields {
            details.add_bad_request_violation(field.pointer.clone(), field.message.clone());
        }
        let mut status =
            tonic::Status::with_error_details(error.grpc_code(), error.message, details);
        if let Ok(kind) = error.kind.parse() {
            status.metadata_mut().insert(KIND_METADATA_KEY, kind);
        }
        status
    }
}

impl From<tonic::Status> for ApiError {
    /// Rebuilds the typed error on the calling side of a gRPC hop: kind,
    /// invalid fields and extensions as the other side made them.
    fn from(status: tonic::Status) -> Self {
        let details = status.get_error_details();
        let info = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN);
        let kind = info
            .and_then(|info| info.metadata.get("code").cloned())
            .or_else(|| {
                status
                    .metadata()
                    .get(KIND_METADATA_KEY)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            });
        // The other side's HTTP status, where it sent one: gRPC's codes
        // are coarser (FAILED_PRECONDITION is a 409 or a 412).
        let code = info
            .and_then(|info| info.metadata.get("http_status"))
            .and_then(|status| status.parse::<u16>().ok())
            .and_then(ErrorCode::from_http_status)
            .unwrap_or_else(|| ErrorCode::from_grpc(status.code()));
        let mut error = Self::new(code, "upstream_error", status.message());
        if let Some(kind) = kind {
            error.kind = Cow::Owned(kind);
        }
        if let Some(extensions) = info
            .and_then(|info| info.metadata.get("extensions"))
            .and_then(|json| serde_json::from_str(json).ok())
        {
            error.extensions = extensions;
        }
        if let Some(bad_request) = details.bad_request() {
            error.fields = bad_request
                .field_violations
                .iter()
                .map(|violation| FieldError {
                    pointer: violation.field.clone(),
                    message: violation.description.clone(),
                })
                .collect();
        }
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_a_matching_http_and_grpc_status() {
        for code in ErrorCode::ALL {
            let status = tonic::Status::from(ApiError::new(code, "thing_exists", "x"));
            assert_eq!(status.code(), code.grpc_code());
            assert!(code.http_status().is_client_error() || code.http_status().is_server_error());
            assert_eq!(ApiError::from(status).code, code, "{code:?} survives a hop");
        }
    }

    #[test]
    fn a_conflict_of_state_is_a_failed_precondition_and_stays_a_409() {
        let exists = tonic::Status::from(ApiError::conflict("type_exists", "taken"));
        assert_eq!(exists.code(), tonic::Code::AlreadyExists);
        let taken = tonic::Status::from(ApiError::conflict("login_taken", "taken"));
        assert_eq!(taken.code(), tonic::Code::AlreadyExists);
        let illegal = tonic::Status::from(ApiError::conflict("illegal_transition", "no"));
        assert_eq!(illegal.code(), tonic::Code::FailedPrecondition);
        let back = ApiError::from(illegal);
        assert_eq!(
            (back.code, back.kind.as_ref()),
            (ErrorCode::Conflict, "illegal_transition")
        );
        let stale = ApiError::from(tonic::Status::from(ApiError::new(
            ErrorCode::PreconditionFailed,
            "stale_version",
            "x",
        )));
        assert_eq!(stale.code, ErrorCode::PreconditionFailed);
    }

    #[test]
    fn the_kind_survives_a_grpc_hop() {
        let original = ApiError::not_found("customer_not_found", "customer 1 not found");
        let back = ApiError::from(tonic::Status::from(original));
        assert_eq!(back.code, ErrorCode::NotFound);
        assert_eq!(back.kind, "customer_not_found");
        assert_eq!(back.message, "customer 1 not found");
    }

    #[test]
    fn fields_and_extensions_survive_a_grpc_hop_as_rich_error_details() {
        let original = ApiError::invalid(vec![
            FieldError {
                pointer: "/phones/0".into(),
                message: "not a phone number".into(),
            },
            FieldError {
                pointer: "/name".into(),
                message: "required".into(),
            },
        ])
        .with_extension("task_id", "01a2-x");
        let status = tonic::Status::from(original);
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("INVALID_REQUEST", ERROR_DOMAIN)
        );
        assert_eq!(
            details
                .bad_request()
                .expect("BadRequest")
                .field_violations
                .len(),
            2
        );
        let back = ApiError::from(status);
        assert_eq!(back.kind, "invalid_request");
        assert_eq!(back.fields[1].pointer, "/name");
        assert_eq!(back.fields[0].message, "not a phone number");
        assert_eq!(back.extensions["task_id"], "01a2-x");
    }

    #[test]
    fn invalid_input_lists_its_fields_in_the_problem() {
        let error = ApiError::invalid_field("/phones/0", "not a phone number");
        let problem = error.problem();
        assert_eq!(problem["status"], 422);
        assert_eq!(problem["errors"][0]["pointer"], "/phones/0");
    }
}
