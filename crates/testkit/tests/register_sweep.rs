//! Every register pair through every instruction form, on every engine.
//!
//! The JIT maps r0, r3 and r4 to rax, rdx and rcx, which `div`, `cmpxchg` and variable shifts
//! use implicitly; a lowering that juggles them wrongly shows up only for particular register
//! pairs. So each form runs with every (dst, src) pair (and, for memory, every base), under
//! several value profiles (including 0, -1 and MIN divisors and out-of-width shift counts), and
//! every register's final value is dumped into the input memory that `check()` compares.

use bpfx_bytecode::{
    AluOp, AtomicOp, ByteOrder, Cond, Imm64, Op, Operand, Program, Reg, Size, Width,
};
use bpfx_exec::Helpers;
use bpfx_testkit::{Case, check};

/// Registers an instruction may write (r10 is read-only).
const WRITABLE: [Reg; 10] = [
    Reg::R0,
    Reg::R1,
    Reg::R2,
    Reg::R3,
    Reg::R4,
    Reg::R5,
    Reg::R6,
    Reg::R7,
    Reg::R8,
    Reg::R9,
];

/// Input layout: registers r0..r9 dumped at 0..80, then the stack probe at 80, then the scratch
/// area that memory instructions work on at `AREA`.
const AREA: i16 = 96;
const INPUT_LEN: usize = 128;
/// Stack slot holding the input pointer, and the first of the register save slots.
const PTR_SLOT: i16 = -8;
const SAVE: i16 = -16;
/// A stack offset for r10-based accesses, clear of the save slots.
const STACK_PROBE: i16 = -200;

/// Register values, one profile per run. The second and third put 0, -1, MIN, small shift
/// counts and counts beyond the width in different registers.
fn profiles() -> Vec<[u64; 10]> {
    let special = [
        i64::MIN as u64,
        u64::MAX,
        0,
        1,
        7,
        0x8000_0000,
        0xffff_ffff,
        (-7i64) as u64,
        35,
        65,
    ];
    let mut rotated = special;
    rotated.rotate_left(3);
    let mut mixed = special;
    mixed.reverse();
    vec![
        [
            0x0123_4567_89ab_cdef,
            0xfedc_ba98_7654_3210,
            0x8000_0000_0000_0001,
            0x0000_0000_ffff_fffe,
            0x7fff_ffff_8000_0000,
            0x0000_0001_0000_0003,
            0xdead_beef_cafe_f00d,
            0x1111_2222_3333_4444,
            0x0f0f_0f0f_f0f0_f0f0,
            0x5555_aaaa_5555_aaaa,
        ],
        special,
        rotated,
        mixed,
    ]
}

fn lddw(dst: Reg, v: u64) -> Op {
    Op::LoadImm64 {
        dst,
        value: Imm64::Value(v),
    }
}

fn stx(base: Reg, off: i16, src: Reg) -> Op {
    Op::Store {
        size: Size::Dw,
        base,
        off,
        src: Operand::Reg(src),
    }
}

fn ldx(dst: Reg, base: Reg, off: i16) -> Op {
    Op::Load {
        size: Size::Dw,
        signed: false,
        dst,
        base,
        off,
    }
}

fn mov(dst: Reg, src: Operand) -> Op {
    Op::Alu {
        width: Width::W64,
        op: AluOp::Mov,
        dst,
        src,
    }
}

/// `body` between a prologue that gives every register a profile value (and `pointer`, if any,
/// the address of the scratch area) and an epilogue that dumps every register, and the stack
/// probe, into the input.
fn case(values: &[u64; 10], pointer: Option<Reg>, body: &[Op]) -> Case {
    let mut ops = vec![stx(Reg::R10, PTR_SLOT, Reg::R1)];
    for (r, v) in WRITABLE.iter().zip(values) {
        ops.push(lddw(*r, *v));
    }
    if let Some(p) = pointer {
        ops.push(ldx(p, Reg::R10, PTR_SLOT));
        ops.push(Op::Alu {
            width: Width::W64,
            op: AluOp::Add,
            dst: p,
            src: Operand::Imm(i32::from(AREA)),
        });
    }
    ops.extend_from_slice(body);
    for (i, r) in WRITABLE.iter().enumerate() {
        ops.push(stx(Reg::R10, SAVE - 8 * i as i16, *r));
    }
    ops.push(ldx(Reg::R1, Reg::R10, PTR_SLOT));
    for i in 0..10 {
        ops.push(ldx(Reg::R2, Reg::R10, SAVE - 8 * i as i16));
        ops.push(stx(Reg::R1, 8 * i as i16, Reg::R2));
    }
    ops.push(ldx(Reg::R2, Reg::R10, STACK_PROBE));
    ops.push(stx(Reg::R1, 80, Reg::R2));
    ops.push(mov(Reg::R0, Operand::Imm(0)));
    ops.push(Op::Exit);
    let input = (0..INPUT_LEN)
        .map(|i| (i as u8).wrapping_mul(37) ^ 0x5a)
        .collect();
    Case {
        prog: Program::from_ops(&ops).expect("sweep programs are valid"),
        input,
        budget: None,
        helpers: Helpers::conformance(),
    }
}

fn run_all(name: &str, cases: impl IntoIterator<Item = (String, Vec<Op>, Option<Reg>)>) {
    let mut count = 0;
    for (what, body, pointer) in cases {
        for values in profiles() {
            let c = case(&values, pointer, &body);
            if let Err(m) = check(&c) {
                panic!("{name}: {what} with values {values:x?}:\n{m}");
            }
            count += 1;
        }
    }
    assert!(count > 0, "{name}: no cases");
}

const WIDTHS: [Width; 2] = [Width::W32, Width::W64];
const IMMS: [i32; 8] = [0, 1, -1, 7, -7, 31, 63, i32::MIN];

#[test]
fn alu_every_register_pair() {
    let mut cases = Vec::new();
    for width in WIDTHS {
        for op in AluOp::ALL {
            for dst in WRITABLE {
                for src in Reg::ALL {
                    let body = vec![Op::Alu {
                        width,
                        op,
                        dst,
                        src: Operand::Reg(src),
                    }];
                    cases.push((format!("{}", body[0]), body, None));
                }
                for imm in IMMS {
                    let body = vec![Op::Alu {
                        width,
                        op,
                        dst,
                        src: Operand::Imm(imm),
                    }];
                    cases.push((format!("{}", body[0]), body, None));
                }
            }
        }
    }
    run_all("alu", cases);
}

#[test]
fn neg_movsx_endian_every_register() {
    let mut cases = Vec::new();
    for dst in WRITABLE {
        for width in WIDTHS {
            cases.push((format!("neg {dst}"), vec![Op::Neg { width, dst }], None));
        }
        for (width, from) in [
            (Width::W32, Size::B),
            (Width::W32, Size::H),
            (Width::W64, Size::B),
            (Width::W64, Size::H),
            (Width::W64, Size::W),
        ] {
            for src in Reg::ALL {
                let op = Op::Movsx {
                    width,
                    from,
                    dst,
                    src,
                };
                cases.push((op.to_string(), vec![op], None));
            }
        }
        for order in [ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap] {
            for bits in [16, 32, 64] {
                let op = Op::Endian { order, bits, dst };
                cases.push((op.to_string(), vec![op], None));
            }
        }
    }
    run_all("neg/movsx/endian", cases);
}

#[test]
fn branches_every_register_pair() {
    let mut cases = Vec::new();
    for width in WIDTHS {
        for cond in Cond::ALL {
            let rhs_all = Reg::ALL
                .iter()
                .map(|r| Operand::Reg(*r))
                .chain(IMMS.iter().map(|i| Operand::Imm(*i)));
            for rhs in rhs_all {
                for lhs in Reg::ALL {
                    // r9 = 1 when taken, 2 when not.
                    let body = vec![
                        Op::Branch {
                            width,
                            cond,
                            lhs,
                            rhs,
                            off: 2,
                        },
                        mov(Reg::R9, Operand::Imm(2)),
                        Op::Ja {
                            off: 1,
                            long: false,
                        },
                        mov(Reg::R9, Operand::Imm(1)),
                    ];
                    cases.push((body[0].to_string(), body, None));
                }
            }
        }
    }
    run_all("branch", cases);
}

#[test]
fn loads_and_stores_every_register_pair() {
    let mut cases = Vec::new();
    let sizes = [Size::B, Size::H, Size::W, Size::Dw];
    for base in Reg::ALL {
        // r10 points at the stack; any other base points at the scratch area.
        let (pointer, offs): (Option<Reg>, &[i16]) = if base == Reg::R10 {
            (None, &[STACK_PROBE, STACK_PROBE + 3])
        } else {
            (Some(base), &[0, 3, 9, -5])
        };
        for &off in offs {
            for size in sizes {
                for signed in [false, true] {
                    if signed && size == Size::Dw {
                        continue;
                    }
                    for dst in WRITABLE {
                        let op = Op::Load {
                            size,
                            signed,
                            dst,
                            base,
                            off,
                        };
                        cases.push((op.to_string(), vec![op], pointer));
                    }
                }
                let srcs = Reg::ALL
                    .iter()
                    .map(|r| Operand::Reg(*r))
                    .chain([Operand::Imm(-2), Operand::Imm(0x1234_5678)]);
                for src in srcs {
                    let op = Op::Store {
                        size,
                        base,
                        off,
                        src,
                    };
                    cases.push((op.to_string(), vec![op], pointer));
                }
            }
        }
    }
    run_all("load/store", cases);
}

#[test]
fn atomics_every_register_pair() {
    let mut cases = Vec::new();
    let forms = [
        (AtomicOp::Add, false),
        (AtomicOp::Or, false),
        (AtomicOp::And, false),
        (AtomicOp::Xor, false),
        (AtomicOp::Add, true),
        (AtomicOp::Or, true),
        (AtomicOp::And, true),
        (AtomicOp::Xor, true),
        (AtomicOp::Xchg, true),
        (AtomicOp::Cmpxchg, true),
    ];
    for width in WIDTHS {
        for (op, fetch) in forms {
            for base in Reg::ALL {
                let (pointer, off) = if base == Reg::R10 {
                    (None, STACK_PROBE)
                } else {
                    (Some(base), 8)
                };
                for src in Reg::ALL {
                    // Fetching forms write src (cmpxchg writes r0): r10 cannot be one.
                    if fetch && op != AtomicOp::Cmpxchg && src == Reg::R10 {
                        continue;
                    }
                    let atomic = Op::Atomic {
                        width,
                        op,
                        fetch,
                        base,
                        off,
                        src,
                    };
                    cases.push((atomic.to_string(), vec![atomic], pointer));
                    if op == AtomicOp::Cmpxchg && base != Reg::R0 {
                        // Make the compare succeed: r0 = the current memory value.
                        let load = Op::Load {
                            size: if width == Width::W64 {
                                Size::Dw
                            } else {
                                Size::W
                            },
                            signed: false,
                            dst: Reg::R0,
                            base,
                            off,
                        };
                        cases.push((format!("{load}; {atomic}"), vec![load, atomic], pointer));
                    }
                }
            }
        }
    }
    run_all("atomic", cases);
}
