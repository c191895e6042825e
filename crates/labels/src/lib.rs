//! Kubernetes label selectors and the syntax checks behind them, implemented
//! once for the whole workspace: upstream's `k8s.io/apimachinery`
//! `pkg/labels` (requirements, selectors, the string grammar with its
//! corner cases and error messages, `>`/`<` included) and the name, label
//! key and label value checks of `pkg/util/validation`. The informer's
//! listers, the endpoint controllers' Service-to-pod matching and the
//! in-memory API server's `labelSelector` and object validation all use
//! this crate, so they agree with each other and with upstream.
//!
//! It depends on nothing but `thiserror`: no Kubernetes types. Converting a
//! `k8s-openapi` `LabelSelector` (`matchLabels` + `matchExpressions`) is
//! done by `ecm-informer`, with [`Requirement::new`] and
//! [`Operator::from_label_selector_operator`]. Selectors match anything that
//! implements [`Labels`].
//!
//! | module | holds |
//! |---|---|
//! | [`requirement`] | [`Requirement`] and [`Operator`]: one condition on one label |
//! | [`selector`] | [`Selector`] (and the borrowing [`ValidatedSetSelector`]): all requirements must hold |
//! | [`parser`] | the string form, `app=web,tier in (a,b),!canary,replicas>1` |
//! | [`labels`] | [`Labels`]: what a selector matches against |
//! | [`validation`] | `is_qualified_name`, `is_valid_label_value`, `is_dns1123_label`, ... |
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//! use ecm_labels::Selector;
//! use ecm_labels::validation::is_qualified_name;
//!
//! let selector: Selector = "app=web,tier in (frontend,edge),!canary".parse()?;
//! let labels = BTreeMap::from([
//!     ("app".to_owned(), "web".to_owned()),
//!     ("tier".to_owned(), "edge".to_owned()),
//! ]);
//! assert!(selector.matches(&labels));
//! assert_eq!(selector.to_string(), "app=web,!canary,tier in (edge,frontend)");
//!
//! assert!(is_qualified_name("app.kubernetes.io/name").is_empty());
//! assert_eq!(is_qualified_name("app.kubernetes.io/"), [
//!     "name part must be non-empty",
//!     "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
//! ]);
//! # Ok::<(), ecm_labels::ParseError>(())
//! ```

pub mod labels;
pub mod parser;
pub mod requirement;
pub mod selector;
pub mod validation;

pub use labels::Labels;
pub use parser::{Expected, ParseError};
pub use requirement::{Operator, Requirement, RequirementError};
pub use selector::{Selector, SelectorError, ValidatedSetSelector};
