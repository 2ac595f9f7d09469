//! One planning request: the optimal schedule for a network, an objective
//! and any combination of constraints.

use crate::error::{bad_request, PlanError, Result};
use crate::problem::{dot, weights, Burst, Metric, Network, Platform, Usage, NO_BURST};
use crate::search::{
    label_search, shortest_path, shortest_path_dot, within, Force, Functional, LabelProblem, Mode, Path, MAX_D,
};
use crate::structure::{Linear, StateGraph};

/// Default cap on labels kept by the exact constrained search.
pub const DEFAULT_MAX_LABELS: usize = 2_000_000;

/// Default cap on the dominance comparisons of one exact constrained search (seconds of work).
pub const DEFAULT_MAX_WORK: u64 = 2_000_000_000;

/// What to optimise, under which conditions and constraints.
#[derive(Clone, Debug)]
pub struct Request {
    pub objective: Metric,
    pub network: Network,
    pub slowdown: f64,
    pub deadline_ms: Option<f64>,
    pub energy_budget_mj: Option<f64>,
    pub cloud_budget_ms: Option<f64>,
    pub force: Force,
    pub max_labels: usize,
    pub max_work: u64,
}

impl Request {
    /// An unconstrained request.
    pub fn new(objective: Metric, network: Network) -> Request {
        Request {
            objective,
            network,
            slowdown: 1.0,
            deadline_ms: None,
            energy_budget_mj: None,
            cloud_budget_ms: None,
            force: Force::None,
            max_labels: DEFAULT_MAX_LABELS,
            max_work: DEFAULT_MAX_WORK,
        }
    }

    /// The active constraints as `(name, metric, bound)`.
    pub fn constraints(&self) -> Vec<(&'static str, Metric, f64)> {
        let mut c = Vec::new();
        if let Some(b) = self.deadline_ms {
            c.push(("deadline_ms", Metric::Latency, b));
        }
        if let Some(b) = self.energy_budget_mj {
            c.push(("energy_budget_mj", Metric::Energy, b));
        }
        if let Some(b) = self.cloud_budget_ms {
            c.push(("cloud_budget_ms", Metric::Cloud, b));
        }
        c
    }

    fn validate(&self) -> Result<()> {
        self.network.validate()?;
        if !(self.slowdown.is_finite() && self.slowdown > 0.0) {
            return bad_request(format!(
                "cloud_slowdown must be positive and finite, got {}",
                self.slowdown
            ));
        }
        if self.objective == Metric::Cloud {
            return bad_request("the objective must be latency or energy");
        }
        for (name, _, b) in self.constraints() {
            if !(b.is_finite() && b >= 0.0) {
                return bad_request(format!("{name} must be finite and >= 0, got {b}"));
            }
        }
        Ok(())
    }
}

/// An optimal schedule and its totals (bandwidth-independent; the credit dimensions are the request's burst's).
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    pub segments: Vec<(usize, usize, Platform)>,
    pub usage: Usage,
    pub transfers: u32,
}

impl Solution {
    fn from_path(g: &StateGraph, path: &Path, burst: Burst) -> Solution {
        let (usage, transfers) = path.usage(g, burst);
        Solution {
            segments: path.segments(g),
            usage,
            transfers,
        }
    }

    /// The value of `metric` for this schedule on `net` with `slowdown`.
    pub fn metric(&self, metric: Metric, net: &Network, slowdown: f64) -> f64 {
        dot(&weights(metric, net, slowdown), &self.usage)
    }
}

/// The exact optimum of `req` over the state graph `g`.
///
/// Unconstrained: one shortest path. Constrained: if the unconstrained
/// optimum already meets every bound it is returned; otherwise each
/// constraint is checked alone (naming it when even its own minimum breaks
/// it), then an exact label-setting search with the best single-constraint
/// schedule as incumbent finds the optimum.
pub fn solve(g: &StateGraph, req: &Request) -> Result<Solution> {
    req.validate()?;
    let net = &req.network;
    let burst = net.burst();
    let w_obj = weights(req.objective, net, req.slowdown);
    let (_, best_path) =
        shortest_path_dot(g, req.force, burst, &w_obj).ok_or_else(|| no_path(g, req, req.objective))?;
    let best = Solution::from_path(g, &best_path, burst);
    let constraints = req.constraints();
    let meets = |s: &Solution| {
        constraints
            .iter()
            .all(|&(_, m, b)| within(s.metric(m, net, req.slowdown), b))
    };
    if meets(&best) {
        return Ok(best);
    }

    // Each constraint alone: its least value, and an incumbent if one of those schedules meets all.
    let mut incumbent: Option<(f64, Solution)> = None;
    for &(name, m, b) in &constraints {
        // Every schedule exists (the objective's search found one), so no path here means
        // that every schedule's value of this metric overflows.
        let (least, path) =
            shortest_path_dot(g, req.force, burst, &weights(m, net, req.slowdown)).ok_or_else(|| no_path(g, req, m))?;
        if !within(least, b) {
            return Err(PlanError::Infeasible {
                constraint: name.into(),
                best: Some(least),
                message: format!(
                    "no schedule meets {name} = {b}: the least {} any schedule reaches is {least:.6}",
                    describe(m)
                ),
            });
        }
        let s = Solution::from_path(g, &path, burst);
        if meets(&s) {
            let v = s.metric(req.objective, net, req.slowdown);
            if incumbent.as_ref().is_none_or(|(iv, _)| v < *iv) {
                incumbent = Some((v, s));
            }
        }
    }

    // Exact label setting over [objective, constraint values].
    let dim = 1 + constraints.len();
    let ws: Vec<Usage> = std::iter::once(w_obj)
        .chain(constraints.iter().map(|&(_, m, _)| weights(m, net, req.slowdown)))
        .collect();
    let delta = ws.iter().map(|w| Linear::dot(g, req.force, burst, w)).collect();
    let unit = |k: usize| -> Functional {
        let mut f = [0.0; MAX_D];
        f[k] = 1.0;
        f
    };
    let lp = LabelProblem {
        graph: g,
        dim,
        delta,
        objective: unit(0),
        constraints: constraints
            .iter()
            .enumerate()
            .map(|(k, &(_, _, b))| (unit(k + 1), b))
            .collect(),
        objective_cap: incumbent.as_ref().map_or(f64::INFINITY, |(v, _)| *v),
        max_labels: req.max_labels,
        max_work: req.max_work,
    };
    let found = label_search(&lp, Mode::Best)?;
    if let Some(f) = found.into_iter().next() {
        return Ok(Solution::from_path(g, &f.path, burst));
    }
    if let Some((_, s)) = incumbent {
        return Ok(s);
    }
    let names: Vec<&str> = constraints.iter().map(|c| c.0).collect();
    Err(PlanError::Infeasible {
        constraint: names.join("+"),
        best: None,
        message: format!(
            "no schedule meets {} together (each can be met alone)",
            constraints
                .iter()
                .map(|(n, _, b)| format!("{n} = {b}"))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    })
}

/// Why a shortest-path search for `metric` found no schedule: none exists with the offered groups
/// (a structural fact), or every schedule's value overflows to infinity or is undefined (costs or
/// network values near the floating-point limit, ~1.8e308).
fn no_path(g: &StateGraph, req: &Request, metric: Metric) -> PlanError {
    let structural = Linear::of(g, req.force, NO_BURST, |_| 0.0);
    if shortest_path(g, &structural).is_none() {
        return PlanError::Infeasible {
            constraint: "groups".into(),
            best: None,
            message: "no schedule exists with the offered groups".into(),
        };
    }
    PlanError::InvalidInput(format!(
        "every schedule's {} overflows to infinity or is undefined: the cost table or network values \
         are too large for floating point",
        describe(metric)
    ))
}

fn describe(m: Metric) -> &'static str {
    match m {
        Metric::Latency => "latency (ms)",
        Metric::Energy => "mobile energy (mJ)",
        Metric::Cloud => "cloud time (ms)",
    }
}
