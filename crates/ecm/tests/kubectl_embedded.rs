//! `ecm run --embedded` driven with `kubectl`, as the README tells a new
//! user to: apply the examples, see the endpoints. Skipped, with a printed
//! reason, where kubectl is not installed.

// Test code: a failed unwrap is a failed test; printing says why a test is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod support;

use support::{Ecm, eventually};

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn kubectl_apply_examples_then_get_endpoints() {
    if !kubectl_available() {
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ecm-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ecm"));
    command
        .args([
            "run",
            "--embedded",
            "--embedded-listen",
            "127.0.0.1:0",
            "--embedded-pod-ready-delay",
            "100ms",
        ])
        .args([
            "--health-probe-bind-address",
            "0",
            "--metrics-bind-address",
            "0",
            "--leader-elect=false",
        ])
        .arg("--embedded-kubeconfig")
        .arg(&kubeconfig);
    let _ecm = Ecm::spawn(command);
    eventually(Duration::from_secs(30), "the kubeconfig", || {
        kubeconfig.exists().then_some(())
    });

    let (ok, out) = kubectl(&kubeconfig, &["apply", "-f", examples().to_str().unwrap()]);
    assert!(ok, "kubectl apply failed: {out}");

    let web = eventually(Duration::from_secs(30), "3 ready web endpoints", || {
        let (ok, out) = kubectl(
            &kubeconfig,
            &[
                "get",
                "endpoints",
                "web",
                "-o",
                "jsonpath={.subsets[*].addresses[*].ip}",
            ],
        );
        (ok && out.split_whitespace().count() == 3).then_some(out)
    });
    assert!(web.split_whitespace().all(|ip| ip.starts_with("10.244.")), "{web}");

    let (_, table) = kubectl(&kubeconfig, &["get", "endpoints"]);
    for name in ["web", "api", "peers", "queue", "ds", "external-db"] {
        assert!(table.contains(name), "{name} missing from:\n{table}");
    }
    assert!(
        !table.contains("docs"),
        "an ExternalName service got endpoints:\n{table}"
    );
    let (_, selectorless) = kubectl(
        &kubeconfig,
        &[
            "get",
            "endpoints",
            "external-db",
            "-o",
            "jsonpath={.subsets[0].addresses[0].ip}",
        ],
    );
    assert_eq!(selectorless, "192.0.2.10", "the hand-written Endpoints were touched");
    let (_, headless) = kubectl(
        &kubeconfig,
        &["get", "endpoints", "peers", "-o", "jsonpath={.metadata.labels}"],
    );
    assert!(headless.contains("service.kubernetes.io/headless"), "{headless}");
    let _ = std::fs::remove_dir_all(&dir);
}
