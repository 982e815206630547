//! The domain: what a reading, a vehicle, a signal and a window *are*, independent
//! of HTTP and of storage. Wire types turn into these types through `TryFrom` or
//! small parse functions, which are the only places a bad value is rejected
//! ("parse, don't validate"); everything downstream can trust them.

pub mod clock;
pub mod rate;
pub mod reading;
pub mod signal;
pub mod vehicle;
pub mod window;

pub use clock::{Clock, MAX_FUTURE_MICROS, MILLIS_2000, Timestamp};
pub use reading::{MAX_BATCH, Reading, StampedBy};
pub use signal::{Catalog, CatalogError, SignalName, SignalSpec};
pub use vehicle::{InvalidVehicleId, VehicleId, VehiclePrefix};
pub use window::{Aggregate, Sample};
