use ecm_apiserver::Config;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{obj, start, status};

fn causes(s: &kube::core::Status) -> Vec<(String, String, String)> {
    s.details
        .as_ref()
        .unwrap()
        .causes
        .iter()
        .map(|c| (c.reason.clone(), c.field.clone(), c.message.clone()))
        .collect()
}

#[tokio::test]
async fn endpoint_slices_are_validated_like_upstream() {
    let h = start(Config::default()).await;
    let slices: Api<EndpointSlice> = Api::namespaced(h.client.clone(), "default");
    let bad: EndpointSlice = obj(json!({
        "metadata": {"name": "s"}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["fd00::1"]}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "http", "port": 81, "protocol": "TCP"}],
    }));
    let s = status(slices.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        causes(&s),
        vec![
            (
                "FieldValueInvalid".into(),
                "endpoints[0].addresses[0]".into(),
                "Invalid value: \"fd00::1\": must be a valid IPv4 address".into()
            ),
            (
                "FieldValueDuplicate".into(),
                "ports[1].name".into(),
                "Duplicate value: \"http\"".into()
            ),
        ]
    );
    assert!(
        s.message
            .starts_with("EndpointSlice.discovery.k8s.io \"s\" is invalid: ["),
        "{}",
        s.message
    );

    let eps: Vec<_> = (0..1001)
        .map(|i| json!({"addresses": [format!("10.1.{}.{}", i / 200, i % 200 + 1)]}))
        .collect();
    let big: EndpointSlice = obj(json!({"metadata": {"name": "big"}, "addressType": "IPv4", "endpoints": eps}));
    let s = status(slices.create(&PostParams::default(), &big).await.unwrap_err());
    assert_eq!(
        causes(&s),
        vec![(
            "FieldValueTooMany".into(),
            "endpoints".into(),
            "Too many: 1001: must have at most 1000 items".into()
        )]
    );

    let ok: EndpointSlice = obj(
        json!({"metadata": {"name": "ok"}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]}),
    );
    let created = slices.create(&PostParams::default(), &ok).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let port = &created.ports.unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.protocol.as_deref()),
        (Some(""), Some("TCP")),
        "ports are defaulted"
    );
    let s = status(
        slices
            .patch(
                "ok",
                &PatchParams::default(),
                &Patch::Merge(json!({"addressType": "IPv6"})),
            )
            .await
            .unwrap_err(),
    );
    assert!(
        causes(&s)
            .iter()
            .any(|c| c.1 == "addressType" && c.2.contains("field is immutable"))
    );
    let relabeled = slices
        .patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(relabeled.metadata.generation, Some(2));
    let annotated = slices
        .patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(annotated.metadata.generation, Some(2));
}

#[tokio::test]
async fn endpoints_reject_special_addresses_and_bad_ports() {
    let h = start(Config::default()).await;
    let api: Api<Endpoints> = Api::namespaced(h.client.clone(), "default");
    let bad: Endpoints = obj(json!({"metadata": {"name": "e"}, "subsets": [{
        "addresses": [{"ip": "127.0.0.1"}, {"ip": "169.254.1.1"}, {"ip": "not-an-ip"}],
        "ports": [{"port": 0, "protocol": "TCP"}]}]}));
    let s = status(api.create(&PostParams::default(), &bad).await.unwrap_err());
    let fields: Vec<String> = causes(&s).into_iter().map(|c| c.1).collect();
    assert_eq!(
        fields,
        [
            "subsets[0].addresses[0].ip",
            "subsets[0].addresses[1].ip",
            "subsets[0].addresses[2].ip",
            "subsets[0].addresses[2].ip",
            "subsets[0].ports[0].port"
        ]
    );
    let good: Endpoints = obj(
        json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
    );
    api.create(&PostParams::default(), &good).await.unwrap();
}

#[tokio::test]
async fn metadata_and_pod_status_ips_are_validated() {
    let h = start(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.client.clone(), "default");
    let s = status(
        cms.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "Bad_Name", "labels": {"x": "-no"}}})),
        )
        .await
        .unwrap_err(),
    );
    let fields: Vec<String> = causes(&s).into_iter().map(|c| c.1).collect();
    assert_eq!(fields, ["metadata.name", "metadata.labels"]);

    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let p: Pod = obj(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}));
    pods.create(&PostParams::default(), &p).await.unwrap();
    let bad = Patch::Merge(json!({"status": {"podIP": "10.0.0.300", "podIPs": [{"ip": "10.0.0.300"}]}}));
    let s = status(pods.patch_status("p", &PatchParams::default(), &bad).await.unwrap_err());
    assert_eq!(s.code, 422);
    let good = Patch::Merge(json!({"status": {"podIP": "10.0.0.3", "podIPs": [{"ip": "10.0.0.3"}]}}));
    let pod = pods.patch_status("p", &PatchParams::default(), &good).await.unwrap();
    assert_eq!(pod.status.unwrap().pod_ip.as_deref(), Some("10.0.0.3"));
    // Status is ignored on updates of the main resource.
    let ignored = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"podIP": "10.0.0.9"}})),
        )
        .await
        .unwrap();
    assert_eq!(ignored.status.unwrap().pod_ip.as_deref(), Some("10.0.0.3"));
}
