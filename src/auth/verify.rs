//! Verifying one token, uncached: size, header, key selection, signature and
//! claims, in that order, each failure a distinct [`AuthError`].
//!
//! The header is peeked at by hand first (base64url and a two-field JSON
//! object) for two reasons: to pick the key, and to refuse `alg: none` or an
//! algorithm the service does not use with that name, where `jsonwebtoken`
//! would report only a JSON error. The header can only *select* a key: HS256
//! tokens go to the shared secret, every other algorithm to a key from the key
//! file (never an HMAC key), and the key's own algorithm is the only one
//! `jsonwebtoken` is allowed to use with it. So neither `alg: none` nor an
//! HS256 token "signed" with an RSA public key can ever verify.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::{AuthError, MAX_TOKEN_BYTES};
use super::identity::{Identity, RawClaims};
use super::keys::{Key, KeySet};

/// The algorithms tokens may use, each bound to one kind of key.
const ACCEPTED: [Algorithm; 4] =
    [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256, Algorithm::HS256];

/// What a valid token's claims must satisfy, with one `jsonwebtoken`
/// `Validation` per accepted algorithm, built once.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    leeway: u64,
    validations: Vec<(Algorithm, Validation)>,
}

impl Policy {
    pub(crate) fn new(leeway: Duration, issuer: Option<&str>, audience: Option<&str>) -> Self {
        // Whole seconds, as JWT times are; a fraction widens the leeway rather than narrowing it.
        let leeway = leeway.as_secs() + u64::from(leeway.subsec_nanos() > 0);
        let validations = ACCEPTED
            .into_iter()
            .map(|algorithm| {
                let mut validation = Validation::new(algorithm);
                validation.leeway = leeway;
                validation.validate_nbf = true;
                let mut required = vec!["exp"];
                // jsonwebtoken accepts a token *without* iss or aud even when one
                // is configured, unless the claim is also required.
                if let Some(issuer) = issuer {
                    validation.set_issuer(&[issuer]);
                    required.push("iss");
                }
                match audience {
                    Some(audience) => {
                        validation.set_audience(&[audience]);
                        required.push("aud");
                    }
                    None => validation.validate_aud = false,
                }
                validation.set_required_spec_claims(&required);
                (algorithm, validation)
            })
            .collect();
        Self { leeway, validations }
    }

    /// The leeway, in whole seconds.
    pub(crate) fn leeway(&self) -> u64 {
        self.leeway
    }

    fn validation(&self, algorithm: Algorithm) -> &Validation {
        let (_, validation) = self
            .validations
            .iter()
            .find(|(a, _)| *a == algorithm)
            .expect("keys only ever have an accepted algorithm");
        validation
    }
}

/// The HS256 key of a shared secret.
pub(crate) fn secret_key(secret: &[u8]) -> Result<Key, jsonwebtoken::errors::Error> {
    Ok(Key {
        kid: String::new(),
        algorithm: Algorithm::HS256,
        decoding: DecodingKey::from_secret(secret)?,
    })
}

/// Verifies `token` with `keys` (from the key file) and `secret` (HS256).
pub(crate) fn verify_token(
    token: &str,
    keys: &KeySet,
    secret: Option<&Key>,
    policy: &Policy,
) -> Result<Identity, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TooLarge);
    }
    let (algorithm, kid) = peek_header(token)?;
    let key = select_key(algorithm, kid.as_deref(), keys, secret)?;
    let data =
        jsonwebtoken::decode::<RawClaims>(token, &key.decoding, policy.validation(key.algorithm))
            .map_err(|e| decode_error(e.kind()))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    data.claims.into_identity(now, policy.leeway)
}

/// The `alg` and `kid` of a token's header, without verifying anything.
fn peek_header(token: &str) -> Result<(Algorithm, Option<String>), AuthError> {
    #[derive(Deserialize)]
    struct Peek {
        alg: String,
        kid: Option<String>,
    }
    let mut parts = token.split('.');
    let header = parts.next().unwrap_or_default();
    if parts.count() != 2 {
        return Err(AuthError::Malformed("a JWT is three base64url parts joined by dots"));
    }
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("its header is not base64url"))?;
    let peek: Peek = serde_json::from_slice(&json)
        .map_err(|_| AuthError::Malformed("its header is not a JSON object with a string `alg`"))?;
    let algorithm = match peek.alg.as_str() {
        "EdDSA" => Algorithm::EdDSA,
        "ES256" => Algorithm::ES256,
        "RS256" => Algorithm::RS256,
        "HS256" => Algorithm::HS256,
        other => return Err(AuthError::UnsupportedAlgorithm(known_name(other))),
    };
    Ok((algorithm, peek.kid))
}

/// A refused algorithm's name, if it is a registered one: the caller chose the
/// text, so anything else is not repeated back.
fn known_name(alg: &str) -> &'static str {
    const REGISTERED: [&str; 14] = [
        "none", "HS384", "HS512", "RS384", "RS512", "PS256", "PS384", "PS512", "ES384", "ES512",
        "ES256K", "Ed25519", "Ed448", "EdDSA",
    ];
    REGISTERED.into_iter().find(|name| name.eq_ignore_ascii_case(alg)).unwrap_or("unrecognised")
}

fn select_key<'k>(
    algorithm: Algorithm,
    kid: Option<&str>,
    keys: &'k KeySet,
    secret: Option<&'k Key>,
) -> Result<&'k Key, AuthError> {
    if algorithm == Algorithm::HS256 {
        return secret.ok_or(AuthError::UnknownKey(
            "the token is HS256 but the service has no shared secret (TRIBUTARY_AUTH_SECRET)",
        ));
    }
    match kid {
        Some(kid) => {
            let key = keys.by_kid(kid).ok_or(AuthError::UnknownKey(
                "the token's key id (kid) names none of the service's keys (was the key rotated out?)",
            ))?;
            if key.algorithm != algorithm {
                return Err(AuthError::AlgorithmMismatch);
            }
            Ok(key)
        }
        None => {
            let mut candidates = keys.for_algorithm(algorithm);
            match (candidates.next(), candidates.next()) {
                (Some(key), None) => Ok(key),
                (None, _) => Err(AuthError::UnknownKey(
                    "the token names no key id (kid) and no key of the service has its algorithm",
                )),
                (Some(_), Some(_)) => Err(AuthError::UnknownKey(
                    "the token names no key id (kid) and several keys of the service could have \
                     signed it",
                )),
            }
        }
    }
}

fn decode_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidAlgorithm => AuthError::AlgorithmMismatch,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "iss" => AuthError::WrongIssuer,
            "aud" => AuthError::WrongAudience,
            // jsonwebtoken counts an `exp` that is not a number as missing.
            _ => AuthError::InvalidClaim {
                claim: "exp",
                problem: "is missing or not a number of seconds",
            },
        },
        ErrorKind::InvalidClaimFormat(claim) => AuthError::InvalidClaim {
            claim: ["exp", "nbf", "iss", "aud", "sub"]
                .into_iter()
                .find(|name| name == claim)
                .unwrap_or("a registered"),
            problem: "has the wrong type",
        },
        ErrorKind::Base64(_) => AuthError::Malformed("a part is not base64url"),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            AuthError::Malformed("its header or claims are not a JSON object")
        }
        // Key errors cannot happen for keys checked at load; anything else
        // about the token's shape is reported as such.
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidEddsaKey | ErrorKind::InvalidRsaKey(_) => {
            AuthError::BadSignature
        }
        _ => AuthError::Malformed("it cannot be decoded"),
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
