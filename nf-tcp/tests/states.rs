//! Per-state unit tests: an endpoint is driven into a state and the exact
//! segments it emits are asserted (as smoltcp's tests do).

use nf_core::chunk::{Bytes, Chunk};
use nf_core::sim::{Time, MS, SEC};
use nf_core::wire::tcp::{flags as F, SackBlock};
use nf_tcp::{
    Config, Connection, Event, FourTuple, Header, Incoming, Listener, Opts, Segment, Seq, State,
    SynAction,
};
use std::net::{IpAddr, Ipv4Addr};

const ISS: u32 = 1000;
const PEER_ISS: u32 = 5000;

fn cfg() -> Config {
    Config {
        quickack_segments: 0,
        ..Config::default()
    }
}

fn hdr(seq: u32, ack: u32, flags: u16) -> Header {
    Header {
        src_port: 80,
        dst_port: 40000,
        seq: Seq(seq),
        ack: Seq(ack),
        flags,
        window: 1000,
        opts: Opts::default(),
    }
}

fn seg(h: Header, data: &[u8]) -> Incoming<Bytes> {
    Incoming {
        hdr: h,
        payload: Bytes::from(data),
    }
}

fn out(c: &mut Connection<Bytes>, now: Time) -> Vec<Segment<Bytes>> {
    let mut v = vec![];
    while let Some(s) = c.poll_transmit(now) {
        v.push(s);
    }
    v
}

/// A client that completed the handshake with a peer using MSS 1460, no
/// window scaling, SACK and no timestamps.
fn established(c: Config) -> Connection<Bytes> {
    let mut conn = Connection::connect(c, 40000, 80, Seq(ISS));
    let syn = out(&mut conn, 0);
    assert_eq!(syn.len(), 1);
    let mut h = hdr(PEER_ISS, ISS + 1, F::SYN | F::ACK);
    h.opts.mss = Some(1460);
    h.opts.sack_perm = true;
    conn.handle_segment(10 * MS, seg(h, &[]));
    assert_eq!(conn.state(), State::Established);
    let ack = out(&mut conn, 10 * MS);
    assert_eq!(ack.len(), 1);
    while conn.poll_event().is_some() {}
    conn
}

#[test]
fn syn_carries_every_option() {
    let mut c: Connection<Bytes> = Connection::connect(Config::default(), 40000, 80, Seq(ISS));
    let s = out(&mut c, 0);
    assert_eq!(s.len(), 1);
    let h = s[0].hdr;
    assert_eq!((h.flags, h.seq), (F::SYN, Seq(ISS)));
    assert_eq!(h.opts.mss, Some(1460));
    assert_eq!(h.opts.wscale, Some(7), "4 MiB buffer needs shift 7");
    assert!(h.opts.sack_perm);
    assert_eq!(h.opts.ts.map(|t| t.1), Some(0));
    assert!(s[0].payload.is_empty());
    assert_eq!(c.state(), State::SynSent);
}

#[test]
fn syn_sent_to_established_acks_syn_ack() {
    let mut c = established(cfg());
    let mut h = hdr(PEER_ISS + 1, ISS + 1, F::ACK);
    h.window = 2000;
    c.handle_segment(20 * MS, seg(h, b"hi"));
    let s = out(&mut c, 20 * MS);
    // one segment, no quick-ack: the delayed-ACK timer runs
    assert!(s.is_empty());
    assert_eq!(c.next_timeout(), Some(20 * MS + 40 * MS));
    c.on_timeout(60 * MS);
    let s = out(&mut c, 60 * MS);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].hdr.flags, s[0].hdr.seq, s[0].hdr.ack),
        (F::ACK, Seq(ISS + 1), Seq(PEER_ISS + 3))
    );
    assert_eq!(
        c.recv().map(|b| b.as_slice().to_vec()),
        Some(b"hi".to_vec())
    );
}

#[test]
fn second_full_segment_is_acked_at_once() {
    let mut c = established(cfg());
    c.handle_segment(20 * MS, seg(hdr(PEER_ISS + 1, ISS + 1, F::ACK), &[1; 1460]));
    assert!(out(&mut c, 20 * MS).is_empty());
    c.handle_segment(
        21 * MS,
        seg(hdr(PEER_ISS + 1461, ISS + 1, F::ACK), &[2; 1460]),
    );
    let s = out(&mut c, 21 * MS);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].hdr.ack, Seq(PEER_ISS + 2921));
}

#[test]
fn bad_ack_in_syn_sent_gets_rst() {
    let mut c: Connection<Bytes> = Connection::connect(cfg(), 40000, 80, Seq(ISS));
    out(&mut c, 0);
    c.handle_segment(MS, seg(hdr(PEER_ISS, ISS + 100, F::SYN | F::ACK), &[]));
    let s = out(&mut c, MS);
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].hdr.flags, s[0].hdr.seq), (F::RST, Seq(ISS + 100)));
    assert_eq!(c.state(), State::SynSent);
    assert_eq!(c.stats().drop_ack_unsent, 1);
}

#[test]
fn simultaneous_open() {
    let mut c: Connection<Bytes> = Connection::connect(cfg(), 40000, 80, Seq(ISS));
    out(&mut c, 0);
    c.handle_segment(MS, seg(hdr(PEER_ISS, 0, F::SYN), &[]));
    assert_eq!(c.state(), State::SynReceived);
    let s = out(&mut c, MS);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].hdr.flags, s[0].hdr.seq, s[0].hdr.ack),
        (F::SYN | F::ACK, Seq(ISS), Seq(PEER_ISS + 1))
    );
    c.handle_segment(2 * MS, seg(hdr(PEER_ISS + 1, ISS + 1, F::ACK), &[]));
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.poll_event(), Some(Event::Connected));
}

#[test]
fn passive_open_mirrors_options() {
    let mut l = Listener::new(Config::default(), 16, [1; 32]);
    let t = FourTuple {
        local: IpAddr::V4(Ipv4Addr::LOCALHOST),
        lport: 80,
        remote: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        rport: 40000,
    };
    let mut h = Header {
        src_port: 40000,
        dst_port: 80,
        seq: Seq(PEER_ISS),
        flags: F::SYN,
        window: 64240,
        ..Default::default()
    };
    h.opts.mss = Some(1400);
    h.opts.sack_perm = true;
    let SynAction::Accept(c) = l.on_syn(0, &t, &seg(h, &[]), 0) else {
        panic!("not accepted")
    };
    let mut c: Connection<Bytes> = *c;
    let s = out(&mut c, 0);
    assert_eq!(s.len(), 1);
    let r = s[0].hdr;
    assert_eq!((r.flags, r.ack), (F::SYN | F::ACK, Seq(PEER_ISS + 1)));
    assert_eq!(r.opts.mss, Some(1460));
    assert!(r.opts.sack_perm);
    assert_eq!(r.opts.wscale, None, "the peer offered no window scaling");
    assert_eq!(r.opts.ts, None, "the peer offered no timestamps");
    let iss = r.seq;
    let mut a = Header {
        src_port: 40000,
        dst_port: 80,
        seq: Seq(PEER_ISS + 1),
        ack: iss + 1,
        flags: F::ACK,
        window: 64240,
        ..Default::default()
    };
    a.opts = Opts::default();
    c.handle_segment(MS, seg(a, &[]));
    assert_eq!(c.state(), State::Established);
}

#[test]
fn out_of_order_data_gets_immediate_dup_ack_with_sack() {
    let mut c = established(cfg());
    c.handle_segment(
        20 * MS,
        seg(hdr(PEER_ISS + 1 + 1000, ISS + 1, F::ACK), &[9; 500]),
    );
    let s = out(&mut c, 20 * MS);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].hdr.ack, Seq(PEER_ISS + 1));
    assert_eq!(
        s[0].hdr.opts.sack_blocks(),
        &[SackBlock {
            left: PEER_ISS + 1001,
            right: PEER_ISS + 1501
        }]
    );
    // the hole fills: cumulative ACK covers both, at once
    c.handle_segment(21 * MS, seg(hdr(PEER_ISS + 1, ISS + 1, F::ACK), &[8; 1000]));
    let s = out(&mut c, 21 * MS);
    assert_eq!(s[0].hdr.ack, Seq(PEER_ISS + 1501));
    assert_eq!(s[0].hdr.opts.sack_n, 0);
}

#[test]
fn rst_rules_of_rfc5961() {
    // exact sequence number: reset
    let mut c = established(cfg());
    c.handle_segment(20 * MS, seg(hdr(PEER_ISS + 1, 0, F::RST), &[]));
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.poll_event(), Some(Event::Reset));
    // in window but not exact: challenge ACK, still established
    let mut c = established(cfg());
    c.handle_segment(20 * MS, seg(hdr(PEER_ISS + 100, 0, F::RST), &[]));
    assert_eq!(c.state(), State::Established);
    let s = out(&mut c, 20 * MS);
    assert_eq!(
        (s.len(), s[0].hdr.flags, s[0].hdr.ack),
        (1, F::ACK, Seq(PEER_ISS + 1))
    );
    assert_eq!(c.stats().challenge_acks, 1);
    // outside the window: ignored
    c.handle_segment(20 * MS, seg(hdr(PEER_ISS + 10_000_000, 0, F::RST), &[]));
    assert!(out(&mut c, 20 * MS).is_empty());
    assert_eq!(c.stats().drop_rst_out_of_window, 1);
}

#[test]
fn syn_in_established_gets_challenge_ack() {
    let mut c = established(cfg());
    c.handle_segment(20 * MS, seg(hdr(PEER_ISS + 10, 0, F::SYN), &[]));
    assert_eq!(c.state(), State::Established);
    let s = out(&mut c, 20 * MS);
    assert_eq!((s.len(), s[0].hdr.flags), (1, F::ACK));
    assert_eq!(c.stats().drop_syn_in_window, 1);
}

#[test]
fn ack_of_unsent_data_is_dropped_and_answered() {
    let mut c = established(cfg());
    c.handle_segment(20 * MS, seg(hdr(PEER_ISS + 1, ISS + 5000, F::ACK), b"data"));
    let s = out(&mut c, 20 * MS);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].hdr.ack, Seq(PEER_ISS + 1), "the data was not accepted");
    assert_eq!(c.stats().drop_ack_unsent, 1);
    assert_eq!(c.readable(), 0);
}

#[test]
fn paws_drops_old_timestamps() {
    let mut conn: Connection<Bytes> = Connection::connect(
        Config {
            quickack_segments: 0,
            ..Config::default()
        },
        40000,
        80,
        Seq(ISS),
    );
    out(&mut conn, 0);
    let mut h = hdr(PEER_ISS, ISS + 1, F::SYN | F::ACK);
    h.opts.ts = Some((1000, 1));
    conn.handle_segment(MS, seg(h, &[]));
    out(&mut conn, MS);
    let mut d = hdr(PEER_ISS + 1, ISS + 1, F::ACK);
    d.opts.ts = Some((999, 1));
    conn.handle_segment(2 * MS, seg(d, b"old"));
    assert_eq!(conn.stats().drop_paws, 1);
    assert_eq!(conn.readable(), 0);
    d.opts.ts = Some((1001, 1));
    conn.handle_segment(3 * MS, seg(d, b"new"));
    assert_eq!(conn.readable(), 3);
}

#[test]
fn active_close_through_time_wait() {
    let mut c = established(Config {
        time_wait: SEC,
        ..cfg()
    });
    c.close();
    assert_eq!(c.state(), State::FinWait1);
    let s = out(&mut c, 20 * MS);
    assert_eq!(
        (s.len(), s[0].hdr.flags, s[0].hdr.seq),
        (1, F::FIN | F::ACK, Seq(ISS + 1))
    );
    c.handle_segment(30 * MS, seg(hdr(PEER_ISS + 1, ISS + 2, F::ACK), &[]));
    assert_eq!(c.state(), State::FinWait2);
    c.handle_segment(
        40 * MS,
        seg(hdr(PEER_ISS + 1, ISS + 2, F::FIN | F::ACK), &[]),
    );
    assert_eq!(c.state(), State::TimeWait);
    let s = out(&mut c, 40 * MS);
    assert_eq!((s[0].hdr.flags, s[0].hdr.ack), (F::ACK, Seq(PEER_ISS + 2)));
    assert_eq!(c.next_timeout(), Some(40 * MS + SEC));
    c.on_timeout(40 * MS + SEC);
    assert_eq!(c.state(), State::Closed);
}

/// An active close through to TIME-WAIT (1 s), the peer's FIN taken at
/// 30 ms.
fn in_time_wait() -> Connection<Bytes> {
    let mut c = established(Config {
        time_wait: SEC,
        ..cfg()
    });
    c.close();
    out(&mut c, 20 * MS);
    c.handle_segment(
        30 * MS,
        seg(hdr(PEER_ISS + 1, ISS + 2, F::FIN | F::ACK), &[]),
    );
    assert_eq!(c.state(), State::TimeWait);
    c
}

/// RFC 1337 §3: a RST in TIME-WAIT is ignored, the timer runs on and the
/// connection ends as a close, not a reset (a peer that has closed answers
/// our second ACK of its retransmitted FIN with a RST).
#[test]
fn a_rst_in_time_wait_is_ignored() {
    let mut c = in_time_wait();
    while c.poll_event().is_some() {}
    out(&mut c, 30 * MS);
    c.handle_segment(40 * MS, seg(hdr(PEER_ISS + 2, 0, F::RST), &[]));
    assert_eq!(c.state(), State::TimeWait);
    assert_eq!(c.stats().drop_rst_in_time_wait, 1);
    assert!(out(&mut c, 40 * MS).is_empty(), "nothing answers the RST");
    assert_eq!(c.next_timeout(), Some(30 * MS + SEC));
    c.on_timeout(30 * MS + SEC);
    assert_eq!(c.state(), State::Closed);
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(!events.contains(&Event::Reset), "{events:?}");
}

/// RFC 6191 §2 (no timestamps): in TIME-WAIT a SYN above what was
/// received may open a new connection on the tuple; an old duplicate may
/// not, nor may any SYN while the connection is open.
#[test]
fn a_new_syn_over_time_wait_needs_a_higher_sequence_number() {
    let syn = |seq: u32| {
        let mut h = hdr(seq, 0, F::SYN);
        h.opts.mss = Some(1460);
        h
    };
    assert!(!established(cfg()).accepts_new_syn(&syn(PEER_ISS + 100_000)));
    let mut c = in_time_wait();
    assert!(!c.accepts_new_syn(&syn(PEER_ISS)), "an old duplicate");
    assert!(!c.accepts_new_syn(&syn(PEER_ISS + 2)), "at rcv_nxt");
    assert!(c.accepts_new_syn(&syn(PEER_ISS + 100_000)));
    c.on_timeout(30 * MS + SEC);
    assert_eq!(c.state(), State::Closed);
    assert!(c.accepts_new_syn(&syn(PEER_ISS)));
}

#[test]
fn passive_close() {
    let mut c = established(cfg());
    c.handle_segment(
        20 * MS,
        seg(hdr(PEER_ISS + 1, ISS + 1, F::FIN | F::ACK), &[]),
    );
    assert_eq!(c.state(), State::CloseWait);
    assert_eq!(c.poll_event(), Some(Event::PeerClosed));
    let s = out(&mut c, 20 * MS);
    assert_eq!(s[0].hdr.ack, Seq(PEER_ISS + 2));
    c.close();
    assert_eq!(c.state(), State::LastAck);
    let s = out(&mut c, 21 * MS);
    assert_eq!(s[0].hdr.flags, F::FIN | F::ACK);
    c.handle_segment(30 * MS, seg(hdr(PEER_ISS + 2, ISS + 2, F::ACK), &[]));
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn zero_window_is_probed() {
    let mut c = established(cfg());
    let mut h = hdr(PEER_ISS + 1, ISS + 1, F::ACK);
    h.window = 0;
    c.handle_segment(20 * MS, seg(h, &[]));
    assert_eq!(c.send(Bytes::new(vec![7; 3000])), 3000);
    assert!(
        out(&mut c, 20 * MS).is_empty(),
        "nothing fits a zero window"
    );
    let t = c.next_timeout().expect("persist timer");
    c.on_timeout(t);
    let s = out(&mut c, t);
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].hdr.seq, s[0].payload.len()), (Seq(ISS + 1), 1));
    assert_eq!(c.stats().zero_window_probes, 1);
}

#[test]
fn rto_retransmits_with_backoff() {
    let mut c = established(cfg());
    c.send(Bytes::new(vec![1; 100]));
    let s = out(&mut c, 20 * MS);
    assert_eq!(
        (s.len(), s[0].hdr.seq, s[0].payload.len()),
        (1, Seq(ISS + 1), 100)
    );
    let t1 = c.next_timeout().expect("rto");
    c.on_timeout(t1);
    let s = out(&mut c, t1);
    assert_eq!(
        (s.len(), s[0].hdr.seq, s[0].payload.len()),
        (1, Seq(ISS + 1), 100)
    );
    let t2 = c.next_timeout().expect("rto");
    assert_eq!(t2 - t1, 2 * (t1 - 20 * MS), "doubled");
    assert_eq!(c.stats().rtos, 1);
}

#[test]
fn keepalive_probes_then_times_out() {
    let mut c = established(Config {
        keepalive: Some(SEC),
        keepalive_interval: SEC,
        keepalive_probes: 2,
        ..cfg()
    });
    let t = c.next_timeout().expect("keepalive");
    c.on_timeout(t);
    let s = out(&mut c, t);
    assert_eq!(
        (s.len(), s[0].hdr.seq, s[0].payload.len()),
        (1, Seq(ISS), 0)
    );
    c.on_timeout(t + SEC);
    c.on_timeout(t + 2 * SEC);
    assert_eq!(c.state(), State::Closed);
    assert!(std::iter::from_fn(|| c.poll_event()).any(|e| e == Event::TimedOut));
}

#[test]
fn segments_fit_the_mss_and_share_payload() {
    let mut c = established(Config {
        reserved_option_space: 28,
        ..cfg()
    });
    let data = Bytes::new((0..10_000u32).map(|i| i as u8).collect());
    c.send(data.clone());
    let s = out(&mut c, 20 * MS);
    assert!(!s.is_empty());
    for x in &s {
        assert!(
            x.payload.len() <= 1460 - 28,
            "room for a 28-byte MPTCP option"
        );
        for p in x.payload.parts() {
            assert!(p.shares_storage(&data), "no payload copy");
        }
    }
}

/// A passive connection told of a narrower path before its SYN-ACK (an
/// IPv6 subflow over a 1280-byte access) announces that MSS and sends
/// segments within it, though the peer offered 1460; the limit never
/// raises the MSS.
#[test]
fn a_lowered_mss_is_announced_and_kept() {
    let mut h = hdr(PEER_ISS, 0, F::SYN);
    h.opts.mss = Some(1460);
    let mut c = Connection::accept(cfg(), &h, Seq(ISS));
    c.limit_mss(1220);
    c.limit_mss(1400);
    assert_eq!(c.mss(), 1220);
    let synack = out(&mut c, 0);
    assert_eq!(synack[0].hdr.opts.mss, Some(1220));
    let mut ack = hdr(PEER_ISS + 1, ISS + 1, F::ACK);
    ack.window = 65535;
    c.handle_segment(10 * MS, seg(ack, &[]));
    assert_eq!(c.state(), State::Established);
    c.send(Bytes::new(vec![7; 20_000]));
    let s = out(&mut c, 20 * MS);
    assert!(!s.is_empty());
    assert!(
        s.iter().all(|x| x.payload.len() <= 1220),
        "segments within 1220"
    );
    assert!(
        s.iter().any(|x| x.payload.len() == 1220),
        "full 1220-byte segments"
    );
}

/// RFC 1191 §6.3 / RFC 5927 §7.2: a "fragmentation needed" quoting data
/// not in flight, or naming an MSS no smaller, is ignored; one quoting a
/// segment in flight lowers the MSS and everything unacknowledged is sent
/// again at once in segments of the new size, the window kept.
#[test]
fn fragmentation_needed_lowers_the_mss_and_resends_at_once() {
    let mut c = established(cfg());
    let mut wnd = hdr(PEER_ISS + 1, ISS + 1, F::ACK);
    wnd.window = 65535;
    c.handle_segment(15 * MS, seg(wnd, &[]));
    c.send(Bytes::new((0..6000u32).map(|i| i as u8).collect()));
    let first = out(&mut c, 20 * MS);
    let sent: usize = first.iter().map(|s| s.payload.len()).sum();
    assert!(first.iter().all(|s| s.payload.len() <= 1460) && sent > 1460);
    // stale (acknowledged or never sent) or not lower: ignored
    assert!(!c.path_mtu_lowered(Seq(ISS), 1360));
    assert!(!c.path_mtu_lowered(Seq(ISS + 1 + sent as u32), 1360));
    assert!(!c.path_mtu_lowered(Seq(ISS + 1), 1460));
    assert_eq!(c.stats().path_mtu_lowered, 0);
    // about the first segment in flight: taken
    assert!(c.path_mtu_lowered(Seq(ISS + 1), 1360));
    assert_eq!(c.mss(), 1360);
    assert_eq!(c.stats().path_mtu_lowered, 1);
    let again = out(&mut c, 21 * MS);
    assert_eq!(
        again.first().map(|s| s.hdr.seq),
        Some(Seq(ISS + 1)),
        "resent from snd_una"
    );
    assert!(
        again.iter().all(|s| s.payload.len() <= 1360),
        "in 1360-byte segments"
    );
    let resent: usize = again.iter().map(|s| s.payload.len()).sum();
    assert!(
        resent >= sent,
        "everything in flight resent ({resent} of {sent})"
    );
}

#[test]
fn tcp_fast_open_passive_side() {
    // RFC 7413: a cookie request gets a cookie; a SYN with the right cookie
    // has its data delivered before the handshake completes; a wrong cookie
    // gets its data ignored (the SYN-ACK acknowledges only the SYN).
    let mut l = Listener::new(Config::default(), 16, [5; 32]);
    let t = FourTuple {
        local: IpAddr::V4(Ipv4Addr::LOCALHOST),
        lport: 80,
        remote: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)),
        rport: 40000,
    };
    let mut h = Header {
        src_port: 40000,
        dst_port: 80,
        seq: Seq(PEER_ISS),
        flags: F::SYN,
        window: 64240,
        ..Default::default()
    };
    h.opts.tfo = nf_tcp::RawOpt::new(&[]);
    let SynAction::Accept(c) = l.on_syn(0, &t, &seg(h, &[]), 0) else {
        panic!()
    };
    let mut c: Connection<Bytes> = *c;
    let synack = out(&mut c, 0);
    let cookie = synack[0].hdr.opts.tfo.expect("a cookie in the SYN-ACK");
    assert_eq!(cookie.as_slice().len(), 8);
    assert_eq!(l.stats().tfo_requests, 1);

    let mut h2 = Header {
        seq: Seq(PEER_ISS + 100),
        ..h
    };
    h2.opts.tfo = Some(cookie);
    let SynAction::Accept(c) = l.on_syn(MS, &t, &seg(h2, b"GET /"), 0) else {
        panic!()
    };
    let mut c: Connection<Bytes> = *c;
    assert_eq!(c.readable(), 5, "SYN data delivered at once");
    let synack = out(&mut c, MS);
    assert_eq!(
        synack[0].hdr.ack,
        Seq(PEER_ISS + 100 + 1 + 5),
        "the SYN-ACK acknowledges the data"
    );
    assert_eq!(l.stats().tfo_accepted, 1);

    let mut h3 = Header {
        seq: Seq(PEER_ISS + 200),
        ..h
    };
    h3.opts.tfo = nf_tcp::RawOpt::new(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let SynAction::Accept(c) = l.on_syn(2 * MS, &t, &seg(h3, b"GET /"), 0) else {
        panic!()
    };
    let mut c: Connection<Bytes> = *c;
    assert_eq!(c.readable(), 0, "invalid cookie: data not accepted");
    let synack = out(&mut c, 2 * MS);
    assert_eq!(synack[0].hdr.ack, Seq(PEER_ISS + 201));
    assert!(
        synack[0].hdr.opts.tfo.is_some(),
        "the valid cookie is sent back"
    );
    assert_eq!(l.stats().tfo_invalid, 1);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut c = established(Config {
        time_wait: SEC,
        ..cfg()
    });
    c.close();
    let s = out(&mut c, 20 * MS);
    assert_eq!(s[0].hdr.flags, F::FIN | F::ACK);
    // the peer's FIN crosses ours: it does not acknowledge our FIN yet
    c.handle_segment(
        21 * MS,
        seg(hdr(PEER_ISS + 1, ISS + 1, F::FIN | F::ACK), &[]),
    );
    assert_eq!(c.state(), State::Closing);
    let s = out(&mut c, 21 * MS);
    assert_eq!((s[0].hdr.flags, s[0].hdr.ack), (F::ACK, Seq(PEER_ISS + 2)));
    // then the ACK of our FIN
    c.handle_segment(22 * MS, seg(hdr(PEER_ISS + 2, ISS + 2, F::ACK), &[]));
    assert_eq!(c.state(), State::TimeWait);
    c.on_timeout(22 * MS + SEC);
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn forget_closes_without_a_segment_and_abort_sends_a_rst() {
    let mut c = established(cfg());
    c.send(Bytes::new(vec![7; 3000]));
    let _ = out(&mut c, 0);
    c.forget();
    assert_eq!(c.state(), State::Closed);
    assert!(out(&mut c, 1).is_empty(), "no RST, no retransmission");
    assert!(c.next_timeout().is_none());
    let mut d = established(cfg());
    d.abort();
    let rst = out(&mut d, 1);
    assert_eq!(rst.len(), 1);
    assert!(rst[0].hdr.rst());
}

/// An established connection with `n` full segments in flight (SRTT 10 ms
/// from the handshake, a wide-open peer window).
fn flight_of(n: usize) -> Connection<Bytes> {
    flight_with(cfg(), n)
}

/// `flight_of` with its own config.
fn flight_with(cfg: Config, n: usize) -> Connection<Bytes> {
    let mut c = established(cfg);
    let mut h = hdr(PEER_ISS + 1, ISS + 1, F::ACK);
    h.window = 65535;
    c.handle_segment(11 * MS, seg(h, &[]));
    c.send(Bytes::new(vec![7; n * 1460]));
    let s = out(&mut c, 20 * MS);
    assert_eq!(s.len(), n);
    c
}

fn ack_with_sack(ack: u32, sack: &[(u32, u32)]) -> Incoming<Bytes> {
    let mut h = hdr(PEER_ISS + 1, ack, F::ACK);
    h.window = 65535;
    for (i, &(left, right)) in sack.iter().enumerate() {
        h.opts.sack[i] = SackBlock { left, right };
    }
    h.opts.sack_n = sack.len() as u8;
    seg(h, &[])
}

fn seg_start(i: u32) -> u32 {
    ISS + 1 + i * 1460
}

#[test]
fn tail_loss_probe_then_recovery_without_an_rto() {
    let mut c = flight_of(4);
    // the first two arrive, the tail (3rd and 4th) is lost
    c.handle_segment(30 * MS, ack_with_sack(seg_start(2), &[]));
    assert!(out(&mut c, 30 * MS).is_empty());
    // RFC 8985 §7.2: the probe timeout is 2·SRTT, far below the 200 ms RTO
    let t = c.next_timeout().expect("pto");
    assert!(t > 30 * MS && t <= 30 * MS + 25 * MS, "PTO at {t}");
    c.on_timeout(t);
    let s = out(&mut c, t);
    // §7.3: no new data, so the last segment goes again
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].hdr.seq, s[0].payload.len()),
        (Seq(seg_start(3)), 1460)
    );
    assert_eq!((c.stats().loss_probes, c.stats().rtos), (1, 0));
    // the probe is SACKed and the 3rd segment is not: it is lost, resent
    // at once (fast recovery), still no RTO
    c.handle_segment(
        t + 10 * MS,
        ack_with_sack(seg_start(2), &[(seg_start(3), seg_start(4))]),
    );
    let s = out(&mut c, t + 10 * MS);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].hdr.seq, s[0].payload.len()),
        (Seq(seg_start(2)), 1460)
    );
    assert_eq!((c.stats().fast_recoveries, c.stats().rtos), (1, 0));
}

#[test]
fn probe_timeout_with_data_sacked_above_a_hole_starts_recovery() {
    let mut c = flight_of(4);
    // only the 2nd segment is SACKed: one duplicate ACK, short of the
    // three RFC 6675 needs
    c.handle_segment(
        30 * MS,
        ack_with_sack(seg_start(0), &[(seg_start(1), seg_start(2))]),
    );
    assert!(out(&mut c, 30 * MS).is_empty());
    assert_eq!(c.stats().fast_recoveries, 0);
    let t = c.next_timeout().expect("pto");
    assert!(t < 30 * MS + 200 * MS, "before the RTO");
    c.on_timeout(t);
    let s = out(&mut c, t);
    // the hole below the SACKed segment is resent first
    assert_eq!(s[0].hdr.seq, Seq(seg_start(0)));
    assert_eq!(
        (
            c.stats().loss_probes,
            c.stats().fast_recoveries,
            c.stats().rtos
        ),
        (1, 1, 0)
    );
}

#[test]
fn a_lost_retransmission_is_resent_after_a_probe_timeout() {
    let mut c = flight_of(5);
    // segments 2..5 SACKed: the 1st is lost, fast recovery resends it
    c.handle_segment(
        30 * MS,
        ack_with_sack(seg_start(0), &[(seg_start(1), seg_start(5))]),
    );
    let s = out(&mut c, 30 * MS);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].hdr.seq, Seq(seg_start(0)));
    assert_eq!(c.stats().fast_recoveries, 1);
    // the retransmission is lost too: nothing comes back; a PTO later it
    // is resent, long before the RTO
    let t = c.next_timeout().expect("pto");
    assert!(t < 30 * MS + 100 * MS, "PTO at {t}");
    c.on_timeout(t);
    let s = out(&mut c, t);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].hdr.seq, Seq(seg_start(0)));
    assert_eq!((c.stats().loss_probes, c.stats().rtos), (1, 0));
    // it arrives: everything is acknowledged, recovery ends
    c.handle_segment(t + 10 * MS, ack_with_sack(seg_start(5), &[]));
    assert_eq!(c.unacked(), 0);
    assert_eq!(c.next_timeout(), None);
}

#[test]
fn one_probe_then_the_rto_backs_off_as_before() {
    let mut c = flight_of(4);
    let t = c.next_timeout().expect("pto");
    c.on_timeout(t);
    assert_eq!(out(&mut c, t).len(), 1, "the probe");
    // the probe is unanswered: the next timer is the RTO, then backoff
    let t1 = c.next_timeout().expect("rto");
    assert!(t1 >= 20 * MS + 200 * MS, "no second probe: {t1}");
    c.on_timeout(t1);
    assert_eq!(c.stats().rtos, 1);
    out(&mut c, t1);
    let t2 = c.next_timeout().expect("rto");
    assert!(t2 - t1 >= 400 * MS, "doubled: {}", t2 - t1);
    assert_eq!(c.stats().loss_probes, 1);
}

#[test]
fn probes_can_be_turned_off() {
    let c = flight_with(
        Config {
            tail_loss_probe: false,
            ..cfg()
        },
        4,
    );
    let t = c.next_timeout().expect("rto");
    assert!(t >= 20 * MS + 200 * MS);
}
