//! Schedulers in the simulator over the two paths of the hybrid access
//! (fixed 50 Mbit/s / 10 ms, cellular 20 Mbit/s / 40 ms).

mod common;
use common::*;
use nf_core::sim::{Time, SEC};
use nf_mptcp::scheduler::{FixedFirst, MinRtt};

/// Goodput of a one-way upload, from the first send to the last delivery.
fn upload(s: &mut Setup, bytes: u64) -> f64 {
    s.server.app.to_send = 0;
    s.run(600 * SEC);
    assert_eq!(s.server.app.received, bytes, "{}", s.describe());
    let start: Time = s.client.app.start.expect("started");
    bytes as f64 * 8.0 / ((s.server.app.last_rx - start) as f64 / 1e9)
}

fn shares(s: &Setup) -> (u64, u64) {
    let sf = s.client.conn.subflows();
    (sf[0].bytes_sent(), sf.get(1).map_or(0, |x| x.bytes_sent()))
}

#[test]
fn min_rtt_aggregates_both_paths() {
    let bytes = 400 << 20;
    let mut s = setup(7, bytes, || Box::new(MinRtt));
    let g = upload(&mut s, bytes);
    let (fixed, cell) = shares(&s);
    // What the two links can carry as data: 70 Mbit/s times the payload
    // share of a full-size segment on the wire (IP, TCP and its options:
    // timestamps and the DSS mapping take about 5 %).
    let (payload, wire) = s.client.largest;
    let capacity = 70e6 * payload as f64 / wire as f64;
    println!(
        "min-rtt: {:.2} Mbit/s goodput = {:.3} of the {:.2} Mbit/s the paths carry as data \
         ({payload} of {wire} B per segment), {:.3} of the 70 Mbit/s link rates; \
         fixed {fixed} B, cellular {cell} B",
        g / 1e6,
        g / capacity,
        capacity / 1e6,
        g / 70e6
    );
    assert!(cell > bytes / 10, "cellular carries a real share");
    // a long transfer, so that slow start and the last round trips weigh
    // little: at least 90 % of what the paths carry as data, and of their
    // raw link rates too
    assert!(
        g >= 0.9 * capacity,
        "goodput {:.2} Mbit/s of {:.2}",
        g / 1e6,
        capacity / 1e6
    );
    assert!(g >= 0.9 * 70e6, "goodput {:.2} Mbit/s of 70", g / 1e6);
}

#[test]
fn fixed_first_keeps_cellular_idle_while_fixed_has_room() {
    let bytes = 10 << 20;
    let mut s = setup(8, bytes, || Box::new(FixedFirst));
    s.client.app.pace_bps = Some(20_000_000); // well under the fixed path's 50 Mbit/s
    upload(&mut s, bytes);
    let (fixed, cell) = shares(&s);
    let share = cell as f64 / (fixed + cell) as f64;
    println!(
        "fixed-first, 20 Mbit/s offered: cellular share {:.4}",
        share
    );
    for sf in s.client.conn.subflows() {
        println!(
            "  cwnd {} srtt {:?} {:?}",
            sf.tcp.cwnd(),
            sf.tcp.srtt(),
            sf.tcp.stats()
        );
    }
    assert!(share <= 0.05, "cellular share {share}");
}

#[test]
fn fixed_first_overflows_to_cellular_when_fixed_is_full() {
    let bytes = 40 << 20;
    let mut s = setup(9, bytes, || Box::new(FixedFirst));
    let g = upload(&mut s, bytes);
    let (fixed, cell) = shares(&s);
    let share = cell as f64 / (fixed + cell) as f64;
    println!(
        "fixed-first, bulk: {:.2} Mbit/s, cellular share {:.3}",
        g / 1e6,
        share
    );
    assert!(share > 0.10, "cellular share {share}");
    assert!(
        g > 55e6,
        "more than the fixed path alone: {:.2} Mbit/s",
        g / 1e6
    );
}
