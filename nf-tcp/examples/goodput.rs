//! Simulator goodput: a bulk transfer over a 100 Mbit/s link with a 20 ms
//! RTT, at 0 % loss (as a fraction of link capacity) and at 1 % loss (beside
//! the CUBIC response function of RFC 9438 §5.1 for the same RTT and loss).
//!
//!   cargo run --release -p nf-tcp --example goodput

#[path = "../tests/harness/mod.rs"]
mod harness;
use harness::*;
use nf_core::sim::LinkConfig;
use nf_tcp::Config;

fn run(loss: f64, bytes: u64, seed: u64) -> (f64, u64, u64) {
    let mut p = pair(
        seed,
        |to| {
            let mut l = LinkConfig::new(to, 10 * MSEC, 100_000_000);
            l.queue_bytes = 256 * 1024;
            l.loss = loss;
            l
        },
        Config::default(),
        bytes,
        0,
    );
    assert!(p.run_transfer(3600 * SECS));
    let start = p.a.connected_at.unwrap_or(0);
    // the receiver has everything when b.received reached the total
    let end = p.b.done_at.or(p.a.done_at).unwrap_or(p.sim.now);
    let secs = (end - start) as f64 / 1e9;
    (
        bytes as f64 * 8.0 / secs,
        p.sim.stats(p.ab).queue_drops,
        p.a.conn.as_ref().map_or(0, |c| c.stats().retransmits),
    )
}

fn main() {
    let cap = 100e6;
    let payload_share = 1448.0 / 1500.0; // TCP/IP + timestamp overhead per MSS-sized packet
    for (loss, mb) in [(0.0, 200u64), (0.01, 50)] {
        let mut rates = vec![];
        for seed in 1..=3 {
            let (r, drops, rtx) = run(loss, mb << 20, seed);
            rates.push(r);
            eprintln!(
                "loss {loss}: seed {seed}: {:.2} Mbit/s, queue drops {drops}, retransmits {rtx}",
                r / 1e6
            );
        }
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let med = rates[1];
        println!(
            "loss {:>4.1}%: goodput min {:.2} / median {:.2} Mbit/s = {:.3} of link capacity ({:.3} of the payload capacity)",
            loss * 100.0,
            rates[0] / 1e6,
            med / 1e6,
            med / cap,
            med / (cap * payload_share)
        );
        if loss > 0.0 {
            // RFC 9438 §5.1: AVG_W_cubic = (C(3+beta)/(4(1-beta)))^(1/4) * RTT^(3/4) / p^(3/4) segments
            let (c, beta, rtt) = (0.4f64, 0.7f64, 0.020f64);
            let w = (c * (3.0 + beta) / (4.0 * (1.0 - beta))).powf(0.25) * rtt.powf(0.75)
                / loss.powf(0.75);
            let reno_w = (1.5f64).sqrt() / loss.sqrt(); // 1.22 / sqrt(p)
            let model = w.max(reno_w) * 1448.0 * 8.0 / rtt;
            println!("          CUBIC response function (RFC 9438 §5.1, max with Reno-friendly 1.22/sqrt(p)): {:.2} Mbit/s (W = {:.1} segments)", model / 1e6, w.max(reno_w));
        }
    }
}
