//! For random fleets and random tokens, on both stores: no token ever reads or
//! writes a vehicle it does not hold. Every request the model refuses is a 403
//! (or, for `/collect` and `/record` naming no vehicle, refused the same way),
//! every one it allows succeeds, and afterwards each vehicle holds exactly the
//! readings of the allowed writes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use tokio::runtime::Runtime;

use super::{Issuer, spawn_secured};
use crate::common::{Backend, TestApp};

/// Vehicles per case.
const FLEET: usize = 4;

/// What a token holds: its scopes, and its vehicles (indices into the fleet),
/// `*`, or one vehicle named by `sub` alone (a device token).
#[derive(Debug, Clone)]
struct Token {
    record: bool,
    read: bool,
    fleet: bool,
    holds: Holds,
}

#[derive(Debug, Clone)]
enum Holds {
    All,
    Listed(Vec<usize>),
    Device(usize),
}

impl Token {
    fn holds(&self, vehicle: usize) -> bool {
        match &self.holds {
            Holds::All => true,
            Holds::Listed(list) => list.contains(&vehicle),
            Holds::Device(own) => *own == vehicle,
        }
    }

    /// The vehicle a request naming none is about: the token's one vehicle.
    fn own(&self) -> Option<usize> {
        match &self.holds {
            Holds::Device(own) => Some(*own),
            Holds::Listed(list) if list.len() == 1 => Some(list[0]),
            _ => None,
        }
    }

    fn may_record(&self, vehicle: usize) -> bool {
        self.record && self.holds(vehicle)
    }

    fn may_read(&self, vehicle: usize) -> bool {
        self.fleet || (self.read && self.holds(vehicle))
    }

    /// For a request naming no vehicle: its own vehicle, else `default`
    /// (outside the fleet: only `*` holds it).
    fn may_unnamed(&self, scope_ok: impl Fn(usize) -> bool, reading: bool) -> bool {
        match self.own() {
            Some(own) => scope_ok(own),
            None if reading && self.fleet => true,
            None => {
                matches!(self.holds, Holds::All) && (if reading { self.read } else { self.record })
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Operation {
    /// `POST /record`, naming the vehicle or (None) not.
    Record(Option<usize>),
    /// `POST /v1/vehicles/{id}/readings`.
    Readings(usize),
    /// `GET /collect`, naming the vehicle or not.
    Collect(Option<usize>),
    /// `GET /v1/vehicles/{id}`.
    Summary(usize),
}

fn token() -> impl Strategy<Value = Token> {
    let holds = prop_oneof![
        1 => Just(Holds::All),
        3 => prop::collection::btree_set(0..FLEET, 0..3)
            .prop_map(|set| Holds::Listed(set.into_iter().collect())),
        2 => (0..FLEET).prop_map(Holds::Device),
    ];
    (any::<bool>(), any::<bool>(), prop::bool::weighted(0.2), holds)
        .prop_map(|(record, read, fleet, holds)| Token { record, read, fleet, holds })
}

fn operation() -> impl Strategy<Value = Operation> {
    let vehicle = 0..FLEET;
    let maybe = prop::option::weighted(0.7, 0..FLEET);
    prop_oneof![
        maybe.clone().prop_map(Operation::Record),
        vehicle.clone().prop_map(Operation::Readings),
        maybe.prop_map(Operation::Collect),
        vehicle.prop_map(Operation::Summary),
    ]
}

fn case() -> impl Strategy<Value = Vec<(Token, Vec<Operation>)>> {
    prop::collection::vec((token(), prop::collection::vec(operation(), 1..6)), 1..5)
}

/// Runs one case on `app`, with vehicle ids unique to the case.
async fn run_case(
    app: &TestApp,
    issuer: &Issuer,
    prefix: &str,
    case: &[(Token, Vec<Operation>)],
) -> Result<(), TestCaseError> {
    let id = |vehicle: usize| format!("{prefix}-{vehicle}");
    let mut written: BTreeMap<usize, u64> = BTreeMap::new();
    for (token, operations) in case {
        let scope: Vec<&str> =
            [(token.record, "record"), (token.read, "read"), (token.fleet, "fleet")]
                .into_iter()
                .filter_map(|(has, name)| has.then_some(name))
                .collect();
        let mut claims = Issuer::claims(&scope.join(" "), &[]);
        match &token.holds {
            Holds::All => claims["vehicles"] = json!(["*"]),
            Holds::Listed(list) => {
                claims["vehicles"] = list.iter().map(|&v| json!(id(v))).collect();
            }
            Holds::Device(own) => {
                claims.as_object_mut().unwrap().remove("vehicles");
                claims["sub"] = json!(id(*own));
            }
        }
        let signed = issuer.ed.sign(&claims);
        for &operation in operations {
            let (answer, vehicle, allowed, is_write) = match operation {
                Operation::Record(named) => {
                    let mut body = json!({"engine_temperature": 50});
                    if let Some(v) = named {
                        body["vehicle_id"] = json!(id(v));
                    }
                    let answer = app.call("POST", "/record", Some(&body), Some(&signed)).await;
                    let vehicle = named.or(token.own());
                    let allowed = match named {
                        Some(v) => token.may_record(v),
                        None => token.may_unnamed(|v| token.may_record(v), false),
                    };
                    (answer, vehicle, allowed, true)
                }
                Operation::Readings(v) => {
                    let path = format!("/v1/vehicles/{}/readings", id(v));
                    let body = json!({"engine_temperature": 50});
                    let answer = app.call("POST", &path, Some(&body), Some(&signed)).await;
                    (answer, Some(v), token.may_record(v), true)
                }
                Operation::Collect(named) => {
                    let path = match named {
                        Some(v) => format!("/collect?vehicle_id={}", id(v)),
                        None => "/collect".to_owned(),
                    };
                    let answer = app.call("GET", &path, None, Some(&signed)).await;
                    let allowed = match named {
                        Some(v) => token.may_read(v),
                        None => token.may_unnamed(|v| token.may_read(v), true),
                    };
                    (answer, named.or(token.own()), allowed, false)
                }
                Operation::Summary(v) => {
                    let path = format!("/v1/vehicles/{}", id(v));
                    let answer = app.call("GET", &path, None, Some(&signed)).await;
                    (answer, Some(v), token.may_read(v), false)
                }
            };
            let what = format!("{operation:?} with {token:?}: {} {}", answer.status, answer.text);
            if allowed {
                let found = answer.status == 200 || (answer.status == 404 && !is_write);
                prop_assert!(found, "allowed, but {}", what);
                // Writes to `default` (a token holding `*`) are shared by every case.
                if let (true, Some(vehicle)) = (is_write, vehicle) {
                    *written.entry(vehicle).or_default() += 1;
                }
            } else {
                prop_assert_eq!(answer.status.as_u16(), 403, "refused, but {}", what);
            }
        }
    }
    // Each vehicle holds exactly the allowed writes.
    let admin = issuer.admin();
    for vehicle in 0..FLEET {
        let path = format!("/v1/vehicles/{}", id(vehicle));
        let summary = app.call("GET", &path, None, Some(&admin)).await;
        match written.get(&vehicle) {
            None => prop_assert_eq!(summary.status.as_u16(), 404, "{}", summary.text),
            Some(&count) => {
                let total = &summary.json()["signals"]["engine_temperature"]["total"];
                prop_assert_eq!(total, &json!(count), "{}", summary.text);
            }
        }
    }
    Ok(())
}

fn no_token_reaches_a_vehicle_it_does_not_hold(backend: Backend) {
    let runtime = Runtime::new().unwrap();
    let issuer = Issuer::new();
    let app = runtime.block_on(spawn_secured(backend, &issuer, |_| {}));
    let cases = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config { cases: 24, ..Config::default() });
    let outcome = runner.run(&case(), |case| {
        let prefix = format!("p{}", cases.fetch_add(1, Ordering::Relaxed));
        runtime.block_on(run_case(&app, &issuer, &prefix, &case))
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

#[test]
fn no_token_reaches_a_vehicle_it_does_not_hold_on_the_memory_store() {
    no_token_reaches_a_vehicle_it_does_not_hold(Backend::Memory);
}

#[test]
fn no_token_reaches_a_vehicle_it_does_not_hold_on_redis() {
    no_token_reaches_a_vehicle_it_does_not_hold(Backend::Redis);
}
