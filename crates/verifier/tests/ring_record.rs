//! `RetKind::MemOrNull`: a ring buffer record (`bpf_ringbuf_reserve`) is memory of the
//! reserved size, or null, as the kernel types it (`PTR_TO_MEM | MEM_RINGBUF`): Strict mode
//! proves accesses inside the reserved size, refuses those past it, a non-constant size and
//! an access before the null check; Checked mode keeps guards where it proves nothing.
//!
//! The record is also a reference (the kernel's `ref_obj_id`): Strict mode requires it be
//! submitted or discarded exactly once on every path before the program exits, refuses any
//! read of it (or of a copy: registers, spills) after that, and needs the record itself, at
//! offset 0, to release; Checked mode accepts all of these (a record a run keeps is discarded
//! when the run ends, one used after its release still lies inside the ring's block).

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_verifier::{
    ArgKind, Config, HelperSig, HelperTable, MapDef, MapRef, MapTable, Mode, RegionKind, RetKind,
    parse_helper, verify,
};

fn prog(text: &str) -> Program {
    Program::decode(assemble(text).expect("assembles")).expect("decodes")
}

fn config(mode: Mode) -> Config {
    let mut helpers = HelperTable::new();
    helpers.insert(
        131,
        HelperSig::new(
            "ringbuf_reserve",
            vec![ArgKind::MapHandle, ArgKind::Scalar, ArgKind::Scalar],
            RetKind::MemOrNull { size_arg: 1 },
        ),
    );
    helpers.insert(
        132,
        HelperSig::new(
            "ringbuf_submit",
            vec![ArgKind::ReleaseRecord, ArgKind::Scalar],
            RetKind::Void,
        ),
    );
    helpers.insert(
        133,
        HelperSig::new(
            "ringbuf_discard",
            vec![ArgKind::ReleaseRecord, ArgKind::Scalar],
            RetKind::Void,
        ),
    );
    let mut maps = MapTable::new();
    // A ring buffer: no key, no value.
    maps.insert(MapRef::Idx(0), MapDef::new(0, 0).with_max_entries(4096));
    Config {
        mode,
        mem_size: Some(8),
        helpers,
        maps,
        ..Config::default()
    }
}

/// Reserves `size` (an operand of `mov r2, ...`, after `setup`), then, unless `check` is
/// false, returns 0 when null; then `access` through r0 (pc 7 with the check, 6 without),
/// submits and returns 0.
fn reserve(setup: &str, size: &str, check: bool, access: &str) -> Program {
    let check = if check { "jeq r0, 0, +4\n" } else { "" };
    prog(&format!(
        "{setup}
         lddw r1, map_idx(0)
         mov r2, {size}
         mov r3, 0
         call 131
         {check}{access}
         mov r1, r0
         mov r2, 0
         call 132
         mov r0, 0
         exit"
    ))
}

/// The pc of the access in [`reserve`] with `ldxw r6, [r1+0]` as setup and the null check.
const ACCESS: Pc = Pc(7);

fn message(p: &Program, mode: Mode) -> String {
    verify(p.clone(), &config(mode))
        .expect_err("refused")
        .to_string()
}

#[test]
fn writes_inside_the_reserved_size_are_proven_in_strict_mode() {
    for (access, what) in [
        ("stdw [r0+8], 1", "the last 8 bytes"),
        ("stb [r0+0], 1", "the first byte"),
        ("ldxdw r4, [r0+0]", "a load"),
    ] {
        for mode in [Mode::Strict, Mode::Checked] {
            let p = reserve("ldxw r6, [r1+0]", "16", true, access);
            let v = verify(p.clone(), &config(mode)).unwrap_or_else(|e| panic!("{what}: {e}"));
            let f = v.access(ACCESS).expect("an access fact");
            assert_eq!(f.region, RegionKind::MapValue, "{what} {mode:?}");
            assert!(f.proven, "{what} {mode:?}");
        }
    }
}

#[test]
fn an_access_past_the_reserved_size_is_refused_in_strict_and_guarded_in_checked() {
    for access in ["stdw [r0+9], 1", "stw [r0+16], 1", "stb [r0-1], 1"] {
        let p = reserve("ldxw r6, [r1+0]", "16", true, access);
        let e = message(&p, Mode::Strict);
        assert!(e.contains("16 bytes"), "{access}: {e}");
        let v = verify(p.clone(), &config(Mode::Checked)).expect("Checked keeps the guard");
        assert!(!v.access(ACCESS).expect("a fact").proven, "{access}");
    }
}

#[test]
fn a_size_not_known_is_refused_in_strict_and_guarded_in_checked() {
    // The input's first word: bounded (masked) but not one constant.
    let p = reserve("ldxw r6, [r1+0]\nand r6, 15", "r6", true, "stb [r0+0], 1");
    let e = message(&p, Mode::Strict);
    assert!(
        e.contains("size argument r2 of helper ringbuf_reserve is not a known constant"),
        "{e}"
    );
    let v = verify(p.clone(), &config(Mode::Checked)).expect("Checked keeps the guard");
    // `and` is one more instruction before the access.
    assert!(!v.access(Pc(ACCESS.0 + 1)).expect("a fact").proven);
}

#[test]
fn the_record_is_refused_before_its_null_check() {
    let p = reserve("ldxw r6, [r1+0]", "16", false, "stb [r0+0], 1");
    let e = message(&p, Mode::Strict);
    assert!(e.contains("null"), "{e}");
    let v = verify(p.clone(), &config(Mode::Checked)).expect("Checked keeps the guard");
    assert!(!v.access(Pc(ACCESS.0 - 1)).expect("a fact").proven);
}

#[test]
fn the_text_form_names_the_size_argument() {
    let (id, sig) =
        parse_helper("131:ringbuf_reserve(map,scalar,scalar)->mem_or_null:r2").expect("parses");
    assert_eq!(id, 131);
    assert_eq!(sig.ret, RetKind::MemOrNull { size_arg: 1 });
    assert_eq!(
        sig.to_string(),
        "ringbuf_reserve(map,scalar,scalar)->mem_or_null:r2"
    );
    for bad in [
        "1:f(map,scalar)->mem_or_null:r3",
        "1:f(scalar,scalar)->mem_or_null:r2",
        "1:f(map,scalar)->mem_or_null:r9",
    ] {
        assert!(parse_helper(bad).is_err(), "{bad}");
    }
}

/// Reserves 16 bytes into r0 (pc 0 to 4: `lddw` takes two slots), then runs `body`.
fn reserved(body: &str) -> Program {
    prog(&format!(
        "lddw r1, map_idx(0)
         mov r2, 16
         mov r3, 0
         call 131
         {body}"
    ))
}

/// Strict mode accepts `p`, and so does Checked mode.
fn accepted(p: &Program, what: &str) {
    for mode in [Mode::Strict, Mode::Checked] {
        if let Err(e) = verify(p.clone(), &config(mode)) {
            panic!("{what} {mode:?}: {e}");
        }
    }
}

/// Strict mode refuses `p` with exactly `want`, and Checked mode accepts it.
fn refused(p: &Program, want: &str, what: &str) {
    assert_eq!(message(p, Mode::Strict), want, "{what}");
    if let Err(e) = verify(p.clone(), &config(Mode::Checked)) {
        panic!("{what}: Checked mode refuses: {e}");
    }
}

#[test]
fn a_record_released_once_on_every_path_is_accepted() {
    for (body, what) in [
        (
            // Submitted through a copy spilled before the null check and filled after it.
            "stxdw [r10-8], r0
             jeq r0, 0, +6
             stw [r0+0], 7
             ldxdw r6, [r10-8]
             stw [r6+4], 8
             mov r1, r6
             mov r2, 0
             call 132
             mov r0, 0
             exit",
            "a copy through a spill",
        ),
        (
            // Submitted on one path and discarded on the other, through different copies.
            "jeq r0, 0, +10
             mov r7, r0
             ldxw r2, [r10-4]
             jeq r2, 1, +4
             mov r1, r0
             mov r2, 0
             call 132
             ja +3
             mov r1, r7
             mov r2, 0
             call 133
             mov r0, 0
             exit",
            "submitted or discarded by a branch",
        ),
        (
            // Released on the non-null edge of a `jne`; nothing to release on the null one.
            "jne r0, 0, +2
             mov r0, 1
             exit
             mov r1, r0
             mov r2, 0
             call 133
             mov r0, 0
             exit",
            "a check by jne",
        ),
    ] {
        // The branch on an uninitialised stack word is only Checked mode's: give it one.
        let body = format!("stw [r10-4], 0\n{body}");
        accepted(&reserved(&body), what);
    }
}

#[test]
fn a_record_kept_on_some_path_to_exit_is_refused() {
    // The stack word decides whether the early exit at pc 10 (keeping the record) runs.
    let p = reserved(
        "stw [r10-4], 0
         jeq r0, 0, +7
         ldxw r2, [r10-4]
         jne r2, 0, +2
         mov r0, 2
         exit
         mov r1, r0
         mov r2, 0
         call 132
         mov r0, 0
         exit",
    );
    refused(
        &p,
        "insn #10: exit: the ring buffer record reserved at insn #4 is not submitted or \
         discarded on every path to exit",
        "an early exit keeping the record",
    );
    // Never released at all, even on the straight path.
    let p = reserved("jeq r0, 0, +1\nstw [r0+0], 1\nmov r0, 0\nexit");
    refused(
        &p,
        "insn #8: exit: the ring buffer record reserved at insn #4 is not submitted or \
         discarded on every path to exit",
        "a record never released",
    );
}

#[test]
fn a_released_record_is_refused_through_every_copy() {
    let release = "mov r6, r0
         stxdw [r10-16], r0
         mov r1, r0
         mov r2, 0
         call 132";
    for (then, want, what) in [
        (
            "stw [r6+0], 1",
            "insn #11: stw [r6+0], 1: r6 is a ring buffer record already submitted or discarded",
            "a store through a register copy",
        ),
        (
            "ldxdw r7, [r10-16]\nldxw r0, [r7+0]",
            "insn #12: ldxw r0, [r7+0]: r7 is a ring buffer record already submitted or \
             discarded",
            "a load through a spilled copy",
        ),
        (
            "mov r1, r6\nmov r2, 0\ncall 133",
            "insn #11: mov r1, r6: r6 is a ring buffer record already submitted or discarded",
            "a discard after the submit",
        ),
        (
            "jeq r6, 0, +0",
            "insn #11: jeq r6, 0, +0: r6 is a ring buffer record already submitted or discarded",
            "a comparison",
        ),
    ] {
        // The null check jumps to the final `mov r0, 0`.
        let n = then.lines().count() + 5;
        let p = reserved(&format!(
            "jeq r0, 0, +{n}\n{release}\n{then}\nmov r0, 0\nexit"
        ));
        refused(&p, want, what);
    }
}

#[test]
fn a_record_released_on_some_paths_only_is_refused_after_the_join() {
    // The submit runs only when the stack word is 1; the discard after the join may be the
    // second release.
    let p = reserved(
        "stw [r10-4], 0
         jeq r0, 0, +10
         mov r6, r0
         ldxw r2, [r10-4]
         jne r2, 1, +3
         mov r1, r6
         mov r2, 0
         call 132
         mov r1, r6
         mov r2, 0
         call 133
         mov r0, 0
         exit",
    );
    refused(
        &p,
        "insn #13: mov r1, r6: r6 is a ring buffer record already submitted or discarded on \
         some paths to here",
        "a release after a join",
    );
}

#[test]
fn a_release_needs_the_record_itself_at_offset_0() {
    for (body, want, what) in [
        (
            "mov r1, r0\nmov r2, 0\ncall 132\nmov r0, 0\nexit",
            "insn #7: call 132: r1 may be null: compare it with 0 before using it",
            "before the null check",
        ),
        (
            "jeq r0, 0, +5\nmov r1, r0\nadd r1, 8\nmov r2, 0\ncall 132\nmov r0, 0\nexit",
            "insn #9: call 132: r1 must point to the start of a ring buffer record (offset 0) \
             to release it",
            "at offset 8",
        ),
        (
            "jeq r0, 0, +4\nmov r1, r10\nmov r2, 0\ncall 132\nmov r0, 0\nexit",
            "insn #8: call 132: argument r1 of helper ringbuf_submit must be a ring buffer \
             record (from ringbuf_reserve), but it is a pointer to the stack",
            "not a record",
        ),
    ] {
        // A reservation released by nothing else would leak: these fail before the exit.
        refused(&reserved(body), want, what);
    }
}

#[test]
fn one_of_two_reservations_released_leaves_the_other_held_on_each_path() {
    // r6 is one of two records depending on the stack word. The paths are kept apart at the
    // join (records of different reservations), so the release gives back the reference of
    // its path, and the other record is still held at the exit on each path: the kernel's
    // "Unreleased reference".
    let p = prog(
        "stw [r10-4], 0
         lddw r1, map_idx(0)
         mov r2, 16
         mov r3, 0
         call 131
         jeq r0, 0, +19
         mov r7, r0
         lddw r1, map_idx(0)
         mov r2, 16
         mov r3, 0
         call 131
         jne r0, 0, +5
         mov r1, r7
         mov r2, 0
         call 133
         mov r0, 0
         exit
         mov r6, r0
         ldxw r2, [r10-4]
         jne r2, 0, +1
         mov r6, r7
         mov r1, r6
         mov r2, 0
         call 132
         mov r0, 0
         exit",
    );
    let e = message(&p, Mode::Strict);
    assert!(e.starts_with("insn #27: exit:"), "{e}");
    verify(p, &config(Mode::Checked)).expect("Checked mode accepts");
}

#[test]
fn a_tail_call_with_a_record_held_is_refused() {
    let mut cfg = config(Mode::Strict);
    cfg.helpers.insert(
        12,
        HelperSig::new(
            "tail_call",
            vec![ArgKind::Anything, ArgKind::ProgArray, ArgKind::Scalar],
            RetKind::Scalar,
        ),
    );
    cfg.maps.insert(
        MapRef::Idx(1),
        MapDef::new(4, 4).with_max_entries(4).with_prog_array(true),
    );
    let call = "mov r1, 0\nlddw r2, map_idx(1)\nmov r3, 0\ncall 12";
    // Held across the tail call: refused there.
    let held = reserved(&format!(
        "jeq r0, 0, +9\nmov r6, r0\n{call}\nmov r1, r6\nmov r2, 0\ncall 133\nmov r0, 0\nexit"
    ));
    let e = verify(held.clone(), &cfg).expect_err("refused").to_string();
    assert_eq!(
        e,
        "insn #11: call 12: the ring buffer record reserved at insn #4 is not submitted or \
         discarded on every path to exit"
    );
    // Released before it: accepted, in both modes.
    let released = reserved(&format!(
        "jeq r0, 0, +3\nmov r1, r0\nmov r2, 0\ncall 133\n{call}\nmov r0, 0\nexit"
    ));
    verify(released, &cfg).expect("released first");
    cfg.mode = Mode::Checked;
    verify(held, &cfg).expect("Checked mode accepts");
}

/// r6 is a record of one of two reservations, chosen by the input, at the join before its
/// submit (`other` replaces the second reservation's result when given).
fn one_of_two_reservations(other: Option<&str>) -> Program {
    let second = match other {
        Some(v) => format!("mov r6, {v}"),
        None => "call 131\njeq r0, 0, out\nmov r6, r0\nstw [r6+0], 2".to_string(),
    };
    prog(&format!(
        "ldxw r7, [r1+0]
         lddw r1, map_idx(0)
         mov r2, 8
         mov r3, 0
         jeq r7, 0, second
         call 131
         jeq r0, 0, out
         mov r6, r0
         stw [r6+0], 1
         ja submit
         second:
         {second}
         submit:
         mov r1, r6
         mov r2, 0
         call 132
         out:
         mov r0, 0
         exit"
    ))
}

#[test]
fn records_of_two_reservations_stay_apart_until_each_is_submitted() {
    // Each path holds its own reference and submits it: the kernel, exploring the paths
    // apart, accepts this; so do both modes.
    for mode in [Mode::Strict, Mode::Checked] {
        verify(one_of_two_reservations(None), &config(mode))
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
    // The twin submits a stack pointer on the second path: not a record.
    let e = verify(one_of_two_reservations(Some("r10")), &config(Mode::Strict)).unwrap_err();
    assert!(e.to_string().contains("call 132"), "{e}");
}
