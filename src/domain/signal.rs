//! The signal catalog: which measurements Tributary accepts, their units, and the
//! plausible range every reading is checked against.
//!
//! Built-in signals use the ranges of the matching OBD-II parameters where one
//! exists (SAE J1979), so a reading outside them is a sensor or encoding fault, not
//! weather. Operators add or override signals with a TOML file; the catalog is
//! immutable once the server starts, so handlers share it without locking.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A validated signal name: `[a-z][a-z0-9_]*`, at most 64 bytes. Safe to embed in
/// storage keys and JSON field names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignalName(Arc<str>);

impl SignalName {
    pub fn parse(name: &str) -> Option<Self> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        (first_ok && rest_ok && name.len() <= 64).then(|| Self(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SignalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SignalName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// One signal the service accepts.
#[derive(Debug, Clone, Serialize)]
pub struct SignalSpec {
    pub name: SignalName,
    pub unit: String,
    /// Smallest plausible value, inclusive.
    pub min: f64,
    /// Largest plausible value, inclusive.
    pub max: f64,
    pub description: String,
    /// The COVESA Vehicle Signal Specification path, also accepted as the name.
    pub vss_path: Option<String>,
}

impl SignalSpec {
    pub fn contains(&self, value: f64) -> bool {
        value.is_finite() && self.min <= value && value <= self.max
    }
}

/// Why a catalog file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read signal catalog {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("signal catalog {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

/// Field names that the seed's `/record` body uses for something other than a signal.
pub const RESERVED_NAMES: [&str; 2] = ["vehicle_id", "timestamp"];

/// The set of known signals, looked up by short name or VSS path.
#[derive(Debug, Clone)]
pub struct Catalog {
    signals: Vec<SignalSpec>,
    /// The short names, in catalog order; kept so reads need not rebuild them.
    names: Vec<SignalName>,
    /// foldhash, not std's SipHash: the keys are the catalog's own, so a
    /// client's names cannot grow the map, and every reading looks one up.
    by_name: foldhash::HashMap<String, usize>,
}

/// The engine-temperature signal of the seed's API.
pub const ENGINE_TEMPERATURE: &str = "engine_temperature";

impl Catalog {
    /// The four built-in signals.
    pub fn builtin() -> Self {
        let spec = |name: &str, unit: &str, min, max, description: &str, vss: &str| SignalSpec {
            name: SignalName::parse(name).expect("built-in names are valid"),
            unit: unit.into(),
            min,
            max,
            description: description.into(),
            vss_path: Some(vss.into()),
        };
        Self::from_specs(vec![
            spec(
                ENGINE_TEMPERATURE,
                "celsius",
                -40.0,
                215.0,
                "Engine coolant temperature (OBD-II PID 0x05 range).",
                "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
            ),
            spec(
                "vehicle_speed",
                "km/h",
                0.0,
                500.0,
                "Vehicle speed over ground.",
                "Vehicle.Speed",
            ),
            spec(
                "engine_rpm",
                "rpm",
                0.0,
                16_383.75,
                "Engine speed (OBD-II PID 0x0C range).",
                "Vehicle.Powertrain.CombustionEngine.Speed",
            ),
            spec(
                "cabin_temperature",
                "celsius",
                -40.0,
                100.0,
                "Air temperature inside the cabin.",
                "Vehicle.Cabin.HVAC.AmbientAirTemperature",
            ),
        ])
    }

    fn from_specs(signals: Vec<SignalSpec>) -> Self {
        let mut by_name = foldhash::HashMap::default();
        for (i, spec) in signals.iter().enumerate() {
            by_name.insert(spec.name.as_str().to_owned(), i);
            if let Some(path) = &spec.vss_path {
                by_name.insert(path.clone(), i);
            }
        }
        let names = signals.iter().map(|s| s.name.clone()).collect();
        Self { signals, names, by_name }
    }

    /// The built-in signals plus those in a TOML file (see `signals.example.toml`).
    /// A file entry with a built-in name replaces the built-in definition.
    pub fn with_file(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| CatalogError::Read { path: path.display().to_string(), source })?;
        Self::builtin()
            .extended_with_toml(&text)
            .map_err(|message| CatalogError::Invalid { path: path.display().to_string(), message })
    }

    fn extended_with_toml(self, text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            signal: Vec<Entry>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            name: String,
            unit: String,
            min: f64,
            max: f64,
            #[serde(default)]
            description: String,
            vss_path: Option<String>,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut signals = self.signals;
        for entry in file.signal {
            let name = SignalName::parse(&entry.name).ok_or_else(|| {
                format!(
                    "signal name {:?} must be 1 to 64 characters of a-z, 0-9 and _, starting with a letter",
                    entry.name
                )
            })?;
            if RESERVED_NAMES.contains(&name.as_str()) {
                return Err(format!("signal name {name:?} is reserved"));
            }
            if let Some(path) = &entry.vss_path
                && (path.trim().is_empty() || RESERVED_NAMES.contains(&path.as_str()))
            {
                return Err(format!("signal {name}: vss_path {path:?} is empty or reserved"));
            }
            if !(entry.min.is_finite() && entry.max.is_finite() && entry.min <= entry.max) {
                return Err(format!("signal {name}: min and max must be finite with min <= max"));
            }
            let spec = SignalSpec {
                name,
                unit: entry.unit,
                min: entry.min,
                max: entry.max,
                description: entry.description,
                vss_path: entry.vss_path,
            };
            match signals.iter_mut().find(|s| s.name == spec.name) {
                Some(existing) => *existing = spec,
                None => signals.push(spec),
            }
        }
        let catalog = Self::from_specs(signals);
        let names =
            catalog.signals.len() + catalog.signals.iter().filter(|s| s.vss_path.is_some()).count();
        if catalog.by_name.len() != names {
            return Err("two signals share a name or VSS path".into());
        }
        Ok(catalog)
    }

    /// Looks a signal up by its short name or its VSS path.
    pub fn get(&self, name: &str) -> Option<&SignalSpec> {
        self.by_name.get(name).map(|&i| &self.signals[i])
    }

    /// Every signal, built-ins first, in a stable order.
    pub fn signals(&self) -> &[SignalSpec] {
        &self.signals
    }

    pub fn names(&self) -> &[SignalName] {
        &self.names
    }

    /// The known short names, for error messages.
    pub fn describe_names(&self) -> String {
        self.signals.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_signals_are_found_by_name_and_by_vss_path() {
        let catalog = Catalog::builtin();
        for (name, path) in [
            ("engine_temperature", "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"),
            ("vehicle_speed", "Vehicle.Speed"),
            ("engine_rpm", "Vehicle.Powertrain.CombustionEngine.Speed"),
            ("cabin_temperature", "Vehicle.Cabin.HVAC.AmbientAirTemperature"),
        ] {
            assert_eq!(catalog.get(name).unwrap().name.as_str(), name);
            assert_eq!(catalog.get(path).unwrap().name.as_str(), name);
        }
        assert!(catalog.get("engine_temprature").is_none());
    }

    #[test]
    fn engine_temperature_range_is_the_obd_range() {
        let spec = Catalog::builtin().get(ENGINE_TEMPERATURE).unwrap().clone();
        assert!(spec.contains(-40.0) && spec.contains(215.0) && spec.contains(0.3));
        assert!(!spec.contains(-40.1) && !spec.contains(215.1) && !spec.contains(f64::NAN));
    }

    #[test]
    fn signal_names_are_restricted() {
        for bad in ["", "Engine", "1abc", "a-b", "a b", "a:b", "{x}", &"a".repeat(65)] {
            assert!(SignalName::parse(bad).is_none(), "{bad:?} should be refused");
        }
        assert!(SignalName::parse("battery_voltage_2").is_some());
    }

    #[test]
    fn a_toml_file_adds_and_overrides_signals() {
        let catalog = Catalog::builtin()
            .extended_with_toml(
                r#"
                [[signal]]
                name = "battery_voltage"
                unit = "V"
                min = 0
                max = 60
                vss_path = "Vehicle.LowVoltageBattery.CurrentVoltage"

                [[signal]]
                name = "vehicle_speed"
                unit = "km/h"
                min = 0
                max = 300
                "#,
            )
            .unwrap();
        assert_eq!(catalog.get("Vehicle.LowVoltageBattery.CurrentVoltage").unwrap().unit, "V");
        assert_eq!(catalog.get("vehicle_speed").unwrap().max, 300.0);
        assert_eq!(catalog.signals().len(), 5);
    }

    #[test]
    fn the_example_catalog_file_loads() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/signals.example.toml"));
        let catalog = Catalog::with_file(path).unwrap();
        assert_eq!(catalog.get("Vehicle.LowVoltageBattery.CurrentVoltage").unwrap().unit, "V");
        assert!(catalog.get("fuel_level").is_some());
    }

    #[test]
    fn a_bad_toml_file_says_what_is_wrong() {
        let cases = [
            ("[[signal]]\nname = \"Bad Name\"\nunit = \"x\"\nmin = 0\nmax = 1", "must be 1 to 64"),
            ("[[signal]]\nname = \"timestamp\"\nunit = \"x\"\nmin = 0\nmax = 1", "reserved"),
            ("[[signal]]\nname = \"x\"\nunit = \"x\"\nmin = 2\nmax = 1", "min <= max"),
            (
                "[[signal]]\nname = \"x\"\nunit = \"x\"\nmin = 0\nmax = 1\nvss_path = \"vehicle_id\"",
                "empty or reserved",
            ),
            (
                "[[signal]]\nname = \"x\"\nunit = \"x\"\nmin = 0\nmax = 1\nvss_path = \"\"",
                "empty or reserved",
            ),
            (
                "[[signal]]\nname = \"x\"\nunit = \"x\"\nmin = 0\nmax = 1\nvss_path = \"Vehicle.Speed\"",
                "share",
            ),
            ("[[signal]]\nname = \"x\"\nunits = \"x\"\nmin = 0\nmax = 1", "unknown field"),
        ];
        for (text, expected) in cases {
            let err = Catalog::builtin().extended_with_toml(text).unwrap_err();
            assert!(err.contains(expected), "{err:?} should mention {expected:?}");
        }
    }
}
