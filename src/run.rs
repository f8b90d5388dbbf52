//! `hagw run`: EAL, ports, workers on their lcores, the management thread,
//! and a clean shutdown on SIGINT/SIGTERM.

use crate::dpdk::{self, Eal, Mempool, Port};
use crate::worker;
use nf_app::config::Config;
use nf_app::mgmt::{DataPlaneView, MgmtState, PortSnapshot};
use nf_app::stats::WorkerStats;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct DataPlane {
    ports: Vec<(Port, String, &'static str)>,
    /// The packet pool, then the af_xdp ports' receive pools.
    pools: Vec<Mempool>,
    pool_size: u64,
}

impl DataPlaneView for DataPlane {
    fn ports(&self) -> Vec<PortSnapshot> {
        self.ports
            .iter()
            .map(|(p, name, role)| {
                let s = p.stats();
                let l = p.link();
                PortSnapshot {
                    name: name.clone(),
                    role,
                    rx_packets: s.ipackets,
                    tx_packets: s.opackets,
                    rx_bytes: s.ibytes,
                    tx_bytes: s.obytes,
                    rx_missed: s.imissed,
                    rx_errors: s.ierrors,
                    tx_errors: s.oerrors,
                    rx_nombuf: s.rx_nombuf,
                    link_up: l.up,
                    link_speed_mbps: l.speed_mbps,
                }
            })
            .collect()
    }
    fn mbuf_pool(&self) -> (u64, u64) {
        let in_use = self.pools.iter().map(|p| u64::from(p.in_use())).sum();
        (in_use, self.pool_size * self.pools.len() as u64)
    }
}

pub fn run(cfg: Config) -> Result<(), String> {
    crate::preflight::check(&cfg)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot install signal handler: {e}"))?;
    }

    let Up {
        eal,
        pool,
        rx_pools,
        ports,
        internet_rss,
    } = bring_up(&cfg)?;

    let cfg = Arc::new(cfg);
    let nports = ports.len();
    let stats: Vec<Arc<WorkerStats>> = cfg
        .worker_lcores
        .iter()
        .enumerate()
        .map(|(i, l)| Arc::new(WorkerStats::new(i, *l, nports)))
        .collect();

    let dataplane = Arc::new(DataPlane {
        ports: ports
            .iter()
            .zip(&cfg.ports)
            .map(|(p, c)| (*p, c.name.clone(), c.role.as_str()))
            .collect(),
        pools: std::iter::once(pool).chain(rx_pools).collect(),
        pool_size: u64::from(cfg.limits.mbufs),
    });
    let mgmt = match cfg.management {
        Some(addr) => {
            let st = Arc::new(MgmtState {
                config_json: serde_json::to_string_pretty(&cfg.raw).unwrap_or_default(),
                workers: stats.clone(),
                dataplane: dataplane.clone(),
                started: Instant::now(),
                port_names: cfg.ports.iter().map(|p| p.name.clone()).collect(),
                nat_pool: match cfg.raw.nat.source {
                    nf_app::config::NatSource::Pool => cfg.raw.nat.pool.clone().unwrap_or_default(),
                    nf_app::config::NatSource::SubscriberFixed => "subscriber-fixed".into(),
                    nf_app::config::NatSource::None => "none".into(),
                },
            });
            let h = nf_app::mgmt::spawn(addr, st, Arc::clone(&stop));
            match h {
                Ok(h) => {
                    tracing::info!(%addr, "management listening");
                    Some(h)
                }
                Err(e) => {
                    stop_ports(&ports);
                    return Err(e);
                }
            }
        }
        None => None,
    };

    let mut launched = Vec::new();
    let mut launch_err = None;
    // DESIGN.md §4: a ring per worker for packets of its sessions that
    // arrive on another worker's queues
    let inboxes: Arc<Vec<worker::Inbox>> = Arc::new(
        cfg.worker_lcores
            .iter()
            .map(|_| worker::Inbox::new(4096))
            .collect(),
    );
    let directory = Arc::new(nf_app::convert::shard::Directory::default());
    for (i, lcore) in cfg.worker_lcores.iter().enumerate() {
        if !Eal::lcore_enabled(*lcore) {
            launch_err = Some(format!("worker lcore {lcore} is not available to the EAL"));
            break;
        }
        let w = worker::Worker {
            index: i,
            inboxes: Arc::clone(&inboxes),
            directory: Arc::clone(&directory),
            rss: internet_rss.clone(),
            cfg: Arc::clone(&cfg),
            ports: ports.clone(),
            pool,
            stats: Arc::clone(&stats[i]),
            stop: Arc::clone(&stop),
        };
        match dpdk::lcore::launch(*lcore, move || w.run()) {
            Ok(()) => launched.push(*lcore),
            Err(e) => {
                launch_err = Some(e);
                break;
            }
        }
    }
    if launch_err.is_none() {
        tracing::info!(workers = launched.len(), "running; SIGINT/SIGTERM to stop");
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::info!("stopping");
    }
    stop.store(true, Ordering::Relaxed);
    let mut failed = 0;
    for l in launched {
        if dpdk::lcore::wait(l) != 0 {
            failed += 1;
        }
    }
    if let Some(h) = mgmt {
        let _ = h.join();
    }
    // packets still handed over belong to the pool: back before EAL goes
    for q in inboxes.iter() {
        while q.pop().is_some() {}
    }
    stop_ports(&ports);
    drop(eal);
    if let Some(e) = launch_err {
        return Err(e);
    }
    if failed > 0 {
        return Err(format!("{failed} worker(s) failed"));
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

fn stop_ports(ports: &[Port]) {
    for p in ports {
        p.stop();
    }
}

/// What [`bring_up`] started.
pub struct Up {
    pub eal: Eal,
    pub pool: Mempool,
    /// The receive pools of af_xdp ports (see [`bring_up`]).
    pub rx_pools: Vec<Mempool>,
    pub ports: Vec<Port>,
    /// The RSS every internet port was programmed with, when all were
    /// (hagw then knows the queue a server's reply arrives on).
    pub internet_rss: Option<nf_app::convert::rss::Rss>,
}

/// EAL, the packet pool and every configured port, started.
pub fn bring_up(cfg: &Config) -> Result<Up, String> {
    let args = cfg.eal_args();
    tracing::info!(args = ?args, "starting EAL");
    let eal = Eal::init(&args).map_err(|e| {
        format!("DPDK EAL init failed: {e} (EAL args: {}) — check eal.args, free memory/hugepages and that no other DPDK process uses the same --file-prefix", args.join(" "))
    })?;

    let pool = Mempool::create("hagw_pkt", cfg.limits.mbufs, cfg.limits.mbuf_cache, -1)?;
    let mut rx_pools = Vec::new();
    let mut ports = Vec::new();
    let mut internet_rss: Option<Option<nf_app::convert::rss::Rss>> = None;
    for p in &cfg.ports {
        let port = Port::by_name(p.device.dpdk_name()).ok_or_else(|| {
            format!("port {}: DPDK did not probe device `{}` (check port.device; PMDs load from /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0)", p.name, p.device.dpdk_name())
        })?;
        let setup = dpdk::port::PortSetup {
            queues: p.queues,
            rx_desc: p.rx_desc,
            tx_desc: p.tx_desc,
            mtu: p.mtu,
        };
        // af_xdp lays a port's UMEM over the pool its receive queue gets
        // and sends mbufs of that pool zero-copy. With hagw's one pool under
        // every af_xdp port, frames were lost on the lab (kernel 6.18, DPDK
        // 22.11): now and then the PMD counted hundreds of frames as sent
        // that srv1 never transmitted, and TCP's retransmissions went the
        // same way (scripts/bench/xdp-tx-loss.sh: 11 collapsed uploads in
        // about 210 runs). With a receive pool per af_xdp port: none in 80.
        // hagw's own frames (from `pool`) are then copied into the UMEM by
        // the PMD.
        let rx_pool = if p.device.is_af_xdp() {
            rx_pools.push(Mempool::create(
                &format!("hagw_rx{}", ports.len()),
                cfg.limits.mbufs,
                cfg.limits.mbuf_cache,
                -1,
            )?);
            rx_pools.last().unwrap_or(&pool)
        } else {
            &pool
        };
        let rss = port
            .setup(&setup, rx_pool)
            .map_err(|e| format!("port {} ({}): {e}", p.name, p.device.dpdk_name()))?;
        let rss_known = rss.is_some();
        if p.role == nf_app::config::PortRole::Internet {
            internet_rss = Some(match internet_rss {
                None => rss,
                Some(prev) => prev.filter(|r| Some(r) == rss.as_ref()),
            });
        }
        tracing::info!(port = %p.name, id = port.id, mac = %nf_core::wire::EthernetAddress(port.mac()), tx_chains = port.tx_multi_seg(), rx_ip_checksum = port.rx_ip_checksum(), rx_tcp_checksum = port.rx_tcp_checksum(), tx_tcp_checksum = port.tx_tcp_checksum(), rss_known, "port started");
        ports.push(port);
    }

    Ok(Up {
        eal,
        pool,
        rx_pools,
        ports,
        internet_rss: internet_rss.flatten(),
    })
}
