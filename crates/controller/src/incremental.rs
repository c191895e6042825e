//! Incremental syncs: which pods of a Service changed since its last good
//! sync, and whether that sync's result can still be built on.
//!
//! A sync of a Service normally recomputes everything from all of its pods,
//! which costs in proportion to the Service even when one pod changed. A
//! [`ChangeTracker`] lets the sync do only the work of the change:
//!
//! - the event handlers note what changed, per Service, before they queue
//!   it: a pod ([`note_pod`](ChangeTracker::note_pod), by the shared
//!   [`pod_handler`](crate::pod_handler)), the Service itself or its written
//!   objects ([`note_service`](ChangeTracker::note_service), by the Service
//!   handler and the slice handler), or an input every Service reads, such
//!   as the nodes ([`note_all`](ChangeTracker::note_all));
//! - the sync asks for its [`SyncScope`] first, before it reads any cache
//!   ([`begin`](ChangeTracker::begin)); it gets [`SyncScope::Changed`] only
//!   when the previous sync of the Service succeeded, was made from the same
//!   Service object and the same generation of global inputs, and since then
//!   nothing but pods was noted; otherwise [`SyncScope::Full`];
//! - after a sync that wrote everything it had to, the controller records it
//!   ([`succeeded`](ChangeTracker::succeeded)); after anything else it
//!   forgets the Service ([`forget`](ChangeTracker::forget)), so the next
//!   sync is a full one.
//!
//! The informer updates its store before it calls the handlers, so a note
//! always follows the cache change it describes: a sync that takes a note
//! reads the pod as changed or newer, and a change a sync missed is noted
//! after the sync took its notes and so comes with the next one.
//!
//! ```
//! use std::sync::Arc;
//! use ecm_controller::incremental::{ChangeTracker, SyncScope};
//! use ecm_informer::{Lister, ObjectKey, Store};
//! use ecm_types::fixtures::{pod, service};
//!
//! let svc = Arc::new(service("ns", "web").selector([("app", "web")]).build());
//! let pods = Store::new();
//! pods.insert(Arc::new(pod("ns", "a").labels([("app", "web")]).projection()));
//! let (pods, key, changes) = (Lister::new(pods), ObjectKey::new("ns", "web"), ChangeTracker::new());
//!
//! // Nothing to build on yet: the first sync is a full one.
//! let scope = changes.begin(&key, &svc, &pods);
//! assert!(scope.is_full());
//! changes.succeeded(&key, &svc, &scope);
//!
//! // Then only what the handlers noted.
//! changes.note_pod(&key, "a");
//! let SyncScope::Changed(changed) = changes.begin(&key, &svc, &pods) else { unreachable!() };
//! assert_eq!(changed.selected.len(), 1);
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ecm_informer::{Lister, ObjectKey};
use ecm_types::{PodProjection, service};
use k8s_openapi::api::core::v1::Service;
use parking_lot::Mutex;

/// The pods of a Service that changed since its last good sync.
#[derive(Clone, Debug, Default)]
pub struct ChangedPods {
    /// The names of every pod noted: added, changed, relabelled into or out
    /// of the Service, or deleted.
    pub names: BTreeSet<String>,
    /// The current versions of those of them the Service still selects, in
    /// name order. A name without a pod here is gone from the Service.
    pub selected: Vec<Arc<PodProjection>>,
}

impl ChangedPods {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The same pods resolved in `selected`, every pod the Service selects
    /// (one snapshot of the cache), instead of looked up one by one.
    pub fn within(&self, selected: &[Arc<PodProjection>]) -> Self {
        Self {
            names: self.names.clone(),
            selected: selected
                .iter()
                .filter(|pod| self.names.contains(pod.name()))
                .cloned()
                .collect(),
        }
    }
}

/// How much of a Service a sync recomputes.
#[derive(Clone, Debug)]
pub enum SyncScope {
    /// Everything, from all of the Service's pods.
    Full {
        /// The generation of global inputs the sync started at.
        generation: u64,
    },
    /// Only the changed pods; everything else is as the last sync left it.
    Changed(ChangedPods),
}

impl SyncScope {
    /// Whether the sync recomputes everything.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full { .. })
    }
}

/// What the handlers noted for one Service.
#[derive(Debug, Default)]
struct Pending {
    everything: bool,
    pods: BTreeSet<String>,
}

/// What the last good sync of a Service was computed from.
#[derive(Debug)]
struct Baseline {
    service: Arc<Service>,
    generation: u64,
    /// The version of the object the sync left behind, when the controller
    /// records one ([`ChangeTracker::record_version`]).
    version: Option<String>,
}

/// Changes noted per Service since its last good sync (see the module
/// documentation). Cheap to share: put it in an `Arc`.
#[derive(Debug, Default)]
pub struct ChangeTracker {
    pending: Mutex<HashMap<ObjectKey, Pending>>,
    baselines: Mutex<HashMap<ObjectKey, Baseline>>,
    generation: AtomicU64,
}

impl ChangeTracker {
    /// A tracker with nothing noted and nothing to build on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that pod `pod` of the Service's namespace changed for `service`.
    pub fn note_pod(&self, service: &ObjectKey, pod: &str) {
        let mut pending = self.pending.lock();
        let entry = pending.entry(service.clone()).or_default();
        if !entry.everything {
            entry.pods.insert(pod.to_owned());
        }
    }

    /// Notes that something other than its pods changed for `service`: its
    /// next sync is a full one.
    pub fn note_service(&self, service: &ObjectKey) {
        let mut pending = self.pending.lock();
        let entry = pending.entry(service.clone()).or_default();
        entry.everything = true;
        entry.pods.clear();
    }

    /// Notes that an input of every Service changed (a node's zone, say):
    /// the next sync of each is a full one.
    pub fn note_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The scope of a sync of `key` starting now, whose Service is
    /// `service`. Takes the notes; resolves the changed pods in `pods`.
    pub fn begin(&self, key: &ObjectKey, service: &Arc<Service>, pods: &Lister<PodProjection>) -> SyncScope {
        let generation = self.generation.load(Ordering::Acquire);
        let pending = self.pending.lock().remove(key).unwrap_or_default();
        let current = self
            .baselines
            .lock()
            .get(key)
            .is_some_and(|b| Arc::ptr_eq(&b.service, service) && b.generation == generation);
        if !current || pending.everything {
            return SyncScope::Full { generation };
        }
        let selector = service::selector(service);
        let selected = pending
            .pods
            .iter()
            .filter_map(|name| pods.get(key.namespace(), name))
            .filter(|pod| selector.is_some_and(|s| service::selector_matches(s, pod.labels())))
            .collect();
        SyncScope::Changed(ChangedPods {
            names: pending.pods,
            selected,
        })
    }

    /// Whether changes to `key` were noted since its sync began: a result
    /// computed from the cache then may already be out of date.
    pub fn has_pending(&self, key: &ObjectKey) -> bool {
        self.pending.lock().contains_key(key)
    }

    /// Whether a changed-pods result of `key` that differs from the full
    /// recompute (`--incremental-syncs verify`) may be a race rather than
    /// a mismatch: a change noted since the sync began. The informer
    /// updates its store before its handlers note the change, so the full
    /// recompute's snapshot can hold a pod's new state a moment before its
    /// note exists; this waits that moment ([`RACE_GRACE`]) out before
    /// answering no. Called only on a difference, in verify mode.
    pub async fn raced(&self, key: &ObjectKey) -> bool {
        if self.has_pending(key) {
            return true;
        }
        tokio::time::sleep(RACE_GRACE).await;
        self.has_pending(key)
    }

    /// Records that the sync of `key` that began with `scope` wrote
    /// everything it had to for `service`: the next one may build on it.
    pub fn succeeded(&self, key: &ObjectKey, service: &Arc<Service>, scope: &SyncScope) {
        let generation = match scope {
            SyncScope::Full { generation } => *generation,
            // A changed-pods sync ran on a baseline that was current when it
            // began; it stays the baseline.
            SyncScope::Changed(_) => return,
        };
        self.baselines.lock().insert(
            key.clone(),
            Baseline {
                service: Arc::clone(service),
                generation,
                version: None,
            },
        );
    }

    /// Records the version (resourceVersion) of the object the last good
    /// sync of `key` left behind, written or found right, after
    /// [`succeeded`](Self::succeeded). A controller that builds its next
    /// result on that object checks it with [`version`](Self::version):
    /// an object changed by someone else since is not built on.
    pub fn record_version(&self, key: &ObjectKey, version: String) {
        if let Some(baseline) = self.baselines.lock().get_mut(key) {
            baseline.version = Some(version);
        }
    }

    /// The version recorded for `key` by [`record_version`](Self::record_version).
    pub fn version(&self, key: &ObjectKey) -> Option<String> {
        self.baselines.lock().get(key).and_then(|b| b.version.clone())
    }

    /// Forgets the Service's baseline: its next sync is a full one.
    pub fn forget(&self, key: &ObjectKey) {
        self.baselines.lock().remove(key);
    }

    /// Forgets a deleted Service entirely.
    pub fn delete_service(&self, key: &ObjectKey) {
        self.forget(key);
        self.pending.lock().remove(key);
    }
}

/// How long [`ChangeTracker::raced`] waits for the note of a change the
/// full recompute may already have seen.
pub const RACE_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Counter: syncs by how much they recomputed, labels `controller` and
/// `scope` = `full`, `changed`, or `fallback` (a changed-pods sync that
/// needed the full recompute after all, with its `reason`).
pub const INCREMENTAL_SYNCS_TOTAL: &str = "ecm_incremental_syncs_total";
/// Counter: changed-pods results that differed from the full recompute
/// (`--incremental-syncs verify` only), label `controller`. Should stay 0.
pub const INCREMENTAL_SYNC_MISMATCHES_TOTAL: &str = "ecm_incremental_sync_mismatches_total";

/// Describes the incremental-sync metrics to the exporter.
pub fn describe_metrics() {
    metrics::describe_counter!(
        INCREMENTAL_SYNCS_TOTAL,
        "Syncs by how much they recomputed: everything, or only the pods that changed."
    );
    metrics::describe_counter!(
        INCREMENTAL_SYNC_MISMATCHES_TOTAL,
        "Changed-pods sync results that differed from a full recompute (verify mode)."
    );
}

/// What a sync recomputed, the `scope` label of [`INCREMENTAL_SYNCS_TOTAL`]
/// (a fallback is counted by [`record_fallback`], with its reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every pod of the Service (`full`).
    Full,
    /// Only the pods that changed (`changed`).
    Changed,
}

/// A controller's label sets of [`INCREMENTAL_SYNCS_TOTAL`] for the two
/// [`Scope`]s, fixed at compile time so that counting a sync (every sync
/// does) allocates nothing:
///
/// ```
/// use ecm_controller::incremental::{Scope, ScopeLabels, record_scope};
/// static SCOPES: ScopeLabels = ScopeLabels::new("endpoints");
/// record_scope(&SCOPES, Scope::Changed);
/// ```
#[derive(Debug)]
pub struct ScopeLabels {
    full: [metrics::Label; 3],
    changed: [metrics::Label; 3],
}

impl ScopeLabels {
    /// The label sets of `controller`.
    pub const fn new(controller: &'static str) -> Self {
        Self {
            full: [
                metrics::Label::from_static_parts("controller", controller),
                metrics::Label::from_static_parts("scope", "full"),
                metrics::Label::from_static_parts("reason", ""),
            ],
            changed: [
                metrics::Label::from_static_parts("controller", controller),
                metrics::Label::from_static_parts("scope", "changed"),
                metrics::Label::from_static_parts("reason", ""),
            ],
        }
    }
}

/// Counts a sync that recomputed `scope`, under the controller of `labels`.
pub fn record_scope(labels: &'static ScopeLabels, scope: Scope) {
    let labels = match scope {
        Scope::Full => &labels.full,
        Scope::Changed => &labels.changed,
    };
    crate::outcome::static_counter(INCREMENTAL_SYNCS_TOTAL, labels).increment(1);
}

/// Counts a changed-pods sync of `controller` that fell back to the full
/// recompute, and why.
pub fn record_fallback(controller: &'static str, reason: &'static str) {
    tracing::debug!(controller, reason, "changed-pods sync needs a full recompute");
    metrics::counter!(INCREMENTAL_SYNCS_TOTAL, "controller" => controller, "scope" => "fallback", "reason" => reason)
        .increment(1);
}

/// Reports a changed-pods result of `controller` for `service` that differs
/// from the full recompute (`--incremental-syncs verify`): an error log
/// with both, a count, and in debug builds a panic, so that tests fail.
pub fn report_mismatch(
    controller: &'static str,
    service: &ObjectKey,
    incremental: &dyn std::fmt::Debug,
    full: &dyn std::fmt::Debug,
) {
    tracing::error!(
        controller,
        service = %service,
        ?incremental,
        ?full,
        "changed-pods sync differs from the full recompute; writing the full result"
    );
    metrics::counter!(INCREMENTAL_SYNC_MISMATCHES_TOTAL, "controller" => controller).increment(1);
    debug_assert!(
        false,
        "{controller}: changed-pods sync of {service} differs from the full recompute:\n{incremental:#?}\nfull:\n{full:#?}"
    );
}

#[cfg(test)]
mod tests;
