//! A fake EndpointSlice API behind `MockObjectWriter`, event capture through
//! `MockEventRecorder`, metric capture, and builders for the reconciler
//! tests.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use ecm_controller::{EventRecord, MockEventRecorder, MockObjectWriter, WriteError, Writers};
use ecm_endpointslice::{NodeLookup, Reconciler, ReconcilerConfig};
use ecm_types::PodProjection;
use ecm_types::endpoint_slice::endpoints;
use ecm_types::wellknown::LABEL_TOPOLOGY_ZONE;
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// A write verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    /// POST.
    Create,
    /// PUT.
    Update,
    /// DELETE.
    Delete,
}

/// One call the reconciler made.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    /// The verb.
    pub(crate) verb: Verb,
    /// The slice name (for creates: the name the fake API gave it).
    pub(crate) name: String,
    /// The object sent (creates and updates).
    pub(crate) sent: Option<EndpointSlice>,
}

#[derive(Default)]
struct State {
    slices: BTreeMap<String, EndpointSlice>,
    created: u64,
    resource_version: u64,
    calls: Vec<Call>,
    faults: VecDeque<(Verb, WriteError)>,
}

impl State {
    fn next_resource_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    fn fault(&mut self, verb: Verb) -> Option<WriteError> {
        let index = self.faults.iter().position(|(v, _)| *v == verb)?;
        self.faults.remove(index).map(|(_, error)| error)
    }
}

/// Five lowercase letters from a counter, as the API server's random
/// `generateName` suffix (deterministic here).
fn suffix(mut n: u64) -> String {
    let mut letters = [b'a'; 5];
    for letter in letters.iter_mut().rev() {
        *letter = b'a' + (n % 26) as u8;
        n /= 26;
    }
    String::from_utf8_lossy(&letters).into_owned()
}

/// An in-memory EndpointSlice store answering like the API server:
/// `generateName`, uid, generation (1 on create, +1 on update),
/// resourceVersion and optimistic concurrency, 404s.
#[derive(Clone, Default)]
pub(crate) struct FakeApi {
    state: Arc<Mutex<State>>,
}

impl FakeApi {
    /// An empty store.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Stores `slices` as they are (without recording calls); missing uids,
    /// generations and resourceVersions are filled in.
    pub(crate) fn seed(&self, slices: &[EndpointSlice]) -> Vec<EndpointSlice> {
        let mut state = self.state();
        slices
            .iter()
            .map(|slice| {
                let mut stored = slice.clone();
                let name = stored.metadata.name.clone().unwrap();
                stored.metadata.uid.get_or_insert_with(|| format!("uid-{name}"));
                stored.metadata.generation.get_or_insert(1);
                let rv = state.next_resource_version();
                stored.metadata.resource_version = Some(rv);
                state.slices.insert(name, stored.clone());
                stored
            })
            .collect()
    }

    /// The stored slices, in name order (what a lister would return).
    pub(crate) fn slices(&self) -> Vec<EndpointSlice> {
        self.state().slices.values().cloned().collect()
    }

    /// The calls made so far.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The verbs of the calls made so far.
    pub(crate) fn verbs(&self) -> Vec<Verb> {
        self.state().calls.iter().map(|c| c.verb).collect()
    }

    /// How many calls of each verb were made: (create, update, delete).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let verbs = self.verbs();
        let count = |v| verbs.iter().filter(|x| **x == v).count();
        (count(Verb::Create), count(Verb::Update), count(Verb::Delete))
    }

    /// Forgets the calls made so far.
    pub(crate) fn clear_calls(&self) {
        self.state().calls.clear();
    }

    /// Makes the next call of `verb` fail with `error`.
    pub(crate) fn fail_next(&self, verb: Verb, error: WriteError) {
        self.state().faults.push_back((verb, error));
    }

    /// A `MockObjectWriter` answering from this store.
    pub(crate) fn writer(&self) -> Arc<MockObjectWriter<EndpointSlice>> {
        let mut mock = MockObjectWriter::<EndpointSlice>::new();
        let state = Arc::clone(&self.state);
        mock.expect_create().returning(move |namespace, slice| {
            let mut state = state.lock().unwrap();
            assert_eq!(
                slice.metadata.namespace.as_deref(),
                Some(namespace),
                "create in the slice's namespace"
            );
            assert!(
                slice.metadata.resource_version.is_none(),
                "a create carries no resourceVersion"
            );
            let name = match (&slice.metadata.name, &slice.metadata.generate_name) {
                (Some(name), _) => name.clone(),
                (None, Some(prefix)) => {
                    state.created += 1;
                    format!("{prefix}{}", suffix(state.created))
                }
                (None, None) => panic!("create without name or generateName"),
            };
            state.calls.push(Call {
                verb: Verb::Create,
                name: name.clone(),
                sent: Some(slice.clone()),
            });
            if let Some(error) = state.fault(Verb::Create) {
                return Err(error);
            }
            if state.slices.contains_key(&name) {
                return Err(WriteError::AlreadyExists(name));
            }
            let mut stored = slice.clone();
            stored.metadata.name = Some(name.clone());
            stored.metadata.generate_name = None;
            stored.metadata.uid = Some(format!("uid-{name}"));
            stored.metadata.generation = Some(1);
            stored.metadata.resource_version = Some(state.next_resource_version());
            state.slices.insert(name, stored.clone());
            Ok(stored.metadata)
        });
        let state = Arc::clone(&self.state);
        mock.expect_update().returning(move |_namespace, slice| {
            let mut state = state.lock().unwrap();
            let name = slice.metadata.name.clone().expect("an update names its slice");
            state.calls.push(Call {
                verb: Verb::Update,
                name: name.clone(),
                sent: Some(slice.clone()),
            });
            if let Some(error) = state.fault(Verb::Update) {
                return Err(error);
            }
            let Some(current) = state.slices.get(&name).cloned() else {
                return Err(WriteError::NotFound(name));
            };
            if slice.metadata.resource_version.is_some()
                && slice.metadata.resource_version != current.metadata.resource_version
            {
                return Err(WriteError::Conflict(name));
            }
            let mut stored = slice.clone();
            stored.metadata.uid.clone_from(&current.metadata.uid);
            stored.metadata.generation = Some(current.metadata.generation.unwrap_or_default() + 1);
            stored.metadata.resource_version = Some(state.next_resource_version());
            state.slices.insert(name, stored.clone());
            Ok(stored.metadata)
        });
        let state = Arc::clone(&self.state);
        mock.expect_delete().returning(move |_namespace, name| {
            let mut state = state.lock().unwrap();
            state.calls.push(Call {
                verb: Verb::Delete,
                name: name.to_owned(),
                sent: None,
            });
            if let Some(error) = state.fault(Verb::Delete) {
                return Err(error);
            }
            match state.slices.remove(name) {
                Some(_) => Ok(()),
                None => Err(WriteError::NotFound(name.to_owned())),
            }
        });
        Arc::new(mock)
    }
}

/// A `MockEventRecorder` that keeps every event.
pub(crate) fn event_sink() -> (Arc<MockEventRecorder>, Arc<Mutex<Vec<EventRecord>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut mock = MockEventRecorder::new();
    let sink = Arc::clone(&events);
    mock.expect_record()
        .returning(move |event| sink.lock().unwrap().push(event));
    (Arc::new(mock), events)
}

/// A Ready node named `name` in `zone` (no zone label when `None`) with
/// `cpu` allocatable.
pub(crate) fn node(name: &str, zone: Option<&str>, cpu: &str) -> Node {
    let mut node = Node::default();
    node.metadata.name = Some(name.to_owned());
    node.metadata.labels = zone.map(|z| BTreeMap::from([(LABEL_TOPOLOGY_ZONE.to_owned(), z.to_owned())]));
    node.status = Some(NodeStatus {
        conditions: Some(vec![NodeCondition {
            type_: "Ready".to_owned(),
            status: "True".to_owned(),
            ..NodeCondition::default()
        }]),
        allocatable: Some(BTreeMap::from([("cpu".to_owned(), Quantity(cpu.to_owned()))])),
        ..NodeStatus::default()
    });
    node
}

/// A node lookup over `nodes`.
pub(crate) fn nodes(nodes: &[Node]) -> Arc<dyn NodeLookup> {
    let nodes: Vec<Arc<Node>> = nodes.iter().cloned().map(Arc::new).collect();
    Arc::new(move |name: &str| nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name)).cloned())
}

/// Everything a reconciler test needs.
pub(crate) struct Harness {
    /// The fake API.
    pub(crate) api: FakeApi,
    /// The reconciler under test.
    pub(crate) reconciler: Reconciler,
    /// Events recorded.
    pub(crate) events: Arc<Mutex<Vec<EventRecord>>>,
}

impl Harness {
    /// A reconciler with at most `max` endpoints per slice over `node_list`.
    pub(crate) fn new(max: usize, node_list: &[Node]) -> Self {
        let api = FakeApi::new();
        let (recorder, events) = event_sink();
        let writers = Writers {
            objects: api.writer(),
            events: recorder,
        };
        let reconciler = Reconciler::new(
            ReconcilerConfig::default().max_endpoints_per_slice(max),
            writers,
            nodes(node_list),
        );
        Self {
            api,
            reconciler,
            events,
        }
    }

    /// Reconciles `svc` against the slices stored in the fake API.
    pub(crate) fn reconcile(
        &self,
        svc: &Service,
        pods: &[PodProjection],
    ) -> Result<(), ecm_endpointslice::ReconcileErrors> {
        let existing = self.api.slices();
        block_on(self.reconciler.reconcile(svc, pods, &existing, None))
    }

    /// Reconciles `svc` against `existing`, as listed.
    pub(crate) fn reconcile_with(
        &self,
        svc: &Service,
        pods: &[PodProjection],
        existing: &[EndpointSlice],
    ) -> Result<(), ecm_endpointslice::ReconcileErrors> {
        block_on(self.reconciler.reconcile(svc, pods, existing, None))
    }

    /// The events recorded so far, as (reason, message).
    pub(crate) fn events(&self) -> Vec<(String, String)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| (e.reason.clone(), e.message.clone()))
            .collect()
    }
}

/// Runs a future to completion on a current-thread runtime (so that a
/// thread-local metrics recorder sees everything it records).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// The endpoint counts of `slices`, sorted.
pub(crate) fn sizes(slices: &[EndpointSlice]) -> Vec<usize> {
    let mut sizes: Vec<usize> = slices.iter().map(|s| endpoints(s).len()).collect();
    sizes.sort_unstable();
    sizes
}

/// Metric values captured while running a closure under a local
/// `DebuggingRecorder`, keyed `name` or `name{label=value,...}`.
#[derive(Debug, Default)]
pub(crate) struct Captured(HashMap<String, DebugValue>);

/// Runs `f` with a fresh local metrics recorder.
pub(crate) fn capture<T>(f: impl FnOnce() -> T) -> (T, Captured) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let result = metrics::with_local_recorder(&recorder, f);
    let values = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            labels.sort();
            let id = if labels.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), labels.join(","))
            };
            (id, value)
        })
        .collect();
    (result, Captured(values))
}

/// The metric values upstream's reconciler tests check (`expectMetrics`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Expected {
    pub(crate) desired_slices: f64,
    pub(crate) actual_slices: f64,
    pub(crate) desired_endpoints: f64,
    pub(crate) added_per_sync: f64,
    pub(crate) removed_per_sync: f64,
    pub(crate) created: u64,
    pub(crate) updated: u64,
    pub(crate) deleted: u64,
    pub(crate) changed_per_sync: f64,
    pub(crate) changed_per_sync_topology: f64,
    pub(crate) changed_per_sync_prefer_close: f64,
}

impl Captured {
    fn gauge(&self, id: &str) -> f64 {
        match self.0.get(id) {
            Some(DebugValue::Gauge(v)) => v.0,
            _ => 0.0,
        }
    }

    fn counter(&self, id: &str) -> u64 {
        match self.0.get(id) {
            Some(DebugValue::Counter(v)) => *v,
            _ => 0,
        }
    }

    /// The sum of a histogram's observations (what upstream's
    /// `GetHistogramMetricValue` returns).
    fn histogram_sum(&self, id: &str) -> f64 {
        match self.0.get(id) {
            Some(DebugValue::Histogram(v)) => v.iter().map(|f| f.0).sum(),
            _ => 0.0,
        }
    }

    /// The values upstream's tests compare.
    pub(crate) fn summary(&self) -> Expected {
        let changed = |topology: &str, td: &str| {
            self.histogram_sum(&format!(
                "endpoint_slice_controller_endpointslices_changed_per_sync{{topology={topology},traffic_distribution={td}}}"
            ))
        };
        Expected {
            desired_slices: self.gauge("endpoint_slice_controller_desired_endpoint_slices"),
            actual_slices: self.gauge("endpoint_slice_controller_num_endpoint_slices"),
            desired_endpoints: self.gauge("endpoint_slice_controller_endpoints_desired"),
            added_per_sync: self.histogram_sum("endpoint_slice_controller_endpoints_added_per_sync"),
            removed_per_sync: self.histogram_sum("endpoint_slice_controller_endpoints_removed_per_sync"),
            created: self.counter("endpoint_slice_controller_changes{operation=create}"),
            updated: self.counter("endpoint_slice_controller_changes{operation=update}"),
            deleted: self.counter("endpoint_slice_controller_changes{operation=delete}"),
            changed_per_sync: changed("Disabled", ""),
            changed_per_sync_topology: changed("Auto", ""),
            changed_per_sync_prefer_close: changed("Disabled", "PreferClose"),
        }
    }

    /// A gauge of services per traffic distribution.
    pub(crate) fn services_with_traffic_distribution(&self, value: &str) -> f64 {
        self.gauge(&format!(
            "endpoint_slice_controller_services_count_by_traffic_distribution{{traffic_distribution={value}}}"
        ))
    }
}
