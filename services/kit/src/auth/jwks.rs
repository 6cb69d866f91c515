//! Token verification against the issuer's JWKS, fetched and cached. An unknown
//! `kid` triggers a refetch, so key rotation needs no restart; forged ones can't
//! make the verifier a relay for load on the key source:
//! - at most one fetch per `max(min_refetch, MIN_REFETCH)`, whatever the `kid`s;
//!   a request with an unknown `kid` waits for the next allowed fetch (at most
//!   `MAX_WAIT`) and shares it with every other request waiting then;
//! - `kid`s a fetch did not find are refused at once until the next fetch;
//! - no lock is held while fetching: known keys keep verifying meanwhile;
//! - after a failed fetch the next waits longer and longer (up to `MAX_BACKOFF`).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    errors::ErrorKind,
    jwk::{Jwk, JwkSet, KeyAlgorithm},
};

use super::{Claims, Principal};
use crate::{config::AuthConfig, error::ApiError};

/// The shortest interval between two fetches, whatever the key source asks for.
const MIN_REFETCH: Duration = Duration::from_secs(1);
/// The longest a request with an unknown `kid` waits for the next fetch.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// The longest pause after failed fetches.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Unknown `kid`s remembered between two fetches (beyond, they just wait).
const MAX_UNKNOWN: usize = 10_000;

#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    async fn jwks(&self) -> anyhow::Result<JwkSet>;

    /// How often an unknown key id may trigger a refetch: often enough to pick
    /// up a rotated key at once, rarely enough that forged key ids can't turn
    /// every request into a fetch. The verifier never refetches more often than
    /// once a second, even when this is shorter.
    fn min_refetch(&self) -> Duration {
        MIN_REFETCH
    }
}

/// The JWKS of an identity service reached over HTTP.
pub struct HttpKeySource {
    url: String,
    client: reqwest::Client,
}

impl HttpKeySource {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }
}

#[async_trait]
impl KeySource for HttpKeySource {
    async fn jwks(&self) -> anyhow::Result<JwkSet> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }
}

/// A fixed key set (tests, and processes handed keys some other way).
pub struct StaticKeySource(pub JwkSet);

#[async_trait]
impl KeySource for StaticKeySource {
    async fn jwks(&self) -> anyhow::Result<JwkSet> {
        Ok(self.0.clone())
    }
}

struct Keys {
    by_kid: HashMap<String, (DecodingKey, Algorithm)>,
    /// Key ids the last successful fetch did not have, asked for after it
    /// began: refused without waiting until the next fetch.
    unknown: HashSet<String>,
    /// When the last successful fetch began.
    fetched_at: Option<Instant>,
    /// When the last fetch, successful or not, began.
    attempted_at: Option<Instant>,
    /// The earliest time of the next fetch.
    next_fetch: Instant,
    /// Failed fetches in a row.
    failures: u32,
}

/// Verified tokens remembered, so a client reusing its token (as it should)
/// costs one signature check per token, not per request.
const VERIFIED: u64 = 10_000;

pub struct Authenticator {
    source: Arc<dyn KeySource>,
    /// Token → who it proved and until when (`exp`, seconds).
    verified: moka::sync::Cache<String, (Principal, i64)>,
    keys: RwLock<Keys>,
    /// Held by the one request fetching (and the one waiting to); the others
    /// queue behind it and use its result.
    fetching: tokio::sync::Mutex<()>,
    interval: Duration,
    issuer: String,
    audience: String,
    leeway: Duration,
    refresh: Duration,
}

impl Authenticator {
    pub fn new(source: Arc<dyn KeySource>, config: &AuthConfig) -> Self {
        let interval = source.min_refetch().max(MIN_REFETCH);
        Self {
            source,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED)
                .time_to_live(Duration::from_secs(300))
                .build(),
            keys: RwLock::new(Keys {
                by_kid: HashMap::new(),
                unknown: HashSet::new(),
                fetched_at: None,
                attempted_at: None,
                next_fetch: Instant::now(),
                failures: 0,
            }),
            fetching: tokio::sync::Mutex::new(()),
            interval,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway,
            refresh: config.jwks_refresh,
        }
    }

    /// Verifies an `Authorization` header value (`Bearer <jwt>`).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let header =
            authorization.ok_or_else(|| ApiError::unauthenticated("missing bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthenticated("authorization must be a bearer token"))?
            .trim();
        self.verify(token).await
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let now = chrono::Utc::now().timestamp();
        if let Some((principal, expires)) = self.verified.get(token) {
            let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(0);
            if now <= expires + leeway {
                return Ok(principal);
            }
            self.verified.invalidate(token);
            return Err(ApiError::unauthenticated("token expired"));
        }
        let (principal, expires) = self.check(token).await?;
        self.verified
            .insert(token.to_owned(), (principal.clone(), expires));
        Ok(principal)
    }

    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "every other token error is plainly invalid"
    )]
    async fn check(&self, token: &str) -> Result<(Principal, i64), ApiError> {
        let header =
            decode_header(token).map_err(|_| ApiError::unauthenticated("malformed token"))?;
        let kid = header
            .kid
            .ok_or_else(|| ApiError::unauthenticated("token has no key id"))?;
        let (key, algorithm) = self.key(&kid).await?;
        if header.alg != algorithm {
            return Err(ApiError::unauthenticated(
                "token algorithm does not match its key",
            ));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway.as_secs();
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => ApiError::unauthenticated("token expired"),
                ErrorKind::ImmatureSignature => ApiError::unauthenticated("token not valid yet"),
                ErrorKind::InvalidSignature => ApiError::unauthenticated("token signature invalid"),
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                    ApiError::unauthenticated("token issued for someone else")
                }
                _ => ApiError::unauthenticated("invalid token"),
            })?
            .claims;
        let expires = claims.exp;
        Ok((
            Principal {
                subject: claims.sub,
                roles: claims.roles.into_iter().collect(),
                partner_id: claims.partner_id,
                token: token.to_owned(),
            },
            expires,
        ))
    }

    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), ApiError> {
        let asked_at = Instant::now();
        let stale = {
            let keys = self.read();
            let fresh = keys
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.refresh);
            match keys.by_kid.get(kid) {
                Some(found) if fresh => return Ok(found.clone()),
                Some(found) => Some(found.clone()),
                None if keys.unknown.contains(kid) => return Err(unknown_key()),
                None => None,
            }
        };
        if let Some(found) = stale {
            return self.refreshed(kid, found).await;
        }
        self.refetch(asked_at).await;
        let mut keys = self.write();
        if let Some(found) = keys.by_kid.get(kid) {
            return Ok(found.clone());
        }
        if keys.fetched_at.is_some_and(|at| at >= asked_at) {
            if keys.unknown.len() < MAX_UNKNOWN {
                keys.unknown.insert(kid.to_owned());
            }
            return Err(unknown_key());
        }
        if keys.failures > 0 {
            Err(ApiError::unavailable(
                "keys_unavailable",
                "signing keys are unavailable; try again shortly",
            ))
        } else {
            Err(unknown_key())
        }
    }

    /// A known key past `refresh`: fetched again unless someone else is
    /// fetching or fetches are backing off; meanwhile the key still serves.
    async fn refreshed(
        &self,
        kid: &str,
        stale: (DecodingKey, Algorithm),
    ) -> Result<(DecodingKey, Algorithm), ApiError> {
        let Ok(_turn) = self.fetching.try_lock() else {
            return Ok(stale);
        };
        if self.read().next_fetch > Instant::now() {
            return Ok(stale);
        }
        if !self.fetch().await {
            return Ok(stale);
        }
        self.read().by_kid.get(kid).cloned().ok_or_else(unknown_key)
    }

    /// Makes sure a fetch begun at or after `asked_at` has ended, when one is
    /// allowed within `MAX_WAIT`.
    async fn refetch(&self, asked_at: Instant) {
        if self.read().next_fetch > Instant::now() + MAX_WAIT {
            return;
        }
        let _turn = self.fetching.lock().await;
        let next_fetch = {
            let keys = self.read();
            if keys.attempted_at.is_some_and(|at| at >= asked_at) {
                // Fetched for us while we queued.
                return;
            }
            keys.next_fetch
        };
        let now = Instant::now();
        if next_fetch > now + MAX_WAIT {
            return;
        }
        if next_fetch > now {
            tokio::time::sleep_until(next_fetch.into()).await;
        }
        self.fetch().await;
    }

    /// Fetches the key set (the caller holds `fetching`); returns whether it succeeded.
    async fn fetch(&self) -> bool {
        let started = Instant::now();
        let fetched = self.source.jwks().await;
        let mut keys = self.write();
        keys.attempted_at = Some(started);
        match fetched {
            Ok(set) => {
                if keys.failures > 0 {
                    tracing::info!(failures = keys.failures, "fetched the signing keys again");
                }
                keys.by_kid = set.keys.iter().filter_map(decoding_key).collect();
                keys.unknown.clear();
                keys.fetched_at = Some(started);
                keys.next_fetch = started + self.interval;
                keys.failures = 0;
                true
            }
            Err(error) => {
                keys.failures = keys.failures.saturating_add(1);
                let pause = self
                    .interval
                    .saturating_mul(2_u32.saturating_pow(keys.failures.min(16)))
                    .min(MAX_BACKOFF);
                keys.next_fetch = started + pause;
                tracing::warn!(
                    error = format!("{error:#}"),
                    failures = keys.failures,
                    retry_in = ?pause,
                    "fetching signing keys failed"
                );
                false
            }
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Keys> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unknown_key() -> ApiError {
    ApiError::unauthenticated("token signed by an unknown key")
}

#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "only asymmetric algorithms are trusted; the list is open-ended"
)]
fn decoding_key(jwk: &Jwk) -> Option<(String, (DecodingKey, Algorithm))> {
    let kid = jwk.common.key_id.clone()?;
    let algorithm = match jwk.common.key_algorithm? {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        // Symmetric and other algorithms are never accepted from a key set.
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, (key, algorithm)))
}
