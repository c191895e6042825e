//! Memory per cached pod: the full object, the object without
//! `managedFields`, and `ecm_types::PodProjection` (without and with the
//! label index).
//!
//! Ignored by default (it loads 100 000 pods four times). Run with
//!
//! ```text
//! cargo test -p ecm-informer --release --test memory -- --ignored --nocapture
//! ```
//!
//! (`ECM_MEMORY_PODS=10000` for a quicker run). The parent test runs each
//! variant in a child process (this same binary) so that resident-set
//! figures are not blurred by memory an earlier variant freed. Each child
//! generates realistic pods as JSON — a Deployment's pod as a v1.36 API
//! server returns it: labels, annotations, an owner reference, two
//! containers with env, resources, ports and probes, the service-account
//! volume, tolerations, five conditions, two container statuses, pod and
//! host IPs, and the two `managedFields` entries kube-controller-manager and
//! the kubelet write — decodes each with serde as kube does, applies the
//! variant's transform and inserts it into an informer [`Store`] (with its
//! namespace index). It reports the live heap growth counted by a counting
//! global allocator, the number of live allocations, and the growth of the
//! resident set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::alloc::System;
use std::fmt::Write as _;
use std::sync::Arc;

use ecm_informer::{Store, strip_managed_fields};
use ecm_types::PodProjection;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Map, Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const VARIANT_ENV: &str = "ECM_MEMORY_VARIANT";
const RESULT_PREFIX: &str = "ECM_MEMORY_RESULT";
const VARIANTS: [(&str, &str); 4] = [
    ("full", "(a) full `Pod`"),
    ("trimmed", "(b) `Pod` without `managedFields` (default transform)"),
    ("projection", "(c) `ecm_types::PodProjection`"),
    (
        "projection-labels",
        "(d) (c) with the label index (`Store::add_label_index`)",
    ),
];

fn pod_count() -> usize {
    std::env::var("ECM_MEMORY_PODS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

/// A hex string of `len` digits derived from `seed`.
fn hex(seed: u64, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        write!(out, "{x:016x}").unwrap();
    }
    out.truncate(len);
    out
}

/// Lowercase alphanumerics, as in generated name suffixes.
fn suffix(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// The merge keys of the lists that server-side apply tracks per item.
fn merge_keys(field: &str) -> Option<&'static [&'static str]> {
    Some(match field {
        "containers" | "initContainers" | "env" | "volumes" => &["name"],
        "ports" => &["containerPort", "protocol"],
        "volumeMounts" => &["mountPath"],
        "conditions" => &["type"],
        "podIPs" | "hostIPs" => &["ip"],
        "ownerReferences" => &["uid"],
        _ => return None,
    })
}

/// The `fieldsV1` set of `value`, as the API server's field manager builds
/// it: `f:<field>` for fields, `k:{...}` for items of keyed lists, `.` for
/// the object itself.
fn fields_of(value: &Value, with_dot: bool) -> Value {
    let Value::Object(map) = value else { return json!({}) };
    let mut out = Map::new();
    if with_dot {
        out.insert(".".into(), json!({}));
    }
    for (name, child) in map {
        let entry = match (child, merge_keys(name)) {
            (Value::Array(items), Some(keys)) => {
                let mut list = Map::new();
                list.insert(".".into(), json!({}));
                for item in items {
                    let key: Map<String, Value> = keys.iter().map(|k| ((*k).to_owned(), item[*k].clone())).collect();
                    list.insert(format!("k:{}", Value::Object(key)), fields_of(item, true));
                }
                Value::Object(list)
            }
            (Value::Array(_), None) => json!({}),
            (other, _) => fields_of(other, true),
        };
        out.insert(format!("f:{name}"), entry);
    }
    Value::Object(out)
}

/// The JSON of pod number `i`, as an API server would send it.
fn pod_json(i: usize) -> Vec<u8> {
    let seed = i as u64;
    let app = ["web", "api", "worker", "cache", "auth"][i % 5];
    let namespace = format!("team-{}", i % 50);
    let hash = suffix(seed / 20 + 7, 10);
    let name = format!("{app}-{hash}-{}", suffix(seed, 5));
    let uid = |s: u64| {
        let h = hex(s, 32);
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    };
    let pod_ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    let node = i % 500;
    let host_ip = format!("192.168.{}.{}", node / 250, node % 250 + 2);
    let created = format!(
        "2026-07-{:02}T{:02}:{:02}:{:02}Z",
        i % 28 + 1,
        i % 24,
        i % 60,
        (i / 60) % 60
    );
    let started = created.clone();
    let image = format!("registry.example.com/{namespace}/{app}:1.{}.{}", i % 30, i % 7);
    let token_volume = format!("kube-api-access-{}", suffix(seed + 3, 5));
    let probe = |path: &str| {
        json!({
            "httpGet": { "path": path, "port": "http", "scheme": "HTTP" },
            "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": 3,
        })
    };
    let mounts = json!([{
        "name": token_volume, "readOnly": true,
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    }]);
    let field_env = |name: &str, path: &str| json!({ "name": name, "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": path } } });
    let labels = json!({
        "app": app,
        "pod-template-hash": hash,
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": format!("{app}-{}", i % 50),
        "app.kubernetes.io/version": format!("1.{}.{}", i % 30, i % 7),
        "tier": if i.is_multiple_of(2) { "frontend" } else { "backend" },
    });
    let owner_uid = uid(seed / 20 + 1_000_003);
    let spec = json!({
        "containers": [
            {
                "name": app, "image": image, "imagePullPolicy": "IfNotPresent",
                "args": ["--config=/etc/app/config.yaml", "--port=8080"],
                "ports": [
                    { "name": "http", "containerPort": 8080, "protocol": "TCP" },
                    { "name": "metrics", "containerPort": 9090, "protocol": "TCP" },
                ],
                "env": [
                    { "name": "LOG_LEVEL", "value": "info" },
                    { "name": "APP_ENV", "value": "production" },
                    { "name": "GOMAXPROCS", "value": "2" },
                    field_env("POD_NAME", "metadata.name"),
                    field_env("POD_NAMESPACE", "metadata.namespace"),
                    field_env("POD_IP", "status.podIP"),
                ],
                "resources": {
                    "requests": { "cpu": "100m", "memory": "128Mi" },
                    "limits": { "cpu": "500m", "memory": "256Mi" },
                },
                "livenessProbe": probe("/healthz"),
                "readinessProbe": probe("/ready"),
                "volumeMounts": mounts,
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            },
            {
                "name": "proxy", "image": "registry.example.com/mesh/proxy:1.22.4",
                "imagePullPolicy": "IfNotPresent",
                "ports": [{ "name": "proxy-admin", "containerPort": 15000, "protocol": "TCP" }],
                "env": [
                    { "name": "PROXY_LOG_LEVEL", "value": "warning" },
                    field_env("NODE_NAME", "spec.nodeName"),
                    field_env("POD_NAME", "metadata.name"),
                ],
                "resources": {
                    "requests": { "cpu": "50m", "memory": "64Mi" },
                    "limits": { "cpu": "200m", "memory": "128Mi" },
                },
                "readinessProbe": {
                    "tcpSocket": { "port": 15000 }, "periodSeconds": 5, "timeoutSeconds": 1,
                    "successThreshold": 1, "failureThreshold": 3,
                },
                "volumeMounts": mounts,
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            },
        ],
        "volumes": [{
            "name": token_volume,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    { "serviceAccountToken": { "expirationSeconds": 3607, "path": "token" } },
                    { "configMap": { "name": "kube-root-ca.crt", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } },
                    { "downwardAPI": { "items": [{
                        "path": "namespace", "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.namespace" },
                    }] } },
                ],
            },
        }],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default", "serviceAccount": "default", "nodeName": format!("node-{node}"),
        "securityContext": {}, "schedulerName": "default-scheduler",
        "tolerations": [
            { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
            { "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
        ],
        "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
    });
    let condition =
        |type_: &str| json!({ "type": type_, "status": "True", "lastProbeTime": null, "lastTransitionTime": started });
    let container_status = |name: &str, image: &str, seed: u64| {
        json!({
            "name": name, "ready": true, "restartCount": 0, "started": true,
            "state": { "running": { "startedAt": started } },
            "image": image, "imageID": format!("{image}@sha256:{}", hex(seed, 64)),
            "containerID": format!("containerd://{}", hex(seed + 1, 64)),
            "volumeMounts": [{
                "name": token_volume, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "readOnly": true, "recursiveReadOnly": "Disabled",
            }],
        })
    };
    let status = json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers"), condition("Initialized"), condition("Ready"),
            condition("ContainersReady"), condition("PodScheduled"),
        ],
        "hostIP": host_ip, "hostIPs": [{ "ip": host_ip }],
        "podIP": pod_ip, "podIPs": [{ "ip": pod_ip }],
        "startTime": created,
        "containerStatuses": [
            container_status(app, &image, seed * 4 + 11),
            container_status("proxy", "registry.example.com/mesh/proxy:1.22.4", seed * 4 + 13),
        ],
        "qosClass": "Burstable",
    });
    let owner_references = json!([{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-{hash}"),
        "uid": owner_uid, "controller": true, "blockOwnerDeletion": true,
    }]);
    let controller_fields = json!({
        "f:metadata": fields_of(
            &json!({ "generateName": "", "labels": labels, "ownerReferences": owner_references }),
            false,
        ),
        "f:spec": fields_of(&spec, false),
    });
    let mut status_fields_source = status.clone();
    status_fields_source["containerStatuses"] = json!({});
    let kubelet_fields = json!({ "f:status": fields_of(&status_fields_source, false) });
    let pod = json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": format!("{app}-{hash}-"),
            "namespace": namespace,
            "uid": uid(seed),
            "resourceVersion": format!("{}", 4_000_000 + i * 3),
            "creationTimestamp": created,
            "labels": labels,
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": "2026-06-30T08:15:02Z",
                "prometheus.io/scrape": "true",
            },
            "ownerReferences": owner_references,
            "managedFields": [
                {
                    "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                    "time": created, "fieldsType": "FieldsV1", "fieldsV1": controller_fields,
                },
                {
                    "manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": started,
                    "fieldsType": "FieldsV1", "fieldsV1": kubelet_fields, "subresource": "status",
                },
            ],
        },
        "spec": spec,
        "status": status,
    });
    serde_json::to_vec(&pod).unwrap()
}

/// The resident set size of this process, in bytes (Linux only).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

struct Measurement {
    heap_bytes: i64,
    live_allocations: i64,
    rss_bytes: Option<i64>,
    json_bytes: usize,
}

fn load<S, F>(n: usize, transform: F, label_index: bool) -> Measurement
where
    S: kube::Resource + Send + Sync + 'static,
    F: Fn(Pod) -> S,
{
    let store: Store<S> = Store::new();
    if label_index {
        store.add_label_index();
    }
    let rss_before = resident_bytes();
    let region = Region::new(GLOBAL);
    let mut json_bytes = 0;
    for i in 0..n {
        let json = pod_json(i);
        json_bytes += json.len();
        let pod: Pod = serde_json::from_slice(&json).unwrap();
        store.insert(Arc::new(transform(pod)));
    }
    let change = region.change();
    let rss_after = resident_bytes();
    assert_eq!(store.len(), n);
    Measurement {
        heap_bytes: change.bytes_allocated as i64 - change.bytes_deallocated as i64,
        live_allocations: change.allocations as i64 - change.deallocations as i64,
        rss_bytes: rss_before.zip(rss_after).map(|(b, a)| a as i64 - b as i64),
        json_bytes: json_bytes / n,
    }
}

/// One variant, in a child process started by [`memory_per_cached_pod`].
#[test]
#[ignore = "child of memory_per_cached_pod"]
fn memory_child() {
    let Ok(variant) = std::env::var(VARIANT_ENV) else {
        return;
    };
    let n = pod_count();
    let m = match variant.as_str() {
        "full" => load(n, |pod| pod, false),
        "trimmed" => load(n, strip_managed_fields, false),
        "projection" => load(n, PodProjection::from, false),
        "projection-labels" => load(n, PodProjection::from, true),
        other => panic!("unknown variant {other}"),
    };
    println!(
        "{RESULT_PREFIX} {variant} {} {} {} {}",
        m.heap_bytes / n as i64,
        m.live_allocations * 100 / n as i64,
        m.rss_bytes.map_or(-1, |r| r / n as i64),
        m.json_bytes,
    );
}

#[test]
#[ignore = "slow: loads 100k pods four times; see the module docs"]
fn memory_per_cached_pod() {
    let n = pod_count();
    let exe = std::env::current_exe().unwrap();
    let mut rows = Vec::new();
    for (variant, label) in VARIANTS {
        let output = std::process::Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "memory_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(VARIANT_ENV, variant)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{variant} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The harness may print the test name on the same line.
        let line = stdout
            .lines()
            .find_map(|l| l.split_once(RESULT_PREFIX))
            .expect("child printed no result")
            .1;
        let fields: Vec<i64> = line.split_whitespace().skip(1).map(|f| f.parse().unwrap()).collect();
        rows.push((label, fields[0], fields[1], fields[2], fields[3]));
    }
    let full = rows[0].1 as f64;
    println!("\n{n} pods; average JSON size {} bytes per pod\n", rows[0].4);
    println!("| cached as | heap bytes / pod | % of (a) | live allocations / pod | RSS growth bytes / pod |");
    println!("|---|---:|---:|---:|---:|");
    for (label, heap, allocs_x100, rss, _) in &rows {
        println!(
            "| {label} | {heap} | {:.1} % | {:.1} | {} |",
            *heap as f64 * 100.0 / full,
            *allocs_x100 as f64 / 100.0,
            if *rss < 0 { "n/a".to_owned() } else { rss.to_string() },
        );
    }
    let projection = rows[2].1 as f64;
    assert!(
        projection < full * 0.10,
        "projection takes {projection} bytes per pod, over 10% of {full}"
    );
}
