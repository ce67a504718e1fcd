//! `VerifiedProgram::packet_write`: how far from the packet's start each store or atomic
//! through a packet pointer may write, in both modes (a Checked store keeps its guard, and this
//! bound is what the runtime zeroes its run buffer by), joined over every path reaching it;
//! `Unbounded` for an offset the analysis does not bound from below or above, or one relative
//! to `data_meta`.

use bpfx_bytecode::{Pc, Program, assemble};
use bpfx_verifier::{
    Config, ContextField, ContextKind, ContextLayout, FieldKind, Mode, PacketReach, verify,
};

/// A 24-byte struct: `data` at 0, `data_end` at 8, `data_meta` at 16.
fn cfg(mode: Mode) -> Config {
    let fields = vec![
        ContextField::new(0, 8, FieldKind::PacketStart, 0),
        ContextField::new(8, 8, FieldKind::PacketEnd, 8),
        ContextField::new(16, 8, FieldKind::PacketMeta, 16),
    ];
    Config {
        mode,
        mem_size: Some(24),
        context: ContextKind::Fields(ContextLayout::new(fields)),
        ..Config::default()
    }
}

/// The reach of the access at `pc` of `text`, verified in `mode`.
fn reach(text: &str, mode: Mode, pc: u32) -> Option<PacketReach> {
    let prog = Program::decode(assemble(text).expect("assembles")).expect("decodes");
    let v = verify(prog, &cfg(mode)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    v.packet_write(Pc(pc))
}

fn within(start: u64, end: u64) -> Option<PacketReach> {
    Some(PacketReach::Within { start, end })
}

#[test]
fn a_constant_offset_store_reaches_its_bytes_in_both_modes() {
    // Checked: no `data_end` check, the store keeps its guard; its reach is still known.
    let text = "ldxdw r2, [r1+0]
                stw [r2+100], 7
                mov r0, 0
                exit";
    assert_eq!(reach(text, Mode::Checked, 1), within(100, 104));
    // Strict: proven below `data_end`, and the same reach.
    let text = "ldxdw r2, [r1+0]
                ldxdw r3, [r1+8]
                mov r4, r2
                add r4, 8
                jgt r4, r3, +1
                stdw [r2+0], 1
                mov r0, 0
                exit";
    assert_eq!(reach(text, Mode::Strict, 5), within(0, 8));
}

#[test]
fn a_bounded_variable_offset_reaches_its_whole_range() {
    // r3 in [0, 15] after the mask: data + [0, 15] + 4, four bytes.
    let text = "ldxdw r2, [r1+0]
                ldxb r3, [r2+0]
                and r3, 15
                add r2, r3
                mov r4, 1
                stxw [r2+4], r4
                mov r0, 0
                exit";
    assert_eq!(reach(text, Mode::Checked, 5), within(4, 23));
    // An atomic through the same pointer.
    let text = "ldxdw r2, [r1+0]
                ldxb r3, [r2+0]
                and r3, 15
                add r2, r3
                mov r4, 1
                lock add [r2+8], r4
                mov r0, 0
                exit";
    assert_eq!(reach(text, Mode::Checked, 5), within(8, 31));
}

#[test]
fn reaches_join_over_paths() {
    // One store at data + 10 on one path and data + 30 on the other.
    let text = "ldxdw r2, [r1+0]
                ldxb r3, [r2+0]
                mov r4, 10
                jeq r3, 0, +1
                mov r4, 30
                add r2, r4
                stb [r2+0], 1
                mov r0, 0
                exit";
    assert_eq!(reach(text, Mode::Checked, 6), within(10, 31));
}

#[test]
fn unbounded_where_no_bound_from_data_is_known() {
    for (text, pc) in [
        // Before `data`: the headroom or the context struct.
        (
            "ldxdw r2, [r1+0]
             stb [r2-1], 1
             mov r0, 0
             exit",
            1,
        ),
        // A variable that may be negative.
        (
            "ldxdw r2, [r1+0]
             ldxb r3, [r2+0]
             sub r3, 8
             add r2, r3
             stb [r2+0], 1
             mov r0, 0
             exit",
            4,
        ),
        // An unbounded variable.
        (
            "ldxdw r2, [r1+0]
             ldxdw r3, [r2+0]
             add r2, r3
             stb [r2+0], 1
             mov r0, 0
             exit",
            3,
        ),
        // Relative to `data_meta`, not `data`.
        (
            "ldxdw r2, [r1+16]
             stb [r2+0], 1
             mov r0, 0
             exit",
            1,
        ),
        // Bounded on one path only.
        (
            "ldxdw r2, [r1+0]
             ldxdw r3, [r2+0]
             ldxb r4, [r2+0]
             jeq r4, 0, +1
             add r2, r3
             stb [r2+0], 1
             mov r0, 0
             exit",
            5,
        ),
    ] {
        assert_eq!(
            reach(text, Mode::Checked, pc),
            Some(PacketReach::Unbounded),
            "{text}"
        );
    }
}

#[test]
fn loads_and_other_regions_have_no_reach() {
    let text = "ldxdw r2, [r1+0]
                ldxb r3, [r2+4]
                stb [r10-8], 1
                mov r0, 0
                exit";
    for pc in 0..5 {
        assert_eq!(reach(text, Mode::Checked, pc), None, "pc {pc}");
    }
}
