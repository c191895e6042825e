//! kubectl against the server. Each test prints why and passes when
//! kubectl is not installed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ecm_apiserver::{Config, KubeletConfig, WriteVerb};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::{Harness, obj, start};

pub(crate) fn kubectl_available() -> bool {
    match Command::new("kubectl").args(["version", "--client"]).output() {
        Ok(o) if o.status.success() => true,
        _ => {
            println!("skipping: kubectl is not installed (not found on PATH)");
            false
        }
    }
}

pub(crate) struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub(crate) fn new(h: &Harness, name: &str) -> Self {
        let kubeconfig =
            std::env::temp_dir().join(format!("ecm-apiserver-{name}-{}.kubeconfig", h.handle.addr().port()));
        h.handle.write_kubeconfig(&kubeconfig).unwrap();
        Self { kubeconfig }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd
    }

    /// Runs kubectl (on a blocking thread, the server keeps serving).
    pub(crate) async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        let stdin = stdin.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                std::io::Write::write_all(&mut input, text.as_bytes()).unwrap();
            }
            drop(input);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    pub(crate) async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

const MANIFEST: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  labels: {app: web}
spec:
  nodeName: node-a
  containers:
  - name: c
    image: nginx:1.27
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_get_label_patch_replace_wait_delete() {
    if !kubectl_available() {
        return;
    }
    let kubelet = KubeletConfig::default()
        .ready_delay(Duration::from_millis(50))
        .termination_delay(Duration::from_millis(50));
    let h = start(Config::default().kubelet(kubelet)).await;
    let k = Kubectl::new(&h, "crud");

    let out = k.ok(&["apply", "-f", "-"], Some(MANIFEST)).await;
    assert!(
        out.contains("service/web created") && out.contains("pod/web-0 created"),
        "{out}"
    );
    let out = k
        .ok(&["apply", "-f", "-"], Some(&MANIFEST.replace("port: 80,", "port: 81,")))
        .await;
    assert!(out.contains("service/web configured"), "{out}");
    let svc: Value = serde_json::from_str(&k.ok(&["get", "service", "web", "-o", "json"], None).await).unwrap();
    assert_eq!(svc["spec"]["ports"][0]["port"], 81);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);

    let table = k.ok(&["get", "pods"], None).await;
    assert!(table.starts_with("NAME") && table.contains("web-0"), "{table}");
    let out = k.ok(&["label", "pod", "web-0", "tier=front"], None).await;
    assert_eq!(out.trim(), "pod/web-0 labeled");
    let patches = [
        ("strategic", r#"{"metadata":{"annotations":{"a":"b"}}}"#),
        ("merge", r#"{"metadata":{"labels":{"m":"1"}}}"#),
        ("json", r#"[{"op":"add","path":"/metadata/labels/j","value":"2"}]"#),
    ];
    for (kind, patch) in patches {
        let out = k
            .ok(&["patch", "pod", "web-0", &format!("--type={kind}"), "-p", patch], None)
            .await;
        assert_eq!(out.trim(), "pod/web-0 patched", "{kind}");
    }
    let annotation = k
        .ok(
            &["get", "pod", "web-0", "-o", "jsonpath={.metadata.annotations.a}"],
            None,
        )
        .await;
    assert_eq!(annotation, "b");
    let out = k
        .ok(&["wait", "--for=condition=Ready", "pod/web-0", "--timeout=20s"], None)
        .await;
    assert!(out.contains("condition met"), "{out}");

    let yaml = k.ok(&["get", "pod", "web-0", "-o", "yaml"], None).await;
    let out = k
        .ok(
            &["replace", "-f", "-"],
            Some(&yaml.replace("tier: front", "tier: back")),
        )
        .await;
    assert!(out.contains("replaced"), "{out}");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let labels = pods.get("web-0").await.unwrap().metadata.labels.unwrap();
    for (key, value) in [("tier", "back"), ("m", "1"), ("j", "2"), ("app", "web")] {
        assert_eq!(labels.get(key).map(String::as_str), Some(value), "{labels:?}");
    }

    let out = k.ok(&["delete", "pod", "web-0", "--timeout=20s"], None).await;
    assert!(out.contains("deleted"), "{out}");
    assert!(pods.get_opt("web-0").await.unwrap().is_none());
    let out = k
        .ok(&["delete", "-f", "-"], Some(MANIFEST.split("---").next().unwrap()))
        .await;
    assert!(out.starts_with("service \"web\" deleted"), "{out}");

    let verbs: Vec<WriteVerb> = h.server.write_log().iter().map(|w| w.verb).collect();
    assert!(
        verbs.contains(&WriteVerb::Create)
            && verbs.contains(&WriteVerb::Patch)
            && verbs.contains(&WriteVerb::Update)
            && verbs.contains(&WriteVerb::Delete)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reports_validation_errors() {
    if !kubectl_available() {
        return;
    }
    let h = start(Config::default()).await;
    let k = Kubectl::new(&h, "invalid");
    let bad = "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: bad}
addressType: IPv4
endpoints: [{addresses: [\"127.0.0.1\"]}]
";
    let out = k.run(&["create", "-f", "-"], Some(bad)).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("may not be in the loopback range"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_field_validation_strict_warn_and_ignore() {
    if !kubectl_available() {
        return;
    }
    let h = start(Config::default()).await;
    let k = Kubectl::new(&h, "fields");
    let typo = |name: &str| {
        format!(
            "apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPortt: 8080}}]
  clusterIPz: None
"
        )
    };
    // kubectl's default: strict, as on a real cluster. (kubectl sends the
    // manifest as JSON with its keys sorted; fields are named in the order
    // sent.)
    let out = k.run(&["create", "-f", "-"], Some(&typo("strict"))).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "Service in version \"v1\" cannot be handled as a Service: strict decoding error: \
             unknown field \"spec.clusterIPz\", unknown field \"spec.ports[0].targetPortt\""
        ),
        "{stderr}"
    );
    let out = k.run(&["apply", "-f", "-"], Some(&typo("strict"))).await;
    assert!(!out.status.success(), "apply creates with the same check");
    // An apply to an existing object is a patch: judged by what it adds.
    let clean = typo("patched")
        .replace("targetPortt", "targetPort")
        .replace("  clusterIPz: None\n", "");
    let out = k.run(&["apply", "-f", "-"], Some(&clean)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = k
        .run(
            &["apply", "-f", "-"],
            Some(&clean.replace("selector:", "selectorr: {x: y}\n  selector:")),
        )
        .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("strict decoding error: unknown field \"spec.selectorr\""),
        "{stderr}"
    );
    // Warn: created, each field reported.
    let out = k
        .run(&["create", "--validate=warn", "-f", "-"], Some(&typo("warn")))
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: unknown field \"spec.ports[0].targetPortt\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("Warning: unknown field \"spec.clusterIPz\""),
        "{stderr}"
    );
    // Ignore: created, nothing said.
    let out = k
        .run(&["create", "--validate=false", "-f", "-"], Some(&typo("ignore")))
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("unknown field"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_streams_changes() {
    if !kubectl_available() {
        return;
    }
    let h = start(Config::default()).await;
    let k = Kubectl::new(&h, "watch");
    let mut child = k
        .command(&["get", "pods", "--watch", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    // Keep creating until kubectl shows it: its watch may start after the first create.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut i = 0;
    while !seen.iter().any(|l: &String| l.contains("ADDED") && l.contains("pod-")) {
        let p: Pod = obj(
            json!({"metadata": {"name": format!("pod-{i}")}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        );
        pods.create(&PostParams::default(), &p).await.unwrap();
        i += 1;
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(line)) => seen.push(line),
            _ => panic!("kubectl printed no watch event: {seen:?}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
