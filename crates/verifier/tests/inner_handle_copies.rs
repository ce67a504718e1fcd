//! Copies of an inner map's handle (a map of maps' lookup result): a null check of one decides
//! every copy of the same lookup, in registers and spills, in every frame (the kernel decides
//! them all through the value's id), and no other handle.

mod common;

use bpfx_bytecode::Program;
use bpfx_verifier::{Config, MapDef, MapRef, Mode, verify};
use common::prog;

/// Map 0 is a map of maps (4-byte keys) whose inner template has 4-byte keys and 16-byte
/// values; helper 1 is `map_lookup_elem`.
fn config(mode: Mode) -> Config {
    let mut cfg = common::config(
        mode,
        &[MapDef::new(4, 4).with_inner(Some(MapRef::Inner(0)))],
    );
    cfg.maps.insert(MapRef::Inner(0), MapDef::new(4, 16));
    cfg
}

const MODES: [Mode; 2] = [Mode::Strict, Mode::Checked];

/// `r0 = lookup(outer, &0)` (the key at r10-4), then `body`, which must leave the handle to
/// use in r1; the inner lookup with key 0 follows, and its value is read when not null.
fn with_inner_lookup(body: &str) -> Program {
    prog(&format!(
        "stw [r10-4], 0
         lddw r1, map_idx(0)
         mov r2, r10
         add r2, -4
         call 1
         {body}
         mov r2, r10
         add r2, -4
         call 1
         jeq r0, 0, +2
         ldxdw r0, [r0+8]
         exit
         mov r0, 0
         exit"
    ))
}

/// The outer lookup again (into r0), keeping every other register and the stack.
const OUTER_AGAIN: &str = "lddw r1, map_idx(0)
         mov r2, r10
         add r2, -4
         call 1";

fn accepted(p: &Program, what: &str) {
    for mode in MODES {
        verify(p.clone(), &config(mode)).unwrap_or_else(|e| panic!("{mode:?} {what}: {e}"));
    }
}

fn refused(p: &Program, what: &str) {
    for mode in MODES {
        let e = verify(p.clone(), &config(mode))
            .map(|_| ())
            .expect_err(&format!("{mode:?} {what}: accepted"));
        assert!(
            e.to_string().contains("a map handle that may be null"),
            "{mode:?} {what}: {e}"
        );
    }
}

#[test]
fn a_spilled_copy_is_decided_by_the_check_of_its_register() {
    // The reproducer: spilled before the check, filled after it.
    accepted(
        &with_inner_lookup(
            "stxdw [r10-16], r0
             jne r0, 0, +2
             mov r0, 0
             exit
             ldxdw r1, [r10-16]",
        ),
        "spill, check, fill",
    );
    // Checked through the fill, the register used.
    accepted(
        &with_inner_lookup(
            "stxdw [r10-16], r0
             ldxdw r6, [r10-16]
             jeq r6, 0, +1
             ja +2
             mov r0, 0
             exit
             mov r1, r0",
        ),
        "spill, fill, check the fill, use the register",
    );
}

#[test]
fn a_register_copy_is_decided_by_the_check_of_the_original() {
    accepted(
        &with_inner_lookup(
            "mov r6, r0
             jne r0, 0, +2
             mov r0, 0
             exit
             mov r1, r6",
        ),
        "register copy",
    );
    // The null edge decides the copies too: there they are 0, a scalar, which the inner
    // lookup on that edge refuses as such.
    let p = with_inner_lookup(
        "mov r6, r0
         jne r0, 0, +4
         mov r1, r6
         mov r2, r10
         add r2, -4
         call 1
         mov r1, r6",
    );
    for mode in MODES {
        let e = verify(p.clone(), &config(mode)).unwrap_err().to_string();
        assert!(e.contains("but it is a scalar"), "{mode:?}: {e}");
    }
}

#[test]
fn a_check_in_a_function_decides_the_callers_spill() {
    // The caller spills the handle and passes it (r1) and a pointer to the spill (r2); the
    // function checks r1 and uses the spill it reads through r2.
    accepted(
        &prog(
            "stw [r10-4], 0
             lddw r1, map_idx(0)
             mov r2, r10
             add r2, -4
             call 1
             stxdw [r10-16], r0
             mov r1, r0
             mov r2, r10
             add r2, -16
             call local f
             exit
             f:
             jne r1, 0, +2
             mov r0, 0
             exit
             ldxdw r1, [r2+0]
             stw [r10-4], 0
             mov r2, r10
             add r2, -4
             call 1
             jeq r0, 0, +2
             ldxdw r0, [r0+8]
             exit
             mov r0, 0
             exit",
        ),
        "check in the function, spill in the caller",
    );
}

#[test]
fn the_check_of_one_lookup_does_not_decide_another() {
    // Two lookups: the second is checked, the first used.
    refused(
        &with_inner_lookup(&format!(
            "mov r6, r0
             {OUTER_AGAIN}
             jne r0, 0, +2
             mov r0, 0
             exit
             mov r1, r6"
        )),
        "two lookups",
    );
    // A copy spilled before a second lookup into the same register is the first lookup's.
    refused(
        &with_inner_lookup(&format!(
            "stxdw [r10-16], r0
             {OUTER_AGAIN}
             jne r0, 0, +2
             mov r0, 0
             exit
             ldxdw r1, [r10-16]"
        )),
        "a spill made before a second lookup into r0",
    );
    // The same with both checked: accepted (the control).
    accepted(
        &with_inner_lookup(&format!(
            "stxdw [r10-16], r0
             jne r0, 0, +2
             mov r0, 0
             exit
             {OUTER_AGAIN}
             jne r0, 0, +2
             mov r0, 0
             exit
             ldxdw r1, [r10-16]"
        )),
        "both lookups checked",
    );
}

#[test]
fn a_join_with_null_loses_the_relation() {
    // r6 is the handle on one path and 0 on the other: its check says nothing of r0, which
    // may be null on the path where r6 is 0.
    refused(
        &with_inner_lookup(
            "mov r6, 0
             ldxw r7, [r10-4]
             jeq r7, 0, +1
             mov r6, r0
             jne r6, 0, +2
             mov r0, 0
             exit
             mov r1, r0",
        ),
        "a copy joined with null",
    );
    // Copies of one lookup on both paths keep it.
    accepted(
        &with_inner_lookup(
            "mov r6, r0
             ldxw r7, [r10-4]
             jeq r7, 0, +1
             stxdw [r10-16], r0
             jne r6, 0, +2
             mov r0, 0
             exit
             mov r1, r0",
        ),
        "copies on both paths",
    );
}
