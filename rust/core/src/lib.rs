//! jointdnn-core: exact planning of DNN execution between a mobile device and the cloud.
//!
//! The planner implements JointDNN (Eshratifar, Abrishami, Pedram, arXiv
//! 1801.08618): a DNN's layers, in topological order, are cut into groups of
//! consecutive layers, each run on the mobile or the cloud; the best
//! schedule is a shortest path in the JointDNN graph. This crate
//! generalises the graph to any DAG ([`structure`]), solves the
//! unconstrained and the constrained problems exactly ([`plan`],
//! [`search`]), checks schedules against an independent evaluator
//! ([`evaluate`]) and precomputes lookup tables that answer exactly at every
//! point of a range of network conditions ([`lut`]).
//!
//! The crate is plain Rust (no Python); `rust/python` holds the thin PyO3 layer.

pub mod error;
pub mod evaluate;
pub mod lut;
pub mod plan;
pub mod problem;
pub mod search;
pub mod sparse;
pub mod structure;

pub use error::{PlanError, Result};
pub use plan::{solve, Request, Solution};
pub use problem::{CostData, Metric, Network, Platform, Point, Radio, Usage};
pub use search::Force;
pub use structure::{GraphOptions, StateGraph};

#[cfg(test)]
mod tests;
