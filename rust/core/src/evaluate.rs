//! Independent evaluation of a schedule, straight from the cost model's
//! definition (no state graph): the reference every solver is checked
//! against, and the brute-force enumerator used by the tests.

use crate::error::{invalid, Result};
use crate::problem::{
    CostData, Platform, Segments, Usage, BYTES_DOWN, BYTES_UP, CLOUD_MS, CODEC_MJ, CODEC_MS, DIMS, MOBILE_MJ,
    MOBILE_MS, SWITCHES,
};

/// Usage and number of transfers of `segments` (consecutive groups covering `0..n`).
///
/// Definition: every group's compute cost; a layer on the cloud downloads
/// its `cloud_download_bytes`; each change of platform in the sequence
/// `mobile, groups…, mobile` is one switch. Tensors (the model input is
/// produced on the mobile):
/// * cloud keeps tensors: a tensor whose producer's platform differs from
///   the platform of at least one consumer is sent once that way, and a
///   model output produced on the cloud is downloaded;
/// * stateless cloud: a tensor produced in a cloud *run* (maximal sequence
///   of cloud groups) is downloaded once if a layer outside that run reads
///   it or it is a model output; it is uploaded once to every other cloud
///   run that reads it.
pub fn evaluate(
    cost: &CostData,
    segments: &[(usize, usize, Platform)],
    cloud_keeps_tensors: bool,
) -> Result<(Usage, u32)> {
    let n = cost.n;
    let mut u = [0.0; DIMS];
    let mut place = vec![Platform::Mobile; n];
    let mut next = 0usize;
    for &(a, b, p) in segments {
        if a != next || b < a || b >= n {
            return invalid(format!(
                "segments must cover layers 0..{} in order without gaps; got ({a}, {b}) where layer {next} was expected",
                n - 1
            ));
        }
        let t = cost.group_ms(a, b, p);
        if !t.is_finite() {
            return invalid(format!("group {a}..{b} is not offered on the {}", p.name()));
        }
        match p {
            Platform::Mobile => {
                u[MOBILE_MS] += t;
                u[MOBILE_MJ] += cost.mobile_mj[a * n + b];
            }
            Platform::Cloud => u[CLOUD_MS] += t,
        }
        for slot in place.iter_mut().take(b + 1).skip(a) {
            *slot = p;
        }
        next = b + 1;
    }
    if next != n {
        return invalid(format!(
            "segments end at layer {} but the model has {n} layers",
            next as i64 - 1
        ));
    }
    // consumers per tensor
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n + 1];
    let mut has_pred = vec![false; n];
    for &(a, b) in &cost.edges {
        consumers[(a + 1) as usize].push(b);
        has_pred[b] = true;
    }
    for (v, hp) in has_pred.iter().enumerate() {
        if !hp {
            consumers[0].push(v);
        }
    }
    // run index of every layer (maximal same-platform sequences of groups)
    let mut run = vec![0usize; n];
    let mut r = 0usize;
    for (k, &(a, b, p)) in segments.iter().enumerate() {
        if k > 0 && segments[k - 1].2 != p {
            r += 1;
        }
        for slot in run.iter_mut().take(b + 1).skip(a) {
            *slot = r;
        }
    }
    let mut transfers = 0u32;
    let mut send = |u: &mut Usage, t: usize, dir: usize| {
        u[if dir == 0 { BYTES_UP } else { BYTES_DOWN }] += cost.tensor_bytes(t);
        u[CODEC_MS] += cost.codec_ms[t][dir];
        u[CODEC_MJ] += cost.codec_mj[t][dir];
        transfers += 1;
    };
    for (t, cons) in consumers.iter().enumerate() {
        let from = if t == 0 { Platform::Mobile } else { place[t - 1] };
        let must_return = t > 0 && cost.outputs.contains(&(t - 1));
        if cloud_keeps_tensors {
            if cons.iter().any(|&c| place[c] != from) || (must_return && from == Platform::Cloud) {
                send(&mut u, t, if from == Platform::Mobile { 0 } else { 1 });
            }
            continue;
        }
        let home = if t == 0 { usize::MAX } else { run[t - 1] };
        if from == Platform::Cloud && (must_return || cons.iter().any(|&c| run[c] != home)) {
            send(&mut u, t, 1);
        }
        let mut cloud_runs: Vec<usize> = cons
            .iter()
            .filter(|&&c| place[c] == Platform::Cloud && run[c] != home)
            .map(|&c| run[c])
            .collect();
        cloud_runs.sort_unstable();
        cloud_runs.dedup();
        for _ in cloud_runs {
            send(&mut u, t, 0);
        }
    }
    for (l, p) in place.iter().enumerate() {
        if *p == Platform::Cloud && cost.cloud_download_bytes[l] > 0.0 {
            u[BYTES_DOWN] += cost.cloud_download_bytes[l];
            transfers += 1;
        }
    }
    let mut prev = Platform::Mobile;
    for &(_, _, p) in segments {
        if p != prev {
            u[SWITCHES] += 1.0;
        }
        prev = p;
    }
    if prev != Platform::Mobile {
        u[SWITCHES] += 1.0;
    }
    Ok((u, transfers))
}

/// Every schedule of `cost` (all groupings, all platforms) with its usage;
/// `2 · 3^(n-1)` of them when all groups are offered, so only for small `n`.
pub fn all_schedules(cost: &CostData, keeps: bool) -> Vec<(Segments, Usage)> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    fn rec(
        cost: &CostData,
        keeps: bool,
        start: usize,
        cur: &mut Vec<(usize, usize, Platform)>,
        out: &mut Vec<(Segments, Usage)>,
    ) {
        if start == cost.n {
            let (u, _) = evaluate(cost, cur, keeps).expect("enumerated schedules are valid");
            out.push((cur.clone(), u));
            return;
        }
        for end in start..cost.n {
            for p in Platform::BOTH {
                if cost.group_ms(start, end, p).is_finite() {
                    cur.push((start, end, p));
                    rec(cost, keeps, end + 1, cur, out);
                    cur.pop();
                }
            }
        }
    }
    rec(cost, keeps, 0, &mut cur, &mut out);
    out
}
