//! Label selectors: [`ecm_labels`]' [`Selector`], and its construction from
//! the API's `LabelSelector`.
//!
//! A [`Selector`] is built from any of the three forms a selector takes in
//! the API:
//!
//! - a [`LabelSelector`] (`matchLabels` + `matchExpressions`), as in
//!   Deployments and NetworkPolicies: [`from_label_selector`] (here, since
//!   `ecm-labels` knows no Kubernetes types);
//! - a plain map where every key must equal its value, as a Service's
//!   `spec.selector`: [`Selector::from_labels`];
//! - the string form used by `kubectl -l` and the `labelSelector` query
//!   parameter (`a=b,c!=d,e in (x,y),!f,g>1`): [`Selector::parse`] /
//!   [`str::parse`].
//!
//! An empty selector matches everything; [`Selector::nothing`] matches
//! nothing. Mind the difference when mapping an optional selector: a
//! Service with no selector (`None`) selects no pods and is skipped by the
//! endpoint controllers, while an empty one would select every pod.
//!
//! ```
//! use std::collections::BTreeMap;
//! use ecm_informer::Selector;
//!
//! let selector: Selector = "app=web,tier in (frontend,edge),!canary".parse().unwrap();
//! let labels = BTreeMap::from([("app".to_owned(), "web".to_owned()), ("tier".to_owned(), "edge".to_owned())]);
//! assert!(selector.matches(&labels));
//! assert_eq!(selector.to_string(), "app=web,!canary,tier in (edge,frontend)");
//! assert!(Selector::everything().matches(&BTreeMap::new()));
//! ```

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub use ecm_labels::{Labels, Operator, ParseError, Requirement, RequirementError, Selector, SelectorError};

/// A selector from a [`LabelSelector`] (upstream's
/// `LabelSelectorAsSelector`): each `matchLabels` entry an `=` requirement,
/// each `matchExpressions` item an `In`, `NotIn`, `Exists` or
/// `DoesNotExist` requirement, all validated. One with neither matches
/// everything. For an optional field, see [`from_optional_label_selector`].
///
/// ```
/// use std::collections::BTreeMap;
/// use ecm_informer::selector::from_label_selector;
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
///
/// let ls = LabelSelector {
///     match_labels: Some(BTreeMap::from([("app".to_owned(), "web".to_owned())])),
///     match_expressions: Some(vec![LabelSelectorRequirement {
///         key: "tier".into(),
///         operator: "NotIn".into(),
///         values: Some(vec!["batch".into()]),
///     }]),
/// };
/// assert_eq!(from_label_selector(&ls).unwrap().to_string(), "app=web,tier notin (batch)");
/// ```
pub fn from_label_selector(selector: &LabelSelector) -> Result<Selector, SelectorError> {
    let mut requirements = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        requirements.push(Requirement::new(key.as_str(), Operator::Equals, [value.as_str()])?);
    }
    for expr in selector.match_expressions.iter().flatten() {
        let operator =
            Operator::from_label_selector_operator(&expr.operator).ok_or_else(|| SelectorError::UnknownOperator {
                key: expr.key.clone(),
                operator: expr.operator.clone(),
            })?;
        let values = expr.values.iter().flatten().map(String::as_str);
        requirements.push(Requirement::new(expr.key.as_str(), operator, values)?);
    }
    Ok(Selector::from_requirements(requirements))
}

/// Like [`from_label_selector`], with `None` meaning [`Selector::nothing`],
/// as upstream treats a `nil` selector.
pub fn from_optional_label_selector(selector: Option<&LabelSelector>) -> Result<Selector, SelectorError> {
    selector.map_or_else(|| Ok(Selector::nothing()), from_label_selector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn expr(key: &str, operator: &str, values: Option<Vec<&str>>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: values.map(|v| v.into_iter().map(str::to_owned).collect()),
        }
    }

    #[test]
    fn empty_label_selector_matches_everything_and_none_matches_nothing() {
        assert!(from_label_selector(&LabelSelector::default()).unwrap().is_everything());
        assert!(from_optional_label_selector(None).unwrap().is_nothing());
    }

    #[test]
    fn from_label_selector_combines_labels_and_expressions() {
        let ls = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                expr("tier", "In", Some(vec!["edge", "core"])),
                expr("canary", "DoesNotExist", None),
                expr("zone", "Exists", Some(vec![])),
                expr("env", "NotIn", Some(vec!["dev"])),
            ]),
        };
        let selector = from_label_selector(&ls).unwrap();
        assert_eq!(
            selector.to_string(),
            "app=web,!canary,env notin (dev),tier in (core,edge),zone"
        );
        assert!(selector.matches(&labels(&[("app", "web"), ("tier", "core"), ("zone", "a")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "core")])));
    }

    #[test]
    fn from_label_selector_rejects_what_upstream_rejects() {
        let with = |match_labels: Option<BTreeMap<String, String>>, exprs: Vec<LabelSelectorRequirement>| {
            from_label_selector(&LabelSelector {
                match_labels,
                match_expressions: Some(exprs),
            })
        };
        assert!(matches!(
            with(None, vec![expr("a", "Gt", Some(vec!["1"]))]),
            Err(SelectorError::UnknownOperator { .. })
        ));
        assert!(matches!(
            with(None, vec![expr("a", "Exists", Some(vec!["1"]))]),
            Err(SelectorError::Requirement(RequirementError::ValueCount { .. }))
        ));
        assert!(matches!(
            with(None, vec![expr("a", "In", None)]),
            Err(SelectorError::Requirement(RequirementError::ValueCount { .. }))
        ));
        assert!(matches!(
            with(Some(labels(&[("a", "not valid")])), vec![]),
            Err(SelectorError::Requirement(RequirementError::InvalidValue { .. }))
        ));
    }
}
