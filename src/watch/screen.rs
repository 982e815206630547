//! What `watch` shows: the vehicle's state, kept from the stream's events,
//! redrawn in place as a table on a terminal (the ANSI escape codes the
//! module header of `watch` mentions) or printed a line per event when piped.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use super::Frame;
use super::table::{render_line, render_table};
use crate::domain::Clock;
use crate::live::SignalSummary;

/// What is shown: the vehicle's state, on a terminal as a table.
pub(super) struct Screen {
    vehicle: String,
    out: Box<dyn Write + Send>,
    terminal: bool,
    signals: BTreeMap<String, SignalSummary>,
    status: String,
    pub(super) received_snapshot: bool,
    /// Lines drawn so far (a terminal is cleared before the first drawing).
    drawn: bool,
    clock: Clock,
}

impl Screen {
    pub(super) fn new(vehicle: String, out: Box<dyn Write + Send>, terminal: bool) -> Self {
        Self {
            vehicle,
            out,
            terminal,
            signals: BTreeMap::new(),
            status: "connecting".into(),
            received_snapshot: false,
            drawn: false,
            clock: Clock::new(),
        }
    }

    pub(super) fn set_status(&mut self, status: String) {
        self.status = status;
        self.redraw();
    }

    pub(super) fn event(&mut self, name: &str, id: &str, frame: Option<Frame>) {
        let (signals, skipped) = frame.map_or((BTreeMap::new(), None), |f| (f.signals, f.skipped));
        if !self.terminal {
            let line = render_line(name, id, skipped, &signals);
            let _ = writeln!(self.out, "{line}").and_then(|()| self.out.flush());
        }
        match name {
            "snapshot" => {
                self.signals = signals;
                self.received_snapshot = true;
            }
            "update" => self.signals.extend(signals),
            _ => {}
        }
        self.redraw();
    }

    pub(super) fn redraw(&mut self) {
        if !self.terminal {
            return;
        }
        let lines = render_table(&self.vehicle, &self.status, &self.signals, self.clock.now());
        let mut out = String::new();
        if !self.drawn {
            // Hide the cursor, clear the screen.
            out.push_str("\x1b[?25l\x1b[2J");
            self.drawn = true;
        }
        // Home; each line clears what was left of the previous drawing; clear below.
        out.push_str("\x1b[H");
        for line in lines {
            out.push_str(&line);
            out.push_str("\x1b[K\n");
        }
        out.push_str("\x1b[J");
        let _ = self.out.write_all(out.as_bytes()).and_then(|()| self.out.flush());
    }

    /// Waits `delay`, keeping the ages on the table current.
    pub(super) async fn idle(&mut self, delay: Duration) {
        let until = tokio::time::Instant::now() + delay;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                _ = tick.tick() => self.redraw(),
            }
        }
    }

    /// Gives the cursor back.
    pub(super) fn finish(&mut self) {
        if self.terminal && self.drawn {
            let _ = self.out.write_all(b"\x1b[?25h").and_then(|()| self.out.flush());
        }
    }
}
