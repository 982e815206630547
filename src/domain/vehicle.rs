//! Vehicle identity. An id is checked here once, so that no id can reach storage
//! that could collide with another vehicle's keys or smuggle in Redis syntax.
//!
//! An id is a `CompactString`, held inline up to 24 bytes (a VIN is 17): the
//! memory store's maps and the verified-token cache compare ids on every
//! request, and with 100,000 vehicles a `String`'s bytes are one more cold
//! cache line each time; clones of a short id allocate nothing.

use std::fmt;

use compact_str::CompactString;

/// 1 to 64 characters of `A-Z a-z 0-9 - _ .`, but not `.` or `..`; a
/// 17-character VIN fits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VehicleId(CompactString);

/// The vehicle that the seed's API speaks for when a request names none.
pub const DEFAULT_VEHICLE: &str = "default";

/// What is wrong with a proposed vehicle id, phrased for the caller.
pub const VEHICLE_ID_RULE: &str = "a vehicle id is 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.', other than '.' and '..'";

/// A proposed vehicle id that breaks the rule. Its message is the one
/// wording of the refusal, wherever the id came from (a URL, a query, a body,
/// the simulator's settings).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{id:?} is not a valid vehicle id: {VEHICLE_ID_RULE}")]
pub struct InvalidVehicleId {
    pub id: String,
}

/// The same rule's characters as a regular expression, for the OpenAPI
/// document, whose schema adds the length (1 to 64): an id with a character
/// other than a dot, or three dots or more. No lookahead, which not every
/// client generator's validator has.
pub const VEHICLE_ID_PATTERN: &str = r"^([A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*|\.{3,})$";

impl VehicleId {
    pub fn default_vehicle() -> Self {
        Self(CompactString::const_new(DEFAULT_VEHICLE))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for VehicleId {
    type Error = InvalidVehicleId;

    fn try_from(id: &str) -> Result<Self, Self::Error> {
        // `.` and `..` pass the character rule, but clients resolve them as
        // path segments: such a vehicle could be written and never read.
        let valid =
            (1..=64).contains(&id.len()) && !matches!(id, "." | "..") && id.bytes().all(is_id_byte);
        if valid {
            Ok(Self(CompactString::new(id)))
        } else {
            Err(InvalidVehicleId { id: id.to_owned() })
        }
    }
}

/// Whether `b` may appear in a vehicle id.
fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// The start of the ids of the vehicles to list: 0 to 64 of the characters a
/// vehicle id may hold (so it can hold no Redis glob syntax either).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VehiclePrefix(String);

/// What is wrong with a proposed prefix, phrased for the caller.
pub const VEHICLE_PREFIX_RULE: &str =
    "a vehicle id prefix is 0 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.'";

/// The prefix rule as a regular expression, for the OpenAPI document.
pub const VEHICLE_PREFIX_PATTERN: &str = "^[A-Za-z0-9._-]{0,64}$";

impl VehiclePrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `vehicle`'s id starts with this prefix.
    pub fn matches(&self, vehicle: &VehicleId) -> bool {
        vehicle.as_str().starts_with(&self.0)
    }
}

impl TryFrom<&str> for VehiclePrefix {
    type Error = String;

    fn try_from(prefix: &str) -> Result<Self, Self::Error> {
        if prefix.len() <= 64 && prefix.bytes().all(is_id_byte) {
            Ok(Self(prefix.to_owned()))
        } else {
            Err(format!("{prefix:?} cannot start a vehicle id: {VEHICLE_PREFIX_RULE}"))
        }
    }
}

impl fmt::Display for VehicleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_vins_and_simple_names() {
        for ok in ["default", "1HGCM82633A004352", "fleet-7.car_12", "a", &"x".repeat(64)] {
            assert_eq!(VehicleId::try_from(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn prefixes_are_the_starts_of_ids() {
        let prefix = VehiclePrefix::try_from("fleet-").unwrap();
        assert!(prefix.matches(&VehicleId::try_from("fleet-7").unwrap()));
        assert!(!prefix.matches(&VehicleId::try_from("other").unwrap()));
        assert!(VehiclePrefix::try_from("").unwrap().matches(&VehicleId::default_vehicle()));
        for bad in ["a*", "a?", "[a]", "a\\b", "{a}", "a b", "ü", &"x".repeat(65)] {
            assert!(VehiclePrefix::try_from(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn rejects_ids_that_could_break_keys() {
        for bad in ["", "a b", "a:b", "{a}", "a*", "ü", "a\nb", "a/b", &"x".repeat(65), ".", ".."]
        {
            assert!(VehicleId::try_from(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
