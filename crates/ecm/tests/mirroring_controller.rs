//! The EndpointSlice mirroring controller, as the binary wires it, against
//! ecm-apiserver over real HTTP: the hand-written Endpoints of a
//! selector-less Service are mirrored into one slice per repacked subset and
//! address family, with the Endpoints' labels and annotations, owned by the
//! Endpoints; every change to the Endpoints costs the fewest writes (an
//! update in place, a port change included); opting out, giving the Service
//! a selector, or deleting the Service or the Endpoints deletes the mirrored
//! slices, one DELETE each; Services with a selector and slices of other
//! managers are left alone; a restarted controller writes nothing on a
//! converged cluster; slices deleted or edited by hand are put back.
//!
//! Write counts are exact: the controller's writes are read from the API
//! server's write log by user agent, after the controllers have gone quiet.
//! See `../shared/spec/mirroring.md` for the rules (§ numbers below).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use ecm::controllers::ControllerName;
use ecm_apiserver::{ApiServer, ServeHandle};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{RunningController, http_client};

/// User agent of the controller under test; the test itself uses another.
const CONTROLLER_AGENT: &str = "ecm-mirroring-under-test";
const NAMESPACE: &str = "default";
/// Finalizer the test puts on an Endpoints to keep it terminating.
const HOLD: &str = "ecm.test/hold";

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// The managed-by value of mirrored slices (upstream's `controllerName`).
const MIRRORING: &str = "endpointslicemirroring-controller.k8s.io";
const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The API server, served over HTTP, and a client of the test's own.
struct Cluster {
    server: ApiServer,
    listener: ServeHandle,
    client: kube::Client,
}

impl Cluster {
    /// A fresh server; `garbage_collection` says whether its garbage
    /// collector runs (it deletes the slices of a deleted Endpoints too,
    /// racing the controller, so tests counting those deletes turn it off).
    async fn start(garbage_collection: bool) -> Self {
        let config = ecm_apiserver::Config::default().garbage_collection(garbage_collection);
        let server = ApiServer::new(config).unwrap();
        let listener = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = http_client(&listener.url(), "test");
        Self {
            server,
            listener,
            client,
        }
    }

    /// Starts a new mirroring controller, alone, with its own HTTP client and
    /// kube-controller-manager's default options.
    fn start_controller(&self) -> RunningController {
        let controller_client = http_client(&self.listener.url(), CONTROLLER_AGENT);
        RunningController::start(&controller_client, ControllerName::Mirroring, None)
    }

    fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    fn endpoints(&self) -> Api<Endpoints> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    fn slices_api(&self) -> Api<EndpointSlice> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    async fn create_service(&self, service: Value) -> Service {
        let service: Service = serde_json::from_value(service).unwrap();
        self.services().create(&PostParams::default(), &service).await.unwrap()
    }

    async fn create_endpoints(&self, endpoints: Value) -> Endpoints {
        let endpoints: Endpoints = serde_json::from_value(endpoints).unwrap();
        self.endpoints()
            .create(&PostParams::default(), &endpoints)
            .await
            .unwrap()
    }

    /// JSON merge patch of an Endpoints object (lists are replaced whole).
    async fn patch_endpoints(&self, name: &str, patch: &Value) -> Endpoints {
        self.endpoints()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap()
    }

    async fn patch_service(&self, name: &str, patch: &Value) {
        self.services()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Where the write log stands now.
    fn mark(&self) -> usize {
        self.server.write_log().len()
    }

    /// The controller's writes since `mark`: `verb name` for EndpointSlices,
    /// `verb resource/name` for anything else (which the controller must
    /// never write in these tests: no Endpoints, no Services, no events).
    fn writes_since(&self, mark: usize) -> Vec<String> {
        self.server
            .write_log()
            .into_iter()
            .skip(mark)
            .filter(|w| w.user_agent.as_deref() == Some(CONTROLLER_AGENT))
            .map(|w| {
                let name = w.name.unwrap_or_default();
                if w.resource == "endpointslices" {
                    format!("{} {name}", w.verb)
                } else {
                    format!("{} {}/{name}", w.verb, w.resource)
                }
            })
            .collect()
    }

    /// Every EndpointSlice as stored right now (read from the server's
    /// store, not through a cache).
    fn all_slices(&self) -> Vec<Value> {
        self.server.list_objects("endpointslices")
    }

    /// The slices mirrored for `name` as stored right now, IPv4 ones first,
    /// then by name.
    fn mirrored(&self, name: &str) -> Vec<Value> {
        let mut slices: Vec<Value> = self
            .all_slices()
            .into_iter()
            .filter(|s| label(s, SERVICE_NAME_LABEL) == Some(name) && label(s, MANAGED_BY_LABEL) == Some(MIRRORING))
            .collect();
        slices.sort_by_key(|s| (str_at(s, "/addressType").to_owned(), slice_name(s).to_owned()));
        slices
    }

    /// The mirrored slice of `name` for one address family; fails unless
    /// there is exactly one.
    fn mirrored_of(&self, name: &str, family: &str) -> Value {
        let slices: Vec<Value> = self
            .mirrored(name)
            .into_iter()
            .filter(|s| str_at(s, "/addressType") == family)
            .collect();
        assert_eq!(slices.len(), 1, "one {family} slice for {name}: {slices:#?}");
        slices.into_iter().next().unwrap()
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn label<'a>(slice: &'a Value, key: &str) -> Option<&'a str> {
    slice
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn slice_name(slice: &Value) -> &str {
    str_at(slice, "/metadata/name")
}

/// The names of `slices`.
fn names(slices: &[Value]) -> Vec<String> {
    slices.iter().map(|s| slice_name(s).to_owned()).collect()
}

/// The endpoints of a stored slice, by their (single) address.
fn endpoints_by_ip(slice: &Value) -> BTreeMap<String, Value> {
    slice
        .get("endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let addresses = e["addresses"].as_array().unwrap();
            assert_eq!(addresses.len(), 1, "one address per endpoint: {e}");
            (addresses[0].as_str().unwrap().to_owned(), e.clone())
        })
        .collect()
}

/// The ports of a stored slice, by name.
fn ports_by_name(slice: &Value) -> BTreeMap<String, Value> {
    slice
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| (str_at(p, "/name").to_owned(), p.clone()))
        .collect()
}

/// A mirrored endpoint: the address and `ready`, nothing else unless given
/// (§6.3: `serving`, `terminating`, `zone` never set).
fn endpoint(ip: &str, ready: bool) -> Value {
    json!({"addresses": [ip], "conditions": {"ready": ready}})
}

/// The ports of the `db` Endpoints: SQL on 5432, metrics on `metrics_port`
/// (appProtocol `http`).
fn db_ports(metrics_port: u16) -> Value {
    json!([
        {"name": "sql", "port": 5432, "protocol": "TCP"},
        {"name": "metrics", "port": metrics_port, "protocol": "TCP", "appProtocol": "http"},
    ])
}

/// A selector-less Service.
fn selectorless_service(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"ports": [{"name": "sql", "port": 5432, "targetPort": 5432}]},
    })
}

/// The `db` Endpoints: one subset, dual-stack, ready and not-ready
/// addresses, two ports, labels and annotations (one of which is never
/// mirrored).
fn db_endpoints() -> Value {
    json!({
        "metadata": {
            "name": "db",
            "labels": {"team": "data"},
            "annotations": {"note": "external database", LAST_APPLIED_ANNOTATION: "{}"},
        },
        "subsets": [{
            "addresses": [
                {"ip": "10.0.0.1", "hostname": "db-0", "nodeName": "node-a",
                 "targetRef": {"kind": "Pod", "namespace": NAMESPACE, "name": "db-0", "uid": "uid-db-0"}},
                {"ip": "fd00::1"},
            ],
            "notReadyAddresses": [{"ip": "10.0.0.2"}, {"ip": "fd00::2"}],
            "ports": db_ports(9187),
        }],
    })
}

/// A mirrorable Endpoints `name` with one ready IPv4 and one ready IPv6
/// address on one port: two mirrored slices.
fn dual_stack_endpoints(name: &str, n: u8) -> Value {
    json!({
        "metadata": {"name": name},
        "subsets": [{
            "addresses": [{"ip": format!("10.1.0.{n}")}, {"ip": format!("fd01::{n:x}")}],
            "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}],
        }],
    })
}

/// Fails unless `writes` are exactly one `verb` of each of `slices`, in any
/// order.
#[track_caller]
fn assert_one_each(writes: &[String], verb: &str, slices: &[String], context: &str) {
    let mut got = writes.to_vec();
    got.sort();
    let mut want: Vec<String> = slices.iter().map(|name| format!("{verb} {name}")).collect();
    want.sort();
    assert_eq!(got, want, "{context}");
}

/// Fails unless `writes` are `count` creates of slices named `<name>-…`.
#[track_caller]
fn assert_creates(writes: &[String], count: usize, name: &str, context: &str) {
    assert_eq!(writes.len(), count, "{context}: {writes:?}");
    assert!(
        writes.iter().all(|w| w.starts_with(&format!("create {name}-"))),
        "{context}: {writes:?}"
    );
}

/// A selector-less Service with a hand-written dual-stack Endpoints is
/// mirrored field by field (§6, §8), and every later change of the Endpoints
/// costs the writes §7 and §9 say: one update of the slice that changes, an
/// update in place of each slice for a port change (recycling), nothing for
/// changes that do not show on the slices, a delete for a family that goes,
/// a create for a new repacked subset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_of_a_selectorless_service_are_mirrored_and_followed() {
    let cluster = Cluster::start(true).await;
    let controller = cluster.start_controller();
    controller.quiet(&cluster.server).await;

    // Creation: one slice per address family of the one subset.
    let mark = cluster.mark();
    cluster.create_service(selectorless_service("db")).await;
    let endpoints = cluster.create_endpoints(db_endpoints()).await;
    controller.quiet(&cluster.server).await;
    assert_creates(&cluster.writes_since(mark), 2, "db", "one create per family");
    let (v4, v6) = (cluster.mirrored_of("db", "IPv4"), cluster.mirrored_of("db", "IPv6"));
    let uid = endpoints.metadata.uid.clone().unwrap();
    for slice in [&v4, &v6] {
        assert_eq!(
            slice["metadata"]["labels"],
            json!({"team": "data", SERVICE_NAME_LABEL: "db", MANAGED_BY_LABEL: MIRRORING}),
            "the Endpoints' labels plus the two of the controller"
        );
        assert_eq!(
            slice["metadata"]["annotations"],
            json!({"note": "external database"}),
            "last-applied-configuration is not mirrored"
        );
        assert_eq!(
            slice["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "Endpoints", "name": "db", "uid": uid,
                    "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(str_at(slice, "/metadata/generateName"), "db-");
        assert_eq!(
            ports_by_name(slice),
            BTreeMap::from([
                (
                    "metrics".to_owned(),
                    json!({"name": "metrics", "port": 9187, "protocol": "TCP", "appProtocol": "http"})
                ),
                (
                    "sql".to_owned(),
                    json!({"name": "sql", "port": 5432, "protocol": "TCP"})
                ),
            ])
        );
    }
    let db_0 = json!({
        "addresses": ["10.0.0.1"], "conditions": {"ready": true}, "hostname": "db-0", "nodeName": "node-a",
        "targetRef": {"kind": "Pod", "namespace": NAMESPACE, "name": "db-0", "uid": "uid-db-0"},
    });
    assert_eq!(
        endpoints_by_ip(&v4),
        BTreeMap::from([
            ("10.0.0.1".to_owned(), db_0),
            ("10.0.0.2".to_owned(), endpoint("10.0.0.2", false))
        ])
    );
    assert_eq!(
        endpoints_by_ip(&v6),
        BTreeMap::from([
            ("fd00::1".to_owned(), endpoint("fd00::1", true)),
            ("fd00::2".to_owned(), endpoint("fd00::2", false)),
        ])
    );
    let (v4_name, v6_name) = (slice_name(&v4).to_owned(), slice_name(&v6).to_owned());

    // An address added: one update of its family's slice, in place.
    let mut subset = db_endpoints()["subsets"][0].clone();
    subset["addresses"]
        .as_array_mut()
        .unwrap()
        .push(json!({"ip": "10.0.0.3"}));
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"subsets": [subset.clone()]}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_eq!(
        cluster.writes_since(mark),
        [format!("update {v4_name}")],
        "address added"
    );
    assert_eq!(
        endpoints_by_ip(&cluster.mirrored_of("db", "IPv4"))
            .keys()
            .collect::<Vec<_>>(),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );

    // A not-ready address removed: one update of the other family's slice.
    subset["notReadyAddresses"] = json!([{"ip": "10.0.0.2"}]);
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"subsets": [subset.clone()]}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_eq!(
        cluster.writes_since(mark),
        [format!("update {v6_name}")],
        "address removed"
    );
    assert_eq!(
        endpoints_by_ip(&cluster.mirrored_of("db", "IPv6")),
        BTreeMap::from([("fd00::1".to_owned(), endpoint("fd00::1", true))])
    );

    // A readiness flip: one update, the endpoint now ready.
    subset["addresses"]
        .as_array_mut()
        .unwrap()
        .push(json!({"ip": "10.0.0.2"}));
    subset["notReadyAddresses"] = json!([]);
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"subsets": [subset.clone()]}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_eq!(
        cluster.writes_since(mark),
        [format!("update {v4_name}")],
        "readiness flip"
    );
    assert_eq!(
        endpoints_by_ip(&cluster.mirrored_of("db", "IPv4"))["10.0.0.2"],
        endpoint("10.0.0.2", true)
    );

    // A port change moves both families to a new group: the creates are
    // recycled into updates of the old slices, which keep their names (§9.1).
    subset["ports"] = db_ports(9188);
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"subsets": [subset.clone()]}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_one_each(
        &cluster.writes_since(mark),
        "update",
        &[v4_name.clone(), v6_name.clone()],
        "port change",
    );
    assert_eq!(names(&cluster.mirrored("db")), [v4_name.clone(), v6_name.clone()]);
    for slice in cluster.mirrored("db") {
        assert_eq!(ports_by_name(&slice)["metrics"]["port"], 9188);
    }

    // Changes that do not show on the slices write nothing: the trigger-time
    // annotation (never mirrored) and a Service change that keeps it
    // selector-less.
    let mark = cluster.mark();
    cluster
        .patch_endpoints(
            "db",
            &json!({"metadata": {"annotations": {TRIGGER_TIME_ANNOTATION: "2024-01-15T10:00:00Z"}}}),
        )
        .await;
    cluster
        .patch_service("db", &json!({"metadata": {"labels": {"tier": "storage"}}}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_eq!(cluster.writes_since(mark), Vec::<String>::new(), "nothing to mirror");

    // A label change of the Endpoints is mirrored onto both slices.
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"metadata": {"labels": {"tier": "storage"}}}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_one_each(
        &cluster.writes_since(mark),
        "update",
        &[v4_name.clone(), v6_name.clone()],
        "label change",
    );
    for slice in cluster.mirrored("db") {
        assert_eq!(label(&slice, "tier"), Some("storage"));
        assert_eq!(slice["metadata"]["annotations"], json!({"note": "external database"}));
    }

    // The IPv6 address goes: the IPv6 slice is deleted, the IPv4 one kept
    // as it is.
    subset["addresses"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["ip"] != "fd00::1");
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"subsets": [subset.clone()]}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_eq!(cluster.writes_since(mark), [format!("delete {v6_name}")], "IPv6 gone");
    assert_eq!(names(&cluster.mirrored("db")), std::slice::from_ref(&v4_name));

    // A second subset on another port and address repacks into a subset of
    // its own: one create. With the same addresses as the first one, the
    // two subsets repack into one (§6.1): back to one slice, one of the two
    // updated in place (recycled) and the other deleted.
    let second =
        json!({"addresses": [{"ip": "10.0.1.1"}], "ports": [{"name": "admin", "port": 6432, "protocol": "TCP"}]});
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"subsets": [subset.clone(), second]}))
        .await;
    controller.quiet(&cluster.server).await;
    let writes = cluster.writes_since(mark);
    assert_creates(&writes, 1, "db", "second subset");
    let slices = cluster.mirrored("db");
    assert_eq!(slices.len(), 2);
    let admin = slices.iter().find(|s| slice_name(s) != v4_name).unwrap();
    assert_eq!(ports_by_name(admin).keys().collect::<Vec<_>>(), ["admin"]);
    assert_eq!(endpoints_by_ip(admin).keys().collect::<Vec<_>>(), ["10.0.1.1"]);
    let admin_name = slice_name(admin).to_owned();
    let merged = json!({"addresses": subset["addresses"].clone(),
                        "ports": [{"name": "admin", "port": 6432, "protocol": "TCP"}]});
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"subsets": [subset.clone(), merged]}))
        .await;
    controller.quiet(&cluster.server).await;
    let mut writes = cluster.writes_since(mark);
    writes.sort();
    // Both existing groups are gone; the one desired group (three ports)
    // recycles one of their slices and the other is deleted. Which one is
    // recycled depends on the groups' order, so only the shape is fixed.
    assert_eq!(writes.len(), 2, "{writes:?}");
    let kept = cluster.mirrored_of("db", "IPv4");
    assert!(
        [&v4_name, &admin_name].contains(&&slice_name(&kept).to_owned()),
        "{writes:?}"
    );
    let gone = if slice_name(&kept) == v4_name {
        &admin_name
    } else {
        &v4_name
    };
    assert_eq!(
        writes,
        [format!("delete {gone}"), format!("update {}", slice_name(&kept))],
        "merged subsets"
    );
    assert_eq!(
        ports_by_name(&kept).keys().collect::<Vec<_>>(),
        ["admin", "metrics", "sql"]
    );
    assert_eq!(
        endpoints_by_ip(&kept).keys().collect::<Vec<_>>(),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );

    // Endpoints and Service were never written by the controller.
    assert!(
        cluster.writes_since(0).iter().all(|w| !w.contains('/')),
        "{:?}",
        cluster.writes_since(0)
    );
    controller.stop().await;
}

/// Mirroring stops, and the mirrored slices are deleted one DELETE each
/// (§5, §9), when the Endpoints opts out (skip-mirror `"true"`, the
/// leader-election annotation), when the Service gains a selector, is
/// deleted, or the Endpoints is deleted; it resumes with one create per
/// slice when the cause goes. The garbage collector is off so that the
/// deletes of a deleted Endpoints' slices are the controller's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_slices_go_when_mirroring_stops_and_come_back_when_it_resumes() {
    let cluster = Cluster::start(false).await;
    let controller = cluster.start_controller();
    cluster.create_service(selectorless_service("db")).await;
    cluster.create_endpoints(dual_stack_endpoints("db", 1)).await;
    controller.quiet(&cluster.server).await;
    assert_eq!(cluster.mirrored("db").len(), 2);

    // Each cause, then its removal. Every stop deletes both slices; every
    // resume creates two new ones.
    let causes: [(&str, Value, Value); 3] = [
        (
            "skip-mirror",
            json!({"metadata": {"labels": {SKIP_MIRROR_LABEL: "true"}}}),
            json!({"metadata": {"labels": {SKIP_MIRROR_LABEL: "false"}}}),
        ),
        (
            "skip-mirror null",
            json!({"metadata": {"labels": {SKIP_MIRROR_LABEL: "true"}}}),
            json!({"metadata": {"labels": {SKIP_MIRROR_LABEL: null}}}),
        ),
        (
            "leader annotation",
            json!({"metadata": {"annotations": {LEADER_ANNOTATION: ""}}}),
            json!({"metadata": {"annotations": {LEADER_ANNOTATION: null}}}),
        ),
    ];
    for (cause, stop, resume) in causes {
        let before = names(&cluster.mirrored("db"));
        let mark = cluster.mark();
        cluster.patch_endpoints("db", &stop).await;
        controller.quiet(&cluster.server).await;
        assert_one_each(&cluster.writes_since(mark), "delete", &before, cause);
        assert!(cluster.mirrored("db").is_empty(), "{cause}");

        let mark = cluster.mark();
        cluster.patch_endpoints("db", &resume).await;
        controller.quiet(&cluster.server).await;
        assert_creates(&cluster.writes_since(mark), 2, "db", cause);
        assert_eq!(cluster.mirrored("db").len(), 2, "{cause}");
    }
    // A skip-mirror label other than "true" is mirrored like any other.
    for slice in cluster.mirrored("db") {
        assert_eq!(label(&slice, SKIP_MIRROR_LABEL), None);
    }
    let before = names(&cluster.mirrored("db"));
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"metadata": {"labels": {SKIP_MIRROR_LABEL: "True"}}}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_one_each(&cluster.writes_since(mark), "update", &before, "skip-mirror True");
    for slice in cluster.mirrored("db") {
        assert_eq!(label(&slice, SKIP_MIRROR_LABEL), Some("True"), "only \"true\" opts out");
    }

    // The Service gains a selector (the Endpoints controller is not running
    // here, so the hand-written Endpoints stays), then loses it.
    let before = names(&cluster.mirrored("db"));
    let mark = cluster.mark();
    cluster
        .patch_service("db", &json!({"spec": {"selector": {"app": "db"}}}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_one_each(&cluster.writes_since(mark), "delete", &before, "selector added");
    assert!(cluster.mirrored("db").is_empty());
    let mark = cluster.mark();
    cluster.patch_service("db", &json!({"spec": {"selector": null}})).await;
    controller.quiet(&cluster.server).await;
    assert_creates(&cluster.writes_since(mark), 2, "db", "selector removed");

    // The Service is deleted, then created again.
    let before = names(&cluster.mirrored("db"));
    let mark = cluster.mark();
    cluster.services().delete("db", &DeleteParams::default()).await.unwrap();
    controller.quiet(&cluster.server).await;
    assert_one_each(&cluster.writes_since(mark), "delete", &before, "Service deleted");
    assert!(cluster.mirrored("db").is_empty());
    let mark = cluster.mark();
    cluster.create_service(selectorless_service("db")).await;
    controller.quiet(&cluster.server).await;
    assert_creates(&cluster.writes_since(mark), 2, "db", "Service back");

    // The Endpoints is deleted: its slices go, one DELETE each; an Endpoints
    // of the same name created again gets new slices owned by it.
    let before = names(&cluster.mirrored("db"));
    let mark = cluster.mark();
    cluster
        .endpoints()
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    controller.quiet(&cluster.server).await;
    assert_one_each(&cluster.writes_since(mark), "delete", &before, "Endpoints deleted");
    assert!(cluster.mirrored("db").is_empty());
    let mark = cluster.mark();
    let again = cluster.create_endpoints(dual_stack_endpoints("db", 2)).await;
    controller.quiet(&cluster.server).await;
    assert_creates(&cluster.writes_since(mark), 2, "db", "Endpoints back");
    for slice in cluster.mirrored("db") {
        assert_eq!(
            str_at(&slice, "/metadata/ownerReferences/0/uid"),
            again.metadata.uid.as_deref().unwrap()
        );
    }

    // An Endpoints being deleted (held by a finalizer) gets no new slice,
    // but its existing slices still follow it (§9.2, §14.11); once it is
    // gone, so are they.
    cluster
        .patch_endpoints("db", &json!({"metadata": {"finalizers": [HOLD]}}))
        .await;
    cluster
        .endpoints()
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    controller.quiet(&cluster.server).await;
    let v4 = slice_name(&cluster.mirrored_of("db", "IPv4")).to_owned();
    let v6 = slice_name(&cluster.mirrored_of("db", "IPv6")).to_owned();
    let mark = cluster.mark();
    cluster
        .patch_endpoints(
            "db",
            &json!({"subsets": [
                {"addresses": [{"ip": "10.1.0.2"}, {"ip": "10.1.0.9"}, {"ip": "fd01::2"}],
                 "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]},
                {"addresses": [{"ip": "10.3.0.1"}], "ports": [{"name": "admin", "port": 6432, "protocol": "TCP"}]},
            ]}),
        )
        .await;
    controller.quiet(&cluster.server).await;
    assert_eq!(
        cluster.writes_since(mark),
        [format!("update {v4}")],
        "terminating: the update, not the create"
    );
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"metadata": {"finalizers": null}}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_one_each(&cluster.writes_since(mark), "delete", &[v4, v6], "finalizer released");
    assert!(cluster.endpoints().get_opt("db").await.unwrap().is_none());
    cluster.create_endpoints(dual_stack_endpoints("db", 3)).await;
    controller.quiet(&cluster.server).await;
    assert_eq!(cluster.mirrored("db").len(), 2);

    // An Endpoints whose subsets empty out keeps no slice.
    let before = names(&cluster.mirrored("db"));
    let mark = cluster.mark();
    cluster.patch_endpoints("db", &json!({"subsets": null})).await;
    controller.quiet(&cluster.server).await;
    assert_one_each(&cluster.writes_since(mark), "delete", &before, "subsets gone");
    assert!(cluster.mirrored("db").is_empty());
    controller.stop().await;
}

/// The controller writes nothing for Services with a selector (their
/// Endpoints belong to the Endpoints controller), for Endpoints without a
/// Service, for Endpoints without subsets, and never touches slices of
/// other managers (§5, §13); a leftover mirrored slice of a Service that has
/// a selector is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_with_selectors_and_slices_of_other_managers_are_left_alone() {
    let cluster = Cluster::start(true).await;
    cluster
        .create_service(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
        }))
        .await;
    cluster.create_endpoints(dual_stack_endpoints("web", 1)).await;
    // A slice of the EndpointSlice controller for the same Service.
    let foreign: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "web-abcde", "labels": {SERVICE_NAME_LABEL: "web",
                     MANAGED_BY_LABEL: "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.2.0.1"]}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }))
    .unwrap();
    cluster
        .slices_api()
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    // Endpoints with no Service, and a selector-less Service whose
    // Endpoints lists nothing.
    cluster.create_endpoints(dual_stack_endpoints("orphan", 2)).await;
    cluster.create_service(selectorless_service("empty")).await;
    cluster.create_endpoints(json!({"metadata": {"name": "empty"}})).await;
    // A mirrored slice left over for `web` (say, from before it had a
    // selector): the one thing to clean up.
    let leftover: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "web-mirrored", "labels": {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: MIRRORING}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.1"]}],
        "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}],
    }))
    .unwrap();
    cluster
        .slices_api()
        .create(&PostParams::default(), &leftover)
        .await
        .unwrap();
    let foreign_before = cluster
        .all_slices()
        .into_iter()
        .find(|s| slice_name(s) == "web-abcde")
        .unwrap();

    let mark = cluster.mark();
    let controller = cluster.start_controller();
    controller.quiet(&cluster.server).await;
    assert_eq!(cluster.writes_since(mark), ["delete web-mirrored"]);
    assert_eq!(
        cluster.all_slices(),
        std::slice::from_ref(&foreign_before),
        "only the foreign slice is left, untouched"
    );

    // Changes to them still write nothing.
    let mark = cluster.mark();
    cluster
        .patch_endpoints("web", &json!({"metadata": {"labels": {"changed": "yes"}}}))
        .await;
    cluster
        .patch_endpoints("orphan", &json!({"metadata": {"labels": {"changed": "yes"}}}))
        .await;
    cluster
        .patch_service("web", &json!({"spec": {"selector": {"app": "web", "track": "stable"}}}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_eq!(cluster.writes_since(mark), Vec::<String>::new());
    assert_eq!(cluster.all_slices(), [foreign_before]);

    // The orphan's Service appears: now it is mirrored.
    let mark = cluster.mark();
    cluster.create_service(selectorless_service("orphan")).await;
    controller.quiet(&cluster.server).await;
    assert_creates(&cluster.writes_since(mark), 2, "orphan", "Service for the orphan");
    assert_eq!(label(&cluster.mirrored_of("orphan", "IPv4"), "changed"), Some("yes"));
    controller.stop().await;
}

/// Twenty mirrored Services converge with one create per slice; a
/// controller restarted on the converged cluster writes nothing at all, and
/// then still follows a change with one update and puts back a slice
/// deleted by hand with one create (the slices it found at start-up are
/// tracked, §11).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_on_a_converged_cluster_writes_nothing() {
    const SERVICES: u8 = 20;
    let cluster = Cluster::start(true).await;
    let first = cluster.start_controller();
    let mark = cluster.mark();
    for n in 1..=SERVICES {
        let name = format!("ext-{n:02}");
        cluster.create_service(selectorless_service(&name)).await;
        let mut endpoints = dual_stack_endpoints(&name, n);
        endpoints["metadata"]["labels"] = json!({"n": n.to_string()});
        endpoints["metadata"]["annotations"] = json!({"owner": "team-a", LAST_APPLIED_ANNOTATION: "{}"});
        // Every other one has a second subset on another port (IPv4 only)
        // with a not-ready address.
        if n.is_multiple_of(2) {
            endpoints["subsets"].as_array_mut().unwrap().push(json!({
                "notReadyAddresses": [{"ip": format!("10.3.0.{n}")}],
                "ports": [{"name": "admin", "port": 6432, "protocol": "TCP"}],
            }));
        }
        cluster.create_endpoints(endpoints).await;
    }
    first.quiet(&cluster.server).await;
    let slices_per_service = |n: u8| if n.is_multiple_of(2) { 3 } else { 2 };
    let expected: usize = (1..=SERVICES).map(slices_per_service).sum();
    let writes = cluster.writes_since(mark);
    assert_eq!(writes.len(), expected, "one create per slice: {writes:?}");
    assert!(writes.iter().all(|w| w.starts_with("create ext-")), "{writes:?}");
    for n in 1..=SERVICES {
        assert_eq!(cluster.mirrored(&format!("ext-{n:02}")).len(), slices_per_service(n));
    }
    first.stop().await;

    let slices_before = cluster.all_slices();
    let mark = cluster.mark();
    let second = cluster.start_controller();
    second.quiet(&cluster.server).await;
    assert_eq!(
        cluster.writes_since(mark),
        Vec::<String>::new(),
        "the restarted controller wrote"
    );
    assert_eq!(cluster.all_slices(), slices_before, "slices untouched");

    // The restarted controller follows a change with one update.
    let v4 = slice_name(&cluster.mirrored_of("ext-03", "IPv4")).to_owned();
    let mark = cluster.mark();
    cluster
        .patch_endpoints(
            "ext-03",
            &json!({"subsets": [{"addresses": [{"ip": "10.1.0.3"}, {"ip": "10.1.0.33"}, {"ip": "fd01::3"}],
                                  "ports": [{"name": "sql", "port": 5432, "protocol": "TCP"}]}]}),
        )
        .await;
    second.quiet(&cluster.server).await;
    assert_eq!(cluster.writes_since(mark), [format!("update {v4}")]);

    // A slice it never wrote itself, deleted by hand, is put back.
    let v6 = slice_name(&cluster.mirrored_of("ext-04", "IPv6")).to_owned();
    let mark = cluster.mark();
    cluster
        .slices_api()
        .delete(&v6, &DeleteParams::default())
        .await
        .unwrap();
    second.quiet(&cluster.server).await;
    assert_creates(&cluster.writes_since(mark), 1, "ext-04", "hand delete after restart");
    let back = cluster.mirrored_of("ext-04", "IPv6");
    assert_ne!(slice_name(&back), v6, "a new slice");
    assert_eq!(
        endpoints_by_ip(&back),
        BTreeMap::from([("fd01::4".to_owned(), endpoint("fd01::4", true))])
    );
    assert_eq!(cluster.mirrored("ext-04").len(), 3);
    second.stop().await;
}

/// Slices changed by someone else: a deleted slice is recreated with one
/// create; an edit of its endpoints or labels is undone with one update;
/// an annotation-only edit does not change the generation, goes unnoticed
/// (as upstream) and is wiped by the next update (§8, §14.4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_deleted_or_edited_by_hand_are_restored() {
    let cluster = Cluster::start(true).await;
    let controller = cluster.start_controller();
    cluster.create_service(selectorless_service("db")).await;
    cluster.create_endpoints(db_endpoints()).await;
    controller.quiet(&cluster.server).await;
    let v4 = cluster.mirrored_of("db", "IPv4");
    let v6 = cluster.mirrored_of("db", "IPv6");

    // Deleted by hand: recreated, same content, new name.
    let mark = cluster.mark();
    cluster
        .slices_api()
        .delete(slice_name(&v4), &DeleteParams::default())
        .await
        .unwrap();
    controller.quiet(&cluster.server).await;
    assert_creates(&cluster.writes_since(mark), 1, "db", "hand delete");
    let recreated = cluster.mirrored_of("db", "IPv4");
    assert_ne!(slice_name(&recreated), slice_name(&v4));
    assert_eq!(endpoints_by_ip(&recreated), endpoints_by_ip(&v4));
    assert_eq!(recreated["metadata"]["labels"], v4["metadata"]["labels"]);
    assert_eq!(cluster.mirrored("db").len(), 2);

    // Endpoints dropped by hand: put back in one update.
    let v6_name = slice_name(&v6).to_owned();
    let mut edited: EndpointSlice = serde_json::from_value(v6.clone()).unwrap();
    edited.endpoints.as_mut().unwrap().truncate(1);
    let mark = cluster.mark();
    cluster
        .slices_api()
        .replace(&v6_name, &PostParams::default(), &edited)
        .await
        .unwrap();
    controller.quiet(&cluster.server).await;
    assert_eq!(cluster.writes_since(mark), [format!("update {v6_name}")], "hand edit");
    assert_eq!(
        endpoints_by_ip(&cluster.mirrored_of("db", "IPv6")),
        endpoints_by_ip(&v6)
    );

    // A label added by hand: the generation moves, the label goes.
    let mark = cluster.mark();
    cluster
        .slices_api()
        .patch(
            &v6_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"extra": "x"}}})),
        )
        .await
        .unwrap();
    controller.quiet(&cluster.server).await;
    assert_eq!(cluster.writes_since(mark), [format!("update {v6_name}")], "hand label");
    assert_eq!(label(&cluster.mirrored_of("db", "IPv6"), "extra"), None);

    // An annotation added by hand keeps the generation: not noticed.
    let mark = cluster.mark();
    cluster
        .slices_api()
        .patch(
            &v6_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"extra": "x"}}})),
        )
        .await
        .unwrap();
    controller.quiet(&cluster.server).await;
    assert_eq!(cluster.writes_since(mark), Vec::<String>::new(), "hand annotation");
    assert_eq!(
        str_at(&cluster.mirrored_of("db", "IPv6"), "/metadata/annotations/extra"),
        "x"
    );
    // The next change of the Endpoints rewrites both slices (an annotation
    // is mirrored) and the foreign annotation is gone.
    let mark = cluster.mark();
    cluster
        .patch_endpoints("db", &json!({"metadata": {"annotations": {"note": "moved"}}}))
        .await;
    controller.quiet(&cluster.server).await;
    assert_one_each(
        &cluster.writes_since(mark),
        "update",
        &[slice_name(&recreated).to_owned(), v6_name.clone()],
        "annotation change",
    );
    assert_eq!(
        cluster.mirrored_of("db", "IPv6")["metadata"]["annotations"],
        json!({"note": "moved"})
    );
    controller.stop().await;
}
