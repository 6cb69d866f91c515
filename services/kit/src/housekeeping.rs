//! Pruning of the platform tables that would otherwise only grow: idempotency
//! keys (a retry comes within minutes, not days) and inbox records (a
//! redelivery comes within the broker's retry window, not weeks later).

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use tokio_util::sync::CancellationToken;

use crate::{idempotency, inbox};

pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 3600);
pub const INBOX_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);
const EVERY: Duration = Duration::from_secs(3600);

/// Deletes expired rows; returns how many idempotency keys and inbox records went.
pub async fn prune(db: &DatabaseConnection) -> Result<(u64, u64), DbErr> {
    let now = Utc::now();
    let keys_before = now - chrono::Duration::from_std(IDEMPOTENCY_RETENTION).unwrap_or_default();
    let inbox_before = now - chrono::Duration::from_std(INBOX_RETENTION).unwrap_or_default();
    let keys = idempotency::entity::Entity::delete_many()
        .filter(idempotency::entity::Column::CreatedAt.lt(keys_before))
        .exec(db)
        .await?
        .rows_affected;
    let applied = inbox::entity::Entity::delete_many()
        .filter(inbox::entity::Column::AppliedAt.lt(inbox_before))
        .exec(db)
        .await?
        .rows_affected;
    Ok((keys, applied))
}

/// Prunes hourly until `shutdown`. Every replica may run it: deletes are idempotent.
pub async fn run(db: DatabaseConnection, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        match prune(&db).await {
            Ok((keys, applied)) if keys + applied > 0 => {
                tracing::info!(
                    idempotency_keys = keys,
                    inbox_records = applied,
                    "pruned expired records"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning failed; will retry"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}
