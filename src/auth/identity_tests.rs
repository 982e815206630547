//! Tests of the access rules and of reading claims into an identity.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn car(id: &str) -> VehicleId {
    VehicleId::try_from(id).unwrap()
}

fn identity(claims: Value) -> Result<Identity, AuthError> {
    serde_json::from_value::<RawClaims>(claims).unwrap().into_identity(1_000, 30)
}

#[test]
fn a_device_token_without_vehicles_holds_its_subject() {
    let device = identity(json!({"exp": 2_000, "sub": "car-1", "scope": "record"})).unwrap();
    assert_eq!(device.device_vehicle(), Some(&car("car-1")));
    assert_eq!(device.may_record(&car("car-1")), Ok(()));
    assert_eq!(
        device.may_record(&car("car-2")),
        Err(Forbidden { scope: Scope::Record, vehicle: Some(car("car-2")) })
    );
    assert_eq!(
        device.may_read(&car("car-1")),
        Err(Forbidden { scope: Scope::Read, vehicle: None })
    );
    assert_eq!(device.record_target(None), Ok(car("car-1")));
    assert!(device.record_target(Some(car("car-2"))).is_err());
}

#[test]
fn a_vehicles_claim_wins_over_the_subject_and_star_means_every_vehicle() {
    let phone =
        identity(json!({"exp": 2_000, "sub": "car-9", "vehicles": ["car-1", "car-2"], "scope": "read openid"}))
            .unwrap();
    assert_eq!(phone.scopes().iter().collect::<Vec<_>>(), [Scope::Read]);
    assert!(phone.may_read(&car("car-2")).is_ok());
    assert!(phone.may_read(&car("car-9")).is_err());
    assert_eq!(phone.device_vehicle(), None);
    assert_eq!(phone.record_target(None), Err(Forbidden { scope: Scope::Record, vehicle: None }));

    let writer = identity(json!({"exp": 2_000, "vehicles": ["*"], "scope": "record"})).unwrap();
    assert!(writer.may_record(&car("anything")).is_ok());
    assert_eq!(writer.record_target(None), Ok(VehicleId::default_vehicle()));
}

#[test]
fn fleet_reads_and_lists_every_vehicle_but_does_not_write() {
    let dashboard =
        identity(json!({"exp": 2_000, "sub": "ops", "scope": "fleet metrics"})).unwrap();
    assert!(dashboard.may_read(&car("car-7")).is_ok());
    assert!(dashboard.may_list().is_ok());
    assert!(dashboard.may_metrics().is_ok());
    assert_eq!(
        dashboard.may_record(&car("ops")),
        Err(Forbidden { scope: Scope::Record, vehicle: None })
    );
    let phone = identity(json!({"exp": 2_000, "vehicles": ["*"], "scope": "read"})).unwrap();
    assert_eq!(phone.may_list(), Err(Forbidden { scope: Scope::Fleet, vehicle: None }));
    assert_eq!(phone.may_metrics(), Err(Forbidden { scope: Scope::Metrics, vehicle: None }));
}

#[test]
fn a_subject_that_is_not_a_vehicle_id_holds_nothing() {
    for sub in ["*", "ops@example.com", ""] {
        let token = identity(json!({"exp": 2_000, "sub": sub, "scope": "record read"})).unwrap();
        assert_eq!(token.vehicles(), &Vehicles::only([]), "{sub:?}");
    }
}

#[test]
fn claims_of_the_wrong_shape_are_refused_by_name() {
    let cases = [
        (json!({}), "exp"),
        (json!({"exp": "soon"}), "exp"),
        (json!({"exp": 2_000, "iat": "now"}), "iat"),
        (json!({"exp": 2_000, "sub": 7}), "sub"),
        (json!({"exp": 2_000, "scope": ["read"]}), "scope"),
        (json!({"exp": 2_000, "vehicles": "car-1"}), "vehicles"),
        (json!({"exp": 2_000, "vehicles": ["car 1"]}), "vehicles"),
        (json!({"exp": 2_000, "vehicles": [1]}), "vehicles"),
    ];
    for (claims, name) in cases {
        match identity(claims.clone()) {
            Err(AuthError::InvalidClaim { claim, .. }) => assert_eq!(claim, name, "{claims}"),
            other => panic!("{claims}: {other:?}"),
        }
    }
}

#[test]
fn an_iat_in_the_future_beyond_the_leeway_is_not_valid_yet() {
    assert!(identity(json!({"exp": 2_000, "iat": 1_030})).is_ok());
    assert_eq!(identity(json!({"exp": 2_000, "iat": 1_031})), Err(AuthError::NotYetValid));
    assert_eq!(identity(json!({"exp": 1e3})).unwrap().expires_at(), Some(1_000));
}

#[test]
fn the_unrestricted_identity_may_do_everything() {
    let open = Identity::unrestricted();
    assert!(open.may_record(&car("x")).is_ok() && open.may_read(&car("y")).is_ok());
    assert!(open.may_list().is_ok() && open.may_metrics().is_ok());
    assert_eq!(open.record_target(None), Ok(VehicleId::default_vehicle()));
}

fn vehicle_id() -> impl Strategy<Value = VehicleId> {
    "[a-c][0-9]{0,1}".prop_map(|id| car(&id))
}

fn any_identity() -> impl Strategy<Value = Identity> {
    (
        proptest::collection::vec(proptest::sample::select(Scope::ALL.to_vec()), 0..4),
        proptest::option::of(proptest::collection::btree_set(vehicle_id(), 0..4)),
    )
        .prop_map(|(scopes, vehicles)| {
            let vehicles = vehicles.map_or(Vehicles::ALL, Vehicles::only);
            Identity::new(scopes.into_iter().collect(), vehicles, Some(2_000))
        })
}

proptest! {
    /// Whatever a token holds, it never reaches a vehicle it does not hold
    /// (other than through `fleet`, which reads every vehicle by design).
    #[test]
    fn no_identity_reaches_a_vehicle_it_does_not_hold(
        identity in any_identity(),
        vehicle in vehicle_id(),
        named in proptest::option::of(vehicle_id()),
    ) {
        let holds = identity.vehicles().holds(&vehicle);
        let scopes = identity.scopes();
        prop_assert_eq!(
            identity.may_record(&vehicle).is_ok(),
            holds && scopes.contains(Scope::Record)
        );
        prop_assert_eq!(
            identity.may_read(&vehicle).is_ok(),
            scopes.contains(Scope::Fleet) || (holds && scopes.contains(Scope::Read))
        );
        if let Ok(target) = identity.record_target(named) {
            prop_assert!(identity.vehicles().holds(&target));
            prop_assert!(scopes.contains(Scope::Record));
        }
    }
}

#[test]
fn listed_vehicles_are_held_in_any_order_and_repeats_count_once() {
    let listed = identity(json!({"exp": 2_000, "vehicles": ["car-2", "car-1", "car-2"]})).unwrap();
    let sorted = identity(json!({"exp": 2_000, "vehicles": ["car-1", "car-2"]})).unwrap();
    assert_eq!(listed, sorted);
    assert_eq!(listed.vehicles().listed(), [car("car-1"), car("car-2")]);
    assert!(listed.vehicles().holds(&car("car-1")) && listed.vehicles().holds(&car("car-2")));
    assert!(!listed.vehicles().holds(&car("car-3")) && !listed.vehicles().is_all());
    // One vehicle named twice is a device's one vehicle, as if named once.
    let twice = identity(json!({"exp": 2_000, "vehicles": ["car-1", "car-1"]})).unwrap();
    assert_eq!(twice.device_vehicle(), Some(&car("car-1")));
    assert_eq!(twice.vehicles(), &Vehicles::only([car("car-1")]));
    assert!(Vehicles::ALL.is_all() && Vehicles::ALL.listed().is_empty());
    assert!(Vehicles::only([]).listed().is_empty() && !Vehicles::only([]).holds(&car("car-1")));
}
