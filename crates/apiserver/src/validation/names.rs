//! Name and identifier syntax checks of `k8s.io/apimachinery/pkg/util/validation`.

/// Message of an invalid RFC 1123 label.
pub(crate) const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
/// Message of an invalid RFC 1123 subdomain.
pub(crate) const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
/// Message of an invalid RFC 1035 label.
pub(crate) const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
/// Message of an invalid label value.
pub(crate) const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` of any length.
fn label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

/// Labels joined by dots, at most 253 characters.
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && subdomain_shape(s)
}

fn subdomain_shape(s: &str) -> bool {
    s.split('.').all(label_shape)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
pub(crate) fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// Messages for a qualified name (`prefix/name`), empty when valid.
pub(crate) fn qualified_name_errors(s: &str) -> Vec<String> {
    match crate::selector::validate_label_key(s) {
        Ok(()) => Vec::new(),
        Err(m) => vec![m],
    }
}

/// Messages for a label value, empty when valid.
pub(crate) fn label_value_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !s.is_empty() && !is_qualified_name_part(s) {
        errs.push(LABEL_VALUE_MSG.to_owned());
    }
    errs
}

/// Messages for an RFC 1123 label, empty when valid.
pub(crate) fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !label_shape(s) {
        errs.push(DNS1123_LABEL_MSG.to_owned());
    }
    errs
}

/// Messages for an RFC 1123 subdomain, empty when valid.
pub(crate) fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_owned());
    }
    if !subdomain_shape(s) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_owned());
    }
    errs
}

/// Messages for an RFC 1035 label, empty when valid.
pub(crate) fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !label_shape(s) || !s.as_bytes()[0].is_ascii_lowercase() {
        errs.push(DNS1035_LABEL_MSG.to_owned());
    }
    errs
}

/// Messages for a path segment name (RBAC objects), empty when valid.
pub(crate) fn path_segment_errors(s: &str) -> Vec<String> {
    if s == "." || s == ".." {
        return vec![format!("may not be '{s}'")];
    }
    s.chars()
        .filter(|c| *c == '/' || *c == '%')
        .take(1)
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc1123() {
        assert!(dns1123_label_errors("a-1").is_empty());
        assert!(!dns1123_label_errors("-a").is_empty());
        assert!(!dns1123_label_errors("A").is_empty());
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(dns1035_label_errors("a1").is_empty());
        assert!(!dns1035_label_errors("1a").is_empty());
        assert!(dns1123_label_errors(&"a".repeat(64)).len() == 1);
        assert!(label_value_errors("").is_empty());
        assert!(!label_value_errors("-x").is_empty());
    }
}
