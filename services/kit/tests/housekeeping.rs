//! Expired idempotency keys and inbox records are pruned; recent ones stay.
#![allow(clippy::unwrap_used)]

use chrono::Utc;
use hotline_kit::{db, housekeeping, idempotency, inbox};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, PaginatorTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

struct PlatformTables;

impl MigratorTrait for PlatformTables {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        hotline_kit::migration::platform_migrations()
    }
}

#[tokio::test]
async fn only_expired_records_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let location = db::Location {
        url: format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("kit.sqlite").display()
        ),
        schema: "kit".into(),
    };
    let db = db::connect(&location, 1).await.unwrap();
    db::migrate::<PlatformTables>(&db, "kit").await.unwrap();
    let old = Utc::now() - chrono::Duration::days(30);
    for (key, at) in [("old", old), ("new", Utc::now())] {
        idempotency::entity::ActiveModel {
            scope: Set("client POST /x".into()),
            key: Set(key.into()),
            request_hash: Set("h".into()),
            status: Set(201),
            body: Set("{}".into()),
            location: Set(None),
            created_at: Set(at),
        }
        .insert(&db)
        .await
        .unwrap();
        inbox::entity::ActiveModel {
            consumer: Set("c".into()),
            event_id: Set(uuid::Uuid::new_v4()),
            applied_at: Set(at),
        }
        .insert(&db)
        .await
        .unwrap();
    }
    assert_eq!(housekeeping::prune(&db).await.unwrap(), (1, 1));
    assert_eq!(
        idempotency::entity::Entity::find()
            .count(&db)
            .await
            .unwrap(),
        1
    );
    assert_eq!(inbox::entity::Entity::find().count(&db).await.unwrap(), 1);
}
