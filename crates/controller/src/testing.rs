//! Helpers for tests of controllers built on this crate (feature `mock`).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use ecm_types::wellknown::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use ecm_workqueue::{QueueConfig, RateLimitingQueue, default_controller_rate_limiter};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// An unnamed queue with client-go's default controller rate limiter.
pub fn queue<K: Clone + Eq + Hash + Send + Sync + 'static>() -> RateLimitingQueue<K> {
    RateLimitingQueue::new(QueueConfig::default(), default_controller_rate_limiter())
}

/// Takes every key `queue` holds, delayed ones included, as sorted strings.
/// Lets an hour pass first: call it on Tokio's paused clock
/// (`#[tokio::test(start_paused = true)]`), where that is instant.
pub async fn drain<K>(queue: &RateLimitingQueue<K>) -> Vec<String>
where
    K: Clone + Eq + Hash + Display + Send + Sync + 'static,
{
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let mut keys = Vec::new();
    while !queue.is_empty() {
        let Some(key) = queue.get().await else { break };
        queue.done(&key);
        keys.push(key.to_string());
    }
    keys.sort();
    keys
}

/// An IPv4 EndpointSlice `name` in namespace `ns` with uid `uid-<name>`,
/// `generation`, managed by `managed_by`, and labelled with `service` unless
/// it is empty.
pub fn slice(name: &str, service: &str, managed_by: &str, generation: i64) -> Arc<EndpointSlice> {
    let mut labels = BTreeMap::from([(LABEL_MANAGED_BY.to_owned(), managed_by.to_owned())]);
    if !service.is_empty() {
        labels.insert(LABEL_SERVICE_NAME.to_owned(), service.to_owned());
    }
    Arc::new(EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("ns".to_owned()),
            uid: Some(format!("uid-{name}")),
            generation: Some(generation),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".to_owned(),
        ..EndpointSlice::default()
    })
}
