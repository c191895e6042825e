//! `ecm explain` on every conformance scenario: for each Service, the pods
//! explain says become EndpointSlice endpoints, with their addresses,
//! conditions, zone and hints, are exactly the endpoints `ecm simulate`
//! leaves in the cluster (which `check.py` holds equal to the scenario's
//! expectations); the Endpoints verdicts are the Endpoints object's
//! addresses with their readiness; the mirrored slices explain wants are
//! the mirrored slices simulate leaves.
//!
//! Skips (passes with a note) when `../shared/conformance/scenarios` is
//! not there.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ecm::controllers::ControllerName;
use ecm::explain::{Report, Request, explain, limits, load_scenario};
use ecm::scenario::Scenario;
use ecm_informer::ObjectKey;
use serde_json::Value;

fn scenario_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/scenarios");
    root.is_dir().then_some(root)
}

fn scenario_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(root).unwrap().flatten() {
        if dir.path().is_dir() {
            for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
                if file.path().extension().is_some_and(|e| e == "yaml") {
                    files.push(file.path());
                }
            }
        }
    }
    files.sort();
    files
}

/// An endpoint as compared: address type, addresses, ready, serving,
/// terminating, zone, hints.
type Row = (
    String,
    Vec<String>,
    Option<bool>,
    Option<bool>,
    Option<bool>,
    Option<String>,
    Vec<String>,
);

fn row_of_json(address_type: &str, e: &Value) -> Row {
    let flag = |name: &str| e.pointer(&format!("/conditions/{name}")).and_then(Value::as_bool);
    let mut addresses: Vec<String> = e["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    addresses.sort();
    let mut hints: Vec<String> = ["forZones", "forNodes"]
        .iter()
        .flat_map(|kind| {
            e.pointer(&format!("/hints/{kind}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |h| {
                    format!(
                        "{} {}",
                        if *kind == "forZones" { "zone" } else { "node" },
                        h["name"].as_str().unwrap()
                    )
                })
        })
        .collect();
    hints.sort();
    (
        address_type.to_owned(),
        addresses,
        flag("ready"),
        flag("serving"),
        flag("terminating"),
        e.get("zone").and_then(Value::as_str).map(str::to_owned),
        hints,
    )
}

fn slice_rows<'a>(slices: impl IntoIterator<Item = &'a Value>) -> Vec<Row> {
    let mut rows: Vec<Row> = slices
        .into_iter()
        .flat_map(|s| {
            let address_type = s["addressType"].as_str().unwrap().to_owned();
            s["endpoints"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |e| row_of_json(&address_type, &e))
        })
        .collect();
    rows.sort();
    rows
}

fn simulated_slices<'a>(result: &'a Value, key: &ObjectKey, managed_by: &str) -> Vec<&'a Value> {
    result["endpointSlices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s.pointer("/metadata/namespace").and_then(Value::as_str) == Some(key.namespace())
                && s.pointer("/metadata/labels/kubernetes.io~1service-name")
                    .and_then(Value::as_str)
                    == Some(key.name())
                && s.pointer("/metadata/labels/endpointslice.kubernetes.io~1managed-by")
                    .and_then(Value::as_str)
                    == Some(managed_by)
        })
        .collect()
}

fn explained_slice_rows(report: &Report) -> Vec<Row> {
    let mut rows: Vec<Row> = report
        .pods
        .iter()
        .filter_map(|p| p.endpoint_slice.as_ref())
        .flat_map(|v| &v.endpoints)
        .map(|e| {
            let mut addresses = e.addresses.clone();
            addresses.sort();
            let mut hints = e.hints.clone();
            hints.sort();
            (
                e.address_type.clone(),
                addresses,
                e.ready,
                e.serving,
                e.terminating,
                e.zone.clone(),
                hints,
            )
        })
        .collect();
    rows.sort();
    rows
}

/// `(ip, ready, pod)` of an Endpoints object.
fn endpoints_addresses(object: &Value) -> BTreeSet<(String, bool, String)> {
    let mut set = BTreeSet::new();
    for subset in object["subsets"].as_array().cloned().unwrap_or_default() {
        for (list, ready) in [("addresses", true), ("notReadyAddresses", false)] {
            for address in subset[list].as_array().cloned().unwrap_or_default() {
                let pod = address
                    .pointer("/targetRef/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                set.insert((address["ip"].as_str().unwrap().to_owned(), ready, pod.to_owned()));
            }
        }
    }
    set
}

fn check_scenario(path: &Path) -> Result<usize, String> {
    let scenario = Scenario::load(path).map_err(|e| format!("{e:#}"))?;
    let simulated = ecm::simulate::run_file(path).map_err(|e| format!("simulate: {e:#}"))?;
    let services: Vec<ObjectKey> = scenario
        .objects
        .iter()
        .filter(|o| o["kind"] == "Service")
        .map(|o| {
            ObjectKey::new(
                o.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default"),
                o.pointer("/metadata/name").and_then(Value::as_str).unwrap(),
            )
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut checked = 0;
    for key in services {
        let caches = runtime
            .block_on(load_scenario(&scenario, key.namespace()))
            .map_err(|e| format!("{e:#}"))?;
        let request = Request {
            service: key.clone(),
            pod: None,
            controllers: scenario.controllers.clone(),
            limits: limits(&scenario.options),
        };
        let report = explain(&caches, &request);
        if scenario.controllers.contains(&ControllerName::EndpointSlice) && report.endpoint_slices.is_some() {
            let want = slice_rows(simulated_slices(&simulated, &key, "endpointslice-controller.k8s.io"));
            let got = explained_slice_rows(&report);
            if want != got {
                return Err(format!(
                    "{key}: EndpointSlice endpoints differ\n simulate: {want:?}\n explain:  {got:?}"
                ));
            }
            checked += 1;
        }
        if scenario.controllers.contains(&ControllerName::Endpoints) && report.endpoints.is_some() {
            let object = simulated["endpoints"].as_array().unwrap().iter().find(|e| {
                e.pointer("/metadata/namespace").and_then(Value::as_str) == Some(key.namespace())
                    && e.pointer("/metadata/name").and_then(Value::as_str) == Some(key.name())
            });
            let want = object.map(endpoints_addresses).unwrap_or_default();
            let got: BTreeSet<(String, bool, String)> = report
                .pods
                .iter()
                .filter_map(|p| {
                    let v = p.endpoints.as_ref()?;
                    Some((v.ip.clone()?, v.ready?, p.name.clone()))
                })
                .collect();
            if want != got {
                return Err(format!(
                    "{key}: Endpoints addresses differ\n simulate: {want:?}\n explain:  {got:?}"
                ));
            }
            checked += 1;
        }
        if let Some(mirroring) = &report.mirroring {
            let want = slice_rows(simulated_slices(
                &simulated,
                &key,
                "endpointslicemirroring-controller.k8s.io",
            ));
            let got = slice_rows(&mirroring.objects.desired);
            if want != got {
                return Err(format!(
                    "{key}: mirrored endpoints differ\n simulate: {want:?}\n explain:  {got:?}"
                ));
            }
            checked += 1;
        }
    }
    Ok(checked)
}

#[test]
fn explain_agrees_with_every_conformance_scenario() {
    let Some(root) = scenario_root() else {
        eprintln!("note: no conformance scenarios next to the repository; skipped");
        return;
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    let files = scenario_files(&root);
    for file in &files {
        match check_scenario(file) {
            Ok(n) => checked += n,
            Err(message) => failures.push(format!("{}: {message}", file.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) disagree:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(
        checked >= files.len(),
        "only {checked} verdicts checked over {} scenarios",
        files.len()
    );
}
