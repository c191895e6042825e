//! Metrics of the Endpoints controller.
//!
//! Upstream's Endpoints controller defines no metrics of its own; it exposes
//! only the work-queue metrics of its queue, named `endpoint`, which
//! ecm-workqueue records under the same names. ecm adds three, in the style
//! of the EndpointSlice controller's:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `endpoints_controller_syncs_total` | counter | `result` = `success`, `stale`, `error` |
//! | `endpoints_controller_changes_total` | counter | `operation` = `create`, `update`, `delete` |
//! | `endpoints_controller_sync_duration_seconds` | histogram | — |

use std::time::Duration;

use ecm_controller::{SyncResult, WriteOperation};

/// The work queue's name, as upstream names it.
pub const QUEUE_NAME: &str = "endpoint";

/// Counter of sync outcomes.
pub const SYNCS: &str = "endpoints_controller_syncs_total";
/// Counter of successful writes.
pub const CHANGES: &str = "endpoints_controller_changes_total";
/// Histogram of sync durations.
pub const SYNC_DURATION: &str = "endpoints_controller_sync_duration_seconds";

/// Records one sync.
pub(crate) fn record_sync(result: SyncResult, took: Duration) {
    result.counter(SYNCS).increment(1);
    metrics::histogram!(SYNC_DURATION).record(took.as_secs_f64());
}

/// Records one successful write (`create`, `update` or `delete`).
pub(crate) fn record_change(operation: WriteOperation) {
    operation.counter(CHANGES).increment(1);
}

/// Describes the metrics to the installed recorder.
pub(crate) fn describe() {
    ecm_controller::incremental::describe_metrics();
    metrics::describe_counter!(SYNCS, "Endpoints controller syncs by result");
    metrics::describe_counter!(
        CHANGES,
        "Endpoints objects written by the Endpoints controller, by operation"
    );
    metrics::describe_histogram!(
        SYNC_DURATION,
        metrics::Unit::Seconds,
        "Time taken by one Endpoints sync"
    );
}
