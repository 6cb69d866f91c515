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
    pub token_endpoint: TokenEndpointConfig,
}

/// What failed token requests may cost (`[identity.token_endpoint]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEndpointConfig {
    /// Failed requests tolerated from one source address per `failure_window`.
    pub failures_per_address: u32,
    /// Failed requests tolerated for one client id from one source address.
    pub failures_per_client: u32,
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
    /// Token requests checked at once; more are refused straight away.
    pub max_concurrent: usize,
    /// Source addresses (and client ids per address) remembered at most.
    pub tracked: u64,
    /// Proxies whose `X-Forwarded-For` names the source address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
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
        problems.extend(self.token_endpoint.validate());
        problems
    }
}

impl Validate for TokenEndpointConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.failures_per_address == 0 || self.failures_per_client == 0 {
            problems.push(
                "identity.token_endpoint.failures_per_address and failures_per_client must be at least 1"
                    .into(),
            );
        }
        if self.failures_per_client > self.failures_per_address {
            problems.push(
                "identity.token_endpoint.failures_per_client must not exceed failures_per_address"
                    .into(),
            );
        }
        if self.failure_window < Duration::from_secs(1) {
            problems.push("identity.token_endpoint.failure_window must be at least 1s".into());
        }
        if self.max_concurrent == 0 {
            problems.push("identity.token_endpoint.max_concurrent must be at least 1".into());
        }
        if self.tracked < 1000 {
            problems.push("identity.token_endpoint.tracked must be at least 1000".into());
        }
        problems
    }
}
