//! `map_lookup_elem` on the hash-family maps (HASH, LRU_HASH, PERCPU_HASH, LRU_PERCPU_HASH),
//! whose calls the JIT makes directly to the map's lookup (`bpfx_jit::DirectLookup`) rather
//! than through the helper dispatcher: the same results, effects and traps as the interpreter's
//! helper on every engine and JIT option set, in Checked and Strict mode, for keys on the
//! stack, in a map value, in the packet and behind a pointer the verifier could not prove.

use bpfx::{MapKind, MapSpec, Mode, Object, Program, ProgramDef, UpdateFlag, Vm, XdpAction};

const HASHES: [MapKind; 4] = [
    MapKind::Hash,
    MapKind::LruHash,
    MapKind::PerCpuHash,
    MapKind::LruPerCpuHash,
];

/// The CPUs of every `Vm` here, and the one the runs are on.
const CPUS: u32 = 2;
const CPU: u32 = 1;

fn asm(text: &str) -> bpfx::Bytecode {
    use bpfx::bytecode::{Program as Bytecode, assemble};
    Bytecode::decode(assemble(text).unwrap()).unwrap()
}

fn object(section: &str, text: &str, maps: Vec<MapSpec>) -> Object {
    Vm::new()
        .cpus(CPUS)
        .cpu_id(|| CPU)
        .object(vec![ProgramDef::new("p", section, asm(text))], maps)
        .unwrap()
}

/// Program `p` of `obj` on one engine of the matrix (`None`: the interpreter), verified in
/// `mode` for inputs of `input` bytes (a plain-memory program) or as its context says.
fn prepare(
    obj: &Object,
    mode: Mode,
    input: Option<u64>,
    opts: &Option<bpfx::JitOptions>,
) -> Program {
    let mut p = obj.program("p").unwrap();
    if let Some(n) = input {
        p = p.input_size(n);
    }
    let v = p.verify(mode).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    match opts {
        None => v.interpret(),
        Some(o) => v.compile_with(o).unwrap(),
    }
}

/// The value of key `k` on CPU `cpu` (the same on every CPU for a map that is not per-CPU).
fn value(kind: MapKind, k: u32, cpu: u32) -> u64 {
    u64::from(k) * 100 + if kind.per_cpu() { u64::from(cpu) } else { 0 }
}

/// Stores keys 0..8 of `map` (8-byte values, [`value`]).
fn fill(obj: &Object, map: &str, kind: MapKind) {
    let m = obj.map(map).unwrap();
    for k in 0..8u32 {
        let v: Vec<u8> = if kind.per_cpu() {
            (0..CPUS)
                .flat_map(|c| value(kind, k, c).to_le_bytes())
                .collect()
        } else {
            value(kind, k, 0).to_le_bytes().to_vec()
        };
        m.update(&k.to_le_bytes(), &v, UpdateFlag::Any).unwrap();
    }
}

/// What a lookup of key `k` gives in these programs: the value on the run's CPU, or
/// `u64::MAX` for no entry.
fn want(kind: MapKind, k: u32) -> u64 {
    if k < 8 { value(kind, k, CPU) } else { u64::MAX }
}

/// Whether the JIT's code calls a direct entry (through rdx, or r8 for an update; the
/// dispatcher is called through r12).
fn calls_direct(p: &Program) -> bool {
    p.listing().is_some_and(|l| {
        let l = l.to_lowercase();
        l.contains("call qword ptr [rdx") || l.contains("call qword ptr [r8")
    })
}

/// Looks up the `u32` key at input offset 0 through the stack; returns the value or -1.
const STACK_KEY: &str = "ldxw r6, [r1+0]
stxw [r10-4], r6
lddw r1, map_idx(0)
mov r2, r10
add r2, -4
call 1
jeq r0, 0, none
ldxdw r0, [r0+0]
exit
none:
mov r0, -1
exit";

#[test]
fn lookups_with_the_key_on_the_stack_agree_on_every_engine() {
    for kind in HASHES {
        let obj = object("test", STACK_KEY, vec![MapSpec::new("h", kind, 4, 8, 16)]);
        fill(&obj, "h", kind);
        for mode in [Mode::Checked, Mode::Strict] {
            for (engine, opts) in bpfx_testkit::matrix() {
                let mut p = prepare(&obj, mode, Some(8), &opts);
                if opts.is_some() {
                    assert!(calls_direct(&p), "{kind} {engine} {mode:?}: no direct call");
                }
                for k in 0..10u32 {
                    let mut input = [k.to_le_bytes(), [0; 4]].concat();
                    let got = p.run(&mut input).unwrap();
                    assert_eq!(got, want(kind, k), "{kind} {engine} {mode:?}: key {k}");
                }
            }
        }
    }
}

/// Looks up key 0 of the ARRAY map 0, whose value holds a key of hash map 1, and looks that
/// key up in place (a key in a map value); returns the value or -1.
const VALUE_KEY: &str = "stw [r10-4], 0
lddw r1, map_idx(0)
mov r2, r10
add r2, -4
call 1
jeq r0, 0, none
mov r2, r0
lddw r1, map_idx(1)
call 1
jeq r0, 0, none
ldxdw r0, [r0+0]
exit
none:
mov r0, -1
exit";

#[test]
fn lookups_with_the_key_in_a_map_value_agree_on_every_engine() {
    for kind in HASHES {
        let maps = vec![
            MapSpec::new("keys", MapKind::Array, 4, 8, 1),
            MapSpec::new("h", kind, 4, 8, 16),
        ];
        let obj = object("test", VALUE_KEY, maps);
        fill(&obj, "h", kind);
        let keys = obj.map("keys").unwrap();
        for mode in [Mode::Checked, Mode::Strict] {
            for (engine, opts) in bpfx_testkit::matrix() {
                let mut p = prepare(&obj, mode, Some(8), &opts);
                for k in [0u32, 5, 7, 8, 1000] {
                    keys.update(
                        &0u32.to_le_bytes(),
                        &u64::from(k).to_le_bytes(),
                        UpdateFlag::Any,
                    )
                    .unwrap();
                    let got = p.run(&mut [0; 8]).unwrap();
                    assert_eq!(got, want(kind, k), "{kind} {engine} {mode:?}: key {k}");
                }
            }
        }
    }
}

/// XDP: looks up the `u32` after the Ethernet header (a key in the packet): the verdict is
/// the value found, `XDP_PASS` without one or on a frame too short for the key.
const PACKET_KEY: &str = "ldxw r2, [r1+0]
ldxw r3, [r1+4]
mov r4, r2
add r4, 18
jgt r4, r3, pass
add r2, 14
lddw r1, map_idx(0)
call 1
jeq r0, 0, pass
ldxdw r0, [r0+0]
exit
pass:
mov r0, 2
exit";

#[test]
fn lookups_with_the_key_in_the_packet_agree_on_every_engine() {
    for kind in HASHES {
        let obj = object("xdp", PACKET_KEY, vec![MapSpec::new("h", kind, 4, 8, 16)]);
        // Key k's verdict: XDP_DROP for even keys, XDP_TX for odd ones (any CPU).
        let verdict = |k: u32| if k.is_multiple_of(2) { 1u64 } else { 3 };
        let m = obj.map("h").unwrap();
        for k in 0..8u32 {
            let cpus = if kind.per_cpu() { CPUS } else { 1 };
            let v: Vec<u8> = (0..cpus).flat_map(|_| verdict(k).to_le_bytes()).collect();
            m.update(&k.to_le_bytes(), &v, UpdateFlag::Any).unwrap();
        }
        for mode in [Mode::Checked, Mode::Strict] {
            for (engine, opts) in bpfx_testkit::matrix() {
                let mut p = prepare(&obj, mode, None, &opts);
                if opts.is_some() {
                    assert!(calls_direct(&p), "{kind} {engine} {mode:?}: no direct call");
                }
                for k in 0..10u32 {
                    let mut frame = vec![0u8; 60];
                    frame[14..18].copy_from_slice(&k.to_le_bytes());
                    let want = match k {
                        0..8 if k.is_multiple_of(2) => XdpAction::Drop,
                        0..8 => XdpAction::Tx,
                        _ => XdpAction::Pass,
                    };
                    let got = p.run_xdp(&mut frame).unwrap();
                    assert_eq!(got, want, "{kind} {engine} {mode:?}: key {k}");
                }
                // Too short for the key: never looked up.
                assert_eq!(p.run_xdp(&mut [0; 16]).unwrap(), XdpAction::Pass);
            }
        }
    }
}

/// The key at the input's address plus the `u32` at input offset 0, which the verifier cannot
/// bound (Checked mode guards it): a key inside the input is looked up, one past its end
/// traps at the `call` (insn #5).
const UNPROVEN_KEY: &str = "mov r6, r1
ldxw r2, [r1+0]
add r2, r6
lddw r1, map_idx(0)
call 1
jeq r0, 0, none
ldxdw r0, [r0+0]
exit
none:
mov r0, -1
exit";

#[test]
fn unproven_key_pointers_trap_at_the_same_pc_on_every_engine() {
    for kind in HASHES {
        let obj = object(
            "test",
            UNPROVEN_KEY,
            vec![MapSpec::new("h", kind, 4, 8, 16)],
        );
        fill(&obj, "h", kind);
        // The message names the key's address: as its offset from the input's, here.
        let run = |p: &mut Program, off: u32, key: u32| {
            let mut input = [off.to_le_bytes(), [0; 4], key.to_le_bytes(), [0; 4]].concat();
            let at = format!("{:#x}", input.as_ptr() as u64 + u64::from(off));
            p.run(&mut input)
                .map_err(|e| e.to_string().replace(&at, &format!("input+{off}")))
        };
        let mut interp = prepare(&obj, Mode::Checked, Some(16), &None);
        for (engine, opts) in bpfx_testkit::matrix() {
            let mut p = prepare(&obj, Mode::Checked, Some(16), &opts);
            for (off, key) in [(8, 3), (8, 9), (12, 0), (13, 0), (16, 0), (1 << 20, 0)] {
                let got = run(&mut p, off, key);
                assert_eq!(got, run(&mut interp, off, key), "{kind} {engine}: {off}");
                match got {
                    Ok(r0) => {
                        assert!(off + 4 <= 16, "{kind} {engine}: {off} ran");
                        // Offset 12 reads the key's upper half: key 0.
                        let k = if off == 8 { key } else { 0 };
                        assert_eq!(r0, want(kind, k), "{kind} {engine}: {off}");
                    }
                    Err(e) => {
                        assert!(off + 4 > 16, "{kind} {engine}: {off}: {e}");
                        assert!(
                            e.contains("insn #5: call 1: memory access out of bounds")
                                && e.contains(&format!("argument r2 names 4 bytes at input+{off}")),
                            "{kind} {engine}: {off}: {e}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn lru_lookups_mark_their_keys_used_on_every_engine() {
    let put = |k: u32| {
        format!(
            "stw [r10-4], {k}\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\nmov r3, r10\n\
             add r3, -16\nmov r4, 0\ncall 2\n"
        )
    };
    // Puts 1 and 2, looks 1 up, puts 3: the least recently used key is 2.
    let prog = format!(
        "stdw [r10-16], 5\n{}{}stw [r10-4], 1\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\n\
         call 1\n{}mov r0, 0\nexit",
        put(1),
        put(2),
        put(3)
    );
    for kind in [MapKind::LruHash, MapKind::LruPerCpuHash] {
        for (engine, opts) in bpfx_testkit::matrix() {
            let obj = object("test", &prog, vec![MapSpec::new("l", kind, 4, 8, 2)]);
            let mut p = prepare(&obj, Mode::Strict, Some(0), &opts);
            p.run(&mut []).unwrap();
            let mut keys: Vec<Vec<u8>> = obj.map("l").unwrap().iter().map(|(k, _)| k).collect();
            keys.sort();
            let want = [1u32.to_le_bytes().to_vec(), 3u32.to_le_bytes().to_vec()];
            assert_eq!(keys, want, "{kind} {engine}");
        }
    }
}

/// `map_update_elem(map, &input.key, &input.value, input.flags)` with the key and value in the
/// input (`{u32 key; u32 value_at; u64 value; u64 flags}`), the value at the input's address
/// plus `value_at`, which Checked mode cannot bound; returns r0.
const UPDATE: &str = "mov r6, r1
ldxw r3, [r6+4]
add r3, r6
lddw r1, map_idx(0)
mov r2, r6
ldxdw r4, [r6+16]
call 2
exit";

/// `map_delete_elem(map, &key)` for the input's `u32` key, copied to the stack; returns r0.
const DELETE: &str = "ldxw r6, [r1+0]
stxw [r10-4], r6
lddw r1, map_idx(0)
mov r2, r10
add r2, -4
call 3
exit";

const EEXIST: i64 = 17;
const ENOENT: i64 = 2;
const E2BIG: i64 = 7;
const EINVAL: i64 = 22;

/// What a program's updates and deletes did: each call's r0 (or its error, the key's address
/// written as its offset in the input), then the map's entries, sorted.
fn transcript(kind: MapKind, opts: &Option<bpfx::JitOptions>) -> Vec<String> {
    let maps = || vec![MapSpec::new("h", kind, 4, 8, 4)];
    let (vm, up, del) = (
        Vm::new().cpus(CPUS).cpu_id(|| CPU),
        asm(UPDATE),
        asm(DELETE),
    );
    let defs = vec![
        ProgramDef::new("p", "test", up),
        ProgramDef::new("d", "test", del),
    ];
    let obj = vm.object(defs, maps()).unwrap();
    let prep = |name: &str| {
        let v = obj
            .program(name)
            .unwrap()
            .input_size(24)
            .verify(Mode::Checked)
            .unwrap();
        match opts {
            None => v.interpret(),
            Some(o) => v.compile_with(o).unwrap(),
        }
    };
    let (mut p, mut d) = (prep("p"), prep("d"));
    if opts.is_some() {
        assert!(
            calls_direct(&p) && calls_direct(&d),
            "{kind}: no direct call"
        );
    }
    let mut out = Vec::new();
    let mut run = |p: &mut Program, key: u32, at: u32, value: u64, flags: u64| {
        let mut input = [
            &key.to_le_bytes()[..],
            &at.to_le_bytes(),
            &value.to_le_bytes(),
            &flags.to_le_bytes(),
        ]
        .concat();
        let base = input.as_ptr() as u64;
        let r = p.run(&mut input).map(|r0| r0 as i64).map_err(|e| {
            e.to_string().replace(
                &format!("{:#x}", base + u64::from(at)),
                &format!("input+{at}"),
            )
        });
        out.push(format!("{r:?}"));
    };
    const ANY: u64 = 0;
    const NOEXIST: u64 = 1;
    const EXIST: u64 = 2;
    run(&mut p, 1, 8, 11, ANY);
    run(&mut p, 1, 8, 12, NOEXIST);
    run(&mut p, 2, 8, 21, EXIST);
    run(&mut p, 2, 8, 22, 7);
    run(&mut p, 1, 8, 13, EXIST);
    for k in 3..7 {
        run(&mut p, k, 8, u64::from(k) * 10, ANY);
    }
    // A value past the input's end: the checked dispatch's trap.
    run(&mut p, 9, 20, 0, ANY);
    run(&mut p, 9, 1 << 20, 0, ANY);
    run(&mut d, 1, 0, 0, 0);
    run(&mut d, 1, 0, 0, 0);
    run(&mut d, 5, 0, 0, 0);
    let mut entries: Vec<String> = obj
        .map("h")
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k:?}={v:?}"))
        .collect();
    entries.sort();
    out.extend(entries);
    out
}

#[test]
fn updates_and_deletes_agree_on_every_engine() {
    for kind in HASHES {
        let want = transcript(kind, &None);
        let r = |v: i64| format!("{:?}", Ok::<i64, String>(v));
        assert_eq!(want[0], r(0), "{kind}: {want:?}");
        assert_eq!(want[1], r(-EEXIST), "{kind}: {want:?}");
        assert_eq!(want[2], r(-ENOENT), "{kind}: {want:?}");
        assert_eq!(want[3], r(-EINVAL), "{kind}: {want:?}");
        assert_eq!(want[4], r(0), "{kind}: {want:?}");
        // The fourth new key fills the map; the fifth evicts one of an LRU map's.
        let lru = matches!(kind, MapKind::LruHash | MapKind::LruPerCpuHash);
        assert_eq!(want[8], r(if lru { 0 } else { -E2BIG }), "{kind}: {want:?}");
        for i in [9, 10] {
            assert!(
                want[i].contains("insn #7: call 2: memory access out of bounds")
                    && want[i].contains("argument r3 names 8 bytes"),
                "{kind}: {want:?}"
            );
        }
        assert!(want[9].contains("at input+20"), "{kind}: {want:?}");
        // Deleting key 1: an LRU map may have evicted it (which key goes is the map's).
        let deleted = [r(0), r(-ENOENT)];
        assert!(
            deleted[..1 + usize::from(lru)].contains(&want[11]),
            "{kind}: {want:?}"
        );
        assert_eq!(want[12], r(-ENOENT), "{kind}: {want:?}");
        for (engine, opts) in bpfx_testkit::matrix().into_iter().skip(1) {
            assert_eq!(transcript(kind, &opts), want, "{kind} {engine}");
        }
    }
}
