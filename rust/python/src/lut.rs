//! `LutIndex`: the query side of a lookup table (see `jointdnn_core::lut`).

use jointdnn_core::lut::{Answer, IndexParts, LutIndex as CoreIndex};
use jointdnn_core::problem::RDIMS;
use jointdnn_core::Point;
use pyo3::prelude::*;

use crate::errors::{INFEASIBLE_ERROR, LOOKUP_TABLE_ERROR};
use crate::results::LutAnswer;
use crate::values::{constraints, metric, PyRadio};

/// The query side of a lookup table (see `jointdnn_core::lut`).
#[pyclass(frozen, module = "jointdnn_edge._core")]
pub struct LutIndex {
    index: CoreIndex,
}

#[pymethods]
impl LutIndex {
    #[new]
    #[pyo3(signature = (*, objective, constraints, radio, up_mbps, down_mbps, cloud_slowdown, axes, reduced, status, offsets, members))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        objective: &str,
        constraints: Vec<(String, f64)>,
        radio: PyRadio,
        up_mbps: (f64, f64),
        down_mbps: (f64, f64),
        cloud_slowdown: (f64, f64),
        axes: [usize; 3],
        reduced: Vec<[f64; RDIMS]>,
        status: Vec<u8>,
        offsets: Vec<u32>,
        members: Vec<u32>,
    ) -> PyResult<Self> {
        let parts = IndexParts {
            objective: metric(py, objective)?,
            constraints: self::constraints(py, &constraints)?,
            radio: radio.into(),
            up: up_mbps,
            down: down_mbps,
            slowdown: cloud_slowdown,
            axes,
            reduced,
            status,
            offsets,
            members,
        };
        let index = CoreIndex::new(parts).map_err(|e| LOOKUP_TABLE_ERROR.new_err(py, e.to_string()))?;
        Ok(LutIndex { index })
    }

    /// The best stored schedule at the point as a `LutAnswer`, or None where the table cannot
    /// answer alone (solve directly); `InfeasibleError` where nothing is feasible.
    fn query(&self, py: Python<'_>, up_mbps: f64, down_mbps: f64, slowdown: f64) -> PyResult<Option<LutAnswer>> {
        let p = Point {
            up_mbps,
            down_mbps,
            slowdown,
        };
        match self.index.query(&p) {
            Answer::Found(i, v) => LutAnswer::new(py, i, v).map(Some),
            Answer::Solve => Ok(None),
            Answer::Infeasible => Err(INFEASIBLE_ERROR.new_err(py, "no stored schedule meets the constraints here")),
        }
    }
}
