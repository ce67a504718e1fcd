//! Golden listings: the machine code of a few small programs, as iced-x86 decodes it,
//! interleaved with the eBPF source. A change in code generation shows up here as a diff.

use bpfx_bytecode::{Program, assemble};
use bpfx_jit::{JitOptions, compile_unverified};

fn listing(text: &str, opts: &JitOptions) -> String {
    let prog = Program::decode(assemble(text).expect("assembles")).expect("decodes");
    compile_unverified(&prog, opts).expect("compiles").listing()
}

#[test]
fn alu() {
    let text = "
        mov r0, 0
        mov32 r1, -1
        add r0, 100
        mul r0, r2
        lsh r0, r3
        div r0, 3
        xor32 r0, r1
        be16 r0
        exit";
    insta::assert_snapshot!(listing(text, &JitOptions::default()));
}

/// Division and shifts by a register borrow rax, rdx and rcx: here r0, r3 and r4 are live
/// after them, so each is parked in a scratch register and restored (in `alu` they are dead
/// or the destination, and nothing is parked).
#[test]
fn alu_keeps_live_registers() {
    let text = "
        mov r4, 7
        lsh r2, r3
        div r2, r3
        mod r3, 10
        div r1, r4
        add r0, r4
        add r0, r3
        add r0, r2
        add r0, r1
        exit";
    insta::assert_snapshot!(listing(text, &JitOptions::default()));
}

/// A branch over a few short instructions takes the 2-byte rel8 form; one over a division
/// (no bound on its code is kept) stays rel32.
#[test]
fn short_forward_branch() {
    let text = "
        mov r0, r2
        jgt r2, 10, +3
        add r0, r2
        lsh r0, 2
        xor r0, 7
        jeq r0, 0, +1
        div r0, r2
        exit";
    insta::assert_snapshot!(listing(text, &JitOptions::default()));
}

#[test]
fn guarded_load() {
    let text = "
        ldxw r0, [r1+4]
        stxdw [r10-8], r0
        ldxdw r0, [r10-8]
        exit";
    insta::assert_snapshot!(listing(text, &JitOptions::default()));
}

#[test]
fn loop_with_budget() {
    let text = "
        mov r0, 0
        mov r2, 10
    again:
        add r0, r2
        sub r2, 1
        jne r2, 0, again
        exit";
    insta::assert_snapshot!(listing(
        text,
        &JitOptions {
            budget: true,
            ..JitOptions::default()
        }
    ));
}

#[test]
fn helper_and_local_call() {
    let text = "
        mov r1, 7
        call 5
        call local f
        exit
    f:
        mov r0, r10
        exit";
    insta::assert_snapshot!(listing(text, &JitOptions::default()));
}

#[test]
fn versioned_loop() {
    // `for (i = 0; i < len; i += 2) sum += p[i] << 8 | p[i + 1]`: one check of the words the
    // loop reads before it starts, then a copy of the loop without guards.
    let text = "
        mov r0, 0
        mov r3, 0
    head:
        mov r4, r1
        add r4, r3
        ldxb r5, [r4+0]
        ldxb r6, [r4+1]
        lsh r5, 8
        or r5, r6
        add r0, r5
        add r3, 2
        jlt r3, r2, head
        exit";
    // Opted out of the default budget, whose charge turns versioning off.
    let opts = JitOptions {
        unbounded: true,
        ..JitOptions::default()
    };
    insta::assert_snapshot!(listing(text, &opts));
}

#[test]
fn branches_over_a_move_become_conditional_moves() {
    // A binary search step: `if (key < want) lo = mid + 1; else hi = mid;` as clang writes it.
    let text = "
        ldxw r9, [r1+0]
        mov r0, r3
        jlt32 r9, r6, +1
        mov r7, r0
        add r0, 1
        jlt32 r9, r6, done
        mov r0, r8
        ja done
    done:
        add r0, r7
        exit";
    insta::assert_snapshot!(listing(text, &JitOptions::default()));
}

/// A write to r10 is never compiled: it becomes the `Unsupported` trap at its pc (here dead
/// code, as the kernel allows), so no code under it touches rbp.
#[test]
fn a_write_to_r10_is_compiled_as_a_trap() {
    let text = "
        mov r0, 1
        jeq r0, 1, +2
        mov r10, 0
        add r10, 8
        exit";
    let out = listing(text, &JitOptions::default());
    for line in ["mov r10, 0", "add r10, 8"] {
        let at = out
            .find(line)
            .unwrap_or_else(|| panic!("{line} listed\n{out}"));
        let body: String = out[at + line.len()..]
            .lines()
            .skip(1)
            // Code lines: two spaces and a six-digit hex offset (source lines are `  N: op`).
            .take_while(|l| {
                l.get(2..8)
                    .is_some_and(|o| o.chars().all(|c| c.is_ascii_hexdigit()))
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!body.is_empty(), "{line} has code\n{out}");
        assert!(
            !body.contains("rbp") && !body.contains("ebp"),
            "{line}:\n{body}\n{out}"
        );
    }
}
