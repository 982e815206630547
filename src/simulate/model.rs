//! The simulated car: a small seeded model of one drive, sampled at any rate.
//!
//! It integrates in fixed 0.1 s steps, so a seed gives the same curves whatever
//! the sampling rate: an engine warming up to its operating temperature, speed
//! following a drive cycle with RPM from a gear model, a cabin that drifts.

use serde::Serialize;

/// One sample of the four built-in signals, in the catalog's units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Values {
    /// Engine coolant, °C.
    pub engine_temperature: f64,
    /// km/h.
    pub vehicle_speed: f64,
    /// rpm.
    pub engine_rpm: f64,
    /// °C.
    pub cabin_temperature: f64,
}

/// A car that starts cold: the coolant warms up to the thermostat's
/// temperature, the driver goes through a drive cycle (pull away, cruise,
/// brake, wait at lights), a six-speed gearbox turns speed into RPM, and the
/// heater brings the cabin to its set point once the engine gives heat.
/// Pure and deterministic given its seed.
#[derive(Debug, Clone)]
pub struct VehicleModel {
    /// Drives the driver's choices; output noise has its own stream so the
    /// drive does not depend on how often the car is sampled.
    drive: SplitMix64,
    noise: SplitMix64,
    /// Simulated seconds received but not yet integrated.
    pending: f64,

    /// Where the thermostat holds the coolant.
    operating: f64,
    cabin_set_point: f64,
    idle_rpm: f64,
    /// Scales acceleration and braking: calm drivers below 1, brisk above.
    temper: f64,

    coolant: f64,
    cabin: f64,
    /// km/h.
    speed: f64,
    /// km/h per second, smoothed so speed curves have no corners.
    accel: f64,
    rpm: f64,
    gear: usize,
    /// Speed the driver is heading for; 0 means stopping or stopped.
    target: f64,
    /// The driver's wander around `target` while cruising, km/h.
    wander: f64,
    /// Seconds until the driver's next decision; waiting at lights only counts
    /// down once the car has stopped.
    timer: f64,
}

/// The model's integration step, seconds.
const STEP: f64 = 0.1;
/// Longest stretch one `step` call integrates (an hour), so a silly `dt` cannot hang.
const MAX_DT: f64 = 3600.0;
const MAX_RPM: f64 = 7000.0;
/// Engine rpm per km/h in each gear of a typical six-speed manual.
const GEAR_RATIOS: [f64; 6] = [110.0, 62.0, 42.0, 32.0, 26.0, 21.0];
/// Below this speed the clutch is out and the engine idles.
const CREEP_KMH: f64 = 2.0;
/// Cruising speeds by road (town to motorway) and how often each is chosen.
const ROADS: [(f64, f64); 5] =
    [(30.0, 0.2), (50.0, 0.4), (70.0, 0.2), (100.0, 0.12), (120.0, 0.08)];

impl VehicleModel {
    pub fn new(seed: u64) -> Self {
        let mut drive = SplitMix64::new(seed);
        let noise = SplitMix64::new(drive.next_u64());
        let ambient = drive.between(15.0, 20.0);
        let idle_rpm = drive.between(760.0, 840.0);
        Self {
            pending: 0.0,
            operating: drive.between(88.0, 92.0),
            cabin_set_point: drive.between(20.0, 22.0),
            idle_rpm,
            temper: drive.between(0.8, 1.2),
            // A cold start: the engine at ambient, the cabin a little warmer from the sun.
            coolant: ambient,
            cabin: ambient + drive.between(0.0, 3.0),
            speed: 0.0,
            accel: 0.0,
            rpm: idle_rpm,
            gear: 1,
            target: 0.0,
            wander: 0.0,
            // The driver waits a moment before pulling away.
            timer: drive.between(2.0, 10.0),
            drive,
            noise,
        }
    }

    /// Advances the car by `dt_seconds` of simulated time and samples it.
    /// Time is integrated in fixed steps; a remainder carries to the next call.
    pub fn step(&mut self, dt_seconds: f64) -> Values {
        if dt_seconds.is_finite() && dt_seconds > 0.0 {
            self.pending += dt_seconds.min(MAX_DT);
        }
        // The tolerance keeps 0.5 s from integrating as 4 steps plus a rounding error.
        while self.pending >= STEP - 1e-9 {
            self.advance();
            self.pending -= STEP;
        }
        self.sample()
    }

    fn advance(&mut self) {
        self.drive_cycle();
        self.gearbox();
        self.thermals();
    }

    fn drive_cycle(&mut self) {
        let braking_for_lights = self.target == 0.0 && self.speed > 0.0;
        if !braking_for_lights {
            self.timer -= STEP;
        }
        if self.timer <= 0.0 {
            self.decide();
        }
        if self.target > 0.0 {
            // A random walk, pulled back to the target: nobody holds a speed exactly.
            self.wander += self.drive.between(-1.0, 1.0) * 3.0 * STEP.sqrt() - self.wander * 0.02;
            self.wander = self.wander.clamp(-5.0, 5.0);
        } else {
            self.wander = 0.0;
        }
        let max_accel = 7.0 * self.temper * (1.0 - self.speed / 200.0).max(0.2);
        let max_brake = 9.0 * self.temper;
        let mut desired =
            (0.5 * (self.target + self.wander - self.speed)).clamp(-max_brake, max_accel);
        if self.target == 0.0 && self.speed < 10.0 {
            // Brake firmly to a halt rather than creeping towards zero.
            desired = desired.min(-4.0);
        }
        self.accel += (desired - self.accel) * (STEP / 0.8);
        self.speed += self.accel * STEP;
        if self.speed <= 0.0 {
            self.speed = 0.0;
            self.accel = if self.target == 0.0 { 0.0 } else { self.accel.max(0.0) };
        }
    }

    /// The driver's next move: pull away, stop at lights, or change road.
    fn decide(&mut self) {
        if self.target == 0.0 {
            self.target = self.road_speed();
            self.timer = self.drive.between(30.0, 120.0);
            return;
        }
        let choice = self.drive.next_f64();
        if choice < 0.55 {
            self.target = 0.0;
            self.timer = self.drive.between(5.0, 40.0);
        } else {
            if choice < 0.85 {
                self.target = self.road_speed();
            }
            self.timer = self.drive.between(20.0, 90.0);
        }
    }

    fn road_speed(&mut self) -> f64 {
        let mut pick = self.drive.next_f64();
        let mut speed = ROADS[ROADS.len() - 1].0;
        for (road, weight) in ROADS {
            if pick < weight {
                speed = road;
                break;
            }
            pick -= weight;
        }
        speed + self.drive.between(-5.0, 5.0)
    }

    fn gearbox(&mut self) {
        let max_accel = 7.0 * self.temper;
        let throttle = (self.accel / max_accel).clamp(0.0, 1.0);
        let in_gear = |gear: usize, speed: f64| GEAR_RATIOS[gear - 1] * speed;
        // Braking, drivers let the revs fall lower before changing down.
        let braking = self.accel < -0.5;
        let downshift = if braking { 1000.0 } else { 1100.0 };
        if self.speed < CREEP_KMH {
            self.gear = 1;
        } else if self.gear < GEAR_RATIOS.len()
            && in_gear(self.gear, self.speed) > 2000.0 + 1800.0 * throttle
        {
            self.gear += 1;
        } else if self.gear > 1 && in_gear(self.gear, self.speed) < downshift {
            self.gear -= 1;
        }
        let braking_to_a_stop = braking && self.speed < 15.0;
        let target = if self.speed < CREEP_KMH || braking_to_a_stop {
            // Clutch out: the engine idles.
            self.idle_rpm
        } else {
            // Pulling away in first, the clutch slips and the revs rise ahead of the speed.
            let slip =
                if self.gear == 1 { 500.0 * throttle * (self.speed / 5.0).min(1.0) } else { 0.0 };
            in_gear(self.gear, self.speed).max(self.idle_rpm + slip)
        };
        self.rpm += (target - self.rpm) * (STEP / 0.25);
        self.rpm = self.rpm.clamp(0.0, MAX_RPM);
    }

    fn thermals(&mut self) {
        let load = (self.rpm / 4000.0).clamp(0.2, 1.0);
        let (towards, time_constant) = if self.coolant < self.operating - 2.0 {
            // Thermostat shut: the engine heats its own coolant, faster under load.
            (self.operating + 25.0, 300.0 / (0.7 + 0.6 * load))
        } else {
            // Thermostat open: held near the operating temperature.
            (self.operating + 4.0 * (load - 0.3), 30.0)
        };
        self.coolant += (towards - self.coolant) * (STEP / time_constant);

        // The heater needs a warm engine; the air conditioning does not.
        let effect = if self.cabin < self.cabin_set_point {
            ((self.coolant - 25.0) / 45.0).clamp(0.05, 1.0)
        } else {
            0.7
        };
        self.cabin += (self.cabin_set_point - self.cabin) * (STEP * effect / 240.0);
    }

    /// What the sensors report: the state plus a little noise, at the sensors' resolution.
    fn sample(&mut self) -> Values {
        let speed =
            if self.speed > 1.0 { self.speed + self.noise.between(-0.1, 0.1) } else { self.speed };
        Values {
            engine_temperature: round_to(self.coolant + self.noise.between(-0.15, 0.15), 10.0)
                .clamp(-40.0, 215.0),
            vehicle_speed: round_to(speed, 10.0).clamp(0.0, 500.0),
            // Quarter rpm: the resolution of OBD-II PID 0x0C.
            engine_rpm: round_to(self.rpm * (1.0 + self.noise.between(-0.005, 0.005)), 4.0)
                .clamp(0.0, MAX_RPM),
            cabin_temperature: round_to(self.cabin + self.noise.between(-0.05, 0.05), 10.0)
                .clamp(-40.0, 100.0),
        }
    }
}

/// `value` to the nearest 1/`steps` of a unit. Dividing by a whole number
/// gives the shortest decimal (21.7, not 21.700000000000003) in the JSON.
fn round_to(value: f64, steps: f64) -> f64 {
    (value * steps).round() / steps
}

/// SplitMix64 (Steele, Lea and Flood): tiny, fast, and good enough for curves.
#[derive(Debug, Clone)]
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
