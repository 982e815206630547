//! Moving a vehicle out of the first layout (a meta hash with `last_seen` and
//! `total:<signal>`, and a sorted set per signal) into its one hash, on its
//! first write or read: `migrate.lua` does the move; this side names its keys.
//! See the store's module header for when this happens and what an upgrade
//! must not do (run old and new instances together, or downgrade).

use redis::RedisError;

use super::connection::Link;
use super::{RedisStore, evalsha};
use crate::domain::VehicleId;
use crate::store::changes::vehicle_key;

/// The script that moves a vehicle out of the first layout.
pub(super) const MIGRATE_SCRIPT: &str = include_str!("migrate.lua");

/// The error code of `record.lua` for a vehicle still in the first layout.
pub(super) const FIRST_LAYOUT: &str = "OLDLAYOUT";

impl RedisStore {
    /// Moves `vehicle` out of the first layout (`migrate.lua`), naming every
    /// key that layout gave it: a sorted set for each `total:<signal>` its
    /// hash holds (the first layout's script counted every sample it added,
    /// so every signal it stored has a total, whatever the catalog is now).
    pub(super) async fn migrate(
        &self,
        link: &mut Link,
        vehicle: &VehicleId,
    ) -> Result<(), RedisError> {
        let meta = Self::meta_key(vehicle);
        let fields: Vec<String> = redis::cmd("HKEYS").arg(&meta).query_async(link).await?;
        let names: Vec<&str> =
            fields.iter().filter_map(|field| field.strip_prefix("total:")).collect();
        let mut eval = redis::cmd("EVALSHA");
        eval.arg(self.migrate.get_hash()).arg(1 + names.len()).arg(&meta);
        for name in &names {
            eval.arg(vehicle_key(vehicle, &format!(":signal:{name}")));
        }
        for name in &names {
            eval.arg(*name);
        }
        evalsha(&self.migrate, &eval, link).await?;
        Ok(())
    }
}
