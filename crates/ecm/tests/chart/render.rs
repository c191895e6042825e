//! Renders the Helm chart as `helm template` would, with `gtmpl-ng` (Go's
//! text/template and Sprig's functions) plus the three functions Helm adds
//! itself and the chart uses: `include`, `nindent` and `join`.
//!
//! Differences from Helm that do not matter here: `toYaml` orders map keys
//! differently, and there is no `.Capabilities` (the chart does not use it).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use gtmpl_ng::{Context, Func, FuncError, Template, Value};
use serde_json::Value as Json;

thread_local! {
    /// The named templates (`_helpers.tpl`) `include` renders from.
    static HELPERS: RefCell<String> = const { RefCell::new(String::new()) };
}

fn template() -> Template {
    let mut template = Template::default();
    template.add_funcs(gtmpl_ng::helm_functions::HELM_FUNCTIONS);
    template.add_funcs(&[
        ("include", include as Func),
        ("nindent", nindent as Func),
        ("join", join as Func),
    ]);
    template
}

fn error(message: String) -> FuncError {
    FuncError::Generic(message)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Nil => String::new(),
        other => other.to_string(),
    }
}

/// `include NAME CONTEXT`: a named template rendered to a string.
fn include(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::String(name), context] = args else {
        return Err(error(format!("include takes a name and a context, got {args:?}")));
    };
    let mut named = template();
    let helpers = HELPERS.with(|h| h.borrow().clone());
    named.parse(helpers).map_err(|e| error(e.to_string()))?;
    named
        .parse(format!("{{{{- template {name:?} . -}}}}"))
        .map_err(|e| error(e.to_string()))?;
    let rendered = named
        .render(&Context::from(context.clone()))
        .map_err(|e| error(e.to_string()))?;
    Ok(Value::from(rendered))
}

/// `nindent N TEXT`: a newline, then TEXT with every line indented by N.
fn nindent(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::Number(n), body] = args else {
        return Err(error(format!("nindent takes a width and a text, got {args:?}")));
    };
    let pad = " ".repeat(n.as_i64().unwrap_or(0).max(0) as usize);
    let indented: Vec<String> = text(body).lines().map(|line| format!("{pad}{line}")).collect();
    Ok(Value::from(format!("\n{}", indented.join("\n"))))
}

/// `join SEPARATOR LIST`.
fn join(args: &[Value]) -> Result<Value, FuncError> {
    let [separator, Value::Array(items)] = args else {
        return Err(error(format!("join takes a separator and a list, got {args:?}")));
    };
    let items: Vec<String> = items.iter().map(text).collect();
    Ok(Value::from(items.join(&text(separator))))
}

fn to_value(json: Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::from(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or_default()),
        },
        Json::String(s) => Value::from(s),
        Json::Array(items) => Value::Array(items.into_iter().map(to_value).collect()),
        Json::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, to_value(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// Helm's values merge: maps merge key by key, anything else replaces.
fn merge(base: &mut Json, overrides: &Json) {
    match (base, overrides) {
        (Json::Object(base), Json::Object(overrides)) => {
            for (key, value) in overrides {
                merge(base.entry(key.clone()).or_insert(Json::Null), value);
            }
        }
        (base, value) => *base = value.clone(),
    }
}

/// The chart's folder.
pub(crate) fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/ecm")
}

fn templates(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("templates are readable") {
        let path = entry.expect("readable").path();
        if path.is_dir() {
            files.extend(templates(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The chart's values.yaml with `overrides` merged in, in order.
pub(crate) fn values(overrides: &[Json]) -> Json {
    let text = fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml");
    let mut values: Json = serde_saphyr::from_str(&text).expect("values.yaml is YAML");
    for o in overrides {
        merge(&mut values, o);
    }
    values
}

/// A rendered chart: each template's output, by path under `templates/`.
pub(crate) struct Rendered {
    pub(crate) files: Vec<(String, String)>,
}

impl Rendered {
    /// Every non-empty manifest document (NOTES.txt left out), parsed.
    pub(crate) fn documents(&self) -> Vec<Json> {
        self.files
            .iter()
            .filter(|(name, _)| Path::new(name).extension().is_some_and(|e| e == "yaml"))
            .flat_map(|(name, text)| {
                let docs: Vec<Json> = serde_saphyr::from_multiple(text)
                    .unwrap_or_else(|err| panic!("{name} renders to invalid YAML: {err}\n{text}"));
                docs.into_iter().filter(|d| !d.is_null())
            })
            .collect()
    }

    /// The documents of one kind.
    pub(crate) fn of_kind(&self, kind: &str) -> Vec<Json> {
        self.documents().into_iter().filter(|d| d["kind"] == kind).collect()
    }

    /// The output of one template file.
    pub(crate) fn file(&self, name: &str) -> &str {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| panic!("no template {name}"), |(_, text)| text.as_str())
    }
}

/// Renders every template of the chart as release `ecm` in `kube-system`
/// with `values`, or returns the first template's error (a `fail` included).
pub(crate) fn render(values: &Json) -> Result<Rendered, String> {
    let dir = chart_dir();
    let chart: Json = serde_saphyr::from_str(&fs::read_to_string(dir.join("Chart.yaml")).expect("Chart.yaml"))
        .expect("Chart.yaml is YAML");
    let context = to_value(serde_json::json!({
        "Values": values,
        "Release": {"Name": "ecm", "Namespace": "kube-system", "Service": "Helm", "IsInstall": true},
        "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
    }));
    let root = dir.join("templates");
    let helpers = fs::read_to_string(root.join("_helpers.tpl")).expect("_helpers.tpl");
    HELPERS.with(|h| h.borrow_mut().clone_from(&helpers));
    let mut files = Vec::new();
    for path in templates(&root) {
        let name = path
            .strip_prefix(&root)
            .expect("under templates")
            .to_string_lossy()
            .into_owned();
        if name.starts_with('_') {
            continue;
        }
        let mut file = template();
        file.parse(helpers.clone()).map_err(|e| format!("_helpers.tpl: {e}"))?;
        let source = fs::read_to_string(&path).expect("template is readable");
        file.parse(source).map_err(|e| format!("{name}: {e}"))?;
        let output = file
            .render(&Context::from(context.clone()))
            .map_err(|e| format!("{name}: {e}"))?;
        files.push((name, output));
    }
    Ok(Rendered { files })
}
