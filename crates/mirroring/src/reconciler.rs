//! The reconciler: plans an Endpoints object's mirrored slices and carries
//! the plan out through the API (upstream's `reconciler`: `reconcile`,
//! `finalize`, `deleteEndpoints`).

use std::sync::Arc;

use ecm_controller::Writers;
use ecm_controller::slices::{EndpointSliceTracker, SliceWriteFailure, SliceWriter, SliceWrites};
use ecm_informer::ObjectKey;
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::error::ReconcileError;
use crate::events::skip_events;
use crate::metrics::{MetricsCache, record_change, record_reconcile};
use crate::plan::{Plan, plan};

/// Default of `--mirroring-max-endpoints-per-subset`.
pub const DEFAULT_MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// Settings of a [`Reconciler`], with kube-controller-manager's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcilerConfig {
    /// Most addresses mirrored per repacked subset, and so per slice
    /// (`--mirroring-max-endpoints-per-subset`, default 1000, valid 1 to
    /// 1000).
    pub max_endpoints_per_subset: usize,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            max_endpoints_per_subset: DEFAULT_MAX_ENDPOINTS_PER_SUBSET,
        }
    }
}

impl ReconcilerConfig {
    /// Sets [`max_endpoints_per_subset`](Self::max_endpoints_per_subset).
    #[must_use]
    pub fn max_endpoints_per_subset(mut self, max: usize) -> Self {
        self.max_endpoints_per_subset = max;
        self
    }
}

/// Brings the mirrored slices of Endpoints objects in line with them.
///
/// Holds the write interfaces, the [`EndpointSliceTracker`] it records its
/// writes in (share it with the slice event handlers through
/// [`tracker`](Self::tracker)) and the gauges' `MetricsCache`.
#[derive(Debug)]
pub struct Reconciler {
    config: ReconcilerConfig,
    slices: SliceWriter,
    metrics: MetricsCache,
}

impl Reconciler {
    /// A reconciler writing slices and events through `writers`, with a
    /// fresh tracker.
    pub fn new(config: ReconcilerConfig, writers: Writers<EndpointSlice>) -> Self {
        Self {
            metrics: MetricsCache::new(config.max_endpoints_per_subset),
            config,
            slices: SliceWriter::new(writers),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ReconcilerConfig {
        &self.config
    }

    /// The tracker the reconciler records its writes in.
    pub fn tracker(&self) -> &Arc<EndpointSliceTracker> {
        self.slices.tracker()
    }

    /// The plan [`reconcile`](Self::reconcile) would carry out. Pure.
    pub fn plan<'a>(&self, endpoints: &Endpoints, existing: impl IntoIterator<Item = &'a EndpointSlice>) -> Plan<'a> {
        plan(endpoints, existing, self.config.max_endpoints_per_subset)
    }

    /// Mirrors `endpoints` given `existing`, the slices this controller
    /// mirrored for it (listers hand out `Arc`s: pass
    /// `slices.iter().map(AsRef::as_ref)`).
    ///
    /// Records the skip events and metrics, then writes creates, updates and
    /// deletes in that order; the first failure stops the writes and is
    /// returned. A create refused because the namespace is terminating ends
    /// the writes silently. Successful creates and updates are recorded in
    /// the tracker with what the API returned, deletes as expected
    /// deletions; slices left unchanged are recorded if not tracked yet (so
    /// slices found at start-up become tracked).
    pub async fn reconcile<'a>(
        &self,
        endpoints: &Endpoints,
        existing: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Result<(), ReconcileError> {
        let plan = self.plan(endpoints, existing);
        let key = ObjectKey::of(endpoints);
        record_reconcile(
            plan.totals.added,
            plan.totals.updated,
            plan.totals.removed,
            plan.addresses_skipped,
        );
        if plan.addresses_skipped > plan.invalid_addresses {
            tracing::info!(
                endpoints = %key,
                skipped = plan.addresses_skipped,
                "addresses in Endpoints were skipped due to exceeding MaxEndpointsPerSubset"
            );
        }
        for event in skip_events(
            endpoints,
            self.config.max_endpoints_per_subset,
            plan.invalid_addresses,
            plan.addresses_skipped,
        ) {
            self.slices.events().record(event).await;
        }
        self.metrics.update(&key, plan.efficiency.iter().copied());
        for slice in &plan.unchanged {
            if !self.tracker().has(slice) {
                self.tracker().update(slice);
            }
        }
        self.write(&key, &plan).await
    }

    async fn write(&self, key: &ObjectKey, plan: &Plan<'_>) -> Result<(), ReconcileError> {
        let writes = SliceWrites {
            owner: key,
            to_create: &plan.to_create,
            to_update: &plan.to_update,
            to_delete: &plan.to_delete,
        };
        let written = self.slices.write(writes, record_change).await;
        let endpoints = key.clone();
        match written {
            Ok(_) => Ok(()),
            Err(SliceWriteFailure::Create { cause }) => Err(ReconcileError::Create { endpoints, cause }),
            Err(SliceWriteFailure::Update { name, cause }) => Err(ReconcileError::Update { name, endpoints, cause }),
            Err(SliceWriteFailure::Delete { name, cause }) => Err(ReconcileError::Delete { name, endpoints, cause }),
        }
    }

    /// Deletes every slice mirrored for `key`, which is no longer mirrored,
    /// and forgets it in the gauges (upstream's `deleteEndpoints`). Deletes
    /// go on after a failure; the failures are reported together. The
    /// deletions are not registered with the tracker (the caller forgets the
    /// key there), so their watch events queue nothing.
    pub async fn delete_mirrored(&self, key: &ObjectKey, slices: &[&EndpointSlice]) -> Result<(), ReconcileError> {
        self.metrics.delete(key);
        let mut failures = Vec::new();
        for slice in slices {
            let name = slice.metadata.name.as_deref().unwrap_or_default();
            match self.slices.objects().delete(key.namespace(), name).await {
                // Not counted in the changes metric, as upstream.
                Ok(()) => {
                    tracing::debug!(endpoints = %key, slice = name, "deleted mirrored slice of unmirrored Endpoints");
                }
                Err(cause) if cause.is_not_found() => {}
                Err(cause) => failures.push(cause),
            }
        }
        let failed = failures.len();
        match failures.into_iter().next() {
            None => Ok(()),
            Some(first) => Err(ReconcileError::DeleteMirrored {
                endpoints: key.clone(),
                failed,
                total: slices.len(),
                first,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
