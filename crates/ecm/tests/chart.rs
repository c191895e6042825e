//! Checks of the Helm chart in `deploy/helm/ecm`, rendered by the real
//! `helm template` (see `chart/render.rs`; `cargo xtask test` installs Helm
//! v4.2 and puts it first on `PATH`): `helm lint --strict` passes and it
//! renders with the defaults and every `ci/*.yaml`; every object is one the
//! API server accepts field for field (a round trip through k8s-openapi's
//! types); the Deployment's arguments parse as `ecm run` and its defaults
//! are the binary's; the RBAC rules cover what upstream's controller roles
//! grant and what ecm calls; selectors select the pods; the chart refuses
//! replicas without leader election; every pod it renders passes the Pod
//! Security Standards "restricted" profile, rule by rule (`chart/pss.rs`);
//! shadow mode is read-only, one replica, without Lease (`chart/shadow.rs`);
//! secure metrics are on by default, with the RBAC they need, and a
//! ServiceMonitor scraping over HTTPS with a token (`chart/metrics.rs`).
//! The checks that render print why and
//! pass where helm is not on `PATH`; the values schema checks need no helm.

// Test code: a failed unwrap is a failed test; printing says why a test is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

#[path = "chart/metrics.rs"]
mod metrics;
#[path = "chart/pss.rs"]
mod pss;
#[path = "chart/render.rs"]
mod render;
#[path = "chart/schema.rs"]
mod schema;
#[path = "chart/shadow.rs"]
mod shadow;

use render::{Rendered, chart_dir, helm_available, render};

fn read(relative: &str) -> String {
    let path = chart_dir().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("valid YAML")
}

fn lookup<'a>(values: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(values, |v, key| v.get(key))
        .unwrap_or_else(|| panic!("values.yaml has no {path}"))
}

/// The values files of `ci/`, in name order.
fn ci_files() -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(chart_dir().join("ci"))
        .expect("deploy/helm/ecm/ci exists")
        .map(|entry| entry.expect("readable").path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

/// The values sets: the defaults, then each ci values file, merged into
/// values.yaml.
fn every_values() -> Vec<(String, Option<PathBuf>, Value)> {
    let mut out = vec![("defaults".to_owned(), None, render::values(&[]))];
    for file in ci_files() {
        let overrides = yaml(&fs::read_to_string(&file).expect("readable"));
        out.push((file.display().to_string(), Some(file), render::values(&[overrides])));
    }
    out
}

/// The chart rendered by `helm template` with its defaults, then with each
/// ci values file.
fn every_rendering() -> Vec<(String, Rendered)> {
    every_values()
        .into_iter()
        .map(|(name, file, _)| {
            let rendered = match &file {
                None => render(&[]),
                Some(file) => render::render_file(file),
            };
            let rendered = rendered.unwrap_or_else(|err| panic!("{name}: {err}"));
            (name, rendered)
        })
        .collect()
}

fn default_rendering() -> Rendered {
    render(&[]).expect("renders with the defaults")
}

#[test]
fn helm_lint_strict_passes_for_every_values_set() {
    if !helm_available() {
        return;
    }
    for (name, file, _) in every_values() {
        let out = render::lint(file.as_deref()).unwrap_or_else(|err| panic!("{name}: helm lint --strict: {err}"));
        assert!(out.contains("1 chart(s) linted, 0 chart(s) failed"), "{name}: {out}");
    }
}

/// The `run` subcommand, global flags included.
fn run_flags() -> clap::Command {
    let mut command = ecm::cli::command();
    command.build();
    command
        .find_subcommand("run")
        .expect("ecm has a run subcommand")
        .clone()
}

fn deployment(rendered: &Rendered) -> Value {
    let deployments = rendered.of_kind("Deployment");
    assert_eq!(deployments.len(), 1);
    deployments[0].clone()
}

fn container_args(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string args").to_owned())
        .collect()
}

/// Parses `document` as `T` and back: a field k8s-openapi does not know
/// (a typo, a wrong level) is lost on the way and shows as a difference.
fn round_trips_as<T: DeserializeOwned + Serialize>(document: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(document.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if &back == document {
        Ok(())
    } else {
        Err(format!(
            "fields lost or changed:\nrendered: {document:#}\ntyped:    {back:#}"
        ))
    }
}

#[test]
fn every_values_set_renders_objects_the_api_server_accepts() {
    if !helm_available() {
        return;
    }
    for (name, rendered) in every_rendering() {
        let documents = rendered.documents();
        assert!(documents.len() >= 4, "{name}: {documents:?}");
        for document in documents {
            let kind = document["kind"].as_str().unwrap_or_default().to_owned();
            assert!(document["metadata"]["name"].is_string(), "{name}: unnamed {kind}");
            let checked = match kind.as_str() {
                "Deployment" => round_trips_as::<Deployment>(&document),
                "ServiceAccount" => round_trips_as::<ServiceAccount>(&document),
                "Service" => round_trips_as::<Service>(&document),
                "ClusterRole" => round_trips_as::<ClusterRole>(&document),
                "ClusterRoleBinding" => round_trips_as::<ClusterRoleBinding>(&document),
                "Role" => round_trips_as::<Role>(&document),
                "RoleBinding" => round_trips_as::<RoleBinding>(&document),
                "PodDisruptionBudget" => round_trips_as::<PodDisruptionBudget>(&document),
                "Job" => round_trips_as::<Job>(&document),
                other => Err(format!("unexpected kind {other:?}")),
            };
            if let Err(err) = checked {
                panic!("{name}: {kind} {}: {err}", document["metadata"]["name"]);
            }
        }
    }
}

#[test]
fn the_deployment_arguments_parse_as_ecm_run() {
    if !helm_available() {
        return;
    }
    let known: BTreeSet<String> = run_flags()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    for (name, rendered) in every_rendering() {
        let args = container_args(&deployment(&rendered));
        assert_eq!(args[0], "run", "{name}");
        for arg in &args[1..] {
            let flag = arg.trim_start_matches("--").split('=').next().unwrap_or_default();
            assert!(known.contains(flag), "{name}: {arg} is not a flag of `ecm run`");
        }
        let argv = std::iter::once("ecm".to_owned()).chain(args.iter().cloned());
        if let Err(err) = ecm::cli::command().try_get_matches_from(argv) {
            panic!("{name}: {args:?}: {err}");
        }
    }
}

#[test]
fn chart_defaults_are_the_binary_defaults() {
    let run = run_flags();
    let values = render::values(&[]);
    let table = [
        ("endpoints.concurrentSyncs", "concurrent-endpoint-syncs"),
        ("endpoints.batchPeriod", "endpoint-updates-batch-period"),
        ("endpointSlice.concurrentSyncs", "concurrent-service-endpoint-syncs"),
        ("endpointSlice.maxEndpointsPerSlice", "max-endpoints-per-slice"),
        ("endpointSlice.batchPeriod", "endpointslice-updates-batch-period"),
        (
            "mirroring.concurrentSyncs",
            "mirroring-concurrent-service-endpoint-syncs",
        ),
        ("mirroring.maxEndpointsPerSubset", "mirroring-max-endpoints-per-subset"),
        ("mirroring.batchPeriod", "mirroring-endpointslice-updates-batch-period"),
        ("minResyncPeriod", "min-resync-period"),
        ("kubeApi.qps", "kube-api-qps"),
        ("kubeApi.burst", "kube-api-burst"),
        ("leaderElection.enabled", "leader-elect"),
        ("leaderElection.leaseDuration", "leader-elect-lease-duration"),
        ("leaderElection.renewDeadline", "leader-elect-renew-deadline"),
        ("leaderElection.retryPeriod", "leader-elect-retry-period"),
        ("logging.verbosity", "v"),
    ];
    for (path, flag) in table {
        let arg = run
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .unwrap_or_else(|| panic!("no --{flag}"));
        let binary: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let chart = match lookup(&values, path) {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!([chart], binary.as_slice(), "{path} vs --{flag}");
    }
    let controllers = lookup(&values, "controllers");
    assert_eq!(controllers, &serde_json::json!(["*"]));
}

fn schema() -> Value {
    serde_json::from_str(&read("values.schema.json")).expect("values.schema.json is JSON")
}

#[test]
fn default_and_ci_values_satisfy_the_values_schema() {
    let schema = schema();
    for (name, _, values) in every_values() {
        let problems = schema::violations(&schema, &values, "");
        assert!(problems.is_empty(), "{name}: {problems:#?}");
    }
}

#[test]
fn the_values_schema_refuses_what_ecm_would_refuse() {
    let schema = schema();
    let cases = [
        (
            json!({"endpointSlice": {"maxEndpointsPerSlice": 1001}}),
            "endpointSlice.maxEndpointsPerSlice",
        ),
        (
            json!({"mirroring": {"concurrentSyncs": 0}}),
            "mirroring.concurrentSyncs",
        ),
        (json!({"logging": {"format": "xml"}}), "logging.format"),
        (
            json!({"endpoints": {"batchPeriod": "10 seconds"}}),
            "endpoints.batchPeriod",
        ),
        (json!({"minResyncPeriod": "-1h"}), "minResyncPeriod"),
        (json!({"kubeApi": {"qps": 0}}), "kubeApi.qps"),
        (json!({"controllers": []}), "controllers"),
        (
            json!({"endpointslice": {"concurrentSyncs": 5}}),
            "endpointslice: not a value",
        ),
        (
            json!({"leaderElection": {"leaseDurationSeconds": 15}}),
            "leaderElection.leaseDurationSeconds",
        ),
        (json!({"image": {"pullPolicy": "Sometimes"}}), "image.pullPolicy"),
    ];
    for (overrides, expected) in cases {
        let values = render::values(std::slice::from_ref(&overrides));
        let problems = schema::violations(&schema, &values, "");
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{overrides} should be refused at {expected}: {problems:?}"
        );
    }
    // Go durations the binary takes pass.
    for period in ["0", "0s", "500ms", "1m30s", "1.5h"] {
        let values = render::values(&[json!({"minResyncPeriod": period})]);
        assert_eq!(
            schema::violations(&schema, &values, ""),
            Vec::<String>::new(),
            "{period}"
        );
    }
}

#[test]
fn every_schema_property_is_a_value_with_a_default() {
    let schema = schema();
    let values = render::values(&[]);
    fn walk(schema: &Value, values: &Value, path: &str, missing: &mut Vec<String>) {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (key, child) in properties {
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match values.get(key) {
                Some(value) => walk(child, value, &child_path, missing),
                None if child_path == "global" => {}
                None => missing.push(child_path),
            }
        }
    }
    let mut missing = Vec::new();
    walk(&schema, &values, "", &mut missing);
    assert!(missing.is_empty(), "in the schema but not in values.yaml: {missing:?}");
}

#[test]
fn the_chart_refuses_replicas_without_leader_election() {
    if !helm_available() {
        return;
    }
    let err = render(&[json!({"replicaCount": 2, "leaderElection": {"enabled": false}})])
        .err()
        .expect("must not render");
    assert!(err.contains("replicaCount > 1 needs leaderElection.enabled"), "{err}");
    let rendered = render(&[json!({"replicaCount": 1, "leaderElection": {"enabled": false}})])
        .expect("one replica without leader election renders");
    assert!(rendered.of_kind("Role").iter().all(|r| {
        !r["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .ends_with("leader-election")
    }));
    assert!(
        rendered.of_kind("PodDisruptionBudget").is_empty(),
        "no PDB for one replica"
    );
    assert!(container_args(&deployment(&rendered)).contains(&"--leader-elect=false".to_owned()));
}

/// The controllers' ClusterRole (named as the release; the others are
/// `<fullname>-...`).
fn controller_role(rendered: &Rendered) -> Value {
    let mut roles: Vec<Value> = rendered
        .of_kind("ClusterRole")
        .into_iter()
        .filter(|r| r["metadata"]["name"] == "ecm")
        .collect();
    assert_eq!(roles.len(), 1, "one ClusterRole named ecm");
    roles.remove(0)
}

fn grants(rules: &Value, group: &str, resource: &str, verb: &str) -> bool {
    let has = |rule: &Value, field: &str, want: &str| {
        rule.get(field)
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|i| i.as_str() == Some(want)))
    };
    rules
        .as_array()
        .expect("rules")
        .iter()
        .any(|r| has(r, "apiGroups", group) && has(r, "resources", resource) && has(r, "verbs", verb))
}

#[test]
fn cluster_role_grants_what_upstream_controller_roles_grant() {
    if !helm_available() {
        return;
    }
    let rendered = default_rendering();
    let role = controller_role(&rendered);
    let rules = &role["rules"];
    // system:controller:endpoint-controller, endpointslice-controller and
    // endpointslicemirroring-controller, resource by resource.
    let read_only = ["get", "list", "watch"];
    let read_write = ["get", "list", "watch", "create", "update", "delete"];
    let wanted: [(&str, &str, &[&str]); 10] = [
        ("", "services", &read_only),
        ("", "pods", &read_only),
        ("", "nodes", &read_only),
        ("", "endpoints", &read_write),
        ("", "endpoints/restricted", &["create"]),
        ("", "services/finalizers", &["update"]),
        ("", "endpoints/finalizers", &["update"]),
        ("discovery.k8s.io", "endpointslices", &read_write),
        // ecm's event recorder creates events and patches repeated ones.
        ("", "events", &["create", "update", "patch"]),
        ("events.k8s.io", "events", &["create", "update", "patch"]),
    ];
    for (group, resource, verbs) in wanted {
        for verb in verbs {
            assert!(
                grants(rules, group, resource, verb),
                "no {verb} on {resource} in group {group:?}"
            );
        }
    }
    // Upstream grants no patch on what the controllers write (PUT with a
    // resourceVersion); neither does ecm.
    assert!(!grants(rules, "discovery.k8s.io", "endpointslices", "patch"));
    assert!(!grants(rules, "", "endpoints", "patch"));

    let bindings = rendered.of_kind("ClusterRoleBinding");
    assert_eq!(bindings[0]["roleRef"]["name"], role["metadata"]["name"]);
    let account = &rendered.of_kind("ServiceAccount")[0];
    assert_eq!(bindings[0]["subjects"][0]["name"], account["metadata"]["name"]);
    assert_eq!(bindings[0]["subjects"][0]["namespace"], "kube-system");
}

#[test]
fn leader_election_role_covers_the_lease_ecm_uses() {
    if !helm_available() {
        return;
    }
    let rendered = default_rendering();
    let role = rendered
        .of_kind("Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "ecm-leader-election")
        .expect("a leader-election Role");
    for verb in ["create", "get", "patch"] {
        assert!(
            grants(&role["rules"], "coordination.k8s.io", "leases", verb),
            "no {verb} on leases"
        );
    }
    // The limited verbs name the Lease the Deployment elects on.
    let args = container_args(&deployment(&rendered));
    let lease = args
        .iter()
        .find_map(|a| a.strip_prefix("--leader-elect-resource-name="))
        .expect("a lease name");
    let limited = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r.get("resourceNames").is_some())
        .expect("limited rule");
    assert_eq!(limited["resourceNames"], json!([lease]));
}

#[test]
fn selectors_select_the_pods_and_probes_name_declared_ports() {
    if !helm_available() {
        return;
    }
    let rendered = default_rendering();
    let deployment = deployment(&rendered);
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let selects = |selector: &Value| {
        selector
            .as_object()
            .expect("a label map")
            .iter()
            .all(|(k, v)| &pod_labels[k] == v)
    };
    assert!(selects(&deployment["spec"]["selector"]["matchLabels"]));
    for service in rendered.of_kind("Service") {
        assert!(selects(&service["spec"]["selector"]), "{}", service["metadata"]["name"]);
    }
    for pdb in rendered.of_kind("PodDisruptionBudget") {
        assert!(selects(&pdb["spec"]["selector"]["matchLabels"]));
    }
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let ports: Vec<&str> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for probe in ["livenessProbe", "readinessProbe"] {
        let port = container[probe]["httpGet"]["port"].as_str().expect("a named port");
        assert!(ports.contains(&port), "{probe} names {port}, not one of {ports:?}");
    }
    assert_eq!(deployment["spec"]["template"]["spec"]["serviceAccountName"], "ecm");
    // Replicas prefer different nodes unless affinity is given.
    let spread = &deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        [0]["podAffinityTerm"];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert!(selects(&spread["labelSelector"]["matchLabels"]));
    let custom = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}]}}});
    let with_custom = render(&[json!({"affinity": custom})]).expect("renders");
    assert_eq!(
        crate::deployment(&with_custom)["spec"]["template"]["spec"]["affinity"],
        custom,
        "a given affinity replaces the default"
    );
    // The helm test's pod is selected by none of them.
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    for job in rendered.of_kind("Job") {
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        let selected = selector.as_object().unwrap().iter().all(|(k, v)| &labels[k] == v);
        assert!(!selected, "the controller's selector selects the test pod {labels}");
    }
}

#[test]
fn the_helm_test_is_a_hook_and_notes_say_how_to_disable_kcm() {
    if !helm_available() {
        return;
    }
    let rendered = default_rendering();
    let jobs = rendered.of_kind("Job");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["metadata"]["annotations"]["helm.sh/hook"], "test");
    let notes = render::notes(&[]).expect("helm install --dry-run=client prints the notes");
    assert!(
        notes.contains("--controllers=*,-endpoint,-endpointslice,-endpointslicemirroring"),
        "{notes}"
    );
    let disabled = render(&[json!({"tests": {"enabled": false}})]).expect("renders");
    assert!(disabled.of_kind("Job").is_empty());
}

/// The pod templates the chart renders (the Deployment's and the helm
/// test Job's), labelled.
fn pod_templates(name: &str, rendered: &Rendered) -> Vec<(String, Value)> {
    let mut pods = Vec::new();
    for kind in ["Deployment", "Job"] {
        for object in rendered.of_kind(kind) {
            let label = format!("{name}: {kind} {}", object["metadata"]["name"]);
            pods.push((label, object["spec"]["template"].clone()));
        }
    }
    pods
}

#[test]
fn every_rendered_pod_passes_pod_security_restricted() {
    if !helm_available() {
        return;
    }
    let mut checked = BTreeSet::new();
    for (name, rendered) in every_rendering() {
        for (pod_name, pod) in pod_templates(&name, &rendered) {
            for rule in pss::RESTRICTED {
                if let Err(why) = (rule.check)(&pod) {
                    panic!("{pod_name} breaks Pod Security Standards {}: {why}", rule.name);
                }
            }
            checked.insert(pod_name.split(": ").nth(1).unwrap_or_default().to_owned());
        }
    }
    assert!(
        checked.iter().any(|p| p.starts_with("Deployment")) && checked.iter().any(|p| p.starts_with("Job")),
        "both the Deployment and the helm test Job were checked: {checked:?}"
    );
}

#[test]
fn chart_and_app_versions_follow_the_binary() {
    let chart = yaml(&read("Chart.yaml"));
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "ecm");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn monitoring_objects_name_metrics_ecm_exports() {
    if !helm_available() {
        return;
    }
    let overrides = json!({"serviceMonitor": {"enabled": true}, "prometheusRule": {"enabled": true}});
    let values = render::values(std::slice::from_ref(&overrides));
    assert_eq!(schema::violations(&schema(), &values, ""), Vec::<String>::new());
    let rendered = render(&[overrides]).expect("renders");
    let monitor = &rendered.of_kind("ServiceMonitor")[0];
    let service = &rendered.of_kind("Service")[0];
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );

    let exported = [
        ecm::leader::MASTER_STATUS,
        ecm_endpointslice::metrics::SYNCS,
        ecm_endpoints::metrics::SYNCS,
        ecm_workqueue::metrics::DROPS_TOTAL,
        ecm_workqueue::metrics::DEPTH,
    ];
    let queues = [
        ecm_endpoints::metrics::QUEUE_NAME,
        ecm_endpointslice::metrics::QUEUE_NAME,
        ecm_mirroring::metrics::QUEUE_NAME,
    ];
    let rule = &rendered.of_kind("PrometheusRule")[0];
    let metric = regex::Regex::new(r"([a-z_]+)\{").unwrap();
    let alerts = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(alerts.len(), 4);
    for alert in alerts {
        let expr = alert["expr"].as_str().unwrap();
        for name in metric.captures_iter(expr).map(|c| c[1].to_owned()) {
            assert!(
                exported.contains(&name.as_str()),
                "{}: ecm exports no {name}",
                alert["alert"]
            );
        }
        if let Some(pattern) = expr.split("name=~\"").nth(1).and_then(|r| r.split('"').next()) {
            assert_eq!(pattern.split('|').collect::<Vec<_>>(), queues, "{}", alert["alert"]);
        }
    }
    let no_leader = alerts.iter().find(|a| a["alert"] == "EcmNoLeader").unwrap();
    assert!(
        no_leader["expr"].as_str().unwrap().contains("{name=\"ecm\"}"),
        "the Lease's name"
    );
}
