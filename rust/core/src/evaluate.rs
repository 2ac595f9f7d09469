//! Independent evaluation of a schedule, straight from the cost model's
//! definition (no state graph): the reference every solver is checked
//! against, and the brute-force enumerator used by the tests.

use crate::error::{invalid, Result};
use crate::problem::{
    Burst, CostData, Platform, Segments, Usage, BYTES_DOWN, BYTES_UP, CLOUD_MS, CODEC_MJ, CODEC_MS, CREDIT_DOWN,
    CREDIT_UP, DIMS, MOBILE_MJ, MOBILE_MS, NO_BURST, SWITCHES,
};

/// Usage and number of transfers of `segments` (consecutive groups covering `0..n`) on a link with `burst`.
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
///
/// Burst credit: each transfer is sent with one group. An upload goes with the
/// group of its first reader in the cloud run it goes to; a download with the
/// group that produces it when it is a model output, else with the first group
/// after its cloud run when the cloud is stateless (the run's hand-back), else
/// with the group of its first reader on the mobile; a weight set with its
/// layer's group. The burst carries `min(burst, bytes)` of the uploads sent with
/// a group that starts a cloud run, and of the downloads sent with a group that
/// follows a cloud run or is the last group and on the cloud.
pub fn evaluate(
    cost: &CostData,
    segments: &[(usize, usize, Platform)],
    cloud_keeps_tensors: bool,
    burst: Burst,
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
    // group index of every layer, and the bytes each group sends per direction
    let mut group = vec![0usize; n];
    for (k, &(a, b, _)) in segments.iter().enumerate() {
        for slot in group.iter_mut().take(b + 1).skip(a) {
            *slot = k;
        }
    }
    let mut sent = vec![[0.0f64; 2]; segments.len()];
    let mut transfers = 0u32;
    let mut send = |u: &mut Usage, t: usize, dir: usize, with: usize| {
        let bytes = cost.tensor_bytes(t);
        u[if dir == 0 { BYTES_UP } else { BYTES_DOWN }] += bytes;
        u[CODEC_MS] += cost.codec_ms[t][dir];
        u[CODEC_MJ] += cost.codec_mj[t][dir];
        sent[with][dir] += bytes;
        transfers += 1;
    };
    let first_reader = |cons: &[usize], keep: &dyn Fn(usize) -> bool| cons.iter().copied().filter(|&c| keep(c)).min();
    for (t, cons) in consumers.iter().enumerate() {
        let from = if t == 0 { Platform::Mobile } else { place[t - 1] };
        let must_return = t > 0 && cost.outputs.contains(&(t - 1));
        if cloud_keeps_tensors {
            if from == Platform::Cloud && must_return {
                send(&mut u, t, 1, group[t - 1]);
            } else if let Some(c) = first_reader(cons, &|c| place[c] != from) {
                send(&mut u, t, if from == Platform::Mobile { 0 } else { 1 }, group[c]);
            }
            continue;
        }
        let home = if t == 0 { usize::MAX } else { run[t - 1] };
        if from == Platform::Cloud {
            if must_return {
                send(&mut u, t, 1, group[t - 1]);
            } else if cons.iter().any(|&c| run[c] != home) {
                // handed back with the first group after its run (a stateless cloud run is followed by one)
                let after = (group[t - 1]..segments.len()).find(|&k| run[segments[k].0] != home);
                send(&mut u, t, 1, after.expect("a reader outside the run follows it"));
            }
        }
        let mut cloud_runs: Vec<(usize, usize)> = cons
            .iter()
            .filter(|&&c| place[c] == Platform::Cloud && run[c] != home)
            .map(|&c| (run[c], c))
            .collect();
        cloud_runs.sort_unstable();
        cloud_runs.dedup_by_key(|&mut (r, _)| r);
        for (_, c) in cloud_runs {
            send(&mut u, t, 0, group[c]); // the run's first reader: pairs sort by reader within a run
        }
    }
    for (l, p) in place.iter().enumerate() {
        if *p == Platform::Cloud && cost.cloud_download_bytes[l] > 0.0 {
            u[BYTES_DOWN] += cost.cloud_download_bytes[l];
            sent[group[l]][1] += cost.cloud_download_bytes[l];
            transfers += 1;
        }
    }
    if burst != NO_BURST {
        for (k, &(_, _, p)) in segments.iter().enumerate() {
            let before = if k == 0 { Platform::Mobile } else { segments[k - 1].2 };
            if p == Platform::Cloud && before == Platform::Mobile {
                u[CREDIT_UP] += burst[0].min(sent[k][0]);
            }
            if (p == Platform::Mobile && before == Platform::Cloud) || (p == Platform::Cloud && k + 1 == segments.len())
            {
                u[CREDIT_DOWN] += burst[1].min(sent[k][1]);
            }
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
pub fn all_schedules(cost: &CostData, keeps: bool, burst: Burst) -> Vec<(Segments, Usage)> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    fn rec(
        cost: &CostData,
        keeps: bool,
        burst: Burst,
        start: usize,
        cur: &mut Vec<(usize, usize, Platform)>,
        out: &mut Vec<(Segments, Usage)>,
    ) {
        if start == cost.n {
            let (u, _) = evaluate(cost, cur, keeps, burst).expect("enumerated schedules are valid");
            out.push((cur.clone(), u));
            return;
        }
        for end in start..cost.n {
            for p in Platform::BOTH {
                if cost.group_ms(start, end, p).is_finite() {
                    cur.push((start, end, p));
                    rec(cost, keeps, burst, end + 1, cur, out);
                    cur.pop();
                }
            }
        }
    }
    rec(cost, keeps, burst, 0, &mut cur, &mut out);
    out
}
