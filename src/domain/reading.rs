//! A reading: one value of one signal at one instant, already checked against the
//! catalog's plausible range.

use super::{SignalName, Timestamp};

#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub signal: SignalName,
    pub at: Timestamp,
    pub value: f64,
}
