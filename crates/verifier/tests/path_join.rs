//! Join points keep apart the states of paths that disagree on the kind of a live value (a
//! pointer and a scalar, two maps' handles), as the kernel explores every path apart: a value
//! used only on the paths where it has the right kind verifies, the same use on a path where
//! it has another kind is refused, dead values do not split states, and past the bound of
//! states per join point the analysis joins as before.

mod common;

use bpfx_bytecode::Program;
use bpfx_verifier::{MapDef, Mode, verify};
use common::{config, prog};

const MODES: [Mode; 2] = [Mode::Strict, Mode::Checked];

/// r7 is the input pointer when the input's first word is not 0, else 0; `then` runs after the
/// join.
fn pointer_or_zero(then: &str) -> Program {
    prog(&format!(
        "ldxw r6, [r1+0]
         mov r7, 0
         jeq r6, 0, +1
         mov r7, r1
         {then}"
    ))
}

#[test]
fn a_pointer_or_zero_is_read_where_it_is_the_pointer() {
    // The load is on the paths where r7 is not 0, which are the pointer's.
    let safe = "jeq r7, 0, +2
                ldxw r0, [r7+4]
                exit
                mov r0, 0
                exit";
    for mode in MODES {
        verify(pointer_or_zero(safe), &config(mode, &[]))
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
    // Read on every path, 0 included: the kernel's "invalid mem access 'scalar'".
    let unsafe_ = "ldxw r0, [r7+4]
                   exit";
    let e = verify(pointer_or_zero(unsafe_), &config(Mode::Strict, &[])).unwrap_err();
    assert_eq!(e.pc.0, 4, "{e}");
    assert!(e.to_string().contains("r7"), "{e}");
}

#[test]
fn a_dead_value_does_not_split_states() {
    // 4 instructions walked before the join (pc 3 on one path only), then the tail once per
    // state. r7 is read by the tail's first jump (two states in Strict mode; they join again
    // after it, where r7 is dead: 2 + 2), or overwritten first (dead at the join: one state,
    // 3).
    let processed = |mode, tail: &str| {
        verify(pointer_or_zero(tail), &config(mode, &[]))
            .unwrap()
            .insns_processed()
    };
    assert_eq!(
        processed(Mode::Strict, "jeq r7, 0, +0\nmov r0, 0\nexit"),
        4 + 2 + 2
    );
    assert_eq!(processed(Mode::Strict, "mov r7, 0\nmov r0, 0\nexit"), 4 + 3);
    // Checked mode keeps apart only what its rules would refuse joined (map handles, the
    // context pointer in a field context): an input pointer or 0 is one state, 3 walked.
    assert_eq!(
        processed(Mode::Checked, "jeq r7, 0, +0\nmov r0, 0\nexit"),
        4 + 3
    );
}

/// r1 is the handle of map `k` when the input's first byte is `k`, for `k` in `0..n` (map 0
/// for any other byte); then a lookup of key 0 and a load of the value's first 8 bytes.
fn chosen_among(n: usize) -> Program {
    let mut text = String::from("ldxb r6, [r1+0]\nlddw r1, map_idx(0)\n");
    // Each case: `jne r6, k, +3; lddw r1, map_idx(k); ja +0` falls into the next one.
    for k in 1..n {
        text.push_str(&format!("jne r6, {k}, +3\nlddw r1, map_idx({k})\nja +0\n"));
    }
    text.push_str(
        "stw [r10-4], 0
         mov r2, r10
         add r2, -4
         call 1
         jeq r0, 0, +2
         ldxdw r0, [r0+0]
         exit
         mov r0, 0
         exit",
    );
    prog(&text)
}

#[test]
fn maps_of_different_layouts_are_checked_per_path_up_to_the_bound() {
    // Value sizes 8, 16, 24, …: no two of one layout, each fits the 8-byte load.
    let maps: Vec<MapDef> = (1..=9)
        .map(|k| MapDef::new(4, 8 * k).with_max_entries(4))
        .collect();
    for mode in MODES {
        for n in 2..=8 {
            verify(chosen_among(n), &config(mode, &maps[..n]))
                .unwrap_or_else(|e| panic!("{mode:?} {n} maps: {e}"));
        }
        // A ninth kind joins into the first state: r1 is no handle there.
        let e = verify(chosen_among(9), &config(mode, &maps)).unwrap_err();
        assert!(
            e.to_string().contains("must be a map handle"),
            "{mode:?}: {e}"
        );
    }
}

#[test]
fn a_checked_loop_head_keeps_map_handles_apart_and_converges() {
    // r7 alternates between the handles of two maps of different value sizes at the loop
    // head, and each iteration looks up through it: the head keeps one state per map, each
    // widened over its back-edges (Checked mode; Strict cannot bound the input's count).
    let text = "ldxw r6, [r1+0]
                lddw r7, map_idx(0)
                mov r8, 0
                stw [r10-4], 0
                mov r2, r10
                add r2, -4
                mov r1, r7
                call 1
                jeq r0, 0, +1
                ldxdw r9, [r0+0]
                jeq r8, 0, +3
                lddw r7, map_idx(0)
                ja +2
                lddw r7, map_idx(1)
                xor r8, 1
                add r6, -1
                jsgt r6, 0, -16
                mov r0, 0
                exit";
    let maps = [MapDef::new(4, 8), MapDef::new(4, 16)];
    verify(prog(text), &config(Mode::Checked, &maps)).unwrap();
    // The same loop through maps whose values are too small for the load keeps its guard.
    let maps = [MapDef::new(4, 8), MapDef::new(4, 4)];
    let v = verify(prog(text), &config(Mode::Checked, &maps)).unwrap();
    assert_eq!(
        v.access(bpfx_bytecode::Pc(10)).map(|a| a.proven),
        Some(false)
    );
}
