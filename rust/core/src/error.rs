//! Errors of the planner core. The Python bindings map each variant to one
//! class of `jointdnn_edge.errors` (see `rust/python/src/errors.rs`).

use std::fmt;

/// Everything the planner core can refuse or fail at.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanError {
    /// Malformed cost data (bad shapes, NaN, negative costs, bad segments) or a table index.
    InvalidInput(String),
    /// A request the caller got wrong: network figures, bounds, slowdown, objective, ranges.
    InvalidRequest(String),
    /// No schedule satisfies the constraints. `constraint` names the binding one(s),
    /// `best` is the smallest value of that constraint reachable alone, when known.
    Infeasible {
        constraint: String,
        best: Option<f64>,
        message: String,
    },
    /// The instance exceeds the exact solver's limits (graph too wide, too many states or labels).
    TooLarge(String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::InvalidInput(m) | PlanError::InvalidRequest(m) => write!(f, "{m}"),
            PlanError::Infeasible { message, .. } => write!(f, "{message}"),
            PlanError::TooLarge(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for PlanError {}

pub type Result<T> = std::result::Result<T, PlanError>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(PlanError::InvalidInput(msg.into()))
}

pub(crate) fn bad_request<T>(msg: impl Into<String>) -> Result<T> {
    Err(PlanError::InvalidRequest(msg.into()))
}
