//! What this controller would leave for one Service, and why, without
//! writing: the slices as they would be once the sync's own [`plan`] is
//! carried out over the existing ones, with the pods it left out for an
//! unknown node and the
//! topology-hint events (whose messages carry upstream's reasons for
//! withholding hints). For tools that explain or audit the controller's
//! decisions (`ecm explain`, `ecm shadow`); not used by the sync itself.

use std::collections::BTreeMap;

use ecm_types::PodProjection;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

pub use crate::desired::MissingNode;
use crate::desired::NodeLookup;
pub use crate::hints::HintsEvent;
use crate::hints::TopologySnapshot;
use crate::plan::{PlanContext, plan};

/// The slices a Service should have.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredSlices {
    /// The slices after the plan: existing slices the plan keeps or
    /// rewrites (by name), then the slices it creates (names unset).
    pub slices: Vec<EndpointSlice>,
    /// Pods left out because their node is not known.
    pub missing_nodes: Vec<MissingNode>,
    /// Per address type (as the API spells it), the hint events the plan
    /// records: `TopologyAwareHintsDisabled` carries the reason hints are
    /// withheld.
    pub hints_events: Vec<(String, HintsEvent)>,
    /// How hints are chosen: `Auto` (topology annotation) or `Disabled`.
    pub topology_mode: &'static str,
    /// The valid `spec.trafficDistribution` in use, when the topology
    /// annotation does not override it.
    pub traffic_distribution: Option<String>,
}

/// Computes the slices `svc` has once [`plan`] is carried out for `pods`
/// (the pods its selector matches) over `existing` (its slices managed by
/// this controller, not being deleted): the same pod filter, ports,
/// conditions, zones, placement and hints as the sync, including what
/// depends on the existing slices (a Service being deleted gets no new
/// slices; not-ready endpoints keep the hints they had).
pub fn desired_slices<'a, 'p>(
    svc: &Service,
    pods: impl IntoIterator<Item = &'p PodProjection>,
    existing: impl IntoIterator<Item = &'a EndpointSlice>,
    nodes: &dyn NodeLookup,
    topology: &TopologySnapshot,
    max_endpoints_per_slice: usize,
) -> DesiredSlices {
    let ctx = PlanContext {
        max_endpoints_per_slice,
        nodes,
        topology,
        trigger_time: None,
    };
    let existing: Vec<&EndpointSlice> = existing.into_iter().collect();
    let planned = plan(&ctx, svc, pods, existing.iter().copied());
    let mut kept: BTreeMap<Option<String>, EndpointSlice> = existing
        .iter()
        .map(|s| (s.metadata.name.clone(), (*s).clone()))
        .collect();
    for deleted in planned.unsupported.iter().copied() {
        kept.remove(&deleted.metadata.name);
    }
    let mut desired = DesiredSlices {
        slices: Vec::new(),
        missing_nodes: Vec::new(),
        hints_events: Vec::new(),
        topology_mode: crate::plan::TOPOLOGY_DISABLED,
        traffic_distribution: planned.traffic_distribution.clone(),
    };
    let mut created = Vec::new();
    for family in planned.address_types {
        desired.topology_mode = family.topology_label;
        desired.missing_nodes = family.missing_nodes;
        desired.hints_events.extend(
            family
                .events
                .into_iter()
                .map(|e| (family.family.as_api().to_owned(), e)),
        );
        for deleted in family.to_delete {
            kept.remove(&deleted.metadata.name);
        }
        for updated in family.to_update {
            kept.insert(updated.metadata.name.clone(), updated);
        }
        created.extend(family.to_create);
    }
    desired.slices = kept.into_values().chain(created).collect();
    desired
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ecm_types::fixtures::{pod, service};
    use k8s_openapi::api::core::v1::Node;

    use super::*;

    #[test]
    fn desired_slices_are_the_plan_from_scratch_and_report_missing_nodes() {
        let svc = service("ns", "web")
            .selector([("app", "web")])
            .port("http", 80, 8080)
            .build();
        let pods = [
            pod("ns", "a").ip("10.0.0.1").ready(true).node("n1").projection(),
            pod("ns", "b").ip("10.0.0.2").ready(true).node("gone").projection(),
        ];
        let nodes = |name: &str| {
            (name == "n1").then(|| {
                let mut node = Node::default();
                node.metadata.name = Some(name.to_owned());
                Arc::new(node)
            })
        };
        let desired = desired_slices(&svc, &pods, [], &nodes, &TopologySnapshot::default(), 100);
        assert_eq!(desired.slices.len(), 1);
        assert_eq!(ecm_types::endpoint_slice::endpoints(&desired.slices[0]).len(), 1);
        assert_eq!(
            desired.missing_nodes,
            [MissingNode {
                pod: "b".into(),
                node: "gone".into()
            }]
        );
        assert_eq!(desired.topology_mode, "Disabled");
    }
}
