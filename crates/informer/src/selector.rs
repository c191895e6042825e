//! Label selectors: the full Kubernetes syntax, implemented once.
//!
//! A [`Selector`] is a conjunction of [`Requirement`]s on an object's labels,
//! as in apimachinery's `labels.Selector`. It is built from any of the three
//! forms a selector takes in the API:
//!
//! - a [`LabelSelector`] (`matchLabels` + `matchExpressions`), as in
//!   Deployments and NetworkPolicies: [`Selector::from_label_selector`];
//! - a plain map where every key must equal its value, as a Service's
//!   `spec.selector`: [`Selector::from_labels`];
//! - the string form used by `kubectl -l` and the `labelSelector` query
//!   parameter (`a=b,c!=d,e in (x,y),!f`): [`Selector::parse`] / [`str::parse`].
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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Why a selector could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label key is not a valid qualified name (`[prefix/]name`).
    #[error("invalid label key {key:?}: {reason}")]
    InvalidKey {
        /// The offending key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A value is not a valid label value.
    #[error("invalid label value {value:?} for key {key:?}: {reason}")]
    InvalidValue {
        /// The key the value belongs to.
        key: String,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The operator was given the wrong number of values (`in`/`notin`
    /// need at least one, `=`/`!=` exactly one, exists/does-not-exist none).
    #[error("operator {operator} on key {key:?} cannot take {count} value(s)")]
    ValueCount {
        /// The key of the requirement.
        key: String,
        /// The operator of the requirement.
        operator: Operator,
        /// How many values were given.
        count: usize,
    },
    /// A `matchExpressions` operator other than `In`, `NotIn`, `Exists` and
    /// `DoesNotExist`.
    #[error("{operator:?} is not a valid label selector operator (key {key:?})")]
    UnknownOperator {
        /// The key of the expression.
        key: String,
        /// The operator as written.
        operator: String,
    },
    /// The string form could not be parsed.
    #[error("unable to parse selector {input:?}: {message}")]
    Parse {
        /// The whole input.
        input: String,
        /// What was found and what was expected instead.
        message: String,
    },
}

/// How a [`Requirement`] relates a label to its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// The label is present and equals the single value (`key=value`,
    /// `key==value`, or a `matchLabels` entry).
    Equals,
    /// The label is absent or differs from the single value (`key!=value`).
    NotEquals,
    /// The label is present and its value is one of the values
    /// (`key in (a,b)`).
    In,
    /// The label is absent or its value is none of the values
    /// (`key notin (a,b)`).
    NotIn,
    /// The label is present, whatever its value (`key`).
    Exists,
    /// The label is absent (`!key`).
    DoesNotExist,
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Equals => "=",
            Self::NotEquals => "!=",
            Self::In => "in",
            Self::NotIn => "notin",
            Self::Exists => "exists",
            Self::DoesNotExist => "!",
        })
    }
}

/// One condition on one label key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and de-duplicated, as apimachinery keeps them.
    values: BTreeSet<String>,
}

impl Requirement {
    /// A validated requirement: the key must be a qualified name, each value a
    /// valid label value, and the number of values must suit the operator.
    ///
    /// ```
    /// use ecm_informer::selector::{Operator, Requirement};
    /// let r = Requirement::new("tier", Operator::In, ["web", "edge"]).unwrap();
    /// assert_eq!(r.to_string(), "tier in (edge,web)");
    /// assert!(Requirement::new("tier", Operator::In, Vec::<String>::new()).is_err());
    /// ```
    pub fn new<I, V>(key: impl Into<String>, operator: Operator, values: I) -> Result<Self, SelectorError>
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        let key = key.into();
        validate_key(&key)?;
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        let count_ok = match operator {
            Operator::In | Operator::NotIn => !values.is_empty(),
            Operator::Equals | Operator::NotEquals => values.len() == 1,
            Operator::Exists | Operator::DoesNotExist => values.is_empty(),
        };
        if !count_ok {
            return Err(SelectorError::ValueCount {
                key,
                operator,
                count: values.len(),
            });
        }
        for value in &values {
            validate_value(&key, value)?;
        }
        Ok(Self {
            key,
            operator,
            values: values.into_iter().collect(),
        })
    }

    /// A `key=value` requirement without validation, for selectors the API
    /// server has already validated (a Service's `spec.selector`).
    fn equals_unchecked(key: &str, value: &str) -> Self {
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

    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let single = || self.values.iter().next().map_or("", String::as_str);
        let list = || self.values.iter().map(String::as_str).collect::<Vec<_>>().join(",");
        match self.operator {
            Operator::Equals => write!(f, "{}={}", self.key, single()),
            Operator::NotEquals => write!(f, "{}!={}", self.key, single()),
            Operator::In => write!(f, "{} in ({})", self.key, list()),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, list()),
            Operator::Exists => f.write_str(&self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}

/// A label selector: all of its requirements must hold.
///
/// Requirements are kept sorted by key (stable), as apimachinery does, so
/// that [`Display`](fmt::Display) gives a canonical string. See the
/// [module documentation](self) for the ways to build one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    /// Set only by [`Selector::nothing`]; `requirements` is then empty.
    nothing: bool,
}

impl Selector {
    /// The selector that matches every object (no requirements).
    pub fn everything() -> Self {
        Self::default()
    }

    /// The selector that matches no object. This is what apimachinery makes
    /// of a missing (`nil`) `LabelSelector`. Its string form is empty, like
    /// apimachinery's, so it does not survive a round trip through a string.
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// A selector from requirements, sorted by key.
    pub fn from_requirements(requirements: impl IntoIterator<Item = Requirement>) -> Self {
        let mut requirements: Vec<Requirement> = requirements.into_iter().collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Self {
            requirements,
            nothing: false,
        }
    }

    /// A selector requiring every key of `labels` to equal its value: the
    /// meaning of a Service's `spec.selector` (apimachinery's
    /// `SelectorFromSet` / `AsSelectorPreValidated`). The map is not
    /// validated: it comes from an object the API server accepted. An empty
    /// map gives the selector that matches everything.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use ecm_informer::Selector;
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

    /// A selector from a [`LabelSelector`] (apimachinery's
    /// `LabelSelectorAsSelector`). One with neither `matchLabels` nor
    /// `matchExpressions` matches everything. For an optional field, see
    /// [`Selector::from_optional_label_selector`].
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use ecm_informer::Selector;
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
    /// assert_eq!(Selector::from_label_selector(&ls).unwrap().to_string(), "app=web,tier notin (batch)");
    /// ```
    pub fn from_label_selector(selector: &LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::new(key.as_str(), Operator::Equals, [value.as_str()])?);
        }
        for expr in selector.match_expressions.iter().flatten() {
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::UnknownOperator {
                        key: expr.key.clone(),
                        operator: other.to_owned(),
                    });
                }
            };
            let values = expr.values.iter().flatten().map(String::as_str);
            requirements.push(Requirement::new(expr.key.as_str(), operator, values)?);
        }
        Ok(Self::from_requirements(requirements))
    }

    /// Like [`Selector::from_label_selector`], with `None` meaning
    /// [`Selector::nothing`], as apimachinery treats a `nil` selector.
    pub fn from_optional_label_selector(selector: Option<&LabelSelector>) -> Result<Self, SelectorError> {
        selector.map_or_else(|| Ok(Self::nothing()), Self::from_label_selector)
    }

    /// Parses the string form (apimachinery's `labels.Parse`):
    /// comma-separated requirements, each one of `key`, `!key`,
    /// `key=value`, `key==value`, `key!=value`, `key in (v1,v2)` and
    /// `key notin (v1,v2)`. Whitespace between tokens is ignored; an empty
    /// string is the selector that matches everything. Keys and values are
    /// validated.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        Parser::new(input).parse()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether this selector matches everything (it has no requirements and
    /// is not [`Selector::nothing`]).
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
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&LabelSelector> for Selector {
    type Error = SelectorError;

    fn try_from(selector: &LabelSelector) -> Result<Self, Self::Error> {
        Self::from_label_selector(selector)
    }
}

impl From<&BTreeMap<String, String>> for Selector {
    fn from(labels: &BTreeMap<String, String>) -> Self {
        Self::from_labels(labels)
    }
}

// ---------------------------------------------------------------------------
// Validation (apimachinery's IsQualifiedName and IsValidLabelValue).

const NAME_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, possibly empty.
fn is_label_token(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return true;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain: dot-separated lowercase labels.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= SUBDOMAIN_MAX
        && s.split('.').all(|label| {
            let bytes = label.as_bytes();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    (first.is_ascii_lowercase() || first.is_ascii_digit())
                        && (last.is_ascii_lowercase() || last.is_ascii_digit())
                        && bytes
                            .iter()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                }
                _ => false,
            }
        })
}

fn validate_key(key: &str) -> Result<(), SelectorError> {
    let invalid = |reason| {
        Err(SelectorError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    let name = match key.split_once('/') {
        None => key,
        Some((_, name)) if name.contains('/') => return invalid("a qualified name has at most one '/'"),
        Some(("", _)) => return invalid("prefix part must be non-empty"),
        Some((prefix, _)) if !is_dns1123_subdomain(prefix) => {
            return invalid("prefix part must be a DNS-1123 subdomain");
        }
        Some((_, name)) => name,
    };
    if name.is_empty() {
        return invalid("name part must be non-empty");
    }
    if name.len() > NAME_MAX {
        return invalid("name part must be no more than 63 characters");
    }
    if !is_label_token(name) {
        return invalid(
            "name part must consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

fn validate_value(key: &str, value: &str) -> Result<(), SelectorError> {
    let invalid = |reason| {
        Err(SelectorError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        })
    };
    if value.len() > NAME_MAX {
        return invalid("must be no more than 63 characters");
    }
    if !is_label_token(value) {
        return invalid(
            "must be empty or consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character",
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The string form: a lexer and a recursive-descent parser following
// apimachinery's grammar, including its corner cases (`key=` has the empty
// value; `key in ()` has the single empty value; `in`/`notin` are plain
// identifiers where a value is expected).

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    End,
    Ident(&'a str),
    In,
    NotIn,
    Bang,
    Equals,
    DoubleEquals,
    NotEquals,
    Greater,
    Less,
    OpenParen,
    CloseParen,
    Comma,
}

impl Token<'_> {
    /// The token as the user wrote it, for error messages.
    fn describe(&self) -> String {
        match self {
            Token::End => "end of string".to_owned(),
            Token::Ident(s) => format!("identifier {s:?}"),
            Token::In => "'in'".to_owned(),
            Token::NotIn => "'notin'".to_owned(),
            Token::Bang => "'!'".to_owned(),
            Token::Equals => "'='".to_owned(),
            Token::DoubleEquals => "'=='".to_owned(),
            Token::NotEquals => "'!='".to_owned(),
            Token::Greater => "'>'".to_owned(),
            Token::Less => "'<'".to_owned(),
            Token::OpenParen => "'('".to_owned(),
            Token::CloseParen => "')'".to_owned(),
            Token::Comma => "','".to_owned(),
        }
    }

    /// Where a value is expected, the keywords are ordinary identifiers.
    fn into_value(self) -> Self {
        match self {
            Token::In => Token::Ident("in"),
            Token::NotIn => Token::Ident("notin"),
            other => other,
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Self { input, pos: 0 }
    }

    /// Lexes the token at `pos`, returning it and the position after it.
    fn lex(&self, mut pos: usize) -> (Token<'a>, usize) {
        let rest = &self.input[pos..];
        let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        pos += rest.len() - trimmed.len();
        let Some(c) = trimmed.chars().next() else {
            return (Token::End, pos);
        };
        if is_special(c) {
            let two = trimmed.get(..2);
            return match (c, two) {
                (_, Some("!=")) => (Token::NotEquals, pos + 2),
                (_, Some("==")) => (Token::DoubleEquals, pos + 2),
                ('!', _) => (Token::Bang, pos + 1),
                ('=', _) => (Token::Equals, pos + 1),
                ('(', _) => (Token::OpenParen, pos + 1),
                (')', _) => (Token::CloseParen, pos + 1),
                (',', _) => (Token::Comma, pos + 1),
                ('>', _) => (Token::Greater, pos + 1),
                _ => (Token::Less, pos + 1),
            };
        }
        let len = trimmed
            .find(|c: char| is_special(c) || matches!(c, ' ' | '\t' | '\r' | '\n'))
            .unwrap_or(trimmed.len());
        let word = &trimmed[..len];
        let token = match word {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Ident(word),
        };
        (token, pos + len)
    }

    fn peek(&self) -> Token<'a> {
        self.lex(self.pos).0
    }

    fn next(&mut self) -> Token<'a> {
        let (token, pos) = self.lex(self.pos);
        self.pos = pos;
        token
    }

    fn error<T>(&self, found: &Token<'_>, expected: &str) -> Result<T, SelectorError> {
        Err(SelectorError::Parse {
            input: self.input.to_owned(),
            message: format!("found {}, expected: {expected}", found.describe()),
        })
    }

    fn parse(mut self) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            match self.peek().into_value() {
                Token::End => break,
                Token::Ident(_) | Token::Bang => requirements.push(self.requirement()?),
                other => return self.error(&other, "'!', identifier, or end of string"),
            }
            match self.next().into_value() {
                Token::End => break,
                Token::Comma => match self.peek().into_value() {
                    Token::Ident(_) | Token::Bang => {}
                    other => return self.error(&other, "identifier after ','"),
                },
                other => return self.error(&other, "',' or end of string"),
            }
        }
        Ok(Selector::from_requirements(requirements))
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let mut negated = false;
        let mut token = self.next().into_value();
        if token == Token::Bang {
            negated = true;
            token = self.next().into_value();
        }
        let Token::Ident(key) = token else {
            return self.error(&token, "identifier");
        };
        validate_key(key)?;
        if negated {
            return Requirement::new(key, Operator::DoesNotExist, Vec::<String>::new());
        }
        let operator = match self.peek() {
            Token::End | Token::Comma => {
                return Requirement::new(key, Operator::Exists, Vec::<String>::new());
            }
            Token::Equals | Token::DoubleEquals => Operator::Equals,
            Token::NotEquals => Operator::NotEquals,
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            other => return self.error(&other, "'=', '==', '!=', 'in' or 'notin'"),
        };
        self.next();
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => vec![self.exact_value()?],
        };
        Requirement::new(key, operator, values)
    }

    fn exact_value(&mut self) -> Result<String, SelectorError> {
        match self.peek().into_value() {
            Token::End | Token::Comma => Ok(String::new()),
            Token::Ident(value) => {
                self.next();
                Ok(value.to_owned())
            }
            other => self.error(&other, "identifier"),
        }
    }

    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        match self.next() {
            Token::OpenParen => {}
            other => return self.error(&other, "'('"),
        }
        let mut values = Vec::new();
        // Whether the last token read was a value (as opposed to '(' or ',').
        let mut after_value = false;
        loop {
            match self.next().into_value() {
                Token::CloseParen => {
                    if !after_value {
                        // `in ()` and `in (a,)`: apimachinery reads the
                        // missing value as the empty string.
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                Token::Comma => {
                    if !after_value {
                        values.push(String::new());
                    }
                    after_value = false;
                }
                Token::Ident(value) if !after_value => {
                    values.push(value.to_owned());
                    after_value = true;
                }
                other => return self.error(&other, "',', ')' or identifier"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parse_should_accept_every_operator_and_canonicalise() {
        let cases = [
            ("", ""),
            ("x=a", "x=a"),
            ("x==a", "x=a"),
            ("x!=a", "x!=a"),
            ("x in (b,a)", "x in (a,b)"),
            ("x notin (a)", "x notin (a)"),
            ("x", "x"),
            ("!x", "!x"),
            (" x = a , y ", "x=a,y"),
            ("y,x=a", "x=a,y"),
            ("x=", "x="),
            ("x=,y=b", "x=,y=b"),
            ("x in ()", "x in ()"),
            ("x in (a,)", "x in (,a)"),
            ("x=in", "x=in"),
            ("x in (in,notin)", "x in (in,notin)"),
            ("example.com/app=web", "example.com/app=web"),
            ("x in(a),y notin(b)", "x in (a),y notin (b)"),
        ];
        for (input, canonical) in cases {
            let selector = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(selector.to_string(), canonical, "input {input:?}");
            // The canonical form parses back to the same selector.
            assert_eq!(Selector::parse(canonical).unwrap(), selector, "round trip of {input:?}");
        }
    }

    #[test]
    fn parse_should_reject_malformed_input() {
        for input in [
            "x=a=b",
            "x,",
            ",x",
            "x in a",
            "x in (a",
            "x notin",
            "!x=a",
            "x>1",
            "x<1",
            "x=(a)",
            "(x)",
            "x y",
            "x in (a b)",
            "=a",
            "x!",
            "a/b/c=d",
            "-x=a",
            "x=-a",
            "x in (a,-b)",
            "UPPER.com/x=a",
        ] {
            assert!(Selector::parse(input).is_err(), "{input:?} should not parse");
        }
    }

    #[test]
    fn matches_should_follow_apimachinery_semantics() {
        let l = labels(&[("app", "web"), ("tier", "edge"), ("empty", "")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app=db", false),
            ("missing=x", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("tier in (edge,core)", true),
            ("tier in (core)", false),
            ("missing in (x)", false),
            ("tier notin (core)", true),
            ("tier notin (edge)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("empty=", true),
            ("empty in ()", true),
            ("app=web,tier=edge", true),
            ("app=web,tier=core", false),
        ];
        for (input, expected) in cases {
            assert_eq!(Selector::parse(input).unwrap().matches(&l), expected, "{input:?}");
        }
    }

    #[test]
    fn nothing_should_match_nothing_and_empty_should_match_everything() {
        assert!(!Selector::nothing().matches(&BTreeMap::new()));
        assert!(Selector::nothing().is_nothing());
        assert!(Selector::everything().matches(&labels(&[("a", "b")])));
        assert!(Selector::from_labels(&BTreeMap::new()).is_everything());
        assert!(
            Selector::from_label_selector(&LabelSelector::default())
                .unwrap()
                .is_everything()
        );
        assert!(Selector::from_optional_label_selector(None).unwrap().is_nothing());
    }

    #[test]
    fn from_labels_should_require_every_pair() {
        let selector = Selector::from_labels(&labels(&[("app", "web"), ("tier", "edge")]));
        assert!(selector.matches(&labels(&[("app", "web"), ("tier", "edge"), ("x", "y")])));
        assert!(!selector.matches(&labels(&[("app", "web")])));
        assert_eq!(selector.to_string(), "app=web,tier=edge");
    }

    #[test]
    fn from_label_selector_should_combine_labels_and_expressions() {
        let expr = |key: &str, operator: &str, values: Option<Vec<&str>>| LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: values.map(|v| v.into_iter().map(str::to_owned).collect()),
        };
        let ls = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                expr("tier", "In", Some(vec!["edge", "core"])),
                expr("canary", "DoesNotExist", None),
                expr("zone", "Exists", Some(vec![])),
                expr("env", "NotIn", Some(vec!["dev"])),
            ]),
        };
        let selector = Selector::try_from(&ls).unwrap();
        assert_eq!(
            selector.to_string(),
            "app=web,!canary,env notin (dev),tier in (core,edge),zone"
        );
        assert!(selector.matches(&labels(&[("app", "web"), ("tier", "core"), ("zone", "a")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "core")])));

        let bad_operator = LabelSelector {
            match_expressions: Some(vec![expr("a", "Gt", Some(vec!["1"]))]),
            ..Default::default()
        };
        assert!(matches!(
            Selector::try_from(&bad_operator),
            Err(SelectorError::UnknownOperator { .. })
        ));
        let exists_with_values = LabelSelector {
            match_expressions: Some(vec![expr("a", "Exists", Some(vec!["1"]))]),
            ..Default::default()
        };
        assert!(matches!(
            Selector::try_from(&exists_with_values),
            Err(SelectorError::ValueCount { .. })
        ));
        let in_without_values = LabelSelector {
            match_expressions: Some(vec![expr("a", "In", None)]),
            ..Default::default()
        };
        assert!(matches!(
            Selector::try_from(&in_without_values),
            Err(SelectorError::ValueCount { .. })
        ));
        let bad_value = LabelSelector {
            match_labels: Some(labels(&[("a", "not valid")])),
            ..Default::default()
        };
        assert!(matches!(
            Selector::try_from(&bad_value),
            Err(SelectorError::InvalidValue { .. })
        ));
    }

    #[test]
    fn validation_should_follow_qualified_name_rules() {
        assert!(validate_key("a").is_ok());
        assert!(validate_key("kubernetes.io/service-name").is_ok());
        assert!(validate_key("A_b.c-D").is_ok());
        assert!(validate_key(&"a".repeat(63)).is_ok());
        assert!(validate_key(&"a".repeat(64)).is_err());
        assert!(validate_key("/a").is_err());
        assert!(validate_key("a/").is_err());
        assert!(validate_key("Example.com/a").is_err());
        assert!(validate_key("a_").is_err());
        assert!(validate_value("k", "").is_ok());
        assert!(validate_value("k", "v1.2-3_x").is_ok());
        assert!(validate_value("k", &"v".repeat(64)).is_err());
        assert!(validate_value("k", "a b").is_err());
    }
}
