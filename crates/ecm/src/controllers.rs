//! Which controllers run: kube-controller-manager's `--controllers` syntax
//! over the three endpoint controllers.

use std::collections::BTreeSet;
use std::fmt;

/// One of the controllers ecm can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ControllerName {
    /// The Endpoints controller (`endpoints-controller`, alias `endpoint`).
    Endpoints,
    /// The EndpointSlice controller (`endpointslice-controller`, alias `endpointslice`).
    EndpointSlice,
    /// The EndpointSlice mirroring controller (`endpointslice-mirroring-controller`,
    /// alias `endpointslicemirroring`).
    Mirroring,
}

impl ControllerName {
    /// Every controller, in start order.
    pub const ALL: [Self; 3] = [Self::Endpoints, Self::EndpointSlice, Self::Mirroring];

    /// kube-controller-manager's canonical name.
    pub fn canonical(self) -> &'static str {
        match self {
            Self::Endpoints => "endpoints-controller",
            Self::EndpointSlice => "endpointslice-controller",
            Self::Mirroring => "endpointslice-mirroring-controller",
        }
    }

    /// Every spelling accepted for this controller: the canonical name,
    /// kube-controller-manager's old alias, and the scenario-file name.
    fn spellings(self) -> &'static [&'static str] {
        match self {
            Self::Endpoints => &["endpoints-controller", "endpoint", "endpoints"],
            Self::EndpointSlice => &["endpointslice-controller", "endpointslice"],
            Self::Mirroring => &[
                "endpointslice-mirroring-controller",
                "endpointslicemirroring",
                "endpointslice-mirroring",
            ],
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.spellings().contains(&name))
    }
}

impl fmt::Display for ControllerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.canonical())
    }
}

/// Why a `--controllers` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControllersError {
    /// A name ecm does not know.
    #[error(
        "unknown controller {0:?} in --controllers; known: {known} (or their aliases endpoint, endpointslice, endpointslicemirroring), '*' for all",
        known = ControllerName::ALL.map(ControllerName::canonical).join(", ")
    )]
    Unknown(String),
    /// The value enables nothing.
    #[error("--controllers={0:?} enables no controller")]
    Empty(String),
}

/// Parses a `--controllers` value: comma-separated names, `*` for every
/// controller (all three are on by default in kube-controller-manager too),
/// `-name` to disable one; order does not matter.
pub fn parse_controllers(value: &str) -> Result<BTreeSet<ControllerName>, ControllersError> {
    let mut star = false;
    let (mut on, mut off) = (BTreeSet::new(), BTreeSet::new());
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "*" {
            star = true;
        } else if let Some(name) = item.strip_prefix('-') {
            off.insert(ControllerName::parse(name).ok_or_else(|| ControllersError::Unknown(name.to_owned()))?);
        } else {
            on.insert(ControllerName::parse(item).ok_or_else(|| ControllersError::Unknown(item.to_owned()))?);
        }
    }
    if star {
        on.extend(ControllerName::ALL);
    }
    let enabled: BTreeSet<_> = on.difference(&off).copied().collect();
    if enabled.is_empty() {
        return Err(ControllersError::Empty(value.to_owned()));
    }
    Ok(enabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_enables_every_controller() {
        assert_eq!(parse_controllers("*").unwrap(), BTreeSet::from(ControllerName::ALL));
    }

    #[test]
    fn names_aliases_and_exclusions() {
        assert_eq!(
            parse_controllers("endpoint").unwrap(),
            BTreeSet::from([ControllerName::Endpoints])
        );
        assert_eq!(
            parse_controllers("endpoints-controller").unwrap(),
            BTreeSet::from([ControllerName::Endpoints])
        );
        assert_eq!(
            parse_controllers(" endpoints , * ").unwrap(),
            BTreeSet::from(ControllerName::ALL)
        );
        assert_eq!(
            parse_controllers("*,-endpoint").unwrap(),
            BTreeSet::from([ControllerName::EndpointSlice, ControllerName::Mirroring])
        );
        assert_eq!(
            parse_controllers("endpointslicemirroring").unwrap(),
            BTreeSet::from([ControllerName::Mirroring])
        );
        assert_eq!(
            parse_controllers("endpointslice-controller").unwrap(),
            BTreeSet::from([ControllerName::EndpointSlice])
        );
        assert_eq!(
            parse_controllers("*,-endpoint,-endpointslice,-endpointslicemirroring"),
            Err(ControllersError::Empty(
                "*,-endpoint,-endpointslice,-endpointslicemirroring".into()
            )),
            "disabling every controller leaves nothing"
        );
        assert_eq!(
            parse_controllers("*,-endpointslicemirroring").unwrap(),
            BTreeSet::from([ControllerName::Endpoints, ControllerName::EndpointSlice])
        );
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        let err = parse_controllers("*,bootstrapsigner").unwrap_err();
        assert_eq!(err, ControllersError::Unknown("bootstrapsigner".into()));
        assert!(err.to_string().contains("endpoints-controller"));
        assert!(matches!(parse_controllers("-nope"), Err(ControllersError::Unknown(_))));
    }
}
