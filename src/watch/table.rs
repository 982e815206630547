//! What `tributary watch` prints, as pure functions of the state it holds:
//! the live table for a terminal, and one line per event for a pipe.

use std::collections::BTreeMap;

use crate::domain::Timestamp;
use crate::live::SignalSummary;

const HEADERS: [&str; 7] = ["SIGNAL", "CURRENT", "AVERAGE", "MIN", "MAX", "UNIT", "AGE"];

/// The table: a status line, a blank line, a header and one row per signal
/// (signal, current, average, min, max, unit, age of its newest reading at
/// `now`), numbers right-aligned. Without signals, a line saying so.
pub fn render_table(
    vehicle: &str,
    status: &str,
    signals: &BTreeMap<String, SignalSummary>,
    now: Timestamp,
) -> Vec<String> {
    let mut lines = vec![format!("{vehicle} · {status}"), String::new()];
    if signals.is_empty() {
        lines.push("no data yet: waiting for the vehicle to send readings".to_owned());
        return lines;
    }
    let rows: Vec<[String; 7]> = signals
        .iter()
        .map(|(name, s)| {
            [
                name.clone(),
                number(s.current),
                number(s.average),
                number(s.min),
                number(s.max),
                s.unit.clone(),
                s.updated_at.map_or_else(|| "-".to_owned(), |at| age(at, now)),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7]| {
        let mut out = String::new();
        for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let gap = if column == 0 { "" } else { "  " };
            // Numbers (columns 1 to 4) right-aligned, text left-aligned.
            if (1..=4).contains(&column) {
                out.push_str(&format!("{gap}{cell:>width$}"));
            } else {
                out.push_str(&format!("{gap}{cell:<width$}"));
            }
        }
        out.trim_end().to_owned()
    };
    lines.push(line(HEADERS));
    for row in &rows {
        lines.push(line(row.each_ref().map(String::as_str)));
    }
    lines
}

/// One line for a pipe: the event, its id, `skipped` for an update, then
/// `signal=current` for each signal it carries.
pub fn render_line(
    event: &str,
    id: &str,
    skipped: Option<u64>,
    signals: &BTreeMap<String, SignalSummary>,
) -> String {
    let mut line = event.to_owned();
    if !id.is_empty() {
        line.push_str(&format!(" id={id}"));
    }
    if let Some(skipped) = skipped {
        line.push_str(&format!(" skipped={skipped}"));
    }
    for (name, summary) in signals {
        line.push_str(&format!(" {name}={}", number(summary.current)));
    }
    if event == "snapshot" && signals.is_empty() {
        line.push_str(" (no data yet)");
    }
    line
}

/// A value with at most two decimals and no trailing zeros; `-` for none.
pub fn number(value: Option<f64>) -> String {
    let Some(value) = value else {
        return "-".to_owned();
    };
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".to_owned() } else { text.to_owned() }
}

/// How long ago `at` was at `now`: `0.4s` under ten seconds, then whole
/// seconds, minutes, hours or days. A time ahead of `now` (a device clock
/// running fast) counts as now.
pub fn age(at: Timestamp, now: Timestamp) -> String {
    let micros = (now.as_micros() - at.as_micros()).max(0);
    let seconds = micros as f64 / 1e6;
    match micros / 1_000_000 {
        s if s < 10 => format!("{seconds:.1}s"),
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64) -> Timestamp {
        Timestamp::from_micros((seconds * 1e6) as i64).unwrap()
    }

    fn summary(current: f64, average: f64, unit: &str, updated: f64) -> SignalSummary {
        SignalSummary {
            current: Some(current),
            average: Some(average),
            min: Some(current.min(average)),
            max: Some(current.max(average)),
            count: 2,
            total: 2,
            unit: unit.into(),
            updated_at: Some(at(updated)),
        }
    }

    #[test]
    fn the_table_aligns_its_columns_and_ages_each_signal() {
        let signals = BTreeMap::from([
            ("engine_temperature".to_owned(), summary(90.5, 88.23333, "celsius", 99.6)),
            ("vehicle_speed".to_owned(), summary(1234.0, 7.0, "km/h", 30.0)),
        ]);
        let lines = render_table("sim-001", "live", &signals, at(100.0));
        assert_eq!(
            lines,
            [
                "sim-001 · live",
                "",
                "SIGNAL              CURRENT  AVERAGE    MIN   MAX  UNIT     AGE",
                "engine_temperature     90.5    88.23  88.23  90.5  celsius  0.4s",
                "vehicle_speed          1234        7      7  1234  km/h     1m",
            ]
            .map(String::from)
        );
    }

    #[test]
    fn a_vehicle_without_data_says_so() {
        let lines = render_table("car-1", "live", &BTreeMap::new(), at(1.0));
        assert_eq!(lines[2], "no data yet: waiting for the vehicle to send readings");
    }

    #[test]
    fn lines_name_the_event_and_each_signals_current_value() {
        let signals = BTreeMap::from([
            ("engine_rpm".to_owned(), summary(2400.0, 2387.5, "rpm", 1.0)),
            ("vehicle_speed".to_owned(), summary(61.5, 60.0, "km/h", 1.0)),
        ]);
        assert_eq!(
            render_line("update", "7", Some(3), &signals),
            "update id=7 skipped=3 engine_rpm=2400 vehicle_speed=61.5"
        );
        assert_eq!(
            render_line("snapshot", "1", None, &BTreeMap::new()),
            "snapshot id=1 (no data yet)"
        );
        assert_eq!(render_line("shutdown", "9", None, &BTreeMap::new()), "shutdown id=9");
    }

    #[test]
    fn numbers_and_ages_read_like_people_write_them() {
        let cases = [
            (Some(88.0), "88"),
            (Some(0.126), "0.13"),
            (Some(-0.001), "0"),
            (Some(-40.5), "-40.5"),
            (None, "-"),
        ];
        for (value, text) in cases {
            assert_eq!(number(value), text, "{value:?}");
        }
        let now = at(200_000.0);
        for (ago, text) in [
            (0.0, "0.0s"),
            (9.94, "9.9s"),
            (12.0, "12s"),
            (600.0, "10m"),
            (7_200.0, "2h"),
            (172_800.0, "2d"),
            (-5.0, "0.0s"),
        ] {
            assert_eq!(age(at(200_000.0 - ago), now), text, "{ago}");
        }
    }
}
