//! The kernel as the oracle of TC programs and socket filters, as `xdp_oracle.rs` is for XDP:
//! each fixture (`tests/objects/tc_nat.c`, `tc_pnat.c`, `tc_classify.c`, `tc_dscp.c`, `sock_port80.c`,
//! `sock_port80_load.c`) runs on packets through `bpftool prog run` (the kernel's
//! `BPF_PROG_TEST_RUN`) and on bpfx's engines (Strict mode, the interpreter and the JIT under
//! every option set), and the return values, the output packets and the `__sk_buff` fields the
//! kernel gives back (`mark`, `priority`, `cb[]`) must be equal. Needs root, `bpftool` and a
//! kernel that loads BPF programs; without them the test says why on stderr and checks nothing.
//!
//! What the kernel's test run supplies, and bpfx is given alike: a TC program sees the whole
//! frame, `protocol` the frame's EtherType (the kernel runs `eth_type_trans`), `ifindex` 1 (the
//! loopback device, named in `ctx_in`), and `mark`, `priority` and `cb[]` from `ctx_in`. A
//! socket filter's test run starts the packet at the network header (the kernel pulls the
//! Ethernet header and, unlike for TC, does not push it back), so each socket-filter frame goes
//! to the kernel behind a 14-byte Ethernet header of its own and to bpfx without it: both
//! programs then see the same bytes at offset 0. The kernel needs 14 bytes at least.

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object, SkbMeta};
use common::{engines, prepare};
use oracle::{Pinned, kernel_run, load, objects, unavailable};
use std::path::Path;

/// `struct __sk_buff` (linux/bpf.h): its size and the offsets of the fields `ctx_in` sets and
/// `ctx_out` reads back.
const SKB_SIZE: usize = 192;
const MARK: usize = 8;
const PRIORITY: usize = 32;
const IFINDEX: usize = 40;
const CB: usize = 48;
/// The loopback device's index, which exists in every network namespace.
const LOOPBACK: u32 = 1;

/// What a run gives back: the return value (as the u32 the kernel reports), the output packet
/// and `mark`, `priority`, `cb[]` after the run.
#[derive(Debug, PartialEq)]
struct Run {
    ret: u32,
    packet: Vec<u8>,
    mark: u32,
    priority: u32,
    cb: [u32; 5],
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// The kernel's run of `prog` on `frame` with `meta`'s `mark`, `priority` and `cb[]` in the
/// context (and `ifindex` the loopback device's).
fn kernel_run_skb(prog: &Pinned, frame: &[u8], meta: &SkbMeta, scratch: &Path) -> Run {
    let mut ctx = vec![0u8; SKB_SIZE];
    ctx[MARK..MARK + 4].copy_from_slice(&meta.mark.to_le_bytes());
    ctx[PRIORITY..PRIORITY + 4].copy_from_slice(&meta.priority.to_le_bytes());
    ctx[IFINDEX..IFINDEX + 4].copy_from_slice(&LOOPBACK.to_le_bytes());
    for (i, c) in meta.cb.iter().enumerate() {
        ctx[CB + 4 * i..CB + 4 * i + 4].copy_from_slice(&c.to_le_bytes());
    }
    let (ret, packet) = kernel_run(prog, frame, Some(&mut ctx), scratch);
    Run {
        ret,
        packet,
        mark: u32_at(&ctx, MARK),
        priority: u32_at(&ctx, PRIORITY),
        cb: std::array::from_fn(|i| u32_at(&ctx, CB + 4 * i)),
    }
}

/// The metadata bpfx is given for `frame`: what the kernel's test run makes of it.
fn bpfx_meta(frame: &[u8], meta: &SkbMeta) -> SkbMeta {
    SkbMeta {
        protocol: u16::from_be_bytes([frame[12], frame[13]]),
        ifindex: LOOPBACK,
        ..*meta
    }
}

/// The same TC run on every bpfx engine, which all agree.
fn bpfx_tc(obj: &Object, name: &str, frame: &[u8], meta: &SkbMeta) -> Run {
    let mut seen = None;
    for (engine, opts) in engines() {
        let v = obj.program(name).unwrap().verify(Mode::Strict).unwrap();
        let mut prog = prepare(v, opts);
        let mut p = frame.to_vec();
        let mut m = bpfx_meta(frame, meta);
        let action = prog.run_tc(&mut p, &mut m).unwrap();
        let got = Run {
            ret: action.code() as u32,
            packet: p,
            mark: m.mark,
            priority: m.priority,
            cb: m.cb,
        };
        match &seen {
            None => seen = Some(got),
            Some(s) => assert_eq!(*s, got, "{name} {engine}"),
        }
    }
    seen.unwrap()
}

/// The same socket-filter run on every bpfx engine, which all agree: its return value.
fn bpfx_socket(obj: &Object, name: &str, packet: &[u8]) -> u32 {
    let mut seen = None;
    for (engine, opts) in engines() {
        let v = obj.program(name).unwrap().verify(Mode::Strict).unwrap();
        let mut prog = prepare(v, opts);
        let got = prog.run_socket(packet, &SkbMeta::default()).unwrap();
        assert_eq!(
            got.kept,
            packet.len().min(got.code as usize),
            "{name} {engine}"
        );
        match seen {
            None => seen = Some(got.code),
            Some(s) => assert_eq!(s, got.code, "{name} {engine}"),
        }
    }
    seen.unwrap()
}

/// RFC 1071, written out here: the checksum of `bytes`.
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

/// Ethernet + IPv4 (TOS `tos`, protocol `proto`, fragment field `frag`, 198.51.100.7 ->
/// `dst`, a correct header checksum) + `l4`; for UDP with `udp_csum`, a correct UDP checksum.
fn ipv4(tos: u8, proto: u8, frag: u16, dst: [u8; 4], l4: &[u8], udp_csum: bool) -> Vec<u8> {
    let mut p = vec![0x02, 0xaa, 0, 0, 0, 1, 0x02, 0xbb, 0, 0, 0, 2, 0x08, 0x00];
    let total = (20 + l4.len()) as u16;
    p.extend_from_slice(&[0x45, tos]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0, 198, 51, 100, 7]);
    p.extend_from_slice(&dst);
    p.extend_from_slice(l4);
    let c = internet_checksum(&p[14..34]);
    p[24..26].copy_from_slice(&c.to_be_bytes());
    if proto == 17 && udp_csum {
        let mut pseudo = p[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(&p[34..]);
        let c = match internet_checksum(&pseudo) {
            0 => 0xffff,
            c => c,
        };
        p[40..42].copy_from_slice(&c.to_be_bytes());
    }
    p
}

fn udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0x13, 0x88];
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// A TCP header to `dport` with a data offset of `doff` words, then "data".
fn tcp(dport: u16, doff: u8) -> Vec<u8> {
    let mut t = vec![0x9c, 0x40];
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        doff << 4,
        0x02,
        0xff,
        0xff,
        0,
        0,
        0,
        0,
    ]);
    t.extend_from_slice(b"data");
    t
}

fn ipv6(tclass: u8, next: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x02, 0xaa, 0, 0, 0, 1, 0x02, 0xbb, 0, 0, 0, 2, 0x86, 0xdd];
    let first = (6u32 << 28) | (u32::from(tclass) << 20) | 0x12345;
    p.extend_from_slice(&first.to_be_bytes());
    p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend((0..32).map(|i| i as u8));
    p.extend_from_slice(l4);
    p
}

fn with_ethertype(mut p: Vec<u8>, ethertype: u16) -> Vec<u8> {
    p[12..14].copy_from_slice(&ethertype.to_be_bytes());
    p
}

#[test]
fn tc_fixtures_and_socket_filters_agree_with_the_kernel() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED tc_fixtures_and_socket_filters_agree_with_the_kernel: {why}");
        return;
    }
    let scratch = std::env::temp_dir().join(format!("bpfx-tc-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let fixtures = [
        ("tc_nat.o", "tc_nat", "tc"),
        ("tc_pnat.o", "tc_pnat", "tc"),
        ("tc_classify.o", "tc_classify", "tc"),
        ("tc_dscp.o", "tc_dscp", "tc"),
        ("sock_port80.o", "tcp_port_80", "socket"),
        ("sock_port80_load.o", "tcp_port_80_load", "socket"),
    ];
    // Every object loads, or the kernel is no oracle here.
    let mut loaded = Vec::new();
    for (file, _, kind) in fixtures {
        match load(&objects().join(file), kind) {
            Ok(p) => loaded.push((file, p, Object::open(objects().join(file)).unwrap())),
            Err(why) => {
                eprintln!(
                    "SKIPPED tc_fixtures_and_socket_filters_agree_with_the_kernel: the kernel \
                     does not load {file}: {why}"
                );
                return;
            }
        }
    }
    let dst = [192, 0, 2, 9];
    let mut frames = vec![
        ipv4(0, 17, 0, dst, &udp(53, b"query!"), true),
        ipv4(0x03, 17, 0, dst, &udp(53, b"q"), false),
        ipv4(0xb8, 17, 0, [10, 0, 0, 2], &udp(53, b"q"), true),
        ipv4(0x29, 6, 0, dst, &tcp(80, 5), false),
        ipv4(0, 6, 0, dst, &tcp(23, 5), false),
        ipv4(0, 6, 0, dst, &tcp(443, 5), false),
        ipv4(0, 6, 0x4000, dst, &tcp(80, 8), false),
        ipv4(0, 6, 0x0020, dst, &tcp(80, 5), false),
        ipv4(0xff, 1, 0, dst, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0], false),
        ipv6(0x00, 17, &udp(53, b"v6")),
        ipv6(0xb9, 6, &tcp(80, 5)),
        with_ethertype(ipv4(0, 6, 0, dst, &tcp(80, 5), false), 0x0806),
    ];
    // Cut ones: the IPv4 header alone, cut inside the TCP ports, the TCP header alone, the
    // IPv6 header alone, an Ethernet header alone. (The kernel's test run refuses, EINVAL, an
    // IPv4 or IPv6 frame shorter than its network header; `tc_fixtures.rs` has those cases.)
    let whole = ipv4(0x10, 6, 0, dst, &tcp(80, 5), false);
    for n in [34, 37, 38, 54] {
        frames.push(whole[..n].to_vec());
    }
    frames.push(ipv6(0x40, 17, &[]));
    frames.push(with_ethertype(whole[..14].to_vec(), 0x0806));
    let metas = [
        SkbMeta::default(),
        SkbMeta {
            mark: 0xdead_0050,
            priority: 7,
            cb: [1, 2, 3, 4, 5],
            ..SkbMeta::default()
        },
    ];
    // Socket filters also get frames the kernel would refuse for TC (see above): they go to
    // the kernel behind an ARP header.
    let mut socket_frames = frames.clone();
    for n in [0, 13, 16, 33, 36] {
        socket_frames.push(whole[..n].to_vec());
    }
    let mut kept = 0;
    let mut checked = 0;
    for (file, name, kind) in fixtures {
        let (_, pinned, obj) = loaded.iter().find(|l| l.0 == file).unwrap();
        let list = if kind == "tc" {
            &frames
        } else {
            &socket_frames
        };
        for frame in list {
            if kind == "tc" {
                for meta in &metas {
                    let kernel = kernel_run_skb(pinned, frame, meta, &scratch);
                    let ours = bpfx_tc(obj, name, frame, meta);
                    assert_eq!(ours, kernel, "{file} {meta:?} on {frame:02x?}");
                    checked += 1;
                }
            } else {
                // An ARP EtherType outside: the kernel then checks no network header.
                let mut behind = vec![0x02, 0, 0, 0, 0, 9, 0x02, 0, 0, 0, 0, 8, 0x08, 0x06];
                behind.extend_from_slice(frame);
                let kernel = kernel_run_skb(pinned, &behind, &SkbMeta::default(), &scratch);
                let ours = bpfx_socket(obj, name, frame);
                assert_eq!(ours, kernel.ret, "{file} on {frame:02x?}");
                kept += usize::from(ours != 0);
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        frames.len() * 4 * metas.len() + socket_frames.len() * 2
    );
    // Both filters keep some frames and drop others, or the comparison says little.
    assert!(
        kept > 2 && kept < 2 * socket_frames.len() - 2,
        "{kept} kept"
    );
    eprintln!(
        "tc_fixtures_and_socket_filters_agree_with_the_kernel: {checked} runs compared with \
         the kernel's"
    );
}
