//! The real `ecm` binary against ecm-apiserver serves /metrics over HTTPS
//! by default outside `--embedded`: a token the API server authenticates
//! (TokenReview) whose user may get /metrics (SubjectAccessReview) gets
//! 200 and Prometheus text, another user 403, no or an unknown token 401;
//! the health probes stay plain HTTP without a token.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ecm_apiserver::{ApiServer, AuthConfig, Config, Policy};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

mod support;

use support::{Ecm, eventually, http_get_status};

const SCRAPER: &str = "system:serviceaccount:monitoring:prometheus";

/// A free port on 127.0.0.1 (bound, then released for ecm to take).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A certificate for `localhost` written as PEM into `dir`; returns a
/// client configuration trusting it.
fn certificate(dir: &Path) -> Arc<ClientConfig> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.join("tls.crt"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), made.signing_key.serialize_pem()).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Status and body of an HTTPS `GET path` to `addr`, with `token` as
/// bearer token when given.
fn https_get(
    tls: &Arc<ClientConfig>,
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::clone(tls), name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n"
    )?;
    let mut bytes = Vec::new();
    // A server that closes without close_notify ends in UnexpectedEof
    // after the whole response.
    if let Err(err) = stream.read_to_end(&mut bytes)
        && (err.kind() != std::io::ErrorKind::UnexpectedEof || bytes.is_empty())
    {
        return Err(err);
    }
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[test]
fn metrics_need_an_authorized_token_and_probes_none() {
    let dir = std::env::temp_dir().join(format!("ecm-secure-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tls = certificate(&dir);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let auth = AuthConfig::default()
        .token("scraper-token", SCRAPER, ["system:serviceaccounts"])
        .token("intruder-token", "mallory", Vec::<String>::new())
        .allow(Policy::user_may_get(SCRAPER, "/metrics"));
    let handle = runtime.block_on(async {
        let server = ApiServer::new(Config::default().auth(auth)).unwrap();
        server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap()
    });
    let kubeconfig = dir.join("kubeconfig");
    handle.write_kubeconfig(&kubeconfig).unwrap();

    let (probes, metrics) = (free_port(), free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_ecm"));
    command
        .args(["run", "--leader-elect=false", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--health-probe-bind-address", &probes.to_string()])
        .args(["--metrics-bind-address", &metrics.to_string()])
        .arg("--tls-cert-file")
        .arg(dir.join("tls.crt"))
        .arg("--tls-private-key-file")
        .arg(dir.join("tls.key"))
        .env_remove("KUBECONFIG");
    let mut ecm = Ecm::spawn(command);

    eventually(Duration::from_secs(30), "/healthz over plain HTTP", || {
        assert!(ecm.running(), "ecm stopped:\n{}", ecm.stdout());
        (http_get_status(probes, "/healthz").ok() == Some(200)).then_some(())
    });
    eventually(Duration::from_secs(30), "/readyz over plain HTTP, no token", || {
        (http_get_status(probes, "/readyz").ok() == Some(200)).then_some(())
    });

    let body = eventually(
        Duration::from_secs(30),
        "Prometheus text with a scraper's token",
        || match https_get(&tls, metrics, "/metrics", Some("scraper-token")) {
            Ok((200, body)) if body.contains("# TYPE workqueue_") => Some(body),
            Ok((200, _)) | Err(_) => None,
            Ok((status, body)) => panic!("authorized scrape: {status} {body}"),
        },
    );
    assert!(body.lines().any(|l| l.starts_with("workqueue_adds_total{")), "{body}");

    let status = |token| https_get(&tls, metrics, "/metrics", token).unwrap().0;
    assert_eq!(status(Some("intruder-token")), 403, "authenticated, not allowed");
    assert_eq!(status(Some("guessed-token")), 401, "unknown token");
    assert_eq!(status(None), 401, "no token");
    let (code, body) = https_get(&tls, metrics, "/metrics", Some("intruder-token")).unwrap();
    assert_eq!(code, 403);
    assert!(body.contains("mallory"), "names the user: {body}");
    assert_ne!(
        http_get_status(metrics, "/metrics").ok(),
        Some(200),
        "no plain HTTP on the metrics port"
    );

    drop(ecm);
    drop(handle);
    let _ = std::fs::remove_dir_all(&dir);
}
