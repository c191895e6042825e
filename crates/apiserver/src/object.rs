//! Small helpers reading and writing the `metadata` of JSON objects.

use serde_json::{Map, Value};

/// `metadata` of an object, if it is a map.
pub(crate) fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// `metadata`, created as an empty map when missing or not a map.
pub(crate) fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(map) = obj else {
        unreachable!("made an object above")
    };
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    match meta {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

/// A string field of `metadata`; empty when absent.
pub(crate) fn meta_str<'a>(obj: &'a Value, key: &str) -> &'a str {
    metadata(obj)
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Sets (or removes, for `None`) a field of `metadata`.
pub(crate) fn set_meta(obj: &mut Value, key: &str, value: Option<Value>) {
    let meta = metadata_mut(obj);
    match value {
        Some(v) => {
            meta.insert(key.to_owned(), v);
        }
        None => {
            meta.remove(key);
        }
    }
}

/// `metadata.labels` as a map, if present.
pub(crate) fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    metadata(obj).and_then(|m| m.get("labels")).and_then(Value::as_object)
}

/// `metadata.finalizers`.
pub(crate) fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn is_deleting(obj: &Value) -> bool {
    metadata(obj)
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|v| !v.is_null())
}

/// An owner reference of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnerRef {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) uid: String,
}

/// `metadata.ownerReferences`.
pub(crate) fn owner_refs(obj: &Value) -> Vec<OwnerRef> {
    metadata(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .map(|r| {
                    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    OwnerRef {
                        api_version: s("apiVersion"),
                        kind: s("kind"),
                        name: s("name"),
                        uid: s("uid"),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a dotted path (`spec.nodeName`) from an object.
pub(crate) fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |v, part| v.get(part))
}

/// The text a field selector compares: strings as they are, numbers and
/// booleans printed, absent as `default`.
pub(crate) fn field_text(obj: &Value, path: &str, default: &str) -> String {
    match get_path(obj, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => default.to_owned(),
    }
}

/// The store key of an object: `namespace/name`, or `name` when cluster scoped.
pub(crate) fn store_key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// The current time as Kubernetes writes timestamps (RFC 3339, seconds).
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
