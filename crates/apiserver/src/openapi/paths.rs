//! The REST operations of a served resource, as upstream's documents list
//! them: one per path and method, with the `x-kubernetes-action` and
//! `x-kubernetes-group-version-kind` kubectl reads (`kubectl apply` and
//! friends look up the PATCH operation of a kind for the `fieldValidation`
//! parameter and the patch types it accepts).
//!
//! The model here is independent of the OpenAPI version; `v2` and `v3`
//! render it.

use super::schemas::{DELETE_OPTIONS, KindNames, STATUS};
use crate::resources::ResourceInfo;

/// A query parameter: name, JSON type, description.
pub(crate) type QueryParam = (&'static str, &'static str, &'static str);

const PRETTY: QueryParam = ("pretty", "string", "If 'true', then the output is pretty printed.");
const DRY_RUN: QueryParam = (
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: QueryParam = (
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
);
const FIELD_VALIDATION: QueryParam = (
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
);
const FORCE: QueryParam = (
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.",
);
const LIST: [QueryParam; 10] = [
    (
        "allowWatchBookmarks",
        "boolean",
        "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
    ),
    (
        "continue",
        "string",
        "The continue option should be set when retrieving more results from the server.",
    ),
    (
        "fieldSelector",
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    ),
    (
        "labelSelector",
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    (
        "limit",
        "integer",
        "limit is a maximum number of responses to return for a list call.",
    ),
    (
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    (
        "resourceVersionMatch",
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    (
        "sendInitialEvents",
        "boolean",
        "`sendInitialEvents=true` may be set together with `watch=true`: the stream begins with synthetic events for the current state.",
    ),
    ("timeoutSeconds", "integer", "Timeout for the list/watch call."),
    (
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
    ),
];
const DELETE: [QueryParam; 3] = [
    DRY_RUN,
    (
        "gracePeriodSeconds",
        "integer",
        "The duration in seconds before the object should be deleted.",
    ),
    (
        "propagationPolicy",
        "string",
        "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
    ),
];
const WRITE: [QueryParam; 3] = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
const PATCH: [QueryParam; 4] = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];

/// The patch types the server applies, offered in PATCH request bodies.
/// Strategic merge patch is applied too but not offered: the schemas carry
/// no patch strategies (see [`super::schemas`]), and a client that reads the
/// offer (kubectl) would compute its patches from them.
pub(crate) const PATCH_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// What a request or response body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// An object of the definition named.
    Schema(String),
    /// A patch document ([`PATCH_TYPES`]).
    Patch,
}

/// One operation.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    /// HTTP method, lowercase (`get`, `post`, ...).
    pub(crate) method: &'static str,
    /// `x-kubernetes-action`: `get`, `list`, `post`, `put`, `patch`, `delete`, `deletecollection`.
    pub(crate) action: &'static str,
    /// `operationId`, e.g. `listCoreV1NamespacedPod`.
    pub(crate) id: String,
    /// One line.
    pub(crate) description: String,
    /// Query parameters besides `pretty`.
    pub(crate) query: Vec<QueryParam>,
    /// The request body, if any.
    pub(crate) request: Option<Body>,
    /// The definition of the 200 response.
    pub(crate) response: String,
    /// Whether `201 Created` / `202 Accepted` are answered too.
    pub(crate) creates: bool,
}

/// The operations on one path.
#[derive(Debug, Clone)]
pub(crate) struct PathItem {
    /// E.g. `/api/v1/namespaces/{namespace}/pods/{name}`.
    pub(crate) path: String,
    /// Path parameters, in order (`namespace`, `name`).
    pub(crate) path_params: Vec<&'static str>,
    /// Query parameters of every operation on the path.
    pub(crate) common_query: Vec<QueryParam>,
    /// The operations.
    pub(crate) operations: Vec<Operation>,
    /// `group`, `version`, `kind` of the objects the path serves.
    pub(crate) gvk: (String, String, String),
}

/// Upstream's operation id infix: `CoreV1`, `AppsV1`, `RbacAuthorizationV1`.
fn group_version_id(info: &ResourceInfo) -> String {
    let group = if info.group.is_empty() {
        "core"
    } else {
        info.group.trim_end_matches(".k8s.io")
    };
    let mut out: String = group.split(['.', '-']).map(capitalize).collect();
    out.push_str(&capitalize(&info.version));
    out
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The paths serving `info`, whose definitions are named `names`.
pub(crate) fn path_items(info: &ResourceInfo, names: &KindNames) -> Vec<PathItem> {
    let prefix = if info.group.is_empty() {
        format!("/api/{}", info.version)
    } else {
        format!("/apis/{}/{}", info.group, info.version)
    };
    let gv = group_version_id(info);
    let scope = if info.namespaced { "Namespaced" } else { "" };
    let (collection, ns_params): (String, Vec<&'static str>) = if info.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", info.plural),
            vec!["namespace"],
        )
    } else {
        (format!("{prefix}/{}", info.plural), Vec::new())
    };
    let kind = &info.kind;
    let gvk = (info.group.clone(), info.version.clone(), info.kind.clone());
    let op = |method, action, verb: &str, suffix: &str, description: String| Operation {
        method,
        action,
        id: format!("{verb}{gv}{scope}{kind}{suffix}"),
        description,
        query: Vec::new(),
        request: None,
        response: names.kind.clone(),
        creates: false,
    };
    let item = |path: String, operations: Vec<Operation>, extra: &[&'static str]| PathItem {
        path,
        path_params: ns_params.iter().chain(extra).copied().collect(),
        common_query: vec![PRETTY],
        operations,
        gvk: gvk.clone(),
    };
    let writes = |verb: &'static str, suffix: &str, what: &str| {
        let (method, action, query, request) = match verb {
            "patch" => ("patch", "patch", PATCH.to_vec(), Body::Patch),
            "create" => ("post", "post", WRITE.to_vec(), Body::Schema(names.kind.clone())),
            _ => ("put", "put", WRITE.to_vec(), Body::Schema(names.kind.clone())),
        };
        let verb_id = if verb == "update" { "replace" } else { verb };
        Operation {
            query,
            request: Some(request),
            creates: verb != "patch",
            ..op(method, action, verb_id, suffix, format!("{verb} {what}"))
        }
    };
    let mut items = vec![
        item(
            collection.clone(),
            vec![
                Operation {
                    query: LIST.to_vec(),
                    response: names.list.clone(),
                    ..op(
                        "get",
                        "list",
                        "list",
                        "",
                        format!("list or watch objects of kind {kind}"),
                    )
                },
                writes("create", "", &format!("a {kind}")),
                Operation {
                    query: [&DELETE[..], &LIST[..]].concat(),
                    request: Some(Body::Schema(DELETE_OPTIONS.into())),
                    response: STATUS.into(),
                    ..op(
                        "delete",
                        "deletecollection",
                        "deleteCollection",
                        "",
                        format!("delete collection of {kind}"),
                    )
                },
            ],
            &[],
        ),
        item(
            format!("{collection}/{{name}}"),
            vec![
                op("get", "get", "read", "", format!("read the specified {kind}")),
                writes("update", "", &format!("the specified {kind}")),
                writes("patch", "", &format!("partially the specified {kind}")),
                Operation {
                    query: DELETE.to_vec(),
                    request: Some(Body::Schema(DELETE_OPTIONS.into())),
                    creates: true,
                    ..op("delete", "delete", "delete", "", format!("delete a {kind}"))
                },
            ],
            &["name"],
        ),
    ];
    if info.has_status() {
        items.push(item(
            format!("{collection}/{{name}}/status"),
            vec![
                op(
                    "get",
                    "get",
                    "read",
                    "Status",
                    format!("read status of the specified {kind}"),
                ),
                writes("update", "Status", &format!("status of the specified {kind}")),
                writes("patch", "Status", &format!("partially status of the specified {kind}")),
            ],
            &["name"],
        ));
    }
    if info.namespaced {
        items.push(PathItem {
            path: format!("{prefix}/{}", info.plural),
            path_params: Vec::new(),
            common_query: [&[PRETTY][..], &LIST[..]].concat(),
            operations: vec![Operation {
                id: format!("list{gv}{kind}ForAllNamespaces"),
                response: names.list.clone(),
                ..op(
                    "get",
                    "list",
                    "list",
                    "",
                    format!("list or watch objects of kind {kind}"),
                )
            }],
            gvk: gvk.clone(),
        });
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin_resources;

    fn names(kind: &str) -> KindNames {
        KindNames {
            kind: kind.into(),
            list: format!("{kind}List"),
        }
    }

    #[test]
    fn namespaced_resource_with_status_has_four_paths_as_upstream() {
        let pods = builtin_resources().into_iter().find(|r| r.plural == "pods").unwrap();
        let items = path_items(&pods, &names("io.k8s.api.core.v1.Pod"));
        let paths: Vec<&str> = items.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/api/v1/namespaces/{namespace}/pods",
                "/api/v1/namespaces/{namespace}/pods/{name}",
                "/api/v1/namespaces/{namespace}/pods/{name}/status",
                "/api/v1/pods",
            ]
        );
        let patch = items[1].operations.iter().find(|o| o.method == "patch").unwrap();
        assert_eq!(patch.id, "patchCoreV1NamespacedPod");
        assert_eq!(patch.action, "patch");
        assert!(patch.query.iter().any(|q| q.0 == "fieldValidation"));
        assert_eq!(items[3].operations[0].id, "listCoreV1PodForAllNamespaces");
        assert_eq!(items[2].operations[1].id, "replaceCoreV1NamespacedPodStatus");
    }

    #[test]
    fn cluster_scoped_ids_use_the_group() {
        let roles = builtin_resources()
            .into_iter()
            .find(|r| r.plural == "clusterroles")
            .unwrap();
        let items = path_items(&roles, &names("io.k8s.api.rbac.v1.ClusterRole"));
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].path, "/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}");
        assert_eq!(items[1].operations[0].id, "readRbacAuthorizationV1ClusterRole");
        assert!(items[1].path_params == ["name"]);
    }
}
