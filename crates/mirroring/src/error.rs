//! Why a sync failed. Every error makes the key be retried with backoff.

use ecm_controller::WriteError;
use ecm_informer::ObjectKey;

/// A failed write of a reconcile, worded as upstream words it. The writes
/// after the failed one were not attempted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// Creating a slice failed.
    #[error("failed to create EndpointSlice for Endpoints {endpoints}: {cause}")]
    Create {
        /// The Endpoints.
        endpoints: ObjectKey,
        /// The API error.
        cause: WriteError,
    },
    /// Updating a slice failed.
    #[error("failed to update {name} EndpointSlice for Endpoints {endpoints}: {cause}")]
    Update {
        /// The slice.
        name: String,
        /// The Endpoints.
        endpoints: ObjectKey,
        /// The API error.
        cause: WriteError,
    },
    /// Deleting a slice failed.
    #[error("failed to delete {name} EndpointSlice for Endpoints {endpoints}: {cause}")]
    Delete {
        /// The slice.
        name: String,
        /// The Endpoints.
        endpoints: ObjectKey,
        /// The API error.
        cause: WriteError,
    },
    /// Deleting the mirrored slices of an Endpoints that is no longer
    /// mirrored failed for some of them (the others were deleted).
    #[error("error(s) deleting {failed}/{total} EndpointSlices for {endpoints} Endpoints, including: {first}")]
    DeleteMirrored {
        /// The Endpoints.
        endpoints: ObjectKey,
        /// How many deletes failed.
        failed: usize,
        /// How many were attempted.
        total: usize,
        /// The first failure.
        first: WriteError,
    },
}

/// Why a sync failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The slice cache lags behind this controller's own writes; retried
    /// until it catches up.
    #[error("EndpointSlice informer cache is out of date for Endpoints {0}")]
    StaleCache(ObjectKey),
    /// A write failed.
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_endpoints_and_cause() {
        let key = ObjectKey::new("ns", "foo");
        let error = ReconcileError::DeleteMirrored {
            endpoints: key.clone(),
            failed: 1,
            total: 2,
            first: WriteError::Conflict("x".into()),
        };
        assert_eq!(
            error.to_string(),
            "error(s) deleting 1/2 EndpointSlices for ns/foo Endpoints, including: conflict: x"
        );
        assert_eq!(
            SyncError::StaleCache(key).to_string(),
            "EndpointSlice informer cache is out of date for Endpoints ns/foo"
        );
    }
}
