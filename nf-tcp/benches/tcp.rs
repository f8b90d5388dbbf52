//! Criterion benches: ns per segment for in-order data receive, ACK
//! processing on the sender, and segment emission.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nf_core::chunk::{Bytes, Chunk};
use nf_core::wire::tcp::flags as F;
use nf_tcp::{Config, Connection, Header, Incoming, Opts, Seq};
use std::hint::black_box;
use std::time::{Duration, Instant};

const MSS: usize = 1448;

fn established(cfg: Config) -> Connection<Bytes> {
    let mut c = Connection::connect(cfg, 1, 2, Seq(1000));
    while c.poll_transmit(0).is_some() {}
    let mut h = Header {
        src_port: 2,
        dst_port: 1,
        seq: Seq(5000),
        ack: Seq(1001),
        flags: F::SYN | F::ACK,
        window: 65535,
        opts: Opts::default(),
    };
    h.opts.mss = Some(MSS as u16);
    h.opts.sack_perm = true;
    h.opts.wscale = Some(9);
    c.handle_segment(
        1_000_000,
        Incoming {
            hdr: h,
            payload: Bytes::empty(),
        },
    );
    while c.poll_transmit(1_000_000).is_some() {}
    c
}

fn benches(c: &mut Criterion) {
    let big = Bytes::new(vec![0x42; 64 << 20]);
    let mut g = c.benchmark_group("tcp");
    g.throughput(Throughput::Elements(1));

    g.bench_function("receive_in_order_segment", |b| {
        b.iter_custom(|n| {
            let mut conn = established(Config {
                recv_buffer: 1 << 30,
                ..Config::default()
            });
            let segs: Vec<Incoming<Bytes>> = (0..n as usize)
                .map(|i| {
                    let off = (i * MSS) % (big.len() - MSS);
                    let h = Header {
                        src_port: 2,
                        dst_port: 1,
                        seq: Seq(5001) + i * MSS,
                        ack: Seq(1001),
                        flags: F::ACK,
                        window: 65535,
                        opts: Opts::default(),
                    };
                    Incoming {
                        hdr: h,
                        payload: big.slice(off, off + MSS),
                    }
                })
                .collect();
            let t = Instant::now();
            for (i, s) in segs.into_iter().enumerate() {
                conn.handle_segment(2_000_000 + i as u64, s);
                while let Some(d) = conn.recv() {
                    black_box(d.len());
                }
                while let Some(a) = conn.poll_transmit(2_000_000 + i as u64) {
                    black_box(a.hdr.ack);
                }
            }
            t.elapsed()
        })
    });

    g.bench_function("emit_data_segment", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            let mut left = n;
            while left > 0 {
                let batch = left.min(20_000);
                left -= batch;
                let mut conn = established(Config {
                    send_buffer: 1 << 30,
                    ..Config::default()
                });
                conn.send(big.slice(0, batch as usize * MSS));
                // open cwnd and window: pretend a huge window
                let t = Instant::now();
                let mut sent = 0;
                while sent < batch {
                    match conn.poll_transmit(2_000_000) {
                        Some(s) => {
                            black_box(s.payload.len());
                            sent += 1;
                        }
                        None => {
                            // ack everything sent so far to open cwnd again
                            let h = Header {
                                src_port: 2,
                                dst_port: 1,
                                seq: Seq(5001),
                                ack: Seq(1001) + (sent as usize) * MSS,
                                flags: F::ACK,
                                window: 65535,
                                opts: Opts::default(),
                            };
                            conn.handle_segment(
                                2_000_000,
                                Incoming {
                                    hdr: h,
                                    payload: Bytes::empty(),
                                },
                            );
                        }
                    }
                }
                total += t.elapsed();
            }
            total
        })
    });

    g.bench_function("process_ack", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            let mut left = n;
            while left > 0 {
                let batch = left.min(20_000);
                left -= batch;
                let mut conn = established(Config {
                    send_buffer: 1 << 30,
                    ..Config::default()
                });
                conn.send(big.slice(0, 40_000 * MSS));
                let mut sent = 0usize;
                let mut acks = Vec::with_capacity(batch as usize);
                // send and build one ACK per segment; time only the ACKs
                let mut elapsed = Duration::ZERO;
                while (acks.len() as u64) < batch {
                    while let Some(s) = conn.poll_transmit(2_000_000) {
                        sent += s.payload.len();
                        let h = Header {
                            src_port: 2,
                            dst_port: 1,
                            seq: Seq(5001),
                            ack: Seq(1001) + sent,
                            flags: F::ACK,
                            window: 65535,
                            opts: Opts::default(),
                        };
                        acks.push(Incoming {
                            hdr: h,
                            payload: Bytes::empty(),
                        });
                    }
                    let t = Instant::now();
                    for a in acks.drain(..) {
                        conn.handle_segment(3_000_000, a);
                    }
                    elapsed += t.elapsed();
                    if sent / MSS >= batch as usize {
                        break;
                    }
                }
                total += elapsed * batch as u32 / (sent / MSS).max(1) as u32;
            }
            total
        })
    });
    g.finish();
}

criterion_group!(b, benches);
criterion_main!(b);
