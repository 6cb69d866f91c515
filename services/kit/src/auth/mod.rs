//! Authentication and authorisation: JWT bearer tokens issued by identity,
//! verified locally against its JWKS, turned into a `Principal` with roles.

mod grpc;
mod jwks;
mod rest;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

pub use grpc::{AuthLayer, principal_of};
pub use jwks::{Authenticator, HttpKeySource, KeySource, StaticKeySource};

use crate::error::{ApiError, ApiResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Answers calls and works tickets.
    Agent,
    /// Leads agents: everything an agent may, plus reports and reassignment.
    Supervisor,
    /// Configures the platform and manages API clients.
    Admin,
    /// A partner repair shop: reaches only its own objects.
    Partner,
    /// Another system acting on its own behalf (CTI adapters, internal apps).
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Supervisor => "supervisor",
            Self::Admin => "admin",
            Self::Partner => "partner",
            Self::Service => "service",
        }
    }
}

/// The claims of a Hotline access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
}

/// Who is calling, as proven by a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The API client id (`sub`).
    pub subject: String,
    pub roles: HashSet<Role>,
    /// Set for partner clients: the repair shop they act for.
    pub partner_id: Option<String>,
    /// The raw token, forwarded when this request calls another service.
    pub token: String,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// 403 unless the caller holds at least one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> ApiResult<()> {
        if roles.iter().any(|role| self.has(*role)) {
            Ok(())
        } else {
            let wanted = roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            Err(ApiError::forbidden(format!(
                "this needs one of the roles: {wanted}"
            )))
        }
    }

    /// 404 (not 403, so ids of other shops can't be probed) when a partner
    /// reaches for an object of another partner. Staff roles pass.
    pub fn require_owner(&self, owner_partner_id: Option<&str>) -> ApiResult<()> {
        let staff = [Role::Agent, Role::Supervisor, Role::Admin, Role::Service];
        if staff.iter().any(|role| self.has(*role)) {
            return Ok(());
        }
        match (&self.partner_id, owner_partner_id) {
            (Some(mine), Some(owner)) if mine == owner => Ok(()),
            _ => Err(ApiError::not_found("not_found", "no such object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role], partner: Option<&str>) -> Principal {
        Principal {
            subject: "c".into(),
            roles: roles.iter().copied().collect(),
            partner_id: partner.map(Into::into),
            token: String::new(),
        }
    }

    #[test]
    fn role_checks() {
        let agent = principal(&[Role::Agent], None);
        assert!(agent.require_any(&[Role::Agent, Role::Admin]).is_ok());
        let denied = agent.require_any(&[Role::Admin]).err().map(|e| e.code);
        assert_eq!(denied, Some(crate::error::ErrorCode::Forbidden));
    }

    #[test]
    fn partners_reach_only_their_own_objects() {
        let shop = principal(&[Role::Partner], Some("shop-1"));
        assert!(shop.require_owner(Some("shop-1")).is_ok());
        assert!(shop.require_owner(Some("shop-2")).is_err());
        assert!(shop.require_owner(None).is_err());
        assert!(
            principal(&[Role::Supervisor], None)
                .require_owner(Some("shop-2"))
                .is_ok()
        );
    }
}
