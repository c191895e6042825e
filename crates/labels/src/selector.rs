//! [`Selector`]: a conjunction of [`Requirement`]s, as upstream's
//! `labels.Selector`.
//!
//! A selector is built from requirements, from a label map that every key
//! must equal (a Service's `spec.selector`), or from the string form
//! (`kubectl -l`, the `labelSelector` query parameter). The empty selector
//! matches everything; [`Selector::nothing`] matches nothing. Mind the
//! difference when mapping an optional selector: a Service with no selector
//! (`None`) selects no pods, while an empty one would select every pod.
//!
//! [`ValidatedSetSelector`] borrows a label map instead of copying it, for
//! hot paths that match a Service's selector against many pods.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::labels::Labels;
use crate::parser::{ParseError, parse_requirements};
use crate::requirement::{Requirement, RequirementError};

/// Why a selector could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The string form could not be parsed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A requirement is invalid (a `matchLabels` entry or a
    /// `matchExpressions` item).
    #[error(transparent)]
    Requirement(#[from] RequirementError),
    /// A `matchExpressions` operator other than `In`, `NotIn`, `Exists` and
    /// `DoesNotExist` (see
    /// [`Operator::from_label_selector_operator`](crate::Operator::from_label_selector_operator)).
    #[error("{} is not a valid label selector operator", crate::requirement::go_quote(operator))]
    UnknownOperator {
        /// The key of the expression.
        key: String,
        /// The operator as written.
        operator: String,
    },
}

/// A label selector: all of its requirements must hold.
///
/// Requirements are kept sorted by key (stable), as upstream sorts them, so
/// that [`Display`](fmt::Display) gives a canonical string that parses back
/// to an equal selector.
///
/// ```
/// use std::collections::BTreeMap;
/// use ecm_labels::Selector;
///
/// let selector: Selector = "tier in (edge,frontend),app==web,!canary".parse().unwrap();
/// assert_eq!(selector.to_string(), "app==web,!canary,tier in (edge,frontend)");
/// assert_eq!(selector.to_string().parse::<Selector>().unwrap(), selector);
/// let labels = BTreeMap::from([("app".to_owned(), "web".to_owned()), ("tier".to_owned(), "edge".to_owned())]);
/// assert!(selector.matches(&labels));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    /// Sorted by key; empty when `nothing` is set.
    requirements: Vec<Requirement>,
    /// Set only by [`Selector::nothing`].
    nothing: bool,
}

impl Selector {
    /// The selector that matches every object (no requirements; upstream's
    /// `Everything`).
    pub fn everything() -> Self {
        Self::default()
    }

    /// The selector that matches no object: what upstream makes of a
    /// missing (`nil`) `LabelSelector`. Its string form is empty, like
    /// upstream's, so it does not survive a round trip through a string.
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// A selector from requirements, sorted by key (stable).
    pub fn from_requirements(requirements: impl IntoIterator<Item = Requirement>) -> Self {
        let mut requirements: Vec<Requirement> = requirements.into_iter().collect();
        requirements.sort_by(|a, b| a.key().cmp(b.key()));
        Self {
            requirements,
            nothing: false,
        }
    }

    /// A selector requiring every key of `labels` to equal its value: the
    /// meaning of a Service's `spec.selector` (upstream's `SelectorFromSet`
    /// / `SelectorFromValidatedSet`). The map is not validated: it comes
    /// from an object the API server accepted. An empty map gives the
    /// selector that matches everything.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use ecm_labels::Selector;
    /// let service_selector = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
    /// assert_eq!(Selector::from_labels(&service_selector).to_string(), "app=web");
    /// ```
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        // A BTreeMap iterates in key order, so the requirements are sorted.
        Self {
            requirements: labels
                .iter()
                .map(|(k, v)| Requirement::equals_unchecked(k, v))
                .collect(),
            nothing: false,
        }
    }

    /// Parses the string form (upstream's `labels.Parse`; the grammar is in
    /// the [`parser`](crate::parser) module): comma-separated requirements,
    /// each one of `key`, `!key`, `key=value`, `key==value`, `key!=value`,
    /// `key in (v1,v2)`, `key notin (v1,v2)`, `key>1` and `key<1`. An empty
    /// string is the selector that matches everything. Keys and values are
    /// validated.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        Ok(Self {
            requirements: parse_requirements(input)?,
            nothing: false,
        })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether this selector matches everything (it has no requirements and
    /// is not [`Selector::nothing`]; upstream's `Empty`).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is [`Selector::nothing`].
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

/// Upstream's string form: the requirements joined by `,`.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<&BTreeMap<String, String>> for Selector {
    fn from(labels: &BTreeMap<String, String>) -> Self {
        Self::from_labels(labels)
    }
}

/// A selector that borrows a validated label map and requires every key to
/// equal its value, without copying it (upstream's `ValidatedSetSelector`).
/// It means what [`Selector::from_labels`] means; an empty map matches
/// everything.
///
/// ```
/// use std::collections::BTreeMap;
/// use ecm_labels::ValidatedSetSelector;
/// let selector = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
/// let pod = BTreeMap::from([("app".to_owned(), "web".to_owned()), ("x".to_owned(), "y".to_owned())]);
/// assert!(ValidatedSetSelector::new(&selector).matches(&pod));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedSetSelector<'a> {
    set: &'a BTreeMap<String, String>,
}

impl<'a> ValidatedSetSelector<'a> {
    /// Wraps `set`, which must hold valid label keys and values.
    pub fn new(set: &'a BTreeMap<String, String>) -> Self {
        Self { set }
    }

    /// Whether every key of the set is in `labels` with the same value.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.set
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value.as_str()))
    }
}

/// The same string as the equivalent [`Selector::from_labels`].
impl fmt::Display for ValidatedSetSelector<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.set.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Operator;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn parse(input: &str) -> Selector {
        Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    #[test]
    fn parse_round_trips_upstreams_good_strings_without_spaces() {
        for input in [
            "x=a,y=b,z=c",
            "",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
            "x==a",
        ] {
            assert_eq!(parse(input).to_string(), input.replace(' ', ""), "{input:?}");
        }
    }

    #[test]
    fn parse_canonicalises_order_values_and_spacing() {
        let cases = [
            ("y,x=a", "x=a,y"),
            (" x = a , y ", "x=a,y"),
            ("x in (b,a)", "x in (a,b)"),
            ("x in ()", "x in ()"),
            ("x in (a,)", "x in (,a)"),
            ("x=in", "x=in"),
            ("x in (in,notin)", "x in (in,notin)"),
            ("example.com/app=web", "example.com/app=web"),
            ("x in(a),y notin(b)", "x in (a),y notin (b)"),
            // Upstream's selector_test lists an empty value in x's set here; its parser
            // (and this one) reads `(abc,def)` as exactly two values.
            ("x notin (abc,def),bar,z in (),w", "bar,w,x notin (abc,def),z in ()"),
            ("x notin ( )", "x notin ()"),
            ("x notin (, a)", "x notin (,a)"),
            ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
            ("\rx", "x"),
            ("foo  in\t (abc)", "foo in (abc)"),
            ("x notin\n (abc)", "x notin (abc)"),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
                "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
            ),
            ("x=a,a=x", "a=x,x=a"),
            ("a=x,x=a", "a=x,x=a"),
        ];
        for (input, canonical) in cases {
            let selector = parse(input);
            assert_eq!(selector.to_string(), canonical, "{input:?}");
            assert_eq!(parse(canonical), selector, "round trip of {input:?}");
        }
    }

    #[test]
    fn parse_builds_the_requirements_upstream_builds() {
        let r = |key, operator, values: &[&str]| Requirement::new(key, operator, values.iter().copied()).unwrap();
        let cases = [
            (
                "x,y in (a)",
                vec![r("x", Operator::Exists, &[]), r("y", Operator::In, &["a"])],
            ),
            ("a ", vec![r("a", Operator::Exists, &[])]),
            ("x in ()", vec![r("x", Operator::In, &[""])]),
            ("x<7", vec![r("x", Operator::LessThan, &["7"])]),
            (
                "x=a,y!=b,z in (h,i,j)",
                vec![
                    r("x", Operator::Equals, &["a"]),
                    r("y", Operator::NotEquals, &["b"]),
                    r("z", Operator::In, &["h", "i", "j"]),
                ],
            ),
            (
                "this-is-another-dns.domain.com/key-with-dash in (so,what)",
                vec![r(
                    "this-is-another-dns.domain.com/key-with-dash",
                    Operator::In,
                    &["so", "what"],
                )],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Selector::from_requirements(want), "{input:?}");
        }
    }

    #[test]
    fn parse_rejects_upstreams_bad_strings() {
        for input in [
            "x=a||y=b",
            "x==a==b",
            "!x=a",
            "x<a",
            "x,y,",
            ",x,y",
            "x nott in (y)",
            "a in (xyz),",
            "a in (xyz)b notin ()",
            "a in (xyz abc)",
            "a notin(",
            "a (",
            "(",
            "x=a=b",
            "x,",
            "x in a",
            "x in (a",
            "x notin",
            "x=(a)",
            "(x)",
            "x y",
            "=a",
            "x!",
            "a/b/c=d",
            "-x=a",
            "x=-a",
            "x in (a,-b)",
            "UPPER.com/x=a",
            "x>-1",
            "x>1.5",
            "app in web",
            "a b",
            "n>x",
            "bad key!=x/",
        ] {
            assert!(Selector::parse(input).is_err(), "{input:?} should not parse");
        }
    }

    #[test]
    fn matches_follows_upstreams_selector_table() {
        let cases: &[(&str, &[(&str, &str)], bool)] = &[
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("notin=in", &[("notin", "in")], true),
            ("x", &[("x", "z")], true),
            ("!x", &[("y", "z")], true),
            ("x>1", &[("x", "2")], true),
            ("x<1", &[("x", "0")], true),
            ("x=z", &[], false),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            ("x", &[("y", "z")], false),
            ("!x", &[("x", "z")], false),
            ("x>1", &[("x", "0")], false),
            ("x<1", &[("x", "2")], false),
            ("foo=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], true),
            ("foo=blah", &[("foo", "bar"), ("baz", "blah")], false),
            ("foo=bar,foobar=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], false),
        ];
        for (input, set, want) in cases {
            assert_eq!(parse(input).matches(&labels(set)), *want, "{input:?} on {set:?}");
        }
    }

    #[test]
    fn matches_keeps_the_semantics_the_copies_pinned() {
        let l = labels(&[("app", "web"), ("tier", "edge"), ("empty", ""), ("n", "5")]);
        let cases = [
            ("app==web", true),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("tier in (edge,core)", true),
            ("tier in (core)", false),
            ("missing in (x)", false),
            ("tier notin (core)", true),
            ("tier notin (edge)", false),
            ("missing notin (x)", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("empty=", true),
            ("empty in ()", true),
            ("n>3", true),
            ("n<9", true),
            ("n>5", false),
            ("n<5", false),
            ("app>3", false),
            (" app = web , tier in ( edge ) ", true),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).matches(&l), want, "{input:?}");
        }
        assert!(parse("").matches(&None::<BTreeMap<String, String>>));
    }

    #[test]
    fn nothing_matches_nothing_and_empty_matches_everything() {
        assert!(!Selector::nothing().matches(&BTreeMap::new()));
        assert!(Selector::nothing().is_nothing());
        assert_eq!(Selector::nothing().to_string(), "");
        assert!(Selector::everything().matches(&labels(&[("a", "b")])));
        assert!(Selector::everything().is_everything());
        assert!(Selector::from_labels(&BTreeMap::new()).is_everything());
        assert!(parse("").is_everything());
    }

    #[test]
    fn from_labels_requires_every_pair() {
        let set = labels(&[("app", "web"), ("tier", "edge")]);
        let selector = Selector::from(&set);
        let borrowed = ValidatedSetSelector::new(&set);
        for (pod, want) in [
            (labels(&[("app", "web"), ("tier", "edge"), ("x", "y")]), true),
            (labels(&[("app", "web")]), false),
            (labels(&[("app", "web"), ("tier", "core")]), false),
        ] {
            assert_eq!(selector.matches(&pod), want, "{pod:?}");
            assert_eq!(borrowed.matches(&pod), want, "{pod:?}");
        }
        assert_eq!(selector.to_string(), "app=web,tier=edge");
        assert_eq!(borrowed.to_string(), selector.to_string());
        assert!(ValidatedSetSelector::new(&BTreeMap::new()).matches(&BTreeMap::new()));
    }

    #[test]
    fn unknown_operator_reads_as_upstream() {
        let error = SelectorError::UnknownOperator {
            key: "a".into(),
            operator: "Gt".into(),
        };
        assert_eq!(error.to_string(), "\"Gt\" is not a valid label selector operator");
    }
}
