//! Lookup tables: a schedule decision per inference in well under a microsecond.
//!
//! The table covers a box of conditions — upload bandwidth, download
//! bandwidth (Mbit/s) and cloud slowdown — for a fixed radio (alpha, beta,
//! rtt), objective and constraints. For a fixed schedule every metric is a
//! linear function of `x = (1/up, 1/down, slowdown)` with non-negative
//! coefficients ([`crate::problem::reduce`]), so costs only grow with `x`.
//!
//! The box is cut into cells (log-spaced in bandwidth, linear in
//! slowdown). For a cell with lowest corner `x_lo` (fastest link, least
//! slowdown) and highest corner `x_hi`:
//! * a schedule feasible anywhere in the cell is feasible at `x_lo`;
//! * the optimum at any `x` in the cell is at most `U`, the optimum at
//!   `x_hi` (that schedule is feasible and no dearer at `x`);
//! * so every schedule optimal somewhere in the cell is feasible at `x_lo`
//!   with objective at `x_lo` at most `U`, and it is not dominated in the
//!   reduced coordinates (a dominating schedule is at least as good
//!   everywhere).
//!
//! The cell stores exactly those schedules ([`crate::search::Mode::All`]),
//! and a query evaluates them at the query point and takes the best
//! feasible one: the exact optimum, at every point of the box, not only at
//! grid points. When the problem is infeasible at `x_hi` the band is
//! unbounded. A cell whose band holds more than `max_candidates` schedules,
//! or whose enumeration costs more than `max_work` dominance comparisons (a
//! cell spanning a wide range of bandwidths), is marked
//! [`CellStatus::Solve`]: queries there fall back to a direct exact solve.
//! A cell infeasible at `x_lo` is infeasible throughout.

use rayon::prelude::*;

use crate::error::{bad_request, PlanError, Result};
use crate::plan::{solve, Request};
use crate::problem::{reduce, reduced_weights, Metric, Platform, Point, Radio, Usage, RDIMS};
use crate::search::{label_search, within, Force, Functional, LabelProblem, Mode, MAX_D};
use crate::structure::{Linear, StateGraph};

/// Default [`LutSpec::max_work`]: some tens of milliseconds per cell.
pub const CELL_MAX_WORK: u64 = 1 << 24;

/// Most cells a table may have (the file format counts them in `u32`; a build does one
/// search per cell).
pub const MAX_CELLS: usize = 1 << 22;

/// What a lookup table is built for.
#[derive(Clone, Debug)]
pub struct LutSpec {
    pub objective: Metric,
    /// `(metric, bound)` pairs.
    pub constraints: Vec<(Metric, f64)>,
    /// The radio the table is built for (bandwidths vary over the box).
    pub radio: Radio,
    pub up: (f64, f64),
    pub down: (f64, f64),
    pub slowdown: (f64, f64),
    /// Cells along up, down, slowdown (a degenerate range gets one cell).
    pub cells: [usize; 3],
    pub force: Force,
    pub max_candidates: usize,
    pub max_labels: usize,
    /// Dominance comparisons one cell's enumeration may spend before the cell is marked
    /// [`CellStatus::Solve`] (a wide cell's band can hold a huge number of schedules).
    pub max_work: u64,
}

impl LutSpec {
    /// Number of cells along each axis after collapsing degenerate ranges.
    pub fn axes(&self) -> [usize; 3] {
        let k = |(lo, hi): (f64, f64), c: usize| if lo == hi { 1 } else { c.max(1) };
        [
            k(self.up, self.cells[0]),
            k(self.down, self.cells[1]),
            k(self.slowdown, self.cells[2]),
        ]
    }

    pub fn num_cells(&self) -> usize {
        self.axes().iter().product()
    }

    /// Validates ranges and bounds.
    pub fn validate(&self) -> Result<()> {
        self.radio.validate()?;
        for (name, (lo, hi)) in [
            ("up_mbps", self.up),
            ("down_mbps", self.down),
            ("cloud_slowdown", self.slowdown),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
                return bad_request(format!(
                    "{name} range must satisfy 0 < lo <= hi (finite), got ({lo}, {hi})"
                ));
            }
        }
        if self.objective == Metric::Cloud {
            return bad_request("the objective must be latency or energy");
        }
        let [a, b, c] = self.axes();
        if a.checked_mul(b)
            .and_then(|x| x.checked_mul(c))
            .is_none_or(|x| x > MAX_CELLS)
        {
            return bad_request(format!(
                "a lookup table may have at most {MAX_CELLS} cells, got {a} x {b} x {c}"
            ));
        }
        Ok(())
    }

    /// `(x_lo, x_hi)` corners of cell `c` as points (bandwidths, slowdown).
    pub fn cell_corners(&self, c: usize) -> (Point, Point) {
        let [nu, nd, ns] = self.axes();
        let iu = c / (nd * ns);
        let id = (c / ns) % nd;
        let is = c % ns;
        let (u0, u1) = log_edges(self.up, nu, iu);
        let (d0, d1) = log_edges(self.down, nd, id);
        let (s0, s1) = lin_edges(self.slowdown, ns, is);
        (
            Point {
                up_mbps: u1,
                down_mbps: d1,
                slowdown: s0,
            },
            Point {
                up_mbps: u0,
                down_mbps: d0,
                slowdown: s1,
            },
        )
    }

    fn request_at(&self, p: &Point) -> Request {
        let mut r = Request::new(self.objective, self.radio.with_bandwidth(p.up_mbps, p.down_mbps));
        r.slowdown = p.slowdown;
        r.force = self.force;
        r.max_labels = self.max_labels;
        // The cell's budget bounds its corner solve too (else one cell could search for seconds).
        r.max_work = self.max_work;
        for &(m, b) in &self.constraints {
            match m {
                Metric::Latency => r.deadline_ms = Some(b),
                Metric::Energy => r.energy_budget_mj = Some(b),
                Metric::Cloud => r.cloud_budget_ms = Some(b),
            }
        }
        r
    }
}

fn log_edges((lo, hi): (f64, f64), k: usize, i: usize) -> (f64, f64) {
    if k == 1 {
        return (lo, hi);
    }
    let r = (hi / lo).ln();
    let a = if i == 0 {
        lo
    } else {
        lo * (r * i as f64 / k as f64).exp()
    };
    let b = if i + 1 == k {
        hi
    } else {
        lo * (r * (i + 1) as f64 / k as f64).exp()
    };
    (a, b)
}

fn lin_edges((lo, hi): (f64, f64), k: usize, i: usize) -> (f64, f64) {
    if k == 1 {
        return (lo, hi);
    }
    let a = if i == 0 {
        lo
    } else {
        lo + (hi - lo) * i as f64 / k as f64
    };
    let b = if i + 1 == k {
        hi
    } else {
        lo + (hi - lo) * (i + 1) as f64 / k as f64
    };
    (a, b)
}

/// How queries in a cell are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellStatus {
    /// The stored schedules contain the optimum at every point of the cell.
    Exact = 0,
    /// Too many candidates: solve directly.
    Solve = 1,
    /// No schedule is feasible anywhere in the cell.
    Infeasible = 2,
}

/// A schedule stored in a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub segments: Vec<(usize, usize, Platform)>,
    pub usage: Usage,
    pub transfers: u32,
}

/// The result of building one cell.
#[derive(Clone, Debug)]
pub struct CellResult {
    pub status: CellStatus,
    pub candidates: Vec<Candidate>,
}

/// Builds the given cells (in parallel).
pub fn build_cells(g: &StateGraph, spec: &LutSpec, cells: &[usize]) -> Result<Vec<CellResult>> {
    spec.validate()?;
    let total = spec.num_cells();
    if let Some(&c) = cells.iter().find(|&&c| c >= total) {
        return bad_request(format!("cell {c} is out of range 0..{total}"));
    }
    cells.par_iter().map(|&c| build_cell(g, spec, c)).collect()
}

fn build_cell(g: &StateGraph, spec: &LutSpec, c: usize) -> Result<CellResult> {
    let (lo, hi) = spec.cell_corners(c);
    let cap = match solve(g, &spec.request_at(&hi)) {
        Ok(s) => s.metric(
            spec.objective,
            &spec.radio.with_bandwidth(hi.up_mbps, hi.down_mbps),
            hi.slowdown,
        ),
        Err(PlanError::Infeasible { .. }) => f64::INFINITY,
        // over the cell's budget: queries here solve directly
        Err(PlanError::TooLarge(_)) => {
            return Ok(CellResult {
                status: CellStatus::Solve,
                candidates: Vec::new(),
            })
        }
        Err(e) => return Err(e),
    };
    let pad = |r: [f64; RDIMS]| -> Functional {
        let mut f = [0.0; MAX_D];
        f[..RDIMS].copy_from_slice(&r);
        f
    };
    let objective = pad(reduced_weights(spec.objective, &spec.radio, &lo));
    let constraints: Vec<(Functional, f64)> = spec
        .constraints
        .iter()
        .map(|&(m, b)| (pad(reduced_weights(m, &spec.radio, &lo)), b))
        .collect();
    // Coordinates no metric uses must not keep schedules apart.
    let mut relevant = [false; RDIMS];
    for f in std::iter::once(&objective).chain(constraints.iter().map(|(f, _)| f)) {
        for k in 0..RDIMS {
            relevant[k] |= f[k] != 0.0;
        }
    }
    let burst = spec.radio.burst();
    let delta = (0..RDIMS)
        .map(|k| {
            if relevant[k] {
                Linear::of(g, spec.force, burst, |u| reduce(u, &spec.radio)[k])
            } else {
                Linear::of(g, spec.force, burst, |_| 0.0)
            }
        })
        .collect();
    let lp = LabelProblem {
        graph: g,
        dim: RDIMS,
        delta,
        objective,
        constraints,
        objective_cap: cap,
        max_labels: spec.max_labels,
        max_work: spec.max_work,
    };
    match label_search(&lp, Mode::All) {
        Ok(found) if found.is_empty() => Ok(CellResult {
            status: CellStatus::Infeasible,
            candidates: Vec::new(),
        }),
        Ok(found) if found.len() > spec.max_candidates => Ok(CellResult {
            status: CellStatus::Solve,
            candidates: Vec::new(),
        }),
        Ok(found) => Ok(CellResult {
            status: CellStatus::Exact,
            candidates: found
                .iter()
                .map(|f| {
                    let (usage, transfers) = f.path.usage(g, burst);
                    Candidate {
                        segments: f.path.segments(g),
                        usage,
                        transfers,
                    }
                })
                .collect(),
        }),
        Err(PlanError::TooLarge(_)) => Ok(CellResult {
            status: CellStatus::Solve,
            candidates: Vec::new(),
        }),
        Err(e) => Err(e),
    }
}

/// The query side of a table: reduced coordinates of the stored schedules and the cells' lists.
///
/// `S` is how a cell's status is held: as the number a table file stores ([`IndexParts`],
/// unchecked) or as a [`CellStatus`] ([`LutIndex`], checked by [`LutIndex::new`]).
#[derive(Clone, Debug)]
pub struct IndexFields<S> {
    pub objective: Metric,
    pub constraints: Vec<(Metric, f64)>,
    pub radio: Radio,
    pub up: (f64, f64),
    pub down: (f64, f64),
    pub slowdown: (f64, f64),
    pub axes: [usize; 3],
    /// Per candidate: `reduce(usage, radio)`.
    pub reduced: Vec<[f64; RDIMS]>,
    /// Per cell: its status (in a file: 0 exact, 1 solve, 2 infeasible).
    pub status: Vec<S>,
    /// CSR offsets into `members` (len = cells + 1).
    pub offsets: Vec<u32>,
    pub members: Vec<u32>,
}

/// A table's query side as a file holds it, unchecked: [`LutIndex::new`] checks it.
pub type IndexParts = IndexFields<u8>;

/// The checked query side of a table.
pub type LutIndex = IndexFields<CellStatus>;

impl<S> IndexFields<S> {
    /// The same fields with the cells' statuses held as `status`.
    fn with_status<T>(self, status: Vec<T>) -> IndexFields<T> {
        IndexFields {
            objective: self.objective,
            constraints: self.constraints,
            radio: self.radio,
            up: self.up,
            down: self.down,
            slowdown: self.slowdown,
            axes: self.axes,
            reduced: self.reduced,
            status,
            offsets: self.offsets,
            members: self.members,
        }
    }
}

/// What a query found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Answer {
    /// Candidate index, and its latency (ms), mobile energy (mJ), cloud time (ms) at the point.
    Found(u32, [f64; 3]),
    /// No schedule is feasible at this point.
    Infeasible,
    /// The table cannot answer exactly here (cell marked Solve, or the point is outside the box).
    Solve,
}

impl LutIndex {
    /// A checked index: every field as a table file may hold it, refused unless consistent
    /// (so that queries cannot index out of range or compute with NaN).
    pub fn new(parts: IndexParts) -> Result<LutIndex> {
        let IndexFields {
            objective,
            ref constraints,
            radio,
            up,
            down,
            slowdown,
            axes,
            ref reduced,
            ref status,
            ref offsets,
            ref members,
        } = parts;
        let bad = |m: String| Err(PlanError::InvalidInput(m));
        if objective == Metric::Cloud {
            return bad("the objective must be latency or energy".into());
        }
        if let Err(e) = radio.validate() {
            return bad(e.to_string());
        }
        for (name, (lo, hi)) in [("up_mbps", up), ("down_mbps", down), ("cloud_slowdown", slowdown)] {
            if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
                return bad(format!(
                    "{name} range must satisfy 0 < lo <= hi (finite), got ({lo}, {hi})"
                ));
            }
        }
        for &(_, b) in constraints {
            if !(b.is_finite() && b >= 0.0) {
                return bad(format!("constraint bounds must be finite and >= 0, got {b}"));
            }
        }
        let cells = axes[0].checked_mul(axes[1]).and_then(|x| x.checked_mul(axes[2]));
        let cells = match cells {
            Some(c) if axes.iter().all(|&a| a >= 1) && c <= MAX_CELLS => c,
            _ => return bad(format!("axes {axes:?} must be positive with at most {MAX_CELLS} cells")),
        };
        if status.len() != cells
            || offsets.len() != cells + 1
            || offsets[0] != 0
            || offsets.windows(2).any(|w| w[0] > w[1])
            || offsets[cells] as usize != members.len()
        {
            return bad("inconsistent cell arrays".into());
        }
        if members.iter().any(|&m| m as usize >= reduced.len()) {
            return bad("cell members out of range".into());
        }
        if reduced.iter().flatten().any(|x| !(x.is_finite() && *x >= 0.0)) {
            return bad("stored schedules' costs must be finite and >= 0".into());
        }
        let status = status
            .iter()
            .map(|s| match s {
                0 => Ok(CellStatus::Exact),
                1 => Ok(CellStatus::Solve),
                2 => Ok(CellStatus::Infeasible),
                other => Err(PlanError::InvalidInput(format!("unknown cell status {other}"))),
            })
            .collect::<Result<_>>()?;
        Ok(parts.with_status(status))
    }

    fn locate(&self, p: &Point) -> Option<usize> {
        let axis = |(lo, hi): (f64, f64), k: usize, v: f64, log: bool| -> Option<usize> {
            let slack = 1e-12 * hi.abs().max(1.0);
            // v > 0 too: with a tiny lo the slack could admit a zero bandwidth or slowdown
            if !(v > 0.0 && v >= lo - slack && v <= hi + slack) {
                return None;
            }
            if k == 1 {
                return Some(0);
            }
            let f = if log {
                (v / lo).ln() / (hi / lo).ln()
            } else {
                (v - lo) / (hi - lo)
            };
            Some(((f * k as f64).floor().max(0.0) as usize).min(k - 1))
        };
        let [nu, nd, ns] = self.axes;
        let iu = axis(self.up, nu, p.up_mbps, true)?;
        let id = axis(self.down, nd, p.down_mbps, true)?;
        let is = axis(self.slowdown, ns, p.slowdown, false)?;
        Some((iu * nd + id) * ns + is)
    }

    /// The best stored schedule at `p` (see [`Answer`]).
    pub fn query(&self, p: &Point) -> Answer {
        let Some(c) = self.locate(p) else {
            return Answer::Solve;
        };
        match self.status[c] {
            CellStatus::Solve => return Answer::Solve,
            CellStatus::Infeasible => return Answer::Infeasible,
            CellStatus::Exact => {}
        }
        let wl = reduced_weights(Metric::Latency, &self.radio, p);
        let we = reduced_weights(Metric::Energy, &self.radio, p);
        let wc = reduced_weights(Metric::Cloud, &self.radio, p);
        let value = |w: &[f64; RDIMS], r: &[f64; RDIMS]| -> f64 { (0..RDIMS).map(|k| w[k] * r[k]).sum() };
        let mut best: Option<(u32, f64, [f64; 3])> = None;
        for &m in &self.members[self.offsets[c] as usize..self.offsets[c + 1] as usize] {
            let r = &self.reduced[m as usize];
            let v = [value(&wl, r), value(&we, r), value(&wc, r)];
            let pick = |metric: Metric| match metric {
                Metric::Latency => v[0],
                Metric::Energy => v[1],
                Metric::Cloud => v[2],
            };
            if !self.constraints.iter().all(|&(metric, b)| within(pick(metric), b)) {
                continue;
            }
            let o = pick(self.objective);
            if best.as_ref().is_none_or(|(_, bo, _)| o < *bo) {
                best = Some((m, o, v));
            }
        }
        match best {
            Some((m, _, v)) => Answer::Found(m, v),
            None => Answer::Infeasible,
        }
    }
}
