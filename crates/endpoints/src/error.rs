//! [`SyncError`]: why a sync of one Service failed.

use ecm_controller::WriteError;
use ecm_informer::ObjectKey;

/// Why a sync failed. Every variant is retried with back-off.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The Endpoints cache is older than this controller's own last write.
    #[error("endpoints informer cache is out of date for endpoints {0}, retrying once it catches up")]
    StaleCache(ObjectKey),
    /// Deleting the Endpoints of a deleted Service failed.
    #[error("failed to delete endpoints {key}: {source}")]
    Delete {
        /// The Endpoints object.
        key: ObjectKey,
        /// The API error.
        source: WriteError,
    },
    /// Creating or updating the Endpoints object failed.
    #[error("failed to {verb} endpoints {key}: {source}")]
    Write {
        /// `create` or `update`.
        verb: &'static str,
        /// The Endpoints object.
        key: ObjectKey,
        /// The API error.
        source: WriteError,
    },
}
