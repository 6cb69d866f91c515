//! Moves every encrypted value to the current PII key (`hotline pii rotate-key`),
//! a batch at a time, beside a serving identity.
//!
//! A row is rewritten only if it still holds the value that was read, so a
//! change made meanwhile (encrypted by the service under its own current key)
//! is never overwritten. An interrupted run is resumed by running it again:
//! values already under the current key are skipped.

use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use super::{customer, signing_key};
use crate::pii::{KeyId, PiiCipher};

/// A pass that finds nothing left to move ends the run; one that moves
/// nothing, too. Otherwise another pass picks up what changed meanwhile.
const MAX_PASSES: usize = 3;

/// What a run did.
#[derive(Debug)]
pub struct RekeyReport {
    /// The key values were moved to.
    pub key_id: KeyId,
    /// Customers' ID numbers re-encrypted (and their search hashes recomputed).
    pub id_numbers: u64,
    /// Token-signing keys re-encrypted.
    pub signing_keys: u64,
    /// Values still under another key after the last pass: changed meanwhile
    /// by a replica that encrypts under another key, or unreadable with the
    /// configured keys (each logged with its row id).
    pub remaining: u64,
}

/// One pass over one table: how many stale values it saw, and moved.
#[derive(Default)]
struct Pass {
    stale: u64,
    moved: u64,
}

/// Re-encrypts every value not yet under `cipher`'s current key, `batch`
/// rows per transaction.
pub async fn rotate(
    db: &DatabaseConnection,
    cipher: &PiiCipher,
    batch: u64,
) -> Result<RekeyReport, DbErr> {
    let mut report = RekeyReport {
        key_id: cipher.key_id(),
        id_numbers: 0,
        signing_keys: 0,
        remaining: 0,
    };
    for _ in 0..MAX_PASSES {
        let id_numbers = id_numbers_pass(db, cipher, batch.max(1)).await?;
        let signing_keys = signing_keys_pass(db, cipher).await?;
        report.id_numbers += id_numbers.moved;
        report.signing_keys += signing_keys.moved;
        let stale = id_numbers.stale + signing_keys.stale;
        let moved = id_numbers.moved + signing_keys.moved;
        report.remaining = stale - moved;
        if stale == 0 || moved == 0 {
            break;
        }
    }
    Ok(report)
}

async fn id_numbers_pass(
    db: &DatabaseConnection,
    cipher: &PiiCipher,
    batch: u64,
) -> Result<Pass, DbErr> {
    let mut pass = Pass::default();
    let mut after: Option<Uuid> = None;
    loop {
        let mut query = customer::Entity::find()
            .select_only()
            .column(customer::Column::Id)
            .column(customer::Column::IdNumberCipher)
            .filter(customer::Column::IdNumberCipher.is_not_null())
            .order_by_asc(customer::Column::Id)
            .limit(batch);
        if let Some(after) = after {
            query = query.filter(customer::Column::Id.gt(after));
        }
        let rows: Vec<(Uuid, Option<Vec<u8>>)> = query.into_tuple().all(db).await?;
        let Some(&(last, _)) = rows.last() else {
            return Ok(pass);
        };
        after = Some(last);
        let txn = db.begin().await?;
        for (id, blob) in rows {
            let Some(blob) = blob.filter(|blob| !cipher.is_current(blob)) else {
                continue;
            };
            pass.stale += 1;
            let moved = cipher
                .decrypt_str(&blob, customer::ID_NUMBER_AD)
                .and_then(|clear| {
                    let hash = cipher.blind_index(customer::ID_NUMBER_INDEX, &clear);
                    Ok((cipher.encrypt_str(&clear, customer::ID_NUMBER_AD)?, hash))
                });
            let (new_blob, hash) = match moved {
                Ok(moved) => moved,
                Err(error) => {
                    tracing::warn!(customer_id = %id, %error, "id number not re-encrypted");
                    continue;
                }
            };
            let updated = customer::Entity::update_many()
                .col_expr(customer::Column::IdNumberCipher, Expr::value(new_blob))
                .col_expr(customer::Column::IdNumberHash, Expr::value(hash))
                .filter(customer::Column::Id.eq(id))
                .filter(customer::Column::IdNumberCipher.eq(blob))
                .exec(&txn)
                .await?;
            pass.moved += updated.rows_affected;
        }
        txn.commit().await?;
    }
}

/// Signing keys are few (one per rotation period): one transaction.
async fn signing_keys_pass(db: &DatabaseConnection, cipher: &PiiCipher) -> Result<Pass, DbErr> {
    let mut pass = Pass::default();
    let txn = db.begin().await?;
    for key in signing_key::Entity::find().all(&txn).await? {
        if cipher.is_current(&key.private_key) {
            continue;
        }
        pass.stale += 1;
        // Bound to its kid, as tokens.rs encrypts it.
        let new_blob = match cipher.reencrypt(&key.private_key, key.kid.as_bytes()) {
            Ok(Some(new_blob)) => new_blob,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(kid = %key.kid, %error, "signing key not re-encrypted");
                continue;
            }
        };
        let updated = signing_key::Entity::update_many()
            .col_expr(signing_key::Column::PrivateKey, Expr::value(new_blob))
            .filter(signing_key::Column::Kid.eq(key.kid.clone()))
            .filter(signing_key::Column::PrivateKey.eq(key.private_key))
            .exec(&txn)
            .await?;
        pass.moved += updated.rows_affected;
    }
    txn.commit().await?;
    Ok(pass)
}
