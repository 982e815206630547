//! PEM key files: each block a public key (SPKI, or PKCS#1 for RSA) whose
//! kind is found by trying each supported one; certificates and private keys
//! are refused with what to run instead.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::{Key, KeyDocError, check_rsa_size, finish_key};

pub(super) fn parse_pem(text: &str) -> Result<Vec<Key>, KeyDocError> {
    let blocks = pem::parse_many(text).map_err(|e| KeyDocError::Pem(e.to_string()))?;
    let mut keys = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        let which = format!("#{} (PEM)", index + 1);
        let bad = |problem: String| KeyDocError::BadKey { which: which.clone(), problem };
        let (algorithm, decoding) = match block.tag() {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => pem_public_key(block).map_err(bad)?,
            "CERTIFICATE" | "TRUSTED CERTIFICATE" => return Err(KeyDocError::Certificate),
            tag if tag.contains("PRIVATE KEY") => {
                return Err(KeyDocError::PrivateKey(tag.to_owned()));
            }
            tag => return Err(bad(format!("a PEM `{tag}` block is not a public key"))),
        };
        keys.push(finish_key(None, algorithm, decoding).map_err(bad)?);
    }
    Ok(keys)
}

/// The key of one PEM public key block, its kind found by trying each in turn
/// (`jsonwebtoken` checks the key's algorithm identifier).
fn pem_public_key(block: &pem::Pem) -> Result<(Algorithm, DecodingKey), String> {
    let text = pem::encode(block);
    if let Ok(key) = DecodingKey::from_ed_pem(text.as_bytes()) {
        if key.try_get_as_bytes().map(<[u8]>::len) != Ok(32) {
            return Err("it is not an Ed25519 key (Ed448 is not supported)".into());
        }
        return Ok((Algorithm::EdDSA, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(text.as_bytes()) {
        // An uncompressed P-256 point: 0x04, x, y.
        if key.try_get_as_bytes().map(<[u8]>::len) != Ok(65) {
            return Err(
                "it is an EC key on a curve other than P-256 (only ES256 is supported)".into()
            );
        }
        return Ok((Algorithm::ES256, key));
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(text.as_bytes()) {
        let jwk =
            Jwk::from_decoding_key(&key, Some(Algorithm::RS256)).map_err(|e| e.to_string())?;
        if let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
            let modulus = URL_SAFE_NO_PAD.decode(&rsa.n).map_err(|e| e.to_string())?;
            check_rsa_size(&modulus)?;
        }
        return Ok((Algorithm::RS256, key));
    }
    Err("it is not an Ed25519, P-256 or RSA public key".into())
}
