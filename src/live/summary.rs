//! What a stream carries about a signal, and where the hub gets it from.
//!
//! A stream sends summaries (current, average, min, max, count, total, unit,
//! updated_at), not raw readings: the same figures as an entry of
//! `GET /v1/vehicles/{id}`'s `signals`, so a client never recomputes anything
//! and a missed event is repaired by the next one. The hub reads them through
//! [`SummarySource`], which the service implements over its store calls
//! ([`StoreSummaries`] is the plain one, over a `Store` and the catalog).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::domain::{Aggregate, Catalog, SignalName, Timestamp, VehicleId};
use crate::store::{DynStore, SignalHistory, StoreError};

/// Aggregates of one signal over its window.
// One type for both surfaces: `/v1` serves it (an entry of
// `GET /v1/vehicles/{id}`'s `signals`, and the figures of a signal's window)
// and documents it as the `SignalSummary` schema, whose descriptions are
// these doc comments; streams carry it; `watch` reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignalSummary {
    /// The newest value by timestamp.
    pub current: Option<f64>,
    /// Mean of the values in the window.
    pub average: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Readings in the window.
    pub count: usize,
    /// Distinct readings since the vehicle was first seen (within retention); a
    /// device-stamped reading that arrives older than every reading of a full
    /// window is not counted, since it cannot be told from a resend.
    pub total: u64,
    pub unit: String,
    /// Timestamp of the newest reading.
    #[serde(deserialize_with = "optional_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

impl SignalSummary {
    /// The summary of one stored signal (`None`: no samples).
    pub fn new(unit: &str, history: Option<&SignalHistory>) -> Self {
        let aggregate = history.and_then(|h| Aggregate::of(&h.samples));
        Self {
            current: aggregate.map(|a| a.current),
            average: aggregate.map(|a| a.average),
            min: aggregate.map(|a| a.min),
            max: aggregate.map(|a| a.max),
            count: aggregate.map_or(0, |a| a.count),
            total: history.map_or(0, |h| h.total),
            unit: unit.to_owned(),
            updated_at: aggregate.map(|a| a.updated_at),
        }
    }
}

/// `Timestamp` serializes as RFC 3339 but has no `Deserialize` (the service
/// never reads one back); the `watch` client does.
fn optional_rfc3339<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Timestamp>, D::Error> {
    match Option::<String>::deserialize(de)? {
        None => Ok(None),
        Some(text) => Timestamp::parse_rfc3339(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text:?}"))),
    }
}

/// Signals by name, as a stream event carries them. Shared (`Arc`) because one
/// fetched summary goes to every subscriber of the vehicle.
pub type Signals = BTreeMap<SignalName, Arc<SignalSummary>>;

/// Where the hub reads summaries from: the service's read path (its store
/// calls, with their deadlines and metrics).
#[async_trait]
pub trait SummarySource: Send + Sync + 'static {
    /// The summaries of `signals` of `vehicle` (every catalog signal when
    /// `None`), leaving out signals without data. A vehicle that has sent
    /// nothing is an empty map, never an error.
    async fn summaries(
        &self,
        vehicle: &VehicleId,
        signals: Option<&[SignalName]>,
    ) -> Result<BTreeMap<SignalName, SignalSummary>, StoreError>;
}

/// The plain [`SummarySource`]: one `Store::history` call, units from the catalog.
#[derive(Clone)]
pub struct StoreSummaries {
    store: DynStore,
    catalog: Arc<Catalog>,
}

impl StoreSummaries {
    pub fn new(store: DynStore, catalog: Arc<Catalog>) -> Self {
        Self { store, catalog }
    }
}

#[async_trait]
impl SummarySource for StoreSummaries {
    async fn summaries(
        &self,
        vehicle: &VehicleId,
        signals: Option<&[SignalName]>,
    ) -> Result<BTreeMap<SignalName, SignalSummary>, StoreError> {
        let names = signals.unwrap_or(self.catalog.names());
        let Some(history) = self.store.history(vehicle, names).await? else {
            return Ok(BTreeMap::new());
        };
        Ok(history
            .signals
            .iter()
            .filter_map(|(name, signal)| {
                let unit = &self.catalog.get(name.as_str())?.unit;
                Some((name.clone(), SignalSummary::new(unit, Some(signal))))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::Sample;

    #[test]
    fn a_summary_serializes_as_the_vehicle_endpoint_does_and_reads_back() {
        let at = Timestamp::parse_rfc3339("2026-11-27T18:00:00.250Z").unwrap();
        let history = SignalHistory {
            samples: vec![Sample { at, value: 90.0 }, Sample { at, value: 80.0 }],
            total: 7,
        };
        let summary = SignalSummary::new("celsius", Some(&history));
        let value = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            value,
            json!({"current": 90.0, "average": 85.0, "min": 80.0, "max": 90.0, "count": 2,
                   "total": 7, "unit": "celsius", "updated_at": "2026-11-27T18:00:00.25Z"})
        );
        let back: SignalSummary = serde_json::from_value(value).unwrap();
        assert_eq!(back, summary);

        let empty = serde_json::to_value(SignalSummary::new("rpm", None)).unwrap();
        assert_eq!(empty["updated_at"], json!(null));
        assert_eq!(serde_json::from_value::<SignalSummary>(empty).unwrap().updated_at, None);
    }

    #[test]
    fn a_malformed_time_is_refused_when_read() {
        let value = json!({"current": 1.0, "average": 1.0, "min": 1.0, "max": 1.0, "count": 1,
                           "total": 1, "unit": "x", "updated_at": "yesterday"});
        let err = serde_json::from_value::<SignalSummary>(value).unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
    }
}
