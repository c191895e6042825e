//! `application/vnd.kubernetes.protobuf` over HTTP: content negotiation
//! (no kube::Client: raw requests to the `tower::Service`), protobuf
//! bodies, errors and watch frames, and kubectl's typed commands.

use bytes::Bytes;
use ecm_apiserver::{ApiServer, Config};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use k8s_pb::api::core::v1 as pbcore;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pbmeta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::kubectl::{Kubectl, kubectl_available};
use crate::start;

const PB: &str = "application/vnd.kubernetes.protobuf";

async fn call(
    server: &ApiServer,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, String, Bytes) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp: Response<_> = server
        .service()
        .oneshot(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, body)
}

/// The `runtime.Unknown` of an enveloped body.
fn envelope(body: &[u8]) -> Unknown {
    assert_eq!(&body[..4], b"k8s\0", "no protobuf magic");
    Unknown::decode(&body[4..]).unwrap()
}

fn enveloped(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

async fn server_with_pod() -> ApiServer {
    let server = ApiServer::new(Config::default()).unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}});
    let (status, _, body) = call(
        &server,
        "POST",
        "/api/v1/namespaces/default/pods",
        &[("content-type", "application/json")],
        pod.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    server
}

#[tokio::test]
async fn accept_picks_the_encoding() {
    let server = server_with_pod().await;
    let path = "/api/v1/namespaces/default/pods/web-0";
    let cases: &[(&str, &str)] = &[
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/vnd.kubernetes.protobuf, application/json", PB),
        (
            "application/vnd.kubernetes.protobuf;q=0.5, application/json",
            "application/json",
        ),
        ("application/json;q=0.5, application/vnd.kubernetes.protobuf;q=0.8", PB),
        ("text/html, application/vnd.kubernetes.protobuf;q=0.1", PB),
    ];
    for (accept, want) in cases {
        let (status, ct, body) = call(&server, "GET", path, &[("accept", accept)], vec![]).await;
        assert_eq!(status, 200, "{accept}");
        assert_eq!(ct, *want, "{accept}");
        if *want == PB {
            let unknown = envelope(&body);
            let tm = unknown.type_meta.unwrap();
            assert_eq!(
                (tm.api_version.as_deref(), tm.kind.as_deref()),
                (Some("v1"), Some("Pod"))
            );
            let pod = pbcore::Pod::decode(unknown.raw.unwrap().as_slice()).unwrap();
            assert_eq!(pod.metadata.unwrap().name.as_deref(), Some("web-0"));
        } else {
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["metadata"]["name"], "web-0");
        }
    }
}

#[tokio::test]
async fn unacceptable_and_unsupported_types_get_a_status() {
    let server = server_with_pod().await;
    let (status, ct, body) = call(
        &server,
        "GET",
        "/api/v1/namespaces/default/pods/web-0",
        &[("accept", "text/html")],
        vec![],
    )
    .await;
    assert_eq!(status, 406);
    assert_eq!(ct, "application/json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["reason"].as_str(), v["code"].as_i64()),
        (Some("Status"), Some("NotAcceptable"), Some(406))
    );

    let (status, _, body) = call(
        &server,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &[("content-type", "application/cbor")],
        vec![0xa0],
    )
    .await;
    assert_eq!(status, 415);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["reason"], "UnsupportedMediaType");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("application/vnd.kubernetes.protobuf"),
        "{v}"
    );

    // Tables are JSON only: protobuf alone cannot answer `as=Table`.
    let pb_table = "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io";
    let (status, _, _) = call(
        &server,
        "GET",
        "/api/v1/namespaces/default/pods",
        &[("accept", pb_table)],
        vec![],
    )
    .await;
    assert_eq!(status, 406);
    let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let (status, ct, body) = call(
        &server,
        "GET",
        "/api/v1/namespaces/default/pods",
        &[("accept", kubectl_get)],
        vec![],
    )
    .await;
    assert_eq!((status.as_u16(), ct.as_str()), (200, "application/json"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["kind"], "Table");
}

#[tokio::test]
async fn protobuf_bodies_lists_and_errors() {
    let server = server_with_pod().await;
    let cm = pbcore::ConfigMap {
        metadata: Some(pbmeta::ObjectMeta {
            name: Some("cm".into()),
            namespace: Some(String::new()),
            ..Default::default()
        }),
        data: [("a".to_owned(), "b".to_owned())].into_iter().collect(),
        ..Default::default()
    };
    let body = enveloped("v1", "ConfigMap", cm.encode_to_vec());
    let (status, ct, resp) = call(
        &server,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &[
            ("content-type", PB),
            ("accept", "application/vnd.kubernetes.protobuf,application/json"),
        ],
        body,
    )
    .await;
    assert_eq!((status.as_u16(), ct.as_str()), (201, PB));
    let created = pbcore::ConfigMap::decode(envelope(&resp).raw.unwrap().as_slice()).unwrap();
    let meta = created.metadata.unwrap();
    assert!(meta.uid.is_some_and(|u| !u.is_empty()));
    assert_eq!(created.data.get("a").map(String::as_str), Some("b"));
    let (_, _, json) = call(&server, "GET", "/api/v1/namespaces/default/configmaps/cm", &[], vec![]).await;
    let v: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["data"], json!({"a": "b"}));
    assert_eq!(v["metadata"]["namespace"], "default");

    let (status, ct, resp) = call(
        &server,
        "GET",
        "/api/v1/namespaces/default/pods",
        &[("accept", PB)],
        vec![],
    )
    .await;
    assert_eq!((status.as_u16(), ct.as_str()), (200, PB));
    let unknown = envelope(&resp);
    assert_eq!(unknown.type_meta.unwrap().kind.as_deref(), Some("PodList"));
    let list = pbcore::PodList::decode(unknown.raw.unwrap().as_slice()).unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.unwrap().resource_version.is_some());

    let (status, ct, resp) = call(
        &server,
        "GET",
        "/api/v1/namespaces/default/pods/nope",
        &[("accept", PB)],
        vec![],
    )
    .await;
    assert_eq!((status.as_u16(), ct.as_str()), (404, PB));
    let unknown = envelope(&resp);
    assert_eq!(unknown.type_meta.unwrap().kind.as_deref(), Some("Status"));
    let st = pbmeta::Status::decode(unknown.raw.unwrap().as_slice()).unwrap();
    assert_eq!((st.code, st.reason.as_deref()), (Some(404), Some("NotFound")));

    // A body that is not a protobuf object.
    let (status, _, _) = call(
        &server,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        &[("content-type", PB)],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn watch_in_protobuf_frames() {
    let server = server_with_pod().await;
    let (status, ct, body) = call(
        &server,
        "GET",
        "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
        &[("accept", "application/vnd.kubernetes.protobuf;stream=watch")],
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ct, "application/vnd.kubernetes.protobuf;stream=watch");
    let mut rest: &[u8] = &body;
    let mut events = Vec::new();
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let ev = pbmeta::WatchEvent::decode(&rest[4..4 + len]).unwrap();
        let unknown = envelope(&ev.object.unwrap().raw.unwrap());
        let kind = unknown.type_meta.unwrap().kind.unwrap();
        let pod = pbcore::Pod::decode(unknown.raw.unwrap().as_slice()).unwrap();
        events.push((ev.r#type.unwrap(), kind, pod.metadata.unwrap()));
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty(), "a partial frame");
    assert_eq!(events[0].0, "ADDED");
    assert_eq!(events[0].1, "Pod");
    assert_eq!(events[0].2.name.as_deref(), Some("web-0"));
    let end = &events[1];
    assert_eq!((end.0.as_str(), end.1.as_str()), ("BOOKMARK", "Pod"));
    assert_eq!(
        end.2.annotations.get("k8s.io/initial-events-end").map(String::as_str),
        Some("true")
    );
}

/// `kubectl create namespace|configmap|deployment` send protobuf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_typed_create_commands() {
    if !kubectl_available() {
        return;
    }
    let h = start(Config::default()).await;
    let k = Kubectl::new(&h, "protobuf");
    let out = k.run(&["create", "namespace", "foo", "-v=8"], None).await;
    let (stdout, log) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("namespace/foo created"),
        "{stdout}{log}"
    );
    assert!(
        log.contains("application/vnd.kubernetes.protobuf"),
        "kubectl did not send protobuf: {log}"
    );
    let out = k
        .ok(&["create", "configmap", "cm", "-n", "foo", "--from-literal=a=b"], None)
        .await;
    assert!(out.contains("configmap/cm created"), "{out}");
    let out = k
        .ok(&["create", "deployment", "web", "--image=x", "-n", "foo"], None)
        .await;
    assert!(out.contains("deployment.apps/web created"), "{out}");

    let yaml = k.ok(&["get", "ns", "foo", "-o", "yaml"], None).await;
    assert!(yaml.contains("name: foo") && yaml.contains("kind: Namespace"), "{yaml}");
    let ns: Value = serde_json::from_str(&k.ok(&["get", "ns", "foo", "-o", "json"], None).await).unwrap();
    assert_eq!(ns["metadata"]["name"], "foo");
    assert!(ns["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty()), "{ns}");
    assert!(ns["metadata"].get("generateName").is_none(), "{ns}");
    let cm: Value = serde_json::from_str(&k.ok(&["get", "cm", "cm", "-n", "foo", "-o", "json"], None).await).unwrap();
    assert_eq!(cm["data"], json!({"a": "b"}));
    let d: Value =
        serde_json::from_str(&k.ok(&["get", "deploy", "web", "-n", "foo", "-o", "json"], None).await).unwrap();
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "x");
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app"], "web");
    let table = k.ok(&["get", "deploy", "-n", "foo"], None).await;
    assert!(table.contains("web"), "{table}");
    let out = k.ok(&["delete", "configmap", "cm", "-n", "foo"], None).await;
    assert!(out.contains("configmap \"cm\" deleted"), "{out}");
    let out = k.run(&["get", "configmap", "cm", "-n", "foo"], None).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"), "{out:?}");
}
