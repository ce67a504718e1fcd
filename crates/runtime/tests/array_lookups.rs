//! `map_lookup_elem` on ARRAY maps, which the JIT computes in the code where the verifier knows
//! the map and the key lies on the stack (`bpfx_jit::compile_with_maps`) while the interpreter
//! calls the helper: every engine and JIT option set, in both modes, must give the same
//! pointers' contents, the same nulls at and past `max_entries`, and writes through the result
//! that the host and later lookups see.

mod common;

use bpfx::{MapKind, MapSpec, Mode, Object, ProgramDef, UpdateFlag, Vm};
use common::{code, engines, prepare};

/// An object with the one plain-memory program `text` and `maps`.
fn object(text: &str, maps: Vec<MapSpec>) -> Object {
    Vm::new()
        .object(vec![ProgramDef::new("p", "test", code(text))], maps)
        .unwrap()
}

/// Reads the `u32` index at input offset 0 onto the stack and looks it up in map `map`; a
/// null result returns `u64::MAX`. Otherwise adds 1 to the value's first 8 bytes through the
/// pointer, looks the same index up again and returns the first 8 bytes of that second
/// result plus the value's last bytes (`load` at `last`).
fn bump(map: u32, last: u32, load: &str) -> String {
    format!(
        "ldxw r6, [r1+0]\nstxw [r10-4], r6\nlddw r1, map_idx({map})\nmov r2, r10\nadd r2, -4\n\
         call 1\njeq r0, 0, miss\nldxdw r3, [r0+0]\nadd r3, 1\nstxdw [r0+0], r3\n\
         lddw r1, map_idx({map})\nmov r2, r10\nadd r2, -4\ncall 1\njeq r0, 0, miss\n\
         {load} r7, [r0+{last}]\nldxdw r0, [r0+0]\nadd r0, r7\nexit\n\
         miss:\nmov r0, -1\nexit"
    )
}

/// The maps: 0 an array of 5 values of 24 bytes (a stride that is no power of two), 1 an
/// array of 1 value of 8 bytes, 2 an array of 3 values of 12 bytes (stride 16), 3 an array of
/// map 0's shape.
fn maps() -> Vec<MapSpec> {
    vec![
        MapSpec::new("wide", MapKind::Array, 4, 24, 5),
        MapSpec::new("one", MapKind::Array, 4, 8, 1),
        MapSpec::new("odd", MapKind::Array, 4, 12, 3),
        MapSpec::new("twin", MapKind::Array, 4, 24, 5),
    ]
}

fn u64_at(v: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(v[off..off + 8].try_into().unwrap())
}

/// Every index worth trying against `max_entries`: inside, the last, `max_entries` itself,
/// past it, and the values whose high bits a careless bound check or index mask would drop.
fn indices(max_entries: u32) -> Vec<u32> {
    let mut v: Vec<u32> = (0..max_entries).collect();
    v.extend([max_entries, max_entries + 1]);
    v.extend([
        0x8000_0000,
        0x8000_0000 | (max_entries - 1),
        u32::MAX,
        1 << 16,
    ]);
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn inlined_array_lookups_match_the_helper_everywhere() {
    // (map index, value bytes, max_entries, offset of the value's last bytes, their load)
    let shapes = [
        (0u32, 24usize, 5u32, 16u32, "ldxdw"),
        (1, 8, 1, 0, "ldxdw"),
        (2, 12, 3, 8, "ldxw"),
    ];
    for (map, size, n, last, load) in shapes {
        let width = if load == "ldxw" { 4 } else { 8 };
        let text = bump(map, last, load);
        for mode in [Mode::Strict, Mode::Checked] {
            for (engine, opts) in engines() {
                let obj = object(&text, maps());
                let m = obj.map(["wide", "one", "odd"][map as usize]).unwrap();
                // Value k starts as k * 1000 with its last 8 bytes k + 7 (for 8-byte
                // values the same bytes: k + 7).
                let first = |k: u32| {
                    if last == 0 {
                        u64::from(k) + 7
                    } else {
                        u64::from(k) * 1000
                    }
                };
                let tail = |k: u32, now: u64| if last == 0 { now } else { u64::from(k) + 7 };
                for k in 0..n {
                    let mut v = vec![0u8; size];
                    v[..8].copy_from_slice(&(u64::from(k) * 1000).to_le_bytes());
                    let t = u64::from(k) + 7;
                    v[last as usize..last as usize + width]
                        .copy_from_slice(&t.to_le_bytes()[..width]);
                    m.update(&k.to_le_bytes(), &v, UpdateFlag::Any).unwrap();
                }
                let v = obj
                    .program("p")
                    .unwrap()
                    .input_size(4)
                    .verify(mode)
                    .unwrap_or_else(|e| panic!("{mode:?}: {e}\n{text}"));
                let mut prog = prepare(v, opts.clone());
                if let Some(listing) = prog.listing() {
                    // The verifier knows the map and the key is on the stack: both lookups
                    // are computed in the code (the bound's borrow made the address mask).
                    assert_eq!(
                        listing.matches("sbb r10,r10").count(),
                        2,
                        "{engine} {mode:?}: not inlined\n{listing}"
                    );
                }
                for round in 1..=2u64 {
                    for i in indices(n) {
                        let got = prog.run(&mut i.to_le_bytes()).unwrap();
                        if i >= n {
                            assert_eq!(got, u64::MAX, "{engine} {mode:?} map {map} index {i}");
                            continue;
                        }
                        // The second lookup sees the first one's write: the same address.
                        let now = first(i) + round;
                        let want = now + tail(i, now);
                        assert_eq!(
                            got, want,
                            "{engine} {mode:?} map {map} index {i} round {round}"
                        );
                    }
                }
                // The host sees the programs' writes, and nothing else changed.
                for k in 0..n {
                    let v = m.lookup(&k.to_le_bytes()).unwrap().unwrap();
                    assert_eq!(u64_at(&v, 0), first(k) + 2, "{engine} {mode:?}");
                    if size > 8 {
                        let mut t = [0u8; 8];
                        t[..width].copy_from_slice(&v[last as usize..last as usize + width]);
                        assert_eq!(u64::from_le_bytes(t), u64::from(k) + 7, "{engine}");
                    }
                }
            }
        }
    }
}

#[test]
fn lookups_the_jit_cannot_inline_still_call_the_helper_and_agree() {
    // The key read straight from the input (not the stack), the key on the stack at an
    // inexact offset, and one of two maps of one shape by a branch (the verifier joins their
    // handles): each goes through the helper on every engine.
    let cases = [
        // The key is the input itself.
        "mov r2, r1\nlddw r1, map_idx(0)\ncall 1\njeq r0, 0, miss\nldxdw r0, [r0+0]\nexit\n\
         miss:\nmov r0, -1\nexit"
            .to_string(),
        // The key on the stack at an offset the verifier knows only as a range.
        "ldxw r6, [r1+0]\nstxw [r10-4], r6\nstxw [r10-8], r6\nldxb r7, [r1+1]\nand r7, 1\n\
         lsh r7, 2\nmov r2, r10\nadd r2, -8\nadd r2, r7\nlddw r1, map_idx(0)\ncall 1\n\
         jeq r0, 0, miss\nldxdw r0, [r0+0]\nexit\nmiss:\nmov r0, -1\nexit"
            .to_string(),
        // "wide" for an even index, "twin" for an odd one.
        "ldxw r6, [r1+0]\nstxw [r10-4], r6\nldxb r7, [r1+0]\nand r7, 1\nlddw r1, map_idx(0)\n\
         jeq r7, 0, go\nlddw r1, map_idx(3)\ngo:\nmov r2, r10\nadd r2, -4\ncall 1\n\
         jeq r0, 0, miss\nldxdw r0, [r0+0]\nexit\nmiss:\nmov r0, -1\nexit"
            .to_string(),
    ];
    for (c, text) in cases.iter().enumerate() {
        // Strict mode refuses a stack argument at an inexact offset.
        let modes: &[Mode] = if c == 1 {
            &[Mode::Checked]
        } else {
            &[Mode::Strict, Mode::Checked]
        };
        for &mode in modes {
            let mut seen: Option<Vec<u64>> = None;
            for (engine, opts) in engines() {
                let obj = object(text, maps());
                for (name, size, n, at) in [
                    ("wide", 24, 5u32, 100),
                    ("odd", 12, 3, 500),
                    ("twin", 24, 5, 900),
                ] {
                    for k in 0..n {
                        let mut v = vec![0u8; size];
                        let x = u64::from(k) + at;
                        v[..8].copy_from_slice(&x.to_le_bytes());
                        obj.map(name)
                            .unwrap()
                            .update(&k.to_le_bytes(), &v, UpdateFlag::Any)
                            .unwrap();
                    }
                }
                let v = obj
                    .program("p")
                    .unwrap()
                    .input_size(4)
                    .verify(mode)
                    .unwrap_or_else(|e| panic!("case {c} {mode:?}: {e}"));
                let mut prog = prepare(v, opts.clone());
                if let Some(listing) = prog.listing() {
                    assert!(
                        !listing.contains("sbb r10,r10"),
                        "{engine} {mode:?}: inlined"
                    );
                }
                let got: Vec<u64> = [0u32, 2, 4, 5, 0x0100, 0x0102, 0x0103, u32::MAX, 1]
                    .iter()
                    .map(|i| prog.run(&mut i.to_le_bytes()).unwrap())
                    .collect();
                match &seen {
                    None => seen = Some(got),
                    Some(s) => assert_eq!(s, &got, "case {c} {engine} {mode:?}"),
                }
            }
            let seen = seen.unwrap();
            // Index 2 of "wide" holds 102; index 0x0102 (258) is past its end.
            assert_eq!(seen[1], 102, "case {c} {mode:?}");
            assert_eq!(seen[5], u64::MAX, "case {c} {mode:?}");
            // Index 1: of "twin" where the index picks the map.
            assert_eq!(seen[8], if c == 2 { 901 } else { 101 }, "case {c} {mode:?}");
        }
    }
}

thread_local!(static CPU: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });

/// A per-CPU array's lookups, computed in the code on the JIT, give the value of the CPU the
/// run is on: programs on threads that are CPUs 0, 1 and 2 each add to their own copy, the
/// host reads every CPU's sum, and indices at and past `max_entries` give null.
#[test]
fn inlined_per_cpu_lookups_use_the_runs_cpu() {
    let text = bump(0, 16, "ldxw");
    for mode in [Mode::Strict, Mode::Checked] {
        for (engine, opts) in engines() {
            let obj = Vm::new()
                .cpus(3)
                .cpu_id(|| CPU.with(std::cell::Cell::get))
                .object(
                    vec![ProgramDef::new("p", "test", code(&text))],
                    vec![MapSpec::new("pc", MapKind::PerCpuArray, 4, 20, 4)],
                )
                .unwrap();
            let m = obj.map("pc").unwrap();
            let stride = 24;
            // CPU c's value k: first 8 bytes 100 * c + k, bytes 16..20 c + 7.
            for k in 0..4u32 {
                let mut v = vec![0u8; 3 * stride];
                for c in 0..3usize {
                    let at = c * stride;
                    v[at..at + 8].copy_from_slice(&(100 * c as u64 + u64::from(k)).to_le_bytes());
                    v[at + 16..at + 20].copy_from_slice(&(c as u32 + 7).to_le_bytes());
                }
                m.update(&k.to_le_bytes(), &v, UpdateFlag::Any).unwrap();
            }
            let v = obj
                .program("p")
                .unwrap()
                .input_size(4)
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let prog = prepare(v, opts.clone());
            if let Some(listing) = prog.listing() {
                assert_eq!(
                    listing.matches("sbb r10,r10").count(),
                    2,
                    "{engine} {mode:?}"
                );
            }
            std::thread::scope(|s| {
                for c in 0..3u32 {
                    let mut p = prog.clone();
                    s.spawn(move || {
                        CPU.with(|x| x.set(c));
                        // CPU c runs index k (c + 1) times.
                        for k in 0..4u32 {
                            for round in 1..=u64::from(c) + 1 {
                                let got = p.run(&mut k.to_le_bytes()).unwrap();
                                let now = 100 * u64::from(c) + u64::from(k) + round;
                                // The value's bytes 16..20: c + 7.
                                assert_eq!(got, now + u64::from(c) + 7, "{engine} cpu {c}");
                            }
                        }
                        for k in [4u32, 5, u32::MAX] {
                            assert_eq!(p.run(&mut k.to_le_bytes()).unwrap(), u64::MAX);
                        }
                    });
                }
            });
            for k in 0..4u32 {
                let v = m.lookup(&k.to_le_bytes()).unwrap().unwrap();
                for c in 0..3usize {
                    let want = 100 * c as u64 + u64::from(k) + c as u64 + 1;
                    assert_eq!(
                        u64_at(&v, c * stride),
                        want,
                        "{engine} {mode:?} cpu {c} k {k}"
                    );
                }
            }
        }
    }
}
