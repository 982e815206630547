//! Who a verified token speaks for and what it may do: an [`Identity`] of
//! scopes and vehicles, and the one set of rules (`may_record`, `may_read`, …)
//! every surface asks, so that no route has its own idea of access.
//!
//! The claims are read leniently where an identity provider may add its own
//! (unknown scopes are ignored) and strictly where a mistake would widen access
//! (a `vehicles` entry that is not a valid id refuses the token rather than
//! being skipped, and a wildcard is only ever `"*"` inside `vehicles`).

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::error::{AuthError, Forbidden};
use crate::domain::VehicleId;

/// One OAuth 2 style scope in a token's space-separated `scope` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Write readings for the token's vehicles.
    Record,
    /// Read summaries, windows, `/collect` and streams of the token's vehicles.
    Read,
    /// Read every vehicle and list them.
    Fleet,
    /// Read `/metrics`.
    Metrics,
}

impl Scope {
    /// Every scope, in the order of the docs.
    pub const ALL: [Scope; 4] = [Scope::Record, Scope::Read, Scope::Fleet, Scope::Metrics];

    /// The scope's name in a `scope` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Record => "record",
            Scope::Read => "read",
            Scope::Fleet => "fleet",
            Scope::Metrics => "metrics",
        }
    }

    /// The scope a claim word names, if any.
    pub fn parse(word: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == word)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Scope`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Scopes(u8);

impl Scopes {
    /// No scope at all.
    pub const NONE: Scopes = Scopes(0);

    /// Every scope.
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    /// Whether `scope` is in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The known scopes among a `scope` claim's space-separated words; unknown
    /// words (`openid`, `profile`, … from a general identity provider) are ignored.
    pub fn from_claim(claim: &str) -> Self {
        claim.split_ascii_whitespace().filter_map(Scope::parse).collect()
    }

    /// The scopes in the set, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |scope| self.contains(*scope))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }
}

/// The vehicles a token holds: every vehicle, or a list (possibly empty).
///
/// Held the way the hot path reads it: a device token's one vehicle sits
/// inline (a cached identity is read on every request, and each allocation it
/// points to is another cold cache line with a token per vehicle of a large
/// fleet), and a longer list is sorted without repeats, so that equal lists
/// compare equal however the claim ordered them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicles(Held);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    All,
    One(VehicleId),
    /// Sorted, no repeats, never exactly one; shared, so that a clone is cheap.
    Listed(Arc<[VehicleId]>),
}

impl Vehicles {
    /// Every vehicle (`"vehicles": ["*"]`).
    pub const ALL: Vehicles = Vehicles(Held::All);

    /// The given vehicles, in any order, repeats counting once.
    pub fn only(vehicles: impl IntoIterator<Item = VehicleId>) -> Self {
        let mut list: Vec<VehicleId> = vehicles.into_iter().collect();
        list.sort_unstable();
        list.dedup();
        match <[VehicleId; 1]>::try_from(list) {
            Ok([one]) => Vehicles(Held::One(one)),
            Err(list) => Vehicles(Held::Listed(list.into())),
        }
    }

    /// Whether this is every vehicle.
    pub fn is_all(&self) -> bool {
        matches!(self.0, Held::All)
    }

    /// The listed vehicles, sorted (empty for every vehicle: see [`Vehicles::is_all`]).
    pub fn listed(&self) -> &[VehicleId] {
        match &self.0 {
            Held::All => &[],
            Held::One(one) => std::slice::from_ref(one),
            Held::Listed(list) => list,
        }
    }

    /// Whether the token holds `vehicle`.
    pub fn holds(&self, vehicle: &VehicleId) -> bool {
        match &self.0 {
            Held::All => true,
            Held::One(one) => one == vehicle,
            Held::Listed(list) => list.binary_search(vehicle).is_ok(),
        }
    }
}

/// What a verified token (or, with auth off, every caller) may do.
///
/// Small and cheap to clone (a device token's is a few words, no allocation),
/// so that the token cache hands out copies: a shared `Arc` would be a
/// counter every request writes, on a cold cache line with a token per
/// vehicle, or one line both cores fight over with one token (or auth off).
/// The token's `sub` is kept only as the vehicle it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    scopes: Scopes,
    vehicles: Vehicles,
    expires_at: Option<u64>,
}

impl Identity {
    /// An identity from its parts; `expires_at` is the token's `exp` in Unix seconds.
    pub fn new(scopes: Scopes, vehicles: Vehicles, expires_at: Option<u64>) -> Self {
        Self { scopes, vehicles, expires_at }
    }

    /// The caller when auth is off: every scope, every vehicle, no expiry, so
    /// that handlers have one code path whatever the mode.
    pub fn unrestricted() -> Self {
        Self::new(Scopes::all(), Vehicles::ALL, None)
    }

    /// The token's known scopes.
    pub fn scopes(&self) -> Scopes {
        self.scopes
    }

    /// The vehicles the token holds.
    pub fn vehicles(&self) -> &Vehicles {
        &self.vehicles
    }

    /// The token's `exp`, in Unix seconds (`None` for [`Identity::unrestricted`]).
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }

    /// May write readings for `vehicle`: the `record` scope and the vehicle.
    pub fn may_record(&self, vehicle: &VehicleId) -> Result<(), Forbidden> {
        self.scoped_for(Scope::Record, vehicle)
    }

    /// May read `vehicle`'s data: `fleet`, or `read` and the vehicle.
    pub fn may_read(&self, vehicle: &VehicleId) -> Result<(), Forbidden> {
        if self.scopes.contains(Scope::Fleet) {
            return Ok(());
        }
        self.scoped_for(Scope::Read, vehicle)
    }

    /// May list the fleet's vehicles: `fleet`.
    pub fn may_list(&self) -> Result<(), Forbidden> {
        self.require(Scope::Fleet)
    }

    /// May read `/metrics`: `metrics`.
    pub fn may_metrics(&self) -> Result<(), Forbidden> {
        self.require(Scope::Metrics)
    }

    /// The one vehicle of a device token (a token holding exactly one named
    /// vehicle), which `/record` writes when the request names none.
    pub fn device_vehicle(&self) -> Option<&VehicleId> {
        match &self.vehicles.0 {
            Held::One(one) => Some(one),
            _ => None,
        }
    }

    /// The vehicle a `/record` writes: the one it names, else the token's one
    /// vehicle, else the seed's default vehicle; refused unless the token may
    /// record it.
    pub fn record_target(&self, named: Option<VehicleId>) -> Result<VehicleId, Forbidden> {
        let vehicle = named
            .or_else(|| self.device_vehicle().cloned())
            .unwrap_or_else(VehicleId::default_vehicle);
        self.may_record(&vehicle)?;
        Ok(vehicle)
    }

    fn require(&self, scope: Scope) -> Result<(), Forbidden> {
        if self.scopes.contains(scope) { Ok(()) } else { Err(Forbidden { scope, vehicle: None }) }
    }

    fn scoped_for(&self, scope: Scope, vehicle: &VehicleId) -> Result<(), Forbidden> {
        self.require(scope)?;
        if self.vehicles.holds(vehicle) {
            Ok(())
        } else {
            Err(Forbidden { scope, vehicle: Some(vehicle.clone()) })
        }
    }
}

/// The claims an identity is made of, each kept as raw JSON so that a claim of
/// the wrong shape is refused with a precise message rather than as "malformed".
/// `exp`, `nbf`, `iss` and `aud` were already checked by `jsonwebtoken`.
#[derive(Debug, Deserialize)]
pub(crate) struct RawClaims {
    exp: Option<Value>,
    iat: Option<Value>,
    sub: Option<Value>,
    scope: Option<Value>,
    vehicles: Option<Value>,
}

impl RawClaims {
    /// The identity the claims describe, at Unix time `now` with `leeway` seconds.
    pub(crate) fn into_identity(self, now: u64, leeway: u64) -> Result<Identity, AuthError> {
        let exp = self.exp.as_ref().and_then(numeric_date).ok_or(AuthError::InvalidClaim {
            claim: "exp",
            problem: "is missing or not a number of seconds",
        })?;
        if let Some(iat) = &self.iat {
            let iat = numeric_date(iat).ok_or(AuthError::InvalidClaim {
                claim: "iat",
                problem: "is not a number of seconds",
            })?;
            if iat > now.saturating_add(leeway) {
                return Err(AuthError::NotYetValid);
            }
        }
        let subject = match self.sub {
            None => None,
            Some(Value::String(sub)) => Some(sub),
            Some(_) => {
                return Err(AuthError::InvalidClaim { claim: "sub", problem: "is not a string" });
            }
        };
        let scopes = match &self.scope {
            None => Scopes::NONE,
            Some(Value::String(scope)) => Scopes::from_claim(scope),
            Some(_) => {
                return Err(AuthError::InvalidClaim {
                    claim: "scope",
                    problem: "is not a space-separated string",
                });
            }
        };
        let vehicles = match &self.vehicles {
            Some(claim) => vehicles_claim(claim)?,
            // A device token names its one car in `sub`; a `sub` that is not a
            // vehicle id (an operator's name) holds no vehicle, and never `*`.
            None => {
                Vehicles::only(subject.as_deref().and_then(|sub| VehicleId::try_from(sub).ok()))
            }
        };
        Ok(Identity::new(scopes, vehicles, Some(exp)))
    }
}

fn vehicles_claim(claim: &Value) -> Result<Vehicles, AuthError> {
    const NOT_IDS: AuthError = AuthError::InvalidClaim {
        claim: "vehicles",
        problem: "is not a list of vehicle ids (or [\"*\"])",
    };
    let Value::Array(items) = claim else { return Err(NOT_IDS) };
    let mut listed = Vec::with_capacity(items.len());
    let mut all = false;
    for item in items {
        match item.as_str() {
            Some("*") => all = true,
            Some(id) => listed.push(VehicleId::try_from(id).map_err(|_| NOT_IDS)?),
            None => return Err(NOT_IDS),
        }
    }
    Ok(if all { Vehicles::ALL } else { Vehicles::only(listed) })
}

/// A JWT NumericDate (RFC 7519 §2) as whole seconds; fractions are dropped.
fn numeric_date(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
