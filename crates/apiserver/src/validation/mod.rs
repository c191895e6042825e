//! Validation of written objects, as kube-apiserver validates them.
//!
//! Every write through HTTP is validated: metadata for every resource
//! (`ValidateObjectMeta`: name syntax, labels, annotations, owner references,
//! finalizers), and per kind what the endpoint controllers write:
//! EndpointSlices (`pkg/apis/discovery/validation`), Endpoints
//! (`ValidateEndpoints`) and pod status IPs. A failed validation becomes a
//! 422 Invalid [`ApiError`](crate::ApiError) with one cause per field error.
//! Objects stored with [`ApiServer::insert_object`](crate::ApiServer::insert_object)
//! are not validated.

mod field;
pub(crate) mod names;
mod network;

use serde_json::Value;

use crate::resources::{ResourceInfo, Strategy};

pub use field::{FieldError, FieldErrorType};
pub(crate) use field::{causes, fmt_value};

/// Which name syntax a resource requires.
fn name_errors(info: &ResourceInfo, name: &str) -> Vec<String> {
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "namespaces") => names::is_dns1123_label(name),
        ("", "services") => names::is_dns1035_label(name),
        ("rbac.authorization.k8s.io", _) => names::path_segment_errors(name),
        _ => names::is_dns1123_subdomain(name),
    }
}

fn validate_string_map(obj: &Value, key: &str, errs: &mut Vec<FieldError>, labels: bool) {
    let Some(map) = crate::object::metadata(obj).and_then(|m| m.get(key)) else {
        return;
    };
    let path = format!("metadata.{key}");
    let Some(map) = map.as_object() else {
        errs.push(FieldError::invalid(path, fmt_value(map), "must be a map of strings"));
        return;
    };
    let mut total = 0;
    for (k, v) in map {
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid_str(path.clone(), k, msg));
        }
        let Some(v) = v.as_str() else {
            errs.push(FieldError::invalid(
                format!("{path}[{k}]"),
                fmt_value(v),
                "must be a string",
            ));
            continue;
        };
        total += k.len() + v.len();
        if labels {
            for msg in names::is_valid_label_value(v) {
                errs.push(FieldError::invalid_str(path.clone(), v, msg));
            }
        }
    }
    if !labels && total > 256 * 1024 {
        errs.push(FieldError::too_long(path, 256 * 1024));
    }
}

/// `ValidateObjectMeta`: name, namespace, labels, annotations, owner
/// references and finalizers.
pub(crate) fn validate_object_meta(info: &ResourceInfo, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = crate::object::meta_str(obj, "name");
    let generate_name = crate::object::meta_str(obj, "generateName");
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for msg in name_errors(info, name) {
            errs.push(FieldError::invalid_str("metadata.name", name, msg));
        }
    }
    let namespace = crate::object::meta_str(obj, "namespace");
    if info.namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in names::is_dns1123_label(namespace) {
                errs.push(FieldError::invalid_str("metadata.namespace", namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden("metadata.namespace", "not allowed on this type"));
    }
    validate_string_map(obj, "labels", &mut errs, true);
    validate_string_map(obj, "annotations", &mut errs, false);
    let refs = crate::object::owner_refs(obj);
    let mut controllers = 0;
    if let Some(raw) = crate::object::metadata(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
    {
        for (i, (r, raw)) in refs.iter().zip(raw).enumerate() {
            let path = format!("metadata.ownerReferences[{i}]");
            if r.api_version.is_empty() {
                errs.push(FieldError::invalid_str(
                    format!("{path}.apiVersion"),
                    "",
                    "version must not be empty",
                ));
            }
            if r.kind.is_empty() {
                errs.push(FieldError::invalid_str(
                    format!("{path}.kind"),
                    "",
                    "kind must not be empty",
                ));
            }
            if r.name.is_empty() {
                errs.push(FieldError::invalid_str(
                    format!("{path}.name"),
                    "",
                    "name must not be empty",
                ));
            }
            if r.uid.is_empty() {
                errs.push(FieldError::invalid_str(
                    format!("{path}.uid"),
                    "",
                    "uid must not be empty",
                ));
            }
            if raw.get("controller").and_then(Value::as_bool) == Some(true) {
                controllers += 1;
            }
        }
    }
    if controllers > 1 {
        errs.push(FieldError::invalid(
            "metadata.ownerReferences",
            "[...]".into(),
            "Only one reference can have Controller set to true",
        ));
    }
    for (i, f) in crate::object::finalizers(obj).iter().enumerate() {
        for msg in names::is_qualified_name(f) {
            errs.push(FieldError::invalid_str(format!("metadata.finalizers[{i}]"), f, msg));
        }
    }
    errs
}

/// `ValidateObjectMetaUpdate`: immutable metadata fields.
fn validate_object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for key in ["name", "namespace", "uid", "creationTimestamp"] {
        let a = crate::object::meta_str(new, key);
        let b = crate::object::meta_str(old, key);
        if a != b {
            errs.push(FieldError::invalid_str(
                format!("metadata.{key}"),
                a,
                "field is immutable",
            ));
        }
    }
    errs
}

/// Validates an object about to be created.
pub(crate) fn validate_create(info: &ResourceInfo, obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(info, obj);
    errs.extend(validate_kind(info, obj, None));
    errs
}

/// Validates an update of `old` into `new`.
pub(crate) fn validate_update(info: &ResourceInfo, new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(new, old);
    errs.extend(validate_object_meta(info, new));
    errs.extend(validate_kind(info, new, Some(old)));
    errs
}

fn validate_kind(info: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    match info.strategy {
        Strategy::EndpointSlice => network::validate_endpoint_slice(obj, old),
        Strategy::Endpoints => network::validate_endpoints(obj),
        Strategy::Pod => network::validate_pod_status_ips(obj),
        _ => Vec::new(),
    }
}
