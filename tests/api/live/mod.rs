//! Live streams: the Redis feed against a real `redis-server` (`feed`), and
//! the stream routes of real service processes.

mod feed;
