//! nf-core: the packet-level building blocks of hagw.
//!
//! - [`wire`]: zero-copy typed views (`Packet<T: AsRef<[u8]>>`) and validated
//!   representations (`Repr` with `parse`/`emit`) for every header the data
//!   path touches, in the style of smoltcp's `wire/`.
//! - [`buf`]: the [`buf::PacketBuf`] trait the libraries see instead of a DPDK
//!   mbuf, and [`buf::VecBuf`], a heap-backed implementation for tests,
//!   benches and fuzzing.
//! - [`neighbour`]: ARP / IPv6 ND tables with bounded pending queues.
//! - [`route`]: longest-prefix-match routing for IPv4 and IPv6.
//! - [`counters`]: per-core counters read by the management thread.
//! - [`ratelimit`]: token buckets (ICMP error rate limiting).
#![forbid(unsafe_code)]

pub mod buf;
pub mod chunk;
pub mod counters;
pub mod neighbour;
pub mod ratelimit;
pub mod route;
pub mod sim;
pub mod wire;

pub use buf::{PacketBuf, RxChecksum, VecBuf};
