//! `cargo xtask pb-schema`: the protobuf descriptors of ecm-apiserver's
//! generic codec, derived from kube-rs's `k8s-pb` crate.
//!
//! `k8s-pb` holds prost-generated structs for every Kubernetes protobuf
//! message but ships no descriptors, and prost structs have no reflection.
//! This reads the generated code itself (each `#[prost(..., tag = "N")]`
//! field of each `pub struct`), takes each field's JSON name from
//! k8s-openapi's `v1_36` serde code (`"podIPs" => Field::Key_pod_ips`; prost
//! spells that field `pod_i_ps` or `pod_ips`, so names are matched
//! lower-cased without underscores) and writes a `FileDescriptorSet` that
//! `prost-reflect` loads at run time. Field names in the descriptors are the
//! JSON names, as in upstream's `generated.proto` files.
//!
//! Output: `crates/apiserver/src/http/protobuf/k8s.binpb`. Run it after
//! bumping `k8s-pb` or `k8s-openapi`; `--check` fails when the committed
//! file differs from what it would write. `PB_SCHEMA_VERBOSE=1` lists the
//! fields named without k8s-openapi's help, the embedded ones, and the
//! k8s-openapi fields that `k8s-pb` lacks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet, MessageOptions};

/// The `k8s-pb` modules (paths under its `src/`) whose messages the server
/// can encode; the messages they reference come along.
const ROOTS: &[&str] = &[
    "api/core/v1",
    "api/apps/v1",
    "api/discovery/v1",
    "api/coordination/v1",
    "api/events/v1",
    "api/rbac/v1",
    "api/authentication/v1",
    "api/authorization/v1",
    "api/autoscaling/v1",
    "api/batch/v1",
    "api/networking/v1",
    "api/policy/v1",
    "api/scheduling/v1",
    "api/storage/v1",
    "apimachinery/pkg/apis/meta/v1",
];

/// The `json_name` of a field whose message is embedded in its parent's
/// JSON object (Go's `json:",inline"`, e.g. `Volume.volumeSource`).
const INLINE: &str = ",inline";

/// Where the descriptors go, relative to the workspace root.
pub(crate) const OUTPUT: &str = "crates/apiserver/src/http/protobuf/k8s.binpb";

/// One field as `k8s-pb` declares it.
#[derive(Debug)]
struct PbField {
    rust_name: String,
    number: i32,
    /// `string`, `int32`, `message`, `map = "string, message"`, ...
    kind: String,
    repeated: bool,
    /// The referenced message (`package.Name`), for message fields and
    /// message-valued maps.
    type_ref: Option<String>,
}

/// The messages of one module: name → fields.
type Module = BTreeMap<String, Vec<PbField>>;

/// Runs the generator; `check`: compare with the committed file instead
/// of writing it.
pub(crate) fn pb_schema(check: bool) -> anyhow::Result<()> {
    let root = workspace_root()?;
    let pb = package_dir("k8s-pb")?;
    let openapi = package_dir("k8s-openapi")?;
    let mut modules: BTreeMap<String, Module> = BTreeMap::new();
    let mut todo: Vec<String> = ROOTS.iter().map(|s| (*s).to_owned()).collect();
    while let Some(module) = todo.pop() {
        if modules.contains_key(&module) {
            continue;
        }
        let parsed = parse_module(&pb.join("src").join(&module).join("mod.rs"), &module)?;
        for f in parsed.values().flatten() {
            if let Some(t) = &f.type_ref {
                let (m, _) = split_ref(t);
                if !modules.contains_key(m) {
                    todo.push(m.to_owned());
                }
            }
        }
        modules.insert(module, parsed);
    }
    let mut fallbacks = 0usize;
    let mut files = Vec::new();
    let all_names = json_names_everywhere(&openapi.join("src/v1_36"));
    for (module, messages) in &modules {
        let names = json_names(&openapi.join("src/v1_36").join(module));
        let mut deps = BTreeSet::new();
        let mut out = Vec::new();
        for (msg, fields) in messages {
            let known = names.get(&msg.to_lowercase());
            let mut desc = DescriptorProto {
                name: Some(msg.clone()),
                ..DescriptorProto::default()
            };
            for f in fields {
                let norm = f.rust_name.replace('_', "");
                let mut inline = false;
                let json = if let Some(j) = known.and_then(|(_, k)| k.get(&norm)) {
                    j.clone()
                } else {
                    // A message field of a struct k8s-openapi knows but
                    // without that field is embedded (`json:",inline"`).
                    inline = known.is_some_and(|(_, k)| {
                        f.kind == "message"
                            && embedded_fields(&modules, f).is_some_and(|inner| inner.iter().all(|n| k.contains_key(n)))
                    });
                    fallbacks += 1;
                    let name = match all_names.get(&norm) {
                        Some(Some(j)) => j.clone(),
                        _ => lower_camel(&f.rust_name),
                    };
                    if std::env::var_os("PB_SCHEMA_VERBOSE").is_some() {
                        println!(
                            "fallback: {module} {msg}.{} -> {name}{}",
                            f.rust_name,
                            if inline { " (inline)" } else { "" }
                        );
                    }
                    name
                };
                if let Some(t) = &f.type_ref {
                    let (m, _) = split_ref(t);
                    if m != module {
                        deps.insert(file_name(m));
                    }
                }
                let mut fd = field_descriptor(f, &json, &mut desc.nested_type)?;
                if inline {
                    fd.json_name = Some(INLINE.into());
                }
                desc.field.push(fd);
            }
            if let Some((name, k)) = known
                && std::env::var_os("PB_SCHEMA_VERBOSE").is_some()
            {
                let mut covered: BTreeSet<String> = fields.iter().map(|f| f.rust_name.replace('_', "")).collect();
                for f in fields {
                    covered.extend(embedded_fields(&modules, f).unwrap_or_default());
                }
                for (norm, json) in k {
                    if !covered.contains(norm) {
                        println!("not in k8s-pb: {name}.{json}");
                    }
                }
            }
            out.push(desc);
        }
        files.push(FileDescriptorProto {
            name: Some(file_name(module)),
            package: Some(package(module)),
            dependency: deps.into_iter().collect(),
            message_type: out,
            syntax: Some("proto2".into()),
            ..FileDescriptorProto::default()
        });
    }
    // prost-reflect wants dependencies before their dependents.
    let files = topo_sort(files);
    let set = FileDescriptorSet { file: files };
    let bytes = set.encode_to_vec();
    let path = root.join(OUTPUT);
    if check {
        let committed = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if committed != bytes {
            bail!("{} is stale: run `cargo xtask pb-schema`", path.display());
        }
        println!("{} is up to date", path.display());
        return Ok(());
    }
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    let messages: usize = modules.values().map(BTreeMap::len).sum();
    println!(
        "{}: {} modules, {messages} messages, {} bytes; {fallbacks} field names not in k8s-openapi (lowerCamelCase of the prost name)",
        path.display(),
        modules.len(),
        bytes.len()
    );
    Ok(())
}

/// The lower-cased names of the fields of a message field's message.
fn embedded_fields(modules: &BTreeMap<String, Module>, f: &PbField) -> Option<Vec<String>> {
    let (m, name) = split_ref(f.type_ref.as_deref()?);
    let inner = modules.get(m)?.get(name)?;
    Some(inner.iter().map(|g| g.rust_name.replace('_', "")).collect())
}

fn field_descriptor(
    f: &PbField,
    json: &str,
    nested: &mut Vec<DescriptorProto>,
) -> anyhow::Result<FieldDescriptorProto> {
    let mut fd = FieldDescriptorProto {
        name: Some(json.to_owned()),
        json_name: Some(json.to_owned()),
        number: Some(f.number),
        label: Some(if f.repeated { Label::Repeated } else { Label::Optional } as i32),
        ..FieldDescriptorProto::default()
    };
    if let Some(spec) = f.kind.strip_prefix("map = \"") {
        let spec = spec.trim_end_matches('"');
        let (k, v) = spec.split_once(", ").context("map spec")?;
        let entry = format!("{}Entry", upper_camel(json));
        let mut value = FieldDescriptorProto {
            name: Some("value".into()),
            json_name: Some("value".into()),
            number: Some(2),
            label: Some(Label::Optional as i32),
            ..FieldDescriptorProto::default()
        };
        set_scalar_or_message(&mut value, v, f.type_ref.as_deref())?;
        let mut key = FieldDescriptorProto {
            name: Some("key".into()),
            json_name: Some("key".into()),
            number: Some(1),
            label: Some(Label::Optional as i32),
            ..FieldDescriptorProto::default()
        };
        set_scalar_or_message(&mut key, k, None)?;
        nested.push(DescriptorProto {
            name: Some(entry.clone()),
            field: vec![key, value],
            options: Some(MessageOptions {
                map_entry: Some(true),
                ..MessageOptions::default()
            }),
            ..DescriptorProto::default()
        });
        fd.label = Some(Label::Repeated as i32);
        fd.r#type = Some(Type::Message as i32);
        // The entry is nested in the message being built; its full name is
        // completed by the caller's message name below.
        fd.type_name = Some(format!("@{entry}"));
        return Ok(fd);
    }
    set_scalar_or_message(&mut fd, &f.kind, f.type_ref.as_deref())?;
    Ok(fd)
}

fn set_scalar_or_message(fd: &mut FieldDescriptorProto, kind: &str, type_ref: Option<&str>) -> anyhow::Result<()> {
    let t = match kind.split(' ').next().unwrap_or(kind) {
        "string" => Type::String,
        "bytes" => Type::Bytes,
        "bool" => Type::Bool,
        "int32" => Type::Int32,
        "int64" => Type::Int64,
        "uint32" => Type::Uint32,
        "uint64" => Type::Uint64,
        "double" => Type::Double,
        "float" => Type::Float,
        "message" => {
            let r = type_ref.context("message field without a type")?;
            let (m, name) = split_ref(r);
            fd.type_name = Some(format!(".{}.{name}", package(m)));
            Type::Message
        }
        other => bail!("unsupported prost field kind {other:?}"),
    };
    fd.r#type = Some(t as i32);
    Ok(())
}

/// Sorts files so that each comes after the files it depends on, and
/// completes map-entry type names.
fn topo_sort(files: Vec<FileDescriptorProto>) -> Vec<FileDescriptorProto> {
    let mut pending: Vec<FileDescriptorProto> = files
        .into_iter()
        .map(|mut f| {
            let pkg = f.package.clone().unwrap_or_default();
            for m in &mut f.message_type {
                let mname = m.name.clone().unwrap_or_default();
                for fd in &mut m.field {
                    if let Some(entry) = fd.type_name.as_deref().and_then(|t| t.strip_prefix('@')) {
                        fd.type_name = Some(format!(".{pkg}.{mname}.{entry}"));
                    }
                }
            }
            f
        })
        .collect();
    let mut done: Vec<FileDescriptorProto> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for f in pending {
            if f.dependency.iter().all(|d| seen.contains(d)) {
                seen.insert(f.name.clone().unwrap_or_default());
                done.push(f);
            } else {
                rest.push(f);
            }
        }
        if rest.len() == before {
            // A cycle: keep the rest in order; prost-reflect reports it.
            done.extend(rest);
            break;
        }
        pending = rest;
    }
    done
}

/// Parses one `k8s-pb` module file.
fn parse_module(path: &Path, module: &str) -> anyhow::Result<Module> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Module::new();
    let mut current: Option<String> = None;
    let mut attr: Option<(String, bool, i32)> = None;
    let mut pending_line = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = rest.trim_end_matches(" {").trim_end_matches('{').trim();
            current = Some(name.to_owned());
            out.entry(name.to_owned()).or_default();
            continue;
        }
        if line == "}" {
            current = None;
            continue;
        }
        let Some(msg) = current.clone() else { continue };
        if let Some(a) = line.strip_prefix("#[prost(") {
            let a = a.trim_end_matches(")]");
            let tag = a
                .split("tag = \"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .and_then(|t| t.parse().ok())
                .with_context(|| format!("no tag in {line}"))?;
            let repeated = a.contains(", repeated,");
            let kind = if a.starts_with("map = ") || a.starts_with("btree_map = ") {
                let spec = a.split('"').nth(1).unwrap_or_default();
                format!("map = \"{spec}\"")
            } else {
                a.split([',', ' ']).next().unwrap_or_default().to_owned()
            };
            attr = Some((kind, repeated, tag));
            continue;
        }
        if attr.is_some() && (line.starts_with("pub ") || !pending_line.is_empty()) {
            pending_line.push_str(line);
            let open = pending_line.matches('<').count();
            let close = pending_line.matches('>').count();
            if !line.ends_with(',') || open != close {
                continue;
            }
            let decl = std::mem::take(&mut pending_line);
            let Some((kind, repeated, number)) = attr.take() else {
                continue;
            };
            let (name, ty) = decl
                .trim_start_matches("pub ")
                .split_once(':')
                .with_context(|| format!("field declaration {decl}"))?;
            let rust_name = name.trim().trim_start_matches("r#").to_owned();
            let needs_type = kind == "message" || kind.ends_with("message\"");
            let type_ref = if needs_type {
                Some(resolve_type(ty.trim().trim_end_matches(','), module)?)
            } else {
                None
            };
            if let Some(fields) = out.get_mut(&msg) {
                fields.push(PbField {
                    rust_name,
                    number,
                    kind,
                    repeated,
                    type_ref,
                });
            }
        }
    }
    Ok(out)
}

/// `::core::option::Option<super::super::x::y::Name>` in module `a/b/c` →
/// `a/x/y::Name` (a module path and a name).
fn resolve_type(ty: &str, module: &str) -> anyhow::Result<String> {
    let mut t = ty;
    for wrapper in [
        "::core::option::Option<",
        "::prost::alloc::vec::Vec<",
        "::prost::alloc::collections::BTreeMap<::prost::alloc::string::String,",
    ] {
        if let Some(inner) = t.strip_prefix(wrapper) {
            t = inner.trim().trim_end_matches([',', '>', ' ']);
        }
    }
    let mut segs: Vec<&str> = module.split('/').collect();
    let parts: Vec<&str> = t.split("::").collect();
    let Some((name, path)) = parts.split_last() else {
        bail!("empty type in {ty}")
    };
    for p in path {
        match *p {
            "super" => {
                segs.pop();
            }
            other => segs.push(other),
        }
    }
    if name.contains(['<', '>', ' ']) {
        bail!("unparsed type {ty}");
    }
    Ok(format!("{}::{name}", segs.join("/")))
}

fn split_ref(r: &str) -> (&str, &str) {
    r.rsplit_once("::").unwrap_or(("", r))
}

/// `api/core/v1` → `k8s.io.api.core.v1`.
fn package(module: &str) -> String {
    format!(
        "k8s.io.{}",
        module
            .replace('/', ".")
            .replace("apiextensions_apiserver", "apiextensions-apiserver")
            .replace("kube_aggregator", "kube-aggregator")
    )
}

fn file_name(module: &str) -> String {
    format!("k8s.io/{module}/generated.proto")
}

/// Every JSON name of k8s-openapi, lower-cased → spelling, `None` where
/// structs disagree on the spelling.
fn json_names_everywhere(dir: &Path) -> BTreeMap<String, Option<String>> {
    let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
        for (_, (_, fields)) in json_names(&d) {
            for (norm, json) in fields {
                let slot = out.entry(norm).or_insert_with(|| Some(json.clone()));
                if slot.as_deref() != Some(json.as_str()) {
                    *slot = None;
                }
            }
        }
    }
    out
}

/// JSON names of k8s-openapi's structs in one module folder: lower-cased
/// struct name → (struct name, lower-cased JSON name without underscores →
/// JSON name).
fn json_names(dir: &Path) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let mut out: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Some(name) = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("pub struct "))
            .and_then(|r| r.split([' ', '{', '<', '(', ';']).next())
        else {
            continue;
        };
        let (_, fields) = out
            .entry(name.to_lowercase())
            .or_insert_with(|| (name.to_owned(), BTreeMap::new()));
        for line in text.lines() {
            let line = line.trim();
            if line.contains("=> Field::Key_")
                && let Some(json) = line.strip_prefix('"').and_then(|r| r.split('"').next())
            {
                fields.insert(json.to_lowercase().replace('_', ""), json.to_owned());
            }
        }
    }
    out
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    for (i, part) in snake.split('_').enumerate() {
        if i == 0 {
            out.push_str(part);
        } else {
            out.push_str(&upper_camel(part));
        }
    }
    out
}

fn upper_camel(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent folder")
}

/// The source folder of a dependency, from `cargo metadata` for the host
/// platform only: unfiltered, cargo resolves (and must have downloaded)
/// the dependencies of every platform, Windows-only crates included, which
/// a fresh Linux machine never fetched.
fn package_dir(name: &str) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = host_triple(&cargo)?;
    let out = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            &host,
        ])
        .current_dir(workspace_root()?)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .and_then(|m| Path::new(m).parent().map(Path::to_path_buf))
        .with_context(|| format!("package {name} not in cargo metadata"))
}

/// The target triple of the machine, from `rustc -vV` (the rustc next to
/// `cargo`).
fn host_triple(cargo: &str) -> anyhow::Result<String> {
    let rustc = Path::new(cargo).with_file_name("rustc");
    let rustc = if rustc.is_file() { rustc } else { PathBuf::from("rustc") };
    let out = Command::new(&rustc).arg("-vV").output().context("running rustc -vV")?;
    if !out.status.success() {
        bail!("rustc -vV failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host line")
}
