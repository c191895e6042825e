//! The Swagger 2.0 document of all served kinds, as `/openapi/v2` serves it
//! (JSON only).

use serde_json::{Map, Value, json};

use super::paths::{Body, Operation, PATCH_TYPES, PathItem, QueryParam};
use super::schemas::{self, Flavor};
use crate::resources::ResourceInfo;

fn query_param((name, ty, description): &QueryParam) -> Value {
    json!({"name": name, "in": "query", "type": ty, "uniqueItems": true, "description": description})
}

fn operation(op: &Operation, gvk: &(String, String, String)) -> Value {
    let mut params: Vec<Value> = Vec::new();
    let consumes: Vec<&str> = match &op.request {
        Some(Body::Schema(name)) => {
            params.push(json!({"name": "body", "in": "body", "required": op.method != "delete", "schema": Flavor::V2.reference(name)}));
            vec!["*/*"]
        }
        Some(Body::Patch) => {
            params.push(json!({"name": "body", "in": "body", "required": true, "schema": {"type": "object"}}));
            PATCH_TYPES.to_vec()
        }
        None => vec!["*/*"],
    };
    params.extend(op.query.iter().map(query_param));
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({"description": "OK", "schema": Flavor::V2.reference(&op.response)}),
    );
    if op.creates {
        let (code, what) = if op.method == "delete" {
            ("202", "Accepted")
        } else {
            ("201", "Created")
        };
        responses.insert(
            code.into(),
            json!({"description": what, "schema": Flavor::V2.reference(&op.response)}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    json!({
        "description": op.description,
        "operationId": op.id,
        "consumes": consumes,
        "produces": ["application/json", "application/yaml"],
        "schemes": ["https"],
        "parameters": params,
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {"group": gvk.0, "version": gvk.1, "kind": gvk.2},
    })
}

fn path_item(item: &PathItem) -> Value {
    let mut params: Vec<Value> = item
        .path_params
        .iter()
        .map(|p| json!({"name": p, "in": "path", "required": true, "type": "string", "uniqueItems": true}))
        .collect();
    params.extend(item.common_query.iter().map(query_param));
    let mut out = Map::new();
    for op in &item.operations {
        out.insert(op.method.to_owned(), operation(op, &item.gvk));
    }
    out.insert("parameters".into(), Value::Array(params));
    Value::Object(out)
}

/// The document of every served resource.
pub(crate) fn document(resources: &[&ResourceInfo], git_version: &str) -> Value {
    let (definitions, names) = schemas::definitions(Flavor::V2, resources);
    let mut paths = Map::new();
    for (info, names) in resources.iter().zip(&names) {
        for item in super::paths::path_items(info, names) {
            paths.insert(item.path.clone(), path_item(&item));
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": git_version},
        "paths": paths,
        "definitions": definitions,
    })
}
