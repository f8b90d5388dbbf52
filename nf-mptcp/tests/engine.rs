//! Connection-level behaviour between two engines joined directly (no
//! network): MP_JOIN refusals (bad HMAC either way, unknown token),
//! MP_FASTCLOSE, and fallback to TCP when the SYN/ACK carries no
//! MP_CAPABLE (a middlebox stripped it, RFC 8684 §3.7).

use nf_core::chunk::{Bytes, Chunk};
use nf_mptcp::conn::{rst_reason, Config, Event, MpConnection, Secrets};
use nf_mptcp::options::MptcpOption;
use nf_mptcp::scheduler::{MinRtt, PathRole};
use nf_tcp::{Connection, Incoming, RawOpt, Segment, Seq};

type Mp = MpConnection<Bytes>;
const MS: u64 = 1_000_000;

fn to_incoming(s: &Segment<Bytes>) -> Incoming<Bytes> {
    Incoming {
        hdr: s.hdr,
        payload: Bytes::new(s.payload.to_vec()),
    }
}

fn pair() -> (Mp, Option<Mp>) {
    let c = MpConnection::client(
        Config::default(),
        Secrets { key: 11, seed: 1 },
        40000,
        80,
        Seq(1000),
        PathRole::Fixed,
        Box::new(MinRtt),
    );
    (c, None)
}

/// Moves segments both ways until nothing is left; `tamper` may edit a
/// segment (from the client if `from_client`) before delivery.
fn run(
    now: &mut u64,
    c: &mut Mp,
    s: &mut Option<Mp>,
    tamper: &mut dyn FnMut(bool, usize, &mut Segment<Bytes>),
) -> Vec<(bool, Segment<Bytes>)> {
    let mut seen = vec![];
    for _ in 0..100_000 {
        *now += MS;
        let mut moved = false;
        while let Some((i, mut seg)) = c.poll_transmit(*now) {
            moved = true;
            tamper(true, i, &mut seg);
            seen.push((true, seg.clone()));
            let inc = to_incoming(&seg);
            match s {
                None => {
                    *s = MpConnection::server(
                        Config::default(),
                        Secrets { key: 22, seed: 2 },
                        &inc,
                        Seq(9000),
                        PathRole::Fixed,
                        Box::new(MinRtt),
                    )
                }
                Some(srv) => {
                    if i >= srv.subflows().len() {
                        srv.accept_join(&inc, Seq(8000), PathRole::Cellular);
                    } else {
                        srv.handle_segment(*now, i, inc);
                    }
                }
            }
        }
        if let Some(srv) = s.as_mut() {
            while let Some((i, mut seg)) = srv.poll_transmit(*now) {
                moved = true;
                tamper(false, i, &mut seg);
                seen.push((false, seg.clone()));
                c.handle_segment(*now, i, to_incoming(&seg));
            }
        }
        if !moved {
            let t = [c.next_timeout(), s.as_ref().and_then(|x| x.next_timeout())]
                .into_iter()
                .flatten()
                .min();
            match t {
                Some(t) if t < *now + 10_000 * MS => {
                    *now = (*now).max(t);
                    c.on_timeout(*now);
                    if let Some(x) = s.as_mut() {
                        x.on_timeout(*now);
                    }
                }
                _ => break,
            }
        }
    }
    seen
}

fn no_tamper() -> impl FnMut(bool, usize, &mut Segment<Bytes>) {
    |_, _, _| {}
}

fn established() -> (u64, Mp, Mp) {
    let (mut c, mut s) = pair();
    let mut now = 0;
    c.send(Bytes::from(&b"hello"[..]));
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    let mut s = s.expect("server");
    assert!(c.is_established() && s.is_established());
    assert_eq!(
        s.recv().map(|b| b.as_slice().to_vec()),
        Some(b"hello".to_vec())
    );
    (now, c, s)
}

/// The MPTCP option a segment carries, parsed.
fn option_of(seg: &Segment<Bytes>) -> Option<MptcpOption> {
    let h = seg.hdr;
    h.opts
        .mptcp
        .and_then(|o| MptcpOption::parse(o.as_slice(), h.syn(), h.ack_flag()).ok())
}

fn rewrite(seg: &mut Segment<Bytes>, f: impl Fn(MptcpOption) -> MptcpOption) {
    if let Some(o) = option_of(seg) {
        let o = f(o);
        let mut b = [0u8; 40];
        let n = o.emit(&mut b);
        seg.hdr.opts.mptcp = RawOpt::new(&b[..n]);
    }
}

#[test]
fn handshake_and_data_both_ways() {
    let (mut now, mut c, mut s) = established();
    c.send(Bytes::new(vec![1; 100_000]));
    s.send(Bytes::new(vec![2; 100_000]));
    let mut s = Some(s);
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    let mut s = s.unwrap();
    let got_s: usize = std::iter::from_fn(|| s.recv()).map(|b| b.len()).sum();
    let got_c: usize = std::iter::from_fn(|| c.recv()).map(|b| b.len()).sum();
    assert_eq!((got_s, got_c), (100_000, 100_000));
}

#[test]
fn join_with_a_bad_synack_hmac_is_reset_and_counted() {
    let (mut now, mut c, s) = established();
    c.join(40001, 80, Seq(5000), PathRole::Cellular, false, 1)
        .expect("join");
    let mut s = Some(s);
    let seen = run(&mut now, &mut c, &mut s, &mut |from_client, i, seg| {
        if !from_client && i == 1 && seg.hdr.syn() {
            rewrite(seg, |o| match o {
                MptcpOption::JoinSynAck {
                    backup,
                    addr_id,
                    hmac,
                    nonce,
                } => MptcpOption::JoinSynAck {
                    backup,
                    addr_id,
                    hmac: !hmac,
                    nonce,
                },
                x => x,
            });
        }
    });
    assert_eq!(c.stats().joins_bad_hmac, 1);
    assert!(!c.subflows()[1].usable());
    // RFC 8684 §3.6: the RST says why (MPTCP-specific error)
    let rst = seen
        .iter()
        .find(|(fc, seg)| *fc && seg.hdr.rst())
        .map(|(_, seg)| option_of(seg))
        .expect("the client resets the subflow");
    assert_eq!(
        rst,
        Some(MptcpOption::TcpRst {
            flags: 0,
            reason: rst_reason::MPTCP_ERROR
        })
    );
    let srv = s.as_ref().unwrap();
    assert_eq!(srv.stats().joins_accepted, 0);
    assert_eq!(srv.stats().tcprst_rx, 1);
    assert_eq!(
        srv.stats().tcprst_last_reason,
        Some(rst_reason::MPTCP_ERROR)
    );
}

#[test]
fn join_with_a_bad_third_ack_hmac_is_refused() {
    let (mut now, mut c, s) = established();
    c.join(40001, 80, Seq(5000), PathRole::Cellular, false, 1)
        .expect("join");
    let mut s = Some(s);
    let seen = run(&mut now, &mut c, &mut s, &mut |from_client, i, seg| {
        if from_client && i == 1 && !seg.hdr.syn() {
            rewrite(seg, |o| match o {
                MptcpOption::JoinAck { mut hmac } => {
                    hmac[0] ^= 0xff;
                    MptcpOption::JoinAck { hmac }
                }
                x => x,
            });
        }
    });
    let srv = s.unwrap();
    assert_eq!(srv.stats().joins_bad_hmac, 1);
    assert_eq!(srv.stats().joins_accepted, 0);
    assert!(!srv.subflows()[1].usable());
    assert!(
        seen.iter().any(|(fc, seg)| !*fc && seg.hdr.rst()),
        "the server resets the subflow"
    );
}

#[test]
fn join_with_an_unknown_token_is_not_attached() {
    let (_, mut c, mut s) = established();
    c.join(40001, 80, Seq(5000), PathRole::Cellular, false, 1)
        .expect("join");
    let (_, mut syn) = c.poll_transmit(1000 * MS).expect("join SYN");
    rewrite(&mut syn, |o| match o {
        MptcpOption::JoinSyn {
            backup,
            addr_id,
            token,
            nonce,
        } => MptcpOption::JoinSyn {
            backup,
            addr_id,
            token: token ^ 1,
            nonce,
        },
        x => x,
    });
    assert_eq!(
        s.accept_join(&to_incoming(&syn), Seq(1), PathRole::Cellular),
        None
    );
    assert_eq!(s.subflows().len(), 1);
}

#[test]
fn fastclose_resets_everything() {
    let (mut now, mut c, s) = established();
    c.abort();
    let mut s = Some(s);
    let seen = run(&mut now, &mut c, &mut s, &mut no_tamper());
    let mut srv = s.unwrap();
    assert!(seen.iter().any(|(fc, seg)| *fc
        && seg
            .hdr
            .opts
            .mptcp
            .and_then(|o| MptcpOption::parse(o.as_slice(), false, true).ok())
            .is_some_and(|o| matches!(o, MptcpOption::FastClose { receiver_key: 22 }))));
    assert_eq!(srv.stats().fastcloses_rx, 1);
    assert!(srv.is_closed());
    assert!(std::iter::from_fn(|| srv.poll_event()).any(|e| e == Event::Closed));
}

#[test]
fn stripped_mp_capable_falls_back_to_tcp() {
    // the server is plain TCP (as if a middlebox removed MP_CAPABLE)
    let mut c = MpConnection::client(
        Config::default(),
        Secrets { key: 11, seed: 1 },
        40000,
        80,
        Seq(1000),
        PathRole::Fixed,
        Box::new(MinRtt),
    );
    let mut srv: Option<Connection<Bytes>> = None;
    let mut now = 0;
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    c.send(Bytes::new(data.clone()));
    let mut got = vec![];
    for _ in 0..10_000 {
        now += MS;
        while let Some((_, mut seg)) = c.poll_transmit(now) {
            seg.hdr.opts.mptcp = None; // stripped on the way
            let inc = to_incoming(&seg);
            match srv.as_mut() {
                None => {
                    srv = Some(Connection::accept(
                        nf_tcp::Config::default(),
                        &inc.hdr,
                        Seq(9000),
                    ))
                }
                Some(t) => t.handle_segment(now, inc),
            }
        }
        if let Some(t) = srv.as_mut() {
            while let Some(d) = t.recv() {
                got.extend_from_slice(d.as_slice());
            }
            while let Some(seg) = t.poll_transmit(now) {
                c.handle_segment(now, 0, to_incoming(&seg));
            }
        }
    }
    assert!(c.is_fallback(), "{}", c.describe());
    assert_eq!(c.stats().fallbacks, 1);
    assert_eq!(
        got.len(),
        data.len(),
        "{} {:?}",
        c.describe(),
        c.subflows()[0].tcp.stats()
    );
    assert!(got == data, "payload differs");
}

#[test]
fn add_addr_is_verified_echoed_and_removed() {
    let (mut now, mut c, mut s) = established();
    let v6: std::net::IpAddr = "2001:db8:c::1".parse().unwrap();
    s.announce(1, v6, None);
    let mut s = Some(s);
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(
        events.contains(&Event::AddrAdvertised {
            id: 1,
            addr: v6,
            port: None
        }),
        "{events:?}"
    );
    assert_eq!(c.stats().add_addr_rx, 1);
    assert_eq!(
        s.as_ref().unwrap().stats().add_addr_tx,
        1,
        "the echo stopped the retransmissions"
    );
    // REMOVE_ADDR
    s.as_mut().unwrap().withdraw(1);
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    assert!(std::iter::from_fn(|| c.poll_event()).any(|e| e == Event::AddrRemoved { id: 1 }));
    assert_eq!(c.stats().remove_addr_rx, 1);
}

#[test]
fn add_addr_with_a_bad_hmac_is_ignored_and_retransmitted() {
    let (mut now, mut c, mut s) = established();
    s.announce(2, "198.51.100.7".parse().unwrap(), Some(5201));
    let mut s = Some(s);
    run(&mut now, &mut c, &mut s, &mut |from_client, _, seg| {
        if !from_client {
            rewrite(seg, |o| match o {
                MptcpOption::AddAddr {
                    echo: false,
                    addr_id,
                    addr,
                    port,
                    hmac,
                } => MptcpOption::AddAddr {
                    echo: false,
                    addr_id,
                    addr,
                    port,
                    hmac: hmac.map(|h| !h),
                },
                x => x,
            });
        }
    });
    assert!(c.stats().add_addr_bad_hmac >= 2, "{:?}", c.stats());
    assert_eq!(c.stats().add_addr_rx, 0);
    assert!(
        !std::iter::from_fn(|| c.poll_event()).any(|e| matches!(e, Event::AddrAdvertised { .. }))
    );
    let tx = s.unwrap().stats().add_addr_tx;
    assert!(
        (2..=5).contains(&tx),
        "not echoed: sent again, a bounded number of times ({tx})"
    );
}

#[test]
fn mp_prio_marks_the_subflow_backup_at_the_peer() {
    let (mut now, mut c, s) = established();
    assert!(!s.subflows()[0].backup);
    c.set_backup(0, true);
    let mut s = Some(s);
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    assert!(s.unwrap().subflows()[0].backup);
}

#[test]
fn hostile_dsn_and_data_ack_values_are_rejected_not_trusted() {
    let (mut now, mut c, mut s) = established();
    // a mapping near the end of the 64-bit space and a DATA_ACK of unsent data
    let hostile = MptcpOption::Dss {
        data_fin: true,
        data_ack: Some(u64::MAX - 3),
        ack64: true,
        mapping: Some(nf_mptcp::options::Mapping {
            dsn: u64::MAX - 5,
            dsn64: true,
            ssn: 1,
            len: 100,
            checksum: None,
        }),
    };
    let (_, mut seg) = {
        c.send(Bytes::new(vec![7; 100]));
        c.poll_transmit(now).expect("a data segment")
    };
    let mut b = [0u8; 40];
    let n = hostile.emit(&mut b);
    seg.hdr.opts.mptcp = RawOpt::new(&b[..n]);
    s.handle_segment(now, 0, to_incoming(&seg));
    assert_eq!(s.stats().mappings_invalid, 1);
    assert_eq!(s.stats().data_acks_invalid, 1);
    assert_eq!(s.readable(), 0, "no data accepted under a bogus mapping");
    // the connection goes on normally
    let mut s = Some(s);
    c.send(Bytes::new(vec![8; 1000]));
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    let got: usize = std::iter::from_fn(|| s.as_mut().unwrap().recv())
        .map(|b| b.len())
        .sum();
    assert_eq!(got, 1100);
}
