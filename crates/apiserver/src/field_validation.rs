//! `fieldValidation` on create, update and patch: what to do with fields
//! the kind does not have.
//!
//! kube-apiserver decodes a request body into its Go type; a field the type
//! lacks is dropped, and the `fieldValidation` query parameter decides what
//! the client hears of it:
//!
//! | value | unknown fields |
//! |---|---|
//! | `Ignore` | nothing |
//! | `Warn` (the default) | one `Warning: 299 - "unknown field \"spec.foo\""` header each |
//! | `Strict` (kubectl's default for `create`, `apply`, `replace`) | 400 BadRequest: `<Kind> in version "<version>" cannot be handled as a <Kind>: strict decoding error: unknown field "spec.foo", …` |
//!
//! Here the body is walked along the kind's OpenAPI schema (k8s-openapi's,
//! as `/openapi/v2` serves it): a key of an object whose schema lists
//! `properties` without it and has no `additionalProperties` is unknown,
//! named with upstream's path notation (`spec.containers[0].imagePullPolicyy`)
//! in key order. Objects whose schema lists neither (free-form JSON,
//! `fieldsV1`, `RawExtension`) take anything, and so do kinds without a
//! k8s-openapi schema (custom resources). Values of the wrong type are left
//! to the usual validation. A walk, unlike a decode into the typed structs,
//! generates no code per kind. A patch is judged by its result: the
//! unknown fields it has that the stored object did not. Not done:
//! duplicate fields (the body is already a `serde_json::Value`, which keeps
//! the last), and dropping the unknown fields from what is stored (they are
//! kept, as before).

use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::openapi::kinds::{self, KnownKind};
use crate::openapi::schemas::Flavor;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum FieldValidation {
    /// Unknown fields are dropped silently.
    Ignore,
    /// Each unknown field is reported in a warning header.
    #[default]
    Warn,
    /// Any unknown field fails the request.
    Strict,
}

impl FieldValidation {
    /// Parses the parameter of a create or update (absent or empty:
    /// [`Warn`](Self::Warn)); another value is upstream's 422 on the
    /// request's options (`options_kind`: `CreateOptions` or
    /// `UpdateOptions`).
    pub(crate) fn parse(value: Option<&str>, options_kind: &str) -> Result<Self, ApiError> {
        match value {
            None | Some("" | "Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "{options_kind}.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: {other:?}: \
                     supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
                ),
            )),
        }
    }

    /// Checks `body`, an object of `api_version`/`kind`: `Ok` with the
    /// warnings to send (none for `Ignore`, or without unknown fields), or
    /// the `Strict` error.
    pub(crate) fn check(self, api_version: &str, kind: &str, body: &Value) -> Result<Vec<String>, ApiError> {
        if self == Self::Ignore {
            return Ok(Vec::new());
        }
        let Some(known) = kinds::lookup(api_version, kind) else {
            return Ok(Vec::new());
        };
        let unknown = unknown_fields(known, body);
        self.report(api_version, kind, &unknown)
    }

    /// `unknown` (paths) as warnings, or as the `Strict` error.
    fn report(self, api_version: &str, kind: &str, unknown: &[String]) -> Result<Vec<String>, ApiError> {
        let fields: Vec<String> = unknown.iter().map(|path| format!("unknown field \"{path}\"")).collect();
        if self != Self::Strict || fields.is_empty() {
            return Ok(fields);
        }
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            fields.join(", ")
        )))
    }
}

impl FieldValidation {
    /// Checks the result of a patch: the unknown fields of `after` that
    /// `before` did not already have (stored earlier without `Strict`), as
    /// [`check`](Self::check) reports them.
    pub(crate) fn check_patched(
        self,
        api_version: &str,
        kind: &str,
        before: &Value,
        after: &Value,
    ) -> Result<Vec<String>, ApiError> {
        if self == Self::Ignore {
            return Ok(Vec::new());
        }
        let Some(known) = kinds::lookup(api_version, kind) else {
            return Ok(Vec::new());
        };
        let had = unknown_fields(known, before);
        let new: Vec<String> = unknown_fields(known, after)
            .into_iter()
            .filter(|path| !had.contains(path))
            .collect();
        self.report(api_version, kind, &new)
    }
}

/// The paths of the fields of `body` that `known`'s schema does not have,
/// in key order (kubectl sends its keys sorted, so that is also the order
/// kube-apiserver names them in for kubectl).
fn unknown_fields(known: KnownKind, body: &Value) -> Vec<String> {
    let definitions = definitions();
    let mut unknown = Vec::new();
    if let Some(schema) = definitions.get((known.name)().as_ref()) {
        walk(definitions, schema, body, &mut String::new(), &mut unknown);
    }
    unknown
}

/// The Swagger 2.0 definitions of every kind with a k8s-openapi schema,
/// built on first use.
fn definitions() -> &'static Map<String, Value> {
    static DEFINITIONS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        let mut generator = Flavor::V2.settings().into_generator();
        for known in kinds::all() {
            (known.generate)(&mut generator);
        }
        generator.take_definitions(true)
    })
}

/// Adds to `unknown` the paths under `path` of `value`'s keys that
/// `schema` does not have.
fn walk(definitions: &Map<String, Value>, schema: &Value, value: &Value, path: &mut String, unknown: &mut Vec<String>) {
    let mut schema = schema;
    while let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let Some(resolved) = target
            .strip_prefix("#/definitions/")
            .and_then(|name| definitions.get(name))
        else {
            return;
        };
        schema = resolved;
    }
    match value {
        Value::Object(object) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            if properties.is_none() && additional.is_none() {
                return;
            }
            for (key, item) in object {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(field), _) => walk(definitions, field, item, path, unknown),
                    (None, Some(Value::Bool(true))) => {}
                    (None, Some(each @ Value::Object(_))) => walk(definitions, each, item, path, unknown),
                    (None, _) => unknown.push(path.clone()),
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            let Some(each) = schema.get("items") else {
                return;
            };
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                let _ = write!(path, "[{index}]");
                walk(definitions, each, item, path, unknown);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
