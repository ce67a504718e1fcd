//! Reads bounded by the program's own checks against the input length in r2, proven in
//! `Checked` mode for every input length of at least `mem_size` (`docs/verifier.md`,
//! "Relations to the input length"): the verified JIT drops their guards. Every program runs
//! alike on the interpreter and the verified JIT under every option set, at several input
//! lengths; each unsafe twin (an off-by-one check, a check against a register that is not the
//! length, a check lost on one path, the link broken by a write, a 32-bit or signed compare
//! where the values may not be ordered as integers, a sum that wraps) keeps its guard and
//! traps at that read on every engine.

mod common;

use common::{MEM, run, traps};
/// The input lengths every program runs at.
const LENS: [usize; 4] = [MEM, MEM + 1, MEM + 5, MEM + 40];

/// An input of `n` bytes whose first eight hold `head` (little-endian), the rest a pattern.
fn input(n: usize, head: u64) -> Vec<u8> {
    let mut v: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(29) ^ 0x5a).collect();
    v[..8].copy_from_slice(&head.to_le_bytes());
    v
}

fn word(input: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(input[at..at + 4].try_into().unwrap()))
}

/// `off` is the 16-bit number at 0; `off + 4 <= len` is checked on a copy moved by 4, then
/// the 4 bytes at `off` are read.
const CHECK_THEN_READ: &str = "
    mov r0, 0
    ldxh r7, [r1+0]
    mov r3, r7
    add r3, 4
    jgt r3, r2, out
    mov r6, r1
    add r6, r7
    ldxw r0, [r6+0]
out:
    exit";

#[test]
fn a_check_against_the_length_proves_the_read_for_every_length() {
    for n in LENS {
        // The last word, one past it (the check fails), and one in the middle.
        for (off, ok) in [(n - 4, true), (n - 3, false), (n / 2, true)] {
            let i = input(n, off as u64);
            let want = if ok { word(&i, off) } else { 0 };
            assert_eq!(run(CHECK_THEN_READ, &i, true), Ok(want), "{n} bytes, {off}");
        }
    }
    // The same through a spill and fill of the length's copy, with its delta moved there.
    let spilled = CHECK_THEN_READ.replace(
        "    jgt r3, r2, out\n",
        "    mov r5, r2\n    sub r5, 4\n    stxdw [r10-8], r5\n    ldxdw r4, [r10-8]\n    jgt r7, r4, out\n",
    );
    for n in LENS {
        let i = input(n, (n - 4) as u64);
        assert_eq!(run(&spilled, &i, true), Ok(word(&i, n - 4)), "{n} bytes");
    }
    // A 32-bit compare once both sides fit in 32 bits.
    let narrow = CHECK_THEN_READ.replace(
        "    jgt r3, r2, out\n",
        "    jgt r2, 0xffff, out\n    jgt32 r3, r2, out\n",
    );
    // A signed compare of values known non-negative (a 16-bit load moved by 4).
    let signed = CHECK_THEN_READ.replace("jgt r3, r2", "jsgt r3, r2");
    for text in [&narrow, &signed] {
        for n in LENS {
            let i = input(n, (n - 4) as u64);
            assert_eq!(run(text, &i, true), Ok(word(&i, n - 4)), "{n} bytes");
        }
    }
}

#[test]
fn unsafe_twins_of_the_length_check_keep_their_guard_and_trap_alike() {
    for n in LENS {
        let last = input(n, (n - 3) as u64);
        // Off by one: `off + 3 <= len` lets the 4-byte read end one past the input.
        traps(&CHECK_THEN_READ.replace("add r3, 4", "add r3, 3"), &last);
        // Against `len + 1`, a copy of the length moved by one.
        traps(
            &CHECK_THEN_READ.replace(
                "    jgt r3, r2, out\n",
                "    mov r5, r2\n    add r5, 1\n    jgt r3, r5, out\n",
            ),
            &last,
        );
        // Against a register that is not the length: an input byte (0xff here).
        let mut i = input(n, (n - 2) as u64);
        i[2] = 0xff;
        i[3] = 0;
        traps(
            &CHECK_THEN_READ.replace(
                "    jgt r3, r2, out\n",
                "    ldxb r5, [r1+2]\n    add r5, 0x100\n    jgt r3, r5, out\n",
            ),
            &i,
        );
        // The check lost on one path before the join: byte 2 odd skips it.
        let mut i = input(n, (n - 2) as u64);
        i[2] = 1;
        traps(
            &CHECK_THEN_READ.replace(
                "    jgt r3, r2, out\n",
                "    ldxb r5, [r1+2]\n    jset r5, 1, skip\n    jgt r3, r2, out\nskip:\n",
            ),
            &i,
        );
        // The link broken by a write after the check: the offset doubled.
        let half = input(n, (n / 2) as u64);
        traps(
            &CHECK_THEN_READ.replace("    mov r6, r1\n", "    lsh r7, 1\n    mov r6, r1\n"),
            &half,
        );
        // ... or before it: the copy checked is the offset halved, not moved by a constant.
        let far = input(n, (n + 8) as u64);
        traps(
            &CHECK_THEN_READ.replace("add r3, 4", "rsh r3, 1\n    add r3, 4"),
            &far,
        );
        // A 32-bit compare where the length may not fit in 32 bits: the read stays guarded
        // (no input here exceeds 4 GiB, so the runs agree and do not trap).
        let i = input(n, (n - 4) as u64);
        assert_eq!(
            run(
                &CHECK_THEN_READ.replace("jgt r3, r2", "jgt32 r3, r2"),
                &i,
                false
            ),
            Ok(word(&i, n - 4))
        );
        // A signed compare of an offset that may be negative: -1 passes `-1 + 4 <= len`.
        let signed = CHECK_THEN_READ
            .replace("ldxh r7, [r1+0]", "ldxdw r7, [r1+0]")
            .replace("jgt r3, r2", "jsgt r3, r2");
        traps(&signed, &input(n, u64::MAX));
        // Wrap-around of `off + 4`: off = 2^64 - 3 makes it 1, which passes the check.
        let wraps = CHECK_THEN_READ.replace("ldxh r7, [r1+0]", "ldxdw r7, [r1+0]");
        traps(&wraps, &input(n, 3u64.wrapping_neg()));
        // Wrap-around of `len - 0x20000` (below 0 for these lengths): any offset passes.
        traps(
            &CHECK_THEN_READ.replace(
                "    jgt r3, r2, out\n",
                "    mov r5, r2\n    sub r5, 0x20000\n    jgt r3, r5, out\n",
            ),
            &input(n, (n + 100) as u64),
        );
    }
}

/// `off` (16-bit, at 0) checked against the length, then `rec` (16-bit, at 2) checked
/// against `len - off`, then `rec >= 8`: the 8 bytes at `mem + off` are in bounds
/// (`off + rec <= len`), which no range alone says (the relation `rec + off <= len` carried
/// by `rec`, with `off`'s lower bound on `rec` moving to `off`).
const RECORD: &str = "
    mov r0, 0
    ldxh r7, [r1+0]
    ldxh r9, [r1+2]
    jgt r7, r2, out
    mov r4, r2
    sub r4, r7
    jlt r4, r9, out
    jlt r9, 8, out
    mov r6, r1
    add r6, r7
    ldxdw r0, [r6+0]
out:
    exit";

fn record(n: usize, off: usize, rec: usize) -> Vec<u8> {
    input(n, (off as u64) | ((rec as u64) << 16))
}

fn dword(input: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(input[at..at + 8].try_into().unwrap())
}

#[test]
fn a_record_bounded_by_the_length_minus_its_offset_is_proven() {
    for n in LENS {
        for (off, rec) in [(n - 8, 8), (n - 9, 9), (8, n - 8), (4, 8)] {
            let i = record(n, off, rec);
            assert_eq!(run(RECORD, &i, true), Ok(dword(&i, off)), "{n} {off} {rec}");
        }
        // `rec` past the end: the check refuses it.
        assert_eq!(run(RECORD, &record(n, n - 7, 8), true), Ok(0));
        // The pointer moved by the offset first and checked after (`p = mem + off`).
        let early = RECORD
            .replace("    mov r6, r1\n    add r6, r7\n", "")
            .replace(
                "    jgt r7, r2, out\n",
                "    jgt r7, r2, out\n    mov r6, r1\n    add r6, r7\n",
            );
        let i = record(n, n - 8, 8);
        assert_eq!(run(&early, &i, true), Ok(dword(&i, n - 8)), "{n}");
    }
}

#[test]
fn unsafe_twins_of_the_record_check_keep_their_guard_and_trap_alike() {
    for n in LENS {
        // Off by one: a record of 7 bytes passes `rec >= 7`.
        traps(
            &RECORD.replace("jlt r9, 8", "jlt r9, 7"),
            &record(n, n - 7, 7),
        );
        // No check of the offset: `len - off` wraps for off > len, and any rec passes.
        traps(
            &RECORD.replace("    jgt r7, r2, out\n", ""),
            &record(n, n + 10, 8),
        );
        // The record checked against the length, not the length minus the offset.
        traps(
            &RECORD.replace("jlt r4, r9", "jlt r2, r9"),
            &record(n, n - 4, 8),
        );
        // The offset rewritten after the check.
        traps(
            &RECORD.replace("    mov r6, r1\n", "    add r7, 4\n    mov r6, r1\n"),
            &record(n, n - 8, 8),
        );
        // A signed compare of the record with `len - off`: a record read as 64 bits may be
        // negative, is then below `len - off` as a signed number, and passes `rec >= 8` as
        // an unsigned one.
        let signed = RECORD
            .replace("ldxh r9, [r1+2]", "ldxdw r9, [r1+2]")
            .replace("jlt r4, r9", "jslt r4, r9");
        let mut i = input(n, (n - 4) as u64);
        i[2..10].copy_from_slice(&16u64.wrapping_neg().to_le_bytes());
        traps(&signed, &i);
    }
}
