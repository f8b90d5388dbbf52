//! The worker loop on an EAL lcore: poll every port's RX queue in bursts,
//! run each packet through the pipeline to completion, transmit in bursts
//! with bounded retries.

use crate::dpdk::{self, Mbuf, Mempool, Port};
use nf_app::config::Config;
use nf_app::convert::shard::{Directory, Shard};
use nf_app::convert::{keys::KeyGen, policy::Policy, Converter};
use nf_app::pipeline::{routing_table, BufPool, Pipeline, PipelineLimits, PortCtx};
use nf_app::stats::{Drop, WorkerStats};
use nf_core::wire::{ethernet, EtherType, EthernetAddress};
use nf_core::PacketBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

struct MbufPool(Mempool);

impl BufPool<Mbuf> for MbufPool {
    #[inline]
    fn alloc(&mut self) -> Option<Mbuf> {
        self.0.alloc()
    }
}

/// A worker's ring of packets handed over by the others: (input port,
/// packet from its link header on).
pub type Inbox = crossbeam_queue::ArrayQueue<(u16, Mbuf)>;

/// af_xdp in copy mode hands the kernel what its TX ring holds only in
/// the `sendto` that each `tx_burst` ends with, and that call may leave
/// frames behind. On the lab (kernel 6.18, DPDK 22.11, veth) some 730
/// frames stayed in srv1's ring while the PMD counted them sent, until
/// later bursts pushed them out a dozen at a time; when hagw had nothing
/// more to send to the server (its window full of those very frames) only
/// its retransmission timer called again: uploads stalled for seconds
/// (`scripts/bench/xdp-tx-loss.sh`: with RPS steering the peers' receive
/// to the other core, the first upload after hagw started, each time).
/// So an af_xdp port that sent
/// something in the last `WINDOW_NS` is offered an empty burst (a kick)
/// at most every `EVERY_NS` while it has nothing else to send. A kick per
/// idle loop instead cost a third of the lab's throughput (a syscall
/// each); at this rate it is at most 10,000 a second per port.
#[derive(Clone, Copy, Debug, Default)]
struct TxKick {
    /// The port's driver needs it (af_xdp).
    on: bool,
    last_tx: Option<u64>,
    last_kick: u64,
}

impl TxKick {
    const WINDOW_NS: u64 = 50_000_000;
    const EVERY_NS: u64 = 100_000;

    fn new(on: bool) -> TxKick {
        TxKick {
            on,
            ..Default::default()
        }
    }

    /// The port was handed packets (its burst ended with a kick of its own).
    fn sent(&mut self, now: u64) {
        self.last_tx = Some(now);
        self.last_kick = now;
    }

    /// Whether to kick the port now that it has nothing to send; notes the
    /// kick.
    fn due(&mut self, now: u64) -> bool {
        let due = self.on
            && self
                .last_tx
                .is_some_and(|t| now.saturating_sub(t) < Self::WINDOW_NS)
            && now.saturating_sub(self.last_kick) >= Self::EVERY_NS;
        if due {
            self.last_kick = now;
        }
        due
    }
}

pub struct Worker {
    pub index: usize,
    /// Every worker's inbox, by worker index (DESIGN.md §4).
    pub inboxes: Arc<Vec<Inbox>>,
    pub directory: Arc<Directory>,
    /// The internet ports' RSS, when hagw programmed it (NAT ports are then
    /// picked so that replies arrive on the owner's queue).
    pub rss: Option<nf_app::convert::rss::Rss>,
    pub cfg: Arc<Config>,
    pub ports: Vec<Port>,
    pub pool: Mempool,
    pub stats: Arc<WorkerStats>,
    pub stop: Arc<AtomicBool>,
}

impl Worker {
    /// Runs the packets other workers handed over (at most a burst), then
    /// hands this worker's strays to their owners; returns how many came in.
    fn hand_over<A: BufPool<Mbuf>>(
        &self,
        pipe: &mut Pipeline<Mbuf, A>,
        now_ns: u64,
        rx: &mut Vec<Mbuf>,
    ) -> usize {
        if self.inboxes.len() < 2 {
            return 0;
        }
        let mut n = 0;
        if let Some(inbox) = self.inboxes.get(self.index) {
            while n < self.cfg.burst {
                let Some((port, m)) = inbox.pop() else { break };
                n += 1;
                rx.clear();
                rx.push(m);
                pipe.process_burst(now_ns, port, rx);
            }
        }
        let st = &*self.stats;
        for (w, port, m) in pipe.handoffs().drain(..) {
            let pushed = self
                .inboxes
                .get(usize::from(w))
                .is_some_and(|q| q.push((port, m)).is_ok());
            if !pushed {
                st.dropped(Drop::HandoffFull);
            }
        }
        n
    }

    /// Every worker keeps its own neighbour tables, but an ARP or ND
    /// answer lands on one queue only (RSS / fanout hash): each worker gets
    /// a copy of the ARP and neighbour discovery frames (RFC 826, RFC 4861
    /// §4.3/§4.4) another received. They are rare; the copy is counted as
    /// a handoff.
    fn share_neighbour_frames(&self, port: u16, rx: &[Mbuf]) {
        for m in rx {
            let d = m.data();
            let Ok(f) = ethernet::Frame::new_checked(d) else {
                continue;
            };
            // ARP, or ICMPv6 (next header 58) neighbour solicitation (135)
            // or advertisement (136), VLAN-tagged or not
            let ip = f.payload();
            let shared = match f.ethertype() {
                EtherType::Arp => true,
                EtherType::Ipv6 => ip.get(6) == Some(&58) && matches!(ip.get(40), Some(135 | 136)),
                _ => false,
            };
            if !shared {
                continue;
            }
            for (w, q) in self.inboxes.iter().enumerate() {
                if w == self.index {
                    continue;
                }
                let Some(mut c) = self.pool.alloc() else {
                    self.stats.dropped(Drop::NoMbuf);
                    break;
                };
                let Some(b) = c.append(d.len()) else { continue };
                b.copy_from_slice(d);
                self.stats.conv.handoffs.inc();
                if q.push((port, c)).is_err() {
                    self.stats.dropped(Drop::HandoffFull);
                }
            }
        }
    }

    pub fn run(self) {
        let ctx: Vec<PortCtx> = self
            .cfg
            .ports
            .iter()
            .zip(&self.ports)
            .map(|(c, p)| PortCtx::new(c, EthernetAddress(p.mac())))
            .collect();
        let mut pipe = Pipeline::new(
            ctx,
            routing_table(&self.cfg),
            PipelineLimits::from_config(&self.cfg),
            MbufPool(self.pool),
            Arc::clone(&self.stats),
        );
        if self.cfg.raw.conversion.enabled {
            match KeyGen::from_os() {
                Some(keys) => {
                    let mut conv = Converter::new(
                        Policy::from_config(&self.cfg),
                        keys,
                        Arc::clone(&self.stats),
                    );
                    if self.inboxes.len() > 1 {
                        conv.set_shard(
                            Shard::new(self.index, self.inboxes.len()),
                            Arc::clone(&self.directory),
                            self.rss.clone(),
                        );
                    }
                    pipe.enable_conversion(conv);
                }
                None => {
                    eprintln!("hagw: worker {}: cannot read /dev/urandom for MPTCP keys; conversion is off (fix: mount /dev)", self.index);
                }
            }
        }
        // payload held by reference may take half of this worker's share
        // of the pool (src/dpdk/chunk.rs)
        let workers = self.cfg.worker_lcores.len().max(1);
        dpdk::chunk::set_pin_limit(self.cfg.limits.mbufs as usize / 2 / workers);
        // chained packets only where every port sends them (else the
        // converter copies payload behind its headers)
        pipe.set_tx_chains(self.ports.iter().all(Port::tx_multi_seg));
        for (i, p) in self.ports.iter().enumerate() {
            pipe.set_rx_ip_checksum(i as u16, p.rx_ip_checksum());
            pipe.set_rx_tcp_checksum(i as u16, p.rx_tcp_checksum());
            pipe.set_tx_tcp_checksum(i as u16, p.tx_tcp_checksum());
        }
        let queue = self.index as u16;
        let burst = self.cfg.burst;
        let retries = self.cfg.limits.tx_retries;
        let mut rx: Vec<Mbuf> = Vec::with_capacity(burst);
        let st = &*self.stats;
        let clock = dpdk::Clock::start();
        let mut last = dpdk::tsc();
        // whether the iteration that began at `last` received anything
        let mut was_busy = false;
        // link state, checked once a second (REMOVE_ADDR when a port with
        // advertised addresses goes down)
        let mut link_up: Vec<bool> = self.ports.iter().map(|p| p.link().up).collect();
        let mut next_link_check = 0u64;
        let mut kicks: Vec<TxKick> = self
            .cfg
            .ports
            .iter()
            .map(|p| TxKick::new(p.device.is_af_xdp()))
            .collect();
        while !self.stop.load(Ordering::Relaxed) {
            // one TSC reading per iteration: the clock of this one and the
            // cycles of the last
            let t = dpdk::tsc();
            let now_ns = clock.at(t);
            let dt = t.wrapping_sub(last);
            last = t;
            st.iterations.inc();
            st.cycles_total.add(dt);
            if was_busy {
                st.busy_iterations.inc();
                st.cycles_busy.add(dt);
            }
            let mut got = 0usize;
            for (pi, port) in self.ports.iter().enumerate() {
                let n = port.rx_burst(queue, &mut rx);
                if n == 0 {
                    continue;
                }
                got += n;
                let pc = &st.ports[pi];
                pc.rx_packets.add(n as u64);
                pc.rx_bytes.add(rx.iter().map(|m| m.pkt_len() as u64).sum());
                if self.inboxes.len() > 1 {
                    self.share_neighbour_frames(pi as u16, &rx);
                }
                pipe.process_burst(now_ns, pi as u16, &mut rx);
            }
            got += self.hand_over(&mut pipe, now_ns, &mut rx);
            pipe.poll_timers(now_ns);
            pipe.poll_conversion(now_ns);
            if now_ns >= next_link_check && pipe.converter().is_some() {
                next_link_check = now_ns + 1_000_000_000;
                st.conv
                    .payload_buffers_held
                    .set(dpdk::chunk::pinned() as u64);
                for (pi, port) in self.ports.iter().enumerate() {
                    let up = port.link().up;
                    if link_up.get(pi) != Some(&up) {
                        if let Some(l) = link_up.get_mut(pi) {
                            *l = up;
                        }
                        pipe.set_port_up(pi as u16, up);
                    }
                }
            }
            for (pi, port) in self.ports.iter().enumerate() {
                let Some(q) = pipe.tx_queue(pi) else { continue };
                let kick = kicks.get_mut(pi);
                if q.is_empty() {
                    if kick.is_some_and(|k| k.due(now_ns)) {
                        port.kick(queue);
                    }
                    continue;
                }
                if let Some(k) = kick {
                    k.sent(now_ns);
                }
                let before: u64 = q.iter().map(|m| m.pkt_len() as u64).sum();
                let mut sent = 0;
                for _ in 0..retries {
                    sent += port.tx_burst(queue, q);
                    if q.is_empty() {
                        break;
                    }
                }
                let left: u64 = q.iter().map(|m| m.pkt_len() as u64).sum();
                for _ in q.drain(..) {
                    st.dropped(Drop::TxFailed);
                }
                let pc = &st.ports[pi];
                pc.tx_packets.add(sent as u64);
                pc.tx_bytes.add(before - left);
            }
            was_busy = got > 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TxKick;

    #[test]
    fn an_af_xdp_port_is_kicked_at_the_set_rate_for_a_while_after_it_sent() {
        let mut k = TxKick::new(true);
        // never sent: nothing to push out
        assert!(!k.due(1_000_000));
        k.sent(1_000_000);
        // not again right after its own burst's kick
        assert!(!k.due(1_000_000 + TxKick::EVERY_NS - 1));
        assert!(k.due(1_000_000 + TxKick::EVERY_NS));
        // at most one per interval
        assert!(!k.due(1_000_000 + TxKick::EVERY_NS + 1));
        assert!(k.due(1_000_000 + 2 * TxKick::EVERY_NS));
        // until the window after the last send has passed
        assert!(!k.due(1_000_000 + TxKick::WINDOW_NS));
        // another driver: never
        let mut other = TxKick::new(false);
        other.sent(0);
        assert!(!other.due(TxKick::EVERY_NS));
    }
}
