//! Text messages to technicians: queued in the transaction of the step that
//! causes them (the `sms_message` row is the outbox), sent by the holder of
//! the lease `ticketing.sms`; their replies turned into steps of the order.

use chrono::{DateTime, Utc};
use hotline_kit::{
    ApiError, ApiResult,
    auth::{Principal, Role},
    mask,
    rest::{self, Page},
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::{TicketingService, dispatch::Trigger};
use crate::{
    domain::{
        order::{Action, Status},
        setup::{AssigneeKind, Checks, e164},
        sms_command::{self, Command},
        sms_text, template,
    },
    events,
    input::Step,
    store::{Scope, assignee, category, scope::STAFF, sms_inbound, sms_message, work_order},
    views::{InboundView, NoticeView, SmsMessageView, status_of},
};

/// Why a message is sent: which template it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    NewOrder,
    Withdrawn,
    Cancelled,
    ReplyOk,
    ReplyError,
    /// A supervisor's notice: its text as they wrote it.
    Notice,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::NewOrder => "new_order",
            Self::Withdrawn => "withdrawn",
            Self::Cancelled => "cancelled",
            Self::ReplyOk => "reply_ok",
            Self::ReplyError => "reply_error",
            Self::Notice => "notice",
        }
    }
}

/// Who may text technicians a notice, and to how many at once.
const NOTICE_SENDERS: &[Role] = &[Role::Supervisor, Role::Admin];
const MAX_NOTICE: usize = 1000;
/// Who may play a technician's reply into the sink.
const SINK_PLAYERS: &[Role] = &[Role::Supervisor, Role::Admin, Role::Service];

/// What a reply says went wrong, for the technician.
fn explain(outcome: &str) -> &'static str {
    match outcome {
        "unknown_command" => "没有看懂指令",
        "no_order_number" => "缺少工单号",
        "no_resolution_code" => "缺少结果代码",
        "no_reason" => "缺少拒单原因",
        "no_such_order" => "没有这个工单",
        "not_yours" => "工单不在您名下",
        "invalid_request" => "结果代码无效",
        _ => "工单当前状态不允许这样做",
    }
}

impl TicketingService {
    /// Queues `purpose`'s text about `order` to `to`, if it is a technician.
    pub(super) async fn text_assignee<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: &work_order::Model,
        to: &assignee::Model,
        purpose: Purpose,
    ) -> Result<Option<Uuid>, DbErr> {
        let Some(phone) = to
            .phone
            .as_deref()
            .filter(|_| to.kind == AssigneeKind::Technician.as_str())
        else {
            return Ok(None);
        };
        let category = category::Entity::find_by_id(order.category_id)
            .one(txn)
            .await?
            .map(|c| c.name)
            .unwrap_or_default();
        let address = order
            .service_address
            .as_deref()
            .or(order.customer_address.as_deref())
            .unwrap_or_default();
        let values = [
            ("number", order.number.as_str()),
            ("priority", order.priority.as_str()),
            ("category", category.as_str()),
            ("description", order.description.as_str()),
            ("address", address),
            (
                "contact",
                order.customer_name.as_deref().unwrap_or_default(),
            ),
            ("phone", order.customer_phone.as_deref().unwrap_or_default()),
        ];
        let body = self.body(purpose, &values);
        self.queue_sms(txn, Some(order.id), Some(to.id), purpose, phone, &body)
            .await
            .map(Some)
    }

    /// Tells the assignee an order was taken from (or cancelled on) them.
    pub(super) async fn tell_previous<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: &work_order::Model,
        previous: Uuid,
        purpose: Purpose,
    ) -> Result<(), DbErr> {
        if let Some(assignee) = assignee::Entity::find_by_id(previous).one(txn).await? {
            self.text_assignee(txn, order, &assignee, purpose).await?;
        }
        Ok(())
    }

    /// The template of `purpose` filled in, fitting `ticketing.sms.max_parts`.
    fn body(&self, purpose: Purpose, values: &[(&str, &str)]) -> String {
        let templates = &self.settings.sms.templates;
        let text = match purpose {
            Purpose::NewOrder => &templates.new_order,
            Purpose::Withdrawn => &templates.withdrawn,
            Purpose::Cancelled => &templates.cancelled,
            Purpose::ReplyOk => &templates.reply_ok,
            Purpose::ReplyError => &templates.reply_error,
            // Sent as the supervisor wrote it (`send_notice`), never rendered.
            Purpose::Notice => "",
        };
        template::render_fitting(text, values, self.settings.sms.max_parts)
            .unwrap_or_else(|| template::render(text, values))
    }

    async fn queue_sms<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: Option<Uuid>,
        assignee: Option<Uuid>,
        purpose: Purpose,
        to: &str,
        body: &str,
    ) -> Result<Uuid, DbErr> {
        let id = Uuid::now_v7();
        sms_message::Entity::insert(self.sms_row(id, order, assignee, purpose, to, body))
            .exec_without_returning(txn)
            .await?;
        Ok(id)
    }

    fn sms_row(
        &self,
        id: Uuid,
        order: Option<Uuid>,
        assignee: Option<Uuid>,
        purpose: Purpose,
        to: &str,
        body: &str,
    ) -> sms_message::ActiveModel {
        let split = sms_text::split(body);
        let now = self.clock.now();
        sms_message::ActiveModel {
            id: Set(id),
            work_order_id: Set(order),
            assignee_id: Set(assignee),
            purpose: Set(purpose.as_str().to_owned()),
            to_phone: Set(to.to_owned()),
            body: Set(body.to_owned()),
            encoding: Set(split.encoding.as_str().to_owned()),
            parts: Set(i32::try_from(split.parts.len()).unwrap_or(i32::MAX)),
            status: Set("queued".to_owned()),
            provider: Set(None),
            part_ids: Set(None),
            attempts: Set(0),
            next_attempt_at: Set(now),
            error: Set(None),
            created_at: Set(now),
            sent_at: Set(None),
            delivered_at: Set(None),
        }
    }

    /// A supervisor's notice to technicians (an outage in their area, a
    /// typhoon warning): one text to each, queued in one transaction. Every
    /// recipient must be an active technician; a text that can't fit
    /// `sms.max_parts` is refused.
    pub async fn send_notice(
        &self,
        principal: &Principal,
        assignee_ids: &[Uuid],
        text: &str,
    ) -> ApiResult<NoticeView> {
        principal.require_any(NOTICE_SENDERS)?;
        let mut problems = hotline_kit::error::Problems::default();
        problems.prose("/text", text, 1600);
        if text.trim().is_empty() {
            problems.add("/text", "must not be empty");
        }
        if sms_text::split(text).parts.len() > self.settings.sms.max_parts {
            problems.add(
                "/text",
                format!("must fit {} parts", self.settings.sms.max_parts),
            );
        }
        let unique: std::collections::BTreeSet<Uuid> = assignee_ids.iter().copied().collect();
        if unique.is_empty() || unique.len() > MAX_NOTICE || unique.len() != assignee_ids.len() {
            problems.add(
                "/assignee_ids",
                format!("must name 1 to {MAX_NOTICE} technicians, each once"),
            );
        }
        problems.finish(()).map_err(ApiError::invalid)?;
        let technicians = assignee::Entity::find()
            .filter(assignee::Column::Id.is_in(unique.iter().copied()))
            .filter(assignee::Column::Active.eq(true))
            .filter(assignee::Column::Kind.eq(AssigneeKind::Technician.as_str()))
            .filter(assignee::Column::Phone.is_not_null())
            .all(&self.db)
            .await?;
        if technicians.len() != unique.len() {
            let found: std::collections::BTreeSet<Uuid> =
                technicians.iter().map(|t| t.id).collect();
            let missing: Vec<String> = unique.difference(&found).map(ToString::to_string).collect();
            return Err(ApiError::invalid_field(
                "/assignee_ids",
                format!(
                    "not active technicians with a phone: {}",
                    missing.join(", ")
                ),
            ));
        }
        let (ids, rows): (Vec<Uuid>, Vec<_>) = technicians
            .iter()
            .filter_map(|t| {
                let id = Uuid::now_v7();
                let phone = t.phone.as_deref()?;
                Some((
                    id,
                    self.sms_row(id, None, Some(t.id), Purpose::Notice, phone, text),
                ))
            })
            .unzip();
        let txn = self.db.begin().await?;
        // In slices: a statement's bound values are limited (SQLite's 32,766).
        for chunk in rows.chunks(1000) {
            sms_message::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(NoticeView { queued: ids })
    }

    /// The text's steps `kinds` as events, in the transaction that took them;
    /// whether there were any.
    pub(super) async fn announce_sms<C: ConnectionTrait>(
        &self,
        txn: &C,
        kinds: &[&str],
        message: &sms_message::Model,
        at: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        if kinds.is_empty() {
            return Ok(false);
        }
        let batch = kinds
            .iter()
            .map(|kind| events::sms(&self.outbox, kind, message, at))
            .collect();
        self.outbox.enqueue_many(txn, batch).await?;
        Ok(true)
    }

    pub async fn list_sms(
        &self,
        principal: &Principal,
        work_order: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u64>,
    ) -> ApiResult<Page<SmsMessageView>> {
        principal.require_any(STAFF)?;
        let mut condition = Condition::all();
        if let Some(reference) = work_order {
            let order = self
                .find_order(&self.db, &Scope::Staff, reference, false)
                .await?;
            condition = condition.add(sms_message::Column::WorkOrderId.eq(order.id));
        }
        if let Some((at, id)) = cursor
            .map(rest::decode_cursor::<(DateTime<Utc>, Uuid)>)
            .transpose()?
        {
            condition = condition.add(
                Condition::any()
                    .add(sms_message::Column::CreatedAt.lt(at))
                    .add(
                        Condition::all()
                            .add(sms_message::Column::CreatedAt.eq(at))
                            .add(sms_message::Column::Id.lt(id)),
                    ),
            );
        }
        let limit = rest::page_limit(limit);
        let rows = sms_message::Entity::find()
            .filter(condition)
            .order_by_desc(sms_message::Column::CreatedAt)
            .order_by_desc(sms_message::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        Ok(Page::cut(rows, limit, |m| (m.created_at, m.id)).map(SmsMessageView::from))
    }

    /// A text from a phone, as the sink (or later an SMSC) hands it over: a
    /// registered technician's command about an order dispatched to them
    /// takes effect as their step, and they get a reply; an unknown sender's
    /// text is kept and answered with nothing.
    pub async fn inbound_sms(
        &self,
        principal: &Principal,
        provider: &str,
        from: &str,
        text: &str,
    ) -> ApiResult<InboundView> {
        principal.require_any(SINK_PLAYERS)?;
        self.receive_sms(provider, from, text).await
    }

    /// A text from a phone as a provider received it (the sink's player, an
    /// SMSC's `deliver_sm`).
    pub async fn receive_sms(
        &self,
        provider: &str,
        from: &str,
        text: &str,
    ) -> ApiResult<InboundView> {
        let mut problems = hotline_kit::error::Problems::default();
        problems.text("/from", from, 32);
        problems.prose("/text", text, 1600);
        problems.finish(()).map_err(ApiError::invalid)?;
        let sender = e164(from, self.settings.region).unwrap_or_else(|| from.trim().to_owned());
        let technician = assignee::Entity::find()
            .filter(assignee::Column::Phone.eq(sender.clone()))
            .filter(assignee::Column::Active.eq(true))
            .filter(assignee::Column::Kind.eq(AssigneeKind::Technician.as_str()))
            .one(&self.db)
            .await?;
        let parsed = sms_command::parse(text);
        let received = InboundRow {
            provider,
            from: &sender,
            text,
            technician: technician.as_ref().map(|t| t.id),
            command: parsed.as_ref().ok().map(command_name),
        };
        let Some(technician) = technician else {
            tracing::info!(from = %mask::keep_ends(&sender, 3, 4), "sms from an unknown sender kept");
            return Ok(self
                .record_inbound(&self.db, received, None, "unknown_sender", None)
                .await?);
        };
        let command = match parsed {
            Ok(command) => command,
            Err(unreadable) => {
                return self
                    .refuse_inbound(received, &technician, None, unreadable.as_str())
                    .await;
            }
        };
        let txn = self.db.begin().await?;
        let order = match self
            .find_order(&txn, &Scope::Staff, command.number(), true)
            .await
        {
            Ok(order) if order.assignee_id == Some(technician.id) => order,
            Ok(order) => {
                drop(txn);
                return self
                    .refuse_inbound(received, &technician, Some(&order), "not_yours")
                    .await;
            }
            Err(_) => {
                drop(txn);
                return self
                    .refuse_inbound(received, &technician, None, "no_such_order")
                    .await;
            }
        };
        match self
            .apply_command(&txn, &order, &technician, &command)
            .await
        {
            Ok((outcome, updated)) => {
                let result = match command {
                    Command::Accept { .. } => "已接单",
                    Command::Done { .. } => "已完成",
                    Command::Decline { .. } => "已拒单",
                };
                let body = self.body(
                    Purpose::ReplyOk,
                    &[("number", order.number.as_str()), ("result", result)],
                );
                let reply = self
                    .queue_sms(
                        &txn,
                        Some(order.id),
                        Some(technician.id),
                        Purpose::ReplyOk,
                        &sender,
                        &body,
                    )
                    .await?;
                let view = self
                    .record_inbound(&txn, received, Some(updated.id), outcome, Some(reply))
                    .await?;
                txn.commit().await?;
                self.outbox.wake();
                Ok(view)
            }
            Err(error) => {
                drop(txn);
                let kind = error.kind.to_string();
                self.refuse_inbound(received, &technician, Some(&order), &kind)
                    .await
            }
        }
    }

    /// The command's steps on the locked order, as the technician (actor
    /// kind `sms`). One already in effect changes nothing: a redelivered
    /// text is harmless.
    async fn apply_command<C: ConnectionTrait>(
        &self,
        txn: &C,
        order: &work_order::Model,
        technician: &assignee::Model,
        command: &Command,
    ) -> ApiResult<(&'static str, work_order::Model)> {
        let actor_id = technician.id.to_string();
        let actor = (actor_id.as_str(), "sms");
        let scope = Scope::Staff;
        let status = status_of(order);
        match command {
            Command::Accept { .. }
                if matches!(
                    status,
                    Status::Accepted
                        | Status::InProgress
                        | Status::WaitingCustomer
                        | Status::WaitingParts
                ) =>
            {
                Ok(("already_applied", order.clone()))
            }
            Command::Accept { .. } => {
                let step = Step::new(Action::Accept);
                let updated = self
                    .apply_step(txn, &scope, order, &step, actor, None)
                    .await?;
                Ok(("applied", updated))
            }
            Command::Done { code, .. } => {
                if status == Status::Resolved && order.resolution_code.as_deref() == Some(code) {
                    return Ok(("already_applied", order.clone()));
                }
                // DONE on an order not yet accepted accepts it first.
                let accepted = if status == Status::Dispatched {
                    let step = Step::new(Action::Accept);
                    self.apply_step(txn, &scope, order, &step, actor, None)
                        .await?
                } else {
                    order.clone()
                };
                let mut step = Step::new(Action::Resolve);
                step.resolution_code = Some(code.clone());
                let resolved = self
                    .apply_step(txn, &scope, &accepted, &step, actor, None)
                    .await?;
                Ok(("applied", resolved))
            }
            Command::Decline { reason, .. } => {
                let mut step = Step::new(Action::Decline);
                step.reason = Some(reason.chars().take(500).collect());
                let declined = self
                    .apply_step(txn, &scope, order, &step, actor, None)
                    .await?;
                let next = self
                    .dispatch_by_rules(txn, declined, actor, Trigger::Declined)
                    .await?;
                Ok(("applied", next))
            }
        }
    }

    /// A command that took no effect: kept, and the technician told why.
    async fn refuse_inbound(
        &self,
        received: InboundRow<'_>,
        technician: &assignee::Model,
        order: Option<&work_order::Model>,
        outcome: &str,
    ) -> ApiResult<InboundView> {
        let txn = self.db.begin().await?;
        let body = self.body(
            Purpose::ReplyError,
            &[
                ("number", order.map_or("", |o| o.number.as_str())),
                ("error", explain(outcome)),
            ],
        );
        let to = received.from.to_owned();
        let reply = self
            .queue_sms(
                &txn,
                order.map(|o| o.id),
                Some(technician.id),
                Purpose::ReplyError,
                &to,
                &body,
            )
            .await?;
        let view = self
            .record_inbound(&txn, received, order.map(|o| o.id), outcome, Some(reply))
            .await?;
        txn.commit().await?;
        Ok(view)
    }

    async fn record_inbound<C: ConnectionTrait>(
        &self,
        conn: &C,
        received: InboundRow<'_>,
        order: Option<Uuid>,
        outcome: &str,
        reply: Option<Uuid>,
    ) -> Result<InboundView, DbErr> {
        let row = sms_inbound::Entity::insert(sms_inbound::ActiveModel {
            id: Set(Uuid::now_v7()),
            provider: Set(received.provider.to_owned()),
            from_phone: Set(received.from.to_owned()),
            body: Set(received.text.to_owned()),
            received_at: Set(self.clock.now()),
            assignee_id: Set(received.technician),
            work_order_id: Set(order),
            command: Set(received.command.map(str::to_owned)),
            outcome: Set(outcome.to_owned()),
            reply_id: Set(reply),
        })
        .exec_with_returning(conn)
        .await?;
        Ok(row.into())
    }
}

/// A received text, before it is stored with its outcome.
struct InboundRow<'a> {
    provider: &'a str,
    from: &'a str,
    text: &'a str,
    technician: Option<Uuid>,
    command: Option<&'static str>,
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Accept { .. } => "accept",
        Command::Done { .. } => "done",
        Command::Decline { .. } => "decline",
    }
}
