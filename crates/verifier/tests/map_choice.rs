//! Map handles chosen by a branch: a handle on some paths and null on the others is checked
//! per path (the paths are kept apart where the handle is live, so a helper taking it on the
//! null path is refused at that path, and a comparison with 0 before the call decides it), two
//! maps of one definition but for `max_entries` may stand for one another, in either order,
//! and maps of other layouts are each checked on their own path, as the kernel does.

mod common;

use bpfx_bytecode::Program;
use bpfx_verifier::{MapDef, Mode, verify};
use common::{config, prog};

/// r1 = map 0 when the input's first word is 0, else `other`; then `check`; then a lookup of
/// key 0 and a load of the value's last 8 bytes (`value_size` 16).
fn chosen(other: &str, check: &str) -> Program {
    // `lddw` takes two slots.
    let skip = if other.starts_with("lddw") { 2 } else { 1 };
    prog(&format!(
        "ldxw r6, [r1+0]
         lddw r1, map_idx(0)
         jeq r6, 0, +{skip}
         {other}
         {check}
         stw [r10-4], 0
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

const NO_CHECK: &str = "mov r0, 0";
const NULL_CHECK: &str = "jne r1, 0, +2\nmov r0, 0\nexit";

#[test]
fn a_handle_or_null_must_be_compared_with_zero() {
    let maps = [MapDef::new(4, 16).with_max_entries(8)];
    for mode in [Mode::Strict, Mode::Checked] {
        // The null path reaches the call with a scalar (the kernel: "expected=map_ptr").
        let e = verify(chosen("mov r1, 0", NO_CHECK), &config(mode, &maps)).unwrap_err();
        assert!(
            e.to_string()
                .contains("must be a map handle, but it is a scalar"),
            "{mode:?}: {e}"
        );
        verify(chosen("mov r1, 0", NULL_CHECK), &config(mode, &maps))
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        // Null and a scalar that may be anything else is no handle at all.
        let e = verify(chosen("mov r1, r6", NULL_CHECK), &config(mode, &maps)).unwrap_err();
        assert!(
            e.to_string().contains("must be a map handle"),
            "{mode:?}: {e}"
        );
    }
}

#[test]
fn maps_of_one_layout_sized_apart_stand_for_one_another() {
    let small = MapDef::new(4, 16).with_max_entries(8);
    let large = MapDef::new(4, 16).with_max_entries(1024);
    for mode in [Mode::Strict, Mode::Checked] {
        // Either order of the sizes, with and without a null path.
        for maps in [[small, large], [large, small]] {
            for (other, check) in [
                ("lddw r1, map_idx(1)", NO_CHECK),
                ("lddw r1, map_idx(1)", NULL_CHECK),
            ] {
                verify(chosen(other, check), &config(mode, &maps))
                    .unwrap_or_else(|e| panic!("{mode:?} {maps:?}: {e}"));
            }
        }
        // A map of another type is another layout, checked on its own path: the lookup and
        // the load of the value's last 8 bytes fit both.
        for maps in [
            [small, small.with_map_type(9)],
            [small.with_map_type(9), small],
        ] {
            verify(
                chosen("lddw r1, map_idx(1)", NO_CHECK),
                &config(mode, &maps),
            )
            .unwrap_or_else(|e| panic!("{mode:?} {maps:?}: {e}"));
        }
    }
    // A smaller value: the load past its end is refused on that map's path in Strict mode
    // (the kernel's "invalid access to map value"), and keeps its guard in Checked mode.
    let maps = [small, MapDef::new(4, 8).with_max_entries(8)];
    let e = verify(
        chosen("lddw r1, map_idx(1)", NO_CHECK),
        &config(Mode::Strict, &maps),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("outside the map value of 8 bytes"),
        "{e}"
    );
    let v = verify(
        chosen("lddw r1, map_idx(1)", NO_CHECK),
        &config(Mode::Checked, &maps),
    )
    .unwrap();
    assert_eq!(
        v.access(bpfx_bytecode::Pc(12)).map(|a| a.proven),
        Some(false)
    );
    // A larger key is read past the 4 bytes written on that path: refused in Strict mode (the
    // kernel's "invalid indirect read from stack"); Checked mode's stack starts zeroed.
    let maps = [small, MapDef::new(8, 16).with_max_entries(8)];
    let e = verify(
        chosen("lddw r1, map_idx(1)", NO_CHECK),
        &config(Mode::Strict, &maps),
    )
    .unwrap_err();
    assert_eq!(e.pc.0, 10, "{e}");
    verify(
        chosen("lddw r1, map_idx(1)", NO_CHECK),
        &config(Mode::Checked, &maps),
    )
    .unwrap();
}
