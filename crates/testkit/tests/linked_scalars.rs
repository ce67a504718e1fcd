//! Linked scalars with a constant delta (the kernel's `BPF_ADD_CONST`): after `r3 = r7; r3 +=
//! 2`, a comparison of r3 bounds r7 too, through copies, spills and 32-bit moves. Each safe
//! program has its input read proven (so the verified JIT drops the guard) and runs alike on
//! the interpreter and the verified JIT under every option set; each unsafe twin (an
//! off-by-one check, a check of another register, a check on one path only, the link broken by
//! a write, two deltas joined) keeps the guard, and on an input that takes it out of bounds
//! traps at that load on every engine.

mod common;

use bpfx_verifier::{Config, Mode, verify};
use common::{MEM, prog, run_with, traps_with};

fn config(mode: Mode) -> Config {
    Config {
        mode,
        mem_size: Some(MEM as u64),
        ..Config::default()
    }
}

/// `input` padded to [`MEM`] bytes.
fn padded(input: &[u8]) -> Vec<u8> {
    let mut mem = input.to_vec();
    mem.resize(MEM, 0);
    mem
}

/// Runs `text` on `input` (padded to [`MEM`] bytes) on every engine, verified in Checked mode;
/// asserts whether the bounded read is proven; returns the common result.
fn run(text: &str, input: &[u8], proven: bool) -> Result<u64, bpfx_exec::Trap> {
    run_with(text, &padded(input), proven, None)
}

fn trap_at_read(text: &str, input: &[u8]) {
    traps_with(text, &padded(input), None);
}

/// r7 = the first input byte pair (`[0, 65535]`); `r3 = r7 + 2` checked against 16 proves
/// `[r1 + r7, + 2)` inside the 16 bytes.
const SAFE: &str = "
    ldxh r7, [r1+0]
    mov r3, r7
    add r3, 2
    jgt r3, 16, out
    mov r6, r1
    add r6, r7
    ldxh r0, [r6+0]
    exit
out:
    mov r0, 0
    exit";

#[test]
fn a_check_of_a_copy_plus_a_constant_bounds_the_original() {
    // r7 = 14: the last two bytes.
    let mut input = vec![14, 0];
    input.resize(MEM, 0);
    input[14] = 0xcd;
    input[15] = 0xab;
    assert_eq!(run(SAFE, &input, true), Ok(0xabcd));
    assert_eq!(run(SAFE, &[15, 0], true), Ok(0));
    assert!(verify(prog(SAFE), &config(Mode::Strict)).is_ok());
}

#[test]
fn the_link_goes_through_spills_subtractions_and_32_bit_moves() {
    for text in [
        // Checked through a spill and fill of the copy.
        "ldxh r7, [r1+0]
         mov r3, r7
         add r3, 3
         stxdw [r10-8], r3
         ldxdw r5, [r10-8]
         jgt r5, 17, out
         mov r6, r1
         add r6, r7
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
        // A chain of constants, a subtraction among them.
        "ldxh r7, [r1+0]
         mov r3, r7
         add r3, 5
         sub r3, 1
         add r3, -2
         jgt r3, 16, out
         mov r6, r1
         add r6, r7
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
        // The original moved, the copy checked: r7 + 2 = r3, so r7 <= 14.
        "ldxh r4, [r1+0]
         mov r7, r4
         add r4, 2
         jgt r4, 16, out
         mov r6, r1
         add r6, r7
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
        // A 32-bit copy of a value that fits in 32 bits is the value.
        "ldxh r7, [r1+0]
         mov32 r3, r7
         add r3, 2
         jgt r3, 16, out
         mov r6, r1
         add r6, r7
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
        // The check on the original bounds the copy (r3 = r7 - 1 read at r3 + 1).
        "ldxh r7, [r1+0]
         mov r3, r7
         sub r3, 1
         jgt r7, 14, out
         jlt r7, 1, out
         mov r6, r1
         add r6, r3
         add r6, 1
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
    ] {
        let mut input = vec![13, 0];
        input.resize(MEM, 7);
        assert_eq!(run(text, &input, true), Ok(0x0707), "{text}");
        assert!(
            verify(prog(text), &config(Mode::Strict)).is_ok(),
            "Strict: {text}"
        );
    }
}

#[test]
fn a_wrapped_copy_proves_nothing_below_zero() {
    // r7 any 64-bit value: r3 = r7 + 2 <= 16 also holds for r7 = -2 and -1, so r7 is only
    // known to lie in [-2, 14]: the read stays guarded, and r7 = -1 traps there.
    let text = "
        ldxdw r7, [r1+0]
        mov r3, r7
        add r3, 2
        jgt r3, 16, out
        mov r6, r1
        add r6, r7
        ldxh r0, [r6+0]
        exit
    out:
        mov r0, 0
        exit";
    trap_at_read(text, &u64::MAX.to_le_bytes());
    assert_eq!(run(text, &[14], false), Ok(0));
}

#[test]
fn unsafe_twins_keep_their_guard_and_trap_alike() {
    // Off by one: r3 <= 17 leaves r7 = 15, whose 2-byte read ends past the 16 bytes.
    trap_at_read(&SAFE.replace("jgt r3, 16", "jgt r3, 17"), &[15, 0]);
    // The check is of another register (a copy of a different value).
    trap_at_read(
        "ldxh r7, [r1+0]
         ldxh r5, [r1+2]
         mov r3, r5
         add r3, 2
         jgt r3, 16, out
         mov r6, r1
         add r6, r7
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
        &[200, 0, 3, 0],
    );
    // Checked on one path only: byte 2 chooses.
    trap_at_read(
        "ldxh r7, [r1+0]
         mov r3, r7
         add r3, 2
         ldxb r4, [r1+2]
         jeq r4, 0, skip
         jgt r3, 16, out
    skip:
         mov r6, r1
         add r6, r7
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
        &[40, 0, 0],
    );
    // The link broken by a write to the original after the copy.
    trap_at_read(
        "ldxh r7, [r1+0]
         mov r3, r7
         add r3, 2
         ldxh r7, [r1+2]
         jgt r3, 16, out
         mov r6, r1
         add r6, r7
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
        &[0, 0, 100, 0],
    );
    // ... or to the copy (not by a constant) before the check.
    trap_at_read(
        "ldxh r7, [r1+0]
         mov r3, r7
         add r3, 2
         rsh r3, 1
         jgt r3, 16, out
         mov r6, r1
         add r6, r7
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
        &[20, 0],
    );
    // Two deltas joined (r3 = r7 + 2 on one path, r7 + 1 on the other): no link is left,
    // and on the second path r7 = 15 passes the check.
    trap_at_read(
        "ldxh r7, [r1+0]
         ldxb r4, [r1+2]
         mov r3, r7
         jeq r4, 0, one
         add r3, 2
         ja check
    one:
         add r3, 1
    check:
         jgt r3, 16, out
         mov r6, r1
         add r6, r7
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
        &[15, 0, 0],
    );
    // A spill of the copy overwritten before its fill is checked.
    trap_at_read(
        "ldxh r7, [r1+0]
         mov r3, r7
         add r3, 2
         stxdw [r10-8], r3
         ldxh r5, [r1+2]
         stxdw [r10-8], r5
         ldxdw r5, [r10-8]
         jgt r5, 16, out
         mov r6, r1
         add r6, r7
         ldxh r0, [r6+0]
         exit
    out:
         mov r0, 0
         exit",
        &[30, 0, 1, 0],
    );
}
