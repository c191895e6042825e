//! Metric names and recording.
//!
//! Every informer records through the [`metrics`] facade, with a
//! `resource` label naming what it watches (`pods`,
//! `endpointslices.discovery.k8s.io`, or [`InformerConfig::name`]). Install
//! a recorder (for instance `metrics-exporter-prometheus`) before starting
//! informers: the handles are taken when an informer starts.
//!
//! client-go's reflector metrics were removed upstream, so these names are
//! ecm's own.
//!
//! [`InformerConfig::name`]: crate::InformerConfig::name

use ::metrics::{Counter, Gauge, counter, gauge};
use kube::runtime::watcher;

/// Gauge: objects in the informer's store.
pub const STORE_OBJECTS: &str = "informer_store_objects";
/// Counter: notifications applied to the store and delivered to handlers,
/// with an `event` label of `add`, `update` or `delete` (counted once per
/// notification, not once per handler).
pub const EVENTS_TOTAL: &str = "informer_events_total";
/// Counter: lists after the first one (a relist follows an expired watch
/// or a failed list).
pub const RELISTS_TOTAL: &str = "informer_relists_total";
/// Counter: watch requests after the first one following each list (a watch
/// that ended or failed, resumed from the last resourceVersion).
pub const WATCH_RESTARTS_TOTAL: &str = "informer_watch_restarts_total";
/// Counter: periodic resyncs (every cached object handed to the handlers
/// again, see `InformerConfig::resync_period`).
pub const RESYNCS_TOTAL: &str = "informer_resyncs_total";
/// Counter: errors from the list/watch machinery, with an `error` label of
/// `list`, `watch_start`, `watch_event`, `watch_stream` or
/// `no_resource_version`. Each is followed by a backoff.
pub const WATCH_ERRORS_TOTAL: &str = "informer_watch_errors_total";

/// The label every informer metric carries.
pub const RESOURCE_LABEL: &str = "resource";

/// The handles of one informer's metrics.
#[derive(Clone)]
pub(crate) struct InformerMetrics {
    resource: String,
    pub(crate) objects: Gauge,
    pub(crate) adds: Counter,
    pub(crate) updates: Counter,
    pub(crate) deletes: Counter,
    pub(crate) relists: Counter,
    pub(crate) watch_restarts: Counter,
    pub(crate) resyncs: Counter,
}

impl InformerMetrics {
    pub(crate) fn new(resource: &str) -> Self {
        let r = resource.to_owned();
        Self {
            objects: gauge!(STORE_OBJECTS, RESOURCE_LABEL => r.clone()),
            adds: counter!(EVENTS_TOTAL, RESOURCE_LABEL => r.clone(), "event" => "add"),
            updates: counter!(EVENTS_TOTAL, RESOURCE_LABEL => r.clone(), "event" => "update"),
            deletes: counter!(EVENTS_TOTAL, RESOURCE_LABEL => r.clone(), "event" => "delete"),
            relists: counter!(RELISTS_TOTAL, RESOURCE_LABEL => r.clone()),
            watch_restarts: counter!(WATCH_RESTARTS_TOTAL, RESOURCE_LABEL => r.clone()),
            resyncs: counter!(RESYNCS_TOTAL, RESOURCE_LABEL => r.clone()),
            resource: r,
        }
    }

    /// Counts a list/watch error (rare: no handle kept).
    pub(crate) fn watch_error(&self, error: &watcher::Error) {
        let kind = match error {
            watcher::Error::InitialListFailed(_) => "list",
            watcher::Error::WatchStartFailed(_) => "watch_start",
            watcher::Error::WatchError(_) => "watch_event",
            watcher::Error::WatchFailed(_) => "watch_stream",
            watcher::Error::NoResourceVersion => "no_resource_version",
        };
        counter!(WATCH_ERRORS_TOTAL, RESOURCE_LABEL => self.resource.clone(), "error" => kind).increment(1);
    }
}
