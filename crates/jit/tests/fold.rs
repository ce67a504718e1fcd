//! Differential tests of the driver's folds (`analysis/fold.rs`): address computations folded
//! into `[base + index + disp]` operands, chains turned into one `lea`, dead moves skipped and
//! `jcc +1; ja` pairs fused. Seeded random programs built from the shapes compilers emit go
//! through the test kit's `check()`: the interpreter and the JIT under every option set of the
//! engine matrix must agree on result, trap, memory and budget left.

use bpfx_bytecode::{Program, assemble};
use bpfx_exec::Helpers;
use bpfx_jit::{JitOptions, compile_unverified};
use bpfx_testkit::generator::Rng;
use bpfx_testkit::{Case, check};

const INPUT: usize = 64;

/// One program: r1 is the input, r2 its length; r6 keeps a copy of the input pointer.
fn program(rng: &mut Rng) -> String {
    let mut t = String::from("mov r6, r1\nmov r0, 0\nmov r9, 0\n");
    let mut label = 0;
    let regs = ["r0", "r3", "r4", "r5", "r7", "r8"];
    let sizes = ["b", "h", "w", "dw"];
    for _ in 0..rng.below(12) + 4 {
        let x = rng.pick(&regs);
        let y = rng.pick(&regs);
        let z = rng.pick(&["r3", "r4", "r5", "r7"]);
        let size = rng.pick(&sizes);
        // Mostly in bounds, sometimes past either end.
        let off = rng.pick(&[0i64, 1, 7, 8, 15, 56, -1, 63, 64]);
        match rng.below(13) {
            // mov; add reg; load through it (the index register is a small value).
            0 => t.push_str(&format!(
                "mov {z}, {}\nmov {x}, r6\nadd {x}, {z}\nldx{size} {y}, [{x}{off:+}]\n",
                rng.below(40)
            )),
            // The same with a store, and the address register read afterwards.
            1 => t.push_str(&format!(
                "mov {z}, {}\nmov {x}, r6\nadd {x}, {z}\nstx{size} [{x}{off:+}], {y}\n{}",
                rng.below(40),
                if rng.below(2) == 0 {
                    format!("add r0, {x}\n")
                } else {
                    String::new()
                }
            )),
            // An address on the stack, built from r10.
            2 => t.push_str(&format!(
                "mov {x}, r10\nadd {x}, -{}\nst{size} [{x}+0], {}\nldx{size} {y}, [{x}+0]\nadd r0, {y}\n",
                rng.pick(&[8, 16, 64, 512, 513, 0]),
                rng.below(1000)
            )),
            // add imm chain, two uses, and an add of the register itself.
            3 => t.push_str(&format!(
                "mov {x}, r6\nadd {x}, {}\nldx{size} {y}, [{x}+0]\nadd {x}, {}\nldxb {z}, [{x}{off:+}]\nadd r0, {z}\n",
                rng.below(20),
                rng.below(20)
            )),
            // The base register of a pending address changes before its use.
            4 => t.push_str(&format!(
                "mov {x}, r6\nadd {x}, 4\nadd r6, 8\nldx{size} {y}, [{x}+0]\nadd r0, {y}\nadd r6, -8\n"
            )),
            // Loops with a `jcc +1; ja back` tail (fixed registers: the counter must not be
            // overwritten, or the loop might not end).
            5 => {
                label += 1;
                t.push_str(&format!(
                    "mov r9, {}\nmov r7, 0\nl{label}:\nmov r5, r6\nadd r5, r7\nldxb r3, [r5+0]\nadd r0, r3\nadd r7, 1\njge r7, r9, +1\nja l{label}\n",
                    rng.below(70) + 1
                ));
            }
            // Forward skips, some of them fused.
            6 => {
                label += 1;
                t.push_str(&format!(
                    "jgt r0, {}, +1\nja s{label}\nadd r0, 3\ns{label}:\n",
                    rng.below(500)
                ));
            }
            7 => t.push_str(&format!(
                "mov {x}, {}\nmul {x}, {}\nadd r0, {x}\n",
                rng.below(1000),
                rng.below(7)
            )),
            // A helper call clobbers r1–r5 in the middle of a fold.
            8 => t.push_str(&format!(
                "mov {x}, r6\nadd {x}, 8\nmov r1, 1\ncall 5\nldx{size} {y}, [{x}+0]\nadd r0, {y}\n"
            )),
            // A local call between an address and its use.
            9 => t.push_str(&format!(
                "mov r7, r6\nadd r7, 2\ncall local leaf\nldx{size} {y}, [r7{off:+}]\nadd r0, {y}\n"
            )),
            // A callee that writes callee-saved registers and calls a helper: r6–r9 must come
            // back unchanged, and the helper needs the aligned stack.
            10 => t.push_str(&format!(
                "mov r8, 5\nmov r7, {}\ncall local writer\nadd r0, r7\nadd r0, r8\nadd r0, r9\nldxb {y}, [r6{off:+}]\nadd r0, {y}\n",
                rng.below(9)
            )),
            // An address kept pending past a branch into a fall-through only it enters, the
            // taken path reading the register or not.
            11 => {
                label += 1;
                t.push_str(&format!(
                    "mov {z}, {}\nmov {x}, r6\nadd {x}, {z}\nldxb {y}, [{x}+0]\njgt {y}, {}, b{label}\nldx{size} {y}, [{x}{off:+}]\n{}add r0, {y}\nb{label}:\n{}",
                    rng.below(40),
                    rng.below(256),
                    // Overwritten on the fall-through: dead there, maybe live when taken.
                    if rng.below(2) == 0 { format!("mov {x}, 7\n") } else { String::new() },
                    if rng.below(2) == 0 { format!("add r0, {x}\n") } else { String::new() }
                ));
            }
            _ => t.push_str(&format!(
                "mov {x}, r6\nadd {x}, {}\nadd {x}, r9\nmov {y}, {x}\nsub {y}, r6\nadd r0, {y}\n",
                rng.below(30)
            )),
        }
    }
    if rng.below(2) == 0 {
        t.push_str("add r0, r3\nadd r0, r4\nadd r0, r5\nadd r0, r7\nadd r0, r8\n");
    }
    t.push_str("exit\nleaf:\nmov r0, r1\nmov r4, r10\nadd r4, -8\nstxdw [r4+0], r0\nexit\n");
    t.push_str(
        "writer:\nmov r6, 1\nmov r8, 2\nmov r1, 3\ncall 5\ncall local leaf\nmov r9, r0\nexit\n",
    );
    t
}

/// `prog` on every engine of the matrix, with `input` and `budget`; panics with the report of
/// the first engine that disagrees with the interpreter.
fn agree(prog: &Program, input: &[u8], budget: Option<u64>, text: &str) {
    let case = Case {
        prog: prog.clone(),
        input: input.to_vec(),
        budget,
        helpers: Helpers::conformance(),
    };
    if let Err(m) = check(&case) {
        panic!("{m}\n{text}");
    }
}

#[test]
fn folded_programs_agree_with_the_interpreter() {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut folded = 0;
    const PROGRAMS: usize = 600;
    for _ in 0..PROGRAMS {
        let text = program(&mut rng);
        let insns = assemble(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let prog = Program::decode(insns).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let input: Vec<u8> = (0..INPUT).map(|_| rng.byte()).collect();
        // Without a budget, and with one (the charge changes the blocks the folds live in).
        let budget = rng.pick(&[Some(3), Some(40), Some(10_000)]);
        for budget in [None, budget] {
            agree(&prog, &input, budget, &text);
        }
        let jit = compile_unverified(&prog, &JitOptions::default()).expect("compiles");
        if jit.listing().contains("+r") || jit.listing().contains("lea ") {
            folded += 1;
        }
    }
    // The shapes above are there to be folded: most programs must show a fold.
    assert!(
        folded > PROGRAMS / 2,
        "only {folded} of {PROGRAMS} programs folded anything"
    );
}

/// Unsigned division and modulo by constants (shifts, masks, reciprocal multiplication) at
/// both widths, into r0 and r3 (rax and rdx, which the 64-bit forms park) and another
/// register, on dividends read from the input, on every engine.
#[test]
fn division_by_constants_agrees_with_the_interpreter() {
    let divisors = [
        1,
        2,
        3,
        7,
        10,
        16,
        641,
        1000,
        0x4000_0000,
        i32::MAX,
        i32::MIN,
        -1,
        -2,
        -3,
        -10,
        -0x4000_0000,
    ];
    let mut rng = Rng::new(0x51ed_270b_a1f2_c3d4);
    for v in divisors {
        for op in ["div", "mod", "div32", "mod32"] {
            for dst in ["r0", "r3", "r7"] {
                let text = format!(
                    "mov r3, 77\nmov r0, 99\nldxdw {dst}, [r1+0]\n{op} {dst}, {v}\n\
                     ldxdw r4, [r1+8]\n{op} r4, {v}\nadd {dst}, r4\nadd r0, r3\nadd r0, r7\nexit"
                );
                let prog = Program::decode(assemble(&text).expect("assembles")).expect("decodes");
                for i in 0..6 {
                    let mut input: Vec<u8> = (0..16).map(|_| rng.byte()).collect();
                    if i == 0 {
                        input[..8].copy_from_slice(&u64::MAX.to_le_bytes());
                    }
                    agree(&prog, &input, None, &text);
                }
            }
        }
    }
}
