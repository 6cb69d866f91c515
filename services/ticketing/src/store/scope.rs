//! Whose work orders a caller may reach: the center's staff all of them, a
//! partner repair shop only those it owns.

use hotline_kit::{
    ApiError, ApiResult,
    auth::{Principal, Role},
};
use sea_orm::{ColumnTrait, Condition};

use super::work_order;

/// The roles of the center's own people and systems.
pub const STAFF: &[Role] = &[Role::Agent, Role::Supervisor, Role::Admin, Role::Service];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Staff,
    /// A repair shop, by its partner id.
    Partner(String),
}

impl Scope {
    /// Staff roles win; a partner token must carry its partner id; anything
    /// else reaches no work order.
    pub fn of(principal: &Principal) -> ApiResult<Self> {
        if STAFF.iter().any(|role| principal.has(*role)) {
            return Ok(Self::Staff);
        }
        match (&principal.partner_id, principal.has(Role::Partner)) {
            (Some(partner), true) => Ok(Self::Partner(partner.clone())),
            _ => Err(ApiError::forbidden(
                "work orders need a staff role or a partner client",
            )),
        }
    }

    pub fn is_staff(&self) -> bool {
        *self == Self::Staff
    }

    /// The rows this scope reaches.
    pub fn condition(&self) -> Condition {
        match self {
            Self::Staff => Condition::all(),
            Self::Partner(partner) => {
                Condition::all().add(work_order::Column::PartnerId.eq(partner.clone()))
            }
        }
    }

    /// 404, as for an order that doesn't exist, unless this scope owns `order`.
    pub fn require(&self, order: &work_order::Model) -> ApiResult<()> {
        match self {
            Self::Staff => Ok(()),
            Self::Partner(partner) if order.partner_id.as_deref() == Some(partner) => Ok(()),
            Self::Partner(_) => Err(not_found()),
        }
    }
}

pub fn not_found() -> ApiError {
    ApiError::not_found("work_order_not_found", "no such work order")
}
