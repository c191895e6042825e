//! Integration tests: a real `kube::Client` over real HTTP against the server.
#![allow(missing_docs)]
// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod crud;
mod faults;
mod gc;
mod kubectl;
mod kubelet;
mod openapi;
mod protobuf;
mod reviews;
mod validation;
mod watch;
mod workloads;

use std::future::Future;
use std::time::Duration;

use ecm_apiserver::{ApiServer, Config, ServeHandle};
use serde::de::DeserializeOwned;

/// A server on 127.0.0.1 and a client talking to it over HTTP.
pub struct Harness {
    pub server: ApiServer,
    pub handle: ServeHandle,
    pub client: kube::Client,
}

pub async fn start(config: Config) -> Harness {
    let server = ApiServer::new(config).unwrap();
    let handle = server.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut kc = kube::Config::new(handle.url().parse().unwrap());
    kc.default_namespace = "default".into();
    kc.default_retry = false;
    let client = kube::Client::try_from(kc).unwrap();
    Harness { server, handle, client }
}

pub fn obj<T: DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// Waits until `check` returns `Some`, polling, for at most 10 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The Status of a failed kube call.
pub fn status(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}
