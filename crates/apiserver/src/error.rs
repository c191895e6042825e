//! API errors, rendered as the `metav1.Status` bodies kube-apiserver sends.
//!
//! Every failed request is answered with a [`ApiError`]: the HTTP status code,
//! the machine-readable `reason`, a human message worded as upstream words it
//! (`pods "foo" not found`, `Operation cannot be fulfilled on ...`), and the
//! `details` object (name, group, kind, causes, retryAfterSeconds).

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::resources::ResourceInfo;

/// One cause of an error, as in `metav1.StatusCause`: a field error of a
/// 422 Invalid answer, for example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCause {
    /// `reason` of the cause, e.g. `FieldValueInvalid`.
    pub reason: String,
    /// Human-readable description of the cause.
    pub message: String,
    /// The field path the cause refers to, e.g. `endpoints[0].addresses[0]`.
    pub field: String,
}

/// An error answer of the API server: a `metav1.Status` with `status: Failure`.
///
/// Constructors mirror `k8s.io/apimachinery/pkg/api/errors` (`NewNotFound`,
/// `NewConflict`, ...), so messages and reasons match kube-apiserver's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code, also the Status `code`.
    pub code: u16,
    /// Status `reason`, e.g. `NotFound`, `Conflict`, `Invalid`, `Expired`.
    pub reason: String,
    /// Status `message`.
    pub message: String,
    /// `details.name`.
    pub name: Option<String>,
    /// `details.group`.
    pub group: Option<String>,
    /// `details.kind` (a resource plural for most errors, a Kind for Invalid).
    pub kind: Option<String>,
    /// `details.uid`.
    pub uid: Option<String>,
    /// `details.causes`.
    pub causes: Vec<StatusCause>,
    /// `details.retryAfterSeconds`; also sent as the `Retry-After` header.
    pub retry_after_seconds: Option<u32>,
}

/// The `group/resource` string upstream uses in messages: `pods`,
/// `endpointslices.discovery.k8s.io`.
pub(crate) fn qualified_resource(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        info.plural.clone()
    } else {
        format!("{}.{}", info.plural, info.group)
    }
}

/// The `Kind.group` string upstream uses in Invalid messages.
pub(crate) fn qualified_kind(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        info.kind.clone()
    } else {
        format!("{}.{}", info.kind, info.group)
    }
}

impl ApiError {
    /// A bare error with a code, reason and message and no details.
    pub fn new(code: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
            name: None,
            group: None,
            kind: None,
            uid: None,
            causes: Vec::new(),
            retry_after_seconds: None,
        }
    }

    fn with_resource(mut self, info: &ResourceInfo, name: &str) -> Self {
        self.name = (!name.is_empty()).then(|| name.to_owned());
        self.group = (!info.group.is_empty()).then(|| info.group.clone());
        self.kind = Some(info.plural.clone());
        self
    }

    /// 404 NotFound for a named object: `pods "foo" not found`.
    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified_resource(info)),
        )
        .with_resource(info, name)
    }

    /// 404 NotFound for a path no resource serves.
    pub fn path_not_found() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource").with_causes(vec![StatusCause {
            reason: "UnexpectedServerResponse".into(),
            message: "404 page not found".into(),
            field: String::new(),
        }])
    }

    /// 409 AlreadyExists: `pods "foo" already exists`.
    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified_resource(info)),
        )
        .with_resource(info, name)
    }

    /// 409 Conflict with upstream's optimistic-concurrency wording.
    pub fn conflict(info: &ResourceInfo, name: &str) -> Self {
        Self::conflict_with(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with a custom explanation.
    pub fn conflict_with(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified_resource(info)
            ),
        )
        .with_resource(info, name)
    }

    /// 422 Invalid with field causes; `errors` are (field, body) pairs.
    pub fn invalid(info: &ResourceInfo, name: &str, causes: Vec<StatusCause>) -> Self {
        let mut seen = Vec::<String>::new();
        for cause in &causes {
            let text = if cause.field.is_empty() {
                cause.message.clone()
            } else {
                format!("{}: {}", cause.field, cause.message)
            };
            if !seen.contains(&text) {
                seen.push(text);
            }
        }
        let aggregate = if seen.len() == 1 {
            seen.remove(0)
        } else {
            format!("[{}]", seen.join(", "))
        };
        let mut err = Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {aggregate}", qualified_kind(info)),
        );
        err.name = (!name.is_empty()).then(|| name.to_owned());
        err.group = (!info.group.is_empty()).then(|| info.group.clone());
        err.kind = Some(info.kind.clone());
        err.causes = causes;
        err
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403 Forbidden.
    pub fn forbidden(info: &ResourceInfo, name: &str, why: &str) -> Self {
        let target = if name.is_empty() {
            qualified_resource(info)
        } else {
            format!("{} \"{name}\"", qualified_resource(info))
        };
        Self::new(403, "Forbidden", format!("{target} is forbidden: {why}")).with_resource(info, name)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_supported(info: &ResourceInfo, action: &str) -> Self {
        let mut err = Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{action} is not supported on resources of kind \"{}\"",
                qualified_resource(info)
            ),
        );
        err.group = (!info.group.is_empty()).then(|| info.group.clone());
        err.kind = Some(info.plural.clone());
        err
    }

    /// 410 Expired, as a watch resumed from a compacted resourceVersion gets it.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 429 TooManyRequests with `Retry-After`.
    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        let mut err = Self::new(429, "TooManyRequests", "Too many requests, please try again later.");
        err.retry_after_seconds = Some(retry_after_seconds);
        err
    }

    /// 500 InternalError: `Internal error occurred: ...`.
    pub fn internal(message: &str) -> Self {
        Self::new(500, "InternalError", format!("Internal error occurred: {message}")).with_causes(vec![StatusCause {
            reason: String::new(),
            message: message.to_owned(),
            field: String::new(),
        }])
    }

    /// 503 ServiceUnavailable.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 504 Timeout for a resourceVersion newer than the server's.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        let mut err = Self::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {requested}, current: {current}"),
        );
        err.causes = vec![StatusCause {
            reason: "ResourceVersionTooLarge".into(),
            message: "Too large resource version".into(),
            field: String::new(),
        }];
        err.retry_after_seconds = Some(1);
        err
    }

    /// Replaces the causes.
    #[must_use]
    pub fn with_causes(mut self, causes: Vec<StatusCause>) -> Self {
        self.causes = causes;
        self
    }

    /// The `metav1.Status` object.
    pub fn to_status(&self) -> Value {
        let mut details = Map::new();
        if let Some(name) = &self.name {
            details.insert("name".into(), json!(name));
        }
        if let Some(group) = &self.group {
            details.insert("group".into(), json!(group));
        }
        if let Some(kind) = &self.kind {
            details.insert("kind".into(), json!(kind));
        }
        if let Some(uid) = &self.uid {
            details.insert("uid".into(), json!(uid));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| {
                    let mut m = Map::new();
                    if !c.reason.is_empty() {
                        m.insert("reason".into(), json!(c.reason));
                    }
                    if !c.message.is_empty() {
                        m.insert("message".into(), json!(c.message));
                    }
                    if !c.field.is_empty() {
                        m.insert("field".into(), json!(c.field));
                    }
                    Value::Object(m)
                })
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(secs) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(secs));
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }

    /// The Status body, serialized.
    pub(crate) fn to_bytes(&self) -> Bytes {
        Bytes::from(self.to_status().to_string())
    }
}
