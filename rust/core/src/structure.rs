//! The JointDNN graph, generalised to any DAG, as an explicit state graph.
//!
//! A schedule cuts the layers (in topological order) into groups of
//! consecutive layers, each run on the mobile or the cloud. A *boundary* `p`
//! sits between layer `p - 1` and layer `p`. What the future cost of a
//! schedule depends on, at boundary `p`, is (a) the platform of the last
//! group (a switch costs a round trip) and (b) where each *live* tensor is:
//! a tensor produced before `p` that a layer at or after `p` still reads.
//! Each live tensor is on the mobile, on the cloud, or on both (it was
//! already sent once; a tensor is sent at most once per direction however
//! many consumers it has there). The state at a boundary is that tuple.
//!
//! States are the nodes of a DAG whose edges (*transitions*) are groups
//! `p..=q` on a platform, labelled with their [`Usage`]. Every exact
//! algorithm of the planner (shortest path, constrained label setting,
//! lookup-table bands) runs over this graph, which depends only on the cost
//! table, not on the network, so it is built once per table.
//!
//! For a chain there is one live tensor at every boundary and the graph has
//! at most two states per boundary: it is the paper's JointDNN graph
//! (Fig. 6), O(N · G) transitions for groups up to length G. For a DAG of
//! cut width `w` (the most tensors live at one boundary) a boundary has at
//! most `2 · 3^w` states, in practice about `2 · 2^w` (a tensor reaches
//! "both" only once a consumer on the other side has run); a residual
//! network has `w = 2`, a U-Net about its number of skip connections plus
//! one. Building costs O(states · G · fan-in) time and the graph stores
//! O(states · 2G) transitions; [`GraphOptions`] caps both so that an instance too
//! wide for the exact method fails with a clear error instead of exhausting
//! memory.
//!
//! Cloud memory. By default the cloud keeps every tensor it has until the
//! end (the paper's model: a tensor crosses the link at most once per
//! direction). A *stateless* cloud server (any replica may serve any
//! request) keeps nothing between requests: when a run of cloud groups
//! ends, every live tensor it holds alone is downloaded with the response,
//! and a later cloud run uploads again whatever it reads. With
//! [`GraphOptions::cloud_keeps_tensors`] false the graph models exactly
//! that: at a switch from the cloud to the mobile, cloud-only tensors are
//! sent down and every residency becomes "mobile". For a chain both models
//! coincide.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::error::{PlanError, Result};
use crate::problem::{
    Burst, CostData, Platform, Usage, BYTES_DOWN, BYTES_UP, CLOUD_MS, CODEC_MJ, CODEC_MS, CREDIT_DOWN, CREDIT_UP, DIMS,
    MOBILE_MJ, MOBILE_MS, NO_BURST, SWITCHES,
};

/// Residency of a live tensor.
const ON_MOBILE: u8 = 0;
const ON_CLOUD: u8 = 1;
const ON_BOTH: u8 = 2;
// Residency codes double as `Platform as u8`.
const _: () = assert!(ON_MOBILE == Platform::Mobile as u8 && ON_CLOUD == Platform::Cloud as u8);

/// How to build the state graph: caps on its size, and the cloud's memory model.
#[derive(Clone, Copy, Debug)]
pub struct GraphOptions {
    /// Most tensors live at one boundary (2 bits each in a 64-bit key).
    pub max_width: usize,
    pub max_states: usize,
    pub max_transitions: usize,
    /// Whether the cloud keeps tensors between its runs (see the module docs).
    pub cloud_keeps_tensors: bool,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            max_width: 31,
            max_states: 1 << 21,
            max_transitions: 1 << 22,
            cloud_keeps_tensors: true,
        }
    }
}

/// Consecutive transitions of one state on one platform: the groups `first..=q` for
/// `q` in `q0..q0 + len`, each to the state `local` at boundary `q + 1`, all with the same
/// transfers (`xfer`). A transition's usage is its run's transfer usage plus the group's
/// compute (read from the graph's group columns), so the graph stores a few runs per state
/// instead of one usage vector per transition.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// The source state.
    pub from: u32,
    pub q0: u32,
    pub len: u32,
    /// The target's index among the states of boundary `q + 1`.
    pub local: u32,
    /// Index into [`StateGraph::xfer`].
    pub xfer: u32,
    pub platform: Platform,
}

/// One transition: the group `first..=last` on `platform` from state `from` to state `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Index of the run holding it in [`StateGraph::runs`].
    pub run: u32,
    /// Its last layer.
    pub last: u32,
}

/// Runs that leave the states of one boundary on one platform with the same groups and the same
/// targets: they differ only in their source state and transfer vector. A shortest-path search
/// relaxes the class's group column once, from the best of its members (`dist[from] + transfers`),
/// instead of once per member: on a chain the two states of a boundary share every class.
#[derive(Clone, Copy, Debug)]
pub struct Class {
    /// Where the group `p..=q0` (`p` the members' boundary) sits in the group columns.
    pub at: usize,
    pub q0: u32,
    pub len: u32,
    /// The targets' index among the states of boundary `q + 1`.
    pub local: u32,
    pub platform: Platform,
}

/// A class member's source state and transfer vector (what a search reads of it per call).
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub from: u32,
    pub xfer: u32,
}

/// The explicit state graph of a cost table (see the module docs), stored as columns.
///
/// Transitions are kept as [`Run`]s in CSR order (the runs of state `s` are
/// `runs[run_start[s]..run_start[s + 1]]`, mobile before cloud, `q` ascending: the
/// order every search visits them in). Group compute is kept once per group
/// (`p..=q`, the offered rows only) in three columns; transfer usage once per
/// distinct transfer vector. A search turns a linear functional of the usage
/// into per-platform compute weights and one scalar per transfer vector
/// ([`Linear`]), computed once per call, and reads nothing per transition but
/// the group columns. [`Class`]es group the runs that share groups and targets, in boundary
/// order (their members: `class_members[class_start[c]..class_start[c + 1]]`, run indices, and the
/// same members' source states and transfer vectors in `member_links`).
#[derive(Clone, Debug)]
pub struct StateGraph {
    pub n: usize,
    /// Boundary of each state; states are numbered in boundary order, which is a topological order.
    pub boundary: Vec<u32>,
    /// First state of each boundary `0..=n` (and the number of states at `n + 1`).
    pub state_start: Vec<u32>,
    /// CSR offsets into `runs` per state.
    pub run_start: Vec<u32>,
    pub runs: Vec<Run>,
    /// Per transfer vector: its usage (no compute, no burst credit) and the tensors (and weight sets) moved.
    pub xfer: Vec<Usage>,
    pub xfer_transfers: Vec<u32>,
    /// Per transfer vector, `[up, down]`: the bytes a link's burst may carry (see [`StateGraph::transfer_usage`]).
    pub xfer_eligible: Vec<[f64; 2]>,
    /// Row `p` of the group columns starts at `group_start[p]` and holds `q = p..p + row_len`.
    pub group_start: Vec<usize>,
    pub mobile_ms: Vec<f64>,
    pub mobile_mj: Vec<f64>,
    pub cloud_ms: Vec<f64>,
    pub classes: Vec<Class>,
    pub class_start: Vec<u32>,
    pub class_members: Vec<u32>,
    pub member_links: Vec<Link>,
    /// The same states laid out by lane (see [`Lanes`]), when that layout is compact.
    pub lanes: Option<Lanes>,
    /// Number of transitions (groups summed over runs).
    pub transitions: usize,
    /// Largest number of tensors live at one boundary.
    pub width: usize,
}

/// A second numbering of the states for the shortest-path search: state `local` of boundary `b` gets
/// the slot `local * stride + b` (`stride = n + 1`), so that the targets of a class (boundaries
/// `q0 + 1..=q0 + len`, one local index) are consecutive slots. The search then relaxes a class as
/// one slice against one column, with no index lookups. Built only when the lanes are dense (a
/// chain: two lanes; a DAG whose boundaries hold about as many states each): slots past a
/// boundary's states stay unreached.
#[derive(Clone, Debug)]
pub struct Lanes {
    pub stride: usize,
    /// Number of slots (lanes times stride).
    pub slots: usize,
    /// The classes, in the graph's order.
    pub classes: Vec<LaneClass>,
    /// The classes' members, in the graph's order (`class_members`).
    pub members: Vec<LaneMember>,
}

/// A [`Class`] in the lane layout: what the search reads of it, in one record.
#[derive(Clone, Copy, Debug)]
pub struct LaneClass {
    /// The slot of its first target.
    pub slot: u32,
    /// Where its groups start in the group columns.
    pub at: u32,
    pub len: u32,
    /// The end of its members in [`Lanes::members`] (they start where the previous class's end).
    pub members_end: u32,
    pub platform: Platform,
}

/// A class member in the lane layout: its source state's slot and its transfer vector.
#[derive(Clone, Copy, Debug)]
pub struct LaneMember {
    pub slot: u32,
    pub xfer: u32,
}

impl Lanes {
    /// The lane layout of a graph with these states and classes, if it has at most about twice as
    /// many slots as states (and its offsets fit 32 bits).
    fn of(
        n: usize,
        state_start: &[u32],
        classes: &[Class],
        class_start: &[u32],
        member_links: &[Link],
    ) -> Option<Lanes> {
        let stride = n + 1;
        let lanes = (0..=n).map(|b| (state_start[b + 1] - state_start[b]) as usize).max()?;
        let states = state_start[n + 1] as usize;
        let slots = lanes.checked_mul(stride)?;
        if slots > 2 * states + 64 || slots >= u32::MAX as usize {
            return None;
        }
        let mut slot_of = vec![0u32; states];
        for b in 0..=n {
            for s in state_start[b]..state_start[b + 1] {
                slot_of[s as usize] = ((s - state_start[b]) as usize * stride + b) as u32;
            }
        }
        let classes = classes
            .iter()
            .zip(&class_start[1..])
            .map(|(c, &end)| {
                Some(LaneClass {
                    slot: (c.local as usize * stride + c.q0 as usize + 1) as u32,
                    at: u32::try_from(c.at).ok()?,
                    len: c.len,
                    members_end: end,
                    platform: c.platform,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let members = member_links
            .iter()
            .map(|l| LaneMember {
                slot: slot_of[l.from as usize],
                xfer: l.xfer,
            })
            .collect();
        Some(Lanes {
            stride,
            slots,
            classes,
            members,
        })
    }

    fn memory_bytes(&self) -> usize {
        self.classes.len() * std::mem::size_of::<LaneClass>() + self.members.len() * std::mem::size_of::<LaneMember>()
    }
}

/// A linear functional of a transition's usage evaluated on a graph: `cost = compute + xfer[run.xfer]`
/// with `compute = mobile.0 · mobile_ms + mobile.1 · mobile_mj` on the mobile and `cloud · cloud_ms` on the
/// cloud. Built once per request (a few scalars per transfer vector); `allow` masks platforms.
#[derive(Clone, Debug)]
pub struct Linear {
    pub mobile: (f64, f64),
    pub cloud: f64,
    pub xfer: Vec<f64>,
    pub allow: [bool; 2],
}

impl Linear {
    /// `f` (linear in the usage) on `g`'s transitions on a link with `burst`; platforms `force` forbids are
    /// masked.
    pub fn of(g: &StateGraph, force: crate::search::Force, burst: Burst, f: impl Fn(&Usage) -> f64) -> Linear {
        let mut lin = Linear::compute(force, &f);
        lin.xfer = if burst == NO_BURST {
            g.xfer.iter().map(&f).collect()
        } else {
            (0..g.xfer.len()).map(|x| f(&g.transfer_usage(x, burst))).collect()
        };
        lin
    }

    /// `f`'s compute weights alone (`xfer` empty: for searches that weigh the transfer vectors themselves).
    pub fn compute(force: crate::search::Force, f: impl Fn(&Usage) -> f64) -> Linear {
        let unit = |k: usize| {
            let mut u = [0.0; DIMS];
            u[k] = 1.0;
            f(&u)
        };
        Linear {
            mobile: (unit(MOBILE_MS), unit(MOBILE_MJ)),
            cloud: unit(CLOUD_MS),
            xfer: Vec::new(),
            allow: [force.allows(Platform::Mobile), force.allows(Platform::Cloud)],
        }
    }

    /// `w · usage` on a link with `burst`.
    pub fn dot(g: &StateGraph, force: crate::search::Force, burst: Burst, w: &Usage) -> Linear {
        Linear::of(g, force, burst, |u| crate::problem::dot(w, u))
    }

    /// Whether transitions on `p` are allowed.
    #[inline]
    pub fn allows(&self, p: Platform) -> bool {
        self.allow[p as usize]
    }
}

impl StateGraph {
    pub fn num_states(&self) -> usize {
        self.boundary.len()
    }

    /// Runs of state `s`.
    #[inline]
    pub fn runs_of(&self, s: usize) -> &[Run] {
        &self.runs[self.run_start[s] as usize..self.run_start[s + 1] as usize]
    }

    /// The target state of the transition of `r` ending at layer `q`.
    #[inline]
    pub fn target(&self, r: &Run, q: usize) -> usize {
        (self.state_start[q + 1] + r.local) as usize
    }

    /// Where the group `first..=q` sits in the group columns.
    #[inline]
    fn group_at(&self, first: usize, q: usize) -> usize {
        self.group_start[first] + (q - first)
    }

    /// The costs of `r`'s transitions under `lin`, in `q` order, into `out` (cleared first).
    #[inline]
    pub fn run_costs(&self, r: &Run, lin: &Linear, out: &mut Vec<f64>) {
        out.clear();
        self.for_run(r, lin, |_, c| out.push(c));
    }

    /// Calls `visit(k, cost)` for the `k`-th transition of `r` (layers `first..=q0 + k`) under `lin`.
    /// `cost = compute + transfers`, read from the group columns without building a vector.
    #[inline(always)]
    pub fn for_run(&self, r: &Run, lin: &Linear, visit: impl FnMut(usize, f64)) {
        let first = self.boundary[r.from as usize] as usize;
        let at = self.group_at(first, r.q0 as usize);
        self.for_groups(at, r.len as usize, r.platform, lin, lin.xfer[r.xfer as usize], visit);
    }

    /// The members of class `c`: positions `class_start[c]..class_start[c + 1]` of `class_members` and
    /// `member_links`.
    #[inline]
    pub fn members(&self, c: usize) -> std::ops::Range<usize> {
        self.class_start[c] as usize..self.class_start[c + 1] as usize
    }

    /// Calls `visit(k, compute + base)` for the `len` groups at `at..at + len` of the group columns on
    /// `platform`, with the compute weighted by `lin`.
    #[inline(always)]
    pub fn for_groups(
        &self,
        at: usize,
        len: usize,
        platform: Platform,
        lin: &Linear,
        base: f64,
        mut visit: impl FnMut(usize, f64),
    ) {
        match platform {
            Platform::Mobile => {
                let (a, b) = lin.mobile;
                let ms = &self.mobile_ms[at..at + len];
                if b == 0.0 {
                    for (k, &m) in ms.iter().enumerate() {
                        visit(k, a * m + base);
                    }
                } else if a == 0.0 {
                    for (k, &e) in self.mobile_mj[at..at + len].iter().enumerate() {
                        visit(k, b * e + base);
                    }
                } else {
                    let mj = &self.mobile_mj[at..at + len];
                    for (k, (&m, &e)) in ms.iter().zip(mj).enumerate() {
                        visit(k, a * m + b * e + base);
                    }
                }
            }
            Platform::Cloud => {
                let c = lin.cloud;
                for (k, &m) in self.cloud_ms[at..at + len].iter().enumerate() {
                    visit(k, c * m + base);
                }
            }
        }
    }

    /// Transfer vector `x` on a link with `burst`: its usage with the credit dimensions set to the bytes the
    /// burst carries, `min(burst, eligible)` per direction.
    ///
    /// Eligible are the bytes of the one request a transition starts and the one response it ends, so that a
    /// burst is credited once per request and direction: a transition that switches to the cloud (its uploads)
    /// and one that switches back or ends the schedule on the cloud (its downloads). On an inference chain
    /// these are all the transfers. Weights downloaded by a cloud group that does not end its run, a DAG's
    /// uploads by a cloud run's later groups, and downloads by a mobile run's later groups of tensors the run's
    /// first response could have carried get no credit, so the price never falls below what the link charges
    /// for the requests the session sends.
    #[inline]
    pub fn transfer_usage(&self, x: usize, burst: Burst) -> Usage {
        let mut u = self.xfer[x];
        let eligible = self.xfer_eligible[x];
        u[CREDIT_UP] = burst[0].min(eligible[0]);
        u[CREDIT_DOWN] = burst[1].min(eligible[1]);
        u
    }

    /// The usage and transfer count of one transition on a link with `burst` (exactly what the schedule adds
    /// up).
    pub fn step_usage(&self, step: Step, burst: Burst) -> (Usage, u32) {
        let r = &self.runs[step.run as usize];
        let first = self.boundary[r.from as usize] as usize;
        let at = self.group_at(first, step.last as usize);
        let mut u = self.transfer_usage(r.xfer as usize, burst);
        match r.platform {
            Platform::Mobile => {
                u[MOBILE_MS] += self.mobile_ms[at];
                u[MOBILE_MJ] += self.mobile_mj[at];
            }
            Platform::Cloud => u[CLOUD_MS] += self.cloud_ms[at],
        }
        (u, self.xfer_transfers[r.xfer as usize])
    }

    /// `(first, last, platform)` of one transition.
    pub fn step_group(&self, step: Step) -> (usize, usize, Platform) {
        let r = &self.runs[step.run as usize];
        (self.boundary[r.from as usize] as usize, step.last as usize, r.platform)
    }

    /// Whether `s` is a final state (all layers scheduled).
    #[inline]
    pub fn is_terminal(&self, s: usize) -> bool {
        self.boundary[s] as usize == self.n
    }

    /// Bytes the graph holds (its columns and runs).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        self.boundary.len() * 4
            + self.state_start.len() * 4
            + self.run_start.len() * 4
            + self.runs.len() * size_of::<Run>()
            + self.xfer.len() * (size_of::<Usage>() + 4 + size_of::<[f64; 2]>())
            + self.group_start.len() * size_of::<usize>()
            + (self.mobile_ms.len() + self.mobile_mj.len() + self.cloud_ms.len()) * 8
            + self.classes.len() * size_of::<Class>()
            + (self.class_start.len() + self.class_members.len()) * 4
            + self.member_links.len() * size_of::<Link>()
            + self.lanes.as_ref().map_or(0, Lanes::memory_bytes)
    }

    /// Builds the state graph of `cost` (validated first).
    pub fn build(cost: &CostData, options: &GraphOptions) -> Result<StateGraph> {
        cost.validate()?;
        let n = cost.n;
        let topo = Topology::new(cost);
        let width = topo.live.iter().map(|l| l.len()).max().unwrap_or(0);
        if width > options.max_width {
            return Err(PlanError::TooLarge(format!(
                "the graph is too wide for the exact planner: {width} tensors are live at one cut (limit {}); \
                 merge layers or plan a coarser graph",
                options.max_width
            )));
        }

        // Group columns: row p holds q = p..=the last group offered on either platform.
        let mut group_start = Vec::with_capacity(n + 1);
        let mut mobile_ms = Vec::new();
        let mut mobile_mj = Vec::new();
        let mut cloud_ms = Vec::new();
        for p in 0..n {
            group_start.push(mobile_ms.len());
            let row = p * n;
            let last = (p..n)
                .rev()
                .find(|&q| cost.mobile_ms[row + q].is_finite() || cost.cloud_ms[row + q].is_finite())
                .unwrap_or(p);
            mobile_ms.extend_from_slice(&cost.mobile_ms[row + p..=row + last]);
            mobile_mj.extend_from_slice(&cost.mobile_mj[row + p..=row + last]);
            cloud_ms.extend_from_slice(&cost.cloud_ms[row + p..=row + last]);
        }
        group_start.push(mobile_ms.len());

        // Per boundary: interned state keys in creation order, looked up in a dense table when
        // the boundary's keys are few bits (chains, residual networks), else in a hash map.
        let mut keys: Vec<Vec<u64>> = vec![Vec::new(); n + 1];
        let mut index = KeyIndex::new(&topo.live);
        // Initial state: last platform mobile, the model input on the mobile.
        keys[0].push(0);
        index.insert(0, 0, 0);

        // Runs in generation order (grouped by source state, in state order); `from` is set at the end.
        let mut runs: Vec<Run> = Vec::new();
        let mut run_count: Vec<u32> = Vec::new();
        let mut xfer: Vec<Usage> = Vec::new();
        let mut xfer_transfers: Vec<u32> = Vec::new();
        let mut xfer_eligible: Vec<[f64; 2]> = Vec::new();
        let mut transitions = 0usize;
        let mut res = vec![ON_MOBILE; n + 1]; // scratch residency, indexed by tensor
        let mut total_states = 1usize;

        for p in 0..n {
            let mut local = 0usize;
            while local < keys[p].len() {
                let key = keys[p][local];
                let last = if key & 1 == 1 {
                    Platform::Cloud
                } else {
                    Platform::Mobile
                };
                let before = runs.len();
                for platform in Platform::BOTH {
                    // Start from the state's residencies.
                    for (slot, &t) in topo.live[p].iter().enumerate() {
                        res[t] = ((key >> (1 + 2 * slot)) & 3) as u8;
                    }
                    let mut usage = [0.0; DIMS];
                    let mut transfers = 0u32;
                    if platform != last {
                        usage[SWITCHES] += 1.0;
                    }
                    if !options.cloud_keeps_tensors && platform == Platform::Mobile && last == Platform::Cloud {
                        // A cloud run ends: the stateless cloud hands back what only it holds, then forgets.
                        for &t in &topo.live[p] {
                            if res[t] == ON_CLOUD {
                                send(cost, t, Platform::Mobile, &mut usage);
                                transfers += 1;
                            }
                            res[t] = ON_MOBILE;
                        }
                    }
                    // The run being extended, and whether the transfer usage changed since its vector was stored.
                    let mut open: Option<usize> = None;
                    let mut changed = true;
                    for q in p..n {
                        for &t in &topo.preds[q] {
                            if topo.produced_before(t, p) {
                                let r = res[t];
                                if r != ON_BOTH && r != platform as u8 {
                                    send(cost, t, platform, &mut usage);
                                    transfers += 1;
                                    res[t] = ON_BOTH;
                                    changed = true;
                                }
                            }
                        }
                        let t_out = q + 1;
                        res[t_out] = platform as u8;
                        if topo.returns[t_out] && platform == Platform::Cloud {
                            send(cost, t_out, Platform::Mobile, &mut usage);
                            transfers += 1;
                            res[t_out] = ON_BOTH;
                            changed = true;
                        }
                        if platform == Platform::Cloud && cost.cloud_download_bytes[q] > 0.0 {
                            usage[BYTES_DOWN] += cost.cloud_download_bytes[q];
                            transfers += 1;
                            changed = true;
                        }
                        if !cost.group_ms(p, q, platform).is_finite() {
                            open = None; // group not offered; longer ones may be
                            continue;
                        }
                        let final_switch = q + 1 == n && platform == Platform::Cloud; // results come back
                        if changed || final_switch {
                            let mut u = usage;
                            if final_switch {
                                u[SWITCHES] += 1.0;
                            }
                            // The request this transition starts, the response it ends (see `transfer_usage`).
                            let starts = platform == Platform::Cloud && last == Platform::Mobile;
                            let ends = (platform == Platform::Mobile && last == Platform::Cloud) || final_switch;
                            xfer_eligible.push([
                                if starts { u[BYTES_UP] } else { 0.0 },
                                if ends { u[BYTES_DOWN] } else { 0.0 },
                            ]);
                            xfer.push(u);
                            xfer_transfers.push(transfers);
                            changed = false;
                            open = None;
                        }
                        let mut new_key = platform as u64;
                        for (slot, &t) in topo.live[q + 1].iter().enumerate() {
                            new_key |= (res[t] as u64) << (1 + 2 * slot);
                        }
                        let next = q + 1;
                        let target = match index.get(next, new_key) {
                            Some(i) => i,
                            None => {
                                total_states += 1;
                                if total_states > options.max_states {
                                    return Err(too_many("states", options.max_states, width));
                                }
                                let i = keys[next].len() as u32;
                                keys[next].push(new_key);
                                index.insert(next, new_key, i);
                                i
                            }
                        };
                        if transitions >= options.max_transitions {
                            return Err(too_many("transitions", options.max_transitions, width));
                        }
                        transitions += 1;
                        match open {
                            Some(r) if runs[r].local == target => runs[r].len += 1,
                            _ => {
                                runs.push(Run {
                                    from: 0,
                                    q0: q as u32,
                                    len: 1,
                                    local: target,
                                    xfer: (xfer.len() - 1) as u32,
                                    platform,
                                });
                                open = Some(runs.len() - 1);
                            }
                        }
                    }
                }
                run_count.push((runs.len() - before) as u32);
                local += 1;
            }
        }

        // Number states globally in boundary order.
        let mut state_start = vec![0u32; n + 2];
        for p in 0..=n {
            state_start[p + 1] = state_start[p] + keys[p].len() as u32;
        }
        let num_states = state_start[n + 1] as usize;
        let mut boundary = Vec::with_capacity(num_states);
        for (p, k) in keys.iter().enumerate() {
            boundary.extend(std::iter::repeat_n(p as u32, k.len()));
        }
        let mut run_start = Vec::with_capacity(num_states + 1);
        run_start.push(0u32);
        let mut acc = 0u32;
        for (s, &c) in run_count.iter().enumerate() {
            for r in &mut runs[acc as usize..(acc + c) as usize] {
                r.from = s as u32;
            }
            acc += c;
            run_start.push(acc);
        }
        while run_start.len() < num_states + 1 {
            run_start.push(acc); // terminal states have no transitions
        }
        let (classes, class_start, class_members) = classes_of(&runs, &boundary, &group_start);
        let member_links = class_members
            .iter()
            .map(|&r| Link {
                from: runs[r as usize].from,
                xfer: runs[r as usize].xfer,
            })
            .collect::<Vec<_>>();
        let lanes = Lanes::of(n, &state_start, &classes, &class_start, &member_links);
        Ok(StateGraph {
            n,
            boundary,
            state_start,
            run_start,
            runs,
            xfer,
            xfer_transfers,
            xfer_eligible,
            group_start,
            mobile_ms,
            mobile_mj,
            cloud_ms,
            classes,
            class_start,
            class_members,
            member_links,
            lanes,
            transitions,
            width,
        })
    }
}

/// The runs (in state order, so in boundary order) grouped into [`Class`]es: the classes in order of
/// their first member, and CSR offsets into the members (run indices, in run order).
fn classes_of(runs: &[Run], boundary: &[u32], group_start: &[usize]) -> (Vec<Class>, Vec<u32>, Vec<u32>) {
    let mut classes: Vec<Class> = Vec::new();
    let mut class_of = Vec::with_capacity(runs.len());
    let mut index: FxMap<(u32, u32, u32, Platform), u32> = FxMap::default();
    let mut at_boundary = u32::MAX;
    for r in runs {
        let p = boundary[r.from as usize];
        if p != at_boundary {
            index.clear(); // classes never span boundaries
            at_boundary = p;
        }
        let c = *index.entry((r.q0, r.len, r.local, r.platform)).or_insert_with(|| {
            classes.push(Class {
                at: group_start[p as usize] + (r.q0 - p) as usize,
                q0: r.q0,
                len: r.len,
                local: r.local,
                platform: r.platform,
            });
            (classes.len() - 1) as u32
        });
        class_of.push(c);
    }
    // Counting sort of the runs by class (stable: members stay in run order).
    let mut class_start = vec![0u32; classes.len() + 1];
    for &c in &class_of {
        class_start[c as usize + 1] += 1;
    }
    for c in 0..classes.len() {
        class_start[c + 1] += class_start[c];
    }
    let mut fill = class_start.clone();
    let mut class_members = vec![0u32; runs.len()];
    for (r, &c) in class_of.iter().enumerate() {
        class_members[fill[c as usize] as usize] = r as u32;
        fill[c as usize] += 1;
    }
    (classes, class_start, class_members)
}

/// State keys per boundary -> their index: a dense table where a boundary's keys have few bits.
struct KeyIndex {
    dense: Vec<Vec<u32>>,
    maps: Vec<FxMap<u64, u32>>,
}

impl KeyIndex {
    /// Keys of at most this many bits get a dense table (2^bits entries).
    const DENSE_BITS: usize = 11;

    fn new(live: &[Vec<usize>]) -> KeyIndex {
        KeyIndex {
            dense: live
                .iter()
                .map(|l| {
                    let bits = 1 + 2 * l.len();
                    if bits <= Self::DENSE_BITS {
                        vec![u32::MAX; 1 << bits]
                    } else {
                        Vec::new()
                    }
                })
                .collect(),
            maps: live.iter().map(|_| FxMap::default()).collect(),
        }
    }

    #[inline]
    fn get(&self, boundary: usize, key: u64) -> Option<u32> {
        let d = &self.dense[boundary];
        if !d.is_empty() {
            let i = d[key as usize];
            return (i != u32::MAX).then_some(i);
        }
        self.maps[boundary].get(&key).copied()
    }

    #[inline]
    fn insert(&mut self, boundary: usize, key: u64, i: u32) {
        let d = &mut self.dense[boundary];
        if !d.is_empty() {
            d[key as usize] = i;
        } else {
            self.maps[boundary].insert(key, i);
        }
    }
}

fn too_many(what: &str, limit: usize, width: usize) -> PlanError {
    PlanError::TooLarge(format!(
        "the exact planner's state graph exceeds {limit} {what} (cut width {width}); \
         offer fewer group lengths (max_group) or merge layers"
    ))
}

/// Adds the cost of moving tensor `t` to `to` (upload if `to` is the cloud).
#[inline]
fn send(cost: &CostData, t: usize, to: Platform, usage: &mut Usage) {
    let bytes = cost.tensor_bytes(t);
    let dir = match to {
        Platform::Cloud => {
            usage[BYTES_UP] += bytes;
            0
        }
        Platform::Mobile => {
            usage[BYTES_DOWN] += bytes;
            1
        }
    };
    usage[CODEC_MS] += cost.codec_ms[t][dir];
    usage[CODEC_MJ] += cost.codec_mj[t][dir];
}

/// Who reads what: the tensor view of a cost table.
pub(crate) struct Topology {
    /// Tensors read by each layer (sorted, deduplicated; `[0]` when it has no predecessor).
    pub preds: Vec<Vec<usize>>,
    /// Whether tensor `t` is a model output (must end on the mobile).
    pub returns: Vec<bool>,
    /// Tensors live at each boundary `0..=n`, ascending.
    pub live: Vec<Vec<usize>>,
}

impl Topology {
    pub fn new(cost: &CostData) -> Topology {
        let n = cost.n;
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &(u, v) in &cost.edges {
            preds[v].push((u + 1) as usize);
        }
        for p in preds.iter_mut() {
            p.sort_unstable();
            p.dedup();
            if p.is_empty() {
                p.push(0);
            }
        }
        let mut last_use: Vec<Option<usize>> = vec![None; n + 1];
        for (v, ps) in preds.iter().enumerate() {
            for &t in ps {
                last_use[t] = Some(last_use[t].map_or(v, |x: usize| x.max(v)));
            }
        }
        let mut returns = vec![false; n + 1];
        for &o in &cost.outputs {
            returns[o + 1] = true;
        }
        let live = (0..=n)
            .map(|p| {
                (0..=n)
                    .filter(|&t| (t == 0 || t <= p) && last_use[t].is_some_and(|l| l >= p))
                    .collect()
            })
            .collect();
        Topology { preds, returns, live }
    }

    /// Whether tensor `t` exists before boundary `p` (tensor 0 always does).
    #[inline]
    pub fn produced_before(&self, t: usize, p: usize) -> bool {
        t == 0 || t <= p
    }
}

#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::CostData;

    fn uniform(n: usize, edges: Vec<(i64, usize)>) -> CostData {
        let mut c = CostData::chain(
            n,
            vec![1.0; n * n],
            vec![1.0; n * n],
            vec![1.0; n * n],
            vec![1.0; n],
            1.0,
        );
        c.edges = edges;
        let has_succ: Vec<bool> = (0..n).map(|u| c.edges.iter().any(|&(a, _)| a == u as i64)).collect();
        c.outputs = (0..n).filter(|&i| !has_succ[i]).collect();
        c
    }

    #[test]
    fn chain_has_at_most_two_states_per_boundary() {
        let c = uniform(6, (1..6).map(|v| (v as i64 - 1, v)).collect());
        let g = StateGraph::build(&c, &GraphOptions::default()).unwrap();
        assert_eq!(g.width, 1);
        for b in 1..=6 {
            let k = g.boundary.iter().filter(|&&x| x == b).count();
            assert!(k <= 2, "boundary {b} has {k} states");
        }
        // every group on each platform from each state: 1 state at p = 0, 2 after.
        let expected: usize = 2 * 6 + (1..6).map(|p| 2 * 2 * (6 - p)).sum::<usize>();
        assert_eq!(g.transitions, expected);
    }

    #[test]
    fn chains_get_the_lane_layout() {
        let c = uniform(6, (1..6).map(|v| (v as i64 - 1, v)).collect());
        let g = StateGraph::build(&c, &GraphOptions::default()).unwrap();
        let lanes = g.lanes.as_ref().expect("a chain's boundaries hold at most two states");
        assert_eq!((lanes.stride, lanes.slots), (7, 14));
        assert_eq!(lanes.classes.len(), g.classes.len());
    }

    #[test]
    fn residual_block_keeps_the_skip_tensor_live() {
        // 0 -> 1 -> 2 -> 3, plus skip 0 -> 3 (layer 3 adds layer 0's and layer 2's outputs).
        let c = uniform(4, vec![(0, 1), (1, 2), (2, 3), (0, 3)]);
        let topo = Topology::new(&c);
        assert_eq!(topo.live[2], vec![1, 2]);
        assert_eq!(topo.live[3], vec![1, 3]);
        let g = StateGraph::build(&c, &GraphOptions::default()).unwrap();
        assert_eq!(g.width, 2);
    }

    #[test]
    fn too_wide_graphs_fail_clearly() {
        // layer 0..k each read the input and feed a final concat layer k.
        let k = 5;
        let mut edges: Vec<(i64, usize)> = (0..k).map(|i| (i as i64, k)).collect();
        edges.push((-1, 0));
        let c = uniform(k + 1, edges);
        let limits = GraphOptions {
            max_width: 3,
            ..GraphOptions::default()
        };
        match StateGraph::build(&c, &limits) {
            Err(PlanError::TooLarge(m)) => assert!(m.contains("too wide"), "{m}"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
}
