//! Durable timers: deadlines kept as rows of the service's `timer` table,
//! written in the transaction of the change that sets them, so they survive
//! restarts, deploys and a replica's death.
//!
//! Whoever holds the service's [lease](crate::lease) loads every timer when it
//! takes over, keeps them in a [`TimerWheel`], fires the due ones and deletes
//! each in the (fenced) transaction of its effect: a timer fires once, on one
//! replica, whichever replica is up. A timer is keyed by what it is about (a
//! task, an order), so setting it again replaces it.
//!
//! A service whose replicas all write timers polls them instead: the holder
//! reads the [`due`] ones and fires each with [`take`], which deletes it only
//! if nobody moved it meanwhile.

use std::collections::{BTreeSet, HashMap};

use crate::lease::FencedWrite;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "timer")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub kind: String,
        pub due_at_ms: i64,
        pub payload: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One deadline: what it is about (`key`), what to do (`kind`, `payload`) and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timer {
    pub key: String,
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub payload: String,
}

impl Timer {
    fn due_ms(&self) -> i64 {
        self.due_at.timestamp_millis()
    }
}

impl From<entity::Model> for Timer {
    fn from(row: entity::Model) -> Self {
        Self {
            key: row.key,
            kind: row.kind,
            due_at: DateTime::from_timestamp_millis(row.due_at_ms).unwrap_or_default(),
            payload: row.payload,
        }
    }
}

/// Rows per statement, under SQLite's and PostgreSQL's bind-parameter limits.
const CHUNK: usize = 1000;

fn row(timer: &Timer) -> entity::ActiveModel {
    entity::ActiveModel {
        key: Set(timer.key.clone()),
        kind: Set(timer.kind.clone()),
        due_at_ms: Set(timer.due_ms()),
        payload: Set(timer.payload.clone()),
    }
}

/// Sets these timers (replacing any with the same key), inside the change's transaction.
pub async fn schedule<C: ConnectionTrait>(conn: &C, timers: &[Timer]) -> Result<(), DbErr> {
    for chunk in timers.chunks(CHUNK) {
        entity::Entity::insert_many(chunk.iter().map(row))
            .on_conflict(
                OnConflict::column(entity::Column::Key)
                    .update_columns([
                        entity::Column::Kind,
                        entity::Column::DueAtMs,
                        entity::Column::Payload,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// [`schedule`] and [`cancel`] as parts of a fenced write (PostgreSQL); a key
/// may be in one of the two lists only.
pub fn fenced(write: &mut FencedWrite, set: &[Timer], cancel: &[String]) -> Result<(), DbErr> {
    write.upsert(
        set.iter().map(row),
        &[
            entity::Column::Kind,
            entity::Column::DueAtMs,
            entity::Column::Payload,
        ],
    )?;
    write.delete::<entity::Entity>(entity::Column::Key, cancel);
    Ok(())
}

/// Removes the timers with these keys (fired, or no longer wanted).
pub async fn cancel<C: ConnectionTrait>(conn: &C, keys: &[String]) -> Result<(), DbErr> {
    for chunk in keys.chunks(CHUNK) {
        entity::Entity::delete_many()
            .filter(entity::Column::Key.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Up to `limit` timers due at `now`, the earliest first.
pub async fn due<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Timer>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    Ok(entity::Entity::find()
        .filter(entity::Column::DueAtMs.lte(now.timestamp_millis()))
        .order_by_asc(entity::Column::DueAtMs)
        .order_by_asc(entity::Column::Key)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(Timer::from)
        .collect())
}

/// Deletes `timer` as it was read, inside the transaction of its effect;
/// `false` when it was moved or fired meanwhile (then nothing is to be done).
pub async fn take<C: ConnectionTrait>(conn: &C, timer: &Timer) -> Result<bool, DbErr> {
    let deleted = entity::Entity::delete_many()
        .filter(entity::Column::Key.eq(timer.key.clone()))
        .filter(entity::Column::DueAtMs.eq(timer.due_ms()))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// Every timer, for a replica taking the lease over.
pub async fn load_all<C: ConnectionTrait>(conn: &C) -> Result<Vec<Timer>, DbErr> {
    Ok(entity::Entity::find()
        .all(conn)
        .await?
        .into_iter()
        .map(Timer::from)
        .collect())
}

/// The lease holder's timers in memory, ordered by due time; one per key.
#[derive(Debug, Default)]
pub struct TimerWheel {
    by_due: BTreeSet<(i64, String)>,
    by_key: HashMap<String, Timer>,
}

impl TimerWheel {
    pub fn new(timers: impl IntoIterator<Item = Timer>) -> Self {
        let mut wheel = Self::default();
        for timer in timers {
            wheel.set(timer);
        }
        wheel
    }

    /// Sets a timer, replacing the one with the same key.
    pub fn set(&mut self, timer: Timer) {
        self.remove(&timer.key);
        self.by_due.insert((timer.due_ms(), timer.key.clone()));
        self.by_key.insert(timer.key.clone(), timer);
    }

    pub fn remove(&mut self, key: &str) -> Option<Timer> {
        let timer = self.by_key.remove(key)?;
        self.by_due.remove(&(timer.due_ms(), timer.key.clone()));
        Some(timer)
    }

    pub fn get(&self, key: &str) -> Option<&Timer> {
        self.by_key.get(key)
    }

    /// When the next timer is due.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.by_due
            .first()
            .and_then(|(due, _)| DateTime::from_timestamp_millis(*due))
    }

    /// Takes out every timer due at `now`, earliest first.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Timer> {
        let now = now.timestamp_millis();
        let mut due = Vec::new();
        while let Some((at, _)) = self.by_due.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.by_due.pop_first()
                && let Some(timer) = self.by_key.remove(&key)
            {
                due.push(timer);
            }
        }
        due
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(key: &str, ms: i64) -> Timer {
        Timer {
            key: key.into(),
            kind: "k".into(),
            due_at: DateTime::from_timestamp_millis(ms).unwrap_or_default(),
            payload: String::new(),
        }
    }

    #[test]
    fn the_wheel_fires_due_timers_in_order_and_a_key_once() {
        let mut wheel = TimerWheel::new([timer("b", 20), timer("a", 10), timer("c", 30)]);
        wheel.set(timer("c", 5));
        assert_eq!(wheel.len(), 3);
        assert_eq!(wheel.next_due().map(|t| t.timestamp_millis()), Some(5));
        let due = wheel.take_due(DateTime::from_timestamp_millis(20).unwrap_or_default());
        let keys: Vec<&str> = due.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["c", "a", "b"]);
        assert!(wheel.is_empty());
        assert!(wheel.remove("a").is_none());
    }
}
