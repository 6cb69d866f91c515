//! API clients and the tokens they get: OAuth2 client credentials, ES256 JWTs,
//! signing keys rotated with overlap and published as a JWKS.

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use aws_lc_rs::{
    rand::{SecureRandom, SystemRandom},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use hotline_kit::{
    ApiError, ApiResult,
    auth::{Claims, KeySource, Principal, Role},
    db::is_unique_violation,
    rest::{Page, decode_cursor, page_limit},
};
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, JwkSet, PublicKeyUse},
};
use sea_orm::{
    ActiveValue::Set, Condition, DatabaseConnection, QueryOrder, QuerySelect, entity::prelude::*,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    client_secret::{SecretHasher, Verdict},
    pii::PiiCipher,
    store::{api_client, signing_key},
};

/// Retired keys stay published this much longer than the tokens they signed.
const RETIRED_KEY_GRACE: Duration = Duration::from_secs(300);
/// How long a replica signs with the key it loaded before looking for a newer one
/// (sooner when that key falls due for rotation).
const SIGNER_RECHECK: Duration = Duration::from_secs(60);
/// The shortest time a loaded key is used, so a failing rotation is not retried
/// on every request.
const SIGNER_MIN_USE: Duration = Duration::from_secs(1);

/// A client as listed to admins (never with its secret).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub roles: Vec<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    pub created_by: String,
    pub created_at: chrono::DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<chrono::DateTime<Utc>>,
}

/// A new client and its secret: the only time the secret is shown.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientView,
    pub client_secret: String,
}

/// The body of `POST /api/v1/clients`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// 1 to 100 characters (surrounding blanks are dropped).
    #[schema(
        example = "Repair shop Chaoyang",
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// `partner` alone, or any of the others.
    #[schema(min_items = 1)]
    pub roles: Vec<Role>,
    /// Required for (and only for) partner clients.
    #[serde(default)]
    pub partner_id: Option<String>,
}

/// An issued access token (RFC 6749 section 5.1).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
}

pub struct Tokens {
    db: DatabaseConnection,
    cipher: Arc<PiiCipher>,
    issuer: String,
    audience: String,
    ttl: Duration,
    rotation: Duration,
    secrets: SecretHasher,
    /// The key this replica signs with. Held only to read or replace it, never
    /// across an await: a rotation must never wait for a request, nor the reverse.
    signer: Mutex<Option<Signer>>,
    /// One reload of the signer at a time; the other requests wait for its result.
    reload: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Signer {
    kid: String,
    key: EncodingKey,
    use_until: Instant,
}

impl Tokens {
    pub fn new(
        db: DatabaseConnection,
        cipher: Arc<PiiCipher>,
        issuer: String,
        audience: String,
        ttl: Duration,
        rotation: Duration,
    ) -> Self {
        Self {
            db,
            secrets: SecretHasher::new(cipher.clone()),
            cipher,
            issuer,
            audience,
            ttl,
            rotation,
            signer: Mutex::new(None),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    // ---- signing keys

    /// Makes a new signing key when there is none or the newest is older than the
    /// rotation period. Safe on every replica at once: generations are unique.
    pub async fn rotate_if_due(&self) -> anyhow::Result<()> {
        let newest = self.newest_key().await?;
        let due = newest
            .as_ref()
            .is_none_or(|key| self.life_left(key).is_zero());
        if due {
            self.add_key(newest.map_or(0, |key| key.generation + 1))
                .await?;
        }
        Ok(())
    }

    /// Rotates now (an admin's call, e.g. after a suspected key leak).
    pub async fn rotate_now(&self) -> anyhow::Result<String> {
        let next = self.newest_key().await?.map_or(0, |key| key.generation + 1);
        if let Some(kid) = self.add_key(next).await? {
            return Ok(kid);
        }
        // Another replica made this generation's key a moment ago: that is the rotation.
        self.newest_key()
            .await?
            .map(|key| key.kid)
            .ok_or_else(|| anyhow::anyhow!("no signing key after a rotation"))
    }

    /// How much longer a key signs before it falls due for rotation.
    fn life_left(&self, key: &signing_key::Model) -> Duration {
        let age = Utc::now()
            .signed_duration_since(key.created_at)
            .to_std()
            .unwrap_or_default();
        self.rotation.saturating_sub(age)
    }

    async fn newest_key(&self) -> Result<Option<signing_key::Model>, DbErr> {
        signing_key::Entity::find()
            .order_by_desc(signing_key::Column::Generation)
            .one(&self.db)
            .await
    }

    /// Adds the key of `generation`; `None` when another replica added it first.
    async fn add_key(&self, generation: i64) -> anyhow::Result<Option<String>> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("generating a signing key failed"))?;
        let kid = format!("k{generation}-{}", random_token(6)?);
        let mut jwk =
            Jwk::from_encoding_key(&EncodingKey::from_ec_der(pkcs8.as_ref()), Algorithm::ES256)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let inserted = signing_key::ActiveModel {
            kid: Set(kid.clone()),
            generation: Set(generation),
            private_key: Set(self.cipher.encrypt(pkcs8.as_ref(), kid.as_bytes())?),
            public_jwk: Set(serde_json::to_string(&jwk)?),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await;
        match inserted {
            Ok(_) => {
                tracing::info!(kid, generation, "new signing key");
                *self.cached_signer() = None;
                Ok(Some(kid))
            }
            Err(error) if is_unique_violation(&error) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    fn cached_signer(&self) -> MutexGuard<'_, Option<Signer>> {
        self.signer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn usable_signer(&self) -> Option<Signer> {
        self.cached_signer()
            .as_ref()
            .filter(|signer| Instant::now() < signer.use_until)
            .cloned()
    }

    /// The key to sign with. Re-read when its time is up — at the latest a minute
    /// after loading, so a rotation made by another replica is followed well inside
    /// the grace period the old key stays published, and at the moment it falls due,
    /// so every replica rotates (or follows the one that did) on time.
    async fn signer(&self) -> ApiResult<Signer> {
        if let Some(signer) = self.usable_signer() {
            return Ok(signer);
        }
        let _reloading = self.reload.lock().await;
        if let Some(signer) = self.usable_signer() {
            return Ok(signer);
        }
        self.rotate_if_due().await.map_err(ApiError::internal)?;
        let key = self
            .newest_key()
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no signing key")))?;
        let pkcs8 = self
            .cipher
            .decrypt(&key.private_key, key.kid.as_bytes())
            .map_err(ApiError::internal)?;
        let signer = Signer {
            use_until: Instant::now() + self.life_left(&key).clamp(SIGNER_MIN_USE, SIGNER_RECHECK),
            kid: key.kid,
            key: EncodingKey::from_ec_der(&pkcs8),
        };
        *self.cached_signer() = Some(signer.clone());
        Ok(signer)
    }

    /// The public keys a verifier may meet: the newest, and older ones until every
    /// token they signed has expired.
    pub async fn jwks(&self) -> Result<JwkSet, DbErr> {
        let keys = signing_key::Entity::find()
            .order_by_desc(signing_key::Column::Generation)
            .all(&self.db)
            .await?;
        let now = Utc::now();
        let mut published = Vec::new();
        let mut successor_created: Option<chrono::DateTime<Utc>> = None;
        for key in keys {
            let live = successor_created.is_none_or(|replaced_at| {
                now.signed_duration_since(replaced_at)
                    .to_std()
                    .unwrap_or_default()
                    < self.ttl + RETIRED_KEY_GRACE
            });
            if live && let Ok(jwk) = serde_json::from_str::<Jwk>(&key.public_jwk) {
                published.push(jwk);
            }
            successor_created = Some(key.created_at);
        }
        Ok(JwkSet { keys: published })
    }

    // ---- tokens

    /// OAuth2 client credentials: a token for a live client whose secret matches.
    pub async fn issue(&self, client_id: &str, client_secret: &str) -> ApiResult<TokenResponse> {
        let client = api_client::Entity::find_by_id(client_id.to_owned())
            .one(&self.db)
            .await?;
        let verdict = self
            .secrets
            .verify(
                client_id,
                client_secret,
                client.as_ref().map(|c| c.secret_hash.as_str()),
            )
            .await?;
        let client = match client {
            Some(client) if verdict != Verdict::Mismatch && client.revoked_at.is_none() => client,
            _ => {
                return Err(ApiError::unauthenticated("unknown client or wrong secret")
                    .with_extension("error", "invalid_client"));
            }
        };
        if verdict == Verdict::MatchStale {
            self.replace_stale_hash(&client, client_secret).await;
        }
        let roles: Vec<Role> =
            serde_json::from_value(client.roles.clone()).map_err(ApiError::internal)?;
        let signer = self.signer().await?;
        let now = Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: client.client_id.clone(),
            aud: self.audience.clone(),
            exp: now + i64::try_from(self.ttl.as_secs()).unwrap_or(3600),
            iat: now,
            nbf: now,
            jti: Uuid::now_v7().to_string(),
            roles: roles.clone(),
            partner_id: client.partner_id.clone(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(signer.kid);
        let access_token =
            jsonwebtoken::encode(&header, &claims, &signer.key).map_err(ApiError::internal)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.ttl.as_secs(),
            scope: roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        })
    }

    // ---- clients

    pub async fn create_client(
        &self,
        actor: &Principal,
        new: NewClient,
    ) -> ApiResult<CreatedClient> {
        validate_client(&new)?;
        let (client_id, secret) = Self::generate_credentials().map_err(ApiError::internal)?;
        let model = self
            .insert_client(
                client_id,
                &secret,
                new.name.trim(),
                &new.roles,
                new.partner_id,
                &actor.subject,
            )
            .await?;
        Ok(CreatedClient {
            client: view(model)?,
            client_secret: secret,
        })
    }

    async fn insert_client(
        &self,
        client_id: String,
        secret: &str,
        name: &str,
        roles: &[Role],
        partner_id: Option<String>,
        created_by: &str,
    ) -> Result<api_client::Model, DbErr> {
        api_client::ActiveModel {
            secret_hash: Set(self.secrets.hash(&client_id, secret)),
            client_id: Set(client_id),
            name: Set(name.to_owned()),
            roles: Set(serde_json::Value::from_iter(
                roles.iter().map(|role| role.as_str()),
            )),
            partner_id: Set(partner_id),
            created_by: Set(created_by.to_owned()),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await
    }

    /// Stores a secret in the current scheme. Replacing an Argon2 hash after a
    /// successful request is best effort: the old hash keeps working meanwhile.
    async fn replace_stale_hash(&self, client: &api_client::Model, secret: &str) {
        if let Err(error) = self.store_secret(client, secret).await {
            tracing::warn!(client_id = client.client_id, error = %error, "replacing an Argon2 secret hash failed; will retry on the next request");
        }
    }

    async fn store_secret(&self, client: &api_client::Model, secret: &str) -> Result<(), DbErr> {
        let mut active: api_client::ActiveModel = client.clone().into();
        active.secret_hash = Set(self.secrets.hash(&client.client_id, secret));
        active.update(&self.db).await.map(drop)
    }

    /// API clients, oldest first, a page at a time.
    pub async fn list_clients(
        &self,
        limit: Option<u64>,
        cursor: Option<&str>,
    ) -> ApiResult<Page<ClientView>> {
        let limit = page_limit(limit);
        let mut query = api_client::Entity::find()
            .order_by_asc(api_client::Column::CreatedAt)
            .order_by_asc(api_client::Column::ClientId)
            .limit(limit + 1);
        if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
            let (at, after): (chrono::DateTime<Utc>, String) = decode_cursor(cursor)?;
            query = query.filter(
                Condition::any()
                    .add(api_client::Column::CreatedAt.gt(at))
                    .add(
                        Condition::all()
                            .add(api_client::Column::CreatedAt.eq(at))
                            .add(api_client::Column::ClientId.gt(after)),
                    ),
            );
        }
        let rows = query.all(&self.db).await?;
        Page::cut(rows, limit, |row| (row.created_at, row.client_id.clone())).try_map(view)
    }

    /// Revokes a client: no new tokens; tokens already issued expire within the token ttl.
    pub async fn revoke_client(&self, client_id: &str) -> ApiResult<ClientView> {
        let client = api_client::Entity::find_by_id(client_id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                ApiError::not_found("client_not_found", format!("client {client_id} not found"))
            })?;
        if client.revoked_at.is_some() {
            return view(client);
        }
        let mut active: api_client::ActiveModel = client.into();
        active.revoked_at = Set(Some(Utc::now()));
        view(active.update(&self.db).await?)
    }

    /// Creates the configured bootstrap admin client, or resets its stored secret
    /// to the configured one. Safe on every replica at once.
    pub async fn ensure_configured_admin(&self, id: &str, secret: &str) -> anyhow::Result<()> {
        let existing = api_client::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?;
        let Some(client) = existing else {
            return match self.create_bootstrap_admin(id, secret).await {
                Ok(()) => {
                    tracing::info!(
                        client_id = id,
                        "bootstrap client created from configuration"
                    );
                    Ok(())
                }
                // Another replica created it a moment ago.
                Err(error) if is_unique_violation(&error) => Ok(()),
                Err(error) => Err(error.into()),
            };
        };
        if client.revoked_at.is_some() {
            tracing::warn!(client_id = id, "the configured bootstrap client is revoked");
        }
        match self
            .secrets
            .verify(id, secret, Some(&client.secret_hash))
            .await?
        {
            Verdict::Match => {}
            Verdict::MatchStale => self.store_secret(&client, secret).await?,
            Verdict::Mismatch => {
                self.store_secret(&client, secret).await?;
                tracing::info!(
                    client_id = id,
                    "bootstrap client secret reset from configuration"
                );
            }
        }
        Ok(())
    }

    /// Whether no API client was ever made here (revoked ones count): only then
    /// is a bootstrap admin generated, so revoking the last admin mints no new one.
    pub async fn has_no_clients(&self) -> Result<bool, DbErr> {
        Ok(api_client::Entity::find().one(&self.db).await?.is_none())
    }

    /// An id and a 256-bit secret for a new client.
    pub fn generate_credentials() -> anyhow::Result<(String, String)> {
        Ok((format!("hc_{}", random_token(12)?), random_token(32)?))
    }

    pub async fn create_bootstrap_admin(&self, id: &str, secret: &str) -> Result<(), DbErr> {
        self.insert_client(
            id.to_owned(),
            secret,
            "bootstrap admin",
            &[Role::Admin],
            None,
            "bootstrap",
        )
        .await
        .map(drop)
    }
}

/// Identity verifies its own tokens straight from its key table.
#[async_trait]
impl KeySource for Tokens {
    async fn jwks(&self) -> anyhow::Result<JwkSet> {
        Ok(Tokens::jwks(self).await?)
    }

    /// A read of a small local table: a key rotated a moment ago is found at once.
    fn min_refetch(&self) -> Duration {
        Duration::ZERO
    }
}

fn validate_client(new: &NewClient) -> ApiResult<()> {
    let mut fields = Vec::new();
    let mut problem = |pointer: &str, message: &str| {
        fields.push(hotline_kit::error::FieldError {
            pointer: pointer.into(),
            message: message.into(),
        });
    };
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        problem("/name", "must be 1 to 100 characters");
    }
    if new.roles.is_empty() {
        problem("/roles", "at least one role");
    }
    let partner = new.roles.contains(&Role::Partner);
    if partner && new.roles.len() > 1 {
        problem("/roles", "a partner client has the partner role only");
    }
    match (&new.partner_id, partner) {
        (None, true) => problem("/partner_id", "required for a partner client"),
        (Some(_), false) => problem("/partner_id", "only partner clients have one"),
        (Some(id), true) if id.trim().is_empty() || id.len() > 64 => {
            problem("/partner_id", "must be 1 to 64 characters")
        }
        _ => {}
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(fields))
    }
}

fn view(model: api_client::Model) -> ApiResult<ClientView> {
    Ok(ClientView {
        roles: serde_json::from_value(model.roles).map_err(ApiError::internal)?,
        client_id: model.client_id,
        name: model.name,
        partner_id: model.partner_id,
        created_by: model.created_by,
        created_at: model.created_at,
        revoked_at: model.revoked_at,
    })
}

fn random_token(bytes: usize) -> anyhow::Result<String> {
    let mut buffer = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buffer)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}
