//! [`changed_subsets`] against [`desired_subsets`]: on random pod
//! histories, the subsets built from the last ones and the changed pods are
//! the subsets built from every pod.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ecm_types::fixtures::{pod, service};
use proptest::prelude::*;

use super::*;

const POD_SLOTS: usize = 16;

/// One change to one pod slot.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Created, or re-created with a new IP and uid.
    Recreate,
    Delete,
    FlipReady,
    Terminate,
    /// Serves the named port on the other number, or drops it.
    SwitchPort,
    /// Labelled out of the Service, or back in.
    Relabel,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::FlipReady),
        2 => Just(Change::Recreate),
        1 => Just(Change::Delete),
        1 => Just(Change::Terminate),
        2 => Just(Change::SwitchPort),
        1 => Just(Change::Relabel),
    ]
}

#[derive(Clone, Debug)]
struct PodState {
    generation: u32,
    ready: bool,
    terminating: bool,
    /// 0: no named port, else its number.
    port: i32,
    selected: bool,
}

impl PodState {
    fn fresh() -> Self {
        Self {
            generation: 1,
            ready: true,
            terminating: false,
            port: 8080,
            selected: true,
        }
    }

    fn apply(mut self, change: Change) -> Option<Self> {
        match change {
            Change::Recreate => {
                self.generation += 1;
                self.terminating = false;
            }
            Change::Delete => return None,
            Change::FlipReady => self.ready = !self.ready,
            Change::Terminate => self.terminating = true,
            Change::SwitchPort => {
                self.port = match self.port {
                    8080 => 9090,
                    9090 => 0,
                    _ => 8080,
                };
            }
            Change::Relabel => self.selected = !self.selected,
        }
        Some(self)
    }

    fn projection(&self, slot: usize) -> PodProjection {
        let name = format!("p{slot}");
        let mut builder = pod("ns", &name)
            .labels([("app", if self.selected { "web" } else { "other" })])
            .uid(&format!("{name}-{}", self.generation))
            .ip(&format!("10.{}.0.{slot}", self.generation % 3))
            .node("node-1")
            .ready(self.ready);
        if self.port != 0 {
            builder = builder.container_port("http", self.port, "TCP");
        }
        if self.terminating {
            builder = builder.deleting();
        }
        builder.projection()
    }
}

fn web_service(kind: u8) -> Service {
    let svc = service("ns", "web").selector([("app", "web")]);
    match kind {
        0 => svc.named_port("http", 80, "http").port("metrics", 9000, 9000),
        1 => svc.named_port("http", 80, "http").publish_not_ready(true),
        _ => svc.headless(),
    }
    .build()
}

fn selected(pods: &BTreeMap<usize, PodState>) -> BTreeMap<String, PodProjection> {
    pods.iter()
        .filter(|(_, state)| state.selected)
        .map(|(slot, state)| (format!("p{slot}"), state.projection(*slot)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn changed_subsets_are_the_desired_subsets(
        kind in 0u8..3,
        initial in 0usize..POD_SLOTS,
        steps in prop::collection::vec(prop::collection::vec((0..POD_SLOTS, change()), 0..4), 1..25),
    ) {
        let svc = web_service(kind);
        let mut pods: BTreeMap<usize, PodState> = (0..initial).map(|slot| (slot, PodState::fresh())).collect();
        let mut stored = desired_subsets(&svc, selected(&pods).values()).subsets;
        for step in &steps {
            let mut names = BTreeSet::new();
            for &(slot, change) in step {
                names.insert(format!("p{slot}"));
                let next = match pods.remove(&slot) {
                    Some(state) => state.apply(change),
                    None => Some(PodState::fresh()),
                };
                if let Some(state) = next {
                    pods.insert(slot, state);
                }
            }
            let now = selected(&pods);
            let changed = ChangedPods {
                selected: names.iter().filter_map(|n| now.get(n)).cloned().map(Arc::new).collect(),
                names,
            };
            let full = desired_subsets(&svc, now.values());
            prop_assert_eq!(&changed_subsets(&svc, &stored, &changed), &full, "after {:?}", step);
            stored = full.subsets;
        }
    }
}
