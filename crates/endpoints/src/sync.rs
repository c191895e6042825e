//! `sync(key)`: bring one Service's Endpoints object to its desired state.
//! The only place this controller writes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecm_controller::{
    ObjectVersions, ServicePods, StaleCacheGuard, SyncHandler, SyncResult, TriggerTimeTracker, WriteError,
    WriteOperation, Writers,
};
use ecm_informer::{Lister, ObjectKey};
use ecm_types::PodProjection;
use k8s_openapi::api::core::v1::{Endpoints, Service};

use crate::desired::{Plan, desired_subsets, plan};
use crate::error::SyncError;
use crate::events::{failed_to_create, failed_to_update};
use crate::metrics::{record_change, record_sync};

/// What a sync reads and writes through.
pub(crate) struct SyncContext {
    pub(crate) services: Lister<Service>,
    pub(crate) pods: Lister<PodProjection>,
    pub(crate) endpoints: Lister<Endpoints>,
    pub(crate) writers: Writers<Endpoints>,
    pub(crate) trigger_times: TriggerTimeTracker,
    pub(crate) stale: Arc<StaleCacheGuard<ObjectVersions>>,
}

#[async_trait]
impl SyncHandler<ObjectKey> for SyncContext {
    type Error = SyncError;

    /// Syncs the Endpoints object of the Service `key`.
    async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let (svc, pods) = match ServicePods::lookup(&self.services, &self.pods, key) {
            ServicePods::Gone => return self.service_gone(key).await,
            // An existing Endpoints object of an ExternalName Service is left
            // as it is (upstream issue 105986); selector-less Services get
            // their Endpoints from someone else.
            ServicePods::NotSelecting => return Ok(()),
            ServicePods::Selecting { service, pods } => (service, pods),
        };
        let (namespace, name) = (key.namespace(), key.name());
        // Computed before deciding anything, so the tracker advances even
        // when this sync turns out to write nothing.
        let trigger = self.trigger_times.compute(&svc, pods.iter().map(AsRef::as_ref));
        let desired = desired_subsets(&svc, pods.iter().map(AsRef::as_ref));

        let current = self.endpoints.get(namespace, name);
        let cached_rv = current.as_ref().and_then(|c| c.metadata.resource_version.clone());
        if self.stale.is_behind(key, cached_rv.as_deref()) {
            return Err(SyncError::StaleCache(key.clone()));
        }
        match plan(current.as_deref(), &svc, desired.subsets, trigger) {
            Plan::Unchanged => {
                tracing::trace!(service = %key, "endpoints are equal, skipping update");
                Ok(())
            }
            Plan::Create(object) => {
                tracing::debug!(service = %key, ready = desired.ready, not_ready = desired.not_ready, "creating endpoints");
                match self.writers.objects.create(namespace, &object).await {
                    Ok(_) => {
                        record_change(WriteOperation::Create);
                        self.stale.expectations().created(key);
                        Ok(())
                    }
                    Err(WriteError::NamespaceTerminating(message)) => {
                        tracing::debug!(service = %key, %message, "namespace is terminating, not creating endpoints");
                        Ok(())
                    }
                    Err(source) => {
                        self.writers
                            .events
                            .record(failed_to_create(&object, key.as_str(), &source))
                            .await;
                        Err(SyncError::Write {
                            verb: "create",
                            key: key.clone(),
                            source,
                        })
                    }
                }
            }
            Plan::Update(object) => {
                tracing::debug!(service = %key, ready = desired.ready, not_ready = desired.not_ready, "updating endpoints");
                match self.writers.objects.update(namespace, &object).await {
                    Ok(stored) => {
                        record_change(WriteOperation::Update);
                        let new_rv = stored.metadata.resource_version.unwrap_or_default();
                        self.stale
                            .expectations()
                            .updated(key, cached_rv.as_deref().unwrap_or_default(), &new_rv);
                        Ok(())
                    }
                    Err(source) => {
                        self.writers
                            .events
                            .record(failed_to_update(&object, namespace, key.as_str(), &source))
                            .await;
                        Err(SyncError::Write {
                            verb: "update",
                            key: key.clone(),
                            source,
                        })
                    }
                }
            }
        }
    }

    fn record(&self, _key: &ObjectKey, result: &Result<(), SyncError>, took: Duration) {
        let outcome = match result {
            Ok(()) => SyncResult::Success,
            Err(SyncError::StaleCache(_)) => SyncResult::Stale,
            Err(_) => SyncResult::Error,
        };
        record_sync(outcome, took);
    }
}

impl SyncContext {
    /// The Service is gone: delete its Endpoints object and forget it.
    ///
    /// Upstream sends the DELETE whether or not its cache holds the object.
    /// ecm skips it when the cache (synced before any sync runs) holds no such
    /// object and no create of ours is still on its way, which saves the
    /// second, always-404 DELETE upstream sends after its own delete event.
    async fn service_gone(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let cached = self.endpoints.get(key.namespace(), key.name()).is_some();
        if cached || self.stale.expectations().create_pending(key) {
            match self.writers.objects.delete(key.namespace(), key.name()).await {
                Ok(()) => record_change(WriteOperation::Delete),
                Err(err) if err.is_not_found() => {}
                Err(source) => {
                    return Err(SyncError::Delete {
                        key: key.clone(),
                        source,
                    });
                }
            }
        }
        self.trigger_times.delete_service(key);
        self.stale.forget(key);
        Ok(())
    }
}
