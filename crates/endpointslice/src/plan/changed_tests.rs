//! [`plan_changed`] against [`plan`]: on random pod histories, the plan from
//! the changed pods alone is the full plan whenever it is given, and it is
//! given in the steady cases it exists for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ecm_controller::ChangedPods;
use ecm_types::endpoint_slice::endpoints;
use ecm_types::fixtures::{pod, service};
use proptest::prelude::*;

use super::*;
use crate::test_support::{lookup, node};

/// One change to one of the pods `p0`…`p{POD_SLOTS - 1}`.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Created, or re-created with a new IP and uid.
    Recreate,
    Delete,
    FlipReady,
    /// Being deleted.
    Terminate,
    /// Serves the Service's named port on another number: another port group.
    SwitchPort,
    /// Moves to another node: a zone change, or an unknown node.
    Move,
    /// Labelled out of the Service, or back in.
    Relabel,
}

const POD_SLOTS: usize = 24;

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::FlipReady),
        2 => Just(Change::Recreate),
        1 => Just(Change::Delete),
        1 => Just(Change::Terminate),
        1 => Just(Change::SwitchPort),
        1 => Just(Change::Move),
        1 => Just(Change::Relabel),
    ]
}

/// What a pod slot holds.
#[derive(Clone, Debug)]
struct PodState {
    generation: u32,
    ready: bool,
    terminating: bool,
    port: i32,
    node: &'static str,
    selected: bool,
}

impl PodState {
    fn projection(&self, slot: usize, dual_stack: bool) -> PodProjection {
        let name = format!("p{slot}");
        let v4 = format!("10.{}.0.{slot}", self.generation);
        let v6 = format!("fd00::{}:{slot}", self.generation);
        let ips: Vec<&str> = if dual_stack && !slot.is_multiple_of(3) {
            vec![&v4, &v6]
        } else {
            vec![&v4]
        };
        let mut builder = pod("ns", &name)
            .labels([("app", if self.selected { "web" } else { "other" })])
            .uid(&format!("{name}-{}", self.generation))
            .ips(&ips)
            .node(self.node)
            .ready(self.ready)
            .container_port("http", self.port, "TCP");
        if self.terminating {
            builder = builder.deleting();
        }
        builder.projection()
    }
}

/// An API server's worth of slices, written to by applying plans.
#[derive(Default)]
struct Slices {
    stored: BTreeMap<String, EndpointSlice>,
    created: usize,
}

impl Slices {
    fn apply(&mut self, plan: &Plan<'_>) {
        for address_type in &plan.address_types {
            for slice in &address_type.to_create {
                self.created += 1;
                let mut slice = slice.clone();
                let name = format!("web-{}", self.created);
                slice.metadata.name = Some(name.clone());
                slice.metadata.uid = Some(format!("uid-{name}"));
                slice.metadata.generation = Some(1);
                self.stored.insert(name, slice);
            }
            for slice in &address_type.to_update {
                let mut slice = slice.clone();
                let name = slice.metadata.name.clone().unwrap_or_default();
                let previous = self.stored.get(&name);
                slice.metadata.uid = previous
                    .and_then(|p| p.metadata.uid.clone())
                    .or_else(|| Some(format!("uid-{name}")));
                slice.metadata.generation = Some(previous.and_then(|p| p.metadata.generation).unwrap_or(0) + 1);
                self.stored.insert(name, slice);
            }
            for slice in &address_type.to_delete {
                self.stored.remove(slice.metadata.name.as_deref().unwrap_or_default());
            }
        }
        for slice in &plan.unsupported {
            self.stored.remove(slice.metadata.name.as_deref().unwrap_or_default());
        }
    }
}

/// A Service, its pods and its slices, planned with changed pods alone
/// wherever `plan_changed` allows and checked against `plan` every time.
struct History {
    svc: Service,
    dual_stack: bool,
    pods: BTreeMap<usize, PodState>,
    slices: Slices,
    max: usize,
    /// Whether the last plan can be built on.
    baseline: bool,
    /// Plans made from the changed pods.
    incremental: usize,
}

impl History {
    fn new(dual_stack: bool, publish_not_ready: bool, max: usize, initial: usize) -> Self {
        let mut svc = service("ns", "web")
            .selector([("app", "web")])
            .named_port("http", 80, "http");
        if dual_stack {
            svc = svc.ip_families(&["IPv4", "IPv6"]);
        }
        svc = svc.publish_not_ready(publish_not_ready);
        let pods = (0..initial)
            .map(|slot| {
                let state = PodState {
                    generation: 0,
                    ready: !slot.is_multiple_of(4),
                    terminating: false,
                    port: 8080,
                    node: if slot.is_multiple_of(2) { "node-1" } else { "node-2" },
                    selected: true,
                };
                (slot, state)
            })
            .collect();
        let mut history = Self {
            svc: svc.build(),
            dual_stack,
            pods,
            slices: Slices::default(),
            max,
            baseline: false,
            incremental: 0,
        };
        history.step(&[]);
        history
    }

    fn projections(&self) -> BTreeMap<String, PodProjection> {
        self.pods
            .iter()
            .map(|(slot, state)| (format!("p{slot}"), state.projection(*slot, self.dual_stack)))
            .collect()
    }

    fn change(&mut self, slot: usize, change: Change) {
        let existing = self.pods.get(&slot).cloned();
        let Some(mut state) = existing else {
            let fresh = PodState {
                generation: 1,
                ready: true,
                terminating: false,
                port: 8080,
                node: "node-1",
                selected: true,
            };
            self.pods.insert(slot, fresh);
            return;
        };
        match change {
            Change::Recreate => {
                state.generation += 1;
                state.terminating = false;
            }
            Change::Delete => {
                self.pods.remove(&slot);
                return;
            }
            Change::FlipReady => state.ready = !state.ready,
            Change::Terminate => state.terminating = true,
            Change::SwitchPort => state.port = if state.port == 8080 { 9090 } else { 8080 },
            Change::Move => {
                state.node = match state.node {
                    "node-1" => "node-2",
                    "node-2" => "node-3",
                    _ => "node-1",
                };
            }
            Change::Relabel => state.selected = !state.selected,
        }
        self.pods.insert(slot, state);
    }

    /// Applies `changes`, plans both ways, checks, and writes the full plan.
    fn step(&mut self, changes: &[(usize, Change)]) {
        for &(slot, change) in changes {
            self.change(slot, change);
        }
        let names: BTreeSet<String> = changes.iter().map(|(slot, _)| format!("p{slot}")).collect();
        let all = self.projections();
        let selected: Vec<&PodProjection> = all
            .values()
            .filter(|p| p.labels().get("app").is_some_and(|a| a == "web"))
            .collect();
        let changed = ChangedPods {
            selected: names
                .iter()
                .filter_map(|n| all.get(n))
                .filter(|p| p.labels().get("app").is_some_and(|a| a == "web"))
                .map(|p| Arc::new(p.clone()))
                .collect(),
            names,
        };
        // node-3 is unknown: its pods are reported missing.
        let nodes = lookup(vec![
            node("node-1", Some("zone-a"), "1"),
            node("node-2", Some("zone-b"), "1"),
        ]);
        let topology = TopologySnapshot::default();
        let ctx = PlanContext {
            max_endpoints_per_slice: self.max,
            nodes: &nodes,
            topology: &topology,
            trigger_time: None,
        };
        let existing: Vec<EndpointSlice> = self.slices.stored.values().cloned().collect();
        let full = plan(&ctx, &self.svc, selected.iter().copied(), &existing);
        if self.baseline
            && let Ok(incremental) = plan_changed(&ctx, &self.svc, &changed, &existing)
        {
            assert_eq!(incremental, full, "after {changes:?}");
            self.incremental += 1;
        }
        self.slices.apply(&full);
        // A sync that reports missing nodes fails: the next one is not
        // built on it (the controller's ChangeTracker forgets the Service).
        self.baseline = full.address_types.iter().all(|t| t.missing_nodes.is_empty());
    }

    fn endpoint_count(&self) -> usize {
        self.slices.stored.values().map(|s| endpoints(s).len()).sum()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_changed_pods_plan_is_the_full_plan(
        dual_stack in any::<bool>(),
        publish_not_ready in any::<bool>(),
        max in 2usize..8,
        initial in 0usize..POD_SLOTS,
        steps in prop::collection::vec(prop::collection::vec((0..POD_SLOTS, change()), 0..4), 1..30),
    ) {
        let mut history = History::new(dual_stack, publish_not_ready, max, initial);
        for changes in &steps {
            history.step(changes);
        }
    }
}

#[test]
fn steady_changes_are_planned_from_the_changed_pods() {
    let mut history = History::new(false, false, 5, 20);
    assert_eq!(history.endpoint_count(), 20);
    let steady = [
        vec![(3, Change::FlipReady)],
        vec![(4, Change::Recreate), (7, Change::FlipReady)],
        vec![(9, Change::Terminate)],
        vec![(11, Change::Delete)],
        vec![(21, Change::Recreate)],
        vec![],
    ];
    for changes in &steady {
        history.step(changes);
    }
    assert_eq!(
        history.incremental,
        steady.len(),
        "every steady change is planned incrementally"
    );
    let empties = [vec![(0, Change::SwitchPort)], vec![(1, Change::Move)]];
    for changes in &empties {
        history.step(changes);
    }
    assert_eq!(
        history.incremental,
        steady.len(),
        "a new port group and a missing node take the full plan"
    );
}
