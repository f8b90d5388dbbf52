//! ARP (RFC 826): answer requests for our addresses, learn senders, send
//! requests for next hops.

use super::{set_dst_mac, BufPool, Pipeline};
use crate::stats::{Drop, Event, Layer};
use nf_core::wire::{arp, EtherType, EthernetAddress};
use nf_core::PacketBuf;
use std::net::Ipv4Addr;

impl<B: PacketBuf, A: BufPool<B>> Pipeline<B, A> {
    pub(super) fn arp_input(&mut self, now_ns: u64, port: u16, mut buf: B, l2: usize) {
        let r = match buf
            .data()
            .get(l2..)
            .ok_or(nf_core::wire::Error::Truncated)
            .and_then(|d| {
                let p = arp::Packet::new_checked(d)?;
                arp::Repr::parse(&p)
            }) {
            Ok(r) => r,
            Err(e) => return self.stats.parse_error(Layer::Arp, e),
        };
        let Some(pc) = self.ports.get(usize::from(port)) else {
            return;
        };
        let for_us = pc.has_v4(r.target_ip);
        let our_mac = pc.mac;
        match r.operation {
            arp::Operation::Request => self.stats.event(Event::ArpRequestRx),
            arp::Operation::Reply => self.stats.event(Event::ArpReplyRx),
        }
        if r.sender_hw.is_multicast() || r.sender_ip.is_broadcast() || r.sender_ip.is_multicast() {
            return self.stats.dropped(Drop::Martian);
        }
        // RFC 826 "merge": update a known sender; add it when we are the target.
        // An ARP probe (sender 0.0.0.0, RFC 5227) teaches nothing.
        if !r.sender_ip.is_unspecified() {
            let (arp, tx, cap, stats) = (&mut self.arp, &mut self.tx, self.tx_cap, &self.stats);
            arp.learn(
                now_ns,
                (port, r.sender_ip),
                r.sender_hw,
                for_us,
                |mac, mut p| {
                    set_dst_mac(&mut p, mac);
                    match tx.get_mut(usize::from(port)) {
                        Some(q) if q.len() < cap => q.push(p),
                        _ => stats.dropped(Drop::TxQueueFull),
                    }
                },
            );
        }
        if r.operation != arp::Operation::Request || !for_us {
            return;
        }
        // Answer in place: the request becomes the reply.
        let reply = arp::Repr {
            operation: arp::Operation::Reply,
            sender_hw: our_mac,
            sender_ip: r.target_ip,
            target_hw: r.sender_hw,
            target_ip: r.sender_ip,
        };
        let d = buf.data_mut();
        d[0..6].copy_from_slice(&r.sender_hw.0);
        d[6..12].copy_from_slice(&our_mac.0);
        reply.emit(&mut d[l2..l2 + arp::PACKET_LEN]);
        self.stats.event(Event::ArpReplyTx);
        self.enqueue(port, buf);
    }

    /// Broadcasts (or, for a refresh, unicasts) an ARP request for `ip`.
    pub(crate) fn send_arp_request(
        &mut self,
        port: u16,
        ip: Ipv4Addr,
        unicast: Option<EthernetAddress>,
    ) {
        let Some(pc) = self.ports.get(usize::from(port)) else {
            return;
        };
        let Some(src_ip) = pc.v4_for(ip) else { return };
        let our_mac = pc.mac;
        let Some(mut buf) = self.pool.alloc() else {
            return self.stats.dropped(Drop::NoMbuf);
        };
        let req = arp::Repr {
            operation: arp::Operation::Request,
            sender_hw: our_mac,
            sender_ip: src_ip,
            target_hw: EthernetAddress::default(),
            target_ip: ip,
        };
        // Pad to the 60-byte Ethernet minimum.
        let Some(body) = buf.append(46) else {
            return self.stats.dropped(Drop::NoMbuf);
        };
        body.fill(0);
        req.emit(&mut body[..arp::PACKET_LEN]);
        if !self.prepend_l2(
            port,
            &mut buf,
            EtherType::Arp,
            unicast.unwrap_or(EthernetAddress::BROADCAST),
        ) {
            return;
        }
        self.stats.event(Event::ArpRequestTx);
        self.enqueue(port, buf);
    }
}
