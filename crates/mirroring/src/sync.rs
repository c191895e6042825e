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

use std::sync::Arc;

use ecm_informer::{Lister, Selector};
use ecm_types::ObjectKey;
use ecm_types::wellknown::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MANAGED_BY_MIRRORING_CONTROLLER};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::time::Instant;

use crate::error::SyncError;
use crate::metrics::record_sync_duration;
use crate::reconciler::Reconciler;
use crate::slice::{endpoints_key, has_selector, managed_by_controller, should_mirror};

/// Name of the slice-cache index by mirrored Endpoints: `namespace/name` of
/// every slice managed by this controller. Distinct from the EndpointSlice
/// controller's index, so both can live on one shared slice informer.
pub const ENDPOINTS_INDEX: &str = "endpointslicemirroring-controller/endpoints";

/// The [`ENDPOINTS_INDEX`] values of a slice: its Endpoints key when this
/// controller manages it, nothing otherwise.
pub fn endpoints_index(slice: &EndpointSlice) -> Vec<String> {
    if !managed_by_controller(slice) {
        return Vec::new();
    }
    endpoints_key(slice).map_or_else(|_| Vec::new(), |key| vec![key.to_string()])
}

/// The slices mirrored for `key`: labelled with its name and this
/// controller's managed-by value, in its namespace (upstream's
/// `endpointSlicesMirroredForService`). Slices of other managers are never
/// seen.
pub fn mirrored_slices(slices: &Lister<EndpointSlice>, key: &ObjectKey) -> Vec<Arc<EndpointSlice>> {
    slices
        .store()
        .by_index(ENDPOINTS_INDEX, &key.to_string())
        .unwrap_or_else(|_| {
            // A store without the index: filter the namespace by labels.
            let labels = [
                (LABEL_SERVICE_NAME.to_owned(), key.name().to_owned()),
                (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_MIRRORING_CONTROLLER.to_owned()),
            ]
            .into_iter()
            .collect();
            slices.list(key.namespace(), &Selector::from_labels(&labels))
        })
}

/// What a sync reads and writes through.
pub(crate) struct SyncContext {
    pub(crate) endpoints: Lister<Endpoints>,
    pub(crate) services: Lister<Service>,
    pub(crate) slices: Lister<EndpointSlice>,
    pub(crate) reconciler: Reconciler,
}

/// Why an Endpoints object's mirrored slices are all deleted.
#[derive(Clone, Copy, Debug)]
enum Cleanup {
    EndpointsGone,
    NotMirrored,
    ServiceGone,
    ServiceHasSelector,
}

impl SyncContext {
    /// Syncs the mirrored slices of `key`, recording the duration.
    pub(crate) async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let started = Instant::now();
        let result = self.sync_inner(key).await;
        record_sync_duration(started.elapsed().as_secs_f64());
        tracing::debug!(endpoints = %key, took = ?started.elapsed(), ok = result.is_ok(), "finished syncing mirrored EndpointSlices");
        result
    }

    async fn sync_inner(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let (namespace, name) = (key.namespace(), key.name());
        let Some(endpoints) = self.endpoints.get(namespace, name) else {
            return self.clean_up(key, Cleanup::EndpointsGone).await;
        };
        if !should_mirror(&endpoints) {
            return self.clean_up(key, Cleanup::NotMirrored).await;
        }
        let Some(service) = self.services.get(namespace, name) else {
            return self.clean_up(key, Cleanup::ServiceGone).await;
        };
        if has_selector(&service) {
            return self.clean_up(key, Cleanup::ServiceHasSelector).await;
        }
        let slices = mirrored_slices(&self.slices, key);
        let tracker = self.reconciler.tracker();
        if tracker.stale_slices(key, slices.iter().map(AsRef::as_ref)) {
            return Err(SyncError::StaleCache(key.clone()));
        }
        self.reconciler
            .reconcile(&endpoints, slices.iter().map(AsRef::as_ref))
            .await?;
        Ok(())
    }

    /// Forgets `key` in the tracker and deletes its mirrored slices
    /// (upstream's `deleteMirroredSlices`).
    async fn clean_up(&self, key: &ObjectKey, why: Cleanup) -> Result<(), SyncError> {
        let slices = mirrored_slices(&self.slices, key);
        tracing::debug!(endpoints = %key, reason = ?why, slices = slices.len(), "not mirrored, cleaning up mirrored EndpointSlices");
        self.reconciler.tracker().delete_service(key);
        let slices: Vec<&EndpointSlice> = slices.iter().map(AsRef::as_ref).collect();
        self.reconciler.delete_mirrored(key, &slices).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
