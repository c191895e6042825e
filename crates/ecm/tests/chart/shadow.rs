//! The chart's shadow mode (`shadow.enabled`): `ecm shadow` with arguments
//! the binary accepts, one replica, a read-only ClusterRole (events only
//! when asked for), no Lease RBAC, no PodDisruptionBudget, no leader alert,
//! a pod that passes Pod Security Standards "restricted", and NOTES that
//! say how to read the report.

use serde_json::{Value, json};

use super::render::{helm_available, notes, render};
use super::{container_args, controller_role, deployment, grants, pod_templates, pss};

fn shadow(extra: Value) -> Value {
    let mut values = json!({"shadow": {"enabled": true}});
    if let (Some(base), Value::Object(extra)) = (values["shadow"].as_object_mut(), extra) {
        base.extend(extra);
    }
    values
}

#[test]
fn shadow_mode_runs_ecm_shadow_as_one_read_only_replica_without_a_lease() {
    if !helm_available() {
        return;
    }
    let rendered = render(&[shadow(json!({})), json!({"prometheusRule": {"enabled": true}})]).expect("renders");
    let shadow_deployment = deployment(&rendered);
    assert_eq!(
        shadow_deployment["spec"]["replicas"], 1,
        "one replica whatever replicaCount says"
    );
    let args = container_args(&shadow_deployment);
    assert_eq!(args[0], "shadow");
    assert!(args.contains(&"--grace-period=5s".to_owned()), "{args:?}");
    assert!(args.iter().all(|a| !a.starts_with("--leader-elect")), "{args:?}");
    let argv = std::iter::once("ecm".to_owned()).chain(args.iter().cloned());
    if let Err(err) = ecm::cli::command().try_get_matches_from(argv) {
        panic!("{args:?} is not an `ecm shadow` command line: {err}");
    }

    let role = controller_role(&rendered);
    let rules = &role["rules"];
    for rule in rules.as_array().unwrap() {
        // Reviews of scrapers (secure metrics) are answered, never stored.
        let reviews = rule["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| ["tokenreviews", "subjectaccessreviews"].contains(&r.as_str().unwrap()));
        for verb in rule["verbs"].as_array().unwrap() {
            let verb = verb.as_str().unwrap();
            assert!(
                ["get", "list", "watch"].contains(&verb) || (reviews && verb == "create"),
                "shadow mode may only read: {rule}"
            );
        }
    }
    let reader = rendered
        .of_kind("ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "ecm-metrics-reader")
        .expect("a metrics-reader ClusterRole");
    assert_eq!(
        reader["rules"][0]["nonResourceURLs"],
        json!(["/metrics", "/shadow"]),
        "the report is behind the same check as /metrics"
    );
    for (group, resource) in [
        ("", "services"),
        ("", "pods"),
        ("", "nodes"),
        ("", "endpoints"),
        ("discovery.k8s.io", "endpointslices"),
    ] {
        for verb in ["get", "list", "watch"] {
            assert!(grants(rules, group, resource, verb), "no {verb} on {resource}");
        }
    }
    assert!(!grants(rules, "", "events", "create"), "events are off by default");
    for role in rendered.of_kind("Role") {
        let text = role.to_string();
        assert!(!text.contains("leases"), "no Lease RBAC in shadow mode: {role}");
    }
    assert!(
        rendered.of_kind("PodDisruptionBudget").is_empty(),
        "one replica, no PDB"
    );
    let alerts = serde_json::to_string(&rendered.of_kind("PrometheusRule")).unwrap();
    assert!(!alerts.contains("EcmNoLeader"), "nobody holds a Lease in shadow mode");

    for (name, pod) in pod_templates("shadow", &rendered) {
        for rule in pss::RESTRICTED {
            if let Err(why) = (rule.check)(&pod) {
                panic!("{name} breaks Pod Security Standards {}: {why}", rule.name);
            }
        }
    }

    let with_events = render(&[shadow(json!({"events": true, "gracePeriod": "30s"}))]).expect("renders");
    let rules = &controller_role(&with_events)["rules"];
    assert!(grants(rules, "", "events", "create") && grants(rules, "events.k8s.io", "events", "create"));
    assert!(!grants(rules, "", "events", "update") && !grants(rules, "", "events", "patch"));
    assert!(container_args(&deployment(&with_events)).contains(&"--grace-period=30s".to_owned()));
}

#[test]
fn shadow_mode_notes_say_how_to_read_the_report() {
    if !helm_available() {
        return;
    }
    let text = notes(&[shadow(json!({}))]).expect("notes");
    for needle in [
        "SHADOW MODE",
        "Keep kube-controller-manager's endpoint controllers ON",
        "/shadow",
        "shadow divergence",
        "ecm_shadow_divergent_services",
        "ecm shadow --once",
        "ecm explain service",
    ] {
        assert!(text.contains(needle), "NOTES lack {needle:?}:\n{text}");
    }
    assert!(
        !text.contains("--controllers=*,-endpoint"),
        "shadow NOTES must not say to disable KCM's controllers first"
    );
}
