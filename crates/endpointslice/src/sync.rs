//! `sync(key)`: bring one Service's EndpointSlices to their desired state
//! (upstream's `syncService`). The only place this controller writes, through
//! the [`Reconciler`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecm_controller::incremental::{Scope, ScopeLabels, record_fallback, record_scope, report_mismatch};
use ecm_controller::slices::{EndpointSliceTracker, SliceManager};
use ecm_controller::{
    ChangeTracker, IncrementalSyncs, ServicePods, StaleCacheGuard, SyncHandler, SyncResult, SyncScope,
    TriggerTimeTracker,
};
use ecm_informer::{Lister, ObjectKey};
use ecm_types::PodProjection;
use ecm_types::wellknown::MANAGED_BY_ENDPOINTSLICE_CONTROLLER;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::error::SyncError;
use crate::events::failed_to_update;
use crate::metrics::record_sync;
use crate::plan::Plan;
use crate::reconciler::Reconciler;

/// What a sync reads and writes through.
pub(crate) struct SyncContext {
    pub(crate) services: Lister<Service>,
    pub(crate) pods: Lister<PodProjection>,
    pub(crate) slices: Lister<EndpointSlice>,
    pub(crate) reconciler: Reconciler,
    pub(crate) trigger_times: TriggerTimeTracker,
    pub(crate) stale: Arc<StaleCacheGuard<EndpointSliceTracker>>,
    /// What changed per Service since its last good sync; `None` with
    /// `--incremental-syncs off`.
    pub(crate) changes: Option<Arc<ChangeTracker>>,
    /// `--incremental-syncs`.
    pub(crate) incremental: IncrementalSyncs,
}

/// The slices this controller manages, indexed by Service
/// (`namespace/service-name`) on the slice informer. Slices being deleted
/// are not reconciled against.
pub(crate) const MANAGER: SliceManager =
    SliceManager::new(MANAGED_BY_ENDPOINTSLICE_CONTROLLER, "endpointslice-controller/service").skipping_terminating();

/// The `controller` label of the incremental-sync metrics.
const CONTROLLER: &str = "endpointslice";
/// Its label sets of the incremental-sync counter.
static SCOPES: ScopeLabels = ScopeLabels::new(CONTROLLER);

#[async_trait]
impl SyncHandler<ObjectKey> for SyncContext {
    type Error = SyncError;

    /// Syncs the slices of the Service `key`: after pod changes only, from
    /// the changed pods when the last sync can be built on
    /// ([`plan_changed`](crate::plan::plan_changed)), else from all of them.
    async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let Some(svc) = self.services.get(key.namespace(), key.name()) else {
            // The garbage collector deletes the slices through their
            // owner reference; only the bookkeeping is dropped here.
            self.trigger_times.delete_service(key);
            self.reconciler.delete_service(key);
            self.stale.forget(key);
            if let Some(changes) = &self.changes {
                changes.delete_service(key);
            }
            return Ok(());
        };
        // ExternalName and selector-less Services get their slices from
        // someone else (slices written while it had a selector stay, as
        // upstream).
        if !ServicePods::selects(&svc) {
            self.forget_changes(key);
            return Ok(());
        }
        let scope = match &self.changes {
            Some(changes) => changes.begin(key, &svc, &self.pods),
            None => SyncScope::Full { generation: 0 },
        };
        let result = self.sync_scoped(key, &svc, &scope).await;
        match (&result, &self.changes) {
            (Ok(()), Some(changes)) => changes.succeeded(key, &svc, &scope),
            (Err(_), Some(changes)) => changes.forget(key),
            (_, None) => {}
        }
        result
    }

    fn record(&self, _key: &ObjectKey, result: &Result<(), SyncError>, _took: Duration) {
        record_sync(match result {
            Ok(()) => SyncResult::Success,
            Err(SyncError::StaleCache(_)) => SyncResult::Stale,
            Err(SyncError::Reconcile(_)) => SyncResult::Error,
        });
    }
}

impl SyncContext {
    fn forget_changes(&self, key: &ObjectKey) {
        if let Some(changes) = &self.changes {
            changes.forget(key);
        }
    }

    /// Plans and writes `svc`'s slices within `scope`.
    async fn sync_scoped(&self, key: &ObjectKey, svc: &Arc<Service>, scope: &SyncScope) -> Result<(), SyncError> {
        // Slices written for an earlier Service of this name are garbage.
        self.stale
            .owned_by(key, svc.metadata.uid.as_deref().unwrap_or_default());
        self.stale.begin_read(key);
        let slices = MANAGER.list(&self.slices, key);
        if self.stale.is_behind(key, &slices) {
            return Err(SyncError::StaleCache(key.clone()));
        }
        let existing = || slices.iter().map(AsRef::as_ref);
        let plan = match scope {
            SyncScope::Changed(changed) if self.incremental == IncrementalSyncs::Verify => {
                // Both plans from one snapshot of the pods.
                let pods = self.all_pods(svc);
                let changed = changed.within(&pods);
                let full = self
                    .reconciler
                    .plan(svc, pods.iter().map(AsRef::as_ref), existing(), None);
                let mismatch = match self.reconciler.plan_changed(svc, &changed, existing()) {
                    Ok(plan) => {
                        record_scope(&SCOPES, Scope::Changed);
                        (plan != full).then_some(plan)
                    }
                    Err(fallback) => {
                        record_fallback(CONTROLLER, fallback.as_str());
                        None
                    }
                };
                // A pod noted meanwhile may have changed before the
                // snapshot but after the notes were taken.
                if let (Some(plan), Some(changes)) = (mismatch, &self.changes)
                    && !changes.raced(key).await
                {
                    report_mismatch(CONTROLLER, key, &plan, &full);
                }
                let mut full = full;
                full.set_trigger_time(self.trigger_times.compute_changed(svc, &changed));
                Some(full)
            }
            SyncScope::Changed(changed) => match self.reconciler.plan_changed(svc, changed, existing()) {
                Ok(mut plan) => {
                    record_scope(&SCOPES, Scope::Changed);
                    plan.set_trigger_time(self.trigger_times.compute_changed(svc, changed));
                    Some(plan)
                }
                Err(fallback) => {
                    record_fallback(CONTROLLER, fallback.as_str());
                    None
                }
            },
            SyncScope::Full { .. } => {
                if self.changes.is_some() {
                    record_scope(&SCOPES, Scope::Full);
                }
                None
            }
        };
        if let Some(plan) = plan {
            return self.apply(svc, plan).await;
        }
        let pods = self.all_pods(svc);
        let trigger = self.trigger_times.compute(svc, pods.iter().map(AsRef::as_ref));
        let plan = self
            .reconciler
            .plan(svc, pods.iter().map(AsRef::as_ref), existing(), trigger);
        self.apply(svc, plan).await
    }

    /// Every pod the Service selects.
    fn all_pods(&self, svc: &Arc<Service>) -> Vec<Arc<PodProjection>> {
        match ServicePods::of(Arc::clone(svc), &self.pods) {
            ServicePods::Selecting { pods, .. } => pods,
            ServicePods::Gone | ServicePods::NotSelecting => Vec::new(),
        }
    }

    /// Carries `plan` out; a failure is also recorded as an event.
    async fn apply(&self, svc: &Service, plan: Plan<'_>) -> Result<(), SyncError> {
        if let Err(errors) = self.reconciler.apply(svc, plan).await {
            self.reconciler.events().record(failed_to_update(svc, &errors)).await;
            return Err(errors.into());
        }
        Ok(())
    }
}
