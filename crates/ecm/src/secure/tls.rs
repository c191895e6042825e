//! The HTTPS side of `/metrics`: a certificate and key read from PEM files
//! (`--tls-cert-file`, `--tls-private-key-file`) or, as
//! kube-controller-manager does when none is given, a self-signed one made
//! at start; and an HTTP/1.1 server over TLS for an axum router.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Certificate {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Certificate {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1
    /// or SEC1), as kube-controller-manager's `--tls-cert-file` and
    /// `--tls-private-key-file`.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .with_context(|| format!("cannot read certificates from --tls-cert-file {}", cert.display()))?;
        if chain.is_empty() {
            bail!("--tls-cert-file {} holds no certificate", cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
            format!(
                "cannot read a private key from --tls-private-key-file {}",
                key.display()
            )
        })?;
        Ok(Self { chain, key })
    }

    /// A self-signed certificate for `localhost`, 127.0.0.1 and `ips`
    /// (made at every start; scrapers skip its verification or pin it).
    pub fn self_signed(ips: &[IpAddr]) -> Result<Self> {
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        names.extend(ips.iter().filter(|ip| !ip.is_unspecified()).map(ToString::to_string));
        names.dedup();
        let certified = rcgen::generate_simple_self_signed(names).context("cannot make a self-signed certificate")?;
        Ok(Self {
            chain: vec![certified.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der())),
        })
    }

    /// A rustls server configuration serving this certificate over
    /// HTTP/1.1, with rustls' safe defaults (TLS 1.2 and 1.3) and ring.
    pub fn server_config(self) -> Result<Arc<ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("no TLS protocol version available")?
            .with_no_client_auth()
            .with_single_cert(self.chain, self.key)
            .context("the TLS certificate and key do not fit together")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` (each connection is
/// closed then too).
pub async fn serve(listener: TcpListener, app: Router, tls: Arc<ServerConfig>, shutdown: CancellationToken) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let (acceptor, app, stop) = (acceptor.clone(), app.clone(), shutdown.clone());
                connections.spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
                    tokio::select! {
                        _ = connection => {}
                        () = stop.cancelled() => {}
                    }
                });
            }
            () = shutdown.cancelled() => break,
        }
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_makes_a_server_config() {
        let cert = Certificate::self_signed(&["10.0.0.7".parse().unwrap(), "0.0.0.0".parse().unwrap()]).unwrap();
        assert_eq!(cert.chain.len(), 1);
        cert.server_config().unwrap();
    }

    #[test]
    fn pem_files_are_read_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("ecm-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        Certificate::from_pem_files(&cert, &key)
            .unwrap()
            .server_config()
            .unwrap();

        let err = Certificate::from_pem_files(&key, &key).unwrap_err().to_string();
        assert!(err.contains("--tls-cert-file"), "{err}");
        let err = Certificate::from_pem_files(&cert, &cert).unwrap_err().to_string();
        assert!(err.contains("--tls-private-key-file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
