//! OpenAPI documents of the served kinds: `/openapi/v2` (Swagger 2.0, one
//! document) and `/openapi/v3` (an index and one OpenAPI 3.0 document per
//! group-version).
//!
//! Schemas come from k8s-openapi's `schemars` implementations
//! ([`schemas`], [`kinds`]); paths and operations follow upstream's
//! ([`paths`]); [`v2`] and [`v3`] write the two formats. Documents are built
//! once, on first request, and cached with a content hash (the `hash` of the
//! v3 index's `serverRelativeURL`s and the `ETag`), so clients may cache
//! them as they cache a kube-apiserver's.

pub(crate) mod kinds;
mod paths;
pub(crate) mod schemas;
mod v2;
mod v3;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hasher};
use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::resources::{ResourceInfo, ResourceTable};

/// One served document.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// The JSON text.
    pub(crate) body: Bytes,
    /// Hash of `body`, hex.
    pub(crate) hash: String,
}

impl Document {
    fn new(value: &Value) -> Self {
        let body = Bytes::from(value.to_string());
        let mut hasher = DefaultHasher::new();
        hasher.write(&body);
        Self {
            hash: format!("{:016X}", hasher.finish()),
            body,
        }
    }
}

/// The v3 index and documents, by group-version path (`api/v1`, `apis/apps/v1`).
#[derive(Debug)]
pub(crate) struct V3Documents {
    /// `/openapi/v3`.
    pub(crate) index: Document,
    /// `/openapi/v3/{path}`.
    pub(crate) by_path: BTreeMap<String, Document>,
}

/// The documents of one server, built on first use.
#[derive(Debug, Default)]
pub(crate) struct OpenApi {
    v2: OnceLock<Document>,
    v3: OnceLock<V3Documents>,
}

impl OpenApi {
    /// The Swagger 2.0 document.
    pub(crate) fn v2(&self, table: &ResourceTable, git_version: &str) -> &Document {
        self.v2.get_or_init(|| {
            let resources: Vec<&ResourceInfo> = table.iter().map(|(_, info)| info).collect();
            Document::new(&v2::document(&resources, git_version))
        })
    }

    /// The OpenAPI v3 index and documents.
    pub(crate) fn v3(&self, table: &ResourceTable, git_version: &str) -> &V3Documents {
        self.v3.get_or_init(|| build_v3(table, git_version))
    }
}

fn build_v3(table: &ResourceTable, git_version: &str) -> V3Documents {
    let mut by_path = BTreeMap::new();
    let mut index = Map::new();
    for (group, versions) in table.groups() {
        for version in versions {
            let resources: Vec<&ResourceInfo> = table
                .iter()
                .map(|(_, info)| info)
                .filter(|info| info.group == group && info.version == version)
                .collect();
            let path = if group.is_empty() {
                format!("api/{version}")
            } else {
                format!("apis/{group}/{version}")
            };
            let doc = Document::new(&v3::document(&resources, git_version));
            index.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}),
            );
            by_path.insert(path, doc);
        }
    }
    V3Documents {
        index: Document::new(&json!({"paths": index})),
        by_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin_resources;

    fn parse(doc: &Document) -> Value {
        serde_json::from_slice(&doc.body).unwrap()
    }

    #[test]
    fn v3_has_one_document_per_group_version_with_every_kind() {
        let table = ResourceTable::new(builtin_resources());
        let docs = OpenApi::default();
        let v3 = docs.v3(&table, "v1.36.0");
        let index = parse(&v3.index);
        let apps = &index["paths"]["apis/apps/v1"]["serverRelativeURL"];
        let hash = &v3.by_path["apis/apps/v1"].hash;
        assert_eq!(apps, &json!(format!("/openapi/v3/apis/apps/v1?hash={hash}")));
        for info in builtin_resources() {
            let path = if info.group.is_empty() {
                format!("api/{}", info.version)
            } else {
                format!("apis/{}/{}", info.group, info.version)
            };
            let doc = parse(&v3.by_path[&path]);
            let found = doc["components"]["schemas"].as_object().unwrap().values().any(|s| {
                s["x-kubernetes-group-version-kind"].as_array().is_some_and(|l| {
                    l.iter()
                        .any(|g| g["kind"] == json!(info.kind) && g["group"] == json!(info.group))
                })
            });
            assert!(found, "{} missing from {path}", info.kind);
        }
        assert!(std::ptr::eq(v3, docs.v3(&table, "v1.36.0")), "built once");
    }

    #[test]
    fn v3_patch_operations_take_field_validation() {
        let table = ResourceTable::new(builtin_resources());
        let docs = OpenApi::default();
        let doc = parse(&docs.v3(&table, "v1.36.0").by_path["apis/discovery.k8s.io/v1"]);
        let patch = &doc["paths"]["/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "discovery.k8s.io", "version": "v1", "kind": "EndpointSlice"})
        );
        let params = patch["parameters"].as_array().unwrap();
        assert!(params.iter().any(|p| p["name"] == "fieldValidation"));
        let content = patch["requestBody"]["content"].as_object().unwrap();
        assert!(content.contains_key("application/apply-patch+yaml"));
    }

    #[test]
    fn v2_is_one_swagger_document_of_every_kind() {
        let table = ResourceTable::new(builtin_resources());
        let docs = OpenApi::default();
        let doc = parse(docs.v2(&table, "v1.36.0"));
        assert_eq!(doc["swagger"], "2.0");
        let defs = doc["definitions"].as_object().unwrap();
        assert_eq!(
            defs["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
        );
        let get = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["get"];
        assert_eq!(
            get["responses"]["200"]["schema"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.Pod"
        );
        assert_eq!(get["x-kubernetes-action"], "get");
    }
}
