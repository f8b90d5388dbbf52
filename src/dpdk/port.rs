//! Ethernet devices: configure, queues, RSS, start/stop, stats, link state,
//! and the rx/tx bursts of the workers.

use super::{ffi, Mbuf, Mempool};
use nf_app::convert::rss::{self, Rss};
use std::ffi::CString;

/// Port settings from the config.
#[derive(Clone, Debug)]
pub struct PortSetup {
    pub queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub mtu: u16,
}

/// A configured ethdev port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    pub id: u16,
}

/// Counters from `rte_eth_stats_get`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// Link state.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkState {
    pub up: bool,
    pub speed_mbps: u32,
}

// rte_ethdev.h RTE_ETH_RSS_* (RTE_BIT64 macros bindgen cannot evaluate).
const RSS_IP: u64 = (1 << 2) | (1 << 3) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 12) | (1 << 15);
const RSS_TCP: u64 = (1 << 4) | (1 << 10) | (1 << 16);
const RSS_UDP: u64 = (1 << 5) | (1 << 11) | (1 << 17);
// rte_ethdev.h RTE_ETH_TX_OFFLOAD_MULTI_SEGS.
const TX_MULTI_SEGS: u64 = 1 << 15;
// rte_ethdev.h RTE_ETH_TX_OFFLOAD_TCP_CKSUM.
const TX_TCP_CKSUM: u64 = 1 << 3;
// rte_ethdev.h RTE_ETH_RX_OFFLOAD_IPV4_CKSUM, RTE_ETH_RX_OFFLOAD_TCP_CKSUM.
const RX_IPV4_CKSUM: u64 = 1 << 1;
const RX_TCP_CKSUM: u64 = 1 << 3;

fn errno_text(rc: i32) -> String {
    std::io::Error::from_raw_os_error(rc.abs()).to_string()
}

impl Port {
    /// Finds a probed device by name (vdev name such as `net_af_packet0`, or
    /// a PCI address).
    pub fn by_name(name: &str) -> Option<Port> {
        let c = CString::new(name).ok()?;
        let mut id: u16 = 0;
        // SAFETY: valid C string and out-pointer.
        let rc = unsafe { ffi::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        (rc == 0).then_some(Port { id })
    }

    /// Configures queues (RSS over IP/TCP/UDP when more than one RX queue),
    /// sets the MTU and starts the port. With several queues and a device
    /// that takes hagw's 40-byte Toeplitz key and a redirection table, the
    /// RSS setup programmed is returned: hagw then knows which queue any
    /// packet arrives on (the conversion point picks NAT ports by it).
    pub fn setup(&self, s: &PortSetup, pool: &Mempool) -> Result<Option<Rss>, String> {
        let info = self.info()?;
        if s.queues > info.max_rx_queues || s.queues > info.max_tx_queues {
            return Err(format!(
                "{} queues requested, the device supports {} rx / {} tx (for net_af_packet add qpairs=N to the device string)",
                s.queues, info.max_rx_queues, info.max_tx_queues
            ));
        }
        let mut conf = ffi::rte_eth_conf::default();
        // chained mbufs (headers + payload by reference) where the PMD
        // sends them; elsewhere the converter copies payload behind its
        // headers
        // and TCP checksums of the segments the conversion point builds,
        // where the NIC computes them
        conf.txmode.offloads = info.tx_offload_capa & (TX_MULTI_SEGS | TX_TCP_CKSUM);
        // the NIC verifies IPv4 header checksums where it can: the fast
        // path then trusts its verdict (RFC 1812 §5.2.2 asks only that the
        // checksum be verified, not by whom)
        // and TCP checksums: the conversion point then does not sum a
        // segment's payload to verify it (RFC 9293 §3.1 asks that it be
        // verified, not by whom)
        conf.rxmode.offloads = info.rx_offload_capa & (RX_IPV4_CKSUM | RX_TCP_CKSUM);
        // hagw's key, padded for devices with longer keys (52 bytes on
        // some): hashing at most 36 bytes of input reads its first 40
        let mut key = vec![0u8; usize::from(info.hash_key_size).max(rss::KEY.len())];
        key[..rss::KEY.len()].copy_from_slice(&rss::KEY);
        let rss_hf = (RSS_IP | RSS_TCP | RSS_UDP) & info.flow_type_rss_offloads;
        let own_key = s.queues > 1
            && rss_hf & RSS_TCP != 0
            && usize::from(info.hash_key_size) >= rss::KEY.len()
            && info.reta_size > 0;
        if s.queues > 1 {
            conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            if own_key {
                // DPDK copies the key during configure
                conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = info.hash_key_size;
            }
        }
        // SAFETY: conf is a valid, initialised rte_eth_conf.
        let rc = unsafe { ffi::rte_eth_dev_configure(self.id, s.queues, s.queues, &conf) };
        if rc != 0 {
            return Err(format!("configure: {}", errno_text(rc)));
        }
        let (mut rxd, mut txd) = (s.rx_desc, s.tx_desc);
        // SAFETY: in/out pointers to locals.
        let rc = unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rxd, &mut txd) };
        if rc != 0 {
            return Err(format!("adjust descriptors: {}", errno_text(rc)));
        }
        // SAFETY: plain query.
        let socket = unsafe { ffi::rte_eth_dev_socket_id(self.id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..s.queues {
            // SAFETY: NULL rxconf/txconf select the driver defaults; the pool
            // outlives the port.
            let rc = unsafe {
                ffi::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    rxd,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(format!("rx queue {q}: {}", errno_text(rc)));
            }
            // SAFETY: as above.
            let rc =
                unsafe { ffi::rte_eth_tx_queue_setup(self.id, q, txd, socket, std::ptr::null()) };
            if rc != 0 {
                return Err(format!("tx queue {q}: {}", errno_text(rc)));
            }
        }
        // SAFETY: plain setter; some PMDs (af_packet) do not support it, which
        // is not fatal as long as the interface MTU already fits.
        let rc = unsafe { ffi::rte_eth_dev_set_mtu(self.id, s.mtu) };
        if rc != 0 && rc != -95 && rc != -38 {
            tracing::warn!(port = self.id, mtu = s.mtu, "set_mtu: {}", errno_text(rc));
        }
        // SAFETY: the port is configured.
        let rc = unsafe { ffi::rte_eth_dev_start(self.id) };
        if rc != 0 {
            return Err(format!("start: {}", errno_text(rc)));
        }
        // SAFETY: plain setter; failures only mean fewer frames reach us.
        unsafe {
            ffi::rte_eth_promiscuous_enable(self.id);
        }
        Ok(if own_key {
            self.program_reta(info.reta_size, s.queues)
        } else {
            None
        })
    }

    /// Sets the redirection table to entry i → queue i % queues; the RSS
    /// setup, or `None` when the device refuses.
    fn program_reta(&self, size: u16, queues: u16) -> Option<Rss> {
        let reta: Vec<u16> = (0..size).map(|i| i % queues).collect();
        let mut conf: Vec<ffi::rte_eth_rss_reta_entry64> = reta
            .chunks(64)
            .map(|c| {
                let mut e = ffi::rte_eth_rss_reta_entry64 {
                    mask: if c.len() == 64 {
                        u64::MAX
                    } else {
                        (1u64 << c.len()) - 1
                    },
                    ..Default::default()
                };
                e.reta[..c.len()].copy_from_slice(c);
                e
            })
            .collect();
        // SAFETY: `conf` holds reta_size / 64 (rounded up) entries, as the
        // call reads.
        let rc = unsafe { ffi::rte_eth_dev_rss_reta_update(self.id, conf.as_mut_ptr(), size) };
        if rc != 0 {
            tracing::warn!(
                port = self.id,
                "RSS redirection table not set: {}; replies are handed between workers in software",
                errno_text(rc)
            );
            return None;
        }
        Some(Rss {
            key: rss::KEY.to_vec(),
            reta,
        })
    }

    /// Can the port send chained (multi-segment) mbufs?
    pub fn tx_multi_seg(&self) -> bool {
        self.offers(|i| i.tx_offload_capa & TX_MULTI_SEGS)
    }

    /// Does the port verify received IPv4 header checksums (enabled by
    /// [`Port::setup`] where the device offers it)?
    pub fn rx_ip_checksum(&self) -> bool {
        self.offers(|i| i.rx_offload_capa & RX_IPV4_CKSUM)
    }

    /// Does the port compute the TCP checksums of what it sends (enabled
    /// by [`Port::setup`] where the device offers it)?
    pub fn tx_tcp_checksum(&self) -> bool {
        self.offers(|i| i.tx_offload_capa & TX_TCP_CKSUM)
    }

    /// Does the port verify received TCP checksums (enabled by
    /// [`Port::setup`] where the device offers it)?
    pub fn rx_tcp_checksum(&self) -> bool {
        self.offers(|i| i.rx_offload_capa & RX_TCP_CKSUM)
    }

    /// Whether the capability bits `bits` picks out are set.
    fn offers(&self, bits: impl FnOnce(&ffi::rte_eth_dev_info) -> u64) -> bool {
        self.info().is_ok_and(|i| bits(&i) != 0)
    }

    /// The device's capabilities (`rte_eth_dev_info_get`).
    fn info(&self) -> Result<ffi::rte_eth_dev_info, String> {
        let mut info = ffi::rte_eth_dev_info::default();
        // SAFETY: out-pointer to a default-initialised struct.
        let rc = unsafe { ffi::rte_eth_dev_info_get(self.id, &mut info) };
        if rc != 0 {
            return Err(format!("dev_info_get: {}", errno_text(rc)));
        }
        Ok(info)
    }

    /// The port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        let mut a = ffi::rte_ether_addr::default();
        // SAFETY: out-pointer to a local.
        unsafe {
            ffi::rte_eth_macaddr_get(self.id, &mut a);
        }
        a.addr_bytes
    }

    /// Stops and closes the port.
    pub fn stop(&self) {
        // SAFETY: stopping/closing a started port; errors are not actionable
        // at shutdown.
        unsafe {
            ffi::rte_eth_dev_stop(self.id);
            ffi::rte_eth_dev_close(self.id);
        }
    }

    /// Ethdev statistics (safe to call from the management thread).
    pub fn stats(&self) -> PortStats {
        let mut s = ffi::rte_eth_stats::default();
        // SAFETY: out-pointer to a local.
        let rc = unsafe { ffi::rte_eth_stats_get(self.id, &mut s) };
        if rc != 0 {
            return PortStats::default();
        }
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// Link state without waiting.
    pub fn link(&self) -> LinkState {
        let mut l = ffi::rte_eth_link::default();
        // SAFETY: out-pointer to a local.
        let rc = unsafe { ffi::rte_eth_link_get_nowait(self.id, &mut l) };
        if rc != 0 {
            return LinkState::default();
        }
        LinkState {
            up: l.link_status() != 0,
            speed_mbps: l.link_speed,
        }
    }

    /// Receives up to `out.capacity() - out.len()` packets (at most 64) into
    /// `out`. Does not allocate when `out` has the capacity.
    #[inline]
    pub fn rx_burst(&self, queue: u16, out: &mut Vec<Mbuf>) -> usize {
        let mut raw: [*mut ffi::rte_mbuf; 64] = [std::ptr::null_mut(); 64];
        let want = (out.capacity() - out.len()).min(64) as u16;
        // SAFETY: `raw` has room for `want` pointers; the returned mbufs are
        // owned by us.
        let n = unsafe { ffi::rte_eth_rx_burst(self.id, queue, raw.as_mut_ptr(), want) };
        for &m in &raw[..usize::from(n)] {
            if let Some(nn) = std::ptr::NonNull::new(m) {
                // SAFETY: rx_burst hands over ownership of each returned mbuf.
                out.push(unsafe { Mbuf::from_raw(nn) });
            }
        }
        usize::from(n)
    }

    /// Transmits from the front of `pkts`, removing the packets the driver
    /// took. Returns how many were sent; the rest stay in `pkts`.
    #[inline]
    pub fn tx_burst(&self, queue: u16, pkts: &mut Vec<Mbuf>) -> usize {
        if pkts.is_empty() {
            return 0;
        }
        let n = pkts.len().min(u16::MAX as usize) as u16;
        // SAFETY: Mbuf is repr(transparent) over a non-null rte_mbuf pointer,
        // so the Vec's buffer is an array of `n` mbuf pointers.
        let sent = unsafe {
            ffi::rte_eth_tx_burst(
                self.id,
                queue,
                pkts.as_mut_ptr() as *mut *mut ffi::rte_mbuf,
                n,
            )
        };
        let sent = usize::from(sent);
        // The driver now owns the first `sent` mbufs: forget them, not free.
        for m in pkts.drain(..sent) {
            let _ = m.into_raw();
        }
        sent
    }

    /// A transmit call with no packet: af_xdp sends what its TX ring
    /// still holds only when called (see `worker::TxKick`).
    pub fn kick(&self, queue: u16) {
        let mut none: [*mut ffi::rte_mbuf; 1] = [std::ptr::null_mut()];
        // SAFETY: with a count of 0 the driver reads no entry of the array.
        unsafe {
            ffi::rte_eth_tx_burst(self.id, queue, none.as_mut_ptr(), 0);
        }
    }
}
