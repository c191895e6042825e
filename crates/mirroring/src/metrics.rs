//! Metrics of the mirroring controller, with upstream's names and types
//! (subsystem `endpoint_slice_mirroring_controller`,
//! `pkg/controller/endpointslicemirroring/metrics`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `endpoint_slice_mirroring_controller_endpoints_added_per_sync` | histogram ([`ENDPOINTS_PER_SYNC_BUCKETS`]) | — |
//! | `endpoint_slice_mirroring_controller_endpoints_updated_per_sync` | histogram ([`ENDPOINTS_PER_SYNC_BUCKETS`]) | — |
//! | `endpoint_slice_mirroring_controller_endpoints_removed_per_sync` | histogram ([`ENDPOINTS_PER_SYNC_BUCKETS`]) | — |
//! | `endpoint_slice_mirroring_controller_addresses_skipped_per_sync` | histogram ([`ENDPOINTS_PER_SYNC_BUCKETS`]) | — |
//! | `endpoint_slice_mirroring_controller_endpoints_sync_duration` | histogram ([`SYNC_DURATION_BUCKETS`], seconds) | — |
//! | `endpoint_slice_mirroring_controller_endpoints_desired` | gauge | — |
//! | `endpoint_slice_mirroring_controller_num_endpoint_slices` | gauge | — |
//! | `endpoint_slice_mirroring_controller_desired_endpoint_slices` | gauge | — |
//! | `endpoint_slice_mirroring_controller_changes` | counter | `operation` = `create`, `update`, `delete` |
//!
//! The `metrics` facade carries no bucket boundaries: the binary configures
//! its exporter with [`HISTOGRAM_BUCKETS`]. The three gauges come from a
//! `MetricsCache` keeping, per Endpoints object, the numbers of its last
//! sync. The work queue's metrics use the name [`QUEUE_NAME`].

use parking_lot::{Mutex, MutexGuard};

use ecm_controller::WriteOperation;
pub use ecm_controller::slices::EfficiencyInfo;
use ecm_controller::slices::{SliceEfficiency, SliceTotals};
use ecm_informer::ObjectKey;

/// The work queue's name, as upstream names it.
pub const QUEUE_NAME: &str = "endpoint_slice_mirroring";

/// Histogram: desired endpoints not yet present, per sync.
pub const ENDPOINTS_ADDED_PER_SYNC: &str = "endpoint_slice_mirroring_controller_endpoints_added_per_sync";
/// Histogram: present endpoints needing changes, per sync.
pub const ENDPOINTS_UPDATED_PER_SYNC: &str = "endpoint_slice_mirroring_controller_endpoints_updated_per_sync";
/// Histogram: endpoints to remove, per sync.
pub const ENDPOINTS_REMOVED_PER_SYNC: &str = "endpoint_slice_mirroring_controller_endpoints_removed_per_sync";
/// Histogram: addresses not mirrored (invalid or over the cap), per sync.
pub const ADDRESSES_SKIPPED_PER_SYNC: &str = "endpoint_slice_mirroring_controller_addresses_skipped_per_sync";
/// Histogram: duration of a sync, in seconds.
pub const ENDPOINTS_SYNC_DURATION: &str = "endpoint_slice_mirroring_controller_endpoints_sync_duration";
/// Gauge: desired endpoints over all Endpoints objects.
pub const ENDPOINTS_DESIRED: &str = "endpoint_slice_mirroring_controller_endpoints_desired";
/// Gauge: mirrored EndpointSlices.
pub const NUM_ENDPOINT_SLICES: &str = "endpoint_slice_mirroring_controller_num_endpoint_slices";
/// Gauge: mirrored EndpointSlices there would be with perfect packing.
pub const DESIRED_ENDPOINT_SLICES: &str = "endpoint_slice_mirroring_controller_desired_endpoint_slices";
/// Counter: successful writes, by `operation`.
pub const CHANGES: &str = "endpoint_slice_mirroring_controller_changes";

/// Buckets of the per-sync count histograms: 2, 4, …, 32768.
pub const ENDPOINTS_PER_SYNC_BUCKETS: [f64; 15] = [
    2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0,
];

/// Buckets of the sync duration histogram: 0.001 s doubling, 15 buckets.
pub const SYNC_DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384,
];

/// Every histogram of this controller with its buckets, for the exporter.
pub const HISTOGRAM_BUCKETS: [(&str, &[f64]); 5] = [
    (ENDPOINTS_ADDED_PER_SYNC, &ENDPOINTS_PER_SYNC_BUCKETS),
    (ENDPOINTS_UPDATED_PER_SYNC, &ENDPOINTS_PER_SYNC_BUCKETS),
    (ENDPOINTS_REMOVED_PER_SYNC, &ENDPOINTS_PER_SYNC_BUCKETS),
    (ADDRESSES_SKIPPED_PER_SYNC, &ENDPOINTS_PER_SYNC_BUCKETS),
    (ENDPOINTS_SYNC_DURATION, &SYNC_DURATION_BUCKETS),
];

/// Records one successful write.
pub(crate) fn record_change(operation: WriteOperation) {
    operation.counter(CHANGES).increment(1);
}

/// Records the endpoint changes and skipped addresses of one reconcile.
pub(crate) fn record_reconcile(added: usize, updated: usize, removed: usize, skipped: usize) {
    metrics::histogram!(ADDRESSES_SKIPPED_PER_SYNC).record(skipped as f64);
    metrics::histogram!(ENDPOINTS_ADDED_PER_SYNC).record(added as f64);
    metrics::histogram!(ENDPOINTS_UPDATED_PER_SYNC).record(updated as f64);
    metrics::histogram!(ENDPOINTS_REMOVED_PER_SYNC).record(removed as f64);
}

/// Records the duration of one sync.
pub(crate) fn record_sync_duration(seconds: f64) {
    metrics::histogram!(ENDPOINTS_SYNC_DURATION).record(seconds);
}

/// Describes the metrics to the installed recorder.
pub(crate) fn describe() {
    metrics::describe_histogram!(
        ENDPOINTS_ADDED_PER_SYNC,
        "Number of endpoints added on each Endpoints sync"
    );
    metrics::describe_histogram!(
        ENDPOINTS_UPDATED_PER_SYNC,
        "Number of endpoints updated on each Endpoints sync"
    );
    metrics::describe_histogram!(
        ENDPOINTS_REMOVED_PER_SYNC,
        "Number of endpoints removed on each Endpoints sync"
    );
    metrics::describe_histogram!(
        ADDRESSES_SKIPPED_PER_SYNC,
        "Number of addresses skipped on each Endpoints sync due to being invalid or exceeding MaxEndpointsPerSubset"
    );
    metrics::describe_histogram!(
        ENDPOINTS_SYNC_DURATION,
        metrics::Unit::Seconds,
        "Duration of syncEndpoints() in seconds"
    );
    metrics::describe_gauge!(ENDPOINTS_DESIRED, "Number of endpoints desired");
    metrics::describe_gauge!(NUM_ENDPOINT_SLICES, "Number of EndpointSlices");
    metrics::describe_gauge!(
        DESIRED_ENDPOINT_SLICES,
        "Number of EndpointSlices that would exist with perfect endpoint allocation"
    );
    metrics::describe_counter!(CHANGES, "Number of EndpointSlice changes");
}

/// Per-Endpoints numbers behind the three gauges (upstream's metrics
/// `Cache`). Safe to share between workers.
#[derive(Debug)]
pub(crate) struct MetricsCache {
    state: Mutex<SliceEfficiency>,
}

impl MetricsCache {
    /// An empty cache; desired slices are counted with
    /// `max_endpoints_per_subset` endpoints each.
    pub(crate) fn new(max_endpoints_per_subset: usize) -> Self {
        Self {
            state: Mutex::new(SliceEfficiency::new(max_endpoints_per_subset)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SliceEfficiency> {
        self.state.lock()
    }

    /// Replaces the numbers of `endpoints` with those of its latest sync.
    pub(crate) fn update(&self, endpoints: &ObjectKey, groups: impl IntoIterator<Item = EfficiencyInfo>) {
        let totals = self.lock().update(endpoints, groups);
        publish(totals);
    }

    /// Forgets `endpoints` (gone, or no longer mirrored).
    pub(crate) fn delete(&self, endpoints: &ObjectKey) {
        let totals = self.lock().remove(endpoints);
        publish(totals);
    }
}

fn publish(totals: SliceTotals) {
    metrics::gauge!(NUM_ENDPOINT_SLICES).set(totals.slices as f64);
    metrics::gauge!(DESIRED_ENDPOINT_SLICES).set(totals.desired_slices as f64);
    metrics::gauge!(ENDPOINTS_DESIRED).set(totals.endpoints as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use std::collections::HashMap;

    /// Gauge values, rounded: the gauges only ever hold whole numbers.
    fn gauges(f: impl FnOnce()) -> HashMap<String, i64> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, f);
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Gauge(v) => Some((key.key().name().to_owned(), v.0.round() as i64)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn gauges_sum_the_latest_sync_of_every_endpoints() {
        let cache = MetricsCache::new(2);
        let got = gauges(|| {
            cache.update(
                &ObjectKey::new("ns", "a"),
                [
                    EfficiencyInfo {
                        endpoints: 3,
                        slices: 1,
                    },
                    EfficiencyInfo {
                        endpoints: 0,
                        slices: 0,
                    },
                ],
            );
            cache.update(
                &ObjectKey::new("ns", "b"),
                [EfficiencyInfo {
                    endpoints: 1,
                    slices: 1,
                }],
            );
            cache.update(
                &ObjectKey::new("ns", "b"),
                [EfficiencyInfo {
                    endpoints: 2,
                    slices: 1,
                }],
            );
        });
        assert_eq!(got[ENDPOINTS_DESIRED], 5);
        assert_eq!(got[NUM_ENDPOINT_SLICES], 2);
        assert_eq!(got[DESIRED_ENDPOINT_SLICES], 3, "ceil(3/2) + ceil(2/2)");
        let got = gauges(|| cache.delete(&ObjectKey::new("ns", "a")));
        assert_eq!(got[ENDPOINTS_DESIRED], 2);
        assert_eq!(got[NUM_ENDPOINT_SLICES], 1);
    }

    #[test]
    fn names_are_upstreams() {
        assert_eq!(QUEUE_NAME, "endpoint_slice_mirroring");
        for (name, _) in HISTOGRAM_BUCKETS {
            assert!(name.starts_with("endpoint_slice_mirroring_controller_"), "{name}");
        }
        assert_eq!(WriteOperation::Delete.label(), "delete");
    }
}
