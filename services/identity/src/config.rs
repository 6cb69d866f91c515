//! Identity's section of the configuration (`[identity]`).

use std::time::Duration;

use hotline_kit::config::{Secret, Validate};
use serde::{Deserialize, Serialize};

use crate::{
    domain::phone::Region,
    pii::{PiiCipher, PiiError},
};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub default_region: String,
    /// The current PII key: encrypts, and keys the search hashes.
    pub pii_key: Secret,
    /// Keys that values may still be encrypted under: they only decrypt (and
    /// their search hashes still match) until `hotline pii rotate-key` has
    /// moved everything to `pii_key`.
    pub pii_previous_keys: Vec<Secret>,
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
    /// The configured PII keys: the current one (unless empty, for a generated
    /// key) able to read what the previous ones made.
    pub fn pii_cipher(&self, current: &str) -> Result<PiiCipher, PiiError> {
        let previous: Vec<&str> = self.pii_previous_keys.iter().map(Secret::expose).collect();
        PiiCipher::from_base64(current)?.with_previous_base64(&previous)
    }

    pub fn region(&self) -> Result<Region, String> {
        self.default_region.parse().map_err(|_| {
            format!(
                "identity.default_region {:?} is not an ISO 3166 region code like CN",
                self.default_region
            )
        })
    }
}

const KEY_FORMAT: &str = "must be 32 random bytes in base64 (head -c 32 /dev/urandom | base64)";

impl Validate for IdentityConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(problem) = self.region() {
            problems.push(problem);
        }
        if !self.pii_key.is_empty() && PiiCipher::from_base64(self.pii_key.expose()).is_err() {
            problems.push(format!("identity.pii_key {KEY_FORMAT}"));
        }
        for (index, key) in self.pii_previous_keys.iter().enumerate() {
            if PiiCipher::from_base64(key.expose()).is_err() {
                problems.push(format!("identity.pii_previous_keys[{index}] {KEY_FORMAT}"));
            }
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
