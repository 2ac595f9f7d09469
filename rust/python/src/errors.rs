//! The one place where Rust errors become Python exceptions: each error maps to a class of
//! `jointdnn_edge.errors`, looked up once per process and cached.

use jointdnn_core::sparse::SparseError;
use jointdnn_core::PlanError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use pyo3::PyErrArguments;

/// A class of `jointdnn_edge.errors`, imported on first use.
pub struct ErrorClass {
    name: &'static str,
    class: PyOnceLock<Py<PyType>>,
}

impl ErrorClass {
    const fn new(name: &'static str) -> Self {
        ErrorClass {
            name,
            class: PyOnceLock::new(),
        }
    }

    /// The exception `self(*args)`; a `RuntimeError` naming the failure if the class cannot be loaded.
    pub fn err<A: PyErrArguments + Send + Sync + 'static>(&self, py: Python<'_>, message: &str, args: A) -> PyErr {
        match self.class.import(py, "jointdnn_edge.errors", self.name) {
            Ok(class) => PyErr::from_type(class.clone(), args),
            Err(e) => PyRuntimeError::new_err(format!("{message} (and {} could not be loaded: {e})", self.name)),
        }
    }

    /// The exception `self(message)`.
    pub fn new_err(&self, py: Python<'_>, message: impl Into<String>) -> PyErr {
        let message = message.into();
        self.err(py, &message.clone(), (message,))
    }
}

/// Arguments, options and network figures the caller got wrong.
pub static CONFIG_ERROR: ErrorClass = ErrorClass::new("ConfigError");
/// Malformed cost tables.
pub static COST_TABLE_ERROR: ErrorClass = ErrorClass::new("CostTableError");
/// Instances past the exact solver's limits.
pub static SOLVER_ERROR: ErrorClass = ErrorClass::new("SolverError");
/// No schedule meets the constraints.
pub static INFEASIBLE_ERROR: ErrorClass = ErrorClass::new("InfeasibleError");
/// An inconsistent lookup-table index.
pub static LOOKUP_TABLE_ERROR: ErrorClass = ErrorClass::new("LookupTableError");
/// A corrupt frame (the codec kernels).
pub static CODEC_ERROR: ErrorClass = ErrorClass::new("CodecError");

/// The Python exception for a planner error.
pub fn plan_error(py: Python<'_>, err: PlanError) -> PyErr {
    match err {
        PlanError::InvalidInput(m) => COST_TABLE_ERROR.new_err(py, m),
        PlanError::InvalidRequest(m) => CONFIG_ERROR.new_err(py, m),
        PlanError::TooLarge(m) => SOLVER_ERROR.new_err(py, m),
        PlanError::Infeasible {
            constraint,
            best,
            message,
        } => INFEASIBLE_ERROR.err(py, &message.clone(), (message, constraint, best)),
    }
}

/// The Python exception for a sparse payload whose sizes disagree.
pub fn sparse_error(py: Python<'_>, err: SparseError) -> PyErr {
    CODEC_ERROR.new_err(py, err.0)
}

/// `Result` conversion for binding functions (tokenizers' `ToPyResult`).
pub trait ToPyResult<T> {
    fn into_py_result(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> ToPyResult<T> for Result<T, PlanError> {
    fn into_py_result(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| plan_error(py, e))
    }
}

impl<T> ToPyResult<T> for Result<T, SparseError> {
    fn into_py_result(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| sparse_error(py, e))
    }
}
