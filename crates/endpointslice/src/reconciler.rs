//! The reconciler: plans a Service's slices and carries the plan out
//! through the API (upstream's `Reconciler`, `Reconcile` and `finalize`).

use std::fmt;
use std::sync::Arc;

use ecm_controller::slices::{EndpointSliceTracker, SliceWriteFailure, SliceWriter, SliceWrites, SlicesWritten};
use ecm_controller::{ChangedPods, EventRecorder, WriteOperation, Writers};
use ecm_informer::ObjectKey;
use ecm_types::PodProjection;
use ecm_types::wellknown::DEFAULT_MAX_ENDPOINTS_PER_SLICE;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;

use crate::desired::NodeLookup;
use crate::error::{ReconcileError, ReconcileErrors};
use crate::events::hints_event;
use crate::hints::TopologyCache;
use crate::metrics::{MetricsCache, record_change, record_endpoint_changes, record_slices_changed};
use crate::plan::{AddressTypePlan, Fallback, Plan, PlanContext, plan, plan_changed};

/// Settings of a [`Reconciler`], with kube-controller-manager's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcilerConfig {
    /// Most endpoints the reconciler puts into one slice
    /// (`--max-endpoints-per-slice`, default 100, valid 1 to 1000).
    pub max_endpoints_per_slice: usize,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            max_endpoints_per_slice: DEFAULT_MAX_ENDPOINTS_PER_SLICE,
        }
    }
}

impl ReconcilerConfig {
    /// Sets [`max_endpoints_per_slice`](Self::max_endpoints_per_slice).
    pub fn max_endpoints_per_slice(mut self, max: usize) -> Self {
        self.max_endpoints_per_slice = max;
        self
    }
}

/// Brings a Service's EndpointSlices in line with its pods.
///
/// Holds the write interfaces, the node cache, the
/// [`EndpointSliceTracker`] it records its writes in, the
/// [`TopologyCache`] and the slice gauges' `MetricsCache`. Share the
/// tracker with the slice event handlers ([`tracker`](Self::tracker)) and
/// the topology cache with the topology worker ([`topology`](Self::topology)).
pub struct Reconciler {
    config: ReconcilerConfig,
    slices: SliceWriter,
    nodes: Arc<dyn NodeLookup>,
    topology: Arc<TopologyCache>,
    metrics: MetricsCache,
}

impl fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconciler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    /// A reconciler writing slices and events through `writers` and
    /// looking nodes up in `nodes`, with a fresh tracker and topology cache.
    pub fn new(config: ReconcilerConfig, writers: Writers<EndpointSlice>, nodes: Arc<dyn NodeLookup>) -> Self {
        Self {
            metrics: MetricsCache::new(config.max_endpoints_per_slice),
            config,
            slices: SliceWriter::new(writers),
            nodes,
            topology: Arc::new(TopologyCache::new()),
        }
    }

    /// Uses `topology` instead of a fresh one.
    pub fn with_topology(mut self, topology: Arc<TopologyCache>) -> Self {
        self.topology = topology;
        self
    }

    /// The settings.
    pub fn config(&self) -> &ReconcilerConfig {
        &self.config
    }

    /// The tracker the reconciler records its writes in.
    pub fn tracker(&self) -> &Arc<EndpointSliceTracker> {
        self.slices.tracker()
    }

    /// The event recorder.
    pub fn events(&self) -> &dyn EventRecorder {
        self.slices.events()
    }

    /// The topology cache the reconciler reads and updates.
    pub fn topology(&self) -> &Arc<TopologyCache> {
        &self.topology
    }

    /// Reconciles `svc`: plans its slices from `pods` (the pods its selector
    /// matches) and `existing` (its slices managed by this controller, minus
    /// those being deleted), then writes the plan.
    ///
    /// Writes nothing when the slices are already as they should be. On
    /// error, the writes that could be made were made; the caller retries.
    ///
    /// Listers hand out `Arc`s: pass `pods.iter().map(AsRef::as_ref)` and
    /// `slices.iter().map(AsRef::as_ref)`.
    pub async fn reconcile<'a, 'p>(
        &self,
        svc: &Service,
        pods: impl IntoIterator<Item = &'p PodProjection>,
        existing: impl IntoIterator<Item = &'a EndpointSlice>,
        trigger_time: Option<Timestamp>,
    ) -> Result<(), ReconcileErrors> {
        let plan = self.plan(svc, pods, existing, trigger_time);
        self.apply(svc, plan).await
    }

    /// The plan [`reconcile`](Self::reconcile) would carry out, computed
    /// against the current topology cache. Pure apart from reading the
    /// caches.
    pub fn plan<'a, 'p>(
        &self,
        svc: &Service,
        pods: impl IntoIterator<Item = &'p PodProjection>,
        existing: impl IntoIterator<Item = &'a EndpointSlice>,
        trigger_time: Option<Timestamp>,
    ) -> Plan<'a> {
        let snapshot = self.topology.snapshot(&ObjectKey::of(svc));
        let ctx = PlanContext {
            max_endpoints_per_slice: self.config.max_endpoints_per_slice,
            nodes: &*self.nodes,
            topology: &snapshot,
            trigger_time,
        };
        plan(&ctx, svc, pods, existing)
    }

    /// The plan for `svc` when only the pods in `changed` changed since the
    /// plan `existing` is the outcome of ([`plan_changed`]), without a
    /// trigger time (set it with [`Plan::set_trigger_time`]), or why the
    /// full plan is needed.
    pub fn plan_changed<'a>(
        &self,
        svc: &Service,
        changed: &ChangedPods,
        existing: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Result<Plan<'a>, Fallback> {
        let snapshot = self.topology.snapshot(&ObjectKey::of(svc));
        let ctx = PlanContext {
            max_endpoints_per_slice: self.config.max_endpoints_per_slice,
            nodes: &*self.nodes,
            topology: &snapshot,
            trigger_time: None,
        };
        plan_changed(&ctx, svc, changed, existing)
    }

    /// Carries out `plan` for `svc`: updates the topology cache and the
    /// slice gauges, then per address type writes creates, updates and
    /// deletes in that order and records the hint events, then deletes the
    /// slices of address types the Service no longer has.
    ///
    /// Error handling is upstream's: a failed write ends the writes of its
    /// address type (a create failing because the namespace is terminating
    /// ends them silently), a delete of an already deleted slice is not an
    /// error, and the other address types are still written. Every
    /// successful write is recorded in the tracker with what the API
    /// returned.
    pub async fn apply(&self, svc: &Service, plan: Plan<'_>) -> Result<(), ReconcileErrors> {
        let service = &plan.service;
        for change in &plan.topology_changes {
            self.topology.apply(service, &change.address_type, &change.change);
        }
        self.metrics.update_service(service, plan.port_groups());
        self.metrics
            .update_traffic_distribution(service, plan.traffic_distribution.as_deref());

        let namespace = service.namespace();
        let mut errors = Vec::new();
        for address_type in &plan.address_types {
            errors.extend(address_type.missing_nodes.iter().map(|m| ReconcileError::NodeNotFound {
                pod: m.pod.clone(),
                service: service.clone(),
                node: m.node.clone(),
            }));
            record_endpoint_changes(address_type.endpoints_added, address_type.endpoints_removed);
            match self.write(service, address_type).await {
                Ok(SlicesWritten::All) => record_slices_changed(
                    address_type.topology_label,
                    &address_type.traffic_distribution_label,
                    address_type.slices_changed(),
                ),
                Ok(SlicesWritten::NamespaceTerminating) => {}
                Err(error) => errors.push(error),
            }
            for event in &address_type.events {
                self.slices.events().record(hints_event(svc, event)).await;
            }
        }

        for slice in &plan.unsupported {
            let name = slice.metadata.name.as_deref().unwrap_or_default();
            match self.slices.objects().delete(namespace, name).await {
                Ok(()) => {
                    tracing::debug!(service = %service, slice = name, "deleted slice of unsupported address type");
                    self.slices.tracker().expect_deletion(slice);
                    record_change(WriteOperation::Delete);
                }
                Err(cause) if cause.is_not_found() => {}
                Err(cause) => errors.push(ReconcileError::DeleteUnsupported {
                    name: name.to_owned(),
                    service: service.clone(),
                    cause,
                }),
            }
        }
        ReconcileErrors::check(errors)
    }

    /// Writes one address type's slices (upstream's `finalize`, after the
    /// recycling step the plan already did).
    async fn write(&self, service: &ObjectKey, plan: &AddressTypePlan<'_>) -> Result<SlicesWritten, ReconcileError> {
        let writes = SliceWrites {
            owner: service,
            to_create: &plan.to_create,
            to_update: &plan.to_update,
            to_delete: &plan.to_delete,
        };
        let written = self.slices.write(writes, record_change).await;
        let service = service.clone();
        match written {
            Ok(done) => Ok(done),
            Err(SliceWriteFailure::Create { cause }) => Err(ReconcileError::Create { service, cause }),
            Err(SliceWriteFailure::Update { name, cause }) => Err(ReconcileError::Update { name, service, cause }),
            Err(SliceWriteFailure::Delete { name, cause }) => Err(ReconcileError::Delete { name, service, cause }),
        }
    }

    /// Forgets a deleted Service's contribution to the slice gauges
    /// (upstream's `Reconciler.DeleteService`). The sync also forgets the
    /// Service in the tracker and the trigger-time tracker.
    pub fn delete_service(&self, service: &ObjectKey) {
        self.metrics.delete_service(service);
    }
}
