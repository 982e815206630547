//! Tests of the identity settings: names, defaults, empty values and every
//! start-up error, through clap as `serve` will parse them.

use clap::{CommandFactory, Parser};

use super::super::testkeys::{TestKey, device_claims, hs256_token};
use super::*;

#[derive(Debug, Parser)]
struct Serve {
    #[command(flatten)]
    auth: AuthSettings,
}

fn parse(args: &[&str]) -> Result<AuthSettings, clap::Error> {
    Serve::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|s| s.auth)
}

fn resolve(args: &[&str]) -> Result<Auth, AuthSetupError> {
    parse(args).unwrap().resolve()
}

const SECRET: &str = "0123456789abcdef0123456789abcdef!";

#[test]
fn the_settings_read_exactly_the_documented_environment_variables() {
    let command = Serve::command();
    let mut names: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env().map(|env| env.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "TRIBUTARY_AUTH",
            "TRIBUTARY_AUTH_AUDIENCE",
            "TRIBUTARY_AUTH_ISSUER",
            "TRIBUTARY_AUTH_KEYS",
            "TRIBUTARY_AUTH_LEEWAY",
            "TRIBUTARY_AUTH_SECRET",
            "TRIBUTARY_AUTH_SECRET_FILE",
            "TRIBUTARY_CORS_ORIGINS",
            "TRIBUTARY_METRICS_LISTEN",
        ]
    );
    let secret = command.get_arguments().find(|a| a.get_id() == "secret").unwrap();
    assert!(secret.is_hide_env_values_set());
}

#[test]
fn with_nothing_set_auth_is_off_and_reads_nothing() {
    let settings = parse(&[]).unwrap();
    assert_eq!(settings.effective_mode(), AuthMode::Off);
    assert_eq!(settings.leeway, Duration::from_secs(30));
    assert!(settings.cors_origins().is_empty() && settings.metrics_listen().is_none());
    assert_eq!(resolve(&[]).unwrap().mode_name(), "off");
    // Empty values, as Compose passes unset variables, are unset.
    let empty = parse(&[
        "--auth",
        "",
        "--auth-keys",
        "",
        "--auth-secret",
        "",
        "--auth-leeway",
        "",
        "--cors-origins",
        "",
    ])
    .unwrap();
    assert_eq!(empty.effective_mode(), AuthMode::Off);
    assert!(empty.cors_origins().is_empty());
    // Explicitly off: the key file is not even read.
    assert_eq!(
        resolve(&["--auth", "off", "--auth-keys", "/nonexistent"]).unwrap().mode_name(),
        "off"
    );
}

#[test]
fn a_key_file_or_secret_makes_auth_required() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, TestKey::jwks(&[&TestKey::ed25519("k")])).unwrap();
    let auth = resolve(&["--auth-keys", keys.to_str().unwrap()]).unwrap();
    assert_eq!(auth.mode_name(), "required");
    assert_eq!(auth.authenticator().unwrap().key_count(), 1);
    assert_eq!(resolve(&["--auth-secret", SECRET]).unwrap().mode_name(), "required");
}

#[test]
fn required_without_keys_and_other_mistakes_fail_with_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "too short\n").unwrap();
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["--auth", "required"], &["TRIBUTARY_AUTH_KEYS", "TRIBUTARY_AUTH_SECRET", "keygen"]),
        (
            vec!["--auth-keys", "/nonexistent/keys.json"],
            &["/nonexistent/keys.json", "TRIBUTARY_AUTH_KEYS"],
        ),
        (vec!["--auth-secret", "short"], &["5 bytes", "at least 32"]),
        (vec!["--auth-secret-file", short.to_str().unwrap()], &["9 bytes"]),
        (
            vec!["--auth-secret-file", "/nonexistent/secret"],
            &["/nonexistent/secret", "TRIBUTARY_AUTH_SECRET_FILE"],
        ),
        (vec!["--auth-secret", SECRET, "--auth-secret-file", "/x"], &["not both"]),
    ];
    for (args, expected) in cases {
        let error = resolve(&args).unwrap_err().to_string();
        for part in expected {
            assert!(error.contains(part), "{args:?}: {error}");
        }
        assert!(!error.contains(SECRET), "{args:?} printed the secret");
    }
}

#[test]
fn bad_values_are_refused_when_parsed() {
    for args in [
        &["--auth", "maybe"][..],
        &["--auth-leeway", "soon"],
        &["--cors-origins", "ftp://example.com"],
        &["--cors-origins", "https://example.com/app"],
        &["--cors-origins", "example.com"],
        &["--metrics-listen", "nowhere"],
    ] {
        assert!(parse(args).is_err(), "{args:?} was accepted");
    }
    let settings = parse(&[
        "--auth",
        "REQUIRED",
        "--auth-leeway",
        "2m",
        "--cors-origins",
        "https://app.example.com, http://localhost:3000",
        "--metrics-listen",
        "127.0.0.1:9100",
    ])
    .unwrap();
    assert_eq!(settings.mode, AuthMode::Required);
    assert_eq!(settings.leeway, Duration::from_secs(120));
    assert_eq!(settings.cors_origins(), ["https://app.example.com", "http://localhost:3000"]);
    assert_eq!(settings.metrics_listen(), Some("127.0.0.1:9100"));
}

#[test]
fn the_secret_is_never_printed() {
    let settings = parse(&["--auth-secret", SECRET]).unwrap();
    assert!(!format!("{settings:?}").contains(SECRET));
    let auth = settings.resolve().unwrap();
    assert!(!format!("{auth:?}").contains(SECRET));
}

#[test]
fn a_secret_file_with_a_trailing_newline_verifies_tokens_signed_with_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let auth = resolve(&["--auth-secret-file", file.to_str().unwrap()]).unwrap();
    let token = hs256_token(
        &serde_json::json!({"alg": "HS256"}),
        &device_claims("car-1", "record"),
        SECRET.as_bytes(),
    );
    let mut headers = HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    let identity = auth.authenticate(&headers, None, TokenPlaces::HeaderOnly).unwrap();
    assert_eq!(identity.device_vehicle().map(|car| car.as_str()), Some("car-1"));
    assert_eq!(
        auth.authenticate(&HeaderMap::new(), None, TokenPlaces::HeaderOnly).unwrap_err(),
        AuthError::Missing
    );
}

#[test]
fn with_auth_off_every_request_is_unrestricted_whatever_it_sends() {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", "Bearer garbage".parse().unwrap());
    let identity =
        Auth::Off.authenticate(&headers, Some("access_token=x"), TokenPlaces::HeaderOnly).unwrap();
    assert_eq!(identity, Identity::unrestricted());
}
