//! `tributary auth …`: keys and tokens for development and provisioning.
//!
//! `keygen` makes an Ed25519 pair with ring (already in the tree through
//! rustls; one call, with the system RNG): a PKCS#8 PEM private key and a JWKS
//! public document whose `kid` is the key's RFC 7638 thumbprint. `token` signs
//! with a private key PEM (Ed25519, P-256 or RSA) or an HS256 secret; with a
//! key, the token's `kid` defaults to that same thumbprint, which is also the
//! name the service gives a PEM public key, so minted tokens find their key
//! whichever form the service was given.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{ArgGroup, Args, Subcommand};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::identity::Scope;
use super::keys::thumbprint;
use crate::domain::VehicleId;

/// `tributary auth …`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Make an Ed25519 key pair: DIR/private.pem (keep it secret; it signs
    /// tokens) and DIR/public.jwks.json (give it to the service as TRIBUTARY_AUTH_KEYS).
    Keygen(KeygenArgs),
    /// Print a signed token.
    Token(TokenArgs),
}

/// `tributary auth keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The directory to write the key pair to (made if missing; existing key
    /// files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `tributary auth token`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("signer").required(true).args(["key", "secret", "secret_file"])))]
pub struct TokenArgs {
    /// A private key PEM file (PKCS#8 Ed25519 from `keygen`, P-256, or RSA).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// An HS256 shared secret (the service's TRIBUTARY_AUTH_SECRET).
    #[arg(long, value_parser = parse_secret)]
    pub secret: Option<SecretString>,
    /// A file holding the HS256 secret (a trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// A vehicle the token holds (repeatable; `*` for every vehicle). None: the
    /// token holds the vehicle named by --sub, if any.
    #[arg(long = "vehicle", value_name = "ID", value_parser = parse_vehicle)]
    pub vehicles: Vec<String>,
    /// Space-separated scopes: record, read, fleet, metrics.
    #[arg(long, value_parser = parse_scope)]
    pub scope: String,
    /// How long the token is valid (e.g. `1h`, `30d`).
    #[arg(long, default_value = "1d", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// The subject (`sub`): for a device token, its vehicle id.
    #[arg(long)]
    pub sub: Option<String>,
    /// The issuer (`iss`), when the service checks one.
    #[arg(long)]
    pub iss: Option<String>,
    /// The audience (`aud`), when the service checks one.
    #[arg(long)]
    pub aud: Option<String>,
    /// The key id (`kid`). Default: the key's RFC 7638 thumbprint.
    #[arg(long)]
    pub kid: Option<String>,
}

/// Runs an `auth` subcommand, printing its result on stdout.
pub fn run(command: AuthCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        AuthCommand::Keygen(args) => {
            let pair = keygen(&args.out)?;
            writeln!(out, "private key (keep it secret): {}", pair.private_key.display())?;
            writeln!(out, "public keys (TRIBUTARY_AUTH_KEYS): {}", pair.public_keys.display())?;
            writeln!(out, "kid: {}", pair.kid)?;
        }
        AuthCommand::Token(args) => writeln!(out, "{}", mint(&args)?)?,
    }
    Ok(())
}

/// The files `keygen` wrote.
#[derive(Debug)]
pub struct KeyPairFiles {
    /// `DIR/private.pem`, readable by its owner only.
    pub private_key: PathBuf,
    /// `DIR/public.jwks.json`.
    pub public_keys: PathBuf,
    /// The key's `kid`.
    pub kid: String,
}

/// Writes a new Ed25519 key pair to `dir`.
pub fn keygen(dir: &Path) -> anyhow::Result<KeyPairFiles> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let public = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(pair.public_key()))?;
    let mut jwk = Jwk::from_decoding_key(&public, Some(Algorithm::EdDSA))?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let jwks = serde_json::to_string_pretty(&JwkSet { keys: vec![jwk] })?;
    let private_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));

    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let files = KeyPairFiles {
        private_key: dir.join("private.pem"),
        public_keys: dir.join("public.jwks.json"),
        kid,
    };
    for path in [&files.private_key, &files.public_keys] {
        if path.exists() {
            bail!("{} already exists: keygen never overwrites a key", path.display());
        }
    }
    write_new(&files.private_key, private_pem.as_bytes(), 0o600)?;
    write_new(&files.public_keys, format!("{jwks}\n").as_bytes(), 0o644)?;
    Ok(files)
}

fn write_new(path: &Path, content: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file =
        options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(content).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A signed token for `args`.
pub fn mint(args: &TokenArgs) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut claims = Map::new();
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now.saturating_add(args.ttl.as_secs())));
    claims.insert(
        "scope".into(),
        json!(args.scope.split_ascii_whitespace().collect::<Vec<_>>().join(" ")),
    );
    if !args.vehicles.is_empty() {
        claims.insert("vehicles".into(), json!(args.vehicles));
    }
    for (name, value) in [("sub", &args.sub), ("iss", &args.iss), ("aud", &args.aud)] {
        if let Some(value) = value {
            claims.insert(name.into(), json!(value));
        }
    }
    let claims = Value::Object(claims);

    let (header, key) = match (&args.key, &args.secret, &args.secret_file) {
        (Some(path), _, _) => {
            let (algorithm, key, kid) = private_key(path)?;
            let mut header = Header::new(algorithm);
            header.kid = Some(args.kid.clone().unwrap_or(kid));
            (header, key)
        }
        (None, secret, file) => {
            let secret = match (secret, file) {
                (Some(secret), _) => secret.expose_secret().to_owned(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
                (None, None) => bail!("give --key, --secret or --secret-file"),
            };
            let mut header = Header::new(Algorithm::HS256);
            header.kid = args.kid.clone();
            (header, EncodingKey::from_secret(secret.as_bytes()).context("the secret is empty")?)
        }
    };
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}

/// The algorithm, signing key and thumbprint `kid` of a private key PEM file.
fn private_key(path: &Path) -> anyhow::Result<(Algorithm, EncodingKey, String)> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Ok(key) = EncodingKey::from_ed_pem(&text) {
        // jsonwebtoken derives public keys only from the short PKCS#8 form;
        // ring reads both that and the form keygen writes.
        let der = pem::parse(&text)?.into_contents();
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| anyhow::anyhow!("{}: not an Ed25519 private key ({e})", path.display()))?;
        let public = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(pair.public_key()))?;
        let kid = thumbprint(&public, Algorithm::EdDSA).map_err(anyhow::Error::msg)?;
        return Ok((Algorithm::EdDSA, key, kid));
    }
    for (algorithm, key) in [
        (Algorithm::ES256, EncodingKey::from_ec_pem(&text)),
        (Algorithm::RS256, EncodingKey::from_rsa_pem(&text)),
    ] {
        if let Ok(key) = key {
            let kid = Jwk::from_encoding_key(&key, algorithm)
                .and_then(|jwk| jwk.thumbprint(ThumbprintHash::SHA256))
                .with_context(|| format!("{}: not a P-256 or RSA private key", path.display()))?;
            return Ok((algorithm, key, kid));
        }
    }
    bail!(
        "{} is not a PKCS#8 Ed25519 or P-256 private key, nor an RSA private key, in PEM",
        path.display()
    )
}

fn parse_secret(text: &str) -> Result<SecretString, String> {
    if text.is_empty() { Err("the secret is empty".into()) } else { Ok(SecretString::from(text)) }
}

fn parse_vehicle(text: &str) -> Result<String, String> {
    if text == "*" {
        return Ok(text.to_owned());
    }
    VehicleId::try_from(text).map(|id| id.to_string()).map_err(|rule| format!("{rule}, or `*`"))
}

fn parse_scope(text: &str) -> Result<String, String> {
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    if words.is_empty() {
        return Err("name at least one scope: record, read, fleet, metrics".into());
    }
    match words.iter().find(|word| Scope::parse(word).is_none()) {
        Some(unknown) => {
            Err(format!("unknown scope {unknown:?}: the scopes are record, read, fleet, metrics"))
        }
        None => Ok(text.to_owned()),
    }
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 1h, 30d)"))?;
    if ttl.is_zero() { Err("must be longer than zero".into()) } else { Ok(ttl) }
}

#[cfg(test)]
#[path = "mint_tests.rs"]
mod tests;
