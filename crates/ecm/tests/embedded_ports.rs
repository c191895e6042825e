//! `ecm run --embedded` as the README's first command runs it, with its
//! default ports (6443, 8081, 8080) taken: it must start anyway on free
//! ports, say which, write a kubeconfig pointing at the API server's real
//! address, and serve there.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

mod support;

use support::{Ecm, eventually, http_get_status};

/// The three default addresses in embedded mode.
const DEFAULTS: [(&str, &str); 3] = [
    ("127.0.0.1:6443", "--embedded-listen"),
    ("127.0.0.1:8081", "--health-probe-bind-address"),
    ("127.0.0.1:8080", "--metrics-bind-address"),
];

/// The address after `prefix` on the first line of `text` that has it.
fn address_after(text: &str, prefix: &str) -> Option<SocketAddr> {
    let rest = text
        .lines()
        .find_map(|line| line.split_once(prefix).map(|(_, rest)| rest))?;
    rest.split(['/', ' ']).next()?.parse().ok()
}

#[test]
fn taken_default_ports_fall_back_to_free_ones_that_serve() {
    // Hold the default ports. One already held by another process on this
    // machine cannot be bound here, and is just as taken for ecm.
    let _held: Vec<TcpListener> = DEFAULTS
        .iter()
        .filter_map(|(addr, _)| TcpListener::bind(addr).ok())
        .collect();
    let dir = std::env::temp_dir().join(format!("ecm-ports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");

    let mut command = Command::new(env!("CARGO_BIN_EXE_ecm"));
    command
        .args(["run", "--embedded", "--leader-elect=false", "--embedded-kubeconfig"])
        .arg(&kubeconfig);
    let mut ecm = Ecm::spawn(command);
    let out = eventually(Duration::from_secs(30), "the embedded instructions", || {
        assert!(ecm.running(), "ecm stopped:\n{}", ecm.stdout());
        let out = ecm.stdout();
        out.contains("Stop with Ctrl-C.").then_some(out)
    });

    for (default, flag) in DEFAULTS {
        let notice = out
            .lines()
            .find(|line| line.contains(&format!("{default} (the default of {flag}) is in use")))
            .unwrap_or_else(|| panic!("no fallback notice for {flag}:\n{out}"));
        assert!(notice.contains("instead"), "{notice}");
    }

    let api = address_after(&out, "embedded Kubernetes API server at http://").expect("the API server's URL");
    let probes = address_after(&out, "Health probes: http://").expect("the probes' address");
    let metrics = address_after(&out, "Metrics: http://").expect("the metrics' address");
    for (addr, (default, flag)) in [api, probes, metrics].into_iter().zip(DEFAULTS) {
        assert!(addr.ip().is_loopback(), "{flag}: {addr} is not loopback");
        assert_ne!(
            addr.to_string(),
            default,
            "{flag}: the taken default is reported as used"
        );
    }

    assert_eq!(
        http_get_status(probes, "/healthz").unwrap(),
        200,
        "/healthz on {probes}"
    );
    assert_eq!(
        http_get_status(metrics, "/metrics").unwrap(),
        200,
        "/metrics on {metrics}"
    );

    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    let server = config
        .lines()
        .find_map(|line| line.trim().strip_prefix("server: http://"))
        .expect("a server in the kubeconfig");
    let server: SocketAddr = server.parse().unwrap();
    assert_eq!(server, api, "the kubeconfig points at the address in use");
    assert_eq!(
        http_get_status(server, "/version").unwrap(),
        200,
        "/version on {server}"
    );
    assert_eq!(
        http_get_status(server, "/api/v1/namespaces/default/endpoints").unwrap(),
        200,
        "listing Endpoints through the kubeconfig's server"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
