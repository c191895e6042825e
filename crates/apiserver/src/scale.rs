//! The `scale` subresource: an autoscaling/v1 `Scale` view of an object's
//! `spec.replicas` (what `kubectl scale` and autoscalers read and write).
//!
//! GET answers the Scale of the stored object (`status.replicas` and the
//! text form of `spec.selector`); PUT and PATCH (any patch type, applied to
//! the Scale) change only `spec.replicas` of the object, through the
//! normal update path, so `generation` is bumped and a
//! `metadata.resourceVersion` in the body is a precondition.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::object::{meta_str, store_key};
use crate::patch::{self, PatchError, PatchType};
use crate::registry::{Registry, WriteOptions};
use crate::resources::ResourceId;
use crate::store::StoredObject;
use crate::validation::FieldError;
use crate::workloads::selector_string;

/// The Scale of an object.
pub(crate) fn scale_of(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let keep = ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"];
    let metadata: serde_json::Map<String, Value> = keep
        .iter()
        .filter_map(|k| meta.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector_string(obj.pointer("/spec/selector")),
        },
    })
}

fn current(registry: &Registry, res: ResourceId, ns: Option<&str>, name: &str) -> Result<StoredObject, ApiError> {
    let info = registry.info(res);
    registry
        .store
        .get(res, &store_key(ns.filter(|_| info.namespaced), name))
        .ok_or_else(|| ApiError::not_found(info, name))
}

/// GET of the Scale.
pub(crate) fn get(registry: &Registry, res: ResourceId, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
    Ok(scale_of(&current(registry, res, ns, name)?.value))
}

/// Writes the replicas of a new Scale to the object; returns the stored object.
fn apply_scale(
    registry: &Registry,
    res: ResourceId,
    ns: Option<&str>,
    name: &str,
    scale: &Value,
    opts: &WriteOptions,
) -> Result<StoredObject, ApiError> {
    let info = registry.info(res);
    let replicas = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("spec.replicas must be an integer"))?,
    };
    if replicas < 0 {
        let err = FieldError::invalid(
            "spec.replicas",
            replicas.to_string(),
            "must be greater than or equal to 0",
        );
        return Err(ApiError::invalid(info, name, vec![err.to_cause()]));
    }
    let mut patch = json!({"spec": {"replicas": replicas}});
    let rv = meta_str(scale, "resourceVersion");
    if !rv.is_empty() {
        patch["metadata"] = json!({"resourceVersion": rv});
    }
    let body = serde_json::to_vec(&patch).unwrap_or_default();
    registry
        .patch(res, ns, name, PatchType::Merge, &body, None, opts)
        .map(|(o, _)| o)
}

/// PUT of a Scale.
pub(crate) fn update(
    registry: &Registry,
    res: ResourceId,
    ns: Option<&str>,
    name: &str,
    body: &Value,
    opts: &WriteOptions,
) -> Result<StoredObject, ApiError> {
    if let Some(n) = body.pointer("/metadata/name").and_then(Value::as_str)
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    current(registry, res, ns, name)?;
    apply_scale(registry, res, ns, name, body, opts)
}

/// PATCH of a Scale: the patch applies to the current Scale.
pub(crate) fn patch(
    registry: &Registry,
    res: ResourceId,
    ns: Option<&str>,
    name: &str,
    kind: PatchType,
    body: &[u8],
    opts: &WriteOptions,
) -> Result<StoredObject, ApiError> {
    let bad = |e: PatchError| match e {
        PatchError::Malformed(m) | PatchError::Unprocessable(m) => ApiError::bad_request(m),
    };
    let patch_value = patch::parse_patch(kind, body).map_err(bad)?;
    let scale = scale_of(&current(registry, res, ns, name)?.value);
    let mut new = patch::apply(kind, &scale, &patch_value).map_err(bad)?;
    // The Scale read above named a resourceVersion; only a patch that names
    // one makes it a precondition.
    if patch_value.pointer("/metadata/resourceVersion").is_none()
        && let Some(Value::Object(meta)) = new.get_mut("metadata")
    {
        meta.remove("resourceVersion");
    }
    apply_scale(registry, res, ns, name, &new, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_reads_replicas_and_prints_the_selector() {
        let d = json!({"metadata": {"name": "web", "namespace": "default", "resourceVersion": "7", "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["apiVersion"], "autoscaling/v1");
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=web"}));
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        assert!(s["metadata"].get("labels").is_none());
    }
}
