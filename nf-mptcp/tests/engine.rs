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
    pair_with(Config::default())
}

fn pair_with(cfg: Config) -> (Mp, Option<Mp>) {
    let c = MpConnection::client(
        cfg,
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
    run_with(Config::default(), now, c, s, tamper)
}

/// `run` with the server (made from the first SYN) configured by `srv_cfg`.
fn run_with(
    srv_cfg: Config,
    now: &mut u64,
    c: &mut Mp,
    s: &mut Option<Mp>,
    tamper: &mut dyn FnMut(bool, usize, &mut Segment<Bytes>),
) -> Vec<(bool, Segment<Bytes>)> {
    run_to(srv_cfg, now, u64::MAX, c, s, tamper)
}

/// `run_with` that stops once virtual time reaches `end`.
fn run_to(
    srv_cfg: Config,
    now: &mut u64,
    end: u64,
    c: &mut Mp,
    s: &mut Option<Mp>,
    tamper: &mut dyn FnMut(bool, usize, &mut Segment<Bytes>),
) -> Vec<(bool, Segment<Bytes>)> {
    let mut seen = vec![];
    for _ in 0..100_000 {
        if *now >= end {
            break;
        }
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
                        srv_cfg,
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
    established_with(Config::default(), Config::default())
}

/// Client and server (configured as given) established, "hello" delivered.
fn established_with(client: Config, server: Config) -> (u64, Mp, Mp) {
    let (mut c, mut s) = pair_with(client);
    let mut now = 0;
    c.send(Bytes::from(&b"hello"[..]));
    run_with(server, &mut now, &mut c, &mut s, &mut no_tamper());
    let mut s = s.expect("server");
    assert!(c.is_established() && s.is_established());
    assert_eq!(
        s.recv().map(|b| b.as_slice().to_vec()),
        Some(b"hello".to_vec())
    );
    (now, c, s)
}

/// Client and server established, the client's MP_JOIN of a cellular
/// subflow queued (its SYN not sent yet).
fn joining() -> (u64, Mp, Option<Mp>) {
    let (now, mut c, s) = established();
    c.join(40001, 80, Seq(5000), PathRole::Cellular, false, 1)
        .expect("join");
    (now, c, Some(s))
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
    let (mut now, mut c, mut s) = joining();
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
    assert_client_reset_for_mptcp_error(&seen);
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
    let (mut now, mut c, mut s) = joining();
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

// ---- DSS checksums, MP_FAIL and the infinite mapping (RFC 8684 §3.3.1, §3.7)

fn with_checksums() -> Config {
    Config {
        checksum: true,
        ..Config::default()
    }
}

/// The default config, asking for checksums if `on`.
fn checksums_if(on: bool) -> Config {
    if on {
        with_checksums()
    } else {
        Config::default()
    }
}

/// Client and server established with checksums asked for by `client` /
/// `server`, "hello" delivered.
fn established_csum(client: bool, server: bool) -> (u64, Mp, Mp) {
    established_with(checksums_if(client), checksums_if(server))
}

fn data(salt: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ salt).collect()
}

fn drain(m: &mut Mp) -> Vec<u8> {
    std::iter::from_fn(|| m.recv())
        .flat_map(|b| b.as_slice().to_vec())
        .collect()
}

/// A middlebox rewrites one byte of the payload (and fixes the TCP
/// checksum): the `nth` data segment matching `pick` gets byte 3 flipped.
fn flip_nth(
    nth: usize,
    pick: impl Fn(bool, usize) -> bool,
) -> impl FnMut(bool, usize, &mut Segment<Bytes>) {
    let mut k = 0;
    move |from_client, i, seg| {
        if pick(from_client, i) && seg.payload.len() > 3 && !seg.hdr.syn() {
            k += 1;
            if k == nth {
                let mut v = seg.payload.to_vec();
                v[3] ^= 0x5a;
                seg.payload = nf_tcp::Gather::one(Bytes::new(v));
            }
        }
    }
}

#[test]
fn checksums_are_negotiated_by_either_end_and_verify() {
    for (client, server) in [(true, false), (false, true), (true, true)] {
        let (mut now, mut c, s) = established_csum(client, server);
        assert!(c.checksums() && s.checksums(), "{client} {server}");
        let (up, down) = (data(1, 150_000), data(2, 150_000));
        c.send(Bytes::new(up.clone()));
        let mut s = Some(s);
        s.as_mut().unwrap().send(Bytes::new(down.clone()));
        let seen = run(&mut now, &mut c, &mut s, &mut no_tamper());
        let mut s = s.unwrap();
        assert!(drain(&mut s) == up && drain(&mut c) == down);
        assert_eq!(c.stats().csum_failures + s.stats().csum_failures, 0);
        // every data segment's mapping carries a checksum that verifies
        let mut mapped = 0;
        for (_, seg) in seen.iter().filter(|(_, seg)| !seg.payload.is_empty()) {
            if let Some(MptcpOption::Dss {
                mapping: Some(m), ..
            }) = option_of(seg)
            {
                let ck = m.checksum.expect("a checksum on every mapping");
                let ssn = m.ssn;
                let want = nf_mptcp::crypto::dss_checksum(m.dsn, ssn, m.len, &seg.payload.to_vec());
                assert_eq!(ck, want);
                mapped += 1;
            }
        }
        assert!(mapped > 100, "{mapped}");
    }
    // nobody asks: no checksums (Linux's default)
    let (_, c, s) = established_csum(false, false);
    assert!(!c.checksums() && !s.checksums());
}

/// With DSS checksums every SYN and SYN/ACK announces an MSS that leaves
/// room for a DSS (a fallen-back Linux peer sends its infinite mapping on
/// a segment sized without options: `Config::checksum`); without, the
/// configured MSS. The client's first SYN knows only its own choice.
#[test]
fn with_checksums_the_announced_mss_leaves_room_for_a_dss() {
    let full = Config::default().tcp.mss;
    for (client, server) in [(false, false), (true, false), (false, true), (true, true)] {
        let (mut c, mut s) = pair_with(checksums_if(client));
        let mut now = 0;
        c.send(Bytes::from(&b"hello"[..]));
        let mut seen = run_with(
            checksums_if(server),
            &mut now,
            &mut c,
            &mut s,
            &mut no_tamper(),
        );
        c.join(40001, 80, Seq(5000), PathRole::Cellular, false, 1)
            .expect("join");
        seen.extend(run_with(
            checksums_if(server),
            &mut now,
            &mut c,
            &mut s,
            &mut no_tamper(),
        ));
        assert_eq!(c.subflows().len(), 2);
        let announced: Vec<u16> = seen
            .iter()
            .filter(|(_, seg)| seg.hdr.syn())
            .map(|(_, seg)| seg.hdr.opts.mss.expect("an MSS option"))
            .collect();
        let room = |on: bool| {
            if on {
                full - nf_mptcp::conn::DSS_MAX
            } else {
                full
            }
        };
        let csum = client || server;
        // SYN, SYN/ACK, the join's SYN and SYN/ACK
        assert_eq!(
            announced,
            vec![room(client), room(csum), room(csum), room(csum)],
            "client {client} server {server}"
        );
    }
}

#[test]
fn a_failed_checksum_on_the_only_subflow_falls_back_with_an_infinite_mapping() {
    let (mut now, mut c, s) = established_csum(true, false);
    let up = data(3, 300_000);
    c.send(Bytes::new(up.clone()));
    let mut s = Some(s);
    // the 20th client data segment is rewritten on the way
    let seen = run(&mut now, &mut c, &mut s, &mut flip_nth(20, |fc, _| fc));
    let mut srv = s.unwrap();
    assert_eq!(srv.stats().csum_failures, 1);
    assert_eq!(srv.stats().mp_fail_tx, 1);
    assert!(c.stats().mp_fail_rx >= 1);
    assert_eq!(
        (c.stats().infinite_tx, srv.stats().infinite_rx),
        (1, 1),
        "{}\n{:?}\n{}\n{:?}",
        c.describe(),
        c.stats(),
        srv.describe(),
        srv.stats()
    );
    assert!(c.is_fallback() && srv.is_fallback());
    // MP_FAIL rides on the server's ACKs (not a RST), naming the DSN of
    // the failed mapping
    let fail = seen
        .iter()
        .filter(|(fc, _)| !fc)
        .find_map(|(_, seg)| match option_of(seg) {
            Some(MptcpOption::Fail { dsn }) => Some((dsn, seg.hdr.rst())),
            _ => None,
        })
        .expect("MP_FAIL");
    assert!(!fail.1);
    // the client echoes it, and its infinite mapping starts where the
    // server stands: at the failed DSN or past it (the server took the
    // failed data as TCP carried it)
    assert!(seen.iter().any(|(fc, seg)| *fc
        && seg.payload.is_empty()
        && option_of(seg) == Some(MptcpOption::Fail { dsn: fail.0 })));
    assert!(seen.iter().any(|(fc, seg)| *fc
        && matches!(option_of(seg), Some(MptcpOption::Dss { mapping: Some(m), .. })
            if m.len == 0 && m.dsn >= fail.0)));
    // the stream is what TCP carried: everything arrives, in place, and
    // only the byte the middlebox changed differs
    let got = drain(&mut srv);
    assert_eq!(
        got.len(),
        up.len(),
        "{}\n{:?}\n{}\n{:?}",
        c.describe(),
        c.stats(),
        srv.describe(),
        srv.stats()
    );
    let diff: Vec<usize> = (0..up.len()).filter(|&k| got[k] != up[k]).collect();
    assert_eq!(diff.len(), 1, "{diff:?}");
    // after the fallback: plain TCP both ways, no MPTCP options, and an
    // orderly close
    let (more_up, down) = (data(4, 50_000), data(5, 80_000));
    c.send(Bytes::new(more_up.clone()));
    srv.send(Bytes::new(down.clone()));
    c.close();
    srv.close();
    let mut s = Some(srv);
    let seen = run(&mut now, &mut c, &mut s, &mut no_tamper());
    let mut srv = s.unwrap();
    assert!(drain(&mut srv) == more_up, "{}", srv.describe());
    assert!(drain(&mut c) == down, "{}", c.describe());
    // only the infinite mappings, until the peer has them
    let opts: Vec<(bool, Option<MptcpOption>)> = seen
        .iter()
        .filter(|(_, seg)| seg.hdr.opts.mptcp.is_some())
        .map(|(fc, seg)| (*fc, option_of(seg)))
        .collect();
    assert!(
        opts.iter().all(
            |(_, o)| matches!(o, Some(MptcpOption::Dss { mapping: Some(m), .. }) if m.len == 0)
        ),
        "{opts:?}"
    );
    let tail = &seen[seen.len() - 20..];
    assert!(tail.iter().all(|(_, seg)| seg.hdr.opts.mptcp.is_none()));
    assert!(
        c.data_closed() && srv.data_closed(),
        "{} | {}",
        c.describe(),
        srv.describe()
    );
}

#[test]
fn mp_fail_goes_out_at_once_while_data_flows_the_other_way() {
    // an echo: the server sends all the time, so it has no pure ACK to
    // carry MP_FAIL on; it must not wait for one (a join arriving in the
    // meantime would leave the client never told, and the failed data
    // delivered as if MPTCP had verified it)
    let (mut now, mut c, s) = established_csum(true, false);
    let (up, down) = (data(6, 300_000), data(7, 600_000));
    c.send(Bytes::new(up.clone()));
    let mut s = Some(s);
    s.as_mut().unwrap().send(Bytes::new(down.clone()));
    let seen = run(&mut now, &mut c, &mut s, &mut flip_nth(20, |fc, _| fc));
    let mut srv = s.unwrap();
    assert_eq!(srv.stats().csum_failures, 1);
    // the first segment the server sends after the rewritten one (the
    // 20th client data segment, as `flip_nth` counts) carries it, on a
    // pure ACK of its own (a data segment's options hold its mapping)
    let flipped = seen
        .iter()
        .enumerate()
        .filter(|(_, (fc, seg))| *fc && seg.payload.len() > 3 && !seg.hdr.syn())
        .nth(19)
        .map(|(k, _)| k)
        .expect("the rewritten segment");
    let (_, answer) = seen[flipped..]
        .iter()
        .find(|(fc, _)| !fc)
        .expect("the server answers");
    assert!(
        matches!(option_of(answer), Some(MptcpOption::Fail { .. })),
        "{:?}",
        option_of(answer)
    );
    assert!(answer.payload.is_empty() && !answer.hdr.rst());
    assert!(c.stats().mp_fail_rx >= 1);
    assert_eq!((c.stats().infinite_tx, srv.stats().infinite_rx), (1, 1));
    assert!(c.is_fallback() && srv.is_fallback());
    assert_eq!(drain(&mut srv).len(), up.len());
    assert!(
        drain(&mut c) == down,
        "{}\n{:?}\n{}\n{:?}",
        c.describe(),
        c.stats(),
        srv.describe(),
        srv.stats()
    );
}

#[test]
fn an_mp_fail_beside_a_dss_is_heard() {
    // Linux echoes MP_FAIL in the same segment as its DSS (the DSS first):
    // the second MPTCP option of a segment counts as much as the first
    let (mut now, mut c, s) = established_csum(true, false);
    c.send(Bytes::new(data(8, 300_000)));
    let mut s = Some(s);
    let mut flip = flip_nth(20, |fc, _| fc);
    let mut moved = 0;
    let mut tamper = |fc: bool, i: usize, seg: &mut Segment<Bytes>| {
        flip(fc, i, seg);
        if fc && seg.payload.is_empty() && matches!(option_of(seg), Some(MptcpOption::Fail { .. }))
        {
            let dss = MptcpOption::Dss {
                data_fin: false,
                data_ack: None,
                ack64: true,
                mapping: None,
            };
            let mut b = [0u8; 40];
            let n = dss.emit(&mut b);
            let fail = seg.hdr.opts.mptcp.expect("MP_FAIL");
            seg.hdr.opts.mptcp = RawOpt::pair(&b[..n], Some(fail.as_slice()));
            moved += 1;
        }
    };
    run(&mut now, &mut c, &mut s, &mut tamper);
    let srv = s.unwrap();
    assert!(moved > 0, "the client echoed MP_FAIL");
    assert!(srv.stats().mp_fail_rx >= 1, "{:?}", srv.stats());
    assert!(c.is_fallback() && srv.is_fallback());
    assert_eq!(srv.stats().options_malformed, 0);
}

#[test]
fn a_failed_checksum_with_another_subflow_resets_that_subflow_only() {
    let (mut now, mut c, s) = established_csum(true, true);
    c.join(40001, 80, Seq(5000), PathRole::Cellular, false, 1)
        .expect("join");
    let mut s = Some(s);
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    assert!(c.subflows()[1].usable());
    let up = data(6, 400_000);
    c.send(Bytes::new(up.clone()));
    let seen = run(
        &mut now,
        &mut c,
        &mut s,
        &mut flip_nth(5, |fc, i| fc && i == 1),
    );
    let mut srv = s.unwrap();
    assert_eq!(srv.stats().csum_failures, 1);
    // RFC 8684 §3.7: the RST of the failed subflow carries MP_FAIL
    assert!(seen.iter().any(|(fc, seg)| !fc
        && seg.hdr.rst()
        && matches!(option_of(seg), Some(MptcpOption::Fail { .. }))));
    assert!(!srv.subflows()[1].usable() && !c.subflows()[1].usable());
    assert!(!c.is_fallback() && !srv.is_fallback());
    // the data is resent on the other subflow: nothing corrupt delivered
    assert!(drain(&mut srv) == up, "{}", srv.describe());
    assert!(c.stats().reinjected_bytes > 0);
}

#[test]
fn a_mapping_without_the_negotiated_checksum_resets_the_subflow() {
    let (mut now, mut c, s) = established_csum(true, false);
    c.send(Bytes::new(data(7, 10_000)));
    let mut s = Some(s);
    let seen = run(&mut now, &mut c, &mut s, &mut |fc, _, seg| {
        if fc && !seg.payload.is_empty() {
            rewrite(seg, |o| match o {
                MptcpOption::Dss {
                    data_fin,
                    data_ack,
                    ack64,
                    mapping: Some(m),
                } => MptcpOption::Dss {
                    data_fin,
                    data_ack,
                    ack64,
                    mapping: Some(nf_mptcp::options::Mapping {
                        checksum: None,
                        ..m
                    }),
                },
                x => x,
            });
        }
    });
    let srv = s.unwrap();
    assert_eq!(srv.stats().csum_missing, 1);
    assert_eq!(srv.stats().bytes_received, 5, "nothing accepted unverified");
    assert!(seen.iter().any(|(fc, seg)| !fc
        && seg.hdr.rst()
        && option_of(seg)
            == Some(MptcpOption::TcpRst {
                flags: 0,
                reason: rst_reason::MPTCP_ERROR
            })));
    assert!(srv.is_closed());
}

#[test]
fn options_stripped_from_the_first_data_fall_back_to_tcp() {
    // established by the handshake alone; the server sends first and a
    // middlebox strips the DSS from its data (RFC 8684 §3.7)
    let (mut c, mut s) = pair();
    let mut now = 0;
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    let mut srv = s.expect("server");
    assert!(c.is_established() && srv.is_established());
    let (down, up) = (data(8, 120_000), data(9, 90_000));
    srv.send(Bytes::new(down.clone()));
    let mut s = Some(srv);
    run(&mut now, &mut c, &mut s, &mut |fc, _, seg| {
        if !fc && !seg.payload.is_empty() {
            seg.hdr.opts.mptcp = None;
        }
    });
    assert!(c.is_fallback());
    assert!(drain(&mut c) == down, "{}", c.describe());
    c.send(Bytes::new(up.clone()));
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    let mut srv = s.unwrap();
    assert!(srv.is_fallback(), "the infinite mapping told the server");
    assert!(drain(&mut srv) == up, "{}", srv.describe());
    assert_eq!((c.stats().fallbacks, srv.stats().fallbacks), (1, 1));
}

#[test]
fn an_mp_capable_data_mapping_repeated_on_later_segments_maps_from_the_first_byte() {
    // Linux puts the MP_CAPABLE-with-data option (data-level length of the
    // whole first write) on every segment that write is cut into; the
    // mapping starts at the first data byte whichever segment carries it
    // (RFC 8684 §3.1)
    let (mut c, mut s) = pair();
    let mut now = 0;
    let first = data(10, 4000);
    c.send(Bytes::new(first.clone()));
    run(&mut now, &mut c, &mut s, &mut |fc, _, seg| {
        if fc && !seg.payload.is_empty() && seg.hdr.seq.0 < 1000 + 4001 {
            let o = MptcpOption::Capable {
                version: 1,
                flags: nf_mptcp::options::CapFlags(nf_mptcp::options::CapFlags::H),
                sender_key: Some(11),
                receiver_key: Some(22),
                data_len: Some(4000),
                checksum: None,
            };
            let mut b = [0u8; 40];
            let n = o.emit(&mut b);
            seg.hdr.opts.mptcp = RawOpt::new(&b[..n]);
        }
    });
    let mut srv = s.expect("server");
    assert!(drain(&mut srv) == first, "{}", srv.describe());
    // the data after it follows its own DSS mappings
    let next = data(11, 8000);
    c.send(Bytes::new(next.clone()));
    let mut s = Some(srv);
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    let mut srv = s.expect("server");
    assert!(drain(&mut srv) == next, "{}", srv.describe());
    // delivered as sent, not recovered by a data-level retransmission
    assert_eq!(c.stats().data_rtos, 0, "{:?}", c.stats());
}

#[test]
fn writes_of_any_size_go_out_in_full_size_segments() {
    // a splice hands over the server's segments one by one (1448 bytes):
    // consecutive writes extend one mapping, so a subflow segment carries
    // bytes of two writes instead of a full segment and a 28-byte one
    let (mut now, mut c, s) = established();
    let mut sent = vec![];
    for k in 0..200u32 {
        let chunk = data(k as u8, 1448);
        sent.extend_from_slice(&chunk);
        c.send(Bytes::new(chunk));
    }
    let mut s = Some(s);
    let seen = run(&mut now, &mut c, &mut s, &mut no_tamper());
    let mut srv = s.unwrap();
    assert!(drain(&mut srv) == sent);
    let sizes: Vec<usize> = seen
        .iter()
        .filter(|(fc, seg)| *fc && !seg.payload.is_empty())
        .map(|(_, seg)| seg.payload.len())
        .collect();
    let full = *sizes.iter().max().expect("data segments");
    let small = sizes.iter().filter(|&&n| n < full).count();
    assert!(
        small <= 1,
        "{small} short segments of {}: {sizes:?}",
        sizes.len()
    );
    // and every segment still carries the one mapping that covers it
    for (_, seg) in seen
        .iter()
        .filter(|(fc, seg)| *fc && !seg.payload.is_empty())
    {
        match option_of(seg) {
            Some(MptcpOption::Dss {
                mapping: Some(m), ..
            }) => assert_eq!(usize::from(m.len), seg.payload.len()),
            o => panic!("{o:?}"),
        }
    }
}

#[test]
fn an_infinite_mapping_behind_the_data_is_ignored() {
    let (mut now, mut c, s) = established();
    let up = data(12, 50_000);
    c.send(Bytes::new(up.clone()));
    let mut s = Some(s);
    let mut k = 0;
    run(&mut now, &mut c, &mut s, &mut |fc, _, seg| {
        if fc && !seg.payload.is_empty() {
            k += 1;
            if k == 5 {
                // a forged infinite mapping 1,000 bytes before the start
                // of the client's data (it wraps below zero)
                let before = nf_mptcp::crypto::idsn(11)
                    .wrapping_add(1)
                    .wrapping_sub(1000);
                rewrite(seg, |o| match o {
                    MptcpOption::Dss { data_ack, .. } => MptcpOption::Dss {
                        data_fin: false,
                        data_ack,
                        ack64: true,
                        mapping: Some(nf_mptcp::options::Mapping {
                            dsn: before,
                            dsn64: true,
                            ssn: 7,
                            len: 0,
                            checksum: None,
                        }),
                    },
                    x => x,
                });
            }
        }
    });
    let mut srv = s.unwrap();
    assert!(!srv.is_fallback(), "{:?}", srv.stats());
    assert_eq!(srv.stats().infinite_rx, 1);
    assert!(srv.stats().mappings_invalid >= 1);
    // the segment's bytes came again under a real mapping
    assert!(drain(&mut srv) == up);
}

/// RFC 8684 §3.6: the client reset a subflow and its RST says why (an
/// MPTCP-specific error).
fn assert_client_reset_for_mptcp_error(seen: &[(bool, Segment<Bytes>)]) {
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
}

/// Whether a segment is the third ACK of an MP_JOIN (RFC 8684 §3.2).
fn is_join_ack(seg: &Segment<Bytes>) -> bool {
    matches!(option_of(seg), Some(MptcpOption::JoinAck { .. }))
}

/// Makes `seg` one its receiver ignores without answering: in window at
/// the receiver's next sequence number, no flags, no options (RFC 9293
/// §3.10.7.4: a segment without ACK is dropped).
fn lose(seg: &mut Segment<Bytes>, next: Seq) {
    seg.hdr.opts.mptcp = None;
    seg.hdr.flags = 0;
    seg.hdr.seq = next;
}

/// Loses the first `n` third ACKs of the join on subflow 1 (counted in
/// `dropped`) and every SYN/ACK the server sends again there.
fn losing_join_acks(
    n: usize,
    dropped: &std::cell::Cell<usize>,
) -> impl FnMut(bool, usize, &mut Segment<Bytes>) + '_ {
    let mut synacks = 0;
    move |from_client, i, seg| {
        if i != 1 {
            return;
        }
        if from_client && is_join_ack(seg) && dropped.get() < n {
            dropped.set(dropped.get() + 1);
            let next = seg.hdr.seq;
            lose(seg, next);
        }
        if !from_client && seg.hdr.syn() {
            synacks += 1;
            if synacks > 1 {
                let next = seg.hdr.seq + 1;
                lose(seg, next);
            }
        }
    }
}

#[test]
fn a_lost_third_join_ack_is_sent_again_until_the_fourth_ack() {
    let (mut now, mut c, mut s) = joining();
    // lose the third ACK twice: only the client's own timer brings it
    // back, the server's SYN/ACK retransmissions are lost as well
    let dropped = std::cell::Cell::new(0);
    run(&mut now, &mut c, &mut s, &mut losing_join_acks(2, &dropped));
    let srv = s.expect("server");
    assert_eq!(dropped.get(), 2);
    assert_eq!(c.stats().join_ack_rtx, 2, "{:?}", c.stats());
    assert_eq!(srv.stats().joins_accepted, 1);
    assert!(c.subflows()[1].usable() && srv.subflows()[1].usable());
    assert_eq!(c.stats().joins_unanswered, 0);
}

#[test]
fn a_join_whose_fourth_ack_never_comes_is_reset() {
    let (mut now, mut c, mut s) = joining();
    let dropped = std::cell::Cell::new(0);
    let seen = run(
        &mut now,
        &mut c,
        &mut s,
        &mut losing_join_acks(usize::MAX, &dropped),
    );
    assert_eq!(c.stats().join_ack_rtx, 6, "{:?}", c.stats());
    assert_eq!(c.stats().joins_unanswered, 1);
    assert!(!c.subflows()[1].usable());
    // the reset says why, and the first subflow goes on
    assert_client_reset_for_mptcp_error(&seen);
    assert!(c.subflows()[0].usable() && !c.is_closed());
}

#[test]
fn a_lost_fourth_join_ack_is_sent_again_when_the_third_comes_again() {
    let (mut now, mut c, mut s) = joining();
    let mut lost = 0;
    run(&mut now, &mut c, &mut s, &mut |from_client, i, seg| {
        // the server's first segment on the joined subflow after its
        // SYN/ACK is the fourth ACK: lost
        if !from_client && i == 1 && !seg.hdr.syn() && lost == 0 {
            lost += 1;
            let next = seg.hdr.seq;
            lose(seg, next);
        }
    });
    let srv = s.expect("server");
    assert_eq!(lost, 1);
    assert!(c.stats().join_ack_rtx >= 1, "{:?}", c.stats());
    assert_eq!(c.stats().joins_unanswered, 0);
    assert!(c.subflows()[1].usable() && srv.subflows()[1].usable());
    assert_eq!(srv.stats().joins_accepted, 1);
}

/// RFC 8684 §3.1: the client opens no subflow before the server has shown,
/// with its first DSS, that it took the third ACK and holds our key.
#[test]
fn no_join_before_the_server_has_shown_it_holds_our_key() {
    let (mut c, mut s) = pair();
    let mut now = 0;
    // the handshake, no data: the server has sent no DSS yet
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    assert!(c.is_established());
    assert!(!c.can_join());
    assert_eq!(
        c.join(40001, 80, Seq(5000), PathRole::Cellular, false, 1),
        None
    );
    // data, and the server's DATA_ACK
    c.send(Bytes::from(&b"hello"[..]));
    run(&mut now, &mut c, &mut s, &mut no_tamper());
    assert!(c.can_join());
    assert_eq!(
        c.join(40001, 80, Seq(5000), PathRole::Cellular, false, 1),
        Some(1)
    );
}

/// RFC 8684 §3.3.3: the DATA_FIN queued with the last data leaves with it,
/// in the same poll, not on its retransmission timer (≥ 200 ms later: a
/// converted short connection waited that long for its end).
#[test]
fn the_data_fin_goes_out_with_the_last_data() {
    let (now, mut c, mut s) = established();
    let now = now + MS;
    assert_eq!(s.send(Bytes::new(data(3, 3000))), 3000);
    s.close();
    let mut sent = vec![];
    while let Some((i, seg)) = s.poll_transmit(now) {
        sent.push(option_of(&seg));
        c.handle_segment(now, i, to_incoming(&seg));
    }
    assert!(sent.len() >= 3, "the data and the DATA_FIN: {sent:?}");
    assert!(
        matches!(
            sent.last(),
            Some(Some(MptcpOption::Dss { data_fin: true, .. }))
        ),
        "the last segment carries the DATA_FIN: {sent:?}"
    );
    assert_eq!(drain(&mut c), data(3, 3000));
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(events.contains(&Event::PeerClosed), "{events:?}");
}

/// A client that sends and closes at once has its first data and pure ACKs
/// carry MP_CAPABLE (RFC 8684 §3.1) until the server's first DSS: its
/// DATA_FIN goes out then, not on the DATA_FIN retransmission timer.
#[test]
fn a_data_fin_held_back_by_mp_capable_goes_out_once_the_server_has_the_keys() {
    let (mut c, mut s) = pair();
    let mut now = 0;
    assert_eq!(c.send(Bytes::new(data(4, 3000))), 3000);
    c.close();
    run_to(
        Config::default(),
        &mut now,
        20 * MS,
        &mut c,
        &mut s,
        &mut no_tamper(),
    );
    let mut s = s.expect("server");
    assert_eq!(drain(&mut s), data(4, 3000));
    let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        events.contains(&Event::PeerClosed),
        "no DATA_FIN within 20 ms: {events:?}\n{}",
        c.describe()
    );
}
