//! Secure `/metrics`: HTTPS ([`tls`]) with delegated authentication and
//! authorization ([`delegated`]), as kube-controller-manager serves its
//! metrics and controller-runtime's scaffolding does. The health probes
//! stay plain HTTP for the kubelet.
//!
//! The flags ([`MetricsSecurityFlags`]) are shared by `ecm run` and `ecm
//! shadow`: `--metrics-secure` (controller-runtime's name) turns it on or
//! off; `--tls-cert-file` and `--tls-private-key-file` and the review cache
//! TTLs have kube-controller-manager's names and defaults.

pub mod cache;
pub mod delegated;
pub mod tls;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use rustls::ServerConfig;

use crate::duration::parse_duration;
pub use delegated::{CacheTtls, DelegatedAuth};
use tls::Certificate;

/// How `/metrics` is served: the flags.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct MetricsSecurityFlags {
    /// Serve /metrics over HTTPS, letting through only requests whose bearer
    /// token a TokenReview authenticates and whose user a
    /// SubjectAccessReview allows to get the path (a non-resource URL).
    /// `--metrics-secure=false` serves plain HTTP to anyone. Default: on,
    /// except with --embedded (loopback, for local use).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub metrics_secure: Option<bool>,

    /// PEM certificate (chain) for HTTPS on --metrics-bind-address. Without
    /// it and --tls-private-key-file, a self-signed certificate is made at
    /// start.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of --tls-cert-file.
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,

    /// How long TokenReview answers are cached.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub authentication_token_webhook_cache_ttl: Duration,

    /// How long allowed SubjectAccessReview answers are cached.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub authorization_webhook_cache_authorized_ttl: Duration,

    /// How long denied SubjectAccessReview answers are cached.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,
}

impl Default for MetricsSecurityFlags {
    fn default() -> Self {
        let ttls = CacheTtls::default();
        Self {
            metrics_secure: None,
            tls_cert_file: None,
            tls_private_key_file: None,
            authentication_token_webhook_cache_ttl: ttls.authentication,
            authorization_webhook_cache_authorized_ttl: ttls.authorized,
            authorization_webhook_cache_unauthorized_ttl: ttls.unauthorized,
        }
    }
}

impl MetricsSecurityFlags {
    /// Whether /metrics is served securely: `--metrics-secure` when given,
    /// else on, except in embedded mode (`local`).
    pub fn secure(&self, local: bool) -> bool {
        self.metrics_secure.unwrap_or(!local)
    }

    /// The review cache TTLs.
    pub fn ttls(&self) -> CacheTtls {
        CacheTtls {
            authentication: self.authentication_token_webhook_cache_ttl,
            authorized: self.authorization_webhook_cache_authorized_ttl,
            unauthorized: self.authorization_webhook_cache_unauthorized_ttl,
        }
    }

    /// The TLS configuration: the files', or a self-signed certificate
    /// naming `ip` besides localhost.
    pub fn tls(&self, ip: Option<IpAddr>) -> Result<Arc<ServerConfig>> {
        let cert = match (&self.tls_cert_file, &self.tls_private_key_file) {
            (Some(cert), Some(key)) => Certificate::from_pem_files(cert, key)?,
            _ => Certificate::self_signed(&ip.into_iter().collect::<Vec<_>>())?,
        };
        cert.server_config()
    }

    /// What [`crate::health::serve_with_routes`] needs to serve /metrics
    /// securely through `client`, or `None` when it is served plain.
    pub fn secure_metrics(
        &self,
        local: bool,
        client: &kube::Client,
        ip: Option<IpAddr>,
    ) -> Result<Option<SecureMetrics>> {
        if !self.secure(local) {
            return Ok(None);
        }
        Ok(Some(SecureMetrics {
            tls: self.tls(ip)?,
            auth: DelegatedAuth::new(client.clone(), self.ttls()),
        }))
    }
}

/// HTTPS and delegated authorization for /metrics.
#[derive(Clone, Debug)]
pub struct SecureMetrics {
    /// The server's TLS configuration.
    pub tls: Arc<ServerConfig>,
    /// The token and access checks.
    pub auth: DelegatedAuth,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_by_default_except_locally_unless_told() {
        let flags = MetricsSecurityFlags::default();
        assert!(flags.secure(false));
        assert!(!flags.secure(true));
        let on = MetricsSecurityFlags {
            metrics_secure: Some(true),
            ..MetricsSecurityFlags::default()
        };
        assert!(on.secure(true));
        let off = MetricsSecurityFlags {
            metrics_secure: Some(false),
            ..MetricsSecurityFlags::default()
        };
        assert!(!off.secure(false));
    }
}
