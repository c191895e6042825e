//! Write churn of the EndpointSlice reconciler for one Service with 10 000 endpoints: how many
//! slice writes a pod change and a whole rollout cost, and how long one reconcile takes.
//!
//! The reconciler writes through an in-memory API (`MemoryApi`) that answers like the API
//! server (names for `generateName`, generation and resourceVersion bumps, optimistic
//! concurrency, 404s) and counts every create, update and delete. After each reconcile the
//! stored slices are fed back as the existing slices, as the informer cache would be once the
//! writes came back through the watch.
//!
//! Part one, run first and printed as tables, counts writes:
//!
//! * converging 10 000 ready pods (100 creates at the default 100 endpoints per slice);
//! * single pod changes — a readiness flip, a pod replaced by one with a new name and IP, a
//!   StatefulSet-style recreate (same name, new IP) — each of which must cost exactly one
//!   update;
//! * full rollouts replacing all 10 000 pods in waves of 1 %, 10 % and 25 %, under three models
//!   of how the changes reach the controller, with old pods removed either in slice order (the
//!   best case) or scattered (pseudo-random, as a Deployment's scale-down, which knows nothing
//!   of slices, picks them). Each is compared with two lower bounds summed over the syncs:
//!   ⌈endpoint changes / 100⌉, where adding, removing or changing the readiness of one endpoint
//!   is one change, and the floor no placement can go below given the slices as they are
//!   (every slice holding an endpoint to remove or change must be written).
//!
//! The exact counts (one update per pod change, 100 creates to converge, nothing written in the
//! steady state, a converged and well-formed end state after every rollout, no more writes than
//! the floor when old pods go in slice order) are assertions: the benchmark panics if the
//! reconciler regresses.
//!
//! Part two times one reconcile of the 10 000-pod Service with criterion: planned from
//! every pod, and, for single pod changes, from the changed pods alone (`plan_changed`, what a
//! sync after pod changes runs).
//!
//! Run with `cargo bench -p ecm-endpointslice --bench churn`.

// A benchmark whose fixtures cannot be built, or whose write counts are wrong, must stop
// loudly; its tables are its output.
#![allow(clippy::expect_used, clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use ecm_controller::{ChangedPods, EventRecord, EventRecorder, ObjectWriter, WriteError, Writers};
use ecm_endpointslice::{NodeLookup, Reconciler, ReconcilerConfig};
use ecm_types::PodProjection;
use ecm_types::endpoint_slice::endpoints;
use ecm_types::fixtures::{pod, service};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::runtime::Runtime;

/// Pods behind the Service.
const PODS: usize = 10_000;
/// Endpoints per slice (kube-controller-manager's default, which `ReconcilerConfig` keeps).
const MAX: usize = 100;
/// Nodes the pods are spread over.
const NODES: usize = 10;
const NAMESPACE: &str = "default";

// ---------------------------------------------------------------------------------------------
// The in-memory API.

/// Writes counted by verb.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Writes {
    creates: usize,
    updates: usize,
    deletes: usize,
}

impl Writes {
    const fn new(creates: usize, updates: usize, deletes: usize) -> Self {
        Self {
            creates,
            updates,
            deletes,
        }
    }

    fn total(self) -> usize {
        self.creates + self.updates + self.deletes
    }

    fn since(self, before: Self) -> Self {
        Self::new(
            self.creates - before.creates,
            self.updates - before.updates,
            self.deletes - before.deletes,
        )
    }
}

#[derive(Default)]
struct State {
    slices: BTreeMap<String, EndpointSlice>,
    generated: u64,
    resource_version: u64,
    writes: Writes,
}

impl State {
    fn next_resource_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }
}

/// An EndpointSlice API in memory. With `keep`, it stores what is written and checks
/// resourceVersions (when sent) and existence as the API server does; without, it only answers and counts
/// (for timing the same reconcile over and over against a fixed cache).
struct MemoryApi {
    keep: bool,
    state: Mutex<State>,
}

impl MemoryApi {
    fn new(keep: bool) -> Arc<Self> {
        Arc::new(Self {
            keep,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("memory API lock")
    }

    fn writes(&self) -> Writes {
        self.state().writes
    }

    /// The stored slices in name order, as a lister would hand them to a sync.
    fn slices(&self) -> Vec<EndpointSlice> {
        self.state().slices.values().cloned().collect()
    }
}

#[async_trait]
impl ObjectWriter<EndpointSlice> for MemoryApi {
    async fn create(&self, _namespace: &str, object: &EndpointSlice) -> Result<ObjectMeta, WriteError> {
        let mut state = self.state();
        state.writes.creates += 1;
        let name = if let Some(name) = &object.metadata.name {
            name.clone()
        } else {
            state.generated += 1;
            let prefix = object.metadata.generate_name.as_deref().unwrap_or_default();
            format!("{prefix}{:05}", state.generated)
        };
        if self.keep && state.slices.contains_key(&name) {
            return Err(WriteError::AlreadyExists(name));
        }
        let mut stored = object.clone();
        stored.metadata.name = Some(name.clone());
        stored.metadata.generate_name = None;
        stored.metadata.uid = Some(format!("uid-{name}"));
        stored.metadata.generation = Some(1);
        stored.metadata.resource_version = Some(state.next_resource_version());
        if self.keep {
            state.slices.insert(name, stored.clone());
        }
        Ok(stored.metadata)
    }

    async fn update(&self, _namespace: &str, object: &EndpointSlice) -> Result<ObjectMeta, WriteError> {
        let mut state = self.state();
        state.writes.updates += 1;
        let name = object.metadata.name.clone().unwrap_or_default();
        let mut stored = object.clone();
        if self.keep {
            let Some(current) = state.slices.get(&name) else {
                return Err(WriteError::NotFound(name));
            };
            // No resourceVersion is an unconditional update, as a recycled slice sends.
            if object.metadata.resource_version.is_some()
                && object.metadata.resource_version != current.metadata.resource_version
            {
                return Err(WriteError::Conflict(name));
            }
            stored.metadata.generation = Some(current.metadata.generation.unwrap_or_default() + 1);
        } else {
            stored.metadata.generation = Some(object.metadata.generation.unwrap_or_default() + 1);
        }
        stored.metadata.resource_version = Some(state.next_resource_version());
        if self.keep {
            state.slices.insert(name, stored.clone());
        }
        Ok(stored.metadata)
    }

    async fn delete(&self, _namespace: &str, name: &str) -> Result<(), WriteError> {
        let mut state = self.state();
        state.writes.deletes += 1;
        if self.keep && state.slices.remove(name).is_none() {
            return Err(WriteError::NotFound(name.to_owned()));
        }
        Ok(())
    }
}

/// Drops events (the benchmark uses no topology hints, so none are expected).
struct NoEvents;

#[async_trait]
impl EventRecorder for NoEvents {
    async fn record(&self, _event: EventRecord) {}
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("benchmark runtime")
}

fn web_service() -> Service {
    service(NAMESPACE, "web")
        .selector([("app", "web")])
        .port("http", 80, 8080)
        .build()
}

fn node_lookup() -> Arc<dyn NodeLookup> {
    let nodes: HashMap<String, Arc<Node>> = (0..NODES)
        .map(|i| {
            let mut node = Node::default();
            node.metadata.name = Some(format!("node-{i}"));
            (format!("node-{i}"), Arc::new(node))
        })
        .collect();
    Arc::new(move |name: &str| nodes.get(name).cloned())
}

fn reconciler(api: &Arc<MemoryApi>) -> Reconciler {
    let writers = Writers {
        objects: Arc::clone(api) as Arc<dyn ObjectWriter<EndpointSlice>>,
        events: Arc::new(NoEvents),
    };
    Reconciler::new(ReconcilerConfig::default(), writers, node_lookup())
}

fn pod_name(generation: usize, index: usize) -> String {
    format!("web-{generation}-{index}")
}

/// Pod `index` of ReplicaSet `generation`, with an IP unique to the pair (generation < 250).
fn web_pod(generation: usize, index: usize, ready: bool) -> PodProjection {
    let ip = format!("10.{}.{}.{}", generation + 1, index / 250, index % 250 + 1);
    pod(NAMESPACE, &pod_name(generation, index))
        .labels([("app", "web")])
        .ip(&ip)
        .ready(ready)
        .node(&format!("node-{}", index % NODES))
        .projection()
}

fn generation_pods(generation: usize) -> Vec<PodProjection> {
    (0..PODS).map(|i| web_pod(generation, i, true)).collect()
}

/// A fixed pseudo-random permutation of `0..n` (xorshift, Fisher–Yates).
fn shuffled(n: usize) -> Vec<usize> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

// ---------------------------------------------------------------------------------------------
// A Service, its pods and the API, reconciled as a controller would.

struct Cluster {
    rt: Runtime,
    svc: Service,
    api: Arc<MemoryApi>,
    reconciler: Reconciler,
    pods: BTreeMap<String, PodProjection>,
    reconciles: usize,
    /// Σ ⌈(added + changed + removed) / MAX⌉ over the syncs.
    bound: usize,
    /// Σ max(slices holding an endpoint to remove or change, ⌈new endpoints / MAX⌉) over the
    /// syncs: the writes no placement can avoid given the slices as they are.
    floor: usize,
    busy: Duration,
    most_slices: usize,
}

impl Cluster {
    fn new() -> Self {
        let api = MemoryApi::new(true);
        Self {
            rt: runtime(),
            svc: web_service(),
            reconciler: reconciler(&api),
            api,
            pods: BTreeMap::new(),
            reconciles: 0,
            bound: 0,
            floor: 0,
            busy: Duration::ZERO,
            most_slices: 0,
        }
    }

    /// A cluster with generation 0's 10 000 ready pods, converged.
    fn converged() -> Self {
        let mut cluster = Self::new();
        for p in generation_pods(0) {
            cluster.put(p);
        }
        let writes = cluster.sync(PODS, 0);
        assert_eq!(writes, Writes::new(PODS / MAX, 0, 0), "converging {PODS} pods");
        cluster
    }

    fn put(&mut self, p: PodProjection) {
        self.pods.insert(p.name().to_owned(), p);
    }

    fn remove(&mut self, name: &str) {
        self.pods.remove(name).expect("removing a pod that exists");
    }

    /// Puts generation-1 pods `indices`, ready or not.
    fn add_new(&mut self, indices: std::ops::Range<usize>, ready: bool) {
        for i in indices {
            self.put(web_pod(1, i, ready));
        }
    }

    fn remove_all(&mut self, names: &[String]) {
        for name in names {
            self.remove(name);
        }
    }

    /// One sync of the Service, after `added` endpoints were added or changed and `removed`
    /// removed since the last: reconciles against the stored slices and returns the writes it
    /// made.
    ///
    /// Adds the sync's two lower bounds: `bound`, ⌈(added + removed) / MAX⌉, counts every
    /// endpoint change against the slice size; `floor` is what no placement can avoid given
    /// the slices as they are — every slice holding an endpoint to remove or change must be
    /// written, and each write adds at most `MAX` new endpoints.
    fn sync(&mut self, added: usize, removed: usize) -> Writes {
        let before = self.api.writes();
        let existing = self.api.slices();
        self.floor += self.floor_of(&existing);
        let start = Instant::now();
        self.rt
            .block_on(
                self.reconciler
                    .reconcile(&self.svc, self.pods.values(), &existing, None),
            )
            .expect("reconcile");
        self.busy += start.elapsed();
        self.reconciles += 1;
        self.bound += (added + removed).div_ceil(MAX);
        self.most_slices = self.most_slices.max(self.api.state().slices.len());
        self.api.writes().since(before)
    }

    /// Asserts that the stored slices hold exactly the current pods, with their IPs and
    /// readiness, at most `MAX` to a slice, and that another sync writes nothing.
    fn assert_converged(&mut self, what: &str) {
        let slices = self.api.slices();
        let mut seen = BTreeSet::new();
        for slice in &slices {
            let list = endpoints(slice);
            assert!(
                !list.is_empty() && list.len() <= MAX,
                "{what}: slice of {} endpoints",
                list.len()
            );
            for endpoint in list {
                let name = endpoint
                    .target_ref
                    .as_ref()
                    .and_then(|t| t.name.clone())
                    .unwrap_or_default();
                let p = self
                    .pods
                    .get(&name)
                    .unwrap_or_else(|| panic!("{what}: stale endpoint {name}"));
                let ready = endpoint.conditions.as_ref().and_then(|c| c.ready).unwrap_or_default();
                assert_eq!(ready, p.is_ready(), "{what}: readiness of {name}");
                assert_eq!(
                    endpoint.addresses.first(),
                    p.pod_ip.as_ref(),
                    "{what}: address of {name}"
                );
                assert!(seen.insert(name.clone()), "{what}: {name} twice");
            }
        }
        assert_eq!(seen.len(), self.pods.len(), "{what}: endpoints missing");
        let saved = (self.reconciles, self.bound, self.floor, self.busy);
        assert_eq!(self.sync(0, 0), Writes::default(), "{what}: steady state writes");
        (self.reconciles, self.bound, self.floor, self.busy) = saved;
    }

    /// max(slices holding an endpoint whose pod is gone, has another IP or another readiness,
    /// ⌈endpoints of pods in no slice / MAX⌉).
    fn floor_of(&self, existing: &[EndpointSlice]) -> usize {
        let mut placed = BTreeSet::new();
        let mut touched = 0;
        for slice in existing {
            let mut stale = false;
            for endpoint in endpoints(slice) {
                let name = endpoint
                    .target_ref
                    .as_ref()
                    .and_then(|t| t.name.as_deref())
                    .unwrap_or_default();
                let address = endpoint.addresses.first().map(String::as_str).unwrap_or_default();
                let ready = endpoint.conditions.as_ref().and_then(|c| c.ready).unwrap_or_default();
                match self.pods.get(name) {
                    Some(p) if p.pod_ip.as_deref() == Some(address) => {
                        placed.insert(name);
                        stale |= p.is_ready() != ready;
                    }
                    _ => stale = true,
                }
            }
            touched += usize::from(stale);
        }
        let new = self.pods.len() - placed.len();
        touched.max(new.div_ceil(MAX))
    }

    fn slice_count(&self) -> usize {
        self.api.state().slices.len()
    }

    /// Names of generation-0 pods still present, in the order of the stored slices.
    fn old_pods_in_slice_order(&self) -> Vec<String> {
        self.api
            .slices()
            .iter()
            .flat_map(|s| endpoints(s).iter())
            .filter_map(|e| e.target_ref.as_ref().and_then(|t| t.name.clone()))
            .filter(|name| name.starts_with("web-0-") && self.pods.contains_key(name))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Part one: write counts.

fn print_writes_row(what: &str, writes: Writes) {
    println!(
        "| {what} | {} | {} | {} | {} |",
        writes.creates,
        writes.updates,
        writes.deletes,
        writes.total()
    );
}

/// Single pod changes on a converged 10 000-pod Service: each must cost exactly one update.
fn pod_changes() {
    let one_update = Writes::new(0, 1, 0);
    println!("\nSingle pod changes, {PODS} ready pods in {} slices", PODS / MAX);
    println!("\n| change | creates | updates | deletes | total |\n|---|---:|---:|---:|---:|");
    let mut cluster = Cluster::converged();
    print_writes_row("converge from no slices", Writes::new(PODS / MAX, 0, 0));
    cluster.assert_converged("converged");
    print_writes_row("steady state (nothing changed)", Writes::default());

    let step = |cluster: &mut Cluster, what: &str, added: usize, removed: usize| {
        let writes = cluster.sync(added, removed);
        print_writes_row(what, writes);
        assert_eq!(writes, one_update, "{what}");
        cluster.assert_converged(what);
    };

    cluster.put(web_pod(0, 4242, false));
    step(&mut cluster, "pod 4242 turns not ready", 1, 0);
    cluster.put(web_pod(0, 4242, true));
    step(&mut cluster, "pod 4242 turns ready again", 1, 0);

    // A pod replaced by another with a new name and IP, both seen in one sync.
    cluster.remove(&pod_name(0, 17));
    cluster.put(web_pod(200, 17, true));
    step(
        &mut cluster,
        "pod 17 replaced by a new pod (new name and IP), one sync",
        1,
        1,
    );

    // The same, as three syncs: old pod gone, new pod not ready, new pod ready.
    cluster.remove(&pod_name(0, 18));
    step(&mut cluster, "pod 18 deleted", 0, 1);
    cluster.put(web_pod(200, 18, false));
    step(&mut cluster, "its replacement appears, not ready", 1, 0);
    cluster.put(web_pod(200, 18, true));
    step(&mut cluster, "its replacement turns ready", 1, 0);

    // A StatefulSet-style recreate: same name, new IP.
    let name = pod_name(0, 19);
    let recreated = pod(NAMESPACE, &name)
        .labels([("app", "web")])
        .uid("uid-recreated")
        .ip("10.250.0.19")
        .ready(true)
        .node("node-3")
        .projection();
    cluster.put(recreated);
    step(
        &mut cluster,
        "pod 19 recreated with the same name and a new IP, one sync",
        1,
        1,
    );
}

/// How the rollout's pod changes reach the controller.
#[derive(Clone, Copy, Debug)]
enum Model {
    /// Per wave: the new pods appear ready (one sync), then the old pods go (one sync).
    Surge,
    /// Per wave: the new pods appear not ready (one sync), turn ready (one sync), then the old
    /// pods go (one sync).
    SurgeNotReady,
    /// Per wave: old pods go and new ready pods appear in the same sync.
    Replace,
}

impl Model {
    fn label(self) -> &'static str {
        match self {
            Self::Surge => "add ready, then remove",
            Self::SurgeNotReady => "add not ready, ready, remove",
            Self::Replace => "remove + add in one sync",
        }
    }
}

/// Which old pods each wave removes.
#[derive(Clone, Copy, Debug)]
enum Victims {
    /// The first old pods in slice order: whole slices empty out.
    SliceOrder,
    /// A fixed pseudo-random order.
    Scattered,
}

impl Victims {
    fn label(self) -> &'static str {
        match self {
            Self::SliceOrder => "slice order",
            Self::Scattered => "scattered",
        }
    }
}

struct Rollout {
    writes: Writes,
    reconciles: usize,
    changes: usize,
    bound: usize,
    floor: usize,
    most_slices: usize,
    end_slices: usize,
    busy: Duration,
}

/// Replaces all 10 000 generation-0 pods by generation-1 pods in waves of `batch`.
fn rollout(batch: usize, model: Model, victims: Victims) -> Rollout {
    let mut cluster = Cluster::converged();
    let before = cluster.api.writes();
    cluster.busy = Duration::ZERO;
    cluster.reconciles = 0;
    cluster.bound = 0;
    cluster.floor = 0;
    let scattered = shuffled(PODS);
    let mut changes = 0;
    for wave in 0..PODS / batch {
        let new = wave * batch..(wave + 1) * batch;
        let old: Vec<String> = match victims {
            Victims::SliceOrder => cluster.old_pods_in_slice_order().into_iter().take(batch).collect(),
            Victims::Scattered => scattered[new.clone()].iter().map(|&i| pod_name(0, i)).collect(),
        };
        match model {
            Model::Surge => {
                cluster.add_new(new, true);
                cluster.sync(batch, 0);
                cluster.remove_all(&old);
                cluster.sync(0, batch);
                changes += 2 * batch;
            }
            Model::SurgeNotReady => {
                cluster.add_new(new.clone(), false);
                cluster.sync(batch, 0);
                cluster.add_new(new, true);
                cluster.sync(batch, 0);
                cluster.remove_all(&old);
                cluster.sync(0, batch);
                changes += 3 * batch;
            }
            Model::Replace => {
                cluster.remove_all(&old);
                cluster.add_new(new, true);
                cluster.sync(batch, batch);
                changes += 2 * batch;
            }
        }
    }
    let what = format!("rollout {batch} {model:?} {victims:?}");
    let writes = cluster.api.writes().since(before);
    assert!(
        writes.total() >= cluster.floor,
        "{what}: the floor is not a lower bound"
    );
    if matches!(victims, Victims::SliceOrder) {
        assert_eq!(writes.total(), cluster.floor, "{what}: writes above the floor");
    }
    assert!(
        cluster.pods.keys().all(|name| name.starts_with("web-1-")),
        "{what}: old pods left"
    );
    cluster.assert_converged(&what);
    assert_eq!(cluster.slice_count(), PODS / MAX, "{what}: slices left");
    Rollout {
        writes,
        reconciles: cluster.reconciles,
        changes,
        bound: cluster.bound,
        floor: cluster.floor,
        most_slices: cluster.most_slices,
        end_slices: cluster.slice_count(),
        busy: cluster.busy,
    }
}

fn rollouts() {
    println!("\nFull rollouts of {PODS} pods, {MAX} endpoints per slice");
    println!(
        "\n| wave | model | old pods removed in | syncs | creates | updates | deletes | writes \
         | endpoint changes | bound (changes / {MAX}) | writes / bound | floor given layout | writes / floor \
         | most slices | slices after | mean sync |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for percent in [1, 10, 25] {
        for model in [Model::Surge, Model::SurgeNotReady, Model::Replace] {
            for victims in [Victims::SliceOrder, Victims::Scattered] {
                let r = rollout(PODS * percent / 100, model, victims);
                println!(
                    "| {percent} % | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {:.2} | {} | {} | {:.1} ms |",
                    model.label(),
                    victims.label(),
                    r.reconciles,
                    r.writes.creates,
                    r.writes.updates,
                    r.writes.deletes,
                    r.writes.total(),
                    r.changes,
                    r.bound,
                    r.writes.total() as f64 / r.bound as f64,
                    r.floor,
                    r.writes.total() as f64 / r.floor as f64,
                    r.most_slices,
                    r.end_slices,
                    r.busy.as_secs_f64() * 1000.0 / r.reconciles as f64,
                );
            }
        }
    }
    println!();
}

fn write_counts() {
    pod_changes();
    rollouts();
}

// ---------------------------------------------------------------------------------------------
// Part two: time one reconcile.

fn reconcile_time(c: &mut Criterion) {
    let rt = runtime();
    let svc = web_service();
    let base = generation_pods(0);
    let converged = {
        let mut cluster = Cluster::converged();
        cluster.assert_converged("timing fixture");
        cluster.api.slices()
    };
    let api = MemoryApi::new(false);
    let reconciler = reconciler(&api);

    let mut flipped = base.clone();
    flipped[4242] = web_pod(0, 4242, false);
    let mut surged = base.clone();
    surged.extend((0..PODS / 4).map(|i| web_pod(1, i, true)));
    let scattered = shuffled(PODS);
    let removed: BTreeSet<usize> = scattered[..PODS / 4].iter().copied().collect();
    let shrunk: Vec<PodProjection> = (0..PODS)
        .filter(|i| !removed.contains(i))
        .map(|i| base[i].clone())
        .collect();
    let none: Vec<EndpointSlice> = Vec::new();

    let cases: [(&str, &[PodProjection], &[EndpointSlice], Writes); 5] = [
        ("converge_from_empty", &base, &none, Writes::new(PODS / MAX, 0, 0)),
        ("steady_state", &base, &converged, Writes::default()),
        ("one_pod_not_ready", &flipped, &converged, Writes::new(0, 1, 0)),
        ("add_2500_ready", &surged, &converged, Writes::new(PODS / 4 / MAX, 0, 0)),
        (
            "remove_2500_scattered",
            &shrunk,
            &converged,
            Writes::new(0, PODS / MAX, 0),
        ),
    ];
    let mut group = c.benchmark_group("reconcile_10k");
    for (name, pods, existing, expected) in cases {
        let before = api.writes();
        rt.block_on(reconciler.reconcile(&svc, pods, existing, None))
            .expect("reconcile");
        assert_eq!(api.writes().since(before), expected, "{name}");
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                reconciler
                    .reconcile(&svc, pods, existing, None)
                    .await
                    .expect("reconcile");
            });
        });
    }
    // The same single-pod changes as syncs after pod changes make them:
    // planned from the changed pods alone (`plan_changed`), then written.
    let replaced = web_pod(1, 4242, true);
    let changed_cases = [
        (
            "one_pod_not_ready_changed_pods",
            vec![pod_name(0, 4242)],
            vec![flipped[4242].clone()],
        ),
        (
            "one_pod_replaced_changed_pods",
            vec![pod_name(0, 4242), pod_name(1, 4242)],
            vec![replaced],
        ),
    ];
    for (name, names, selected) in changed_cases {
        let changed = ChangedPods {
            names: names.into_iter().collect(),
            selected: selected.into_iter().map(Arc::new).collect(),
        };
        let sync = || async {
            let plan = reconciler
                .plan_changed(&svc, &changed, &converged)
                .expect("a steady change is planned from the changed pods");
            reconciler.apply(&svc, plan).await.expect("apply");
        };
        let before = api.writes();
        rt.block_on(sync());
        assert_eq!(api.writes().since(before), Writes::new(0, 1, 0), "{name}");
        group.bench_function(name, |b| b.to_async(&rt).iter(sync));
    }
    group.finish();
}

criterion_group! {
    name = timing;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    targets = reconcile_time
}
criterion_main!(write_counts, timing);
