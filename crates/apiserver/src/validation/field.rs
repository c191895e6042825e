//! [`FieldError`]: one thing wrong with one field of a written object, as
//! upstream's `field.Error`, and how it becomes a cause of a 422 answer.

use serde_json::Value;

use crate::error::StatusCause;

/// The kind of a field error, as `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    /// `FieldValueRequired`.
    Required,
    /// `FieldValueInvalid`.
    Invalid,
    /// `FieldValueDuplicate`.
    Duplicate,
    /// `FieldValueNotSupported`.
    NotSupported,
    /// `FieldValueTooMany`.
    TooMany,
    /// `FieldValueTooLong`.
    TooLong,
    /// `FieldValueForbidden`.
    Forbidden,
    /// `InternalError`.
    Internal,
}

/// One field error; becomes a `StatusCause` of a 422 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// What is wrong.
    pub kind: FieldErrorType,
    /// The field path, e.g. `endpoints[0].addresses[1]`.
    pub field: String,
    /// The offending value, already formatted as Go's `%q`/`%d` would.
    pub value: Option<String>,
    /// Extra explanation.
    pub detail: String,
}

/// Formats a JSON value as upstream prints bad values (`"x"` for strings).
pub(crate) fn fmt_value(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Go's `%q` of a string (close enough: JSON string escaping).
pub(crate) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

impl FieldError {
    pub(crate) fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorType::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, value: String, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorType::Invalid,
            field: field.into(),
            value: Some(value),
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid_str(field: impl Into<String>, value: &str, detail: impl Into<String>) -> Self {
        Self::invalid(field, quote(value), detail)
    }

    pub(crate) fn duplicate(field: impl Into<String>, value: String) -> Self {
        Self {
            kind: FieldErrorType::Duplicate,
            field: field.into(),
            value: Some(value),
            detail: String::new(),
        }
    }

    pub(crate) fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        Self {
            kind: FieldErrorType::NotSupported,
            field: field.into(),
            value: Some(fmt_value(value)),
            detail: format!("supported values: {}", list.join(", ")),
        }
    }

    pub(crate) fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self {
            kind: FieldErrorType::TooMany,
            field: field.into(),
            value: Some(actual.to_string()),
            detail: format!("must have at most {max} items"),
        }
    }

    pub(crate) fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            kind: FieldErrorType::TooLong,
            field: field.into(),
            value: None,
            detail: format!("may not be more than {max} bytes"),
        }
    }

    pub(crate) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorType::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    /// The cause `reason`, e.g. `FieldValueInvalid`.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::Internal => "InternalError",
        }
    }

    /// The error body (`ErrorBody()` upstream): `Invalid value: "x": detail`.
    pub fn body(&self) -> String {
        let head = match self.kind {
            FieldErrorType::Required => "Required value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::Internal => "Internal error",
        };
        let mut s = head.to_owned();
        if let Some(v) = &self.value {
            s.push_str(": ");
            s.push_str(v);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    pub(crate) fn to_cause(&self) -> StatusCause {
        StatusCause {
            reason: self.reason().to_owned(),
            message: self.body(),
            field: self.field.clone(),
        }
    }
}

/// Turns field errors into the causes of a 422 answer.
pub(crate) fn causes(errs: &[FieldError]) -> Vec<StatusCause> {
    errs.iter().map(FieldError::to_cause).collect()
}
