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
//! Here the body is decoded into the kind's k8s-openapi type and
//! `serde_ignored` reports every field that type skipped, with upstream's
//! path notation (`spec.containers[0].imagePullPolicyy`), in key order. Kinds without a
//! k8s-openapi type (custom resources) have no unknown fields, as their
//! schema here is permissive. A body the type cannot decode at all is left
//! to the usual validation. A patch is judged by its result: the unknown
//! fields it has that the stored object did not (the patch itself is a
//! partial object, which the type cannot decode). Not done: duplicate
//! fields (the body is already a `serde_json::Value`, which keeps the
//! last), and dropping the unknown fields from what is stored (they are
//! kept, as before).

use serde_json::Value;

use crate::error::ApiError;
use crate::openapi::kinds::{self, KnownKind};

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

/// The paths of the fields of `body` that `known`'s type does not have,
/// in key order (kubectl sends its keys sorted, so that is also the order
/// kube-apiserver names them in for kubectl); empty if the type cannot
/// decode `body`.
fn unknown_fields(known: KnownKind, body: &Value) -> Vec<String> {
    let mut body = body.clone();
    // The type checks these two; the request's own are checked elsewhere.
    if let Some(object) = body.as_object_mut() {
        object.insert("apiVersion".to_owned(), Value::from(known.api_version));
        object.insert("kind".to_owned(), Value::from(known.kind));
    }
    (known.unknown_fields)(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests;
