//! nf-tcp: the sans-IO TCP endpoint engine of hagw.
//!
//! - [`Connection`]: RFC 9293 state machine with MSS, window scale, SACK,
//!   timestamps and PAWS (RFC 7323), RTO per RFC 6298 with Karn's rule,
//!   SACK-based loss recovery (RFC 6675) and NewReno partial ACKs
//!   (RFC 6582), congestion control behind a trait ([`cc`]: CUBIC default,
//!   NewReno), delayed ACKs with quick-ack, receive window from a buffer
//!   budget, zero-window probes, keepalive, RFC 5961 challenge ACKs, a short
//!   TIME-WAIT with RFC 6191 reuse.
//! - [`Listener`]: half-open cap, SYN cookies, TCP Fast Open cookies,
//!   RFC 6528 ISNs.
//! - Payload is carried as [`nf_core::chunk::Chunk`] handles: segmenting and
//!   coalescing slice them, never copy.
//! - MPTCP hooks: every outgoing [`Segment`] can be given an MPTCP option
//!   (`hdr.opts.mptcp`, with `Config::reserved_option_space` keeping room in
//!   data segments) before it is emitted; every incoming [`Incoming`]
//!   carries the peer's MPTCP option for the owner to read; `force_ack`
//!   sends an ACK on demand (for DATA_ACKs). Subflow-level reliability stays
//!   here; the data-level mapping lives in nf-mptcp.
#![forbid(unsafe_code)]

pub mod cc;
pub mod config;
pub mod conn;
pub mod listener;
pub mod recvq;
pub mod rtt;
pub mod segment;
pub mod sendq;
pub mod seq;
pub mod wirefmt;

pub use config::Config;
pub use conn::{Connection, Event, State, Stats};
pub use listener::{FourTuple, Listener, SynAction};
pub use segment::{Gather, Header, Incoming, Opts, RawOpt, Segment};
pub use seq::Seq;
