//! The last-change trigger time of a Service's endpoints (upstream's
//! `TriggerTimeTracker`).

use std::collections::HashMap;

use ecm_informer::ObjectKey;
use ecm_types::PodProjection;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;
use parking_lot::{Mutex, MutexGuard};

use crate::incremental::ChangedPods;

/// Remembers, per Service, the trigger times seen at its last sync, so the
/// next sync can tell which of its inputs moved since.
///
/// A pod's trigger time is the `lastTransitionTime` of its `Ready`
/// condition; the Service's own is its `creationTimestamp`. The result of
/// [`compute`](Self::compute) is the earliest trigger time that is newer than
/// the one remembered — `None` when nothing moved — except on the first sync
/// of a Service in this process, which yields the Service's creation time.
///
/// Like upstream, the value can be wrong when one object changes several
/// times between two syncs; it is an estimate for latency metrics, not a
/// correctness input. Safe to call from many workers, as long as one Service
/// is never computed concurrently (the work queue guarantees that).
#[derive(Debug, Default)]
pub struct TriggerTimeTracker {
    states: Mutex<HashMap<ObjectKey, ServiceState>>,
}

#[derive(Debug, Default)]
struct ServiceState {
    service_time: Option<Timestamp>,
    pod_times: HashMap<String, Timestamp>,
}

impl TriggerTimeTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Computes the trigger time for a sync of `service` selecting `pods`
    /// (every selected pod, before any filtering), and remembers the current
    /// times for the next call. Returns `None` when the annotation should be
    /// removed.
    pub fn compute<'a, I>(&self, service: &Service, pods: I) -> Option<Timestamp>
    where
        I: IntoIterator<Item = &'a PodProjection>,
    {
        let key = ObjectKey::of(service);
        let previous = self.lock().remove(&key);
        let known = previous.is_some();
        let previous = previous.unwrap_or_default();

        let mut earliest_change: Option<Timestamp> = None;
        let mut note = |time: Timestamp| {
            earliest_change = Some(earliest_change.map_or(time, |e| e.min(time)));
        };
        let mut pod_times = HashMap::new();
        for pod in pods {
            if let Some(time) = pod.trigger_time() {
                if previous.pod_times.get(pod.name()).is_none_or(|seen| time > *seen) {
                    note(time);
                }
                pod_times.insert(pod.name().to_owned(), time);
            }
        }
        let service_time = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(time) = service_time
            && previous.service_time.is_none_or(|seen| time > seen)
        {
            note(time);
        }
        self.lock().insert(
            key,
            ServiceState {
                service_time,
                pod_times,
            },
        );

        if known { earliest_change } else { service_time }
    }

    /// [`compute`](Self::compute) for a sync that recomputes only the pods
    /// in `changed`: the same answer as `compute` given every selected pod,
    /// provided the other pods are unchanged since the last call, at the
    /// cost of the changed pods only.
    pub fn compute_changed(&self, service: &Service, changed: &ChangedPods) -> Option<Timestamp> {
        let key = ObjectKey::of(service);
        let mut states = self.lock();
        let Some(state) = states.get_mut(&key) else {
            drop(states);
            return self.compute(service, changed.selected.iter().map(AsRef::as_ref));
        };
        let mut earliest_change: Option<Timestamp> = None;
        let mut note = |time: Timestamp| {
            earliest_change = Some(earliest_change.map_or(time, |e| e.min(time)));
        };
        let mut selected = changed.selected.iter().peekable();
        for name in &changed.names {
            let seen = state.pod_times.remove(name.as_str());
            // Both are in name order: the selected pods are a subsequence.
            let Some(pod) = selected.next_if(|pod| pod.name() == name) else {
                continue;
            };
            if let Some(time) = pod.trigger_time() {
                if seen.is_none_or(|seen| time > seen) {
                    note(time);
                }
                state.pod_times.insert(name.clone(), time);
            }
        }
        let service_time = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(time) = service_time
            && state.service_time.is_none_or(|seen| time > seen)
        {
            note(time);
        }
        state.service_time = service_time;
        earliest_change
    }

    /// Forgets a Service (called when it is deleted), so that a Service
    /// created again under the same name starts afresh.
    pub fn delete_service(&self, key: &ObjectKey) {
        self.lock().remove(key);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ObjectKey, ServiceState>> {
        // A poisoned lock only means another worker panicked mid-update of
        // a plain map; the map itself is still consistent.
        self.states.lock()
    }
}

#[cfg(test)]
mod tests {
    //! Upstream's `trigger_time_tracker_test.go` scenarios.
    use super::*;
    use ecm_types::fixtures::{at, pod, service};

    fn svc(created: i64) -> Service {
        service("tt", "my-service").created(at(created)).build()
    }

    fn ready_pod(name: &str, since: i64) -> PodProjection {
        pod("tt", name).ready_since(true, at(since)).projection()
    }

    #[test]
    fn new_service_without_pods_uses_creation_time() {
        assert_eq!(TriggerTimeTracker::new().compute(&svc(2), []), Some(at(2)));
    }

    #[test]
    fn new_service_with_existing_pods_uses_creation_time() {
        let pods = [ready_pod("pod1", 0), ready_pod("pod2", 1), ready_pod("pod3", 5)];
        assert_eq!(TriggerTimeTracker::new().compute(&svc(3), &pods), Some(at(3)));
    }

    #[test]
    fn added_pods_give_the_earliest_new_time() {
        let tracker = TriggerTimeTracker::new();
        assert_eq!(tracker.compute(&svc(0), []), Some(at(0)));
        assert_eq!(
            tracker.compute(&svc(0), &[ready_pod("pod1", 2), ready_pod("pod2", 1)]),
            Some(at(1))
        );
    }

    #[test]
    fn updated_pods_give_the_earliest_changed_time() {
        let tracker = TriggerTimeTracker::new();
        let pod3 = ready_pod("pod3", 3);
        assert_eq!(
            tracker.compute(&svc(0), &[ready_pod("pod1", 1), ready_pod("pod2", 2), pod3.clone()]),
            Some(at(0))
        );
        assert_eq!(
            tracker.compute(&svc(0), &[ready_pod("pod1", 5), ready_pod("pod2", 4), pod3]),
            Some(at(4))
        );
    }

    #[test]
    fn nothing_changed_gives_none() {
        let tracker = TriggerTimeTracker::new();
        let pods = [ready_pod("pod1", 1), ready_pod("pod2", 2), ready_pod("pod3", 3)];
        assert_eq!(tracker.compute(&svc(0), &pods), Some(at(0)));
        assert_eq!(tracker.compute(&svc(0), &pods), None);
    }

    #[test]
    fn pod_deleted_then_added_again_counts_as_new() {
        let tracker = TriggerTimeTracker::new();
        assert_eq!(
            tracker.compute(&svc(0), &[ready_pod("pod1", 1), ready_pod("pod2", 2)]),
            Some(at(0))
        );
        assert_eq!(tracker.compute(&svc(0), &[ready_pod("pod1", 1)]), None);
        assert_eq!(
            tracker.compute(&svc(0), &[ready_pod("pod1", 1), ready_pod("pod2", 4)]),
            Some(at(4))
        );
    }

    #[test]
    fn service_deleted_then_added_starts_afresh() {
        let tracker = TriggerTimeTracker::new();
        let pods = [ready_pod("pod1", 1), ready_pod("pod2", 2)];
        assert_eq!(tracker.compute(&svc(0), &pods), Some(at(0)));
        tracker.delete_service(&ObjectKey::new("tt", "my-service"));
        assert_eq!(tracker.compute(&svc(3), &pods), Some(at(3)));
    }

    #[test]
    fn service_spec_change_alone_gives_none() {
        let tracker = TriggerTimeTracker::new();
        let pods = [ready_pod("pod1", 1)];
        assert_eq!(tracker.compute(&svc(0), &pods), Some(at(0)));
        let changed = service("tt", "my-service").created(at(0)).port("", 80, 8080).build();
        assert_eq!(tracker.compute(&changed, &pods), None);
    }

    #[test]
    fn pods_without_ready_condition_contribute_nothing() {
        let tracker = TriggerTimeTracker::new();
        assert_eq!(tracker.compute(&svc(0), []), Some(at(0)));
        assert_eq!(tracker.compute(&svc(0), &[pod("tt", "p").projection()]), None);
    }

    #[test]
    fn changed_pods_alone_give_what_every_pod_gives() {
        use std::collections::BTreeMap;
        use std::sync::Arc;

        // Each step: pods whose times change (None: the pod leaves).
        let steps: &[&[(&str, Option<i64>)]] = &[
            &[("pod2", Some(4))],
            &[("pod1", None), ("pod3", Some(9))],
            &[("pod1", Some(1))],
            &[("pod4", Some(6)), ("pod3", Some(9))],
            &[],
            &[("pod2", None), ("pod4", Some(5))],
        ];
        let (full, incremental) = (TriggerTimeTracker::new(), TriggerTimeTracker::new());
        let mut pods: BTreeMap<&str, PodProjection> = [("pod1", 1), ("pod2", 2), ("pod3", 3)]
            .map(|(n, t)| (n, ready_pod(n, t)))
            .into();
        assert_eq!(
            full.compute(&svc(0), pods.values()),
            incremental.compute(&svc(0), pods.values())
        );
        for step in steps {
            let mut changed = ChangedPods::default();
            for (name, time) in *step {
                changed.names.insert((*name).to_owned());
                match time {
                    Some(t) => pods.insert(name, ready_pod(name, *t)),
                    None => pods.remove(name),
                };
            }
            changed.selected = changed
                .names
                .iter()
                .filter_map(|n| pods.get(n.as_str()).cloned().map(Arc::new))
                .collect();
            assert_eq!(
                incremental.compute_changed(&svc(0), &changed),
                full.compute(&svc(0), pods.values()),
                "after {step:?}"
            );
        }
    }
}
