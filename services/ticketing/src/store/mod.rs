//! Ticketing's tables (sea-orm entities) and the queries that span them.
//! Every read of work orders takes a [`Scope`], so a partner's filter can't be
//! forgotten.

pub mod assignee;
pub mod category;
pub mod dispatch_attempt;
pub mod dispatch_rule;
pub mod history;
pub mod note;
pub mod region;
pub mod resolution_code;
pub mod scope;
pub mod sla_policy;
pub mod sms_inbound;
pub mod sms_message;
pub mod sms_part;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod work_order;
pub mod work_order_type;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
    sea_query::{Expr, ExprTrait, LikeExpr, OnConflict, Query},
};
use uuid::Uuid;

pub use scope::Scope;

/// Selects a work order for changing it: on PostgreSQL its row stays locked
/// until the transaction ends (SQLite has one writer anyway).
pub fn for_update<C: ConnectionTrait>(
    conn: &C,
    select: Select<work_order::Entity>,
) -> Select<work_order::Entity> {
    if conn.get_database_backend() == DatabaseBackend::Postgres {
        select.lock_exclusive()
    } else {
        select
    }
}

/// Reserves `count` numbers of `day` and returns the last: the order's
/// transaction asks for one (SQLite), a replica's own short transaction for a
/// block (PostgreSQL), so the counter row is locked for one statement.
pub async fn reserve_numbers<C: ConnectionTrait>(
    conn: &C,
    day: &str,
    count: i64,
) -> Result<i64, DbErr> {
    #[derive(sea_orm::DeriveIden)]
    enum WorkOrderCounter {
        Table,
        Day,
        Last,
    }
    let mut insert = Query::insert();
    insert
        .into_table(WorkOrderCounter::Table)
        .columns([WorkOrderCounter::Day, WorkOrderCounter::Last])
        .values([day.into(), count.into()])
        .map_err(|error| DbErr::Custom(error.to_string()))?
        .on_conflict(
            OnConflict::column(WorkOrderCounter::Day)
                .value(
                    WorkOrderCounter::Last,
                    Expr::col((WorkOrderCounter::Table, WorkOrderCounter::Last)).add(count),
                )
                .to_owned(),
        )
        .returning_col(WorkOrderCounter::Last);
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(backend.build(&insert))
        .await?
        .ok_or_else(|| DbErr::Custom("the number counter returned nothing".into()))?;
    row.try_get("", "last")
}

/// The next history sequence number of an order (call with its row locked).
pub async fn next_history_seq<C: ConnectionTrait>(conn: &C, order: Uuid) -> Result<i64, DbErr> {
    let last: Option<i64> = history::Entity::find()
        .select_only()
        .column_as(history::Column::Seq.max(), "last")
        .filter(history::Column::WorkOrderId.eq(order))
        .into_tuple()
        .one(conn)
        .await?
        .flatten();
    Ok(last.unwrap_or(0) + 1)
}

/// What a list of work orders is narrowed to.
#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    pub status: Option<String>,
    pub type_key: Option<String>,
    /// A category or region path: its whole subtree.
    pub category_path: Option<String>,
    pub region_path: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub customer_id: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

/// `LIKE` pattern of a path's subtree (paths are codes of a-z, 0-9 and `_`;
/// `_` is escaped).
fn subtree(path: &str) -> String {
    format!("{}%", path.replace('\\', "\\\\").replace('_', "\\_"))
}

/// Newest first, after `after` (created_at, id) when given, `limit` rows.
pub async fn list_orders<C: ConnectionTrait>(
    conn: &C,
    scope: &Scope,
    filter: &OrderFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<work_order::Model>, DbErr> {
    use work_order::Column as C;
    let mut condition = scope.condition();
    if let Some(status) = &filter.status {
        condition = condition.add(C::Status.eq(status.clone()));
    }
    if let Some(type_key) = &filter.type_key {
        condition = condition.add(C::TypeKey.eq(type_key.clone()));
    }
    if let Some(path) = &filter.category_path {
        condition = condition.add(
            Expr::col(C::CategoryPath)
                .like(sea_orm::sea_query::LikeExpr::new(subtree(path)).escape('\\')),
        );
    }
    if let Some(path) = &filter.region_path {
        condition = condition.add(
            Expr::col(C::RegionPath)
                .like(sea_orm::sea_query::LikeExpr::new(subtree(path)).escape('\\')),
        );
    }
    if let Some(assignee) = filter.assignee_id {
        condition = condition.add(C::AssigneeId.eq(assignee));
    }
    if let Some(customer) = &filter.customer_id {
        condition = condition.add(C::CustomerId.eq(customer.clone()));
    }
    if let Some(after) = filter.created_after {
        condition = condition.add(C::CreatedAt.gte(after));
    }
    if let Some(before) = filter.created_before {
        condition = condition.add(C::CreatedAt.lt(before));
    }
    if let Some((at, id)) = after {
        condition = condition.add(
            Condition::any()
                .add(C::CreatedAt.lt(at))
                .add(Condition::all().add(C::CreatedAt.eq(at)).add(C::Id.lt(id))),
        );
    }
    work_order::Entity::find()
        .filter(condition)
        .order_by_desc(C::CreatedAt)
        .order_by_desc(C::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// The newest order of `customer` under `category_path` resolved since
/// `since` and not reopened (a reopening clears `resolved_at`).
pub async fn latest_resolved<C: ConnectionTrait>(
    conn: &C,
    customer: &str,
    category_path: &str,
    since: DateTime<Utc>,
) -> Result<Option<Uuid>, DbErr> {
    use work_order::Column as C;
    Ok(work_order::Entity::find()
        .filter(C::CustomerId.eq(customer))
        .filter(C::ResolvedAt.gte(since))
        .filter(Expr::col(C::CategoryPath).like(LikeExpr::new(subtree(category_path)).escape('\\')))
        .order_by_desc(C::ResolvedAt)
        .one(conn)
        .await?
        .map(|order| order.id))
}

/// Moves an assignee's count of open orders by `delta`.
pub async fn count_open<C: ConnectionTrait>(
    conn: &C,
    assignee: Uuid,
    delta: i32,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    assignee::Entity::update_many()
        .col_expr(
            assignee::Column::OpenOrders,
            Expr::col(assignee::Column::OpenOrders).add(delta),
        )
        .col_expr(assignee::Column::UpdatedAt, Expr::value(now))
        .filter(assignee::Column::Id.eq(assignee))
        .exec(conn)
        .await?;
    Ok(())
}
