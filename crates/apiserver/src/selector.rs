//! Label and field selectors, parsed as `k8s.io/apimachinery` parses them.
//!
//! Label selectors are `ecm_labels`' (the full syntax: `a=b`, `a==b`,
//! `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, joined by
//! commas, with upstream's error messages), matched against the JSON labels
//! the store keeps through [`JsonLabels`]. Field selectors support `=`, `==`
//! and `!=` with `\` escapes.

use ecm_labels::Labels;
use serde_json::{Map, Value};

/// A parsed label selector; the empty selector matches everything. The
/// workspace's one label selector type, `ecm_labels::Selector`.
pub use ecm_labels::Selector as LabelSelector;

/// A selector that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector text is malformed (upstream's `labels.Parse` message).
    #[error(transparent)]
    Label(#[from] ecm_labels::ParseError),
    /// The field selector text is malformed.
    #[error("invalid selector: '{0}'; can't understand '{1}'")]
    Field(String, String),
    /// The field selector names a field the resource does not support.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

/// An object's `metadata.labels` as the store keeps them (a JSON map, or
/// none), for matching a [`LabelSelector`]. A label whose value is not a
/// string counts as absent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonLabels<'a>(pub(crate) Option<&'a Map<String, Value>>);

impl JsonLabels<'_> {
    /// The labels of `obj`.
    pub(crate) fn of(obj: &Value) -> JsonLabels<'_> {
        JsonLabels(crate::object::labels(obj))
    }
}

impl Labels for JsonLabels<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0?.get(key)?.as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    label: String,
    negate: bool,
    value: String,
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    if escaped {
        current.push('\\');
    }
    parts.push(current);
    parts
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

impl FieldSelector {
    /// Parses a `fieldSelector` query value.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self { terms });
        }
        for part in split_unescaped(text, ',') {
            let (label, negate, value) = if let Some((l, v)) = part.split_once("!=") {
                (l, true, v)
            } else if let Some((l, v)) = part.split_once("==") {
                (l, false, v)
            } else if let Some((l, v)) = part.split_once('=') {
                (l, false, v)
            } else {
                return Err(SelectorError::Field(text.to_owned(), part.clone()));
            };
            terms.push(FieldTerm {
                label: label.trim().to_owned(),
                negate,
                value: unescape(v_trim(value)),
            });
        }
        Ok(Self { terms })
    }

    /// Whether the selector has no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Checks every label against the fields a resource supports.
    pub(crate) fn check_supported(&self, info: &crate::resources::ResourceInfo) -> Result<(), SelectorError> {
        for term in &self.terms {
            let known = term.label == "metadata.name"
                || term.label == "metadata.namespace"
                || info.field_selectors.iter().any(|f| f.label == term.label);
            if !known {
                return Err(SelectorError::UnsupportedField(term.label.clone()));
            }
        }
        Ok(())
    }

    /// Whether an object of the resource satisfies every term.
    pub(crate) fn matches(&self, info: &crate::resources::ResourceInfo, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let actual = match t.label.as_str() {
                "metadata.name" => crate::object::meta_str(obj, "name").to_owned(),
                "metadata.namespace" => crate::object::meta_str(obj, "namespace").to_owned(),
                label => info
                    .field_selectors
                    .iter()
                    .find(|f| f.label == label)
                    .map(|f| crate::object::field_text(obj, &f.path, &f.default))
                    .unwrap_or_default(),
            };
            (actual == t.value) != t.negate
        })
    }
}

fn v_trim(v: &str) -> &str {
    v.trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: &Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn label_selectors_match_json_labels() {
        let l = labels(&json!({"app": "web", "tier": "front", "n": "5", "num": 5}));
        let matches = |s: &str| LabelSelector::parse(s).unwrap().matches(&JsonLabels(Some(&l)));
        for s in [
            "app=web",
            "app==web",
            "app!=db",
            "app in (web,db)",
            "tier notin (back)",
            "app",
            "!missing",
            "n>3",
            "n<9",
            "app=web,tier=front",
            " app = web , tier in ( front ) ",
            "!num",
        ] {
            assert!(matches(s), "{s} should match");
        }
        for s in [
            "app=db",
            "app!=web",
            "app in (db)",
            "tier notin (front)",
            "missing",
            "!app",
            "n>5",
            "n<5",
            "app=web,tier=back",
            "num",
        ] {
            assert!(!matches(s), "{s} should not match");
        }
        assert!(LabelSelector::parse("").unwrap().matches(&JsonLabels(None)));
        assert!(
            LabelSelector::parse("a=")
                .unwrap()
                .matches(&JsonLabels(Some(&labels(&json!({"a": ""})))))
        );
    }

    #[test]
    fn label_selectors_reject_garbage() {
        for s in ["app in web", "=x", "a,", "a b", "n>x", "bad key!=x/"] {
            assert!(LabelSelector::parse(s).is_err(), "{s} should fail");
        }
    }

    #[test]
    fn field_selector_escapes_and_negation() {
        let f = FieldSelector::parse("metadata.name=a\\,b,metadata.namespace!=x").unwrap();
        assert_eq!(f.terms[0].value, "a,b");
        assert!(f.terms[1].negate);
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
