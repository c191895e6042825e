//! `sync(key)`: bring one Service's Endpoints object to its desired state.
//! The only place this controller writes.

use std::sync::Arc;

use ecm_informer::{Lister, Selector};
use ecm_types::{
    EventRecord, EventRecorder, ObjectKey, ObjectWriter, PodProjection, SyncResult, TriggerTimeTracker, WriteError,
    WriteOperation, service,
};
use k8s_openapi::api::core::v1::{Endpoints, ObjectReference, Service};
use tokio::time::Instant;

use crate::desired::{Plan, desired_subsets, plan};
use crate::metrics::{record_change, record_sync};
use crate::stale::StaleTracker;

/// Why a sync failed. Every variant is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The Endpoints cache is older than this controller's own last write.
    #[error("endpoints informer cache is out of date for endpoints {0}, retrying once it catches up")]
    StaleCache(ObjectKey),
    /// Deleting the Endpoints of a deleted Service failed.
    #[error("failed to delete endpoints {key}: {source}")]
    Delete {
        /// The Endpoints object.
        key: ObjectKey,
        /// The API error.
        source: WriteError,
    },
    /// Creating or updating the Endpoints object failed.
    #[error("failed to {verb} endpoints {key}: {source}")]
    Write {
        /// `create` or `update`.
        verb: &'static str,
        /// The Endpoints object.
        key: ObjectKey,
        /// The API error.
        source: WriteError,
    },
}

/// What a sync reads and writes through.
pub(crate) struct SyncContext {
    pub(crate) services: Lister<Service>,
    pub(crate) pods: Lister<PodProjection>,
    pub(crate) endpoints: Lister<Endpoints>,
    pub(crate) writer: Arc<dyn ObjectWriter<Endpoints>>,
    pub(crate) events: Arc<dyn EventRecorder>,
    pub(crate) trigger_times: TriggerTimeTracker,
    pub(crate) stale: Arc<StaleTracker>,
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
        if self.stale.is_stale(key, cached_rv.as_deref()) {
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
                        self.stale.created(key);
                        Ok(())
                    }
                    Err(WriteError::NamespaceTerminating(message)) => {
                        tracing::debug!(service = %key, %message, "namespace is terminating, not creating endpoints");
                        Ok(())
                    }
                    Err(source) => {
                        // Upstream's in-memory object has no namespace yet, so
                        // its event names none and is recorded in `default`.
                        let regarding = endpoints_reference(&object, None);
                        let message = format!("Failed to create endpoint for service {key}: {source}");
                        self.events
                            .record(EventRecord::warning(regarding, "FailedToCreateEndpoint", message))
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
                            .updated(key, cached_rv.as_deref().unwrap_or_default(), &new_rv);
                        Ok(())
                    }
                    Err(source) => {
                        let regarding = endpoints_reference(&object, Some(namespace));
                        let message = format!("Failed to update endpoint {key}: {source}");
                        self.events
                            .record(EventRecord::warning(regarding, "FailedToUpdateEndpoint", message))
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
        if cached || self.stale.create_pending(key) {
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

/// A reference to an Endpoints object for an event.
fn endpoints_reference(object: &Endpoints, namespace: Option<&str>) -> ObjectReference {
    ObjectReference {
        kind: Some("Endpoints".to_owned()),
        api_version: Some("v1".to_owned()),
        name: object.metadata.name.clone(),
        namespace: namespace.map(str::to_owned),
        uid: object.metadata.uid.clone(),
        resource_version: object.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}
