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
    CostData, Platform, Usage, BYTES_DOWN, BYTES_UP, CLOUD_MS, CODEC_MJ, CODEC_MS, DIMS, MOBILE_MJ, MOBILE_MS, SWITCHES,
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

/// One group `first..=last` on `platform`, from state `from` to state `to`.
#[derive(Clone, Debug)]
pub struct Transition {
    pub to: u32,
    pub first: u32,
    pub last: u32,
    pub platform: Platform,
    /// Number of tensors (and weight sets) moved by this step.
    pub transfers: u32,
    pub usage: Usage,
}

/// The explicit state graph of a cost table (see the module docs).
#[derive(Clone, Debug)]
pub struct StateGraph {
    pub n: usize,
    /// Boundary of each state; states are numbered in boundary order, which is a topological order.
    pub boundary: Vec<u32>,
    /// CSR offsets: transitions of state `s` are `trans[trans_start[s]..trans_start[s + 1]]`.
    pub trans_start: Vec<u32>,
    pub trans: Vec<Transition>,
    /// Largest number of tensors live at one boundary.
    pub width: usize,
}

impl StateGraph {
    pub fn num_states(&self) -> usize {
        self.boundary.len()
    }

    /// Outgoing transitions of state `s`.
    #[inline]
    pub fn out(&self, s: usize) -> &[Transition] {
        &self.trans[self.trans_start[s] as usize..self.trans_start[s + 1] as usize]
    }

    /// Whether `s` is a final state (all layers scheduled).
    #[inline]
    pub fn is_terminal(&self, s: usize) -> bool {
        self.boundary[s] as usize == self.n
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

        // Per boundary: interned state keys, in creation order.
        let mut keys: Vec<Vec<u64>> = vec![Vec::new(); n + 1];
        let mut index: Vec<FxMap<u64, u32>> = (0..=n).map(|_| FxMap::default()).collect();
        // Initial state: last platform mobile, the model input on the mobile.
        keys[0].push(0);
        index[0].insert(0, 0);

        // Transitions in generation order (grouped by source state), targets as (boundary, local).
        let mut raw: Vec<(u32, u32, Transition)> = Vec::new();
        let mut out_count: Vec<Vec<u32>> = vec![Vec::new(); n + 1];
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
                let mut produced = 0u32;
                for platform in Platform::BOTH {
                    // Start from the state's residencies.
                    for (slot, &t) in topo.live[p].iter().enumerate() {
                        res[t] = ((key >> (1 + 2 * slot)) & 3) as u8;
                    }
                    let mut usage = [0.0; DIMS];
                    let mut transfers = 0u32;
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
                    for q in p..n {
                        for &t in &topo.preds[q] {
                            if topo.produced_before(t, p) {
                                let r = res[t];
                                if r != ON_BOTH && r != platform as u8 {
                                    send(cost, t, platform, &mut usage);
                                    transfers += 1;
                                    res[t] = ON_BOTH;
                                }
                            }
                        }
                        let t_out = q + 1;
                        res[t_out] = platform as u8;
                        if topo.returns[t_out] && platform == Platform::Cloud {
                            send(cost, t_out, Platform::Mobile, &mut usage);
                            transfers += 1;
                            res[t_out] = ON_BOTH;
                        }
                        if platform == Platform::Cloud && cost.cloud_download_bytes[q] > 0.0 {
                            usage[BYTES_DOWN] += cost.cloud_download_bytes[q];
                            transfers += 1;
                        }
                        let compute = cost.group_ms(p, q, platform);
                        if !compute.is_finite() {
                            continue; // group not offered; longer ones may be
                        }
                        let mut u = usage;
                        match platform {
                            Platform::Mobile => {
                                u[MOBILE_MS] += compute;
                                u[MOBILE_MJ] += cost.mobile_mj[p * n + q];
                            }
                            Platform::Cloud => u[CLOUD_MS] += compute,
                        }
                        if platform != last {
                            u[SWITCHES] += 1.0;
                        }
                        if q + 1 == n && platform == Platform::Cloud {
                            u[SWITCHES] += 1.0; // the mobile gets the results back
                        }
                        let mut new_key = platform as u64;
                        for (slot, &t) in topo.live[q + 1].iter().enumerate() {
                            new_key |= (res[t] as u64) << (1 + 2 * slot);
                        }
                        let next = q + 1;
                        let target = match index[next].get(&new_key) {
                            Some(&i) => i,
                            None => {
                                total_states += 1;
                                if total_states > options.max_states {
                                    return Err(too_many("states", options.max_states, width));
                                }
                                let i = keys[next].len() as u32;
                                keys[next].push(new_key);
                                index[next].insert(new_key, i);
                                i
                            }
                        };
                        if raw.len() >= options.max_transitions {
                            return Err(too_many("transitions", options.max_transitions, width));
                        }
                        raw.push((
                            next as u32,
                            target,
                            Transition {
                                to: 0,
                                first: p as u32,
                                last: q as u32,
                                platform,
                                transfers,
                                usage: u,
                            },
                        ));
                        produced += 1;
                    }
                }
                out_count[p].push(produced);
                local += 1;
            }
        }

        // Number states globally in boundary order and resolve targets.
        let mut offset = vec![0u32; n + 2];
        for p in 0..=n {
            offset[p + 1] = offset[p] + keys[p].len() as u32;
        }
        let num_states = offset[n + 1] as usize;
        let mut boundary = Vec::with_capacity(num_states);
        for (p, k) in keys.iter().enumerate() {
            boundary.extend(std::iter::repeat_n(p as u32, k.len()));
        }
        let mut trans_start = Vec::with_capacity(num_states + 1);
        trans_start.push(0u32);
        let mut acc = 0u32;
        for counts in out_count.iter().take(n) {
            for &c in counts {
                acc += c;
                trans_start.push(acc);
            }
        }
        while trans_start.len() < num_states + 1 {
            trans_start.push(acc); // terminal states have no transitions
        }
        let trans = raw
            .into_iter()
            .map(|(b, local, mut t)| {
                t.to = offset[b as usize] + local;
                t
            })
            .collect();
        Ok(StateGraph {
            n,
            boundary,
            trans_start,
            trans,
            width,
        })
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
        assert_eq!(g.trans.len(), expected);
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
