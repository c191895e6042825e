//! A JSON-schema checker for the subset of draft-07 that
//! `deploy/helm/ecm/values.schema.json` uses (`type`, `properties`,
//! `additionalProperties: false`, `enum`, `minimum`, `maximum`,
//! `exclusiveMinimum`, `minLength`, `minItems`, `items`, `pattern`), so the
//! tests can hold values to the schema Helm enforces at install time.

use regex::Regex;
use serde_json::Value;

fn type_matches(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "null" => value.is_null(),
        other => panic!("schema uses an unsupported type {other:?}"),
    }
}

/// Every violation of `schema` by `value`, as `path: reason`.
pub(crate) fn violations(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let here = if path.is_empty() { "(root)" } else { path };
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => panic!("bad type {other}"),
        };
        if !names.iter().any(|t| type_matches(value, t)) {
            out.push(format!("{here}: {value} is not of type {names:?}"));
            return out;
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        out.push(format!("{here}: {value} is not one of {allowed:?}"));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            out.push(format!("{here}: {n} is below the minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            out.push(format!("{here}: {n} is above the maximum {max}"));
        }
        if let Some(min) = schema.get("exclusiveMinimum").and_then(Value::as_f64)
            && n <= min
        {
            out.push(format!("{here}: {n} is not above {min}"));
        }
    }
    if let Some(s) = value.as_str() {
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && (s.chars().count() as u64) < min
        {
            out.push(format!("{here}: {s:?} is shorter than {min}"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !Regex::new(pattern).expect("a valid pattern").is_match(s)
        {
            out.push(format!("{here}: {s:?} does not match {pattern}"));
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            out.push(format!("{here}: fewer than {min} items"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                out.extend(violations(item_schema, item, &format!("{path}[{i}]")));
            }
        }
    }
    if let Some(map) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        for (key, child) in map {
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match properties.and_then(|p| p.get(key)) {
                Some(child_schema) => out.extend(violations(child_schema, child, &child_path)),
                None if closed => out.push(format!("{child_path}: not a value of the chart")),
                None => {}
            }
        }
    }
    out
}
