//! Carrying out planned EndpointSlice writes (upstream's `finalize`, shared
//! by the EndpointSlice and mirroring controllers): creates, then updates,
//! then deletes, each success recorded in the [`EndpointSliceTracker`].

use k8s_openapi::api::discovery::v1::EndpointSlice;

use std::sync::Arc;

use ecm_informer::ObjectKey;

use crate::events::EventRecorder;
use crate::outcome::WriteOperation;
use crate::slices::tracker::EndpointSliceTracker;
use crate::writer::{ObjectWriter, WriteError, Writers};

/// What a slice-writing controller's reconciler writes through: its
/// [`Writers`], and the [`EndpointSliceTracker`] every slice write is
/// recorded in (shared with its slice handler and stale-cache guard).
pub struct SliceWriter {
    writers: Writers<EndpointSlice>,
    tracker: Arc<EndpointSliceTracker>,
}

impl std::fmt::Debug for SliceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SliceWriter").finish_non_exhaustive()
    }
}

impl SliceWriter {
    /// Writes through `writers`, recording into a fresh tracker.
    pub fn new(writers: Writers<EndpointSlice>) -> Self {
        Self {
            writers,
            tracker: Arc::default(),
        }
    }

    /// The tracker the writes are recorded in.
    pub fn tracker(&self) -> &Arc<EndpointSliceTracker> {
        &self.tracker
    }

    /// The slice writer, for writes outside [`write`](Self::write).
    pub fn objects(&self) -> &dyn ObjectWriter<EndpointSlice> {
        &*self.writers.objects
    }

    /// The event recorder.
    pub fn events(&self) -> &dyn EventRecorder {
        &*self.writers.events
    }

    /// [`write_slices`] through this writer and tracker.
    pub async fn write(
        &self,
        writes: SliceWrites<'_, '_>,
        on_success: impl FnMut(WriteOperation),
    ) -> Result<SlicesWritten, SliceWriteFailure> {
        write_slices(self.objects(), &self.tracker, writes, on_success).await
    }
}

/// How far the writes got when none failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlicesWritten {
    /// Every write was made.
    All,
    /// A create found the namespace terminating; the remaining writes were
    /// dropped, and the caller counts the sync as a success.
    NamespaceTerminating,
}

/// The write that failed and ended the writes.
#[derive(Debug)]
pub enum SliceWriteFailure {
    /// A create failed.
    Create {
        /// The API error.
        cause: WriteError,
    },
    /// An update of slice `name` failed.
    Update {
        /// The slice.
        name: String,
        /// The API error.
        cause: WriteError,
    },
    /// A delete of slice `name` failed.
    Delete {
        /// The slice.
        name: String,
        /// The API error.
        cause: WriteError,
    },
}

/// The slices to write for one owner (a Service or an Endpoints object).
#[derive(Clone, Copy, Debug)]
pub struct SliceWrites<'p, 'a> {
    /// The owner, for logs; its namespace is where the slices are written.
    pub owner: &'p ObjectKey,
    /// New slices (`generateName`).
    pub to_create: &'p [EndpointSlice],
    /// Changed slices, with the resourceVersion they were read at.
    pub to_update: &'p [EndpointSlice],
    /// Slices to delete.
    pub to_delete: &'p [&'a EndpointSlice],
}

/// Writes `writes` in upstream's order: creates, updates, deletes.
///
/// Every success is recorded in `tracker` (creates and updates with what the
/// API returned, deletes as expected deletions) and reported to
/// `on_success`; the owner's slice events are held back meanwhile
/// ([`EndpointSliceTracker::hold`]). A create refused because the namespace is terminating ends
/// the writes with [`SlicesWritten::NamespaceTerminating`]; any other failure
/// ends them with the failed write. Deleting a slice that is already gone is
/// not a failure (and is not reported).
pub async fn write_slices(
    writer: &dyn ObjectWriter<EndpointSlice>,
    tracker: &EndpointSliceTracker,
    writes: SliceWrites<'_, '_>,
    mut on_success: impl FnMut(WriteOperation),
) -> Result<SlicesWritten, SliceWriteFailure> {
    let (owner, namespace) = (writes.owner, writes.owner.namespace());
    // The watch may bring the results back before the answers do.
    let _hold = tracker.hold(owner);
    for slice in writes.to_create {
        match writer.create(namespace, slice).await {
            Ok(created) => {
                tracing::debug!(owner = %owner, slice = created.name.as_deref(), "created slice");
                tracker.written(&created);
                on_success(WriteOperation::Create);
            }
            Err(WriteError::NamespaceTerminating(message)) => {
                tracing::debug!(owner = %owner, %message, "namespace terminating, dropping the slice writes");
                return Ok(SlicesWritten::NamespaceTerminating);
            }
            Err(cause) => return Err(SliceWriteFailure::Create { cause }),
        }
    }
    for slice in writes.to_update {
        let name = slice.metadata.name.as_deref().unwrap_or_default();
        match writer.update(namespace, slice).await {
            Ok(updated) => {
                tracing::debug!(owner = %owner, slice = name, "updated slice");
                tracker.written(&updated);
                on_success(WriteOperation::Update);
            }
            Err(cause) => {
                return Err(SliceWriteFailure::Update {
                    name: name.to_owned(),
                    cause,
                });
            }
        }
    }
    for slice in writes.to_delete {
        let name = slice.metadata.name.as_deref().unwrap_or_default();
        match writer.delete(namespace, name).await {
            Ok(()) => {
                tracing::debug!(owner = %owner, slice = name, "deleted slice");
                tracker.expect_deletion(slice);
                on_success(WriteOperation::Delete);
            }
            Err(cause) if cause.is_not_found() => {}
            Err(cause) => {
                return Err(SliceWriteFailure::Delete {
                    name: name.to_owned(),
                    cause,
                });
            }
        }
    }
    Ok(SlicesWritten::All)
}
