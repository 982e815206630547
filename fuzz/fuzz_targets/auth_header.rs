//! Identity: the `Authorization` header and `access_token` query parser, and
//! the token verifier behind it (keys from a JWKS file, and an HS256 secret).
//! Never a panic; a token is only ever accepted when it is HS256-signed with
//! the secret, and then it holds exactly the vehicles its claims give it.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use axum::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use tributary::auth::authenticator::{Authenticator, AuthenticatorConfig};
use tributary::auth::mint::{TokenArgs, mint};
use tributary::auth::{AuthError, TokenPlaces, bearer_token, request_token};
use tributary::domain::VehicleId;

/// Public keys only (RFC 8037 A.2's Ed25519 key, and the P-256 base point,
/// whose private key is 1): the target signs nothing with them, so they
/// exercise key selection and refusal.
const KEYS: &str = r#"{"keys": [
  {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
  {"kty": "EC", "crv": "P-256", "kid": "es", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
   "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}
]}"#;
const SECRET: &str = "the fuzzer's shared secret, 32 bytes or more";

struct Fixture {
    auth: Authenticator,
    secret_file: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tributary-fuzz-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (keys, secret_file) = (dir.join("keys.json"), dir.join("secret"));
        std::fs::write(&keys, KEYS).unwrap();
        std::fs::write(&secret_file, SECRET).unwrap();
        let auth = Authenticator::new(AuthenticatorConfig {
            key_file: Some(keys),
            secret: Some(SECRET.into()),
            leeway: Duration::from_secs(30),
            issuer: None,
            audience: None,
        })
        .expect("the fuzz keys load");
        Fixture { auth, secret_file }
    })
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    /// An arbitrary header value and query string.
    Request { header: Option<&'a [u8]>, query: Option<&'a str>, query_allowed: bool },
    /// An arbitrary token.
    Token(&'a str),
    /// A token assembled from chosen parts, with any signature.
    Parts { header: &'a str, claims: &'a str, signature: &'a [u8] },
    /// A token validly signed with the secret, over arbitrary claim values.
    Signed { sub: Option<String>, vehicles: Vec<String>, scope: String, ttl: u32 },
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fuzz_target!(|input: Input| {
    let fixture = fixture();
    match input {
        Input::Request { header, query, query_allowed } => {
            let mut headers = HeaderMap::new();
            if let Some(value) = header.and_then(|v| HeaderValue::from_bytes(v).ok()) {
                if let Ok(token) = bearer_token(value.as_bytes()) {
                    assert!(!token.is_empty() && !token.contains(' '));
                }
                headers.insert(AUTHORIZATION, value);
            }
            let places =
                if query_allowed { TokenPlaces::HeaderOrQuery } else { TokenPlaces::HeaderOnly };
            if let Ok(token) = request_token(&headers, query, places) {
                let _ = fixture.auth.verify(&token);
            }
        }
        Input::Token(token) => {
            let _ = fixture.auth.verify(token);
        }
        Input::Parts { header, claims, signature } => {
            let token = format!(
                "{}.{}.{}",
                base64url(header.as_bytes()),
                base64url(claims.as_bytes()),
                base64url(signature)
            );
            assert!(
                fixture.auth.verify(&token).is_err(),
                "a token with a made-up signature was accepted"
            );
        }
        Input::Signed { sub, vehicles, scope, ttl } => {
            let args = TokenArgs {
                key: None,
                secret: None,
                secret_file: Some(fixture.secret_file.clone()),
                vehicles: vehicles.clone(),
                scope,
                ttl: Duration::from_secs(u64::from(ttl) + 60),
                sub: sub.clone(),
                iss: None,
                aud: None,
                kid: None,
            };
            let token = mint(&args).expect("minting with a secret cannot fail");
            match fixture.auth.verify(&token) {
                Ok(identity) => match identity.vehicles() {
                    all if all.is_all() => assert!(vehicles.iter().any(|v| v == "*")),
                    listed => {
                        let held = listed.listed();
                        let expected: Vec<VehicleId> = if vehicles.is_empty() {
                            sub.as_deref()
                                .and_then(|s| VehicleId::try_from(s).ok())
                                .into_iter()
                                .collect()
                        } else {
                            vehicles
                                .iter()
                                .map(|v| VehicleId::try_from(v.as_str()).unwrap())
                                .collect()
                        };
                        assert!(held.iter().all(|v| expected.contains(v)));
                        assert!(expected.iter().all(|v| held.contains(v)));
                    }
                },
                Err(AuthError::InvalidClaim { claim: "vehicles", .. }) => {
                    assert!(
                        vehicles
                            .iter()
                            .any(|v| v != "*" && VehicleId::try_from(v.as_str()).is_err())
                    );
                }
                Err(AuthError::TooLarge) => assert!(token.len() > tributary::auth::MAX_TOKEN_BYTES),
                Err(other) => panic!("a validly signed token was refused: {other}"),
            }
        }
    }
});
