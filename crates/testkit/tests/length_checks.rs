//! Loops bounded by the program's own length checks (`while (off + 2 <= len)`, the check at
//! the bottom of the loop as clang rotates it): the bound learnt from a comparison with a
//! constant is a cap that the loop head's widening keeps (`Scalar::cap`), so the read at the
//! top of the loop is proven and the verified JIT drops its guard (against the length in r2,
//! which Checked mode takes for any length of at least `mem_size`, the relation `off <= L - 2`
//! does: `len_symbol.rs`). Every program runs alike on the interpreter and
//! the verified JIT under every option set; each unsafe twin (an off-by-one check, a check of
//! another register, a check on one path only, the link broken by a write) keeps the guard and
//! traps at that read on every engine.

mod common;

use common::{MEM, run, traps as trap};

/// Walks the input: at each offset reads a 16-bit word (the bounded read) and steps by
/// `(byte at off) & 7) + 1`, while `off + 2 <= len`; returns the sum of the words.
const WALK: &str = "
    mov r0, 0
    mov r8, 0
    mov r7, 0
    jlt r2, 2, done
loop:
    mov r6, r1
    add r6, r7
    ldxh r0, [r6+0]
    add r8, r0
    ldxb r9, [r6+0]
    and r9, 7
    add r9, 1
    add r7, r9
    mov r3, r7
    add r3, 2
    jle r3, r2, loop
done:
    mov r0, r8
    exit";

fn walk_sum(input: &[u8]) -> u64 {
    let mut off = 0usize;
    let mut sum = 0u64;
    while off + 2 <= input.len() {
        sum += u64::from(u16::from_le_bytes([input[off], input[off + 1]]));
        off += (input[off] as usize & 7) + 1;
    }
    sum
}

#[test]
fn a_length_check_at_the_bottom_of_a_loop_bounds_the_read_at_its_top() {
    // Against the length in r2: Checked mode verifies for any input of at least `MEM` bytes,
    // so r2 is no constant, but the length as a symbol bounds the offset (`off <= L - 2`) and
    // proves the read for every length; runs on longer inputs agree too.
    for seed in 0..8u8 {
        let input: Vec<u8> = (0..MEM as u8 + 3 * seed)
            .map(|i| i.wrapping_mul(37).wrapping_add(seed))
            .collect();
        assert_eq!(run(WALK, &input, true), Ok(walk_sum(&input)), "{input:?}");
    }
    // The same check against a constant: the cap proves the read.
    let input = [1u8; MEM];
    assert_eq!(
        run(&WALK.replace("jle r3, r2", "jle r3, 16"), &input, true),
        Ok(walk_sum(&input))
    );
}

#[test]
fn unsafe_twins_of_the_length_check_keep_their_guard_and_trap_alike() {
    // At the verified length and longer ones: the proofs hold for every length.
    for n in [MEM, MEM + 1, MEM + 7] {
        // Steps of 1 (bytes 0, 8, ...): the walk reaches every offset.
        let ones = vec![0u8; n];
        // Off by one: `off + 1 <= len` lets off reach n - 1, whose 2-byte read ends past n.
        trap(&WALK.replace("add r3, 2", "add r3, 1"), &ones);
        // The check is of another register: a copy of the step, not of the offset.
        trap(&WALK.replace("mov r3, r7", "mov r3, r9"), &ones);
        // The link broken by a write: r3 is recomputed from r7 shifted, not r7 plus a
        // constant.
        trap(
            &WALK.replace("mov r3, r7\n    add r3, 2", "mov r3, r7\n    rsh r3, 1"),
            &ones,
        );
        // Checked on one path only: the second byte of the current word skips the check
        // when odd, and the loop goes on regardless.
        let one_path = WALK.replace(
            "    jle r3, r2, loop\n",
            "    ldxb r4, [r6+1]\n    jset r4, 1, loop\n    jle r3, r2, loop\n",
        );
        // Every byte 1: steps of 2, and every check skipped, so the walk reaches the end.
        trap(&one_path, &vec![1u8; n]);
    }
}
