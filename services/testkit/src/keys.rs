//! Signing keys a test controls: to mint tokens for services under test, and
//! to forge ones a service must refuse (foreign-signed, expired, wrong audience).

use std::sync::Arc;

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};
use hotline_kit::auth::{Claims, KeySource, Role, StaticKeySource};
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{Jwk, JwkSet},
};

pub struct TestKeys {
    kid: String,
    key: EncodingKey,
    jwk: Jwk,
}

impl TestKeys {
    pub fn generate(kid: &str) -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            key,
            jwk,
        }
    }

    /// A key source that trusts exactly this key.
    pub fn key_source(&self) -> Arc<dyn KeySource> {
        Arc::new(StaticKeySource(JwkSet {
            keys: vec![self.jwk.clone()],
        }))
    }

    pub fn claims(subject: &str, roles: &[Role]) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "hotline".into(),
            sub: subject.into(),
            aud: "hotline".into(),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            roles: roles.to_vec(),
            partner_id: None,
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// A valid token for `roles`.
    pub fn token(&self, roles: &[Role]) -> String {
        self.sign(&Self::claims("test-client", roles))
    }
}
