//! The planner's own rules: placeholders, recycling, ownership, address
//! types, a Service being deleted, the trigger time and the hint mechanisms
//! (upstream's `reconcileByAddressType`, `finalize` and their tests).

use super::*;
use crate::hints::zones::ZoneRatios;
use crate::test_support::{lookup, node, stored_slice, tcp_port, zone_hints};
use ecm_types::endpoint_slice::{endpoints, set_endpoints};
use ecm_types::fixtures::{at, pod, service};
use ecm_types::wellknown::{ANNOTATION_LAST_CHANGE_TRIGGER_TIME, ANNOTATION_TOPOLOGY_MODE, LABEL_SERVICE_NAME};
use k8s_openapi::api::discovery::v1::EndpointPort;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn svc() -> Service {
    service("ns", "web").port("http", 80, 8080).build()
}

fn ports() -> Vec<EndpointPort> {
    vec![tcp_port("http", 8080)]
}

fn pods(n: usize) -> Vec<PodProjection> {
    (0..n)
        .map(|i| {
            pod("ns", &format!("p{i}"))
                .ip(&format!("10.0.0.{i}"))
                .node("node-1")
                .ready(true)
                .projection()
        })
        .collect()
}

struct Input {
    svc: Service,
    pods: Vec<PodProjection>,
    existing: Vec<EndpointSlice>,
    topology: TopologySnapshot,
    trigger_time: Option<Timestamp>,
    max: usize,
}

impl Input {
    fn new(svc: Service, pods: Vec<PodProjection>) -> Self {
        Self {
            svc,
            pods,
            existing: Vec::new(),
            topology: TopologySnapshot::default(),
            trigger_time: None,
            max: 100,
        }
    }

    fn existing(mut self, existing: Vec<EndpointSlice>) -> Self {
        self.existing = existing;
        self
    }

    fn plan(&self) -> Plan<'_> {
        let nodes = lookup(vec![
            node("node-1", Some("zone-a"), "1"),
            node("node-2", Some("zone-b"), "1"),
        ]);
        let ctx = PlanContext {
            max_endpoints_per_slice: self.max,
            nodes: &nodes,
            topology: &self.topology,
            trigger_time: self.trigger_time,
        };
        plan(&ctx, &self.svc, &self.pods, &self.existing)
    }
}

fn name(slice: &EndpointSlice) -> &str {
    slice.metadata.name.as_deref().unwrap_or_default()
}

fn counts(p: &AddressTypePlan<'_>) -> (usize, usize, usize) {
    (p.to_create.len(), p.to_update.len(), p.to_delete.len())
}

/// The endpoints the planner wants for `pods` (all on node-1, zone-a).
fn current(pods: &[PodProjection]) -> Vec<Endpoint> {
    let node1 = node("node-1", Some("zone-a"), "1");
    pods.iter()
        .map(|p| crate::desired::pod_to_endpoint(p, Some(&node1), &svc(), IpFamily::V4))
        .collect()
}

/// An empty slice of `svc` as stored, named `name`.
fn empty_stored(svc: &Service, name: &str) -> EndpointSlice {
    stored_slice(svc, name, &[], Vec::new())
}

#[test]
fn no_pods_gives_one_placeholder_slice() {
    let input = Input::new(svc(), Vec::new());
    let plan = input.plan();
    assert_eq!(plan.address_types.len(), 1);
    let ipv4 = &plan.address_types[0];
    assert_eq!(counts(ipv4), (1, 0, 0));
    let placeholder = &ipv4.to_create[0];
    assert_eq!(placeholder.ports, Some(Vec::new()));
    assert_eq!(placeholder.endpoints, Some(Vec::new()));
    assert_eq!(placeholder.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(
        ipv4.port_groups,
        BTreeMap::from([(
            PortMapKey::default(),
            EfficiencyInfo {
                endpoints: 0,
                slices: 1
            }
        )])
    );
}

#[test]
fn an_identical_placeholder_is_kept_without_writes() {
    let input = Input::new(svc(), Vec::new()).existing(vec![empty_stored(&svc(), "web-abcde")]);
    let plan = input.plan();
    assert!(plan.is_noop());
    assert_eq!(plan.address_types[0].slices_changed(), 0);
}

#[test]
fn a_placeholder_with_other_labels_is_rewritten_in_place() {
    let mut stale = empty_stored(&svc(), "web-abcde");
    stale.metadata.labels = Some(BTreeMap::from([("bar".to_owned(), "baz".to_owned())]));
    let input = Input::new(svc(), Vec::new()).existing(vec![stale]);
    let plan = input.plan();
    let ipv4 = &plan.address_types[0];
    assert_eq!(counts(ipv4), (0, 1, 0));
    let recycled = &ipv4.to_update[0];
    assert_eq!(name(recycled), "web-abcde");
    assert_eq!(recycled.metadata.resource_version, None, "an unconditional update");
    assert_eq!(recycled.metadata.uid, None);
    assert_eq!(
        recycled
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_SERVICE_NAME))
            .map(String::as_str),
        Some("web")
    );
}

#[test]
fn two_empty_slices_become_one_placeholder_update_and_one_delete() {
    let a = empty_stored(&svc(), "web-a");
    let mut b = empty_stored(&svc(), "web-b");
    b.ports = Some(ports());
    let input = Input::new(svc(), Vec::new()).existing(vec![b, a]);
    let plan = input.plan();
    let ipv4 = &plan.address_types[0];
    assert_eq!(counts(ipv4), (0, 1, 1));
    assert_eq!(name(&ipv4.to_update[0]), "web-a", "the first delete lends its name");
    assert_eq!(name(ipv4.to_delete[0]), "web-b");
}

#[test]
fn an_empty_slice_of_an_older_service_uid_is_accepted_as_placeholder() {
    let old = service("ns", "web").port("http", 80, 8080).build();
    let mut placeholder = empty_stored(&old, "web-old");
    if let Some(owner) = placeholder.metadata.owner_references.as_mut() {
        owner[0].uid = "uid-of-a-deleted-service".to_owned();
    }
    let input = Input::new(svc(), Vec::new()).existing(vec![placeholder]);
    assert!(input.plan().is_noop());
}

#[test]
fn the_last_endpoint_gone_turns_the_slice_into_the_placeholder_by_update() {
    let input = Input::new(svc(), Vec::new()).existing(vec![stored_slice(
        &svc(),
        "web-a",
        &ports(),
        vec![crate::test_support::endpoint("p0", "10.0.0.0")],
    )]);
    let plan = input.plan();
    let ipv4 = &plan.address_types[0];
    assert_eq!(counts(ipv4), (0, 1, 0));
    assert_eq!(ipv4.to_update[0].ports, Some(Vec::new()));
    assert_eq!(
        ipv4.endpoints_removed, 0,
        "a port group no longer desired is deleted whole, not counted as removed endpoints"
    );
}

#[test]
fn pods_appearing_reuse_the_placeholder_by_update() {
    let input = Input::new(svc(), pods(2)).existing(vec![empty_stored(&svc(), "web-abcde")]);
    let plan = input.plan();
    let ipv4 = &plan.address_types[0];
    assert_eq!(counts(ipv4), (0, 1, 0));
    assert_eq!(name(&ipv4.to_update[0]), "web-abcde");
    assert_eq!(endpoints(&ipv4.to_update[0]).len(), 2);
    assert_eq!(ipv4.to_update[0].ports, Some(ports()));
}

#[test]
fn a_slice_of_another_service_uid_is_replaced_not_recycled() {
    let mut foreign = stored_slice(
        &svc(),
        "web-old",
        &ports(),
        vec![crate::test_support::endpoint("p0", "10.0.0.0")],
    );
    if let Some(owner) = foreign.metadata.owner_references.as_mut() {
        owner[0].uid = "different".to_owned();
    }
    let input = Input::new(svc(), pods(1)).existing(vec![foreign]);
    let plan = input.plan();
    let ipv4 = &plan.address_types[0];
    assert_eq!(counts(ipv4), (1, 0, 1));
    assert_eq!(name(ipv4.to_delete[0]), "web-old");
}

#[test]
fn recycling_pairs_the_last_create_with_the_first_owned_delete() {
    let mut to_create: Vec<EndpointSlice> = ["c1", "c2", "c3"]
        .iter()
        .map(|label| {
            let mut s = new_slice(&svc(), IpFamily::V4, &[]);
            s.metadata.generate_name = Some((*label).to_owned());
            s
        })
        .collect();
    let mut to_update = Vec::new();
    let mut foreign = empty_stored(&svc(), "foreign");
    foreign.metadata.owner_references = None;
    let mut ipv6 = empty_stored(&svc(), "v6");
    ipv6.address_type = "IPv6".to_owned();
    let d1 = empty_stored(&svc(), "d1");
    let d2 = empty_stored(&svc(), "d2");
    let mut to_delete = vec![&foreign, &d1, &ipv6, &d2];
    recycle(&svc(), &mut to_create, &mut to_update, &mut to_delete);
    let recycled: Vec<_> = to_update
        .iter()
        .map(|s| (s.metadata.generate_name.as_deref().unwrap_or_default(), name(s)))
        .collect();
    assert_eq!(recycled, [("c3", "d1"), ("c2", "d2")]);
    assert_eq!(to_create.len(), 1);
    assert_eq!(to_delete.iter().map(|s| name(s)).collect::<Vec<_>>(), ["foreign", "v6"]);
}

#[test]
fn slices_of_unsupported_address_types_are_deleted_last_and_forgotten_by_topology() {
    let mut legacy = stored_slice(&svc(), "web-ip", &ports(), Vec::new());
    legacy.address_type = "IP".to_owned();
    let mut v6 = empty_stored(&svc(), "web-v6");
    v6.address_type = "IPv6".to_owned();
    let input = Input::new(svc(), pods(1)).existing(vec![v6, legacy]);
    let plan = input.plan();
    assert_eq!(
        plan.unsupported.iter().map(|s| name(s)).collect::<Vec<_>>(),
        ["web-ip", "web-v6"]
    );
    assert_eq!(
        counts(&plan.address_types[0]),
        (1, 0, 0),
        "no recycling across address types"
    );
    let changes: Vec<_> = plan.topology_changes.iter().map(|c| c.address_type.as_str()).collect();
    assert_eq!(changes, ["IP", "IPv6", "IPv4"]);
}

#[test]
fn a_dual_stack_service_gets_an_ipv6_placeholder_when_pods_have_only_ipv4() {
    let dual = service("ns", "web")
        .ip_families(&["IPv6", "IPv4"])
        .port("http", 80, 8080)
        .build();
    let input = Input::new(dual, pods(2));
    let plan = input.plan();
    let families: Vec<_> = plan.address_types.iter().map(|t| t.family).collect();
    assert_eq!(families, [IpFamily::V4, IpFamily::V6]);
    assert_eq!(endpoints(&plan.address_types[0].to_create[0]).len(), 2);
    let v6 = &plan.address_types[1];
    assert_eq!(counts(v6), (1, 0, 0));
    assert_eq!(v6.to_create[0].address_type, "IPv6");
    assert_eq!(
        v6.to_create[0].ports,
        Some(Vec::new()),
        "the empty group is not written; a placeholder is"
    );
}

#[test]
fn a_service_being_deleted_gets_no_creates_but_keeps_recycled_updates() {
    let mut doomed = svc();
    doomed.metadata.deletion_timestamp = Some(Time(at(60)));
    let input = Input::new(doomed.clone(), pods(1));
    let plan = input.plan();
    assert_eq!(counts(&plan.address_types[0]), (0, 0, 0));
    assert_eq!(plan.address_types[0].creates_withheld, 1);
    assert_eq!(plan.address_types[0].slices_changed(), 1);

    let old_port = stored_slice(&doomed, "web-a", &[tcp_port("http", 9090)], Vec::new());
    let input = Input::new(doomed, pods(1)).existing(vec![old_port]);
    let plan = input.plan();
    assert_eq!(counts(&plan.address_types[0]), (0, 1, 0));
    assert_eq!(plan.address_types[0].creates_withheld, 0);
}

#[test]
fn written_slices_get_the_trigger_time_and_others_keep_their_annotations() {
    let stored = stored_slice(&svc(), "web-a", &ports(), Vec::new());
    let mut input = Input::new(svc(), pods(1));
    input.trigger_time = Some(at(30));
    let plan = input.plan();
    let created = &plan.address_types[0].to_create[0];
    assert_eq!(
        created
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_LAST_CHANGE_TRIGGER_TIME))
            .map(String::as_str),
        Some("2024-01-15T10:00:30Z")
    );

    let mut annotated = stored;
    annotated.metadata.annotations = Some(BTreeMap::from([
        (
            ANNOTATION_LAST_CHANGE_TRIGGER_TIME.to_owned(),
            "2020-01-01T00:00:00Z".to_owned(),
        ),
        ("keep".to_owned(), "me".to_owned()),
    ]));
    let unready = pod("ns", "p0").ip("10.0.0.0").node("node-1").ready(false).projection();
    set_endpoints(&mut annotated, current(&[unready]));
    let input = Input::new(svc(), pods(1)).existing(vec![annotated]);
    let plan = input.plan();
    let updated = &plan.address_types[0].to_update[0];
    assert_eq!(
        updated.metadata.annotations,
        Some(BTreeMap::from([("keep".to_owned(), "me".to_owned())])),
        "no trigger time: the annotation is removed, others kept"
    );
}

#[test]
fn the_order_existing_slices_are_listed_in_does_not_change_the_plan() {
    let slices: Vec<EndpointSlice> = (0..4)
        .map(|n| {
            stored_slice(
                &svc(),
                &format!("web-{n}"),
                &ports(),
                vec![crate::test_support::endpoint(&format!("p{n}"), &format!("10.0.0.{n}"))],
            )
        })
        .collect();
    let mut reversed = slices.clone();
    reversed.reverse();
    let forward = Input::new(svc(), pods(6)).existing(slices);
    let backward = Input::new(svc(), pods(6)).existing(reversed);
    assert_eq!(forward.plan(), backward.plan());
}

#[test]
fn missing_nodes_are_reported_for_every_address_type() {
    let dual = service("ns", "web").ip_families(&["IPv4", "IPv6"]).build();
    let stray = pod("ns", "stray")
        .ips(&["10.0.0.1", "fd00::1"])
        .node("gone")
        .projection();
    let input = Input::new(dual, vec![stray]);
    let plan = input.plan();
    for t in &plan.address_types {
        assert_eq!(t.missing_nodes.len(), 1, "{}", t.family);
    }
}

fn annotated(mode: &str) -> Service {
    let mut svc = service("ns", "web")
        .ip_families(&["IPv4", "IPv6"])
        .port("http", 80, 8080)
        .build();
    svc.metadata.annotations = Some(BTreeMap::from([(ANNOTATION_TOPOLOGY_MODE.to_owned(), mode.to_owned())]));
    svc
}

fn zoned_pods() -> Vec<PodProjection> {
    ["node-1", "node-2"]
        .iter()
        .enumerate()
        .map(|(i, node)| {
            pod("ns", &format!("p{i}"))
                .ips(&[&format!("10.0.0.{i}"), &format!("fd00::{i}")])
                .node(node)
                .ready(true)
                .projection()
        })
        .collect()
}

fn two_zones() -> ZoneRatios {
    ZoneRatios::from([("zone-a".to_owned(), 0.5), ("zone-b".to_owned(), 0.5)])
}

#[test]
fn topology_annotation_hints_both_families_and_announces_once() {
    let mut input = Input::new(annotated("Auto"), zoned_pods());
    input.topology.ratios = Some(two_zones());
    let plan = input.plan();
    for t in &plan.address_types {
        let hints: Vec<_> = endpoints(&t.to_create[0]).iter().map(zone_hints).collect();
        assert_eq!(hints, [["zone-a"], ["zone-b"]], "{}", t.family);
        assert_eq!(t.topology_label, TOPOLOGY_AUTO);
    }
    assert_eq!(plan.address_types[0].events.len(), 1);
    assert!(plan.address_types[1].events.is_empty(), "hints are populated by then");
    assert!(
        plan.topology_changes
            .iter()
            .all(|c| matches!(c.change, CacheChange::Set(_)))
    );
}

#[test]
fn removing_the_annotation_warns_once_and_forgets_the_hints() {
    let mut input = Input::new(annotated("Disabled"), zoned_pods());
    input.topology = TopologySnapshot {
        ratios: Some(two_zones()),
        hints_populated: true,
    };
    let plan = input.plan();
    let messages: Vec<_> = plan
        .address_types
        .iter()
        .flat_map(|t| t.events.iter().map(|e| e.message.clone()))
        .collect();
    assert_eq!(messages, ["Topology Aware Hints has been disabled, addressType: IPv4"]);
    assert_eq!(plan.topology_changes.len(), 2);
    assert!(plan.topology_changes.iter().all(|c| c.change == CacheChange::Remove));
    for t in &plan.address_types {
        assert!(endpoints(&t.to_create[0]).iter().all(|e| e.hints.is_none()));
        assert_eq!(t.topology_label, TOPOLOGY_DISABLED);
    }
}

#[test]
fn traffic_distribution_applies_unless_the_annotation_enables_hints() {
    let mut close = annotated("Disabled");
    if let Some(spec) = close.spec.as_mut() {
        spec.traffic_distribution = Some("PreferClose".to_owned());
    }
    let input = Input::new(close.clone(), zoned_pods());
    let plan = input.plan();
    assert_eq!(plan.traffic_distribution.as_deref(), Some("PreferClose"));
    let ipv4 = &plan.address_types[0];
    assert_eq!(ipv4.traffic_distribution_label, "PreferClose");
    let hints: Vec<_> = endpoints(&ipv4.to_create[0]).iter().map(zone_hints).collect();
    assert_eq!(hints, [["zone-a"], ["zone-b"]]);

    let mut auto = close;
    auto.metadata.annotations = Some(BTreeMap::from([(
        ANNOTATION_TOPOLOGY_MODE.to_owned(),
        "Auto".to_owned(),
    )]));
    let input = Input::new(auto, zoned_pods());
    let plan = input.plan();
    assert_eq!(plan.traffic_distribution, None);
    assert_eq!(plan.address_types[0].traffic_distribution_label, "");
    assert_eq!(plan.address_types[0].topology_label, TOPOLOGY_AUTO);
}

#[test]
fn port_groups_count_existing_plus_created_minus_deleted() {
    let full = stored_slice(&svc(), "web-a", &ports(), current(&pods(3)));
    let mut input = Input::new(svc(), pods(7)).existing(vec![full]);
    input.max = 3;
    let plan = input.plan();
    let ipv4 = &plan.address_types[0];
    assert_eq!(counts(ipv4), (2, 0, 0));
    assert_eq!(
        ipv4.port_groups,
        BTreeMap::from([(
            PortMapKey::new(&ports()),
            EfficiencyInfo {
                endpoints: 7,
                slices: 3
            }
        )])
    );
    assert_eq!(ipv4.endpoints_added, 4);
}
