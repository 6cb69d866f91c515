//! The idempotent-consumer inbox: a consumer records each event id in the same
//! transaction as the event's effect, so an event delivered twice applies once.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbErr, entity::prelude::*, sea_query::OnConflict,
};

pub mod entity {
    use super::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "inbox_event")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: Uuid,
        pub applied_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Records that `consumer` applies `event_id`. Returns `false` when it already
/// did: the caller then skips the effect. Call inside the effect's transaction.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    consumer: &str,
    event_id: Uuid,
) -> Result<bool, DbErr> {
    let inserted = entity::Entity::insert(entity::ActiveModel {
        consumer: Set(consumer.to_owned()),
        event_id: Set(event_id),
        applied_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([entity::Column::Consumer, entity::Column::EventId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}
