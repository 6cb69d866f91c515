//! Queries over customers and their phones shared by the use cases.

use std::collections::HashMap;

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, LikeExpr},
};
use uuid::Uuid;

use super::{customer, customer_phone, timeline_entry};
use crate::domain::customer::Phone;

/// Merges can chain (A into B, later B into C); a lookup follows at most this many hops.
const MAX_MERGE_HOPS: usize = 8;

/// The customer behind `id`, following merges to the survivor.
pub async fn resolve<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<Option<customer::Model>, DbErr> {
    let mut current = customer::Entity::find_by_id(id).one(conn).await?;
    for _ in 0..MAX_MERGE_HOPS {
        match current {
            Some(ref model) if model.merged_into.is_some() => {
                current = customer::Entity::find_by_id(model.merged_into.unwrap_or(model.id))
                    .one(conn)
                    .await?;
            }
            _ => break,
        }
    }
    Ok(current)
}

/// Every record merged into `survivor`, directly or through earlier merges
/// (merges used to leave chains).
pub async fn merged_into<C: ConnectionTrait>(
    conn: &C,
    survivor: Uuid,
) -> Result<Vec<customer::Model>, DbErr> {
    let mut found: Vec<customer::Model> = Vec::new();
    let mut frontier = vec![survivor];
    while !frontier.is_empty() {
        let next = customer::Entity::find()
            .filter(customer::Column::MergedInto.is_in(frontier))
            .order_by_asc(customer::Column::Id)
            .all(conn)
            .await?;
        // A visited id is never queried again, so even corrupt cycles end.
        let new: Vec<customer::Model> = next
            .into_iter()
            .filter(|record| record.id != survivor && found.iter().all(|f| f.id != record.id))
            .collect();
        frontier = new.iter().map(|record| record.id).collect();
        found.extend(new);
    }
    Ok(found)
}

/// `column` contains `fragment` as typed: `%`, `_` and `\` in it match only
/// themselves. An explicit ESCAPE reads the same on SQLite and PostgreSQL.
pub fn contains_literally<C: ColumnTrait>(column: C, fragment: &str) -> Expr {
    let escaped = fragment
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    column.like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

pub async fn phones_of<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Phone>>, DbErr> {
    let rows = customer_phone::Entity::find()
        .filter(customer_phone::Column::CustomerId.is_in(ids.iter().copied()))
        .order_by_asc(customer_phone::Column::Position)
        .all(conn)
        .await?;
    let mut phones: HashMap<Uuid, Vec<Phone>> = HashMap::new();
    for row in rows {
        phones.entry(row.customer_id).or_default().push(Phone {
            number: row.number,
            label: row.label,
        });
    }
    Ok(phones)
}

/// Replaces a customer's phones; returns the numbers it had before.
pub async fn replace_phones<C: ConnectionTrait>(
    conn: &C,
    customer_id: Uuid,
    phones: &[(String, String)],
) -> Result<Vec<String>, DbErr> {
    let previous = customer_phone::Entity::find()
        .filter(customer_phone::Column::CustomerId.eq(customer_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| row.number)
        .collect();
    customer_phone::Entity::delete_many()
        .filter(customer_phone::Column::CustomerId.eq(customer_id))
        .exec(conn)
        .await?;
    if !phones.is_empty() {
        let rows = phones
            .iter()
            .enumerate()
            .map(|(position, (number, label))| customer_phone::ActiveModel {
                customer_id: Set(customer_id),
                number: Set(number.clone()),
                label: Set(label.clone()),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
            });
        customer_phone::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(previous)
}

/// Live customers who have `number`, with the position of that number in their list.
pub async fn holders_of<C: ConnectionTrait>(
    conn: &C,
    number: &str,
) -> Result<Vec<(customer::Model, i32)>, DbErr> {
    let rows = customer_phone::Entity::find()
        .filter(customer_phone::Column::Number.eq(number))
        .find_also_related(customer::Entity)
        .limit(50)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(phone, customer)| customer.map(|c| (c, phone.position)))
        .filter(|(customer, _)| customer.merged_into.is_none() && customer.erased_at.is_none())
        .collect())
}

pub async fn recent_history<C: ConnectionTrait>(
    conn: &C,
    customer_id: Uuid,
    limit: u64,
) -> Result<Vec<timeline_entry::Model>, DbErr> {
    timeline_entry::Entity::find()
        .filter(timeline_entry::Column::CustomerId.eq(customer_id))
        .order_by_desc(timeline_entry::Column::OccurredAt)
        .order_by_desc(timeline_entry::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}
