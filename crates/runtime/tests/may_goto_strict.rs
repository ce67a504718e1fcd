//! Loops bounded only by `may_goto` (libbpf's `can_loop`) in Strict mode: `objects/xdp_tlv_walk.c`
//! (an open-ended walk over type-length records in the frame, where a zero length repeats a
//! record) and `objects/xdp_list_walk.c` (a linked list kept in a map value's arrays, followed
//! from a slot the frame names, where a cycle goes round forever) have no exit the verifier can
//! bound but the run's `may_goto` counter. Strict mode accepts both with every access proven,
//! and they run on the interpreter and the JIT under every option set in both modes with the
//! results a Rust reference computes, the counter running out included; the kernel loads them
//! and gives the same results on the frames whose walk ends before the counter runs out (when
//! it can be asked: root, `bpftool`). Where the counter runs out the kernel differs: since 6.15
//! its x86 JIT refills the counter while the run is within a time slice (timed `may_goto`), so
//! how often such a loop goes round depends on time there; bpfx keeps the fixed budget of
//! `MAY_GOTO_BUDGET`, which the reference counts. The unsafe twins
//! (`*_bad.c`, one byte past what a check covers) are rejected in Strict mode, as the kernel
//! rejects them.

#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::bytecode::MAY_GOTO_BUDGET;
use bpfx::{Mode, Object, UpdateFlag};
use common::{engines, prepare};
use oracle::{compare_xdp, load, objects, unavailable};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

/// A run's verdict and final frame.
type Run = (u32, Vec<u8>);

/// `xdp_tlv_walk`'s result on `frame`, its `can_loop` counted as the run's counter.
fn tlv_walk(frame: &[u8]) -> (u32, Vec<u8>) {
    let mut f = frame.to_vec();
    if f.len() < 14 {
        return (XDP_DROP, f);
    }
    let (mut off, mut hash, mut verdict) = (14u32, 0u32, XDP_PASS);
    let mut counter = MAY_GOTO_BUDGET;
    while counter > 0 {
        counter -= 1;
        let o = off as usize;
        if off > 1024 || o + 2 > f.len() {
            break;
        }
        if f[o] == 0 {
            verdict = XDP_TX;
            break;
        }
        hash = hash.wrapping_mul(31).wrapping_add(u32::from(f[o]));
        off += u32::from(f[o + 1]);
    }
    f[..2].copy_from_slice(&(hash as u16).to_le_bytes());
    f[2..4].copy_from_slice(&(off as u16).to_le_bytes());
    (verdict, f)
}

/// `xdp_list_walk`'s result on `frame` with the map value `next`, `val`.
fn list_walk(frame: &[u8], next: &[u32; 64], val: &[u32; 64]) -> (u32, Vec<u8>) {
    let mut f = frame.to_vec();
    if f.len() < 14 {
        return (XDP_DROP, f);
    }
    let (mut i, mut hash, mut hops) = (usize::from(f[0] & 63), 0u32, 0u32);
    let mut counter = MAY_GOTO_BUDGET;
    while counter > 0 {
        counter -= 1;
        hash = hash.wrapping_mul(31).wrapping_add(val[i]);
        hops += 1;
        let n = next[i];
        if n >= 64 {
            break;
        }
        i = n as usize;
    }
    f[..4].copy_from_slice(&hash.to_le_bytes());
    f[4..8].copy_from_slice(&hops.to_le_bytes());
    (XDP_TX, f)
}

/// Runs program `name` of `obj` as XDP on each of `frames` (a `Packet::new`), in Checked and
/// Strict mode on every engine (each verified once), and returns the verdicts and final
/// frames, asserting every run gives the same.
fn run_everywhere(obj: &Object, name: &str, frames: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
    let mut seen: Option<Vec<(u32, Vec<u8>)>> = None;
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, opts) in engines() {
            let v = obj
                .program(name)
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
            let mut prog = prepare(v, opts);
            let got: Vec<(u32, Vec<u8>)> = frames
                .iter()
                .map(|f| {
                    let mut p = bpfx::Packet::new(f);
                    let out = prog.run_xdp_packet(&mut p).unwrap();
                    (out.action.code() as u32, p.to_vec())
                })
                .collect();
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(*s, got, "{name} {mode:?} {engine}"),
            }
        }
    }
    seen.unwrap()
}

/// Every access of `name` in `file` is proven in Strict mode.
fn strict_proves_every_access(file: &str, name: &str) {
    let obj = Object::open(objects().join(file)).unwrap();
    let v = obj
        .program(name)
        .unwrap()
        .check(Mode::Strict)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let accesses: Vec<bool> = v
        .program()
        .iter()
        .filter_map(|(pc, _)| v.access(pc).map(|a| a.proven))
        .collect();
    assert!(!accesses.is_empty(), "{name}");
    assert!(accesses.iter().all(|p| *p), "{name}: {accesses:?}");
}

/// An Ethernet header of zeros followed by `records` (type, length) and `tail`.
fn records(records: &[(u8, u8)], tail: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    f[12] = 0x88;
    f[13] = 0xb5;
    for &(t, l) in records {
        let at = f.len();
        f.extend_from_slice(&[t, l]);
        // The next record starts `l` bytes from this one's start.
        f.resize(at + usize::from(l).max(2), 0xee);
    }
    f.extend(std::iter::repeat_n(7u8, tail));
    f
}

#[test]
fn tlv_walk_bounded_by_can_loop_is_proven_and_agrees_with_the_kernel() {
    strict_proves_every_access("xdp_tlv_walk.o", "xdp_tlv_walk");
    let file = "xdp_tlv_walk.o";
    let obj = Object::open(objects().join(file)).unwrap();
    let mut frames = vec![
        vec![1u8; 10],
        records(&[], 0),
        records(&[(5, 4), (6, 2), (0, 2)], 3),
        records(&[(5, 4), (6, 3)], 0),
        records(
            &[(9, 200), (9, 200), (9, 200), (9, 200), (9, 200), (0, 2)],
            0,
        ),
        // A record of length 0 after two others: the walk repeats it until the counter runs out.
        records(&[(3, 2), (4, 2), (8, 0)], 0),
    ];
    // Every truncation of a list that ends with type 0.
    let full = records(&[(1, 3), (2, 2), (3, 5), (0, 2)], 0);
    frames.extend((14..full.len()).map(|n| full[..n].to_vec()));
    let ours = run_everywhere(&obj, "xdp_tlv_walk", &frames);
    for (f, o) in frames.iter().zip(&ours) {
        assert_eq!(*o, tlv_walk(f), "frame {f:02x?}");
    }
    assert!(ours.iter().any(|o| o.0 == XDP_TX) && ours.iter().any(|o| o.0 == XDP_PASS));
    // The kernel on every frame but the one that runs the counter out (the last built above
    // the truncations: see the module's doc).
    let spinning = 5;
    assert_eq!(frames[spinning], records(&[(3, 2), (4, 2), (8, 0)], 0));
    let (kf, ko): (Vec<Vec<u8>>, Vec<Run>) = frames
        .iter()
        .zip(&ours)
        .enumerate()
        .filter(|(i, _)| *i != spinning)
        .map(|(_, (f, o))| (f.clone(), o.clone()))
        .unzip();
    if let Some(checked) = compare_xdp("tlv_walk", file, &kf, &ko) {
        assert_eq!(checked, kf.iter().filter(|f| f.len() >= 14).count());
    }
}

#[test]
fn list_walk_bounded_by_can_loop_is_proven_and_agrees_with_the_kernel() {
    strict_proves_every_access("xdp_list_walk.o", "xdp_list_walk");
    let file = "xdp_list_walk.o";
    let obj = Object::open(objects().join(file)).unwrap();
    // The map as loaded (zeros): slot 0 links to itself, so the walk goes round until the
    // counter runs out (the kernel, whose counter is timed, is asked only about the runt
    // frame and whether it loads the program: see the module's doc).
    let frames = vec![vec![0u8; 14], vec![5u8; 8]];
    let ours = run_everywhere(&obj, "xdp_list_walk", &frames);
    for (f, o) in frames.iter().zip(&ours) {
        assert_eq!(*o, list_walk(f, &[0; 64], &[0; 64]), "frame {f:02x?}");
    }
    assert_eq!(ours[0].1[4..8], MAY_GOTO_BUDGET.to_le_bytes()[..4]);
    match unavailable() {
        Some(why) => eprintln!("SKIPPED the kernel's verdict on {file}: {why}"),
        None => drop(load(&objects().join(file), "xdp").unwrap()),
    }
    // Lists of several shapes: slot k links to (k * 7 + 3) % 64 except every fifth, which ends
    // the list (with 64 or a larger index), so walks are short, long, or end at once.
    let mut next = [0u32; 64];
    let mut val = [0u32; 64];
    for k in 0..64u32 {
        next[k as usize] = if k % 5 == 4 {
            64 + k * 1000
        } else {
            (k * 7 + 3) % 64
        };
        val[k as usize] = k.wrapping_mul(0x9e37_79b9);
    }
    let mut value: Vec<u8> = next.iter().flat_map(|w| w.to_le_bytes()).collect();
    value.extend(val.iter().flat_map(|w| w.to_le_bytes()));
    obj.map("lists")
        .unwrap()
        .update(&0u32.to_le_bytes(), &value, UpdateFlag::Any)
        .unwrap();
    let frames: Vec<Vec<u8>> = [0u8, 4, 9, 63, 64 + 17, 200]
        .iter()
        .map(|&start| {
            let mut f = vec![0u8; 20];
            f[0] = start;
            f
        })
        .collect();
    let ours = run_everywhere(&obj, "xdp_list_walk", &frames);
    for (f, o) in frames.iter().zip(&ours) {
        assert_eq!(*o, list_walk(f, &next, &val), "start {}", f[0]);
    }
}

#[test]
fn unsafe_twins_are_rejected_in_strict_mode_as_the_kernel_rejects_them() {
    for (file, name, what) in [
        ("xdp_tlv_walk_bad.o", "xdp_tlv_walk", "not proven in bounds"),
        (
            "xdp_list_walk_bad.o",
            "xdp_list_walk",
            "may fall outside the map value",
        ),
    ] {
        let obj = Object::open(objects().join(file)).unwrap();
        let e = obj.program(name).unwrap().check(Mode::Strict).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(what), "{file}: {msg}");
        obj.program(name).unwrap().check(Mode::Checked).unwrap();
        match unavailable() {
            Some(why) => eprintln!("SKIPPED the kernel's verdict on {file}: {why}"),
            None => assert!(load(&objects().join(file), "xdp").is_err(), "{file}"),
        }
    }
}
