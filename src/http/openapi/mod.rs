//! What the API surfaces share in the OpenAPI document served at
//! `/openapi.json`: its static part ([`ApiDoc`]), the types of vehicle ids and
//! timestamps, the error sets, and the signals of a reading object. Paths,
//! parameters and responses come from each surface's `#[utoipa::path]`
//! annotations; each surface completes its own schemas from the catalog the
//! server runs with, so signals added with `TRIBUTARY_SIGNALS` are documented
//! with their ranges. The rules themselves live in `wire` and the domain; this
//! module only describes them, using their constants where they have one.

use std::borrow::Cow;

use serde_json::{Map, Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

mod errors;

use crate::domain::vehicle::VEHICLE_ID_PATTERN;
use crate::domain::{Catalog, MAX_FUTURE_MICROS, MILLIS_2000, SignalSpec};
pub(in crate::http) use errors::{
    AuthErrors, BodyErrors, ReadErrors, StreamErrors, TokenErrors, WriteErrors,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tributary",
        description = "Live car telemetry: sensors record readings, phones read their car's current values. \
Errors are RFC 9457 problem details (`application/problem+json`)."
    ),
    tags(
        (name = "seed", description = "The original API; answers exactly as it always has."),
        (name = "v1", description = "Fleets: many vehicles, many signals, device timestamps, batches."),
        (name = "operations", description = "Health and readiness."),
    ),
    modifiers(&TokenScheme)
)]
pub(super) struct ApiDoc;

/// The name of the bearer-token security scheme the operations require.
pub(super) const TOKEN_SCHEME: &str = "token";

/// The bearer JWT scheme. Each operation's `security` names the scopes it
/// needs, any one requirement sufficing (`read` or `fleet` for reads); they
/// are dropped from the document when the service runs with auth off, where
/// no operation needs a token.
struct TokenScheme;

impl Modify for TokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "A JWT signed by a key the service trusts (`TRIBUTARY_AUTH_KEYS`) or its shared \
secret, sent as `Authorization: Bearer <token>`. Its space-separated `scope` claim holds \
`record` (write the token's vehicles), `read` (read them), `fleet` (read every vehicle) and \
`metrics`; its vehicles are the `vehicles` claim (ids, or `[\"*\"]`), else `sub`.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(TOKEN_SCHEME, SecurityScheme::Http(scheme));
    }
}

/// Drops every operation's `security` (for a service with auth off).
pub(super) fn drop_security(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            operation.remove("security");
        }
    }
}

/// Adds the `X-Request-Id` header to every documented answer (see
/// `http::access`), as one shared header component.
pub(super) fn document_request_ids(document: &mut Value) {
    let header = json!({
        "description": "The request's id: the client's own `X-Request-Id` when it sent a sane one (1 to 128 of A-Z, a-z, 0-9 and `-_.:+=/@`), else one made by the service. Also in the access log and in problem bodies (`request_id`).",
        "schema": {"type": "string", "minLength": 1, "maxLength": 128}
    });
    if let Some(components) = document.get_mut("components").and_then(Value::as_object_mut) {
        let headers = components.entry("headers").or_insert_with(|| json!({}));
        headers["RequestId"] = header;
    }
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut)
            else {
                continue;
            };
            let inline = responses.values_mut().filter_map(Value::as_object_mut);
            // A reference may not carry other fields (its target would have them).
            for response in inline.filter(|response| !response.contains_key("$ref")) {
                let headers = response.entry("headers").or_insert_with(|| json!({}));
                headers["X-Request-Id"] = json!({"$ref": "#/components/headers/RequestId"});
            }
        }
    }
}

/// The type of every documented vehicle id, in a path, a query or a body: the
/// rule of `VehicleId::try_from`.
pub(super) struct VehicleIdSchema;

impl PartialSchema for VehicleIdSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(VEHICLE_ID_PATTERN))
            .min_length(Some(1))
            .max_length(Some(64))
            .description(Some("1 to 64 characters of A-Z, a-z, 0-9, `-`, `_` and `.`, other than `.` and `..`; a VIN fits."))
            .examples([json!("car-1")])
            .into()
    }
}

impl ToSchema for VehicleIdSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("VehicleId")
    }
}

/// The type of a reading's `timestamp`, as `wire::parse_timestamp` accepts it.
pub(super) struct TimestampSchema;

impl PartialSchema for TimestampSchema {
    fn schema() -> RefOr<Schema> {
        let minutes = MAX_FUTURE_MICROS / 60_000_000;
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .description(Some("An RFC 3339 date-time."))
                    .examples([json!("2026-11-27T18:00:00.250Z")]),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(MILLIS_2000))
                    .description(Some("Milliseconds since the Unix epoch.")),
            )
            .description(Some(format!(
                "When the reading was taken: an RFC 3339 date-time or integer milliseconds since \
the Unix epoch, from 2000-01-01 to at most {minutes} minutes ahead of the server's clock. \
The server's receive time when absent. A reading sent again with the same timestamp \
replaces the first, so retries are idempotent."
            )))
            .into()
    }
}

impl ToSchema for TimestampSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Timestamp")
    }
}

/// Adds one property per catalog signal to a reading-object schema, and the rules
/// `wire::parse_reading_object` enforces: at least one signal, each by its name
/// or its VSS path but not both, and no other fields.
///
/// The two rules that need `anyOf` and `not` sit inside an `allOf`, beside an
/// explicit `type: object`: the same constraint, but client generators
/// (openapi-python-client among them) then make a class with a field per
/// signal, where a top-level `anyOf` made them give up on the type (`Any`).
/// The VSS paths are `patternProperties`, which generators ignore: a
/// generated client sends signals by name.
pub(super) fn add_signals(schema: &mut Value, catalog: &Catalog) {
    let object = schema.as_object_mut().expect("a reading object's schema is an object");
    let mut properties = Map::new();
    let mut by_path = Map::new();
    let mut any_signal = Vec::new();
    let mut both_names = Vec::new();
    for spec in catalog.signals() {
        let name = spec.name.as_str();
        let mut description = format!("In {}, from {} to {}.", spec.unit, spec.min, spec.max);
        if !spec.description.is_empty() {
            description = format!("{} {description}", spec.description);
        }
        any_signal.push(json!({"required": [name]}));
        if let Some(path) = &spec.vss_path {
            description.push_str(&format!(
                " VSS path `{path}`, which may be sent instead of `{name}` (not both)."
            ));
            by_path.insert(
                format!("^{}$", escape_regex(path)),
                signal_value(spec, format!("`{name}` by its VSS path.")),
            );
            any_signal.push(json!({"required": [path]}));
            both_names.push(json!({"required": [name, path]}));
        }
        properties.insert(name.to_owned(), signal_value(spec, description));
    }
    // Signals first, then the fields the derive documented (`timestamp`, …).
    if let Some(Value::Object(fixed)) = object.remove("properties") {
        properties.extend(fixed);
    }
    object.insert("properties".into(), Value::Object(properties));
    object.insert("patternProperties".into(), Value::Object(by_path));
    object.insert("additionalProperties".into(), json!(false));
    object.insert("minProperties".into(), json!(1));
    object.insert("type".into(), json!("object"));
    let mut rules = vec![json!({"anyOf": any_signal})];
    if !both_names.is_empty() {
        rules.push(json!({"not": {"anyOf": both_names}}));
    }
    object.insert("allOf".into(), Value::Array(rules));
}

fn signal_value(spec: &SignalSpec, description: String) -> Value {
    json!({
        "type": "number",
        "minimum": spec.min,
        "maximum": spec.max,
        "description": description,
    })
}

/// Escapes the characters that ECMA-262 regular expressions give a meaning.
pub(super) fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}/".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vss_paths_are_matched_literally() {
        assert_eq!(escape_regex("Vehicle.Speed"), r"Vehicle\.Speed");
        assert_eq!(escape_regex("a+b(c)/d"), r"a\+b\(c\)\/d");
    }
}
