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

pub use crate::config::LiveSettings;
pub use crate::store::changes::{
    FEED_BUFFER, Feed, FeedError, FeedEvent, FeedEvents, MemoryFeed, Resync, Touched, channel,
    decode_signals, encode_signals, vehicle_of_channel,
};
pub use crate::store::redis::RedisFeed;
pub use hub::{Hub, LiveEvent, StreamEvent, SubscribeError, Subscription};
pub use metrics::LiveMetrics;
pub use summary::{SignalSummary, Signals, StoreSummaries, SummarySource};

#[cfg(test)]
mod tests;
