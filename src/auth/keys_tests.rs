//! Tests of reading key documents: JWKS, PEM, and what is refused.

use super::super::testkeys::{TestKey, rsa_key};
use super::*;

#[test]
fn a_jwks_document_yields_each_key_with_its_kid_and_algorithm() {
    let (ed, es, rs) = (TestKey::ed25519("ed"), TestKey::es256("es"), rsa_key("rs"));
    let document = format!(r#"{{"keys": [{}, {}, {}]}}"#, ed.jwk(), es.jwk(), rs.jwk());
    let parsed = KeySet::parse(document.as_bytes()).unwrap();
    let got: Vec<_> = parsed.keys.keys().iter().map(|k| (k.kid(), k.algorithm())).collect();
    assert_eq!(got, [("ed", Algorithm::EdDSA), ("es", Algorithm::ES256), ("rs", Algorithm::RS256)]);
    assert!(parsed.skipped.is_empty());
}

#[test]
fn pem_keys_are_named_by_their_thumbprint_which_matches_the_jwks_kid_of_the_same_key() {
    let (ed, es, rs) = (TestKey::ed25519("x"), TestKey::es256("y"), rsa_key("z"));
    let document = format!("{}\n{}\n{}", ed.public_pem, es.public_pem, rs.public_pem);
    let pem_keys = KeySet::parse(document.as_bytes()).unwrap().keys;
    let kids: Vec<_> = pem_keys.keys().iter().map(|k| k.kid().to_owned()).collect();
    assert_eq!(kids, [ed.thumbprint(), es.thumbprint(), rs.thumbprint()]);
    // The same keys as JWKs without a kid get the same names.
    let jwks = format!(r#"{{"keys": [{}]}}"#, ed.jwk_without_kid());
    let jwks_keys = KeySet::parse(jwks.as_bytes()).unwrap().keys;
    assert_eq!(jwks_keys.keys()[0].kid(), ed.thumbprint());
}

#[test]
fn keys_of_kinds_the_service_does_not_use_are_skipped_with_a_note() {
    let ed = TestKey::ed25519("ed");
    let document = format!(
        r#"{{"keys": [{},
            {{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}},
            {{"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"}},
            {{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}},
            {{"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB"}}]}}"#,
        ed.jwk()
    );
    let parsed = KeySet::parse(document.as_bytes()).unwrap();
    assert_eq!(parsed.keys.keys().len(), 1);
    assert_eq!(parsed.skipped.len(), 4, "{:?}", parsed.skipped);
    assert!(parsed.skipped[1].contains("kid \"p384\""));
}

#[test]
fn broken_or_unsuitable_documents_are_refused_with_the_reason() {
    let ed = TestKey::ed25519("ed");
    let twice = format!(r#"{{"keys": [{}, {}]}}"#, ed.jwk(), ed.jwk());
    let cases: Vec<(String, &str)> = vec![
        ("hello".into(), "neither a JWKS"),
        ("{\"keys\": 3}".into(), "not a valid JWKS"),
        ("{\"keys\": []}".into(), "no usable key"),
        ("{not json".into(), "not a valid JWKS"),
        (r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]}"#.into(), "not 32 bytes"),
        (r#"{"keys": [{"kty": "OKP", "crv": "Ed25519"}]}"#.into(), "no \"x\""),
        (r#"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#.into(), "shorter than 2048"),
        (twice, "two keys have the kid"),
        (ed.private_pem.clone(), "private key"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(), "certificate"),
        (
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
            "not an Ed25519, P-256 or RSA",
        ),
    ];
    for (document, expected) in cases {
        let error = KeySet::parse(document.as_bytes()).unwrap_err().to_string();
        assert!(error.contains(expected), "{document:?}: {error}");
    }
}

#[test]
fn an_ed25519_point_that_is_not_on_the_curve_is_refused_at_load() {
    // About half of all 32-byte strings decode to no curve point, so a
    // verifier cannot be built from them; find one among a few candidates.
    let parse = |byte: u8| {
        let x = URL_SAFE_NO_PAD.encode([byte; 32]);
        KeySet::parse(
            format!(r#"{{"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": "{x}"}}"#).as_bytes(),
        )
    };
    let error = (1..=255).find_map(|byte| parse(byte).err()).expect("some byte is off the curve");
    assert!(error.to_string().contains("not a usable EdDSA key"), "{error}");
}

#[test]
fn an_unreadable_file_says_which_file_and_which_setting() {
    let error = KeySet::load(Path::new("/nonexistent/keys.json")).unwrap_err().to_string();
    assert!(
        error.contains("/nonexistent/keys.json") && error.contains("TRIBUTARY_AUTH_KEYS"),
        "{error}"
    );
}
