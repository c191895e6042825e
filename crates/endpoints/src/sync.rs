//! `sync(key)`: bring one Service's Endpoints object to its desired state.
//! The only place this controller writes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecm_controller::incremental::{Scope, ScopeLabels, record_fallback, record_scope, report_mismatch};
use ecm_controller::{
    ChangeTracker, IncrementalSyncs, ObjectVersions, ServicePods, StaleCacheGuard, SyncHandler, SyncResult, SyncScope,
    TriggerTimeTracker, WriteError, WriteOperation, Writers,
};
use ecm_informer::{Lister, ObjectKey};
use ecm_types::PodProjection;
use ecm_types::wellknown::ANNOTATION_OVER_CAPACITY;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::jiff::Timestamp;

use crate::desired::{DesiredSubsets, Plan, changed_subsets, desired_subsets, plan};
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
    /// What changed per Service since its last good sync; `None` with
    /// `--incremental-syncs off`.
    pub(crate) changes: Option<Arc<ChangeTracker>>,
    /// `--incremental-syncs`.
    pub(crate) incremental: IncrementalSyncs,
}

/// The `controller` label of the incremental-sync metrics.
const CONTROLLER: &str = "endpoints";
/// Its label sets of the incremental-sync counter.
static SCOPES: ScopeLabels = ScopeLabels::new(CONTROLLER);

#[async_trait]
impl SyncHandler<ObjectKey> for SyncContext {
    type Error = SyncError;

    /// Syncs the Endpoints object of the Service `key`: after pod changes
    /// only, from the object it wrote last and the changed pods
    /// ([`changed_subsets`]) when it can be built on, else from all pods.
    async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let Some(svc) = self.services.get(key.namespace(), key.name()) else {
            if let Some(changes) = &self.changes {
                changes.delete_service(key);
            }
            return self.service_gone(key).await;
        };
        // An existing Endpoints object of an ExternalName Service is left
        // as it is (upstream issue 105986); selector-less Services get
        // their Endpoints from someone else.
        if !ServicePods::selects(&svc) {
            if let Some(changes) = &self.changes {
                changes.forget(key);
            }
            return Ok(());
        }
        let scope = match &self.changes {
            Some(changes) => changes.begin(key, &svc, &self.pods),
            None => SyncScope::Full { generation: 0 },
        };
        let result = self.sync_scoped(key, &svc, &scope).await;
        if let Some(changes) = &self.changes {
            match &result {
                Ok(left_behind) => {
                    changes.succeeded(key, &svc, &scope);
                    if let Some(version) = left_behind {
                        changes.record_version(key, version.clone());
                    }
                }
                Err(_) => changes.forget(key),
            }
        }
        result.map(|_| ())
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
    /// Every pod the Service selects.
    fn all_pods(&self, svc: &Arc<Service>) -> Vec<Arc<PodProjection>> {
        match ServicePods::of(Arc::clone(svc), &self.pods) {
            ServicePods::Selecting { pods, .. } => pods,
            ServicePods::Gone | ServicePods::NotSelecting => Vec::new(),
        }
    }

    /// The stored object, if a changed-pods sync can build on it: the one
    /// the last good sync left behind, holding every address (not
    /// truncated). Otherwise why not.
    fn built_on<'a>(&self, key: &ObjectKey, current: Option<&'a Endpoints>) -> Result<&'a Endpoints, &'static str> {
        let recorded = self.changes.as_ref().and_then(|c| c.version(key));
        let current = current
            .filter(|c| recorded.is_some() && c.metadata.resource_version == recorded)
            .ok_or("object_changed")?;
        let annotations = current.metadata.annotations.as_ref();
        if annotations.is_some_and(|a| a.contains_key(ANNOTATION_OVER_CAPACITY)) {
            Err("over_capacity")
        } else {
            Ok(current)
        }
    }

    /// The subsets `svc` should have and the trigger time, within `scope`.
    async fn desired(
        &self,
        key: &ObjectKey,
        svc: &Arc<Service>,
        scope: &SyncScope,
        current: Option<&Endpoints>,
    ) -> (DesiredSubsets, Option<Timestamp>) {
        let full = |pods: &[Arc<PodProjection>]| {
            let trigger = self.trigger_times.compute(svc, pods.iter().map(AsRef::as_ref));
            (desired_subsets(svc, pods.iter().map(AsRef::as_ref)), trigger)
        };
        let SyncScope::Changed(changed) = scope else {
            if self.changes.is_some() {
                record_scope(&SCOPES, Scope::Full);
            }
            return full(&self.all_pods(svc));
        };
        let stored = match self.built_on(key, current) {
            Ok(stored) => stored.subsets.as_deref().unwrap_or_default(),
            Err(reason) => {
                record_fallback(CONTROLLER, reason);
                return full(&self.all_pods(svc));
            }
        };
        record_scope(&SCOPES, Scope::Changed);
        if self.incremental != IncrementalSyncs::Verify {
            let trigger = self.trigger_times.compute_changed(svc, changed);
            return (changed_subsets(svc, stored, changed), trigger);
        }
        // Both from one snapshot of the pods.
        let pods = self.all_pods(svc);
        let changed = changed.within(&pods);
        let incremental = changed_subsets(svc, stored, &changed);
        let desired = desired_subsets(svc, pods.iter().map(AsRef::as_ref));
        if incremental.subsets != desired.subsets
            && let Some(changes) = &self.changes
            && !changes.raced(key).await
        {
            report_mismatch(CONTROLLER, key, &incremental.subsets, &desired.subsets);
        }
        (desired, self.trigger_times.compute_changed(svc, &changed))
    }

    /// Writes what `svc`'s Endpoints object needs within `scope`. Returns
    /// the resourceVersion of the object it leaves behind, when known.
    async fn sync_scoped(
        &self,
        key: &ObjectKey,
        svc: &Arc<Service>,
        scope: &SyncScope,
    ) -> Result<Option<String>, SyncError> {
        let (namespace, name) = (key.namespace(), key.name());
        self.stale.begin_read(key);
        let current = self.endpoints.get(namespace, name);
        // Computed before deciding anything, so the tracker advances even
        // when this sync turns out to write nothing.
        let (desired, trigger) = self.desired(key, svc, scope, current.as_deref()).await;
        let cached_rv = current.as_ref().and_then(|c| c.metadata.resource_version.clone());
        if self.stale.is_behind(key, cached_rv.as_deref()) {
            return Err(SyncError::StaleCache(key.clone()));
        }
        match plan(current.as_deref(), svc, desired.subsets, trigger) {
            Plan::Unchanged => {
                tracing::trace!(service = %key, "endpoints are equal, skipping update");
                Ok(cached_rv)
            }
            Plan::Create(object) => {
                tracing::debug!(service = %key, ready = desired.ready, not_ready = desired.not_ready, "creating endpoints");
                match self.writers.objects.create(namespace, &object).await {
                    Ok(stored) => {
                        record_change(WriteOperation::Create);
                        self.stale.expectations().created(key);
                        Ok(stored.resource_version)
                    }
                    Err(WriteError::NamespaceTerminating(message)) => {
                        tracing::debug!(service = %key, %message, "namespace is terminating, not creating endpoints");
                        Ok(None)
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
                        let new_rv = stored.resource_version.unwrap_or_default();
                        self.stale
                            .expectations()
                            .updated(key, cached_rv.as_deref().unwrap_or_default(), &new_rv);
                        Ok(Some(new_rv))
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
