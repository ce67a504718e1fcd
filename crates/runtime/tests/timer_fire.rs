//! Timers fire ([`bpfx::Object::run_timers`]): `objects/xdp_ct_expire.c`, a conntrack table
//! whose LRU hash entries each carry the `struct bpf_timer` that expires them, cleaned up as a
//! host firewall cleans its connection table (an idle entry is deleted by its timer's
//! callback, an active one re-armed for the rest of its idle time), on the interpreter and the
//! JIT under every option set, in both verifier modes, the clock driven by the test. Then the
//! rules one by one, on assembler programs: a cancelled timer, or one whose element was
//! deleted, replaced (its own bytes written back) or updated (arrays) never fires; a callback
//! may re-arm its timer (once per call) or delete its element; cancelling its own timer is
//! `-EDEADLK`; a trap in a callback is reported at the callback's pc; the budget bounds each
//! callback run; and the verifier checks the callback as a function of its own.

#[allow(dead_code)]
mod common;

use bpfx::{
    Budget, MapKind, MapSpec, Mode, Object, ProgramDef, RunError, TimersRun, TrapKind, UpdateFlag,
    Vm,
};
use common::{code, engines, prepare, run_object_everywhere};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const S: u64 = 1_000_000_000;

fn objects() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/objects")
}

/// An Ethernet + IPv4 frame from 10.0.0.`saddr` to 10.0.0.2 with `tos`.
fn frame(saddr: u8, tos: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[0x45, tos, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, saddr, 10, 0, 0, 2]);
    f
}

/// The conntrack key of a frame from 10.0.0.`saddr`.
fn key(saddr: u8) -> Vec<u8> {
    vec![10, 0, 0, saddr, 10, 0, 0, 2]
}

/// What the test sees after each step: the timers run, the flows present, the stats.
#[derive(Debug, PartialEq)]
struct Seen {
    run: TimersRun,
    flows: Vec<u8>,
    stats: [u64; 3],
}

#[test]
fn conntrack_entries_expire_by_their_timers_on_every_engine() {
    let clock = Arc::new(AtomicU64::new(0));
    let c = clock.clone();
    let open = move || {
        let c = c.clone();
        Vm::new()
            .clock(move || c.load(Ordering::Relaxed))
            .open(objects().join("xdp_ct_expire.o"))
            .unwrap()
    };
    let seen = run_object_everywhere(open, "xdp_ct_expire", |prog, obj| {
        let set = |t: u64| clock.store(t, Ordering::Relaxed);
        let mut packet = |saddr: u8, tos: u8| {
            let mut f = frame(saddr, tos);
            prog.run_xdp(&mut f).unwrap()
        };
        let look = |run: TimersRun| {
            let flows = obj.map("ct_flows").unwrap();
            let stats = obj.map("ct_stats").unwrap();
            Seen {
                run,
                flows: (1..=4)
                    .filter(|&s| flows.lookup(&key(s)).unwrap().is_some())
                    .collect(),
                stats: std::array::from_fn(|i| {
                    let v = stats.lookup(&(i as u32).to_le_bytes()).unwrap().unwrap();
                    u64::from_le_bytes(v.try_into().unwrap())
                }),
            }
        };
        let fire = |t: u64| {
            set(t);
            look(obj.run_timers(t).unwrap())
        };
        let mut out = Vec::new();
        set(0);
        packet(1, 0);
        packet(2, 0);
        set(5 * S);
        packet(1, 0);
        // Nothing is due before 10 s.
        out.push(fire(9 * S));
        // Both fire: flow 2, idle for 10 s, goes; flow 1, seen at 5 s, waits 5 s more.
        out.push(fire(10 * S));
        set(12 * S);
        packet(3, 0);
        // A new flow whose timer the packet cancels (TOS 1).
        packet(4, 1);
        // Flow 1, idle since 5 s, goes now.
        out.push(fire(15 * S));
        // The host writes flow 3's entry back with its own bytes: the kernel frees the
        // replaced element's timer, so it never fires; nor does flow 4's cancelled one.
        let flows = obj.map("ct_flows").unwrap();
        let bytes = flows.lookup(&key(3)).unwrap().unwrap();
        flows.update(&key(3), &bytes, UpdateFlag::Exist).unwrap();
        out.push(fire(60 * S));
        out
    });
    let run = |fired, pending, next| TimersRun {
        fired,
        pending,
        next,
    };
    assert_eq!(
        seen,
        [
            Seen {
                run: run(0, 2, Some(10 * S)),
                flows: vec![1, 2],
                stats: [0, 0, 0],
            },
            Seen {
                run: run(2, 1, Some(15 * S)),
                flows: vec![1],
                stats: [1, 1, 2],
            },
            Seen {
                run: run(1, 1, Some(22 * S)),
                flows: vec![3, 4],
                stats: [2, 1, 3],
            },
            Seen {
                run: run(0, 0, None),
                flows: vec![3, 4],
                stats: [2, 1, 3],
            },
        ]
    );
}

/// An object of assembler `text` whose map 0 (`ct`) is a `kind` map of 4-byte keys and
/// 24-byte values with a timer at 8, made by `vm`.
fn object(vm: &Vm, text: &str, kind: MapKind) -> Object {
    let spec = MapSpec {
        timer_off: Some(8),
        ..MapSpec::new("ct", kind, 4, 24, 4)
    };
    vm.object(vec![ProgramDef::new("p", "test", code(text))], vec![spec])
        .unwrap()
}

/// Puts key 0 into map 0, looks it up into r6, then runs `body`, then the callback `cb`.
fn with_value(body: &str, cb: &str) -> String {
    format!(
        "stw [r10-4], 0\nstdw [r10-32], 0\nstdw [r10-24], 0\nstdw [r10-16], 0\n\
         lddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\nmov r3, r10\nadd r3, -32\nmov r4, 0\n\
         call 2\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\ncall 1\n\
         jne r0, 0, +2\nmov r0, 99\nexit\nmov r6, r0\n{body}\nmov r0, 0\nexit\ncb:\n{cb}\nexit"
    )
}

/// Initialises the timer, sets the callback and arms it for 1000 ns.
const ARM: &str = "mov r1, r6\nadd r1, 8\nlddw r2, map_idx(0)\nmov r3, 1\ncall 169\n\
                   mov r1, r6\nadd r1, 8\nlddw r2, func(cb)\ncall 170\n\
                   mov r1, r6\nadd r1, 8\nmov r2, 1000\nmov r3, 0\ncall 171\n";

/// The first 8 bytes of the value of key 0.
fn word(obj: &Object) -> Option<u64> {
    let v = obj.map("ct").unwrap().lookup(&[0; 4]).unwrap()?;
    Some(u64::from_le_bytes(v[..8].try_into().unwrap()))
}

/// Runs the arming program `text` once on every engine in `modes` (a fresh `kind` object of
/// `vm` each time), then `host` on the object, then `run_timers(t)` `times` times: each
/// call's outcome (an error as its program, pc and trap) with the value's first word after
/// it, the same everywhere.
#[allow(clippy::type_complexity)]
fn fire_everywhere(
    vm: &Vm,
    text: &str,
    kind: MapKind,
    modes: &[Mode],
    host: impl Fn(&Object),
    t: u64,
    times: usize,
) -> Vec<(Result<usize, (String, u32, TrapKind)>, Option<u64>)> {
    let mut seen = None;
    for &mode in modes {
        for (name, opts) in engines() {
            let obj = object(vm, text, kind);
            let v = obj
                .program("p")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let mut p = prepare(v, opts);
            assert_eq!(p.run(&mut []).unwrap(), 0, "{mode:?} {name}");
            host(&obj);
            let got: Vec<_> = (0..times)
                .map(|_| {
                    let r = obj.run_timers(t).map(|r| r.fired).map_err(|e| match e {
                        RunError::Trap { program, trap, .. } => (program, trap.pc.0, trap.kind),
                        e => panic!("{e}"),
                    });
                    (r, word(&obj))
                })
                .collect();
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(s, &got, "{mode:?} {name}"),
            }
        }
    }
    seen.unwrap()
}

const BOTH: [Mode; 2] = [Mode::Checked, Mode::Strict];

/// A callback adding 1 to the value's first word.
const COUNT: &str = "ldxdw r1, [r3+0]\nadd r1, 1\nstxdw [r3+0], r1\nmov r0, 0";

#[test]
fn a_due_timer_fires_once_and_a_cancelled_one_never() {
    let vm = Vm::new();
    let text = with_value(ARM, COUNT);
    // Not due at 0 (armed on the Vm's clock, the host's monotonic time); due later, once.
    let due = fire_everywhere(&vm, &text, MapKind::Hash, &BOTH, |_| {}, 0, 1);
    assert_eq!(due, [(Ok(0), Some(0))]);
    let due = fire_everywhere(&vm, &text, MapKind::Hash, &BOTH, |_| {}, u64::MAX, 2);
    assert_eq!(due, [(Ok(1), Some(1)), (Ok(0), Some(1))]);
    // Cancelled before it fires.
    let cancel = format!("{ARM}mov r1, r6\nadd r1, 8\ncall 172\n");
    let text = with_value(&cancel, COUNT);
    let r = fire_everywhere(&vm, &text, MapKind::Hash, &BOTH, |_| {}, u64::MAX, 1);
    assert_eq!(r, [(Ok(0), Some(0))]);
}

#[test]
fn a_freed_elements_timer_never_fires() {
    let vm = Vm::new();
    let text = with_value(ARM, COUNT);
    // Deleted by the host.
    let delete = |obj: &Object| obj.map("ct").unwrap().delete(&[0; 4]).unwrap();
    let r = fire_everywhere(&vm, &text, MapKind::Hash, &BOTH, delete, u64::MAX, 1);
    assert_eq!(r, [(Ok(0), None)]);
    // Replaced with its own bytes (timer word included): freed all the same.
    let own = |obj: &Object| {
        let m = obj.map("ct").unwrap();
        let v = m.lookup(&[0; 4]).unwrap().unwrap();
        m.update(&[0; 4], &v, UpdateFlag::Any).unwrap();
    };
    let r = fire_everywhere(&vm, &text, MapKind::Hash, &BOTH, own, u64::MAX, 1);
    assert_eq!(r, [(Ok(0), Some(0))]);
    let r = fire_everywhere(&vm, &text, MapKind::LruHash, &BOTH, own, u64::MAX, 1);
    assert_eq!(r, [(Ok(0), Some(0))]);
    // An array element stays, but the kernel's update frees its timer too.
    let r = fire_everywhere(&vm, &text, MapKind::Array, &BOTH, own, u64::MAX, 1);
    assert_eq!(r, [(Ok(0), Some(0))]);
    // Untouched, the array's timer fires.
    let r = fire_everywhere(&vm, &text, MapKind::Array, &BOTH, |_| {}, u64::MAX, 1);
    assert_eq!(r, [(Ok(1), Some(1))]);
}

#[test]
fn a_callback_may_rearm_its_timer_or_delete_its_element() {
    let vm = Vm::new();
    // Counts, then arms its own timer again: it fires once per call, not again in the same.
    let rearm = format!(
        "mov r6, r3\n{}\nmov r1, r6\nadd r1, 8\nmov r2, 1000\nmov r3, 0\ncall 171\nmov r0, 0",
        COUNT.replace("r3", "r6")
    );
    let text = with_value(ARM, &rearm);
    let r = fire_everywhere(&vm, &text, MapKind::Hash, &BOTH, |_| {}, u64::MAX, 3);
    assert_eq!(r, [(Ok(1), Some(1)), (Ok(1), Some(2)), (Ok(1), Some(3))]);
    // Deletes its element through the map and key it is given.
    let text = with_value(ARM, "call 3\nmov r0, 0");
    let r = fire_everywhere(&vm, &text, MapKind::LruHash, &BOTH, |_| {}, u64::MAX, 2);
    assert_eq!(r, [(Ok(1), None), (Ok(0), None)]);
    // Cancelling its own timer from its callback: -EDEADLK (the result kept in the value).
    let text = with_value(
        ARM,
        "mov r6, r3\nmov r1, r3\nadd r1, 8\ncall 172\nstxdw [r6+0], r0\nmov r0, 0",
    );
    let r = fire_everywhere(&vm, &text, MapKind::Hash, &BOTH, |_| {}, u64::MAX, 1);
    assert_eq!(r, [(Ok(1), Some(-35i64 as u64))]);
}

#[test]
fn a_trap_in_a_callback_is_reported_at_its_pc_and_the_budget_bounds_it() {
    // Checked mode: a load through a forged pointer is guarded, and traps in the callback.
    let text = with_value(ARM, "lddw r1, 0x1000\nldxdw r0, [r1+0]\nmov r0, 0");
    // The load is the callback's second instruction, three slots before the end.
    let load = code(&text).len() as u32 - 3;
    let r = fire_everywhere(
        &Vm::new(),
        &text,
        MapKind::Hash,
        &[Mode::Checked],
        |_| {},
        u64::MAX,
        2,
    );
    assert_eq!(
        r,
        [
            (
                Err(("p (timer callback)".into(), load, TrapKind::OutOfBounds)),
                Some(0)
            ),
            // It fired: not again.
            (Ok(0), Some(0)),
        ]
    );
    // A callback that never ends, under the Vm's budget.
    let vm = Vm::new().budget(Budget::Limit(10_000)).unwrap();
    let text = with_value(ARM, "mov r0, 0\njeq r0, 1, +1\nja -2\nmov r0, 0");
    let r = fire_everywhere(
        &vm,
        &text,
        MapKind::Hash,
        &[Mode::Checked],
        |_| {},
        u64::MAX,
        1,
    );
    let Err((program, _, kind)) = &r[0].0 else {
        panic!("{r:?}")
    };
    assert_eq!(
        (program.as_str(), *kind),
        ("p (timer callback)", TrapKind::BudgetExhausted)
    );
}

/// Verifies `text` (timer at 8) in `mode`: the error, if any.
fn verify(text: &str, mode: Mode) -> Result<(), String> {
    object(&Vm::new(), text, MapKind::Hash)
        .program("p")
        .unwrap()
        .verify(mode)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn the_verifier_checks_a_timer_callback_as_a_function_of_its_own() {
    for mode in BOTH {
        // Its arguments: the map, the key (4 bytes), the value (24 bytes).
        verify(
            &with_value(ARM, "ldxw r1, [r2+0]\nldxdw r1, [r3+16]\nmov r0, 0"),
            mode,
        )
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        // Past the value: refused in Strict mode; Checked mode, which refuses structural
        // faults only, keeps the access's run-time guard.
        let past = verify(&with_value(ARM, "ldxdw r0, [r3+24]\nmov r0, 0"), mode);
        match mode {
            Mode::Strict => {
                let e = past.unwrap_err();
                assert!(e.contains("outside the map value of 24 bytes"), "{e}");
            }
            _ => past.unwrap(),
        }
        // Returning 1.
        let e = verify(&with_value(ARM, "mov r0, 1"), mode).unwrap_err();
        assert!(
            e.contains("a timer callback must return 0"),
            "{mode:?}: {e}"
        );
    }
    // The key is read-only (Strict mode; Checked mode lets the callback write its copy).
    let writes_key = with_value(ARM, "stw [r2+0], 1\nmov r0, 0");
    let e = verify(&writes_key, Mode::Strict).unwrap_err();
    assert!(e.contains("writes the key it is given"), "{e}");
    verify(&writes_key, Mode::Checked).unwrap();
    // Nothing of the arming program's frames: the callback's frame is frame 0 of its own,
    // whose bytes above the key are uninitialised (Strict mode refuses the read).
    let e = verify(
        &with_value(ARM, "ldxdw r0, [r10-8]\nmov r0, 0"),
        Mode::Strict,
    )
    .unwrap_err();
    assert!(e.contains("insn #"), "{e}");
}

#[test]
fn an_objects_timers_go_with_it() {
    // An armed timer holds the program of its callback, whose JIT code holds the hash map
    // (its direct lookups): dropping the object and the program frees all of it, the memory
    // limit's charges included.
    for (name, opts) in engines() {
        let vm = Vm::new();
        {
            let obj = object(&vm, &with_value(ARM, COUNT), MapKind::Hash);
            let v = obj.program("p").unwrap().verify(Mode::Strict).unwrap();
            let mut p = prepare(v, opts);
            assert_eq!(p.run(&mut []).unwrap(), 0);
            assert!(vm.mem_used() > 0, "{name}");
        }
        assert_eq!(vm.mem_used(), 0, "{name}");
    }
}

#[test]
fn a_callback_set_through_a_pointer_into_another_maps_value_is_checked_against_neither() {
    // Checked mode: map 0's values are 4096 bytes, map 1's 16, each with a timer at 0. The
    // program initialises map 1's timer, then sets the callback through `r6 + (r7 - r6)`: a
    // pointer the verifier types as map 0's value at an unknown offset, but which holds map
    // 1's value, whose timer the helper finds by its address. The callback reads its value
    // 4000 bytes in: checked against map 0's value it would be proven (and unguarded in the
    // JIT, 4000 bytes past map 1's 16-byte block); it must stay guarded, and every engine
    // must do as the interpreter.
    let text = "stw [r10-4], 0
                lddw r1, map_idx(0)
                mov r2, r10
                add r2, -4
                call 1
                jne r0, 0, +2
                mov r0, 1
                exit
                mov r6, r0
                lddw r1, map_idx(1)
                mov r2, r10
                add r2, -4
                call 1
                jne r0, 0, +2
                mov r0, 2
                exit
                mov r7, r0
                mov r1, r7
                lddw r2, map_idx(1)
                mov r3, 1
                call 169
                mov r9, r7
                sub r9, r6
                mov r1, r6
                add r1, r9
                lddw r2, func(cb)
                call 170
                mov r1, r7
                mov r2, 0
                mov r3, 0
                call 171
                mov r0, 0
                exit
                cb:
                ldxdw r1, [r3+4000]
                stxdw [r3+8], r1
                mov r0, 0
                exit";
    // The load is the callback's first instruction, four slots before the end.
    let load = code(text).len() as u32 - 4;
    let mut seen = None;
    for (name, opts) in engines() {
        let timer = |name: &str, value_size| MapSpec {
            timer_off: Some(0),
            ..MapSpec::new(name, MapKind::Array, 4, value_size, 1)
        };
        let obj = Vm::new()
            .object(
                vec![ProgramDef::new("p", "test", code(text))],
                vec![timer("big", 4096), timer("small", 16)],
            )
            .unwrap();
        let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
        let fact = v.program().access(bpfx::bytecode::Pc(load)).unwrap();
        assert!(!fact.proven, "{name}: the callback's load is guarded");
        let mut p = prepare(v, opts);
        assert_eq!(p.run(&mut []).unwrap(), 0, "{name}");
        // The interpreter (first) checks every access; every engine must do as it does
        // (a trap, unless the address happens to lie in some other block of the run).
        let got = obj
            .run_timers(u64::MAX)
            .map(|r| r.fired)
            .map_err(|e| match e {
                RunError::Trap { program, trap, .. } => (program, trap.pc.0, trap.kind),
                e => panic!("{name}: {e}"),
            });
        match &seen {
            None => seen = Some(got),
            Some(s) => assert_eq!(s, &got, "{name}"),
        }
    }
    if let Some(Err((program, pc, kind))) = seen {
        assert_eq!(
            (program.as_str(), pc, kind),
            ("p (timer callback)", load, TrapKind::OutOfBounds)
        );
    }
}
