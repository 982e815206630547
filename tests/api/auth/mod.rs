//! Identity and access (issue 13) against the running service: every route ×
//! every kind of bad or insufficient token (`table`), random fleets and tokens
//! (`property`), key rotation and SIGHUP on the real binary (`rotation`), and
//! the settings around them: start-up errors, `/readyz`, the metrics port,
//! browsers (`settings`).
//!
//! Keys are made at test time: an Ed25519 pair from ring (as `tributary auth
//! keygen` makes them) and an RSA pair from the `rsa` crate, once per test
//! process (a 2048-bit key takes seconds in a debug build).

mod property;
mod rotation;
mod settings;
mod table;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use tributary::config::ServeSettings;

use crate::common::{Answer, Backend, TestApp, spawn_app_with};

/// The issuer and audience the secured services check.
pub const ISSUER: &str = "https://id.example.com";
pub const AUDIENCE: &str = "tributary";
/// The HS256 secret the secured services also accept (both forms may be set).
pub const SECRET: &str = "a-shared-secret-of-at-least-32-bytes-for-hs256";

/// A signing key pair and its `kid`.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    /// The public key as a PEM document (the RSA one doubles as an HS256
    /// "secret" in the key-confusion attack).
    pub public_pem: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    pub fn ed25519(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        // RFC 8410 SubjectPublicKeyInfo: a fixed prefix and the 32-byte key.
        let spki = [
            &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..],
            pair.public_key().as_ref(),
        ]
        .concat();
        let private_pem = pem("PRIVATE KEY", pkcs8.as_ref());
        let public_pem = pem("PUBLIC KEY", &spki);
        Self {
            kid: kid.to_owned(),
            algorithm: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap(),
            decoding: DecodingKey::from_ed_pem(public_pem.as_bytes()).unwrap(),
            public_pem,
        }
    }

    /// An RSA key (one per process, under any `kid`).
    pub fn rsa(kid: &str) -> Self {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        let key = KEY.get_or_init(|| {
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
            let private = rsa::PrivateKey::new(&mut RingRng, 2048).unwrap();
            let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
            let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
            Self {
                kid: String::new(),
                algorithm: Algorithm::RS256,
                encoding: EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
                decoding: DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap(),
                public_pem,
            }
        });
        Self { kid: kid.to_owned(), ..key.clone() }
    }

    /// The public key as a JWK with this key's `kid`.
    pub fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_decoding_key(&self.decoding, Some(self.algorithm)).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        serde_json::to_value(&jwk).unwrap()
    }

    /// A token over `claims`, naming this key's `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn pem(tag: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(tag, der.to_vec()))
}

/// ring's system RNG for the `rsa` crate's key generation.
struct RingRng;

impl rsa::rand_core::TryRng for RingRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        ring::rand::SecureRandom::fill(&SystemRandom::new(), dst).expect("system randomness");
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for RingRng {}

/// Writes a JWKS document of `keys` to `path` (replacing it atomically, as a
/// secret mount or a careful operator does).
pub fn write_jwks(path: &Path, keys: &[&SigningKey]) {
    let document = json!({"keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>()});
    let staging = path.with_extension("tmp");
    std::fs::write(&staging, document.to_string()).unwrap();
    std::fs::rename(&staging, path).unwrap();
}

/// Now, in Unix seconds.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An identity service: an Ed25519 and an RSA key in a JWKS file the service
/// is pointed at (and the shared secret, [`SECRET`]).
pub struct Issuer {
    _dir: tempfile::TempDir,
    pub key_file: PathBuf,
    pub ed: SigningKey,
    pub rsa: SigningKey,
}

impl Issuer {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("keys.jwks.json");
        let (ed, rsa) = (SigningKey::ed25519("ed-1"), SigningKey::rsa("rsa-1"));
        write_jwks(&key_file, &[&ed, &rsa]);
        Self { _dir: dir, key_file, ed, rsa }
    }

    /// Valid claims (for an hour) with `scope` and `vehicles`.
    pub fn claims(scope: &str, vehicles: &[&str]) -> Value {
        json!({
            "sub": "tester", "scope": scope, "vehicles": vehicles,
            "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 3600,
        })
    }

    /// A valid token with `scope` for `vehicles`.
    pub fn token(&self, scope: &str, vehicles: &[&str]) -> String {
        self.ed.sign(&Self::claims(scope, vehicles))
    }

    /// A token that may do everything (`fleet record metrics`, every vehicle).
    pub fn admin(&self) -> String {
        self.token("fleet record read metrics", &["*"])
    }
}

/// A token signed by HMAC-SHA256 under `secret`, with any header.
pub fn hs256_token(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// An unsigned token (`alg: none`).
pub fn unsigned_token(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": "ed-1"});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The service with auth required by `issuer`'s keys, checking issuer and audience.
pub async fn spawn_secured(
    backend: Backend,
    issuer: &Issuer,
    customize: impl FnOnce(&mut ServeSettings),
) -> TestApp {
    let key_file = issuer.key_file.clone();
    spawn_app_with(backend, move |settings| {
        settings.auth.keys = Some(key_file);
        settings.auth.issuer = Some(ISSUER.into());
        settings.auth.audience = Some(AUDIENCE.into());
        settings.auth.secret = Some(SECRET.into());
        customize(settings);
    })
    .await
}

impl TestApp {
    /// `method path` with `body` (JSON, when given) and `token` (when given).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }
}
