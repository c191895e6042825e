//! What each controller would write for one Service, and how that differs
//! from what exists: the desired objects come from the controllers' own
//! `explain` modules (the same plans their syncs run, carried out over the
//! existing objects without writing), the differences from
//! [`crate::compare`]. A difference is thus a write the controller would
//! make that changes something meaningful. `ecm explain` prints one Service's; `ecm shadow`
//! checks every Service's on each change.

use std::collections::BTreeMap;
use std::sync::Arc;

use ecm_controller::ServicePods;
use ecm_controller::slices::SliceManager;
use ecm_endpointslice::TopologyCache;
use ecm_informer::{Lister, ObjectKey};
use ecm_types::PodProjection;
use ecm_types::wellknown::{ANNOTATION_LEADER, MANAGED_BY_ENDPOINTSLICE_CONTROLLER, MANAGED_BY_MIRRORING_CONTROLLER};
use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;

use crate::compare::{Difference, compare_endpoints, compare_slices};
use crate::controllers::ControllerName;

/// The caches a comparison reads: an informer's listers, or stores filled
/// from one listing (`ecm explain`).
#[derive(Clone)]
pub struct Caches {
    /// Services.
    pub services: Lister<Service>,
    /// Pods, projected as the controllers cache them.
    pub pods: Lister<PodProjection>,
    /// Nodes, in the EndpointSlice controller's compact form.
    pub nodes: Lister<Node>,
    /// EndpointSlices.
    pub slices: Lister<EndpointSlice>,
    /// Endpoints.
    pub endpoints: Lister<Endpoints>,
}

/// The settings the desired state depends on.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `--max-endpoints-per-slice`.
    pub max_endpoints_per_slice: usize,
    /// `--mirroring-max-endpoints-per-subset`.
    pub mirroring_max_endpoints_per_subset: usize,
}

/// One controller's view of one Service: what it would write and what
/// differs from what exists. `None` from the `*_view` functions means the
/// controller leaves the Service alone.
#[derive(Clone, Debug)]
pub struct View<D> {
    /// What the controller would write.
    pub desired: D,
    /// What exists now.
    pub actual: Vec<serde_json::Value>,
    /// The differences, in a stable order.
    pub differences: Vec<Difference>,
}

/// The EndpointSlice controller's view of one Service's slices.
#[derive(Clone, Debug, Serialize)]
pub struct SliceState {
    /// The desired slices, without names.
    pub slices: Vec<EndpointSlice>,
    /// Pods left out because their node is unknown: `(pod, node)`.
    pub missing_nodes: Vec<(String, String)>,
    /// Hint events per address type: `(address type, reason, message)`.
    pub hints: Vec<(String, String, String)>,
    /// `Auto` when the topology annotation enables hints, else `Disabled`.
    pub topology_mode: &'static str,
    /// The `trafficDistribution` in effect.
    pub traffic_distribution: Option<String>,
}

/// The EndpointSlice controller's slices by Service, through an index of
/// their own on a slice store ([`SliceManager::add_index`]; without it,
/// found by labels).
pub const ENDPOINTSLICE_SLICES: SliceManager =
    SliceManager::new(MANAGED_BY_ENDPOINTSLICE_CONTROLLER, "parity/endpointslice").skipping_terminating();

/// The mirroring controller's slices by Endpoints, likewise.
pub const MIRRORED_SLICES: SliceManager =
    SliceManager::new(MANAGED_BY_MIRRORING_CONTROLLER, "parity/mirroring").skipping_terminating();

/// The slices of `key` `manager` manages, not being deleted, by name.
pub fn managed_slices(
    slices: &Lister<EndpointSlice>,
    manager: SliceManager,
    key: &ObjectKey,
) -> Vec<Arc<EndpointSlice>> {
    let mut found = manager.list(slices, key);
    found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    found
}

fn to_values<T: Serialize>(objects: impl IntoIterator<Item = T>) -> Vec<serde_json::Value> {
    objects
        .into_iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect()
}

/// The EndpointSlice controller's view of `key`, `None` for a Service it
/// does not sync (gone, ExternalName or without selector).
pub fn endpointslice_view(
    caches: &Caches,
    topology: &TopologyCache,
    limits: Limits,
    key: &ObjectKey,
) -> Option<View<SliceState>> {
    let ServicePods::Selecting { service, pods } = ServicePods::lookup(&caches.services, &caches.pods, key) else {
        return None;
    };
    let nodes = {
        let nodes = caches.nodes.clone();
        move |name: &str| nodes.get("", name)
    };
    let snapshot = topology.snapshot(key);
    let actual = managed_slices(&caches.slices, ENDPOINTSLICE_SLICES, key);
    let refs: Vec<&EndpointSlice> = actual.iter().map(AsRef::as_ref).collect();
    let desired = ecm_endpointslice::explain::desired_slices(
        &service,
        pods.iter().map(AsRef::as_ref),
        refs.iter().copied(),
        &nodes,
        &snapshot,
        limits.max_endpoints_per_slice,
    );
    let mut differences = compare_slices(&desired.slices, &refs);
    differences.sort();
    Some(View {
        desired: SliceState {
            slices: desired.slices,
            missing_nodes: desired.missing_nodes.into_iter().map(|m| (m.pod, m.node)).collect(),
            hints: desired
                .hints_events
                .into_iter()
                .map(|(family, e)| (family, e.reason.to_owned(), e.message))
                .collect(),
            topology_mode: desired.topology_mode,
            traffic_distribution: desired.traffic_distribution,
        },
        actual: to_values(refs),
        differences,
    })
}

/// The Endpoints controller's view of `key`, `None` for a Service it leaves
/// alone (ExternalName or without selector) and for a leader-election lock.
/// A Service that is gone wants no Endpoints object.
pub fn endpoints_view(
    caches: &Caches,
    key: &ObjectKey,
) -> Option<View<Option<ecm_endpoints::explain::DesiredEndpoints>>> {
    let actual = caches.endpoints.get(key.namespace(), key.name());
    let desired = match ServicePods::lookup(&caches.services, &caches.pods, key) {
        ServicePods::NotSelecting => return None,
        // Old leader-election locks are not the controller's (upstream's
        // checkLeftoverEndpoints leaves them too).
        ServicePods::Gone if actual.as_deref().is_some_and(is_leader_lock) => return None,
        ServicePods::Gone => None,
        ServicePods::Selecting { service, pods } => Some(ecm_endpoints::explain::desired_endpoints(
            &service,
            pods.iter().map(AsRef::as_ref),
        )),
    };
    let mut differences = compare_endpoints(desired.as_ref().map(|d| &d.object), actual.as_deref());
    differences.sort();
    Some(View {
        desired,
        actual: to_values(actual.as_deref()),
        differences,
    })
}

fn is_leader_lock(endpoints: &Endpoints) -> bool {
    endpoints
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_LEADER))
}

/// The mirroring controller's view of the Endpoints `key`: its decision
/// and the slices it would mirror (none unless it mirrors).
pub fn mirroring_view(caches: &Caches, limits: Limits, key: &ObjectKey) -> View<MirroredSlices> {
    let endpoints = caches.endpoints.get(key.namespace(), key.name());
    let service = caches.services.get(key.namespace(), key.name());
    let decision = ecm_mirroring::explain::decide(endpoints.as_deref(), service.as_deref());
    let actual = managed_slices(&caches.slices, MIRRORED_SLICES, key);
    let refs: Vec<&EndpointSlice> = actual.iter().map(AsRef::as_ref).collect();
    let (slices, invalid_addresses, addresses_skipped) = match (decision, endpoints) {
        (ecm_mirroring::explain::Decision::Mirror, Some(endpoints)) => ecm_mirroring::explain::desired_slices(
            &endpoints,
            refs.iter().copied(),
            limits.mirroring_max_endpoints_per_subset,
        ),
        _ => (Vec::new(), 0, 0),
    };
    let mut differences = compare_slices(&slices, &refs);
    differences.sort();
    View {
        desired: MirroredSlices {
            decision,
            slices,
            invalid_addresses,
            addresses_skipped,
        },
        actual: to_values(refs),
        differences,
    }
}

/// The mirroring controller's view of one Endpoints object.
#[derive(Clone, Debug)]
pub struct MirroredSlices {
    /// Whether it mirrors, or why not.
    pub decision: ecm_mirroring::explain::Decision,
    /// The slices it would leave (none unless it mirrors).
    pub slices: Vec<EndpointSlice>,
    /// Addresses that are not IPs, left out.
    pub invalid_addresses: usize,
    /// Addresses over `--mirroring-max-endpoints-per-subset`, left out.
    pub addresses_skipped: usize,
}

/// Every enabled controller's differences for `key`; `None` for a
/// controller that leaves the Service alone.
pub fn differences(
    caches: &Caches,
    topology: &TopologyCache,
    limits: Limits,
    enabled: &std::collections::BTreeSet<ControllerName>,
    key: &ObjectKey,
) -> BTreeMap<ControllerName, Option<Vec<Difference>>> {
    let mut all = BTreeMap::new();
    for name in enabled {
        let found = match name {
            ControllerName::Endpoints => endpoints_view(caches, key).map(|v| v.differences),
            ControllerName::EndpointSlice => endpointslice_view(caches, topology, limits, key).map(|v| v.differences),
            ControllerName::Mirroring => {
                let view = mirroring_view(caches, limits, key);
                let untouched = view.desired.slices.is_empty() && view.actual.is_empty();
                (!untouched).then_some(view.differences)
            }
        };
        all.insert(*name, found);
    }
    all
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use ecm_informer::Store;
    use ecm_types::fixtures::{pod, service};

    use super::*;

    fn caches(services: Vec<Service>, pods: Vec<PodProjection>, endpoints: Vec<Endpoints>) -> Caches {
        fn lister<S: kube::Resource<DynamicType = ()> + Send + Sync + 'static>(items: Vec<S>) -> Lister<S> {
            let store = Store::new();
            for item in items {
                store.insert(Arc::new(item));
            }
            Lister::new(store)
        }
        Caches {
            services: lister(services),
            pods: lister(pods),
            nodes: lister(Vec::new()),
            slices: lister(Vec::new()),
            endpoints: lister(endpoints),
        }
    }

    fn endpoints(name: &str, annotations: &[(&str, &str)]) -> Endpoints {
        let mut object = Endpoints::default();
        object.metadata.name = Some(name.into());
        object.metadata.namespace = Some("ns".into());
        object.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        object
    }

    #[test]
    fn an_endpoints_object_without_service_differs_unless_it_is_a_leader_lock() {
        let c = caches(
            Vec::new(),
            Vec::new(),
            vec![
                endpoints("orphan", &[]),
                endpoints("lock", &[(ANNOTATION_LEADER, "{}")]),
            ],
        );
        let orphan = endpoints_view(&c, &ObjectKey::new("ns", "orphan")).unwrap();
        assert_eq!(orphan.differences.len(), 1);
        assert_eq!(orphan.differences[0].field, "object");
        assert_eq!(orphan.differences[0].desired, "absent");
        assert!(endpoints_view(&c, &ObjectKey::new("ns", "lock")).is_none());
    }

    #[test]
    fn each_controller_is_asked_only_about_what_it_syncs() {
        let svc = service("ns", "web")
            .selector([("app", "web")])
            .port("http", 80, 8080)
            .build();
        let manual = service("ns", "manual").port("db", 5432, 5432).build();
        let pods = vec![
            pod("ns", "web-0")
                .labels([("app", "web")])
                .ip("10.0.0.1")
                .ready(true)
                .projection(),
        ];
        let c = caches(vec![svc, manual], pods, Vec::new());
        let limits = Limits {
            max_endpoints_per_slice: 100,
            mirroring_max_endpoints_per_subset: 1000,
        };
        let all: BTreeSet<ControllerName> = ControllerName::ALL.into_iter().collect();
        let topology = TopologyCache::new();
        let web = differences(&c, &topology, limits, &all, &ObjectKey::new("ns", "web"));
        assert!(
            web[&ControllerName::Endpoints]
                .as_ref()
                .is_some_and(|d| d[0].field == "object")
        );
        assert!(
            web[&ControllerName::Mirroring].is_none(),
            "a selector Service is not mirrored"
        );
        let manual = differences(&c, &topology, limits, &all, &ObjectKey::new("ns", "manual"));
        assert!(
            manual[&ControllerName::Endpoints].is_none(),
            "someone else writes its Endpoints"
        );
        assert!(manual[&ControllerName::EndpointSlice].is_none());
    }
}
