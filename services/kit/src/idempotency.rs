//! `Idempotency-Key` support: the first response to a key is stored in the same
//! transaction as the change, and a retry with the same key and body replays it.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, entity::prelude::*};

use crate::error::{ApiError, ErrorCode};

pub const HEADER: &str = "Idempotency-Key";

pub mod entity {
    use super::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_key")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub request_hash: String,
        pub status: i16,
        pub body: String,
        pub location: Option<String>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A key as sent by one caller for one operation.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    /// Who and what: `<client id> POST /api/v1/customers`, so keys never collide across callers.
    pub scope: String,
    pub key: String,
    /// Digest of the request body: the same key with another body is a client bug.
    pub request_hash: String,
}

/// The response first given for a key.
#[derive(Clone, Debug)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

impl IdempotencyKey {
    pub fn new(scope: String, key: &str, body: &[u8]) -> Result<Self, ApiError> {
        if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
        Ok(Self {
            scope,
            key: key.to_owned(),
            request_hash: hex::encode(digest.as_ref()),
        })
    }

    /// The key a REST request sent, if any: scoped to `<caller> <operation>`
    /// and fingerprinting the JSON body it came with.
    pub fn from_request(
        request: &actix_web::HttpRequest,
        caller: &str,
        operation: &str,
        body: &serde_json::Value,
    ) -> Result<Option<Self>, ApiError> {
        let Some(value) = request.headers().get(HEADER) else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key is not valid text",
            )
        })?;
        let fingerprint = serde_json::to_vec(body).map_err(ApiError::internal)?;
        Self::new(format!("{caller} {operation}"), value, &fingerprint).map(Some)
    }

    /// The key a gRPC request carried in its `idempotency_key` field, if
    /// any; `fingerprint` encodes the message without that field.
    pub fn from_message(
        caller: &str,
        operation: &str,
        key: &str,
        fingerprint: impl FnOnce() -> Vec<u8>,
    ) -> Result<Option<Self>, ApiError> {
        if key.is_empty() {
            return Ok(None);
        }
        Self::new(format!("{caller} grpc {operation}"), key, &fingerprint()).map(Some)
    }

    /// The stored response for this key, if the operation already ran.
    pub async fn find<C: ConnectionTrait>(
        &self,
        conn: &C,
    ) -> Result<Option<StoredResponse>, ApiError> {
        let Some(row) = entity::Entity::find_by_id((self.scope.clone(), self.key.clone()))
            .one(conn)
            .await?
        else {
            return Ok(None);
        };
        if row.request_hash != self.request_hash {
            return Err(ApiError::new(
                ErrorCode::UnprocessableEntity,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body",
            ));
        }
        Ok(Some(StoredResponse {
            status: u16::try_from(row.status).unwrap_or(200),
            body: row.body,
            location: row.location,
        }))
    }

    /// Stores the response; call in the transaction that makes the change. A
    /// concurrent duplicate makes this fail with a unique violation.
    pub async fn save<C: ConnectionTrait>(
        &self,
        conn: &C,
        response: &StoredResponse,
    ) -> Result<(), DbErr> {
        entity::ActiveModel {
            scope: Set(self.scope.clone()),
            key: Set(self.key.clone()),
            request_hash: Set(self.request_hash.clone()),
            status: Set(i16::try_from(response.status).unwrap_or(200)),
            body: Set(response.body.clone()),
            location: Set(response.location.clone()),
            created_at: Set(Utc::now()),
        }
        .insert(conn)
        .await?;
        Ok(())
    }
}
