//! A reading: one value of one signal at one instant, already checked against the
//! catalog's plausible range.

use super::{SignalName, Timestamp};

/// Most readings one request may carry in a JSON array.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub signal: SignalName,
    pub at: Timestamp,
    pub value: f64,
    pub stamped_by: StampedBy,
}

/// Who chose a reading's timestamp. Only a device can resend a reading: the
/// server never hands out the same timestamp twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampedBy {
    Device,
    Server,
}
