//! Tests of `tributary auth keygen` and `token`: what they mint, the service verifies.

use clap::Parser;
use secrecy::SecretString;

use super::super::authenticator::{Authenticator, AuthenticatorConfig};
use super::super::identity::{Scope, Vehicles};
use super::super::keys::KeySet;
use super::super::testkeys::{TestKey, now, rsa_key};
use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    auth: AuthCommand,
}

fn token_args(args: &[&str]) -> Result<TokenArgs, clap::Error> {
    let argv = ["tributary", "token"].into_iter().chain(args.iter().copied());
    match Cli::try_parse_from(argv)?.auth {
        AuthCommand::Token(args) => Ok(args),
        AuthCommand::Keygen(_) => unreachable!(),
    }
}

fn verifier(key_file: &Path) -> Authenticator {
    Authenticator::new(AuthenticatorConfig {
        key_file: Some(key_file.to_owned()),
        ..AuthenticatorConfig::default()
    })
    .unwrap()
}

#[test]
fn keygen_writes_a_private_key_for_its_owner_and_a_jwks_the_service_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let files = keygen(&out).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files.private_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let keys = KeySet::load(&files.public_keys).unwrap().keys;
    assert_eq!(keys.keys().len(), 1);
    assert_eq!(keys.keys()[0].kid(), files.kid);
    assert_eq!(keys.keys()[0].algorithm(), Algorithm::EdDSA);
    // Never over an existing key.
    let again = keygen(&out).unwrap_err().to_string();
    assert!(again.contains("already exists"), "{again}");
}

#[test]
fn a_device_token_minted_with_the_keygen_key_verifies_and_holds_its_vehicle() {
    let dir = tempfile::tempdir().unwrap();
    let files = keygen(dir.path()).unwrap();
    let key = files.private_key.to_str().unwrap();
    let token = mint(
        &token_args(&["--key", key, "--sub", "car-1", "--scope", "record", "--ttl", "30d"])
            .unwrap(),
    )
    .unwrap();
    let identity = verifier(&files.public_keys).verify(&token).unwrap();
    assert_eq!(identity.device_vehicle(), Some(&VehicleId::try_from("car-1").unwrap()));
    assert!(identity.scopes().contains(Scope::Record));
    let exp = identity.expires_at().unwrap();
    assert!((now() + 30 * 86_400).abs_diff(exp) <= 5, "{exp}");

    let app = mint(
        &token_args(&["--key", key, "--vehicle", "car-1", "--vehicle", "car-2", "--scope", "read"])
            .unwrap(),
    )
    .unwrap();
    let identity = verifier(&files.public_keys).verify(&app).unwrap();
    assert!(identity.may_read(&VehicleId::try_from("car-2").unwrap()).is_ok());
    assert!(identity.may_read(&VehicleId::try_from("car-3").unwrap()).is_err());
}

#[test]
fn tokens_minted_with_p256_and_rsa_keys_find_their_pem_public_keys_by_thumbprint() {
    let dir = tempfile::tempdir().unwrap();
    let (es, rs) = (TestKey::es256("unused"), rsa_key("unused"));
    let public = dir.path().join("public.pem");
    std::fs::write(&public, format!("{}{}", es.public_pem, rs.public_pem)).unwrap();
    let auth = verifier(&public);
    for (name, key) in [("es", &es), ("rs", &rs)] {
        let private = dir.path().join(format!("{name}.pem"));
        std::fs::write(&private, &key.private_pem).unwrap();
        let token = mint(
            &token_args(&[
                "--key",
                private.to_str().unwrap(),
                "--vehicle",
                "*",
                "--scope",
                "fleet metrics",
            ])
            .unwrap(),
        )
        .unwrap();
        let identity = auth.verify(&token).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(identity.vehicles(), &Vehicles::ALL);
        assert!(identity.may_list().is_ok() && identity.may_metrics().is_ok());
    }
}

#[test]
fn a_token_minted_with_the_secret_verifies_with_the_secret() {
    let secret = "0123456789abcdef0123456789abcdef";
    let args = token_args(&[
        "--secret",
        secret,
        "--sub",
        "car-9",
        "--scope",
        "record read",
        "--iss",
        "me",
    ])
    .unwrap();
    let auth = Authenticator::new(AuthenticatorConfig {
        secret: Some(SecretString::from(secret)),
        issuer: Some("me".into()),
        ..AuthenticatorConfig::default()
    })
    .unwrap();
    let identity = auth.verify(&mint(&args).unwrap()).unwrap();
    assert!(identity.may_record(&VehicleId::try_from("car-9").unwrap()).is_ok());
    assert!(!format!("{args:?}").contains(secret));
}

#[test]
fn mistakes_in_the_arguments_are_refused() {
    for args in [
        &["--scope", "record"][..],
        &["--secret", "s", "--key", "k", "--scope", "record"],
        &["--secret", "s", "--scope", "write"],
        &["--secret", "s", "--scope", ""],
        &["--secret", "s", "--scope", "read", "--vehicle", "car 1"],
        &["--secret", "s", "--scope", "read", "--ttl", "0s"],
    ] {
        assert!(token_args(args).is_err(), "{args:?} was accepted");
    }
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public.pem");
    std::fs::write(&public, TestKey::ed25519("k").public_pem).unwrap();
    let error = mint(&token_args(&["--key", public.to_str().unwrap(), "--scope", "read"]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a PKCS#8"), "{error}");
}
