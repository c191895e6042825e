//! `sync(key)`: bring the mirrored slices of one Endpoints object to their
//! desired state (upstream's `syncEndpoints`). The only place this
//! controller writes, through the [`Reconciler`].
//!
//! | found in the caches | outcome |
//! |---|---|
//! | no Endpoints | forget the key, delete its mirrored slices |
//! | Endpoints labelled `skip-mirror: "true"` or with the leader annotation | same |
//! | no Service of that name | same |
//! | a Service with a (non-empty) selector | same |
//! | slice cache older than this controller's writes | [`SyncError::StaleCache`], retried |
//! | otherwise | reconcile |
//!
//! The first four rows are [`decide`], which `ecm explain` shares.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecm_controller::slices::{EndpointSliceTracker, SliceManager};
use ecm_controller::{StaleCacheGuard, SyncHandler};
use ecm_informer::{Lister, ObjectKey};
use ecm_types::wellknown::MANAGED_BY_MIRRORING_CONTROLLER;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::error::SyncError;
use crate::explain::{Decision, decide};
use crate::metrics::record_sync_duration;
use crate::reconciler::Reconciler;

/// The slices this controller mirrored, indexed by Endpoints key
/// (`namespace/name`) on the slice informer; distinct from the
/// EndpointSlice controller's index, so both can share one informer
/// (upstream's `endpointSlicesMirroredForService`).
pub(crate) const MANAGER: SliceManager = SliceManager::new(
    MANAGED_BY_MIRRORING_CONTROLLER,
    "endpointslicemirroring-controller/endpoints",
);

/// What a sync reads and writes through.
pub(crate) struct SyncContext {
    pub(crate) endpoints: Lister<Endpoints>,
    pub(crate) services: Lister<Service>,
    pub(crate) slices: Lister<EndpointSlice>,
    pub(crate) reconciler: Reconciler,
    pub(crate) stale: Arc<StaleCacheGuard<EndpointSliceTracker>>,
}

#[async_trait]
impl SyncHandler<ObjectKey> for SyncContext {
    type Error = SyncError;

    /// Syncs the mirrored slices of `key`.
    async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let (namespace, name) = (key.namespace(), key.name());
        let endpoints = self.endpoints.get(namespace, name);
        let service = self.services.get(namespace, name);
        let decision = decide(endpoints.as_deref(), service.as_deref());
        let (Decision::Mirror, Some(endpoints)) = (decision, endpoints) else {
            return self.clean_up(key, decision).await;
        };
        // Slices mirrored from an earlier Endpoints of this name are garbage.
        self.stale
            .owned_by(key, endpoints.metadata.uid.as_deref().unwrap_or_default());
        self.stale.begin_read(key);
        let slices = MANAGER.list(&self.slices, key);
        if self.stale.is_behind(key, &slices) {
            return Err(SyncError::StaleCache(key.clone()));
        }
        self.reconciler
            .reconcile(&endpoints, slices.iter().map(AsRef::as_ref))
            .await?;
        Ok(())
    }

    fn record(&self, _key: &ObjectKey, _result: &Result<(), SyncError>, took: Duration) {
        record_sync_duration(took.as_secs_f64());
    }
}

impl SyncContext {
    /// Forgets `key` in the tracker and deletes its mirrored slices
    /// (upstream's `deleteMirroredSlices`).
    async fn clean_up(&self, key: &ObjectKey, why: Decision) -> Result<(), SyncError> {
        let slices = MANAGER.list(&self.slices, key);
        tracing::debug!(endpoints = %key, reason = ?why, slices = slices.len(), "not mirrored, cleaning up mirrored EndpointSlices");
        self.stale.forget(key);
        let slices: Vec<&EndpointSlice> = slices.iter().map(AsRef::as_ref).collect();
        self.reconciler.delete_mirrored(key, &slices).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
