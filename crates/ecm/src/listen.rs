//! Listening addresses given by flags: binding them, with a clear error
//! naming the flag, and — for an address the user did not choose (a flag's
//! default, in `--embedded` mode) — a fallback to a free port the OS picks
//! on the same IP when the default port is taken.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Result, anyhow};

/// An address to listen on and the flag it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The flag that sets it, without the leading `--`.
    pub flag: &'static str,
    /// Whether a taken port may be replaced by one the OS picks (only for
    /// an address the user did not give explicitly).
    pub fallback: bool,
}

/// Where a [`Listen`] ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// What was asked for.
    pub requested: Listen,
    /// The address actually listened on.
    pub addr: SocketAddr,
}

impl Bound {
    /// Whether the requested port was taken and another one is used.
    pub fn fell_back(&self) -> bool {
        self.requested.addr.port() != 0 && self.requested.addr != self.addr
    }

    /// A line telling a person that the default address was taken and
    /// which one is used instead, or `None` when there was no fallback.
    pub fn notice(&self, what: &str) -> Option<String> {
        self.fell_back().then(|| {
            format!(
                "{requested} (the default of --{flag}) is in use; {what}: {addr} instead \
                 (--{flag} chooses the address)",
                requested = self.requested.addr,
                flag = self.requested.flag,
                addr = self.addr,
            )
        })
    }
}

impl Listen {
    /// An address given on the command line (`explicit`) or a flag's
    /// default; only a default may fall back, and only when `may_fall_back`.
    pub fn new(addr: SocketAddr, flag: &'static str, explicit: bool, may_fall_back: bool) -> Self {
        Self {
            addr,
            flag,
            fallback: may_fall_back && !explicit,
        }
    }

    /// The same address with its IP replaced by 127.0.0.1.
    #[must_use]
    pub fn on_loopback(self) -> Self {
        Self {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.addr.port()),
            ..self
        }
    }

    /// Binds with `bind`, which returns the bound value and its local
    /// address. A taken port falls back to port 0 on the same IP when
    /// [`Listen::fallback`] allows it (logged as a warning); any other
    /// failure is an error naming the address and the flag.
    ///
    /// # Errors
    ///
    /// The address cannot be bound (and no fallback applies, or the
    /// fallback failed too).
    pub async fn bind_with<T, F, Fut>(&self, what: &str, mut bind: F) -> Result<(T, Bound)>
    where
        F: FnMut(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<(T, SocketAddr)>>,
    {
        let err = match bind(self.addr).await {
            Ok((value, addr)) => return Ok((value, Bound { requested: *self, addr })),
            Err(err) => err,
        };
        let flag = self.flag;
        let requested = self.addr;
        if err.kind() != io::ErrorKind::AddrInUse {
            return Err(anyhow!(
                "cannot listen on {requested} for {what}: {err} (--{flag} sets the address)"
            ));
        }
        if !self.fallback {
            return Err(anyhow!(
                "cannot listen on {requested} for {what}: the address is in use by another process; \
                 pass another address with --{flag}"
            ));
        }
        let any = SocketAddr::new(requested.ip(), 0);
        let (value, addr) = bind(any).await.map_err(|err| {
            anyhow!(
                "cannot listen on {requested} for {what} (in use), nor on a free port of {ip}: {err} \
                 (--{flag} sets the address)",
                ip = requested.ip()
            )
        })?;
        let bound = Bound { requested: *self, addr };
        tracing::warn!(%requested, %addr, flag = %format!("--{flag}"), "{what}: the default address is in use, listening on a free port instead");
        Ok((value, bound))
    }

    /// Binds a TCP listener; see [`Listen::bind_with`].
    ///
    /// # Errors
    ///
    /// As [`Listen::bind_with`].
    pub async fn bind(&self, what: &str) -> Result<(tokio::net::TcpListener, Bound)> {
        self.bind_with(what, |addr| async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let local = listener.local_addr()?;
            Ok((listener, local))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken() -> (std::net::TcpListener, SocketAddr) {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        (holder, addr)
    }

    #[tokio::test]
    async fn a_taken_default_falls_back_to_a_free_port_on_the_same_ip() {
        let (_holder, addr) = taken();
        let listen = Listen::new(addr, "metrics-bind-address", false, true);
        let (_listener, bound) = listen.bind("metrics").await.unwrap();
        assert!(bound.fell_back());
        assert_eq!(bound.addr.ip(), addr.ip());
        assert_ne!(bound.addr.port(), addr.port());
        let notice = bound.notice("/metrics").unwrap();
        assert!(notice.contains(&addr.to_string()), "{notice}");
        assert!(notice.contains(&bound.addr.to_string()), "{notice}");
        assert!(notice.contains("--metrics-bind-address"), "{notice}");
    }

    #[tokio::test]
    async fn a_taken_explicit_address_fails_naming_the_flag() {
        let (_holder, addr) = taken();
        let listen = Listen::new(addr, "embedded-listen", true, true);
        let err = listen.bind("the embedded API server").await.unwrap_err().to_string();
        assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
        assert!(err.contains("in use"), "{err}");
        assert!(err.contains("--embedded-listen"), "{err}");
    }

    #[tokio::test]
    async fn a_taken_default_without_fallback_fails_naming_the_flag() {
        let (_holder, addr) = taken();
        let listen = Listen::new(addr, "health-probe-bind-address", false, false);
        let err = listen.bind("health probes").await.unwrap_err().to_string();
        assert!(err.contains("--health-probe-bind-address"), "{err}");
    }

    #[tokio::test]
    async fn a_free_address_is_used_as_given() {
        let listen = Listen::new("127.0.0.1:0".parse().unwrap(), "metrics-bind-address", false, true);
        let (_listener, bound) = listen.bind("metrics").await.unwrap();
        assert!(!bound.fell_back());
        assert!(bound.notice("metrics").is_none());
    }

    #[test]
    fn on_loopback_keeps_the_port() {
        let listen = Listen::new(
            "0.0.0.0:8081".parse().unwrap(),
            "health-probe-bind-address",
            false,
            true,
        );
        assert_eq!(listen.on_loopback().addr, "127.0.0.1:8081".parse().unwrap());
    }
}
