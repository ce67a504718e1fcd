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

/// Reads the bytes 100, 700, 1200 and 1600 bytes past `data` (through guarded loads, into the
/// tailroom of shorter frames) into r0's bytes 0 to 3; `extra` runs after the loads.
fn four_bytes(extra: &str) -> String {
    format!(
        "mov r6, r1
         ldxw r2, [r6+0]
         ldxb r0, [r2+100]
         ldxb r3, [r2+700]
         lsh r3, 8
         or r0, r3
         ldxb r3, [r2+1200]
         lsh r3, 16
         or r0, r3
         ldxb r3, [r2+1600]
         lsh r3, 24
         or r0, r3
         {extra}
         exit"
    )
}

/// Runs `text` (Checked) on every engine over frames of 1-bytes of lengths that grow and
/// shrink: each run's r0 must show a 1 exactly for the offsets inside its own frame, so no
/// run reads what an earlier run's frame or stores left past its `data_end`.
fn tailroom_is_zero_over_frame_sizes(text: &str) {
    let obj = Vm::new()
        .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
        .unwrap();
    let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
    for (name, opts) in engines() {
        let mut prog = prepare(v.clone(), opts);
        for len in [1000, 64, 500, 64, 1500, 80, 1300, 64, 64, 1250, 700, 64] {
            let want = [100, 700, 1200, 1600]
                .iter()
                .enumerate()
                .map(|(i, &off)| u64::from(off < len) << (8 * i))
                .sum::<u64>();
            let mut frame = vec![1u8; len];
            let got = prog
                .run_xdp(&mut frame)
                .unwrap_or_else(|e| panic!("{name} {len}: {e}"))
                .code();
            assert_eq!(got, want, "{name}: a {len}-byte frame");
        }
    }
}

#[test]
fn a_checked_program_that_writes_nothing_past_its_frame_reads_zeros_there() {
    // Loads only: the run buffer keeps its zeros, and each run zeroes what the last frame left.
    tailroom_is_zero_over_frame_sizes(&four_bytes(""));
    // Proven stack and map-value stores and a helper that writes no guest memory change
    // nothing of that.
    tailroom_is_zero_over_frame_sizes(&four_bytes(
        "mov r7, r0
         stdw [r10-8], 5
         call 5
         mov r0, r7",
    ));
}

#[test]
fn a_checked_program_that_stores_past_its_frame_gets_a_zeroed_tailroom_each_run() {
    // A guarded store 1600 bytes past `data`, in every frame's tailroom: the next run reads 0
    // there before its own store.
    tailroom_is_zero_over_frame_sizes(&four_bytes("stb [r2+1600], 9"));
    tailroom_is_zero_over_frame_sizes(&four_bytes(
        "mov r3, 9
         stxb [r2+1300], r3",
    ));
}

/// Runs `text` (Checked) on `first` and then on `second`, on every engine, and the same
/// program fresh (a new `Vm`) on `second` alone: the second run's verdict code and frame must
/// be the fresh run's, so nothing the first run wrote past its frame (or anywhere else in the
/// run buffer) shows in the next.
fn second_run_is_a_fresh_run(text: &str, first: &[u8], second: &[u8]) {
    let verified = || {
        Vm::new()
            .object(vec![ProgramDef::new("p", "xdp", code(text))], vec![])
            .unwrap()
            .program("p")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap()
    };
    for (name, opts) in engines() {
        let mut fresh = prepare(verified(), opts.clone());
        let mut want = second.to_vec();
        let want_code = fresh.run_xdp(&mut want).unwrap().code();
        let mut prog = prepare(verified(), opts);
        prog.run_xdp(&mut first.to_vec())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut got = second.to_vec();
        let got_code = prog
            .run_xdp(&mut got)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .code();
        assert_eq!(got_code, want_code, "{name}: the verdict");
        assert_eq!(got, want, "{name}: the frame");
    }
}

#[test]
fn a_checked_store_past_the_frame_is_not_seen_by_the_next_run() {
    // Reads what lies 200 and 96 to 104 bytes past `data` (r0 and the frame's bytes 8 to 16),
    // then writes there: 8 bytes at a constant offset, and 8 at `data + 96 + (frame[0] & 31)`
    // (a bounded variable offset): both in the tailroom of a 64-byte frame.
    let text = "mov r6, r1
                ldxw r2, [r6+0]
                ldxdw r0, [r2+200]
                ldxdw r3, [r2+96]
                stxdw [r2+8], r3
                ldxb r4, [r2+0]
                and r4, 31
                mov r5, r2
                add r5, r4
                stdw [r5+96], -1
                mov r3, 0x5a5a
                stxdw [r2+200], r3
                exit";
    let (short, long) = (vec![0x11; 64], vec![0x22; 300]);
    second_run_is_a_fresh_run(text, &short, &[0; 64]);
    second_run_is_a_fresh_run(text, &long, &[0; 64]);
    second_run_is_a_fresh_run(text, &short, &[0x33; 150]);
    // The same with a store that may reach before `data` (no reach from `data`: the whole
    // buffer is rebuilt), into the headroom.
    let text = "mov r6, r1
                ldxw r2, [r6+0]
                ldxdw r0, [r2-16]
                ldxdw r3, [r2+96]
                stxdw [r2+8], r3
                stdw [r2-16], -1
                stdw [r2+96], -1
                exit";
    second_run_is_a_fresh_run(text, &short, &[0; 64]);
    second_run_is_a_fresh_run(text, &long, &[0x33; 150]);
    // The stores in a local function, given `data` and a bounded variable offset: their
    // reach from `data` is the callee's, joined over its calls.
    let text = "mov r6, r1
                ldxw r2, [r6+0]
                ldxdw r7, [r2+200]
                ldxb r8, [r2+0]
                and r8, 63
                mov r1, r2
                mov r2, r8
                call local put
                mov r1, r6
                ldxw r1, [r1+0]
                mov r2, 100
                call local put
                mov r0, r7
                exit
                put:
                add r1, r2
                stdw [r1+96], -1
                mov r0, 0
                exit";
    second_run_is_a_fresh_run(text, &short, &[0; 64]);
    second_run_is_a_fresh_run(text, &long, &[0x33; 150]);
    second_run_is_a_fresh_run(text, &vec![0xff; 400], &[0; 64]);
}

/// `Program::xdp_frame_fixed`: true for an XDP program that cannot move its frame, which then
/// runs through the slice entry as through a packet buffer of its own (what `bpfx replay`
/// relies on: the same verdict, frame bytes and redirect target, run after run on one
/// program); false once it calls an adjust helper, or for another context.
#[test]
fn a_program_that_cannot_move_its_frame_runs_on_a_slice_as_on_a_packet() {
    // Frames of 14 bytes or more: the first byte incremented, a redirect to ifindex 7
    // (XDP_REDIRECT); shorter ones: XDP_DROP.
    let fixed = "ldxw r2, [r1+0]
                 ldxw r3, [r1+4]
                 mov r4, r2
                 add r4, 14
                 jgt r4, r3, drop
                 ldxb r5, [r2+0]
                 add r5, 1
                 stxb [r2+0], r5
                 mov r1, 7
                 mov r2, 0
                 call 23
                 exit
                 drop:
                 mov r0, 1
                 exit";
    let adjusting = |helper: u32| format!("mov r2, 0\ncall {helper}\nmov r0, 2\nexit");
    let obj = Vm::new()
        .object(
            vec![
                ProgramDef::new("fixed", "xdp", code(fixed)),
                ProgramDef::new("head", "xdp", code(&adjusting(44))),
                ProgramDef::new("tail", "xdp", code(&adjusting(65))),
                ProgramDef::new("mem", "socket", code("mov r0, 0\nexit")),
            ],
            vec![],
        )
        .unwrap();
    let frames: Vec<Vec<u8>> = vec![vec![0x41; 64], vec![9; 3], vec![0xfe; 1500], vec![0; 14]];
    for (name, opts) in engines() {
        let load = |p: &str| {
            prepare(
                obj.program(p).unwrap().verify(Mode::Checked).unwrap(),
                opts.clone(),
            )
        };
        for p in ["head", "tail", "mem"] {
            assert!(!load(p).xdp_frame_fixed(), "{name}: {p}");
        }
        let mut slice = load("fixed");
        let mut packet = load("fixed");
        assert!(slice.xdp_frame_fixed(), "{name}");
        for f in frames.iter().chain(frames.iter().rev()) {
            let mut got = f.clone();
            let action = slice
                .run_xdp(&mut got)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut p = bpfx::Packet::new(f);
            let want = packet.run_xdp_packet(&mut p).unwrap();
            assert_eq!(action, want.action, "{name}");
            assert_eq!(got, p.frame(), "{name}");
            assert_eq!(slice.last_redirect(), want.redirect, "{name}");
        }
    }
}
