//! `sync(key)`: bring one Service's EndpointSlices to their desired state
//! (upstream's `syncService`). The only place this controller writes, through
//! the [`Reconciler`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecm_controller::slices::{EndpointSliceTracker, SliceManager};
use ecm_controller::{ServicePods, StaleCacheGuard, SyncHandler, SyncResult, TriggerTimeTracker};
use ecm_informer::{Lister, ObjectKey};
use ecm_types::PodProjection;
use ecm_types::wellknown::MANAGED_BY_ENDPOINTSLICE_CONTROLLER;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::error::SyncError;
use crate::events::failed_to_update;
use crate::metrics::record_sync;
use crate::reconciler::Reconciler;

/// What a sync reads and writes through.
pub(crate) struct SyncContext {
    pub(crate) services: Lister<Service>,
    pub(crate) pods: Lister<PodProjection>,
    pub(crate) slices: Lister<EndpointSlice>,
    pub(crate) reconciler: Reconciler,
    pub(crate) trigger_times: TriggerTimeTracker,
    pub(crate) stale: Arc<StaleCacheGuard<EndpointSliceTracker>>,
}

/// The slices this controller manages, indexed by Service
/// (`namespace/service-name`) on the slice informer. Slices being deleted
/// are not reconciled against.
pub(crate) const MANAGER: SliceManager =
    SliceManager::new(MANAGED_BY_ENDPOINTSLICE_CONTROLLER, "endpointslice-controller/service").skipping_terminating();

#[async_trait]
impl SyncHandler<ObjectKey> for SyncContext {
    type Error = SyncError;

    /// Syncs the slices of the Service `key`.
    async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let (svc, pods) = match ServicePods::lookup(&self.services, &self.pods, key) {
            ServicePods::Gone => {
                // The garbage collector deletes the slices through their
                // owner reference; only the bookkeeping is dropped here.
                self.trigger_times.delete_service(key);
                self.reconciler.delete_service(key);
                self.stale.forget(key);
                return Ok(());
            }
            // ExternalName and selector-less Services get their slices from
            // someone else (slices written while it had a selector stay, as
            // upstream).
            ServicePods::NotSelecting => return Ok(()),
            ServicePods::Selecting { service, pods } => (service, pods),
        };
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
            self.reconciler.events().record(failed_to_update(&svc, &errors)).await;
            return Err(errors.into());
        }
        Ok(())
    }

    fn record(&self, _key: &ObjectKey, result: &Result<(), SyncError>, _took: Duration) {
        record_sync(match result {
            Ok(()) => SyncResult::Success,
            Err(SyncError::StaleCache(_)) => SyncResult::Stale,
            Err(SyncError::Reconcile(_)) => SyncResult::Error,
        });
    }
}
