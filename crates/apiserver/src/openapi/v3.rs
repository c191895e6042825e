//! OpenAPI 3.0 documents, one per group-version, as `/openapi/v3/apis/G/V`
//! and `/openapi/v3/api/v1` serve them.

use serde_json::{Map, Value, json};

use super::paths::{Body, Operation, PATCH_TYPES, PathItem, QueryParam};
use super::schemas::{self, Flavor};
use crate::resources::ResourceInfo;

fn query_param((name, ty, description): &QueryParam) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
}

fn path_param(name: &str) -> Value {
    let description = if name == "namespace" {
        "object name and auth scope, such as for teams and projects"
    } else {
        "name of the object"
    };
    json!({"name": name, "in": "path", "description": description, "required": true, "schema": {"type": "string", "uniqueItems": true}})
}

fn response(name: &str) -> Value {
    let schema = Flavor::V3.reference(name);
    json!({"description": "OK", "content": {
        "application/json": {"schema": schema},
        "application/yaml": {"schema": schema},
    }})
}

fn operation(op: &Operation, gvk: &(String, String, String)) -> Value {
    let mut responses = Map::new();
    responses.insert("200".into(), response(&op.response));
    if op.creates {
        let (code, what) = if op.method == "delete" {
            ("202", "Accepted")
        } else {
            ("201", "Created")
        };
        let mut created = response(&op.response);
        created["description"] = json!(what);
        responses.insert(code.into(), created);
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    let mut out = json!({
        "description": op.description,
        "operationId": op.id,
        "parameters": op.query.iter().map(query_param).collect::<Vec<_>>(),
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": gvk.0, "version": gvk.1, "kind": gvk.2},
    });
    match &op.request {
        Some(Body::Schema(name)) => {
            out["requestBody"] = json!({
                "content": {"*/*": {"schema": Flavor::V3.reference(name)}},
                "required": op.method != "delete",
            });
        }
        Some(Body::Patch) => {
            let content: Map<String, Value> = PATCH_TYPES
                .iter()
                .map(|t| ((*t).to_owned(), json!({"schema": {"type": "object"}})))
                .collect();
            out["requestBody"] = json!({"content": content, "required": true});
        }
        None => {}
    }
    out
}

fn path_item(item: &PathItem) -> Value {
    let mut params: Vec<Value> = item.path_params.iter().map(|p| path_param(p)).collect();
    params.extend(item.common_query.iter().map(query_param));
    let mut out = Map::new();
    for op in &item.operations {
        out.insert(op.method.to_owned(), operation(op, &item.gvk));
    }
    out.insert("parameters".into(), Value::Array(params));
    Value::Object(out)
}

/// The document of one group-version serving `resources`.
pub(crate) fn document(resources: &[&ResourceInfo], git_version: &str) -> Value {
    let (definitions, names) = schemas::definitions(Flavor::V3, resources);
    let mut paths = Map::new();
    for (info, names) in resources.iter().zip(&names) {
        for item in super::paths::path_items(info, names) {
            paths.insert(item.path.clone(), path_item(&item));
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": git_version},
        "paths": paths,
        "components": {"schemas": definitions},
    })
}
