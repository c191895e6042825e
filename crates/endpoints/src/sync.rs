//! `sync(key)`: bring one Service's Endpoints object to its desired state.
//! The only place this controller writes.

use std::sync::Arc;

use ecm_controller::{
    EventRecorder, ObjectVersions, ObjectWriter, StaleCacheGuard, SyncResult, TriggerTimeTracker, WriteError,
    WriteOperation,
};
use ecm_informer::{Lister, ObjectKey, Selector};
use ecm_types::{PodProjection, service};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use tokio::time::Instant;

use crate::desired::{Plan, desired_subsets, plan};
use crate::error::SyncError;
use crate::events::{failed_to_create, failed_to_update};
use crate::metrics::{record_change, record_sync};

/// What a sync reads and writes through.
pub(crate) struct SyncContext {
    pub(crate) services: Lister<Service>,
    pub(crate) pods: Lister<PodProjection>,
    pub(crate) endpoints: Lister<Endpoints>,
    pub(crate) writer: Arc<dyn ObjectWriter<Endpoints>>,
    pub(crate) events: Arc<dyn EventRecorder>,
    pub(crate) trigger_times: TriggerTimeTracker,
    pub(crate) stale: Arc<StaleCacheGuard<ObjectVersions>>,
}

impl SyncContext {
    /// Syncs the Endpoints object of the Service `key`, recording the outcome.
    pub(crate) async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let started = Instant::now();
        let result = self.sync_inner(key).await;
        let outcome = match &result {
            Ok(()) => SyncResult::Success,
            Err(SyncError::StaleCache(_)) => SyncResult::Stale,
            Err(_) => SyncResult::Error,
        };
        record_sync(outcome, started.elapsed());
        tracing::debug!(service = %key, took = ?started.elapsed(), ?outcome, "finished syncing service endpoints");
        result
    }

    async fn sync_inner(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let (namespace, name) = (key.namespace(), key.name());
        let Some(svc) = self.services.get(namespace, name) else {
            return self.service_gone(key).await;
        };
        if service::is_external_name(&svc) {
            // ExternalName Services get no endpoints; an existing Endpoints
            // object is left as it is (upstream issue 105986).
            return Ok(());
        }
        let Some(selector) = service::selector(&svc) else {
            // Selector-less Services get their Endpoints from someone else.
            return Ok(());
        };
        let pods = self.pods.list(namespace, &Selector::from_labels(selector));
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
                match self.writer.create(namespace, &object).await {
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
                        self.events
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
                match self.writer.update(namespace, &object).await {
                    Ok(stored) => {
                        record_change(WriteOperation::Update);
                        let new_rv = stored.metadata.resource_version.unwrap_or_default();
                        self.stale
                            .expectations()
                            .updated(key, cached_rv.as_deref().unwrap_or_default(), &new_rv);
                        Ok(())
                    }
                    Err(source) => {
                        self.events
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

    /// The Service is gone: delete its Endpoints object and forget it.
    ///
    /// Upstream sends the DELETE whether or not its cache holds the object.
    /// ecm skips it when the cache (synced before any sync runs) holds no such
    /// object and no create of ours is still on its way, which saves the
    /// second, always-404 DELETE upstream sends after its own delete event.
    async fn service_gone(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let cached = self.endpoints.get(key.namespace(), key.name()).is_some();
        if cached || self.stale.expectations().create_pending(key) {
            match self.writer.delete(key.namespace(), key.name()).await {
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
