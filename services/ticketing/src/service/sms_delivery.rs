//! The sending side of text messages: what is due, what the provider did
//! with a batch of them (one fenced transaction per batch, so thousands a
//! second cost a few statements each), and what SMSCs and gateways report
//! afterwards.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use hotline_kit::{
    ApiError, ApiResult,
    lease::{self, FenceError, Grant},
    mask,
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{CaseStatement, Expr, ExprTrait},
};
use serde_json::json;
use uuid::Uuid;

use super::{Fired, TicketingService};
use crate::{
    domain::sms_text,
    events,
    sms::{OutboundSms, Receipt, SubmitError, Submitted},
    store::{sms_message, sms_part},
};

/// Resends after a transient failure; then the message has failed.
const RETRY_AFTER: [i64; 5] = [5, 30, 120, 600, 1800];

/// What the provider did with one message.
#[derive(Debug)]
pub struct SmsOutcome {
    pub message: sms_message::Model,
    pub result: Result<Submitted, SubmitError>,
}

impl TicketingService {
    /// Queued texts due now, oldest first, except those in `skip` (in
    /// flight); with `after`, only those after it in that order (the last
    /// one read), so a loop draining a backlog doesn't read what it is
    /// sending again.
    pub async fn due_sms(
        &self,
        skip: &HashSet<Uuid>,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<(sms_message::Model, OutboundSms)>, DbErr> {
        let mut query = sms_message::Entity::find()
            .filter(sms_message::Column::Status.eq("queued"))
            .filter(sms_message::Column::NextAttemptAt.lte(self.clock.now()));
        let mut read = skip.len() + limit;
        if let Some((at, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(sms_message::Column::NextAttemptAt.gt(at))
                    .add(
                        Condition::all()
                            .add(sms_message::Column::NextAttemptAt.eq(at))
                            .add(sms_message::Column::Id.gt(id)),
                    ),
            );
            read = limit;
        }
        let rows = query
            .order_by_asc(sms_message::Column::NextAttemptAt)
            .order_by_asc(sms_message::Column::Id)
            .limit(u64::try_from(read).unwrap_or(u64::MAX))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter(|row| !skip.contains(&row.id))
            .take(limit)
            .map(|row| {
                let split = sms_text::split(&row.body);
                let outbound = OutboundSms {
                    id: row.id,
                    to: row.to_phone.clone(),
                    text: row.body.clone(),
                    parts: split.parts,
                    encoding: split.encoding,
                };
                (row, outbound)
            })
            .collect())
    }

    /// Records what `provider` did with each message, in one transaction
    /// fenced by `grant` (several may run at once): accepted ones are sent
    /// (or delivered), with their parts' ids; transient failures wait for
    /// their next attempt.
    pub async fn record_sms(
        &self,
        grant: &Grant,
        ttl: std::time::Duration,
        provider: &'static str,
        outcomes: Vec<SmsOutcome>,
    ) -> Result<Fired, DbErr> {
        if outcomes.is_empty() {
            return Ok(Fired::Skipped);
        }
        let txn = self.db.begin().await?;
        let now = self.clock.now();
        let mut saved = Vec::with_capacity(outcomes.len());
        let mut refused = Vec::new();
        let mut accepted: [Vec<(Uuid, Vec<String>)>; 2] = [Vec::new(), Vec::new()];
        for outcome in outcomes {
            match outcome.result {
                Ok(submitted) => accepted[usize::from(submitted.delivered)]
                    .push((outcome.message.id, submitted.part_ids)),
                Err(error) => refused.push((outcome.message, error)),
            }
        }
        for (delivered, group) in [false, true].into_iter().zip(accepted) {
            if group.is_empty() {
                continue;
            }
            let mut part_ids = CaseStatement::new();
            for (id, parts) in &group {
                part_ids = part_ids.case(
                    Expr::col(sms_message::Column::Id).eq(*id),
                    Expr::val(json!(parts)),
                );
            }
            let rows = sms_message::Entity::update_many()
                .col_expr(
                    sms_message::Column::Status,
                    Expr::val(if delivered { "delivered" } else { "sent" }),
                )
                .col_expr(
                    sms_message::Column::Attempts,
                    Expr::col(sms_message::Column::Attempts).add(1),
                )
                .col_expr(sms_message::Column::Provider, Expr::val(provider))
                .col_expr(sms_message::Column::PartIds, part_ids.into())
                .col_expr(sms_message::Column::SentAt, Expr::val(now))
                .col_expr(
                    sms_message::Column::DeliveredAt,
                    Expr::val(delivered.then_some(now)),
                )
                .col_expr(sms_message::Column::Error, Expr::val(None::<String>))
                .filter(sms_message::Column::Id.is_in(group.iter().map(|(id, _)| *id)))
                .filter(sms_message::Column::Status.eq("queued"))
                .exec_with_returning(&txn)
                .await?;
            if !delivered {
                // Receipts name parts: keep which text each belongs to.
                let parts = group.iter().flat_map(|(id, parts)| {
                    parts
                        .iter()
                        .zip(1..)
                        .map(move |(part_id, part)| sms_part::ActiveModel {
                            provider_id: Set(part_id.clone()),
                            sms_message_id: Set(*id),
                            part: Set(part),
                            status: Set("sent".to_owned()),
                            created_at: Set(now),
                        })
                });
                sms_part::Entity::insert_many(parts)
                    .on_conflict_do_nothing()
                    .exec_without_returning(&txn)
                    .await?;
            }
            saved.extend(rows);
        }
        for (message, error) in refused {
            let attempts = message.attempts + 1;
            let mut row = message.into_active_model();
            row.attempts = Set(attempts);
            row.provider = Set(Some(provider.to_owned()));
            match error {
                SubmitError::Transient(error) => {
                    match usize::try_from(attempts - 1)
                        .ok()
                        .and_then(|n| RETRY_AFTER.get(n))
                    {
                        Some(seconds) => {
                            row.next_attempt_at = Set(now + chrono::Duration::seconds(*seconds));
                        }
                        None => row.status = Set("failed".to_owned()),
                    }
                    row.error = Set(Some(error));
                }
                SubmitError::Permanent(error) => {
                    row.status = Set("failed".to_owned());
                    row.error = Set(Some(error));
                }
            }
            saved.push(row.update(&txn).await?);
        }
        let mut batch = Vec::new();
        for message in &saved {
            // Straight to delivered (the sink): sent, then delivered.
            let kinds: &[&str] = match message.status.as_str() {
                "delivered" => &[events::SMS_SENT, events::SMS_DELIVERED],
                "sent" => &[events::SMS_SENT],
                "failed" => &[events::SMS_FAILED],
                _ => &[],
            };
            batch.extend(
                kinds
                    .iter()
                    .map(|kind| events::sms(&self.outbox, kind, message, now)),
            );
            if message.status == "failed" {
                tracing::info!(sms_id = %message.id, to = %mask::keep_ends(&message.to_phone, 3, 4), error = ?message.error, "sms failed");
            }
        }
        let announced = !batch.is_empty();
        self.outbox.enqueue_many(&txn, batch).await?;
        // Fenced last: the lease row stays locked only for the commit, so
        // batches recorded side by side overlap.
        match lease::fence(&txn, grant, ttl).await {
            Ok(()) => {}
            Err(FenceError::Lost(_)) => return Ok(Fired::Lost),
            Err(FenceError::Db(error)) => return Err(error),
        }
        txn.commit().await?;
        if announced {
            self.outbox.wake();
        }
        tracing::debug!(recorded = saved.len(), "sms batch recorded");
        Ok(Fired::Done)
    }

    /// An SMSC's receipts: each part delivered or failed, and a text
    /// delivered once all its parts are (failed once one has). Says for each
    /// receipt whether its part was known; one that overtook its
    /// `submit_sm_resp` isn't yet. Repeats change nothing.
    pub async fn sms_receipts(&self, receipts: &[Receipt]) -> Result<Vec<bool>, DbErr> {
        let txn = self.db.begin().await?;
        let known: HashMap<String, sms_part::Model> = sms_part::Entity::find()
            .filter(sms_part::Column::ProviderId.is_in(receipts.iter().map(|r| r.part_id.clone())))
            .all(&txn)
            .await?
            .into_iter()
            .map(|part| (part.provider_id.clone(), part))
            .collect();
        let mut affected = HashSet::new();
        for delivered in [true, false] {
            let ids: Vec<&str> = receipts
                .iter()
                .filter(|r| r.delivered == delivered && known.contains_key(&r.part_id))
                .map(|r| r.part_id.as_str())
                .collect();
            if ids.is_empty() {
                continue;
            }
            sms_part::Entity::update_many()
                .col_expr(
                    sms_part::Column::Status,
                    Expr::val(if delivered { "delivered" } else { "failed" }),
                )
                .filter(sms_part::Column::ProviderId.is_in(ids.iter().copied()))
                .filter(sms_part::Column::Status.eq("sent"))
                .exec(&txn)
                .await?;
            affected.extend(ids.iter().map(|id| known[*id].sms_message_id));
        }
        let now = self.clock.now();
        let mut parts: HashMap<Uuid, Vec<String>> = HashMap::new();
        for part in sms_part::Entity::find()
            .filter(sms_part::Column::SmsMessageId.is_in(affected.iter().copied()))
            .all(&txn)
            .await?
        {
            parts
                .entry(part.sms_message_id)
                .or_default()
                .push(part.status);
        }
        let messages = sms_message::Entity::find()
            .filter(sms_message::Column::Id.is_in(affected.iter().copied()))
            .filter(sms_message::Column::Status.eq("sent"))
            .all(&txn)
            .await?;
        // Why a text failed: the state of a part that did.
        let failures: HashMap<Uuid, &str> = receipts
            .iter()
            .filter(|r| !r.delivered)
            .filter_map(|r| Some((known.get(&r.part_id)?.sms_message_id, r.state.as_str())))
            .collect();
        let mut batch = Vec::new();
        for message in messages {
            let statuses = parts
                .get(&message.id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let complete = usize::try_from(message.parts).is_ok_and(|n| statuses.len() >= n);
            let mut row = message.clone().into_active_model();
            let kind = if statuses.iter().any(|s| s == "failed") {
                let state = failures.get(&message.id).copied().unwrap_or("UNDELIV");
                row.status = Set("failed".to_owned());
                row.error = Set(Some(format!("the SMSC reported {state}")));
                events::SMS_FAILED
            } else if complete && statuses.iter().all(|s| s == "delivered") {
                row.status = Set("delivered".to_owned());
                row.delivered_at = Set(Some(now));
                events::SMS_DELIVERED
            } else {
                continue;
            };
            let Some(saved) = settle(&txn, message.id, row).await? else {
                continue;
            };
            batch.push(events::sms(&self.outbox, kind, &saved, now));
        }
        let announced = !batch.is_empty();
        self.outbox.enqueue_many(&txn, batch).await?;
        txn.commit().await?;
        if announced {
            self.outbox.wake();
        }
        Ok(receipts
            .iter()
            .map(|r| known.contains_key(&r.part_id))
            .collect())
    }

    /// A gateway's delivery report (`provider = "http"`): `fields` name the
    /// message by the id it was sent with and say what became of it. Reports
    /// about a text already delivered or failed change nothing.
    pub async fn sms_report(
        &self,
        token: &str,
        fields: &BTreeMap<String, String>,
    ) -> ApiResult<&'static str> {
        let config = &self.settings.sms.http;
        let authentic = self.settings.sms.provider == "http"
            && !config.callback_token.is_empty()
            && aws_lc_rs::constant_time::verify_slices_are_equal(
                token.as_bytes(),
                config.callback_token.as_bytes(),
            )
            .is_ok();
        if !authentic {
            return Err(ApiError::unauthenticated(
                "a delivery report needs the gateway's token",
            ));
        }
        let field = |name: &str| fields.get(name).map(|v| v.trim()).unwrap_or_default();
        let id = Uuid::parse_str(field(&config.callback_id_field)).map_err(|_| {
            ApiError::invalid_field(
                format!("/{}", config.callback_id_field),
                "must be the id a text was sent with",
            )
        })?;
        let status = field(&config.callback_status_field).to_owned();
        let Some(delivered) = config.outcome(&status) else {
            return Ok("pending");
        };
        let txn = self.db.begin().await?;
        let message = sms_message::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("sms_not_found", "no such text message"))?;
        if message.status != "sent" {
            return Ok("unchanged");
        }
        let now: DateTime<Utc> = self.clock.now();
        let mut row = message.into_active_model();
        if delivered {
            row.status = Set("delivered".to_owned());
            row.delivered_at = Set(Some(now));
        } else {
            row.status = Set("failed".to_owned());
            row.error = Set(Some(format!("the gateway reported {status}")));
        }
        let Some(saved) = settle(&txn, id, row).await? else {
            return Ok("unchanged");
        };
        let kind = if delivered {
            events::SMS_DELIVERED
        } else {
            events::SMS_FAILED
        };
        self.announce_sms(&txn, &[kind], &saved, now).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(if delivered { "delivered" } else { "failed" })
    }
}

/// A sent text's final state, `row`, written only if it is still `sent`: of
/// two reports racing, one takes effect. The text as written, if it was.
async fn settle<C: ConnectionTrait>(
    txn: &C,
    id: Uuid,
    row: sms_message::ActiveModel,
) -> Result<Option<sms_message::Model>, DbErr> {
    Ok(sms_message::Entity::update_many()
        .set(row)
        .filter(sms_message::Column::Id.eq(id))
        .filter(sms_message::Column::Status.eq("sent"))
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .next())
}
