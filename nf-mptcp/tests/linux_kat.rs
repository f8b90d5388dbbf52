//! Known-answer tests from a real Linux-to-Linux MPTCP v1 connection.
//!
//! Captured on this project's lab machine (Debian 12, Linux MPTCP v1):
//! two namespaces joined by a veth pair, client 10.9.0.1 (+ endpoint
//! 10.9.0.11 "subflow"), server 10.9.0.2 (+ endpoint 10.9.0.22 "signal"),
//! a Python IPPROTO_MPTCP client and server, `tshark -i ka0` in the client
//! namespace, then decoded with `tshark -T fields -e
//! tcp.options.mptcp.sendkey -e ...recvkey -e mptcp.expected_token -e
//! mptcp.expected_idsn -e ...recvtok -e ...sendrand -e ...sendtrunchmac
//! -e ...sendhmac -e ...ipv4 -e ...addaddrtrunchmac` (Wireshark 4.0).

use nf_mptcp::crypto;
use nf_mptcp::options::MptcpOption;
use std::net::{IpAddr, Ipv4Addr};

/// Key-A (client, third ACK of the MP_CAPABLE handshake).
const KEY_A: u64 = 9412604295149753679;
/// Key-B (server, in its SYN/ACK).
const KEY_B: u64 = 3834545829544246989;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn tokens_and_idsns() {
    assert_eq!(
        crypto::token_and_idsn(KEY_B),
        (3994135645, 12431508447664759338)
    );
    assert_eq!(
        crypto::token_and_idsn(KEY_A),
        (1802870208, 3488283924799601380)
    );
}

#[test]
fn mp_join_hmacs_first_join() {
    // client 10.9.0.1 → ADD_ADDR'd 10.9.0.22: R-A and R-B nonces
    let (ra, rb) = (2903631508u32, 3107921586u32);
    // SYN/ACK: HMAC(Key=(Key-B+Key-A), Msg=(R-B+R-A)), leftmost 64 bits
    assert_eq!(
        crypto::join_hmac64(KEY_B, KEY_A, rb, ra),
        9310394520758163845
    );
    // third ACK: HMAC(Key=(Key-A+Key-B), Msg=(R-A+R-B)), leftmost 160 bits
    assert_eq!(
        crypto::join_hmac160(KEY_A, KEY_B, ra, rb).to_vec(),
        hex("7a558fd9ffedeaf5491cc4fb4f2e7a9ffee2110f")
    );
}

#[test]
fn mp_join_hmacs_second_join() {
    // client 10.9.0.11 (endpoint "subflow") → 10.9.0.2
    let (ra, rb) = (1249693598u32, 3791919139u32);
    assert_eq!(
        crypto::join_hmac64(KEY_B, KEY_A, rb, ra),
        4569548026418363482
    );
    assert_eq!(
        crypto::join_hmac160(KEY_A, KEY_B, ra, rb).to_vec(),
        hex("b347b54e1e791b8aed652240a844f02205fed38f")
    );
}

#[test]
fn add_addr_hmac() {
    // the server announced 10.9.0.22 with address id 1 and no port
    let h = crypto::add_addr_hmac(
        KEY_B,
        KEY_A,
        1,
        IpAddr::V4(Ipv4Addr::new(10, 9, 0, 22)),
        None,
    );
    assert_eq!(h, 7427208858078666271);
}

#[test]
fn captured_option_bytes_decode() {
    // MP_CAPABLE SYN/ACK as captured: kind 30, len 12, v1, flags 0x01, Key-B
    let mut b = vec![0x01, 0x01];
    b.extend_from_slice(&KEY_B.to_be_bytes());
    match MptcpOption::parse(&b, true, true) {
        Ok(MptcpOption::Capable {
            version: 1,
            sender_key: Some(k),
            ..
        }) => assert_eq!(k, KEY_B),
        other => panic!("{other:?}"),
    }
}
