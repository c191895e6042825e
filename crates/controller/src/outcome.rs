//! What a sync did, as the label values of the controllers' counters: the
//! `operation` of a write (`*_changes`) and the `result` of a sync
//! (`*_syncs`). The metric names stay in each controller's `metrics` module;
//! the label values are the same everywhere, so they live here once.

/// A successful write to the API, the `operation` label of the controllers'
/// `changes` counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteOperation {
    /// An object was created.
    Create,
    /// An object was updated.
    Update,
    /// An object was deleted.
    Delete,
}

impl WriteOperation {
    /// The label value: `create`, `update` or `delete`.
    ///
    /// ```
    /// assert_eq!(ecm_controller::WriteOperation::Update.label(), "update");
    /// ```
    pub fn label(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// The outcome of one sync, the `result` label of the controllers' `syncs`
/// counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncResult {
    /// The sync finished.
    Success,
    /// The cache lagged behind the controller's own writes; retried.
    Stale,
    /// The sync failed; retried.
    Error,
}

impl SyncResult {
    /// The label value: `success`, `stale` or `error`.
    ///
    /// ```
    /// assert_eq!(ecm_controller::SyncResult::Stale.label(), "stale");
    /// ```
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Stale => "stale",
            Self::Error => "error",
        }
    }
}
