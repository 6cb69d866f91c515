//! Webhooks to partner systems: endpoints a shop (or the center for it)
//! registers, a delivery queued in the transaction of each change of the
//! shop's orders (the `webhook_delivery` row is the outbox and the log), sent
//! by the holder of the lease `ticketing.webhooks`, each endpoint on its own
//! so a slow or dead one holds up only itself.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, Utc};
use hotline_kit::{
    ApiError, ApiResult,
    auth::Principal,
    error::Problems,
    lease::{self, FenceError, Grant},
    rest::{self, Page},
};
use rand::Rng;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, Query},
};
use serde_json::json;
use uuid::Uuid;

use super::{CONFIGURERS, Fired, TicketingService};
use crate::{
    domain::setup::Checks,
    events::{self, Change, PARTNER_EVENTS},
    input::{MAX_URL, NewWebhookEndpoint, WebhookEndpointPatch},
    store::{Scope, webhook_attempt, webhook_delivery as delivery, webhook_endpoint as endpoint},
    views::{
        WebhookAttemptView, WebhookDeliveryView, WebhookEndpointView, WebhookSecretView,
        WorkOrderView,
    },
    webhooks::{Attempt, Request, Sender, Verdict},
};

const PENDING: &str = "pending";
const DELIVERED: &str = "delivered";
const FAILED: &str = "failed";
const MAX_DESCRIPTION: usize = 200;

fn endpoint_not_found() -> ApiError {
    ApiError::not_found("webhook_endpoint_not_found", "no such webhook endpoint")
}

fn delivery_not_found() -> ApiError {
    ApiError::not_found("webhook_delivery_not_found", "no such webhook delivery")
}

fn new_secret() -> ApiResult<String> {
    crate::webhooks::signature::generate()
        .map_err(|_| ApiError::internal(anyhow::anyhow!("no randomness for a webhook secret")))
}

/// Reads: staff any endpoint, a partner its own. Writes: supervisors and
/// admins any, a partner its own.
fn scope(principal: &Principal, writing: bool) -> ApiResult<Scope> {
    let scope = Scope::of(principal)?;
    if writing && scope.is_staff() {
        principal.require_any(CONFIGURERS)?;
    }
    Ok(scope)
}

fn reaches(scope: &Scope, partner: &str) -> bool {
    match scope {
        Scope::Staff => true,
        Scope::Partner(own) => own == partner,
    }
}

fn check_event_types(problems: &mut Problems, types: &[String]) {
    for (index, kind) in types.iter().enumerate() {
        if !PARTNER_EVENTS.contains(&kind.as_str()) {
            problems.add(
                format!("/event_types/{index}"),
                format!("must be one of {}", PARTNER_EVENTS.join(", ")),
            );
        }
    }
}

/// One delivery's attempt as the log and the delivery row record it.
struct Outcome {
    status: &'static str,
    next_attempt_at: Option<DateTime<Utc>>,
}

impl TicketingService {
    /// Queues the change for every enabled endpoint of the order's partner
    /// subscribed to it, in the change's transaction.
    pub(super) async fn queue_webhooks<C: ConnectionTrait>(
        &self,
        txn: &C,
        change: &Change<'_>,
    ) -> Result<(), DbErr> {
        let Some(partner) = change.order.partner_id.as_deref() else {
            return Ok(());
        };
        if !PARTNER_EVENTS.contains(&change.kind) {
            return Ok(());
        }
        let endpoints: Vec<endpoint::Model> = endpoint::Entity::find()
            .filter(endpoint::Column::PartnerId.eq(partner))
            .filter(endpoint::Column::Enabled.eq(true))
            .all(txn)
            .await?
            .into_iter()
            .filter(|e| e.subscribed(change.kind))
            .collect();
        if endpoints.is_empty() {
            return Ok(());
        }
        let mut data = serde_json::to_value(WorkOrderView::of(
            change.order.clone(),
            &Scope::Partner(partner.to_owned()),
        ))
        .map_err(|e| DbErr::Custom(e.to_string()))?;
        if let (Some(reason), Some(fields)) = (change.reason, data.as_object_mut()) {
            fields.insert("reason".into(), json!(reason));
        }
        let payload = json!({
            "type": change.kind,
            "timestamp": change.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": data,
        })
        .to_string();
        let now = self.clock.now();
        let rows = endpoints.into_iter().map(|e| delivery::ActiveModel {
            id: Set(Uuid::now_v7()),
            endpoint_id: Set(e.id),
            partner_id: Set(partner.to_owned()),
            work_order_id: Set(Some(change.order.id)),
            event_type: Set(change.kind.to_owned()),
            payload: Set(payload.clone()),
            status: Set(PENDING.to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            last_status_code: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            delivered_at: Set(None),
        });
        delivery::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
        Ok(())
    }

    // ---- endpoints -------------------------------------------------------

    pub async fn create_endpoint(
        &self,
        principal: &Principal,
        input: NewWebhookEndpoint,
    ) -> ApiResult<WebhookSecretView> {
        let scope = scope(principal, true)?;
        let partner = match (&scope, input.partner_id.as_deref().map(str::trim)) {
            (Scope::Partner(own), None) => own.clone(),
            (Scope::Partner(own), Some(named)) if named == own => own.clone(),
            (Scope::Partner(_), Some(_)) => {
                return Err(ApiError::forbidden(
                    "a partner registers endpoints for itself only",
                ));
            }
            (Scope::Staff, Some(named)) => named.to_owned(),
            (Scope::Staff, None) => {
                return Err(ApiError::invalid_field("/partner_id", "is required"));
            }
        };
        let mut problems = Problems::default();
        problems.text("/partner_id", &partner, 100);
        self.check_url(&mut problems, &input.url).await;
        check_event_types(&mut problems, &input.event_types);
        if let Some(description) = &input.description {
            problems.text("/description", description, MAX_DESCRIPTION);
        }
        problems.finish(()).map_err(ApiError::invalid)?;
        let secret = new_secret()?;
        let now = self.clock.now();
        let row = endpoint::Entity::insert(endpoint::ActiveModel {
            id: Set(Uuid::now_v7()),
            partner_id: Set(partner),
            url: Set(input.url.trim().to_owned()),
            description: Set(input.description.map(|d| d.trim().to_owned())),
            event_types: Set(json!(input.event_types)),
            secret: Set(secret.clone()),
            previous_secret: Set(None),
            previous_until: Set(None),
            enabled: Set(true),
            disabled_reason: Set(None),
            paused_until: Set(None),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(&self.db)
        .await?;
        Ok(WebhookSecretView {
            endpoint: row.into(),
            secret,
        })
    }

    async fn check_url(&self, problems: &mut Problems, url: &str) {
        if url.trim().is_empty() || url.len() > MAX_URL {
            problems.add("/url", format!("must be 1 to {MAX_URL} characters"));
        } else if let Err(refusal) = self.guard.check(url.trim()).await {
            problems.add("/url", refusal.to_string());
        }
    }

    async fn find_endpoint(&self, scope: &Scope, id: Uuid) -> ApiResult<endpoint::Model> {
        endpoint::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|e| reaches(scope, &e.partner_id))
            .ok_or_else(endpoint_not_found)
    }

    pub async fn endpoint(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> ApiResult<WebhookEndpointView> {
        let scope = scope(principal, false)?;
        Ok(self.find_endpoint(&scope, id).await?.into())
    }

    /// Oldest first; staff may filter by partner.
    pub async fn list_endpoints(
        &self,
        principal: &Principal,
        partner: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u64>,
    ) -> ApiResult<Page<WebhookEndpointView>> {
        let scope = scope(principal, false)?;
        let mut condition = Condition::all();
        match (&scope, partner) {
            (Scope::Partner(own), _) => {
                condition = condition.add(endpoint::Column::PartnerId.eq(own.clone()));
            }
            (Scope::Staff, Some(partner)) => {
                condition = condition.add(endpoint::Column::PartnerId.eq(partner));
            }
            (Scope::Staff, None) => {}
        }
        if let Some(after) = cursor.map(rest::decode_cursor::<Uuid>).transpose()? {
            condition = condition.add(endpoint::Column::Id.gt(after));
        }
        let limit = rest::page_limit(limit);
        let rows = endpoint::Entity::find()
            .filter(condition)
            .order_by_asc(endpoint::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        Ok(Page::cut(rows, limit, |e| e.id).map(WebhookEndpointView::from))
    }

    pub async fn update_endpoint(
        &self,
        principal: &Principal,
        id: Uuid,
        patch: WebhookEndpointPatch,
        if_match: Option<i64>,
    ) -> ApiResult<WebhookEndpointView> {
        let scope = scope(principal, true)?;
        let current = self.find_endpoint(&scope, id).await?;
        if if_match.is_some_and(|version| version != current.version) {
            return Err(rest::stale_version());
        }
        let mut problems = Problems::default();
        if let Some(url) = &patch.url {
            self.check_url(&mut problems, url).await;
        }
        if let Some(types) = &patch.event_types {
            check_event_types(&mut problems, types);
        }
        if let Some(description) = &patch.description {
            problems.text("/description", description, MAX_DESCRIPTION);
        }
        problems.finish(()).map_err(ApiError::invalid)?;
        let version = current.version;
        let mut row = current.into_active_model();
        if let Some(url) = patch.url {
            row.url = Set(url.trim().to_owned());
        }
        if let Some(types) = patch.event_types {
            row.event_types = Set(json!(types));
        }
        if let Some(description) = patch.description {
            row.description = Set(Some(description.trim().to_owned()));
        }
        match patch.enabled {
            Some(true) => {
                row.enabled = Set(true);
                row.disabled_reason = Set(None);
                row.paused_until = Set(None);
            }
            Some(false) => {
                row.enabled = Set(false);
                row.disabled_reason = Set(Some("manual".to_owned()));
            }
            None => {}
        }
        row.version = Set(version + 1);
        row.updated_at = Set(self.clock.now());
        hotline_kit::db::update_at_version(
            &self.db,
            row,
            endpoint::Column::Id.eq(id),
            endpoint::Column::Version,
            version,
        )
        .await?
        .map(Into::into)
        .ok_or_else(rest::stale_version)
    }

    /// A new secret; the old one keeps signing beside it for
    /// `ticketing.webhooks.secret_overlap`, so the partner can switch over.
    pub async fn rotate_secret(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> ApiResult<WebhookSecretView> {
        let scope = scope(principal, true)?;
        let current = self.find_endpoint(&scope, id).await?;
        let secret = new_secret()?;
        let now = self.clock.now();
        let overlap = chrono::Duration::from_std(self.settings.webhooks.secret_overlap)
            .unwrap_or_else(|_| chrono::Duration::days(1));
        let version = current.version;
        let mut row = current.clone().into_active_model();
        row.previous_secret = Set(Some(current.secret));
        row.previous_until = Set(Some(now + overlap));
        row.secret = Set(secret.clone());
        row.version = Set(version + 1);
        row.updated_at = Set(now);
        let saved = hotline_kit::db::update_at_version(
            &self.db,
            row,
            endpoint::Column::Id.eq(id),
            endpoint::Column::Version,
            version,
        )
        .await?
        .ok_or_else(rest::stale_version)?;
        Ok(WebhookSecretView {
            endpoint: saved.into(),
            secret,
        })
    }

    /// Removes the endpoint with its deliveries and their log.
    pub async fn delete_endpoint(&self, principal: &Principal, id: Uuid) -> ApiResult<()> {
        let scope = scope(principal, true)?;
        let endpoint = self.find_endpoint(&scope, id).await?;
        let txn = self.db.begin().await?;
        webhook_attempt::Entity::delete_many()
            .filter(
                webhook_attempt::Column::DeliveryId.in_subquery(
                    Query::select()
                        .column(delivery::Column::Id)
                        .from(delivery::Entity)
                        .and_where(delivery::Column::EndpointId.eq(endpoint.id))
                        .to_owned(),
                ),
            )
            .exec(&txn)
            .await?;
        delivery::Entity::delete_many()
            .filter(delivery::Column::EndpointId.eq(endpoint.id))
            .exec(&txn)
            .await?;
        endpoint::Entity::delete_by_id(endpoint.id)
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    // ---- the delivery log --------------------------------------------------

    /// The endpoint's deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        principal: &Principal,
        endpoint_id: Uuid,
        status: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u64>,
    ) -> ApiResult<Page<WebhookDeliveryView>> {
        let scope = scope(principal, false)?;
        let endpoint = self.find_endpoint(&scope, endpoint_id).await?;
        let mut condition = Condition::all().add(delivery::Column::EndpointId.eq(endpoint.id));
        if let Some(status) = status {
            if ![PENDING, DELIVERED, FAILED].contains(&status) {
                return Err(ApiError::invalid_field(
                    "/status",
                    "must be pending, delivered or failed",
                ));
            }
            condition = condition.add(delivery::Column::Status.eq(status));
        }
        if let Some(before) = cursor.map(rest::decode_cursor::<Uuid>).transpose()? {
            condition = condition.add(delivery::Column::Id.lt(before));
        }
        let limit = rest::page_limit(limit);
        let rows = delivery::Entity::find()
            .filter(condition)
            .order_by_desc(delivery::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        Ok(Page::cut(rows, limit, |d| d.id).map(WebhookDeliveryView::from))
    }

    async fn find_delivery(&self, scope: &Scope, id: Uuid) -> ApiResult<delivery::Model> {
        delivery::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|d| reaches(scope, &d.partner_id))
            .ok_or_else(delivery_not_found)
    }

    /// A delivery with every attempt's answer.
    pub async fn delivery(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> ApiResult<WebhookDeliveryView> {
        let scope = scope(principal, false)?;
        let row = self.find_delivery(&scope, id).await?;
        let log = webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::DeliveryId.eq(row.id))
            .order_by_asc(webhook_attempt::Column::Id)
            .all(&self.db)
            .await?;
        let mut view = WebhookDeliveryView::from(row);
        view.log = Some(log.into_iter().map(WebhookAttemptView::from).collect());
        Ok(view)
    }

    /// Sends a delivery again, whatever became of it, with the same
    /// `webhook-id` and body (a fresh timestamp and signature), on a new
    /// retry schedule.
    pub async fn replay_delivery(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> ApiResult<WebhookDeliveryView> {
        let scope = scope(principal, true)?;
        let row = self.find_delivery(&scope, id).await?;
        let endpoint = self.find_endpoint(&scope, row.endpoint_id).await?;
        if !endpoint.enabled {
            return Err(ApiError::conflict(
                "webhook_endpoint_disabled",
                "the endpoint is disabled: enable it first",
            ));
        }
        let mut active = row.into_active_model();
        active.status = Set(PENDING.to_owned());
        active.attempts = Set(0);
        active.next_attempt_at = Set(self.clock.now());
        active.delivered_at = Set(None);
        Ok(active.update(&self.db).await?.into())
    }

    // ---- delivering ----------------------------------------------------------

    /// The due deliveries of enabled, unpaused endpoints not in `busy`, oldest
    /// first, grouped by endpoint.
    pub async fn due_webhooks(
        &self,
        busy: &HashSet<Uuid>,
        limit: u64,
    ) -> Result<Vec<(endpoint::Model, Vec<delivery::Model>)>, DbErr> {
        let now = self.clock.now();
        let candidates: HashSet<Uuid> = endpoint::Entity::find()
            .filter(endpoint::Column::Enabled.eq(true))
            .filter(
                Condition::any()
                    .add(endpoint::Column::PausedUntil.is_null())
                    .add(endpoint::Column::PausedUntil.lte(now)),
            )
            .all(&self.db)
            .await?
            .into_iter()
            .filter(|e| !busy.contains(&e.id))
            .map(|e| e.id)
            .collect();
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let due = delivery::Entity::find()
            .filter(delivery::Column::Status.eq(PENDING))
            .filter(delivery::Column::NextAttemptAt.lte(now))
            .filter(delivery::Column::EndpointId.is_in(candidates.iter().copied()))
            .order_by_asc(delivery::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        // Read again after the deliveries: a rotation or change that committed
        // before a delivery was queued is what that delivery is sent with.
        let mut ready: HashMap<Uuid, endpoint::Model> = endpoint::Entity::find()
            .filter(endpoint::Column::Id.is_in(due.iter().map(|d| d.endpoint_id)))
            .filter(endpoint::Column::Enabled.eq(true))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let mut grouped: Vec<(endpoint::Model, Vec<delivery::Model>)> = Vec::new();
        let mut at: HashMap<Uuid, usize> = HashMap::new();
        for row in due {
            if let Some(index) = at.get(&row.endpoint_id) {
                grouped[*index].1.push(row);
            } else if let Some(endpoint) = ready.remove(&row.endpoint_id) {
                at.insert(row.endpoint_id, grouped.len());
                grouped.push((endpoint, vec![row]));
            }
        }
        Ok(grouped)
    }

    /// Sends `due` to `endpoint` in order, each result recorded in a
    /// transaction fenced by `grant`; stops at the first that isn't
    /// delivered (the rest wait for the endpoint's retry).
    pub async fn deliver(
        &self,
        grant: &Grant,
        ttl: Duration,
        sender: &Sender,
        endpoint: endpoint::Model,
        due: Vec<delivery::Model>,
    ) -> Result<Fired, DbErr> {
        let mut endpoint = endpoint;
        for row in due {
            let id = row.id.to_string();
            let secrets = self.signing_secrets(&endpoint);
            let attempt = sender
                .send(
                    &Request {
                        url: &endpoint.url,
                        id: &id,
                        secrets: &secrets,
                        body: &row.payload,
                    },
                    Utc::now(),
                )
                .await;
            let delivered = attempt.verdict == Verdict::Delivered;
            match self
                .record_attempt(grant, ttl, &endpoint, row, attempt)
                .await?
            {
                Some(after) => endpoint = after,
                None => return Ok(Fired::Lost),
            }
            if !delivered {
                break;
            }
        }
        Ok(Fired::Done)
    }

    /// The current secret, and the previous one while its overlap lasts.
    fn signing_secrets<'a>(&self, endpoint: &'a endpoint::Model) -> Vec<&'a str> {
        let mut secrets = vec![endpoint.secret.as_str()];
        if let (Some(previous), Some(until)) = (&endpoint.previous_secret, endpoint.previous_until)
            && until > self.clock.now()
        {
            secrets.push(previous);
        }
        secrets
    }

    /// Writes an attempt's result: the log, the delivery, the endpoint's
    /// pause or disabling, and the end's event. `None`: the lease was lost.
    async fn record_attempt(
        &self,
        grant: &Grant,
        ttl: Duration,
        endpoint: &endpoint::Model,
        row: delivery::Model,
        attempt: Attempt,
    ) -> Result<Option<endpoint::Model>, DbErr> {
        let txn = self.db.begin().await?;
        match lease::fence(&txn, grant, ttl).await {
            Ok(()) => {}
            Err(FenceError::Lost(_)) => return Ok(None),
            Err(FenceError::Db(error)) => return Err(error),
        }
        let now = self.clock.now();
        webhook_attempt::Entity::insert(webhook_attempt::ActiveModel {
            id: Set(Uuid::now_v7()),
            delivery_id: Set(row.id),
            at: Set(now),
            status_code: Set(attempt.status.map(i32::from)),
            error: Set(attempt.error.clone()),
            duration_ms: Set(i32::try_from(attempt.took.as_millis()).unwrap_or(i32::MAX)),
            response_excerpt: Set(attempt.excerpt),
        })
        .exec_without_returning(&txn)
        .await?;
        let attempts = row.attempts + 1;
        let outcome = match attempt.verdict {
            Verdict::Delivered => Outcome {
                status: DELIVERED,
                next_attempt_at: None,
            },
            Verdict::Gone => Outcome {
                status: FAILED,
                next_attempt_at: None,
            },
            Verdict::Retry(after) => match self.retry_wait(attempts, after) {
                Some(wait) => Outcome {
                    status: PENDING,
                    next_attempt_at: Some(now + wait),
                },
                None => Outcome {
                    status: FAILED,
                    next_attempt_at: None,
                },
            },
        };
        let mut active = row.into_active_model();
        active.attempts = Set(attempts);
        active.status = Set(outcome.status.to_owned());
        active.last_status_code = Set(attempt.status.map(i32::from));
        active.last_error = Set(attempt.error);
        if let Some(next) = outcome.next_attempt_at {
            active.next_attempt_at = Set(next);
        }
        if outcome.status == DELIVERED {
            active.delivered_at = Set(Some(now));
        }
        let saved = active.update(&txn).await?;
        let gone = attempt.verdict == Verdict::Gone;
        let endpoint = if gone || endpoint.paused_until != outcome.next_attempt_at {
            self.pause_or_disable(&txn, endpoint, outcome.next_attempt_at, gone, now)
                .await?
        } else {
            endpoint.clone()
        };
        let kind = match saved.status.as_str() {
            DELIVERED => Some(events::WEBHOOK_DELIVERED),
            FAILED => Some(events::WEBHOOK_FAILED),
            _ => None,
        };
        if let Some(kind) = kind {
            self.outbox
                .enqueue_many(&txn, vec![events::webhook(&self.outbox, kind, &saved, now)])
                .await?;
        }
        txn.commit().await?;
        tracing::info!(
            webhook_id = %saved.id,
            endpoint = %endpoint.id,
            status = %saved.status,
            code = ?saved.last_status_code,
            "webhook"
        );
        if kind.is_some() {
            self.outbox.wake();
        }
        Ok(Some(endpoint))
    }

    /// After a failure nothing more goes to the endpoint until `until`; after
    /// a 410 it is disabled and what waited for it has failed.
    async fn pause_or_disable<C: ConnectionTrait>(
        &self,
        txn: &C,
        endpoint: &endpoint::Model,
        until: Option<DateTime<Utc>>,
        gone: bool,
        now: DateTime<Utc>,
    ) -> Result<endpoint::Model, DbErr> {
        let mut after = endpoint.clone().into_active_model();
        after.paused_until = Set(until);
        if gone {
            // What waited for it fails too, each announced like any other failure.
            after.enabled = Set(false);
            after.disabled_reason = Set(Some("gone".to_owned()));
            after.version = Set(endpoint.version + 1);
            after.updated_at = Set(now);
            let failed = delivery::Entity::update_many()
                .col_expr(delivery::Column::Status, Expr::value(FAILED))
                .col_expr(
                    delivery::Column::LastError,
                    Expr::value("the endpoint answered 410 Gone and was disabled"),
                )
                .filter(delivery::Column::EndpointId.eq(endpoint.id))
                .filter(delivery::Column::Status.eq(PENDING))
                .exec_with_returning(txn)
                .await?;
            if !failed.is_empty() {
                let batch = failed
                    .iter()
                    .map(|row| events::webhook(&self.outbox, events::WEBHOOK_FAILED, row, now))
                    .collect();
                self.outbox.enqueue_many(txn, batch).await?;
            }
        }
        after.update(txn).await
    }

    /// The wait before the retry after attempt `attempts`, spread by the
    /// jitter and no shorter than the endpoint's `Retry-After`; none when the
    /// schedule has run out.
    fn retry_wait(&self, attempts: i32, retry_after: Option<Duration>) -> Option<chrono::Duration> {
        let config = &self.settings.webhooks;
        let planned = **config
            .retry_schedule
            .get(usize::try_from(attempts - 1).ok()?)?;
        let spread = if config.jitter > 0.0 {
            rand::rng().random_range(-config.jitter..=config.jitter)
        } else {
            0.0
        };
        let wait = planned
            .mul_f64(1.0 + spread)
            .max(retry_after.unwrap_or_default().min(config.max_retry_after));
        chrono::Duration::from_std(wait).ok()
    }
}
