//! Reading docker-compose.yml: services, commands, environments, published
//! ports and `${VARIABLE}` defaults.

use super::*;

/// The Compose files that define the store: the default (Valkey) and the
/// Redis override, which must keep the same durability settings.
pub(super) const STORE_FILES: [&str; 2] = ["docker-compose.yml", "compose.redis.yml"];

pub(super) struct Compose {
    pub(super) file: &'static str,
    pub(super) root: Value,
}

impl Compose {
    pub(super) fn load() -> Self {
        Self::load_file("docker-compose.yml")
    }

    pub(super) fn load_file(file: &'static str) -> Self {
        let root = serde_norway::from_str(&read(file))
            .unwrap_or_else(|e| panic!("{file} is not valid YAML: {e}"));
        Compose { file, root }
    }

    pub(super) fn service(&self, name: &str) -> &Value {
        self.root
            .get("services")
            .and_then(|services| services.get(name))
            .unwrap_or_else(|| panic!("{} has no service named {name:?}", self.file))
    }
}

pub(super) fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// A `command:` or healthcheck `test:` as words, whether written as a string
/// or a list.
pub(super) fn command_words(command: Option<&Value>) -> Vec<String> {
    match command {
        Some(Value::String(line)) => line.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Sequence(items)) => items.iter().map(scalar).collect(),
        _ => Vec::new(),
    }
}

/// A service's `environment:`, whether written as a map or a list.
pub(super) fn env_of(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        Some(Value::Mapping(map)) => {
            map.iter().map(|(key, value)| (scalar(key), scalar(value))).collect()
        }
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|item| {
                let item = scalar(item);
                let (key, value) = item.split_once('=')?;
                Some((key.to_owned(), value.to_owned()))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The container ports a service publishes, in short or long syntax.
pub(super) fn published_targets(service: &Value) -> Vec<String> {
    let ports = service.get("ports").and_then(Value::as_sequence).into_iter().flatten();
    ports
        .filter_map(|port| match port {
            Value::Mapping(_) => port.get("target").map(scalar),
            other => {
                let short = with_defaults(&scalar(other));
                let target = short.split('/').next()?.rsplit(':').next()?.to_owned();
                Some(target)
            }
        })
        .collect()
}

pub(super) fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        other => inline(other),
    }
}

/// A YAML value on one line (as JSON), for messages.
pub(super) fn inline(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

/// Every `${NAME}`, `${NAME:-default}` or `${NAME-default}` in the file's
/// strings, with its default; `${NAME:?message}` and `${NAME?message}`
/// (required: Compose refuses to start without it) have none.
pub(super) fn collect_variables(value: &Value, found: &mut BTreeMap<String, Option<String>>) {
    match value {
        Value::String(text) => {
            for (name, default) in variables(text) {
                found.insert(name, default);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|item| collect_variables(item, found)),
        Value::Mapping(map) => map.iter().for_each(|(key, item)| {
            collect_variables(key, found);
            collect_variables(item, found);
        }),
        _ => {}
    }
}

pub(super) fn variables(text: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + end];
        let name_end =
            inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
        let (name, modifier) = inner.split_at(name_end);
        let default =
            modifier.strip_prefix(":-").or_else(|| modifier.strip_prefix('-')).map(str::to_owned);
        found.push((name.to_owned(), default));
        rest = &rest[start + end + 1..];
    }
    found
}

/// `text` with each `${NAME:-default}` replaced by its default, as Compose
/// reads it when no .env sets anything.
pub(super) fn with_defaults(text: &str) -> String {
    let mut out = text.to_owned();
    for (name, default) in variables(text) {
        let default = default.unwrap_or_default();
        for form in [
            format!("${{{name}:-{default}}}"),
            format!("${{{name}-{default}}}"),
            format!("${{{name}}}"),
        ] {
            out = out.replace(&form, &default);
        }
    }
    out
}
