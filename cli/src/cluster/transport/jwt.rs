//! HS256 JSON Web Signatures, as Spark's `JWSFilter` checks them on the REST gateway
//! (`Authorization: Bearer <token>`), signed with the base64 secret the master was given.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// Decodes a base64 secret, in the URL-safe or the standard alphabet, padded or not.
pub fn decode_secret(text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    let unpadded = text.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(unpadded)
        .or_else(|_| STANDARD.decode(text))
        .map_err(|_| anyhow::anyhow!("the JWT secret is not base64"))?;
    if bytes.len() < 32 {
        anyhow::bail!(
            "the JWT secret is {} bytes; HS256 needs at least 32",
            bytes.len()
        );
    }
    Ok(bytes)
}

/// How long a token is valid: each request signs a fresh one, so a captured token replays for
/// five minutes at most (Spark's `JWSFilter` refuses it after its `exp`).
pub const LIFETIME_SECS: u64 = 300;

/// What a token says: who (`sub`), when it was issued (`iat`) and when it expires (`exp`),
/// times in seconds since the epoch.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Claims {
    /// The subject.
    pub sub: String,
    /// Issued at, in seconds since the epoch.
    pub iat: u64,
    /// Expires at, in seconds since the epoch.
    pub exp: u64,
}

impl Claims {
    /// Claims for `sub` issued at `now`, expiring [`LIFETIME_SECS`] later.
    ///
    /// # Examples
    ///
    /// ```
    /// use cargo_stream::cluster::transport::jwt::Claims;
    /// let claims = Claims::issued("me", 1_700_000_000);
    /// assert_eq!(claims.exp, 1_700_000_300);
    /// ```
    pub fn issued(sub: &str, now: u64) -> Claims {
        Claims {
            sub: sub.to_owned(),
            iat: now,
            exp: now + LIFETIME_SECS,
        }
    }
}

/// A compact HS256 JWS over `claims`, signed with `key`.
///
/// # Examples
///
/// ```
/// use cargo_stream::cluster::transport::jwt::{Claims, sign};
/// let token = sign(&[7u8; 32], &Claims::issued("me", 1_700_000_000));
/// assert_eq!(token.split('.').count(), 3);
/// ```
pub fn sign(key: &[u8], claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD
        .encode(serde_json::to_string(claims).expect("claims of strings and numbers serialize"));
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_rfc_7515_a1() {
        // RFC 7515 appendix A.1's key, with our header and claims: the signature checks
        // against an HMAC computed independently over the same input.
        let key = decode_secret(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
        )
        .unwrap();
        let token = sign(&key, &Claims::issued("joe", 1_300_819_380));
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(input.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap())
            .unwrap();
        assert!(input.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
        // issue 14: the token expires.
        let payload = URL_SAFE_NO_PAD
            .decode(input.split('.').nth(1).unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            r#"{"sub":"joe","iat":1300819380,"exp":1300819680}"#
        );
    }

    #[test]
    fn short_or_bad_secrets_are_refused() {
        assert!(decode_secret("c2hvcnQ=").is_err());
        assert!(decode_secret("not base64 !!").is_err());
        assert!(decode_secret(&STANDARD.encode([1u8; 32])).is_ok());
    }
}
