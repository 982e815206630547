//! The verification keys: `TRIBUTARY_AUTH_KEYS` parsed into a [`KeySet`] in
//! which every key carries its own algorithm, so that a token's header can only
//! *select* a key, never choose how it is used.
//!
//! The file is either a JWKS document (RFC 7517, what identity providers
//! publish) or PEM public keys (what `openssl` prints). A JWKS key is selected
//! by its `kid`. A PEM key has no name of its own, so its `kid` is the key's
//! RFC 7638 JWK thumbprint (SHA-256, base64url): derived from the key itself, it
//! survives renaming or reordering the file, matches what `tributary auth
//! token` puts in the tokens it mints, and is the same a JWKS key without a
//! `kid` gets. Accepted: Ed25519 (`EdDSA`), P-256 (`ES256`) and RSA of at least
//! 2048 bits (`RS256`); HS256 comes from the shared secret, never from this file.
//!
//! A JWKS key of a kind the service does not use (an encryption key, an RS512
//! or P-384 key an identity provider also publishes) is skipped with a note
//! for the log, but a key of a supported kind that is broken refuses the whole
//! file: a typo must not silently drop a key. Each accepted key is also tried
//! once by `jsonwebtoken` itself, so a bad point or modulus fails at load, not
//! on the first request.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// A key file larger than this is refused (a JWKS of a few keys is a few KiB).
pub const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// One verification key and the one algorithm it verifies.
#[derive(Clone)]
pub struct Key {
    pub(crate) kid: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("algorithm", &self.algorithm).finish()
    }
}

impl Key {
    /// The key's id, as tokens name it in their header's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// The keys of one version of the key file.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

/// A parsed key document: its keys and notes about keys it skipped.
#[derive(Debug)]
pub struct ParsedKeys {
    /// The usable keys.
    pub keys: KeySet,
    /// One line per skipped key, for a warning in the log.
    pub skipped: Vec<String>,
}

impl KeySet {
    /// The keys, in file order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The key with this `kid`.
    pub(crate) fn by_kid(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    /// The keys that verify `algorithm` (for a token that names no `kid`).
    pub(crate) fn for_algorithm(&self, algorithm: Algorithm) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(move |key| key.algorithm == algorithm)
    }

    /// Parses a key document: JWKS (a JSON object) or PEM public keys.
    pub fn parse(document: &[u8]) -> Result<ParsedKeys, KeyDocError> {
        let text = std::str::from_utf8(document).map_err(|_| KeyDocError::Format)?.trim();
        let (keys, skipped) = if text.starts_with('{') {
            parse_jwks(text)?
        } else if text.contains("-----BEGIN ") {
            (parse_pem(text)?, Vec::new())
        } else {
            return Err(KeyDocError::Format);
        };
        if keys.is_empty() {
            return Err(KeyDocError::NoUsableKeys { skipped });
        }
        let mut kids = HashSet::new();
        for key in &keys {
            if !kids.insert(key.kid.as_str()) {
                return Err(KeyDocError::DuplicateKid(key.kid.clone()));
            }
        }
        Ok(ParsedKeys { keys: KeySet { keys }, skipped })
    }

    /// Reads and parses the key file at `path`.
    pub fn load(path: &Path) -> Result<ParsedKeys, KeyFileError> {
        Self::parse_file(path, &Self::read(path)?)
    }

    /// The bytes of the key file at `path`, refused past [`MAX_KEY_FILE_BYTES`].
    pub fn read(path: &Path) -> Result<Vec<u8>, KeyFileError> {
        use std::io::Read;
        let unreadable =
            |source: std::io::Error| KeyFileError::Unreadable { path: path.to_owned(), source };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(KeyFileError::Invalid {
                path: path.to_owned(),
                problem: KeyDocError::TooLarge,
            });
        }
        Ok(bytes)
    }

    /// Parses `bytes`, read from `path`.
    pub fn parse_file(path: &Path, bytes: &[u8]) -> Result<ParsedKeys, KeyFileError> {
        Self::parse(bytes)
            .map_err(|problem| KeyFileError::Invalid { path: path.to_owned(), problem })
    }
}

/// What is wrong with a key document.
#[derive(Debug, thiserror::Error)]
pub enum KeyDocError {
    /// Neither JWKS nor PEM.
    #[error(
        "it is neither a JWKS document ({{\"keys\": [...]}}) nor PEM public keys \
         (-----BEGIN PUBLIC KEY-----)"
    )]
    Format,
    /// Over [`MAX_KEY_FILE_BYTES`].
    #[error("it is larger than 1 MiB")]
    TooLarge,
    /// JSON that is not a JWKS document.
    #[error("it is not a valid JWKS document: {0}")]
    Jwks(String),
    /// PEM that does not parse.
    #[error("its PEM does not parse: {0}")]
    Pem(String),
    /// A private key where only public keys belong.
    #[error(
        "it holds a private key (PEM `{0}`): the service needs only public keys \
         (`openssl pkey -in private.pem -pubout` prints one)"
    )]
    PrivateKey(String),
    /// A certificate instead of its public key.
    #[error(
        "it holds a certificate: give its public key instead \
         (`openssl x509 -in cert.pem -pubkey -noout`)"
    )]
    Certificate,
    /// A key of a supported kind that cannot be used.
    #[error("key {which}: {problem}")]
    BadKey {
        /// `kid "…"`, or the key's position in the file.
        which: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Two keys with one `kid`.
    #[error("two keys have the kid {0:?}: each key needs its own")]
    DuplicateKid(String),
    /// Nothing usable.
    #[error("it holds no usable key (EdDSA/Ed25519, ES256/P-256 or RS256 public keys){}", skipped_note(.skipped))]
    NoUsableKeys {
        /// Why each key was skipped.
        skipped: Vec<String>,
    },
}

fn skipped_note(skipped: &[String]) -> String {
    if skipped.is_empty() { String::new() } else { format!("; skipped: {}", skipped.join("; ")) }
}

/// What is wrong with the key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file cannot be read.
    #[error("cannot read the key file {} (TRIBUTARY_AUTH_KEYS): {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file's content is not usable.
    #[error("the key file {} (TRIBUTARY_AUTH_KEYS) cannot be used: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        problem: KeyDocError,
    },
}

/// The JWK members this service reads. Parsed by hand rather than through
/// `jsonwebtoken::jwk::Jwk`, whose `alg` enum refuses a whole document over one
/// algorithm name it does not know.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

fn parse_jwks(text: &str) -> Result<(Vec<Key>, Vec<String>), KeyDocError> {
    #[derive(Deserialize)]
    struct Document {
        keys: Option<Vec<serde_json::Value>>,
    }
    let document: serde_json::Value =
        serde_json::from_str(text).map_err(|e| KeyDocError::Jwks(e.to_string()))?;
    // A single JWK is accepted as a set of one.
    let members = match serde_json::from_value::<Document>(document.clone()) {
        Ok(Document { keys: Some(keys) }) => keys,
        _ if document.get("kty").is_some() => vec![document],
        _ => return Err(KeyDocError::Jwks("it has no \"keys\" array".into())),
    };
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (index, member) in members.into_iter().enumerate() {
        let raw: RawJwk = serde_json::from_value(member).map_err(|e| KeyDocError::BadKey {
            which: format!("#{}", index + 1),
            problem: e.to_string(),
        })?;
        let which = match &raw.kid {
            Some(kid) => format!("kid {kid:?}"),
            None => format!("#{}", index + 1),
        };
        match jwk_key(&raw) {
            Ok(Some((algorithm, decoding))) => {
                let key = finish_key(raw.kid, algorithm, decoding)
                    .map_err(|problem| KeyDocError::BadKey { which, problem })?;
                keys.push(key);
            }
            Ok(None) => skipped.push(format!("{which} ({})", describe(&raw))),
            Err(problem) => return Err(KeyDocError::BadKey { which, problem }),
        }
    }
    Ok((keys, skipped))
}

/// The key and algorithm of a JWK; `None` for a kind this service does not
/// verify with; an error for a supported kind that is broken.
fn jwk_key(raw: &RawJwk) -> Result<Option<(Algorithm, DecodingKey)>, String> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let alg = raw.alg.as_deref();
    let member = |value: &Option<String>, name: &str| {
        value.clone().ok_or_else(|| format!("it has no \"{name}\""))
    };
    let decoded_len = |value: &str, name: &str| {
        URL_SAFE_NO_PAD
            .decode(value)
            .map(|bytes| bytes.len())
            .map_err(|_| format!("its \"{name}\" is not base64url"))
    };
    match (raw.kty.as_deref(), raw.crv.as_deref(), alg) {
        (Some("OKP"), Some("Ed25519"), None | Some("EdDSA" | "Ed25519")) => {
            let x = member(&raw.x, "x")?;
            if decoded_len(&x, "x")? != 32 {
                return Err("its \"x\" is not 32 bytes, as an Ed25519 key is".into());
            }
            let key = DecodingKey::from_ed_components(&x).map_err(|e| e.to_string())?;
            Ok(Some((Algorithm::EdDSA, key)))
        }
        (Some("EC"), Some("P-256"), None | Some("ES256")) => {
            let (x, y) = (member(&raw.x, "x")?, member(&raw.y, "y")?);
            if decoded_len(&x, "x")? != 32 || decoded_len(&y, "y")? != 32 {
                return Err(
                    "its \"x\" and \"y\" are not 32 bytes each, as a P-256 key's are".into()
                );
            }
            let key = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
            Ok(Some((Algorithm::ES256, key)))
        }
        (Some("RSA"), _, None | Some("RS256")) => {
            let (n, e) = (member(&raw.n, "n")?, member(&raw.e, "e")?);
            let modulus = URL_SAFE_NO_PAD.decode(&n).map_err(|_| "its \"n\" is not base64url")?;
            check_rsa_size(&modulus)?;
            decoded_len(&e, "e")?;
            let key = DecodingKey::from_rsa_components(&n, &e).map_err(|e| e.to_string())?;
            Ok(Some((Algorithm::RS256, key)))
        }
        _ => Ok(None),
    }
}

fn describe(raw: &RawJwk) -> String {
    let parts: Vec<String> =
        [("kty", &raw.kty), ("crv", &raw.crv), ("alg", &raw.alg), ("use", &raw.use_)]
            .into_iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v}")))
            .collect();
    format!("{}: not an EdDSA, ES256 or RS256 signing key", parts.join(", "))
}

fn check_rsa_size(modulus: &[u8]) -> Result<(), String> {
    let significant = modulus.iter().skip_while(|b| **b == 0).count();
    if significant < 256 {
        return Err("it is an RSA key shorter than 2048 bits, which is refused".into());
    }
    Ok(())
}

/// Names a key (its own `kid`, else its thumbprint) and makes sure
/// `jsonwebtoken` can verify with it.
fn finish_key(
    kid: Option<String>,
    algorithm: Algorithm,
    decoding: DecodingKey,
) -> Result<Key, String> {
    // A verifier that cannot be built fails here with an error; a valid key
    // merely rejects the dummy signature.
    jsonwebtoken::crypto::verify("AAAA", b"probe", &decoding, algorithm)
        .map_err(|e| format!("it is not a usable {algorithm:?} key ({e})"))?;
    let kid = match kid {
        Some(kid) => kid,
        None => thumbprint(&decoding, algorithm)?,
    };
    Ok(Key { kid, algorithm, decoding })
}

/// The RFC 7638 SHA-256 thumbprint of a public key, base64url: the `kid` of a
/// key that has none of its own.
pub(crate) fn thumbprint(key: &DecodingKey, algorithm: Algorithm) -> Result<String, String> {
    Jwk::from_decoding_key(key, Some(algorithm))
        .and_then(|jwk| jwk.thumbprint(ThumbprintHash::SHA256))
        .map_err(|e| format!("its thumbprint cannot be computed ({e})"))
}

#[path = "keys_pem.rs"]
mod pem_keys;
use pem_keys::parse_pem;

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
