//! Unknown fields by kind, and what each `fieldValidation` does with them.

use serde_json::json;

use super::*;

fn pod(spec: &Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

#[test]
fn unknown_fields_are_named_by_their_path_in_order() {
    let cases = [
        (
            "a typo in a container",
            "v1",
            "Pod",
            pod(
                &json!({"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i", "imagePullPolicyy": "Always"}]}),
            ),
            vec!["spec.containers[1].imagePullPolicyy"],
        ),
        (
            "several, at any depth, in key order",
            "apps/v1",
            "Deployment",
            json!(
                r#"{
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "labelz": {"a": "b"}},
                "spec": {
                    "replicas": 1, "foo": true,
                    "selector": {"matchLabels": {"app": "d"}},
                    "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
                },
                "extra": 1
            }"#
            ),
            vec!["extra", "metadata.labelz", "spec.foo"],
        ),
        (
            "map values and free-form fields are never unknown",
            "v1",
            "ConfigMap",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"any": "thing"}}, "data": {"anything": "goes"}}),
            vec![],
        ),
        (
            "a clean object",
            "discovery.k8s.io/v1",
            "EndpointSlice",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]}),
            vec![],
        ),
        (
            "a value of the wrong type is left to validation, the rest is checked",
            "v1",
            "Pod",
            pod(&json!({"containers": "not a list", "foo": 1})),
            vec!["spec.foo"],
        ),
        (
            "kinds without a type (custom resources) take anything",
            "example.com/v1",
            "Widget",
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"foo": 1}}),
            vec![],
        ),
        (
            "a missing or wrong apiVersion and kind are not this check's business",
            "v1",
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {"containers": [], "bar": 1}}),
            vec!["spec.bar"],
        ),
    ];
    for (what, api_version, kind, body, expected) in cases {
        // A string is a document as sent.
        let body = match &body {
            Value::String(sent) => serde_json::from_str(sent).unwrap(),
            _ => body,
        };
        let warnings = FieldValidation::Warn.check(api_version, kind, &body).expect(what);
        let expected: Vec<String> = expected.iter().map(|p| format!("unknown field \"{p}\"")).collect();
        assert_eq!(warnings, expected, "{what}");
    }
}

#[test]
fn strict_fails_with_upstream_message_ignore_says_nothing() {
    let raw = br#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [], "foo": 1, "bar": 2}}"#;
    let body: Value = serde_json::from_slice(raw).unwrap();
    let err = FieldValidation::Strict.check("v1", "Pod", &body).unwrap_err();
    assert_eq!(err.code, 400);
    assert_eq!(err.reason, "BadRequest");
    assert_eq!(
        err.message,
        "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.bar\", unknown field \"spec.foo\""
    );
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spek": {}});
    let err = FieldValidation::Strict
        .check("apps/v1", "Deployment", &deployment)
        .unwrap_err();
    assert!(
        err.message
            .starts_with("Deployment in version \"v1\" cannot be handled as a Deployment"),
        "{}",
        err.message
    );
    assert_eq!(
        FieldValidation::Ignore.check("v1", "Pod", &body).unwrap(),
        Vec::<String>::new()
    );
    let clean = pod(&json!({"containers": []}));
    assert_eq!(
        FieldValidation::Strict.check("v1", "Pod", &clean).unwrap(),
        Vec::<String>::new(),
        "strict with nothing unknown passes"
    );
}

#[test]
fn the_parameter_defaults_to_warn_and_rejects_other_values() {
    for (value, expected) in [
        (None, FieldValidation::Warn),
        (Some(""), FieldValidation::Warn),
        (Some("Warn"), FieldValidation::Warn),
        (Some("Strict"), FieldValidation::Strict),
        (Some("Ignore"), FieldValidation::Ignore),
    ] {
        assert_eq!(
            FieldValidation::parse(value, "CreateOptions").unwrap(),
            expected,
            "{value:?}"
        );
    }
    let err = FieldValidation::parse(Some("strict"), "UpdateOptions").unwrap_err();
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        err.message,
        "UpdateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"strict\": \
         supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
}

#[test]
fn a_patch_is_judged_by_the_unknown_fields_it_adds() {
    let before = pod(&json!({"containers": [], "old": 1}));
    let after = pod(&json!({"containers": [], "old": 1, "new": 2}));
    assert_eq!(
        FieldValidation::Warn
            .check_patched("v1", "Pod", &before, &after)
            .unwrap(),
        ["unknown field \"spec.new\""],
        "one stored before (without Strict) is not reported again"
    );
    let err = FieldValidation::Strict
        .check_patched("v1", "Pod", &before, &after)
        .unwrap_err();
    assert!(
        err.message
            .ends_with("strict decoding error: unknown field \"spec.new\""),
        "{}",
        err.message
    );
    assert_eq!(
        FieldValidation::Strict
            .check_patched("v1", "Pod", &before, &before)
            .unwrap(),
        Vec::<String>::new(),
        "a patch adding nothing unknown passes, whatever was stored"
    );
}
