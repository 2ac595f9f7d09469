//! Exact searches over the [`StateGraph`].
//!
//! * [`shortest_path`]: the unconstrained optimum for one scalar cost
//!   (weights · usage), a DP over states in topological order.
//! * [`cost_to_go`]: the same DP run backwards, giving every state's
//!   least remaining cost; used as admissible bounds.
//! * [`label_search`]: exact multi-criteria label setting. Each state keeps
//!   the labels (partial schedules) not dominated by another label there;
//!   a label is discarded when even the cheapest completion would break a
//!   bound. In [`Mode::Best`] it returns the optimum subject to the bounds
//!   (branch and bound on the objective with the incumbent); in
//!   [`Mode::All`] it returns every non-dominated schedule whose objective
//!   lower bound stays within a given band — what lookup tables store.

use crate::error::{PlanError, Result};
use crate::problem::{dot, Burst, Platform, Usage, BYTES_UP, DIMS, NO_BURST};
use crate::structure::{Lanes, Linear, StateGraph, Step};

/// Which platforms groups may run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Force {
    #[default]
    None,
    Mobile,
    Cloud,
}

impl Force {
    #[inline]
    pub fn allows(self, p: Platform) -> bool {
        match self {
            Force::None => true,
            Force::Mobile => p == Platform::Mobile,
            Force::Cloud => p == Platform::Cloud,
        }
    }
}

/// A path through the state graph: the transitions taken, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub steps: Vec<Step>,
}

impl Path {
    /// `(first, last, platform)` of each group.
    pub fn segments(&self, g: &StateGraph) -> Vec<(usize, usize, Platform)> {
        self.steps.iter().map(|&s| g.step_group(s)).collect()
    }

    /// Sum of the transitions' usage (on a link with `burst`) and transfer counts.
    pub fn usage(&self, g: &StateGraph, burst: Burst) -> (Usage, u32) {
        let mut u = [0.0; crate::problem::DIMS];
        let mut n = 0;
        for &s in &self.steps {
            let (su, st) = g.step_usage(s, burst);
            u = crate::problem::add(&u, &su);
            n += st;
        }
        (u, n)
    }
}

/// Cheapest path from the initial state to a terminal state under `lin`.
/// `None` when no terminal state is reachable.
pub fn shortest_path(g: &StateGraph, lin: &Linear) -> Option<(f64, Path)> {
    relax_classes(g, lin, |x| lin.xfer[x])
}

/// [`shortest_path`] for the cost `w · usage` on a link with `burst` (the same values as under
/// `Linear::dot(g, force, burst, w)`), weighing only the transfer vectors the search reaches.
pub fn shortest_path_dot(g: &StateGraph, force: Force, burst: Burst, w: &Usage) -> Option<(f64, Path)> {
    let lin = Linear::compute(force, |u| dot(w, u));
    if burst == NO_BURST {
        relax_classes(g, &lin, |x| transfer_dot(w, &g.xfer[x]))
    } else {
        relax_classes(g, &lin, |x| transfer_dot(w, &g.transfer_usage(x, burst)))
    }
}

/// `w · u` for a transfer vector `u`: its compute coordinates are zero, and the compute weights finite
/// (a request's), so the sum over the transfer coordinates is the same number.
#[inline(always)]
fn transfer_dot(w: &Usage, u: &Usage) -> f64 {
    let mut s = 0.0;
    for k in BYTES_UP..DIMS {
        s += w[k] * u[k];
    }
    s
}

/// A state's least distance found so far, and the class whose relaxation found it.
#[derive(Clone, Copy)]
struct Best {
    dist: f64,
    via: u32,
}

/// The shortest-path DP with transfer costs `xfer(index)` and compute weighed by `lin`: over the lane
/// layout when the graph has one, else over the states.
#[inline(always)]
fn relax_classes(g: &StateGraph, lin: &Linear, xfer: impl Fn(usize) -> f64) -> Option<(f64, Path)> {
    match &g.lanes {
        Some(lanes) => relax_lanes(g, lanes, lin, xfer),
        None => relax_states(g, lin, xfer),
    }
}

/// The first cheapest of a class's `(member, dist[from] + transfers)`; `None` when none is finite.
#[inline(always)]
fn cheapest(members: impl Iterator<Item = (usize, f64)>) -> Option<(u32, f64)> {
    let (mut pick, mut base) = (u32::MAX, f64::INFINITY);
    for (m, v) in members {
        if v < base {
            (pick, base) = (m as u32, v);
        }
    }
    (base != f64::INFINITY).then_some((pick, base))
}

/// `best[k] = weight · column[k] + base` via `class` where that is shorter (slices of one length).
#[inline(always)]
fn relax_slice(best: &mut [Best], column: &[f64], weight: f64, base: f64, class: u32) {
    let len = best.len().min(column.len());
    let (best, column) = (&mut best[..len], &column[..len]);
    for k in 0..len {
        // one index for both slices, no bounds checks
        let nd = weight * column[k] + base;
        if nd < best[k].dist {
            best[k] = Best { dist: nd, via: class };
        }
    }
}

/// [`relax_slice`] for mobile compute weighed on both columns (`a · ms + b · mj`).
#[inline(always)]
fn relax_slice2(best: &mut [Best], ms: &[f64], mj: &[f64], a: f64, b: f64, base: f64, class: u32) {
    for ((to, &m), &e) in best.iter_mut().zip(ms).zip(mj) {
        let nd = a * m + b * e + base;
        if nd < to.dist {
            *to = Best { dist: nd, via: class };
        }
    }
}

/// [`relax_states`] over the lane layout: each class's targets are one slice of slots.
#[inline(always)]
fn relax_lanes(g: &StateGraph, lanes: &Lanes, lin: &Linear, xfer: impl Fn(usize) -> f64) -> Option<(f64, Path)> {
    let unreached = Best {
        dist: f64::INFINITY,
        via: u32::MAX,
    };
    let mut best = vec![unreached; lanes.slots];
    let mut pick = vec![u32::MAX; lanes.classes.len()];
    best[0].dist = 0.0; // the initial state: boundary 0, lane 0
    let mut first = 0;
    for (c, class) in lanes.classes.iter().enumerate() {
        let members = first..class.members_end as usize;
        first = members.end;
        if !lin.allows(class.platform) {
            continue;
        }
        let reached = members.clone().zip(&lanes.members[members]);
        let Some((m, base)) = cheapest(reached.map(|(m, l)| (m, best[l.slot as usize].dist + xfer(l.xfer as usize))))
        else {
            continue; // no member reached (or its transfers overflow)
        };
        pick[c] = m;
        let (slot, at, len) = (class.slot as usize, class.at as usize, class.len as usize);
        let to = &mut best[slot..slot + len];
        let at = at..at + len;
        let via = c as u32;
        match class.platform {
            Platform::Cloud => relax_slice(to, &g.cloud_ms[at], lin.cloud, base, via),
            Platform::Mobile => match lin.mobile {
                (a, 0.0) => relax_slice(to, &g.mobile_ms[at], a, base, via),
                (0.0, b) => relax_slice(to, &g.mobile_mj[at], b, base, via),
                (a, b) => relax_slice2(to, &g.mobile_ms[at.clone()], &g.mobile_mj[at], a, b, base, via),
            },
        }
    }
    // Terminal slots: boundary n of each lane, in lane order (= state order).
    let end = (g.n..lanes.slots)
        .step_by(lanes.stride)
        .filter(|&s| best[s].dist.is_finite())
        .min_by(|&a, &b| best[a].dist.total_cmp(&best[b].dist))?;
    let mut steps = Vec::new();
    let mut s = end;
    while s != 0 {
        let m = pick[best[s].via as usize] as usize;
        steps.push(Step {
            run: g.class_members[m],
            last: (s % lanes.stride) as u32 - 1,
        });
        s = lanes.members[m].slot as usize;
    }
    steps.reverse();
    Some((best[end].dist, Path { steps }))
}

/// The shortest-path DP over the states (graphs without a lane layout).
///
/// Classes are visited in boundary order, so every member's source is final when its class is
/// relaxed: once, from `min(dist[from] + transfers)` over the members.
#[inline(always)]
fn relax_states(g: &StateGraph, lin: &Linear, xfer: impl Fn(usize) -> f64) -> Option<(f64, Path)> {
    let ns = g.num_states();
    let mut best = vec![
        Best {
            dist: f64::INFINITY,
            via: u32::MAX
        };
        ns
    ];
    // The member (position in `class_members`) each class was relaxed from.
    let mut pick = vec![u32::MAX; g.classes.len()];
    best[0].dist = 0.0;
    for (c, class) in g.classes.iter().enumerate() {
        if !lin.allows(class.platform) {
            continue;
        }
        let members = g.members(c);
        let reached = members.clone().zip(&g.member_links[members]);
        let Some((m, base)) = cheapest(reached.map(|(m, l)| (m, best[l.from as usize].dist + xfer(l.xfer as usize))))
        else {
            continue; // no member reached (or its transfers overflow)
        };
        pick[c] = m;
        let (q0, len) = (class.q0 as usize, class.len as usize);
        // targets: state `state_start[q + 1] + local` for q = q0.. (one slice of the boundary offsets)
        let starts = &g.state_start[q0 + 1..q0 + 1 + len];
        let (local, via) = (class.local, c as u32);
        let mut relax = |column: &[f64], weight: f64| {
            for (&v, &start) in column.iter().zip(starts) {
                let nd = weight * v + base;
                let to = &mut best[(start + local) as usize];
                if nd < to.dist {
                    to.dist = nd;
                    to.via = via;
                }
            }
        };
        let at = class.at..class.at + len;
        match class.platform {
            Platform::Cloud => relax(&g.cloud_ms[at], lin.cloud),
            Platform::Mobile => match lin.mobile {
                (a, 0.0) => relax(&g.mobile_ms[at], a),
                (0.0, b) => relax(&g.mobile_mj[at], b),
                (a, b) => {
                    let (ms, mj) = (&g.mobile_ms[at.clone()], &g.mobile_mj[at]);
                    for ((&m, &e), &start) in ms.iter().zip(mj).zip(starts) {
                        let nd = a * m + b * e + base;
                        let to = &mut best[(start + local) as usize];
                        if nd < to.dist {
                            to.dist = nd;
                            to.via = via;
                        }
                    }
                }
            },
        }
    }
    let end = (g.state_start[g.n] as usize..ns)
        .filter(|&s| best[s].dist.is_finite())
        .min_by(|&a, &b| best[a].dist.total_cmp(&best[b].dist))?;
    let mut steps = Vec::new();
    let mut s = end;
    while s != 0 {
        let run = g.class_members[pick[best[s].via as usize] as usize];
        steps.push(Step {
            run,
            last: g.boundary[s] - 1,
        });
        s = g.runs[run as usize].from as usize;
    }
    steps.reverse();
    Some((best[end].dist, Path { steps }))
}

/// Least remaining cost from every state to the end under `lin` (`inf` if none).
pub fn cost_to_go(g: &StateGraph, lin: &Linear) -> Vec<f64> {
    let ns = g.num_states();
    let mut h = vec![f64::INFINITY; ns];
    for s in (0..ns).rev() {
        if g.is_terminal(s) {
            h[s] = 0.0;
            continue;
        }
        let mut best = f64::INFINITY;
        for r in g.runs_of(s) {
            if !lin.allows(r.platform) {
                continue;
            }
            let q0 = r.q0 as usize;
            let starts = &g.state_start[q0 + 1..q0 + 1 + r.len as usize];
            g.for_run(r, lin, |k, c| {
                let v = c + h[(starts[k] + r.local) as usize];
                if v < best {
                    best = v;
                }
            });
        }
        h[s] = best;
    }
    h
}

/// Largest label vector dimension.
pub const MAX_D: usize = 5;

/// A linear function of the label vector: `coef · v`.
pub type Functional = [f64; MAX_D];

#[inline]
fn apply(f: &Functional, v: &[f64; MAX_D], d: usize) -> f64 {
    let mut s = 0.0;
    for k in 0..d {
        s += f[k] * v[k];
    }
    s
}

/// What [`label_search`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The single best feasible schedule.
    Best,
    /// Every non-dominated feasible schedule within the objective band.
    All,
}

/// A constrained search problem over a state graph.
pub struct LabelProblem<'a> {
    pub graph: &'a StateGraph,
    /// Label dimension (<= [`MAX_D`]).
    pub dim: usize,
    /// Per label coordinate: a transition's contribution to it (`dim` of them, the same platforms allowed).
    pub delta: Vec<Linear>,
    pub objective: Functional,
    /// `(functional, bound)`: a schedule is feasible when `f · v <= bound`.
    pub constraints: Vec<(Functional, f64)>,
    /// Upper bound on the objective (schedules above it are not wanted).
    pub objective_cap: f64,
    /// Stop with [`PlanError::TooLarge`] past this many labels.
    pub max_labels: usize,
    /// Stop with [`PlanError::TooLarge`] past this many dominance comparisons: the search's
    /// running time, counted the same way by the pure-Python mirror so both stop alike.
    pub max_work: u64,
}

/// A complete schedule found by [`label_search`].
#[derive(Clone, Debug)]
pub struct Found {
    pub path: Path,
    pub value: [f64; MAX_D],
}

struct Label {
    v: [f64; MAX_D],
    prev: u32,
    via: Step,
}

/// Relative slack when comparing label vectors: the same totals summed in
/// another order may differ in the last bits, and such labels are equal.
pub const DOMINANCE_SLACK: f64 = 1e-12;

/// `a <= b` in the first `d` coordinates, up to [`DOMINANCE_SLACK`].
#[inline]
fn le(a: &[f64; MAX_D], b: &[f64; MAX_D], d: usize) -> bool {
    (0..d).all(|j| a[j] <= b[j] + DOMINANCE_SLACK * b[j].abs())
}

/// Relative slack on bounds: values within it count as meeting the bound.
pub const TOLERANCE: f64 = 1e-9;

#[inline]
pub fn within(value: f64, bound: f64) -> bool {
    value <= bound + TOLERANCE * bound.abs().max(1.0)
}

/// Exact label setting (see the module docs).
pub fn label_search(lp: &LabelProblem, mode: Mode) -> Result<Vec<Found>> {
    let g = lp.graph;
    let d = lp.dim;
    let ns = g.num_states();
    // The functional `f` of the label vector as one linear cost per transition.
    let combine = |f: &Functional| -> Linear {
        let mut lin = lp.delta[0].clone();
        lin.mobile = (0.0, 0.0);
        lin.cloud = 0.0;
        lin.xfer.iter_mut().for_each(|x| *x = 0.0);
        for (k, dk) in lp.delta.iter().enumerate().take(d) {
            let c = f[k];
            if c == 0.0 {
                continue;
            }
            lin.mobile.0 += c * dk.mobile.0;
            lin.mobile.1 += c * dk.mobile.1;
            lin.cloud += c * dk.cloud;
            for (x, y) in lin.xfer.iter_mut().zip(&dk.xfer) {
                *x += c * y;
            }
        }
        lin
    };
    // Admissible bounds: least remaining value of every functional from every state.
    let lb_obj = cost_to_go(g, &combine(&lp.objective));
    let lb_con: Vec<Vec<f64>> = lp.constraints.iter().map(|(f, _)| cost_to_go(g, &combine(f))).collect();

    let mut cap = lp.objective_cap;
    let mut work: u64 = 0;
    let none = Step { run: u32::MAX, last: 0 };
    let mut arena: Vec<Label> = vec![Label {
        v: [0.0; MAX_D],
        prev: u32::MAX,
        via: none,
    }];
    let mut alive: Vec<Vec<u32>> = vec![Vec::new(); ns];
    alive[0].push(0);
    if !lb_obj[0].is_finite()
        || lp
            .constraints
            .iter()
            .zip(&lb_con)
            .any(|((_, b), lb)| !within(lb[0], *b))
    {
        return Ok(Vec::new());
    }

    // The current state's transitions (allowed ones, in CSR order): step, target, label delta.
    let mut steps: Vec<(Step, u32)> = Vec::new();
    let mut deltas: Vec<[f64; MAX_D]> = Vec::new();
    let mut costs = Vec::with_capacity(2 * g.n);
    for s in 0..ns {
        if g.is_terminal(s) {
            continue;
        }
        let labels = std::mem::take(&mut alive[s]);
        if labels.is_empty() {
            continue;
        }
        steps.clear();
        deltas.clear();
        let first_run = g.run_start[s] as usize;
        for (i, r) in g.runs_of(s).iter().enumerate() {
            if !lp.delta[0].allows(r.platform) {
                continue;
            }
            let at = deltas.len();
            for (k, dk) in lp.delta.iter().enumerate().take(d) {
                g.run_costs(r, dk, &mut costs);
                if k == 0 {
                    deltas.resize(at + costs.len(), [0.0; MAX_D]);
                    for (j, q) in (r.q0..r.q0 + r.len).enumerate() {
                        steps.push((
                            Step {
                                run: (first_run + i) as u32,
                                last: q,
                            },
                            g.target(r, q as usize) as u32,
                        ));
                        deltas[at + j][0] = costs[j];
                    }
                } else {
                    for (j, &c) in costs.iter().enumerate() {
                        deltas[at + j][k] = c;
                    }
                }
            }
        }
        for &li in &labels {
            let base = arena[li as usize].v;
            'trans: for (&(step, to), dv) in steps.iter().zip(&deltas) {
                let to = to as usize;
                let mut v = base;
                for (x, dx) in v.iter_mut().zip(dv).take(d) {
                    *x += dx;
                }
                for ((f, b), lb) in lp.constraints.iter().zip(&lb_con) {
                    if !within(apply(f, &v, d) + lb[to], *b) {
                        continue 'trans;
                    }
                }
                let obj_lb = apply(&lp.objective, &v, d) + lb_obj[to];
                match mode {
                    // strictly better than the incumbent only
                    Mode::Best => {
                        if obj_lb >= cap {
                            continue;
                        }
                    }
                    Mode::All => {
                        if !within(obj_lb, cap) {
                            continue;
                        }
                    }
                }
                // Dominance at the target state.
                let here = &mut alive[to];
                work += here.len() as u64;
                if work > lp.max_work {
                    return Err(PlanError::TooLarge(format!(
                        "the exact constrained search exceeded its budget of {} label comparisons; loosen the \
                         constraints, offer fewer group lengths, or use solver=\"ilp\"",
                        lp.max_work
                    )));
                }
                // A dominated label changes nothing; otherwise it replaces the labels it dominates.
                // (Two passes, as in reference.py: with the slack `le` is not transitive, so
                // removing labels before finding a dominating one could drop a label that only
                // a discarded one beat.)
                if here.iter().any(|&m| le(&arena[m as usize].v, &v, d)) {
                    continue;
                }
                here.retain(|&m| !le(&v, &arena[m as usize].v, d));
                if arena.len() >= lp.max_labels {
                    return Err(PlanError::TooLarge(format!(
                        "the exact constrained search exceeded {} labels; loosen the constraints, \
                         offer fewer group lengths, or use solver=\"ilp\"",
                        lp.max_labels
                    )));
                }
                arena.push(Label { v, prev: li, via: step });
                here.push((arena.len() - 1) as u32);
                if mode == Mode::Best && g.is_terminal(to) {
                    let val = apply(&lp.objective, &v, d);
                    if val < cap {
                        cap = val;
                    }
                }
            }
        }
    }

    let mut finals: Vec<u32> = (0..ns)
        .filter(|&s| g.is_terminal(s))
        .flat_map(|s| alive[s].iter().copied())
        .collect();
    let path_of = |mut li: u32| -> Path {
        let mut steps = Vec::new();
        while arena[li as usize].prev != u32::MAX {
            steps.push(arena[li as usize].via);
            li = arena[li as usize].prev;
        }
        steps.reverse();
        Path { steps }
    };
    match mode {
        Mode::Best => {
            let best = finals.iter().copied().min_by(|&a, &b| {
                apply(&lp.objective, &arena[a as usize].v, d).total_cmp(&apply(&lp.objective, &arena[b as usize].v, d))
            });
            Ok(best
                .map(|li| Found {
                    path: path_of(li),
                    value: arena[li as usize].v,
                })
                .into_iter()
                .collect())
        }
        Mode::All => {
            // Terminal states differ only in the last platform: prune dominance across them.
            finals.sort_by(|&a, &b| {
                let (va, vb) = (&arena[a as usize].v, &arena[b as usize].v);
                va[..d]
                    .iter()
                    .zip(&vb[..d])
                    .fold(std::cmp::Ordering::Equal, |o, (x, y)| o.then(x.total_cmp(y)))
            });
            let mut kept: Vec<u32> = Vec::new();
            for &li in &finals {
                let v = &arena[li as usize].v;
                if kept.iter().any(|&m| le(&arena[m as usize].v, v, d)) {
                    continue;
                }
                if !within(apply(&lp.objective, v, d), cap) {
                    continue;
                }
                kept.push(li);
            }
            Ok(kept
                .into_iter()
                .map(|li| Found {
                    path: path_of(li),
                    value: arena[li as usize].v,
                })
                .collect())
        }
    }
}
