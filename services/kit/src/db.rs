//! Database connections: PostgreSQL or SQLite chosen by URL, each service in its
//! own schema (PostgreSQL) or its own file (SQLite), and migrations per service.

use std::{path::Path, time::Duration};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseBackend,
    DatabaseConnection, DbErr, EntityTrait, QueryFilter, sea_query::IntoCondition,
};
use sea_orm_migration::MigratorTrait;

use crate::config::DatabaseConfig;

pub use sea_orm::DatabaseConnection as Db;

/// Where one service's tables live.
#[derive(Clone, Debug)]
pub struct Location {
    pub url: String,
    /// PostgreSQL schema (also the SQLite file's stem).
    pub schema: String,
}

impl Location {
    /// Resolves the configured URL for `service`: a SQLite file per service under
    /// `data_dir` when no URL is set.
    pub fn for_service(config: &DatabaseConfig, data_dir: &Path, service: &str) -> Self {
        let schema = format!("{}{service}", config.schema_prefix);
        let url = config.url.expose();
        let url = if url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                data_dir.join(format!("{schema}.sqlite")).display()
            )
        } else {
            url.to_owned()
        };
        Self { url, schema }
    }

    fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

/// Opens the pool for one service, creating its schema or file if needed.
pub async fn connect(
    location: &Location,
    max_connections: u32,
) -> Result<DatabaseConnection, DbErr> {
    if !location.is_postgres()
        && let Some(path) = location.url.strip_prefix("sqlite://")
        && let Some(dir) = Path::new(path.split('?').next().unwrap_or(path)).parent()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| DbErr::Custom(format!("creating {}: {e}", dir.display())))?;
    }
    // SQLite allows one writer, and a transaction that reads before it writes
    // fails outright (SQLITE_BUSY, no waiting) when another committed meanwhile:
    // one connection serialises the embedded mode's transactions instead.
    let max_connections = if location.is_postgres() {
        max_connections
    } else {
        1
    };
    let mut options = ConnectOptions::new(location.url.clone());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if location.is_postgres() {
        options.set_schema_search_path(location.schema.clone());
    } else {
        // Set on every connection the pool opens (it replaces them over time):
        // WAL lets readers proceed while one writer commits; the busy timeout
        // makes a second writer wait instead of failing. NORMAL syncs at
        // checkpoints, not at every commit: a commit survives the process
        // dying, and only a power cut or kernel crash can take back the last
        // ones (docs/adr/0005-embedded-sqlite.md) — for a tenth of the commit time.
        options.map_sqlx_sqlite_opts(|sqlite| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    }
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        db.execute_unprepared(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{}\"",
            location.schema
        ))
        .await?;
    }
    Ok(db)
}

/// Applies `M`'s pending migrations. On PostgreSQL an advisory lock keyed by the
/// schema makes replicas starting together take turns.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection, schema: &str) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return M::up(db, None).await;
    }
    let pool = db.get_postgres_connection_pool();
    let mut lock = pool
        .acquire()
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(schema)
        .execute(&mut *lock)
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    let result = M::up(db, None).await;
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(schema)
        .execute(&mut *lock)
        .await;
    result
}

/// Whether the database answers (for `/readyz`).
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

/// True when a write failed because a unique constraint already holds the value.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Writes `row` over the row `which` selects if its `version` column still
/// holds `expected` (optimistic concurrency): the row as written, or `None`
/// when someone else wrote first.
pub async fn update_at_version<A, C>(
    conn: &C,
    row: A,
    which: impl IntoCondition,
    version: <A::Entity as EntityTrait>::Column,
    expected: i64,
) -> Result<Option<<A::Entity as EntityTrait>::Model>, DbErr>
where
    A: ActiveModelTrait + Send,
    C: ConnectionTrait,
{
    Ok(<A::Entity as EntityTrait>::update_many()
        .set(row)
        .filter(which)
        .filter(version.eq(expected))
        .exec_with_returning(conn)
        .await?
        .into_iter()
        .next())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use sea_orm::{ConnectionTrait, Statement};

    use super::*;

    async fn pragma(db: &DatabaseConnection, name: &str) -> String {
        let row = db
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Sqlite,
                format!("PRAGMA {name}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<String>(0)
            .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))
            .unwrap()
    }

    /// The pool replaces its connections over time: each new one gets the
    /// pragmas too, not only the first.
    #[tokio::test]
    async fn every_sqlite_connection_is_in_wal_with_normal_sync() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location {
            url: format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("t.sqlite").display()
            ),
            schema: "t".into(),
        };
        let db = connect(&location, 1).await.unwrap();
        for _ in 0..2 {
            assert_eq!(pragma(&db, "journal_mode").await, "wal");
            assert_eq!(pragma(&db, "synchronous").await, "1", "NORMAL");
            assert_eq!(pragma(&db, "foreign_keys").await, "1");
            assert_eq!(pragma(&db, "busy_timeout").await, "5000");
            // Take the pool's connection out of it: the next query opens a new one.
            let old = db
                .get_sqlite_connection_pool()
                .acquire()
                .await
                .unwrap()
                .detach();
            drop(old);
        }
    }
}
