//! A reading's `timestamp`: an RFC 3339 date-time or integer milliseconds,
//! from 2000 to a few minutes ahead of the server's clock.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{describe, pointer_to};
use crate::domain::{MAX_FUTURE_MICROS, MILLIS_2000, Timestamp};
use crate::http::problem::FieldError;

/// The timestamp of the reading object at `prefix`.
pub(super) fn parse_timestamp(
    value: &Value,
    prefix: &str,
    now: Timestamp,
    errors: &mut Vec<FieldError>,
) -> Option<Timestamp> {
    let pointer = || pointer_to(prefix, "timestamp");
    let millis = match value {
        Value::Number(number) => integer_millis(number),
        _ => None,
    };
    let at = match value {
        Value::String(text) => Timestamp::parse_rfc3339(text),
        _ => millis.and_then(|n| i64::try_from(n).ok()).and_then(Timestamp::from_millis),
    };
    let hint = match millis.and_then(|n| i64::try_from(n).ok()) {
        Some(n) if (0..MILLIS_2000).contains(&n) && n >= MILLIS_2000 / 1000 => {
            "; it looks like seconds: send milliseconds (multiply by 1000)"
        }
        Some(n) if n > MILLIS_2000 * 1000 => "; it looks like microseconds: send milliseconds",
        _ => "",
    };
    match at {
        Some(at) if at > now.plus_micros(MAX_FUTURE_MICROS) => {
            errors.push(FieldError::new(
                pointer(),
                format!(
                    "{} is more than 5 minutes ahead of the server's clock ({}){hint}; check the device's clock",
                    at.to_rfc3339(),
                    now.to_rfc3339()
                ),
            ));
            None
        }
        Some(at) if at.as_millis() < MILLIS_2000 => {
            // A device clock that booted at 1970, or seconds sent as milliseconds:
            // either way the reading would land decades in the past.
            errors.push(FieldError::new(
                pointer(),
                format!("{} is before 2000-01-01{hint}; check the device's clock", at.to_rfc3339()),
            ));
            None
        }
        Some(at) => Some(at),
        None => {
            errors.push(FieldError::new(pointer(), unusable_timestamp(value, millis, now, hint)));
            None
        }
    }
}

/// Why a timestamp that names no instant a reading can have was refused. A
/// date-time or integer beyond the range a timestamp can hold (1970 to 2255) is
/// refused for its range, like one just outside the accepted range; anything
/// else is not a timestamp at all.
fn unusable_timestamp(value: &Value, millis: Option<i128>, now: Timestamp, hint: &str) -> String {
    const EXPECTED: &str = "an RFC 3339 date-time such as \"2026-11-27T18:00:00.250Z\" or integer milliseconds since the Unix epoch";
    let before =
        |what: String| format!("{what} is before 2000-01-01{hint}; check the device's clock");
    let ahead = |what: String| {
        format!(
            "{what} is more than 5 minutes ahead of the server's clock ({}){hint}; check the device's clock",
            now.to_rfc3339()
        )
    };
    match value {
        Value::String(text) => {
            let shown = if text.chars().count() <= 40 {
                format!("{text:?}")
            } else {
                "the date-time".into()
            };
            match OffsetDateTime::parse(text, &Rfc3339) {
                Ok(at) if at.unix_timestamp() < 0 => before(shown),
                Ok(_) => ahead(shown),
                Err(_) => format!("must be {EXPECTED}, not {}", describe(value)),
            }
        }
        Value::Number(n) if millis.is_some_and(|m| m < 0) => before(format!("{n} ms")),
        Value::Number(n) if millis.is_some() => ahead(format!("{n} ms")),
        _ => format!("must be {EXPECTED}, not {}{hint}", describe(value)),
    }
}

/// A number as integer milliseconds, if it is an integer in JSON Schema's sense
/// (the document's type for a timestamp): `1764268317000`, and also
/// `1764268317000.0` or `1.764268317e12`, which some JSON encoders write.
fn integer_millis(number: &serde_json::Number) -> Option<i128> {
    if let Some(n) = number.as_i64() {
        return Some(n.into());
    }
    if let Some(n) = number.as_u64() {
        return Some(n.into());
    }
    // `as` saturates, beyond any range a timestamp has; every integral f64 in
    // the accepted range is exact.
    number.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i128)
}
