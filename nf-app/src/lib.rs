//! nf-app: the hagw runtime that does not touch DPDK directly: the config,
//! the per-worker pipeline, counters, the management HTTP thread, and frame
//! builders shared by tests and benchmarks. The root crate drives it with DPDK ports.
#![forbid(unsafe_code)]

pub mod config;
pub mod convert;
pub mod convlab;
pub mod frames;
pub mod localpeer;
pub mod mgmt;
pub mod mptcppeer;
pub mod pipeline;
pub mod stats;
pub mod tcppeer;
pub mod testkit;

pub use pipeline::{BufPool, Pipeline, PortCtx};
