//! Renders the Helm chart with the real `helm`: `helm template` as release
//! `ecm` in `kube-system` for the manifests, `helm install --dry-run=client`
//! for NOTES.txt, `helm lint --strict`. `cargo xtask test` installs Helm
//! v4.2 into `<target>/tools/bin` and puts it first on `PATH`; where helm is
//! not on `PATH`, [`helm_available`] says so and the tests that render skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value as Json;

/// Whether `helm` runs from `PATH`; prints why not when it does not.
pub(crate) fn helm_available() -> bool {
    match Command::new("helm").args(["version", "--short"]).output() {
        Ok(out) if out.status.success() => true,
        _ => {
            eprintln!(
                "skipping: helm is not on PATH (`cargo xtask test` or `cargo xtask tools` installs it into <target>/tools/bin)"
            );
            false
        }
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

/// The chart's values.yaml with `overrides` merged in, in order (for the
/// schema checks, which need no helm).
pub(crate) fn values(overrides: &[Json]) -> Json {
    let text = fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml");
    let mut values: Json = serde_saphyr::from_str(&text).expect("values.yaml is YAML");
    for o in overrides {
        merge(&mut values, o);
    }
    values
}

/// What `helm template` rendered: each template's output, by path under
/// `templates/`, in the order helm printed them.
pub(crate) struct Rendered {
    pub(crate) files: Vec<(String, String)>,
}

impl Rendered {
    /// Splits `helm template`'s output at its `# Source: ecm/templates/...`
    /// comments.
    fn parse(output: &str) -> Self {
        let mut files: Vec<(String, String)> = Vec::new();
        let mut current: Option<usize> = None;
        for line in output.lines() {
            if let Some(source) = line.strip_prefix("# Source: ") {
                let name = source.split_once("/templates/").map_or(source, |(_, n)| n).to_owned();
                current = Some(files.iter().position(|(n, _)| *n == name).unwrap_or_else(|| {
                    files.push((name, String::new()));
                    files.len() - 1
                }));
                files[current.expect("just set")].1.push_str("---\n");
            } else if let Some(i) = current
                && line != "---"
            {
                files[i].1.push_str(line);
                files[i].1.push('\n');
            }
        }
        Self { files }
    }

    /// Every non-empty manifest document, parsed.
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
}

/// A unique scratch file name for one values override.
fn scratch_file() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ecm-chart-values-{}-{n}.json", std::process::id()))
}

/// Runs `helm ARGS CHART --namespace kube-system`, with `files` then
/// `overrides` (JSON is YAML) as values files, in order: stdout, or stderr
/// when helm fails.
fn helm(args: &[&str], files: &[&Path], overrides: &[Json]) -> Result<String, String> {
    let mut command = Command::new("helm");
    command.args(args).arg(chart_dir()).args(["--namespace", "kube-system"]);
    for file in files {
        command.arg("--values").arg(file);
    }
    let mut written = Vec::new();
    for o in overrides {
        let path = scratch_file();
        fs::write(&path, serde_json::to_vec(o).expect("JSON")).expect("temp dir is writable");
        command.arg("--values").arg(&path);
        written.push(path);
    }
    let out = command.output().expect("helm runs");
    for path in written {
        let _ = fs::remove_file(path);
    }
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("helm prints UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `helm template` with the defaults and `overrides`, or helm's error (a
/// `fail` or a values schema violation).
pub(crate) fn render(overrides: &[Json]) -> Result<Rendered, String> {
    helm(&["template", "ecm"], &[], overrides).map(|out| Rendered::parse(&out))
}

/// `helm template` with the values file `file`.
pub(crate) fn render_file(file: &Path) -> Result<Rendered, String> {
    helm(&["template", "ecm"], &[file], &[]).map(|out| Rendered::parse(&out))
}

/// `helm lint --strict` with the values file `file`, or the defaults.
pub(crate) fn lint(file: Option<&Path>) -> Result<String, String> {
    helm(&["lint", "--strict"], file.as_slice(), &[])
}

/// NOTES.txt as `helm install` prints it (a client-side dry run: no cluster).
pub(crate) fn notes(overrides: &[Json]) -> Result<String, String> {
    let out = helm(&["install", "ecm", "--dry-run=client"], &[], overrides)?;
    out.split_once("\nNOTES:\n")
        .map(|(_, notes)| notes.to_owned())
        .ok_or_else(|| format!("helm install printed no NOTES:\n{out}"))
}

#[test]
fn helm_template_output_splits_by_template() {
    let output = "---\n# Source: ecm/templates/a.yaml\nkind: A\n---\n# Source: ecm/templates/tests/b.yaml\nkind: B\n---\n# Source: ecm/templates/a.yaml\nkind: C\n";
    let rendered = Rendered::parse(output);
    let names: Vec<&str> = rendered.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a.yaml", "tests/b.yaml"]);
    let kinds: Vec<Json> = rendered.documents().iter().map(|d| d["kind"].clone()).collect();
    assert_eq!(kinds, ["A", "C", "B"]);
}
