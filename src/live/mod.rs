//! Live data: a phone subscribes once to a vehicle and receives every change,
//! whichever instance the car wrote to.
//!
//! Writes announce, readers fetch:
//! - A store write announces which signals of which vehicle it changed
//!   ([`Touched`]): the memory store through [`MemoryFeed::announce`], the
//!   Redis store's write script by `SPUBLISH`ing the signal names
//!   ([`encode_signals`]) to the vehicle's sharded channel ([`channel`]),
//!   which [`RedisFeed`] receives on one connection per instance.
//! - The [`Hub`] fetches the touched signals' summaries ([`SummarySource`]) for
//!   vehicles that local streams watch, one fetch at a time per vehicle, and
//!   fans them out to [`Subscription`]s without ever waiting on a client.
//! - [`sse`] turns a subscription into a Server-Sent Events response.
//!
//! The feeds live with the stores, which announce (`store::changes`, and
//! `store::redis::RedisFeed`); they are re-exported here.
//!
//! So a stream carries state, not history: a missed event is repaired by the
//! next one, a slow client sees fewer, newer states (`skipped` says how many it
//! missed), and a vehicle nobody watches costs the write path almost nothing.
//!
//! Metrics (registered by [`LiveMetrics::register`], described by
//! [`metrics::DESCRIPTIONS`]):
//! - `tributary_streams_open` (gauge): streams open now.
//! - `tributary_stream_events_sent_total{event}`: events handed to streams,
//!   `event` = `snapshot`, `update` or `shutdown`.
//! - `tributary_stream_updates_coalesced_total`: signal states merged into a
//!   newer one while a stream waited out its `min_interval`.
//! - `tributary_stream_updates_skipped_total`: signal states merged into a
//!   newer one because the client had not read the previous update yet.
//!   (An update's `skipped` field counts both kinds.)
//! - `tributary_stream_resyncs_total`: fresh snapshots sent to streams because
//!   change messages may have been lost (Redis subscriber reconnected, or the
//!   hub fell behind its feed).

mod hub;
pub mod metrics;
pub mod sse;
mod summary;

use std::time::Duration;

pub use crate::store::changes::{
    FEED_BUFFER, Feed, FeedError, FeedEvent, FeedEvents, MemoryFeed, Resync, Touched, channel,
    decode_signals, encode_signals, vehicle_of_channel,
};
pub use crate::store::redis::RedisFeed;
pub use hub::{Hub, LiveEvent, StreamEvent, SubscribeError, Subscription};
pub use metrics::LiveMetrics;
pub use summary::{SignalSummary, Signals, StoreSummaries, SummarySource};

/// Settings of live streams (part of `tributary serve`'s settings).
#[derive(Debug, Clone, clap::Args)]
pub struct LiveSettings {
    /// Live streams (`GET /v1/vehicles/{id}/stream`) this instance serves at
    /// once; past it, new streams are answered 503 with `Retry-After`.
    #[arg(long, env = "TRIBUTARY_MAX_STREAMS", default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams: u32,
    /// How often an open stream sends a comment line when it has nothing else
    /// to send, so proxies and mobile networks keep it open and dead clients
    /// are found (e.g. `15s`).
    #[arg(long = "stream-heartbeat", env = "TRIBUTARY_STREAM_HEARTBEAT", default_value = "15s",
        value_parser = crate::config::parse_duration)]
    pub heartbeat: Duration,
}

impl Default for LiveSettings {
    /// The same defaults as the command line's (a test checks it).
    fn default() -> Self {
        Self { max_streams: 10_000, heartbeat: Duration::from_secs(15) }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod settings_tests {
    use clap::{Args, FromArgMatches};

    use super::*;

    fn parse(args: &[&str]) -> Result<LiveSettings, clap::Error> {
        // Environment variables ignored, so the test reads the flags alone.
        let command = LiveSettings::augment_args(clap::Command::new("serve"))
            .mut_args(|arg| arg.env(None::<&str>));
        let matches =
            command.try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()))?;
        LiveSettings::from_arg_matches(&matches)
    }

    #[test]
    fn the_defaults_are_the_command_lines() {
        let parsed = parse(&[]).unwrap();
        let default = LiveSettings::default();
        assert_eq!(
            (parsed.max_streams, parsed.heartbeat),
            (default.max_streams, default.heartbeat)
        );
        assert_eq!((default.max_streams, default.heartbeat), (10_000, Duration::from_secs(15)));
    }

    #[test]
    fn settings_are_checked_when_read() {
        let parsed = parse(&["--max-streams", "5", "--stream-heartbeat", "500ms"]).unwrap();
        assert_eq!((parsed.max_streams, parsed.heartbeat), (5, Duration::from_millis(500)));
        assert!(parse(&["--max-streams", "0"]).is_err());
        assert!(parse(&["--stream-heartbeat", "0s"]).is_err());
    }
}
