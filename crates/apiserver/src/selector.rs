//! Label and field selectors, parsed as `k8s.io/apimachinery` parses them.
//!
//! Label selectors support the full syntax: `a=b`, `a==b`, `a!=b`,
//! `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, joined by commas.
//! Field selectors support `=`, `==` and `!=` with `\` escapes.

use serde_json::{Map, Value};

/// A selector that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector text is malformed.
    #[error("unable to parse requirement: {0}")]
    Label(String),
    /// The field selector text is malformed.
    #[error("invalid selector: '{0}'; can't understand '{1}'")]
    Field(String, String),
    /// The field selector names a field the resource does not support.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => ("==", 2),
                    ('!', Some('=')) => ("!=", 2),
                    ('=', _) => ("=", 1),
                    ('!', _) => ("!", 1),
                    ('<', _) => ("<", 1),
                    _ => (">", 1),
                };
                tokens.push(Token::Op(op));
                i += len;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"(),=!<>".contains(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(Token::Ident(word));
            }
        }
    }
    tokens
}

impl LabelSelector {
    /// Parses a selector in the `labelSelector` query syntax.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let tokens = tokenize(text);
        let err = |m: &str| SelectorError::Label(m.to_owned());
        let mut requirements = Vec::new();
        let mut pos = 0;
        while pos < tokens.len() {
            let negated = tokens.get(pos) == Some(&Token::Op("!"));
            if negated {
                pos += 1;
            }
            let Some(Token::Ident(key)) = tokens.get(pos) else {
                return Err(err("found unexpected token, expected: identifier"));
            };
            let key = key.clone();
            validate_label_key(&key).map_err(|m| SelectorError::Label(format!("invalid label key \"{key}\": {m}")))?;
            pos += 1;
            if negated {
                requirements.push(Requirement {
                    key,
                    op: Op::DoesNotExist,
                    values: vec![],
                });
            } else {
                match tokens.get(pos) {
                    None | Some(Token::Comma) => requirements.push(Requirement {
                        key,
                        op: Op::Exists,
                        values: vec![],
                    }),
                    Some(Token::Op(op @ ("=" | "==" | "!=" | "<" | ">"))) => {
                        let op = match *op {
                            "!=" => Op::NotEq,
                            "<" => Op::Lt,
                            ">" => Op::Gt,
                            _ => Op::Eq,
                        };
                        pos += 1;
                        let value = match tokens.get(pos) {
                            Some(Token::Ident(v)) => {
                                pos += 1;
                                v.clone()
                            }
                            None | Some(Token::Comma) => String::new(),
                            _ => return Err(err("found unexpected token, expected: identifier")),
                        };
                        if matches!(op, Op::Gt | Op::Lt) && value.parse::<i64>().is_err() {
                            return Err(SelectorError::Label(format!(
                                "for 'Gt', 'Lt' operators, the value must be an integer, got {value:?}"
                            )));
                        }
                        requirements.push(Requirement {
                            key,
                            op,
                            values: vec![value],
                        });
                    }
                    Some(Token::Ident(word)) if word == "in" || word == "notin" => {
                        let op = if word == "in" { Op::In } else { Op::NotIn };
                        pos += 1;
                        if tokens.get(pos) != Some(&Token::Open) {
                            return Err(err("found unexpected token, expected: '('"));
                        }
                        pos += 1;
                        let mut values = Vec::new();
                        loop {
                            match tokens.get(pos) {
                                Some(Token::Ident(v)) => {
                                    values.push(v.clone());
                                    pos += 1;
                                }
                                Some(Token::Comma) => {
                                    if !matches!(tokens.get(pos - 1), Some(Token::Ident(_))) {
                                        values.push(String::new());
                                    }
                                    pos += 1;
                                }
                                Some(Token::Close) => {
                                    if matches!(tokens.get(pos - 1), Some(Token::Comma)) {
                                        values.push(String::new());
                                    }
                                    pos += 1;
                                    break;
                                }
                                _ => return Err(err("found unexpected token, expected: ',' or ')'")),
                            }
                        }
                        values.sort();
                        values.dedup();
                        requirements.push(Requirement { key, op, values });
                    }
                    _ => return Err(err("found unexpected token, expected: in, notin, =, ==, !=, gt, lt")),
                }
            }
            match tokens.get(pos) {
                None => break,
                Some(Token::Comma) => {
                    pos += 1;
                    if pos == tokens.len() {
                        return Err(err("found '', expected: identifier after ','"));
                    }
                }
                _ => return Err(err("found unexpected token, expected: ','")),
            }
        }
        Ok(Self { requirements })
    }

    /// Whether the selector has no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` (a JSON map of strings, or none) satisfy the selector.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match r.op {
                Op::Eq | Op::In => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::NotEq | Op::NotIn => value.is_none_or(|v| r.values.iter().all(|x| x != v)),
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
                Op::Gt | Op::Lt => {
                    let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                        return false;
                    };
                    let Some(want) = r.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                        return false;
                    };
                    if r.op == Op::Gt { have > want } else { have < want }
                }
            }
        })
    }
}

/// Checks a label key: optional DNS-subdomain prefix and `/`, then a name
/// of at most 63 characters of alphanumerics, `-`, `_`, `.`, starting and
/// ending alphanumeric. Returns the upstream message on failure.
pub(crate) fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err("prefix part must be non-empty".into());
        }
        if !crate::validation::names::is_dns1123_subdomain(prefix) {
            return Err("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into());
        }
    }
    if name.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Err("name part must be no more than 63 characters".into());
    }
    if !crate::validation::names::is_qualified_name_part(name) {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into());
    }
    Ok(())
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
    fn label_selector_full_syntax() {
        let l = labels(&json!({"app": "web", "tier": "front", "n": "5"}));
        let yes = [
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
        ];
        let no = [
            "app=db",
            "app!=web",
            "app in (db)",
            "tier notin (front)",
            "missing",
            "!app",
            "n>5",
            "n<5",
            "app=web,tier=back",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(Some(&l)), "{s} should match");
        }
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches(Some(&l)),
                "{s} should not match"
            );
        }
        assert!(LabelSelector::parse("").unwrap().matches(None));
        assert!(
            LabelSelector::parse("a=")
                .unwrap()
                .matches(Some(&labels(&json!({"a": ""}))))
        );
    }

    #[test]
    fn label_selector_rejects_garbage() {
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
