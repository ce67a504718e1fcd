//! `Program::run_xdp` (the slice API) reuses its run buffer: a Strict program that makes no
//! tail call gets the tailroom as the last run left it (it can read no byte past `data_end`,
//! and `xdp_adjust_tail` zeroes what it grows the frame into), every other program a zeroed
//! one. Both hold after a run on a longer frame of 0xff bytes, on every engine.

mod common;

use bpfx::{Mode, ProgramDef, Vm};
use common::{code, engines, prepare};

/// The frame that leaves 0xff bytes where the next, shorter frame's tailroom lies.
fn dirty() -> Vec<u8> {
    vec![0xff; 1000]
}

/// Runs `text` in `mode` on every engine: first on [`dirty`], then on a 64-byte frame; the
/// second run's verdict code, the same everywhere.
fn second_verdict(text: &str, mode: Mode) -> u64 {
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
        .unwrap();
    let mut seen = None;
    for (name, opts) in engines() {
        let v = obj
            .program("p")
            .unwrap()
            .verify(mode)
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let mut prog = prepare(v, opts);
        prog.run_xdp(&mut dirty()).unwrap();
        let mut frame = vec![0x11; 64];
        let code = prog
            .run_xdp(&mut frame)
            .unwrap_or_else(|e| panic!("{mode:?} {name}: {e}"))
            .code();
        assert_eq!(frame, vec![0x11; 64], "{mode:?} {name}: the frame is kept");
        match seen {
            None => seen = Some(code),
            Some(s) => assert_eq!(s, code, "{mode:?} {name}"),
        }
    }
    seen.unwrap()
}

#[test]
fn bytes_a_grown_tail_exposes_are_zero_whatever_the_last_run_left() {
    // On a 64-byte frame: grow the tail by 200 bytes, OR four words of the grown part, shrink
    // it back; XDP_PASS (2) when they were all zero, XDP_DROP (1) otherwise. Other frames pass.
    let text = "mov r6, r1
                ldxw r2, [r6+0]
                ldxw r3, [r6+4]
                mov r4, r2
                add r4, 64
                jne r4, r3, pass
                mov r1, r6
                mov r2, 200
                call 65
                jne r0, 0, pass
                ldxw r2, [r6+0]
                ldxw r3, [r6+4]
                mov r4, r2
                add r4, 264
                jgt r4, r3, pass
                ldxdw r7, [r2+64]
                ldxdw r5, [r2+128]
                or r7, r5
                ldxdw r5, [r2+192]
                or r7, r5
                ldxdw r5, [r2+256]
                or r7, r5
                mov r1, r6
                mov r2, -200
                call 65
                mov r0, 2
                jeq r7, 0, done
                mov r0, 1
                done:
                exit
                pass:
                mov r0, 2
                exit";
    for mode in [Mode::Strict, Mode::Checked] {
        assert_eq!(second_verdict(text, mode), 2, "{mode:?}");
    }
}

#[test]
fn a_checked_program_reading_past_data_end_reads_a_zeroed_tailroom() {
    // The byte 100 bytes into a 64-byte frame's buffer: past `data_end`, so Strict mode refuses
    // the load and Checked mode guards it against the run buffer, which it may read.
    let text = "ldxw r2, [r1+0]
                ldxb r0, [r2+100]
                exit";
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
        .unwrap();
    assert!(obj.program("p").unwrap().verify(Mode::Strict).is_err());
    assert_eq!(second_verdict(text, Mode::Checked), 0);
}
