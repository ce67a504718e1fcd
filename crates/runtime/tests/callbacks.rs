//! Callbacks. `bpf_loop` (helper 181): clang-built programs (`objects/loops.c`) whose
//! callbacks sum, parse and stop early, with `nr_loops` from the input and from a map;
//! `for_each_map_elem` (164, `objects/for_each.c`): an array and a hash map summed, one value
//! updated through the value pointer, an early stop; per-CPU arrays, hashes and LRU hashes,
//! whose callbacks see the running CPU's values; the map types the kernel does not iterate
//! refused by the verifier. Verified in both modes and run on every
//! engine and JIT option set, results and map contents compared with values computed here;
//! the unsafe twins (`objects/loops_bad.c`, `bad_key_read`) rejected.

mod common;

use bpfx::{Mode, Object, UpdateFlag};
use common::{engines, prepare};
use std::path::PathBuf;

fn object(name: &str) -> Object {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects"));
    Object::open(dir.join(name)).unwrap()
}

/// `struct in { u32 n; u32 stop; u8 bytes[64]; }`.
fn input(n: u32, stop: u32, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 72];
    v[..4].copy_from_slice(&n.to_le_bytes());
    v[4..8].copy_from_slice(&stop.to_le_bytes());
    v[8..8 + bytes.len()].copy_from_slice(bytes);
    v
}

/// Runs program `name` of `obj` on `inp` in both modes on every engine; every run must give
/// `want` (the program's `int` result, as r0's low 32 bits).
fn check(obj: &Object, name: &str, inp: &[u8], want: u32) {
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, opts) in engines() {
            let v = obj
                .program(name)
                .unwrap()
                .input_size(72)
                .verify(mode)
                .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
            let mut prog = prepare(v, opts);
            let mut m = inp.to_vec();
            let r0 = prog
                .run(&mut m)
                .unwrap_or_else(|t| panic!("{name} {mode:?} {engine}: {t}"));
            assert_eq!(r0 as u32, want, "{name} {mode:?} {engine}");
        }
    }
}

#[test]
fn bpf_loop_sums_through_a_context_on_the_stack() {
    let obj = object("loops.o");
    for n in [0u32, 1, 2, 7, 100, 1000] {
        let sum: u64 = (0..u64::from(n)).map(|i| i * i).sum();
        let want = sum + 1_000_000 * u64::from(n) + 1000 * u64::from(n);
        check(&obj, "sum_squares", &input(n, 0, &[]), want as u32);
    }
    // Above BPF_MAX_LOOPS the helper fails with -E2BIG before any call.
    let want = (-7i64 * 1_000_000) as u32;
    check(&obj, "sum_squares", &input((1 << 23) + 1, 0, &[]), want);
}

#[test]
fn bpf_loop_callback_stops_early_by_returning_one() {
    let obj = object("loops.o");
    for text in ["12345x", "0", "", "9876543210123456789", "42"] {
        let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
        let value = digits.bytes().fold(0u64, |v, b| {
            v.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
        });
        // Calls made: each digit, plus the call that found the first non-digit (the input is
        // zero-padded, so there always is one before 64).
        let calls = digits.len() as u64 + 1;
        let want = value.wrapping_mul(100).wrapping_add(calls);
        check(
            &obj,
            "parse_number",
            &input(0, 0, text.as_bytes()),
            want as u32,
        );
    }
}

#[test]
fn bpf_loop_runs_nr_loops_from_a_map() {
    let obj = object("loops.o");
    let map = obj.map("loops").unwrap();
    for (n, stop) in [(0u64, 5u32), (3, 9), (10, 4), (10, 0), (1000, 999)] {
        map.update(&0u32.to_le_bytes(), &n.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
        // Calls made: up to and including index `stop`, at most n.
        let calls = n.min(u64::from(stop) + 1);
        check(
            &obj,
            "loops_from_map",
            &input(0, stop, &[]),
            (calls * 1001) as u32,
        );
    }
}

#[test]
fn a_budget_exhausted_inside_the_callback_traps_at_the_callback_pc_on_every_engine() {
    let obj = object("loops.o");
    let mut seen = None;
    for budget in [5u64, 40, 200] {
        for (engine, opts) in engines() {
            let v = obj
                .program("sum_squares")
                .unwrap()
                .input_size(72)
                .verify(Mode::Checked)
                .unwrap();
            // Every JIT option set, with the budget charge compiled in.
            let opts = opts.map(|o| bpfx_jit::JitOptions { budget: true, ..o });
            let mut prog = prepare(v, opts);
            prog.set_budget(bpfx::Budget::Limit(budget));
            let got = prog.run(&mut input(1000, 0, &[])).map_err(|e| match e {
                bpfx::RunError::Trap { trap, .. } => trap,
                e => panic!("{engine}: {e}"),
            });
            match &seen {
                Some((b, s)) if *b == budget => assert_eq!(s, &got, "{engine} budget {budget}"),
                _ => seen = Some((budget, got)),
            }
            if budget == 40 {
                // Nine instructions up to and including the `call` (the `lddw` counts once),
                // three runs of the nine-instruction callback (`add_square`, linked at pc 18),
                // then four of the fourth: its fifth instruction finds the budget spent.
                let trap = got.unwrap_err();
                assert_eq!(trap.kind, bpfx_exec::TrapKind::BudgetExhausted, "{engine}");
                assert_eq!(trap.pc, bpfx::bytecode::Pc(22), "{engine}");
            }
        }
    }
}

#[test]
fn unsafe_callbacks_are_rejected_in_both_modes() {
    let obj = object("loops_bad.o");
    for (name, says) in [
        ("bad_return", "must return 0 or 1"),
        ("bad_write", "outside the stack frame"),
    ] {
        for mode in [Mode::Checked, Mode::Strict] {
            let r = obj.program(name).unwrap().verify(mode);
            match (name, mode) {
                // Checked mode guards the unproven write and runs it: it traps.
                ("bad_write", Mode::Checked) => {
                    let v = r.unwrap_or_else(|e| panic!("{name}: {e}"));
                    for (engine, opts) in engines() {
                        let mut prog = prepare(v.clone(), opts);
                        match prog.run(&mut [0u8; 8]) {
                            Err(bpfx::RunError::Trap { trap, .. }) => {
                                assert_eq!(trap.kind, bpfx_exec::TrapKind::OutOfBounds, "{engine}")
                            }
                            r => panic!("{engine}: {r:?}"),
                        }
                    }
                }
                _ => {
                    let e = r
                        .err()
                        .unwrap_or_else(|| panic!("{name} {mode:?} accepted"));
                    assert!(e.to_string().contains(says), "{name} {mode:?}: {e}");
                }
            }
        }
    }
}

/// Every run starts with a zeroed stack, the callback's frame included (it lies below its
/// caller's, outside the local-call graph the JIT sizes its stack from): a callback reading
/// its own slot before writing it sees 0 on every run, on every engine.
#[test]
fn a_callback_frame_starts_zeroed_on_every_run() {
    let text = "mov r6, 0\nstxdw [r10-8], r6\nmov r1, 1\nlddw r2, func(cb)\nmov r3, r10\n\
                add r3, -8\nmov r4, 0\ncall 181\nldxdw r0, [r10-8]\nexit\n\
                cb:\nldxdw r3, [r10-8]\nstxdw [r2+0], r3\nmov r3, 99\nstxdw [r10-8], r3\n\
                mov r0, 0\nexit";
    let obj = bpfx::Vm::new()
        .object(
            vec![bpfx::ProgramDef::new("p", "test", common::code(text))],
            vec![],
        )
        .unwrap();
    for (engine, opts) in engines() {
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        let mut prog = prepare(v, opts);
        for run in 0..3 {
            assert_eq!(prog.run(&mut []).unwrap(), 0, "{engine} run {run}");
        }
    }
}

/// `struct in { u32 bump; u32 stop_at; }` of `objects/for_each.c`.
fn walk_input(bump: u32, stop_at: u32) -> Vec<u8> {
    [bump.to_le_bytes(), stop_at.to_le_bytes()].concat()
}

/// Runs program `name` of a fresh load of `objects/for_each.o` on every engine in `mode`,
/// after `setup` fills its maps; gives each run's `int` result and the object.
fn for_each_runs(
    name: &str,
    mode: Mode,
    inp: &[u8],
    setup: &dyn Fn(&Object),
) -> Vec<(String, u32, Object)> {
    let mut out = Vec::new();
    for (engine, opts) in engines() {
        let obj = object("for_each.o");
        let v = obj
            .program(name)
            .unwrap()
            .input_size(8)
            .verify(mode)
            .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
        setup(&obj);
        let mut prog = prepare(v, opts);
        let r0 = prog
            .run(&mut inp.to_vec())
            .unwrap_or_else(|e| panic!("{name} {mode:?} {engine}: {e}"));
        out.push((engine.to_string(), r0 as u32, obj));
    }
    out
}

fn u64_value(obj: &Object, map: &str, key: &[u8]) -> u64 {
    let v = obj.map(map).unwrap().lookup(key).unwrap().unwrap();
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

#[test]
fn for_each_over_an_array_sums_updates_and_stops_early() {
    let fill = |obj: &Object| {
        let m = obj.map("values").unwrap();
        for i in 0u32..16 {
            let v = u64::from(i) * 3 + 1;
            m.update(&i.to_le_bytes(), &v.to_le_bytes(), UpdateFlag::Any)
                .unwrap();
        }
    };
    for mode in [Mode::Checked, Mode::Strict] {
        for stop_at in [15u32, 5, 0, 99] {
            // Indices 0..=stop_at (all 16 when it is past the end), each visited once.
            let last = stop_at.min(15);
            let visited = 0..=last;
            let sum: u64 = visited.clone().map(|i| u64::from(i) * 3 + 1).sum();
            let key_sum: u64 = visited.clone().map(u64::from).sum();
            let want = sum * 1000 + key_sum * 10 + u64::from(last + 1);
            for (engine, r0, obj) in
                for_each_runs("sum_array", mode, &walk_input(100, stop_at), &fill)
            {
                assert_eq!(r0, want as u32, "{mode:?} {engine} stop at {stop_at}");
                // Key 3's value was bumped through the value pointer when it was visited.
                let bumped = if last >= 3 { 100 } else { 0 };
                assert_eq!(u64_value(&obj, "values", &3u32.to_le_bytes()), 10 + bumped);
            }
        }
    }
}

#[test]
fn for_each_over_a_hash_sums_and_updates_present_keys() {
    let keys = [1u64, 3, 7, 1000, 42];
    let fill = |obj: &Object| {
        let m = obj.map("table").unwrap();
        for k in keys {
            m.update(&k.to_le_bytes(), &(k * 2).to_le_bytes(), UpdateFlag::Any)
                .unwrap();
        }
    };
    let sum: u64 = keys.iter().map(|k| k * 2).sum();
    let key_sum: u64 = keys.iter().sum();
    let want = sum * 1000 + key_sum * 10 + keys.len() as u64;
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, r0, obj) in for_each_runs("sum_hash", mode, &walk_input(5, 0), &fill) {
            assert_eq!(r0, want as u32, "{mode:?} {engine}");
            assert_eq!(
                u64_value(&obj, "table", &3u64.to_le_bytes()),
                6 + 5,
                "{engine}"
            );
        }
        // An empty map: no call.
        for (engine, r0, _) in for_each_runs("sum_hash", mode, &walk_input(5, 0), &|_| {}) {
            assert_eq!(r0, 0, "{mode:?} {engine}");
        }
    }
}

#[test]
fn a_callback_reading_past_the_key_is_rejected() {
    let obj = object("for_each.o");
    let e = obj
        .program("bad_key_read")
        .unwrap()
        .input_size(8)
        .verify(Mode::Strict)
        .expect_err("rejected");
    // The key's 4 bytes are the only initialised ones at the bottom of the callback's frame.
    assert!(
        e.to_string().contains("[r2+4]") && e.to_string().contains("uninitialised stack"),
        "{e}"
    );
}

/// Checked mode proves termination through callbacks: `nr_loops` (a `u32` from the input, so
/// at most `BPF_MAX_LOOPS` runs) times the callback's bound, or `max_entries` runs of a
/// `for_each_map_elem` callback; such programs run without the default budget.
#[test]
fn callbacks_are_proven_to_terminate_with_their_trip_bounds() {
    let loops = object("loops.o");
    let each = object("for_each.o");
    for (obj, name) in [
        (&loops, "sum_squares"),
        (&loops, "parse_number"),
        (&loops, "loops_from_map"),
        (&each, "sum_array"),
        (&each, "sum_hash"),
    ] {
        let v = obj
            .program(name)
            .unwrap()
            .input_size(72)
            .verify(Mode::Checked)
            .unwrap();
        let prog = prepare(v, None);
        assert!(prog.verified().terminates(), "{name}");
    }
}

/// A callback frame counts against the frame limit like a local call's: a callback that calls
/// `bpf_loop` with itself nests until the limit, where Strict mode rejects the program and a
/// Checked run traps with `CallDepthExceeded` at the innermost `call`, on every engine.
#[test]
fn nested_callbacks_count_frames() {
    let text = "mov r1, 1\nlddw r2, func(cb)\nmov r3, 0\nmov r4, 0\ncall 181\nexit\n\
                cb:\nmov r1, 1\nlddw r2, func(cb)\nmov r3, 0\nmov r4, 0\ncall 181\n\
                mov r0, 0\nexit";
    let obj = bpfx::Vm::new()
        .object(
            vec![bpfx::ProgramDef::new("p", "test", common::code(text))],
            vec![],
        )
        .unwrap();
    let e = obj
        .program("p")
        .unwrap()
        .verify(Mode::Strict)
        .expect_err("too deep");
    assert!(e.to_string().contains("frames"), "{e}");
    for (engine, opts) in engines() {
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        assert!(!v.clone().interpret().verified().terminates());
        let mut prog = prepare(v, opts);
        match prog.run(&mut []) {
            Err(bpfx::RunError::Trap { trap, .. }) => {
                assert_eq!(
                    trap.kind,
                    bpfx_exec::TrapKind::CallDepthExceeded,
                    "{engine}"
                );
                assert_eq!(trap.pc, bpfx::bytecode::Pc(12), "{engine}");
            }
            r => panic!("{engine}: {r:?}"),
        }
    }
}

/// Nonzero flags make either helper fail with `-EINVAL` before any call (the kernel's checks
/// at run time), on every engine: the callback, which would store 1 into the context, never
/// runs.
#[test]
fn nonzero_flags_fail_before_any_call() {
    for (helper, setup) in [(181, "mov r1, 3"), (164, "lddw r1, map_idx(0)")] {
        let text = format!(
            "mov r6, 0\nstxdw [r10-8], r6\n{setup}\nlddw r2, func(cb)\nmov r3, r10\n\
             add r3, -8\nmov r4, 1\ncall {helper}\nlsh r0, 32\nrsh r0, 32\nldxdw r1, [r10-8]\nlsh r1, 32\nor r0, r1\n\
             exit\ncb:\nmov r1, 1\nstxdw [r4+0], r1\nstxdw [r2+0], r1\nmov r0, 0\nexit"
        );
        // for_each passes ctx in r4, bpf_loop in r2: the callback stores through both (the
        // other is the index or the key copy, harmless).
        let text = if helper == 181 {
            text.replace("stxdw [r4+0], r1\n", "")
        } else {
            text.replace("stxdw [r2+0], r1\n", "")
        };
        let spec = bpfx::MapSpec::new("a", bpfx::MapKind::Array, 4, 8, 4);
        let obj = bpfx::Vm::new()
            .object(
                vec![bpfx::ProgramDef::new("p", "test", common::code(&text))],
                vec![spec],
            )
            .unwrap();
        for mode in [Mode::Checked, Mode::Strict] {
            for (engine, opts) in engines() {
                let v = obj
                    .program("p")
                    .unwrap()
                    .verify(mode)
                    .unwrap_or_else(|e| panic!("{helper} {mode:?}: {e}"));
                let mut prog = prepare(v, opts);
                let r0 = prog.run(&mut []).unwrap();
                assert_eq!(r0 as u32, (-22i32) as u32, "{helper} {mode:?} {engine}");
                assert_eq!(r0 >> 32, 0, "{helper} {mode:?} {engine}: the callback ran");
            }
        }
    }
}

/// Number of CPUs of the per-CPU `for_each_map_elem` tests.
const CPUS: u32 = 4;

/// Value of key `k` on CPU `cpu` in the per-CPU maps of `objects/for_each.c`.
fn percpu_value(k: u64, cpu: u32) -> u64 {
    k * 100 + u64::from(cpu)
}

/// A per-CPU map's host value (every CPU's `u64`, libbpf's layout): `f(cpu)` for each CPU.
fn all_cpus(f: impl Fn(u32) -> u64) -> Vec<u8> {
    (0..CPUS).flat_map(|c| f(c).to_le_bytes()).collect()
}

/// Runs program `name` of `objects/for_each.o`, opened by a `Vm` of [`CPUS`] CPUs whose
/// program runs on CPU `cpu`, on every engine in `mode`, after `map` is filled with
/// [`percpu_value`] under `keys` (little-endian, `key_size` bytes); gives each run's `int`
/// result and the object.
fn percpu_runs(
    name: &str,
    mode: Mode,
    cpu: u32,
    inp: &[u8],
    (map, keys, key_size): (&str, &[u64], usize),
) -> Vec<(String, u32, Object)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects"));
    let mut out = Vec::new();
    for (engine, opts) in engines() {
        let obj = bpfx::Vm::new()
            .cpus(CPUS)
            .cpu_id(move || cpu)
            .open(dir.join("for_each.o"))
            .unwrap();
        let v = obj
            .program(name)
            .unwrap()
            .input_size(8)
            .verify(mode)
            .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
        let m = obj.map(map).unwrap();
        for &k in keys {
            let value = all_cpus(|c| percpu_value(k, c));
            m.update(&k.to_le_bytes()[..key_size], &value, UpdateFlag::Any)
                .unwrap();
        }
        let mut prog = prepare(v, opts);
        let r0 = prog
            .run(&mut inp.to_vec())
            .unwrap_or_else(|e| panic!("{name} {mode:?} {engine}: {e}"));
        out.push((engine.to_string(), r0 as u32, obj));
    }
    out
}

/// `for_each_map_elem` over a per-CPU array: the callback sees, and bumps, the value of the
/// CPU the program runs on (the kernel's rule); the other CPUs' values stay as they were.
#[test]
fn for_each_over_a_percpu_array_sees_the_current_cpus_values() {
    let keys: Vec<u64> = (0..8).collect();
    for mode in [Mode::Checked, Mode::Strict] {
        for cpu in [0, 2, 3] {
            for stop_at in [99u32, 5] {
                let last = u64::from(stop_at.min(7));
                let visited = 0..=last;
                let sum: u64 = visited.clone().map(|k| percpu_value(k, cpu)).sum();
                let key_sum: u64 = visited.sum();
                let want = sum * 1000 + key_sum * 10 + last + 1;
                let runs = percpu_runs(
                    "sum_percpu_array",
                    mode,
                    cpu,
                    &walk_input(100, stop_at),
                    ("cpu_values", &keys, 4),
                );
                for (engine, r0, obj) in runs {
                    let at = format!("{mode:?} {engine} cpu {cpu} stop at {stop_at}");
                    assert_eq!(r0, want as u32, "{at}");
                    let got = obj.map("cpu_values").unwrap();
                    let got = got.lookup(&3u32.to_le_bytes()).unwrap().unwrap();
                    let bumped = all_cpus(|c| percpu_value(3, c) + if c == cpu { 100 } else { 0 });
                    assert_eq!(got, bumped, "{at}");
                }
            }
        }
    }
}

/// `for_each_map_elem` over a per-CPU hash and an LRU per-CPU hash: every key present once,
/// with the current CPU's value, bumped on that CPU only.
#[test]
fn for_each_over_percpu_hashes_sees_the_current_cpus_values() {
    let keys = [1u64, 3, 7, 1000, 42];
    for (name, map) in [
        ("sum_percpu_hash", "cpu_table"),
        ("sum_lru_percpu_hash", "lru_cpu_table"),
    ] {
        for mode in [Mode::Checked, Mode::Strict] {
            for cpu in [1, 3] {
                let sum: u64 = keys.iter().map(|&k| percpu_value(k, cpu)).sum();
                let key_sum: u64 = keys.iter().sum();
                let want = sum * 1000 + key_sum * 10 + keys.len() as u64;
                let runs = percpu_runs(name, mode, cpu, &walk_input(5, 0), (map, &keys, 8));
                for (engine, r0, obj) in runs {
                    let at = format!("{name} {mode:?} {engine} cpu {cpu}");
                    assert_eq!(r0, want as u32, "{at}");
                    let m = obj.map(map).unwrap();
                    let got = m.lookup(&3u64.to_le_bytes()).unwrap().unwrap();
                    let bumped = all_cpus(|c| percpu_value(3, c) + if c == cpu { 5 } else { 0 });
                    assert_eq!(got, bumped, "{at}");
                    assert_eq!(m.len(), keys.len(), "{at}");
                }
                // An empty map: no call.
                for (engine, r0, _) in
                    percpu_runs(name, mode, cpu, &walk_input(5, 0), (map, &[], 8))
                {
                    assert_eq!(r0, 0, "{name} {mode:?} {engine}");
                }
            }
        }
    }
}

/// The kernel's verifier refuses `for_each_map_elem` on the map types it does not iterate, in
/// both modes: an LPM trie, naming the map and its type; a map of maps, which no helper but
/// `map_lookup_elem` takes (the kernel's map/helper compatibility rule, checked first).
#[test]
fn for_each_over_a_map_the_kernel_does_not_iterate_is_rejected() {
    let obj = object("for_each.o");
    for (name, want) in [
        (
            "walk_trie",
            "map `prefixes` (BPF_MAP_TYPE_LPM_TRIE) cannot be iterated",
        ),
        (
            "walk_outer",
            "argument r1 of helper for_each_map_elem must be a map handle other than a map of maps",
        ),
    ] {
        for mode in [Mode::Checked, Mode::Strict] {
            let e = obj
                .program(name)
                .unwrap()
                .input_size(8)
                .verify(mode)
                .expect_err("rejected");
            let s = e.to_string();
            assert!(
                s.contains("call 164") && s.contains(want),
                "{name} {mode:?}: {s}"
            );
        }
    }
}

/// The same refusal for every other map type a program can name, from bytecode: each is
/// declared, then iterated.
#[test]
fn for_each_refuses_every_type_the_kernel_does_not_iterate() {
    use bpfx::{MapKind, MapSpec};
    let text = "lddw r1, map_idx(0)\nlddw r2, func(cb)\nmov r3, 0\nmov r4, 0\ncall 164\nexit\n\
                cb:\nmov r0, 0\nexit";
    let no_prealloc = |s: MapSpec| MapSpec { flags: 1, ..s };
    for spec in [
        MapSpec::new("q", MapKind::Queue, 0, 8, 4),
        MapSpec::new("s", MapKind::Stack, 0, 8, 4),
        MapSpec::new("b", MapKind::BloomFilter, 0, 8, 4),
        no_prealloc(MapSpec::new("t", MapKind::LpmTrie, 8, 8, 4)),
        MapSpec::new("r", MapKind::RingBuf, 0, 0, 4096),
        MapSpec::new("p", MapKind::ProgArray, 4, 4, 4),
        MapSpec::new("e", MapKind::PerfEventArray, 4, 4, 4),
        MapSpec::new("d", MapKind::DevMap, 4, 4, 4),
        MapSpec::new("c", MapKind::CpuMap, 4, 4, 4),
    ] {
        let (map, kind) = (spec.name.clone(), spec.kind);
        let obj = bpfx::Vm::new()
            .object(
                vec![bpfx::ProgramDef::new("p", "test", common::code(text))],
                vec![spec],
            )
            .unwrap();
        for mode in [Mode::Checked, Mode::Strict] {
            let e = obj
                .program("p")
                .unwrap()
                .verify(mode)
                .expect_err("rejected");
            let want = format!(
                "map `{map}` ({}) cannot be iterated",
                bpfx::verifier::map_type_name(kind.kernel_type()).unwrap()
            );
            assert!(e.to_string().contains(&want), "{kind} {mode:?}: {e}");
        }
    }
}
