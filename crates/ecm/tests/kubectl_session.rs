//! A scripted kubectl v1.36 session against `ecm run --embedded` (the real
//! binary), as a new user would type it: namespace, ConfigMap, Deployment,
//! Service, scaling, a rollout restart, labels, every `get` output format,
//! server-side apply, diff, explain and deletion. Every step's output is
//! checked, not only its exit code; after each scale and rollout the
//! EndpointSlices must list exactly the IPs of the ready pods (of the new
//! ReplicaSet only after the restart). Skipped, with a printed reason,
//! where kubectl is not installed.
//!
//! kubectl's typed commands (`create namespace|configmap|deployment`,
//! `scale`) send protobuf; `kubectl explain` reads the OpenAPI v3 documents.

// Test code: a failed unwrap is a failed test; printing says why a test is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod support;

use support::{Ecm, eventually};

const NS: &str = "demo";
const WAIT: Duration = Duration::from_secs(60);

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A kubectl session: runs commands and counts them.
struct Session {
    kubeconfig: PathBuf,
    commands: usize,
}

impl Session {
    fn exec(&mut self, args: &[&str], stdin: Option<&str>) -> (i32, String) {
        self.commands += 1;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Runs a command that must succeed; returns its output.
    fn ok(&mut self, args: &[&str]) -> String {
        let (code, out) = self.exec(args, None);
        assert_eq!(code, 0, "kubectl {} failed:\n{out}", args.join(" "));
        out
    }

    /// Like [`Session::ok`] with `stdin`.
    fn ok_stdin(&mut self, args: &[&str], stdin: &str) -> String {
        let (code, out) = self.exec(args, Some(stdin));
        assert_eq!(code, 0, "kubectl {} failed:\n{out}\ninput:\n{stdin}", args.join(" "));
        out
    }

    /// Repeats a read until `check` accepts its output (counted once).
    fn until<T>(&mut self, args: &[&str], what: &str, mut check: impl FnMut(&str) -> Option<T>) -> T {
        self.commands += 1;
        let counted = self.commands;
        let value = eventually(WAIT, what, || {
            let (code, out) = self.exec(args, None);
            (code == 0).then(|| check(&out)).flatten()
        });
        self.commands = counted;
        value
    }

    fn json(&mut self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// IPs of the ready, not terminating pods of `app`, and their
    /// `pod-template-hash`es.
    fn ready_pods(&mut self, app: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let selector = format!("app={app}");
        let pods = self.json(&["get", "pods", "-n", NS, "-l", &selector]);
        let mut ips = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for p in pods["items"].as_array().unwrap() {
            let ready = p["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
            if ready && p["metadata"]["deletionTimestamp"].is_null() {
                ips.insert(p["status"]["podIP"].as_str().unwrap().to_owned());
                hashes.insert(
                    p["metadata"]["labels"]["pod-template-hash"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
        (ips, hashes)
    }

    /// Waits until the Service's EndpointSlices hold exactly the IPs of
    /// `want` ready pods, all of one pod template; returns that template's hash.
    fn slices_follow(&mut self, want: usize) -> String {
        let mut hash = String::new();
        let mut last = String::new();
        self.commands += 1;
        let counted = self.commands;
        eventually(
            WAIT,
            &format!("EndpointSlices with exactly the {want} ready pods"),
            || {
                let (pod_ips, hashes) = self.ready_pods("web");
                let slices = self.json(&[
                    "get",
                    "endpointslices",
                    "-n",
                    NS,
                    "-l",
                    "kubernetes.io/service-name=web",
                ]);
                let listed: BTreeSet<String> = slices["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                    .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect();
                last = format!("pods {pod_ips:?}, slices {listed:?}");
                let done = pod_ips.len() == want && listed == pod_ips && hashes.len() == 1;
                if done {
                    hash = hashes.into_iter().next().unwrap();
                }
                done.then_some(())
            },
        );
        self.commands = counted;
        assert!(!hash.is_empty(), "{last}");
        hash
    }
}

fn start_ecm(dir: &Path) -> (Ecm, PathBuf) {
    let kubeconfig = dir.join("kubeconfig");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ecm"));
    command
        .args(["run", "--embedded", "--embedded-listen", "127.0.0.1:0"])
        .args(["--embedded-pod-ready-delay", "100ms"])
        .args(["--health-probe-bind-address", "0", "--metrics-bind-address", "0"])
        .arg("--leader-elect=false")
        .arg("--embedded-kubeconfig")
        .arg(&kubeconfig);
    let ecm = Ecm::spawn(command);
    eventually(Duration::from_secs(30), "the kubeconfig", || {
        kubeconfig.exists().then_some(())
    });
    (ecm, kubeconfig)
}

#[test]
fn kubectl_session_deployment_service_scale_rollout() {
    if !kubectl_available() {
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ecm-kubectl-session-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_ecm, kubeconfig) = start_ecm(&dir);
    let mut k = Session {
        kubeconfig,
        commands: 0,
    };

    // 1-3: a namespace and a ConfigMap.
    let out = k.ok(&["version"]);
    assert!(out.contains("Server Version: v1.36"), "{out}");
    let out = k.ok(&["create", "namespace", NS]);
    assert!(out.contains("namespace/demo created"), "{out}");
    let out = k.ok(&[
        "create",
        "configmap",
        "web-config",
        "-n",
        NS,
        "--from-literal=greeting=hello",
    ]);
    assert!(out.contains("configmap/web-config created"), "{out}");
    let out = k.ok(&[
        "get",
        "configmap",
        "web-config",
        "-n",
        NS,
        "-o",
        "jsonpath={.data.greeting}",
    ]);
    assert_eq!(out, "hello");

    // 5-10: a Deployment of three, its rollout, a Service, the endpoints.
    let out = k.ok(&["create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", NS]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let out = k.ok(&["rollout", "status", "deployment/web", "-n", NS, "--timeout=60s"]);
    assert!(out.contains("deployment \"web\" successfully rolled out"), "{out}");
    let out = k.ok(&["expose", "deployment", "web", "--port", "80", "-n", NS]);
    assert!(out.contains("service/web exposed"), "{out}");
    let out = k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=web",
        "-n",
        NS,
        "--timeout=60s",
    ]);
    assert_eq!(out.matches("condition met").count(), 3, "{out}");
    let out = k.ok(&["get", "pods", "-n", NS, "-l", "app=web", "-o", "wide"]);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        out.lines().next().unwrap().contains("IP") && out.contains("NODE"),
        "{out}"
    );
    assert!(
        rows.iter()
            .all(|r| r.contains("Running") && r.contains("10.244.") && r.contains("node-")),
        "{out}"
    );
    let first = k.slices_follow(3);
    let out = k.ok(&[
        "get",
        "endpointslices",
        "-n",
        NS,
        "-l",
        "kubernetes.io/service-name=web",
    ]);
    assert!(out.contains("IPv4") && out.contains("80"), "{out}");

    // 12-17: scale up and down; the slices follow.
    let out = k.ok(&["scale", "deployment", "web", "--replicas=5", "-n", NS]);
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let out = k.ok(&["rollout", "status", "deployment/web", "-n", NS, "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    assert_eq!(k.slices_follow(5), first, "scaling keeps the pod template");
    let out = k.ok(&["scale", "deployment/web", "--replicas=2", "-n", NS]);
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let out = k.ok(&["get", "deployment", "web", "-n", NS, "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(out, "2");
    assert_eq!(k.slices_follow(2), first);

    // 18-22: rollout restart: a new ReplicaSet, only its pods in the slices.
    let out = k.ok(&["rollout", "restart", "deployment/web", "-n", NS]);
    assert!(out.contains("deployment.apps/web restarted"), "{out}");
    let out = k.ok(&["rollout", "status", "deployment/web", "-n", NS, "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let second = k.slices_follow(2);
    assert_ne!(second, first, "the restart made a new pod template");
    let out = k.ok(&["rollout", "history", "deployment/web", "-n", NS]);
    assert!(
        out.contains("REVISION") && out.lines().any(|l| l.starts_with('2')),
        "{out}"
    );
    let out = k.ok(&["get", "rs", "-n", NS, "-l", "app=web"]);
    let new_row = out.lines().find(|l| l.contains(&second)).unwrap_or_default().to_owned();
    let old_row = out.lines().find(|l| l.contains(&first)).unwrap_or_default().to_owned();
    assert!(new_row.split_whitespace().skip(1).take(3).eq(["2", "2", "2"]), "{out}");
    assert!(old_row.split_whitespace().skip(1).take(3).eq(["0", "0", "0"]), "{out}");

    // 23-28: labels, annotations and every output format.
    let out = k.ok(&["label", "deployment", "web", "tier=frontend", "-n", NS]);
    assert!(out.contains("deployment.apps/web labeled"), "{out}");
    let out = k.ok(&["annotate", "service", "web", "team=platform", "-n", NS]);
    assert!(out.contains("service/web annotated"), "{out}");
    let out = k.ok(&["get", "deployment", "web", "-n", NS, "-o", "yaml"]);
    for want in [
        "tier: frontend",
        "availableReplicas: 2",
        "reason: NewReplicaSetAvailable",
        "kubectl.kubernetes.io/restartedAt",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    let svc = k.json(&["get", "service", "web", "-n", NS]);
    assert_eq!(svc["metadata"]["annotations"]["team"], "platform");
    assert_eq!(svc["spec"]["selector"]["app"], "web");
    let out = k.ok(&["get", "deployments", "-n", NS, "-o", "wide"]);
    let header = out.lines().next().unwrap();
    assert!(
        ["READY", "UP-TO-DATE", "AVAILABLE", "CONTAINERS", "IMAGES", "SELECTOR"]
            .iter()
            .all(|c| header.contains(c)),
        "{out}"
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!((row[0], row[1], row[2], row[3]), ("web", "2/2", "2", "2"), "{out}");
    assert!(row.contains(&"nginx") && row.contains(&"app=web"), "{out}");
    let out = k.ok(&[
        "get",
        "pods",
        "-n",
        NS,
        "-l",
        &format!("pod-template-hash={second}"),
        "-o",
        "jsonpath={.items[*].metadata.ownerReferences[0].kind}",
    ]);
    assert_eq!(out, "ReplicaSet ReplicaSet");

    // 29-32: server-side apply, diff, explain.
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n  namespace: {NS}\ndata:\n  greeting: bonjour\n"
    );
    let out = k.ok_stdin(&["apply", "--server-side", "-f", "-"], &cm);
    assert!(out.contains("configmap/web-config serverside-applied"), "{out}");
    let out = k.ok(&[
        "get",
        "configmap",
        "web-config",
        "-n",
        NS,
        "-o",
        "jsonpath={.data.greeting}",
    ]);
    assert_eq!(out, "bonjour");
    let mut deployment = k.json(&["get", "deployment", "web", "-n", NS]);
    deployment["spec"]["replicas"] = 4.into();
    for field in [
        "resourceVersion",
        "managedFields",
        "generation",
        "uid",
        "creationTimestamp",
    ] {
        deployment["metadata"].as_object_mut().unwrap().remove(field);
    }
    deployment.as_object_mut().unwrap().remove("status");
    let (code, out) = k.exec(&["diff", "-f", "-"], Some(&deployment.to_string()));
    assert_eq!(code, 1, "kubectl diff finds a difference:\n{out}");
    assert!(
        out.contains("-  replicas: 2") && out.contains("+  replicas: 4"),
        "{out}"
    );
    let out = k.ok(&["explain", "endpointslice.endpoints"]);
    assert!(out.contains("addresses") && out.contains("conditions"), "{out}");

    // 33-36: delete with --wait; everything it owned goes, the slices empty.
    let out = k.ok(&["delete", "deployment", "web", "-n", NS, "--wait"]);
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
    k.until(
        &["get", "pods,rs", "-n", NS, "-l", "app=web", "-o", "name"],
        "pods and ReplicaSets gone",
        |out| (out.trim().is_empty() || out.trim() == "No resources found in demo namespace.").then_some(()),
    );
    k.until(
        &[
            "get",
            "endpointslices",
            "-n",
            NS,
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].endpoints}",
        ],
        "empty EndpointSlices",
        |out| matches!(out.trim(), "" | "[]").then_some(()),
    );
    let out = k.ok(&["delete", "namespace", NS, "--wait"]);
    assert!(out.contains("namespace \"demo\" deleted"), "{out}");

    assert!(k.commands >= 25, "only {} kubectl commands", k.commands);
    eprintln!("kubectl session: {} commands", k.commands);
    let _ = std::fs::remove_dir_all(&dir);
}
