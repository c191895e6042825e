//! `meta.k8s.io/v1` Table output, as `kubectl get` asks for it.

use serde_json::{Value, json};

use crate::resources::{ResourceInfo, Strategy};

/// What a row carries in `object` (`includeObject` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub(crate) fn parse(v: Option<&str>) -> Self {
        match v {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

fn col(name: &str, ty: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": name, "priority": priority})
}

fn columns(info: &ResourceInfo) -> Vec<Value> {
    let s = |n: &str| col(n, "string", 0);
    let wide = |n: &str| col(n, "string", 1);
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => vec![
            s("Name"),
            s("Ready"),
            s("Status"),
            col("Restarts", "string", 0),
            s("Age"),
            wide("IP"),
            wide("Node"),
        ],
        ("", "services") => vec![
            s("Name"),
            s("Type"),
            s("Cluster-IP"),
            s("External-IP"),
            s("Port(s)"),
            s("Age"),
            wide("Selector"),
        ],
        ("", "endpoints") => vec![s("Name"), s("Endpoints"), s("Age")],
        ("discovery.k8s.io", "endpointslices") => {
            vec![s("Name"), s("AddressType"), s("Ports"), s("Endpoints"), s("Age")]
        }
        ("", "nodes") => vec![s("Name"), s("Status"), s("Roles"), s("Age"), s("Version")],
        ("", "namespaces") => vec![s("Name"), s("Status"), s("Age")],
        ("apps", "deployments") => vec![
            s("Name"),
            s("Ready"),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
            s("Age"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        ("apps", "replicasets") => vec![
            s("Name"),
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
            s("Age"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        ("", "events") => vec![s("Last Seen"), s("Type"), s("Reason"), s("Object"), s("Message")],
        _ => vec![s("Name"), s("Age")],
    }
}

/// kubectl's `HumanDuration`.
pub(crate) fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", secs % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn age(obj: &Value) -> String {
    let created = crate::object::meta_str(obj, "creationTimestamp");
    match created.parse::<jiff::Timestamp>() {
        Ok(ts) => human_duration(jiff::Timestamp::now().as_second() - ts.as_second()),
        Err(_) => "<unknown>".into(),
    }
}

fn s(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or("").to_owned()
}

fn or_none(v: String) -> String {
    if v.is_empty() { "<none>".into() } else { v }
}

fn arr(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn cells(info: &ResourceInfo, obj: &Value) -> Vec<Value> {
    let name = json!(crate::object::meta_str(obj, "name"));
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "pods") => {
            let total = arr(obj.pointer("/spec/containers")).len();
            let statuses = arr(obj.pointer("/status/containerStatuses"));
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum();
            let mut status = s(obj.pointer("/status/phase"));
            if crate::object::is_deleting(obj) {
                status = "Terminating".into();
            }
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(status),
                json!(restarts.to_string()),
                json!(age(obj)),
                json!(or_none(s(obj.pointer("/status/podIP")))),
                json!(or_none(s(obj.pointer("/spec/nodeName")))),
            ]
        }
        ("", "services") => {
            let ports: Vec<String> = arr(obj.pointer("/spec/ports"))
                .iter()
                .map(|p| {
                    let port = p.get("port").map(ToString::to_string).unwrap_or_default();
                    let proto = s(p.get("protocol"));
                    match p.get("nodePort") {
                        Some(np) => format!("{port}:{np}/{proto}"),
                        None => format!("{port}/{proto}"),
                    }
                })
                .collect();
            let selector: Vec<String> = obj
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(s(obj.pointer("/spec/type"))),
                json!(or_none(s(obj.pointer("/spec/clusterIP")))),
                json!("<none>"),
                json!(or_none(ports.join(","))),
                json!(age(obj)),
                json!(or_none(selector.join(","))),
            ]
        }
        ("", "endpoints") => {
            let mut eps = Vec::new();
            for subset in arr(obj.get("subsets")) {
                for addr in arr(subset.get("addresses")) {
                    let ip = s(addr.get("ip"));
                    let ports = arr(subset.get("ports"));
                    if ports.is_empty() {
                        eps.push(ip.clone());
                    }
                    for p in ports {
                        eps.push(format!(
                            "{ip}:{}",
                            p.get("port").map(ToString::to_string).unwrap_or_default()
                        ));
                    }
                }
            }
            vec![name, json!(or_none(abbreviate(&eps))), json!(age(obj))]
        }
        ("discovery.k8s.io", "endpointslices") => {
            let ports: Vec<String> = arr(obj.get("ports"))
                .iter()
                .map(|p| p.get("port").map(ToString::to_string).unwrap_or_default())
                .collect();
            let addrs: Vec<String> = arr(obj.get("endpoints"))
                .iter()
                .flat_map(|e| arr(e.get("addresses")).iter().map(|a| s(Some(a))))
                .collect();
            let ports = if ports.is_empty() {
                "<unset>".to_owned()
            } else {
                ports.join(",")
            };
            vec![
                name,
                json!(s(obj.get("addressType"))),
                json!(ports),
                json!(if addrs.is_empty() {
                    "<unset>".into()
                } else {
                    abbreviate(&addrs)
                }),
                json!(age(obj)),
            ]
        }
        ("", "nodes") => {
            let ready = arr(obj.pointer("/status/conditions"))
                .iter()
                .any(|c| s(c.get("type")) == "Ready" && s(c.get("status")) == "True");
            vec![
                name,
                json!(if ready { "Ready" } else { "NotReady" }),
                json!("<none>"),
                json!(age(obj)),
                json!(s(obj.pointer("/status/nodeInfo/kubeletVersion"))),
            ]
        }
        ("", "namespaces") => vec![name, json!(s(obj.pointer("/status/phase"))), json!(age(obj))],
        ("apps", "deployments" | "replicasets") => {
            let n = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
            let containers = arr(obj.pointer("/spec/template/spec/containers"));
            let joined = |field: &str| containers.iter().map(|c| s(c.get(field))).collect::<Vec<_>>().join(",");
            let mut row = if info.plural == "deployments" {
                vec![
                    name,
                    json!(format!("{}/{}", n("/status/readyReplicas"), n("/spec/replicas"))),
                    json!(n("/status/updatedReplicas")),
                    json!(n("/status/availableReplicas")),
                ]
            } else {
                vec![
                    name,
                    json!(n("/spec/replicas")),
                    json!(n("/status/replicas")),
                    json!(n("/status/readyReplicas")),
                ]
            };
            row.extend([
                json!(age(obj)),
                json!(joined("name")),
                json!(joined("image")),
                json!(or_none(crate::workloads::selector_string(
                    obj.pointer("/spec/selector")
                ))),
            ]);
            row
        }
        ("", "events") => {
            let io = obj.get("involvedObject");
            vec![
                json!(age(obj)),
                json!(s(obj.get("type"))),
                json!(s(obj.get("reason"))),
                json!(format!(
                    "{}/{}",
                    s(io.and_then(|i| i.get("kind"))).to_lowercase(),
                    s(io.and_then(|i| i.get("name")))
                )),
                json!(s(obj.get("message"))),
            ]
        }
        _ => {
            let _ = Strategy::Plain;
            vec![name, json!(age(obj))]
        }
    }
}

fn abbreviate(items: &[String]) -> String {
    if items.len() <= 3 {
        items.join(",")
    } else {
        format!("{} + {} more...", items[..3].join(","), items.len() - 3)
    }
}

fn row(info: &ResourceInfo, obj: &Value, include: IncludeObject) -> Value {
    let mut row = json!({"cells": cells(info, obj)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or(Value::Null),
            });
        }
        IncludeObject::Object => row["object"] = obj.clone(),
    }
    row
}

/// A Table of objects, with list metadata.
pub(crate) fn table(info: &ResourceInfo, objects: &[&Value], include: IncludeObject, list_meta: &Value) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta.clone(),
        "columnDefinitions": columns(info),
        "rows": objects.iter().map(|o| row(info, o, include)).collect::<Vec<_>>(),
    })
}
