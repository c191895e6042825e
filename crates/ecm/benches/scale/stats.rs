//! Percentiles of latency samples.

use std::time::Duration;

/// p50, p90, p99 and max in milliseconds, `null`s when there are no samples.
pub fn summary(samples: &[Duration]) -> serde_json::Value {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |p: f64| -> Option<f64> {
        if sorted.is_empty() {
            return None;
        }
        let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        Some(sorted[index].as_secs_f64() * 1e3)
    };
    serde_json::json!({
        "n": sorted.len(),
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
    })
}
