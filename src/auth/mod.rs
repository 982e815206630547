//! Identity and access (issue 13): who is speaking, and what it may do.
//!
//! Tributary does not issue identities; it verifies JWTs (RFC 7519) that the
//! operator's identity service, or `tributary auth token`, signs. Self-contained
//! and independent of HTTP routing: the surfaces ask [`Auth::authenticate`] for
//! an [`Identity`] and that identity's `may_*` methods for permission, and map
//! [`AuthError`] to 401 (400 for `invalid_request`) and [`Forbidden`] to 403,
//! each with the `WWW-Authenticate` value it provides.
//!
//! - [`settings`]: `TRIBUTARY_AUTH*`, CORS and metrics-port settings; [`Auth`].
//! - [`header`]: the token of a request (`Authorization: Bearer`, `?access_token=`).
//! - [`authenticator`]: verification with a cache, and key rotation.
//! - [`keys`]: the key file (JWKS or PEM).
//! - [`identity`]: scopes, vehicles and the access rules.
//! - [`error`]: the refusals, their metric labels and challenges.
//! - [`mint`]: `tributary auth keygen` and `tributary auth token`.
//!
//! Crypto is `jsonwebtoken` with its pure-Rust RustCrypto backend (no cmake or
//! nasm to build) for verifying and signing, and ring (already in the tree
//! through rustls) for key generation and SHA-256; nothing is hand-written.

pub mod authenticator;
pub mod error;
pub mod header;
pub mod identity;
pub mod keys;
pub mod mint;
pub mod settings;
mod verify;

#[cfg(test)]
mod testkeys;

pub use authenticator::{Authenticator, AuthenticatorConfig, AuthenticatorError, Reload};
pub use error::{AuthError, Forbidden, MAX_TOKEN_BYTES};
pub use header::{TokenPlaces, bearer_token, redact_access_token, request_token};
pub use identity::{Identity, Scope, Scopes, Vehicles};
pub use keys::{KeyDocError, KeyFileError, KeySet};
pub use mint::{AuthCommand, run};
pub use settings::{Auth, AuthMode, AuthSettings, AuthSetupError, OFF_WARNING};
