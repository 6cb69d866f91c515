//! Token verification against the issuer's JWKS, fetched and cached. An unknown
//! `kid` triggers a (rate-limited) refetch, so key rotation needs no restart.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    errors::ErrorKind,
    jwk::{Jwk, JwkSet, KeyAlgorithm},
};
use tokio::sync::RwLock;

use super::{Claims, Principal};
use crate::{config::AuthConfig, error::ApiError};

#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    async fn jwks(&self) -> anyhow::Result<JwkSet>;

    /// How often an unknown key id may trigger a refetch: often enough to pick
    /// up a rotated key at once, rarely enough that forged key ids can't turn
    /// every request into a fetch.
    fn min_refetch(&self) -> Duration {
        Duration::from_secs(1)
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
    fetched_at: Option<Instant>,
}

pub struct Authenticator {
    source: Arc<dyn KeySource>,
    keys: RwLock<Keys>,
    issuer: String,
    audience: String,
    leeway: Duration,
    refresh: Duration,
}

impl Authenticator {
    pub fn new(source: Arc<dyn KeySource>, config: &AuthConfig) -> Self {
        Self {
            source,
            keys: RwLock::new(Keys {
                by_kid: HashMap::new(),
                fetched_at: None,
            }),
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

    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "every other token error is plainly invalid"
    )]
    pub async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
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
        Ok(Principal {
            subject: claims.sub,
            roles: claims.roles.into_iter().collect(),
            partner_id: claims.partner_id,
            token: token.to_owned(),
        })
    }

    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), ApiError> {
        {
            let keys = self.keys.read().await;
            let fresh = keys
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.refresh);
            if let Some(found) = keys.by_kid.get(kid)
                && fresh
            {
                return Ok(found.clone());
            }
        }
        let mut keys = self.keys.write().await;
        let may_fetch = keys.fetched_at.is_none_or(|at| {
            at.elapsed() >= self.source.min_refetch() || at.elapsed() >= self.refresh
        });
        if may_fetch {
            match self.source.jwks().await {
                Ok(set) => {
                    keys.by_kid = set.keys.iter().filter_map(decoding_key).collect();
                    keys.fetched_at = Some(Instant::now());
                }
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "fetching signing keys failed");
                    if keys.by_kid.is_empty() {
                        return Err(ApiError::unavailable(
                            "keys_unavailable",
                            "signing keys are unavailable; try again shortly",
                        ));
                    }
                }
            }
        }
        keys.by_kid
            .get(kid)
            .cloned()
            .ok_or_else(|| ApiError::unauthenticated("token signed by an unknown key"))
    }
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
