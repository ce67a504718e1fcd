//! Map handles chosen by a branch: a handle on some paths and null on the others is one that
//! may be null (a comparison with 0 decides it; no helper takes it undecided), and two maps
//! of one definition but for `max_entries` may stand for one another, in either order.

use bpfx_bytecode::{Program, assemble};
use bpfx_verifier::{
    ArgKind, Config, HelperSig, HelperTable, MapDef, MapRef, MapTable, Mode, RetKind, verify,
};

fn prog(text: &str) -> Program {
    Program::decode(assemble(text).expect("assembles")).expect("decodes")
}

fn config(mode: Mode, maps: &[MapDef]) -> Config {
    let mut helpers = HelperTable::new();
    helpers.insert(
        1,
        HelperSig::new(
            "map_lookup_elem",
            vec![ArgKind::MapHandle, ArgKind::MapKey],
            RetKind::MapValueOrNull,
        ),
    );
    let mut table = MapTable::new();
    for (i, d) in maps.iter().enumerate() {
        table.insert(MapRef::Idx(i as i32), *d);
    }
    Config {
        mode,
        mem_size: Some(8),
        helpers,
        maps: table,
        ..Config::default()
    }
}

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
        let e = verify(chosen("mov r1, 0", NO_CHECK), &config(mode, &maps)).unwrap_err();
        assert!(
            e.to_string().contains("a map handle that may be null"),
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
        // A value of another size, or a map of another type, is another layout.
        for other in [
            MapDef::new(4, 8).with_max_entries(8),
            MapDef::new(8, 16).with_max_entries(8),
            small.with_map_type(9),
        ] {
            let maps = [small, other];
            let e = verify(
                chosen("lddw r1, map_idx(1)", NO_CHECK),
                &config(mode, &maps),
            )
            .unwrap_err();
            assert!(
                e.to_string().contains("must be a map handle"),
                "{mode:?} {other:?}: {e}"
            );
        }
    }
}
