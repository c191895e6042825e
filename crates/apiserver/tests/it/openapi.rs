//! `/openapi/v2` and `/openapi/v3` over HTTP: content negotiation as
//! kube-apiserver does it, cache headers, every served kind (custom ones
//! too), and what kubectl does with them (`kubectl explain`, `apply` with
//! strict validation, `apply --server-side`, `diff`). The kubectl tests print
//! why and pass when kubectl is not installed.

use std::process::Command;

use ecm_apiserver::{ApiServer, Config, ResourceInfo};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::start;

const PROTO_V2: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
const PROTO_V3: &str = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf";

/// `GET uri` in-process with the headers given: status, headers, body.
async fn get(
    server: &ApiServer,
    uri: &str,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let mut req = Request::get(uri);
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    let resp = server
        .service()
        .oneshot(req.body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes().to_vec(),
    )
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn v2_is_json_and_protobuf_only_requests_get_406() {
    let server = ApiServer::new(Config::default()).unwrap();
    // client-go's discovery asks for protobuf alone.
    let (status, _, body) = get(&server, "/openapi/v2", &[(header::ACCEPT, PROTO_V2)]).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert!(body.is_empty());
    for accept in ["application/json", "*/*", ""] {
        let (status, headers, body) = get(&server, "/openapi/v2", &[(header::ACCEPT, accept)]).await;
        assert_eq!(status, StatusCode::OK, "{accept}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let doc = json(&body);
        assert_eq!(doc["swagger"], "2.0");
        let pdb = &doc["definitions"]["io.k8s.api.policy.v1.PodDisruptionBudget"];
        assert_eq!(pdb["x-kubernetes-group-version-kind"][0]["kind"], "PodDisruptionBudget");
        let job = &doc["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs/{name}"]["patch"];
        assert_eq!(job["x-kubernetes-action"], "patch");
    }
}

#[tokio::test]
async fn v3_index_hashes_redirects_and_etags() {
    let server = ApiServer::new(Config::default()).unwrap();
    let (status, _, body) = get(&server, "/openapi/v3", &[(header::ACCEPT, PROTO_V3)]).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_ACCEPTABLE, 0));
    let (status, _, body) = get(&server, "/openapi/v3", &[(header::ACCEPT, "application/json")]).await;
    assert_eq!(status, StatusCode::OK);
    let index = json(&body);
    let paths = index["paths"].as_object().unwrap();
    for gv in [
        "api/v1",
        "apis/apps/v1",
        "apis/batch/v1",
        "apis/policy/v1",
        "apis/discovery.k8s.io/v1",
    ] {
        assert!(paths.contains_key(gv), "{gv} missing from {index}");
    }
    let url = paths["apis/policy/v1"]["serverRelativeURL"].as_str().unwrap();
    let (status, headers, body) = get(&server, url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "public, immutable, max-age=31536000");
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    assert!(url.ends_with(etag.trim_matches('"')), "{url} {etag}");
    assert_eq!(json(&body)["openapi"], "3.0.0");

    let (status, _, body) = get(&server, url, &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    let (status, headers, _) = get(&server, "/openapi/v3/apis/policy/v1?hash=STALE", &[]).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(headers[header::LOCATION], url);
    let (status, _, _) = get(&server, "/openapi/v3/apis/nothing/v1", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn custom_resources_get_a_permissive_schema_with_their_kind() {
    let widgets = ResourceInfo::new("example.com", "v1", "widgets", "Widget", true);
    let server = ApiServer::new(Config::default().resource(widgets)).unwrap();
    let (_, _, body) = get(&server, "/openapi/v3/apis/example.com/v1", &[]).await;
    let doc = json(&body);
    let widget = &doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(widget["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(widget["x-kubernetes-group-version-kind"][0]["group"], "example.com");
    assert!(doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"].is_object());
}

fn kubectl_available() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("skipping: kubectl is not installed (not found on PATH)");
    }
    ok
}

/// kubectl against `kubeconfig` with a private cache; success and stdout+stderr.
async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(kubeconfig.with_extension("cache"))
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const MANIFEST: &str = "apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox:1.37}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: nginx:1.27, env: [{name: A, value: '1'}]}]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_apply_server_side_and_diff_use_the_documents() {
    if !kubectl_available() {
        return;
    }
    let h = start(Config::default()).await;
    let dir = std::env::temp_dir().join(format!("ecm-apiserver-openapi-{}", h.handle.addr().port()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    h.handle.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.join("manifest.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let file = manifest.to_str().unwrap();

    let (ok, out) = kubectl(&kubeconfig, &["explain", "endpointslice.endpoints"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("KIND:       EndpointSlice") && out.contains("FIELD: endpoints <[]Endpoint>"),
        "{out}"
    );
    assert!(out.contains("addresses\t<[]string> -required-"), "{out}");
    assert!(
        out.contains("endpoints is a list of unique endpoints in this slice"),
        "{out}"
    );
    let (ok, out) = kubectl(&kubeconfig, &["explain", "pdb.spec.maxUnavailable"]).await;
    assert!(ok && out.contains("An eviction is allowed if at most"), "{out}");

    // Client-side apply, strict validation (the default): no --validate=false.
    let (ok, out) = kubectl(&kubeconfig, &["apply", "-f", file]).await;
    assert!(ok, "{out}");
    for created in [
        "poddisruptionbudget.policy/web created",
        "job.batch/once created",
        "deployment.apps/web created",
    ] {
        assert!(out.contains(created), "{out}");
    }
    let (ok, out) = kubectl(&kubeconfig, &["apply", "-f", file]).await;
    assert!(ok && out.contains("deployment.apps/web unchanged"), "{out}");

    let changed = dir.join("changed.yaml");
    std::fs::write(&changed, MANIFEST.replace("replicas: 2", "replicas: 3")).unwrap();
    let changed = changed.to_str().unwrap();
    let (ok, out) = kubectl(&kubeconfig, &["diff", "-f", changed]).await;
    assert!(!ok, "kubectl diff exits 1 on a difference:\n{out}");
    assert!(
        out.contains("-  replicas: 2") && out.contains("+  replicas: 3"),
        "{out}"
    );

    let (ok, out) = kubectl(&kubeconfig, &["apply", "--server-side", "-f", changed]).await;
    assert!(ok && out.contains("deployment.apps/web serverside-applied"), "{out}");
    let deployment = h.server.get_object("deployments", Some("default"), "web").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    let (ok, out) = kubectl(&kubeconfig, &["diff", "--server-side", "-f", changed]).await;
    assert!(ok && out.is_empty(), "no difference left:\n{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
