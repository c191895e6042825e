//! The definitions of a document: k8s-openapi's schemas of the served kinds,
//! with what clients read added.
//!
//! k8s-openapi's `schemars` output carries upstream's descriptions, types,
//! formats, `required` lists and `x-kubernetes-int-or-string`, named as
//! upstream names its definitions. It carries no
//! `x-kubernetes-group-version-kind` (added here on each served kind and its
//! list kind: `kubectl explain` finds a kind's schema by it) and no
//! `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` /
//! `x-kubernetes-list-type`: the documents therefore do not offer
//! strategic merge patch (see [`super::paths`]), so kubectl computes its
//! strategic merge patches from its compiled-in types, which carry the same
//! struct tags those extensions are generated from upstream.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, ObjectMeta, Status};
use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::kinds;
use crate::resources::ResourceInfo;

/// Which OpenAPI version a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Swagger 2.0: definitions under `#/definitions/`, `$ref` with siblings.
    V2,
    /// OpenAPI 3.0: schemas under `#/components/schemas/`, `allOf` around a
    /// `$ref` with siblings.
    V3,
}

impl Flavor {
    pub(crate) fn settings(self) -> SchemaSettings {
        match self {
            Self::V2 => SchemaSettings::draft07().with(|s| {
                s.meta_schema = None;
                s.transforms.clear();
            }),
            Self::V3 => SchemaSettings::openapi3().with(|s| s.meta_schema = None),
        }
    }

    /// A `$ref` to definition `name`.
    pub(crate) fn reference(self, name: &str) -> Value {
        match self {
            Self::V2 => json!({"$ref": format!("#/definitions/{name}")}),
            Self::V3 => json!({"$ref": format!("#/components/schemas/{name}")}),
        }
    }
}

/// Definition names of upstream's shared types the paths refer to.
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
/// See [`STATUS`].
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";

/// The definition names of one served resource's kind and list kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KindNames {
    /// E.g. `io.k8s.api.core.v1.Pod`.
    pub(crate) kind: String,
    /// E.g. `io.k8s.api.core.v1.PodList`.
    pub(crate) list: String,
}

/// The definitions of `resources` (and everything they reference, and
/// `Status` and `DeleteOptions`), with the names of each resource's kind and
/// list kind, in the order of `resources`.
pub(crate) fn definitions(flavor: Flavor, resources: &[&ResourceInfo]) -> (Map<String, Value>, Vec<KindNames>) {
    let mut generator = flavor.settings().into_generator();
    generator.subschema_for::<Status>();
    generator.subschema_for::<DeleteOptions>();
    generator.subschema_for::<ListMeta>();
    let mut custom = Vec::new();
    let mut names = Vec::with_capacity(resources.len());
    for info in resources {
        let name = if let Some(known) = kinds::lookup(&info.api_version(), &info.kind) {
            (known.generate)(&mut generator);
            (known.name)().into_owned()
        } else {
            generator.subschema_for::<ObjectMeta>();
            let name = custom_name(info);
            custom.push((name.clone(), permissive(flavor, info)));
            name
        };
        names.push(KindNames {
            list: format!("{name}List"),
            kind: name,
        });
    }
    let mut defs = generator.take_definitions(true);
    defs.extend(custom);
    for (info, names) in resources.iter().zip(&names) {
        if let Some(Value::Object(schema)) = defs.get_mut(&names.kind) {
            add_gvk(schema, info, &info.kind);
        }
        let mut list = list_schema(flavor, info, &names.kind);
        if let Value::Object(schema) = &mut list {
            add_gvk(schema, info, &info.list_kind());
        }
        defs.insert(names.list.clone(), list);
    }
    (defs, names)
}

/// Appends `{group, version, kind}` to the schema's `x-kubernetes-group-version-kind`.
fn add_gvk(schema: &mut Map<String, Value>, info: &ResourceInfo, kind: &str) {
    let gvk = json!({"group": info.group, "version": info.version, "kind": kind});
    let list = schema
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = list
        && !items.contains(&gvk)
    {
        items.push(gvk);
    }
}

/// The definition name of a kind without a known schema, as upstream names
/// a custom resource's: the group's labels reversed, version, kind
/// (`com.example.v1.Widget`).
fn custom_name(info: &ResourceInfo) -> String {
    let group: Vec<&str> = if info.group.is_empty() {
        vec!["core"]
    } else {
        info.group.split('.').rev().collect()
    };
    format!("{}.{}.{}", group.join("."), info.version, info.kind)
}

fn type_meta_properties() -> Map<String, Value> {
    let mut props = Map::new();
    props.insert(
        "apiVersion".into(),
        json!({"description": "APIVersion defines the versioned schema of this representation of an object.", "type": "string"}),
    );
    props.insert(
        "kind".into(),
        json!({"description": "Kind is a string value representing the REST resource this object represents.", "type": "string"}),
    );
    props
}

/// A schema accepting any object of the kind: type meta, standard object
/// metadata, and any other field.
fn permissive(flavor: Flavor, info: &ResourceInfo) -> Value {
    let mut props = type_meta_properties();
    props.insert(
        "metadata".into(),
        flavor.reference("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
    );
    json!({
        "description": format!(
            "{} ({}) is served by ecm-apiserver without a schema: any fields are accepted.",
            info.kind,
            info.api_version()
        ),
        "type": "object",
        "properties": props,
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// The list kind's schema, as upstream's `XList` definitions.
fn list_schema(flavor: Flavor, info: &ResourceInfo, kind_name: &str) -> Value {
    let mut props = type_meta_properties();
    props.insert(
        "items".into(),
        json!({"description": format!("List of {}.", info.plural), "type": "array", "items": flavor.reference(kind_name)}),
    );
    props.insert("metadata".into(), flavor.reference(&ListMeta::schema_name()));
    json!({
        "description": format!("{} is a list of {} objects.", info.list_kind(), info.kind),
        "type": "object",
        "properties": props,
        "required": ["items"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin_resources;

    fn find<'a>(resources: &'a [ResourceInfo], kind: &str) -> &'a ResourceInfo {
        resources.iter().find(|r| r.kind == kind).unwrap()
    }

    #[test]
    fn known_kinds_get_k8s_openapi_schemas_with_gvk() {
        let resources = builtin_resources();
        let slice = find(&resources, "EndpointSlice");
        let (defs, names) = definitions(Flavor::V3, &[slice]);
        assert_eq!(names[0].kind, "io.k8s.api.discovery.v1.EndpointSlice");
        let schema = &defs["io.k8s.api.discovery.v1.EndpointSlice"];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"],
            json!([{"group": "discovery.k8s.io", "version": "v1", "kind": "EndpointSlice"}])
        );
        assert_eq!(
            schema["properties"]["endpoints"]["items"]["$ref"],
            "#/components/schemas/io.k8s.api.discovery.v1.Endpoint"
        );
        assert!(
            defs["io.k8s.api.discovery.v1.Endpoint"]["properties"]["addresses"]["description"]
                .as_str()
                .unwrap()
                .contains("addresses of this endpoint")
        );
        let list = &defs["io.k8s.api.discovery.v1.EndpointSliceList"];
        assert_eq!(list["x-kubernetes-group-version-kind"][0]["kind"], "EndpointSliceList");
        assert!(defs.contains_key(STATUS) && defs.contains_key(DELETE_OPTIONS));
    }

    #[test]
    fn v3_wraps_references_with_siblings_in_all_of_and_v2_does_not() {
        let resources = builtin_resources();
        let pod = find(&resources, "Pod");
        let (v3, _) = definitions(Flavor::V3, &[pod]);
        let metadata = &v3["io.k8s.api.core.v1.Pod"]["properties"]["metadata"];
        assert_eq!(
            metadata["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        let (v2, _) = definitions(Flavor::V2, &[pod]);
        let metadata = &v2["io.k8s.api.core.v1.Pod"]["properties"]["metadata"];
        assert_eq!(
            metadata["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
    }

    #[test]
    fn custom_kinds_get_a_permissive_schema_with_gvk() {
        let widget = ResourceInfo::new("widgets.example.com", "v1alpha1", "widgets", "Widget", true);
        let (defs, names) = definitions(Flavor::V3, &[&widget]);
        assert_eq!(names[0].kind, "com.example.widgets.v1alpha1.Widget");
        let schema = &defs["com.example.widgets.v1alpha1.Widget"];
        assert_eq!(schema["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(
            schema["x-kubernetes-group-version-kind"],
            json!([{"group": "widgets.example.com", "version": "v1alpha1", "kind": "Widget"}])
        );
        assert!(defs.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    }
}
