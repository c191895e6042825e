//! Patch application: JSON patch (RFC 6902), JSON merge patch (RFC 7386),
//! strategic merge patch and server-side apply (approximated).
//!
//! Strategic merge patch knows the list merge keys of the common core types
//! (containers, ports, env, volumes, conditions, ownerReferences, ...) by
//! field path, and the directives `$patch` (`replace`, `delete`, `merge`),
//! `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` and
//! `$retainKeys`. A list without a known merge key is replaced, as upstream
//! does for atomic lists. Server-side apply is served as a strategic merge
//! of the applied configuration onto the live object (created when absent):
//! no managedFields, no ownership conflicts, no removal of fields dropped
//! from the applied configuration.

use serde_json::{Map, Value};

/// The patch formats, by request `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// Recognizes a `Content-Type` header value.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        match ct {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// A patch that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is not valid JSON/YAML of the expected shape.
    #[error("{0}")]
    Malformed(String),
    /// The patch is well formed but cannot be applied (failed `test`, missing path).
    #[error("{0}")]
    Unprocessable(String),
}

/// Parses the body of a patch.
pub(crate) fn parse_patch(kind: PatchType, body: &[u8]) -> Result<Value, PatchError> {
    match kind {
        PatchType::Apply => serde_json::from_slice(body).or_else(|_| {
            let text = std::str::from_utf8(body).map_err(|e| PatchError::Malformed(e.to_string()))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| PatchError::Malformed(format!("error decoding YAML: {e}")))
        }),
        _ => serde_json::from_slice(body).map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}"))),
    }
}

/// Applies a parsed patch to `target`, returning the patched object.
pub(crate) fn apply(kind: PatchType, target: &Value, patch: &Value) -> Result<Value, PatchError> {
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch =
                serde_json::from_value(patch.clone()).map_err(|e| PatchError::Malformed(e.to_string()))?;
            let mut out = target.clone();
            json_patch::patch(&mut out, &ops).map_err(|e| PatchError::Unprocessable(e.to_string()))?;
            Ok(out)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(PatchError::Malformed("patch must be a JSON object".into()));
            }
            let mut out = target.clone();
            json_patch::merge(&mut out, patch);
            Ok(out)
        }
        PatchType::StrategicMerge | PatchType::Apply => {
            if !patch.is_object() {
                return Err(PatchError::Malformed("patch must be a JSON object".into()));
            }
            let mut out = target.clone();
            merge_value(&mut out, patch, "", kind == PatchType::Apply);
            Ok(out)
        }
    }
}

/// The merge key of a list at `path` (dotted field names, list items skipped).
fn merge_key(path: &str) -> Option<&'static str> {
    let last = path.rsplit('.').next().unwrap_or(path);
    let parent = path.rsplit('.').nth(1).unwrap_or("");
    match (parent, last) {
        ("metadata", "ownerReferences") => Some("uid"),
        (
            _,
            "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "imagePullSecrets" | "resourceClaims",
        )
        | ("containers" | "initContainers" | "ephemeralContainers", "env") => Some("name"),
        ("containers" | "initContainers" | "ephemeralContainers", "ports") => Some("containerPort"),
        ("containers" | "initContainers" | "ephemeralContainers", "volumeMounts") => Some("mountPath"),
        ("containers" | "initContainers" | "ephemeralContainers", "volumeDevices") => Some("devicePath"),
        ("spec", "ports") if !path.starts_with("ports") => Some("port"),
        ("status", "conditions" | "addresses") => Some("type"),
        ("status", "podIPs" | "hostIPs") | ("spec", "hostAliases") => Some("ip"),
        ("spec", "topologySpreadConstraints") => Some("topologyKey"),
        _ => None,
    }
}

/// Primitive lists merged as sets.
fn is_set_list(path: &str) -> bool {
    path == "metadata.finalizers"
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn merge_value(target: &mut Value, patch: &Value, path: &str, apply: bool) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = patch.clone();
        strip_directives(&mut clean);
        *target = clean;
        return;
    }
    if patch_map.get("$patch").and_then(Value::as_str) == Some("delete") {
        *target = Value::Object(Map::new());
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else { return };
    if let Some(Value::Array(retain)) = patch_map.get("$retainKeys") {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        target_map.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch_map {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (target_map.get_mut(field), value) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        let child_path = join(path, key);
        match value {
            Value::Null if !apply => {
                target_map.remove(key);
            }
            Value::Null => {}
            Value::Object(_) => {
                let entry = target_map.entry(key.clone()).or_insert(Value::Null);
                merge_value(entry, value, &child_path, apply);
            }
            Value::Array(items) => {
                let existing = target_map.remove(key);
                let merged = merge_list(existing, items, &child_path, apply);
                target_map.insert(key.clone(), merged);
                if let Some(Value::Array(order)) = patch_map.get(&format!("$setElementOrder/{key}"))
                    && let (Some(mk), Some(Value::Array(list))) = (merge_key(&child_path), target_map.get_mut(key))
                {
                    reorder(list, order, mk);
                }
            }
            other => {
                target_map.insert(key.clone(), other.clone());
            }
        }
    }
}

fn reorder(list: &mut [Value], order: &[Value], key: &str) {
    let rank = |v: &Value| {
        let k = v.get(key);
        order.iter().position(|o| o.get(key) == k).unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank);
}

fn merge_list(existing: Option<Value>, items: &[Value], path: &str, apply: bool) -> Value {
    let replace = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace {
        let kept: Vec<Value> = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .map(|mut v| {
                strip_directives(&mut v);
                v
            })
            .collect();
        return Value::Array(kept);
    }
    if is_set_list(path) {
        let mut list = match existing {
            Some(Value::Array(l)) => l,
            _ => Vec::new(),
        };
        for item in items {
            if !list.contains(item) {
                list.push(item.clone());
            }
        }
        return Value::Array(list);
    }
    let Some(key) = merge_key(path) else {
        let mut out: Vec<Value> = items.to_vec();
        out.iter_mut().for_each(strip_directives);
        return Value::Array(out);
    };
    let mut list = match existing {
        Some(Value::Array(l)) => l,
        _ => Vec::new(),
    };
    for item in items {
        let id = item.get(key).cloned();
        let pos = id
            .as_ref()
            .and_then(|id| list.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(p), true) => {
                list.remove(p);
            }
            (None, true) => {}
            (Some(p), false) => merge_value(&mut list[p], item, path, apply),
            (None, false) => {
                let mut v = item.clone();
                strip_directives(&mut v);
                list.push(v);
            }
        }
    }
    Value::Array(list)
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "z"}]}});
        let out = apply(PatchType::StrategicMerge, &pod, &patch).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "x"}, {"name": "b", "image": "z"}])
        );
        let del = json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}});
        let out = apply(PatchType::StrategicMerge, &pod, &del).unwrap();
        assert_eq!(out["spec"]["containers"], json!([{"name": "b", "image": "y"}]));
    }

    #[test]
    fn strategic_merge_conditions_and_null_deletes() {
        let pod = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let patch = json!({"metadata": {"labels": {"a": null}}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let out = apply(PatchType::StrategicMerge, &pod, &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}])
        );
    }

    #[test]
    fn merge_and_json_patch() {
        let obj = json!({"a": {"b": 1, "c": [1, 2]}});
        let out = apply(PatchType::Merge, &obj, &json!({"a": {"c": [3]}})).unwrap();
        assert_eq!(out, json!({"a": {"b": 1, "c": [3]}}));
        let out = apply(
            PatchType::Json,
            &obj,
            &json!([{"op": "replace", "path": "/a/b", "value": 2}]),
        )
        .unwrap();
        assert_eq!(out["a"]["b"], 2);
        assert!(
            apply(
                PatchType::Json,
                &obj,
                &json!([{"op": "test", "path": "/a/b", "value": 9}])
            )
            .is_err()
        );
    }
}
