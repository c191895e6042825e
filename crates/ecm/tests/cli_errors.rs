//! Bad input to the `ecm` binary gives a clear error and a non-zero exit,
//! never a panic or an endless retry.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn ecm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ecm"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unknown_controller_is_refused() {
    let out = ecm(&[
        "run",
        "--controllers",
        "*,nodelifecycle",
        "--kubeconfig",
        "/nonexistent",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown controller \"nodelifecycle\""), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn kubeconfig_pointing_nowhere_fails_clearly() {
    let dir = std::env::temp_dir().join(format!("ecm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    unreachable_kubeconfig(&kubeconfig, "x");
    let out = run_with(&["--kubeconfig", kubeconfig.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cannot reach the API server"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_kubeconfig_file_fails_clearly() {
    let out = ecm(&[
        "run",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "--health-probe-bind-address",
        "0",
        "--metrics-bind-address",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read kubeconfig /nonexistent/kubeconfig"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn simulate_rejects_bad_scenarios() {
    let dir = std::env::temp_dir().join(format!("ecm-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("missing.yaml", None, "cannot read"),
        ("broken.yaml", Some("objects: [\n"), "not valid YAML"),
        (
            "unknown-kind.yaml",
            Some("objects:\n- {apiVersion: example.com/v1, kind: Widget, metadata: {name: w}}\n"),
            "cannot load Widget w",
        ),
        (
            "bad-option.yaml",
            Some("options: {maxEndpointsPerSlice: 5000}\nobjects: []\n"),
            "must be between 1 and 1000",
        ),
    ];
    for (name, content, expected) in cases {
        let path = dir.join(name);
        if let Some(text) = content {
            std::fs::write(&path, text).unwrap();
        }
        let out = ecm(&["simulate", "-f", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{name}");
        assert!(stderr(&out).contains(expected), "{name}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{name}: no result on failure");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_prints_the_version() {
    let out = ecm(&["version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ecm "));
}

/// A kubeconfig whose server refuses connections.
fn unreachable_kubeconfig(path: &std::path::Path, context: &str) {
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c-{context}, cluster: {{server: 'http://127.0.0.1:1'}}}}]\n\
             users: [{{name: u-{context}, user: {{}}}}]\n\
             contexts: [{{name: {context}, context: {{cluster: c-{context}, user: u-{context}}}}}]\n\
             current-context: {context}\n"
        ),
    )
    .unwrap();
}

/// `ecm run` with `args`, the probes off, a short start-up, and no cluster
/// configuration from the environment but `env`.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ecm"));
    command.args([
        "run",
        "--startup-timeout",
        "1s",
        "--health-probe-bind-address",
        "0",
        "--metrics-bind-address",
        "0",
    ]);
    command.args(args);
    command
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

#[test]
fn kubeconfig_env_is_read_as_kubectl_reads_it() {
    let dir = std::env::temp_dir().join(format!("ecm-cli-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let home = dir.to_str().unwrap();

    // Empty: unset, as for kubectl; with no ~/.kube/config and no in-cluster
    // environment there is nothing to connect to.
    let out = run_with(&[], &[("KUBECONFIG", ""), ("HOME", home)]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("no cluster configuration found"), "{err}");

    // A list of files, merged: the first one's current context wins.
    let (first, second) = (dir.join("first"), dir.join("second"));
    unreachable_kubeconfig(&first, "one");
    unreachable_kubeconfig(&second, "two");
    let list = std::env::join_paths([&first, &second]).unwrap();
    let out = run_with(&[], &[("KUBECONFIG", list.to_str().unwrap()), ("HOME", home)]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("cannot reach the API server"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ecm run --embedded` with `args`, the kubeconfig written under `dir`,
/// and the probe and metrics servers off unless `args` sets them.
fn embedded_with(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ecm"));
    command.args(["run", "--embedded", "--embedded-kubeconfig"]);
    command.arg(dir.join("kubeconfig"));
    for flag in ["--health-probe-bind-address", "--metrics-bind-address"] {
        if !args.contains(&flag) {
            command.args([flag, "0"]);
        }
    }
    command.args(args).env_remove("KUBECONFIG").output().unwrap()
}

/// The style of every `ecm run` error: exit code 1, one `ecm: ` line, no
/// panic.
fn assert_cli_error(out: &Output, what: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert!(err.lines().any(|line| line.starts_with("ecm: ")), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    err
}

#[test]
fn embedded_listen_off_loopback_is_refused_without_allow_remote() {
    let dir = std::env::temp_dir().join(format!("ecm-cli-remote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:6443"] {
        let out = embedded_with(&dir, &["--embedded-listen", addr]);
        let err = assert_cli_error(&out, addr);
        assert!(
            err.contains(&format!("--embedded-listen {addr} is not a loopback address")),
            "{err}"
        );
        assert!(err.contains("no authentication"), "{addr}: says why: {err}");
        assert!(err.contains("--embedded-allow-remote"), "{addr}: names the flag: {err}");
        assert!(out.stdout.is_empty(), "{addr}: nothing started");
        assert!(!dir.join("kubeconfig").exists(), "{addr}: no kubeconfig written");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn embedded_allow_remote_needs_embedded() {
    let out = run_with(&["--embedded-allow-remote", "--kubeconfig", "/nonexistent"], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("--embedded"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_explicit_address_in_use_fails_naming_its_flag() {
    let dir = std::env::temp_dir().join(format!("ecm-cli-taken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let cases = [
        (
            ["--embedded-listen", taken.as_str(), "--leader-elect=false"],
            "--embedded-listen",
        ),
        (
            ["--health-probe-bind-address", taken.as_str(), "--leader-elect=false"],
            "--health-probe-bind-address",
        ),
        (
            ["--metrics-bind-address", taken.as_str(), "--leader-elect=false"],
            "--metrics-bind-address",
        ),
    ];
    for (args, flag) in cases {
        let out = embedded_with(&dir, &args);
        let err = assert_cli_error(&out, flag);
        assert!(err.contains(&format!("cannot listen on {taken}")), "{flag}: {err}");
        assert!(err.contains("in use"), "{flag}: {err}");
        assert!(
            err.contains(&format!("pass another address with {flag}")),
            "{flag}: {err}"
        );
    }
    drop(held);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_flags_and_bad_values_are_usage_errors() {
    let cases: [(&[&str], &str); 5] = [
        (&["run", "--no-such-flag"], "unexpected argument '--no-such-flag' found"),
        (
            &["run", "--startup-timeout", "5parsecs"],
            "invalid value '5parsecs' for '--startup-timeout <STARTUP_TIMEOUT>': invalid duration \"5parsecs\"",
        ),
        (
            &["run", "--leader-elect-lease-duration=-1s"],
            "invalid value '-1s' for '--leader-elect-lease-duration",
        ),
        (&["run", "--max-endpoints-per-slice", "5000"], "5000 is not in 1..=1000"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
    ];
    for (args, expected) in cases {
        let out = ecm(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_kubeconfig_that_is_not_yaml_fails_clearly() {
    let dir = std::env::temp_dir().join(format!("ecm-cli-garbage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        ("garbage", "this: is: not: a kubeconfig\n"),
        ("truncated", "apiVersion: v1\nkind: Config\nclusters: ["),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = run_with(&["--kubeconfig", path.to_str().unwrap()], &[]);
        let err = assert_cli_error(&out, name);
        assert!(
            err.contains(&format!(
                "cannot read kubeconfig {}: failed to parse kubeconfig YAML",
                path.display()
            )),
            "{name}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server on 127.0.0.1 that answers every request with `code` and a
/// Kubernetes Status of `reason`; its URL.
fn refusing_server(code: u16, reason: &str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let body = format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{reason}","reason":"{reason}","code":{code}}}"#
    );
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = Vec::new();
            let mut buf = [0_u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

#[test]
fn an_expired_token_or_missing_rbac_fails_start_up_at_once_with_the_servers_answer() {
    let dir = std::env::temp_dir().join(format!("ecm-cli-refused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (code, reason, advice) in [
        (401, "Unauthorized", "refused ecm's credentials"),
        (403, "Forbidden", "check the RBAC rules"),
    ] {
        let url = refusing_server(code, reason);
        let path = dir.join(format!("kubeconfig-{code}"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{url}'}}}}]\n\
                 users: [{{name: u, user: {{token: expired-token}}}}]\n\
                 contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
            ),
        )
        .unwrap();
        let out = run_with(&["--kubeconfig", path.to_str().unwrap()], &[]);
        let err = assert_cli_error(&out, reason);
        assert!(err.contains(advice), "{code}: says what to fix: {err}");
        assert!(err.contains(reason), "{code}: names the server's answer: {err}");
        assert!(!err.contains("retrying"), "{code}: fails at the first answer: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
