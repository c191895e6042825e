//! What a selector matches against: anything that can look up a label's
//! value by key.
//!
//! Upstream matches selectors against a `labels.Labels` interface so that the
//! same selector serves every way labels are stored. [`Labels`] is that
//! interface: implemented here for the maps of `kube` and `k8s-openapi`
//! objects (`BTreeMap<String, String>`) and for `HashMap`s; a crate that
//! keeps labels in another form (the API server keeps JSON) implements it on
//! a small wrapper of its own.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// A set of labels a [`Selector`](crate::Selector) can match.
///
/// ```
/// use ecm_labels::{Labels, Selector};
///
/// /// Labels kept as a list of pairs.
/// struct Pairs<'a>(&'a [(&'a str, &'a str)]);
///
/// impl Labels for Pairs<'_> {
///     fn get(&self, key: &str) -> Option<&str> {
///         self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
///     }
/// }
///
/// let selector: Selector = "app=web".parse().unwrap();
/// assert!(selector.matches(&Pairs(&[("app", "web")])));
/// ```
pub trait Labels {
    /// The value of the label `key`, or `None` if the label is absent (an
    /// absent label and an empty value are different things).
    fn get(&self, key: &str) -> Option<&str>;

    /// Whether the label `key` is present, whatever its value.
    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

/// No labels at all: an object whose `metadata.labels` is unset.
impl<L: Labels> Labels for Option<L> {
    fn get(&self, key: &str) -> Option<&str> {
        self.as_ref().and_then(|labels| labels.get(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_label_differs_from_an_empty_one() {
        let labels = BTreeMap::from([("empty".to_owned(), String::new())]);
        assert_eq!(Labels::get(&labels, "empty"), Some(""));
        assert_eq!(Labels::get(&labels, "missing"), None);
        assert!(labels.has("empty"));
        assert!(!labels.has("missing"));
        assert!(!None::<&BTreeMap<String, String>>.has("empty"));
        let hashed: HashMap<String, String> = labels.into_iter().collect();
        assert!(hashed.has("empty"));
    }
}
