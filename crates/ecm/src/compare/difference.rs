//! [`Difference`]: one field that differs between desired and existing
//! objects, and the text helpers both comparisons share.

use std::collections::BTreeMap;

use serde::Serialize;

/// One difference between the desired and the existing objects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Difference {
    /// The field that differs: `object`, `endpoints`, `conditions.ready`,
    /// `conditions.serving`, `conditions.terminating`, `hostname`,
    /// `nodeName`, `zone`, `hints`, `targetRef`, `ports`, `addresses`,
    /// `labels` or `annotations`.
    pub field: &'static str,
    /// What differs: an address type's slices, one endpoint, one slice or
    /// the Endpoints object.
    pub subject: String,
    /// What the controller would write.
    pub desired: String,
    /// What exists.
    pub actual: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: want {}, found {}",
            self.subject, self.field, self.desired, self.actual
        )
    }
}

/// `value`, or `-` for none.
pub(super) fn show<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// The keys of two maps whose values differ, as `key=value` lists (`-`
/// for absent), or `None` when equal apart from the `ignored` keys.
pub(super) fn map_difference(
    desired: Option<&BTreeMap<String, String>>,
    actual: Option<&BTreeMap<String, String>>,
    ignored: &[&str],
) -> Option<(String, String)> {
    let empty = BTreeMap::new();
    let (desired, actual) = (desired.unwrap_or(&empty), actual.unwrap_or(&empty));
    let keys: std::collections::BTreeSet<&String> = desired
        .keys()
        .chain(actual.keys())
        .filter(|k| !ignored.contains(&k.as_str()))
        .collect();
    let differing: Vec<&String> = keys.into_iter().filter(|k| desired.get(*k) != actual.get(*k)).collect();
    if differing.is_empty() {
        return None;
    }
    let render = |map: &BTreeMap<String, String>| {
        differing
            .iter()
            .map(|k| format!("{k}={}", map.get(*k).map_or("-", String::as_str)))
            .collect::<Vec<_>>()
            .join(",")
    };
    Some((render(desired), render(actual)))
}
