//! Leases and what they fence, and durable timers, on SQLite and PostgreSQL:
//! one holder at a time, a takeover bumps the epoch, the old holder's writes
//! are refused once it is overtaken, and fenced writes keep any value as
//! it was given (or nothing at all).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use hotline_kit::{
    bus::Event,
    lease::{self, FenceError, Grant},
    outbox::{self, Outbox},
    timers::{self, Timer},
};
use hotline_testkit::Infra;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

struct PlatformTables;

impl MigratorTrait for PlatformTables {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        hotline_kit::migration::platform_migrations()
    }
}

/// A holder's write as routing makes it: fenced, then events and timers, then
/// `broken` when asked (a statement that fails), in one transaction.
async fn fenced_write(
    db: &DatabaseConnection,
    grant: &Grant,
    events: Vec<Event>,
    timers: &[Timer],
    broken: bool,
) -> Result<(), FenceError> {
    let txn = db.begin().await?;
    lease::fence(&txn, grant, Duration::from_secs(5)).await?;
    Outbox::new("test").enqueue_many(&txn, events).await?;
    timers::schedule(&txn, timers).await?;
    if broken {
        txn.execute_unprepared("INSERT INTO no_such_table (x) VALUES (1)")
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

async fn database(infra: &Infra) -> DatabaseConnection {
    let platform = infra.platform().await;
    platform.database::<PlatformTables>("kit").await.unwrap()
}

async fn one_holder_at_a_time_and_the_overtaken_one_writes_nothing(infra: Infra) {
    let db = database(&infra).await;
    let ttl = Duration::from_millis(300);
    let first = lease::try_acquire(&db, "router", "a", "http://a", ttl)
        .await
        .unwrap()
        .expect("free");
    assert!(
        lease::try_acquire(&db, "router", "b", "http://b", ttl)
            .await
            .unwrap()
            .is_none(),
        "held"
    );
    let holder = lease::holder(&db, "router").await.unwrap().unwrap();
    assert_eq!(
        (
            holder.holder.as_str(),
            holder.address.as_str(),
            holder.expired
        ),
        ("a", "http://a", false)
    );
    assert!(lease::renew(&db, &first, ttl).await.unwrap());

    // `a` stalls past its expiry; `b` takes over with the next epoch.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let second = lease::try_acquire(&db, "router", "b", "http://b", ttl)
        .await
        .unwrap()
        .expect("expired");
    assert_eq!(second.epoch, first.epoch + 1);
    let event = Event::new("kit.test.written", "/test", b"late".to_vec());
    let late = fenced_write(&db, &first, vec![event], &[], false).await;
    assert!(matches!(late, Err(FenceError::Lost(_))), "{late:?}");
    assert_eq!(
        outbox::pending(&db).await.unwrap(),
        0,
        "the overtaken holder wrote nothing"
    );
    assert!(!lease::renew(&db, &first, ttl).await.unwrap());

    lease::release(&db, &second).await.unwrap();
    let third = lease::try_acquire(&db, "router", "a", "http://a", ttl)
        .await
        .unwrap()
        .expect("released");
    assert_eq!(third.epoch, second.epoch + 1, "released: taken at once");
}

async fn fenced_writes_keep_every_value_as_given(infra: Infra) {
    let db = database(&infra).await;
    let grant = lease::try_acquire(&db, "writer", "me", "", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    let awkward = "it's a \\ back'slash\n\"quoted\" 张伟 $fence$ ; DROP TABLE timer; --";
    let bytes: Vec<u8> = (0..=255).collect();
    let mut event = Event::new("kit.test.awkward", "/test", bytes.clone()).with_subject(awkward);
    event.traceparent = Some(awkward.to_owned());
    let timer = Timer {
        key: awkward.to_owned(),
        kind: "k".into(),
        due_at: Utc::now(),
        payload: "{\"json\": \"\\u00e9\"}".into(),
    };
    fenced_write(
        &db,
        &grant,
        vec![event.clone()],
        std::slice::from_ref(&timer),
        false,
    )
    .await
    .unwrap();

    let stored = outbox::entity::Entity::find().all(&db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].data, bytes);
    assert_eq!(stored[0].subject.as_deref(), Some(awkward));
    assert_eq!(stored[0].traceparent.as_deref(), Some(awkward));
    let loaded = timers::load_all(&db).await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(
        (loaded[0].key.as_str(), loaded[0].payload.as_str()),
        (awkward, timer.payload.as_str())
    );

    // A failing statement takes the whole batch back, fence included.
    let mut again = event.clone();
    again.id = uuid::Uuid::now_v7();
    assert!(matches!(
        fenced_write(&db, &grant, vec![again], &[], true).await,
        Err(FenceError::Db(_))
    ));
    assert_eq!(
        outbox::pending(&db).await.unwrap(),
        1,
        "nothing of the failed batch stayed"
    );
    timers::cancel(&db, &[awkward.to_owned()]).await.unwrap();
    assert!(timers::load_all(&db).await.unwrap().is_empty());
}

async fn due_timers_are_taken_once_and_a_moved_one_not_at_all(infra: Infra) {
    let db = database(&infra).await;
    let now = Utc::now();
    let at = |seconds: i64| Timer {
        key: format!("t{seconds}"),
        kind: "k".into(),
        due_at: now + chrono::Duration::seconds(seconds),
        payload: String::new(),
    };
    timers::schedule(&db, &[at(-2), at(-1), at(60)])
        .await
        .unwrap();
    let due = timers::due(&db, now, 10).await.unwrap();
    let keys: Vec<&str> = due.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["t-2", "t-1"], "the due ones, earliest first");
    assert_eq!(timers::due(&db, now, 1).await.unwrap().len(), 1);
    assert!(timers::take(&db, &due[0]).await.unwrap());
    assert!(!timers::take(&db, &due[0]).await.unwrap(), "taken once");
    // Moved after it was read: the stale read takes nothing.
    let mut moved = due[1].clone();
    moved.due_at = now + chrono::Duration::seconds(30);
    timers::schedule(&db, std::slice::from_ref(&moved))
        .await
        .unwrap();
    assert!(!timers::take(&db, &due[1]).await.unwrap());
    assert_eq!(timers::load_all(&db).await.unwrap().len(), 2);
}

hotline_testkit::on_both_backends!(
    std::future::ready =>
    one_holder_at_a_time_and_the_overtaken_one_writes_nothing,
    fenced_writes_keep_every_value_as_given,
    due_timers_are_taken_once_and_a_moved_one_not_at_all,
);
