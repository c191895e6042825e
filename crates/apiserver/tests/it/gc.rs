use ecm_apiserver::Config;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use serde_json::json;

use crate::{eventually, obj, start};

fn slice_owned_by(svc: &Service, name: &str) -> EndpointSlice {
    obj(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": svc.metadata.name},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc.metadata.name, "uid": svc.metadata.uid,
                "controller": true, "blockOwnerDeletion": true}]},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    }))
}

#[tokio::test]
async fn deleting_a_service_collects_its_endpoint_slices() {
    let h = start(Config::default()).await;
    let svcs: Api<Service> = Api::namespaced(h.client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(h.client.clone(), "default");
    let svc = svcs
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})),
        )
        .await
        .unwrap();
    slices
        .create(&PostParams::default(), &slice_owned_by(&svc, "web-1"))
        .await
        .unwrap();
    let other = svcs
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "other"}, "spec": {"ports": [{"port": 80}]}})),
        )
        .await
        .unwrap();
    slices
        .create(&PostParams::default(), &slice_owned_by(&other, "other-1"))
        .await
        .unwrap();
    let writes = h.server.write_log().len();
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("slice web-1 collected", || async {
        slices.get_opt("web-1").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(slices.get_opt("other-1").await.unwrap().is_some());
    assert_eq!(
        h.server.write_log().len(),
        writes + 1,
        "GC deletes are not client writes"
    );
}

#[tokio::test]
async fn foreground_and_orphan_propagation() {
    let h = start(Config::default()).await;
    let svcs: Api<Service> = Api::namespaced(h.client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(h.client.clone(), "default");
    let svc = svcs
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "fg"}, "spec": {}})),
        )
        .await
        .unwrap();
    slices
        .create(&PostParams::default(), &slice_owned_by(&svc, "fg-1"))
        .await
        .unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    svcs.delete("fg", &dp).await.unwrap();
    eventually("owner gone after its dependents", || async {
        svcs.get_opt("fg").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(slices.get_opt("fg-1").await.unwrap().is_none());

    let svc = svcs
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "or"}, "spec": {}})),
        )
        .await
        .unwrap();
    slices
        .create(&PostParams::default(), &slice_owned_by(&svc, "or-1"))
        .await
        .unwrap();
    svcs.delete("or", &DeleteParams::orphan()).await.unwrap();
    eventually("owner gone", || async {
        svcs.get_opt("or").await.unwrap().is_none().then_some(())
    })
    .await;
    let orphan = slices.get("or-1").await.unwrap();
    assert!(orphan.metadata.owner_references.is_none_or(|r| r.is_empty()));
}

#[tokio::test]
async fn objects_with_absent_owners_are_collected() {
    let h = start(Config::default().dangling_owner_delay(std::time::Duration::from_millis(10))).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let c: ConfigMap = obj(
        json!({"metadata": {"name": "dangling", "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "ghost", "uid": "0000"}]}}),
    );
    cms.create(&PostParams::default(), &c).await.unwrap();
    eventually("dangling dependent collected", || async {
        cms.get_opt("dangling").await.unwrap().is_none().then_some(())
    })
    .await;
}
