//! Metrics of the EndpointSlice controller, with upstream's names, types
//! and labels (subsystem `endpoint_slice_controller`, `k8s.io/endpointslice/metrics`).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `endpoint_slice_controller_endpoints_added_per_sync` | histogram ([`ENDPOINTS_PER_SYNC_BUCKETS`]) | — |
//! | `endpoint_slice_controller_endpoints_removed_per_sync` | histogram ([`ENDPOINTS_PER_SYNC_BUCKETS`]) | — |
//! | `endpoint_slice_controller_endpoints_desired` | gauge | — |
//! | `endpoint_slice_controller_num_endpoint_slices` | gauge | — |
//! | `endpoint_slice_controller_desired_endpoint_slices` | gauge | — |
//! | `endpoint_slice_controller_changes` | counter | `operation` = `create`, `update`, `delete` |
//! | `endpoint_slice_controller_endpointslices_changed_per_sync` | histogram ([`SLICES_CHANGED_PER_SYNC_BUCKETS`]) | `topology` = `Auto`, `Disabled`; `traffic_distribution` |
//! | `endpoint_slice_controller_syncs` | counter | `result` = `success`, `stale`, `error` |
//! | `endpoint_slice_controller_services_count_by_traffic_distribution` | gauge | `traffic_distribution` |
//!
//! The `metrics` facade carries no bucket boundaries: the binary configures
//! its exporter with [`HISTOGRAM_BUCKETS`].
//!
//! The three gauges about slices come from a `MetricsCache` that keeps,
//! per Service, the numbers of its last sync.

use parking_lot::{Mutex, MutexGuard};
use std::collections::{BTreeMap, BTreeSet};

pub use ecm_controller::slices::EfficiencyInfo;
use ecm_controller::slices::{SliceEfficiency, SliceTotals};
use ecm_controller::{SyncResult, WriteOperation};
use ecm_informer::ObjectKey;

/// The work queue's name, as upstream names it.
pub const QUEUE_NAME: &str = "endpoint_slice";

/// Histogram: endpoints added per sync (summed over port groups).
pub const ENDPOINTS_ADDED_PER_SYNC: &str = "endpoint_slice_controller_endpoints_added_per_sync";
/// Histogram: endpoints removed from existing slices per sync.
pub const ENDPOINTS_REMOVED_PER_SYNC: &str = "endpoint_slice_controller_endpoints_removed_per_sync";
/// Gauge: desired endpoints over all Services.
pub const ENDPOINTS_DESIRED: &str = "endpoint_slice_controller_endpoints_desired";
/// Gauge: EndpointSlices over all Services.
pub const NUM_ENDPOINT_SLICES: &str = "endpoint_slice_controller_num_endpoint_slices";
/// Gauge: EndpointSlices there would be with perfect packing.
pub const DESIRED_ENDPOINT_SLICES: &str = "endpoint_slice_controller_desired_endpoint_slices";
/// Counter: successful writes, by `operation`.
pub const CHANGES: &str = "endpoint_slice_controller_changes";
/// Histogram: slices written per address-type reconcile, by `topology` and
/// `traffic_distribution`.
pub const ENDPOINTSLICES_CHANGED_PER_SYNC: &str = "endpoint_slice_controller_endpointslices_changed_per_sync";
/// Counter: sync outcomes, by `result`.
pub const SYNCS: &str = "endpoint_slice_controller_syncs";
/// Gauge: Services using each valid `trafficDistribution`.
pub const SERVICES_COUNT_BY_TRAFFIC_DISTRIBUTION: &str =
    "endpoint_slice_controller_services_count_by_traffic_distribution";

/// Buckets of the two endpoints-per-sync histograms: 2, 4, …, 32768.
pub const ENDPOINTS_PER_SYNC_BUCKETS: [f64; 15] = [
    2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0,
];

/// Buckets of the slices-changed histogram: Prometheus' defaults, which
/// upstream leaves it with.
pub const SLICES_CHANGED_PER_SYNC_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Every histogram of this controller with its buckets, for the exporter.
pub const HISTOGRAM_BUCKETS: [(&str, &[f64]); 3] = [
    (ENDPOINTS_ADDED_PER_SYNC, &ENDPOINTS_PER_SYNC_BUCKETS),
    (ENDPOINTS_REMOVED_PER_SYNC, &ENDPOINTS_PER_SYNC_BUCKETS),
    (ENDPOINTSLICES_CHANGED_PER_SYNC, &SLICES_CHANGED_PER_SYNC_BUCKETS),
];

/// Records one sync outcome.
pub(crate) fn record_sync(result: SyncResult) {
    result.counter(SYNCS).increment(1);
}

/// Records one successful write.
pub(crate) fn record_change(operation: WriteOperation) {
    operation.counter(CHANGES).increment(1);
}

/// Records the endpoints added and removed by one address-type reconcile.
pub(crate) fn record_endpoint_changes(added: usize, removed: usize) {
    metrics::histogram!(ENDPOINTS_ADDED_PER_SYNC).record(added as f64);
    metrics::histogram!(ENDPOINTS_REMOVED_PER_SYNC).record(removed as f64);
}

/// Records the slices written (or withheld) by one address-type reconcile.
pub(crate) fn record_slices_changed(topology: &'static str, traffic_distribution: &str, slices: usize) {
    metrics::histogram!(
        ENDPOINTSLICES_CHANGED_PER_SYNC,
        "topology" => topology,
        "traffic_distribution" => traffic_distribution.to_owned()
    )
    .record(slices as f64);
}

/// Describes the metrics to the installed recorder.
pub(crate) fn describe() {
    ecm_controller::incremental::describe_metrics();
    metrics::describe_histogram!(
        ENDPOINTS_ADDED_PER_SYNC,
        "Number of endpoints added on each Service sync"
    );
    metrics::describe_histogram!(
        ENDPOINTS_REMOVED_PER_SYNC,
        "Number of endpoints removed on each Service sync"
    );
    metrics::describe_gauge!(ENDPOINTS_DESIRED, "Number of endpoints desired");
    metrics::describe_gauge!(NUM_ENDPOINT_SLICES, "Number of EndpointSlices");
    metrics::describe_gauge!(
        DESIRED_ENDPOINT_SLICES,
        "Number of EndpointSlices that would exist with perfect endpoint allocation"
    );
    metrics::describe_counter!(CHANGES, "Number of EndpointSlice changes");
    metrics::describe_histogram!(
        ENDPOINTSLICES_CHANGED_PER_SYNC,
        "Number of EndpointSlices changed on each Service sync"
    );
    metrics::describe_counter!(SYNCS, "Number of EndpointSlice syncs");
    metrics::describe_gauge!(
        SERVICES_COUNT_BY_TRAFFIC_DISTRIBUTION,
        "Number of Services using some specific trafficDistribution"
    );
}

#[derive(Debug)]
struct CacheState {
    /// Per Service, the numbers of its last sync; one desired slice at
    /// least (the placeholder).
    efficiency: SliceEfficiency,
    /// `trafficDistribution` value → Services using it. Values stay once
    /// seen, so their gauge drops to 0 rather than disappearing.
    by_traffic_distribution: BTreeMap<String, BTreeSet<ObjectKey>>,
    /// What the gauges were last set to; most syncs change none of them,
    /// and are not worth the recorder's look-ups.
    published: Option<Published>,
}

/// The values of the gauges [`publish`] sets.
#[derive(Debug, PartialEq)]
struct Published {
    totals: SliceTotals,
    by_traffic_distribution: Vec<(String, usize)>,
}

/// Per-Service numbers behind the slice gauges (upstream's metrics
/// `Cache`). Safe to share between workers.
#[derive(Debug)]
pub(crate) struct MetricsCache {
    state: Mutex<CacheState>,
}

impl MetricsCache {
    /// An empty cache for slices of at most `max_endpoints_per_slice`.
    pub(crate) fn new(max_endpoints_per_slice: usize) -> Self {
        Self {
            state: Mutex::new(CacheState {
                efficiency: SliceEfficiency::new(max_endpoints_per_slice).min_desired_slices(1),
                by_traffic_distribution: BTreeMap::new(),
                published: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock()
    }

    /// Replaces the numbers of `service` with those of its latest sync: one
    /// [`EfficiencyInfo`] per port group of every address type. A Service
    /// counts at least one desired slice (its placeholder).
    ///
    /// Upstream replaces a Service's numbers once per address type, so a
    /// dual-stack Service counts only the family reconciled last (in random
    /// order); here all families count.
    pub(crate) fn update_service(&self, service: &ObjectKey, groups: impl IntoIterator<Item = EfficiencyInfo>) {
        let mut state = self.lock();
        state.efficiency.update(service, groups);
        publish(&mut state);
    }

    /// Records which valid `trafficDistribution` `service` uses (`None`:
    /// none, or one the controller does not act on).
    pub(crate) fn update_traffic_distribution(&self, service: &ObjectKey, traffic_distribution: Option<&str>) {
        let mut state = self.lock();
        for services in state.by_traffic_distribution.values_mut() {
            services.remove(service);
        }
        if let Some(value) = traffic_distribution {
            state
                .by_traffic_distribution
                .entry(value.to_owned())
                .or_default()
                .insert(service.clone());
        }
        publish(&mut state);
    }

    /// Forgets `service` (deleted).
    pub(crate) fn delete_service(&self, service: &ObjectKey) {
        let mut state = self.lock();
        for services in state.by_traffic_distribution.values_mut() {
            services.remove(service);
        }
        state.efficiency.remove(service);
        publish(&mut state);
    }
}

/// Sets the slice gauges from `state`, unless they already hold its values.
fn publish(state: &mut CacheState) {
    let totals = state.efficiency.totals();
    let unchanged = state.published.as_ref().is_some_and(|published| {
        published.totals == totals
            && published.by_traffic_distribution.len() == state.by_traffic_distribution.len()
            && published
                .by_traffic_distribution
                .iter()
                .zip(&state.by_traffic_distribution)
                .all(|((a, count), (b, services))| a == b && *count == services.len())
    });
    if unchanged {
        return;
    }
    metrics::gauge!(NUM_ENDPOINT_SLICES).set(totals.slices as f64);
    metrics::gauge!(DESIRED_ENDPOINT_SLICES).set(totals.desired_slices as f64);
    metrics::gauge!(ENDPOINTS_DESIRED).set(totals.endpoints as f64);
    for (value, services) in &state.by_traffic_distribution {
        metrics::gauge!(SERVICES_COUNT_BY_TRAFFIC_DISTRIBUTION, "traffic_distribution" => value.clone())
            .set(services.len() as f64);
    }
    state.published = Some(Published {
        totals,
        by_traffic_distribution: state
            .by_traffic_distribution
            .iter()
            .map(|(value, services)| (value.clone(), services.len()))
            .collect(),
    });
}

#[cfg(test)]
mod tests;
