//! `hagw tcp-peer` and `hagw mptcp-peer`: the nf-tcp / nf-mptcp engines as
//! endpoints on the gateway's own address, on the DPDK data path
//! (ARP/ND/ICMP/routing by the pipeline), for interop tests against the
//! Linux kernel's TCP and MPTCP.

use crate::dpdk::{Mbuf, Mempool};
use nf_app::config::Config;
use nf_app::localpeer::LocalPeer;
use nf_app::mptcppeer::MptcpPeer;
use nf_app::pipeline::{routing_table, BufPool, Pipeline, PipelineLimits, PortCtx};
use nf_app::stats::WorkerStats;
use nf_app::tcppeer::{Mode, TcpPeer};
use nf_core::wire::EthernetAddress;
use nf_core::PacketBuf;
use nf_tcp::cc::CcKind;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Pool(Mempool);
impl BufPool<Mbuf> for Pool {
    fn alloc(&mut self) -> Option<Mbuf> {
        self.0.alloc()
    }
}

/// Which engine runs.
pub enum Engine {
    Tcp(Mode),
    /// MPTCP echo on this port, subflows under this congestion control,
    /// DSS checksums asked for or not.
    Mptcp(u16, CcKind, bool),
    /// MPTCP client: connect, join a second subflow from `join_from`, send
    /// `bytes` and verify the echo.
    MptcpClient {
        remote: std::net::SocketAddr,
        bytes: u64,
        join_from: Option<IpAddr>,
        cc: CcKind,
        checksum: bool,
    },
}

pub fn run(cfg: Config, engine: Engine, timeout: Duration) -> Result<String, String> {
    let mode = match engine {
        Engine::Tcp(m) => m,
        Engine::Mptcp(port, ..) => Mode::Echo { port },
        Engine::MptcpClient { remote, bytes, .. } => Mode::Client { remote, bytes },
    };
    let mptcp = !matches!(engine, Engine::Tcp(_));
    crate::preflight::check(&cfg)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }
    let crate::run::Up {
        eal, pool, ports, ..
    } = crate::run::bring_up(&cfg)?;
    let ctx: Vec<PortCtx> = cfg
        .ports
        .iter()
        .zip(&ports)
        .map(|(c, p)| PortCtx::new(c, EthernetAddress(p.mac())))
        .collect();
    // the local address: for a client, ours on the port that reaches the
    // server; for the echo server, replies use the address that was asked
    let local = match mode {
        Mode::Client { remote, .. } => {
            let rt = routing_table(&cfg);
            let port = match remote.ip() {
                IpAddr::V4(a) => rt.lookup_v4(a).map(|n| n.port),
                IpAddr::V6(a) => rt.lookup_v6(a).map(|n| n.port),
            }
            .ok_or_else(|| format!("no route to {}", remote.ip()))?;
            let pc = &ctx[usize::from(port)];
            match remote.ip() {
                IpAddr::V4(a) => {
                    IpAddr::V4(pc.v4_for(a).ok_or("no IPv4 address on the egress port")?)
                }
                IpAddr::V6(a) => IpAddr::V6(pc.v6_for(a)),
            }
        }
        Mode::Echo { .. } => ctx
            .iter()
            .find_map(|p| p.v4.first().map(|c| IpAddr::V4(c.addr)))
            .unwrap_or(IpAddr::V4([0, 0, 0, 0].into())),
    };
    let stats = Arc::new(WorkerStats::new(0, 0, ports.len()));
    let mut pipe = Pipeline::new(
        ctx,
        routing_table(&cfg),
        PipelineLimits::from_config(&cfg),
        Pool(pool),
        stats,
    );
    pipe.enable_local_tcp(4096);
    let epoch = Instant::now();
    let mut secret = [0u8; 32];
    // RFC 6528 wants a secret key: derive one from the time and pid (this
    // is a test endpoint; production ISNs come from the conversion point).
    for (i, b) in secret.iter_mut().enumerate() {
        *b = ((epoch.elapsed().as_nanos() as u64 ^ u64::from(std::process::id())) >> (i % 8 * 8))
            as u8
            ^ i as u8;
    }
    let now0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = u64::from_le_bytes([
        secret[0], secret[1], secret[2], secret[3], secret[4], secret[5], secret[6], secret[7],
    ]);
    let mut peer: Box<dyn LocalPeer> = if let Engine::MptcpClient {
        remote,
        bytes,
        join_from,
        cc,
        checksum,
    } = engine
    {
        Box::new(MptcpPeer::client(
            remote, local, join_from, bytes, seed, cc, checksum,
        ))
    } else if let Engine::Mptcp(port, cc, checksum) = engine {
        Box::new(MptcpPeer::new(port, seed, cc, checksum))
    } else {
        Box::new(TcpPeer::new(
            mode,
            local,
            nf_tcp::Config::default(),
            secret,
            now0,
        ))
    };
    let mut rx: Vec<Mbuf> = Vec::with_capacity(cfg.burst);
    let mut result = None;
    while !stop.load(Ordering::Relaxed) {
        let now = epoch.elapsed().as_nanos() as u64;
        for (pi, port) in ports.iter().enumerate() {
            if port.rx_burst(0, &mut rx) > 0 {
                pipe.process_burst(now, pi as u16, &mut rx);
            }
        }
        while let Some(m) = pipe.take_local_tcp() {
            peer.on_packet(now, m.data());
        }
        if peer.next_timeout().is_some_and(|t| t <= now) {
            peer.on_timeout(now);
        }
        let mut outq: Vec<Vec<u8>> = Vec::new();
        peer.poll(now, &mut |p| outq.push(p));
        for p in outq {
            let Some(mut m) = pool.alloc() else { break };
            match m.append(p.len()) {
                Some(d) => d.copy_from_slice(&p),
                None => continue,
            }
            pipe.send_ip(now, m);
        }
        pipe.poll_timers(now);
        for (pi, port) in ports.iter().enumerate() {
            if let Some(q) = pipe.tx_queue(pi) {
                for _ in 0..cfg.limits.tx_retries {
                    port.tx_burst(0, q);
                    if q.is_empty() {
                        break;
                    }
                }
                q.clear();
            }
        }
        if let Some(r) = peer.outcome() {
            result = Some(r);
            break;
        }
        if matches!(mode, Mode::Client { .. }) && epoch.elapsed() > timeout {
            result = Some(Err(format!("timed out after {timeout:?}")));
            break;
        }
    }
    eprint!("{}", peer.describe());
    let echoed = peer.describe();
    drop(pipe);
    drop(rx);
    for p in &ports {
        p.stop();
    }
    drop(eal);
    match result {
        Some(Ok(n)) => Ok(format!(
            "{}: {n} bytes sent and echoed back intact",
            if mptcp { "mptcp-peer" } else { "tcp-peer" }
        )),
        Some(Err(e)) => Err(format!("tcp-peer: {e}")),
        None => Ok(echoed
            .lines()
            .find(|l| l.contains("echoed"))
            .unwrap_or("stopped")
            .to_string()),
    }
}
