//! One condition on one label: a key, an [`Operator`] and values.
//!
//! This is upstream's `labels.Requirement` and `selection.Operator`. A
//! [`Requirement`] is only built valid ([`Requirement::new`] checks the key,
//! the values and their number); its errors read as upstream's aggregated
//! field errors, word for word.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};

use crate::labels::Labels;
use crate::validation::{is_qualified_name, is_valid_label_value};

/// How a [`Requirement`] relates a label to its values (upstream's
/// `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// The label is present and its value is one of the values
    /// (`key in (a,b)`).
    In,
    /// The label is absent or its value is none of the values
    /// (`key notin (a,b)`).
    NotIn,
    /// The label is present and equals the single value (`key=value`, or a
    /// `matchLabels` entry).
    Equals,
    /// The same as [`Operator::Equals`], written `key==value`; kept apart so
    /// that the string form round-trips.
    DoubleEquals,
    /// The label is absent or differs from the single value (`key!=value`).
    NotEquals,
    /// The label is present, whatever its value (`key`).
    Exists,
    /// The label is absent (`!key`).
    DoesNotExist,
    /// The label is present, is an integer, and is greater than the single
    /// integer value (`key>1`).
    GreaterThan,
    /// The label is present, is an integer, and is less than the single
    /// integer value (`key<1`).
    LessThan,
}

impl Operator {
    /// The operator of a `LabelSelectorRequirement` in a `matchExpressions`
    /// list (`In`, `NotIn`, `Exists`, `DoesNotExist`), as upstream's
    /// `LabelSelectorAsSelector` maps it; `None` for any other name.
    ///
    /// ```
    /// use ecm_labels::Operator;
    /// assert_eq!(Operator::from_label_selector_operator("NotIn"), Some(Operator::NotIn));
    /// assert_eq!(Operator::from_label_selector_operator("Gt"), None);
    /// ```
    pub fn from_label_selector_operator(name: &str) -> Option<Self> {
        match name {
            "In" => Some(Self::In),
            "NotIn" => Some(Self::NotIn),
            "Exists" => Some(Self::Exists),
            "DoesNotExist" => Some(Self::DoesNotExist),
            _ => None,
        }
    }

    /// What upstream says when the operator is given the wrong number of
    /// values.
    fn value_count_rule(self) -> &'static str {
        match self {
            Self::In | Self::NotIn => "for 'in', 'notin' operators, values set can't be empty",
            Self::Equals | Self::DoubleEquals | Self::NotEquals => {
                "exact-match compatibility requires one single value"
            }
            Self::Exists | Self::DoesNotExist => "values set must be empty for exists and does not exist",
            Self::GreaterThan | Self::LessThan => "for 'Gt', 'Lt' operators, exactly one value is required",
        }
    }

    /// Whether `count` values suit the operator.
    fn takes(self, count: usize) -> bool {
        match self {
            Self::In | Self::NotIn => count > 0,
            Self::Exists | Self::DoesNotExist => count == 0,
            Self::Equals | Self::DoubleEquals | Self::NotEquals | Self::GreaterThan | Self::LessThan => count == 1,
        }
    }
}

/// Upstream's `selection.Operator` strings.
impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::In => "in",
            Self::NotIn => "notin",
            Self::Equals => "=",
            Self::DoubleEquals => "==",
            Self::NotEquals => "!=",
            Self::Exists => "exists",
            Self::DoesNotExist => "!",
            Self::GreaterThan => "gt",
            Self::LessThan => "lt",
        })
    }
}

/// Why [`Requirement::new`] refused its input. Each variant displays as
/// upstream's field error for the same problem (`key: Invalid value: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    /// The key is not a qualified name.
    #[error("key: Invalid value: {}: {}", go_quote(key), messages.join("; "))]
    InvalidKey {
        /// The offending key.
        key: String,
        /// What is wrong with it, from [`is_qualified_name`].
        messages: Vec<String>,
    },
    /// The operator was given the wrong number of values (`in`/`notin` need
    /// at least one, `=`/`==`/`!=`/`>`/`<` exactly one, exists/does-not-exist
    /// none).
    #[error("values: Invalid value: {}: {}", go_string_slice(values), operator.value_count_rule())]
    ValueCount {
        /// The operator of the requirement.
        operator: Operator,
        /// The values given.
        values: Vec<String>,
    },
    /// A value of a `>` or `<` requirement is not a 64-bit integer.
    #[error(
        "values[{index}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
        go_quote(value)
    )]
    NotAnInteger {
        /// The position of the value.
        index: usize,
        /// The offending value.
        value: String,
    },
    /// A value is not a valid label value.
    #[error("values[{index}][{key}]: Invalid value: {}: {}", go_quote(value), messages.join("; "))]
    InvalidValue {
        /// The position of the value.
        index: usize,
        /// The key of the requirement.
        key: String,
        /// The offending value.
        value: String,
        /// What is wrong with it, from [`is_valid_label_value`].
        messages: Vec<String>,
    },
    /// More than one of the above, in the order upstream checks them;
    /// displayed as upstream's aggregate (`[first, second]`, repeated
    /// messages once).
    #[error("{}", aggregate(.0))]
    Several(Vec<RequirementError>),
}

/// Go's `%q` of a string, as upstream's error messages quote values.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Upstream's `utilerrors.Aggregate` message: one error as itself, several
/// as `[a, b]` with repeated messages once.
fn aggregate(errors: &[RequirementError]) -> String {
    let mut seen = Vec::new();
    for error in errors {
        let message = error.to_string();
        if !seen.contains(&message) {
            seen.push(message);
        }
    }
    if seen.len() == 1 {
        seen.remove(0)
    } else {
        format!("[{}]", seen.join(", "))
    }
}

/// One condition on one label key (upstream's `labels.Requirement`).
///
/// Values are kept sorted and de-duplicated, as upstream's parser keeps
/// them, so that equal requirements compare equal and print the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted, without duplicates; their number suits `operator`, and for
    /// `>`/`<` the one value is an integer.
    values: BTreeSet<String>,
}

impl Requirement {
    /// A validated requirement (upstream's `NewRequirement`): the key must be
    /// a qualified name, each value a valid label value, the number of values
    /// must suit the operator, and the value of `>`/`<` must be an integer.
    /// Every problem found is reported.
    ///
    /// ```
    /// use ecm_labels::{Operator, Requirement};
    /// let r = Requirement::new("tier", Operator::In, ["web", "edge"]).unwrap();
    /// assert_eq!(r.to_string(), "tier in (edge,web)");
    /// let err = Requirement::new("tier", Operator::In, Vec::<String>::new()).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
    /// );
    /// ```
    pub fn new<I, V>(key: impl Into<String>, operator: Operator, values: I) -> Result<Self, RequirementError>
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        let key = key.into();
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        let mut problems = Vec::new();
        let messages = is_qualified_name(&key);
        if !messages.is_empty() {
            problems.push(RequirementError::InvalidKey {
                key: key.clone(),
                messages,
            });
        }
        if !operator.takes(values.len()) {
            problems.push(RequirementError::ValueCount {
                operator,
                values: values.clone(),
            });
        }
        if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for (index, value) in values.iter().enumerate() {
                if value.parse::<i64>().is_err() {
                    problems.push(RequirementError::NotAnInteger {
                        index,
                        value: value.clone(),
                    });
                }
            }
        }
        for (index, value) in values.iter().enumerate() {
            let messages = is_valid_label_value(value);
            if !messages.is_empty() {
                problems.push(RequirementError::InvalidValue {
                    index,
                    key: key.clone(),
                    value: value.clone(),
                    messages,
                });
            }
        }
        match problems.len() {
            0 => Ok(Self {
                key,
                operator,
                values: values.into_iter().collect(),
            }),
            1 => Err(problems.remove(0)),
            _ => Err(RequirementError::Several(problems)),
        }
    }

    /// A `key=value` requirement without validation, for a label map the API
    /// server has already validated (upstream's `SelectorFromValidatedSet`).
    pub(crate) fn equals_unchecked(key: &str, value: &str) -> Self {
        Self {
            key: key.to_owned(),
            operator: Operator::Equals,
            values: BTreeSet::from([value.to_owned()]),
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted.
    pub fn values(&self) -> &BTreeSet<String> {
        &self.values
    }

    /// Whether `labels` satisfy this requirement (upstream's
    /// `Requirement.Matches`). A `>`/`<` requirement does not match a label
    /// whose value is not an integer.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                // `new` established that there is one integer value.
                let Some(want) = self.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// The string form, as upstream writes it: `x=a`, `x==a`, `x!=a`,
/// `x in (a,b)`, `x notin (a)`, `x`, `!x`, `x>1`, `x<1`; it parses back to
/// an equal requirement.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (before, after) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::In => (" in (", ")"),
            Operator::NotIn => (" notin (", ")"),
            Operator::Equals => ("=", ""),
            Operator::DoubleEquals => ("==", ""),
            Operator::NotEquals => ("!=", ""),
            Operator::GreaterThan => (">", ""),
            Operator::LessThan => ("<", ""),
        };
        f.write_str(before)?;
        for (i, value) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(value)?;
        }
        f.write_str(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn new_accepts_or_refuses_as_upstreams_constructor_table() {
        let long_key = "a".repeat(254);
        let cases: &[(&str, Operator, &[&str], bool)] = &[
            ("x", Operator::In, &[], false),
            ("x", Operator::NotIn, &[], false),
            ("x", Operator::In, &["foo"], true),
            ("x", Operator::NotIn, &["foo"], true),
            ("x", Operator::Exists, &[], true),
            ("x", Operator::DoesNotExist, &[], true),
            ("1foo", Operator::In, &["bar"], true),
            ("1234", Operator::In, &["bar"], true),
            ("y", Operator::GreaterThan, &["1"], true),
            ("z", Operator::LessThan, &["6"], true),
            ("foo", Operator::GreaterThan, &["bar"], false),
            ("barz", Operator::LessThan, &["blah"], false),
            (&long_key, Operator::Exists, &[], false),
            ("x", Operator::Exists, &["a"], false),
            ("x", Operator::Equals, &["a", "b"], false),
            ("x", Operator::Equals, &["not valid"], false),
            ("x", Operator::LessThan, &["1", "2"], false),
        ];
        for (key, operator, values, ok) in cases {
            let result = Requirement::new(*key, *operator, values.iter().copied());
            assert_eq!(result.is_ok(), *ok, "{key:?} {operator} {values:?}: {result:?}");
        }
    }

    #[test]
    fn errors_read_as_upstreams_field_errors() {
        let error = |key: &str, operator, values: &[&str]| {
            Requirement::new(key, operator, values.iter().copied())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error("x", Operator::Exists, &["a"]),
            r#"values: Invalid value: []string{"a"}: values set must be empty for exists and does not exist"#
        );
        assert_eq!(
            error("x", Operator::GreaterThan, &["a"]),
            r#"values[0]: Invalid value: "a": for 'Gt', 'Lt' operators, the value must be an integer"#
        );
        assert_eq!(
            error("x", Operator::Equals, &["a b"]),
            "values[0][x]: Invalid value: \"a b\": a valid label must be an empty string or consist of \
             alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character \
             (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
             '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        assert_eq!(
            error("/x", Operator::Equals, &["a", "b"]),
            r#"[key: Invalid value: "/x": prefix part must be non-empty, values: Invalid value: []string{"a", "b"}: exact-match compatibility requires one single value]"#
        );
        assert!(error("x", Operator::LessThan, &["1", "2"]).starts_with("values: Invalid value"));
    }

    #[test]
    fn go_quote_escapes_as_go_does() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
    }

    #[test]
    fn matches_follows_upstreams_requirement_table() {
        let r = |key, operator, values: &[&str]| Requirement::new(key, operator, values.iter().copied()).unwrap();
        let cases = [
            (
                labels(&[("x", "foo"), ("y", "baz")]),
                r("x", Operator::In, &["foo"]),
                true,
            ),
            (
                labels(&[("x", "foo"), ("y", "baz")]),
                r("y", Operator::NotIn, &["alpha"]),
                true,
            ),
            (
                labels(&[("x", "foo"), ("y", "baz")]),
                r("y", Operator::In, &["alpha"]),
                false,
            ),
            (labels(&[("y", "")]), r("x", Operator::NotIn, &[""]), true),
            (labels(&[("y", "")]), r("y", Operator::Exists, &[]), true),
            (labels(&[("y", "")]), r("x", Operator::DoesNotExist, &[]), true),
            (labels(&[("y", "")]), r("y", Operator::DoesNotExist, &[]), false),
            (labels(&[("y", "baz")]), r("x", Operator::In, &[""]), false),
            (labels(&[("z", "2")]), r("z", Operator::GreaterThan, &["1"]), true),
            (labels(&[("z", "v2")]), r("z", Operator::GreaterThan, &["1"]), false),
            (labels(&[("z", "0")]), r("z", Operator::LessThan, &["1"]), true),
            (labels(&[]), r("z", Operator::LessThan, &["1"]), false),
            (labels(&[("z", "a")]), r("z", Operator::DoubleEquals, &["a"]), true),
        ];
        for (set, requirement, want) in cases {
            assert_eq!(requirement.matches(&set), want, "{requirement} on {set:?}");
        }
    }

    #[test]
    fn display_writes_upstreams_string_form() {
        let r = |key, operator, values: &[&str]| {
            Requirement::new(key, operator, values.iter().copied())
                .unwrap()
                .to_string()
        };
        assert_eq!(r("x", Operator::In, &["def", "abc"]), "x in (abc,def)");
        assert_eq!(r("z", Operator::NotIn, &[""]), "z notin ()");
        assert_eq!(r("y", Operator::DoubleEquals, &["jkl"]), "y==jkl");
        assert_eq!(r("z", Operator::NotEquals, &["a"]), "z!=a");
        assert_eq!(r("z", Operator::DoesNotExist, &[]), "!z");
        assert_eq!(r("x", Operator::GreaterThan, &["2"]), "x>2");
        assert_eq!(r("y", Operator::LessThan, &["8"]), "y<8");
    }
}
