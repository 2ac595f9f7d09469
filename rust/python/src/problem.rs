//! `Problem`: a cost table compiled into the exact planner's state graph.

use jointdnn_core::lut::build_cells;
use jointdnn_core::{solve, CostData, GraphOptions, PlanError, Request, StateGraph};
use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::errors::{plan_error, ToPyResult};
use crate::results::{fresh_tuples, make_schedule, LastObjects, LutCell, Solution};
use crate::values::{force, metric, PyLutSpec, PyNetwork};

// Arrays are copied out of numpy's memory (one memcpy when C-contiguous, an element walk
// otherwise) before the GIL is released: with the GIL released, Python code in another thread
// could write to a writeable array while Rust reads it.

/// An `n x n` matrix, row-major.
fn square(py: Python<'_>, name: &str, a: &PyReadonlyArray2<f64>, n: usize) -> PyResult<Vec<f64>> {
    let dim = a.as_array().dim();
    if dim != (n, n) {
        return Err(invalid(py, format!("{name} must have shape ({n}, {n}), got {dim:?}")));
    }
    // ndarray's `as_slice` is `Some` only in row-major order; numpy's would also hand out a
    // Fortran-ordered buffer, whose raw order is the transpose.
    let view = a.as_array();
    Ok(match view.as_slice() {
        Some(s) => s.to_vec(),
        None => view.iter().copied().collect(),
    })
}

fn vec1(a: &PyReadonlyArray1<f64>) -> Vec<f64> {
    match a.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => a.as_array().iter().copied().collect(),
    }
}

fn rows2(py: Python<'_>, name: &str, a: &PyReadonlyArray2<f64>) -> PyResult<Vec<[f64; 2]>> {
    let v = a.as_array();
    if v.ncols() != 2 {
        return Err(invalid(
            py,
            format!("{name} must have two columns (up, down), got {:?}", v.dim()),
        ));
    }
    Ok(v.rows().into_iter().map(|r| [r[0], r[1]]).collect())
}

fn invalid(py: Python<'_>, msg: String) -> PyErr {
    plan_error(py, PlanError::InvalidInput(msg))
}

/// Unconstrained solves of graphs with fewer transitions keep the GIL (they take microseconds).
const QUICK_TRANSITIONS: usize = 20_000;

/// A cost table compiled into the exact planner's state graph (built once, solved many times).
#[pyclass(frozen, module = "jointdnn_edge._core")]
pub struct Problem {
    graph: StateGraph,
    /// The tuples of the last schedule `solve_schedule` returned (see `LastObjects`).
    last: Mutex<LastObjects>,
}

#[pymethods]
impl Problem {
    #[new]
    #[pyo3(signature = (mobile_ms, cloud_ms, mobile_mj, out_bytes, input_bytes, edges, outputs, cloud_download_bytes, codec_ms, codec_mj, cloud_keeps_tensors=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        mobile_ms: PyReadonlyArray2<f64>,
        cloud_ms: PyReadonlyArray2<f64>,
        mobile_mj: PyReadonlyArray2<f64>,
        out_bytes: PyReadonlyArray1<f64>,
        input_bytes: f64,
        edges: Vec<(i64, usize)>,
        outputs: Vec<usize>,
        cloud_download_bytes: PyReadonlyArray1<f64>,
        codec_ms: PyReadonlyArray2<f64>,
        codec_mj: PyReadonlyArray2<f64>,
        cloud_keeps_tensors: bool,
    ) -> PyResult<Self> {
        let n = mobile_ms.as_array().nrows();
        let cost = CostData {
            n,
            mobile_ms: square(py, "mobile_ms", &mobile_ms, n)?,
            cloud_ms: square(py, "cloud_ms", &cloud_ms, n)?,
            mobile_mj: square(py, "mobile_mj", &mobile_mj, n)?,
            out_bytes: vec1(&out_bytes),
            input_bytes,
            edges,
            outputs,
            cloud_download_bytes: vec1(&cloud_download_bytes),
            codec_ms: rows2(py, "codec_ms", &codec_ms)?,
            codec_mj: rows2(py, "codec_mj", &codec_mj)?,
        };
        let options = GraphOptions {
            cloud_keeps_tensors,
            ..GraphOptions::default()
        };
        let graph = py.detach(|| StateGraph::build(&cost, &options)).into_py_result(py)?;
        Ok(Problem {
            graph,
            last: Mutex::default(),
        })
    }

    /// Number of layers.
    #[getter]
    fn n(&self) -> usize {
        self.graph.n
    }

    /// Number of states of the state graph.
    #[getter]
    fn states(&self) -> usize {
        self.graph.num_states()
    }

    /// Number of transitions of the state graph.
    #[getter]
    fn transitions(&self) -> usize {
        self.graph.transitions
    }

    /// Bytes the state graph holds (group columns, runs, transfer vectors).
    #[getter]
    fn nbytes(&self) -> usize {
        self.graph.memory_bytes()
    }

    /// Cut width of the state graph (the most tensors alive across a layer boundary).
    #[getter]
    fn cut_width(&self) -> usize {
        self.graph.width
    }

    /// The exact optimum on `network` (a `jointdnn_edge.Network`) as a `Solution`.
    #[pyo3(signature = (objective, network, slowdown=1.0, deadline_ms=None, energy_budget_mj=None, cloud_budget_ms=None, force=None))]
    #[allow(clippy::too_many_arguments)]
    fn solve(
        &self,
        py: Python<'_>,
        objective: &str,
        network: PyNetwork,
        slowdown: f64,
        deadline_ms: Option<f64>,
        energy_budget_mj: Option<f64>,
        cloud_budget_ms: Option<f64>,
        force: Option<&str>,
    ) -> PyResult<Solution> {
        let mut req = Request::new(metric(py, objective)?, network.into());
        req.slowdown = slowdown;
        req.deadline_ms = deadline_ms;
        req.energy_budget_mj = energy_budget_mj;
        req.cloud_budget_ms = cloud_budget_ms;
        req.force = self::force(py, force)?;
        let graph = &self.graph;
        let unconstrained = deadline_ms.is_none() && energy_budget_mj.is_none() && cloud_budget_ms.is_none();
        let sol = if unconstrained && graph.transitions < QUICK_TRANSITIONS {
            solve(graph, &req) // microseconds: releasing the GIL would cost more than other threads gain
        } else {
            py.detach(|| solve(graph, &req))
        }
        .into_py_result(py)?;
        Solution::new(py, &sol, &req.network, req.slowdown)
    }

    /// The unconstrained optimum on `network` as the object `make(segments, latency_ms,
    /// mobile_energy_mj, cloud_ms, usage, transfers, objective, "native")` returns (the planner passes
    /// `Schedule._make`): `solve`'s answer without a `Solution` object in between, and with the segment and usage
    /// tuples of the previous call handed out again when they are equal (a plan's hot path).
    #[pyo3(signature = (make, objective, network, slowdown=1.0))]
    fn solve_schedule<'py>(
        &self,
        py: Python<'py>,
        make: &Bound<'py, PyAny>,
        objective: &Bound<'py, PyString>,
        network: PyNetwork,
        slowdown: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut req = Request::new(metric(py, objective.to_str()?)?, network.into());
        req.slowdown = slowdown;
        let graph = &self.graph;
        let sol = if graph.transitions < QUICK_TRANSITIONS {
            solve(graph, &req)
        } else {
            py.detach(|| solve(graph, &req))
        }
        .into_py_result(py)?;
        // the lock is held only while the tuples are picked (no Python code runs meanwhile); another
        // thread holding it costs this call the reuse, never a wait
        let tuples = match self.last.try_lock() {
            Ok(mut last) => last.tuples(py, &sol)?,
            Err(_) => fresh_tuples(py, &sol)?,
        };
        make_schedule(py, make, objective, &sol, tuples, &req.network, req.slowdown)
    }

    /// Builds lookup-table cells of `spec` (a `jointdnn_edge.planner.reference.LutSpec`) in
    /// parallel: one `LutCell` per cell number in `cells`, on rayon's global pool, or on a pool
    /// of `threads` threads of its own (a background build that leaves the other cores to the
    /// inference).
    #[pyo3(signature = (spec, cells, threads=None))]
    fn lut_cells(
        &self,
        py: Python<'_>,
        spec: PyLutSpec,
        cells: Vec<usize>,
        threads: Option<usize>,
    ) -> PyResult<Vec<LutCell>> {
        let spec = spec.into_core(py)?;
        let graph = &self.graph;
        let built = py
            .detach(|| match threads {
                None => build_cells(graph, &spec, &cells),
                Some(n) => pool_of(n).and_then(|pool| pool.install(|| build_cells(graph, &spec, &cells))),
            })
            .into_py_result(py)?;
        built.iter().map(|c| LutCell::new(py, c)).collect()
    }
}

/// The rayon pool of `n` threads (at least one), made on first use and kept: a table build asks
/// for its cells in chunks, and a pool per chunk would start and stop its threads each time.
fn pool_of(n: usize) -> Result<Arc<rayon::ThreadPool>, PlanError> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let n = n.max(1);
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = pools.get(&n) {
        return Ok(Arc::clone(pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(move |i| format!("jdlut{n}-{i}"))
        .build()
        .map_err(|e| PlanError::InvalidRequest(format!("no thread pool of {n}: {e}")))?;
    let pool = Arc::new(pool);
    pools.insert(n, Arc::clone(&pool));
    Ok(pool)
}
