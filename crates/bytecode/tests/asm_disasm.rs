//! Assembler and disassembler together: `asm → Op → disasm` is an identity on a program covering
//! every instruction form, every typed instruction reassembles to itself, and every conformance
//! program survives `assemble(disassemble(decode(bytes)))` byte for byte.

use bpfx_bytecode::{
    AluOp, AtomicOp, ByteOrder, CallTarget, Cond, Imm64, Insn, Op, Operand, Program, Reg, Size,
    Width, assemble, decode_one, disassemble, disassemble_with_pcs,
};
use std::path::PathBuf;

/// Every instruction form in the disassembler's own syntax: each ALU operation at both widths
/// with an immediate and a register, every condition likewise, every load and store size, every
/// atomic, every `lddw` form, the packet loads and every kind of call.
const EVERY_FORM: &str = "\
add r1, -1
add r1, r5
add32 r2, 7
add32 r2, r6
sub r3, 0
sub r3, r7
sub32 r4, 2147483647
sub32 r4, r8
mul r5, -2147483648
mul r5, r9
mul32 r6, 63
mul32 r6, r1
div r7, 1
div r7, r2
div32 r8, -100
div32 r8, r3
sdiv r9, -1
sdiv r9, r4
sdiv32 r1, 7
sdiv32 r1, r5
or r2, 0
or r2, r6
or32 r3, 2147483647
or32 r3, r7
and r4, -2147483648
and r4, r8
and32 r5, 63
and32 r5, r9
lsh r6, 1
lsh r6, r1
lsh32 r7, -100
lsh32 r7, r2
rsh r8, -1
rsh r8, r3
rsh32 r9, 7
rsh32 r9, r4
mod r1, 0
mod r1, r5
mod32 r2, 2147483647
mod32 r2, r6
smod r3, -2147483648
smod r3, r7
smod32 r4, 63
smod32 r4, r8
xor r5, 1
xor r5, r9
xor32 r6, -100
xor32 r6, r1
mov r7, -1
mov r7, r2
mov32 r8, 7
mov32 r8, r3
arsh r9, 0
arsh r9, r4
arsh32 r1, 2147483647
arsh32 r1, r5
neg r1
neg32 r2
movsx832 r3, r4
movsx864 r5, r6
movsx1632 r7, r8
movsx1664 r9, r0
movsx3264 r0, r10
le16 r1
le32 r2
le64 r4
be16 r1
be32 r2
be64 r4
bswap16 r1
bswap32 r2
bswap64 r4
ldxb r0, [r1+0]
ldxh r2, [r10-2]
ldxw r3, [r1+32767]
ldxdw r4, [r10-32768]
ldxsb r5, [r1+1]
ldxsh r6, [r2-4]
ldxsw r7, [r3+8]
stb [r1+0], -1
sth [r10-2], 65535
stw [r1+4], 2147483647
stdw [r10-8], -2147483648
stxb [r1+0], r2
stxh [r10-2], r3
stxw [r1+4], r10
stxdw [r10-8], r9
lock add [r10-8], r1
lock add32 [r10-8], r1
lock fetch add [r10-8], r1
lock fetch add32 [r10-8], r1
lock or [r10-8], r1
lock or32 [r10-8], r1
lock fetch or [r10-8], r1
lock fetch or32 [r10-8], r1
lock and [r10-8], r1
lock and32 [r10-8], r1
lock fetch and [r10-8], r1
lock fetch and32 [r10-8], r1
lock xor [r10-8], r1
lock xor32 [r10-8], r1
lock fetch xor [r10-8], r1
lock fetch xor32 [r10-8], r1
lock xchg [r1+0], r2
lock xchg32 [r1+4], r3
lock cmpxchg [r10-16], r4
lock cmpxchg32 [r10-4], r5
lddw r1, 0x0
lddw r2, 0xffffffffffffffff
lddw r3, 0x1122334455667788
lddw r4, map_fd(3)
lddw r5, map_value(-1, 4294967295)
lddw r6, btf_id(5)
lddw r7, func(+1)
lddw r8, map_idx(0)
lddw r9, map_idx_value(2, 8)
ldabsb 0
ldabsh 12
ldabsw -1
ldindb r1, 14
ldindh r2, 0
ldindw r3, -4
jeq r0, 0, +0
jeq r0, r3, +1
jeq32 r1, -1, +1
jeq32 r1, r4, -1
jgt r2, 2147483647, -1
jgt r2, r5, -2
jgt32 r3, -2147483648, -2
jgt32 r3, r6, +3
jge r4, 42, +3
jge r4, r7, +0
jge32 r5, 0, +0
jge32 r5, r8, +0
jset r6, -1, +0
jset r6, r9, +1
jset32 r7, 2147483647, +1
jset32 r7, r10, -1
jne r8, -2147483648, -1
jne r8, r0, -2
jne32 r9, 42, -2
jne32 r9, r1, +3
jsgt r0, 0, +3
jsgt r0, r2, +0
jsgt32 r1, -1, +0
jsgt32 r1, r3, +0
jsge r2, 2147483647, +0
jsge r2, r4, +1
jsge32 r3, -2147483648, +1
jsge32 r3, r5, -1
jlt r4, 42, -1
jlt r4, r6, -2
jlt32 r5, 0, -2
jlt32 r5, r7, +3
jle r6, -1, +3
jle r6, r8, +0
jle32 r7, 2147483647, +0
jle32 r7, r9, +0
jslt r8, -2147483648, +0
jslt r8, r10, +1
jslt32 r9, 42, +1
jslt32 r9, r0, -1
jsle r0, 0, -1
jsle r0, r1, -2
jsle32 r1, -1, -2
jsle32 r1, r2, +3
ja +0
ja -1
ja32 +1
ja32 -3
call 1
call 4294967295
call local +1
call runtime -7
call r3
exit
";

fn program(text: &str) -> Program {
    let slots = assemble(text).unwrap_or_else(|e| panic!("{e}"));
    Program::decode(slots).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn asm_then_disasm_is_the_identity_on_every_form() {
    let prog = program(EVERY_FORM);
    assert_eq!(disassemble(&prog), EVERY_FORM);
}

#[test]
fn every_form_listing_covers_every_kind_of_op() {
    let prog = program(EVERY_FORM);
    let ops: Vec<Op> = prog.iter().map(|(_, op)| *op).collect();
    for width in [Width::W32, Width::W64] {
        for op in AluOp::ALL {
            for imm in [true, false] {
                assert!(
                    ops.iter()
                        .any(|o| matches!(*o, Op::Alu { width: w, op: a, src, .. }
                        if w == width && a == op && matches!(src, Operand::Imm(_)) == imm)),
                    "{op:?} {width:?} imm={imm}"
                );
            }
        }
        for cond in Cond::ALL {
            for imm in [true, false] {
                assert!(
                    ops.iter()
                        .any(|o| matches!(*o, Op::Branch { width: w, cond: c, rhs, .. }
                        if w == width && c == cond && matches!(rhs, Operand::Imm(_)) == imm)),
                    "{cond:?} {width:?} imm={imm}"
                );
            }
        }
    }
    let atomics = ops
        .iter()
        .filter(|o| matches!(o, Op::Atomic { .. }))
        .count();
    assert_eq!(
        atomics, 20,
        "4 ops x fetch x width, plus xchg and cmpxchg x width"
    );
    let lddw = ops
        .iter()
        .filter(|o| matches!(o, Op::LoadImm64 { .. }))
        .count();
    assert_eq!(lddw, 9);
}

/// Every typed instruction, generated from the enums: printed, assembled, decoded, it is the
/// same instruction.
fn all_ops() -> Vec<Op> {
    let mut ops = Vec::new();
    let widths = [Width::W32, Width::W64];
    let operands = [
        Operand::Imm(i32::MIN),
        Operand::Imm(-1),
        Operand::Reg(Reg::R10),
    ];
    for width in widths {
        for op in AluOp::ALL {
            for src in operands {
                ops.push(Op::Alu {
                    width,
                    op,
                    dst: Reg::R9,
                    src,
                });
            }
        }
        for cond in Cond::ALL {
            for rhs in operands {
                for off in [i16::MIN, -1, 0, i16::MAX] {
                    ops.push(Op::Branch {
                        width,
                        cond,
                        lhs: Reg::R0,
                        rhs,
                        off,
                    });
                }
            }
        }
        ops.push(Op::Neg {
            width,
            dst: Reg::R3,
        });
        for op in [
            AtomicOp::Add,
            AtomicOp::Or,
            AtomicOp::And,
            AtomicOp::Xor,
            AtomicOp::Xchg,
            AtomicOp::Cmpxchg,
        ] {
            for fetch in [false, true] {
                if !fetch && matches!(op, AtomicOp::Xchg | AtomicOp::Cmpxchg) {
                    continue;
                }
                ops.push(Op::Atomic {
                    width,
                    op,
                    fetch,
                    base: Reg::R10,
                    off: i16::MIN,
                    src: Reg::R7,
                });
            }
        }
    }
    for (width, from) in [
        (Width::W32, Size::B),
        (Width::W64, Size::B),
        (Width::W32, Size::H),
        (Width::W64, Size::H),
        (Width::W64, Size::W),
    ] {
        ops.push(Op::Movsx {
            width,
            from,
            dst: Reg::R1,
            src: Reg::R2,
        });
    }
    for order in [ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap] {
        for bits in [16, 32, 64] {
            ops.push(Op::Endian {
                order,
                bits,
                dst: Reg::R4,
            });
        }
    }
    for size in [Size::B, Size::H, Size::W, Size::Dw] {
        for off in [i16::MIN, 0, i16::MAX] {
            ops.push(Op::Load {
                size,
                signed: false,
                dst: Reg::R5,
                base: Reg::R10,
                off,
            });
            if size != Size::Dw {
                ops.push(Op::Load {
                    size,
                    signed: true,
                    dst: Reg::R5,
                    base: Reg::R1,
                    off,
                });
            }
            for src in operands {
                ops.push(Op::Store {
                    size,
                    base: Reg::R10,
                    off,
                    src,
                });
            }
        }
        if size != Size::Dw {
            for index in [None, Some(Reg::R6)] {
                for imm in [i32::MIN, 0, i32::MAX] {
                    ops.push(Op::LoadPacket { size, index, imm });
                }
            }
        }
    }
    for value in [
        Imm64::Value(0),
        Imm64::Value(u64::MAX),
        Imm64::Value(0x8000_0000_0000_0000),
        Imm64::MapFd(i32::MIN),
        Imm64::MapValue {
            fd: 7,
            off: u32::MAX,
        },
        Imm64::BtfId(-3),
        Imm64::Func { off: i32::MIN },
        Imm64::Func { off: i32::MAX },
        Imm64::MapIdx(i32::MAX),
        Imm64::MapIdxValue { idx: 0, off: 0 },
    ] {
        ops.push(Op::LoadImm64 {
            dst: Reg::R8,
            value,
        });
    }
    for off in [i32::from(i16::MIN), 0, i32::from(i16::MAX)] {
        ops.push(Op::Ja { off, long: false });
    }
    for off in [i32::MIN, 0, i32::MAX] {
        ops.push(Op::Ja { off, long: true });
        ops.push(Op::Call(CallTarget::Local { off }));
        ops.push(Op::Call(CallTarget::Kfunc(off)));
    }
    for id in [0, 5, u32::MAX] {
        ops.push(Op::Call(CallTarget::Helper(id)));
    }
    ops.push(Op::Call(CallTarget::Register(Reg::R10)));
    ops.push(Op::Exit);
    ops
}

#[test]
fn every_typed_instruction_reassembles_to_itself() {
    for op in all_ops() {
        let text = op.to_string();
        let slots = assemble(&text).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        assert_eq!(slots.len(), op.slots() as usize, "{text}");
        assert_eq!(slots, bpfx_bytecode::encode(&op), "{text}");
        let back = decode_one(&slots).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(back, op, "{text}");
        assert_eq!(back.to_string(), text);
    }
}

#[test]
fn loose_syntax_disassembles_to_the_canonical_form() {
    let loose = "\
# comment line
start:
    mov64 %r1,0x10        ; hex immediate, no space after the comma
    ldxw r2,[%r1 + 0x8]
    swap16 %r3
    lock fetch add32 [ %r10-8 ], %r2
    jne %r1, 0xffffffff, start
    call local done
    ja exit
done:
    exit
";
    let canonical = "\
mov r1, 16
ldxw r2, [r1+8]
bswap16 r3
lock fetch add32 [r10-8], r2
jne r1, -1, -5
call local +1
ja +0
exit
";
    assert_eq!(disassemble(&program(loose)), canonical);
}

#[test]
fn listing_has_right_aligned_pcs_and_absolute_targets() {
    let prog = program(&format!("{}ja -11\nexit\n", "lddw r0, 0x1\n".repeat(5)));
    let listing = disassemble_with_pcs(&prog);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[0], " 0: lddw r0, 0x1");
    assert_eq!(lines[1], " 2: lddw r0, 0x1");
    assert_eq!(lines[5], "10: ja -11  # -> 0");
    assert_eq!(lines[6], "11: exit");
    // Without its pc column the listing is still assembler text.
    let text: String = lines
        .iter()
        .map(|l| format!("{}\n", l.split_once(": ").unwrap().1))
        .collect();
    assert_eq!(assemble(&text).unwrap(), prog.insns());
}

fn conformance_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bpf_conformance");
    assert!(
        dir.join("assembled_tests.jsonl").is_file(),
        "the conformance suite is missing: expected {} (the repository must sit beside shared/)",
        dir.display()
    );
    dir
}

#[test]
fn every_conformance_program_survives_disassembly_and_reassembly() {
    let text = std::fs::read_to_string(conformance_dir().join("assembled_tests.jsonl")).unwrap();
    let mut count = 0;
    for line in text.lines() {
        let field = |name: &str| {
            let key = format!("\"{name}\": \"");
            let start = line.find(&key).unwrap() + key.len();
            line[start..start + line[start..].find('"').unwrap()].to_string()
        };
        let (name, hex) = (field("test"), field("program_hex"));
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let prog = Program::from_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let asm = disassemble(&prog);
        let again = assemble(&asm).unwrap_or_else(|e| panic!("{name}: {e}\n{asm}"));
        let again: Vec<u8> = again.iter().flat_map(|i: &Insn| i.to_bytes()).collect();
        assert_eq!(again, bytes, "{name}:\n{asm}");
        count += 1;
    }
    assert_eq!(count, 313);
}
