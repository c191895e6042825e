use std::collections::BTreeMap;

use ecm_apiserver::{Config, WriteVerb};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{obj, start, status};

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    obj(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}))
}

#[tokio::test]
async fn crud_round_trip_is_recorded_in_the_write_log() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let created = cms.create(&PostParams::default(), &cm("a", &[])).await.unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    let rv1: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();

    let mut got = cms.get("a").await.unwrap();
    assert_eq!(got.metadata.resource_version, created.metadata.resource_version);
    got.data.as_mut().unwrap().insert("k".into(), "w".into());
    let replaced = cms.replace("a", &PostParams::default(), &got).await.unwrap();
    let rv2: u64 = replaced.metadata.resource_version.as_deref().unwrap().parse().unwrap();
    assert!(rv2 > rv1);

    let merged = cms
        .patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"m": "1"}})))
        .await
        .unwrap();
    assert_eq!(merged.data.unwrap().get("m").map(String::as_str), Some("1"));
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/a")
        .header("Content-Type", "application/json-patch+json")
        .body(br#"[{"op": "replace", "path": "/data/k", "value": "j"}]"#.to_vec())
        .unwrap();
    let patched: ConfigMap = h.client.request(req).await.unwrap();
    assert_eq!(patched.data.unwrap().get("k").map(String::as_str), Some("j"));
    let sm = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(sm.metadata.labels.unwrap().get("x").map(String::as_str), Some("y"));

    let deleted = cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_right(), "configmaps answer a delete with a Status");
    assert_eq!(status(cms.get("a").await.unwrap_err()).code, 404);

    let verbs: Vec<_> = h
        .server
        .write_log()
        .iter()
        .map(|w| (w.verb, w.resource.clone(), w.name.clone()))
        .collect();
    let a = Some("a".to_owned());
    assert_eq!(
        verbs,
        vec![
            (WriteVerb::Create, "configmaps".into(), a.clone()),
            (WriteVerb::Update, "configmaps".into(), a.clone()),
            (WriteVerb::Patch, "configmaps".into(), a.clone()),
            (WriteVerb::Patch, "configmaps".into(), a.clone()),
            (WriteVerb::Patch, "configmaps".into(), a.clone()),
            (WriteVerb::Delete, "configmaps".into(), a),
        ]
    );
    assert!(h.server.get_object("configmaps", Some("default"), "a").is_none());
}

#[tokio::test]
async fn conflicts_already_exists_and_not_found_are_upstream_statuses() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let first = cms.create(&PostParams::default(), &cm("a", &[])).await.unwrap();
    let s = status(cms.create(&PostParams::default(), &cm("a", &[])).await.unwrap_err());
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (409, "AlreadyExists", "configmaps \"a\" already exists")
    );

    let mut changed = first.clone();
    changed.data = Some([("k".to_owned(), "changed".to_owned())].into());
    cms.replace("a", &PostParams::default(), &changed).await.unwrap();
    let s = status(cms.replace("a", &PostParams::default(), &changed).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let s = status(cms.get("nope").await.unwrap_err());
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (404, "NotFound", "configmaps \"nope\" not found")
    );
    let details = s.details.unwrap();
    assert_eq!((details.name.as_str(), details.kind.as_str()), ("nope", "configmaps"));

    let elsewhere: Api<ConfigMap> = Api::namespaced(h.client.clone(), "missing");
    let s = status(
        elsewhere
            .create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.message.as_str()), (404, "namespaces \"missing\" not found"));
}

#[tokio::test]
async fn generate_name_makes_unique_names() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let mut names = Vec::new();
    for _ in 0..20 {
        let c: ConfigMap = obj(json!({"metadata": {"generateName": "web-"}}));
        let created = cms.create(&PostParams::default(), &c).await.unwrap();
        names.push(created.metadata.name.unwrap());
    }
    assert!(names.iter().all(|n| n.starts_with("web-") && n.len() == 9));
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20);
    assert!(
        h.server
            .write_log()
            .iter()
            .all(|w| w.name.as_deref().is_some_and(|n| n.starts_with("web-")))
    );
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    cms.create(&PostParams::default(), &cm("a", &[("app", "web"), ("tier", "front")]))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("b", &[("app", "web"), ("tier", "back")]))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("c", &[("app", "db")]))
        .await
        .unwrap();
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    let q = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(cms.list(&q("app=web")).await.unwrap()), ["a", "b"]);
    assert_eq!(names(cms.list(&q("app=web,tier!=front")).await.unwrap()), ["b"]);
    assert_eq!(names(cms.list(&q("app in (db,x)")).await.unwrap()), ["c"]);
    assert_eq!(names(cms.list(&q("!tier")).await.unwrap()), ["c"]);
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    let s = status(
        cms.list(&ListParams::default().fields("spec.nodeName=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (400, "field label not supported: spec.nodeName")
    );

    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    for (name, node) in [("p1", "n1"), ("p2", "n2")] {
        let p: Pod = obj(
            json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}}),
        );
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let l = pods
        .list(&ListParams::default().fields("spec.nodeName=n2,status.phase=Pending"))
        .await
        .unwrap();
    assert_eq!(l.items.len(), 1);
    assert_eq!(l.items[0].metadata.name.as_deref(), Some("p2"));
}

#[tokio::test]
async fn pagination_walks_a_consistent_snapshot() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    for i in 0..25 {
        cms.create(&PostParams::default(), &cm(&format!("cm-{i:02}"), &[]))
            .await
            .unwrap();
    }
    let first = cms.list(&ListParams::default().limit(10)).await.unwrap();
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.metadata.remaining_item_count, Some(15));
    let token = first.metadata.continue_.clone().unwrap();
    // A change after the first page is not visible in later pages.
    cms.delete("cm-24", &DeleteParams::default()).await.unwrap();
    let second = cms
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.metadata.resource_version, first.metadata.resource_version);
    let third = cms
        .list(
            &ListParams::default()
                .limit(10)
                .continue_token(second.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert!(third.metadata.continue_.is_none());
    let all: Vec<String> = [first, second, third]
        .into_iter()
        .flat_map(|l| l.items)
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(all.len(), 25);
    assert_eq!(all.last().map(String::as_str), Some("cm-24"));
    assert_eq!(cms.list(&ListParams::default()).await.unwrap().items.len(), 24);
}

#[tokio::test]
async fn finalizers_keep_objects_until_removed_and_namespaces_are_emptied() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let c: ConfigMap = obj(json!({"metadata": {"name": "f", "finalizers": ["example.com/hold"]}}));
    cms.create(&PostParams::default(), &c).await.unwrap();
    let pending = cms.delete("f", &DeleteParams::default()).await.unwrap();
    let held = pending.left().expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(status(cms.get("f").await.unwrap_err()).code, 404);

    let nss: Api<Namespace> = Api::all(h.client.clone());
    nss.create(&PostParams::default(), &obj(json!({"metadata": {"name": "tmp"}})))
        .await
        .unwrap();
    let tmp: Api<ConfigMap> = Api::namespaced(h.client.clone(), "tmp");
    tmp.create(&PostParams::default(), &cm("x", &[])).await.unwrap();
    nss.delete("tmp", &DeleteParams::default()).await.unwrap();
    crate::eventually("namespace tmp to go", || async {
        nss.get_opt("tmp").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(h.server.get_object("configmaps", Some("tmp"), "x").is_none());
}

#[tokio::test]
async fn deletecollection_and_dry_run() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    cms.create(&dry, &cm("dry", &[])).await.unwrap();
    assert!(cms.get_opt("dry").await.unwrap().is_none());
    for i in 0..3 {
        cms.create(&PostParams::default(), &cm(&format!("x{i}"), &[("del", "yes")]))
            .await
            .unwrap();
    }
    cms.create(&PostParams::default(), &cm("keep", &[])).await.unwrap();
    cms.delete_collection(&DeleteParams::default(), &ListParams::default().labels("del=yes"))
        .await
        .unwrap();
    let left: Vec<_> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["keep"]);
    assert_eq!(
        h.server
            .write_log()
            .iter()
            .filter(|w| w.verb == WriteVerb::DeleteCollection)
            .count(),
        1
    );
}

#[tokio::test]
async fn discovery_finds_the_served_resources() {
    let h = start(Config::default()).await;
    let discovery = kube::Discovery::new(h.client.clone()).run().await.unwrap();
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            found.push(format!("{}/{}", ar.group, ar.plural));
            if ar.plural == "pods" {
                assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
            }
        }
    }
    for want in [
        "/pods",
        "/services",
        "/endpoints",
        "discovery.k8s.io/endpointslices",
        "coordination.k8s.io/leases",
        "events.k8s.io/events",
        "apps/deployments",
    ] {
        assert!(found.iter().any(|f| f == want), "{want} missing from {found:?}");
    }
    let version = h.client.apiserver_version().await.unwrap();
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "36"));
}

#[tokio::test]
async fn in_process_client_needs_no_socket() {
    let server = ecm_apiserver::ApiServer::new(Config::default()).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(server.client_with_user_agent("ecm-test"), "default");
    cms.create(&PostParams::default(), &cm("a", &[])).await.unwrap();
    assert_eq!(server.write_log()[0].user_agent.as_deref(), Some("ecm-test"));
    let inserted = server
        .insert_object(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": []}, "status": {"podIP": "10.1.2.3", "phase": "Running"}}),
        )
        .unwrap();
    assert_eq!(inserted["status"]["podIP"], "10.1.2.3");
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let p = pods.get("p").await.unwrap();
    assert_eq!(p.status.unwrap().pod_ip.as_deref(), Some("10.1.2.3"));
    assert_eq!(server.write_log().len(), 1, "insert_object is not a client write");
    assert_eq!(server.list_objects("pods").len(), 1);
    assert_eq!(
        server.latest_event_resource_version("pods").unwrap(),
        server.latest_resource_version()
    );
}

#[tokio::test]
async fn core_and_events_k8s_io_events_are_creatable_and_listable() {
    let h = start(Config::default()).await;
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(h.client.clone(), "default");
    let e: k8s_openapi::api::core::v1::Event = obj(json!({
        "metadata": {"generateName": "foo."}, "type": "Warning", "reason": "TooManyAddressesToMirror",
        "message": "1000 addresses", "involvedObject": {"kind": "Endpoints", "namespace": "default", "name": "foo"},
        "source": {"component": "endpoint-slice-mirroring-controller"}}));
    core.create(&PostParams::default(), &e).await.unwrap();
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=foo,reason=TooManyAddressesToMirror"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let ev: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(h.client.clone(), "default");
    let e: k8s_openapi::api::events::v1::Event = obj(json!({
        "metadata": {"name": "bar.1"}, "eventTime": "2026-01-01T00:00:00.000000Z", "type": "Normal", "reason": "Synced",
        "action": "Sync", "reportingController": "ecm", "reportingInstance": "ecm-0", "regarding": {"kind": "Service", "name": "bar"}}));
    ev.create(&PostParams::default(), &e).await.unwrap();
    assert_eq!(
        ev.list(&ListParams::default().fields("regarding.name=bar"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(h.server.list_objects("events.events.k8s.io").len(), 1);
    assert_eq!(h.server.list_objects("events").len(), 1);
}
