//! `jointdnn_edge._core`: thin PyO3 bindings of `jointdnn-core`.
//!
//! Each method converts its arguments, releases the GIL around the work, and
//! calls plain Rust in `jointdnn-core`; errors are converted in `errors.rs`.
//! Cost arrays are read from numpy's buffers (no Python lists) and copied into
//! Rust vectors before the GIL is released (see `square`); `sparse_expand`
//! works on numpy's memory in place.

mod errors;

use errors::IntoPy;
use jointdnn_core::lut::{build_cells, Answer, LutIndex as CoreIndex, LutSpec, CELL_MAX_WORK};
use jointdnn_core::plan::DEFAULT_MAX_LABELS;
use jointdnn_core::problem::RDIMS;
use jointdnn_core::{
    solve, CostData, Force, GraphOptions, Metric, Network, PlanError, Platform, Point, Request, StateGraph,
};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray1};
use pyo3::prelude::*;

type PySegments = Vec<(usize, usize, &'static str)>;
/// A schedule as Python sees it: `(segments, usage, transfers)`.
type PySolution = (PySegments, [f64; 8], u32);
/// A planned schedule: `(segments, usage, transfers, [latency_ms, energy_mj, cloud_ms])`.
type PyPlan = (PySegments, [f64; 8], u32, [f64; 3]);
/// `(up_mbps, down_mbps, alpha_up, alpha_down, beta, rtt_ms)`.
type NetTuple = (f64, f64, f64, f64, f64, f64);
/// `(alpha_up, alpha_down, beta, rtt_ms)`: a network without its bandwidths.
type RadioTuple = (f64, f64, f64, f64);

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
    errors::to_py(py, PlanError::InvalidInput(msg))
}

fn metric(py: Python<'_>, name: &str) -> PyResult<Metric> {
    match name {
        "latency" => Ok(Metric::Latency),
        "energy" => Ok(Metric::Energy),
        "cloud" => Ok(Metric::Cloud),
        other => Err(invalid(py, format!("unknown metric {other:?}"))),
    }
}

fn force(py: Python<'_>, name: Option<&str>) -> PyResult<Force> {
    match name {
        None => Ok(Force::None),
        Some("mobile") => Ok(Force::Mobile),
        Some("cloud") => Ok(Force::Cloud),
        Some(other) => Err(invalid(
            py,
            format!("force must be None, 'mobile' or 'cloud', got {other:?}"),
        )),
    }
}

fn network(t: NetTuple) -> Network {
    Network {
        up_mbps: t.0,
        down_mbps: t.1,
        alpha_up: t.2,
        alpha_down: t.3,
        beta: t.4,
        rtt_ms: t.5,
    }
}

fn radio(r: RadioTuple) -> Network {
    network((1.0, 1.0, r.0, r.1, r.2, r.3))
}

fn segments(s: &[(usize, usize, Platform)]) -> PySegments {
    s.iter().map(|&(a, b, p)| (a, b, p.name())).collect()
}

/// A cost table compiled into the exact planner's state graph (built once, solved many times).
#[pyclass(frozen, module = "jointdnn_edge._core")]
struct Problem {
    graph: StateGraph,
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
        let graph = py.detach(|| StateGraph::build(&cost, &options)).py_err(py)?;
        Ok(Problem { graph })
    }

    /// Number of layers.
    #[getter]
    fn n(&self) -> usize {
        self.graph.n
    }

    /// `(states, transitions, cut width)` of the state graph.
    #[getter]
    fn size(&self) -> (usize, usize, usize) {
        (self.graph.num_states(), self.graph.trans.len(), self.graph.width)
    }

    /// The exact optimum: `(segments, usage, transfers, [latency_ms, energy_mj, cloud_ms])`.
    #[pyo3(signature = (objective, network, slowdown=1.0, deadline_ms=None, energy_budget_mj=None, cloud_budget_ms=None, force=None))]
    #[allow(clippy::too_many_arguments)]
    fn solve(
        &self,
        py: Python<'_>,
        objective: &str,
        network: NetTuple,
        slowdown: f64,
        deadline_ms: Option<f64>,
        energy_budget_mj: Option<f64>,
        cloud_budget_ms: Option<f64>,
        force: Option<&str>,
    ) -> PyResult<PyPlan> {
        let mut req = Request::new(metric(py, objective)?, self::network(network));
        req.slowdown = slowdown;
        req.deadline_ms = deadline_ms;
        req.energy_budget_mj = energy_budget_mj;
        req.cloud_budget_ms = cloud_budget_ms;
        req.force = self::force(py, force)?;
        let graph = &self.graph;
        let sol = py.detach(|| solve(graph, &req)).py_err(py)?;
        let m = |k| sol.metric(k, &req.network, req.slowdown);
        Ok((
            segments(&sol.segments),
            sol.usage,
            sol.transfers,
            [m(Metric::Latency), m(Metric::Energy), m(Metric::Cloud)],
        ))
    }

    // The default max_work is spelled out so that the text signature (and the stub) shows it.
    /// Builds lookup-table cells in parallel: per cell `(status, [(segments, usage, transfers), …])`.
    #[pyo3(signature = (objective, constraints, radio, up, down, slowdown, axes, cells, force=None, max_candidates=256, max_work=16777216))]
    #[allow(clippy::too_many_arguments)]
    fn lut_cells(
        &self,
        py: Python<'_>,
        objective: &str,
        constraints: Vec<(String, f64)>,
        radio: RadioTuple,
        up: (f64, f64),
        down: (f64, f64),
        slowdown: (f64, f64),
        axes: [usize; 3],
        cells: Vec<usize>,
        force: Option<&str>,
        max_candidates: usize,
        max_work: u64,
    ) -> PyResult<Vec<(u8, Vec<PySolution>)>> {
        let spec = LutSpec {
            objective: metric(py, objective)?,
            constraints: constraints
                .iter()
                .map(|(m, b)| Ok((metric(py, m)?, *b)))
                .collect::<PyResult<_>>()?,
            radio: self::radio(radio),
            up,
            down,
            slowdown,
            cells: axes,
            force: self::force(py, force)?,
            max_candidates,
            max_labels: DEFAULT_MAX_LABELS,
            max_work,
        };
        let graph = &self.graph;
        let built = py.detach(|| build_cells(graph, &spec, &cells)).py_err(py)?;
        Ok(built
            .into_iter()
            .map(|c| {
                (
                    c.status as u8,
                    c.candidates
                        .into_iter()
                        .map(|k| (segments(&k.segments), k.usage, k.transfers))
                        .collect(),
                )
            })
            .collect())
    }
}

/// The query side of a lookup table (see `jointdnn_core::lut`).
#[pyclass(frozen, module = "jointdnn_edge._core")]
struct LutIndex {
    index: CoreIndex,
}

#[pymethods]
impl LutIndex {
    #[new]
    #[pyo3(signature = (objective, constraints, radio, up, down, slowdown, axes, reduced, status, offsets, members))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        objective: &str,
        constraints: Vec<(String, f64)>,
        radio: RadioTuple,
        up: (f64, f64),
        down: (f64, f64),
        slowdown: (f64, f64),
        axes: [usize; 3],
        reduced: Vec<[f64; RDIMS]>,
        status: Vec<u8>,
        offsets: Vec<u32>,
        members: Vec<u32>,
    ) -> PyResult<Self> {
        let constraints = constraints
            .iter()
            .map(|(m, b)| Ok((metric(py, m)?, *b)))
            .collect::<PyResult<_>>()?;
        let index = CoreIndex::new(
            metric(py, objective)?,
            constraints,
            self::radio(radio),
            up,
            down,
            slowdown,
            axes,
            reduced,
            status,
            offsets,
            members,
        )
        .map_err(|e| errors::lookup_error(py, e))?;
        Ok(LutIndex { index })
    }

    /// `(candidate, latency_ms, energy_mj, cloud_ms)`; candidate -1: infeasible here, -2: solve directly.
    fn query(&self, up_mbps: f64, down_mbps: f64, slowdown: f64) -> (i64, f64, f64, f64) {
        let p = Point {
            up_mbps,
            down_mbps,
            slowdown,
        };
        match self.index.query(&p) {
            Answer::Found(i, v) => (i as i64, v[0], v[1], v[2]),
            Answer::Infeasible => (-1, f64::NAN, f64::NAN, f64::NAN),
            Answer::Solve => (-2, f64::NAN, f64::NAN, f64::NAN),
        }
    }
}

/// Scatters packed non-zero elements into `out` (zeroed, `n * itemsize` bytes) by a bitmap
/// (the codec's sparse layout); raises `CodecError` on inconsistent sizes.
#[pyfunction]
fn sparse_expand(
    py: Python<'_>,
    bitmap: PyReadonlyArray1<u8>,
    values: PyReadonlyArray1<u8>,
    itemsize: usize,
    n: usize,
    mut out: PyReadwriteArray1<u8>,
) -> PyResult<()> {
    let (Ok(bitmap), Ok(values), Ok(out)) = (bitmap.as_slice(), values.as_slice(), out.as_slice_mut()) else {
        return Err(errors::codec_error(
            py,
            PlanError::InvalidInput("sparse_expand needs contiguous uint8 arrays".into()),
        ));
    };
    // The slices are numpy's memory, read and written with the GIL released (no copy: this is
    // the codec's hot path). The codec passes arrays it just made and shares with no thread.
    py.detach(|| jointdnn_core::sparse::expand(bitmap, values, itemsize, n, out))
        .map_err(|e| errors::codec_error(py, e))
}

/// Number of cores the parallel lookup-table build uses.
#[pyfunction]
fn parallelism() -> usize {
    rayon::current_num_threads()
}

const _: () = assert!(CELL_MAX_WORK == 16777216);

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Problem>()?;
    m.add_class::<LutIndex>()?;
    m.add_function(wrap_pyfunction!(parallelism, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_expand, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
