//! Variable-length header parsing in Strict mode (`tests/verifier/xdp/headers.c`, built by its
//! `build.sh`): up to two VLAN tags skipped in a loop, IPv4 options skipped by `ihl * 4`, IPv6
//! extension headers walked in a loop (kept and unrolled by clang), then the L4 ports. Each
//! program is accepted in Strict mode with every access proven, and runs on every engine of the
//! matrix, in both modes, with the verdict a Rust reference computes, over generated frames and
//! every truncation of them. The unsafe twins (`headers_unsafe.c`) are rejected in Strict mode.

mod common;

use bpfx::{Mode, Object, Packet};
use bpfx_rng::Rng;
use common::{engines, prepare};
use std::path::PathBuf;

const DROP: u32 = 1;
const PASS: u32 = 2;

fn object(name: &str) -> Object {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/verifier/xdp"
    ));
    Object::open(p.join(name)).unwrap()
}

fn be16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]))
}

/// The VLAN walk of `skip_vlans`: the offset past the tags and the inner ethertype, or `None`
/// (drop) for a frame too short.
fn vlans(f: &[u8]) -> Option<(usize, u16)> {
    let mut p = be16(f, 12)?;
    let mut cur = 14;
    for _ in 0..2 {
        if p != 0x8100 && p != 0x88a8 {
            break;
        }
        p = be16(f, cur + 2)?;
        cur += 4;
    }
    Some((cur, p))
}

/// `verdict`: drop port 53, pass the rest, drop when the ports are cut off.
fn ports(f: &[u8], at: usize) -> u32 {
    match be16(f, at + 2) {
        Some(53) | None => DROP,
        Some(_) => PASS,
    }
}

fn vlan_ipv4_ref(f: &[u8]) -> u32 {
    let Some((cur, p)) = vlans(f) else {
        return DROP;
    };
    if p != 0x0800 {
        return PASS;
    }
    if f.len() < cur + 20 {
        return DROP;
    }
    let off = usize::from(f[cur] & 0xf) * 4;
    if off < 20 {
        return DROP;
    }
    if f[cur + 9] != 17 && f[cur + 9] != 6 {
        return PASS;
    }
    ports(f, cur + off)
}

fn vlan_ipv6_ref(f: &[u8]) -> u32 {
    let Some((cur, p)) = vlans(f) else {
        return DROP;
    };
    if p != 0x86dd {
        return PASS;
    }
    if f.len() < cur + 40 {
        return DROP;
    }
    let mut next = f[cur + 6];
    let mut cur = cur + 40;
    for _ in 0..4 {
        if next != 0 && next != 43 && next != 60 {
            break;
        }
        if f.len() < cur + 2 {
            return DROP;
        }
        next = f[cur];
        cur += (usize::from(f[cur + 1]) + 1) * 8;
    }
    if next != 17 && next != 6 {
        return PASS;
    }
    ports(f, cur)
}

/// A frame: 0 to 3 VLAN tags, then IPv4 with 0 to 10 words of options (some with a bad IHL),
/// IPv6 with 0 to 5 extension headers, or ARP; then UDP or TCP (or another protocol) to port
/// 53 or another.
fn frame(rng: &mut Rng) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for _ in 0..rng.below(4) {
        let tpid: u16 = if rng.below(2) == 0 { 0x8100 } else { 0x88a8 };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(rng.below(4096) as u16).to_be_bytes());
    }
    let l4 = [17u8, 6, 1][rng.below(3) as usize];
    let dport: u16 = if rng.below(2) == 0 { 53 } else { 80 };
    match rng.below(5) {
        0 | 1 => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let words = rng.below(11) as u8;
            let ihl = if rng.below(8) == 0 {
                rng.below(5) as u8
            } else {
                5 + words
            };
            f.extend_from_slice(&[0x40 | ihl, 0, 0, 0, 0, 0, 0, 0, 64, l4, 0, 0]);
            f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
            f.extend((0..usize::from(words) * 4).map(|i| i as u8));
        }
        2 | 3 => {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            let n = rng.below(6);
            let exts = [0u8, 43, 60];
            let first = if n == 0 {
                l4
            } else {
                exts[rng.below(3) as usize]
            };
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, first, 64]);
            f.extend((0..32).map(|i| i as u8));
            for k in 0..n {
                let next = if k + 1 == n {
                    l4
                } else {
                    exts[rng.below(3) as usize]
                };
                let len = rng.below(3) as u8;
                f.extend_from_slice(&[next, len]);
                f.extend((0..usize::from(len) * 8 + 6).map(|i| i as u8));
            }
        }
        _ => {
            f.extend_from_slice(&0x0806u16.to_be_bytes());
            f.extend_from_slice(&[0; 28]);
            return f;
        }
    }
    f.extend_from_slice(&1234u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0; 4]);
    f
}

/// Every frame's verdict on every engine, in both modes, equals the reference's; every
/// truncation of the first frames too.
fn check(name: &str, reference: fn(&[u8]) -> u32) {
    let obj = object("headers.o");
    let strict = obj.program(name).unwrap().check(Mode::Strict).unwrap();
    let accesses: Vec<bool> = strict
        .program()
        .iter()
        .filter_map(|(pc, _)| strict.access(pc).map(|a| a.proven))
        .collect();
    assert!(!accesses.is_empty(), "{name}");
    assert!(accesses.iter().all(|p| *p), "{name}: {accesses:?}");
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let mut frames: Vec<Vec<u8>> = (0..160).map(|_| frame(&mut rng)).collect();
    let cuts: Vec<Vec<u8>> = frames
        .iter()
        .take(24)
        .flat_map(|f| (0..f.len()).map(|n| f[..n].to_vec()))
        .collect();
    frames.extend(cuts);
    let want: Vec<u32> = frames.iter().map(|f| reference(f)).collect();
    // Both verdicts and both headers' paths are exercised.
    assert!(want.contains(&DROP) && want.contains(&PASS), "{name}");
    for mode in [Mode::Strict, Mode::Checked] {
        for (engine, opts) in engines() {
            let v = obj.program(name).unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            for (f, want) in frames.iter().zip(&want) {
                let mut p = Packet::new(f);
                let got = prog.run_xdp_packet(&mut p).unwrap().action.code() as u32;
                assert_eq!(got, *want, "{name} {mode:?} {engine} on {f:02x?}");
            }
        }
    }
}

#[test]
fn vlan_tags_then_ipv4_options_by_ihl() {
    check("vlan_ipv4", vlan_ipv4_ref);
}

#[test]
fn vlan_tags_then_ipv6_extension_headers_in_a_loop() {
    check("vlan_ipv6_loop", vlan_ipv6_ref);
}

#[test]
fn vlan_tags_then_ipv6_extension_headers_unrolled() {
    check("vlan_ipv6_unrolled", vlan_ipv6_ref);
}

#[test]
fn unsafe_twins_are_rejected_in_strict_mode_only() {
    let obj = object("headers_unsafe.o");
    for (name, pc) in [
        ("ihl_off_by_one", 19),
        ("vlan_missing_check", 13),
        ("ext_off_by_one", 22),
    ] {
        let e = obj.program(name).unwrap().check(Mode::Strict).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("insn #{pc}:")) && msg.contains("not proven in bounds"),
            "{name}: {msg}"
        );
        obj.program(name).unwrap().check(Mode::Checked).unwrap();
    }
}

/// A packet pointer moved by a different constant (or a masked header length) on each side
/// of one or two branches, then checked against `data_end` after the join (or on each path
/// before it, by different lengths) and read at an offset: Strict mode accepts exactly the
/// reads the checks cover on every path (the fresh id the join gives the pointer, with the
/// smaller of the two proven ranges), and every accepted program runs on every packet length
/// on every engine without a fault and with one result.
#[test]
fn joined_packet_pointers_are_proven_exactly_where_the_check_covers_them() {
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    let mut accepted = 0;
    for case in 0..240 {
        let k1 = rng.below(24);
        let d1 = rng.below(12);
        let d2 = rng.below(12);
        let check = 1 + rng.below(16);
        let at = rng.below(check + 3);
        let two = case % 2 == 0;
        let masked = case % 3 == 0;
        let mut text = String::from(
            "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov r4, r2\nadd r4, 2\njgt r4, r3, drop\n\
             ldxb r5, [r2+0]\nldxb r8, [r2+1]\nmov r6, r2\n",
        );
        text += &format!("add r6, {k1}\njeq r5, 7, +1\nadd r6, {d1}\n");
        if two {
            text += &format!("jgt r8, 100, +1\nadd r6, {d2}\n");
        }
        if masked {
            // A variable header length: data + V + ..., V = (byte 1 & 12).
            text += "and r8, 12\nadd r6, r8\n";
        }
        text += &format!(
            "mov r7, r6\nadd r7, {check}\njgt r7, r3, drop\nldxb r0, [r6+{at}]\nexit\n\
             drop:\nmov r0, 1\nexit\n"
        );
        let mut provable = at < check;
        if case % 4 == 1 {
            // Each path checks its own pointer before the join, by its own length: the
            // join keeps the smaller of what the two paths proved.
            let check2 = 1 + rng.below(16);
            provable = at < check && at < check2;
            text = format!(
                "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov r4, r2\nadd r4, 1\njgt r4, r3, drop\n\
                 ldxb r5, [r2+0]\nmov r6, r2\nadd r6, {k1}\njeq r5, 7, other\nmov r7, r6\n\
                 add r7, {check}\njgt r7, r3, drop\nja join\nother:\nadd r6, {d1}\n\
                 mov r7, r6\nadd r7, {check2}\njgt r7, r3, drop\njoin:\nldxb r0, [r6+{at}]\n\
                 exit\ndrop:\nmov r0, 1\nexit\n"
            );
        }
        let obj = bpfx::Vm::new()
            .object(
                vec![bpfx::ProgramDef::new("p", "xdp", common::code(&text))],
                vec![],
            )
            .unwrap();
        let strict = obj.program("p").unwrap().verify(Mode::Strict);
        assert_eq!(strict.is_ok(), provable, "case {case}:\n{text}");
        if strict.is_err() {
            continue;
        }
        accepted += 1;
        let frames: Vec<Vec<u8>> = (0..72)
            .map(|n| (0..n).map(|_| rng.below(256) as u8).collect())
            .collect();
        let mut seen: Option<Vec<u32>> = None;
        for (engine, opts) in engines() {
            let v = obj.program("p").unwrap().verify(Mode::Strict).unwrap();
            let mut prog = prepare(v, opts);
            let got: Vec<u32> = frames
                .iter()
                .map(|f| {
                    let mut p = Packet::new(f);
                    let out = prog.run_xdp_packet(&mut p);
                    let out = out.unwrap_or_else(|e| panic!("case {case} {engine}: {e}\n{text}"));
                    out.action.code() as u32
                })
                .collect();
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(s, &got, "case {case} {engine}"),
            }
        }
    }
    assert!(accepted > 100, "{accepted}");
}
