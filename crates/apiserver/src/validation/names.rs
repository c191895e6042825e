//! Name and identifier syntax checks of `k8s.io/apimachinery`.
//!
//! The checks of `pkg/util/validation` (qualified names, label values,
//! RFC 1123 / RFC 1035 names) are `ecm_labels::validation`'s, re-exported
//! here; path segment names (RBAC objects) are checked here.

pub(crate) use ecm_labels::validation::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value,
};

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
    fn path_segment_names_may_not_be_dots_or_contain_slashes_or_percents() {
        assert!(path_segment_errors("system:controller:x").is_empty());
        assert_eq!(path_segment_errors(".."), ["may not be '..'"]);
        assert_eq!(path_segment_errors("a/b%c"), ["may not contain '/'"]);
    }
}
