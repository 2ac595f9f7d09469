//! Python values read by attribute name into the core's types: the link
//! (`jointdnn_edge.network.Network` and `Radio`), names of metrics and forces,
//! and a lookup table's build specification (`jointdnn_edge.planner.reference.LutSpec`).

use jointdnn_core::lut::LutSpec;
use jointdnn_core::{Force, Metric, Network, Radio};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::CONFIG_ERROR;

/// `jointdnn_edge.network.Radio`: the power model and round trip, read by attribute name.
#[derive(FromPyObject)]
struct RadioAttributes {
    alpha_up: f64,
    alpha_down: f64,
    beta: f64,
    rtt_ms: f64,
    burst_up_bytes: f64,
    burst_down_bytes: f64,
}

/// `jointdnn_edge.network.Radio`. It is a named tuple, whose fields are read in their declared
/// order `(alpha_up, alpha_down, beta, rtt_ms, burst_up_bytes, burst_down_bytes)` (a plan is a hot
/// path: that is the fastest read); any other object is read by attribute name.
pub struct PyRadio(Radio);

impl<'a, 'py> FromPyObject<'a, 'py> for PyRadio {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let (alpha_up, alpha_down, beta, rtt_ms, burst_up_bytes, burst_down_bytes) = match obj.cast::<PyTuple>() {
            Ok(fields) => fields.extract::<(f64, f64, f64, f64, f64, f64)>()?,
            Err(_) => {
                let r: RadioAttributes = obj.extract()?;
                (
                    r.alpha_up,
                    r.alpha_down,
                    r.beta,
                    r.rtt_ms,
                    r.burst_up_bytes,
                    r.burst_down_bytes,
                )
            }
        };
        Ok(PyRadio(Radio {
            alpha_up,
            alpha_down,
            beta,
            rtt_ms,
            burst_up_bytes,
            burst_down_bytes,
        }))
    }
}

impl From<PyRadio> for Radio {
    fn from(r: PyRadio) -> Radio {
        r.0
    }
}

/// `jointdnn_edge.network.Network`: bandwidths and a radio.
#[derive(FromPyObject)]
pub struct PyNetwork {
    up_mbps: f64,
    down_mbps: f64,
    radio: PyRadio,
}

impl From<PyNetwork> for Network {
    fn from(n: PyNetwork) -> Network {
        Radio::from(n.radio).with_bandwidth(n.up_mbps, n.down_mbps)
    }
}

/// A metric by name (`"latency"`, `"energy"`, `"cloud"`).
pub fn metric(py: Python<'_>, name: &str) -> PyResult<Metric> {
    match name {
        "latency" => Ok(Metric::Latency),
        "energy" => Ok(Metric::Energy),
        "cloud" => Ok(Metric::Cloud),
        other => Err(CONFIG_ERROR.new_err(py, format!("unknown metric {other:?}"))),
    }
}

/// `(metric name, bound)` pairs.
pub fn constraints(py: Python<'_>, pairs: &[(String, f64)]) -> PyResult<Vec<(Metric, f64)>> {
    pairs.iter().map(|(m, b)| Ok((metric(py, m)?, *b))).collect()
}

/// `None`, `"mobile"` or `"cloud"`.
pub fn force(py: Python<'_>, name: Option<&str>) -> PyResult<Force> {
    match name {
        None => Ok(Force::None),
        Some("mobile") => Ok(Force::Mobile),
        Some("cloud") => Ok(Force::Cloud),
        Some(other) => Err(CONFIG_ERROR.new_err(py, format!("force must be None, 'mobile' or 'cloud', got {other:?}"))),
    }
}

/// `jointdnn_edge.planner.reference.LutSpec`: what a lookup table is built for.
#[derive(FromPyObject)]
pub struct PyLutSpec {
    objective: String,
    constraints: Vec<(String, f64)>,
    radio: PyRadio,
    up: (f64, f64),
    down: (f64, f64),
    slowdown: (f64, f64),
    cells: [usize; 3],
    force: Option<String>,
    max_candidates: usize,
    max_labels: usize,
    max_work: u64,
}

impl PyLutSpec {
    pub fn into_core(self, py: Python<'_>) -> PyResult<LutSpec> {
        Ok(LutSpec {
            objective: metric(py, &self.objective)?,
            constraints: constraints(py, &self.constraints)?,
            radio: self.radio.into(),
            up: self.up,
            down: self.down,
            slowdown: self.slowdown,
            cells: self.cells,
            force: force(py, self.force.as_deref())?,
            max_candidates: self.max_candidates,
            max_labels: self.max_labels,
            max_work: self.max_work,
        })
    }
}
