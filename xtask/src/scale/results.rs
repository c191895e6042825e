//! The bench's results: one JSON object per line, read into [`Run`]s.

use anyhow::{Context, Result};
use serde_json::Value;

/// What the table and the plot need of one run (`None`: not measured).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Run {
    /// Services.
    pub(crate) services: u64,
    /// Pods per Service.
    pub(crate) pods_per_service: u64,
    /// Pods in all.
    pub(crate) pods: u64,
    /// Namespaces.
    pub(crate) namespaces: u64,
    /// Pods in each namespace.
    pub(crate) pods_per_namespace: u64,
    /// Whether the cold start converged.
    pub(crate) converged: bool,
    /// Seconds from ecm's start to every Service converged.
    pub(crate) converge_secs: f64,
    /// ecm's CPU seconds until then.
    pub(crate) start_cpu_secs: Option<f64>,
    /// ecm's writes until then.
    pub(crate) start_writes: u64,
    /// ecm's CPU seconds per second while idle.
    pub(crate) idle_cpu_per_sec: Option<f64>,
    /// Readiness changes made during churn.
    pub(crate) changes: u64,
    /// Whether every change was seen.
    pub(crate) drained: bool,
    /// EndpointSlice latency percentiles, ms.
    pub(crate) slice_p50_ms: Option<f64>,
    /// p99 of the same.
    pub(crate) slice_p99_ms: Option<f64>,
    /// Endpoints latency p99, ms.
    pub(crate) endpoints_p99_ms: Option<f64>,
    /// ecm's writes during churn.
    pub(crate) churn_writes: u64,
    /// ecm's CPU per change, ms.
    pub(crate) cpu_per_change_ms: Option<f64>,
    /// Writes after a restart on the converged cluster.
    pub(crate) restart_writes: Option<u64>,
    /// Seconds from the restart until ready.
    pub(crate) restart_ready_secs: Option<f64>,
    /// Seconds from the restart until the last write (or ready).
    pub(crate) restart_idle_secs: Option<f64>,
    /// ecm's resident set once converged, bytes.
    pub(crate) rss_converged: Option<u64>,
    /// ecm's peak resident set, bytes.
    pub(crate) peak_rss: Option<u64>,
}

fn f(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_f64)
}

fn u(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_u64)
}

fn b(v: &Value, path: &[&str]) -> bool {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

impl Run {
    /// Reads one result object.
    pub(crate) fn from_json(v: &Value) -> Self {
        let idle_secs = f(v, &["idle", "secs"]).filter(|s| *s > 0.0);
        Self {
            services: u(v, &["services"]).unwrap_or(0),
            pods_per_service: u(v, &["pods_per_service"]).unwrap_or(0),
            pods: u(v, &["pods"]).unwrap_or(0),
            namespaces: u(v, &["namespaces"]).unwrap_or(1),
            pods_per_namespace: u(v, &["pods_per_namespace"]).unwrap_or(0),
            converged: b(v, &["cold_start", "converged"]),
            converge_secs: f(v, &["cold_start", "converge_secs"]).unwrap_or(f64::NAN),
            start_cpu_secs: f(v, &["cold_start", "cpu_secs"]),
            start_writes: u(v, &["cold_start", "writes", "total"]).unwrap_or(0),
            idle_cpu_per_sec: f(v, &["idle", "cpu_secs"]).zip(idle_secs).map(|(c, s)| c / s),
            changes: u(v, &["churn", "changes"]).unwrap_or(0),
            drained: b(v, &["churn", "drained"]),
            slice_p50_ms: f(v, &["churn", "endpointslice_latency", "p50_ms"]),
            slice_p99_ms: f(v, &["churn", "endpointslice_latency", "p99_ms"]),
            endpoints_p99_ms: f(v, &["churn", "endpoints_latency", "p99_ms"]),
            churn_writes: u(v, &["churn", "writes", "total"]).unwrap_or(0),
            cpu_per_change_ms: f(v, &["churn", "cpu_per_change_ms"]),
            restart_writes: u(v, &["restart", "writes", "total"]),
            restart_ready_secs: f(v, &["restart", "ready_secs"]),
            restart_idle_secs: f(v, &["restart", "idle_secs"]),
            rss_converged: u(v, &["memory", "rss_converged_bytes"]),
            peak_rss: u(v, &["memory", "peak_rss_bytes"]),
        }
    }
}

/// Every run in a JSON-lines text (blank lines skipped).
pub(crate) fn parse(text: &str) -> Result<Vec<Run>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let value: Value = serde_json::from_str(line).with_context(|| format!("results line {}", i + 1))?;
            Ok(Run::from_json(&value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_bench_writes_and_tolerates_what_it_did_not_measure() {
        let full = r#"{"services":300,"pods_per_service":10,"pods":3000,"namespaces":1,"pods_per_namespace":3000,
            "cold_start":{"converged":true,"converge_secs":0.5,"cpu_secs":0.4,"writes":{"total":600}},
            "idle":{"secs":10.0,"cpu_secs":0.02},
            "churn":{"changes":1000,"drained":true,"cpu_per_change_ms":0.9,"writes":{"total":2000},
                "endpointslice_latency":{"p50_ms":4.0,"p99_ms":12.5},"endpoints_latency":{"p99_ms":13.0}},
            "restart":{"writes":{"total":0},"ready_secs":0.3,"idle_secs":0.3},
            "memory":{"rss_converged_bytes":30000000,"peak_rss_bytes":32000000}}"#;
        let sparse = r#"{"services":10,"pods_per_service":10,"pods":100,"namespaces":1,"restart":null}"#;
        let text = format!("{}\n\n{sparse}\n", full.replace('\n', " "));
        let runs = parse(&text).expect("valid");
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].pods, 3000);
        assert_eq!(runs[0].idle_cpu_per_sec, Some(0.002));
        assert_eq!(runs[0].slice_p99_ms, Some(12.5));
        assert_eq!(runs[0].restart_writes, Some(0));
        assert_eq!(runs[1].restart_writes, None);
        assert_eq!(runs[1].cpu_per_change_ms, None);
    }
}
