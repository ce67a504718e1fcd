//! What the map-handle tests share: assembler text to a program, and a configuration with
//! `map_lookup_elem` and the given maps (map `i` is `map_idx(i)`).

use bpfx_bytecode::{Program, assemble};
use bpfx_verifier::{
    ArgKind, Config, HelperSig, HelperTable, MapDef, MapRef, MapTable, Mode, RetKind,
};

/// Assembles and decodes `text`.
pub(crate) fn prog(text: &str) -> Program {
    Program::decode(assemble(text).expect("assembles")).expect("decodes")
}

/// `mode`, 8 bytes of input, `map_lookup_elem` (helper 1) and `maps` as `map_idx(0..)`.
pub(crate) fn config(mode: Mode, maps: &[MapDef]) -> Config {
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
