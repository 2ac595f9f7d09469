//! The typed values the binding returns: `Solution` (a solve), `LutCell` and `Candidate` (a
//! lookup-table build), `LutAnswer` (a lookup-table query).
//!
//! Each is a frozen class whose fields are Python objects made once, when the value is built:
//! PyO3 exposes such fields as struct members, which Python reads as fast as a `__slots__`
//! attribute (a plan and a query are hot paths). `planner.reference` mirrors them as named
//! tuples with the same field names.

use jointdnn_core::lut::{Candidate as CoreCandidate, CellResult, CellStatus};
use jointdnn_core::problem::Segments;
use jointdnn_core::{Metric, Network, Platform, Solution as CoreSolution, Usage};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};

/// `((first, last, "mobile" | "cloud"), …)` in layer order.
fn segments(py: Python<'_>, segments: &[(usize, usize, Platform)]) -> PyResult<Py<PyTuple>> {
    let (mobile, cloud) = (intern!(py, "mobile"), intern!(py, "cloud"));
    let items = segments.iter().map(|&(first, last, platform)| {
        let name = match platform {
            Platform::Mobile => mobile,
            Platform::Cloud => cloud,
        };
        (first, last, name)
    });
    Ok(PyTuple::new(py, items)?.unbind())
}

fn usage(py: Python<'_>, usage: &[f64]) -> PyResult<Py<PyTuple>> {
    Ok(PyTuple::new(py, usage)?.unbind())
}

fn float(py: Python<'_>, v: f64) -> Py<PyFloat> {
    PyFloat::new(py, v).unbind()
}

fn int(py: Python<'_>, v: u32) -> PyResult<Py<PyInt>> {
    Ok(v.into_pyobject(py)?.unbind())
}

/// The exact optimum of one request: the schedule, its resource usage and its costs there.
#[pyclass(frozen, module = "jointdnn_edge._core")]
pub struct Solution {
    /// `((first, last, "mobile" | "cloud"), …)` in layer order.
    #[pyo3(get)]
    segments: Py<PyTuple>,
    /// The schedule's resource usage vector (ten floats, `jointdnn_edge.planner.usage`).
    #[pyo3(get)]
    usage: Py<PyTuple>,
    /// Tensors and weight sets moved between the platforms.
    #[pyo3(get)]
    transfers: Py<PyInt>,
    /// End-to-end latency (ms) on the request's network.
    #[pyo3(get)]
    latency_ms: Py<PyFloat>,
    /// Mobile energy (mJ): compute and radio.
    #[pyo3(get)]
    mobile_energy_mj: Py<PyFloat>,
    /// Cloud compute time (ms), slowed down.
    #[pyo3(get)]
    cloud_ms: Py<PyFloat>,
}

impl Solution {
    /// `solution`'s values on `network` with the cloud slowed down by `slowdown`.
    pub fn new(py: Python<'_>, solution: &CoreSolution, network: &Network, slowdown: f64) -> PyResult<Self> {
        let metric = |m| float(py, solution.metric(m, network, slowdown));
        Ok(Solution {
            segments: segments(py, &solution.segments)?,
            usage: usage(py, &solution.usage)?,
            transfers: int(py, solution.transfers)?,
            latency_ms: metric(Metric::Latency),
            mobile_energy_mj: metric(Metric::Energy),
            cloud_ms: metric(Metric::Cloud),
        })
    }
}

/// The Python objects of the last schedule a `Problem` returned, kept so that a solve whose optimum
/// has the same segments (or usage) hands out the same immutable tuples instead of building new ones:
/// plans repeat their schedule from one inference to the next, and these tuples are most of what
/// a small plan allocates.
#[derive(Default)]
pub struct LastObjects {
    segments: Option<(Segments, Py<PyTuple>)>,
    usage: Option<(Usage, Py<PyTuple>)>,
}

impl LastObjects {
    /// `solution`'s segments and usage as tuples: the kept ones where equal, else built and kept.
    pub fn tuples(&mut self, py: Python<'_>, solution: &CoreSolution) -> PyResult<(Py<PyTuple>, Py<PyTuple>)> {
        let segs = match &self.segments {
            Some((kept, tuple)) if *kept == solution.segments => tuple.clone_ref(py),
            _ => {
                let tuple = segments(py, &solution.segments)?;
                self.segments = Some((solution.segments.clone(), tuple.clone_ref(py)));
                tuple
            }
        };
        // bitwise equality: -0.0 and 0.0 would compare equal but print differently
        let same_usage = |kept: &Usage| {
            kept.iter()
                .zip(&solution.usage)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        };
        let use_ = match &self.usage {
            Some((kept, tuple)) if same_usage(kept) => tuple.clone_ref(py),
            _ => {
                let tuple = usage(py, &solution.usage)?;
                self.usage = Some((solution.usage, tuple.clone_ref(py)));
                tuple
            }
        };
        Ok((segs, use_))
    }
}

/// `solution`'s segments and usage as new tuples.
pub fn fresh_tuples(py: Python<'_>, solution: &CoreSolution) -> PyResult<(Py<PyTuple>, Py<PyTuple>)> {
    Ok((segments(py, &solution.segments)?, usage(py, &solution.usage)?))
}

/// `make(segments, latency_ms, mobile_energy_mj, cloud_ms, usage, transfers, objective, "native")`:
/// the schedule object built by the caller's factory (`Schedule._make`) straight from the solution,
/// whose segments and usage are the tuples `segs` and `use_`.
pub fn make_schedule<'py>(
    py: Python<'py>,
    make: &Bound<'py, PyAny>,
    objective: &Bound<'py, PyString>,
    solution: &CoreSolution,
    (segs, use_): (Py<PyTuple>, Py<PyTuple>),
    network: &Network,
    slowdown: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let metric = |m| float(py, solution.metric(m, network, slowdown));
    // a Rust tuple of arguments: PyO3 calls with vectorcall, no argument tuple is built
    make.call1((
        segs,
        metric(Metric::Latency),
        metric(Metric::Energy),
        metric(Metric::Cloud),
        use_,
        int(py, solution.transfers)?,
        objective,
        intern!(py, "native"),
    ))
}

/// A schedule stored in a lookup-table cell: its segments and resource usage.
#[pyclass(frozen, module = "jointdnn_edge._core")]
pub struct Candidate {
    /// `((first, last, "mobile" | "cloud"), …)` in layer order.
    #[pyo3(get)]
    segments: Py<PyTuple>,
    /// The schedule's resource usage vector (ten floats).
    #[pyo3(get)]
    usage: Py<PyTuple>,
    /// Tensors and weight sets moved between the platforms.
    #[pyo3(get)]
    transfers: Py<PyInt>,
}

impl Candidate {
    fn new(py: Python<'_>, c: &CoreCandidate) -> PyResult<Self> {
        Ok(Candidate {
            segments: segments(py, &c.segments)?,
            usage: usage(py, &c.usage)?,
            transfers: int(py, c.transfers)?,
        })
    }
}

/// One built lookup-table cell.
#[pyclass(frozen, module = "jointdnn_edge._core")]
pub struct LutCell {
    /// `"exact"` (the candidates hold the optimum everywhere in the cell), `"solve"` (too many
    /// candidates or over the work budget: queries here solve directly) or `"infeasible"`.
    #[pyo3(get)]
    status: Py<PyString>,
    /// The cell's candidate schedules (`Candidate`), empty unless the status is `"exact"`.
    #[pyo3(get)]
    candidates: Py<PyList>,
}

impl LutCell {
    pub fn new(py: Python<'_>, cell: &CellResult) -> PyResult<Self> {
        let status = match cell.status {
            CellStatus::Exact => intern!(py, "exact"),
            CellStatus::Solve => intern!(py, "solve"),
            CellStatus::Infeasible => intern!(py, "infeasible"),
        };
        let candidates = cell
            .candidates
            .iter()
            .map(|c| Candidate::new(py, c)?.into_py_any(py))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(LutCell {
            status: status.clone().unbind(),
            candidates: PyList::new(py, candidates)?.unbind(),
        })
    }
}

/// The best stored schedule at a query point: its index among the table's candidates and its costs there.
#[pyclass(frozen, module = "jointdnn_edge._core")]
pub struct LutAnswer {
    /// Index of the schedule among the table's stored schedules.
    #[pyo3(get)]
    candidate: Py<PyInt>,
    /// End-to-end latency (ms) at the query point.
    #[pyo3(get)]
    latency_ms: Py<PyFloat>,
    /// Mobile energy (mJ) at the query point.
    #[pyo3(get)]
    mobile_energy_mj: Py<PyFloat>,
    /// Cloud compute time (ms) at the query point.
    #[pyo3(get)]
    cloud_ms: Py<PyFloat>,
}

impl LutAnswer {
    /// Candidate `candidate` with `[latency_ms, energy_mj, cloud_ms]` = `values`.
    pub fn new(py: Python<'_>, candidate: u32, values: [f64; 3]) -> PyResult<Self> {
        Ok(LutAnswer {
            candidate: int(py, candidate)?,
            latency_ms: float(py, values[0]),
            mobile_energy_mj: float(py, values[1]),
            cloud_ms: float(py, values[2]),
        })
    }
}
