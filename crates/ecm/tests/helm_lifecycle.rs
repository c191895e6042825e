//! The Helm chart's whole lifecycle against ecm-apiserver with the real
//! Helm v4.2 (`cargo xtask test` installs it into `<target>/tools/bin`):
//! `helm install` with OpenAPI validation on, `helm upgrade` with changed
//! values, `helm rollback` to revision 1, `helm uninstall`, each step checked
//! on the objects the server holds and on Helm's output. No pod runs (the
//! server has no container runtime), so nothing waits for readiness; `helm
//! test` is for real clusters. Also: every kind `helm template` renders, with
//! the defaults and each `ci/*.yaml`, is served and passes server-side
//! dry-run with strict validation (`kubectl apply --dry-run=server`).
//! Skipped, with a printed reason, where helm (or kubectl) is not on `PATH`.

// Test code: a failed unwrap is a failed test; printing says why a test is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ecm_apiserver::{ApiServer, Config, ServeHandle};
use serde_json::Value;

const NAMESPACE: &str = "ecm-system";
const RELEASE: &str = "ecm";

fn available(tool: &str) -> bool {
    let version: &[&str] = if tool == "helm" {
        &["version", "--short"]
    } else {
        &["version", "--client"]
    };
    let ok = Command::new(tool)
        .args(version)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "skipped: {tool} is not on PATH (`cargo xtask test` or `cargo xtask tools` installs it into <target>/tools/bin)"
        );
    }
    ok
}

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/ecm")
}

/// An ecm-apiserver on a 127.0.0.1 port, with a kubeconfig and private
/// homes for helm and kubectl (their caches stay out of the user's).
struct Cluster {
    server: ApiServer,
    _handle: ServeHandle,
    /// Runs the server; dropped last.
    _runtime: tokio::runtime::Runtime,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Cluster {
    fn start(name: &str) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let config =
            Config::default().namespaces(["default", "kube-system", "kube-public", "kube-node-lease", NAMESPACE]);
        let server = {
            let _context = runtime.enter();
            ApiServer::new(config).unwrap()
        };
        let handle = runtime.block_on(server.serve("127.0.0.1:0".parse().unwrap())).unwrap();
        let dir = std::env::temp_dir().join(format!("ecm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        handle.write_kubeconfig(&kubeconfig).unwrap();
        Self {
            server,
            _handle: handle,
            _runtime: runtime,
            dir,
            kubeconfig,
        }
    }

    /// Runs `tool args...` against the server; success and stdout+stderr.
    fn run(&self, tool: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(tool)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("HOME", &self.dir)
            .env("HELM_CACHE_HOME", self.dir.join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("helm-config"))
            .env("HELM_DATA_HOME", self.dir.join("helm-data"))
            .env_remove("KUBECONFIG")
            .env_remove("HELM_NAMESPACE")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs `helm args...`, asserting success; its output.
    fn helm(&self, args: &[&str]) -> String {
        let (ok, out) = self.run("helm", args);
        assert!(ok, "helm {} failed:\n{out}", args.join(" "));
        out
    }

    fn get(&self, resource: &str, name: &str) -> Option<Value> {
        self.server.get_object(resource, Some(NAMESPACE), name)
    }

    fn get_cluster(&self, resource: &str, name: &str) -> Option<Value> {
        self.server.get_object(resource, None, name)
    }

    /// Helm's release Secrets (`sh.helm.release.v1.ecm.vN`), by name.
    fn release_secrets(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .server
            .list_objects("secrets")
            .iter()
            .filter(|s| s["type"] == "helm.sh/release.v1" && s["metadata"]["namespace"] == NAMESPACE)
            .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Deployment's `spec.replicas` and the container's `--v=` argument.
fn replicas_and_verbosity(deployment: &Value) -> (i64, String) {
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    let verbosity = args
        .iter()
        .filter_map(Value::as_str)
        .find(|a| a.starts_with("--v="))
        .unwrap()
        .to_owned();
    (deployment["spec"]["replicas"].as_i64().unwrap(), verbosity)
}

#[test]
fn helm_install_upgrade_rollback_uninstall_with_openapi_validation() {
    if !available("helm") {
        return;
    }
    let cluster = Cluster::start("helm-lifecycle");
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();

    // Install, validation on (no --disable-openapi-validation), no --wait.
    let (ok, out) = cluster.run(
        "helm",
        &[
            "install",
            RELEASE,
            chart,
            "-n",
            NAMESPACE,
            "--set",
            "logging.verbosity=1",
        ],
    );
    assert!(ok, "helm install failed:\n{out}");
    assert!(out.contains("STATUS: deployed") && out.contains("REVISION: 1"), "{out}");

    let deployment = cluster.get("deployments", RELEASE).expect("the Deployment");
    assert_eq!(replicas_and_verbosity(&deployment), (2, "--v=1".to_owned()));
    assert_eq!(
        deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm",
        "{deployment}"
    );
    assert_eq!(
        deployment["metadata"]["annotations"]["meta.helm.sh/release-name"],
        RELEASE
    );
    let sa = cluster.get("serviceaccounts", RELEASE).expect("the ServiceAccount");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        sa["metadata"]["name"]
    );
    let pdb = cluster
        .get("poddisruptionbudgets", RELEASE)
        .expect("the PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(pdb["metadata"]["generation"], 1);
    let service = cluster
        .get("services", &format!("{RELEASE}-metrics"))
        .expect("the metrics Service");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let role = cluster.get_cluster("clusterroles", RELEASE).expect("the ClusterRole");
    let grants_slices = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["resources"].as_array().unwrap().iter().any(|x| x == "endpointslices"));
    assert!(grants_slices, "{role}");
    let binding = cluster
        .get_cluster("clusterrolebindings", RELEASE)
        .expect("the ClusterRoleBinding");
    assert_eq!(binding["subjects"][0]["name"], sa["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    assert!(
        cluster
            .server
            .list_objects("roles")
            .iter()
            .any(|r| r["metadata"]["namespace"] == NAMESPACE),
        "the leader-election Role"
    );
    assert!(
        cluster.server.list_objects("jobs").is_empty(),
        "the test hook is for `helm test` only"
    );
    assert_eq!(cluster.release_secrets(), ["sh.helm.release.v1.ecm.v1"]);
    let status = cluster.helm(&["status", RELEASE, "-n", NAMESPACE]);
    assert!(status.contains("STATUS: deployed"), "{status}");

    // Upgrade: more replicas, a louder log.
    let out = cluster.helm(&[
        "upgrade",
        RELEASE,
        chart,
        "-n",
        NAMESPACE,
        "--set",
        "replicaCount=3",
        "--set",
        "logging.verbosity=4",
    ]);
    assert!(out.contains("STATUS: deployed") && out.contains("REVISION: 2"), "{out}");
    let deployment = cluster.get("deployments", RELEASE).unwrap();
    assert_eq!(replicas_and_verbosity(&deployment), (3, "--v=4".to_owned()));
    assert_eq!(deployment["metadata"]["generation"], 2);
    let values = cluster.helm(&["get", "values", RELEASE, "-n", NAMESPACE, "-o", "json"]);
    let values: Value = serde_json::from_str(values.trim()).unwrap();
    assert_eq!(values["replicaCount"], 3, "{values}");

    // Rollback to revision 1: the old values are back.
    let out = cluster.helm(&["rollback", RELEASE, "1", "-n", NAMESPACE]);
    assert!(out.contains("Rollback was a success"), "{out}");
    let deployment = cluster.get("deployments", RELEASE).unwrap();
    assert_eq!(replicas_and_verbosity(&deployment), (2, "--v=1".to_owned()));
    let history = cluster.helm(&["history", RELEASE, "-n", NAMESPACE]);
    assert!(history.contains("Rollback to 1"), "{history}");
    assert_eq!(
        cluster.release_secrets(),
        [
            "sh.helm.release.v1.ecm.v1",
            "sh.helm.release.v1.ecm.v2",
            "sh.helm.release.v1.ecm.v3"
        ]
    );

    // Uninstall: the objects and the release records are gone.
    let out = cluster.helm(&["uninstall", RELEASE, "-n", NAMESPACE]);
    assert!(out.contains(&format!("release \"{RELEASE}\" uninstalled")), "{out}");
    for resource in [
        "deployments",
        "serviceaccounts",
        "poddisruptionbudgets",
        "services",
        "roles",
        "rolebindings",
    ] {
        let left: Vec<Value> = cluster
            .server
            .list_objects(resource)
            .into_iter()
            .filter(|o| o["metadata"]["namespace"] == NAMESPACE)
            .collect();
        assert!(left.is_empty(), "{resource} left after uninstall: {left:?}");
    }
    assert!(cluster.get_cluster("clusterroles", RELEASE).is_none());
    assert!(cluster.get_cluster("clusterrolebindings", RELEASE).is_none());
    assert!(cluster.release_secrets().is_empty(), "{:?}", cluster.release_secrets());
    let (_, list) = cluster.run("helm", &["list", "-n", NAMESPACE, "-q"]);
    assert!(!list.contains(RELEASE), "{list}");
}

#[test]
fn every_kind_the_chart_renders_is_served_and_passes_strict_server_dry_run() {
    if !available("helm") || !available("kubectl") {
        return;
    }
    let cluster = Cluster::start("helm-kinds");
    let chart = chart_dir();
    let mut values: Vec<Option<PathBuf>> = vec![None];
    let mut ci: Vec<PathBuf> = std::fs::read_dir(chart.join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    ci.sort();
    values.extend(ci.into_iter().map(Some));
    for file in values {
        let mut args = vec!["template", RELEASE, chart.to_str().unwrap(), "-n", NAMESPACE];
        if let Some(file) = &file {
            args.extend(["-f", file.to_str().unwrap()]);
        }
        let rendered = cluster.helm(&args);
        let manifest = cluster.dir.join("rendered.yaml");
        std::fs::write(&manifest, &rendered).unwrap();
        let (ok, out) = cluster.run(
            "kubectl",
            &[
                "apply",
                "--dry-run=server",
                "--validate=strict",
                "-n",
                NAMESPACE,
                "-f",
                manifest.to_str().unwrap(),
            ],
        );
        assert!(ok, "{file:?}: kubectl apply --dry-run=server failed:\n{out}");
        for (kind, applied) in [
            ("PodDisruptionBudget", "poddisruptionbudget.policy/"),
            ("Job", "job.batch/"),
            ("Deployment", "deployment.apps/"),
        ] {
            let rendered_kind = rendered.contains(&format!("kind: {kind}\n"));
            assert_eq!(out.contains(applied), rendered_kind, "{file:?}: {kind}:\n{out}");
        }
        assert!(!out.contains("error"), "{file:?}:\n{out}");
    }
    assert!(
        cluster.server.list_objects("deployments").is_empty(),
        "dry run persisted objects"
    );
}
