//! Tests of the simulated car: the same drive at any sampling rate, and plausible curves.

use super::*;
use crate::domain::Catalog;

fn drive(car: &mut VehicleModel, dt: f64, seconds: f64) -> Vec<Values> {
    let mut samples = vec![car.step(0.0)];
    let steps = (seconds / dt).round() as usize;
    samples.extend((0..steps).map(|_| car.step(dt)));
    samples
}

fn signals(values: &Values) -> [(&'static str, f64); 4] {
    [
        ("engine_temperature", values.engine_temperature),
        ("vehicle_speed", values.vehicle_speed),
        ("engine_rpm", values.engine_rpm),
        ("cabin_temperature", values.cabin_temperature),
    ]
}

#[test]
fn values_stay_in_the_catalog_ranges_over_long_drives_for_many_seeds() {
    let catalog = Catalog::builtin();
    for seed in 0..40 {
        let dt = [0.05, 0.5, 1.0, 7.3][seed as usize % 4];
        let mut car = VehicleModel::new(seed);
        for values in drive(&mut car, dt, 2.0 * 3600.0) {
            for (name, value) in signals(&values) {
                assert!(
                    catalog.get(name).unwrap().contains(value),
                    "seed {seed}: {name} = {value}"
                );
            }
            assert!(values.engine_rpm <= MAX_RPM, "seed {seed}: {values:?}");
        }
    }
}

#[test]
fn the_engine_warms_towards_its_operating_temperature_in_about_ten_minutes() {
    for seed in 0..20 {
        let mut car = VehicleModel::new(seed);
        let samples = drive(&mut car, 1.0, 3600.0);
        let at = |minute: usize| samples[minute * 60].engine_temperature;
        assert!((14.0..=21.0).contains(&at(0)), "seed {seed}: cold start at {}", at(0));
        assert!(at(5) > at(0) + 20.0, "seed {seed}: {} after 5 min", at(5));
        assert!(at(10) >= 80.0, "seed {seed}: {} after 10 min", at(10));
        for minute in 15..=60 {
            assert!(
                (85.0..=96.0).contains(&at(minute)),
                "seed {seed}: the thermostat let it reach {} at minute {minute}",
                at(minute)
            );
        }
    }
}

#[test]
fn the_cabin_drifts_from_ambient_towards_its_set_point() {
    for seed in 0..20 {
        let mut car = VehicleModel::new(seed);
        let samples = drive(&mut car, 1.0, 3600.0);
        let start = samples[0].cabin_temperature;
        let end = samples[3600].cabin_temperature;
        assert!((14.0..=23.5).contains(&start), "seed {seed}: {start}");
        assert!((19.5..=22.5).contains(&end), "seed {seed}: {end}");
        let steepest = samples
            .windows(2)
            .map(|pair| (pair[1].cabin_temperature - pair[0].cabin_temperature).abs())
            .fold(0.0, f64::max);
        assert!(steepest < 0.5, "seed {seed}: jumped {steepest} °C in a second");
    }
}

#[test]
fn the_engine_idles_when_the_car_stands_still_and_revs_with_speed() {
    for seed in 0..20 {
        let mut car = VehicleModel::new(seed);
        let samples = drive(&mut car, 0.5, 3600.0);
        let stopped = samples.iter().filter(|v| v.vehicle_speed == 0.0);
        for values in stopped.clone() {
            assert!((700.0..=900.0).contains(&values.engine_rpm), "seed {seed}: {values:?}");
        }
        for values in samples.iter().filter(|v| v.vehicle_speed > 20.0) {
            assert!((900.0..=4500.0).contains(&values.engine_rpm), "seed {seed}: {values:?}");
        }
        let fastest = samples.iter().map(|v| v.vehicle_speed).fold(0.0, f64::max);
        assert!(stopped.count() > 60, "seed {seed}: never waits at lights");
        assert!(fastest > 25.0, "seed {seed}: never goes anywhere");
    }
}

#[test]
fn speed_changes_smoothly() {
    for seed in 0..20 {
        let mut car = VehicleModel::new(seed);
        let samples = drive(&mut car, 0.5, 3600.0);
        for pair in samples.windows(2) {
            let change = (pair[1].vehicle_speed - pair[0].vehicle_speed).abs();
            // 12 km/h per second is about 3.3 m/s², hard braking.
            assert!(change <= 6.0, "seed {seed}: {pair:?}");
        }
    }
}

#[test]
fn a_seed_replays_the_same_drive_and_another_seed_another() {
    let run = |seed| drive(&mut VehicleModel::new(seed), 0.5, 600.0);
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn the_sampling_rate_does_not_change_the_drive() {
    let mut often = VehicleModel::new(3);
    let mut seldom = VehicleModel::new(3);
    for _ in 0..1800 {
        let mut a = often.step(0.1);
        for _ in 1..10 {
            a = often.step(0.1);
        }
        let b = seldom.step(1.0);
        // Only the sensor noise and the rounding differ.
        assert!((a.engine_temperature - b.engine_temperature).abs() <= 0.45, "{a:?} {b:?}");
        assert!((a.vehicle_speed - b.vehicle_speed).abs() <= 0.35, "{a:?} {b:?}");
        assert!((a.engine_rpm - b.engine_rpm).abs() <= 0.011 * a.engine_rpm + 0.5);
        assert!((a.cabin_temperature - b.cabin_temperature).abs() <= 0.25, "{a:?} {b:?}");
    }
}
