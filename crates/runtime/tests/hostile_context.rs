//! Hostile struct-context layouts: every layout whose `data` / `data_end` fields could hand a
//! program an unproven packet pointer is refused where it enters (`StructLayout::new`, and
//! verification for layouts built field by field), so nothing runs, on any engine.
//!
//! The reproducer: `{size 16, data at 4, data_end at 0}`. Each field fits in the struct, but
//! they overlap, so writing `data_end` after `data` left a wild `data` that a Strict-verified
//! `data + 8 <= data_end` check let through to an unguarded load (a JIT segfault).

mod common;

use bpfx::{Context, Error, LayoutError, Mode, ProgramDef, StructLayout, Vm};
use common::{code, engines, prepare};

/// Loads `[data]` after proving `data + 8 <= data_end` (no guard left in Strict mode), with
/// the fields at `data` and `data_end`.
fn packet_reader(data: u16, data_end: u16) -> String {
    format!(
        "ldxdw r2, [r1+{data}]\n\
         ldxdw r3, [r1+{data_end}]\n\
         mov r4, r2\n\
         add r4, 8\n\
         jgt r4, r3, +2\n\
         ldxdw r0, [r2+0]\n\
         exit\n\
         mov r0, 0\n\
         exit"
    )
}

/// Every way a layout can be wrong, with the error it must get.
fn hostile() -> Vec<(StructLayout, LayoutError)> {
    let l = |size, d, e| StructLayout {
        size,
        packet: Some((d, e)),
    };
    vec![
        // The audit's reproducer: inside the struct, overlapping (and data misaligned).
        (
            l(16, 4, 0),
            LayoutError::Misaligned {
                field: "data",
                off: 4,
            },
        ),
        // Aligned and inside, but the same field twice.
        (
            l(16, 8, 8),
            LayoutError::Overlap {
                data: 8,
                data_end: 8,
            },
        ),
        (
            l(16, 0, 0),
            LayoutError::Overlap {
                data: 0,
                data_end: 0,
            },
        ),
        (
            l(24, 8, 4),
            LayoutError::Misaligned {
                field: "data_end",
                off: 4,
            },
        ),
        // Outside the struct (the packet bytes follow it, so this would read the packet).
        (
            l(16, 0, 16),
            LayoutError::OutsideStruct {
                field: "data_end",
                off: 16,
                size: 16,
            },
        ),
        (
            l(8, 8, 0),
            LayoutError::OutsideStruct {
                field: "data",
                off: 8,
                size: 8,
            },
        ),
        // Offsets whose end does not fit in 16 bits.
        (
            l(u16::MAX, 0, 65528),
            LayoutError::OutsideStruct {
                field: "data_end",
                off: 65528,
                size: u16::MAX,
            },
        ),
        (
            StructLayout {
                size: 0,
                packet: None,
            },
            LayoutError::Empty,
        ),
    ]
}

#[test]
fn hostile_layouts_are_refused_by_the_constructor_with_a_clear_error() {
    for (layout, want) in hostile() {
        let got = StructLayout::new(layout.size, layout.packet).unwrap_err();
        assert_eq!(got, want, "{layout:?}");
        assert_eq!(layout.check(), Err(want));
    }
    let e = StructLayout::new(16, Some((4, 0))).unwrap_err().to_string();
    assert_eq!(e, "the data field at offset 4 is not 8-byte aligned");
    let e = StructLayout::new(16, Some((8, 8))).unwrap_err().to_string();
    assert_eq!(
        e,
        "the 8-byte data (offset 8) and data_end (offset 8) fields overlap"
    );
    // Disjoint, aligned, inside: accepted, in either order, touching or not.
    for (size, d, e) in [(16, 0, 8), (16, 8, 0), (24, 16, 0), (u16::MAX, 65520, 0)] {
        assert!(StructLayout::new(size, Some((d, e))).is_ok(), "{d} {e}");
    }
    assert!(StructLayout::new(1, None).is_ok());
}

#[test]
fn hostile_layouts_built_by_hand_never_verify_so_nothing_runs() {
    for (layout, want) in hostile() {
        // Load offsets are 16-bit signed: the program reads what it can name.
        let (d, e) = layout.packet.unwrap_or((0, 0));
        let (d, e) = (d.min(0x7ff8), e.min(0x7ff8));
        let obj = Vm::new()
            .object(
                vec![ProgramDef::new("p", "", code(&packet_reader(d, e)))],
                vec![],
            )
            .unwrap();
        for mode in [Mode::Checked, Mode::Strict] {
            let r = obj
                .program("p")
                .unwrap()
                .context(Context::Struct(layout))
                .verify(mode);
            match r {
                Err(Error::Layout { program, source }) => {
                    assert_eq!((program.as_str(), &source), ("p", &want), "{layout:?}");
                }
                Err(e) => panic!("{layout:?} {mode:?}: wrong error {e}"),
                Ok(_) => panic!("{layout:?} {mode:?}: verified"),
            }
        }
    }
}

/// The reproducer's program with a sound layout, on every engine and JIT option set: the
/// proven load reads the packet, and a packet too short for the check returns 0.
#[test]
fn the_reproducer_with_disjoint_fields_reads_only_the_packet_on_every_engine() {
    let obj = Vm::new()
        .object(
            vec![ProgramDef::new("p", "", code(&packet_reader(8, 0)))],
            vec![],
        )
        .unwrap();
    let layout = StructLayout::new(16, Some((8, 0))).unwrap();
    for (name, opts) in engines() {
        let v = obj
            .program("p")
            .unwrap()
            .context(Context::Struct(layout))
            .verify(Mode::Strict)
            .unwrap();
        let mut p = prepare(v, opts);
        let mut ctx = [0u8; 16];
        let mut packet = 0x1122_3344_5566_7788u64.to_le_bytes();
        assert_eq!(
            p.run_ctx(&mut ctx, &mut packet).unwrap(),
            0x1122_3344_5566_7788,
            "{name}"
        );
        assert_eq!(p.run_ctx(&mut ctx, &mut [1, 2, 3, 4]).unwrap(), 0, "{name}");
        assert_eq!(p.run_ctx(&mut ctx, &mut []).unwrap(), 0, "{name}");
    }
}
