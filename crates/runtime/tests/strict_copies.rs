//! Packet ranges carried to copies in Strict mode (`tests/verifier/xdp/copies.c`, built by its
//! `build.sh`, and the load balancer's own sequence in assembler): a `data_end` check on one
//! pointer proves what it covers for every pointer derived from the same packet pointer, in
//! registers, spills and callee frames, also across a join where the copies were shifted
//! differently on the two paths (the kernel's `find_good_pkt_pointers` on each path). Each
//! program is accepted in Strict mode with every access proven and runs on every engine of the
//! matrix, in both modes, with the verdict a Rust reference computes; the unsafe twins (a copy
//! checked with a smaller bound, then the original read further) are rejected in Strict mode.

mod common;

use bpfx::{Mode, Object, Packet};
use bpfx_rng::Rng;
use common::{engines, prepare};
use std::path::PathBuf;

const DROP: u32 = 1;
const PASS: u32 = 2;
const TX: u32 = 3;

fn object(name: &str) -> Object {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/verifier/xdp"
    ));
    Object::open(p.join(name)).unwrap()
}

/// `l4_offset`: the transport header's offset, `Err(verdict)` for a frame not parsed further.
fn l4(f: &[u8]) -> Result<usize, u32> {
    if f.len() < 14 {
        return Err(DROP);
    }
    if f[12..14] != [0x08, 0x00] {
        return Err(PASS);
    }
    if f.len() < 34 {
        return Err(DROP);
    }
    let ihl = usize::from(f[14] & 0xf) * 4;
    if ihl < 20 {
        return Err(DROP);
    }
    Ok(14 + ihl)
}

fn csum_copy_ref(f: &[u8]) -> u32 {
    let off = match l4(f) {
        Ok(o) => o,
        Err(v) => return v,
    };
    let tcp = f[23] == 6;
    let at = off + if tcp { 16 } else { 6 };
    if f.len() < at + 2 {
        return DROP;
    }
    if tcp || f[at] != 0 || f[at + 1] != 0 {
        TX
    } else {
        PASS
    }
}

fn copy_checked_ref(f: &[u8]) -> u32 {
    let off = match l4(f) {
        Ok(o) => o,
        Err(v) => return v,
    };
    if f.len() < off + 8 {
        return DROP;
    }
    if (u32::from(f[off + 3]) + u32::from(f[off + 7]) + u32::from(f[off + 1])) & 1 == 1 {
        TX
    } else {
        PASS
    }
}

/// An IPv4 frame (or ARP, 1 in 8) with 0 to 10 words of options (some with a bad IHL), TCP,
/// UDP or another protocol, a transport header of random bytes (checksums of 0 included), cut
/// at a random length from time to time.
fn frame(rng: &mut Rng) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    if rng.below(8) == 0 {
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0; 28]);
        return f;
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let words = rng.below(11) as u8;
    let ihl = if rng.below(8) == 0 {
        rng.below(5) as u8
    } else {
        5 + words
    };
    let proto = [6u8, 17, 1][rng.below(3) as usize];
    f.extend_from_slice(&[0x40 | ihl, 0, 0, 0, 0, 0, 0, 0, rng.below(256) as u8, proto]);
    f.extend_from_slice(&[0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend((0..usize::from(words) * 4).map(|i| i as u8));
    let zero = rng.below(4) == 0;
    f.extend((0..20).map(|_| if zero { 0 } else { rng.below(256) as u8 }));
    if rng.below(3) == 0 {
        let n = rng.below(f.len() as u64) as usize;
        f.truncate(n);
    }
    f
}

/// Every access proven in Strict mode; every frame's verdict on every engine, in both modes,
/// equals the reference's.
fn check(name: &str, reference: fn(&[u8]) -> u32) {
    let obj = object("copies.o");
    let strict = obj.program(name).unwrap().check(Mode::Strict).unwrap();
    let accesses: Vec<bool> = strict
        .program()
        .iter()
        .filter_map(|(pc, _)| strict.access(pc).map(|a| a.proven))
        .collect();
    assert!(!accesses.is_empty(), "{name}");
    assert!(accesses.iter().all(|p| *p), "{name}: {accesses:?}");
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let frames: Vec<Vec<u8>> = (0..400).map(|_| frame(&mut rng)).collect();
    let want: Vec<u32> = frames.iter().map(|f| reference(f)).collect();
    for v in [DROP, PASS, TX] {
        assert!(want.contains(&v), "{name}: no frame gives {v}");
    }
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
fn checksum_pointer_chosen_by_protocol_then_checked() {
    check("csum_copy", csum_copy_ref);
}

#[test]
fn copy_checked_original_read_also_in_a_subprogram() {
    check("copy_checked", copy_checked_ref);
}

#[test]
fn unsafe_twins_are_rejected_in_strict_mode_only() {
    let obj = object("copies_unsafe.o");
    for (name, pc) in [("csum_copy_short", 30), ("copy_short", 21)] {
        let e = obj.program(name).unwrap().check(Mode::Strict).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("insn #{pc}:")) && msg.contains("not proven in bounds"),
            "{name}: {msg}"
        );
        obj.program(name).unwrap().check(Mode::Checked).unwrap();
    }
}

/// The load balancer's instructions (`benches/replay/lb.o`, pcs 113–125): `r3 = r9 + 6;
/// r9 += 16; if proto != TCP: r9 = r3`, the join, `r9 + check` checked (lb: 2), then the UDP
/// path reads two bytes through `r3` (or its spill) at `at`. Strict mode proves the read
/// exactly when it lies in the bytes the UDP path's check covers (`at + 2 <= check`), after a
/// variable-length header; every program gives one result on every engine for every packet
/// length (the refused ones in Checked mode).
#[test]
fn a_check_after_a_join_covers_the_unshifted_copies() {
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    for (check, at, spill) in [2i64, 5, 10]
        .into_iter()
        .flat_map(|c| (0..10i64).map(move |a| (c, a)))
        .flat_map(|(c, a)| [(c, a, false), (c, a, true)])
    {
        {
            let (save, load) = if spill {
                ("stxdw [r10-8], r3\n", "ldxdw r3, [r10-8]\n")
            } else {
                ("", "")
            };
            let text = format!(
                "ldxw r2, [r1+0]\nldxw r6, [r1+4]\nmov r4, r2\nadd r4, 15\njgt r4, r6, drop\n\
                 ldxb r8, [r2+14]\nand r8, 12\nmov r9, r2\nadd r9, r8\nmov r3, r9\nadd r3, 6\n\
                 {save}add r9, 16\nldxb r4, [r2+0]\njeq r4, 6, +1\nmov r9, r3\nmov r5, r9\n\
                 add r5, {check}\njgt r5, r6, drop\n{load}jeq r4, 6, tcp\nldxh r0, [r3+{at}]\n\
                 and r0, 1\nexit\ntcp:\nldxh r0, [r9+0]\nand r0, 1\nexit\ndrop:\nmov r0, 1\n\
                 exit\n"
            );
            let obj = bpfx::Vm::new()
                .object(
                    vec![bpfx::ProgramDef::new("p", "xdp", common::code(&text))],
                    vec![],
                )
                .unwrap();
            let strict = obj.program("p").unwrap().verify(Mode::Strict);
            let provable = at + 2 <= check;
            assert_eq!(strict.is_ok(), provable, "at {at}:\n{text}");
            if let Err(e) = &strict {
                assert!(e.to_string().contains("not proven in bounds"), "{e}");
            }
            let frames: Vec<Vec<u8>> = (0..64)
                .map(|n| {
                    let mut f: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                    if n > 0 && rng.below(2) == 0 {
                        f[0] = 6;
                    }
                    f
                })
                .collect();
            let mode = if provable {
                Mode::Strict
            } else {
                Mode::Checked
            };
            let mut seen: Option<Vec<u32>> = None;
            for (engine, opts) in engines() {
                let v = obj.program("p").unwrap().verify(mode).unwrap();
                let mut prog = prepare(v, opts);
                let got: Vec<u32> = frames
                    .iter()
                    .map(|f| {
                        let mut p = Packet::new(f);
                        let out = prog.run_xdp_packet(&mut p);
                        let out = out.unwrap_or_else(|e| panic!("at {at} {engine}: {e}\n{text}"));
                        out.action.code() as u32
                    })
                    .collect();
                match &seen {
                    None => seen = Some(got),
                    Some(s) => assert_eq!(s, &got, "at {at} {engine}"),
                }
            }
        }
    }
}
