//! Every nf-core parser on arbitrary bytes: must return Ok or Err, never
//! panic, and a Repr that parsed must re-emit to bytes that parse the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nf_core::wire::{arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp};
use std::net::{IpAddr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = ethernet::Frame::new_checked(data) {
        if let Ok(r) = ethernet::Repr::parse(&f) {
            let mut b = vec![0u8; r.header_len()];
            r.emit(&mut b);
            assert_eq!(
                ethernet::Repr::parse(&ethernet::Frame::new_checked(&b[..]).unwrap()).unwrap(),
                r
            );
        }
    }
    if let Ok(p) = arp::Packet::new_checked(data) {
        if let Ok(r) = arp::Repr::parse(&p) {
            let mut b = [0u8; arp::PACKET_LEN];
            r.emit(&mut b);
            assert_eq!(
                arp::Repr::parse(&arp::Packet::new_checked(&b[..]).unwrap()).unwrap(),
                r
            );
        }
    }
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let _ = ipv4::Repr::parse(&p);
        let _ = p.payload();
    }
    if let Ok(p) = ipv6::Packet::new_checked(data) {
        let _ = ipv6::Repr::parse(&p);
        let _ = p.upper_layer();
    }
    if let Ok(p) = icmpv4::Packet::new_checked(data) {
        let _ = icmpv4::Repr::parse(&p);
    }
    // ICMPv6 with a valid checksum, so that the message bodies are reached
    let mut m = data.to_vec();
    if m.len() >= icmpv6::HEADER_LEN {
        icmpv6::Packet::new_unchecked(&mut m[..])
            .fill_checksum(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
        let _ = icmpv6::Repr::parse(
            &icmpv6::Packet::new_checked(&m[..]).unwrap(),
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::UNSPECIFIED,
        );
    }
    if let Ok(p) = tcp::Packet::new_checked(data) {
        if let Ok(r) = tcp::Repr::parse(&p, None) {
            let (s, d) = (IpAddr::from([1, 2, 3, 4]), IpAddr::from([5, 6, 7, 8]));
            if r.options.buffer_len() <= 40 {
                let mut b = vec![0u8; r.buffer_len()];
                r.emit(s, d, &mut b);
                let again =
                    tcp::Repr::parse(&tcp::Packet::new_checked(&b[..]).unwrap(), Some((s, d)))
                        .unwrap();
                assert_eq!(again.options, r.options);
                assert_eq!(again.payload, r.payload);
            }
        }
    }
    let _ = tcp::Options::parse(data);
    if let Ok(p) = udp::Packet::new_checked(data) {
        let _ = udp::Repr::parse(&p, None);
    }
});
