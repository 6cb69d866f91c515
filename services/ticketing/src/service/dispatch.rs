//! Dispatch: the rules' choice for an order, room claimed at the chosen
//! assignee race-free, the offer and how it ended, and what happens when
//! nobody is there to take it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use hotline_kit::{ApiError, ApiResult, auth::Principal, calendar::BusinessHours, error::Problems};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait},
};
use serde_json::json;
use uuid::Uuid;

use super::{CONFIGURERS, SYSTEM_ACTOR, TicketingService};
use crate::{
    domain::{
        dispatch::{self, Candidate, Choice, Rule, Strategy},
        order::{Action, Status},
        setup::{Checks, MAX_NAME},
    },
    events::{self, Change},
    input::{DispatchRulePatch, NewDispatchRule, Step},
    store::{
        Scope, assignee, category, dispatch_attempt, dispatch_rule, region,
        scope::STAFF,
        work_order::{self},
    },
    views::{AttemptView, DispatchRuleView, status_of},
};

/// Why the rules are asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    Created,
    Declined,
    TimedOut,
    Reopened,
    /// The `:redispatch` timer: a candidate has opened since.
    Deferred,
    /// Staff asked for the rules (a dispatch naming no one).
    Requested,
}

impl Trigger {
    /// Staff asking also use the rules that don't dispatch on their own.
    fn auto_only(self) -> bool {
        self != Self::Requested
    }

    /// A new round offers the order again to those who declined it before.
    fn new_round(self) -> bool {
        matches!(self, Self::Created | Self::Reopened | Self::Requested)
    }
}

/// How an offer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Accepted,
    Declined,
    TimedOut,
    Withdrawn,
    Cancelled,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::TimedOut => "timed_out",
            Self::Withdrawn => "withdrawn",
            Self::Cancelled => "cancelled",
        }
    }
}

const PENDING: &str = "pending";

/// The room claimed at an assignee for one order, and the offer's terms.
pub(crate) struct Claimed {
    pub assignee: assignee::Model,
    pub rule: Option<Uuid>,
    pub timeout: chrono::Duration,
    pub round: i32,
}

/// Where a dispatch whose claim failed goes back to.
const SAVEPOINT: &str = "SAVEPOINT dispatch_claim";
const BACK_TO_SAVEPOINT: &str = "ROLLBACK TO SAVEPOINT dispatch_claim";

fn rule_of(row: &dispatch_rule::Model) -> Option<Rule> {
    Some(Rule {
        id: row.id,
        precedence: row.precedence,
        region_path: row.region_path.clone(),
        type_key: row.type_key.clone(),
        category_path: row.category_path.clone(),
        skill: row.skill.clone(),
        strategy: Strategy::parse(&row.strategy)?,
        candidates: serde_json::from_value(row.candidates.clone()).ok()?,
        accept_timeout: chrono::Duration::seconds(row.accept_timeout_secs),
    })
}

fn candidate_of(row: &assignee::Model) -> Candidate {
    Candidate {
        id: row.id,
        skills: serde_json::from_value(row.skills.clone()).unwrap_or_default(),
        regions: row
            .covered()
            .into_iter()
            .map(|region| region.path)
            .collect(),
        capacity: row.capacity,
        open_orders: row.open_orders,
        last_dispatched_at: row.last_dispatched_at,
        hours: row
            .business_hours
            .clone()
            .and_then(|hours| serde_json::from_value::<BusinessHours>(hours).ok()),
    }
}

fn timeout_range(problems: &mut Problems, timeout: Option<std::time::Duration>) {
    let range = std::time::Duration::from_secs(60)..=std::time::Duration::from_secs(7 * 86_400);
    if timeout.is_some_and(|t| !range.contains(&t)) {
        problems.add("/accept_timeout", "must be between 1m and 7d");
    }
}

impl TicketingService {
    /// One more open order at `id`, if it is active and has room (or
    /// `force`): one conditional statement, so capacity holds however many
    /// replicas dispatch at once.
    async fn claim<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: Uuid,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let mut update = assignee::Entity::update_many()
            .col_expr(
                assignee::Column::OpenOrders,
                Expr::col(assignee::Column::OpenOrders).add(1),
            )
            .col_expr(assignee::Column::LastDispatchedAt, Expr::value(now))
            .col_expr(assignee::Column::UpdatedAt, Expr::value(now))
            .filter(assignee::Column::Id.eq(id))
            .filter(assignee::Column::Active.eq(true));
        if !force {
            update = update.filter(
                Expr::col(assignee::Column::OpenOrders).lt(Expr::col(assignee::Column::Capacity)),
            );
        }
        Ok(update.exec(conn).await?.rows_affected == 1)
    }

    /// The room at the assignee staff named, for a manual dispatch.
    pub(super) async fn claim_named<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: &work_order::Model,
        id: Uuid,
        force: bool,
    ) -> ApiResult<Claimed> {
        let target = assignee::Entity::find_by_id(id)
            .one(txn)
            .await?
            .ok_or_else(|| ApiError::invalid_field("/assignee_id", "no such assignee"))?;
        if !target.active {
            return Err(ApiError::invalid_field(
                "/assignee_id",
                "the assignee is inactive",
            ));
        }
        if order.assignee_id == Some(target.id) {
            return Err(ApiError::conflict(
                "already_dispatched",
                "the work order is with this assignee already",
            ));
        }
        if !self.claim(txn, target.id, force, self.clock.now()).await? {
            return Err(ApiError::conflict(
                "assignee_at_capacity",
                format!(
                    "{} holds {} open orders, its capacity; a supervisor may force it",
                    target.name, target.open_orders
                ),
            ));
        }
        Ok(Claimed {
            assignee: target,
            rule: None,
            timeout: self.settings.accept_timeout,
            round: Ord::max(order.dispatch_round, 1),
        })
    }

    /// Records an offer of the order to `assignee`.
    #[expect(clippy::too_many_arguments, reason = "one attempt row's columns")]
    pub(super) async fn offer<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: Uuid,
        round: i32,
        assignee: &assignee::Model,
        rule: Option<Uuid>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        dispatch_attempt::Entity::insert(dispatch_attempt::ActiveModel {
            id: Set(Uuid::now_v7()),
            work_order_id: Set(order),
            round: Set(round),
            assignee_id: Set(assignee.id),
            rule_id: Set(rule),
            dispatched_by: Set(by.to_owned()),
            offered_at: Set(now),
            responded_at: Set(None),
            outcome: Set(PENDING.to_owned()),
            reason: Set(None),
        })
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    /// Ends the order's pending offer, if it has one.
    pub(super) async fn settle_attempt<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: Uuid,
        outcome: Outcome,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        dispatch_attempt::Entity::update_many()
            .col_expr(
                dispatch_attempt::Column::Outcome,
                Expr::value(outcome.as_str()),
            )
            .col_expr(dispatch_attempt::Column::RespondedAt, Expr::value(now))
            .col_expr(
                dispatch_attempt::Column::Reason,
                Expr::value(reason.map(str::to_owned)),
            )
            .filter(dispatch_attempt::Column::WorkOrderId.eq(order))
            .filter(dispatch_attempt::Column::Outcome.eq(PENDING))
            .exec(txn)
            .await?;
        Ok(())
    }

    async fn rules<C: ConnectionTrait>(&self, conn: &C, auto_only: bool) -> ApiResult<Vec<Rule>> {
        let mut select =
            dispatch_rule::Entity::find().filter(dispatch_rule::Column::Active.eq(true));
        if auto_only {
            select = select.filter(dispatch_rule::Column::Auto.eq(true));
        }
        Ok(select.all(conn).await?.iter().filter_map(rule_of).collect())
    }

    /// Who declined the order or let it time out in `round`, and how many
    /// offers the round has made.
    async fn round_so_far<C: ConnectionTrait>(
        &self,
        conn: &C,
        order: Uuid,
        round: i32,
    ) -> Result<(HashSet<Uuid>, usize), DbErr> {
        let attempts = dispatch_attempt::Entity::find()
            .filter(dispatch_attempt::Column::WorkOrderId.eq(order))
            .filter(dispatch_attempt::Column::Round.eq(round))
            .all(conn)
            .await?;
        let refused = attempts
            .iter()
            .filter(|a| {
                a.outcome == Outcome::Declined.as_str() || a.outcome == Outcome::TimedOut.as_str()
            })
            .map(|a| a.assignee_id)
            .collect();
        Ok((refused, attempts.len()))
    }

    /// Asks the rules about a locked order and does what they decide:
    /// dispatch to their choice, wait for a candidate to open, or leave it
    /// to the supervisors. Staff asking get a 409 instead of the last two.
    ///
    /// The chosen assignee's room is claimed last, after a savepoint: the
    /// claim locks the assignee's row until the order's transaction ends,
    /// and every order dispatched to that assignee meanwhile waits on it, so
    /// it should be held for the commit alone. A claim that finds the
    /// assignee filled up since it was read takes the dispatch back to the
    /// savepoint and tries the next best.
    pub(super) async fn dispatch_by_rules<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: work_order::Model,
        actor: (&str, &'static str),
        trigger: Trigger,
    ) -> ApiResult<work_order::Model> {
        let now = self.clock.now();
        let rules = self.rules(txn, trigger.auto_only()).await?;
        let facts = dispatch::Order {
            region_path: &order.region_path,
            category_path: &order.category_path,
            type_key: &order.type_key,
        };
        if dispatch::applicable(&rules, facts).is_empty() {
            if trigger == Trigger::Requested {
                return Err(ApiError::conflict(
                    "no_dispatch_rule",
                    "no dispatch rule covers this order's region, type and category; name the assignee",
                ));
            }
            return Ok(order);
        }
        let round = if trigger.new_round() {
            order.dispatch_round + 1
        } else {
            Ord::max(order.dispatch_round, 1)
        };
        let (mut excluded, offers) = if trigger.new_round() {
            (HashSet::new(), 0)
        } else {
            self.round_so_far(txn, order.id, round).await?
        };
        if offers >= usize::try_from(self.settings.max_auto_attempts).unwrap_or(usize::MAX) {
            self.undispatched(txn, &order, "attempts_exhausted", now)
                .await?;
            return Ok(order);
        }
        // A re-dispatch moves the order elsewhere.
        excluded.extend(order.assignee_id);
        let active = assignee::Entity::find()
            .filter(assignee::Column::Active.eq(true))
            .all(txn)
            .await?;
        let candidates: Vec<Candidate> = active.iter().map(candidate_of).collect();
        loop {
            let choice = dispatch::choose(
                &rules,
                facts,
                &candidates,
                &excluded,
                now,
                self.settings.time_zone,
            );
            match choice {
                Choice::Assign { assignee, rule } => {
                    let target = active
                        .iter()
                        .find(|row| row.id == assignee)
                        .cloned()
                        .ok_or_else(|| {
                            ApiError::internal(anyhow::anyhow!("chose an unread assignee"))
                        })?;
                    let timeout = rules
                        .iter()
                        .find(|r| r.id == rule)
                        .map_or(self.settings.accept_timeout, |r| r.accept_timeout);
                    let mut step = Step::new(Action::Dispatch);
                    step.assignee_id = Some(assignee);
                    let claimed = Claimed {
                        assignee: target,
                        rule: Some(rule),
                        timeout,
                        round,
                    };
                    // Never released: the commit ends it, and a release
                    // would be one more round trip under the claim's lock.
                    txn.execute_unprepared(SAVEPOINT).await?;
                    let dispatched = self
                        .apply_step(txn, &Scope::Staff, &order, &step, actor, Some(claimed))
                        .await?;
                    if !self.claim(txn, assignee, false, now).await? {
                        // Filled up since it was read: the next best.
                        txn.execute_unprepared(BACK_TO_SAVEPOINT).await?;
                        excluded.insert(assignee);
                        continue;
                    }
                    return Ok(dispatched);
                }
                Choice::OpensAt(at) if trigger == Trigger::Requested => {
                    return Err(ApiError::conflict(
                        "no_candidate_open",
                        format!("every candidate with room is closed until {at}"),
                    )
                    .with_extension("opens_at", at.to_rfc3339()));
                }
                Choice::OpensAt(at) => return self.defer(txn, order, at, now).await,
                Choice::NoCandidate | Choice::NoRule if trigger == Trigger::Requested => {
                    return Err(ApiError::conflict(
                        "no_candidate",
                        "no candidate of the dispatch rules has room (or all declined); name the assignee",
                    ));
                }
                Choice::NoCandidate | Choice::NoRule => {
                    self.undispatched(txn, &order, "no_candidate", now).await?;
                    return Ok(order);
                }
            }
        }
    }

    /// Every candidate with room is closed: the order waits, `new`, for the
    /// first to open (the `:redispatch` timer).
    async fn defer<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: work_order::Model,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> ApiResult<work_order::Model> {
        let version = order.version;
        let mut row = order.into_active_model();
        row.redispatch_at = Set(Some(at));
        row.version = Set(version + 1);
        row.updated_at = Set(now);
        let updated = row.update(txn).await?;
        let policy = self
            .policy(txn, &updated.type_key, &updated.priority)
            .await?;
        self.set_timers(txn, &updated, policy.as_ref()).await?;
        self.record(
            txn,
            &updated,
            (SYSTEM_ACTOR, "system"),
            "dispatch_deferred",
            None,
            json!({"until": at}),
            "internal",
        )
        .await?;
        Ok(updated)
    }

    /// The rules found nobody: the order stays `new` and is escalated to the
    /// supervisors (their stream, the event) with `reason`.
    async fn undispatched<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: &work_order::Model,
        reason: &'static str,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        self.record(
            txn,
            order,
            (SYSTEM_ACTOR, "system"),
            "undispatched",
            None,
            json!({"reason": reason}),
            "internal",
        )
        .await?;
        self.announce(
            txn,
            Change {
                kind: events::TICKET_ESCALATED,
                order,
                previous: Some(status_of(order)),
                assignee_kind: None,
                actor: SYSTEM_ACTOR,
                reason: Some(reason),
                at: now,
                escalation: None,
            },
        )
        .await?;
        tracing::info!(work_order_id = %order.id, reason, "work order left undispatched");
        Ok(())
    }

    /// A locked, dispatched order was not accepted in time (its offer ran
    /// out, or its response deadline passed): it goes to the next candidate.
    pub(super) async fn withdraw_and_redispatch<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: &work_order::Model,
        reason: &str,
    ) -> ApiResult<work_order::Model> {
        let mut step = Step::new(Action::Decline);
        step.unanswered = true;
        step.reason = Some(reason.to_owned());
        let actor = (SYSTEM_ACTOR, "system");
        let withdrawn = self
            .apply_step(txn, &Scope::Staff, order, &step, actor, None)
            .await?;
        self.dispatch_by_rules(txn, withdrawn, actor, Trigger::TimedOut)
            .await
    }

    /// A deferred order's candidate may be open now.
    pub(super) async fn redispatch<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: work_order::Model,
    ) -> ApiResult<work_order::Model> {
        self.dispatch_by_rules(txn, order, (SYSTEM_ACTOR, "system"), Trigger::Deferred)
            .await
    }

    /// Dispatches a just-created order by the rules that dispatch on their own.
    pub(super) async fn dispatch_new<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: work_order::Model,
    ) -> ApiResult<work_order::Model> {
        self.dispatch_by_rules(txn, order, (SYSTEM_ACTOR, "system"), Trigger::Created)
            .await
    }

    // ---- rules and attempts --------------------------------------------

    pub async fn list_rules(&self, principal: &Principal) -> ApiResult<Vec<DispatchRuleView>> {
        principal.require_any(STAFF)?;
        let rows = dispatch_rule::Entity::find()
            .order_by_asc(dispatch_rule::Column::Precedence)
            .order_by_asc(dispatch_rule::Column::Name)
            .order_by_asc(dispatch_rule::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn find_rule(&self, id: Uuid) -> ApiResult<dispatch_rule::Model> {
        dispatch_rule::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("dispatch_rule_not_found", "no such dispatch rule"))
    }

    pub async fn rule(&self, principal: &Principal, id: Uuid) -> ApiResult<DispatchRuleView> {
        principal.require_any(STAFF)?;
        Ok(self.find_rule(id).await?.into())
    }

    /// Every id in `ids` names an assignee.
    async fn check_candidates(&self, problems: &mut Problems, ids: &[Uuid]) -> ApiResult<()> {
        if ids.len() > 1000 {
            problems.add("/candidates", "at most 1000 candidates");
            return Ok(());
        }
        let known: HashSet<Uuid> = assignee::Entity::find()
            .filter(assignee::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect();
        for (index, id) in ids.iter().enumerate() {
            if !known.contains(id) {
                problems.add(format!("/candidates/{index}"), "no such assignee");
            }
        }
        Ok(())
    }

    pub async fn create_rule(
        &self,
        principal: &Principal,
        input: NewDispatchRule,
    ) -> ApiResult<DispatchRuleView> {
        principal.require_any(CONFIGURERS)?;
        let mut problems = Problems::default();
        problems.text("/name", &input.name, MAX_NAME);
        if let Some(skill) = &input.skill {
            problems.code("/skill", skill);
        }
        timeout_range(&mut problems, input.accept_timeout.as_deref().copied());
        let region = match input.region_id {
            Some(id) => {
                let found = region::Entity::find_by_id(id).one(&self.db).await?;
                if found.is_none() {
                    problems.add("/region_id", "no such region");
                }
                found
            }
            None => None,
        };
        let category = match input.category_id {
            Some(id) => {
                let found = category::Entity::find_by_id(id).one(&self.db).await?;
                if found.is_none() {
                    problems.add("/category_id", "no such category");
                }
                found
            }
            None => None,
        };
        if let Some(key) = &input.type_key
            && self.active_type(key).await?.is_none()
        {
            problems.add("/type", "no such active work-order type");
        }
        self.check_candidates(&mut problems, &input.candidates)
            .await?;
        problems.finish(()).map_err(ApiError::invalid)?;
        let now = self.clock.now();
        let timeout = input
            .accept_timeout
            .map_or(self.settings.accept_timeout, |t| {
                chrono::Duration::from_std(*t).unwrap_or(self.settings.accept_timeout)
            });
        let row = dispatch_rule::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(input.name.trim().to_owned()),
            precedence: Set(input.precedence),
            region_id: Set(region.as_ref().map(|r| r.id)),
            region_path: Set(region.map(|r| r.path)),
            type_key: Set(input.type_key),
            category_id: Set(category.as_ref().map(|c| c.id)),
            category_path: Set(category.map(|c| c.path)),
            skill: Set(input.skill),
            strategy: Set(input.strategy.as_str().to_owned()),
            candidates: Set(json!(input.candidates)),
            auto: Set(input.auto),
            accept_timeout_secs: Set(timeout.num_seconds()),
            active: Set(true),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        };
        Ok(dispatch_rule::Entity::insert(row)
            .exec_with_returning(&self.db)
            .await?
            .into())
    }

    pub async fn update_rule(
        &self,
        principal: &Principal,
        id: Uuid,
        patch: DispatchRulePatch,
        if_match: Option<i64>,
    ) -> ApiResult<DispatchRuleView> {
        principal.require_any(CONFIGURERS)?;
        let current = self.find_rule(id).await?;
        if if_match.is_some_and(|version| version != current.version) {
            return Err(hotline_kit::rest::stale_version());
        }
        let mut problems = Problems::default();
        if let Some(name) = &patch.name {
            problems.text("/name", name, MAX_NAME);
        }
        timeout_range(&mut problems, patch.accept_timeout.as_deref().copied());
        if let Some(candidates) = &patch.candidates {
            self.check_candidates(&mut problems, candidates).await?;
        }
        problems.finish(()).map_err(ApiError::invalid)?;
        let version = current.version;
        let mut row = current.into_active_model();
        if let Some(name) = patch.name {
            row.name = Set(name.trim().to_owned());
        }
        if let Some(strategy) = patch.strategy {
            row.strategy = Set(strategy.as_str().to_owned());
        }
        if let Some(candidates) = patch.candidates {
            row.candidates = Set(json!(candidates));
        }
        if let Some(auto) = patch.auto {
            row.auto = Set(auto);
        }
        if let Some(timeout) = patch.accept_timeout {
            row.accept_timeout_secs = Set(i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX));
        }
        if let Some(precedence) = patch.precedence {
            row.precedence = Set(precedence);
        }
        if let Some(active) = patch.active {
            row.active = Set(active);
        }
        row.version = Set(version + 1);
        row.updated_at = Set(self.clock.now());
        hotline_kit::db::update_at_version(
            &self.db,
            row,
            dispatch_rule::Column::Id.eq(id),
            dispatch_rule::Column::Version,
            version,
        )
        .await?
        .map(Into::into)
        .ok_or_else(hotline_kit::rest::stale_version)
    }

    pub async fn delete_rule(&self, principal: &Principal, id: Uuid) -> ApiResult<()> {
        principal.require_any(CONFIGURERS)?;
        let deleted = dispatch_rule::Entity::delete_by_id(id)
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::not_found(
                "dispatch_rule_not_found",
                "no such dispatch rule",
            ));
        }
        Ok(())
    }

    /// The order's offers, oldest first: to whom, by which rule, how each ended.
    pub async fn attempts(
        &self,
        principal: &Principal,
        reference: &str,
    ) -> ApiResult<Vec<AttemptView>> {
        principal.require_any(STAFF)?;
        let order = self
            .find_order(&self.db, &Scope::Staff, reference, false)
            .await?;
        let rows = dispatch_attempt::Entity::find()
            .filter(dispatch_attempt::Column::WorkOrderId.eq(order.id))
            .order_by_asc(dispatch_attempt::Column::OfferedAt)
            .order_by_asc(dispatch_attempt::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The regions `ids` name, as an assignee stores them.
    pub(super) async fn covered(
        &self,
        problems: &mut Problems,
        ids: &[Uuid],
    ) -> ApiResult<serde_json::Value> {
        let found: Vec<region::Model> = region::Entity::find()
            .filter(region::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?;
        let mut covered = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            match found.iter().find(|r| r.id == *id) {
                Some(region) if region.active => covered.push(assignee::Covered {
                    id: region.id,
                    path: region.path.clone(),
                }),
                Some(_) | None => {
                    problems.add(format!("/region_ids/{index}"), "no such active region")
                }
            }
        }
        Ok(json!(covered))
    }
}

/// Whether a status leaves an order waiting for the rules.
pub(super) fn waits_for_dispatch(order: &work_order::Model) -> bool {
    status_of(order) == Status::New && order.redispatch_at.is_some()
}
