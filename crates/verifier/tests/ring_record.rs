//! `RetKind::MemOrNull`: a ring buffer record (`bpf_ringbuf_reserve`) is memory of the
//! reserved size, or null, as the kernel types it (`PTR_TO_MEM | MEM_RINGBUF`): Strict mode
//! proves accesses inside the reserved size, refuses those past it, a non-constant size and
//! an access before the null check; Checked mode keeps guards where it proves nothing.

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
            vec![ArgKind::Anything, ArgKind::Scalar],
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
