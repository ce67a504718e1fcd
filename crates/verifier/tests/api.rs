//! The public surface: error wording, the log, facts, and the modes' defaults.

use bpfx_bytecode::{CallDepth, Pc, Program, assemble};
use bpfx_verifier::{
    AccessFact, Config, Mode, RegionKind, VerifyErrorKind, verify, verify_with_log,
};

fn prog(text: &str) -> Program {
    Program::decode(assemble(text).expect("assembles")).expect("decodes")
}

#[test]
fn errors_read_like_the_kernel_log() {
    let cfg = Config {
        mode: Mode::Strict,
        mem_size: Some(8),
        ..Config::default()
    };
    let e = verify(prog("mov r2, 0\nldxdw r3, [r2+0]\nmov r0, r3\nexit"), &cfg).unwrap_err();
    assert_eq!(e.pc, Pc(1));
    assert!(matches!(e.kind, VerifyErrorKind::NotAPointer { .. }));
    assert_eq!(
        e.to_string(),
        "insn #1: ldxdw r3, [r2+0]: r2 is a scalar, not a pointer to memory"
    );
}

#[test]
fn checked_is_the_default_and_keeps_guards() {
    assert_eq!(Config::default().mode, Mode::Checked);
    let v = verify(
        prog("mov r2, 0\nldxdw r3, [r2+0]\nstdw [r10-8], 1\nmov r0, r3\nexit"),
        &Config::default(),
    )
    .expect("Checked mode accepts a guarded access");
    assert_eq!(v.mode(), Mode::Checked);
    assert_eq!(
        v.access(Pc(1)),
        Some(AccessFact {
            region: RegionKind::Unknown,
            proven: false
        })
    );
    assert_eq!(
        v.access(Pc(2)),
        Some(AccessFact {
            region: RegionKind::Stack,
            proven: true
        })
    );
    assert_eq!(v.access(Pc(0)), None, "not a memory access");
}

#[test]
fn the_log_shows_states_along_the_path_and_ends_with_the_error() {
    let cfg = Config {
        mode: Mode::Strict,
        mem_size: Some(8),
        ..Config::default()
    };
    let (res, log) = verify_with_log(
        prog("mov r3, r10\nadd r3, -8\nldxdw r0, [r3+0]\nexit"),
        &cfg,
    );
    let e = res.unwrap_err();
    let lines = log.lines();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(lines[2].contains("r3=fp0-8"), "{log}");
    assert_eq!(lines[3], e.to_string());
}

#[test]
fn functions_are_listed() {
    let v = verify(
        prog("mov r0, 0\ncall local f\nexit\nf:\nmov r0, 1\nexit"),
        &Config::default(),
    )
    .expect("verifies");
    assert_eq!(v.functions(), &[Pc(0), Pc(3)]);
    // The list is the Cfg's, which engines read with the program it describes.
    let cfg = v.cfg();
    assert_eq!(cfg.program(), v.program());
    let entries: Vec<Pc> = cfg.functions().iter().map(|f| f.entry).collect();
    assert_eq!(entries, v.functions());
    assert_eq!(cfg.calls()[0].site, Pc(1));
    assert_eq!(cfg.call_depth(), CallDepth::Frames(2));
}

/// The `verify` fuzz finding 3: the loop at pc 7 is entered past its head (6 -> 11), so its
/// body reaches back to pc 0 and overlaps the loop at pc 5 without nesting. Exploring it once
/// nested loop instances one level deeper per iteration (3 GB before the budget ran out).
/// Loops are now found by a depth-first search and need not nest: reaching the head of a loop
/// the path is already iterating starts that loop's next iteration, so the exploration stays
/// flat and ends with the loop check (`r1` may take the same values forever).
#[test]
fn overlapping_loops_are_explored_without_nesting_instances() {
    let text = "mov r9, 21\nmov32 r0, 1048577\nxor r1, 11\njset32 r1, r9, +0\n\
        jeq32 r1, 1048577, -3\nxor r1, 11\njset32 r1, r9, +4\njeq32 r1, 11, -3\nmov32 r0, 11\n\
        jset r1, r9, +0\njeq32 r1, 0, -4\njeq32 r1, 1048577, -3\nxor r1, 11\njset32 r1, r9, +4\n\
        jeq32 r1, 11, -3\nmov32 r0, 11\njset r1, r9, +0\njeq32 r1, 11, -3\nor r1, r9\n\
        jeq32 r1, 11, -3\nmod32 r0, 2\nexit";
    let strict = Config {
        mode: Mode::Strict,
        mem_size: Some(0),
        ..Config::default()
    };
    let e = verify(prog(text), &strict).unwrap_err();
    assert!(
        matches!(
            e.kind,
            VerifyErrorKind::Loop(_) | VerifyErrorKind::LoopTooComplex { .. }
        ),
        "{e}"
    );
    // Checked mode widens at heads instead of nesting instances, and still accepts it.
    let checked = Config {
        mem_size: Some(0),
        ..Config::default()
    };
    assert!(verify(prog(text), &checked).is_ok());
}

#[test]
fn poisoned_helper_calls_are_refused_where_reachable_and_ignored_in_dead_code() {
    let kfunc = bpfx_verifier::POISONED_HELPERS.start + 1_000_003; // a poisoned kfunc call
    let other = 9999; // an unknown helper outside the range: refused even in dead code
    // libbpf's failed CO-RE relocation, also called on purpose as an "unreachable" marker.
    for (poison, mode) in [
        (kfunc, Mode::Strict),
        (kfunc, Mode::Checked),
        (bpfx_verifier::BAD_RELO_HELPER, Mode::Strict),
        (bpfx_verifier::BAD_RELO_HELPER, Mode::Checked),
    ] {
        let cfg = Config {
            mode,
            ..Config::default()
        };
        let dead = format!("mov r1, 0\njeq r1, 0, +1\ncall {poison}\nmov r0, 0\nexit");
        assert!(verify(prog(&dead), &cfg).is_ok(), "{mode:?}");
        let live = format!("mov r1, 1\njeq r1, 0, +1\ncall {poison}\nmov r0, 0\nexit");
        let e = verify(prog(&live), &cfg).unwrap_err();
        assert_eq!(
            (e.pc, e.kind),
            (Pc(2), VerifyErrorKind::UnknownHelper(poison)),
            "{mode:?}"
        );
        let dead_other = format!("mov r1, 0\njeq r1, 0, +1\ncall {other}\nmov r0, 0\nexit");
        let e = verify(prog(&dead_other), &cfg).unwrap_err();
        assert_eq!(e.kind, VerifyErrorKind::UnknownHelper(other), "{mode:?}");
    }
}

/// A map of maps' lookup gives an inner map's handle or null: every mode wants the null check
/// before the handle reaches a helper, the inner lookup is then typed by the inner template
/// (its value proven in Strict), and no helper but `map_lookup_elem` takes the outer map.
#[test]
fn map_of_maps_lookups_give_checked_inner_handles() {
    use bpfx_verifier::{ArgKind, HelperSig, HelperTable, MapDef, MapRef, MapTable, RetKind};
    let mut helpers = HelperTable::new();
    helpers.insert(
        1,
        HelperSig::new(
            "map_lookup_elem",
            vec![ArgKind::MapHandle, ArgKind::MapKey],
            RetKind::MapValueOrNull,
        ),
    );
    helpers.insert(
        3,
        HelperSig::new(
            "map_delete_elem",
            vec![ArgKind::MapHandle, ArgKind::MapKey],
            RetKind::Scalar,
        ),
    );
    let mut maps = MapTable::new();
    maps.insert(
        MapRef::Idx(0),
        MapDef::new(4, 4).with_inner(Some(MapRef::Inner(0))),
    );
    maps.insert(MapRef::Inner(0), MapDef::new(4, 16));
    let lookup_inner = |null_check: &str, off: i32| {
        format!(
            "stw [r10-4], 0
             lddw r1, map_idx(0)
             mov r2, r10
             add r2, -4
             call 1
             {null_check}
             mov r1, r0
             mov r2, r10
             add r2, -4
             call 1
             jeq r0, 0, +2
             ldxdw r0, [r0+{off}]
             exit
             mov r0, 0
             exit"
        )
    };
    for mode in [Mode::Strict, Mode::Checked] {
        let cfg = Config {
            mode,
            mem_size: Some(0),
            helpers: helpers.clone(),
            maps: maps.clone(),
            ..Config::default()
        };
        // Without the null check: the second lookup gets a handle that may be null.
        let skip = lookup_inner("ja +0", 8).replace("ja +0", "mov r0, r0");
        let e = verify(prog(&skip), &cfg).unwrap_err();
        assert!(
            e.to_string().contains("a map handle that may be null"),
            "{mode:?}: {e}"
        );
        let v = verify(
            prog(&lookup_inner("jne r0, 0, +2\nmov r0, 0\nexit", 8)),
            &cfg,
        )
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let load = Pc(14);
        assert_eq!(
            v.access(load).map(|f| f.proven),
            Some(true),
            "{mode:?}: the inner value's 16 bytes are proven"
        );
        // Past the inner template's value size.
        let past = verify(
            prog(&lookup_inner("jne r0, 0, +2\nmov r0, 0\nexit", 16)),
            &cfg,
        );
        match mode {
            Mode::Strict => assert!(past.is_err()),
            Mode::Checked => assert_eq!(past.unwrap().access(load).map(|f| f.proven), Some(false)),
        }
        let delete = "stw [r10-4], 0
             lddw r1, map_idx(0)
             mov r2, r10
             add r2, -4
             call 3
             exit";
        let e = verify(prog(delete), &cfg).unwrap_err();
        assert!(e.to_string().contains("map of maps"), "{mode:?}: {e}");
    }
}
