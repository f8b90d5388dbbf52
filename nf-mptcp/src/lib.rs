//! nf-mptcp: the sans-IO MPTCP v1 engine of hagw (RFC 8684), built on
//! nf-tcp subflows.
//!
//! - [`options`]: every RFC 8684 option (MP_CAPABLE, MP_JOIN, DSS,
//!   ADD_ADDR, REMOVE_ADDR, MP_PRIO, MP_FAIL, MP_FASTCLOSE, MP_TCPRST) as a
//!   validated `Repr` with `parse`/`emit`.
//! - [`crypto`]: key → token and IDSN (SHA-256), HMAC-SHA256 for MP_JOIN
//!   and ADD_ADDR, the DSS checksum.
//! - [`dsn`]: 64-bit data sequence numbers from 32-bit wire values.
//! - [`conn`]: the connection: MP_CAPABLE, MP_JOIN, DSS mappings,
//!   data-level reassembly, DATA_ACK/DATA_FIN, reinjection.
//! - [`scheduler`]: min-rtt, fixed-first, active-standby, weighted,
//!   redundant, as pure policies over subflow snapshots.
#![forbid(unsafe_code)]

pub mod conn;
pub mod crypto;
pub mod dsn;
pub mod options;
pub mod scheduler;

pub use nf_tcp as tcp;
