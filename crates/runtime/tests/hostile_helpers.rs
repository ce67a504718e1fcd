//! Hostile helper arguments: a pointer and size the verifier could not prove (Checked mode)
//! never reach a helper, Rust or standard. The checked dispatch both engines call helpers
//! through checks every sized memory argument against the run's regions first, and traps
//! with `OutOfBounds` at the `call`; the helper never runs and memory is left untouched.
//!
//! The audit's reproducers were `{mem:r2, scalar}` helpers called with `0x414141414000` and
//! size 8, and with the 16-byte input and size 4096 (the C side is `tests/c/hostile.c` in
//! bpfx-capi).

mod common;

use bpfx::{
    ArgKind, Error, HelperSig, MapKind, MapSpec, Mode, Object, ProgramDef, RetKind, TrapKind, Vm,
};
use common::{code, engines, prepare};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// `{mem:r2, scalar}`: fills its range with 0x41 and returns the size.
const FILL: u32 = 0x1000;
/// `{map, key}`: returns the key's first byte.
const KEY: u32 = 0x1001;

/// A VM whose embedder helpers count their calls in `calls`.
fn vm(calls: &Arc<AtomicU32>) -> Vm {
    let (c1, c2) = (calls.clone(), calls.clone());
    Vm::new()
        .register_helper(
            FILL,
            HelperSig::new(
                "fill",
                vec![ArgKind::PtrToMem { size_arg: Some(1) }, ArgKind::Scalar],
                RetKind::Scalar,
            ),
            move |mem, a| {
                c1.fetch_add(1, Ordering::Relaxed);
                let len = usize::try_from(a[1]).unwrap_or(usize::MAX);
                if len == 0 {
                    return Ok(0);
                }
                mem.write(a[0], &vec![0x41; len])
                    .ok_or_else(|| bpfx::HelperError("fill: not guest memory".into()))?;
                Ok(a[1])
            },
        )
        .register_helper(
            KEY,
            HelperSig::new(
                "key",
                vec![ArgKind::MapHandle, ArgKind::MapKey],
                RetKind::Scalar,
            ),
            move |mem, a| {
                c2.fetch_add(1, Ordering::Relaxed);
                mem.load(a[1], 1)
                    .ok_or_else(|| bpfx::HelperError("key: not guest memory".into()))
            },
        )
}

fn maps() -> Vec<MapSpec> {
    let mut ro = MapSpec::new("ro", MapKind::Array, 4, 8, 1);
    ro.read_only = true;
    vec![
        MapSpec::new("h", MapKind::Hash, 4, 8, 4),
        ro,
        MapSpec::new("ring", MapKind::RingBuf, 0, 0, 4096),
    ]
}

fn object(vm: &Vm, text: &str) -> Object {
    vm.object(vec![ProgramDef::new("p", "", code(text))], maps())
        .unwrap()
}

/// Each reproducer, with the pc of its `call` and the argument register the trap names.
const HOSTILE: &[(&str, &str, u32, u32)] = &[
    (
        "wild pointer",
        "lddw r1, 0x414141414000\nmov r2, 8\ncall 4096\nexit",
        3,
        1,
    ),
    (
        "wild pointer through callx",
        "mov r6, 4096\nlddw r1, 0x414141414000\nmov r2, 8\ncall r6\nexit",
        4,
        1,
    ),
    (
        "input with a size past its end",
        "mov r2, 4096\ncall 4096\nexit",
        1,
        1,
    ),
    (
        "one byte before the input",
        "add r1, -1\nmov r2, 4\ncall 4096\nexit",
        2,
        1,
    ),
    (
        "pointer + size wraps the address space",
        "add r1, 8\nlddw r2, 0xfffffffffffffffc\ncall 4096\nexit",
        3,
        1,
    ),
    (
        "size above the address space",
        "lddw r2, 0x8000000000000000\ncall 4096\nexit",
        2,
        1,
    ),
    (
        "stack range past the frame top",
        "mov r1, r10\nadd r1, -8\nmov r2, 16\ncall 4096\nexit",
        3,
        1,
    ),
    (
        "stack range below the active frame",
        "mov r1, r10\nadd r1, -520\nmov r2, 8\ncall 4096\nexit",
        3,
        1,
    ),
    (
        "read-only map value for a written argument",
        "lddw r1, map_idx_value(1, 0)\nmov r2, 4\ncall 4096\nexit",
        3,
        1,
    ),
    (
        "map key pointer of an embedder helper",
        "lddw r1, map_idx(0)\nlddw r2, 0x414141414000\ncall 4097\nexit",
        4,
        2,
    ),
    (
        "map key pointer of map_lookup_elem",
        "lddw r1, map_idx(0)\nlddw r2, 0x414141414000\ncall 1\nexit",
        4,
        2,
    ),
    (
        "map key pointer of map_delete_elem",
        "lddw r1, map_idx(0)\nlddw r2, 0x414141414000\ncall 3\nexit",
        4,
        2,
    ),
    (
        "map key pointer of map_update_elem",
        "stw [r10-4], 0\nlddw r1, map_idx(0)\nlddw r2, 0x414141414000\nmov r3, r10\nadd r3, -4\nmov r4, 0\ncall 2\nexit",
        8,
        2,
    ),
    (
        "map value pointer of map_update_elem",
        "stw [r10-4], 0\nlddw r1, map_idx(0)\nmov r2, r10\nadd r2, -4\nmov r3, r2\nmov r4, 0\ncall 2\nexit",
        7,
        3,
    ),
    (
        "record of ringbuf_output",
        "lddw r1, map_idx(2)\nlddw r2, 0x414141414000\nmov r3, 8\nmov r4, 0\ncall 130\nexit",
        6,
        2,
    ),
];

#[test]
fn unproven_memory_arguments_trap_at_the_call_on_every_engine() {
    for &(what, text, pc, reg) in HOSTILE {
        let calls = Arc::new(AtomicU32::new(0));
        let obj = object(&vm(&calls), text);
        for (name, opts) in engines() {
            let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
            let mut p = prepare(v, opts);
            let mut input = [7u8; 16];
            let e = p.run(&mut input).unwrap_err();
            let bpfx::RunError::Trap { trap, reason, .. } = &e else {
                panic!("{what} on {name}: {e}");
            };
            assert_eq!(
                (trap.kind, trap.pc.0),
                (TrapKind::OutOfBounds, pc),
                "{what} on {name}: {e}"
            );
            let why = reason.as_deref().unwrap_or_default();
            assert!(why.contains(&format!("argument r{reg} ")), "{what}: {why}");
            assert_eq!(calls.load(Ordering::Relaxed), 0, "{what} on {name}");
            assert_eq!(input, [7; 16], "{what} on {name}: memory untouched");
        }
    }
}

#[test]
fn strict_mode_rejects_what_it_cannot_prove() {
    let calls = Arc::new(AtomicU32::new(0));
    for &(what, text, ..) in &HOSTILE[..3] {
        let obj = object(&vm(&calls), text);
        let r = obj
            .program("p")
            .unwrap()
            .input_size(16)
            .verify(Mode::Strict);
        assert!(matches!(r, Err(Error::Verify { .. })), "{what}");
    }
}

/// Ranges inside the run's memory, and empty ranges anywhere, still reach the helper.
#[test]
fn arguments_inside_the_regions_reach_the_helper_on_every_engine() {
    let cases: &[(&str, u64, [u8; 16])] = &[
        ("mov r2, 16\ncall 4096\nexit", 16, [0x41; 16]),
        ("add r1, 12\nmov r2, 4\ncall 4096\nexit", 4, {
            let mut m = [7; 16];
            m[12..].fill(0x41);
            m
        }),
        // The whole outermost frame.
        (
            "mov r1, r10\nadd r1, -512\nmov r2, 512\ncall 4096\nexit",
            512,
            [7; 16],
        ),
        (
            "lddw r1, 0x414141414000\nmov r2, 0\ncall 4096\nexit",
            0,
            [7; 16],
        ),
    ];
    for &(text, r0, want) in cases {
        let calls = Arc::new(AtomicU32::new(0));
        let obj = object(&vm(&calls), text);
        for (name, opts) in engines() {
            let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
            let mut p = prepare(v, opts);
            let mut input = [7u8; 16];
            assert_eq!(p.run(&mut input).unwrap(), r0, "{text} on {name}");
            assert_eq!(input, want, "{text} on {name}");
        }
        assert_eq!(calls.load(Ordering::Relaxed), engines().len() as u32);
    }
}
