//! Content negotiation of resource requests, as kube-apiserver does it
//! (`k8s.io/apiserver/pkg/endpoints/handlers/negotiation`).
//!
//! `Accept` is a list of media ranges with q-values; the most preferred
//! range (highest q, then the more specific) that the server can produce
//! wins: `application/json` (also for `*/*`, `application/*` and no header),
//! `application/vnd.kubernetes.protobuf` for kinds with protobuf messages,
//! and `application/json;as=Table;g=meta.k8s.io;v=v1` (or `v1beta1`) for
//! Tables. Tables are JSON only, as upstream's `metav1.Table` has no
//! protobuf form: a protobuf `as=Table` range is passed over, like any range
//! the server cannot produce. When none is left: 406 NotAcceptable.
//! Request bodies: JSON or YAML, or protobuf for kinds that have it; other
//! `Content-Type`s are 415 UnsupportedMediaType.

use crate::error::ApiError;

use super::protobuf;

/// The encoding of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// `application/json`.
    Json,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
    /// A `meta.k8s.io` Table, in JSON.
    Table,
}

/// The encoding of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// JSON or YAML.
    Json,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
}

/// One media range of an `Accept` header.
struct Range<'a> {
    kind: &'a str,
    subtype: &'a str,
    q: f32,
    params: Vec<(&'a str, &'a str)>,
    order: usize,
}

impl Range<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    fn specificity(&self) -> u8 {
        match (self.kind, self.subtype) {
            ("*", _) => 0,
            (_, "*") => 1,
            _ => 2,
        }
    }
}

fn parse(accept: &str) -> Vec<Range<'_>> {
    let mut ranges: Vec<Range<'_>> = accept
        .split(',')
        .enumerate()
        .filter_map(|(order, clause)| {
            let mut parts = clause.split(';').map(str::trim);
            let (kind, subtype) = parts.next()?.split_once('/')?;
            let mut q = 1.0;
            let mut params = Vec::new();
            for p in parts {
                let Some((k, v)) = p.split_once('=') else { continue };
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k.eq_ignore_ascii_case("q") {
                    q = v.parse().unwrap_or(0.0);
                } else {
                    params.push((k, v));
                }
            }
            Some(Range {
                kind: kind.trim(),
                subtype: subtype.trim(),
                q,
                params,
                order,
            })
        })
        .filter(|r| r.q > 0.0)
        .collect();
    ranges.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then(b.specificity().cmp(&a.specificity()))
            .then(a.order.cmp(&b.order))
    });
    ranges
}

/// What one range asks for, if the server can produce it.
fn output_of(r: &Range<'_>, protobuf: bool) -> Option<Output> {
    let json = matches!((r.kind, r.subtype), ("*", "*") | ("application", "*" | "json"));
    let pb = r.kind == "application" && r.subtype == "vnd.kubernetes.protobuf";
    match r.param("as") {
        None => {
            if json {
                Some(Output::Json)
            } else if pb && protobuf {
                Some(Output::Protobuf)
            } else {
                None
            }
        }
        Some("Table") => {
            let group_ok = r.param("g") == Some("meta.k8s.io");
            let version_ok = matches!(r.param("v"), Some("v1" | "v1beta1"));
            (json && group_ok && version_ok).then_some(Output::Table)
        }
        Some(_) => None,
    }
}

/// The response encoding for `accept`; `protobuf`: whether the kind has
/// protobuf messages.
pub(crate) fn output(accept: &str, protobuf: bool) -> Result<Output, ApiError> {
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    parse(accept)
        .iter()
        .find_map(|r| output_of(r, protobuf))
        .ok_or_else(|| not_acceptable(protobuf))
}

fn not_acceptable(protobuf: bool) -> ApiError {
    let types = if protobuf {
        "application/json, application/vnd.kubernetes.protobuf"
    } else {
        "application/json"
    };
    ApiError::new(
        406,
        "NotAcceptable",
        format!("only the following media types are accepted: {types}"),
    )
}

/// The encoding of a request body of `content_type`.
pub(crate) fn input(content_type: &str, protobuf: bool) -> Result<Input, ApiError> {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "" | "application/json" | "application/yaml" | "application/x-yaml" | "text/yaml" | "*/*" => Ok(Input::Json),
        protobuf::MEDIA_TYPE if protobuf => Ok(Input::Protobuf),
        _ => {
            let types = if protobuf {
                "application/json, application/yaml, application/vnd.kubernetes.protobuf"
            } else {
                "application/json, application/yaml"
            };
            Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: {types} (got {content_type:?})"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Input, Output, input, output};

    const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

    #[test]
    fn json_is_the_default() {
        for accept in ["", "*/*", "application/json", "application/*", "application/json, */*"] {
            assert_eq!(output(accept, true).ok(), Some(Output::Json), "{accept}");
        }
    }

    #[test]
    fn protobuf_when_preferred_and_available() {
        let kubectl = "application/vnd.kubernetes.protobuf,application/json";
        assert_eq!(output(kubectl, true).ok(), Some(Output::Protobuf));
        // A kind without protobuf messages (a custom resource) falls back.
        assert_eq!(output(kubectl, false).ok(), Some(Output::Json));
        assert_eq!(
            output("application/vnd.kubernetes.protobuf;stream=watch", true).ok(),
            Some(Output::Protobuf)
        );
    }

    #[test]
    fn q_values_order_the_ranges() {
        let accept = "application/vnd.kubernetes.protobuf;q=0.5, application/json;q=0.9";
        assert_eq!(output(accept, true).ok(), Some(Output::Json));
        let accept = "application/json;q=0.1, application/vnd.kubernetes.protobuf";
        assert_eq!(output(accept, true).ok(), Some(Output::Protobuf));
        // q=0 means "not acceptable".
        let accept = "application/json;q=0, application/vnd.kubernetes.protobuf;q=0.2";
        assert_eq!(output(accept, true).ok(), Some(Output::Protobuf));
        // Equal q: the more specific range wins over a wildcard.
        let accept = "*/*, application/vnd.kubernetes.protobuf";
        assert_eq!(output(accept, true).ok(), Some(Output::Protobuf));
    }

    #[test]
    fn tables_are_json_only() {
        assert_eq!(output(TABLE, true).ok(), Some(Output::Table));
        let pb_table = "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json";
        assert_eq!(output(pb_table, true).ok(), Some(Output::Json));
        let only = "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io";
        assert_eq!(output(only, true).map_err(|e| e.code).err(), Some(406));
        // A Table of another group or version is not one the server makes.
        assert_eq!(
            output("application/json;as=Table;v=v2;g=meta.k8s.io", true)
                .map_err(|e| e.code)
                .err(),
            Some(406)
        );
    }

    #[test]
    fn unsupported_types_are_406() {
        for accept in [
            "text/html",
            "application/cbor",
            "application/vnd.kubernetes.protobuf;q=0",
        ] {
            let err = output(accept, true).err().map(|e| (e.code, e.reason));
            assert_eq!(err, Some((406, "NotAcceptable".to_owned())), "{accept}");
        }
        assert_eq!(
            output("application/vnd.kubernetes.protobuf", false)
                .map_err(|e| e.code)
                .err(),
            Some(406)
        );
    }

    #[test]
    fn request_bodies() {
        assert_eq!(input("", true).ok(), Some(Input::Json));
        assert_eq!(input("application/json; charset=utf-8", true).ok(), Some(Input::Json));
        assert_eq!(input("application/yaml", true).ok(), Some(Input::Json));
        assert_eq!(
            input("application/vnd.kubernetes.protobuf", true).ok(),
            Some(Input::Protobuf)
        );
        for ct in ["application/cbor", "text/plain"] {
            let err = input(ct, true).err().map(|e| (e.code, e.reason));
            assert_eq!(err, Some((415, "UnsupportedMediaType".to_owned())), "{ct}");
        }
        assert_eq!(
            input("application/vnd.kubernetes.protobuf", false)
                .map_err(|e| e.code)
                .err(),
            Some(415)
        );
    }
}
