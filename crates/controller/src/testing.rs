//! Helpers for tests of controllers built on this crate (feature `mock`).

use std::fmt::Display;
use std::hash::Hash;
use std::time::Duration;

use ecm_workqueue::{QueueConfig, RateLimitingQueue, default_controller_rate_limiter};

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
