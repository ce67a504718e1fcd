//! The clang-built TC DSCP rewrite (`tests/objects/tc_dscp.c`) and the socket filter for TCP
//! port 80 written with `skb_load_bytes` (`sock_port80_load.c`, the twin of the legacy-load
//! `sock_port80.c`), on the interpreter and the JIT with every option set, in Checked and
//! Strict mode, against packets and verdicts built here: the expected IPv4 header checksum is
//! computed from scratch with this file's own RFC 1071 sum, not with bpfx's checksum module.
//! The TC port NAT `tc_pnat.c` (address and port, `l4_csum_replace` with and without
//! `BPF_F_PSEUDO_HDR`) is checked the same way, its TCP/UDP checksums computed from scratch
//! too. (The TC program reading `len`, `protocol`, `ifindex` and `mark` and setting `mark` and
//! `priority` is `tc_classify.c`, tested in `skb.rs`.)

// Clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

use bpfx::{Context, Mode, Object, SkbMeta, SocketVerdict, TcAction};
use common::{engines, prepare};
use std::path::PathBuf;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];
const DSCP_EF: u8 = 46;

fn object(name: &str) -> Object {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects")).join(name);
    Object::open(path).unwrap()
}

/// RFC 1071 over big-endian 16-bit words, written out here: the checksum of `bytes`.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sets the checksum of the IPv4 header at `p[14..]` from scratch.
fn fix_ipv4_checksum(p: &mut [u8]) {
    let hlen = usize::from(p[14] & 0xf) * 4;
    p[24..26].fill(0);
    let c = internet_checksum(&p[14..14 + hlen]);
    p[24..26].copy_from_slice(&c.to_be_bytes());
}

/// A TCP header from port 40000 to `dport` with a data offset of `doff` words (the header
/// itself always 20 bytes long).
fn tcp(dport: u16, doff: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    t[12] = doff << 4;
    t[13] = 0x18;
    t[14..16].copy_from_slice(&512u16.to_be_bytes());
    t
}

/// Ethernet + IPv4 (TOS `tos`, `ihl` words, protocol `proto`, fragment field `frag`,
/// 198.51.100.7 -> 192.0.2.9, TTL 64, a correct header checksum) + `l4` + "payload".
fn ipv4(tos: u8, ihl: u8, proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x02, 0xaa, 0, 0, 0, 1, 0x02, 0xbb, 0, 0, 0, 2, 0x08, 0x00];
    // An IHL under 5 (malformed) still gets the 20 bytes of a header.
    let hlen = (usize::from(ihl) * 4).max(20);
    let total = (hlen + l4.len() + 7) as u16;
    let mut ip = vec![0u8; hlen];
    ip[0] = 0x40 | ihl;
    ip[1] = tos;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&0x5eedu16.to_be_bytes());
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&[198, 51, 100, 7]);
    ip[16..20].copy_from_slice(&[192, 0, 2, 9]);
    // Options (IHL > 5): NOPs then an end-of-list.
    for b in ip.iter_mut().skip(20) {
        *b = 1;
    }
    if hlen > 20 {
        ip[hlen - 1] = 0;
    }
    p.extend_from_slice(&ip);
    p.extend_from_slice(l4);
    p.extend_from_slice(b"payload");
    fix_ipv4_checksum(&mut p);
    p
}

/// Ethernet + IPv6 with traffic class `tclass` and flow label 0xabcde, UDP next header + 8
/// bytes of UDP + "payload".
fn ipv6(tclass: u8) -> Vec<u8> {
    let mut p = vec![0x02, 0xaa, 0, 0, 0, 1, 0x02, 0xbb, 0, 0, 0, 2, 0x86, 0xdd];
    let first = (6u32 << 28) | (u32::from(tclass) << 20) | 0xabcde;
    p.extend_from_slice(&first.to_be_bytes());
    p.extend_from_slice(&15u16.to_be_bytes());
    p.extend_from_slice(&[17, 64]);
    p.extend((0..16).map(|i| 0x20 + i as u8));
    p.extend((0..16).map(|i| 0x40 + i as u8));
    p.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 15, 0, 0]);
    p.extend_from_slice(b"payload");
    p
}

/// What `tc_dscp.c` should leave, written from its description: the verdict and the packet.
fn dscp_model(p: &[u8]) -> (TcAction, Vec<u8>) {
    let mut want = p.to_vec();
    let ethertype = u16::from_be_bytes([p[12], p[13]]);
    match ethertype {
        0x0800 => {
            // The first word is read, then (when the TOS changes) the checksum at 24..26 is
            // fixed before the word is written: a packet ending before either is dropped
            // untouched.
            if p.len() < 16 {
                return (TcAction::Shot, want);
            }
            let tos = (DSCP_EF << 2) | (p[15] & 3);
            if tos == p[15] {
                return (TcAction::Ok, want);
            }
            if p.len() < 26 {
                return (TcAction::Shot, want);
            }
            want[15] = tos;
            fix_ipv4_checksum(&mut want);
        }
        0x86dd => {
            if p.len() < 14 + 40 {
                return (TcAction::Shot, want);
            }
            let first = u32::from_be_bytes([p[14], p[15], p[16], p[17]]);
            let tclass = ((first >> 20) & 0xff) as u8;
            let tclass = (DSCP_EF << 2) | (tclass & 3);
            let first = (first & 0xf00f_ffff) | (u32::from(tclass) << 20);
            want[14..18].copy_from_slice(&first.to_be_bytes());
        }
        _ => {}
    }
    (TcAction::Ok, want)
}

#[test]
fn tc_dscp_marks_ipv4_and_ipv6_expedited_forwarding_keeping_ecn_and_the_checksum() {
    let mut cases = Vec::new();
    for tos in [0x00, 0x01, 0x02, 0x03, 0x28, 0x2b, 0xb8, 0xbb, 0xfc, 0xff] {
        cases.push(ipv4(tos, 5, 6, 0, &tcp(80, 5)));
    }
    cases.push(ipv4(0x10, 7, 17, 0x2000, &[0x13, 0x88, 0, 53, 0, 15, 0, 0]));
    cases.push(ipv4(0x04, 5, 6, 0, &tcp(443, 5))[..16].to_vec());
    cases.push(ipv4(0x04, 5, 6, 0, &tcp(443, 5))[..15].to_vec());
    cases.push(ipv4(0x04, 5, 6, 0, &tcp(443, 5))[..25].to_vec());
    cases.push(ipv4(0xb9, 5, 6, 0, &tcp(443, 5))[..16].to_vec());
    for tclass in [0x00, 0x03, 0x29, 0xb8, 0xfe] {
        cases.push(ipv6(tclass));
    }
    cases.push(ipv6(0x0c)[..14 + 39].to_vec());
    let mut arp = ipv4(0, 5, 6, 0, &tcp(80, 5));
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    cases.push(arp);
    // A packet the rewrite changes, with the checksum a from-scratch sum gives it: the
    // incremental update must land on the same bytes.
    assert_ne!(dscp_model(&cases[0]).1, cases[0]);
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = object("tc_dscp.o");
            assert_eq!(obj.programs().next().unwrap().context(), Context::Tc);
            let v = obj.program("tc_dscp").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            for (i, packet) in cases.iter().enumerate() {
                let meta = SkbMeta {
                    protocol: u16::from_be_bytes([packet[12], packet[13]]),
                    ifindex: 2,
                    mark: 0x77,
                    ..SkbMeta::default()
                };
                let (want, want_packet) = dscp_model(packet);
                let mut p = packet.clone();
                let mut got_meta = meta;
                let got = prog.run_tc(&mut p, &mut got_meta).unwrap();
                assert_eq!(got, want, "{mode:?} {name} case {i}");
                assert_eq!(p, want_packet, "{mode:?} {name} case {i}");
                assert_eq!(got_meta, meta, "{mode:?} {name} case {i}");
            }
        }
    }
}

/// What `sock_port80_load.c` should return, written from its description: the Ethernet, IPv4
/// and TCP header lengths of an unfragmented (or first-fragment) IPv4 TCP segment to port 80
/// whose headers are all in the packet, else 0.
fn port80_model(p: &[u8]) -> u32 {
    if p.len() < 14 + 20 || p[12..14] != [0x08, 0x00] {
        return 0;
    }
    let ihl = usize::from(p[14] & 0xf);
    let frag = u16::from_be_bytes([p[20], p[21]]);
    if p[23] != 6 || ihl < 5 || frag & 0x1fff != 0 {
        return 0;
    }
    let t = 14 + ihl * 4;
    if p.len() < t + 20 || p[t + 2..t + 4] != [0, 80] {
        return 0;
    }
    (t + usize::from(p[t + 12] >> 4) * 4) as u32
}

#[test]
fn socket_filter_with_skb_load_bytes_keeps_the_headers_of_tcp_port_80() {
    let whole = ipv4(0, 5, 6, 0, &tcp(80, 5));
    let cases = [
        (whole.clone(), 54),
        (ipv4(0, 8, 6, 0, &tcp(80, 5)), 14 + 32 + 20),
        (ipv4(0, 5, 6, 0, &tcp(80, 8)), 14 + 20 + 32),
        // The header lengths say more than the packet holds: all of it is kept.
        (ipv4(0, 5, 6, 0, &tcp(80, 15)), 14 + 20 + 60),
        (ipv4(0, 5, 6, 0x4000, &tcp(80, 5)), 54),
        (ipv4(0, 5, 6, 0x2000, &tcp(80, 5)), 54),
        (ipv4(0, 5, 6, 0x0010, &tcp(80, 5)), 0),
        (ipv4(0, 5, 6, 0, &tcp(8080, 5)), 0),
        (ipv4(0, 5, 17, 0, &tcp(80, 5)), 0),
        (ipv4(0, 4, 6, 0, &tcp(80, 5)), 0),
        (whole[..54].to_vec(), 54),
        (whole[..53].to_vec(), 0),
        (whole[..33].to_vec(), 0),
        (whole[..13].to_vec(), 0),
        (Vec::new(), 0),
        (ipv6(0), 0),
    ];
    for (i, (packet, code)) in cases.iter().enumerate() {
        assert_eq!(port80_model(packet), *code, "model, case {i}");
    }
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = object("sock_port80_load.o");
            assert_eq!(obj.programs().next().unwrap().context(), Context::Socket);
            let v = obj
                .program("tcp_port_80_load")
                .unwrap()
                .verify(mode)
                .unwrap();
            let mut prog = prepare(v, opts);
            for (i, (packet, code)) in cases.iter().enumerate() {
                let got = prog.run_socket(packet, &SkbMeta::default()).unwrap();
                let want = SocketVerdict {
                    code: *code,
                    kept: packet.len().min(*code as usize),
                };
                assert_eq!(got, want, "{mode:?} {name} case {i}");
            }
        }
    }
}

/// A UDP header from port 5353 to `dport` covering itself and the 7 "payload" bytes
/// [`ipv4`] appends, checksum 0.
fn udp(dport: u16) -> Vec<u8> {
    let mut u = vec![0x14, 0xe9, 0, 0, 0, 15, 0, 0];
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u
}

/// Sets the TCP or UDP checksum of the IPv4 packet `p` (a 20-byte header) from scratch, over
/// the pseudo-header and the segment (a computed UDP 0 becomes 0xffff).
fn fix_l4_checksum(p: &mut [u8]) {
    let proto = p[23];
    let at = 34 + if proto == 6 { 16 } else { 6 };
    p[at..at + 2].fill(0);
    let mut sum = Vec::new();
    sum.extend_from_slice(&p[26..34]);
    sum.extend_from_slice(&[0, proto]);
    sum.extend_from_slice(&((p.len() - 34) as u16).to_be_bytes());
    sum.extend_from_slice(&p[34..]);
    let mut c = internet_checksum(&sum);
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// What `tc_pnat.c` should leave, written from its description: TCP/UDP to port 80 of an
/// unfragmented IPv4 packet without options goes to 10.0.0.2:8080, both checksums computed
/// again from scratch (a UDP checksum of 0 stays 0); anything else is left alone.
fn pnat_model(p: &[u8], protocol: u16) -> Vec<u8> {
    let mut q = p.to_vec();
    let ipv4 = protocol == 0x0800 && p[14] == 0x45;
    let first = u16::from_be_bytes([p[20], p[21]]) & 0x1fff == 0;
    let l4 = matches!(p[23], 6 | 17);
    if !(ipv4 && first && l4 && p[36..38] == [0, 80]) {
        return q;
    }
    q[30..34].copy_from_slice(&[10, 0, 0, 2]);
    q[36..38].copy_from_slice(&8080u16.to_be_bytes());
    fix_ipv4_checksum(&mut q);
    let none = p[23] == 17 && p[40..42] == [0, 0];
    if !none {
        fix_l4_checksum(&mut q);
    }
    q
}

#[test]
fn tc_port_nat_rewrites_address_and_port_with_correct_checksums() {
    let with_sum = |mut p: Vec<u8>| {
        fix_l4_checksum(&mut p);
        p
    };
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (with_sum(ipv4(0, 5, 6, 0, &tcp(80, 5))), 0x0800),
        (with_sum(ipv4(0x10, 5, 17, 0, &udp(80))), 0x0800),
        // A UDP checksum of 0 ("none") stays 0.
        (ipv4(0, 5, 17, 0, &udp(80)), 0x0800),
        // Don't-fragment set: still a first fragment.
        (with_sum(ipv4(0, 5, 6, 0x4000, &tcp(80, 5))), 0x0800),
        (with_sum(ipv4(0, 5, 6, 0, &tcp(443, 5))), 0x0800),
        (with_sum(ipv4(0, 5, 17, 0, &udp(53))), 0x0800),
        (ipv4(0, 6, 6, 0, &tcp(80, 5)), 0x0800),
        (ipv4(0, 5, 6, 0x0020, &tcp(80, 5)), 0x0800),
        (ipv4(0, 5, 1, 0, &[8, 0, 0xf7, 0xff, 0, 80, 0, 0]), 0x0800),
        (ipv6(0), 0x86dd),
    ];
    // The model changes exactly the first four cases.
    for (i, (p, proto)) in cases.iter().enumerate() {
        assert_eq!(pnat_model(p, *proto) != *p, i < 4, "model, case {i}");
    }
    for mode in MODES {
        for (name, opts) in engines() {
            let obj = object("tc_pnat.o");
            let v = obj.program("tc_pnat").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            for (i, (packet, proto)) in cases.iter().enumerate() {
                let mut p = packet.clone();
                let mut meta = SkbMeta {
                    protocol: *proto,
                    ..SkbMeta::default()
                };
                let got = prog.run_tc(&mut p, &mut meta).unwrap();
                assert_eq!(got, TcAction::Ok, "{mode:?} {name} case {i}");
                assert_eq!(p, pnat_model(packet, *proto), "{mode:?} {name} case {i}");
            }
        }
    }
}
