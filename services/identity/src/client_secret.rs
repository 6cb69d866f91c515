//! Client secrets at rest. Generated secrets are 256-bit random values and
//! configured ones at least 16 characters, so a memory-hard hash adds nothing but
//! a cost anyone can make identity pay (Argon2 took 19 MiB per check). A secret is
//! stored as an HMAC-SHA256 keyed by the PII key and bound to its client id — a
//! copy of the table alone can't test guesses — and compared in constant time.
//! Argon2 hashes from earlier versions still verify, a few at a time, and are
//! replaced on the client's next successful token request.

use std::sync::Arc;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use hotline_kit::{ApiResult, error::ApiError};
use tokio::sync::Semaphore;

use crate::pii::PiiCipher;

const SCHEME: &str = "hmac-sha256$";
const DOMAIN: &str = "client_secret";
/// Argon2 checks of old hashes at once: each takes 19 MiB.
const LEGACY_AT_ONCE: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Mismatch,
    Match,
    /// A match against an old Argon2 hash, which should be replaced.
    MatchStale,
}

pub struct SecretHasher {
    cipher: Arc<PiiCipher>,
    legacy: Semaphore,
}

impl SecretHasher {
    pub fn new(cipher: Arc<PiiCipher>) -> Self {
        Self {
            cipher,
            legacy: Semaphore::new(LEGACY_AT_ONCE),
        }
    }

    /// What is stored for a client's secret.
    pub fn hash(&self, client_id: &str, secret: &str) -> String {
        format!("{SCHEME}{}", self.tag(client_id, secret))
    }

    fn tag(&self, client_id: &str, secret: &str) -> String {
        self.cipher
            .blind_index(DOMAIN, &format!("{client_id}:{secret}"))
    }

    /// Checks a secret against a stored hash; `None` stands for an unknown
    /// client, checked against nothing in the same time.
    pub async fn verify(
        &self,
        client_id: &str,
        secret: &str,
        stored: Option<&str>,
    ) -> ApiResult<Verdict> {
        let tag = self.tag(client_id, secret);
        let Some(stored) = stored else {
            let _ = verify_slices_are_equal(tag.as_bytes(), &[b'-'; 43]);
            return Ok(Verdict::Mismatch);
        };
        if let Some(expected) = stored.strip_prefix(SCHEME) {
            return Ok(
                match verify_slices_are_equal(tag.as_bytes(), expected.as_bytes()) {
                    Ok(()) => Verdict::Match,
                    Err(_) => Verdict::Mismatch,
                },
            );
        }
        let _permit = self.legacy.acquire().await.map_err(ApiError::internal)?;
        let (secret, stored) = (secret.to_owned(), stored.to_owned());
        let matched = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .map_err(ApiError::internal)?;
        Ok(if matched {
            Verdict::MatchStale
        } else {
            Verdict::Mismatch
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use argon2::{PasswordHasher, password_hash::SaltString};

    use super::*;

    fn hasher() -> SecretHasher {
        SecretHasher::new(Arc::new(PiiCipher::from_key(&[7; 32]).unwrap()))
    }

    #[tokio::test]
    async fn a_stored_secret_matches_only_itself_and_its_client() {
        let hasher = hasher();
        let stored = hasher.hash("hc_a", "s3cret");
        assert!(stored.starts_with(SCHEME));
        let verify = |id, secret| hasher.verify(id, secret, Some(&stored));
        assert_eq!(verify("hc_a", "s3cret").await.unwrap(), Verdict::Match);
        assert_eq!(verify("hc_a", "s3creT").await.unwrap(), Verdict::Mismatch);
        assert_eq!(verify("hc_b", "s3cret").await.unwrap(), Verdict::Mismatch);
        assert_eq!(
            hasher.verify("hc_a", "s3cret", None).await.unwrap(),
            Verdict::Mismatch
        );
    }

    #[tokio::test]
    async fn argon2_hashes_from_earlier_versions_still_match_and_are_marked_stale() {
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let old = Argon2::default()
            .hash_password(b"s3cret", &salt)
            .unwrap()
            .to_string();
        let hasher = hasher();
        let verify = |secret| hasher.verify("hc_a", secret, Some(&old));
        assert_eq!(verify("s3cret").await.unwrap(), Verdict::MatchStale);
        assert_eq!(verify("wrong").await.unwrap(), Verdict::Mismatch);
    }
}
