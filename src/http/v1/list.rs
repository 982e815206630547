//! `GET /v1/vehicles`: the fleet, a page at a time, for the operator's view.
//!
//! Cursor-paged rather than offset-paged: on Redis a page is a `SCAN` step,
//! which has a cursor and no offset, and a cursor stays valid while vehicles
//! come and go. The cursor is opaque to clients; on the wire it is the store's
//! position (`VehicleCursor::resume`, decimal) followed by `~<id>` for each id
//! found but not yet listed, all URL-safe characters, so it needs no encoding
//! and a client passes `next_cursor` back as it is.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use serde_json::json;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::super::caller::Caller;
use super::super::openapi::{AuthErrors, ReadErrors, TokenErrors};
use super::super::problem::{ApiError, FieldError, Problem};
use super::super::state::AppState;
use crate::domain::vehicle::VEHICLE_PREFIX_PATTERN;
use crate::domain::{Timestamp, VehicleId, VehiclePrefix};
use crate::store::{VehicleCursor, VehiclePage};

/// A page's size when the query gives none.
pub const DEFAULT_LIMIT: usize = 50;

/// The largest page.
pub const MAX_LIMIT: usize = 1000;

/// Separates the position from each pending id in a cursor: not a vehicle-id
/// character, and unreserved in URLs.
const PENDING: char = '~';

/// The cursor as a regular expression, for the OpenAPI document: exactly the
/// strings `parse_cursor` takes, so a client that validates against the
/// document never refuses a cursor the service handed out, and the service
/// never refuses one the document allows. The position is a decimal `u64`
/// without leading zeros; each pending id is a vehicle id (1 to 64 of its
/// characters, not `.` or `..`). No lookahead, which not every client
/// generator's validator has.
fn cursor_pattern() -> String {
    let id = "[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}\
              |\\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}\
              |\\.\\.[A-Za-z0-9._-]{1,62}";
    format!("^({})?(~({id})){{0,{MAX_LIMIT}}}$", decimal_u64_pattern())
}

/// 0 to `u64::MAX` in decimal without leading zeros, as a regular
/// expression: up to 19 digits, or 20 that are at most `u64::MAX` (for each
/// digit of it but the first that is not 0: its digits before, a smaller
/// digit, then any).
fn decimal_u64_pattern() -> String {
    let max = u64::MAX.to_string();
    let mut branches = vec![format!("0|[1-9][0-9]{{0,{}}}", max.len() - 2), max.clone()];
    for (at, digit) in max.char_indices().skip(1).filter(|&(_, digit)| digit != '0') {
        let smaller = char::from(digit as u8 - 1);
        branches.push(format!("{}[0-{smaller}][0-9]{{{}}}", &max[..at], max.len() - at - 1));
    }
    branches.join("|")
}

/// `GET /v1/vehicles`' query. Other parameters (cache busters) are ignored.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the query is parsed by `ListQuery::parse`
pub struct ListParams {
    /// How many vehicles a page holds at most.
    #[param(minimum = 1, maximum = 1000, default = 50)]
    limit: Option<u32>,
    /// Where the page starts: the previous page's `next_cursor`, as it was.
    /// Without it, the first page.
    #[param(schema_with = cursor_schema)]
    cursor: Option<String>,
    /// Only vehicles whose id starts with this.
    #[param(schema_with = prefix_schema)]
    prefix: Option<String>,
}

fn cursor_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(cursor_pattern()))
        .examples([json!("1792")])
        .build()
}

fn prefix_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(VEHICLE_PREFIX_PATTERN))
        .max_length(Some(64))
        .examples([json!("fleet-")])
        .build()
}

/// One page of the fleet.
#[derive(Serialize, ToSchema)]
pub struct VehicleList {
    /// At most `limit` vehicles, newest `last_seen` first. May be empty while
    /// `next_cursor` is not: a step of the walk can find none.
    pub(super) vehicles: Vec<VehicleListed>,
    /// The next page's `cursor`; `null` on the last page. Across pages there is
    /// no order; each vehicle known throughout the walk is listed.
    #[schema(required = true)]
    pub(super) next_cursor: Option<String>,
}

/// A vehicle in the list.
#[derive(Serialize, ToSchema)]
pub struct VehicleListed {
    pub(super) vehicle_id: String,
    /// When the server last received a reading from this vehicle.
    #[schema(value_type = String, format = DateTime)]
    pub(super) last_seen: Timestamp,
}

/// The parsed query.
#[derive(Debug, PartialEq)]
struct ListQuery {
    limit: usize,
    cursor: VehicleCursor,
    prefix: VehiclePrefix,
}

impl ListQuery {
    /// Every bad parameter is reported at once.
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut parsed = Self {
            limit: DEFAULT_LIMIT,
            cursor: VehicleCursor::START,
            prefix: VehiclePrefix::default(),
        };
        let mut errors = Vec::new();
        let mut given: Vec<String> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if !matches!(name.as_ref(), "limit" | "cursor" | "prefix") {
                continue;
            }
            if given.contains(&name.to_string()) {
                errors.push(FieldError::parameter(
                    name.as_ref(),
                    "given more than once; give it once",
                ));
                continue;
            }
            given.push(name.to_string());
            let outcome = match name.as_ref() {
                "limit" => parse_limit(&value).map(|limit| parsed.limit = limit),
                "cursor" => parse_cursor(&value).map(|cursor| parsed.cursor = cursor),
                _ => VehiclePrefix::try_from(value.as_ref()).map(|prefix| parsed.prefix = prefix),
            };
            if let Err(detail) = outcome {
                errors.push(FieldError::parameter(name.as_ref(), detail));
            }
        }
        if errors.is_empty() { Ok(parsed) } else { Err(ApiError::invalid(errors)) }
    }
}

fn parse_limit(text: &str) -> Result<usize, String> {
    text.parse::<usize>().ok().filter(|limit| (1..=MAX_LIMIT).contains(limit)).ok_or_else(|| {
        format!("{text:?} is not a page size: give a whole number from 1 to {MAX_LIMIT}")
    })
}

/// A cursor as `encode_cursor` wrote it. An empty one is the first page, as
/// an absent one is.
fn parse_cursor(text: &str) -> Result<VehicleCursor, String> {
    let refuse = || {
        format!(
            "{text:?} is not a cursor this service handed out: pass a page's `next_cursor` back as \
             it was, or leave `cursor` out to start from the first page"
        )
    };
    if text.is_empty() {
        return Ok(VehicleCursor::START);
    }
    let mut parts = text.split(PENDING);
    let position = parts.next().unwrap_or_default();
    let pending = parts
        .map(|id| VehicleId::try_from(id).map_err(|_| refuse()))
        .collect::<Result<Vec<_>, _>>()?;
    let resume = match position {
        "" if pending.is_empty() => return Err(refuse()),
        "" => None,
        "0" => Some(0),
        digits if digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0') => {
            Some(digits.parse::<u64>().map_err(|_| refuse())?)
        }
        _ => return Err(refuse()),
    };
    if pending.len() > MAX_LIMIT {
        return Err(refuse());
    }
    Ok(VehicleCursor { pending, resume })
}

fn encode_cursor(cursor: &VehicleCursor) -> String {
    let mut text = cursor.resume.map(|at| at.to_string()).unwrap_or_default();
    for vehicle in &cursor.pending {
        text.push(PENDING);
        text.push_str(vehicle.as_str());
    }
    text
}

impl From<VehiclePage> for VehicleList {
    fn from(page: VehiclePage) -> Self {
        Self {
            vehicles: page
                .vehicles
                .into_iter()
                .map(|seen| VehicleListed {
                    vehicle_id: seen.vehicle.to_string(),
                    last_seen: seen.last_seen,
                })
                .collect(),
            next_cursor: page.next.as_ref().map(encode_cursor),
        }
    }
}

/// The vehicles heard from within the retention period, a page at a time:
/// newest first within a page, optionally only those whose id starts with
/// `prefix`. Follow `next_cursor` until it is `null` to see them all.
#[utoipa::path(
    get,
    path = "/v1/vehicles",
    tag = "v1",
    params(ListParams),
    responses(
        (status = 200, description = "A page of vehicles", body = VehicleList),
        (status = 422, description = "A bad `limit`, `cursor` or `prefix`; `errors[].parameter` names each", body = Problem, content_type = "application/problem+json"),
        ReadErrors,
        TokenErrors,
        AuthErrors,
    ),
    security(("token" = ["fleet"])),
)]
pub async fn list_vehicles(
    State(state): State<AppState>,
    Caller(caller): Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<VehicleList>, ApiError> {
    let ListQuery { limit, cursor, prefix } = ListQuery::parse(query.as_deref())?;
    let page = state.fleet.list_vehicles(&caller, &prefix, &cursor, limit).await?;
    Ok(Json(page.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> VehicleId {
        VehicleId::try_from(text).unwrap()
    }

    #[test]
    fn cursors_round_trip() {
        for cursor in [
            VehicleCursor::START,
            VehicleCursor { pending: vec![], resume: Some(u64::MAX) },
            VehicleCursor { pending: vec![id("a"), id("fleet-07.x_y")], resume: Some(17) },
            VehicleCursor { pending: vec![id("last")], resume: None },
        ] {
            let text = encode_cursor(&cursor);
            assert!(
                text.bytes().all(|b| b.is_ascii_alphanumeric() || b"~._-".contains(&b)),
                "{text}"
            );
            assert_eq!(parse_cursor(&text), Ok(cursor), "{text}");
        }
        assert_eq!(parse_cursor(""), Ok(VehicleCursor::START));
    }

    #[test]
    fn a_cursor_not_handed_out_is_refused_saying_what_to_do() {
        let too_many = format!("1{}", "~a".repeat(MAX_LIMIT + 1));
        for bad in [
            "x",
            "-1",
            "1.5",
            "~",
            "1~",
            "1~a b",
            "18446744073709551616",
            "1~a~",
            " 1",
            "01",
            "00",
            "1~.",
            "~..",
            &too_many,
        ] {
            let detail = parse_cursor(bad).expect_err(bad);
            assert!(detail.contains("next_cursor"), "{bad:?}: {detail}");
        }
    }

    #[test]
    fn the_query_defaults_and_reports_every_bad_parameter() {
        let parsed = ListQuery::parse(None).unwrap();
        assert_eq!(
            parsed,
            ListQuery { limit: 50, cursor: VehicleCursor::START, prefix: VehiclePrefix::default() }
        );
        let parsed = ListQuery::parse(Some("limit=1000&prefix=fleet-&cursor=42&_=1")).unwrap();
        assert_eq!(parsed.limit, 1000);
        assert_eq!(parsed.prefix.as_str(), "fleet-");
        assert_eq!(parsed.cursor.resume, Some(42));

        let Err(ApiError::InvalidRequest { errors, .. }) =
            ListQuery::parse(Some("limit=0&cursor=zz&prefix=a%2A"))
        else {
            panic!("accepted")
        };
        let names: Vec<_> = errors.iter().map(|e| e.parameter.as_deref().unwrap()).collect();
        assert_eq!(names, ["limit", "cursor", "prefix"]);
        for bad in ["limit=1001", "limit=-1", "limit=", "limit=ten", "limit=1&limit=2"] {
            assert!(ListQuery::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    /// The pattern, compiled once: its bounded repetitions make a large
    /// automaton, beyond the regex crate's default size limit.
    fn pattern() -> &'static regex::Regex {
        static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::RegexBuilder::new(&cursor_pattern()).size_limit(1 << 30).build().unwrap()
        });
        &PATTERN
    }

    #[test]
    fn the_pattern_takes_every_position_and_no_larger_number() {
        let pattern = pattern();
        for position in [0, 1, 9, 10, 1792, u64::MAX / 2, u64::MAX - 1, u64::MAX, 1 << 63] {
            assert!(pattern.is_match(&position.to_string()), "{position}");
        }
        for digit in 0..20 {
            // u64::MAX with one digit raised (where it can be) is too large.
            let mut text = u64::MAX.to_string().into_bytes();
            if text[digit] < b'9' {
                text[digit] += 1;
                let text = String::from_utf8(text).unwrap();
                assert!(!pattern.is_match(&text), "{text}");
                assert!(parse_cursor(&text).is_err(), "{text}");
            }
        }
        assert!(!pattern.is_match("99999999999999999999"));
        assert!(!pattern.is_match("100000000000000000000"));
    }

    proptest::proptest! {
        /// The document's pattern and the parser agree on every string: what
        /// one takes the other takes (schemathesis found them apart once).
        #[test]
        fn the_pattern_is_exactly_what_the_parser_takes(
            text in "[0-9]{0,21}(~[a.0-]{0,3}){0,3}|[0-9a.~ -]{0,12}",
        ) {
            proptest::prop_assert_eq!(pattern().is_match(&text), parse_cursor(&text).is_ok(), "{:?}", text);
        }

        #[test]
        fn every_cursor_handed_out_matches_the_pattern(
            resume in proptest::option::of(proptest::num::u64::ANY),
            pending in proptest::collection::vec("[A-Za-z0-9._-]{1,64}", 0..20),
        ) {
            let pending: Vec<_> =
                pending.iter().filter_map(|id| VehicleId::try_from(id.as_str()).ok()).collect();
            let text = encode_cursor(&VehicleCursor { pending, resume });
            proptest::prop_assert!(pattern().is_match(&text), "{:?}", text);
        }
    }
}
