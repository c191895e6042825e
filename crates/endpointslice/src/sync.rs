//! `sync(key)`: bring one Service's EndpointSlices to their desired state
//! (upstream's `syncService`). The only place this controller writes, through
//! the [`Reconciler`].

use std::sync::Arc;

use ecm_controller::slices::{EndpointSliceTracker, SliceManager};
use ecm_controller::{EventRecorder, StaleCacheGuard, SyncResult, TriggerTimeTracker};
use ecm_informer::{Lister, ObjectKey, Selector};
use ecm_types::wellknown::MANAGED_BY_ENDPOINTSLICE_CONTROLLER;
use ecm_types::{PodProjection, service};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::time::Instant;

use crate::error::SyncError;
use crate::events::failed_to_update;
use crate::metrics::record_sync;
use crate::reconciler::Reconciler;

/// The slices this controller manages, indexed by Service
/// (`namespace/service-name`) on the slice informer. Slices being deleted
/// are not reconciled against.
pub(crate) const MANAGER: SliceManager =
    SliceManager::new(MANAGED_BY_ENDPOINTSLICE_CONTROLLER, "endpointslice-controller/service").skipping_terminating();

/// What a sync reads and writes through.
pub(crate) struct SyncContext {
    pub(crate) services: Lister<Service>,
    pub(crate) pods: Lister<PodProjection>,
    pub(crate) slices: Lister<EndpointSlice>,
    pub(crate) reconciler: Reconciler,
    pub(crate) events: Arc<dyn EventRecorder>,
    pub(crate) trigger_times: TriggerTimeTracker,
    pub(crate) stale: Arc<StaleCacheGuard<EndpointSliceTracker>>,
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
        let slices = MANAGER.list(&self.slices, key);
        if self.stale.is_behind(key, &slices) {
            return Err(SyncError::StaleCache(key.clone()));
        }
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
