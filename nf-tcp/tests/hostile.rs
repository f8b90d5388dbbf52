//! Hostile peers: a SYN flood against a capped half-open table (SYN cookies
//! keep legitimate clients working), and a peer that tries to make the
//! receiver hold unbounded memory.

mod harness;
use harness::*;
use nf_core::chunk::{Bytes, Chunk};
use nf_core::sim::{Rng, MS};
use nf_core::wire::tcp::flags as F;
use nf_tcp::{Config, Connection, FourTuple, Header, Incoming, Listener, Seq, State, SynAction};
use std::collections::HashMap;

#[test]
fn syn_flood_with_capped_table_legit_clients_still_connect() {
    let cfg = Config::default();
    let mut l = Listener::new(cfg, 64, [3; 32]);
    let mut half_open: HashMap<u16, Box<Connection<Bytes>>> = HashMap::new();
    let mut rng = Rng::new(9);
    let mut cookies = 0;
    let spoof = std::net::IpAddr::from([203, 0, 113, 66]);
    for i in 0..10_000u32 {
        let port = 1024 + (i % 60000) as u16;
        let t = FourTuple {
            local: B_IP,
            lport: 80,
            remote: spoof,
            rport: port,
        };
        let h = Header {
            src_port: port,
            dst_port: 80,
            seq: Seq(rng.next_u64() as u32),
            flags: F::SYN,
            window: 1000,
            ..Default::default()
        };
        match l.on_syn(
            i as u64 * MS,
            &t,
            &Incoming {
                hdr: h,
                payload: Bytes::empty(),
            },
            half_open.len(),
        ) {
            SynAction::Accept(c) => {
                half_open.insert(port, c);
            }
            SynAction::Cookie(s) => {
                cookies += 1;
                assert_eq!(s.hdr.flags, F::SYN | F::ACK);
            }
            SynAction::Drop => panic!("a SYN was dropped"),
        }
    }
    assert_eq!(half_open.len(), 64, "the table stays capped");
    assert_eq!(cookies, 10_000 - 64);

    // a real client during the flood: its SYN gets a cookie, its ACK makes
    // a connection, data flows
    let now = 10_000 * MS;
    let mut client: Connection<Bytes> = Connection::connect(cfg, 40000, 80, Seq(777));
    let syn = client.poll_transmit(now).expect("syn");
    let t = FourTuple {
        local: B_IP,
        lport: 80,
        remote: A_IP,
        rport: 40000,
    };
    let SynAction::Cookie(synack) = l.on_syn(
        now,
        &t,
        &Incoming {
            hdr: syn.hdr,
            payload: Bytes::empty(),
        },
        half_open.len(),
    ) else {
        panic!("expected a cookie")
    };
    client.handle_segment(
        now + MS,
        Incoming {
            hdr: synack.hdr,
            payload: Bytes::empty(),
        },
    );
    assert_eq!(client.state(), State::Established);
    client.send(Bytes::from(&b"GET / HTTP/1.0\r\n\r\n"[..]));
    let mut server = None;
    while let Some(s) = client.poll_transmit(now + MS) {
        let inc = Incoming {
            hdr: s.hdr,
            payload: Bytes::new(s.payload.to_vec()),
        };
        match &mut server {
            None => server = l.on_ack(now + MS, &t, &inc),
            Some(c) => Connection::handle_segment(c, now + MS, inc),
        }
    }
    let mut server = server.expect("the cookie ACK creates the connection");
    assert_eq!(server.state(), State::Established);
    let got: Vec<u8> = std::iter::from_fn(|| server.recv())
        .flat_map(|c| c.as_slice().to_vec())
        .collect();
    assert_eq!(got, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(l.stats().cookies_valid, 1);

    // a forged ACK (wrong cookie) creates nothing
    let forged = Header {
        src_port: 40001,
        dst_port: 80,
        seq: Seq(5),
        ack: Seq(12345),
        flags: F::ACK,
        ..Default::default()
    };
    let t2 = FourTuple { rport: 40001, ..t };
    assert!(l
        .on_ack::<Bytes>(
            now,
            &t2,
            &Incoming {
                hdr: forged,
                payload: Bytes::empty()
            }
        )
        .is_none());
    assert_eq!(l.stats().cookies_invalid, 1);
}

#[test]
fn hostile_sender_cannot_exceed_the_receive_budget() {
    let cfg = Config {
        recv_buffer: 64 * 1024,
        max_ooo_segments: 64,
        quickack_segments: 0,
        ..Config::default()
    };
    let mut c: Connection<Bytes> = Connection::connect(cfg, 40000, 80, Seq(1));
    c.poll_transmit(0);
    let mut h = Header {
        src_port: 80,
        dst_port: 40000,
        seq: Seq(100),
        ack: Seq(2),
        flags: F::SYN | F::ACK,
        window: 1000,
        ..Default::default()
    };
    h.opts.mss = Some(1460);
    h.opts.sack_perm = true;
    c.handle_segment(
        MS,
        Incoming {
            hdr: h,
            payload: Bytes::empty(),
        },
    );
    assert_eq!(c.state(), State::Established);
    let mut rng = Rng::new(4);
    // a flood of tiny out-of-order segments, far-away data, overlaps
    for i in 0..50_000u32 {
        let off = (rng.next_u64() % 200_000) as u32 + 2;
        let len = 1 + (rng.next_u64() % 3000) as usize;
        let h = Header {
            src_port: 80,
            dst_port: 40000,
            seq: Seq(101 + off),
            ack: Seq(2),
            flags: F::ACK,
            window: 1000,
            ..Default::default()
        };
        c.handle_segment(
            MS + i as u64,
            Incoming {
                hdr: h,
                payload: Bytes::new(vec![0; len]),
            },
        );
        assert!(c.buffered() <= 64 * 1024, "held {} bytes", c.buffered());
        while c.poll_transmit(MS).is_some() {}
    }
    assert!(c.stats().drop_recv_no_room > 0 || c.stats().drop_out_of_window > 0);
}

#[test]
fn mptcp_hooks_carry_options_both_ways() {
    let cfg = Config {
        reserved_option_space: 20,
        ..Config::default()
    };
    let mut p = pair(11, link(5 * MSEC, 50_000_000), cfg, 1 << 20, 1 << 20);
    // every outgoing segment of A carries a (fake) DSS-sized MPTCP option
    p.a.tx_hook = Some(|s| {
        s.hdr.opts.mptcp = nf_tcp::RawOpt::new(&[
            0x20, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        ]);
    });
    p.b.keep_rx = true;
    assert!(p.run_transfer(60 * SECS));
    assert!(!p.b.rx_seen.is_empty());
    for s in &p.b.rx_seen {
        assert_eq!(s.hdr.opts.mptcp.map(|o| o.as_slice().len()), Some(18));
        assert!(
            s.payload.len() + s.hdr.opts.len() <= 1460 + 12,
            "MSS respected with the option"
        );
    }
}
