//! The conversion point in virtual time: nf-mptcp clients and nf-tcp
//! servers exchanging frames with the pipeline (`crate::convlab`).

use crate::convlab::{ConvLab, Workload, CELL, FIXED, SERVER};
use crate::stats::{JoinRefuse, Refuse};
use nf_core::chunk::Bytes;
use nf_mptcp::options::MptcpOption;
use std::net::IpAddr;

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

const CONV: &str = crate::convlab::CONVERSION;

/// A bare segment toward server port 5201 (no payload), with an optional
/// MPTCP option.
fn to_server(
    sport: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    opt: Option<MptcpOption>,
) -> nf_tcp::Segment<Bytes> {
    let mut h = nf_tcp::Header {
        src_port: sport,
        dst_port: 5201,
        seq: nf_tcp::Seq(seq),
        ack: nf_tcp::Seq(ack),
        flags,
        window: 65535,
        ..Default::default()
    };
    if let Some(o) = opt {
        let mut raw = [0u8; 40];
        let n = o.emit(&mut raw);
        h.opts.mptcp = nf_tcp::RawOpt::new(&raw[..n]);
    }
    nf_tcp::Segment {
        hdr: h,
        payload: nf_tcp::Gather::default(),
    }
}

/// The MP_CAPABLE option of a client's SYN (RFC 8684 §3.1).
fn mp_capable_syn_option() -> MptcpOption {
    MptcpOption::Capable {
        version: 1,
        flags: nf_mptcp::options::CapFlags(nf_mptcp::options::CapFlags::H),
        sender_key: None,
        receiver_key: None,
        data_len: None,
        checksum: None,
    }
}

/// CONV with more `[conversion]` keys.
fn conv_with(keys: &str) -> String {
    CONV.replace("enabled = true", &format!("enabled = true\n{keys}"))
}

/// The `k`-th SYN of a flood: MP_CAPABLE, from port 20000 + k, never
/// followed by anything.
fn flood_syn(k: u16) -> nf_tcp::Segment<Bytes> {
    to_server(
        20000 + k,
        u32::from(k) * 7919,
        0,
        nf_core::wire::tcp::flags::SYN,
        Some(mp_capable_syn_option()),
    )
}

/// `n` clients (a multiple of 32) that send 100 bytes, get them back and
/// hold their connection open, silent; connected 32 at a time (one
/// subscriber may have 64 handshakes in progress), each batch until
/// `ready` holds for all of it.
fn held_sessions(
    lab: &mut ConvLab,
    n: usize,
    ready: impl Fn(&crate::convlab::LabClient) -> bool,
) -> Vec<usize> {
    let hold = Workload::held(100, false);
    let mut ids = Vec::new();
    for _ in 0..n / 32 {
        let cs: Vec<usize> = (0..32).map(|_| lab.connect(5201, hold)).collect();
        assert!(lab.run_until(SEC, |l| cs.iter().all(|&c| ready(&l.clients[c]))));
        ids.extend(cs);
    }
    ids
}

/// Subflows handed over to their owner, summed over the lab's workers.
fn redirects(lab: &ConvLab) -> usize {
    std::iter::once(&lab.pipe)
        .chain(&lab.extra)
        .map(|p| p.converter().map_or(0, |c| c.redirects()))
        .sum()
}

fn drained(lab: &mut ConvLab) -> bool {
    lab.run_until(30 * SEC, |l| l.sessions() == 0)
}

/// A lab whose three ports verify TCP checksums when `trust` (as a port
/// with `RTE_ETH_RX_OFFLOAD_TCP_CKSUM` does), with the "NIC" saying `nic`
/// of every frame and, with `corrupt`, every data segment's checksum
/// wrong; returns it after 5 s of one 1 KB echo.
fn with_nic_verdict(trust: bool, nic: nf_core::RxChecksum, corrupt: bool) -> (ConvLab, bool) {
    let mut lab = ConvLab::new(CONV, 11);
    lab.tcp_checksum_offload(trust, false);
    lab.nic_l4 = nic;
    lab.corrupt_tcp_checksums = corrupt;
    let c = lab.connect(5201, Workload::echo(1000, true));
    let done = lab.run_until(5 * SEC, |l| l.clients[c].finished());
    (lab, done)
}

#[test]
fn a_nic_verified_tcp_checksum_is_trusted_and_one_it_rejects_is_dropped() {
    use nf_core::RxChecksum::{Bad, Good, Unknown};
    // RFC 9293 §3.1: the checksum is verified, here by the NIC; hagw does
    // not sum the payload again (a checksum the NIC vouched for is taken
    // even where the bytes say otherwise, which only a test can arrange)
    let (lab, done) = with_nic_verdict(true, Good, true);
    assert!(done, "the echo completes on the NIC's word");
    assert!(!lab.clients[0].corrupt);
    assert_eq!(lab.stats().conv.segments_malformed.get(), 0);
    // the NIC found the checksum wrong: dropped and counted, as a wrong
    // sum is (the SYNs, summed in software, still open the session)
    let (lab, done) = with_nic_verdict(true, Bad, false);
    assert!(!done, "no data segment gets through");
    assert_eq!(lab.stats().conv.sessions_created.get(), 1);
    assert!(lab.stats().conv.segments_malformed.get() > 0);
    // a port that was not asked to verify: its flags count for nothing,
    // and software finds the corruption
    let (lab, done) = with_nic_verdict(false, Good, true);
    assert!(!done);
    assert!(lab.stats().conv.segments_malformed.get() > 0);
    // and without a verdict, the same
    let (lab, done) = with_nic_verdict(true, Unknown, true);
    assert!(!done);
    assert!(lab.stats().conv.segments_malformed.get() > 0);
    // the control: nothing corrupted, no verdict
    let (lab, done) = with_nic_verdict(true, Unknown, false);
    assert!(done);
    assert_eq!(lab.stats().conv.segments_malformed.get(), 0);
}

#[test]
fn with_tcp_checksum_offload_on_transmit_the_peers_get_valid_segments() {
    // every port's "NIC" computes TCP checksums: hagw leaves the payload
    // unsummed, the lab's wire completes each checksum as the NIC would,
    // and its peers verify every segment (a wrong pseudo-header sum would
    // have them drop everything)
    let mut lab = ConvLab::new(CONV, 12);
    lab.tcp_checksum_offload(false, true);
    let c = lab.connect(5201, Workload::echo(300_000, true));
    assert!(lab.run_until(20 * SEC, |l| l.clients[c].finished()));
    assert!(!lab.clients[c].corrupt);
    assert_eq!(lab.clients[c].received, 300_000);
    assert_eq!(lab.stats().conv.payload_bytes_copied.get(), 0);
    // and they were the NIC's to sum: every segment of the 300 KB each way
    assert!(lab.frames_nic_summed > 400, "{}", lab.frames_nic_summed);
}

#[test]
fn converts_a_two_subflow_connection_and_nats_to_the_fixed_address() {
    let mut lab = ConvLab::new(CONV, 1);
    let c = lab.connect(5201, Workload::echo(300_000, true));
    assert!(lab.run_until(20 * SEC, |l| l.clients[c].finished()));
    let cl = &lab.clients[c];
    assert!(!cl.refused && !cl.corrupt);
    assert_eq!(cl.received, 300_000);
    assert_eq!(cl.mp.subflows().len(), 2, "the cellular subflow joined");
    assert!(!cl.mp.is_fallback());
    // hagw terminated MPTCP: the server saw plain TCP from the fixed address
    assert_eq!(lab.server.mptcp_syns, 0);
    assert_eq!(lab.server.sources, vec![IpAddr::V4(FIXED)]);
    let st = &lab.stats().conv;
    assert_eq!(st.sessions_created.get(), 1);
    assert_eq!(st.joins_accepted.get(), 1);
    assert!(st.rx_bytes.get(crate::stats::Side::Cellular as usize) > 0);
    // DESIGN.md §3: payload goes from the buffer it arrived in to the wire
    // by reference, both ways (chained segments behind hagw's headers)
    assert_eq!(st.payload_bytes_copied.get(), 0, "spliced without copies");
    assert!(
        drained(&mut lab),
        "the session ends after both sides closed"
    );
    assert_eq!(lab.stats().conv.sessions_closed.get(), 1);
    assert_eq!(lab.stats().conv.nat_ports_in_use.get(), 0);
}

#[test]
fn ports_without_chains_get_the_payload_copied_once_and_counted() {
    let mut lab = ConvLab::new(CONV, 1);
    lab.pipe.set_tx_chains(false);
    let c = lab.connect(5201, Workload::echo(300_000, true));
    assert!(lab.run_until(20 * SEC, |l| l.clients[c].finished()));
    let cl = &lab.clients[c];
    assert!(!cl.refused && !cl.corrupt);
    assert_eq!(cl.received, 300_000);
    // each byte leaves hagw twice (to the server, back to the client),
    // copied behind the headers each time; nothing is copied on receive
    let copied = lab.stats().conv.payload_bytes_copied.get();
    assert!(
        (600_000..660_000).contains(&copied),
        "copied {copied} B for 600,000 B sent (retransmissions aside)"
    );
}

#[test]
fn a_cellular_first_subflow_is_still_natted_to_the_fixed_address() {
    let mut lab = ConvLab::new(CONV, 2);
    let c = lab.connect(5201, Workload::echo(10_000, false));
    // move the client's first subflow to the cellular access
    lab.clients[c].move_first_path(CELL, 1);
    assert!(lab.run_until(20 * SEC, |l| l.clients[c].finished()));
    assert_eq!(lab.server.sources, vec![IpAddr::V4(FIXED)]);
}

#[test]
fn cellular_without_a_subscriber_entry_is_refused_not_leaked() {
    let conf = CONV.replace("cellular = [\"100.64.0.2\"]", "cellular = []");
    let mut lab = ConvLab::new(&conf, 3);
    let c = lab.connect(5201, Workload::echo(10_000, false));
    lab.clients[c].move_first_path(CELL, 1);
    assert!(lab.run_until(5 * SEC, |l| l.clients[c].finished()));
    assert!(lab.clients[c].refused);
    assert!(lab.server.sources.is_empty(), "nothing reached the server");
    assert_eq!(
        lab.stats().conv.refused.get(Refuse::NoNatSource as usize),
        1
    );
}

#[test]
fn withdraws_when_the_server_speaks_mptcp() {
    let conf = conv_with("withdraw = \"if-server-capable\"");
    let mut lab = ConvLab::new(&conf, 4);
    lab.server.mptcp_ports.push(5202);
    let c = lab.connect(5202, Workload::echo(200_000, true));
    assert!(
        lab.run_until(20 * SEC, |l| l.clients[c].finished()),
        "{} sent {} received {} {:?} {:?}",
        lab.clients[c].mp.describe(),
        lab.clients[c].sent,
        lab.clients[c].received,
        lab.stats().conv.sessions_withdrawn.get(),
        lab.stats()
            .drops
            .0
            .iter()
            .map(|c| c.get())
            .collect::<Vec<_>>()
    );
    let cl = &lab.clients[c];
    assert!(!cl.corrupt && cl.received == 200_000);
    assert_eq!(
        lab.server.mptcp_syns, 2,
        "the server got the client's MP_CAPABLE and MP_JOIN SYNs"
    );
    let st = &lab.stats().conv;
    assert_eq!(st.sessions_withdrawn.get(), 1);
    // the join with the server's token was NATed through as well
    assert_eq!(st.joins_accepted.get(), 1);
    assert!(lab.server.sources.iter().all(|a| *a == IpAddr::V4(FIXED)));
    assert_eq!(
        lab.server.sources.len(),
        2,
        "both subflows reached the server"
    );
}

#[test]
fn withdraw_never_terminates_even_a_capable_server() {
    let mut lab = ConvLab::new(CONV, 5);
    lab.server.mptcp_ports.push(5202);
    let c = lab.connect(5202, Workload::echo(50_000, false));
    assert!(lab.run_until(20 * SEC, |l| l.clients[c].finished()));
    assert_eq!(lab.server.mptcp_syns, 0);
    assert_eq!(lab.stats().conv.sessions_withdrawn.get(), 0);
}

#[test]
fn a_server_reset_reaches_the_client_without_delay() {
    let mut lab = ConvLab::new(CONV, 6);
    lab.server.closed_ports.push(5999);
    let c = lab.connect(5999, Workload::echo(1000, false));
    let t0 = lab.now;
    assert!(lab.run_until(5 * SEC, |l| l.clients[c].refused));
    assert!(lab.now - t0 < SEC / 10, "RST within a few rounds");
    assert_eq!(
        lab.stats().conv.refused.get(Refuse::ServerReset as usize),
        1
    );
    assert!(drained(&mut lab));
}

#[test]
fn a_full_table_refuses_new_sessions_with_rst() {
    let conf = conv_with("max_sessions = 2");
    let mut lab = ConvLab::new(&conf, 7);
    let hold = Workload::held(20_000, false);
    let a = lab.connect(5201, hold);
    let b = lab.connect(5201, hold);
    assert!(lab.run_until(5 * SEC, |l| l.clients.iter().all(|c| c.received == 20_000)));
    // two established sessions fill the table: nothing to evict
    let c = lab.connect(5201, Workload::echo(20_000, false));
    assert!(lab.run_until(20 * SEC, |l| l.clients[c].finished()));
    assert!(!lab.clients[a].refused && !lab.clients[b].refused);
    assert!(lab.clients[c].refused);
    assert_eq!(lab.stats().conv.refused.get(Refuse::TableFull as usize), 1);
}

#[test]
fn a_join_with_an_unknown_token_is_reset_and_counted() {
    let mut lab = ConvLab::new(CONV, 8);
    let join = MptcpOption::JoinSyn {
        backup: false,
        addr_id: 1,
        token: 0xdead_beef,
        nonce: 7,
    };
    let seg = to_server(41000, 100, 0, nf_core::wire::tcp::flags::SYN, Some(join));
    lab.inject(1, IpAddr::V4(CELL), IpAddr::V4(SERVER), &seg);
    lab.pipe.poll_conversion(lab.now);
    let out: Vec<Vec<u8>> = lab
        .pipe
        .tx_queue(1)
        .map(|q| q.drain(..).map(|b| b.frame()).collect())
        .unwrap_or_default();
    assert_eq!(out.len(), 1, "one RST back on the cellular port");
    let (src, dst, rst) = crate::localpeer::parse_tcp_packet(&out[0][14..]).expect("TCP");
    assert_eq!((src, dst), (IpAddr::V4(SERVER), IpAddr::V4(CELL)));
    assert!(rst.hdr.rst());
    assert_eq!(rst.hdr.ack, nf_tcp::Seq(101));
    assert_eq!(
        lab.stats()
            .conv
            .joins_refused
            .get(JoinRefuse::UnknownToken as usize),
        1
    );
    assert!(lab.server.sources.is_empty());
}

#[test]
fn pool_nat_gives_the_server_pool_addresses_only() {
    let conf = CONV.replace(
        "source = \"subscriber-fixed\"",
        "source = \"pool\"\npool = \"203.0.113.0/28\"",
    );
    let mut lab = ConvLab::new(&conf, 9);
    let c = lab.connect(5201, Workload::echo(50_000, true));
    assert!(lab.run_until(20 * SEC, |l| l.clients[c].finished()));
    assert!(!lab.clients[c].corrupt);
    assert!(!lab.server.sources.is_empty());
    for a in &lab.server.sources {
        let IpAddr::V4(v) = a else { panic!("{a}") };
        assert_eq!(v.octets()[..3], [203, 0, 113], "{a}");
    }
}

/// DESIGN.md §4 on two workers: frames land on either worker by a hash
/// of their tuple; MP_JOINs and server replies that land on the wrong one
/// are handed to the owner, found by the token and the NAT port hagw chose.
fn two_workers(conf: &str, seed: u64, stray: u64) -> ConvLab {
    let mut lab = ConvLab::with_workers(conf, seed, 2);
    lab.stray = stray;
    let lab = two_workers_run(lab);
    let handoffs: u64 = lab
        .worker_stats()
        .iter()
        .map(|w| w.conv.handoffs.get())
        .sum();
    assert!(
        handoffs > 0,
        "a hash hagw does not know puts packets on the wrong worker"
    );
    lab
}

fn two_workers_run(mut lab: ConvLab) -> ConvLab {
    let ids: Vec<usize> = (0..12)
        .map(|_| lab.connect(5201, Workload::echo(60_000, true)))
        .collect();
    assert!(lab.run_until(30 * SEC, |l| ids.iter().all(|&c| l.clients[c].finished())));
    for &c in &ids {
        let cl = &lab.clients[c];
        assert!(!cl.refused && !cl.corrupt, "client {c}");
        assert_eq!(cl.received, 60_000);
        assert_eq!(
            cl.mp.subflows().len(),
            2,
            "client {c}: the join found its session"
        );
    }
    let st = lab.worker_stats();
    let created: Vec<u64> = st.iter().map(|w| w.conv.sessions_created.get()).collect();
    assert_eq!(created.iter().sum::<u64>(), 12);
    assert!(
        created.iter().all(|&n| n > 0),
        "sessions on both workers: {created:?}"
    );
    let joins: u64 = st.iter().map(|w| w.conv.joins_accepted.get()).sum();
    assert_eq!(joins, 12, "every join accepted by its session's owner");
    let refused: u64 = st
        .iter()
        .map(|w| w.conv.joins_refused.get(JoinRefuse::UnknownToken as usize))
        .sum();
    assert_eq!(refused, 0);
    let no_session: u64 = st.iter().map(|w| w.conv.segments_no_session.get()).sum();
    assert_eq!(
        no_session, 0,
        "no subflow packet was taken for a stranger's"
    );
    assert!(drained(&mut lab), "both tables drain");
    lab
}

#[test]
fn two_workers_hand_joins_and_replies_to_the_owner() {
    two_workers(CONV, 21, 0);
    let mut lab = ConvLab::with_workers(CONV, 22, 2);
    let c = lab.connect(5201, Workload::echo(10_000, true));
    assert!(lab.run_until(20 * SEC, |l| l.clients[c].finished()));
    assert_eq!(lab.server.sources, vec![IpAddr::V4(FIXED)]);
}

#[test]
fn two_workers_with_a_pool_hand_replies_by_port_block() {
    two_workers(
        &CONV.replace(
            "source = \"subscriber-fixed\"",
            "source = \"pool\"\npool = \"203.0.113.0/28\"\nports_per_subscriber = 256",
        ),
        23,
        0,
    );
}

#[test]
fn with_rss_known_the_servers_replies_arrive_on_the_owner() {
    // DESIGN.md §4: NAT ports picked by the Toeplitz hash of the reply
    // tuple, so the server side needs no handoff; without RSS (a hash
    // hagw does not know) replies are handed over
    for conf in [
        CONV.to_string(),
        CONV.replace(
            "source = \"subscriber-fixed\"",
            "source = \"pool\"\npool = \"203.0.113.0/28\"\nports_per_subscriber = 256",
        ),
    ] {
        let lab = two_workers_run(ConvLab::with_rss(&conf, 25, 2));
        assert_eq!(lab.handed_from_internet, 0, "{conf}");
        let lab = two_workers(&conf, 25, 0);
        assert!(lab.handed_from_internet > 0, "{conf}");
    }
}

/// RFC 1191 on the client subflows: a link on the accesses narrower than
/// hagw's ports drops hagw's full-size segments and says so; each subflow
/// takes the MTU it is told and the transfers complete. On two workers the
/// errors all land on one (RSS spreads ICMP by its addresses, not by the
/// flow it quotes), which hands those about the other's subflows to it
/// (found in the flow directory: a joined subflow lives on its session's
/// worker, whatever its tuple hashes to).
#[test]
fn fragmentation_needed_from_the_accesses_reaches_each_subflows_owner() {
    for workers in [1, 2] {
        let mut lab = ConvLab::with_workers(CONV, 41, workers);
        lab.access_mtu = 1280;
        let ids: Vec<usize> = (0..12)
            .map(|_| lab.connect(5201, Workload::echo(60_000, true)))
            .collect();
        assert!(
            lab.run_until(30 * SEC, |l| ids.iter().all(|&c| l.clients[c].finished())),
            "{workers} worker(s): every transfer completes"
        );
        for &c in &ids {
            let cl = &lab.clients[c];
            assert!(!cl.refused && !cl.corrupt, "client {c}");
            assert_eq!(cl.received, 60_000, "client {c}");
        }
        assert!(lab.frag_needed_sent > 0, "the access dropped segments");
        let st = lab.worker_stats();
        let created: Vec<u64> = st.iter().map(|w| w.conv.sessions_created.get()).collect();
        let lowered: Vec<u64> = st.iter().map(|w| w.conv.path_mtu_lowered.get()).collect();
        assert!(
            created.iter().all(|&n| n > 0) && lowered.iter().all(|&n| n > 0),
            "{workers} worker(s), sessions {created:?}, MSS lowered {lowered:?}"
        );
        assert!(drained(&mut lab), "{workers} worker(s): the tables drain");
    }
}

/// RFC 5508 §4.2 on two workers: an ICMP error about a withdrawn
/// connection's packet reaches the worker of that connection (all errors
/// land on one: RSS spreads ICMP by its addresses) and is NATed there
/// toward the end that sent the quoted packet. Up: a link beyond the
/// internet port narrower than the client's segments; its router's error
/// (to the NAT address) goes to the client, quoting the client's own
/// address and port. Down: the same on the accesses, about the server's
/// echo; the error goes to the server from the NAT address, quoting the
/// NAT address. (The lab's clients and server do no path MTU discovery:
/// the errors themselves are checked.)
#[test]
fn icmp_errors_about_withdrawn_connections_are_natted_on_their_worker() {
    use nf_core::wire::{icmpv4, ipv4};
    let conf = conv_with("withdraw = \"if-server-capable\"");
    for up in [true, false] {
        let mut lab = ConvLab::with_workers(&conf, 43, 2);
        lab.server.mptcp_ports.push(5202);
        if up {
            lab.internet_mtu = 1000;
        } else {
            lab.access_mtu = 1000;
        }
        let ids: Vec<usize> = (0..12)
            .map(|_| lab.connect(5202, Workload::echo(20_000, true)))
            .collect();
        lab.run_until(3 * SEC, |_| false);
        let what = if up { "up" } else { "down" };
        let st = lab.worker_stats();
        let withdrawn: Vec<u64> = st.iter().map(|w| w.conv.sessions_withdrawn.get()).collect();
        let translated: Vec<u64> = st.iter().map(|w| w.conv.icmp_translated.get()).collect();
        assert!(lab.frag_needed_sent > 0, "{what}: nothing was too big");
        assert!(
            withdrawn.iter().all(|&n| n > 0) && translated.iter().all(|&n| n > 0),
            "{what}: withdrawn {withdrawn:?}, ICMP errors translated {translated:?}"
        );
        let clients: Vec<(std::net::Ipv4Addr, u16)> = ids
            .iter()
            .flat_map(|&c| lab.clients[c].endpoints())
            .collect();
        let mut seen = 0;
        for (port, e) in &lab.icmp_seen {
            let outer = ipv4::Packet::new_checked(&e[..]).unwrap();
            assert!(outer.verify_checksum());
            let icmp = icmpv4::Packet::new_checked(&e[20..]).unwrap();
            assert!(icmp.verify_checksum(), "{what}: the ICMP checksum follows");
            let q = ipv4::Packet::new_unchecked(&e[28..]);
            assert!(
                q.verify_checksum(),
                "{what}: the quoted header's checksum follows"
            );
            let (qs, qd) = (q.src_addr(), q.dst_addr());
            let ports = |at: usize| u16::from_be_bytes([e[at], e[at + 1]]);
            let (qsp, qdp) = (ports(48), ports(50));
            if up {
                // to the client, about what it sent, as it sent it
                assert_ne!(*port, 2, "{what}: an error went back to the internet");
                assert_eq!(outer.dst_addr(), qs);
                assert!(
                    clients.contains(&(qs, qsp)),
                    "{what}: {qs}:{qsp} is no client's"
                );
                assert_eq!((qd, qdp), (SERVER, 5202));
            } else {
                // to the server from the NAT address, about what it sent
                assert_eq!(*port, 2, "{what}: an error went to a client");
                assert_eq!((outer.src_addr(), outer.dst_addr()), (FIXED, SERVER));
                assert_eq!((qs, qsp), (SERVER, 5202));
                assert_eq!(qd, FIXED, "{what}: the quote names the NAT address");
            }
            seen += 1;
        }
        assert!(seen > 0, "{what}: no translated error left hagw");
    }
}

#[test]
fn handed_over_subflows_are_forgotten_once_quiet_for_the_idle_time() {
    let conf = conv_with("idle_timeout_s = 2");
    let mut lab = ConvLab::with_workers(&conf, 28, 2);
    // one frame in 7 lands on the other worker's queue
    lab.stray = 7;
    let hold = Workload::held(5_000, true);
    let ids: Vec<usize> = (0..12).map(|_| lab.connect(5201, hold)).collect();
    assert!(lab.run_until(10 * SEC, |l| ids
        .iter()
        .all(|&c| l.clients[c].received == 5_000)));
    assert!(redirects(&lab) > 0, "subflows were handed over");
    // quiet for the idle time (looked at again at most that much later)
    let t = lab.now;
    assert!(lab.run_until(5 * SEC, |l| redirects(l) == 0));
    assert!(lab.now > t + 2 * SEC);
}

#[test]
fn two_workers_under_a_join_flood_keep_no_state_for_made_up_tokens() {
    let mut lab = ConvLab::with_workers(CONV, 26, 2);
    for k in 0..400u32 {
        let join = MptcpOption::JoinSyn {
            backup: false,
            addr_id: 1,
            token: k.wrapping_mul(0x9e37_79b9),
            nonce: k,
        };
        let seg = to_server(
            20000 + k as u16,
            k,
            0,
            nf_core::wire::tcp::flags::SYN,
            Some(join),
        );
        lab.inject(1, IpAddr::V4(CELL), IpAddr::V4(SERVER), &seg);
    }
    lab.step(100_000);
    let st = lab.worker_stats();
    let refused: u64 = st
        .iter()
        .map(|w| w.conv.joins_refused.get(JoinRefuse::UnknownToken as usize))
        .sum();
    assert_eq!(refused, 400, "each refused by the worker its token names");
    assert!(st.iter().map(|w| w.conv.handoffs.get()).sum::<u64>() > 0);
    assert_eq!(redirects(&lab), 0, "no state for subflows nobody accepted");
    // and real clients still get through, cellular subflow included
    let ids: Vec<usize> = (0..6)
        .map(|_| lab.connect(5201, Workload::echo(20_000, true)))
        .collect();
    assert!(lab.run_until(20 * SEC, |l| ids.iter().all(|&c| l.clients[c].finished())));
    for &c in &ids {
        assert!(!lab.clients[c].refused && !lab.clients[c].corrupt);
        assert_eq!(lab.clients[c].mp.subflows().len(), 2);
    }
}

#[test]
fn two_workers_each_list_their_own_sessions() {
    let mut lab = ConvLab::with_workers(CONV, 27, 2);
    let hold = Workload::held(5_000, true);
    let ids: Vec<usize> = (0..8).map(|_| lab.connect(5201, hold)).collect();
    assert!(lab.run_until(10 * SEC, |l| ids
        .iter()
        .all(|&c| l.clients[c].received == 5_000)));
    // GET /sessions asks every worker; each lists what it owns
    for w in lab.worker_stats() {
        w.want_sessions(100);
    }
    // a poll to scan each table, one to build the entries
    lab.step(100_000);
    lab.step(100_000);
    let mut per_worker = Vec::new();
    for (i, w) in lab.worker_stats().iter().enumerate() {
        let l = w.sessions.lock().expect("list");
        assert!(l.iter().all(|s| s.worker == i), "worker {i}");
        per_worker.push(l.len());
    }
    assert_eq!(per_worker.iter().sum::<usize>(), 8, "{per_worker:?}");
    assert!(per_worker.iter().all(|&n| n > 0), "{per_worker:?}");
}

#[test]
fn two_workers_find_the_owner_of_packets_that_stray_to_the_other_queue() {
    // one frame in 7 lands on the other worker's queue: subflows set up
    // there are found in the shared directory, not reset
    two_workers(CONV, 24, 7);
}

#[test]
fn many_short_connections_all_complete_and_the_table_drains() {
    let mut lab = ConvLab::new(CONV, 10);
    for round in 0..5 {
        for _ in 0..40 {
            lab.connect(5201, Workload::echo(2000, true));
        }
        assert!(
            lab.run_until(20 * SEC, |l| l.clients.iter().all(|c| c.finished())),
            "round {round}"
        );
        assert!(lab.clients.iter().all(|c| !c.refused && !c.corrupt));
        lab.reap();
    }
    assert!(
        drained(&mut lab),
        "{:?}",
        lab.stats().sessions.lock().map(|l| l.first().cloned())
    );
    let st = &lab.stats().conv;
    assert_eq!(st.sessions_created.get(), 200);
    assert_eq!(st.sessions_closed.get(), 200);
    assert_eq!(st.subflows.get(0) + st.subflows.get(1), 0);
}

/// The server's end reaches the client with the echo: hagw's DATA_FIN
/// leaves with the last data (RFC 8684 §3.3.3), not on its retransmission
/// timer 200 ms later (which held every short connection that long, and
/// left it open to a late RST of the server).
#[test]
fn a_short_connection_ends_without_waiting_for_a_timer() {
    let mut lab = ConvLab::new(CONV, 10);
    // the server's last data and its FIN reach hagw together
    lab.server.reply_at_end_ports.push(5201);
    let c = lab.connect(5201, Workload::echo_shut(2000, false));
    assert!(
        lab.run_until(50 * MS, |l| l.clients[c].finished()),
        "not finished after 50 ms: {}",
        lab.clients[c].mp.describe()
    );
    assert!(!lab.clients[c].refused && !lab.clients[c].corrupt);
}

/// A client that closed second holds no TIME-WAIT and may reuse its port at
/// once (Linux did within 100 ms in the lab), while hagw's subflow on that
/// tuple still waits out its own. RFC 6191: the new SYN, its timestamp
/// newer, opens a new session; it is not answered with the old one's ACK
/// until the TIME-WAIT ends.
#[test]
fn a_client_reusing_its_port_over_a_time_wait_gets_a_new_session() {
    let mut lab = ConvLab::new(CONV, 12);
    let a = lab.connect(5201, Workload::echo(2000, false));
    assert!(lab.run_until(SEC, |l| l.clients[a].finished()));
    assert_eq!(lab.sessions(), 1, "the old session waits out TIME-WAIT");
    let b = lab.reconnect(a, Workload::held(3000, false));
    assert!(
        lab.run_until(SEC, |l| l.clients[b].received == 3000),
        "{}",
        lab.clients[b].mp.describe()
    );
    assert!(!lab.clients[b].refused && !lab.clients[b].corrupt);
    assert_eq!(lab.stats().conv.subflows_reopened.get(), 1);
    assert_eq!(lab.stats().conv.sessions_created.get(), 2);
    // the old session ends (its TIME-WAITs over) and leaves the tuple to
    // the new one, which then closes as usual
    lab.run_until(3 * SEC, |_| false);
    assert_eq!(lab.sessions(), 1);
    lab.clients[b].mp.close();
    assert!(lab.run_until(SEC, |l| l.clients[b].mp.data_closed()));
    assert!(drained(&mut lab));
    assert_eq!(lab.stats().conv.sessions_closed.get(), 2);
    assert_eq!(lab.stats().conv.segments_after_close.get(), 0);
}

#[test]
fn an_idle_session_is_reset_on_both_sides_after_the_timeout() {
    let conf = conv_with("idle_timeout_s = 2");
    let mut lab = ConvLab::new(&conf, 11);
    let c = lab.connect(5201, Workload::held(5000, true));
    assert!(lab.run_until(5 * SEC, |l| l.clients[c].received == 5000));
    assert_eq!(lab.sessions(), 1);
    // silence: after the idle timeout hagw resets the server side and
    // fast-closes the client's connection (RFC 8684 §3.5)
    assert!(lab.run_until(10 * SEC, |l| l.sessions() == 0));
    assert_eq!(lab.stats().conv.sessions_timed_out.get(), 1);
    assert!(lab.run_until(2 * SEC, |l| l.clients[c].mp.is_closed()));
    assert!(
        lab.clients[c].mp.stats().fastcloses_rx == 1 || lab.clients[c].mp.stats().tcprst_rx > 0
    );
}

#[test]
fn an_idle_sweep_over_many_sessions_is_spread_over_polls() {
    // more sessions than one poll looks at: each poll resets at most a
    // batch (the worker never stalls on a big table), and within the
    // second after the timeout every one of them is gone
    let n = 3 * crate::convert::SWEEP_BATCH;
    let conf = conv_with("idle_timeout_s = 2\nmax_sessions = 100000");
    let mut lab = ConvLab::new(&conf, 13);
    held_sessions(&mut lab, n, |c| c.received == 100);
    assert_eq!(lab.sessions(), n);
    let quiet_since = lab.now;
    // the first sweep that finds them idle
    let timed_out = |l: &ConvLab| l.stats().conv.sessions_timed_out.get() as usize;
    while timed_out(&lab) == 0 {
        lab.now += SEC / 100;
        lab.pipe.poll_conversion(lab.now);
    }
    assert!(lab.now > quiet_since + 2 * SEC);
    assert!(timed_out(&lab) <= crate::convert::SWEEP_BATCH);
    assert!(lab.run_until(2 * SEC, |l| l.sessions() == 0));
    assert_eq!(timed_out(&lab), n);
}

#[test]
fn a_sessions_listing_of_a_big_table_is_spread_over_polls() {
    use std::sync::atomic::Ordering::Relaxed;
    // the ids of the listing a worker published last
    let listed = |w: &crate::stats::WorkerStats| -> Vec<u64> {
        w.sessions
            .lock()
            .map(|l| l.iter().map(|s| s.id).collect())
            .unwrap_or_default()
    };
    let mut lab = ConvLab::new(&conv_with("max_sessions = 100000"), 14);
    held_sessions(&mut lab, 36 * 32, |c| c.received == 100);
    let n = lab.sessions();
    assert_eq!(n, 36 * 32);
    let w = std::sync::Arc::clone(&lab.pipe.stats);
    w.want_sessions(5);
    let now = lab.now;
    // 1,152 slots: two polls to scan, one to build the 5 entries
    let mut polls = 0;
    while w.sessions_wanted.load(Relaxed) && polls < 10 {
        lab.pipe.poll_conversion(now);
        polls += 1;
    }
    assert_eq!(polls, 3);
    let w = lab.stats();
    assert!(!w.sessions_wanted.load(Relaxed));
    assert_eq!(w.sessions_total.load(Relaxed), n);
    let five = listed(w);
    assert_eq!(five.len(), 5);
    assert!(
        five.windows(2).all(|p| p[0] < p[1]),
        "oldest first: {five:?}"
    );
    // a deeper page: the 100 entries are built 32 per poll
    let w = std::sync::Arc::clone(&lab.pipe.stats);
    w.want_sessions(100);
    let mut polls = 0;
    while w.sessions_wanted.load(Relaxed) && polls < 20 {
        lab.pipe.poll_conversion(now);
        polls += 1;
    }
    assert_eq!(polls, 2 + 4);
    let hundred = listed(&w);
    assert_eq!(hundred.len(), 100);
    // the whole table: the pages above are its oldest (sessions were
    // created in id order)
    w.want_sessions(n);
    while w.sessions_wanted.load(Relaxed) {
        lab.pipe.poll_conversion(now);
    }
    let mut all = listed(&w);
    assert_eq!(all.len(), n);
    all.sort_unstable();
    assert_eq!(five, all[..5]);
    assert_eq!(hundred, all[..100]);
}

#[test]
fn config_refuses_what_the_conversion_point_cannot_do_yet() {
    let text = format!(
        "{}\n[workers]\nlcores = [1, 2]\n[conversion]\nenabled = true\ninterception = [\"implicit\", \"explicit\"]\n",
        crate::testkit::LAB3
    );
    let err = match crate::config::parse("c.toml", &text) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    // several workers are fine (DESIGN.md §4); explicit mode is not
    assert!(!err.contains("key `workers.lcores`"), "{err}");
    assert!(err.contains("key `conversion.interception`"), "{err}");
    assert!(err.contains("not built yet"), "{err}");
}

#[test]
fn a_port_going_down_withdraws_its_advertised_address() {
    let conf = conv_with("advertise = [\"2001:db8:c::1\"]");
    let mut lab = ConvLab::new(&conf, 12);
    let c = lab.connect(5201, Workload::held(5000, false));
    assert!(lab.run_until(5 * SEC, |l| l.clients[c].mp.stats().add_addr_rx == 1));
    // cel1 (port 1) carries 2001:db8:c::1: REMOVE_ADDR reaches the client
    lab.pipe.set_port_up(1, false);
    assert!(lab.run_until(5 * SEC, |l| l.clients[c].mp.stats().remove_addr_rx == 1));
    // and back up: announced again
    lab.pipe.set_port_up(1, true);
    assert!(lab.run_until(5 * SEC, |l| l.clients[c].mp.stats().add_addr_rx == 2));
    assert!(!lab.clients[c].corrupt);
}

#[test]
fn a_port_going_down_is_told_to_many_sessions_a_batch_per_poll() {
    // the moment a port fails, REMOVE_ADDR goes to every session, but a
    // batch per poll: no stall, no burst beyond the TX queue
    let conf = conv_with("advertise = [\"2001:db8:c::1\"]\nmax_sessions = 100000");
    let mut lab = ConvLab::new(&conf, 15);
    let ids = held_sessions(&mut lab, 24 * 32, |c| {
        c.received == 100 && c.mp.stats().add_addr_rx == 1
    });
    assert_eq!(lab.sessions(), 3 * crate::convert::SWEEP_BATCH);
    lab.run_until(SEC / 10, |_| false);
    lab.pipe.set_port_up(1, false);
    let now = lab.now;
    lab.pipe.poll_conversion(now);
    let queued = lab.pipe.tx_queue(0).map_or(0, |q| q.len());
    assert!(
        queued > 0 && queued <= crate::convert::SWEEP_BATCH,
        "{queued} frames in one poll"
    );
    assert!(lab.run_until(2 * SEC, |l| ids.iter().all(|&c| l.clients[c]
        .mp
        .stats()
        .remove_addr_rx
        == 1)));
    assert_eq!(lab.stats().drops_of(crate::stats::Drop::TxQueueFull), 0);
}

#[test]
fn an_icmp_unreachable_for_the_syn_reaches_the_client_as_the_same_answer() {
    let mut lab = ConvLab::new(CONV, 13);
    lab.server.unreachable_ports.push(5998);
    let c = lab.connect(5998, Workload::echo(1000, false));
    assert!(lab.run_until(SEC, |l| l.icmp_to_clients > 0));
    assert_eq!(
        lab.stats()
            .conv
            .refused
            .get(Refuse::ServerUnreachable as usize),
        1
    );
    assert!(drained(&mut lab));
    assert!(!lab.clients[c].mp.is_established());
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    /// A TCP segment from `src:sport` to `dst:dport` with these fields and
    /// raw option bytes (valid checksum: it reaches the engines).
    #[allow(clippy::too_many_arguments)]
    fn segment(
        flags: u16,
        seq: u32,
        ack: u32,
        mptcp: &[u8],
        payload: usize,
        sport: u16,
        dport: u16,
    ) -> nf_tcp::Segment<Bytes> {
        let mut h = nf_tcp::Header {
            src_port: sport,
            dst_port: dport,
            seq: nf_tcp::Seq(seq),
            ack: nf_tcp::Seq(ack),
            flags,
            window: 4096,
            ..Default::default()
        };
        h.opts.mptcp = nf_tcp::RawOpt::new(mptcp);
        nf_tcp::Segment {
            hdr: h,
            payload: if payload == 0 {
                nf_tcp::Gather::default()
            } else {
                nf_tcp::Gather::one(Bytes::new(vec![0x5a; payload]))
            },
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Hostile segments on a live session's tuples, from both sides and
        /// on both accesses (random flags, sequence numbers, MPTCP option
        /// bytes — MP_JOIN with random tokens, malformed DSS, FASTCLOSE):
        /// no panic, and the honest client still completes its transfer.
        #[test]
        fn hostile_segments_never_break_the_gateway(
            segs in proptest::collection::vec(
                (0u16..0x40, any::<u32>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..24), 0usize..1500, 0u8..4),
                1..40)
        ) {
            let mut lab = ConvLab::new(CONV, 21);
            let c = lab.connect(5201, Workload::echo(100_000, true));
            prop_assert!(lab.run_until(5 * SEC, |l| l.clients[c].mp.subflows().len() == 2 && l.clients[c].received > 0));
            for (flags, seq, ack, mut opt, payload, who) in segs {
                // a plausible MPTCP option header half of the time
                if opt.len() >= 3 && seq % 2 == 0 {
                    opt[0] = 30;
                    opt[1] = opt.len() as u8;
                }
                let (port, src, dst, sport, dport) = match who {
                    // the honest client's tuples (fixed, then cellular)
                    0 => (0, FIXED, SERVER, 40000, 5201),
                    1 => (1, CELL, SERVER, 60000, 5201),
                    // a stranger on the cellular access (new SYNs, joins)
                    2 => (1, CELL, SERVER, 45000 + (seq % 7) as u16, 5201),
                    // the server side toward the NAT address
                    _ => (2, SERVER, FIXED, 5201, 40000),
                };
                let s = segment(flags, seq, ack, &opt, payload, sport, dport);
                lab.inject(port, std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst), &s);
                lab.step(100_000);
            }
            // the gateway still works for a newcomer
            let d = lab.connect(5201, Workload::echo(20_000, true));
            prop_assert!(lab.run_until(20 * SEC, |l| l.clients[d].finished()));
            prop_assert!(!lab.clients[d].refused && !lab.clients[d].corrupt);
        }
    }
}

#[test]
fn a_syn_flood_from_one_address_does_not_lock_out_the_others() {
    let mut lab = ConvLab::new(CONV, 14);
    // 200 MP_CAPABLE SYNs from the cellular address that never go further
    for k in 0..200u16 {
        lab.inject(1, IpAddr::V4(CELL), IpAddr::V4(SERVER), &flood_syn(k));
        lab.step(100_000);
    }
    let st = &lab.stats().conv;
    assert_eq!(st.sessions_created.get(), 64, "per-address half-open cap");
    assert_eq!(st.refused.get(Refuse::HalfOpenLimit as usize), 136);
    // the fixed line still gets through
    let c = lab.connect(5201, Workload::echo(20_000, true));
    assert!(lab.run_until(10 * SEC, |l| l.clients[c].finished()));
    assert!(!lab.clients[c].refused && !lab.clients[c].corrupt);
    // the flood's sessions give up after the SYN/ACK retries
    assert!(drained(&mut lab), "{} left", lab.sessions());
}

#[test]
fn the_weighted_scheduler_splits_downstream_bytes_as_configured() {
    let conf = conv_with("scheduler = \"weighted\"\nweights = [1, 3]");
    let mut lab = ConvLab::new(&conf, 15);
    let c = lab.connect(5201, Workload::echo(2_000_000, true));
    assert!(lab.run_until(60 * SEC, |l| l.clients[c].finished()));
    let st = &lab.stats().conv;
    let (f, cell) = (
        st.tx_bytes.get(crate::stats::Side::Fixed as usize) as f64,
        st.tx_bytes.get(crate::stats::Side::Cellular as usize) as f64,
    );
    let share = cell / (f + cell);
    println!("cellular share of downstream bytes: {share:.2}");
    assert!((0.6..0.9).contains(&share), "cellular share {share:.2}");
}

#[test]
fn a_subscriber_is_capped_at_its_own_session_limit() {
    // the table (65536) stays open to everyone else
    let conf = conv_with("max_sessions_per_subscriber = 3");
    let mut lab = ConvLab::new(&conf, 16);
    let held: Vec<usize> = (0..4)
        .map(|_| lab.connect(5201, Workload::held(1000, false)))
        .collect();
    assert!(lab.run_until(5 * SEC, |l| held
        .iter()
        .all(|&c| l.clients[c].refused || l.clients[c].received == 1000)));
    assert_eq!(held.iter().filter(|&&c| lab.clients[c].refused).count(), 1);
    assert_eq!(
        lab.stats()
            .conv
            .refused
            .get(Refuse::SubscriberLimit as usize),
        1
    );
    assert_eq!(lab.sessions(), 3);
}

#[test]
fn a_spoofed_syn_flood_gets_syn_cookies_and_real_clients_get_through() {
    // a table of 256: a half-open budget of 64, then SYN cookies
    let conf = conv_with("max_sessions = 256");
    let mut lab = ConvLab::new(&conf, 17);
    let flood = |lab: &mut ConvLab, k: u16| {
        // spoofed sources on the fixed access, one SYN each
        let src = std::net::Ipv4Addr::new(192, 0, 2, 10 + (k % 200) as u8);
        lab.inject(0, IpAddr::V4(src), IpAddr::V4(SERVER), &flood_syn(k));
    };
    for k in 0..300u16 {
        flood(&mut lab, k);
        lab.step(100_000);
    }
    let st = &lab.stats().conv;
    assert!(
        st.syn_cookies_sent.get() >= 200,
        "{}",
        st.syn_cookies_sent.get()
    );
    // the cookies cost no state: the table holds the budget's 64
    assert_eq!(lab.sessions(), 64);
    // mid-flood (one more SYN every 100 us), a real client connects with a
    // cookie and completes its transfer, cellular subflow included
    let c = lab.connect(5201, Workload::echo(200_000, true));
    let mut k = 300u16;
    while !lab.clients[c].finished() && k < 30000 {
        flood(&mut lab, k);
        lab.step(100_000);
        k += 1;
    }
    assert!(lab.clients[c].finished(), "after {} flood SYNs", k - 300);
    let cl = &lab.clients[c];
    assert!(!cl.refused && !cl.corrupt);
    assert_eq!(cl.received, 200_000);
    assert_eq!(cl.mp.subflows().len(), 2, "the cellular subflow joined");
    // the cookie kept the client's window scale and SACK in our TSval: the
    // client sees hagw's window scale on its first subflow
    assert!(cl.mp.subflows()[0].tcp.peer_window_shift() > 0);
    let st = &lab.stats().conv;
    assert_eq!(st.syn_cookies_accepted.get(), 1);
    assert_eq!(st.syn_cookies_invalid.get(), 0);
    assert!(lab.sessions() <= 256);
    // the server saw the subscriber's fixed address, as for any session
    assert!(lab.server.sources.iter().all(|a| *a != IpAddr::V4(CELL)));
}

#[test]
fn an_ack_with_a_forged_cookie_opens_nothing() {
    let conf = conv_with("max_sessions = 64");
    let mut lab = ConvLab::new(&conf, 22);
    let ack = to_server(
        41000,
        1001,
        0x1234_5678,
        nf_core::wire::tcp::flags::ACK,
        Some(MptcpOption::Capable {
            version: 1,
            flags: nf_mptcp::options::CapFlags(nf_mptcp::options::CapFlags::H),
            sender_key: Some(7),
            receiver_key: Some(8),
            data_len: None,
            checksum: None,
        }),
    );
    lab.inject(0, IpAddr::V4(FIXED), IpAddr::V4(SERVER), &ack);
    lab.pipe.poll_conversion(lab.now);
    let st = &lab.stats().conv;
    assert_eq!(st.syn_cookies_invalid.get(), 1);
    assert_eq!(st.segments_no_session.get(), 1, "answered with a RST");
    assert_eq!(lab.sessions(), 0);
    assert_eq!(
        lab.pipe.tx_queue(2).map_or(0, |q| q.len()),
        0,
        "nothing to the server"
    );
}

#[test]
fn a_client_that_never_reads_keeps_memory_within_the_session_budget() {
    let buf = 256 * 1024;
    let conf = conv_with(&format!("session_buffer_bytes = {buf}"));
    let mut lab = ConvLab::new(&conf, 18);
    let c = lab.connect(
        5201,
        Workload {
            up: 60_000_000,
            join: true,
            hold: true,
            deaf: true,
            shut: false,
        },
    );
    // the echo comes back but the client never reads it: every window
    // along the way closes
    lab.run_until(10 * SEC, |_| false);
    let held = lab.stats().conv.splice_queue_bytes.get() as usize;
    println!(
        "held {held} B for a {buf} B budget; client sent {}",
        lab.clients[c].sent
    );
    assert!(held > 0, "data is waiting");
    assert!(held <= 4 * buf + 2 * 64 * 1024, "held {held} B");
    // what the client could queue: its own send buffer, the server's
    // buffers and hagw's, never the whole 60 MB
    assert!(
        lab.clients[c].sent < 30_000_000,
        "flow control held the client back"
    );
    assert_eq!(lab.sessions(), 1);
}

#[test]
fn late_client_packets_of_an_ended_session_never_reach_the_server() {
    let mut lab = ConvLab::new(CONV, 19);
    let c = lab.connect(5201, Workload::echo(5000, true));
    assert!(lab.run_until(10 * SEC, |l| l.clients[c].finished()));
    assert!(drained(&mut lab));
    let before = lab.server.sources.len();
    // a stray ACK on the ended connection's fixed tuple, then on its cellular one
    for (port, src, sport) in [(0u16, FIXED, 40000u16), (1, CELL, 60000)] {
        let seg = to_server(sport, 1, 1, nf_core::wire::tcp::flags::ACK, None);
        lab.inject(port, IpAddr::V4(src), IpAddr::V4(SERVER), &seg);
    }
    let to_server = lab.pipe.tx_queue(2).map_or(0, |q| q.len());
    assert_eq!(to_server, 0, "nothing forwarded toward the server");
    assert_eq!(lab.stats().conv.segments_after_close.get(), 2);
    assert_eq!(lab.server.sources.len(), before);
    // the tombstones (one per client tuple) go after their 30 s, one by
    // one as their time comes, with no sweep of the table
    let tombs = |l: &ConvLab| l.pipe.converter().map_or(0, |c| c.tombstones());
    assert_eq!(tombs(&lab), 2);
    assert!(lab.run_until(31 * SEC, |l| tombs(l) == 0));
}

#[test]
fn a_new_connection_on_an_ended_sessions_tuple_takes_the_place_of_its_tombstone() {
    let mut lab = ConvLab::new(CONV, 19);
    let c = lab.connect(5201, Workload::echo(5000, true));
    assert!(lab.run_until(10 * SEC, |l| l.clients[c].finished()));
    assert!(drained(&mut lab));
    let tombs = |l: &ConvLab| l.pipe.converter().map_or(0, |c| c.tombstones());
    assert_eq!(tombs(&lab), 2);
    // the subscriber opens a new connection from the fixed tuple of the
    // ended one: a new session, no longer a tombstone
    let syn = to_server(
        40000,
        7,
        0,
        nf_core::wire::tcp::flags::SYN,
        Some(mp_capable_syn_option()),
    );
    lab.inject(0, IpAddr::V4(FIXED), IpAddr::V4(SERVER), &syn);
    lab.pipe.poll_conversion(lab.now);
    assert_eq!(lab.sessions(), 1);
    assert_eq!(tombs(&lab), 1, "the cellular tuple's is left");
    let syns = lab.pipe.tx_queue(2).map_or(0, |q| q.len());
    assert_eq!(syns, 1, "the SYN goes to the server");
    assert_eq!(lab.stats().conv.segments_after_close.get(), 0);
    // the other tombstone still goes at its time
    assert!(lab.run_until(31 * SEC, |l| tombs(l) == 0));
}

#[test]
fn an_mptcp_segment_of_no_session_is_reset_not_routed() {
    // hagw restarted: a client's subflow of a session it no longer knows
    // sends a FIN (with its DSS). Routed, it would show the server the
    // cellular address; it gets a RST instead. Plain TCP still routes.
    let mut lab = ConvLab::new(CONV, 20);
    let dss = MptcpOption::Dss {
        data_fin: false,
        data_ack: Some(77),
        ack64: true,
        mapping: None,
    };
    let fin = nf_core::wire::tcp::flags::FIN | nf_core::wire::tcp::flags::ACK;
    let seg = to_server(34027, 1000, 5000, fin, Some(dss));
    lab.inject(1, IpAddr::V4(CELL), IpAddr::V4(SERVER), &seg);
    lab.pipe.poll_conversion(lab.now);
    assert_eq!(lab.pipe.tx_queue(2).map_or(0, |q| q.len()), 0, "not routed");
    assert_eq!(lab.stats().conv.segments_no_session.get(), 1);
    let rst = lab
        .pipe
        .tx_queue(1)
        .and_then(|q| q.first().cloned())
        .expect("a RST toward the client");
    let ip = &nf_core::PacketBuf::data(&rst)[14..];
    let tcp = &ip[usize::from(ip[0] & 0x0f) * 4..];
    assert_eq!(u16::from_be_bytes([tcp[0], tcp[1]]), 5201);
    assert_eq!(u16::from_be_bytes([tcp[2], tcp[3]]), 34027);
    assert_eq!(
        u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        5000,
        "seq = its ACK"
    );
    assert_eq!(tcp[13] & 0x04, 0x04, "RST");
    // a plain TCP segment of no session is routed as before
    let plain = to_server(40100, 1000, 5000, nf_core::wire::tcp::flags::ACK, None);
    lab.inject(0, IpAddr::V4(FIXED), IpAddr::V4(SERVER), &plain);
    assert_eq!(lab.pipe.tx_queue(2).map_or(0, |q| q.len()), 1, "routed");
    assert_eq!(lab.stats().conv.segments_no_session.get(), 1);
}

#[test]
fn a_lab_that_skips_idle_time_converts_and_drains_the_same() {
    // the benchmark's mode: jumps to the next timer when nothing moves
    for skip in [false, true] {
        let mut lab = ConvLab::new(CONV, 21);
        lab.skip_idle = skip;
        let cs: Vec<usize> = (0..8)
            .map(|_| lab.connect(5201, Workload::echo(20_000, true)))
            .collect();
        assert!(lab.run_until(20 * SEC, |l| cs.iter().all(|&c| l.clients[c].finished())));
        assert!(cs
            .iter()
            .all(|&c| lab.clients[c].received == 20_000 && !lab.clients[c].corrupt));
        assert!(drained(&mut lab), "skip_idle {skip}");
        assert_eq!(lab.stats().conv.sessions_closed.get(), 8);
    }
}

#[test]
fn dss_checksums_asked_by_hagw_are_used_and_verified() {
    let conf = conv_with("dss_checksums = true");
    let mut lab = ConvLab::new(&conf, 23);
    let c = lab.connect(5201, Workload::echo(300_000, true));
    assert!(lab.run_until(20 * SEC, |l| l.clients[c].finished()));
    let cl = &lab.clients[c];
    assert!(cl.mp.checksums(), "the client follows hagw's A flag");
    assert!(!cl.refused && !cl.corrupt && cl.received == 300_000);
    assert_eq!(cl.mp.subflows().len(), 2);
    assert_eq!(cl.mp.stats().csum_failures, 0);
    assert!(!cl.mp.is_fallback());
}

#[test]
fn loss_on_the_accesses_is_recovered_and_counted_by_role() {
    let mut lab = ConvLab::new(CONV, 31);
    // one frame in 40 toward the client is lost
    lab.drop_to_clients = 40;
    let c = lab.connect(5201, Workload::echo(2_000_000, true));
    assert!(lab.run_until(120 * SEC, |l| l.clients[c].finished()));
    let cl = &lab.clients[c];
    assert!(!cl.refused && !cl.corrupt);
    assert_eq!(cl.received, 2_000_000, "every byte despite the loss");
    use crate::stats::Side;
    let st = &lab.stats().conv;
    let access = |set: &nf_core::counters::CounterSet<{ Side::COUNT }>| {
        set.get(Side::Fixed as usize) + set.get(Side::Cellular as usize)
    };
    println!(
        "retransmits {} timeouts {} fast recoveries {} probes {}; internet retransmits {}",
        access(&st.tcp_retransmits),
        access(&st.tcp_timeouts),
        access(&st.tcp_fast_recoveries),
        access(&st.tcp_loss_probes),
        st.tcp_retransmits.get(Side::Internet as usize)
    );
    assert!(access(&st.tcp_retransmits) > 0);
    assert!(access(&st.tcp_fast_recoveries) + access(&st.tcp_loss_probes) > 0);
    // the server's side lost nothing: hagw resent nothing toward it
    assert_eq!(st.tcp_retransmits.get(Side::Internet as usize), 0);
    assert_eq!(st.tcp_timeouts.get(Side::Internet as usize), 0);
}

mod icmp_quotes {
    use super::super::{icmp_quote, quote_v6};
    use proptest::prelude::*;

    /// An ICMPv4 fragmentation-needed quoting a TCP segment: its MTU, the
    /// quoted sequence number and the reply tuple (RFC 792, RFC 1191 §4).
    #[test]
    fn a_fragmentation_needed_quote_is_read() {
        let mut ip = vec![0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0];
        ip.extend([198, 51, 100, 2, 192, 0, 2, 2]);
        // ICMP: type 3 code 4, checksum, unused, next-hop MTU 1400
        ip.extend([3, 4, 0, 0, 0, 0, 0x05, 0x78]);
        // the quoted IPv4 header: 192.0.2.2 → 198.18.0.2, TCP
        ip.extend([0x45, 0, 5, 0xdc, 0, 0, 0x40, 0, 63, 6, 0, 0]);
        ip.extend([192, 0, 2, 2, 198, 18, 0, 2]);
        // ports 40000 → 5310, sequence number
        ip.extend([0x9c, 0x40, 0x14, 0xbe, 0xde, 0xad, 0xbe, 0xef]);
        let q = icmp_quote(&ip).expect("a quote");
        assert_eq!((q.kind, q.code, q.mtu, q.seq), (3, 4, 1400, 0xdead_beef));
        assert_eq!(q.key.sport, 5310);
        assert_eq!(q.key.dport, 40000);
        // the quote cut before the sequence number: nothing to check it by
        assert!(icmp_quote(&ip[..ip.len() - 1]).is_none());
    }

    /// The segment an ICMPv6 Packet Too Big quotes: the flow key of its
    /// sender (2001:db8:c::1:5320 → 2001:db8:c::2:40000) and its sequence
    /// number; a quote that is not TCP, or cut inside the TCP ports and
    /// sequence number, gives none.
    #[test]
    fn a_packet_too_big_quote_is_read() {
        let mut q = vec![0x60, 0, 0, 0, 0x05, 0xb4, 6, 64];
        q.extend(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 1).octets());
        q.extend(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 2).octets());
        q.extend([0x14, 0xc8, 0x9c, 0x40, 0x01, 0x02, 0x03, 0x04]);
        let (key, seq) = quote_v6(&q).expect("a quote");
        assert_eq!(seq, 0x0102_0304);
        assert_eq!((key.sport, key.dport), (40000, 5320));
        assert_eq!(key.dst.to_string(), "2001:db8:c::1");
        assert!(quote_v6(&q[..47]).is_none());
        q[6] = 17;
        assert!(quote_v6(&q).is_none());
    }

    proptest! {
        /// Arbitrary bytes as an ICMPv4 error or an ICMPv6 quote: an answer
        /// or none, never a panic.
        #[test]
        fn arbitrary_quotes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = icmp_quote(&b);
            let _ = quote_v6(&b);
        }

        /// The NAT of an ICMP error on arbitrary bytes: done or, when it
        /// cannot be, nothing changed; never a panic.
        #[test]
        fn arbitrary_icmp_errors_are_natted_or_left_alone(
            b in proptest::collection::vec(any::<u8>(), 0..160),
            src in any::<bool>(),
        ) {
            use crate::convert::rewrite::{icmp_error, End};
            let a = std::net::Ipv4Addr::new(100, 64, 0, 2);
            let a6: std::net::Ipv6Addr = "2001:db8:c::2".parse().unwrap();
            let (o, i) = if src { (End::Src, End::Dst) } else { (End::Dst, End::Src) };
            let mut c = b.clone();
            if !icmp_error(&mut c, (o, a.into()), (i, a.into(), 40000)) {
                prop_assert_eq!(&c, &b);
            }
            let mut c = b.clone();
            if !icmp_error(&mut c, (o, a6.into()), (i, a6.into(), 40000)) {
                prop_assert_eq!(&c, &b);
            }
        }
    }
}

/// An ICMP error hagw itself sends about a packet the NAT of routed
/// traffic translated (too big for the next link with DF, or its TTL
/// spent) goes to the host that sent it, quoting the packet as it sent
/// it (RFC 5508 §4.2): a cellular host behind the NAT learns the path
/// MTU. (LAB3's internet port has an MTU of 1,400.)
#[test]
fn hagws_own_icmp_errors_about_translated_packets_reach_their_sender() {
    use crate::testkit::{mac, CLI_MAC};
    use nf_core::wire::{icmpv4, ipv4};
    let mut lab = ConvLab::new(
        "[conversion]\nenabled = true\n[nat]\nsource = \"subscriber-fixed\"\n[[subscriber]]\nfixed = \"192.0.2.2\"\ncellular = [\"100.64.0.2\"]\n",
        1,
    );
    let server: std::net::Ipv4Addr = "198.51.100.2".parse().unwrap();
    let cell: std::net::Ipv4Addr = "100.64.0.2".parse().unwrap();
    for (len, ttl, want) in [(1514, 64, (3, 4)), (200, 1, (11, 0))] {
        let f = crate::frames::udp4(CLI_MAC, mac(2), cell, server, ttl, len);
        lab.pipe
            .process(lab.now, 1, nf_core::VecBuf::from_slice(&f));
        let out: Vec<Vec<u8>> = lab
            .pipe
            .tx_queue(1)
            .map(|q| q.drain(..).map(|b| b.frame()).collect())
            .unwrap_or_default();
        let err = out
            .iter()
            .find_map(|f| {
                let ip = ipv4::Packet::new_checked(&f[14..]).ok()?;
                let icmp = icmpv4::Packet::new_checked(ip.payload()).ok()?;
                Some((
                    ip.dst_addr(),
                    icmp.msg_type(),
                    icmp.msg_code(),
                    ip.payload()[8..].to_vec(),
                ))
            })
            .expect("an ICMP error back on the cellular port");
        assert_eq!(err.0, cell, "to the host that sent it");
        assert_eq!((err.1, err.2), want);
        let quote = ipv4::Packet::new_unchecked(&err.3[..]);
        assert_eq!(quote.src_addr(), cell, "the packet as the host sent it");
        assert_eq!(err.3[20..22], 40000u16.to_be_bytes(), "its own port");
        assert!(quote.verify_checksum());
    }
}
