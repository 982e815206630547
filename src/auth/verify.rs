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
mod tests {
    use serde_json::{Value, json};

    use super::super::testkeys::{
        TestKey, device_claims, hs256_token, now, rsa_key, unsigned_token,
    };
    use super::*;
    use crate::domain::VehicleId;

    const SECRET: &[u8] = b"a shared secret of at least 32 bytes!";

    struct Fixture {
        ed: TestKey,
        es: TestKey,
        rs: TestKey,
        keys: KeySet,
        secret: Key,
    }

    fn fixture() -> Fixture {
        let (ed, es, rs) = (TestKey::ed25519("ed-1"), TestKey::es256("es-1"), rsa_key("rs-1"));
        let keys = KeySet::parse(TestKey::jwks(&[&ed, &es, &rs]).as_bytes()).unwrap().keys;
        Fixture { ed, es, rs, keys, secret: secret_key(SECRET).unwrap() }
    }

    fn verify(f: &Fixture, token: &str, policy: &Policy) -> Result<Identity, AuthError> {
        verify_token(token, &f.keys, Some(&f.secret), policy)
    }

    fn plain() -> Policy {
        Policy::new(Duration::from_secs(30), None, None)
    }

    #[test]
    fn a_token_of_each_algorithm_verifies_with_its_key() {
        let f = fixture();
        let claims = device_claims("car-1", "record");
        let hs = hs256_token(&json!({"alg": "HS256", "typ": "JWT"}), &claims, SECRET);
        for (name, token) in [
            ("EdDSA", f.ed.sign(&claims)),
            ("ES256", f.es.sign(&claims)),
            ("RS256", f.rs.sign(&claims)),
            ("HS256", hs),
        ] {
            let identity = verify(&f, &token, &plain()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(identity.may_record(&VehicleId::try_from("car-1").unwrap()).is_ok(), "{name}");
        }
    }

    #[test]
    fn a_token_without_kid_uses_the_one_key_of_its_algorithm() {
        let f = fixture();
        let claims = device_claims("car-1", "read");
        assert!(verify(&f, &f.ed.sign_without_kid(&claims), &plain()).is_ok());
        let two_ed = KeySet::parse(TestKey::jwks(&[&f.ed, &TestKey::ed25519("ed-2")]).as_bytes())
            .unwrap()
            .keys;
        let error =
            verify_token(&f.ed.sign_without_kid(&claims), &two_ed, None, &plain()).unwrap_err();
        assert_eq!(error.reason(), "unknown_key");
    }

    /// Every way a token can be wrong, each with the refusal it must get.
    #[test]
    fn every_kind_of_bad_token_is_refused_with_its_own_reason() {
        let f = fixture();
        let claims = device_claims("car-1", "record");
        let header = |alg: &str, kid: &str| json!({"alg": alg, "typ": "JWT", "kid": kid});
        let with = |extra: Value| {
            let mut c = claims.clone();
            c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            c
        };
        let ed_token = f.ed.sign(&claims);
        let (head, _) = ed_token.rsplit_once('.').unwrap();
        let other_ed = TestKey::ed25519("ed-1");
        let rsa_public = f.rs.public_pem.as_bytes();
        let mut no_exp = claims.clone();
        no_exp.as_object_mut().unwrap().remove("exp");

        let cases: Vec<(&str, String, Policy, AuthError)> = vec![
            (
                "garbage",
                "garbage".into(),
                plain(),
                AuthError::Malformed("a JWT is three base64url parts joined by dots"),
            ),
            (
                "four parts",
                format!("{ed_token}.x"),
                plain(),
                AuthError::Malformed("a JWT is three base64url parts joined by dots"),
            ),
            (
                "header not base64",
                "!!.e30.sig".into(),
                plain(),
                AuthError::Malformed("its header is not base64url"),
            ),
            (
                "header not JSON",
                format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("nope")),
                plain(),
                AuthError::Malformed("its header is not a JSON object with a string `alg`"),
            ),
            (
                "claims not base64",
                format!("{}.!!.sig", head.split('.').next().unwrap()),
                plain(),
                AuthError::BadSignature,
            ),
            ("bad signature", other_ed.sign(&claims), plain(), AuthError::BadSignature),
            (
                "tampered claims",
                format!(
                    "{}.{}.{}",
                    head.split('.').next().unwrap(),
                    URL_SAFE_NO_PAD.encode(with(json!({"sub": "car-2"})).to_string()),
                    ed_token.rsplit('.').next().unwrap()
                ),
                plain(),
                AuthError::BadSignature,
            ),
            (
                "alg none",
                unsigned_token(&json!({"alg": "none"}), &claims),
                plain(),
                AuthError::UnsupportedAlgorithm("none"),
            ),
            (
                "alg None with kid",
                unsigned_token(&header("None", "ed-1"), &claims),
                plain(),
                AuthError::UnsupportedAlgorithm("none"),
            ),
            (
                "alg invented",
                unsigned_token(&json!({"alg": "X\u{1b}[31m"}), &claims),
                plain(),
                AuthError::UnsupportedAlgorithm("unrecognised"),
            ),
            (
                "RS512",
                unsigned_token(&header("RS512", "rs-1"), &claims),
                plain(),
                AuthError::UnsupportedAlgorithm("RS512"),
            ),
            (
                "HS256 signed with the RSA public key, secret set",
                hs256_token(&header("HS256", "rs-1"), &claims, rsa_public),
                plain(),
                AuthError::BadSignature,
            ),
            (
                "RS256 header on the Ed25519 key",
                f.rs.renamed("ed-1").sign(&claims),
                plain(),
                AuthError::AlgorithmMismatch,
            ),
            (
                "unknown kid",
                f.ed.renamed("gone").sign(&claims),
                plain(),
                AuthError::UnknownKey(
                    "the token's key id (kid) names none of the service's keys (was the key rotated out?)",
                ),
            ),
            ("expired", f.ed.sign(&with(json!({"exp": now() - 31}))), plain(), AuthError::Expired),
            (
                "nbf in the future",
                f.ed.sign(&with(json!({"nbf": now() + 31}))),
                plain(),
                AuthError::NotYetValid,
            ),
            (
                "iat in the future",
                f.ed.sign(&with(json!({"iat": now() + 31}))),
                plain(),
                AuthError::NotYetValid,
            ),
            (
                "missing exp",
                f.ed.sign(&no_exp),
                plain(),
                AuthError::InvalidClaim {
                    claim: "exp",
                    problem: "is missing or not a number of seconds",
                },
            ),
            (
                "exp not a number",
                f.ed.sign(&with(json!({"exp": "tomorrow"}))),
                plain(),
                AuthError::InvalidClaim {
                    claim: "exp",
                    problem: "is missing or not a number of seconds",
                },
            ),
            (
                "wrong iss",
                f.ed.sign(&with(json!({"iss": "someone-else"}))),
                Policy::new(Duration::ZERO, Some("us"), None),
                AuthError::WrongIssuer,
            ),
            (
                "missing iss",
                f.ed.sign(&claims),
                Policy::new(Duration::ZERO, Some("us"), None),
                AuthError::WrongIssuer,
            ),
            (
                "wrong aud",
                f.ed.sign(&with(json!({"aud": "elsewhere"}))),
                Policy::new(Duration::ZERO, None, Some("tributary")),
                AuthError::WrongAudience,
            ),
            (
                "missing aud",
                f.ed.sign(&claims),
                Policy::new(Duration::ZERO, None, Some("tributary")),
                AuthError::WrongAudience,
            ),
            (
                "too large",
                f.ed.sign(&with(json!({"pad": "x".repeat(MAX_TOKEN_BYTES)}))),
                plain(),
                AuthError::TooLarge,
            ),
        ];
        for (name, token, policy, expected) in cases {
            assert_eq!(verify(&f, &token, &policy).map(|_| ()), Err(expected), "{name}");
        }
    }

    #[test]
    fn hs256_is_refused_without_a_secret_even_when_signed_with_the_rsa_public_key() {
        let f = fixture();
        let confused = hs256_token(
            &json!({"alg": "HS256", "kid": "rs-1"}),
            &device_claims("car-1", "record"),
            f.rs.public_pem.as_bytes(),
        );
        let error = verify_token(&confused, &f.keys, None, &plain()).unwrap_err();
        assert_eq!(error.reason(), "unknown_key");
    }

    #[test]
    fn issuer_and_audience_pass_when_they_match_and_leeway_covers_a_recent_expiry() {
        let f = fixture();
        let policy = Policy::new(Duration::from_secs(30), Some("us"), Some("tributary"));
        let mut claims = device_claims("car-1", "read");
        let object = claims.as_object_mut().unwrap();
        object.insert("iss".into(), json!("us"));
        object.insert("aud".into(), json!(["other", "tributary"]));
        object.insert("exp".into(), json!(now() - 10));
        assert!(verify(&f, &f.es.sign(&claims), &policy).is_ok());
        // An aud is refused when the service has none configured? No: without a
        // configured audience, aud is not checked.
        assert!(verify(&f, &f.es.sign(&claims), &plain()).is_ok());
    }
}
