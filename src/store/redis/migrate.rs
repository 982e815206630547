//! Moving a vehicle out of the first layout (a meta hash with `last_seen` and
//! `total:<signal>`, and a sorted set per signal) into its one hash, on its
//! first write or read: `migrate.lua` does the move; this side names its keys.
//! See the store's module header for when this happens and what an upgrade
//! must not do (run old and new instances together, or downgrade).

use redis::RedisError;

use super::RedisStore;
use super::connection::Link;
use crate::domain::{SignalName, VehicleId};

/// The script that moves a vehicle out of the first layout.
pub(super) const MIGRATE_SCRIPT: &str = include_str!("migrate.lua");

/// The error code of `record.lua` for a vehicle still in the first layout.
pub(super) const FIRST_LAYOUT: &str = "OLDLAYOUT";

impl RedisStore {
    /// Moves `vehicle` out of the first layout (`migrate.lua`), naming every
    /// key that layout may have given it: the catalog's signals and every
    /// `total:<signal>` its hash holds (a signal since dropped from the
    /// catalog, or a store built without one; the first layout wrote a total
    /// for each signal it stored).
    pub(super) async fn migrate(
        &self,
        link: &mut Link,
        vehicle: &VehicleId,
    ) -> Result<(), RedisError> {
        let meta = Self::meta_key(vehicle);
        let fields: Vec<String> = redis::cmd("HKEYS").arg(&meta).query_async(link).await?;
        let mut names: Vec<&str> = self.signals.iter().map(SignalName::as_str).collect();
        for name in fields.iter().filter_map(|field| field.strip_prefix("total:")) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let mut invocation = self.migrate.prepare_invoke();
        invocation.key(&meta);
        for name in &names {
            invocation.key(format!("tributary:{{{vehicle}}}:signal:{name}"));
        }
        for name in &names {
            invocation.arg(*name);
        }
        invocation.invoke_async::<i64>(link).await?;
        Ok(())
    }
}
