//! The Pod Security Standards "restricted" profile (which includes
//! "baseline"), rule by rule, as Kubernetes v1.36's Pod Security admission
//! checks it (<https://kubernetes.io/docs/concepts/security/pod-security-standards/>),
//! over a pod template (`metadata` and `spec`) as JSON. Each rule is its own
//! check so that a failure names the rule.

use serde_json::Value;

/// One rule of the profile: its name as the standard writes it, and a
/// check returning what breaks it.
pub(crate) struct Rule {
    /// The rule's name in the standard.
    pub(crate) name: &'static str,
    /// `Err(what breaks the rule)` when the pod breaks it.
    pub(crate) check: fn(&Value) -> Result<(), String>,
}

/// The restricted profile, baseline rules first.
pub(crate) const RESTRICTED: &[Rule] = &[
    Rule {
        name: "baseline: HostProcess (windowsOptions.hostProcess unset or false)",
        check: host_process,
    },
    Rule {
        name: "baseline: host namespaces (hostNetwork, hostPID, hostIPC unset or false)",
        check: host_namespaces,
    },
    Rule {
        name: "baseline: privileged containers (privileged unset or false)",
        check: privileged,
    },
    Rule {
        name: "baseline: HostPath volumes (none)",
        check: host_path,
    },
    Rule {
        name: "baseline: host ports (hostPort unset or 0)",
        check: host_ports,
    },
    Rule {
        name: "baseline: AppArmor (unset, RuntimeDefault or Localhost)",
        check: app_armor,
    },
    Rule {
        name: "baseline: SELinux (type among the container types, no user or role)",
        check: se_linux,
    },
    Rule {
        name: "baseline: /proc mount type (unset or Default)",
        check: proc_mount,
    },
    Rule {
        name: "baseline: sysctls (only the safe set)",
        check: sysctls,
    },
    Rule {
        name: "restricted: volume types (configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret)",
        check: volume_types,
    },
    Rule {
        name: "restricted: privilege escalation (allowPrivilegeEscalation false on every container)",
        check: privilege_escalation,
    },
    Rule {
        name: "restricted: running as non-root (runAsNonRoot true on the pod or every container)",
        check: run_as_non_root,
    },
    Rule {
        name: "restricted: running as non-root user (runAsUser not 0)",
        check: run_as_user,
    },
    Rule {
        name: "restricted: seccomp (RuntimeDefault or Localhost on the pod or every container)",
        check: seccomp,
    },
    Rule {
        name: "restricted: capabilities (drop ALL, add at most NET_BIND_SERVICE)",
        check: capabilities,
    },
];

/// Sysctls the baseline profile allows (v1.36).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// Volume sources the restricted profile allows.
const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// SELinux types the baseline profile allows (`""` too).
const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn spec(pod: &Value) -> &Value {
    &pod["spec"]
}

/// Every container: init, regular and ephemeral, with its name.
fn containers(pod: &Value) -> Vec<(String, &Value)> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .filter_map(|field| spec(pod)[field].as_array())
        .flatten()
        .map(|c| (c["name"].as_str().unwrap_or("?").to_owned(), c))
        .collect()
}

/// `Err` listing `problems`, if any.
fn none(problems: impl IntoIterator<Item = String>) -> Result<(), String> {
    let problems: Vec<String> = problems.into_iter().collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The pod's security context then each container's, labelled.
fn contexts(pod: &Value) -> Vec<(String, &Value)> {
    std::iter::once(("pod".to_owned(), &spec(pod)["securityContext"]))
        .chain(
            containers(pod)
                .into_iter()
                .map(|(name, c)| (format!("container {name}"), &c["securityContext"])),
        )
        .collect()
}

fn host_process(pod: &Value) -> Result<(), String> {
    none(
        contexts(pod)
            .into_iter()
            .filter(|(_, sc)| sc["windowsOptions"]["hostProcess"] == true)
            .map(|(who, _)| format!("{who} sets windowsOptions.hostProcess")),
    )
}

fn host_namespaces(pod: &Value) -> Result<(), String> {
    none(
        ["hostNetwork", "hostPID", "hostIPC"]
            .into_iter()
            .filter(|field| spec(pod)[field] == true)
            .map(|field| format!("{field}: true")),
    )
}

fn privileged(pod: &Value) -> Result<(), String> {
    none(
        containers(pod)
            .into_iter()
            .filter(|(_, c)| c["securityContext"]["privileged"] == true)
            .map(|(name, _)| format!("container {name} is privileged")),
    )
}

fn volumes(pod: &Value) -> Vec<&Value> {
    spec(pod)["volumes"]
        .as_array()
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

fn host_path(pod: &Value) -> Result<(), String> {
    none(
        volumes(pod)
            .into_iter()
            .filter(|v| !v["hostPath"].is_null())
            .map(|v| format!("volume {} is a hostPath", v["name"])),
    )
}

fn host_ports(pod: &Value) -> Result<(), String> {
    let mut problems = Vec::new();
    for (name, c) in containers(pod) {
        for port in c["ports"].as_array().into_iter().flatten() {
            if port["hostPort"].as_i64().unwrap_or(0) != 0 {
                problems.push(format!("container {name} has hostPort {}", port["hostPort"]));
            }
        }
    }
    none(problems)
}

fn app_armor(pod: &Value) -> Result<(), String> {
    let mut problems: Vec<String> = contexts(pod)
        .into_iter()
        .filter_map(|(who, sc)| {
            let kind = sc["appArmorProfile"]["type"].as_str()?;
            (!["RuntimeDefault", "Localhost"].contains(&kind)).then(|| format!("{who} appArmorProfile {kind}"))
        })
        .collect();
    for (key, value) in pod["metadata"]["annotations"].as_object().into_iter().flatten() {
        if key.starts_with("container.apparmor.security.beta.kubernetes.io/") {
            let value = value.as_str().unwrap_or_default();
            if value != "runtime/default" && !value.starts_with("localhost/") {
                problems.push(format!("annotation {key}: {value}"));
            }
        }
    }
    none(problems)
}

fn se_linux(pod: &Value) -> Result<(), String> {
    let mut problems = Vec::new();
    for (who, sc) in contexts(pod) {
        let options = &sc["seLinuxOptions"];
        if let Some(kind) = options["type"].as_str()
            && !SELINUX_TYPES.contains(&kind)
        {
            problems.push(format!("{who} seLinuxOptions.type {kind}"));
        }
        for field in ["user", "role"] {
            if options[field].as_str().is_some_and(|v| !v.is_empty()) {
                problems.push(format!("{who} sets seLinuxOptions.{field}"));
            }
        }
    }
    none(problems)
}

fn proc_mount(pod: &Value) -> Result<(), String> {
    none(containers(pod).into_iter().filter_map(|(name, c)| {
        let mount = c["securityContext"]["procMount"].as_str()?;
        (mount != "Default").then(|| format!("container {name} procMount {mount}"))
    }))
}

fn sysctls(pod: &Value) -> Result<(), String> {
    none(
        spec(pod)["securityContext"]["sysctls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["name"].as_str())
            .filter(|name| !SAFE_SYSCTLS.contains(name))
            .map(|name| format!("unsafe sysctl {name}")),
    )
}

fn volume_types(pod: &Value) -> Result<(), String> {
    let mut problems = Vec::new();
    for volume in volumes(pod) {
        for (field, _) in volume.as_object().into_iter().flatten() {
            if field != "name" && !ALLOWED_VOLUMES.contains(&field.as_str()) {
                problems.push(format!("volume {} is a {field}", volume["name"]));
            }
        }
    }
    none(problems)
}

fn privilege_escalation(pod: &Value) -> Result<(), String> {
    none(
        containers(pod)
            .into_iter()
            .filter(|(_, c)| c["securityContext"]["allowPrivilegeEscalation"] != false)
            .map(|(name, _)| format!("container {name} does not set allowPrivilegeEscalation: false")),
    )
}

fn run_as_non_root(pod: &Value) -> Result<(), String> {
    let pod_level = spec(pod)["securityContext"]["runAsNonRoot"] == true;
    none(
        containers(pod)
            .into_iter()
            .filter_map(|(name, c)| match &c["securityContext"]["runAsNonRoot"] {
                Value::Bool(true) => None,
                Value::Bool(false) => Some(format!("container {name} sets runAsNonRoot: false")),
                _ if pod_level => None,
                _ => Some(format!("neither the pod nor container {name} sets runAsNonRoot: true")),
            }),
    )
}

fn run_as_user(pod: &Value) -> Result<(), String> {
    none(
        contexts(pod)
            .into_iter()
            .filter(|(_, sc)| sc["runAsUser"] == 0)
            .map(|(who, _)| format!("{who} sets runAsUser: 0")),
    )
}

fn seccomp(pod: &Value) -> Result<(), String> {
    let allowed = |sc: &Value| {
        sc["seccompProfile"]["type"]
            .as_str()
            .map(|kind| ["RuntimeDefault", "Localhost"].contains(&kind))
    };
    let pod_level = allowed(&spec(pod)["securityContext"]);
    let mut problems = Vec::new();
    if pod_level == Some(false) {
        problems.push(format!(
            "pod seccompProfile {}",
            spec(pod)["securityContext"]["seccompProfile"]["type"]
        ));
    }
    for (name, c) in containers(pod) {
        match allowed(&c["securityContext"]) {
            Some(true) => {}
            Some(false) => problems.push(format!(
                "container {name} seccompProfile {}",
                c["securityContext"]["seccompProfile"]["type"]
            )),
            // Set on the pod: allowed, or reported above.
            None if pod_level.is_some() => {}
            None => problems.push(format!("neither the pod nor container {name} sets a seccompProfile")),
        }
    }
    none(problems)
}

fn capabilities(pod: &Value) -> Result<(), String> {
    let mut problems = Vec::new();
    for (name, c) in containers(pod) {
        let caps = &c["securityContext"]["capabilities"];
        let drops_all = caps["drop"].as_array().is_some_and(|d| d.iter().any(|c| c == "ALL"));
        if !drops_all {
            problems.push(format!("container {name} does not drop ALL"));
        }
        for added in caps["add"].as_array().into_iter().flatten() {
            if added != "NET_BIND_SERVICE" {
                problems.push(format!("container {name} adds {added}"));
            }
        }
    }
    none(problems)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A pod that passes every rule.
    fn compliant() -> Value {
        json!({
            "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}},
            "spec": {
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                    "seLinuxOptions": {"type": "container_t"},
                    "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
                },
                "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "cm", "configMap": {"name": "x"}}],
                "containers": [{
                    "name": "app",
                    "ports": [{"containerPort": 8080}],
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "privileged": false,
                        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                        "appArmorProfile": {"type": "RuntimeDefault"},
                        "procMount": "Default"
                    }
                }]
            }
        })
    }

    /// Applies `change` to a compliant pod.
    fn broken(change: impl FnOnce(&mut Value)) -> Value {
        let mut pod = compliant();
        change(&mut pod);
        pod
    }

    /// For each rule, a pod breaking it (and no other, but for hostPath,
    /// which is also a forbidden volume type).
    fn violations() -> Vec<(&'static str, Value)> {
        vec![
            (
                "HostProcess",
                broken(|p| {
                    p["spec"]["containers"][0]["securityContext"]["windowsOptions"] = json!({"hostProcess": true});
                }),
            ),
            ("host namespaces", broken(|p| p["spec"]["hostPID"] = json!(true))),
            (
                "privileged",
                broken(|p| p["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true)),
            ),
            (
                "HostPath",
                broken(|p| p["spec"]["volumes"][0] = json!({"name": "h", "hostPath": {"path": "/"}})),
            ),
            (
                "host ports",
                broken(|p| p["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(8080)),
            ),
            (
                "AppArmor",
                broken(|p| {
                    p["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/app"] =
                        json!("unconfined");
                }),
            ),
            (
                "SELinux",
                broken(|p| p["spec"]["securityContext"]["seLinuxOptions"] = json!({"type": "spc_t"})),
            ),
            (
                "/proc mount",
                broken(|p| p["spec"]["containers"][0]["securityContext"]["procMount"] = json!("Unmasked")),
            ),
            (
                "sysctls",
                broken(|p| p["spec"]["securityContext"]["sysctls"] = json!([{"name": "kernel.msgmax", "value": "1"}])),
            ),
            (
                "volume types",
                broken(|p| p["spec"]["volumes"][1] = json!({"name": "n", "nfs": {"server": "x", "path": "/"}})),
            ),
            (
                "privilege escalation",
                broken(|p| p["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true)),
            ),
            (
                "running as non-root (",
                broken(|p| p["spec"]["securityContext"]["runAsNonRoot"] = json!(false)),
            ),
            (
                "runAsUser not 0",
                broken(|p| p["spec"]["securityContext"]["runAsUser"] = json!(0)),
            ),
            (
                "seccomp",
                broken(|p| {
                    p["spec"]["containers"][0]["securityContext"]["seccompProfile"] = json!({"type": "Unconfined"});
                }),
            ),
            (
                "capabilities",
                broken(|p| p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["SYS_ADMIN"])),
            ),
        ]
    }

    #[test]
    fn a_compliant_pod_passes_every_rule() {
        let pod = compliant();
        for rule in RESTRICTED {
            assert_eq!((rule.check)(&pod), Ok(()), "{}", rule.name);
        }
    }

    #[test]
    fn each_rule_catches_what_breaks_it_and_only_that() {
        let cases = violations();
        assert_eq!(cases.len(), RESTRICTED.len(), "one violation per rule");
        for (needle, pod) in cases {
            let failed: Vec<&str> = RESTRICTED
                .iter()
                .filter(|rule| (rule.check)(&pod).is_err())
                .map(|rule| rule.name)
                .collect();
            assert!(failed.iter().any(|rule| rule.contains(needle)), "{needle}: {failed:?}");
            // A hostPath volume is also a volume type restricted forbids.
            let expected = if needle == "HostPath" { 2 } else { 1 };
            assert_eq!(failed.len(), expected, "{needle}: {failed:?}");
        }
    }
}
