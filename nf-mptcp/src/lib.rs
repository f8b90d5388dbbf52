//! nf-mptcp: the sans-IO MPTCP v1 engine of hagw (RFC 8684), built on
//! nf-tcp subflows. The engine lands with issue 4.
#![forbid(unsafe_code)]
pub use nf_tcp as tcp;
