//! Discovery documents: `/version`, `/api`, `/apis`, group and resource
//! lists and the aggregated discovery form (`apidiscovery.k8s.io/v2`).
//! The OpenAPI documents are in `crate::openapi`.

use serde_json::{Value, json};

use crate::resources::{ResourceInfo, ResourceTable};

/// Content type of aggregated discovery answers.
pub(crate) const AGGREGATED_CONTENT_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the `Accept` header asks for aggregated discovery.
pub(crate) fn wants_aggregated(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=APIGroupDiscoveryList") && first.contains("v=v2"))
}

pub(crate) fn version(git_version: &str) -> Value {
    let trimmed = git_version.trim_start_matches('v');
    let mut parts = trimmed.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json!({
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:443"}],
    })
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

pub(crate) fn api_group_list(table: &ResourceTable) -> Value {
    let groups: Vec<Value> = table
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| api_group(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn api_group_doc(table: &ResourceTable, group: &str) -> Option<Value> {
    table
        .groups()
        .iter()
        .find(|(g, _)| g == group && !g.is_empty())
        .map(|(g, vs)| {
            let mut doc = api_group(g, vs);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        })
}

fn resources_of<'a>(
    table: &'a ResourceTable,
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'a ResourceInfo> {
    table
        .iter()
        .map(|(_, i)| i)
        .filter(move |i| i.group == group && i.version == version)
}

pub(crate) fn api_resource_list(table: &ResourceTable, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for info in resources_of(table, group, version) {
        let mut r = json!({
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": info.verbs,
        });
        if !info.short_names.is_empty() {
            r["shortNames"] = json!(info.short_names);
        }
        if !info.categories.is_empty() {
            r["categories"] = json!(info.categories);
        }
        resources.push(r);
        for sub in &info.subresources {
            let mut r = json!({
                "name": format!("{}/{sub}", info.plural),
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": ["get", "patch", "update"],
            });
            let (group, version, kind) = info.subresource_kind(sub);
            if kind != info.kind {
                r["group"] = json!(group);
                r["version"] = json!(version);
                r["kind"] = json!(kind);
            }
            resources.push(r);
        }
    }
    if resources.is_empty() {
        return None;
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version(group, version), "resources": resources}),
    )
}

fn aggregated_group(table: &ResourceTable, group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = resources_of(table, group, v)
                .map(|info| {
                    let kind = json!({"group": info.group, "version": info.version, "kind": info.kind});
                    let mut r = json!({
                        "resource": info.plural,
                        "responseKind": kind,
                        "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": info.singular,
                        "verbs": info.verbs,
                    });
                    if !info.short_names.is_empty() {
                        r["shortNames"] = json!(info.short_names);
                    }
                    if !info.categories.is_empty() {
                        r["categories"] = json!(info.categories);
                    }
                    if !info.subresources.is_empty() {
                        r["subresources"] = Value::Array(
                            info.subresources
                                .iter()
                                .map(|s| {
                                    let (group, version, kind) = info.subresource_kind(s);
                                    let kind = json!({"group": group, "version": version, "kind": kind});
                                    json!({"subresource": s, "responseKind": kind, "verbs": ["get", "patch", "update"]})
                                })
                                .collect(),
                        );
                    }
                    r
                })
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
}

/// Aggregated discovery for `/api` (core) or `/apis` (named groups).
pub(crate) fn aggregated(table: &ResourceTable, core: bool) -> Value {
    let items: Vec<Value> = table
        .groups()
        .iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, vs)| aggregated_group(table, g, vs))
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}
