//! Leases and what they fence, and durable timers, on SQLite and PostgreSQL:
//! one holder at a time, a takeover bumps the epoch, the old holder's writes
//! are refused once it is overtaken, and fenced writes keep any value as
//! it was given (or nothing at all).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use hotline_kit::{
    bus::Event,
    lease::{self, FENCED, FenceError, FencedWrite, Grant},
    outbox::{self, Outbox},
    timers::{self, Timer},
};
use hotline_testkit::Infra;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryOrder, TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

struct PlatformTables;

impl MigratorTrait for PlatformTables {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        hotline_kit::migration::platform_migrations()
    }
}

/// How a holder writes: a transaction that starts with the fence (both
/// backends), or, on PostgreSQL, one statement whose parts the fence guards.
#[derive(Clone, Copy, Debug)]
enum Way {
    Transaction,
    Statement,
}

fn ways(db: &DatabaseConnection) -> &'static [Way] {
    if db.get_database_backend() == DatabaseBackend::Postgres {
        &[Way::Transaction, Way::Statement]
    } else {
        &[Way::Transaction]
    }
}

/// A holder's write as routing makes it: fenced, then events and timers set
/// and cancelled, then `broken` when asked (a statement that fails).
async fn fenced_write(
    way: Way,
    db: &DatabaseConnection,
    grant: &Grant,
    events: Vec<Event>,
    (set, cancel): (&[Timer], &[String]),
    broken: bool,
) -> Result<(), FenceError> {
    let outbox = Outbox::new("test");
    let ttl = Duration::from_secs(5);
    match way {
        Way::Transaction => {
            let txn = db.begin().await?;
            lease::fence(&txn, grant, ttl).await?;
            outbox.enqueue_many(&txn, events).await?;
            timers::schedule(&txn, set).await?;
            timers::cancel(&txn, cancel).await?;
            if broken {
                txn.execute_unprepared("INSERT INTO no_such_table (x) VALUES (1)")
                    .await?;
            }
            txn.commit().await?;
        }
        Way::Statement => {
            let mut write = FencedWrite::new(grant, ttl);
            outbox.enqueue_fenced(&mut write, events);
            timers::fenced(&mut write, set, cancel)?;
            if broken {
                write.part(format!(
                    "INSERT INTO no_such_table (x) SELECT 1 WHERE {FENCED}"
                ));
            }
            write.execute(db).await?;
        }
    }
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
    for &way in ways(&db) {
        let event = Event::new("kit.test.written", "/test", b"late".to_vec());
        let timer = Timer {
            key: "late".into(),
            kind: "k".into(),
            due_at: Utc::now(),
            payload: String::new(),
        };
        let late = fenced_write(way, &db, &first, vec![event], (&[timer], &[]), false).await;
        assert!(
            matches!(late, Err(FenceError::Lost(_))),
            "{way:?}: {late:?}"
        );
    }
    assert_eq!(
        outbox::pending(&db).await.unwrap(),
        0,
        "the overtaken holder wrote nothing"
    );
    assert!(timers::load_all(&db).await.unwrap().is_empty());
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
    for &way in ways(&db) {
        let awkward =
            format!("it's a \\ back'slash\n\"quoted\" 张伟 $fence$ ; DROP TABLE timer; -- {way:?}");
        let bytes: Vec<u8> = (0..=255).collect();
        let mut event =
            Event::new("kit.test.awkward", "/test", bytes.clone()).with_subject(awkward.clone());
        event.traceparent = Some(awkward.clone());
        let after = Event::new("kit.test.after", "/test", b"{}".to_vec());
        let timer = Timer {
            key: awkward.clone(),
            kind: "k".into(),
            due_at: Utc::now(),
            payload: "{\"json\": \"\\u00e9\"}".into(),
        };
        fenced_write(
            way,
            &db,
            &grant,
            vec![event.clone(), after.clone()],
            (std::slice::from_ref(&timer), &[]),
            false,
        )
        .await
        .unwrap();

        let stored = outbox::entity::Entity::find()
            .order_by_asc(outbox::entity::Column::Seq)
            .all(&db)
            .await
            .unwrap();
        let ids: Vec<_> = stored.iter().map(|row| row.id).collect();
        assert_eq!(ids, [event.id, after.id], "{way:?}: in the order given");
        assert_eq!(stored[0].data, bytes);
        assert_eq!(stored[0].subject.as_deref(), Some(awkward.as_str()));
        assert_eq!(stored[0].traceparent.as_deref(), Some(awkward.as_str()));
        assert_eq!(
            stored[0].time.trunc_subsecs(6),
            event.time.trunc_subsecs(6),
            "{way:?}: to the microsecond (PostgreSQL keeps no more)"
        );
        let loaded = timers::load_all(&db).await.unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            (
                loaded[0].key.as_str(),
                loaded[0].payload.as_str(),
                loaded[0].due_at
            ),
            (
                awkward.as_str(),
                timer.payload.as_str(),
                timer.due_at.trunc_subsecs(3)
            )
        );

        // A failing statement takes the whole batch back, fence included.
        let again = Event::new("kit.test.again", "/test", Vec::new());
        let moved = Timer {
            due_at: timer.due_at + chrono::Duration::seconds(60),
            ..timer.clone()
        };
        assert!(matches!(
            fenced_write(way, &db, &grant, vec![again], (&[moved], &[]), true).await,
            Err(FenceError::Db(_))
        ));
        assert_eq!(
            outbox::pending(&db).await.unwrap(),
            2,
            "{way:?}: nothing of the failed batch stayed"
        );
        assert_eq!(
            timers::load_all(&db).await.unwrap()[0].due_at,
            loaded[0].due_at
        );

        fenced_write(way, &db, &grant, Vec::new(), (&[], &[awkward]), false)
            .await
            .unwrap();
        assert!(timers::load_all(&db).await.unwrap().is_empty());
        outbox::entity::Entity::delete_many()
            .exec(&db)
            .await
            .unwrap();
    }
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
