//! Identity's use cases. REST and gRPC call only these.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use hotline_kit::{
    ApiError, ApiResult,
    auth::{Principal, Role},
    cache::Cache,
    db::is_unique_violation,
    idempotency::{IdempotencyKey, StoredResponse},
    outbox::Outbox,
    rest::{
        Page, decode_cursor, if_match_satisfied, page_limit, require_plain_text, stale_version,
    },
};
use hotline_proto::events::v1::{CustomerActivity, CustomerChanged, CustomerMerged};
use prost::Message;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    billing::{Billing, BillingQuery},
    domain::{
        customer::{CustomerData, CustomerPatch, NewCustomer, mask_email, mask_name},
        phone::{PhoneNumber, Region},
        resident_id::ResidentId,
    },
    events,
    pii::PiiCipher,
    store::{
        audit_entry,
        customer::{self, ID_NUMBER_AD, ID_NUMBER_INDEX},
        customer_phone, queries, timeline_entry,
    },
    views::{
        AuditEntryView, Candidate, CustomerExport, CustomerView, LookupResult, MergedRecordExport,
        TimelineEntryView,
    },
};

/// Who may read and write customers.
pub const STAFF: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin, Role::Service];
const LEADS: &[Role] = &[Role::Supervisor, Role::Admin];
const ADMINS: &[Role] = &[Role::Admin];
const ERASED: &str = "[erased]";
/// The name left on a record merged into another.
const MERGED: &str = "[merged]";

/// Search criteria; at least one is needed.
#[derive(Clone, Debug, Default)]
pub struct SearchQuery {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub id_number: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

pub struct IdentityService {
    db: DatabaseConnection,
    outbox: Outbox,
    cache: Cache,
    cipher: Arc<PiiCipher>,
    billing: Billing,
    region: Region,
    lookup_ttl: Duration,
    history: u64,
    /// Calling numbers as the switch sends them → E.164. Parsing is a pure
    /// function of the text (the region is fixed) and a tenth of a cached
    /// screen pop's CPU; recurring callers skip it.
    normalised: moka::sync::Cache<String, PhoneNumber>,
}

/// Distinct calling numbers whose normal form is remembered.
const NORMALISED_NUMBERS: u64 = 100_000;

impl IdentityService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        cache: Cache,
        cipher: Arc<PiiCipher>,
        billing: Billing,
        region: Region,
        lookup_ttl: Duration,
        history: u64,
    ) -> Self {
        Self {
            db,
            outbox,
            cache,
            cipher,
            billing,
            region,
            lookup_ttl,
            history,
            normalised: moka::sync::Cache::new(NORMALISED_NUMBERS),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    // ---- customers

    #[tracing::instrument(skip_all, err(level = "debug", Debug))]
    pub async fn create_customer(
        &self,
        actor: &Principal,
        input: NewCustomer,
        idempotency: Option<IdempotencyKey>,
    ) -> ApiResult<CustomerView> {
        actor.require_any(STAFF)?;
        let data = input.validate(self.region).map_err(ApiError::invalid)?;
        if let Some(key) = &idempotency
            && let Some(stored) = key.find(&self.db).await?
        {
            return self.replay(actor, &stored).await;
        }
        let id = Uuid::now_v7();
        let txn = self.db.begin().await?;
        let model = self.new_row(id, Utc::now(), actor, &data)?;
        let model = customer::Entity::insert(model)
            .exec_with_returning(&txn)
            .await?;
        let phones = phone_rows(&data);
        queries::replace_phones(&txn, id, &phones).await?;
        let view = self.view(actor, &model, &data_phones(&data));
        self.audit(&txn, id, actor, "created", None, Some(&view))
            .await?;
        let numbers: Vec<String> = phones.into_iter().map(|(number, _)| number).collect();
        self.announce_change(
            &txn,
            events::CUSTOMER_CREATED,
            actor,
            &model,
            numbers.clone(),
            Vec::new(),
        )
        .await?;
        if let Some(key) = &idempotency {
            // The key remembers which customer it made, not the response body:
            // no personal data lingers in the idempotency table.
            let stored = StoredResponse {
                status: 201,
                body: serde_json::json!({ "id": id }).to_string(),
                location: Some(format!("/api/v1/customers/{id}")),
            };
            if let Err(error) = key.save(&txn, &stored).await {
                drop(txn);
                // A concurrent request with the same key won the race: answer as it did.
                if is_unique_violation(&error)
                    && let Some(stored) = key.find(&self.db).await?
                {
                    return self.replay(actor, &stored).await;
                }
                return Err(error.into());
            }
        }
        txn.commit().await?;
        self.after_commit(&numbers).await;
        tracing::info!(customer_id = %id, "customer created");
        Ok(view)
    }

    /// Bulk import (migration from a legacy system, seeding): one transaction
    /// per batch, one audit record per customer, no per-customer events —
    /// consumers learn of imported customers when they first meet them.
    pub async fn import_batch(
        &self,
        actor: &Principal,
        batch: Vec<CustomerData>,
    ) -> ApiResult<usize> {
        actor.require_any(ADMINS)?;
        let now = Utc::now();
        let mut customers = Vec::with_capacity(batch.len());
        let mut phones = Vec::new();
        let mut audits = Vec::with_capacity(batch.len());
        for data in &batch {
            let id = Uuid::now_v7();
            customers.push(self.new_row(id, now, actor, data)?);
            for (position, (number, label)) in data.phones.iter().enumerate() {
                phones.push(customer_phone::ActiveModel {
                    customer_id: Set(id),
                    number: Set(number.as_str().to_owned()),
                    label: Set(label.clone()),
                    position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                });
            }
            audits.push(audit_entry::ActiveModel {
                id: Set(Uuid::now_v7()),
                customer_id: Set(id),
                actor: Set(actor.subject.clone()),
                action: Set("imported".to_owned()),
                before: Set(None),
                after: Set(None),
                at: Set(now),
            });
        }
        let count = customers.len();
        let txn = self.db.begin().await?;
        customer::Entity::insert_many(customers)
            .exec_without_returning(&txn)
            .await?;
        if !phones.is_empty() {
            customer_phone::Entity::insert_many(phones)
                .exec_without_returning(&txn)
                .await?;
        }
        audit_entry::Entity::insert_many(audits)
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        let numbers: Vec<String> = batch
            .iter()
            .flat_map(|data| {
                data.phones
                    .iter()
                    .map(|(number, _)| number.as_str().to_owned())
            })
            .collect();
        self.invalidate_lookups(&numbers).await;
        Ok(count)
    }

    /// The answer to a retried create: the customer it made, as it is now.
    async fn replay(&self, actor: &Principal, stored: &StoredResponse) -> ApiResult<CustomerView> {
        let id = serde_json::from_str::<serde_json::Value>(&stored.body)
            .ok()
            .and_then(|body| body["id"].as_str().and_then(|id| Uuid::parse_str(id).ok()))
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("unreadable idempotency record")))?;
        self.get_customer(actor, id).await
    }

    /// Customers stored, merged and erased ones included.
    pub async fn count_customers(&self) -> ApiResult<u64> {
        Ok(customer::Entity::find().count(&self.db).await?)
    }

    pub async fn get_customer(&self, actor: &Principal, id: Uuid) -> ApiResult<CustomerView> {
        actor.require_any(STAFF)?;
        let model = self.load(&self.db, id).await?;
        let phones = queries::phones_of(&self.db, &[model.id]).await?;
        Ok(self.view(
            actor,
            &model,
            phones.get(&model.id).map_or(&[][..], Vec::as_slice),
        ))
    }

    #[tracing::instrument(skip_all, fields(customer_id = %id), err(level = "debug", Debug))]
    pub async fn update_customer(
        &self,
        actor: &Principal,
        id: Uuid,
        patch: CustomerPatch,
        if_match: Option<&str>,
    ) -> ApiResult<CustomerView> {
        actor.require_any(STAFF)?;
        let txn = self.db.begin().await?;
        let current = self.load(&txn, id).await?;
        if current.erased_at.is_some() {
            return Err(ApiError::conflict(
                "customer_erased",
                "this customer's data was erased",
            ));
        }
        check_precondition(if_match, &current)?;
        let current_phones = queries::phones_of(&txn, &[current.id])
            .await?
            .remove(&current.id)
            .unwrap_or_default();
        let before = self.view(actor, &current, &current_phones);
        let data = self
            .data_of(&current, &current_phones)?
            .patched(patch, self.region)
            .map_err(ApiError::invalid)?;
        let updated = self
            .save_version(&txn, &current, self.columns(&data)?)
            .await?;
        let phones = phone_rows(&data);
        let previous = queries::replace_phones(&txn, current.id, &phones).await?;
        let view = self.view(actor, &updated, &data_phones(&data));
        self.audit(
            &txn,
            current.id,
            actor,
            "updated",
            Some(&before),
            Some(&view),
        )
        .await?;
        let numbers: Vec<String> = phones.into_iter().map(|(number, _)| number).collect();
        self.announce_change(
            &txn,
            events::CUSTOMER_UPDATED,
            actor,
            &updated,
            numbers.clone(),
            previous.clone(),
        )
        .await?;
        txn.commit().await?;
        self.after_commit(&[numbers, previous].concat()).await;
        Ok(view)
    }

    /// PIPL/GDPR erasure: personal data becomes tombstones; the id, timeline
    /// references and statistics stay. It covers every record of the person:
    /// the customer and every record merged into it (erasing either id erases
    /// both), so nothing a merge left behind escapes.
    #[tracing::instrument(skip_all, fields(customer_id = %id), err(level = "debug", Debug))]
    pub async fn erase_customer(
        &self,
        actor: &Principal,
        id: Uuid,
        if_match: Option<&str>,
    ) -> ApiResult<CustomerView> {
        actor.require_any(ADMINS)?;
        let txn = self.db.begin().await?;
        let current = self.load(&txn, id).await?;
        let merged = queries::merged_into(&txn, current.id).await?;
        let pending: Vec<customer::Model> = std::iter::once(current.clone())
            .chain(merged)
            .filter(|record| record.erased_at.is_none())
            .collect();
        if pending.is_empty() {
            return Ok(self.view(actor, &current, &[]));
        }
        check_precondition(if_match, &current)?;
        let now = Utc::now();
        let ids: Vec<Uuid> = pending.iter().map(|record| record.id).collect();
        let mut previous_phones = Vec::new();
        let mut survivor = current.clone();
        for record in &pending {
            let tombstone = customer::ActiveModel {
                erased_at: Set(Some(now)),
                ..scrubbed(ERASED)
            };
            let erased = self.save_version(&txn, record, tombstone).await?;
            let previous = queries::replace_phones(&txn, record.id, &[]).await?;
            self.audit(&txn, record.id, actor, "erased", None, None)
                .await?;
            self.announce_change(
                &txn,
                events::CUSTOMER_ERASED,
                actor,
                &erased,
                Vec::new(),
                previous.clone(),
            )
            .await?;
            previous_phones.extend(previous);
            if erased.id == current.id {
                survivor = erased;
            }
        }
        timeline_entry::Entity::update_many()
            .col_expr(timeline_entry::Column::Summary, Expr::value(ERASED))
            .filter(timeline_entry::Column::CustomerId.is_in(ids.clone()))
            .exec(&txn)
            .await?;
        audit_entry::Entity::update_many()
            .col_expr(
                audit_entry::Column::Before,
                Expr::value(None::<serde_json::Value>),
            )
            .col_expr(
                audit_entry::Column::After,
                Expr::value(None::<serde_json::Value>),
            )
            .filter(audit_entry::Column::CustomerId.is_in(ids.clone()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.after_commit(&previous_phones).await;
        for id in &ids {
            self.billing.forget(&id.to_string()).await;
        }
        tracing::info!(records = ids.len(), "customer erased");
        Ok(self.view(actor, &survivor, &[]))
    }

    /// Folds `merged_id` into `survivor_id`: the survivor takes over phones,
    /// history and whatever personal data only the merged record held, and the
    /// merged record keeps none (a person's data lives in one place); its id
    /// resolves to the survivor from now on.
    #[tracing::instrument(skip_all, fields(survivor = %survivor_id, merged = %merged_id), err(level = "debug", Debug))]
    pub async fn merge_customers(
        &self,
        actor: &Principal,
        survivor_id: Uuid,
        merged_id: Uuid,
    ) -> ApiResult<CustomerView> {
        actor.require_any(LEADS)?;
        let txn = self.db.begin().await?;
        let survivor = self.load(&txn, survivor_id).await?;
        let merged = customer::Entity::find_by_id(merged_id)
            .one(&txn)
            .await?
            .ok_or_else(|| customer_not_found(merged_id))?;
        if merged.id == survivor.id || merged.merged_into == Some(survivor.id) {
            return Err(ApiError::conflict(
                "already_merged",
                "these are already one customer",
            ));
        }
        if merged.merged_into.is_some() {
            return Err(ApiError::conflict(
                "already_merged",
                format!("customer {merged_id} was merged into another"),
            ));
        }
        if survivor.erased_at.is_some() || merged.erased_at.is_some() {
            return Err(ApiError::conflict(
                "customer_erased",
                "an erased customer can't be merged",
            ));
        }
        let mut phones = queries::phones_of(&txn, &[survivor.id, merged.id]).await?;
        let survivor_phones = phones.remove(&survivor.id).unwrap_or_default();
        let merged_phones = phones.remove(&merged.id).unwrap_or_default();
        let before = self.view(actor, &survivor, &survivor_phones);
        let merged_before = self.view(actor, &merged, &merged_phones);
        let data = self
            .data_of(&survivor, &survivor_phones)?
            .absorb(self.data_of(&merged, &merged_phones)?);
        let rows = phone_rows(&data);
        queries::replace_phones(&txn, merged.id, &[]).await?;
        queries::replace_phones(&txn, survivor.id, &rows).await?;
        timeline_entry::Entity::update_many()
            .col_expr(timeline_entry::Column::CustomerId, Expr::value(survivor.id))
            .filter(timeline_entry::Column::CustomerId.eq(merged.id))
            .exec(&txn)
            .await?;
        let updated = self
            .save_version(&txn, &survivor, self.columns(&data)?)
            .await?;
        self.save_version(
            &txn,
            &merged,
            customer::ActiveModel {
                merged_into: Set(Some(survivor.id)),
                ..scrubbed(MERGED)
            },
        )
        .await?;
        // Records merged into the merged one now point at the survivor too, so
        // every old id is one hop from the person's record.
        customer::Entity::update_many()
            .col_expr(customer::Column::MergedInto, Expr::value(survivor.id))
            .filter(customer::Column::MergedInto.eq(merged.id))
            .exec(&txn)
            .await?;
        let view = self.view(actor, &updated, &data_phones(&data));
        self.audit(
            &txn,
            survivor.id,
            actor,
            "merged",
            Some(&before),
            Some(&view),
        )
        .await?;
        // What the merged record held, masked: values the survivor already had
        // a different one of are dropped.
        self.audit(
            &txn,
            merged.id,
            actor,
            "merged_into",
            Some(&merged_before),
            None,
        )
        .await?;
        let numbers: Vec<String> = rows.into_iter().map(|(number, _)| number).collect();
        let payload = CustomerMerged {
            survivor_id: survivor.id.to_string(),
            merged_id: merged.id.to_string(),
            phones: numbers.clone(),
            actor: actor.subject.clone(),
        };
        let event = self.outbox.event(
            events::CUSTOMER_MERGED,
            survivor.id.to_string(),
            payload.encode_to_vec(),
        );
        self.outbox.enqueue(&txn, event).await?;
        txn.commit().await?;
        self.after_commit(&numbers).await;
        Ok(view)
    }

    pub async fn search(
        &self,
        actor: &Principal,
        query: SearchQuery,
    ) -> ApiResult<Page<CustomerView>> {
        actor.require_any(STAFF)?;
        let limit = page_limit(query.limit);
        let mut condition = Condition::all()
            .add(customer::Column::MergedInto.is_null())
            .add(customer::Column::ErasedAt.is_null());
        let mut criteria = 0;
        if let Some(name) = non_empty(&query.name) {
            criteria += 1;
            require_plain_text("/name", name)?;
            condition = condition.add(queries::contains_literally(
                customer::Column::NameKey,
                &name.to_lowercase(),
            ));
        }
        if let Some(address) = non_empty(&query.address) {
            criteria += 1;
            require_plain_text("/address", address)?;
            condition = condition.add(queries::contains_literally(
                customer::Column::AddressText,
                &address.to_lowercase(),
            ));
        }
        if let Some(id_number) = non_empty(&query.id_number) {
            criteria += 1;
            let id_number = ResidentId::parse(id_number)
                .map_err(|e| ApiError::invalid_field("/id_number", e.to_string()))?;
            // Hashes made under a previous key match until rotation rehashed them.
            condition = condition.add(
                customer::Column::IdNumberHash.is_in(
                    self.cipher
                        .blind_indexes(ID_NUMBER_INDEX, id_number.as_str()),
                ),
            );
        }
        if let Some(phone) = non_empty(&query.phone) {
            criteria += 1;
            let number = PhoneNumber::parse(phone, self.region)
                .map_err(|e| ApiError::invalid_field("/phone", e.to_string()))?;
            let holders = customer_phone::Entity::find()
                .select_only()
                .column(customer_phone::Column::CustomerId)
                .filter(customer_phone::Column::Number.eq(number.as_str()))
                .into_tuple::<Uuid>()
                .all(&self.db)
                .await?;
            condition = condition.add(customer::Column::Id.is_in(holders));
        }
        if criteria == 0 {
            return Err(ApiError::bad_request(
                "search_criteria_missing",
                "search by at least one of name, phone, address or id_number",
            ));
        }
        if let Some(cursor) = non_empty(&query.cursor) {
            let after: Uuid = decode_cursor(cursor)?;
            condition = condition.add(customer::Column::Id.gt(after));
        }
        let models = customer::Entity::find()
            .filter(condition)
            .order_by_asc(customer::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let page = Page::cut(models, limit, |model| model.id);
        let ids: Vec<Uuid> = page.items.iter().map(|m| m.id).collect();
        let phones = queries::phones_of(&self.db, &ids).await?;
        Ok(page.map(|model| {
            self.view(
                actor,
                &model,
                phones.get(&model.id).map_or(&[][..], Vec::as_slice),
            )
        }))
    }

    // ---- screen pop

    /// Who is calling from `phone`: served from the cache, filled from the
    /// database; billing data is added within its own time budget.
    #[tracing::instrument(skip_all, err(level = "debug", Debug))]
    pub async fn lookup(&self, actor: &Principal, phone: &str) -> ApiResult<LookupResult> {
        actor.require_any(STAFF)?;
        self.lookup_completed(actor, phone).await
    }

    /// The same answer as JSON, as REST sends it. When nothing is added to
    /// what is cached (no billing system, no ID numbers to reveal) the cached
    /// JSON is the answer, sent as it is once it decodes: encoding it again
    /// was the better part of a screen pop's CPU. Cached entries are written by every
    /// replica, so a rolling upgrade may serve one written by the other
    /// version: the compatibility rules keep that additive.
    #[tracing::instrument(skip_all, err(level = "debug", Debug))]
    pub async fn lookup_json(&self, actor: &Principal, phone: &str) -> ApiResult<Vec<u8>> {
        actor.require_any(STAFF)?;
        let result = if self.billing.configured() || actor.has(Role::Admin) {
            self.lookup_completed(actor, phone).await?
        } else {
            let number = self.calling_number(phone)?;
            let key = self.lookup_key(number.as_str());
            if let Some(cached) = self.cache.get_json_bytes::<LookupResult>(&key).await {
                return Ok(cached);
            }
            self.refresh_lookup(&key, number.as_str()).await?
        };
        serde_json::to_vec(&result).map_err(ApiError::internal)
    }

    /// `phone` in E.164, remembered: callers call again.
    fn calling_number(&self, phone: &str) -> ApiResult<PhoneNumber> {
        if let Some(number) = self.normalised.get(phone) {
            return Ok(number);
        }
        let number = PhoneNumber::parse(phone, self.region)
            .map_err(|e| ApiError::invalid_field("/phone", e.to_string()))?;
        self.normalised.insert(phone.to_owned(), number.clone());
        Ok(number)
    }

    async fn refresh_lookup(&self, key: &str, number: &str) -> ApiResult<LookupResult> {
        let fresh = self.lookup_uncached(number).await?;
        self.cache.set_json(key, &fresh, self.lookup_ttl).await;
        Ok(fresh)
    }

    async fn lookup_completed(&self, actor: &Principal, phone: &str) -> ApiResult<LookupResult> {
        let number = self.calling_number(phone)?;
        let key = self.lookup_key(number.as_str());
        let mut result = match self.cache.get_json::<LookupResult>(&key).await {
            Some(cached) => cached,
            None => self.refresh_lookup(&key, number.as_str()).await?,
        };
        let billing = futures::future::join_all(result.candidates.iter().map(|candidate| {
            let query = BillingQuery {
                customer_id: candidate.customer.id.to_string(),
                phone: Some(result.phone.clone()),
                account: candidate
                    .customer
                    .attributes
                    .get("billing_account")
                    .and_then(|value| value.as_str())
                    .map(str::to_owned),
            };
            async move { self.billing.lookup(&query).await }
        }))
        .await;
        for (candidate, billing) in result.candidates.iter_mut().zip(billing) {
            candidate.billing = billing;
        }
        if actor.has(Role::Admin) {
            self.reveal_id_numbers(&mut result).await?;
        }
        Ok(result)
    }

    async fn lookup_uncached(&self, number: &str) -> ApiResult<LookupResult> {
        let mut holders = queries::holders_of(&self.db, number).await?;
        let ids: Vec<Uuid> = holders.iter().map(|(model, _)| model.id).collect();
        let phones = queries::phones_of(&self.db, &ids).await?;
        let mut candidates = Vec::with_capacity(holders.len());
        let mut latest = Vec::with_capacity(holders.len());
        for (model, position) in holders.drain(..) {
            let history = queries::recent_history(&self.db, model.id, self.history).await?;
            latest.push(history.first().map(|entry| entry.occurred_at));
            candidates.push(Candidate {
                // Cached for every caller, so stored with the ID number masked.
                customer: self.view_as(
                    &model,
                    phones.get(&model.id).map_or(&[][..], Vec::as_slice),
                    false,
                ),
                matched_on: if position == 0 {
                    "primary_phone"
                } else {
                    "other_phone"
                }
                .to_owned(),
                recent_history: history.into_iter().map(timeline_view).collect(),
                billing: crate::billing::BillingInfo {
                    status: crate::billing::BillingStatus::NotConfigured,
                    account: None,
                },
            });
        }
        // Primary-number holders first, then VIPs, then whoever was in touch last.
        let mut ranked: Vec<(Candidate, Option<chrono::DateTime<Utc>>)> =
            candidates.into_iter().zip(latest).collect();
        ranked.sort_by(|(a, a_seen), (b, b_seen)| {
            (a.matched_on != "primary_phone")
                .cmp(&(b.matched_on != "primary_phone"))
                .then(b.customer.vip_level.cmp(&a.customer.vip_level))
                .then(b_seen.cmp(a_seen))
        });
        Ok(LookupResult {
            phone: number.to_owned(),
            candidates: ranked.into_iter().map(|(candidate, _)| candidate).collect(),
        })
    }

    /// Cached candidates hold masked ID numbers; admins get them in clear.
    async fn reveal_id_numbers(&self, result: &mut LookupResult) -> ApiResult<()> {
        let ids: Vec<Uuid> = result.candidates.iter().map(|c| c.customer.id).collect();
        let models = customer::Entity::find()
            .filter(customer::Column::Id.is_in(ids))
            .all(&self.db)
            .await?;
        for candidate in &mut result.candidates {
            if let Some(model) = models.iter().find(|m| m.id == candidate.customer.id) {
                candidate.customer.id_number = self.view_as(model, &[], true).id_number;
            }
        }
        Ok(())
    }

    fn lookup_key(&self, number: &str) -> String {
        self.cache.key("lookup", number)
    }

    /// Drops cached screen pops for these numbers (they changed).
    pub async fn invalidate_lookups(&self, numbers: &[String]) {
        let keys: Vec<String> = numbers
            .iter()
            .map(|number| self.lookup_key(number))
            .collect();
        self.cache.delete(&keys).await;
    }

    // ---- timeline, audit, export

    pub async fn timeline(
        &self,
        actor: &Principal,
        id: Uuid,
        limit: Option<u64>,
        cursor: Option<&str>,
    ) -> ApiResult<Page<TimelineEntryView>> {
        actor.require_any(STAFF)?;
        let model = self.load(&self.db, id).await?;
        let limit = page_limit(limit);
        let mut query = timeline_entry::Entity::find()
            .filter(timeline_entry::Column::CustomerId.eq(model.id))
            .order_by_desc(timeline_entry::Column::OccurredAt)
            .order_by_desc(timeline_entry::Column::Id)
            .limit(limit + 1);
        if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
            let (at, after): (chrono::DateTime<Utc>, Uuid) = decode_cursor(cursor)?;
            query = query.filter(
                Condition::any()
                    .add(timeline_entry::Column::OccurredAt.lt(at))
                    .add(
                        Condition::all()
                            .add(timeline_entry::Column::OccurredAt.eq(at))
                            .add(timeline_entry::Column::Id.lt(after)),
                    ),
            );
        }
        let rows = query.all(&self.db).await?;
        Ok(Page::cut(rows, limit, |row| (row.occurred_at, row.id)).map(timeline_view))
    }

    /// The customer's audit trail, oldest first, a page at a time.
    pub async fn audit_trail(
        &self,
        actor: &Principal,
        id: Uuid,
        limit: Option<u64>,
        cursor: Option<&str>,
    ) -> ApiResult<Page<AuditEntryView>> {
        actor.require_any(LEADS)?;
        let limit = page_limit(limit);
        let after: Option<Uuid> = cursor
            .filter(|c| !c.is_empty())
            .map(decode_cursor)
            .transpose()?;
        let mut query = audit_entry::Entity::find()
            .filter(audit_entry::Column::CustomerId.eq(id))
            .order_by_asc(audit_entry::Column::Id)
            .limit(limit + 1);
        if let Some(after) = after {
            query = query.filter(audit_entry::Column::Id.gt(after));
        }
        let rows = query.all(&self.db).await?;
        if rows.is_empty() && after.is_none() {
            // Distinguish "no such customer" from "no entries" (every customer has one).
            return Err(customer_not_found(id));
        }
        Ok(Page::cut(rows, limit, |row| row.id).map(audit_view))
    }

    async fn audit_entries(&self, id: Uuid) -> ApiResult<Vec<AuditEntryView>> {
        Ok(audit_entry::Entity::find()
            .filter(audit_entry::Column::CustomerId.eq(id))
            .order_by_asc(audit_entry::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(audit_view)
            .collect())
    }

    /// Everything held about one person, ID number in clear (admins only): the
    /// customer and every record merged into it, with their timeline and audit
    /// trails. The export itself is audited.
    pub async fn export(&self, actor: &Principal, id: Uuid) -> ApiResult<CustomerExport> {
        actor.require_any(ADMINS)?;
        let model = self.load(&self.db, id).await?;
        let merged = queries::merged_into(&self.db, model.id).await?;
        let ids: Vec<Uuid> = std::iter::once(model.id)
            .chain(merged.iter().map(|record| record.id))
            .collect();
        let phones = queries::phones_of(&self.db, &ids).await?;
        let phones_of = |id: &Uuid| phones.get(id).map_or(&[][..], Vec::as_slice);
        let customer = self.view(actor, &model, phones_of(&model.id));
        let timeline = timeline_entry::Entity::find()
            .filter(timeline_entry::Column::CustomerId.is_in(ids))
            .order_by_asc(timeline_entry::Column::OccurredAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(timeline_view)
            .collect();
        self.audit(&self.db, model.id, actor, "exported", None, None)
            .await?;
        let audit = self.audit_entries(model.id).await?;
        let mut merged_records = Vec::with_capacity(merged.len());
        for record in &merged {
            merged_records.push(MergedRecordExport {
                customer: self.view(actor, record, phones_of(&record.id)),
                merged_into: record.merged_into.unwrap_or(model.id),
                audit: self.audit_entries(record.id).await?,
            });
        }
        Ok(CustomerExport {
            exported_at: Utc::now(),
            customer,
            timeline,
            audit,
            merged_records,
        })
    }

    /// Appends another service's activity to the customer's timeline, once per
    /// event. Returns false when the customer can't be determined.
    pub async fn record_activity(
        &self,
        event_id: Uuid,
        source: &str,
        activity: CustomerActivity,
    ) -> anyhow::Result<bool> {
        let txn = self.db.begin().await?;
        if !hotline_kit::inbox::claim(&txn, "identity.timeline", event_id).await? {
            return Ok(true);
        }
        let customer = match Uuid::parse_str(&activity.customer_id) {
            Ok(id) => queries::resolve(&txn, id).await?,
            Err(_) => match PhoneNumber::parse(&activity.phone, self.region) {
                Ok(number) => {
                    let holders = queries::holders_of(&txn, number.as_str()).await?;
                    // Only an unambiguous caller gets the entry; never a guess.
                    if holders.len() == 1 {
                        holders.into_iter().next().map(|(c, _)| c)
                    } else {
                        None
                    }
                }
                Err(_) => None,
            },
        };
        // An erased customer's history takes no new personal data.
        let Some(customer) = customer.filter(|c| c.erased_at.is_none()) else {
            txn.commit().await?;
            return Ok(false);
        };
        let occurred_at = activity
            .occurred_at
            .and_then(|t| {
                chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
            })
            .unwrap_or_else(Utc::now);
        timeline_entry::ActiveModel {
            id: Set(event_id),
            customer_id: Set(customer.id),
            kind: Set(storable(activity.kind)),
            reference: Set(storable(activity.reference)),
            summary: Set(storable(activity.summary)),
            actor: Set(storable(activity.actor)),
            source: Set(source.to_owned()),
            occurred_at: Set(occurred_at),
        }
        .insert(&txn)
        .await?;
        let phones = queries::phones_of(&txn, &[customer.id])
            .await?
            .remove(&customer.id)
            .unwrap_or_default();
        txn.commit().await?;
        let numbers: Vec<String> = phones.into_iter().map(|p| p.number).collect();
        self.invalidate_lookups(&numbers).await;
        Ok(true)
    }

    // ---- helpers

    async fn load<C: ConnectionTrait>(&self, conn: &C, id: Uuid) -> ApiResult<customer::Model> {
        queries::resolve(conn, id)
            .await?
            .ok_or_else(|| customer_not_found(id))
    }

    /// Writes `changes` as the next version, failing with 412 if someone else
    /// wrote first (optimistic concurrency).
    async fn save_version(
        &self,
        txn: &DatabaseTransaction,
        current: &customer::Model,
        mut changes: customer::ActiveModel,
    ) -> ApiResult<customer::Model> {
        changes.version = Set(current.version + 1);
        changes.updated_at = Set(Utc::now());
        hotline_kit::db::update_at_version(
            txn,
            changes,
            customer::Column::Id.eq(current.id),
            customer::Column::Version,
            current.version,
        )
        .await?
        .ok_or_else(stale_version)
    }

    /// The first version of a new customer's row.
    fn new_row(
        &self,
        id: Uuid,
        now: chrono::DateTime<Utc>,
        actor: &Principal,
        data: &CustomerData,
    ) -> ApiResult<customer::ActiveModel> {
        Ok(customer::ActiveModel {
            id: Set(id),
            created_at: Set(now),
            updated_at: Set(now),
            created_by: Set(actor.subject.clone()),
            version: Set(1),
            merged_into: Set(None),
            erased_at: Set(None),
            ..self.columns(data)?
        })
    }

    fn columns(&self, data: &CustomerData) -> ApiResult<customer::ActiveModel> {
        let (cipher, hash, masked) = match &data.id_number {
            Some(id) => (
                Some(
                    self.cipher
                        .encrypt_str(id.as_str(), ID_NUMBER_AD)
                        .map_err(ApiError::internal)?,
                ),
                Some(self.cipher.blind_index(ID_NUMBER_INDEX, id.as_str())),
                Some(id.masked()),
            ),
            None => (None, None, None),
        };
        Ok(customer::ActiveModel {
            name: Set(data.name.clone()),
            name_key: Set(data.name.to_lowercase()),
            email: Set(data.email.clone()),
            id_number_cipher: Set(cipher),
            id_number_hash: Set(hash),
            id_number_masked: Set(masked),
            addresses: Set(to_json(&data.addresses)?),
            address_text: Set(data.address_text()),
            tags: Set(to_json(&data.tags)?),
            vip_level: Set(data.vip_level),
            attributes: Set(serde_json::Value::Object(data.attributes.clone())),
            assets: Set(to_json(&data.assets)?),
            ..Default::default()
        })
    }

    /// Rebuilds validated data from a stored row (decrypting the ID number).
    fn data_of(
        &self,
        model: &customer::Model,
        phones: &[crate::domain::customer::Phone],
    ) -> ApiResult<CustomerData> {
        let id_number =
            match &model.id_number_cipher {
                Some(blob) => {
                    let clear = self
                        .cipher
                        .decrypt_str(blob, ID_NUMBER_AD)
                        .map_err(ApiError::internal)?;
                    Some(ResidentId::parse(&clear).map_err(|e| {
                        ApiError::internal(anyhow::anyhow!("stored id number: {e}"))
                    })?)
                }
                None => None,
            };
        let phones = phones
            .iter()
            .map(|phone| {
                PhoneNumber::parse(&phone.number, self.region)
                    .map(|number| (number, phone.label.clone()))
                    .map_err(|e| ApiError::internal(anyhow::anyhow!("stored phone: {e}")))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(CustomerData {
            name: model.name.clone(),
            phones,
            addresses: serde_json::from_value(model.addresses.clone()).unwrap_or_default(),
            id_number,
            email: model.email.clone(),
            tags: serde_json::from_value(model.tags.clone()).unwrap_or_default(),
            vip_level: model.vip_level,
            attributes: model.attributes.as_object().cloned().unwrap_or_default(),
            assets: serde_json::from_value(model.assets.clone()).unwrap_or_default(),
        })
    }

    /// The customer as `actor` may see it: the ID number in clear for admins only.
    fn view(
        &self,
        actor: &Principal,
        model: &customer::Model,
        phones: &[crate::domain::customer::Phone],
    ) -> CustomerView {
        self.view_as(model, phones, actor.has(Role::Admin))
    }

    fn view_as(
        &self,
        model: &customer::Model,
        phones: &[crate::domain::customer::Phone],
        clear_id: bool,
    ) -> CustomerView {
        let id_number = if clear_id {
            model
                .id_number_cipher
                .as_ref()
                .and_then(|blob| self.cipher.decrypt_str(blob, ID_NUMBER_AD).ok())
        } else {
            model.id_number_masked.clone()
        };
        CustomerView {
            id: model.id,
            name: model.name.clone(),
            phones: phones.to_vec(),
            addresses: serde_json::from_value(model.addresses.clone()).unwrap_or_default(),
            id_number,
            email: model.email.clone(),
            tags: serde_json::from_value(model.tags.clone()).unwrap_or_default(),
            vip_level: model.vip_level,
            attributes: model.attributes.as_object().cloned().unwrap_or_default(),
            assets: serde_json::from_value(model.assets.clone()).unwrap_or_default(),
            version: model.version,
            created_at: model.created_at,
            updated_at: model.updated_at,
            erased_at: model.erased_at,
        }
    }

    async fn audit<C: ConnectionTrait>(
        &self,
        conn: &C,
        customer_id: Uuid,
        actor: &Principal,
        action: &str,
        before: Option<&CustomerView>,
        after: Option<&CustomerView>,
    ) -> ApiResult<()> {
        audit_entry::ActiveModel {
            id: Set(Uuid::now_v7()),
            customer_id: Set(customer_id),
            actor: Set(actor.subject.clone()),
            action: Set(action.to_owned()),
            before: Set(before.map(masked_snapshot)),
            after: Set(after.map(masked_snapshot)),
            at: Set(Utc::now()),
        }
        .insert(conn)
        .await?;
        Ok(())
    }

    async fn announce_change(
        &self,
        txn: &DatabaseTransaction,
        kind: &str,
        actor: &Principal,
        model: &customer::Model,
        phones: Vec<String>,
        previous_phones: Vec<String>,
    ) -> ApiResult<()> {
        let payload = CustomerChanged {
            customer_id: model.id.to_string(),
            version: model.version,
            phones,
            previous_phones,
            actor: actor.subject.clone(),
        };
        let event = self
            .outbox
            .event(kind, model.id.to_string(), payload.encode_to_vec());
        self.outbox.enqueue(txn, event).await?;
        Ok(())
    }

    async fn after_commit(&self, numbers: &[String]) {
        self.outbox.wake();
        self.invalidate_lookups(numbers).await;
    }
}

/// Another service's text as PostgreSQL can store it: without NUL, which it
/// refuses in text (the event would fail on every redelivery).
fn storable(text: String) -> String {
    text.replace('\0', "")
}

/// A record's columns with its personal data removed, `marker` for its name:
/// an erased record, or one merged into another. Ids, tags and the VIP level
/// stay for statistics.
fn scrubbed(marker: &str) -> customer::ActiveModel {
    customer::ActiveModel {
        name: Set(marker.to_owned()),
        name_key: Set(marker.to_owned()),
        email: Set(None),
        id_number_cipher: Set(None),
        id_number_hash: Set(None),
        id_number_masked: Set(None),
        addresses: Set(serde_json::json!([])),
        address_text: Set(String::new()),
        attributes: Set(serde_json::json!({})),
        assets: Set(serde_json::json!([])),
        ..Default::default()
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> ApiResult<serde_json::Value> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

fn check_precondition(if_match: Option<&str>, current: &customer::Model) -> ApiResult<()> {
    match if_match {
        Some(value) if !if_match_satisfied(value, &etag(current)) => Err(stale_version()),
        _ => Ok(()),
    }
}

/// The `ETag` of a customer's current version.
pub fn etag(model: &customer::Model) -> String {
    hotline_kit::rest::etag(&model.id.to_string(), model.version)
}

pub fn view_etag(view: &CustomerView) -> String {
    hotline_kit::rest::etag(&view.id.to_string(), view.version)
}

pub fn customer_not_found(id: Uuid) -> ApiError {
    ApiError::not_found("customer_not_found", format!("customer {id} not found"))
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn phone_rows(data: &CustomerData) -> Vec<(String, String)> {
    data.phones
        .iter()
        .map(|(number, label)| (number.as_str().to_owned(), label.clone()))
        .collect()
}

fn data_phones(data: &CustomerData) -> Vec<crate::domain::customer::Phone> {
    data.phones
        .iter()
        .map(|(number, label)| crate::domain::customer::Phone {
            number: number.as_str().to_owned(),
            label: label.clone(),
        })
        .collect()
}

fn mask_stored(id_number: Option<String>) -> Option<String> {
    id_number.map(|id| match ResidentId::parse(&id) {
        Ok(parsed) => parsed.masked(),
        Err(_) => id,
    })
}

/// What the audit trail keeps of a customer: enough to see what changed,
/// nothing that identifies the person.
fn masked_snapshot(view: &CustomerView) -> serde_json::Value {
    let phones: Vec<String> = view
        .phones
        .iter()
        .map(|phone| match PhoneNumber::from_e164(&phone.number) {
            Ok(number) => number.masked(),
            Err(_) => "***".to_owned(),
        })
        .collect();
    serde_json::json!({
        "name": mask_name(&view.name),
        "phones": phones,
        "addresses": view.addresses.iter().map(|a| a.masked()).collect::<Vec<_>>(),
        "id_number": mask_stored(view.id_number.clone()),
        "email": view.email.as_deref().map(mask_email),
        "tags": view.tags,
        "vip_level": view.vip_level,
        "attribute_keys": view.attributes.keys().collect::<Vec<_>>(),
        "assets": view.assets.len(),
        "version": view.version,
    })
}

fn timeline_view(entry: timeline_entry::Model) -> TimelineEntryView {
    TimelineEntryView {
        id: entry.id,
        kind: entry.kind,
        reference: entry.reference,
        summary: entry.summary,
        actor: entry.actor,
        source: entry.source,
        occurred_at: entry.occurred_at,
    }
}

fn audit_view(entry: audit_entry::Model) -> AuditEntryView {
    AuditEntryView {
        id: entry.id,
        actor: entry.actor,
        action: entry.action,
        before: entry.before,
        after: entry.after,
        at: entry.at,
    }
}
