//! Why a reconcile failed. Every error makes the sync fail and the Service
//! be retried with backoff; the writes that could be made were made.

use std::fmt;

use ecm_controller::WriteError;
use ecm_informer::ObjectKey;

/// One failure of a reconcile, worded as upstream words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// A selected pod names a node the cache does not know, and the Service
    /// does not publish not-ready addresses: the pod was left out.
    #[error("skipping Pod {pod} for Service {service}: Node {node} Not Found")]
    NodeNotFound {
        /// The pod's name.
        pod: String,
        /// The Service.
        service: ObjectKey,
        /// The node name the pod refers to.
        node: String,
    },
    /// Creating a slice failed; the remaining writes of that address type
    /// were not attempted.
    #[error("failed to create EndpointSlice for Service {service}: {cause}")]
    Create {
        /// The Service.
        service: ObjectKey,
        /// The API error.
        cause: WriteError,
    },
    /// Updating a slice failed; the remaining updates and the deletes of that
    /// address type were not attempted.
    #[error("failed to update {name} EndpointSlice for Service {service}: {cause}")]
    Update {
        /// The slice.
        name: String,
        /// The Service.
        service: ObjectKey,
        /// The API error.
        cause: WriteError,
    },
    /// Deleting a slice failed; the remaining deletes of that address type
    /// were not attempted.
    #[error("failed to delete {name} EndpointSlice for Service {service}: {cause}")]
    Delete {
        /// The slice.
        name: String,
        /// The Service.
        service: ObjectKey,
        /// The API error.
        cause: WriteError,
    },
    /// Deleting a slice of an address type the Service no longer has failed.
    #[error("error deleting {name} EndpointSlice for Service {service}: {cause}")]
    DeleteUnsupported {
        /// The slice.
        name: String,
        /// The Service.
        service: ObjectKey,
        /// The API error.
        cause: WriteError,
    },
}

/// All failures of one reconcile (never empty), displayed like Go's
/// aggregate errors: a single message alone, several as `[a, b]` with
/// repeated messages shown once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileErrors(Vec<ReconcileError>);

impl ReconcileErrors {
    /// `Err` with `errors` if there are any.
    pub(crate) fn check(errors: Vec<ReconcileError>) -> Result<(), Self> {
        if errors.is_empty() { Ok(()) } else { Err(Self(errors)) }
    }

    /// The individual failures, in the order they happened.
    pub fn errors(&self) -> &[ReconcileError] {
        &self.0
    }
}

impl fmt::Display for ReconcileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut messages: Vec<String> = Vec::new();
        for error in &self.0 {
            let message = error.to_string();
            if !messages.contains(&message) {
                messages.push(message);
            }
        }
        match messages.as_slice() {
            [one] => f.write_str(one),
            many => write!(f, "[{}]", many.join(", ")),
        }
    }
}

impl std::error::Error for ReconcileErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(pod: &str) -> ReconcileError {
        ReconcileError::NodeNotFound {
            pod: pod.to_owned(),
            service: ObjectKey::new("ns", "web"),
            node: "node-1".to_owned(),
        }
    }

    #[test]
    fn one_error_displays_alone() {
        let errors = ReconcileErrors::check(vec![missing("p")]).unwrap_err();
        assert_eq!(
            errors.to_string(),
            "skipping Pod p for Service ns/web: Node node-1 Not Found"
        );
    }

    #[test]
    fn several_errors_display_bracketed_without_repeats() {
        let update = ReconcileError::Update {
            name: "web-abcde".to_owned(),
            service: ObjectKey::new("ns", "web"),
            cause: WriteError::Conflict("stale".to_owned()),
        };
        let errors = ReconcileErrors::check(vec![missing("p"), update, missing("p")]).unwrap_err();
        assert_eq!(
            errors.to_string(),
            "[skipping Pod p for Service ns/web: Node node-1 Not Found, \
             failed to update web-abcde EndpointSlice for Service ns/web: conflict: stale]"
        );
        assert_eq!(errors.errors().len(), 3);
    }

    #[test]
    fn no_errors_is_success() {
        assert_eq!(ReconcileErrors::check(Vec::new()), Ok(()));
    }
}

/// Why a sync failed. Every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The slice cache is older than this controller's own writes.
    #[error("EndpointSlice informer cache is out of date for service {0}, retrying once it catches up")]
    StaleCache(ObjectKey),
    /// Some writes of the reconcile failed (those that could be made were).
    #[error(transparent)]
    Reconcile(#[from] ReconcileErrors),
}
