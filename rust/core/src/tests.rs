//! Property tests: every solver against brute-force enumeration on random
//! chains and DAGs (a small deterministic generator: no external crates).

use crate::evaluate::{all_schedules, evaluate};
use crate::lut::{build_cells, Answer, CellStatus, IndexParts, LutIndex, LutSpec, CELL_MAX_WORK};
use crate::plan::{solve, Request, DEFAULT_MAX_LABELS};
use crate::problem::{dot, reduce, weights, CostData, Metric, Network, Point, Radio, Usage};
use crate::search::{within, Force};
use crate::structure::{GraphOptions, StateGraph};
use crate::PlanError;

/// xorshift64*: reproducible randomness for tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random cost table: a chain or a DAG, grouping effects, some groups not offered.
fn random_costs(rng: &mut Rng, n: usize, dag: bool) -> CostData {
    // compute and transfers of comparable size, so optima change across the bandwidth range
    let mobile: Vec<f64> = (0..n).map(|_| rng.range(1.0, 120.0)).collect();
    let cloud: Vec<f64> = mobile.iter().map(|m| m / rng.range(2.0, 30.0)).collect();
    let mut mm = vec![f64::INFINITY; n * n];
    let mut cm = vec![f64::INFINITY; n * n];
    let mut mj = vec![f64::INFINITY; n * n];
    let max_group = 1 + rng.below(n);
    for i in 0..n {
        for j in i..n {
            if j - i + 1 > max_group && j != i {
                continue;
            }
            // fused groups are a bit cheaper than the sum of their layers
            let fuse = if i == j { 1.0 } else { rng.range(0.7, 1.0) };
            mm[i * n + j] = mobile[i..=j].iter().sum::<f64>() * fuse;
            cm[i * n + j] = cloud[i..=j].iter().sum::<f64>() * rng.range(0.6, 1.0).max(if i == j { 1.0 } else { 0.0 });
            mj[i * n + j] = mm[i * n + j] * rng.range(3.0, 9.0);
        }
    }
    let out_bytes: Vec<f64> = (0..n).map(|_| rng.range(1e3, 4e5).round()).collect();
    let mut c = CostData::chain(n, mm, cm, mj, out_bytes, rng.range(1e4, 6e5).round());
    if dag {
        let mut edges = Vec::new();
        for v in 0..n {
            // each layer reads 1..=3 earlier tensors (possibly the model input)
            let k = 1 + rng.below(3);
            for _ in 0..k {
                let u = rng.below(v + 1) as i64 - 1;
                edges.push((u, v));
            }
            if v > 0 && rng.uniform() < 0.6 {
                edges.push((v as i64 - 1, v));
            }
        }
        edges.sort();
        edges.dedup();
        c.edges = edges;
        let has_succ: Vec<bool> = (0..n).map(|u| c.edges.iter().any(|&(a, _)| a == u as i64)).collect();
        c.outputs = (0..n).filter(|&i| !has_succ[i] || rng.uniform() < 0.1).collect();
    }
    if rng.uniform() < 0.3 {
        for l in 0..n {
            c.cloud_download_bytes[l] = if rng.uniform() < 0.5 {
                rng.range(0.0, 2e5).round()
            } else {
                0.0
            };
        }
    }
    if rng.uniform() < 0.3 {
        for t in 0..=n {
            c.codec_ms[t] = [rng.range(0.0, 2.0), rng.range(0.0, 2.0)];
            c.codec_mj[t] = [rng.range(0.0, 5.0), rng.range(0.0, 5.0)];
        }
    }
    c
}

fn random_network(rng: &mut Rng) -> Network {
    Network {
        up_mbps: rng.range(0.5, 30.0),
        down_mbps: rng.range(1.0, 60.0),
        alpha_up: rng.range(200.0, 900.0),
        alpha_down: rng.range(50.0, 150.0),
        beta: rng.range(100.0, 1300.0),
        rtt_ms: if rng.uniform() < 0.5 { 0.0 } else { rng.range(0.0, 40.0) },
        // half the links pass a burst of up to a few tensors' size at once
        burst_up_bytes: if rng.uniform() < 0.5 { 0.0 } else { rng.range(0.0, 3e5) },
        burst_down_bytes: if rng.uniform() < 0.5 { 0.0 } else { rng.range(0.0, 3e5) },
    }
}

fn metric_of(u: &Usage, m: Metric, net: &Network, slowdown: f64) -> f64 {
    dot(&weights(m, net, slowdown), u)
}

/// Brute-force optimum of `req` (None when infeasible).
fn brute(req: &Request, all: &[(crate::problem::Segments, Usage)]) -> Option<f64> {
    all.iter()
        .filter(|(segs, _)| segs.iter().all(|s| req.force.allows(s.2)))
        .filter(|(_, u)| {
            req.constraints()
                .iter()
                .all(|&(_, m, b)| within(metric_of(u, m, &req.network, req.slowdown), b))
        })
        .map(|(_, u)| metric_of(u, req.objective, &req.network, req.slowdown))
        .min_by(f64::total_cmp)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn evaluate_agrees_with_the_state_graph_on_every_schedule() {
    let mut rng = Rng(7);
    for case in 0..40 {
        let n = 1 + rng.below(6);
        let cost = random_costs(&mut rng, n, case % 2 == 1);
        let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
        // every path through the graph is a schedule whose evaluation matches the path's usage
        let net = random_network(&mut rng);
        let all = all_schedules(&cost, true, net.burst());
        for m in [Metric::Latency, Metric::Energy] {
            let req = Request::new(m, net);
            let s = solve(&g, &req).unwrap();
            let (u, _) = evaluate(&cost, &s.segments, true, net.burst()).unwrap();
            for (k, (a, b)) in u.iter().zip(&s.usage).enumerate() {
                assert!(close(*a, *b), "case {case}: usage[{k}] {a} vs {b}");
            }
            let best = brute(&req, &all).unwrap();
            assert!(close(s.metric(m, &net, 1.0), best), "case {case} {m:?}");
        }
    }
}

#[test]
fn unconstrained_optimum_equals_brute_force() {
    let mut rng = Rng(11);
    for case in 0..150 {
        let n = 1 + rng.below(8);
        let cost = random_costs(&mut rng, n, case % 3 != 0);
        let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
        let net = random_network(&mut rng);
        let all = all_schedules(&cost, true, net.burst());
        for m in [Metric::Latency, Metric::Energy] {
            for force in [Force::None, Force::Mobile, Force::Cloud] {
                let mut req = Request::new(m, net);
                req.slowdown = rng.range(0.5, 4.0);
                req.force = force;
                let s = solve(&g, &req).unwrap();
                let best = brute(&req, &all).unwrap();
                assert!(
                    close(s.metric(m, &net, req.slowdown), best),
                    "case {case} {m:?} {force:?}"
                );
                assert!(s.segments.iter().all(|x| force.allows(x.2)));
            }
        }
    }
}

#[test]
fn the_lane_layout_and_the_state_loop_find_the_same_paths() {
    // Graphs up to 25 layers, chains and DAGs (the irregular ones get no lanes: both layouts are
    // exercised); the same graph without its lanes runs the state loop. Both relax the classes in
    // the same order and break ties alike.
    let mut rng = Rng(23);
    let mut with_lanes = 0;
    for case in 0..80 {
        let n = 1 + rng.below(25);
        let cost = random_costs(&mut rng, n, case % 2 == 0);
        let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
        with_lanes += g.lanes.is_some() as usize;
        let plain = StateGraph {
            lanes: None,
            ..g.clone()
        };
        let net = random_network(&mut rng);
        for m in [Metric::Latency, Metric::Energy] {
            for force in [Force::None, Force::Mobile, Force::Cloud] {
                let mut req = Request::new(m, net);
                req.slowdown = rng.range(0.5, 4.0);
                req.force = force;
                assert_eq!(
                    solve(&g, &req).unwrap(),
                    solve(&plain, &req).unwrap(),
                    "case {case} {m:?} {force:?}"
                );
            }
        }
    }
    assert!((20..80).contains(&with_lanes), "{with_lanes} of 80 graphs had lanes");
}

#[test]
fn constrained_optimum_equals_brute_force() {
    let mut rng = Rng(23);
    let mut infeasible = 0;
    let mut feasible = 0;
    for case in 0..250 {
        let n = 1 + rng.below(7);
        let cost = random_costs(&mut rng, n, case % 2 == 0);
        let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
        let net = random_network(&mut rng);
        let all = all_schedules(&cost, true, net.burst());
        let slowdown = rng.range(0.5, 3.0);
        // bounds drawn between the least and the largest value any schedule reaches
        let span = |m: Metric| {
            let vals: Vec<f64> = all.iter().map(|(_, u)| metric_of(u, m, &net, slowdown)).collect();
            let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().copied().fold(0.0, f64::max);
            (lo, hi)
        };
        let objective = if rng.uniform() < 0.5 {
            Metric::Latency
        } else {
            Metric::Energy
        };
        let mut req = Request::new(objective, net);
        req.slowdown = slowdown;
        let pick = |rng: &mut Rng, (lo, hi): (f64, f64)| lo + (hi - lo) * rng.range(-0.05, 0.6);
        if rng.uniform() < 0.7 {
            req.deadline_ms = Some(pick(&mut rng, span(Metric::Latency)).max(0.0));
        }
        if rng.uniform() < 0.5 {
            req.energy_budget_mj = Some(pick(&mut rng, span(Metric::Energy)).max(0.0));
        }
        if rng.uniform() < 0.4 {
            req.cloud_budget_ms = Some(pick(&mut rng, span(Metric::Cloud)).max(0.0));
        }
        let expected = brute(&req, &all);
        match (solve(&g, &req), expected) {
            (Ok(s), Some(best)) => {
                feasible += 1;
                assert!(close(s.metric(objective, &net, slowdown), best), "case {case}");
                for (_, m, b) in req.constraints() {
                    assert!(within(s.metric(m, &net, slowdown), b), "case {case}: violates {m:?}");
                }
            }
            (Err(PlanError::Infeasible { constraint, .. }), None) => {
                infeasible += 1;
                assert!(!constraint.is_empty());
            }
            (got, exp) => panic!("case {case}: solver {got:?} vs brute force {exp:?}"),
        }
    }
    assert!(
        feasible > 50 && infeasible > 10,
        "feasible {feasible}, infeasible {infeasible}"
    );
}

#[test]
fn lookup_table_answers_exactly_between_grid_points() {
    let mut rng = Rng(31);
    let mut changing = 0;
    for case in 0..30 {
        let n = 2 + rng.below(5);
        let cost = random_costs(&mut rng, n, case % 2 == 0);
        let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
        let radio = random_network(&mut rng).radio();
        let all = all_schedules(&cost, true, radio.burst());
        let objective = if case % 3 == 0 { Metric::Energy } else { Metric::Latency };
        let mut constraints = Vec::new();
        if case % 4 == 1 {
            // a deadline binding somewhere in the box
            let mid = radio.with_bandwidth(3.0, 6.0);
            let lat: Vec<f64> = all
                .iter()
                .map(|(_, u)| metric_of(u, Metric::Latency, &mid, 1.0))
                .collect();
            let lo = lat.iter().copied().fold(f64::INFINITY, f64::min);
            constraints.push((Metric::Latency, lo * rng.range(1.0, 1.6)));
        }
        let spec = LutSpec {
            objective,
            constraints: constraints.clone(),
            radio,
            up: (0.5, 20.0),
            down: (1.0, 40.0),
            slowdown: (1.0, 3.0),
            cells: [5, 4, 3],
            force: Force::None,
            max_candidates: 10_000,
            max_labels: DEFAULT_MAX_LABELS,
            max_work: CELL_MAX_WORK,
        };
        let cells: Vec<usize> = (0..spec.num_cells()).collect();
        let built = build_cells(&g, &spec, &cells).unwrap();
        // flatten to an index (no dedup needed for the test)
        let mut reduced = Vec::new();
        let mut offsets = vec![0u32];
        let mut members = Vec::new();
        let mut status = Vec::new();
        for cell in &built {
            status.push(cell.status);
            for cand in &cell.candidates {
                members.push(reduced.len() as u32);
                reduced.push(reduce(&cand.usage, &radio));
            }
            offsets.push(members.len() as u32);
        }
        assert!(status.iter().all(|s| *s != CellStatus::Solve));
        let index = LutIndex {
            objective,
            constraints: constraints.clone(),
            radio,
            up: spec.up,
            down: spec.down,
            slowdown: spec.slowdown,
            axes: spec.axes(),
            reduced,
            status,
            offsets,
            members,
        };
        let mut optima = std::collections::HashSet::new();
        for _ in 0..40 {
            let p = Point {
                up_mbps: (rng.range(0.5f64.ln(), 20f64.ln())).exp(),
                down_mbps: (rng.range(0.0, 40f64.ln())).exp(),
                slowdown: rng.range(1.0, 3.0),
            };
            let net = radio.with_bandwidth(p.up_mbps, p.down_mbps);
            let mut req = Request::new(objective, net);
            req.slowdown = p.slowdown;
            if let Some(&(_, b)) = constraints.first() {
                req.deadline_ms = Some(b);
            }
            let expected = brute(&req, &all);
            match (index.query(&p), expected) {
                (Answer::Found(m, v), Some(best)) => {
                    optima.insert(m);
                    let got = if objective == Metric::Latency { v[0] } else { v[1] };
                    assert!(close(got, best), "case {case} at {p:?}: table {got} vs exact {best}");
                }
                (Answer::Infeasible, None) => {}
                (a, e) => panic!("case {case} at {p:?}: table {a:?} vs brute force {e:?}"),
            }
        }
        changing += usize::from(optima.len() > 1);
    }
    // the test only means something if optima change inside the box
    assert!(changing >= 10, "only {changing} cases had more than one optimum");
}

#[test]
fn outside_the_box_the_table_defers_to_a_solve() {
    let mut rng = Rng(5);
    let cost = random_costs(&mut rng, 4, false);
    let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
    let radio = random_network(&mut rng).radio();
    let spec = LutSpec {
        objective: Metric::Latency,
        constraints: vec![],
        radio,
        up: (1.0, 10.0),
        down: (1.0, 10.0),
        slowdown: (1.0, 1.0),
        cells: [2, 2, 4],
        force: Force::None,
        max_candidates: 100,
        max_labels: DEFAULT_MAX_LABELS,
        max_work: CELL_MAX_WORK,
    };
    assert_eq!(spec.axes(), [2, 2, 1]);
    let built = build_cells(&g, &spec, &(0..4).collect::<Vec<_>>()).unwrap();
    let mut index = LutIndex {
        objective: Metric::Latency,
        constraints: vec![],
        radio,
        up: spec.up,
        down: spec.down,
        slowdown: spec.slowdown,
        axes: spec.axes(),
        reduced: vec![],
        status: vec![],
        offsets: vec![0],
        members: vec![],
    };
    for cell in &built {
        index.status.push(cell.status);
        for cand in &cell.candidates {
            index.members.push(index.reduced.len() as u32);
            index.reduced.push(reduce(&cand.usage, &radio));
        }
        index.offsets.push(index.members.len() as u32);
    }
    let inside = Point {
        up_mbps: 3.0,
        down_mbps: 3.0,
        slowdown: 1.0,
    };
    assert!(matches!(index.query(&inside), Answer::Found(..)));
    for p in [
        Point { up_mbps: 0.5, ..inside },
        Point {
            down_mbps: 11.0,
            ..inside
        },
        Point {
            slowdown: 1.5,
            ..inside
        },
    ] {
        assert_eq!(index.query(&p), Answer::Solve, "{p:?}");
    }
}

#[test]
fn infeasible_constraint_is_named_with_its_least_value() {
    let mut rng = Rng(3);
    let cost = random_costs(&mut rng, 5, false);
    let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
    let net = random_network(&mut rng);
    let mut req = Request::new(Metric::Energy, net);
    let least = solve(&g, &Request::new(Metric::Latency, net))
        .unwrap()
        .metric(Metric::Latency, &net, 1.0);
    req.deadline_ms = Some(least * 0.5);
    match solve(&g, &req) {
        Err(PlanError::Infeasible { constraint, best, .. }) => {
            assert_eq!(constraint, "deadline_ms");
            assert!(close(best.unwrap(), least));
        }
        other => panic!("expected infeasible, got {other:?}"),
    }
}

#[test]
fn wide_dag_exact_on_a_unet_shape() {
    // encoder 0..k, decoder k..2k with skips i -> 2k-1-i (a U-Net), checked against brute force.
    let mut rng = Rng(99);
    let k = 4;
    let n = 2 * k;
    let mut cost = random_costs(&mut rng, n, false);
    for i in 0..k - 1 {
        cost.edges.push((i as i64, n - 1 - i));
    }
    cost.edges.sort();
    let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
    assert!(g.width >= k - 1);
    let net = random_network(&mut rng);
    let all = all_schedules(&cost, true, net.burst());
    for m in [Metric::Latency, Metric::Energy] {
        let req = Request::new(m, net);
        let s = solve(&g, &req).unwrap();
        let best = brute(&req, &all).unwrap();
        assert!(close(s.metric(m, &net, 1.0), best));
    }
}

#[test]
fn stateless_cloud_optimum_equals_brute_force() {
    let mut rng = Rng(77);
    let options = GraphOptions {
        cloud_keeps_tensors: false,
        ..GraphOptions::default()
    };
    for case in 0..150 {
        let n = 1 + rng.below(7);
        let cost = random_costs(&mut rng, n, case % 4 != 0);
        let g = StateGraph::build(&cost, &options).unwrap();
        let net = random_network(&mut rng);
        let all = all_schedules(&cost, false, net.burst());
        for m in [Metric::Latency, Metric::Energy] {
            let mut req = Request::new(m, net);
            req.slowdown = rng.range(0.5, 3.0);
            if rng.uniform() < 0.4 {
                let lat: Vec<f64> = all
                    .iter()
                    .map(|(_, u)| metric_of(u, Metric::Latency, &net, req.slowdown))
                    .collect();
                let lo = lat.iter().copied().fold(f64::INFINITY, f64::min);
                req.deadline_ms = Some(lo * rng.range(1.0, 1.5));
            }
            match (solve(&g, &req), brute(&req, &all)) {
                (Ok(s), Some(best)) => {
                    assert!(close(s.metric(m, &net, req.slowdown), best), "case {case}");
                    let (u, _) = evaluate(&cost, &s.segments, false, net.burst()).unwrap();
                    for (a, b) in u.iter().zip(&s.usage) {
                        assert!(close(*a, *b), "case {case}: state graph and evaluator disagree");
                    }
                    let stateful = solve(&StateGraph::build(&cost, &GraphOptions::default()).unwrap(), &req);
                    if let Ok(k) = stateful {
                        // keeping tensors can only help
                        assert!(k.metric(m, &net, req.slowdown) <= best * (1.0 + 1e-9));
                    }
                }
                (Err(PlanError::Infeasible { .. }), None) => {}
                (got, exp) => panic!("case {case}: {got:?} vs {exp:?}"),
            }
        }
    }
}

#[test]
fn on_chains_cloud_memory_makes_no_difference() {
    let mut rng = Rng(91);
    for _ in 0..60 {
        let n = 1 + rng.below(9);
        let cost = random_costs(&mut rng, n, false);
        let net = random_network(&mut rng);
        for keeps in [true, false] {
            let all = all_schedules(&cost, keeps, net.burst());
            for (segs, u) in &all {
                let (v, _) = evaluate(&cost, segs, !keeps, net.burst()).unwrap();
                assert_eq!(u, &v);
            }
        }
        let a = solve(
            &StateGraph::build(&cost, &GraphOptions::default()).unwrap(),
            &Request::new(Metric::Latency, net),
        )
        .unwrap();
        let opts = GraphOptions {
            cloud_keeps_tensors: false,
            ..GraphOptions::default()
        };
        let b = solve(
            &StateGraph::build(&cost, &opts).unwrap(),
            &Request::new(Metric::Latency, net),
        )
        .unwrap();
        assert!(close(
            a.metric(Metric::Latency, &net, 1.0),
            b.metric(Metric::Latency, &net, 1.0)
        ));
    }
}

#[test]
fn a_stateless_cloud_pays_for_skip_tensors_it_cannot_keep() {
    // 0 -> 1 -> 2 -> 3 -> 4 with a skip 0 -> 4 carrying a large tensor. Layers 2 and 3 are
    // cheap on the mobile and slow on the cloud, so a cloud that keeps layer 0's output runs
    // cloud, mobile, cloud; a stateless one must ship that tensor down and up again.
    let n = 5;
    let per_m = [100.0, 100.0, 1.0, 1.0, 100.0];
    let per_c = [1.0, 1.0, 100.0, 100.0, 1.0];
    let mut mm = vec![f64::INFINITY; n * n];
    let mut cm = vec![f64::INFINITY; n * n];
    for i in 0..n {
        mm[i * n + i] = per_m[i];
        cm[i * n + i] = per_c[i];
    }
    let mut cost = CostData::chain(n, mm.clone(), cm, mm, vec![2e6, 100.0, 100.0, 100.0, 100.0], 100.0);
    cost.edges.push((0, 4));
    let net = Network {
        up_mbps: 10.0,
        down_mbps: 20.0,
        alpha_up: 400.0,
        alpha_down: 100.0,
        beta: 800.0,
        rtt_ms: 0.0,
        burst_up_bytes: 0.0,
        burst_down_bytes: 0.0,
    };
    let req = Request::new(Metric::Latency, net);
    let keeps = solve(&StateGraph::build(&cost, &GraphOptions::default()).unwrap(), &req).unwrap();
    let pattern: Vec<_> = keeps.segments.iter().map(|s| s.2).collect();
    use crate::problem::Platform::{Cloud, Mobile};
    assert_eq!(pattern, [Cloud, Cloud, Mobile, Mobile, Cloud]);
    let opts = GraphOptions {
        cloud_keeps_tensors: false,
        ..GraphOptions::default()
    };
    let stateless = solve(&StateGraph::build(&cost, &opts).unwrap(), &req).unwrap();
    // the stateful schedule, evaluated for a stateless cloud, pays the 2e6 bytes down and up again
    let (u, _) = evaluate(&cost, &keeps.segments, false, net.burst()).unwrap();
    assert_eq!(
        u[crate::problem::BYTES_DOWN] - keeps.usage[crate::problem::BYTES_DOWN],
        2e6
    );
    assert_eq!(u[crate::problem::BYTES_UP] - keeps.usage[crate::problem::BYTES_UP], 2e6);
    // the stateless optimum avoids that and matches brute force under the stateless model
    let best = brute(&req, &all_schedules(&cost, false, net.burst())).unwrap();
    assert!(close(stateless.metric(Metric::Latency, &net, 1.0), best));
    assert!(best < metric_of(&u, Metric::Latency, &net, 1.0));
    assert!(stateless.metric(Metric::Latency, &net, 1.0) > keeps.metric(Metric::Latency, &net, 1.0));
}

#[test]
fn a_cell_over_its_work_budget_is_answered_by_a_solve_and_the_rest_stay_exact() {
    // A wide box in few cells: enumerating a cell's band takes many comparisons.
    let mut rng = Rng(17);
    let cost = random_costs(&mut rng, 6, true);
    let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
    let radio = random_network(&mut rng).radio();
    let all = all_schedules(&cost, true, radio.burst());
    let spec = |max_work| LutSpec {
        objective: Metric::Latency,
        constraints: vec![],
        radio,
        up: (0.1, 1000.0),
        down: (0.1, 1000.0),
        slowdown: (1.0, 1.0),
        cells: [3, 3, 1],
        force: Force::None,
        max_candidates: 10_000,
        max_labels: DEFAULT_MAX_LABELS,
        max_work,
    };
    let cells: Vec<usize> = (0..9).collect();
    let full = build_cells(&g, &spec(u64::MAX), &cells).unwrap();
    assert!(full.iter().all(|c| c.status == CellStatus::Exact));
    let sizes: Vec<usize> = full.iter().map(|c| c.candidates.len()).collect();
    // a budget between the cheapest and the dearest cell's needs
    let tight = build_cells(&g, &spec(40), &cells).unwrap();
    let solved = tight.iter().filter(|c| c.status == CellStatus::Solve).count();
    assert!(
        solved > 0 && solved < 9,
        "budget 40 left {solved} of 9 cells to solves ({sizes:?})"
    );
    for (t, f) in tight.iter().zip(&full) {
        match t.status {
            CellStatus::Exact => {
                let a: Vec<_> = t.candidates.iter().map(|c| c.segments.clone()).collect();
                let b: Vec<_> = f.candidates.iter().map(|c| c.segments.clone()).collect();
                assert_eq!(a, b, "a cell within its budget stores the same schedules");
            }
            CellStatus::Solve => assert!(t.candidates.is_empty()),
            CellStatus::Infeasible => panic!("no constraint, no infeasible cell"),
        }
    }
    // every schedule the unbudgeted table stores is a real one
    assert!(full
        .iter()
        .flat_map(|c| &c.candidates)
        .all(|c| all.iter().any(|(s, _)| *s == c.segments)));
}

#[test]
fn a_constrained_plan_over_its_work_budget_says_so() {
    // Find a case whose deadline binds (so the label search runs), then starve it.
    for seed in 23..200 {
        let mut rng = Rng(seed);
        let cost = random_costs(&mut rng, 8, true);
        let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
        let net = random_network(&mut rng);
        let fastest = solve(&g, &Request::new(Metric::Latency, net)).unwrap();
        let frugal = solve(&g, &Request::new(Metric::Energy, net)).unwrap();
        let (lo, hi) = (
            fastest.metric(Metric::Latency, &net, 1.0),
            frugal.metric(Metric::Latency, &net, 1.0),
        );
        if hi <= lo * 1.01 {
            continue;
        }
        let mut req = Request::new(Metric::Energy, net);
        req.deadline_ms = Some(0.5 * (lo + hi));
        assert!(solve(&g, &req).is_ok());
        req.max_work = 3;
        match solve(&g, &req) {
            Err(PlanError::TooLarge(msg)) => assert!(msg.contains("budget"), "{msg}"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        return;
    }
    panic!("no case with a binding deadline");
}

#[test]
fn overflowing_costs_are_refused_not_panicked_on() {
    // Two layers of 1e308 mJ each: every mobile schedule's energy overflows; a huge beta makes
    // every transfer's energy overflow too, so no schedule has a finite energy.
    let big = 1e308;
    let inf = f64::INFINITY;
    let mut cost = CostData::chain(
        2,
        vec![1.0, inf, inf, 1.0],
        vec![1.0, inf, inf, 1.0],
        vec![big, inf, inf, big],
        vec![1e300, 1e300],
        1e300,
    );
    let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
    let net = Network {
        up_mbps: 5.0,
        down_mbps: 10.0,
        alpha_up: 400.0,
        alpha_down: 50.0,
        beta: 1e300,
        rtt_ms: 0.0,
        burst_up_bytes: 0.0,
        burst_down_bytes: 0.0,
    };
    let mut req = Request::new(Metric::Latency, net);
    req.energy_budget_mj = Some(1.0);
    match solve(&g, &req) {
        Err(PlanError::InvalidInput(m)) => assert!(m.contains("overflows"), "{m}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    match solve(&g, &Request::new(Metric::Energy, net)) {
        Err(PlanError::InvalidInput(m)) => assert!(m.contains("mobile energy"), "{m}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    // mobile-only latency overflows too: not "no schedule with the offered groups"
    cost.mobile_ms = vec![big, inf, inf, big];
    let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
    let mut req = Request::new(Metric::Latency, net);
    req.force = Force::Mobile;
    assert!(matches!(solve(&g, &req), Err(PlanError::InvalidInput(_))));
}

#[test]
fn a_lookup_index_refuses_inconsistent_fields() {
    let radio = Radio {
        alpha_up: 400.0,
        alpha_down: 50.0,
        beta: 1000.0,
        rtt_ms: 0.0,
        burst_up_bytes: 0.0,
        burst_down_bytes: 0.0,
    };
    let ok = |axes: [usize; 3], up: (f64, f64), reduced: Vec<[f64; 5]>, radio: Radio| {
        let cells = axes.iter().fold(1usize, |a, &b| a.saturating_mul(b)).min(4);
        LutIndex::new(IndexParts {
            objective: Metric::Latency,
            constraints: vec![],
            radio,
            up,
            down: (1.0, 10.0),
            slowdown: (1.0, 1.0),
            axes,
            reduced: reduced.clone(),
            status: vec![0; cells],
            offsets: (0..=cells as u32).map(|c| c.min(reduced.len() as u32)).collect(),
            members: (0..cells.min(reduced.len()) as u32).collect(),
        })
    };
    assert!(ok([1, 1, 1], (1.0, 10.0), vec![[1.0; 5]], radio).is_ok());
    assert!(ok([0, 1, 1], (1.0, 10.0), vec![], radio).is_err());
    assert!(ok([1, 1, 1], (f64::NAN, 10.0), vec![[1.0; 5]], radio).is_err());
    assert!(ok([1, 1, 1], (0.0, 10.0), vec![[1.0; 5]], radio).is_err());
    assert!(ok([1, 1, 1], (1.0, 10.0), vec![[f64::NAN; 5]], radio).is_err());
    assert!(ok(
        [1, 1, 1],
        (1.0, 10.0),
        vec![[1.0; 5]],
        Radio {
            beta: f64::NAN,
            ..radio
        }
    )
    .is_err());
    assert!(ok([usize::MAX, 2, 1], (1.0, 10.0), vec![], radio).is_err());
    // a zero bandwidth is never inside the box, however small its lower end
    let index = ok([1, 1, 1], (1e-14, 10.0), vec![[1.0; 5]], radio).unwrap();
    let p = Point {
        up_mbps: 0.0,
        down_mbps: 2.0,
        slowdown: 1.0,
    };
    assert_eq!(index.query(&p), Answer::Solve);
}

#[test]
fn lookup_builds_refuse_out_of_range_and_too_many_cells() {
    let mut rng = Rng(5);
    let cost = random_costs(&mut rng, 3, false);
    let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
    let mut spec = LutSpec {
        objective: Metric::Latency,
        constraints: vec![],
        radio: random_network(&mut rng).radio(),
        up: (1.0, 10.0),
        down: (1.0, 10.0),
        slowdown: (1.0, 1.0),
        cells: [2, 2, 1],
        force: Force::None,
        max_candidates: 100,
        max_labels: DEFAULT_MAX_LABELS,
        max_work: CELL_MAX_WORK,
    };
    assert!(matches!(
        build_cells(&g, &spec, &[4]),
        Err(PlanError::InvalidRequest(_))
    ));
    spec.cells = [usize::MAX, 2, 1];
    assert!(matches!(
        build_cells(&g, &spec, &[0]),
        Err(PlanError::InvalidRequest(_))
    ));
}

#[test]
fn a_burst_is_credited_once_per_request_and_direction() {
    // Layer 0 on the mobile, layers 1 and 2 on the cloud, each cloud layer downloading updated weights
    // (7 kB, 8 kB); the 20 kB activation goes up, the 5 kB result comes down. Hand-counted.
    use crate::problem::Platform::{Cloud, Mobile};
    use crate::problem::{BYTES_DOWN, BYTES_UP, CREDIT_DOWN, CREDIT_UP, NO_BURST};
    let n = 3;
    let ones = vec![1.0; n * n];
    let mut cost = CostData::chain(n, ones.clone(), ones.clone(), ones, vec![20e3, 30e3, 5e3], 50e3);
    cost.cloud_download_bytes = vec![0.0, 7e3, 8e3];
    let two_groups = [(0, 0, Mobile), (1, 1, Cloud), (2, 2, Cloud)];
    let one_group = [(0, 0, Mobile), (1, 2, Cloud)];
    let credit = |segs: &[(usize, usize, crate::problem::Platform)], burst| {
        let (u, _) = evaluate(&cost, segs, true, burst).unwrap();
        assert_eq!(
            (u[BYTES_UP], u[BYTES_DOWN]),
            (20e3, 20e3),
            "a burst changes no byte count"
        );
        (u[CREDIT_UP], u[CREDIT_DOWN])
    };
    assert_eq!(credit(&two_groups, NO_BURST), (0.0, 0.0));
    // one request: its upload and its response each get one burst
    assert_eq!(credit(&two_groups, [10e3, 10e3]), (10e3, 10e3));
    assert_eq!(credit(&one_group, [10e3, 10e3]), (10e3, 10e3));
    // a burst larger than the transfers carries all of them, but for the first cloud group's weights
    // when the run has two groups: the planner credits only the group that ends the run (never too much)
    assert_eq!(credit(&two_groups, [30e3, 30e3]), (20e3, 13e3));
    assert_eq!(credit(&one_group, [30e3, 30e3]), (20e3, 20e3));
    // mobile, cloud, mobile, cloud: two requests, each with its own burst
    let back_and_forth = [(0, 0, Cloud), (1, 1, Mobile), (2, 2, Cloud)];
    let (u, _) = evaluate(&cost, &back_and_forth, true, [10e3, 4e3]).unwrap();
    // up: the input and layer 1's output; down: layer 0's output, layer 2's weights and the result
    assert_eq!((u[BYTES_UP], u[BYTES_DOWN]), (50e3 + 30e3, 20e3 + 8e3 + 5e3));
    assert_eq!((u[CREDIT_UP], u[CREDIT_DOWN]), (20e3, 8e3));
}

#[test]
fn a_burst_moves_the_optimum_where_its_credit_outweighs_the_difference() {
    // The network lab's case: a split uploading 13 kB on an 18.9 Mbit/s link is 4 ms dearer than staying
    // on the phone without a burst; a 9.4 kB burst sends 9.4 kB of it at once (3.98 ms saved).
    use crate::problem::Platform::{Cloud, Mobile};
    let n = 2;
    let inf = f64::INFINITY;
    let mobile = vec![10.0, inf, inf, 20.0];
    let cloud = vec![9.0, inf, inf, 0.5];
    let cost = CostData::chain(n, mobile.clone(), cloud, mobile, vec![13e3, 4.0], 600e3);
    cost.validate().unwrap();
    let g = StateGraph::build(&cost, &GraphOptions::default()).unwrap();
    let mut net = Network {
        up_mbps: 18.9,
        down_mbps: 50.0,
        alpha_up: 283.17,
        alpha_down: 137.01,
        beta: 132.86,
        rtt_ms: 7.0,
        burst_up_bytes: 0.0,
        burst_down_bytes: 0.0,
    };
    let upload_ms = 8.0 * 13e3 / 18.9e3;
    let split_ms = 10.0 + upload_ms + 0.5 + 8.0 * 4.0 / 50e3 + 14.0; // two switches of rtt_ms
    assert!(split_ms > 30.0 && split_ms < 30.0 + 4.0, "{split_ms}");
    let plain = solve(&g, &Request::new(Metric::Latency, net)).unwrap();
    assert_eq!(plain.segments, vec![(0, 0, Mobile), (1, 1, Mobile)]);
    net.burst_up_bytes = 9.4e3;
    let bursty = solve(&g, &Request::new(Metric::Latency, net)).unwrap();
    assert_eq!(bursty.segments, vec![(0, 0, Mobile), (1, 1, Cloud)]);
    let credited_ms = split_ms - 8.0 * 9.4e3 / 18.9e3;
    assert!(close(bursty.metric(Metric::Latency, &net, 1.0), credited_ms));
}
