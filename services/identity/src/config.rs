//! Identity's section of the configuration (`[identity]`).

use std::time::Duration;

use hotline_kit::config::{Secret, Validate};
use serde::{Deserialize, Serialize};

use crate::{domain::phone::Region, pii::PiiCipher};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub default_region: String,
    pub pii_key: Secret,
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub key_rotation: Duration,
    #[serde(with = "humantime_serde")]
    pub lookup_cache_ttl: Duration,
    pub lookup_history: u64,
    pub billing: BillingConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BillingConfig {
    pub url: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
}

impl IdentityConfig {
    pub fn region(&self) -> Result<Region, String> {
        self.default_region.parse().map_err(|_| {
            format!(
                "identity.default_region {:?} is not an ISO 3166 region code like CN",
                self.default_region
            )
        })
    }
}

impl Validate for IdentityConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(problem) = self.region() {
            problems.push(problem);
        }
        if !self.pii_key.is_empty() && PiiCipher::from_base64(self.pii_key.expose()).is_err() {
            problems.push(
                "identity.pii_key must be 32 random bytes in base64 (head -c 32 /dev/urandom | base64)".to_owned(),
            );
        }
        if self.token_ttl < Duration::from_secs(60)
            || self.token_ttl > Duration::from_secs(24 * 3600)
        {
            problems.push("identity.token_ttl must be between 1m and 24h".into());
        }
        if self.key_rotation <= self.token_ttl {
            problems.push("identity.key_rotation must be longer than identity.token_ttl".into());
        }
        if self.lookup_history > 50 {
            problems.push("identity.lookup_history must be at most 50".into());
        }
        if !self.billing.url.is_empty() && !self.billing.url.starts_with("http") {
            problems.push("identity.billing.url must be an http(s) URL or empty".into());
        }
        problems
    }
}
