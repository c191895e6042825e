//! Conformance scenario files (`../shared/conformance/FORMAT.md`): the
//! objects to load, the controllers to run and their options. A plain
//! (multi-document) manifest is accepted too: its documents are the objects.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::controllers::{ControllerName, parse_controllers};
use crate::options::ControllerOptions;

/// A scenario, ready to run.
#[derive(Debug)]
pub struct Scenario {
    /// Its name (the file name when it has none).
    pub name: String,
    /// The controllers to run.
    pub controllers: BTreeSet<ControllerName>,
    /// Their options.
    pub options: ControllerOptions,
    /// The objects to load, in order.
    pub objects: Vec<Value>,
}

impl Scenario {
    /// Reads a scenario or manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let fallback_name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::parse(&text, &fallback_name).with_context(|| format!("invalid scenario {}", path.display()))
    }

    /// Parses scenario text; `fallback_name` names a scenario without `name`.
    pub fn parse(text: &str, fallback_name: &str) -> Result<Self> {
        let documents: Vec<Value> = serde_saphyr::from_multiple(text).context("not valid YAML")?;
        let documents: Vec<Value> = documents.into_iter().filter(|d| !d.is_null()).collect();
        let is_scenario = documents.len() == 1 && documents[0].get("objects").is_some();
        if !is_scenario {
            let objects = flatten_lists(documents)?;
            let controllers = parse_controllers("*")?;
            return Ok(Self {
                name: fallback_name.to_owned(),
                controllers,
                options: ControllerOptions::default(),
                objects,
            });
        }
        let doc = documents.into_iter().next().unwrap_or_default();
        let name = doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(fallback_name)
            .to_owned();
        let controllers = match doc.get("controllers") {
            None | Some(Value::Null) => parse_controllers("*")?,
            Some(Value::Array(list)) => {
                let names: Vec<&str> = list
                    .iter()
                    .map(|v| v.as_str().context("controllers: every entry must be a name"))
                    .collect::<Result<_>>()?;
                parse_controllers(&names.join(","))?
            }
            Some(Value::String(list)) => parse_controllers(list)?,
            Some(other) => bail!("controllers: expected a list of names, got {other}"),
        };
        let mut options = ControllerOptions::default();
        match doc.get("options") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    options.set(key, value)?;
                }
            }
            Some(other) => bail!("options: expected a map, got {other}"),
        }
        let objects = match doc.get("objects") {
            Some(Value::Array(list)) => flatten_lists(list.clone())?,
            Some(Value::Null) | None => Vec::new(),
            Some(other) => bail!("objects: expected a list, got {other}"),
        };
        Ok(Self {
            name,
            controllers,
            options,
            objects,
        })
    }

    /// The namespaces the objects live in (besides the built-in ones).
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.objects
            .iter()
            .filter_map(|o| o.pointer("/metadata/namespace").and_then(Value::as_str))
            .filter(|ns| !ns.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Expands `kind: List` documents and checks every object has a kind and a name.
fn flatten_lists(documents: Vec<Value>) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for (index, doc) in documents.into_iter().enumerate() {
        if doc
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && let Some(Value::Array(items)) = doc.get("items")
        {
            objects.extend(flatten_lists(items.clone())?);
            continue;
        }
        let kind = doc.get("kind").and_then(Value::as_str);
        let name = doc.pointer("/metadata/name").and_then(Value::as_str);
        if kind.is_none() || name.is_none_or(str::is_empty) || doc.get("apiVersion").is_none() {
            bail!("object #{index} needs apiVersion, kind and metadata.name");
        }
        objects.push(doc);
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_with_options() {
        let text = r"
name: demo
controllers: [endpoints]
options:
  endpointUpdatesBatchPeriod: 2s
objects:
  - {apiVersion: v1, kind: Service, metadata: {name: a, namespace: team}}
";
        let scenario = Scenario::parse(text, "x").unwrap();
        assert_eq!(scenario.name, "demo");
        assert_eq!(
            scenario.options.endpoint_updates_batch_period,
            std::time::Duration::from_secs(2)
        );
        assert_eq!(scenario.objects.len(), 1);
        assert_eq!(scenario.namespaces(), BTreeSet::from(["team".to_owned()]));
    }

    #[test]
    fn plain_manifest() {
        let text =
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
        let scenario = Scenario::parse(text, "file").unwrap();
        assert_eq!(scenario.name, "file");
        assert_eq!(scenario.objects.len(), 2);
    }

    #[test]
    fn bad_input_is_refused_clearly() {
        assert!(Scenario::parse("objects: [{kind: Pod}]", "x").is_err());
        assert!(
            Scenario::parse("objects: []\ncontrollers: [nope]", "x")
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
        assert!(Scenario::parse("objects: []\noptions: {warpSpeed: 9}", "x").is_err());
        assert!(Scenario::parse("objects: [\n", "x").is_err());
    }
}
