//! The management thread: HTTP on the configured address with
//! `GET /metrics` (Prometheus text format), `GET /healthz`, `GET /config`
//! and `GET /sessions` (the conversion point's live sessions, paged).
//! It only reads per-core counters and ethdev statistics; it never touches a
//! worker's hot path or allocates mbufs.

use crate::stats::{
    ConvStats, Drop, Event, JoinRefuse, Layer, NatDrop, NatProto, Refuse, Side, WorkerStats,
};
use nf_core::counters::CounterSet;
use nf_core::wire::Error as WireError;
use prometheus::core::Collector;
use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Port-level numbers the management thread reads from the NIC driver.
#[derive(Clone, Debug, Default)]
pub struct PortSnapshot {
    pub name: String,
    pub role: &'static str,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_nombuf: u64,
    pub link_up: bool,
    pub link_speed_mbps: u32,
}

/// What the data plane exposes to the management thread.
pub trait DataPlaneView: Send + Sync {
    fn ports(&self) -> Vec<PortSnapshot>;
    /// (mbufs in use, pool size)
    fn mbuf_pool(&self) -> (u64, u64);
}

/// Shared state of the management server.
pub struct MgmtState {
    pub config_json: String,
    pub workers: Vec<Arc<WorkerStats>>,
    pub dataplane: Arc<dyn DataPlaneView>,
    pub started: Instant,
    pub port_names: Vec<String>,
    /// The NAT pool's label in metrics (`pool`, or the source kind).
    pub nat_pool: String,
}

fn counter_vec(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let v = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
    let _ = reg.register(Box::new(v.clone()));
    v
}

fn gauge_vec(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let v = IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    let _ = reg.register(Box::new(v.clone()));
    v
}

/// Renders every metric in the Prometheus text format.
pub fn render_metrics(st: &MgmtState) -> String {
    let reg = Registry::new();
    let c = |n: &str, h: &str, l: &[&str]| counter_vec(&reg, n, h, l);
    let g = |n: &str, h: &str, l: &[&str]| gauge_vec(&reg, n, h, l);

    g("hagw_up", "1 while hagw runs", &[])
        .with_label_values(&[])
        .set(1);
    g("hagw_uptime_seconds", "Seconds since start", &[])
        .with_label_values(&[])
        .set(st.started.elapsed().as_secs() as i64);

    let ports = st.dataplane.ports();
    let prx = c(
        "hagw_port_rx_packets_total",
        "Packets received by the port (ethdev stats)",
        &["port", "role"],
    );
    let ptx = c(
        "hagw_port_tx_packets_total",
        "Packets sent by the port (ethdev stats)",
        &["port", "role"],
    );
    let prxb = c(
        "hagw_port_rx_bytes_total",
        "Bytes received by the port",
        &["port", "role"],
    );
    let ptxb = c(
        "hagw_port_tx_bytes_total",
        "Bytes sent by the port",
        &["port", "role"],
    );
    let pmiss = c(
        "hagw_port_rx_missed_total",
        "Packets dropped by the NIC for lack of RX descriptors",
        &["port", "role"],
    );
    let perr = c(
        "hagw_port_rx_errors_total",
        "Erroneous packets received",
        &["port", "role"],
    );
    let poerr = c(
        "hagw_port_tx_errors_total",
        "Failed transmissions",
        &["port", "role"],
    );
    let pnombuf = c(
        "hagw_port_rx_nombuf_total",
        "RX mbuf allocation failures",
        &["port", "role"],
    );
    let plink = g(
        "hagw_port_link_up",
        "1 when the link is up",
        &["port", "role"],
    );
    let pspeed = g(
        "hagw_port_link_speed_bytes",
        "Link speed in bytes per second",
        &["port", "role"],
    );
    for p in &ports {
        let l = [p.name.as_str(), p.role];
        prx.with_label_values(&l).inc_by(p.rx_packets);
        ptx.with_label_values(&l).inc_by(p.tx_packets);
        prxb.with_label_values(&l).inc_by(p.rx_bytes);
        ptxb.with_label_values(&l).inc_by(p.tx_bytes);
        pmiss.with_label_values(&l).inc_by(p.rx_missed);
        perr.with_label_values(&l).inc_by(p.rx_errors);
        poerr.with_label_values(&l).inc_by(p.tx_errors);
        pnombuf.with_label_values(&l).inc_by(p.rx_nombuf);
        plink.with_label_values(&l).set(i64::from(p.link_up));
        pspeed
            .with_label_values(&l)
            .set(i64::from(p.link_speed_mbps) * 125_000);
    }

    let iters = c(
        "hagw_worker_loop_iterations_total",
        "Poll loop iterations",
        &["worker", "lcore"],
    );
    let busy_iters = c(
        "hagw_worker_busy_iterations_total",
        "Poll loop iterations that received packets",
        &["worker", "lcore"],
    );
    let busy = GaugeVec::new(
        Opts::new(
            "hagw_worker_busy_ratio",
            "Share of TSC cycles spent on iterations that received packets",
        ),
        &["worker", "lcore"],
    )
    .expect("static metric definition");
    let _ = reg.register(Box::new(busy.clone()));
    let wrx = c(
        "hagw_worker_rx_packets_total",
        "Packets received by the worker",
        &["worker", "port"],
    );
    let wrxb = c(
        "hagw_worker_rx_bytes_total",
        "Bytes received by the worker",
        &["worker", "port"],
    );
    let wtx = c(
        "hagw_worker_tx_packets_total",
        "Packets transmitted by the worker",
        &["worker", "port"],
    );
    let wtxb = c(
        "hagw_worker_tx_bytes_total",
        "Bytes transmitted by the worker",
        &["worker", "port"],
    );
    let perrs = c(
        "hagw_parse_errors_total",
        "Malformed packets dropped, by layer and reason",
        &["layer", "reason"],
    );
    let drops = c(
        "hagw_drops_total",
        "Packets dropped, by reason",
        &["reason"],
    );
    let events = c(
        "hagw_events_total",
        "ARP/ND/ICMP and forwarding events",
        &["event"],
    );
    let neigh = g(
        "hagw_neighbour_entries",
        "Neighbour table entries",
        &["worker", "family"],
    );
    let pending = g(
        "hagw_neighbour_pending_packets",
        "Packets waiting for neighbour resolution",
        &["worker"],
    );
    // Pre-create every label so that zero counters are visible too.
    for l in Layer::ALL {
        for e in WireError::ALL {
            let v: u64 = st.workers.iter().map(|w| w.parse_errors_of(*l, e)).sum();
            perrs.with_label_values(&[l.as_str(), e.as_str()]).inc_by(v);
        }
    }
    for d in Drop::ALL {
        drops
            .with_label_values(&[d.as_str()])
            .inc_by(st.workers.iter().map(|w| w.drops_of(*d)).sum());
    }
    for e in Event::ALL {
        events
            .with_label_values(&[e.as_str()])
            .inc_by(st.workers.iter().map(|w| w.events_of(*e)).sum());
    }
    for w in &st.workers {
        let id = w.worker.to_string();
        let lc = w.lcore.to_string();
        iters
            .with_label_values(&[&id, &lc])
            .inc_by(w.iterations.get());
        busy_iters
            .with_label_values(&[&id, &lc])
            .inc_by(w.busy_iterations.get());
        let total = w.cycles_total.get();
        busy.with_label_values(&[&id, &lc]).set(if total == 0 {
            0.0
        } else {
            w.cycles_busy.get() as f64 / total as f64
        });
        for (pi, pc) in w.ports.iter().enumerate() {
            let pn = st.port_names.get(pi).map_or("?", String::as_str);
            wrx.with_label_values(&[&id, pn])
                .inc_by(pc.rx_packets.get());
            wrxb.with_label_values(&[&id, pn]).inc_by(pc.rx_bytes.get());
            wtx.with_label_values(&[&id, pn])
                .inc_by(pc.tx_packets.get());
            wtxb.with_label_values(&[&id, pn]).inc_by(pc.tx_bytes.get());
        }
        neigh
            .with_label_values(&[&id, "ipv4"])
            .set(w.arp_entries.get() as i64);
        neigh
            .with_label_values(&[&id, "ipv6"])
            .set(w.nd_entries.get() as i64);
        pending
            .with_label_values(&[&id])
            .set(w.neighbour_pending.get() as i64);
    }

    render_conversion(st, &c, &g);

    let (in_use, size) = st.dataplane.mbuf_pool();
    g(
        "hagw_mbuf_pool_in_use",
        "Mbufs allocated from the packet pool",
        &[],
    )
    .with_label_values(&[])
    .set(in_use as i64);
    g("hagw_mbuf_pool_size", "Mbufs in the packet pool", &[])
        .with_label_values(&[])
        .set(size as i64);

    let mut out = Vec::new();
    let fams = reg.gather();
    if TextEncoder::new().encode(&fams, &mut out).is_err() {
        return String::new();
    }
    let _ = busy.desc();
    String::from_utf8(out).unwrap_or_default()
}

/// The conversion point's metrics (summed over workers; label values
/// pre-created so zero counters are visible).
fn render_conversion(
    st: &MgmtState,
    c: &dyn Fn(&str, &str, &[&str]) -> IntCounterVec,
    g: &dyn Fn(&str, &str, &[&str]) -> IntGaugeVec,
) {
    let sum = |f: &dyn Fn(&WorkerStats) -> u64| st.workers.iter().map(|w| f(w)).sum::<u64>();
    g(
        "hagw_conv_sessions_active",
        "Conversion sessions alive",
        &[],
    )
    .with_label_values(&[])
    .set(sum(&|w| w.conv.sessions_active.get()) as i64);
    type Read<'a> = &'a dyn Fn(&WorkerStats) -> u64;
    let simple: [(&str, &str, Read); 18] = [
        (
            "hagw_conv_segments_after_close_total",
            "Late client packets of ended sessions, dropped (never sent to the server)",
            &|w| w.conv.segments_after_close.get(),
        ),
        (
            "hagw_conv_subflows_reopened_total",
            "Client SYNs that opened a new connection on the tuple of a subflow in TIME-WAIT (RFC 6191)",
            &|w| w.conv.subflows_reopened.get(),
        ),
        (
            "hagw_conv_segments_no_session_total",
            "MPTCP subflow segments from the access that match no session: RST, never routed",
            &|w| w.conv.segments_no_session.get(),
        ),
        (
            "hagw_conv_handoffs_total",
            "Packets handed to the worker that owns their session (MP_JOIN token, NAT port)",
            &|w| w.conv.handoffs.get(),
        ),
        (
            "hagw_conv_syn_cookies_sent_total",
            "Cookie SYN/ACKs sent: the half-open budget was spent (SYN flood)",
            &|w| w.conv.syn_cookies_sent.get(),
        ),
        (
            "hagw_conv_syn_cookies_accepted_total",
            "Third ACKs that proved a SYN cookie: sessions opened statelessly",
            &|w| w.conv.syn_cookies_accepted.get(),
        ),
        (
            "hagw_conv_syn_cookies_invalid_total",
            "MP_CAPABLE ACKs of no session that were not a valid cookie",
            &|w| w.conv.syn_cookies_invalid.get(),
        ),
        (
            "hagw_conv_path_mtu_lowered_total",
            "ICMP fragmentation-needed and ICMPv6 packet-too-big errors that lowered the MSS of a connection hagw terminates (RFC 1191, RFC 8201)",
            &|w| w.conv.path_mtu_lowered.get(),
        ),
        (
            "hagw_conv_icmp_translated_total",
            "ICMP errors about a packet of a withdrawn connection, NATed toward the end that sent it (RFC 5508)",
            &|w| w.conv.icmp_translated.get(),
        ),
        (
            "hagw_conv_sessions_evicted_total",
            "Half-open sessions reset to make room for new ones (SYN floods)",
            &|w| w.conv.sessions_evicted.get(),
        ),
        (
            "hagw_conv_sessions_created_total",
            "Conversion sessions created",
            &|w| w.conv.sessions_created.get(),
        ),
        (
            "hagw_conv_sessions_withdrawn_total",
            "Sessions withdrawn: the server speaks MPTCP, hagw only NATs",
            &|w| w.conv.sessions_withdrawn.get(),
        ),
        (
            "hagw_conv_sessions_fallback_total",
            "Client connections that fell back to plain TCP (RFC 8684 3.7)",
            &|w| w.conv.sessions_fallback.get(),
        ),
        (
            "hagw_conv_sessions_closed_total",
            "Conversion sessions removed",
            &|w| w.conv.sessions_closed.get(),
        ),
        (
            "hagw_conv_sessions_timed_out_total",
            "Sessions reset after the idle timeout",
            &|w| w.conv.sessions_timed_out.get(),
        ),
        (
            "hagw_conv_joins_accepted_total",
            "MP_JOIN subflows attached",
            &|w| w.conv.joins_accepted.get(),
        ),
        (
            "hagw_conv_payload_bytes_copied_total",
            "Payload bytes copied between packet buffers and the engines",
            &|w| w.conv.payload_bytes_copied.get(),
        ),
        (
            "hagw_conv_segments_malformed_total",
            "Session segments dropped as malformed",
            &|w| w.conv.segments_malformed.get(),
        ),
    ];
    for (n, h, f) in simple {
        c(n, h, &[]).with_label_values(&[]).inc_by(sum(f));
    }
    g(
        "hagw_conv_splice_queue_bytes",
        "Bytes held in splice queues and engine buffers",
        &[],
    )
    .with_label_values(&[])
    .set(sum(&|w| w.conv.splice_queue_bytes.get()) as i64);
    g(
        "hagw_conv_payload_buffers_held",
        "References to received packet buffers held as payload (spliced without copying)",
        &[],
    )
    .with_label_values(&[])
    .set(sum(&|w| w.conv.payload_buffers_held.get()) as i64);
    let pool = st.nat_pool.as_str();
    g(
        "hagw_conv_nat_ports_in_use",
        "NAT ports bound, per pool",
        &["pool"],
    )
    .with_label_values(&[pool])
    .set(sum(&|w| w.conv.nat_ports_in_use.get()) as i64);
    let refused = c(
        "hagw_conv_sessions_refused_total",
        "New sessions refused (RST to the client), by reason",
        &["reason"],
    );
    for r in Refuse::ALL {
        refused
            .with_label_values(&[r.as_str()])
            .inc_by(sum(&|w| w.conv.refused.get(*r as usize)));
    }
    // NAT of routed traffic (UDP, ICMP queries, plain TCP)
    let nb = g(
        "hagw_nat_bindings",
        "NAT bindings of routed traffic, by protocol",
        &["proto"],
    );
    let nc = c(
        "hagw_nat_bindings_created_total",
        "NAT bindings of routed traffic made, by protocol",
        &["proto"],
    );
    let ne = c(
        "hagw_nat_bindings_expired_total",
        "NAT bindings of routed traffic expired after their idle timeout, by protocol",
        &["proto"],
    );
    for p in NatProto::ALL {
        let i = *p as usize;
        let l = [p.as_str()];
        nb.with_label_values(&l)
            .set(sum(&|w| w.conv.nat_bindings.get(i)) as i64);
        nc.with_label_values(&l)
            .inc_by(sum(&|w| w.conv.nat_bindings_created.get(i)));
        ne.with_label_values(&l)
            .inc_by(sum(&|w| w.conv.nat_bindings_expired.get(i)));
    }
    let np = c(
        "hagw_nat_packets_total",
        "Routed packets NATed, toward the Internet (out) and back to a subscriber (in)",
        &["direction"],
    );
    for (i, d) in ["out", "in"].iter().enumerate() {
        np.with_label_values(&[d])
            .inc_by(sum(&|w| w.conv.nat_packets.get(i)));
    }
    let nd = c(
        "hagw_nat_dropped_total",
        "Routed packets the NAT policy covers that were dropped, by reason",
        &["reason"],
    );
    for r in NatDrop::ALL {
        nd.with_label_values(&[r.as_str()])
            .inc_by(sum(&|w| w.conv.nat_dropped.get(*r as usize)));
    }
    let joins = c(
        "hagw_conv_joins_refused_total",
        "MP_JOINs refused, by reason",
        &["reason"],
    );
    for r in JoinRefuse::ALL {
        joins
            .with_label_values(&[r.as_str()])
            .inc_by(sum(&|w| w.conv.joins_refused.get(*r as usize)));
    }
    let sf = g(
        "hagw_conv_subflows",
        "Live subflows, by access role",
        &["role"],
    );
    let rxp = c(
        "hagw_conv_rx_packets_total",
        "Packets received by the conversion point, by side",
        &["role"],
    );
    let rxb = c(
        "hagw_conv_rx_bytes_total",
        "Bytes received by the conversion point, by side",
        &["role"],
    );
    let txp = c(
        "hagw_conv_tx_packets_total",
        "Packets sent by the conversion point, by side",
        &["role"],
    );
    let txb = c(
        "hagw_conv_tx_bytes_total",
        "Bytes sent by the conversion point, by side",
        &["role"],
    );
    type BySide = fn(&ConvStats) -> &CounterSet<{ Side::COUNT }>;
    let loss: [(&str, &str, BySide); 4] = [
        (
            "hagw_conv_tcp_retransmits_total",
            "TCP segments hagw resent, by the side they went to",
            |c| &c.tcp_retransmits,
        ),
        (
            "hagw_conv_tcp_timeouts_total",
            "TCP retransmission timeouts of hagw's connections, by side",
            |c| &c.tcp_timeouts,
        ),
        (
            "hagw_conv_tcp_fast_recoveries_total",
            "TCP fast recoveries (RFC 6675) of hagw's connections, by side",
            |c| &c.tcp_fast_recoveries,
        ),
        (
            "hagw_conv_tcp_loss_probes_total",
            "TCP loss probes (RFC 8985) of hagw's connections, by side",
            |c| &c.tcp_loss_probes,
        ),
    ];
    let loss = loss.map(|(name, help, f)| (c(name, help, &["role"]), f));
    for side in Side::ALL {
        let i = *side as usize;
        let l = [side.as_str()];
        for (m, f) in &loss {
            m.with_label_values(&l).inc_by(sum(&|w| f(&w.conv).get(i)));
        }
        sf.with_label_values(&l)
            .set(sum(&|w| w.conv.subflows.get(i)) as i64);
        rxp.with_label_values(&l)
            .inc_by(sum(&|w| w.conv.rx_packets.get(i)));
        rxb.with_label_values(&l)
            .inc_by(sum(&|w| w.conv.rx_bytes.get(i)));
        txp.with_label_values(&l)
            .inc_by(sum(&|w| w.conv.tx_packets.get(i)));
        txb.with_label_values(&l)
            .inc_by(sum(&|w| w.conv.tx_bytes.get(i)));
    }
}

/// `GET /sessions?offset=N&limit=M`: the live sessions of every worker,
/// oldest first, one page.
pub fn sessions_json(st: &MgmtState, query: &str) -> String {
    let arg = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let offset = arg("offset").unwrap_or(0);
    let limit = arg("limit").unwrap_or(100).min(1000);
    // ask every worker for a fresh list and give them a moment to publish
    // each worker lists its offset + limit oldest: the page is among them
    for w in &st.workers {
        w.want_sessions(offset.saturating_add(limit));
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(200)
        && st
            .workers
            .iter()
            .any(|w| w.sessions_wanted.load(Ordering::Relaxed))
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut all = Vec::new();
    for w in &st.workers {
        if let Ok(l) = w.sessions.lock() {
            all.extend(l.iter().cloned());
        }
    }
    all.sort_by_key(|s| std::cmp::Reverse(s.age_ms));
    let total: usize = st
        .workers
        .iter()
        .map(|w| w.sessions_total.load(Ordering::Relaxed))
        .sum();
    let page: Vec<_> = all.into_iter().skip(offset).take(limit).collect();
    serde_json::json!({
        "total": total,
        "offset": offset,
        "limit": limit,
        "sessions": page,
    })
    .to_string()
}

/// Starts the HTTP server on its own thread. It stops when `stop` is set.
pub fn spawn(
    addr: SocketAddr,
    st: Arc<MgmtState>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, String> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| format!("management: cannot listen on {addr}: {e}"))?;
    std::thread::Builder::new()
        .name("hagw-mgmt".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let req = match server.recv_timeout(Duration::from_millis(100)) {
                    Ok(Some(r)) => r,
                    Ok(None) => continue,
                    Err(_) => break,
                };
                let _ = respond(&st, req);
            }
        })
        .map_err(|e| format!("management: cannot start thread: {e}"))
}

fn header(k: &str, v: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("static header")
}

fn respond(st: &MgmtState, req: tiny_http::Request) -> std::io::Result<()> {
    let path = req.url().split('?').next().unwrap_or("").to_string();
    if *req.method() != tiny_http::Method::Get {
        return req.respond(
            tiny_http::Response::from_string("method not allowed\n").with_status_code(405),
        );
    }
    match path.as_str() {
        "/metrics" => req.respond(
            tiny_http::Response::from_string(render_metrics(st)).with_header(header(
                "Content-Type",
                "text/plain; version=0.0.4; charset=utf-8",
            )),
        ),
        "/healthz" => {
            let ports = st.dataplane.ports();
            let down: Vec<&str> = ports
                .iter()
                .filter(|p| !p.link_up)
                .map(|p| p.name.as_str())
                .collect();
            let body = serde_json::json!({
                "status": "ok",
                "uptime_seconds": st.started.elapsed().as_secs(),
                "workers": st.workers.len(),
                "ports_down": down,
            });
            req.respond(
                tiny_http::Response::from_string(body.to_string())
                    .with_header(header("Content-Type", "application/json")),
            )
        }
        "/sessions" => {
            let q = req.url().split_once('?').map_or("", |(_, q)| q).to_string();
            req.respond(
                tiny_http::Response::from_string(sessions_json(st, &q))
                    .with_header(header("Content-Type", "application/json")),
            )
        }
        "/config" => req.respond(
            tiny_http::Response::from_string(st.config_json.clone())
                .with_header(header("Content-Type", "application/json")),
        ),
        _ => req.respond(
            tiny_http::Response::from_string(
                "not found: try /metrics, /healthz, /config, /sessions\n",
            )
            .with_status_code(404),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OnePort;
    impl DataPlaneView for OnePort {
        fn ports(&self) -> Vec<PortSnapshot> {
            vec![PortSnapshot {
                name: "p".into(),
                role: "internet",
                ..PortSnapshot::default()
            }]
        }
        fn mbuf_pool(&self) -> (u64, u64) {
            (0, 0)
        }
    }

    /// `GET /sessions` pages through a live worker's table: the total is
    /// every session, each page the next oldest, and the worker is asked
    /// for no more than offset + limit entries.
    #[test]
    fn sessions_are_paged_oldest_first_from_a_running_worker() {
        use crate::convlab::{ConvLab, Workload};
        use std::sync::mpsc;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let worker = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut lab = ConvLab::new(crate::convlab::CONVERSION, 5);
                let hold = Workload::held(100, false);
                for _ in 0..25 {
                    lab.connect(5201, hold);
                    // one at a time: each session a little older than the next
                    lab.run_until(1_000_000_000, |l| {
                        l.clients.iter().all(|c| c.received == 100)
                    });
                }
                let _ = tx.send((lab.sessions(), Arc::clone(&lab.pipe.stats)));
                while !stop.load(Ordering::Relaxed) {
                    lab.step(1_000_000);
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        let (n, ws) = rx.recv().expect("the worker started");
        assert_eq!(n, 25);
        let st = MgmtState {
            config_json: String::new(),
            workers: vec![Arc::clone(&ws)],
            dataplane: Arc::new(OnePort),
            started: Instant::now(),
            port_names: vec!["p".into()],
            nat_pool: "subscriber-fixed".into(),
        };
        let page = |q: &str| -> serde_json::Value {
            serde_json::from_str(&sessions_json(&st, q)).expect("JSON")
        };
        let ids = |v: &serde_json::Value| -> Vec<u64> {
            v["sessions"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s["id"].as_u64()).collect())
                .unwrap_or_default()
        };
        let first = page("offset=0&limit=10");
        assert_eq!(first["total"], 25);
        assert_eq!(ws.sessions_depth.load(Ordering::Relaxed), 10);
        assert_eq!(ws.sessions.lock().map(|l| l.len()).ok(), Some(10));
        let second = page("offset=10&limit=10");
        let last = page("offset=20&limit=10");
        stop.store(true, Ordering::Relaxed);
        let _ = worker.join();
        let all: Vec<u64> = [&first, &second, &last]
            .iter()
            .flat_map(|v| ids(v))
            .collect();
        assert_eq!(all.len(), 25, "{all:?}");
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 25, "no session twice: {all:?}");
        // oldest first: sessions were created one after the other
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    }

    /// Every metric the shipped Grafana dashboard queries is rendered.
    #[test]
    fn the_dashboard_queries_only_metrics_that_exist() {
        let st = MgmtState {
            config_json: String::new(),
            workers: vec![Arc::new(WorkerStats::new(0, 1, 1))],
            dataplane: Arc::new(OnePort),
            started: Instant::now(),
            port_names: vec!["p".into()],
            nat_pool: "subscriber-fixed".into(),
        };
        let text = render_metrics(&st);
        let dash = include_str!("../../configs/grafana/hagw-conversion.json");
        let mut names: Vec<&str> = dash
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("hagw_") && w.len() > 5)
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() > 10, "{names:?}");
        for n in names {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(n) && l[n.len()..].starts_with(['{', ' '])),
                "{n} is not in /metrics"
            );
        }
    }
}
