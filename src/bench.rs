//! `hagw bench forward`: packets per second on one core through DPDK
//! `net_null` ports, raw rx→tx against the full parse+route+forward
//! pipeline, for 64- and 1500-byte IPv4 frames.
//!
//! Both loops do the same port work (rx_burst allocates mbufs, tx_burst
//! frees them) and the same "DMA": the test frame's first cache line, 64
//! bytes (a 60-byte frame then 4 bytes where a NIC that keeps the CRC
//! puts it), is written into each received mbuf as one 64-byte array (on
//! baseline x86-64, four 16-byte stores at offsets 0, 16, 32, 48). Each
//! header word the pipeline reads lies within one of them. A NIC's DMA
//! leaves no store in the core's store buffer; the bench's stores must not
//! slow the pipeline's loads in a way a NIC would not. They did: the frame
//! used to be copied with `copy_from_slice` of its length, which glibc does as two
//! overlapping 32-byte stores for 60 bytes (bytes 0-31 and 28-59). The
//! pipeline's first header load, bytes 24-31, then needs bytes of both
//! stores; the core cannot forward that and waits until both are in L1. A
//! cpu-clock profile put 31% of the pipeline's samples on that one load;
//! the raw loop, which never reads the frame, did not pay it.
//!
//! The pipeline loop adds parsing, validation, routing, TTL/checksum
//! update, neighbour lookup and L2 rewrite. The ratio is what the
//! pipeline keeps of the raw rate. The loops take turns within each run
//! (`SLICE` packets each), so a machine whose speed drifts over seconds
//! weighs on both alike.
//!
//! Memory is plain 4 KB pages by default (EAL's `--no-huge`); with
//! `--huge` the mbufs live in 2 MB hugepages (`--in-memory`),
//! as on a production box: both loops get faster, the raw one more.

use crate::dpdk::{Eal, Mbuf, Mempool, Port};
use nf_app::pipeline::{routing_table, BufPool, Pipeline, PipelineLimits, PortCtx};
use nf_app::stats::WorkerStats;
use nf_core::wire::{arp, EthernetAddress};
use nf_core::PacketBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Pool(Mempool);
impl BufPool<Mbuf> for Pool {
    fn alloc(&mut self) -> Option<Mbuf> {
        self.0.alloc()
    }
}

const CFG: &str = r#"
[[port]]
name = "in64"
device = "net_null0,size=60"
role = "access-fixed"
addresses = ["10.0.0.1/24"]
[[port]]
name = "out64"
device = "net_null1,size=60"
role = "internet"
addresses = ["10.1.0.1/24"]
[[port]]
name = "in1500"
device = "net_null2,size=1514"
role = "access-fixed"
addresses = ["10.2.0.1/24"]
[[port]]
name = "out1500"
device = "net_null3,size=1514"
role = "internet"
addresses = ["10.3.0.1/24"]
"#;

const PEER: EthernetAddress = EthernetAddress([0x02, 0xbe, 0, 0, 0, 1]);
const HDR: usize = 64;
/// Packets each loop forwards in its turn (some 0.3 ms).
const SLICE: u64 = 8192;

/// One received burst from `port` into `rx`, with the NIC's "DMA" of
/// `head` (the test frame's first cache line) into each mbuf; its size.
/// net_null delivers frames of at least 60 bytes in buffers of 2 KB: the
/// 64 bytes always fit (a frame without room would keep its stale bytes,
/// and the pipeline's routed count below would fall short).
#[inline(always)]
fn receive(port: Port, rx: &mut Vec<Mbuf>, head: &[u8; HDR]) -> u64 {
    let n = port.rx_burst(0, rx);
    for m in rx.iter_mut() {
        if let Some(line) = m.frame_room_mut().first_chunk_mut::<HDR>() {
            *line = *head;
        }
    }
    n as u64
}

fn stats(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    (
        v.first().copied().unwrap_or(0.0),
        v.get(v.len() / 2).copied().unwrap_or(0.0),
    )
}

/// 2 MB hugepages EAL takes with `--huge` (`-m 512`).
const HUGEPAGES: u64 = 256;

/// `--huge` with `free` hugepages: enough, or one line with the fix.
fn enough_hugepages(free: u64) -> Result<(), String> {
    if free < HUGEPAGES {
        return Err(format!(
            "--huge needs {HUGEPAGES} free 2 MB hugepages, {free} are: `echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages`, or leave out --huge"
        ));
    }
    Ok(())
}

pub fn forward(packets: u64, runs: usize, lcore: u32, huge: bool) -> Result<String, String> {
    let cfg = nf_app::config::parse("bench", CFG).map_err(|e| e.to_string())?;
    if huge {
        enough_hugepages(crate::preflight::hugepages_free().unwrap_or(0))?;
    }
    let mut args: Vec<String> = [
        "--no-pci",
        if huge { "--in-memory" } else { "--no-huge" },
        "-m",
        "512",
        "--log-level",
        "lib.eal:error",
        "--file-prefix",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("hagw-bench-{}", std::process::id()));
    args.push("-l".into());
    args.push(lcore.to_string());
    for p in &cfg.ports {
        if let nf_app::config::Device::Vdev { spec, .. } = &p.device {
            args.push("--vdev".into());
            args.push(spec.clone());
        }
    }
    let eal = Eal::init(&args).map_err(|e| format!("EAL init failed: {e}"))?;
    let pool = Mempool::create("bench", 16383, 256, -1)?;
    let mut ports = Vec::new();
    for p in &cfg.ports {
        let port = Port::by_name(p.device.dpdk_name())
            .ok_or_else(|| format!("{} not probed", p.device.dpdk_name()))?;
        port.setup(
            &crate::dpdk::port::PortSetup {
                queues: 1,
                rx_desc: 1024,
                tx_desc: 1024,
                mtu: 1500,
            },
            &pool,
        )?;
        ports.push(port);
    }
    let ctx: Vec<PortCtx> = cfg
        .ports
        .iter()
        .zip(&ports)
        .map(|(c, p)| PortCtx::new(c, EthernetAddress(p.mac())))
        .collect();
    let macs: Vec<EthernetAddress> = ctx.iter().map(|c| c.mac).collect();
    let st = Arc::new(WorkerStats::new(0, lcore, ports.len()));
    let mut pipe = Pipeline::new(
        ctx,
        routing_table(&cfg),
        PipelineLimits::from_config(&cfg),
        Pool(pool),
        Arc::clone(&st),
    );
    // as a worker does (net_null does not verify checksums: software does)
    for (i, p) in ports.iter().enumerate() {
        pipe.set_rx_ip_checksum(i as u16, p.rx_ip_checksum());
    }
    // Teach the pipeline the next hops (an ARP reply on each out port).
    for (out, ip) in [(1u16, [10, 1, 0, 2]), (3, [10, 3, 0, 2])] {
        let f = nf_app::frames::arp(
            PEER,
            macs[usize::from(out)],
            arp::Operation::Reply,
            ip.into(),
            macs[usize::from(out)],
            [ip[0], ip[1], 0, 1].into(),
        );
        let mut m = pool.alloc().ok_or("no mbuf")?;
        m.append(f.len()).ok_or("no room")?.copy_from_slice(&f);
        pipe.process(0, out, m);
    }

    let mut rx: Vec<Mbuf> = Vec::with_capacity(32);
    // The prefetch hint (`Mbuf::data_addr_at`) must point at the frames
    // the ports deliver, or the figures below measure a wasted prefetch.
    for &inp in &[0usize, 2] {
        let n = ports[inp].rx_burst(0, &mut rx);
        if n == 0 {
            return Err(format!("{} delivered no frame", cfg.ports[inp].name));
        }
        if let Some(m) = rx
            .iter()
            .find(|m| m.data().as_ptr() != m.data_addr_at(m.data_off()))
        {
            return Err(format!(
                "a frame from {} starts at {:p}, not at the prefetched {:p}",
                cfg.ports[inp].name,
                m.data().as_ptr(),
                m.data_addr_at(m.data_off())
            ));
        }
        rx.clear();
    }

    let mut report = String::new();
    report.push_str(&format!(
        "hagw bench forward: {packets} packets per run, {runs} runs, one core (lcore {lcore}), DPDK net_null ports, mbufs in {}\n",
        if huge { "2 MB hugepages" } else { "4 KB pages (--huge for hugepages)" }
    ));
    report.push_str("size   mode       min Mpps   median Mpps   ns/pkt (median)\n");
    for (inp, outp, frame_len) in [(0usize, 1usize, 60usize), (2, 3, 1514)] {
        let dst = if inp == 0 {
            [10, 1, 0, 2]
        } else {
            [10, 3, 0, 2]
        };
        let src = if inp == 0 {
            [10, 0, 0, 2]
        } else {
            [10, 2, 0, 2]
        };
        let tmpl = nf_app::frames::udp4(PEER, macs[inp], src.into(), dst.into(), 64, frame_len);
        let (pin, pout) = (ports[inp], ports[outp]);
        let mut head = [0u8; HDR];
        let hdr = HDR.min(frame_len);
        head[..hdr].copy_from_slice(&tmpl[..hdr]);
        let mut raw = Vec::new();
        let mut pip = Vec::new();
        // the worker's clock (TSC)
        let clock = crate::dpdk::Clock::start();
        for _ in 0..runs {
            // The two loops take turns, SLICE packets each, and each adds
            // up its own time: both see the same machine (this one's speed
            // drifts by a third over seconds, which one loop after the
            // other turned into ratios from 0.6 to 0.9).
            let (mut raw_t, mut pip_t) = (Duration::ZERO, Duration::ZERO);
            let (mut raw_n, mut pip_n) = (0u64, 0u64);
            let routed_before = st.events_of(nf_app::stats::Event::RoutedV4);
            while pip_n < packets {
                // raw rx → tx
                let t = Instant::now();
                let mut done = 0u64;
                while done < SLICE {
                    done += receive(pin, &mut rx, &head);
                    pout.tx_burst(0, &mut rx);
                    rx.clear();
                }
                raw_t += t.elapsed();
                raw_n += done;
                // parse + route + forward
                let t = Instant::now();
                let mut done = 0u64;
                while done < SLICE {
                    let now = clock.now_ns();
                    done += receive(pin, &mut rx, &head);
                    pipe.process_burst(now, inp as u16, &mut rx);
                    pipe.poll_timers(now);
                    if let Some(q) = pipe.tx_queue(outp) {
                        pout.tx_burst(0, q);
                        q.clear();
                    }
                }
                pip_t += t.elapsed();
                pip_n += done;
            }
            raw.push(raw_n as f64 / raw_t.as_secs_f64() / 1e6);
            pip.push(pip_n as f64 / pip_t.as_secs_f64() / 1e6);
            let routed = st.events_of(nf_app::stats::Event::RoutedV4) - routed_before;
            if routed < pip_n {
                return Err(format!(
                    "pipeline routed only {routed} of {pip_n} packets: the benchmark is broken"
                ));
            }
        }
        // each run's pipeline against the raw loop of the same run
        let mut paired: Vec<f64> = pip.iter().zip(&raw).map(|(p, r)| p / r).collect();
        // what the pipeline adds to each packet, run by run (ns): unlike
        // the ratio, it does not move with the raw loop's own cost
        let mut added: Vec<f64> = pip
            .iter()
            .zip(&raw)
            .map(|(p, r)| 1e3 / p - 1e3 / r)
            .collect();
        let (amin, amed) = stats(&mut added);
        let (rmin, rmed) = stats(&mut raw);
        let (pmin, pmed) = stats(&mut pip);
        let (qmin, qmed) = stats(&mut paired);
        let qmax = paired.last().copied().unwrap_or(0.0);
        let size = if frame_len == 60 { 64 } else { 1500 };
        report.push_str(&format!(
            "{size:<6} raw        {rmin:>8.2}   {rmed:>11.2}   {:>8.1}\n",
            1e3 / rmed
        ));
        report.push_str(&format!(
            "{size:<6} pipeline   {pmin:>8.2}   {pmed:>11.2}   {:>8.1}\n",
            1e3 / pmed
        ));
        report.push_str(&format!(
            "{size:<6} ratio pipeline/raw (median): {:.3}\n",
            pmed / rmed
        ));
        report.push_str(&format!(
            "{size:<6} ratio run by run (min / median / max): {qmin:.3} / {qmed:.3} / {qmax:.3}\n"
        ));
        report.push_str(&format!(
            "{size:<6} ns the pipeline adds per packet, run by run (min / median): {amin:.1} / {amed:.1}\n"
        ));
    }
    drop(pipe);
    drop(rx);
    for p in &ports {
        p.stop();
    }
    drop(eal);
    Ok(report)
}

/// `hagw bench convert`: the conversion point in process (nf-app's
/// `convlab`: MPTCP clients with two subflows each and TCP echo servers
/// exchanging frames with the pipeline in virtual time, no DPDK). Two
/// figures, each as min/median over `runs`:
/// - new conversions per second: `conns` connections (MP_CAPABLE, MP_JOIN
///   of the cellular subflow, 1 KB echoed, DATA_FIN/FIN both ways), 64 at
///   a time;
/// - bulk: one connection echoing `bulk_mb` MB (each byte crosses hagw
///   twice: up and down).
///
/// "hagw" figures divide by the time spent inside the pipeline (parse,
/// conversion, NAT, engines of the gateway, emit); "harness" figures by
/// the whole loop, the generators' engines included, on the same core.
/// The lab jumps over idle virtual time (`skip_idle`): hagw is timed on
/// packets and due timers, not on polling an idle lab between them.
/// `offload`: every port's "NIC" verifies and computes TCP checksums.
pub fn convert(conns: usize, bulk_mb: u64, runs: usize, offload: bool) -> String {
    use nf_app::convlab::{ConvLab, Workload};
    const CONF: &str = "[conversion]\nenabled = true\nmax_sessions = 1000000\n[nat]\nsource = \"subscriber-fixed\"\n[[subscriber]]\nfixed = \"192.0.2.2\"\ncellular = [\"100.64.0.2\"]\n";
    const SEC: u64 = 1_000_000_000;
    let mut cps_hagw = Vec::new();
    let mut cps_all = Vec::new();
    let mut gbps_hagw = Vec::new();
    let mut gbps_all = Vec::new();
    let mut copied = 0;
    let mut frames = 0.0;
    for run in 0..runs {
        // connection rate
        let mut lab = ConvLab::new(CONF, 1000 + run as u64);
        lab.skip_idle = true;
        nic_offloads(&mut lab, offload);
        let t = Instant::now();
        let mut done = 0;
        while done < conns {
            let batch = (conns - done).min(64);
            for _ in 0..batch {
                lab.connect(5201, Workload::echo(1000, true));
            }
            lab.run_until(60 * SEC, |l| l.clients.iter().all(|c| c.finished()));
            done += lab
                .clients
                .iter()
                .filter(|c| c.finished() && !c.refused)
                .count();
            lab.run_until(10 * SEC, |l| l.clients.iter().all(|c| c.mp.is_closed()));
            lab.clients.clear();
            lab.reap();
        }
        let wall = t.elapsed().as_secs_f64();
        frames = (lab.frames_in + lab.frames_out) as f64 / conns as f64;
        cps_hagw.push(conns as f64 / lab.pipeline_time.as_secs_f64());
        cps_all.push(conns as f64 / wall);
        // bulk
        let mut lab = ConvLab::new(CONF, 2000 + run as u64);
        lab.skip_idle = true;
        nic_offloads(&mut lab, offload);
        let bytes = bulk_mb * 1_000_000;
        let c = lab.connect(5201, Workload::echo(bytes, true));
        let t = Instant::now();
        lab.run_until(3600 * SEC, |l| l.clients[c].finished());
        let wall = t.elapsed().as_secs_f64();
        let moved = (lab.clients[c].received + lab.clients[c].sent) as f64 * 8.0;
        gbps_hagw.push(moved / lab.pipeline_time.as_secs_f64() / 1e9);
        gbps_all.push(moved / wall / 1e9);
        copied = lab.stats().conv.payload_bytes_copied.get();
    }
    let (a, b) = stats(&mut cps_hagw);
    let (c, d) = stats(&mut cps_all);
    let (e, f) = stats(&mut gbps_hagw);
    let (g, h) = stats(&mut gbps_all);
    let nsf = if b > 0.0 {
        1e9 / b / frames.max(1.0)
    } else {
        0.0
    };
    format!(
        "hagw bench convert: {conns} conversions (2 subflows, 1 KB echo, full close), {bulk_mb} MB bulk echo, {runs} runs, one core{}\n\
         conversions/s   hagw min {a:>10.0}  median {b:>10.0}   harness min {c:>10.0}  median {d:>10.0}\n\
         bulk Gbit/s     hagw min {e:>10.2}  median {f:>10.2}   harness min {g:>10.2}  median {h:>10.2}\n\
         frames through hagw per conversion (in + out): {frames:.1}, hagw ns per frame (median): {nsf:.0}\n\
         payload bytes copied in the last bulk run: {copied} (payload is spliced by reference: 0 expected)\n",
        if offload {
            ", TCP checksums offloaded to the NICs"
        } else {
            ""
        }
    )
}

/// Ports whose NICs verify received TCP checksums (every frame the lab
/// sends is correct, so the "NIC" says good) and compute those of what
/// hagw sends (the lab's wire completes them).
fn nic_offloads(lab: &mut nf_app::convlab::ConvLab, on: bool) {
    if !on {
        return;
    }
    lab.tcp_checksum_offload(true, true);
    lab.nic_l4 = nf_core::RxChecksum::Good;
}

#[cfg(test)]
mod tests {
    #[test]
    fn huge_without_enough_hugepages_names_the_fix() {
        let e = super::enough_hugepages(255).unwrap_err();
        assert!(
            e.starts_with("--huge needs 256 free 2 MB hugepages, 255 are")
                && e.contains("nr_hugepages")
                && !e.contains('\n'),
            "{e}"
        );
        assert!(super::enough_hugepages(256).is_ok());
    }
}
