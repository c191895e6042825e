//! Secure metrics in the chart (`metrics.secure`, on by default): ecm runs
//! with `--metrics-secure=true`, its ClusterRole may create TokenReviews
//! and SubjectAccessReviews, a `<fullname>-metrics-reader` ClusterRole
//! grants `get` on `/metrics` (bound to `metrics.readerSubjects`), the
//! ServiceMonitor scrapes over HTTPS with Prometheus' service-account
//! token, and a certificate Secret is mounted where the TLS flags point.
//! `metrics.secure: false` removes all of that.

use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use serde_json::{Value, json};

use super::render::{Rendered, helm_available, render};
use super::{container_args, controller_role, deployment, grants, pod_templates, pss, round_trips_as};

fn metrics_reader(rendered: &Rendered) -> Option<Value> {
    rendered
        .of_kind("ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "ecm-metrics-reader")
}

fn parses_as_ecm(args: &[String]) {
    let argv = std::iter::once("ecm".to_owned()).chain(args.iter().cloned());
    if let Err(err) = ecm::cli::command().try_get_matches_from(argv) {
        panic!("{args:?}: {err}");
    }
}

#[test]
fn the_chart_default_is_the_binary_default_in_a_cluster() {
    let values = super::render::values(&[]);
    let secure = ecm::secure::MetricsSecurityFlags::default().secure(false);
    assert_eq!(values["metrics"]["secure"], json!(secure));
}

#[test]
fn secure_metrics_are_on_by_default_with_the_rbac_they_need() {
    if !helm_available() {
        return;
    }
    let rendered = render(&[json!({"serviceMonitor": {"enabled": true}})]).expect("renders");
    let args = container_args(&deployment(&rendered));
    assert!(args.contains(&"--metrics-secure=true".to_owned()), "{args:?}");
    assert!(
        args.iter().all(|a| !a.starts_with("--tls-")),
        "self-signed by default: {args:?}"
    );
    parses_as_ecm(&args);

    let rules = &controller_role(&rendered)["rules"];
    assert!(grants(rules, "authentication.k8s.io", "tokenreviews", "create"));
    assert!(grants(rules, "authorization.k8s.io", "subjectaccessreviews", "create"));

    let reader = metrics_reader(&rendered).expect("a metrics-reader ClusterRole");
    assert_eq!(
        reader["rules"],
        json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
    );
    assert!(
        rendered
            .of_kind("ClusterRoleBinding")
            .iter()
            .all(|b| b["metadata"]["name"] != "ecm-metrics-reader"),
        "no binding without metrics.readerSubjects"
    );

    let service = &rendered.of_kind("Service")[0];
    assert_eq!(service["spec"]["ports"][0]["appProtocol"], "https");
    let endpoint = &rendered.of_kind("ServiceMonitor")[0]["spec"]["endpoints"][0];
    assert_eq!(endpoint["scheme"], "https");
    assert_eq!(
        endpoint["bearerTokenFile"],
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    );
    assert_eq!(endpoint["tlsConfig"], json!({"insecureSkipVerify": true}));
}

#[test]
fn reader_subjects_are_bound_and_a_tls_secret_is_mounted_where_the_flags_point() {
    if !helm_available() {
        return;
    }
    let prometheus = json!({"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": "monitoring"});
    let rendered = render(&[json!({"metrics": {"readerSubjects": [prometheus], "tlsSecret": "ecm-metrics-tls"}})])
        .expect("renders");
    let binding = rendered
        .of_kind("ClusterRoleBinding")
        .into_iter()
        .find(|b| b["metadata"]["name"] == "ecm-metrics-reader")
        .expect("a metrics-reader binding");
    round_trips_as::<ClusterRoleBinding>(&binding).unwrap();
    assert_eq!(binding["roleRef"]["name"], "ecm-metrics-reader");
    assert_eq!(binding["subjects"], json!([prometheus]));

    let deployment = deployment(&rendered);
    let args = container_args(&deployment);
    parses_as_ecm(&args);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "ecm-metrics-tls");
    let mount = pod["containers"][0]["volumeMounts"][0]["mountPath"]
        .as_str()
        .expect("the Secret is mounted");
    for (flag, file) in [("--tls-cert-file", "tls.crt"), ("--tls-private-key-file", "tls.key")] {
        assert!(args.contains(&format!("{flag}={mount}/{file}")), "{flag}: {args:?}");
    }
    for (name, pod) in pod_templates("tlsSecret", &rendered) {
        for rule in pss::RESTRICTED {
            if let Err(why) = (rule.check)(&pod) {
                panic!("{name} breaks Pod Security Standards {}: {why}", rule.name);
            }
        }
    }
}

#[test]
fn plain_metrics_need_no_review_rbac() {
    if !helm_available() {
        return;
    }
    let rendered =
        render(&[json!({"metrics": {"secure": false}, "serviceMonitor": {"enabled": true}})]).expect("renders");
    let args = container_args(&deployment(&rendered));
    assert!(args.contains(&"--metrics-secure=false".to_owned()), "{args:?}");
    parses_as_ecm(&args);
    let rules = &controller_role(&rendered)["rules"];
    assert!(!grants(rules, "authentication.k8s.io", "tokenreviews", "create"));
    assert!(!grants(rules, "authorization.k8s.io", "subjectaccessreviews", "create"));
    assert!(metrics_reader(&rendered).is_none());
    let endpoint = &rendered.of_kind("ServiceMonitor")[0]["spec"]["endpoints"][0];
    assert!(endpoint.get("scheme").is_none() && endpoint.get("bearerTokenFile").is_none());
    assert!(
        rendered.of_kind("Service")[0]["spec"]["ports"][0]
            .get("appProtocol")
            .is_none()
    );
}
