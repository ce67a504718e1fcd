//! Relations to the input length across local calls (`docs/verifier.md`, "Relations to the
//! input length", "Local calls"): a caller's checked record (`rec = len - off`, `p = mem +
//! off`) passed to a function per layer, a callee's status and header length returned with
//! what its path checked, and the next layer's read proven from them in `Checked` mode for
//! every input length. Every program runs alike on the interpreter and the verified JIT under
//! every option set, at several input lengths; each unsafe twin (a callee called from a
//! second site that did not check, a check of the wrong register, the pointer moved by a
//! write in the callee before the read, a returned length its path did not check, a
//! recursion whose length moves less than its pointer) keeps its guard and traps at that read
//! on every engine.

mod common;

use common::{MEM, run, traps};

/// The input lengths every program runs at.
const LENS: [usize; 4] = [MEM, MEM + 1, MEM + 5, MEM + 40];

/// An input of `n` bytes: the record's offset at 0, `sel` at 1, `fill` everywhere else.
fn input(n: usize, off: usize, sel: u8, fill: u8) -> Vec<u8> {
    let mut v = vec![fill; n];
    v[0] = off as u8;
    v[1] = sel;
    v
}

/// The record at `off` runs to the end of the input (`rec = len - off`, after `off <= len`).
/// `hdr(p, rec)` returns 1 when the record is too short for its header, else the header's
/// length: 4, or 8 when byte 2 is 0x81 (a tagged header), each on the path that checked
/// `rec` against it. The caller moves `p` and `rec` by it and calls `body(p, rec)`, which
/// reads a 16-bit field once it has checked `rec >= 2`.
const LAYERS: &str = "
    mov r0, 0
    ldxb r7, [r1+0]
    jgt r7, r2, out
    mov r9, r2
    sub r9, r7
    mov r8, r1
    add r8, r7
    mov r1, r8
    mov r2, r9
    call local hdr
    jle r0, 1, out
    add r8, r0
    sub r9, r0
    mov r1, r8
    mov r2, r9
    mov r3, 64
    call local body
out:
    exit
hdr:
    mov r0, 1
    jlt r2, 4, hret
    mov r0, 4
    ldxb r3, [r1+2]
    jne r3, 0x81, hret
    mov r0, 1
    jlt r2, 8, hret
    mov r0, 8
hret:
    exit
body:
    mov r0, 0
    jlt r2, 2, bret
    mov r6, r1
    ldxh r0, [r6+0]
bret:
    exit";

/// What [`LAYERS`] returns on `i`.
fn layers(i: &[u8]) -> u64 {
    let (n, off) = (i.len(), usize::from(i[0]));
    if off > n {
        return 0;
    }
    let rec = n - off;
    if rec < 4 {
        return 1;
    }
    let hl = if i[off + 2] == 0x81 {
        if rec < 8 {
            return 1;
        }
        8
    } else {
        4
    };
    if rec - hl < 2 {
        return 0;
    }
    u64::from(u16::from_le_bytes([i[off + hl], i[off + hl + 1]]))
}

/// Offsets at and around the end of an input of `n` bytes.
fn offsets(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = [
        0,
        2,
        n - 10,
        n - 8,
        n - 7,
        n - 6,
        n - 5,
        n - 4,
        n - 3,
        n - 1,
        n,
    ]
    .into_iter()
    .filter(|&o| o >= 2 && o <= n)
    .collect();
    v.push(n + 1);
    v
}

#[test]
fn a_callees_length_and_status_carry_the_callers_check_into_the_next_layer() {
    for n in LENS {
        for off in offsets(n) {
            for fill in [0x81, 0x11] {
                let i = input(n, off, 0, fill);
                assert_eq!(run(LAYERS, &i, true), Ok(layers(&i)), "{n} bytes, {off}");
            }
        }
    }
}

#[test]
fn a_callee_called_from_a_site_that_did_not_check_keeps_its_guard() {
    // A short record goes to `body` directly with a length no check bounds.
    let text = LAYERS.replace(
        "    jle r0, 1, out\n",
        "    jgt r0, 1, layered\n    mov r1, r8\n    mov r2, 64\n    call local body\n    exit\nlayered:\n",
    );
    for n in LENS {
        for off in offsets(n).into_iter().filter(|&o| o + 4 <= n) {
            let i = input(n, off, 0, 0x11);
            assert_eq!(run(&text, &i, false), Ok(layers(&i)), "{n} bytes, {off}");
        }
        // One byte left: the unchecked site reads two.
        traps(&text, &input(n, n - 1, 0, 0x11));
    }
}

#[test]
fn a_check_of_the_wrong_register_in_the_callee_keeps_its_guard() {
    let text = LAYERS.replace("jlt r2, 2, bret", "jlt r3, 2, bret");
    for n in LENS {
        // The header ends the record: nothing left for the field.
        traps(&text, &input(n, n - 4, 0, 0x11));
    }
}

#[test]
fn a_pointer_moved_in_the_callee_before_the_read_keeps_its_guard() {
    let text = LAYERS.replace(
        "body:\n    mov r0, 0\n",
        "body:\n    mov r0, 0\n    ldxb r5, [r1+0]\n    add r1, r5\n",
    );
    for n in LENS {
        // Two bytes left after the header, the pointer moved 0x11 past them.
        traps(&text, &input(n, n - 6, 0, 0x11));
    }
}

#[test]
fn a_returned_length_its_path_did_not_check_keeps_its_guard() {
    // The tagged header's length is returned after checking only `rec >= 4`.
    let text = LAYERS.replace("    mov r0, 1\n    jlt r2, 8, hret\n", "");
    for n in LENS {
        // Six bytes, a tagged header of eight: `rec - 8` wraps and passes `body`'s check.
        traps(&text, &input(n, n - 6, 0, 0x81));
    }
}

/// `walk(p, rec)` reads 16-bit fields while two bytes are left and the last one read is not
/// 0, calling itself on the rest: each level's read is proven from the caller's check.
const WALK: &str = "
    mov r0, 0
    ldxb r7, [r1+0]
    jgt r7, r2, out
    mov r9, r2
    sub r9, r7
    mov r8, r1
    add r8, r7
    mov r1, r8
    mov r2, r9
    call local walk
out:
    exit
walk:
    mov r0, 0
    jlt r2, 2, wret
    mov r6, r1
    ldxh r0, [r6+0]
    jeq r0, 0, wret
    add r1, 2
    sub r2, 2
    call local walk
wret:
    exit";

#[test]
fn a_recursive_walk_proves_each_levels_read() {
    for n in LENS {
        // Two or three fields to the end of the input, then fewer than two bytes.
        for off in [n - 5, n - 4, n - 1, n] {
            assert_eq!(
                run(WALK, &input(n, off, 0x11, 0x11), true),
                Ok(0),
                "{n}, {off}"
            );
        }
        // A zero field stops the walk early.
        assert_eq!(run(WALK, &input(n, 2, 0, 0), true), Ok(0), "{n}");
    }
    // Deeper than the frame limit (27 levels): the call traps alike on every engine.
    let n = MEM + 40;
    assert!(run(WALK, &input(n, 2, 0x11, 0x11), true).is_err());
}

#[test]
fn a_recursion_whose_length_moves_less_than_its_pointer_keeps_its_guard() {
    let text = WALK.replace("sub r2, 2", "sub r2, 1");
    for n in LENS {
        // Reads at n-5 and n-3, then at n-1 with three bytes "left".
        traps(&text, &input(n, n - 5, 0x11, 0x11));
    }
}
