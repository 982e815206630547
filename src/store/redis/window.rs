//! A signal's field in the vehicle's hash, as `record.lua` writes it:
//! `<total> <n> <newest> <timestamp>:<value> ...`: the count of samples ever
//! accepted, how many the window holds and its newest timestamp (so that the
//! script's common case reads no further), then the window, oldest first (so
//! that the script trims it from the front), timestamps in microseconds and
//! values as redis-rs writes an `f64` (the shortest text that parses back to
//! the same number).
//! A read is one `HMGET` of the fields it needs: one command, so atomic
//! without a `MULTI` (which Redis refuses past `maxmemory`, reads too). A
//! write sends each signal's readings as a [`Group`].

use std::io::Write as _;

use super::RedisStore;
use crate::domain::{Aggregate, Reading, Sample, SignalName, StampedBy, Timestamp, VehicleId};
use crate::store::{SignalHistory, StoreError};

/// The field of `signal` in its vehicle's hash, `w:<signal>`, written into a
/// command as it is built (no string of its own per field and request).
struct Field<'a>(&'a SignalName);

impl redis::ToRedisArgs for Field<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writes into the command's own buffer, which cannot fail.
        let _ = arg.write_all(b"w:");
        let _ = arg.write_all(self.0.as_str().as_bytes());
    }
}

/// `HMGET` of the vehicle's `layout` and `last_seen`, and then of each of
/// `signals`' fields.
pub(super) fn hmget(vehicle: &VehicleId, signals: &[SignalName]) -> redis::Cmd {
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(RedisStore::meta_key(vehicle)).arg("layout").arg("last_seen");
    for signal in signals {
        cmd.arg(Field(signal));
    }
    cmd
}

/// Whether an [`hmget`] reply is of a vehicle in the first layout: a hash
/// (it has `last_seen`) without `layout` (see `migrate.lua`).
pub(super) fn first_layout(reply: &[Option<String>]) -> bool {
    matches!(reply, [None, Some(_), ..])
}

fn malformed(field: &str) -> StoreError {
    StoreError::Internal(format!("malformed window {field:?}").into())
}

/// A field's header, `<total> <n> <newest>` (each must be a number; the
/// total is returned), and the window's text after it (`None`: empty).
/// Read digit by digit: `splitn` and `str::parse` cost a pattern search and
/// a call per number, a thousand instructions a field (callgrind).
fn header(field: &str) -> Result<(u64, Option<&str>), StoreError> {
    let bytes = field.as_bytes();
    let mut at = 0;
    let mut number = || {
        let start = at;
        let mut value: u64 = 0;
        while let Some(&digit) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
            value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
            at += 1;
        }
        // A number, then a space or the end. Past either: after the third
        // number at the end, `at` is one past it and `field.get(at..)`
        // gives `None` (no window), as `splitn` did; after a space, the rest.
        let ends = bytes.get(at).is_none_or(|&b| b == b' ');
        (at > start && ends).then(|| {
            at += 1;
            value
        })
    };
    let mut next = || number().ok_or_else(|| malformed(field));
    let total = next()?;
    let _n = next()?;
    let _newest = next()?;
    Ok((total, field.get(at..)))
}

fn parse_sample(part: &str) -> Option<Sample> {
    let (at, value) = part.split_once(':')?;
    Some(Sample { at: Timestamp::from_micros(at.parse().ok()?)?, value: parse_value(value)? })
}

/// A window's value, the same to the last bit as `str::parse::<f64>`, which
/// it falls back to for anything but a plain decimal of at most 15 digits.
/// Those are most values (sensors send `85.5`, `-40`, `1800.25`), and a
/// `/collect` reads ten a signal: `str::parse` cost 180 instructions each, a
/// quarter of a four-signal Redis `/collect`'s work on its windows
/// (callgrind), where this costs about a third of that. Clinger's fast path:
/// a mantissa under 10^15 (< 2^53) and a power of ten up to 10^15 are exact
/// as `f64`, so their quotient, one correctly rounded division, is the
/// correctly rounded value of the decimal, which is what `str::parse` gives.
fn parse_value(text: &str) -> Option<f64> {
    const POWERS: [f64; 16] =
        [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 16 {
        return text.parse().ok();
    }
    let (mut mantissa, mut count, mut point) = (0_u64, 0_usize, None);
    for &byte in digits {
        match byte {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(byte - b'0');
                count += 1;
            }
            b'.' if point.is_none() => point = Some(count),
            _ => return text.parse().ok(),
        }
    }
    if count == 0 || count > 15 {
        return text.parse().ok();
    }
    // At most 15 digits, so under 10^15, and as many decimals at most.
    let value = mantissa as f64 / POWERS[point.map_or(0, |point| count - point)];
    Some(if negative { -value } else { value })
}

/// A field as a signal's history: the total and the newest `window` samples,
/// newest first. A field may hold more than `window` (written under a larger
/// `TRIBUTARY_WINDOW`, or moved from the first layout) until its next write
/// trims it; reads never show more than the window. Every sample is checked.
pub(super) fn parse(field: &str, window: usize) -> Result<SignalHistory, StoreError> {
    let (total, text) = header(field)?;
    let mut samples: Vec<Sample> = text
        .into_iter()
        .flat_map(|text| text.split(' '))
        .map(|part| parse_sample(part).ok_or_else(|| malformed(field)))
        .collect::<Result<_, _>>()?;
    samples.reverse();
    samples.truncate(window);
    Ok(SignalHistory { samples, total })
}

/// A field's window aggregated (`None`: the window is empty), as `/collect`
/// reads it: walked from its end, newest first (the order the memory store
/// folds in, so the figures are the same to the last bit), without
/// collecting the samples, and reading only the newest one's timestamp and
/// the others' values (callgrind: collecting, reversing and parsing every
/// timestamp cost 10,000 instructions a field, a sixth of a `/collect`). A
/// malformed part of the window is an error, as in [`parse`]; a part older
/// than the window is not read.
pub(super) fn aggregate(field: &str, window: usize) -> Result<Option<Aggregate>, StoreError> {
    let (_, Some(samples)) = header(field)? else { return Ok(None) };
    let mut newest_first = NewestFirst { text: samples, end: Some(samples.len()) }.take(window);
    let Some(newest) = newest_first.next() else { return Ok(None) };
    let newest = parse_sample(newest).ok_or_else(|| malformed(field))?;
    let mut bad = false;
    let older = newest_first.map_while(|part| {
        let colon = memchr::memchr(b':', part.as_bytes());
        let value = colon.and_then(|colon| parse_value(&part[colon + 1..]));
        bad |= value.is_none();
        value
    });
    let aggregate = Aggregate::folding(newest, older);
    if bad {
        return Err(malformed(field));
    }
    Ok(Some(aggregate))
}

/// The space-separated parts of a window's text, newest (last) first, as
/// `rsplit(' ')` gives them, found by `memrchr` (SIMD): `rsplit` and
/// `split_once` cost a pattern search each, about 460 instructions a sample
/// against 180 for parsing its value, and a byte-at-a-time backward scan
/// still cost 2,000 of a `/collect`'s instructions (callgrind).
struct NewestFirst<'a> {
    text: &'a str,
    /// Where the part still to give ends; `None` once the first is given.
    end: Option<usize>,
}

impl<'a> Iterator for NewestFirst<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let end = self.end?;
        // Spaces are ASCII, so every index next to one is a char boundary.
        let space = memchr::memrchr(b' ', &self.text.as_bytes()[..end]);
        self.end = space;
        Some(&self.text[space.map_or(0, |space| space + 1)..end])
    }
}

/// One signal's readings in a batch, as the script takes them (see
/// `record.lua`).
pub(super) struct Group<'a> {
    pub(super) server_total: usize,
    /// How many of `sent` are server-stamped (they come first).
    pub(super) server_sent: usize,
    /// The newest `window` server-stamped readings, then the device-stamped
    /// ones; oldest first when `simple`, else the server's newest first and
    /// the device's in the batch's order (which decides between two values
    /// with the same timestamp).
    pub(super) sent: Vec<&'a Reading>,
    /// Of one kind and with distinct timestamps: the script's fast path.
    pub(super) simple: bool,
}

impl<'a> Group<'a> {
    pub(super) fn of(signal: &SignalName, readings: &'a [Reading], window: usize) -> Self {
        let (mut server, device): (Vec<&Reading>, Vec<&Reading>) = readings
            .iter()
            .filter(|r| r.signal == *signal)
            .partition(|r| r.stamped_by == StampedBy::Server);
        let server_total = server.len();
        server.sort_by_key(|r| std::cmp::Reverse(r.at));
        server.truncate(window);
        let server_sent = server.len();
        let mut sent = server;
        if sent.is_empty() {
            let strictly_ascending = |sent: &[&Reading]| sent.windows(2).all(|w| w[0].at < w[1].at);
            // A device's batch usually comes oldest first: then no copy.
            if strictly_ascending(&device) {
                return Self { server_total, server_sent, sent: device, simple: true };
            }
            let mut ascending = device.clone();
            ascending.sort_by_key(|r| r.at);
            if strictly_ascending(&ascending) {
                return Self { server_total, server_sent, sent: ascending, simple: true };
            }
            return Self { server_total, server_sent, sent: device, simple: false };
        }
        let simple = device.is_empty() && sent.windows(2).all(|w| w[0].at > w[1].at);
        if simple {
            sent.reverse();
        } else {
            sent.extend(device);
        }
        Self { server_total, server_sent, sent, simple }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::ToRedisArgs;

    /// A value as the store sends it to the script.
    fn written(value: f64) -> String {
        String::from_utf8(value.to_redis_args().remove(0)).unwrap()
    }

    #[test]
    fn values_round_trip_exactly() {
        for value in [0.3, -40.0, 215.0, 1e-7, 16_383.75, 0.1 + 0.2, 1e300, 5e-324, -0.0] {
            let field = format!("3 1 1764268317000000 1764268317000000:{}", written(value));
            let history = parse(&field, 10).unwrap();
            assert_eq!(history.total, 3);
            assert_eq!(history.samples[0].value.to_bits(), value.to_bits(), "{field}");
            assert_eq!(history.samples[0].at.as_micros(), 1_764_268_317_000_000);
        }
    }

    #[test]
    fn values_parse_as_str_parse_does() {
        let texts = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "85.5",
            "-40",
            "1800.25",
            "5.",
            ".5",
            "-.5",
            ".",
            "-",
            "",
            "+1",
            "1e3",
            "inf",
            "NaN",
            "1.2.3",
            "--1",
            "1-",
            " 1",
            "0.1",
            "0.30000000000000004",
            "123456789012345",
            "1234567890123456",
            "12345678901234.5",
            "0.000000000000001",
            "999999999999999",
            "9999999999999999",
            "00000000000000000001",
            "1_0",
            // Of 16 and 17 digits: a mantissa and a power of ten as `f64`
            // would round twice.
            "9.103780606704639",
            "3474966.6650967814",
        ];
        for text in texts {
            let (got, expected) = beside_str_parse(text);
            assert_eq!(got, expected, "{text:?}");
        }
    }

    /// `parse_value(text)` and `str::parse`'s, as bits.
    fn beside_str_parse(text: &str) -> (Option<u64>, Option<u64>) {
        (parse_value(text).map(f64::to_bits), text.parse::<f64>().ok().map(f64::to_bits))
    }

    proptest::proptest! {
        #[test]
        fn any_written_value_parses_as_str_parse_does(value in proptest::num::f64::ANY) {
            let text = written(value);
            let (got, expected) = beside_str_parse(&text);
            proptest::prop_assert_eq!(got, expected, "{}", text);
        }

        /// Decimals of up to 17 digits, around the fast path's limit of 15.
        #[test]
        fn any_decimal_parses_as_str_parse_does(
            negative: bool,
            digits in "[0-9]{1,17}",
            point in proptest::option::of(0..=17_usize),
        ) {
            let mut text = String::from(if negative { "-" } else { "" });
            text.push_str(&digits);
            if let Some(point) = point.filter(|&point| point <= digits.len()) {
                text.insert(text.len() - point, '.');
            }
            let (got, expected) = beside_str_parse(&text);
            proptest::prop_assert_eq!(got, expected, "{}", text);
        }
    }

    #[test]
    fn a_field_reads_newest_first_and_aggregates_like_the_memory_store() {
        let history = parse("12 3 3000000 1000000:100 2000000:80 3000000:90", 10).unwrap();
        assert_eq!(history.total, 12);
        let at: Vec<i64> = history.samples.iter().map(|s| s.at.as_micros()).collect();
        assert_eq!(at, [3_000_000, 2_000_000, 1_000_000]);
        let figures =
            aggregate("12 3 3000000 1000000:100 2000000:80 3000000:90", 10).unwrap().unwrap();
        assert_eq!(Some(figures), Aggregate::of(&history.samples));
        assert_eq!((figures.current, figures.average), (90.0, 90.0));
        assert_eq!(aggregate("0 0 0", 10).unwrap(), None);
        // A field longer than the window (a larger TRIBUTARY_WINDOW before):
        // reads show the newest `window`, and keep the total.
        let history = parse("12 3 3000000 1000000:100 2000000:80 3000000:90", 2).unwrap();
        let at: Vec<i64> = history.samples.iter().map(|s| s.at.as_micros()).collect();
        assert_eq!((history.total, at), (12, vec![3_000_000, 2_000_000]));
    }

    #[test]
    fn newest_first_splits_as_rsplit_does() {
        for text in ["", " ", "a", "a b", "a b ", " a", "a  b", "1:2 3:4 5:6", "  "] {
            let walked: Vec<&str> = NewestFirst { text, end: Some(text.len()) }.collect();
            let split: Vec<&str> = text.rsplit(' ').collect();
            assert_eq!(walked, split, "{text:?}");
        }
    }

    #[test]
    fn a_malformed_field_is_an_internal_error() {
        let malformed = [
            "",
            "1 1:2",
            "x 1 1 1:2",
            "1 1 1 1:x",
            "1 1 1 12",
            "1 1 1 -5:1",
            "1 1 1 1:2 ",
            "2 2 2 1:x 2:3",
            "2 2 2 1 2:3",
            "1  1 1 1:2",
            "1 1 1x 1:2",
            "18446744073709551616 1 1 1:2",
            "1 1",
            // `str::parse` took a leading `+`; the script never writes one.
            "+1 1 1 1:2",
        ];
        for field in malformed {
            assert!(matches!(parse(field, 10), Err(StoreError::Internal(_))), "{field:?}");
            assert!(matches!(aggregate(field, 10), Err(StoreError::Internal(_))), "{field:?}");
        }
    }
}
