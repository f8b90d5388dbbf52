//! nf-tcp: the sans-IO TCP endpoint engine of hagw (RFC 9293 and options,
//! RTO, SACK, congestion control). The engine lands with issue 3; this crate
//! already fixes its place in the dependency chain
//! (nf-core ← nf-tcp ← nf-mptcp ← nf-app ← hagw).
#![forbid(unsafe_code)]
pub use nf_core::wire::tcp as wire;
