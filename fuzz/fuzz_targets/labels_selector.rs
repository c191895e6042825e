//! The label selector parser (`ecm-labels`) and the informer's conversion
//! of an API `LabelSelector`.
//!
//! Input, as text: the first line is a selector in string form; every
//! further line is a `matchLabels` entry `key=value` or a `matchExpressions`
//! item `key Operator value...`. The `matchLabels` entries are also the
//! labels matched against.
//!
//! Checks: no panic; a selector that parses prints to a string that parses
//! back to the same selector, matching the same labels; a `LabelSelector`
//! that converts prints to a string that parses back to the same selector.
#![no_main]

use std::collections::BTreeMap;

use ecm_informer::selector::from_label_selector;
use ecm_labels::Selector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use libfuzzer_sys::fuzz_target;

fn check_round_trip(selector: &Selector, labels: &BTreeMap<String, String>) {
    let text = selector.to_string();
    let again = Selector::parse(&text)
        .unwrap_or_else(|err| panic!("{selector:?} prints as {text:?}, which does not parse: {err}"));
    assert_eq!(&again, selector, "{text:?} parses to another selector");
    assert_eq!(again.matches(labels), selector.matches(labels));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();

    let mut match_labels = BTreeMap::new();
    let mut expressions = Vec::new();
    for line in lines {
        if let Some((key, value)) = line.split_once('=') {
            match_labels.insert(key.to_owned(), value.to_owned());
        } else {
            let mut words = line.split(' ');
            let key = words.next().unwrap_or_default().to_owned();
            let operator = words.next().unwrap_or_default().to_owned();
            let values: Vec<String> = words.map(str::to_owned).collect();
            expressions.push(LabelSelectorRequirement {
                key,
                operator,
                values: (!values.is_empty()).then_some(values),
            });
        }
    }

    if let Ok(selector) = Selector::parse(first) {
        check_round_trip(&selector, &match_labels);
    }
    let api = LabelSelector {
        match_labels: (!match_labels.is_empty()).then(|| match_labels.clone()),
        match_expressions: (!expressions.is_empty()).then_some(expressions),
    };
    if let Ok(selector) = from_label_selector(&api) {
        check_round_trip(&selector, &match_labels);
    }
});
