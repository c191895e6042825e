//! The conformance scenarios of `../shared/conformance/scenarios/mirroring`
//! (expectations checked against a real v1.36 cluster), run through
//! `Controller::sync` on hand-filled stores with a fake API that applies
//! every write to the slice store at once.
//!
//! Each scenario's keys (every Endpoints, Service and slice service name)
//! are synced in rounds until a round writes nothing; the resulting slices,
//! write counts and events are compared with the scenario's `expect` the way
//! `check.py` compares them (names ignored, endpoints and ports sorted).
//! Skipped when the scenario folder is not there.

// Test helpers outside `#[test]` functions: a poisoned lock is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ecm_controller::{EventRecord, EventRecorder, ObjectWriter, WriteError, Writers};
use ecm_informer::{Informer, ObjectKey, Store};
use ecm_mirroring::{Config, Controller, Informers};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

/// A slice API writing straight into the informer store.
struct Cluster {
    slices: Store<EndpointSlice>,
    writes: Mutex<BTreeMap<&'static str, usize>>,
    next: Mutex<u64>,
}

impl Cluster {
    fn count(&self, verb: &'static str) {
        *self.writes.lock().unwrap().entry(verb).or_default() += 1;
    }

    fn bump(&self) -> u64 {
        let mut next = self.next.lock().unwrap();
        *next += 1;
        *next
    }
}

#[async_trait]
impl ObjectWriter<EndpointSlice> for Cluster {
    async fn create(&self, _namespace: &str, object: &EndpointSlice) -> Result<ObjectMeta, WriteError> {
        let n = self.bump();
        let mut stored = object.clone();
        let name = format!("{}gen{n}", object.metadata.generate_name.as_deref().unwrap_or_default());
        stored.metadata.name = Some(name.clone());
        stored.metadata.uid = Some(format!("uid-{name}"));
        stored.metadata.generation = Some(1);
        self.slices.insert(Arc::new(stored.clone()));
        self.count("create");
        Ok(stored.metadata)
    }

    async fn update(&self, namespace: &str, object: &EndpointSlice) -> Result<ObjectMeta, WriteError> {
        let name = object.metadata.name.clone().unwrap_or_default();
        let Some(old) = self.slices.get_by_key(&ObjectKey::new(namespace, &name)) else {
            return Err(WriteError::NotFound(name));
        };
        let mut stored = object.clone();
        stored.metadata.uid.clone_from(&old.metadata.uid);
        stored.metadata.generation = Some(old.metadata.generation.unwrap_or(1) + 1);
        self.slices.insert(Arc::new(stored.clone()));
        self.count("update");
        Ok(stored.metadata)
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), WriteError> {
        self.slices
            .remove(&ObjectKey::new(namespace, name))
            .ok_or_else(|| WriteError::NotFound(name.to_owned()))?;
        self.count("delete");
        Ok(())
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<EventRecord>>);

#[async_trait]
impl EventRecorder for Events {
    async fn record(&self, event: EventRecord) {
        self.0.lock().unwrap().push(event);
    }
}

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/scenarios/mirroring")
}

/// The comparable form of an endpoint: what `check.py` compares.
fn endpoint_form(e: &Value) -> Value {
    let target = e
        .get("targetRef")
        .map(|t| json!({"kind": t["kind"], "name": t["name"], "namespace": t["namespace"]}));
    json!({
        "addresses": e["addresses"],
        "ready": e.pointer("/conditions/ready"),
        "hostname": e.get("hostname"),
        "nodeName": e.get("nodeName"),
        "zone": e.get("zone"),
        "hints": e.get("hints"),
        "targetRef": target,
    })
}

/// The comparable form of a slice; labels, annotations and owner
/// references only as far as the expectation names them.
fn slice_form(s: &Value, expected: &Value) -> Value {
    let mut ports: Vec<Value> = s["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| json!({"name": p.get("name").cloned().unwrap_or(json!("")), "port": p["port"], "protocol": p["protocol"]}))
        .collect();
    ports.sort_by_key(|p| (p["name"].to_string(), p["port"].as_i64()));
    let mut endpoints: Vec<Value> = s["endpoints"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(endpoint_form)
        .collect();
    endpoints.sort_by_key(|e| e["addresses"][0].as_str().unwrap_or_default().to_owned());
    let meta = &expected["metadata"];
    let labels = meta.get("labels").map(|_| s["metadata"]["labels"].clone());
    let annotations = meta.get("annotations").and_then(Value::as_object).map(|wanted| {
        wanted
            .keys()
            .map(|k| {
                (
                    k.clone(),
                    s["metadata"]["annotations"].get(k).cloned().unwrap_or(Value::Null),
                )
            })
            .collect::<serde_json::Map<_, _>>()
    });
    let owners = meta.get("ownerReferences").map(|_| {
        s["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|o| json!({"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["name"], "controller": o["controller"], "blockOwnerDeletion": o["blockOwnerDeletion"]}))
            .collect::<Vec<_>>()
    });
    json!({
        "namespace": s["metadata"]["namespace"],
        "addressType": s["addressType"],
        "ports": ports,
        "endpoints": endpoints,
        "labels": labels,
        "annotations": annotations,
        "ownerReferences": owners,
    })
}

fn group_of(s: &Value) -> (String, String, String) {
    let labels = &s["metadata"]["labels"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        text(&s["metadata"]["namespace"]),
        text(&labels["kubernetes.io/service-name"]),
        text(&labels["endpointslice.kubernetes.io/managed-by"]),
    )
}

async fn run_scenario(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let scenario: Value = serde_saphyr::from_str(&text).map_err(|e| e.to_string())?;
    let (endpoints, services, slices) = (Store::new(), Store::new(), Store::new());
    let mut keys = BTreeSet::new();
    for object in scenario["objects"].as_array().cloned().unwrap_or_default() {
        let key = ObjectKey::new(
            object["metadata"]["namespace"].as_str().unwrap_or("default"),
            object["metadata"]["name"].as_str().unwrap_or_default(),
        );
        match object["kind"].as_str() {
            Some("Endpoints") => {
                endpoints.insert(Arc::new(
                    serde_json::from_value::<Endpoints>(object).map_err(|e| e.to_string())?,
                ));
                keys.insert(key);
            }
            Some("Service") => {
                services.insert(Arc::new(
                    serde_json::from_value::<Service>(object).map_err(|e| e.to_string())?,
                ));
                keys.insert(key);
            }
            Some("EndpointSlice") => {
                let mut slice: EndpointSlice = serde_json::from_value(object).map_err(|e| e.to_string())?;
                slice.metadata.uid.get_or_insert_with(|| format!("uid-{key}"));
                slice.metadata.generation.get_or_insert(1);
                if let Some(service) = ecm_types::endpoint_slice::service_name(&slice) {
                    keys.insert(ObjectKey::new(key.namespace(), service));
                }
                slices.insert(Arc::new(slice));
            }
            other => return Err(format!("unexpected kind {other:?}")),
        }
    }
    let max = scenario["options"]["mirroringMaxEndpointsPerSubset"]
        .as_u64()
        .unwrap_or(1000) as usize;
    let cluster = Arc::new(Cluster {
        slices: slices.clone(),
        writes: Mutex::default(),
        next: Mutex::default(),
    });
    let events = Arc::new(Events::default());
    let controller = Controller::new(
        Config::default().max_endpoints_per_slice(max),
        &Informers {
            services: Informer::detached(services),
            endpoints: Informer::detached(endpoints),
            slices: Informer::detached(slices.clone()),
        },
        Writers {
            objects: Arc::clone(&cluster) as Arc<dyn ObjectWriter<EndpointSlice>>,
            events: Arc::clone(&events) as Arc<dyn EventRecorder>,
        },
    );
    // Sync every key twice: once for what the initial add events queue, and
    // once more to show a second sync of a settled key writes nothing (the
    // write counts of the scenarios hold over both rounds).
    for _ in 0..2 {
        for key in &keys {
            controller.sync(key).await.map_err(|e| format!("sync {key}: {e}"))?;
        }
    }

    let expect = &scenario["expect"];
    let actual: Vec<Value> = slices
        .list()
        .iter()
        .map(|s| serde_json::to_value(s.as_ref()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let expected = expect["endpointSlices"].as_array().cloned().unwrap_or_default();
    let mut groups: BTreeSet<(String, String, String)> = expected.iter().map(group_of).collect();
    for total in expect["endpointSliceTotals"].as_array().cloned().unwrap_or_default() {
        let (ns, name) = total["service"]
            .as_str()
            .unwrap_or_default()
            .split_once('/')
            .unwrap_or_default();
        let managed = total["managedBy"].as_str().unwrap_or_default();
        let matching: Vec<&Value> = actual
            .iter()
            .filter(|s| group_of(s) == (ns.to_owned(), name.to_owned(), managed.to_owned()))
            .filter(|s| s["addressType"] == total["addressType"])
            .collect();
        let count: u64 = matching
            .iter()
            .map(|s| s["endpoints"].as_array().map_or(0, Vec::len) as u64)
            .sum();
        if matching.len() as u64 != total["slices"].as_u64().unwrap_or_default()
            || count != total["endpoints"].as_u64().unwrap_or_default()
        {
            return Err(format!(
                "totals {total}: got {} slices, {count} endpoints",
                matching.len()
            ));
        }
        groups.insert((ns.to_owned(), name.to_owned(), managed.to_owned()));
    }
    for group in &groups {
        let mut candidates: Vec<&Value> = actual.iter().filter(|s| group_of(s) == *group).collect();
        for want in expected.iter().filter(|s| group_of(s) == *group) {
            let want_form = slice_form(want, want);
            let Some(i) = candidates.iter().position(|s| slice_form(s, want) == want_form) else {
                return Err(format!(
                    "no slice matches {want_form:#}\nactual: {:#}",
                    Value::Array(candidates.iter().map(|s| slice_form(s, want)).collect())
                ));
            };
            candidates.remove(i);
        }
        if expect["exactSlices"].as_bool().unwrap_or(true) && !candidates.is_empty() {
            return Err(format!("{} unexpected slices in {group:?}", candidates.len()));
        }
    }
    if let Some(wanted) = expect["writes"]["endpointslices"].as_object() {
        let writes = cluster.writes.lock().unwrap().clone();
        for (verb, count) in wanted {
            let got = writes.get(verb.as_str()).copied().unwrap_or_default() as u64;
            if Some(got) != count.as_u64() {
                return Err(format!("{verb}: {got} writes, expected {count}"));
            }
        }
    }
    for event in expect["events"].as_array().cloned().unwrap_or_default() {
        let recorded = events.0.lock().unwrap();
        let found = recorded.iter().any(|e| {
            event["reason"].as_str() == Some(e.reason.as_str())
                && event["messageContains"].as_str().is_none_or(|m| e.message.contains(m))
        });
        if !found {
            return Err(format!("event {event} not recorded"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn mirroring_scenarios_hold() {
    let dir = scenario_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    let mut failures = Vec::new();
    for path in &paths {
        if let Err(error) = run_scenario(path).await {
            failures.push(format!("{}: {error}", path.display()));
        }
    }
    assert!(paths.len() >= 20, "scenarios found: {}", paths.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
