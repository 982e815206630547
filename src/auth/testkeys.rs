//! Keys and tokens made at test time, for every algorithm the service accepts.
//!
//! Ed25519 and P-256 pairs come from ring (as `tributary auth keygen` makes
//! them), RSA pairs from the `rsa` crate (ring cannot generate RSA keys); a
//! 2048-bit RSA key takes seconds in a debug build, so one is made per test
//! process and shared. The public PEMs are SubjectPublicKeyInfo documents built
//! from RFC 8410 / RFC 5480 prefixes, which is all a test needs.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use super::keys::thumbprint;

/// A key pair, its public forms, and a `kid`.
#[derive(Clone)]
pub(crate) struct TestKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub private_pem: String,
    pub public_pem: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
}

fn pem(tag: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(tag, der.to_vec()))
}

impl TestKey {
    pub fn ed25519(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let spki = [
            &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..],
            pair.public_key().as_ref(),
        ]
        .concat();
        Self::from_pems(
            kid,
            Algorithm::EdDSA,
            pem("PRIVATE KEY", pkcs8.as_ref()),
            pem("PUBLIC KEY", &spki),
        )
    }

    pub fn es256(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let prefix = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        let spki = [&prefix[..], pair.public_key().as_ref()].concat();
        Self::from_pems(
            kid,
            Algorithm::ES256,
            pem("PRIVATE KEY", pkcs8.as_ref()),
            pem("PUBLIC KEY", &spki),
        )
    }

    fn from_pems(kid: &str, algorithm: Algorithm, private_pem: String, public_pem: String) -> Self {
        let (encoding, decoding) = match algorithm {
            Algorithm::EdDSA => (
                EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap(),
                DecodingKey::from_ed_pem(public_pem.as_bytes()).unwrap(),
            ),
            Algorithm::ES256 => (
                EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap(),
                DecodingKey::from_ec_pem(public_pem.as_bytes()).unwrap(),
            ),
            _ => (
                EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
                DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap(),
            ),
        };
        Self { kid: kid.to_owned(), algorithm, private_pem, public_pem, encoding, decoding }
    }

    /// The same key pair under another `kid`.
    pub fn renamed(&self, kid: &str) -> Self {
        Self { kid: kid.to_owned(), ..self.clone() }
    }

    /// The public key as one JWK with this key's `kid`.
    pub fn jwk(&self) -> String {
        let mut jwk = Jwk::from_decoding_key(&self.decoding, Some(self.algorithm)).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        serde_json::to_string(&jwk).unwrap()
    }

    pub fn jwk_without_kid(&self) -> String {
        serde_json::to_string(
            &Jwk::from_decoding_key(&self.decoding, Some(self.algorithm)).unwrap(),
        )
        .unwrap()
    }

    pub fn jwks(keys: &[&TestKey]) -> String {
        let keys: Vec<String> = keys.iter().map(|k| k.jwk()).collect();
        format!(r#"{{"keys": [{}]}}"#, keys.join(","))
    }

    pub fn thumbprint(&self) -> String {
        thumbprint(&self.decoding, self.algorithm).unwrap()
    }

    /// A token over `claims`, naming this key's `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// A token over `claims` with no `kid` in its header.
    pub fn sign_without_kid(&self, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.encoding).unwrap()
    }
}

/// An RSA key pair (shared per process: made once, renamed per use).
pub(crate) fn rsa_key(kid: &str) -> TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let private = rsa::PrivateKey::new(&mut RingRng, 2048).unwrap();
        let private_pem = private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        TestKey::from_pems("rsa", Algorithm::RS256, private_pem, public_pem)
    })
    .renamed(kid)
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

/// Now, in Unix seconds.
pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Claims for a device token of `vehicle`, valid for an hour.
pub(crate) fn device_claims(vehicle: &str, scope: &str) -> Value {
    json!({"sub": vehicle, "scope": scope, "exp": now() + 3600, "iat": now()})
}

/// A token whose signature is made by HMAC-SHA256 under `secret`, with any header.
pub(crate) fn hs256_token(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
        message.as_bytes(),
    );
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// An unsigned token (`alg: none`).
pub(crate) fn unsigned_token(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
