//! Static checks of the Helm chart in `deploy/helm/ecm` that need no `helm`
//! binary: the arguments the Deployment passes are flags of `ecm run`, the
//! chart's defaults are the binary's, the RBAC rules cover what upstream's
//! controller roles grant and what ecm calls, every values file uses only
//! keys the chart defines, and template blocks are balanced.
//! (`cargo xtask chart` adds `helm lint` and `helm template` where helm is
//! installed.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/ecm")
}

fn read(relative: &str) -> String {
    let path = chart_dir().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("valid YAML")
}

fn values() -> Value {
    yaml(&read("values.yaml"))
}

fn lookup<'a>(values: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(values, |v, key| v.get(key))
        .unwrap_or_else(|| panic!("values.yaml has no {path}"))
}

/// The `run` subcommand's long flags (global ones included).
fn run_flags() -> clap::Command {
    let mut command = ecm::cli::command();
    command.build();
    command
        .find_subcommand("run")
        .expect("ecm has a run subcommand")
        .clone()
}

/// `--name` of every `- --name=...` argument line in the Deployment.
fn deployment_flags() -> Vec<String> {
    read("templates/deployment.yaml")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- --"))
        .map(|flag| flag.split('=').next().unwrap_or(flag).to_owned())
        .collect()
}

#[test]
fn every_deployment_argument_is_a_flag_of_ecm_run() {
    let run = run_flags();
    let known: BTreeSet<&str> = run.get_arguments().filter_map(|a| a.get_long()).collect();
    let flags = deployment_flags();
    assert!(flags.len() >= 20, "found only {flags:?}");
    for flag in &flags {
        assert!(known.contains(flag.as_str()), "--{flag} is not a flag of `ecm run`");
    }
}

/// Renders one argument of the Deployment with the default values, for the
/// three template forms the arguments use: `{{ .Values.a.b }}`,
/// `{{ join "," .Values.a }}` and `{{ include "ecm.leaseName" . }}`.
fn render_argument(argument: &str, values: &Value) -> String {
    let mut out = String::new();
    let mut rest = argument;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closed action") + start;
        let action = rest[start + 2..end].trim();
        let rendered = if let Some(path) = action.strip_prefix(".Values.") {
            match lookup(values, path) {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        } else if let Some(path) = action.strip_prefix("join \",\" .Values.") {
            let items = lookup(values, path).as_array().expect("a list");
            items
                .iter()
                .map(|i| i.as_str().expect("strings"))
                .collect::<Vec<_>>()
                .join(",")
        } else if action == "include \"ecm.leaseName\" ." {
            "ecm".to_owned()
        } else {
            panic!("unexpected template action in an argument: {action}");
        };
        out.push_str(&rendered);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_deployment_arguments_with_default_values_parse() {
    let values = values();
    let mut seen = BTreeSet::new();
    let mut argv = vec!["ecm".to_owned(), "run".to_owned()];
    for line in read("templates/deployment.yaml").lines() {
        let Some(argument) = line.trim().strip_prefix("- --") else {
            continue;
        };
        let flag = argument.split('=').next().unwrap_or(argument).to_owned();
        // Alternatives under if/else (metrics on or off): the first one.
        if seen.insert(flag) {
            argv.push(format!("--{}", render_argument(argument, &values)));
        }
    }
    let matches = ecm::cli::command().try_get_matches_from(&argv);
    assert!(
        matches.is_ok(),
        "{argv:?}: {}",
        matches.err().map(|e| e.to_string()).unwrap_or_default()
    );
}

#[test]
fn chart_defaults_are_the_binary_defaults() {
    let run = run_flags();
    let values = values();
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

/// The rules of the first document of a template, with the template lines
/// (metadata, conditionals) left out.
fn rules(template: &str) -> Vec<Value> {
    let first = template.split("\n---").next().unwrap_or_default();
    let plain = first
        .lines()
        .filter(|line| !line.contains("{{"))
        .collect::<Vec<_>>()
        .join("\n");
    match yaml(&plain).get("rules") {
        Some(Value::Array(rules)) => rules.clone(),
        other => panic!("no rules in template: {other:?}"),
    }
}

fn grants(rules: &[Value], group: &str, resource: &str, verb: &str) -> bool {
    let has = |rule: &Value, field: &str, want: &str| {
        rule.get(field)
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|i| i.as_str() == Some(want)))
    };
    rules
        .iter()
        .any(|r| has(r, "apiGroups", group) && has(r, "resources", resource) && has(r, "verbs", verb))
}

#[test]
fn cluster_role_grants_what_upstream_controller_roles_grant() {
    let rules = rules(&read("templates/clusterrole.yaml"));
    // system:controller:endpoint-controller, endpointslice-controller and
    // endpointslicemirroring-controller, resource by resource.
    let read_only = ["get", "list", "watch"];
    let read_write = ["get", "list", "watch", "create", "update", "delete"];
    let mut wanted: Vec<(&str, &str, &[&str])> = vec![
        ("", "services", &read_only),
        ("", "pods", &read_only),
        ("", "nodes", &read_only),
        ("", "endpoints", &read_write),
        ("", "endpoints/restricted", &["create"]),
        ("", "services/finalizers", &["update"]),
        ("", "endpoints/finalizers", &["update"]),
        ("discovery.k8s.io", "endpointslices", &read_write),
    ];
    // ecm's event recorder creates events and patches repeated ones.
    wanted.push(("", "events", &["create", "update", "patch"]));
    wanted.push(("events.k8s.io", "events", &["create", "update", "patch"]));
    for (group, resource, verbs) in wanted {
        for verb in verbs {
            assert!(
                grants(&rules, group, resource, verb),
                "no {verb} on {resource} in group {group:?}"
            );
        }
    }
    // Upstream grants no patch on what the controllers write (PUT with a
    // resourceVersion); neither does ecm.
    assert!(!grants(&rules, "discovery.k8s.io", "endpointslices", "patch"));
    assert!(!grants(&rules, "", "endpoints", "patch"));
}

#[test]
fn leader_election_role_grants_what_the_lease_manager_calls() {
    let rules = rules(&read("templates/leader-election-rbac.yaml"));
    for verb in ["create", "get", "patch"] {
        assert!(
            grants(&rules, "coordination.k8s.io", "leases", verb),
            "no {verb} on leases"
        );
    }
}

/// Every key path of a values document, `a.b.c`, stopping at free-form maps
/// (those the chart passes through with toYaml) and lists.
fn key_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            out.insert(path.clone());
            key_paths(child, &path, out);
        }
    }
}

#[test]
fn ci_values_use_only_keys_the_chart_defines() {
    let mut known = BTreeSet::new();
    key_paths(&values(), "", &mut known);
    // Free-form maps passed through with toYaml: any key below them is fine.
    let free_form = [
        "podSecurityContext",
        "securityContext",
        "resources",
        "nodeSelector",
        "affinity",
        "podAnnotations",
        "podLabels",
        "commonLabels",
        "serviceAccount.annotations",
        "metrics.service.annotations",
        "serviceMonitor.additionalLabels",
        "livenessProbe",
        "readinessProbe",
    ];
    let dir = chart_dir().join("ci");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("deploy/helm/ecm/ci exists")
        .map(|entry| entry.expect("readable").path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let text = fs::read_to_string(&file).expect("readable");
        let mut used = BTreeSet::new();
        key_paths(&yaml(&text), "", &mut used);
        for path in used {
            let allowed = known.contains(&path) || free_form.iter().any(|f| path.starts_with(&format!("{f}.")));
            assert!(allowed, "{}: {path} is not a value of the chart", file.display());
        }
    }
}

#[test]
fn template_blocks_are_balanced() {
    let openers = ["if ", "with ", "range ", "define "];
    let mut files = vec![];
    let templates = chart_dir().join("templates");
    for entry in fs::read_dir(&templates).expect("templates exist") {
        let path = entry.expect("readable").path();
        if path.is_dir() {
            files.extend(
                fs::read_dir(&path)
                    .expect("readable")
                    .map(|e| e.expect("readable").path()),
            );
        } else {
            files.push(path);
        }
    }
    assert!(files.len() >= 9, "templates: {files:?}");
    for file in &files {
        let text = fs::read_to_string(file).expect("readable");
        let (mut opened, mut ended) = (0, 0);
        for action in text.split("{{").skip(1) {
            let action = action.split("}}").next().unwrap_or_default();
            let action = action.trim_start_matches('-').trim_start();
            if action.starts_with("/*") {
                continue;
            }
            if openers.iter().any(|o| action.starts_with(o)) {
                opened += 1;
            } else if action.trim_end_matches('-').trim_end() == "end" {
                ended += 1;
            }
        }
        assert_eq!(
            opened,
            ended,
            "{}: {opened} blocks opened, {ended} ended",
            file.display()
        );
    }
}

#[test]
fn chart_and_app_versions_follow_the_binary() {
    let chart = yaml(&read("Chart.yaml"));
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "ecm");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
}
