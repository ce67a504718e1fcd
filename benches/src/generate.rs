//! Generated straight-line programs of any size, for the compile-time benches: a repeated
//! ten-instruction block of input loads, ALU work, a stack spill and a forward branch, so the
//! JIT meets every common lowering and the verifier a join at every block.

use bpfx_bytecode::{DecodeError, Program};

/// Size of the input the generated programs read: loads stay below it.
pub const GENERATED_MEM: u64 = 4096;

/// One slot: opcode, registers, offset, immediate.
fn slot(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut s = [0; 8];
    s[0] = code;
    s[1] = (src << 4) | dst;
    s[2..4].copy_from_slice(&off.to_le_bytes());
    s[4..8].copy_from_slice(&imm.to_le_bytes());
    s
}

/// The bytecode of a program of exactly `insns` instructions (at least 4): it reads the input
/// (r1, at least [`GENERATED_MEM`] bytes) and returns a value depending on all of it.
pub fn bytecode(insns: usize) -> Vec<u8> {
    let insns = insns.max(4);
    let mut out: Vec<[u8; 8]> = Vec::with_capacity(insns);
    out.push(slot(0xb7, 0, 0, 0, 0)); // mov r0, 0
    out.push(slot(0xb7, 4, 0, 0, 0)); // mov r4, 0
    let mut i: i32 = 0;
    while out.len() + 10 < insns {
        let off = ((i * 8) % (GENERATED_MEM as i32 - 8)) as i16;
        out.push(slot(0x79, 3, 1, off, 0)); // ldxdw r3, [r1+off]
        out.push(slot(0x0f, 0, 3, 0, 0)); // add r0, r3
        out.push(slot(0xa7, 4, 0, 0, i.wrapping_mul(0x9e37_79b1u32 as i32))); // xor r4, imm
        out.push(slot(0x2f, 4, 3, 0, 0)); // mul r4, r3
        out.push(slot(0x77, 4, 0, 0, 7)); // rsh r4, 7
        out.push(slot(0x7b, 10, 4, -8, 0)); // stxdw [r10-8], r4
        out.push(slot(0x79, 5, 10, -8, 0)); // ldxdw r5, [r10-8]
        out.push(slot(0x2d, 5, 0, 1, 0)); // jgt r5, r0, +1
        out.push(slot(0x07, 0, 0, 0, 1)); // add r0, 1
        out.push(slot(0x4f, 0, 5, 0, 0)); // or r0, r5
        i += 1;
    }
    while out.len() + 1 < insns {
        out.push(slot(0x07, 0, 0, 0, 1)); // add r0, 1
    }
    out.push(slot(0x95, 0, 0, 0, 0)); // exit
    out.concat()
}

/// The decoded program of [`bytecode`].
pub fn program(insns: usize) -> Result<Program, DecodeError> {
    Program::from_bytes(&bytecode(insns))
}
