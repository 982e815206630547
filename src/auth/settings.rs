//! The identity settings of `serve` ([`AuthSettings`], flattened into its
//! settings) and [`AuthSettings::resolve`], which turns them into the running
//! [`Auth`] or a start-up error that says what to set.
//!
//! Every value may also be *empty*, meaning unset: Compose passes
//! `TRIBUTARY_AUTH_KEYS: ${TRIBUTARY_AUTH_KEYS:-}` as an empty string when the
//! operator set nothing, and that must start the service as if the variable
//! were absent. Hence the hand-written value parsers below: clap's own refuse
//! an empty path or enum value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use super::authenticator::{Authenticator, AuthenticatorConfig, AuthenticatorError};
use super::error::AuthError;
use super::header::{TokenPlaces, request_token};
use super::identity::Identity;
use super::keys::KeyFileError;

/// The shortest HS256 secret accepted: RFC 7518 §3.2 asks for a key at least
/// as long as the hash.
pub const MIN_SECRET_BYTES: usize = 32;

/// The warning to log once at start when auth is off.
pub const OFF_WARNING: &str = "auth is off: every client may write and read every vehicle \
    (set TRIBUTARY_AUTH_KEYS or TRIBUTARY_AUTH_SECRET to require tokens)";

/// `TRIBUTARY_AUTH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Unset: `required` when a key file or secret is set, else `off`.
    Auto,
    /// Every client may do everything.
    Off,
    /// Every request (but health checks and the OpenAPI document) needs a token.
    Required,
}

/// Identity, browser and metrics-port settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct AuthSettings {
    /// Whether requests need a token: `off` or `required`. Unset (or `auto`):
    /// `required` when a key file or secret is set, else `off`.
    #[arg(long = "auth", env = "TRIBUTARY_AUTH", default_value = "auto", value_parser = parse_mode)]
    pub mode: AuthMode,
    /// A file of public keys that verify tokens: a JWKS document or PEM public
    /// keys (Ed25519, P-256, RSA). Re-read when it changes and on SIGHUP.
    #[arg(long = "auth-keys", env = "TRIBUTARY_AUTH_KEYS", value_parser = parse_path)]
    pub keys: Option<PathBuf>,
    /// A shared secret (at least 32 bytes) that verifies HS256 tokens. Prefer
    /// the environment or TRIBUTARY_AUTH_SECRET_FILE to the command line.
    #[arg(long = "auth-secret", env = "TRIBUTARY_AUTH_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub secret: Option<SecretString>,
    /// A file holding the HS256 secret (a Docker or Kubernetes secret); a
    /// trailing newline is ignored.
    #[arg(long = "auth-secret-file", env = "TRIBUTARY_AUTH_SECRET_FILE", value_parser = parse_path)]
    pub secret_file: Option<PathBuf>,
    /// Clock skew allowed for a token's exp, nbf and iat (e.g. `30s`, `2m`).
    #[arg(long = "auth-leeway", env = "TRIBUTARY_AUTH_LEEWAY", default_value = "30s", value_parser = parse_leeway)]
    pub leeway: Duration,
    /// The issuer (`iss`) every token must name. Unset: not checked.
    #[arg(long = "auth-issuer", env = "TRIBUTARY_AUTH_ISSUER")]
    pub issuer: Option<String>,
    /// The audience (`aud`) every token must name. Unset: tokens must carry none.
    #[arg(long = "auth-audience", env = "TRIBUTARY_AUTH_AUDIENCE")]
    pub audience: Option<String>,
    /// Browser origins allowed to call the API, comma-separated
    /// (e.g. `https://app.example.com`). Unset: none.
    #[arg(long = "cors-origins", env = "TRIBUTARY_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,
    /// A separate address for `/metrics` (e.g. `127.0.0.1:9100`), where it
    /// needs no token. Unset: `/metrics` is on the API port.
    #[arg(long = "metrics-listen", env = "TRIBUTARY_METRICS_LISTEN", value_parser = parse_socket_addr)]
    pub metrics_listen: Option<String>,
}

/// Why the identity settings cannot start the service.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// `required` with nothing to verify with.
    #[error(
        "TRIBUTARY_AUTH=required, but there is no key to verify tokens with: set \
         TRIBUTARY_AUTH_KEYS to a JWKS or PEM public key file (`tributary auth keygen --out DIR` \
         makes one), or TRIBUTARY_AUTH_SECRET / TRIBUTARY_AUTH_SECRET_FILE to an HS256 secret"
    )]
    RequiredWithoutKeys,
    /// Both forms of the secret.
    #[error("set TRIBUTARY_AUTH_SECRET or TRIBUTARY_AUTH_SECRET_FILE, not both")]
    SecretTwice,
    /// The secret file cannot be read.
    #[error("cannot read the secret file {} (TRIBUTARY_AUTH_SECRET_FILE): {source}", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The secret is too short.
    #[error(
        "the HS256 secret (TRIBUTARY_AUTH_SECRET or _FILE) is {0} bytes; it needs at least 32 \
         (`openssl rand -base64 48` makes one)"
    )]
    SecretTooShort(usize),
    /// The key file is unusable.
    #[error(transparent)]
    Keys(#[from] KeyFileError),
}

impl From<AuthenticatorError> for AuthSetupError {
    fn from(error: AuthenticatorError) -> Self {
        match error {
            AuthenticatorError::KeyFile(error) => Self::Keys(error),
            AuthenticatorError::NoKeys => Self::RequiredWithoutKeys,
            AuthenticatorError::EmptySecret => Self::SecretTooShort(0),
        }
    }
}

/// Auth as it runs.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Every caller is [`Identity::unrestricted`].
    Off,
    /// Every caller proves itself with a token.
    Required(Authenticator),
}

impl Auth {
    /// `off` or `required`, for `/readyz` and the start-up log.
    pub fn mode_name(&self) -> &'static str {
        match self {
            Auth::Off => "off",
            Auth::Required(_) => "required",
        }
    }

    /// The authenticator, when auth is required.
    pub fn authenticator(&self) -> Option<&Authenticator> {
        match self {
            Auth::Off => None,
            Auth::Required(authenticator) => Some(authenticator),
        }
    }

    /// Who a request is: with auth off, unrestricted whatever it sends; else
    /// the identity of its one token (header, or query where `places` allows).
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        places: TokenPlaces,
    ) -> Result<Identity, AuthError> {
        match self {
            Auth::Off => Ok(Identity::unrestricted()),
            Auth::Required(authenticator) => {
                authenticator.verify(&request_token(headers, query, places)?)
            }
        }
    }
}

impl AuthSettings {
    /// The mode in force: `auto` resolved by whether a key file or secret is set.
    pub fn effective_mode(&self) -> AuthMode {
        match self.mode {
            AuthMode::Auto if self.key_file().is_some() || self.has_secret() => AuthMode::Required,
            AuthMode::Auto => AuthMode::Off,
            mode => mode,
        }
    }

    /// Loads keys and secret for the effective mode. `off` reads nothing.
    pub fn resolve(&self) -> Result<Auth, AuthSetupError> {
        if self.effective_mode() == AuthMode::Off {
            return Ok(Auth::Off);
        }
        if self.key_file().is_none() && !self.has_secret() {
            return Err(AuthSetupError::RequiredWithoutKeys);
        }
        let secret = match (self.secret(), self.secret_file()) {
            (Some(_), Some(_)) => return Err(AuthSetupError::SecretTwice),
            (Some(secret), None) => Some(secret.clone()),
            (None, Some(path)) => Some(read_secret_file(path)?),
            (None, None) => None,
        };
        if let Some(secret) = &secret {
            let length = secret.expose_secret().len();
            if length < MIN_SECRET_BYTES {
                return Err(AuthSetupError::SecretTooShort(length));
            }
        }
        let authenticator = Authenticator::new(AuthenticatorConfig {
            key_file: self.key_file().map(Path::to_owned),
            secret,
            leeway: self.leeway,
            issuer: non_empty(&self.issuer).map(str::to_owned),
            audience: non_empty(&self.audience).map(str::to_owned),
        })?;
        Ok(Auth::Required(authenticator))
    }

    /// The key file, if set (an empty value is unset).
    pub fn key_file(&self) -> Option<&Path> {
        self.keys.as_deref().filter(|path| !path.as_os_str().is_empty())
    }

    fn secret(&self) -> Option<&SecretString> {
        self.secret.as_ref().filter(|secret| !secret.expose_secret().is_empty())
    }

    fn secret_file(&self) -> Option<&Path> {
        self.secret_file.as_deref().filter(|path| !path.as_os_str().is_empty())
    }

    fn has_secret(&self) -> bool {
        self.secret().is_some() || self.secret_file().is_some()
    }

    /// The allowed CORS origins, as header values (validated when parsed).
    pub fn cors_origins(&self) -> Vec<HeaderValue> {
        self.cors_origins
            .iter()
            .filter(|origin| !origin.is_empty())
            .filter_map(|origin| HeaderValue::from_str(origin).ok())
            .collect()
    }

    /// The separate `/metrics` address, if set.
    pub fn metrics_listen(&self) -> Option<&str> {
        non_empty(&self.metrics_listen)
    }
}

fn non_empty(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|text| !text.is_empty())
}

fn read_secret_file(path: &Path) -> Result<SecretString, AuthSetupError> {
    let unreadable = |source| AuthSetupError::SecretFile { path: path.to_owned(), source };
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    Ok(SecretString::from(text.trim_end_matches(['\n', '\r'])))
}

fn parse_mode(text: &str) -> Result<AuthMode, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(AuthMode::Auto),
        "off" => Ok(AuthMode::Off),
        "required" => Ok(AuthMode::Required),
        _ => Err("expected `off` or `required` (or `auto`, the default)".into()),
    }
}

// An empty path or secret is kept as such and read as "unset" by the accessors.
fn parse_path(text: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(text))
}

fn parse_secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(text))
}

fn parse_leeway(text: &str) -> Result<Duration, String> {
    if text.trim().is_empty() {
        return Ok(Duration::from_secs(30));
    }
    humantime::parse_duration(text.trim()).map_err(|e| format!("{e} (examples: 0s, 30s, 2m)"))
}

fn parse_origin(text: &str) -> Result<String, String> {
    let origin = text.trim();
    if origin.is_empty() {
        return Ok(String::new());
    }
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("{origin:?} is not an origin: expected http(s)://host[:port]"))?;
    let valid = !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
        && HeaderValue::from_str(origin).is_ok();
    if valid {
        Ok(origin.to_owned())
    } else {
        Err(format!("{origin:?} is not an origin: expected scheme://host[:port], with no path"))
    }
}

fn parse_socket_addr(text: &str) -> Result<String, String> {
    let text = text.trim();
    let valid = text.is_empty()
        || text.parse::<SocketAddr>().is_ok()
        || text
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not an address: expected host:port (e.g. 127.0.0.1:9100)"))
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
