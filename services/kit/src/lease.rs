//! Database leases: one holder at a time across replicas, with expiry and a
//! fencing epoch.
//!
//! A lease is one row of the service's `lease` table. Taking it over bumps its
//! `epoch`; the holder's writes check its own epoch inside the very transaction
//! that makes them ([`fence`]), and that check takes the lease row's lock on
//! PostgreSQL. So a holder that stalled past its expiry — a GC-like pause, a
//! partition, a clock running fast on another replica — cannot commit anything
//! once another replica has taken over: correctness never rests on clocks or
//! on timers firing, only the time to take over does.
//!
//! Expiry is measured by the database's clock on PostgreSQL (one clock for all
//! replicas) and by the process's own on SQLite (one process).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityName,
    EntityTrait, IdenStatic, Iterable, PrimaryKeyToColumn, Statement, Value,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A lease held: its name, holder and the epoch that fences its writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
}

/// Who holds a lease now, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub holder: String,
    pub epoch: i64,
    /// Where the holder can be reached (e.g. its gRPC address), as it advertised.
    pub address: String,
    pub expired: bool,
}

/// The current time in milliseconds on the clock that measures expiry.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "sea-orm backends are non-exhaustive"
)]
fn now_sql(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => "(extract(epoch from clock_timestamp()) * 1000)::bigint",
        _ => "$now",
    }
}

/// `sql` with `$now` made the backend's clock, and `$n` placeholders as the
/// backend writes them; `values` gets the process clock appended for SQLite.
fn statement(backend: DatabaseBackend, sql: &str, mut values: Vec<Value>) -> Statement {
    let sql = if backend == DatabaseBackend::Postgres {
        sql.replace("$now", now_sql(backend))
    } else {
        values.push(Utc::now().timestamp_millis().into());
        let now_index = values.len();
        sql.replace("$now", &format!("${now_index}"))
    };
    Statement::from_sql_and_values(backend, sql, values)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Takes `name` for `holder` if nobody holds it or its holder's time ran out.
/// Returns the grant with its new epoch, or `None` when someone else holds it.
pub async fn try_acquire<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    holder: &str,
    address: &str,
    ttl: Duration,
) -> Result<Option<Grant>, DbErr> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(statement(
            backend,
            "INSERT INTO lease (name, holder, epoch, expires_at_ms, address, acquired_at_ms) \
             VALUES ($1, $2, 1, $now + $3, $4, $now) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = lease.epoch + 1, \
               expires_at_ms = excluded.expires_at_ms, address = excluded.address, \
               acquired_at_ms = excluded.acquired_at_ms \
             WHERE lease.expires_at_ms < excluded.acquired_at_ms \
             RETURNING epoch",
            vec![
                name.into(),
                holder.into(),
                millis(ttl).into(),
                address.into(),
            ],
        ))
        .await?;
    row.map(|row| {
        Ok(Grant {
            name: name.to_owned(),
            holder: holder.to_owned(),
            epoch: row.try_get("", "epoch")?,
        })
    })
    .transpose()
}

/// Extends `grant` by `ttl` from now if it is still the current one. Inside a
/// transaction this is the fence: on PostgreSQL it holds the lease row's lock
/// until commit, so no other replica can take the lease over before the
/// transaction's writes are in.
pub async fn renew<C: ConnectionTrait>(
    conn: &C,
    grant: &Grant,
    ttl: Duration,
) -> Result<bool, DbErr> {
    let backend = conn.get_database_backend();
    let result = conn
        .execute_raw(statement(
            backend,
            "UPDATE lease SET expires_at_ms = $now + $1 \
             WHERE name = $2 AND holder = $3 AND epoch = $4 AND expires_at_ms >= $now",
            vec![
                millis(ttl).into(),
                grant.name.clone().into(),
                grant.holder.clone().into(),
                grant.epoch.into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Why a fenced transaction must not commit.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error("lease {0} is no longer held by this replica")]
    Lost(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Renews `grant` inside `txn`, failing when it is no longer held: call it first
/// in every transaction whose writes only the holder may make.
pub async fn fence<C: ConnectionTrait>(
    txn: &C,
    grant: &Grant,
    ttl: Duration,
) -> Result<(), FenceError> {
    if renew(txn, grant, ttl).await? {
        Ok(())
    } else {
        Err(FenceError::Lost(grant.name.clone()))
    }
}

/// A fenced write as one PostgreSQL statement: the lease's renewal and every
/// insert, upsert and delete of a batch as data-modifying CTEs, each guarded
/// by the renewal's result, so nothing is written unless the lease is still
/// held. One round trip and an implicit transaction instead of `BEGIN`, a
/// statement per table and `COMMIT`. Rows travel as one JSON parameter per
/// table, so the statement's text depends on which parts it has, not on how
/// many rows: PostgreSQL parses and plans it once per connection.
///
/// The parts of one statement see the same snapshot and may not touch a row
/// twice: each row appears once, in one part.
pub struct FencedWrite {
    lease: String,
    parts: Vec<String>,
    values: Vec<Value>,
}

/// Stands for the fence's condition in a part's SQL.
pub const FENCED: &str = "EXISTS (SELECT 1 FROM fence)";

impl FencedWrite {
    pub fn new(grant: &Grant, ttl: Duration) -> Self {
        let mut write = Self {
            lease: grant.name.clone(),
            parts: Vec::new(),
            values: Vec::new(),
        };
        let now = now_sql(DatabaseBackend::Postgres);
        let ttl = write.bind(millis(ttl));
        let name = write.bind(grant.name.clone());
        let holder = write.bind(grant.holder.clone());
        let epoch = write.bind(grant.epoch);
        write.parts.push(format!(
            "fence AS (UPDATE lease SET expires_at_ms = {now} + {ttl} \
             WHERE name = {name} AND holder = {holder} AND epoch = {epoch} \
             AND expires_at_ms >= {now} RETURNING 1)"
        ));
        write
    }

    /// The placeholder of `value` in the statement.
    pub fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        format!("${}", self.values.len())
    }

    /// A data-modifying statement that writes only where [`FENCED`] holds.
    pub fn part(&mut self, sql: String) {
        let name = format!("w{}", self.parts.len());
        self.parts.push(format!("{name} AS ({sql})"));
    }

    /// Inserts `rows` or, where one's primary key exists, sets its `update`
    /// columns. A column a row leaves unset takes its default (or NULL).
    pub fn upsert<A: ActiveModelTrait>(
        &mut self,
        rows: impl IntoIterator<Item = A>,
        update: &[<A::Entity as EntityTrait>::Column],
    ) -> Result<(), DbErr> {
        let mut objects = Vec::new();
        for mut row in rows {
            let mut object = serde_json::Map::new();
            for column in <A::Entity as EntityTrait>::Column::iter() {
                if let Some(value) = row.take(column).into_value() {
                    object.insert(column.as_str().to_owned(), json_of(value)?);
                }
            }
            objects.push(serde_json::Value::Object(object));
        }
        if objects.is_empty() {
            return Ok(());
        }
        let table = A::Entity::default().table_name();
        let key = <A::Entity as EntityTrait>::PrimaryKey::iter()
            .map(|key| format!("\"{}\"", key.into_column().as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let set = update
            .iter()
            .map(|column| format!("\"{0}\" = excluded.\"{0}\"", column.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = self.bind(serde_json::Value::Array(objects));
        self.part(format!(
            "INSERT INTO \"{table}\" SELECT * FROM jsonb_populate_recordset(NULL::\"{table}\", {rows}::jsonb) \
             WHERE {FENCED} ON CONFLICT ({key}) DO UPDATE SET {set}"
        ));
        Ok(())
    }

    /// Deletes the rows of `E` whose text `column` is one of `keys`.
    pub fn delete<E: EntityTrait>(&mut self, column: E::Column, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let table = E::default().table_name();
        let column = column.as_str();
        let keys = self.bind(serde_json::json!(keys));
        self.part(format!(
            "DELETE FROM \"{table}\" WHERE \"{column}\" IN \
             (SELECT jsonb_array_elements_text({keys}::jsonb)) AND {FENCED}"
        ));
    }

    /// Runs the statement: `Lost` (and nothing written) when the lease moved.
    pub async fn execute<C: ConnectionTrait>(self, conn: &C) -> Result<(), FenceError> {
        let sql = format!(
            "WITH {} SELECT count(*) AS held FROM fence",
            self.parts.join(", ")
        );
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                sql,
                self.values,
            ))
            .await?;
        let held: i64 = match row {
            Some(row) => row.try_get("", "held")?,
            None => 0,
        };
        if held == 1 {
            Ok(())
        } else {
            Err(FenceError::Lost(self.lease))
        }
    }
}

/// A timestamp as a fenced write's JSON carries it.
pub(crate) fn timestamp_json(at: &chrono::DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A column's value as `jsonb_populate_recordset` reads it back: timestamps
/// in ISO 8601 with the microseconds PostgreSQL keeps (cut, as sqlx cuts them).
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "every other value converts as sea-query converts it"
)]
fn json_of(value: Value) -> Result<serde_json::Value, DbErr> {
    match value {
        Value::ChronoDateTimeUtc(Some(at)) => Ok(timestamp_json(&at).into()),
        Value::Json(Some(json)) => Ok(*json),
        Value::Bytes(_) => Err(DbErr::Custom(
            "a bytes column cannot travel in a fenced write's JSON".to_owned(),
        )),
        other => Ok(sea_orm::sea_query::sea_value_to_json_value(&other)),
    }
}

/// Gives the lease up at once, so another replica need not wait for it to expire.
pub async fn release<C: ConnectionTrait>(conn: &C, grant: &Grant) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    conn.execute_raw(statement(
        backend,
        "UPDATE lease SET expires_at_ms = 0 WHERE name = $1 AND holder = $2 AND epoch = $3",
        vec![
            grant.name.clone().into(),
            grant.holder.clone().into(),
            grant.epoch.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Who holds `name`, if anyone ever took it.
pub async fn holder<C: ConnectionTrait>(conn: &C, name: &str) -> Result<Option<Holder>, DbErr> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(statement(
            backend,
            "SELECT holder, epoch, address, expires_at_ms < $now AS expired FROM lease WHERE name = $1",
            vec![name.into()],
        ))
        .await?;
    row.map(|row| {
        Ok(Holder {
            holder: row.try_get("", "holder")?,
            epoch: row.try_get("", "epoch")?,
            address: row.try_get("", "address")?,
            expired: row.try_get("", "expired")?,
        })
    })
    .transpose()
}

/// How a [`Leadership`] campaigns for its lease.
#[derive(Clone, Debug)]
pub struct Campaign {
    pub name: String,
    /// Unique per process start.
    pub holder: String,
    pub ttl: Duration,
    /// How often the lease is renewed while held, and tried while not.
    pub interval: Duration,
}

impl Campaign {
    /// A campaign of this replica: its holder name is the pod's (`HOSTNAME`)
    /// and a fresh id, unique per process start.
    pub fn for_replica(name: &str, ttl: Duration, interval: Duration) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| name.to_owned());
        Self {
            name: name.to_owned(),
            holder: format!("{host}-{}", uuid::Uuid::new_v4().simple()),
            ttl,
            interval,
        }
    }
}

/// Keeps trying to hold one lease, renewing it while held, and tells whoever
/// watches whether this replica holds it now. Losing it is announced before
/// its expiry could let another replica in (a failed renewal counts as lost
/// once less than one interval of the lease is left).
pub struct Leadership {
    campaign: Campaign,
    state: watch::Sender<Option<Grant>>,
}

impl Leadership {
    pub fn new(campaign: Campaign) -> Arc<Self> {
        Arc::new(Self {
            campaign,
            state: watch::channel(None).0,
        })
    }

    pub fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    /// The grant while this replica holds the lease.
    pub fn watch(&self) -> watch::Receiver<Option<Grant>> {
        self.state.subscribe()
    }

    /// Says the lease is lost (the holder found out inside a fenced write).
    pub fn lost(&self, grant: &Grant) {
        self.state.send_if_modified(|current| {
            if current.as_ref() == Some(grant) {
                *current = None;
                true
            } else {
                false
            }
        });
    }

    /// Campaigns until `shutdown`, then releases the lease if held. `address`
    /// is advertised to the replicas that don't hold it (where to reach this one).
    pub async fn run(
        self: Arc<Self>,
        db: DatabaseConnection,
        address: String,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let campaign = &self.campaign;
        let mut valid_until = tokio::time::Instant::now();
        loop {
            let held = self.state.borrow().clone();
            match held {
                Some(grant) => match renew(&db, &grant, campaign.ttl).await {
                    Ok(true) => valid_until = tokio::time::Instant::now() + campaign.ttl,
                    Ok(false) => {
                        tracing::warn!(lease = %campaign.name, epoch = grant.epoch, "lease lost");
                        self.lost(&grant);
                    }
                    Err(error) => {
                        tracing::warn!(lease = %campaign.name, %error, "renewing the lease failed");
                        if tokio::time::Instant::now() + campaign.interval >= valid_until {
                            self.lost(&grant);
                        }
                    }
                },
                None => match try_acquire(
                    &db,
                    &campaign.name,
                    &campaign.holder,
                    &address,
                    campaign.ttl,
                )
                .await
                {
                    Ok(Some(grant)) => {
                        tracing::info!(lease = %campaign.name, epoch = grant.epoch, "lease acquired");
                        valid_until = tokio::time::Instant::now() + campaign.ttl;
                        self.state.send_replace(Some(grant));
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::debug!(lease = %campaign.name, %error, "acquiring the lease failed")
                    }
                },
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(campaign.interval) => {}
            }
        }
        if let Some(grant) = self.state.send_replace(None)
            && let Err(error) = release(&db, &grant).await
        {
            tracing::warn!(lease = %campaign.name, %error, "releasing the lease failed; it expires on its own");
        }
        Ok(())
    }
}
