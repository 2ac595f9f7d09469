//! The one place where core errors become Python exceptions: each
//! `PlanError` variant maps to a class of `jointdnn_edge.errors`.

use jointdnn_core::PlanError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Converts a core error into the matching `jointdnn_edge.errors` exception.
pub fn to_py(py: Python<'_>, err: PlanError) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let module = py.import("jointdnn_edge.errors")?;
        let value = match &err {
            PlanError::InvalidInput(m) => module.getattr("CostTableError")?.call1((m.as_str(),))?,
            PlanError::TooLarge(m) => module.getattr("SolverError")?.call1((m.as_str(),))?,
            PlanError::Infeasible {
                constraint,
                best,
                message,
            } => module
                .getattr("InfeasibleError")?
                .call1((message.as_str(), constraint.as_str(), *best))?,
        };
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|e| PyRuntimeError::new_err(format!("{err} (and the error class could not be loaded: {e})")))
}

/// `Result` conversion for binding functions.
pub trait IntoPy<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, PlanError> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

/// A core error raised as `jointdnn_edge.errors.CodecError` (for the codec kernels).
pub fn codec_error(py: Python<'_>, err: PlanError) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let class = py.import("jointdnn_edge.errors")?.getattr("CodecError")?;
        Ok(PyErr::from_value(class.call1((err.to_string(),))?))
    };
    build().unwrap_or_else(|e| PyRuntimeError::new_err(format!("{err} (and CodecError could not be loaded: {e})")))
}

/// A core error raised as `jointdnn_edge.errors.LookupTableError` (an inconsistent table index).
pub fn lookup_error(py: Python<'_>, err: PlanError) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let class = py.import("jointdnn_edge.errors")?.getattr("LookupTableError")?;
        Ok(PyErr::from_value(class.call1((err.to_string(),))?))
    };
    build()
        .unwrap_or_else(|e| PyRuntimeError::new_err(format!("{err} (and LookupTableError could not be loaded: {e})")))
}
