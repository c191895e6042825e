//! `sync(key)`: bring one Service's EndpointSlices to their desired state
//! (upstream's `syncService`). The only place this controller writes, through
//! the [`Reconciler`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ecm_informer::{Lister, Selector};
use ecm_types::slice_tracker::EndpointSliceTracker;
use ecm_types::wellknown::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY_ENDPOINTSLICE_CONTROLLER};
use ecm_types::{EventRecorder, ObjectKey, PodProjection, SyncResult, TriggerTimeTracker, service};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::time::Instant;

use crate::error::ReconcileErrors;
use crate::events::failed_to_update;
use crate::metrics::record_sync;
use crate::reconciler::Reconciler;

/// Name of the slice-cache index by owning Service: `namespace/service-name`
/// of every slice managed by this controller.
pub const SERVICE_INDEX: &str = "endpointslice-controller/service";

/// The [`SERVICE_INDEX`] values of a slice: its Service's key when this
/// controller manages it, nothing otherwise.
pub fn service_index(slice: &EndpointSlice) -> Vec<String> {
    if !crate::slice::managed_by_controller(slice) {
        return Vec::new();
    }
    crate::slice::service_key(slice).map_or_else(|_| Vec::new(), |key| vec![key.to_string()])
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

/// What a sync reads and writes through.
pub(crate) struct SyncContext {
    pub(crate) services: Lister<Service>,
    pub(crate) pods: Lister<PodProjection>,
    pub(crate) slices: Lister<EndpointSlice>,
    pub(crate) reconciler: Reconciler,
    pub(crate) events: Arc<dyn EventRecorder>,
    pub(crate) trigger_times: TriggerTimeTracker,
    pub(crate) stale: Arc<StaleServices>,
}

impl SyncContext {
    /// Syncs the slices of the Service `key`, recording the outcome.
    pub(crate) async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let started = Instant::now();
        let result = self.sync_inner(key).await;
        let outcome = match &result {
            Ok(()) => SyncResult::Success,
            Err(SyncError::StaleCache(_)) => SyncResult::Stale,
            Err(SyncError::Reconcile(_)) => SyncResult::Error,
        };
        record_sync(outcome);
        tracing::debug!(service = %key, took = ?started.elapsed(), ?outcome, "finished syncing service endpoint slices");
        result
    }

    async fn sync_inner(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let (namespace, name) = (key.namespace(), key.name());
        let Some(svc) = self.services.get(namespace, name) else {
            // The garbage collector deletes the slices through their owner
            // reference; only the bookkeeping is dropped here.
            self.trigger_times.delete_service(key);
            self.reconciler.delete_service(key);
            self.reconciler.tracker().delete_service(key);
            self.stale.forget(key);
            return Ok(());
        };
        if service::is_external_name(&svc) {
            return Ok(());
        }
        let Some(selector) = service::selector(&svc) else {
            // Selector-less Services get their slices from someone else
            // (slices written while it had a selector stay, as upstream).
            return Ok(());
        };
        let pods = self.pods.list(namespace, &Selector::from_labels(selector));
        let slices = live_managed_slices(&self.slices, key);
        if self
            .reconciler
            .tracker()
            .stale_slices(key, slices.iter().map(AsRef::as_ref))
        {
            self.stale.mark(key);
            return Err(SyncError::StaleCache(key.clone()));
        }
        self.stale.forget(key);
        let trigger = self.trigger_times.compute(&svc, pods.iter().map(AsRef::as_ref));
        let result = self
            .reconciler
            .reconcile(
                &svc,
                pods.iter().map(AsRef::as_ref),
                slices.iter().map(AsRef::as_ref),
                trigger,
            )
            .await;
        if let Err(errors) = result {
            self.events.record(failed_to_update(&svc, &errors)).await;
            return Err(errors.into());
        }
        Ok(())
    }
}

/// The slices of `key` this controller manages (labelled with the Service's
/// name and this controller's managed-by value), minus those being deleted:
/// what a sync reconciles against.
pub(crate) fn live_managed_slices(slices: &Lister<EndpointSlice>, key: &ObjectKey) -> Vec<Arc<EndpointSlice>> {
    let managed = slices
        .store()
        .by_index(SERVICE_INDEX, &key.to_string())
        .unwrap_or_else(|_| {
            // A store without the index: filter the namespace by labels.
            let labels = [
                (LABEL_SERVICE_NAME.to_owned(), key.name().to_owned()),
                (
                    LABEL_MANAGED_BY.to_owned(),
                    MANAGED_BY_ENDPOINTSLICE_CONTROLLER.to_owned(),
                ),
            ]
            .into_iter()
            .collect();
            slices.list(key.namespace(), &Selector::from_labels(&labels))
        });
    managed
        .into_iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect()
}

/// The Services whose last sync found the slice cache behind this
/// controller's own writes.
///
/// Upstream retries such a sync with the queue's back-off (1 s, 2 s, …),
/// however soon the cache catches up. ecm also remembers the Service here,
/// and the slice handler queues it again the moment the cache holds every
/// write the tracker expects. The back-off retry still happens (and finds
/// nothing to do), so nothing is lost if the wake-up is missed.
#[derive(Debug, Default)]
pub(crate) struct StaleServices {
    keys: Mutex<HashSet<ObjectKey>>,
}

impl StaleServices {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<ObjectKey>> {
        // Insert and remove only: a panicking holder leaves a valid set.
        self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers that `key`'s sync found a stale cache.
    pub(crate) fn mark(&self, key: &ObjectKey) {
        self.lock().insert(key.clone());
    }

    /// Whether `key` waits for the cache, and the cache (`slices`) now holds
    /// every write `tracker` expects; if so, forgets `key`.
    pub(crate) fn caught_up(
        &self,
        key: &ObjectKey,
        tracker: &EndpointSliceTracker,
        slices: &Lister<EndpointSlice>,
    ) -> bool {
        let mut keys = self.lock();
        if !keys.contains(key) {
            return false;
        }
        let current = live_managed_slices(slices, key);
        if tracker.stale_slices(key, current.iter().map(AsRef::as_ref)) {
            return false;
        }
        keys.remove(key);
        true
    }

    /// Forgets `key` (its Service is gone).
    pub(crate) fn forget(&self, key: &ObjectKey) {
        self.lock().remove(key);
    }
}
