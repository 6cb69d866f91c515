//! What failed token requests may cost. Checking a secret is cheap, but a flood
//! still costs a database read per request, so failures are limited per source
//! address and per client id from one address, and only so many requests are
//! checked at once. Successes never count: nobody can lock a client out by
//! failing on its behalf from another address.

use std::{
    hash::{BuildHasher, Hash, RandomState},
    net::{IpAddr, Ipv6Addr},
    sync::Arc,
    time::{Duration, Instant},
};

use actix_web::HttpRequest;
use ipnet::IpNet;
use moka::{ops::compute::Op, sync::Cache};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::TokenEndpointConfig;

/// A failure budget that is used up, with what the client is told about it.
#[derive(Clone, Copy, Debug)]
pub struct Exceeded {
    /// The policy's name in the `RateLimit`/`RateLimit-Policy` fields.
    pub policy: &'static str,
    pub quota: u32,
    pub window: Duration,
    pub retry_after: Duration,
}

/// A token request as the limits see it.
pub struct Caller {
    address: IpAddr,
    client: u64,
}

pub struct Throttle {
    by_address: FailureLimit<IpAddr>,
    by_client: FailureLimit<(u64, IpAddr)>,
    in_flight: Arc<Semaphore>,
    trusted_proxies: Vec<IpNet>,
    /// Client ids are keyed by a hash: an attacker's long ids cost no memory.
    ids: RandomState,
}

impl Throttle {
    pub fn new(config: &TokenEndpointConfig) -> Self {
        let (window, tracked) = (config.failure_window, config.tracked);
        Self {
            by_address: FailureLimit::new(
                "failures-per-address",
                config.failures_per_address,
                window,
                tracked,
            ),
            by_client: FailureLimit::new(
                "failures-per-client",
                config.failures_per_client,
                window,
                tracked,
            ),
            in_flight: Arc::new(Semaphore::new(config.max_concurrent)),
            trusted_proxies: config.trusted_proxies.clone(),
            ids: RandomState::new(),
        }
    }

    pub fn caller(&self, request: &HttpRequest, client_id: &str) -> Caller {
        Caller {
            address: self.source_address(request),
            client: self.ids.hash_one(client_id),
        }
    }

    /// Refuses a caller whose failure budget is used up, before any work.
    pub fn check(&self, caller: &Caller) -> Result<(), Exceeded> {
        let now = Instant::now();
        self.by_address.check(&caller.address, now)?;
        self.by_client.check(&(caller.client, caller.address), now)
    }

    /// A slot to check credentials in, or `None` when every slot is taken.
    pub fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }

    /// Counts a failed request against the caller's budgets.
    pub fn failed(&self, caller: &Caller) {
        let now = Instant::now();
        self.by_address.record(caller.address, now);
        self.by_client.record((caller.client, caller.address), now);
    }

    /// The peer, or behind trusted proxies the rightmost `X-Forwarded-For` entry
    /// they did not add themselves (entries left of it are the client's to forge).
    /// IPv6 sources count by /64, the block one subscriber usually holds.
    fn source_address(&self, request: &HttpRequest) -> IpAddr {
        let trusted = |address: &IpAddr| self.trusted_proxies.iter().any(|n| n.contains(address));
        let mut source = request
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.ip().to_canonical());
        if trusted(&source) {
            let forwarded: Vec<&str> = request
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|value| value.to_str().ok())
                .collect();
            for hop in forwarded.iter().rev().flat_map(|value| value.rsplit(',')) {
                let Ok(address) = hop.trim().parse::<IpAddr>() else {
                    break;
                };
                source = address.to_canonical();
                if !trusted(&source) {
                    break;
                }
            }
        }
        match source {
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
            v4 => v4,
        }
    }
}

/// A failure budget per key (GCRA): `quota` failures at once, refilled evenly
/// over `window`. The map is bounded: past `tracked` keys the least used are
/// forgotten, and a key is dropped once its budget is whole again.
struct FailureLimit<K> {
    policy: &'static str,
    quota: u32,
    window: Duration,
    /// The time one failure takes to be forgiven.
    interval: Duration,
    /// When each key's budget will be whole again.
    whole_at: Cache<K, Instant>,
}

impl<K: Hash + Eq + Send + Sync + 'static> FailureLimit<K> {
    fn new(policy: &'static str, quota: u32, window: Duration, tracked: u64) -> Self {
        Self {
            policy,
            quota,
            window,
            interval: window / quota.max(1),
            whole_at: Cache::builder()
                .max_capacity(tracked)
                .time_to_live(window)
                .build(),
        }
    }

    fn check(&self, key: &K, now: Instant) -> Result<(), Exceeded> {
        let Some(whole_at) = self.whole_at.get(key) else {
            return Ok(());
        };
        // One more failure fits while less than a whole window is owed.
        let owed = whole_at.saturating_duration_since(now);
        let allowed = self.window.saturating_sub(self.interval);
        if owed <= allowed {
            return Ok(());
        }
        Err(Exceeded {
            policy: self.policy,
            quota: self.quota,
            window: self.window,
            retry_after: owed - allowed,
        })
    }

    fn record(&self, key: K, now: Instant) {
        self.whole_at.entry(key).and_compute_with(|current| {
            let from = current.map_or(now, |entry| entry.into_value().max(now));
            Op::Put((from + self.interval).min(now + self.window))
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn a_budget_refuses_past_its_quota_and_refills_over_the_window() {
        let limit = FailureLimit::new("test", 3, Duration::from_secs(60), 1000);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limit.check(&1, start).is_ok());
            limit.record(1, start);
        }
        let refused = limit.check(&1, start).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(20));
        assert!(limit.check(&2, start).is_ok(), "other keys are unaffected");
        assert!(limit.check(&1, start + Duration::from_secs(20)).is_ok());
    }
}
