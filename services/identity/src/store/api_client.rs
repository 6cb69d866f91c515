use hotline_kit::{ApiError, ApiResult, rest::is_plain_text};
use sea_orm::entity::prelude::*;

/// Refuses a client id that no client can have before it reaches a query:
/// PostgreSQL fails on NUL in text, which would be a 500. The answer is OAuth's
/// `invalid_request`, as `/oauth/token` gives for any malformed request.
pub fn require_plain_id(client_id: &str) -> ApiResult<()> {
    if is_plain_text(client_id) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_request",
        "client_id must not contain control characters",
    )
    .with_extension("error", "invalid_request"))
}

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "api_client")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    pub name: String,
    /// Argon2id PHC string; the secret itself is shown once, at creation.
    pub secret_hash: String,
    pub roles: Json,
    pub partner_id: Option<String>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
