//! Standard Webhooks signatures: HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`
//! keyed by the secret's bytes (base64 after `whsec_`), sent as `v1,<base64>`;
//! several space-separated while a rotated secret is still honoured.

use aws_lc_rs::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};
use base64::{Engine, engine::general_purpose::STANDARD};

const PREFIX: &str = "whsec_";
/// Bytes of a generated key (the spec asks for 24 to 64).
const KEY_LEN: usize = 32;

/// A new secret, `whsec_` and 32 random bytes in base64.
pub fn generate() -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new().fill(&mut key)?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(key)))
}

/// The `webhook-signature` header for `body` under each of `secrets`.
/// A secret that isn't `whsec_` and base64 signs nothing.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> String {
    let content = format!("{id}.{timestamp}.{body}");
    secrets
        .iter()
        .filter_map(|secret| STANDARD.decode(secret.strip_prefix(PREFIX)?).ok())
        .map(|key| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
            format!(
                "v1,{}",
                STANDARD.encode(hmac::sign(&key, content.as_bytes()))
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signs_the_specifications_example() {
        assert_eq!(
            header(
                &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#,
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn signs_with_every_secret_during_a_rotation() {
        let (old, new) = (generate().unwrap(), generate().unwrap());
        let both = header(&[&new, &old], "msg_1", 1, "{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], header(&[&new], "msg_1", 1, "{}"));
        assert_eq!(parts[1], header(&[&old], "msg_1", 1, "{}"));
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn a_generated_secret_is_32_bytes() {
        let secret = generate().unwrap();
        let key = STANDARD
            .decode(secret.strip_prefix(PREFIX).unwrap())
            .unwrap();
        assert_eq!(key.len(), KEY_LEN);
        assert_eq!(header(&["not a secret"], "msg_1", 1, "{}"), "");
    }
}
