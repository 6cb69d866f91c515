//! Routing's tables (sea-orm entities): what the router reads back when a
//! replica takes it over, and writes once per batch.

pub mod activity;
pub mod agent;
pub mod entry_rule;
pub mod peer_key;
pub mod queue;
pub mod reservation;
pub mod task;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use hotline_kit::lease::FencedWrite;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::OnConflict,
};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::domain::{
    model::{self, Agent, EntryRule, Queue, Task, TaskStatus},
    router::{Changes, Recent, ReservationRecord, Snapshot},
};

/// Rows per statement: under SQLite's bind-parameter limit for the widest table.
const CHUNK: usize = 400;

fn corrupt(what: &str, error: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("unreadable {what}: {error}"))
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, DbErr> {
    serde_json::to_value(value).map_err(|error| corrupt("value", error))
}

fn from_json<T: DeserializeOwned>(what: &str, value: serde_json::Value) -> Result<T, DbErr> {
    serde_json::from_value(value).map_err(|error| corrupt(what, error))
}

fn parse_name<T: DeserializeOwned>(what: &str, name: &str) -> Result<T, DbErr> {
    from_json(what, serde_json::Value::String(name.to_owned()))
}

const ACTIVE: [&str; 4] = ["pending", "reserved", "assigned", "wrapping"];

pub fn task_row(task: &Task) -> Result<task::ActiveModel, DbErr> {
    Ok(task::ActiveModel {
        id: Set(task.id),
        external_id: Set(task.external_id.clone()),
        kind: Set(task.kind.as_str().to_owned()),
        channel: Set(task.channel.as_str().to_owned()),
        queue_id: Set(task.queue_id),
        status: Set(task.status.as_str().to_owned()),
        priority: Set(task.priority),
        attributes: Set(serde_json::Value::Object(task.attributes.clone())),
        calling_number: Set(task.calling_number.clone()),
        dialled_number: Set(task.dialled_number.clone()),
        ivr: Set(to_json(&task.ivr)?),
        customer: Set(task.customer.clone()),
        customer_id: Set(task.customer_id.clone()),
        created_at: Set(task.created_at),
        queued_at: Set(task.queued_at),
        rank_at: Set(task.rank_at),
        step: Set(i32::try_from(task.step).unwrap_or(i32::MAX)),
        reservation: Set(task.reservation.as_ref().map(to_json).transpose()?),
        first_offered_at: Set(task.first_offered_at),
        agent_id: Set(task.agent_id),
        answered_at: Set(task.answered_at),
        assigned_at: Set(task.assigned_at),
        ended_at: Set(task.ended_at),
        wrap_up_until: Set(task.wrap_up_until),
        completed_at: Set(task.completed_at),
        outcome: Set(task.outcome.clone()),
        declined_by: Set(to_json(&task.declined_by)?),
        visited: Set(to_json(&task.visited)?),
        callback: Set(task.callback.as_ref().map(to_json).transpose()?),
        not_before: Set(task.not_before),
        resumed_from: Set(task.resumed_from),
        target_agent: Set(task.target_agent),
        version: Set(task.version),
        updated_at: Set(task.updated_at),
    })
}

pub fn task_of(row: task::Model) -> Result<Task, DbErr> {
    Ok(Task {
        id: row.id,
        external_id: row.external_id,
        kind: parse_name("task kind", &row.kind)?,
        channel: parse_name("channel", &row.channel)?,
        queue_id: row.queue_id,
        status: TaskStatus::parse(&row.status)
            .ok_or_else(|| corrupt("task status", &row.status))?,
        priority: row.priority,
        attributes: from_json("attributes", row.attributes)?,
        calling_number: row.calling_number,
        dialled_number: row.dialled_number,
        ivr: from_json("ivr", row.ivr)?,
        customer: row.customer,
        customer_id: row.customer_id,
        created_at: row.created_at,
        queued_at: row.queued_at,
        rank_at: row.rank_at,
        step: u32::try_from(row.step).unwrap_or(0),
        reservation: row
            .reservation
            .map(|r| from_json("reservation", r))
            .transpose()?,
        first_offered_at: row.first_offered_at,
        agent_id: row.agent_id,
        answered_at: row.answered_at,
        assigned_at: row.assigned_at,
        ended_at: row.ended_at,
        wrap_up_until: row.wrap_up_until,
        completed_at: row.completed_at,
        outcome: row.outcome,
        declined_by: from_json("declined_by", row.declined_by)?,
        visited: from_json("visited", row.visited)?,
        callback: row.callback.map(|c| from_json("callback", c)).transpose()?,
        not_before: row.not_before,
        resumed_from: row.resumed_from,
        target_agent: row.target_agent,
        version: row.version,
        updated_at: row.updated_at,
    })
}

fn agent_of(row: agent::Model) -> Result<Agent, DbErr> {
    Ok(Agent {
        id: row.id,
        spec: from_json("agent", row.spec)?,
        activity: row.activity,
        activity_since: row.activity_since,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn queue_of(row: queue::Model) -> Result<Queue, DbErr> {
    Ok(Queue {
        id: row.id,
        spec: from_json("queue", row.spec)?,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Midnight of the center's day containing `now`.
pub fn start_of_day(now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    let date = now.with_timezone(&zone).date_naive();
    zone.from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or(now, |midnight| midnight.with_timezone(&Utc))
}

/// Everything a replica taking the router over needs.
pub async fn load<C: ConnectionTrait>(
    db: &C,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<Snapshot, DbErr> {
    let activities = activity::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|row| model::Activity {
            name: row.name,
            available: row.available,
            description: row.description,
        })
        .collect();
    let agents = agent::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(agent_of)
        .collect::<Result<_, _>>()?;
    let queues = queue::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(queue_of)
        .collect::<Result<_, _>>()?;
    let rules = entry_rule::Entity::find()
        .order_by_asc(entry_rule::Column::Position)
        .all(db)
        .await?
        .into_iter()
        .map(|row| from_json::<EntryRule>("entry rule", row.rule))
        .collect::<Result<_, _>>()?;
    let active = task::Entity::find()
        .filter(task::Column::Status.is_in(ACTIVE))
        .all(db)
        .await?
        .into_iter()
        .map(task_of)
        .collect::<Result<_, _>>()?;
    // Today's figures, and handle times and resumable callers from the last day.
    let since = start_of_day(now, zone).min(now - chrono::Duration::hours(24));
    let recent = task::Entity::find()
        .filter(task::Column::Status.is_not_in(ACTIVE))
        .filter(task::Column::CreatedAt.gte(since))
        .all(db)
        .await?
        .into_iter()
        .map(|row| task_of(row).map(|task| Recent::of(&task)))
        .collect::<Result<_, _>>()?;
    let timers = hotline_kit::timers::load_all(db).await?;
    Ok(Snapshot {
        activities,
        agents,
        queues,
        rules,
        active,
        recent,
        timers,
    })
}

/// Writes what one batch changed (inside the leader's fenced transaction).
pub async fn persist<C: ConnectionTrait>(db: &C, changes: &Changes) -> Result<(), DbErr> {
    if !changes.activities.is_empty() {
        let rows = changes.activities.iter().map(|a| activity::ActiveModel {
            name: Set(a.name.clone()),
            available: Set(a.available),
            description: Set(a.description.clone()),
        });
        activity::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(activity::Column::Name)
                    .update_columns([activity::Column::Available, activity::Column::Description])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    if !changes.deleted_activities.is_empty() {
        activity::Entity::delete_many()
            .filter(activity::Column::Name.is_in(changes.deleted_activities.iter().cloned()))
            .exec(db)
            .await?;
    }
    if !changes.queues.is_empty() {
        let mut rows = Vec::with_capacity(changes.queues.len());
        for q in &changes.queues {
            rows.push(queue::ActiveModel {
                id: Set(q.id),
                name: Set(q.spec.name.clone()),
                spec: Set(to_json(&q.spec)?),
                version: Set(q.version),
                created_at: Set(q.created_at),
                updated_at: Set(q.updated_at),
            });
        }
        queue::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(queue::Column::Id)
                    .update_columns([
                        queue::Column::Name,
                        queue::Column::Spec,
                        queue::Column::Version,
                        queue::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    if !changes.deleted_queues.is_empty() {
        queue::Entity::delete_many()
            .filter(queue::Column::Id.is_in(changes.deleted_queues.iter().copied()))
            .exec(db)
            .await?;
    }
    for chunk in changes.agents.chunks(CHUNK) {
        let rows = chunk.iter().map(agent_row).collect::<Result<Vec<_>, _>>()?;
        agent::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(agent::Column::Id)
                    .update_columns(AGENT_UPDATE.iter().copied())
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    if !changes.deleted_agents.is_empty() {
        agent::Entity::delete_many()
            .filter(agent::Column::Id.is_in(changes.deleted_agents.iter().copied()))
            .exec(db)
            .await?;
    }
    if let Some(rules) = &changes.rules {
        entry_rule::Entity::delete_many().exec(db).await?;
        if !rules.is_empty() {
            let mut rows = Vec::with_capacity(rules.len());
            for (position, rule) in rules.iter().enumerate() {
                rows.push(entry_rule::ActiveModel {
                    position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                    rule: Set(to_json(rule)?),
                });
            }
            entry_rule::Entity::insert_many(rows)
                .exec_without_returning(db)
                .await?;
        }
    }
    for chunk in changes.tasks.chunks(CHUNK) {
        let rows = chunk.iter().map(task_row).collect::<Result<Vec<_>, _>>()?;
        task::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(task::Column::Id)
                    .update_columns(task_update_columns())
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    for chunk in changes.reservations.chunks(CHUNK) {
        let rows = latest_per_reservation(chunk)
            .into_iter()
            .map(reservation_row);
        reservation::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(reservation::Column::Id)
                    .update_columns(RESERVATION_UPDATE.iter().copied())
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    hotline_kit::timers::schedule(db, &changes.timers_set).await?;
    hotline_kit::timers::cancel(db, &changes.timers_cancel).await?;
    Ok(())
}

/// [`persist`] as parts of one fenced statement (PostgreSQL), for changes that
/// do not [`Changes::changes_set_up`] (those take [`persist`]'s transaction). Each row is in it once: one part per table, a
/// reservation's last state only, a timer either set or cancelled.
pub fn persist_fenced(write: &mut FencedWrite, changes: &Changes) -> Result<(), DbErr> {
    let agents = changes
        .agents
        .iter()
        .map(agent_row)
        .collect::<Result<Vec<_>, _>>()?;
    write.upsert(agents, AGENT_UPDATE)?;
    let tasks = changes
        .tasks
        .iter()
        .map(task_row)
        .collect::<Result<Vec<_>, _>>()?;
    write.upsert(tasks, &task_update_columns())?;
    let reservations = latest_per_reservation(&changes.reservations)
        .into_iter()
        .map(reservation_row);
    write.upsert(reservations, RESERVATION_UPDATE)?;
    hotline_kit::timers::fenced(write, &changes.timers_set, &changes.timers_cancel)
}

fn agent_row(a: &Agent) -> Result<agent::ActiveModel, DbErr> {
    Ok(agent::ActiveModel {
        id: Set(a.id),
        name: Set(a.spec.name.clone()),
        login: Set(a.spec.login.clone()),
        spec: Set(to_json(&a.spec)?),
        activity: Set(a.activity.clone()),
        activity_since: Set(a.activity_since),
        version: Set(a.version),
        created_at: Set(a.created_at),
        updated_at: Set(a.updated_at),
    })
}

const AGENT_UPDATE: &[agent::Column] = &[
    agent::Column::Name,
    agent::Column::Login,
    agent::Column::Spec,
    agent::Column::Activity,
    agent::Column::ActivitySince,
    agent::Column::Version,
    agent::Column::UpdatedAt,
];

fn reservation_row(r: &ReservationRecord) -> reservation::ActiveModel {
    reservation::ActiveModel {
        id: Set(r.id),
        task_id: Set(r.task_id),
        agent_id: Set(r.agent_id),
        status: Set(r.status.to_owned()),
        offered_at: Set(r.offered_at),
        expires_at: Set(r.expires_at),
        responded_at: Set(r.responded_at),
        reason: Set(r.reason.clone()),
    }
}

/// An offer's outcome is all that changes once it is written.
const RESERVATION_UPDATE: &[reservation::Column] = &[
    reservation::Column::Status,
    reservation::Column::RespondedAt,
    reservation::Column::Reason,
];

/// One row per reservation, its last state: an upsert may not name a row twice.
fn latest_per_reservation(records: &[ReservationRecord]) -> Vec<&ReservationRecord> {
    let mut latest: Vec<&ReservationRecord> = Vec::with_capacity(records.len());
    for record in records {
        match latest.iter_mut().find(|r| r.id == record.id) {
            Some(existing) => *existing = record,
            None => latest.push(record),
        }
    }
    latest
}

fn task_update_columns() -> Vec<task::Column> {
    use task::Column as C;
    vec![
        C::ExternalId,
        C::Kind,
        C::Channel,
        C::QueueId,
        C::Status,
        C::Priority,
        C::Attributes,
        C::CallingNumber,
        C::DialledNumber,
        C::Ivr,
        C::Customer,
        C::CustomerId,
        C::QueuedAt,
        C::RankAt,
        C::Step,
        C::Reservation,
        C::FirstOfferedAt,
        C::AgentId,
        C::AnsweredAt,
        C::AssignedAt,
        C::EndedAt,
        C::WrapUpUntil,
        C::CompletedAt,
        C::Outcome,
        C::DeclinedBy,
        C::Visited,
        C::Callback,
        C::NotBefore,
        C::ResumedFrom,
        C::TargetAgent,
        C::Version,
        C::UpdatedAt,
    ]
}

pub async fn find_task<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Option<Task>, DbErr> {
    task::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(task_of)
        .transpose()
}

/// The latest task with this external id (a call id).
pub async fn find_by_external<C: ConnectionTrait>(
    db: &C,
    external_id: &str,
) -> Result<Option<Task>, DbErr> {
    task::Entity::find()
        .filter(task::Column::ExternalId.eq(external_id))
        .order_by_desc(task::Column::CreatedAt)
        .one(db)
        .await?
        .map(task_of)
        .transpose()
}

/// What a task list may be narrowed to.
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub queue_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// Newest first; `after` is the (created_at, id) of the previous page's last task.
pub async fn list_tasks<C: ConnectionTrait>(
    db: &C,
    filter: &TaskFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<Task>, DbErr> {
    let mut query = task::Entity::find();
    if let Some(status) = filter.status {
        query = query.filter(task::Column::Status.eq(status.as_str()));
    }
    if let Some(queue) = filter.queue_id {
        query = query.filter(task::Column::QueueId.eq(queue));
    }
    if let Some(agent) = filter.agent_id {
        query = query.filter(task::Column::AgentId.eq(agent));
    }
    if let Some(at) = filter.created_after {
        query = query.filter(task::Column::CreatedAt.gte(at));
    }
    if let Some(at) = filter.created_before {
        query = query.filter(task::Column::CreatedAt.lt(at));
    }
    if let Some((created_at, id)) = after {
        query = query.filter(
            Condition::any()
                .add(task::Column::CreatedAt.lt(created_at))
                .add(
                    Condition::all()
                        .add(task::Column::CreatedAt.eq(created_at))
                        .add(task::Column::Id.lt(id)),
                ),
        );
    }
    query
        .order_by_desc(task::Column::CreatedAt)
        .order_by_desc(task::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(task_of)
        .collect()
}

/// The secret replicas present to each other's `RouterPeerService`.
pub async fn peer_key<C: ConnectionTrait>(db: &C) -> Result<String, DbErr> {
    peer_key::Entity::find_by_id(1)
        .one(db)
        .await?
        .map(|row| row.secret)
        .ok_or_else(|| DbErr::RecordNotFound("routing's peer key".to_owned()))
}
