//! The cost model: grouped layer costs, tensor sizes, the network link, and
//! the *usage* vector that every metric of a schedule is a linear function of.
//!
//! A schedule's latency, mobile energy and cloud time all derive from ten
//! bandwidth-independent totals ([`Usage`]): mobile compute time, cloud compute
//! time, mobile compute energy, bytes uploaded, bytes downloaded, platform
//! switches, codec time/energy, and the bytes up and down that a link's burst
//! carries ([`Radio::burst_up_bytes`]). Given a [`Network`] and a cloud slowdown,
//! each metric is a dot product of the usage with a weight vector
//! ([`weights`]). This is what makes lookup tables exact: for a fixed
//! schedule and radio every metric is linear in `1/up_mbps`, `1/down_mbps` and
//! the cloud slowdown.
//!
//! Bursts. A shaped link (a token bucket: `tc tbf`, a cellular scheduler's
//! grant) passes the first `burst` bytes of a transfer that starts after a
//! pause at once, and the rest at the link's rate: `max(0, bytes - burst) /
//! rate`. The planner gives that credit once per request and direction, at
//! the transition that starts a cloud run (its upload) and at the one that
//! ends it (its download, the final result's included): see
//! `structure::transfer_usage`. Without a burst (the default) the credit
//! dimensions are zero and every metric is as in the paper.

use crate::error::{bad_request, invalid, Result};

/// Number of usage dimensions.
pub const DIMS: usize = 10;
/// Usage index: mobile compute time (ms).
pub const MOBILE_MS: usize = 0;
/// Usage index: cloud compute time (ms, before slowdown).
pub const CLOUD_MS: usize = 1;
/// Usage index: mobile compute energy (mJ).
pub const MOBILE_MJ: usize = 2;
/// Usage index: bytes uploaded.
pub const BYTES_UP: usize = 3;
/// Usage index: bytes downloaded.
pub const BYTES_DOWN: usize = 4;
/// Usage index: platform switches (each costs one round trip).
pub const SWITCHES: usize = 5;
/// Usage index: codec time added to transfers (ms).
pub const CODEC_MS: usize = 6;
/// Usage index: codec mobile energy added to transfers (mJ).
pub const CODEC_MJ: usize = 7;
/// Usage index: uploaded bytes the link's burst carries (at once, not at the rate).
pub const CREDIT_UP: usize = 8;
/// Usage index: downloaded bytes the link's burst carries.
pub const CREDIT_DOWN: usize = 9;

/// Bandwidth-independent totals of a schedule (see the module docs).
pub type Usage = [f64; DIMS];

/// A schedule: `(first, last, platform)` of each group, in order.
pub type Segments = Vec<(usize, usize, Platform)>;

/// Where a group of layers runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    Mobile = 0,
    Cloud = 1,
}

impl Platform {
    pub fn other(self) -> Platform {
        match self {
            Platform::Mobile => Platform::Cloud,
            Platform::Cloud => Platform::Mobile,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Platform::Mobile => "mobile",
            Platform::Cloud => "cloud",
        }
    }
    pub const BOTH: [Platform; 2] = [Platform::Mobile, Platform::Cloud];
}

/// A metric a schedule can be optimised for or constrained by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// End-to-end latency (ms): all compute plus all transfers plus round trips.
    Latency,
    /// Mobile energy (mJ): mobile compute plus radio, as in the paper.
    Energy,
    /// Cloud compute time (ms), scaled by the cloud slowdown.
    Cloud,
}

/// The bandwidth-independent part of a link: the paper's radio power model and the round
/// trip (what a lookup table is built for; mirrors `jointdnn_edge.network.Radio`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Radio {
    /// mW per Mbit/s while uploading.
    pub alpha_up: f64,
    /// mW per Mbit/s while downloading.
    pub alpha_down: f64,
    /// Base radio power (mW).
    pub beta: f64,
    /// Round trip added per platform switch (ms).
    pub rtt_ms: f64,
    /// Bytes of a request's upload the link passes at once (its burst; see the module docs).
    pub burst_up_bytes: f64,
    /// Bytes of a response the link passes at once.
    pub burst_down_bytes: f64,
}

impl Radio {
    /// The paper's radio: this power model, no round trip and no burst.
    pub fn new(alpha_up: f64, alpha_down: f64, beta: f64) -> Radio {
        Radio {
            alpha_up,
            alpha_down,
            beta,
            rtt_ms: 0.0,
            burst_up_bytes: 0.0,
            burst_down_bytes: 0.0,
        }
    }

    /// `[burst_up_bytes, burst_down_bytes]`.
    #[inline]
    pub fn burst(&self) -> Burst {
        [self.burst_up_bytes, self.burst_down_bytes]
    }

    /// Checks that the power model, round trip and bursts are finite and non-negative.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("alpha_up", self.alpha_up),
            ("alpha_down", self.alpha_down),
            ("beta", self.beta),
            ("rtt_ms", self.rtt_ms),
            ("burst_up_bytes", self.burst_up_bytes),
            ("burst_down_bytes", self.burst_down_bytes),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad_request(format!("{name} must be finite and >= 0, got {v}"));
            }
        }
        Ok(())
    }

    /// The link of this radio at these bandwidths.
    pub fn with_bandwidth(&self, up_mbps: f64, down_mbps: f64) -> Network {
        Network {
            up_mbps,
            down_mbps,
            alpha_up: self.alpha_up,
            alpha_down: self.alpha_down,
            beta: self.beta,
            rtt_ms: self.rtt_ms,
            burst_up_bytes: self.burst_up_bytes,
            burst_down_bytes: self.burst_down_bytes,
        }
    }
}

/// Bytes a link passes at once per request, `[up, down]` (see the module docs).
pub type Burst = [f64; 2];

/// No burst: every byte at the link's rate (the paper's model).
pub const NO_BURST: Burst = [0.0, 0.0];

/// The mobile link with the paper's linear radio power model (Eq. 21): bandwidths and a
/// [`Radio`] (mirrors `jointdnn_edge.network.Network`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Network {
    pub up_mbps: f64,
    pub down_mbps: f64,
    /// mW per Mbit/s while uploading.
    pub alpha_up: f64,
    /// mW per Mbit/s while downloading.
    pub alpha_down: f64,
    /// Base radio power (mW).
    pub beta: f64,
    /// Round trip added per platform switch (ms).
    pub rtt_ms: f64,
    /// Bytes of a request's upload the link passes at once.
    pub burst_up_bytes: f64,
    /// Bytes of a response the link passes at once.
    pub burst_down_bytes: f64,
}

impl Network {
    /// Checks that bandwidths are positive and the power model non-negative.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("up_mbps", self.up_mbps), ("down_mbps", self.down_mbps)] {
            if !(v.is_finite() && v > 0.0) {
                return bad_request(format!("{name} must be positive and finite, got {v}"));
            }
        }
        self.radio().validate()
    }

    /// The power model and round trip without the bandwidths.
    pub fn radio(&self) -> Radio {
        Radio {
            alpha_up: self.alpha_up,
            alpha_down: self.alpha_down,
            beta: self.beta,
            rtt_ms: self.rtt_ms,
            burst_up_bytes: self.burst_up_bytes,
            burst_down_bytes: self.burst_down_bytes,
        }
    }

    /// `[burst_up_bytes, burst_down_bytes]`.
    #[inline]
    pub fn burst(&self) -> Burst {
        [self.burst_up_bytes, self.burst_down_bytes]
    }

    /// The same radio at other bandwidths.
    pub fn with_bandwidth(&self, up_mbps: f64, down_mbps: f64) -> Network {
        self.radio().with_bandwidth(up_mbps, down_mbps)
    }
}

/// Weight vector `w` such that `metric = w · usage` on `net` with `slowdown`.
///
/// Upload of `b` bytes takes `8 b / (up · 1e3)` ms at `alpha_up · up + beta` mW,
/// i.e. costs `8 b (alpha_up · up + beta) / (up · 1e6)` mJ; download likewise.
/// Bytes a burst carries (`CREDIT_*`) take no time: they give back their time
/// and the base power `beta` over it; the radio still spends `alpha` per bit on
/// them, the part of the power model that scales with the bits sent.
pub fn weights(metric: Metric, net: &Network, slowdown: f64) -> Usage {
    let mut w = [0.0; DIMS];
    match metric {
        Metric::Latency => {
            w[MOBILE_MS] = 1.0;
            w[CLOUD_MS] = slowdown;
            w[BYTES_UP] = 8.0 / (net.up_mbps * 1e3);
            w[BYTES_DOWN] = 8.0 / (net.down_mbps * 1e3);
            w[SWITCHES] = net.rtt_ms;
            w[CODEC_MS] = 1.0;
            w[CREDIT_UP] = -w[BYTES_UP];
            w[CREDIT_DOWN] = -w[BYTES_DOWN];
        }
        Metric::Energy => {
            w[MOBILE_MJ] = 1.0;
            w[BYTES_UP] = 8.0 * (net.alpha_up * net.up_mbps + net.beta) / (net.up_mbps * 1e6);
            w[BYTES_DOWN] = 8.0 * (net.alpha_down * net.down_mbps + net.beta) / (net.down_mbps * 1e6);
            w[CODEC_MJ] = 1.0;
            w[CREDIT_UP] = -8e-6 * net.beta / net.up_mbps;
            w[CREDIT_DOWN] = -8e-6 * net.beta / net.down_mbps;
        }
        Metric::Cloud => {
            w[CLOUD_MS] = slowdown;
        }
    }
    w
}

/// `w · u`.
#[inline]
pub fn dot(w: &Usage, u: &Usage) -> f64 {
    let mut s = 0.0;
    for k in 0..DIMS {
        s += w[k] * u[k];
    }
    s
}

/// Component-wise `a + b`.
#[inline]
pub fn add(a: &Usage, b: &Usage) -> Usage {
    let mut r = *a;
    for k in 0..DIMS {
        r[k] += b[k];
    }
    r
}

/// Grouped costs and tensor sizes of one DNN (mirror of the Python `CostTable`).
///
/// Layers `0..n` are in topological order. Tensor `0` is the model input (it
/// starts on the mobile); tensor `k + 1` is layer `k`'s output.
#[derive(Clone, Debug, PartialEq)]
pub struct CostData {
    pub n: usize,
    /// `n × n`, row-major: `mobile_ms[i * n + j]` = layers `i..=j` as one group (`inf`: not offered).
    pub mobile_ms: Vec<f64>,
    pub cloud_ms: Vec<f64>,
    pub mobile_mj: Vec<f64>,
    /// Bytes of each layer's output as sent.
    pub out_bytes: Vec<f64>,
    pub input_bytes: f64,
    /// `(u, v)`: layer `v` reads layer `u`'s output; `u = -1` is the model input.
    pub edges: Vec<(i64, usize)>,
    /// Layers whose outputs are model outputs and must end on the mobile.
    pub outputs: Vec<usize>,
    /// Bytes to download when a layer runs on the cloud (updated weights in training).
    pub cloud_download_bytes: Vec<f64>,
    /// Per tensor (`n + 1` rows), codec time added to an upload / a download (ms).
    pub codec_ms: Vec<[f64; 2]>,
    /// Per tensor, codec mobile energy added to an upload / a download (mJ).
    pub codec_mj: Vec<[f64; 2]>,
}

impl CostData {
    /// A chain of `n` layers from per-group matrices, with no codec costs,
    /// the last layer as the only output.
    pub fn chain(
        n: usize,
        mobile_ms: Vec<f64>,
        cloud_ms: Vec<f64>,
        mobile_mj: Vec<f64>,
        out_bytes: Vec<f64>,
        input_bytes: f64,
    ) -> CostData {
        CostData {
            n,
            mobile_ms,
            cloud_ms,
            mobile_mj,
            out_bytes,
            input_bytes,
            edges: (1..n).map(|v| (v as i64 - 1, v)).collect(),
            outputs: if n > 0 { vec![n - 1] } else { vec![] },
            cloud_download_bytes: vec![0.0; n],
            codec_ms: vec![[0.0; 2]; n + 1],
            codec_mj: vec![[0.0; 2]; n + 1],
        }
    }

    /// Group cost on `p` for layers `i..=j` (time for mobile/cloud).
    #[inline]
    pub fn group_ms(&self, i: usize, j: usize, p: Platform) -> f64 {
        match p {
            Platform::Mobile => self.mobile_ms[i * self.n + j],
            Platform::Cloud => self.cloud_ms[i * self.n + j],
        }
    }

    /// Bytes of tensor `t` (0: model input, k + 1: layer k's output).
    #[inline]
    pub fn tensor_bytes(&self, t: usize) -> f64 {
        if t == 0 {
            self.input_bytes
        } else {
            self.out_bytes[t - 1]
        }
    }

    /// Checks shapes, signs and finiteness; single layers must be offered on both platforms.
    pub fn validate(&self) -> Result<()> {
        let n = self.n;
        if n == 0 {
            return invalid("a cost table needs at least one layer");
        }
        for (name, m) in [
            ("mobile_ms", &self.mobile_ms),
            ("cloud_ms", &self.cloud_ms),
            ("mobile_mj", &self.mobile_mj),
        ] {
            if m.len() != n * n {
                return invalid(format!("{name} must have {n}x{n} entries, got {}", m.len()));
            }
            for i in 0..n {
                for j in i..n {
                    let v = m[i * n + j];
                    if v.is_nan() || v < 0.0 {
                        return invalid(format!("{name}[{i}, {j}] = {v} must be >= 0 (inf: not offered)"));
                    }
                }
                if !m[i * n + i].is_finite() {
                    return invalid(format!(
                        "{name}[{i}, {i}] must be finite: every single layer must be offered"
                    ));
                }
            }
        }
        for i in 0..n {
            for j in i..n {
                if self.mobile_ms[i * n + j].is_finite() != self.mobile_mj[i * n + j].is_finite() {
                    return invalid(format!(
                        "mobile_ms[{i}, {j}] and mobile_mj[{i}, {j}] disagree on whether the group is offered"
                    ));
                }
            }
        }
        let check_vec = |name: &str, v: &[f64], len: usize| -> Result<()> {
            if v.len() != len {
                return invalid(format!("{name} must have {len} entries, got {}", v.len()));
            }
            for (i, x) in v.iter().enumerate() {
                if !(x.is_finite() && *x >= 0.0) {
                    return invalid(format!("{name}[{i}] = {x} must be finite and >= 0"));
                }
            }
            Ok(())
        };
        check_vec("out_bytes", &self.out_bytes, n)?;
        check_vec("cloud_download_bytes", &self.cloud_download_bytes, n)?;
        check_vec("input_bytes", &[self.input_bytes], 1)?;
        for (name, m) in [("codec_ms", &self.codec_ms), ("codec_mj", &self.codec_mj)] {
            if m.len() != n + 1 {
                return invalid(format!("{name} must have {} rows, got {}", n + 1, m.len()));
            }
            for row in m.iter() {
                check_vec(name, row, 2)?;
            }
        }
        for &(u, v) in &self.edges {
            if !(u >= -1 && u < v as i64 && v < n) {
                return invalid(format!(
                    "edge ({u}, {v}) is invalid: need -1 <= u < v < {n} (topological order)"
                ));
            }
        }
        for &o in &self.outputs {
            if o >= n {
                return invalid(format!("output layer {o} is out of range 0..{}", n - 1));
            }
        }
        Ok(())
    }
}

/// Parameters of the lookup-table space: bandwidth (Mbit/s) and slowdown ranges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub up_mbps: f64,
    pub down_mbps: f64,
    pub slowdown: f64,
}

/// Number of reduced coordinates of a schedule for a fixed radio (see [`reduce`]).
pub const RDIMS: usize = 5;

/// Reduced coordinates for a fixed radio (alpha, beta, rtt, burst) and varying bandwidths
/// and slowdown: `[L0, E0, bytes_up - credit_up, bytes_down - credit_down, cloud_ms]` (the
/// bytes sent at the rate), where `L0 = mobile_ms + rtt · switches + codec_ms` and
/// `E0 = mobile_mj + codec_mj + 8e-6 (alpha_up · bytes_up + alpha_down · bytes_down)`.
/// Every metric at a point is a non-negative combination of them ([`reduced_weights`]).
pub fn reduce(u: &Usage, net: &Radio) -> [f64; RDIMS] {
    [
        u[MOBILE_MS] + net.rtt_ms * u[SWITCHES] + u[CODEC_MS],
        u[MOBILE_MJ] + u[CODEC_MJ] + 8e-6 * (net.alpha_up * u[BYTES_UP] + net.alpha_down * u[BYTES_DOWN]),
        u[BYTES_UP] - u[CREDIT_UP],
        u[BYTES_DOWN] - u[CREDIT_DOWN],
        u[CLOUD_MS],
    ]
}

/// Weights `c` with `metric(point) = c · reduce(usage)`.
pub fn reduced_weights(metric: Metric, net: &Radio, p: &Point) -> [f64; RDIMS] {
    match metric {
        Metric::Latency => [1.0, 0.0, 8.0 / (p.up_mbps * 1e3), 8.0 / (p.down_mbps * 1e3), p.slowdown],
        Metric::Energy => [
            0.0,
            1.0,
            8e-6 * net.beta / p.up_mbps,
            8e-6 * net.beta / p.down_mbps,
            0.0,
        ],
        Metric::Cloud => [0.0, 0.0, 0.0, 0.0, p.slowdown],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Network {
        Network {
            up_mbps: 5.85,
            down_mbps: 13.76,
            alpha_up: 438.39,
            alpha_down: 51.97,
            beta: 1288.04,
            rtt_ms: 3.0,
            burst_up_bytes: 0.0,
            burst_down_bytes: 0.0,
        }
    }

    #[test]
    fn reduced_coordinates_reproduce_every_metric() {
        let u: Usage = [12.0, 3.5, 80.0, 150_000.0, 4_000.0, 2.0, 1.5, 0.7, 9_000.0, 4_000.0];
        let n = net();
        let p = Point {
            up_mbps: n.up_mbps,
            down_mbps: n.down_mbps,
            slowdown: 1.7,
        };
        let r = reduce(&u, &n.radio());
        for m in [Metric::Latency, Metric::Energy, Metric::Cloud] {
            let direct = dot(&weights(m, &n, 1.7), &u);
            let c = reduced_weights(m, &n.radio(), &p);
            let via: f64 = (0..RDIMS).map(|k| c[k] * r[k]).sum();
            assert!(
                (direct - via).abs() <= 1e-9 * direct.abs().max(1.0),
                "{m:?}: {direct} vs {via}"
            );
        }
    }

    #[test]
    fn upload_energy_matches_the_paper_formula() {
        // 1 MB over 4G: t = 8e6 / 5.85e6 s, P = 438.39 * 5.85 + 1288.04 mW.
        let n = net();
        let mut u = [0.0; DIMS];
        u[BYTES_UP] = 1e6;
        let t_s = 8e6 / (5.85e6);
        let p_mw = 438.39 * 5.85 + 1288.04;
        let e = dot(&weights(Metric::Energy, &n, 1.0), &u);
        assert!((e - p_mw * t_s).abs() < 1e-9 * e);
        let l = dot(&weights(Metric::Latency, &n, 1.0), &u);
        assert!((l - t_s * 1e3).abs() < 1e-9 * l);
    }

    #[test]
    fn a_burst_gives_back_the_time_of_the_bytes_it_carries() {
        // 20 kB up over 4G, 9 kB of them in the burst: 11 kB at the rate; the radio spends alpha on all 20 kB
        // and its base power over the 11 kB's time.
        let n = net();
        let mut u = [0.0; DIMS];
        u[BYTES_UP] = 20e3;
        u[CREDIT_UP] = 9e3;
        let t_ms = 8.0 * 11e3 / 5.85e3;
        let l = dot(&weights(Metric::Latency, &n, 1.0), &u);
        assert!((l - t_ms).abs() < 1e-12 * t_ms, "{l} vs {t_ms}");
        let e_mj = 438.39 * 8.0 * 20e3 / 1e6 + 1288.04 * t_ms / 1e3;
        let e = dot(&weights(Metric::Energy, &n, 1.0), &u);
        assert!((e - e_mj).abs() < 1e-12 * e_mj, "{e} vs {e_mj}");
    }

    #[test]
    fn validation_names_the_bad_entry() {
        let mut c = CostData::chain(2, vec![1.0; 4], vec![1.0; 4], vec![1.0; 4], vec![1.0; 2], 1.0);
        assert!(c.validate().is_ok());
        c.cloud_ms[3] = f64::INFINITY;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("cloud_ms[1, 1]"), "{e}");
        c.cloud_ms[3] = 1.0;
        c.mobile_ms[1] = f64::NAN;
        assert!(c.validate().unwrap_err().to_string().contains("mobile_ms[0, 1]"));
    }
}
