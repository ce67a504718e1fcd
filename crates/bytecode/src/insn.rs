//! The raw 8-byte instruction slot, faithful to the wire format.

use std::fmt;

/// Size of one instruction slot in bytes.
pub const INSN_SIZE: usize = 8;

/// One 8-byte instruction slot as it appears on the wire (little-endian).
///
/// Layout: `code: u8`, `dst: u4` (low nibble), `src: u4` (high nibble), `off: i16`, `imm: i32`.
/// The second slot of a 64-bit immediate load (`lddw`) is also an `Insn`, whose `code`, registers
/// and `off` must be zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Insn {
    /// The opcode byte: class, size/source, mode/operation.
    pub code: u8,
    /// Destination register number (0..=15 on the wire; decoding accepts 0..=10).
    pub dst: u8,
    /// Source register number (0..=15 on the wire; decoding accepts 0..=10).
    pub src: u8,
    /// Signed 16-bit offset.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

impl Insn {
    /// Builds a slot from its fields. `dst` and `src` are masked to 4 bits.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst: dst & 0xf,
            src: src & 0xf,
            off,
            imm,
        }
    }

    /// Reads a slot from 8 little-endian bytes.
    pub fn from_bytes(b: [u8; INSN_SIZE]) -> Self {
        Insn {
            code: b[0],
            dst: b[1] & 0xf,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Writes the slot as 8 little-endian bytes.
    pub fn to_bytes(self) -> [u8; INSN_SIZE] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0xf) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// Reads a slot from the u64 whose little-endian bytes are the slot (the `-- raw` form of the
    /// conformance suite).
    pub fn from_u64(v: u64) -> Self {
        Self::from_bytes(v.to_le_bytes())
    }

    /// The u64 whose little-endian bytes are this slot.
    pub fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.to_bytes())
    }
}

impl fmt::Display for Insn {
    /// Prints the raw fields, for errors about slots that do not decode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "code 0x{:02x} dst {} src {} off {} imm {}",
            self.code, self.dst, self.src, self.off, self.imm
        )
    }
}

/// Opcode field constants (RFC 9669 section 3). Kept private to the crate: everything outside
/// decoding and encoding matches on [`crate::Op`].
pub(crate) mod code {
    pub(crate) const CLASS_MASK: u8 = 0x07;
    pub(crate) const LD: u8 = 0x00;
    pub(crate) const LDX: u8 = 0x01;
    pub(crate) const ST: u8 = 0x02;
    pub(crate) const STX: u8 = 0x03;
    pub(crate) const ALU: u8 = 0x04;
    pub(crate) const JMP: u8 = 0x05;
    pub(crate) const JMP32: u8 = 0x06;
    pub(crate) const ALU64: u8 = 0x07;

    /// Source bit of ALU and JMP classes: register (X) rather than immediate (K).
    pub(crate) const SRC_X: u8 = 0x08;
    pub(crate) const OP_MASK: u8 = 0xf0;

    pub(crate) const SIZE_MASK: u8 = 0x18;
    pub(crate) const SIZE_W: u8 = 0x00;
    pub(crate) const SIZE_H: u8 = 0x08;
    pub(crate) const SIZE_B: u8 = 0x10;
    pub(crate) const SIZE_DW: u8 = 0x18;

    pub(crate) const MODE_MASK: u8 = 0xe0;
    pub(crate) const MODE_IMM: u8 = 0x00;
    pub(crate) const MODE_ABS: u8 = 0x20;
    pub(crate) const MODE_IND: u8 = 0x40;
    pub(crate) const MODE_MEM: u8 = 0x60;
    pub(crate) const MODE_MEMSX: u8 = 0x80;
    pub(crate) const MODE_ATOMIC: u8 = 0xc0;

    pub(crate) const ALU_NEG: u8 = 0x80;
    pub(crate) const ALU_END: u8 = 0xd0;

    pub(crate) const JMP_JA: u8 = 0x00;
    pub(crate) const JMP_CALL: u8 = 0x80;
    pub(crate) const JMP_EXIT: u8 = 0x90;

    pub(crate) const ATOMIC_FETCH: i32 = 0x01;
    pub(crate) const ATOMIC_XCHG: i32 = 0xe0 | ATOMIC_FETCH;
    pub(crate) const ATOMIC_CMPXCHG: i32 = 0xf0 | ATOMIC_FETCH;

    pub(crate) const CALL_HELPER: u8 = 0;
    pub(crate) const CALL_LOCAL: u8 = 1;
    pub(crate) const CALL_KFUNC: u8 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_roundtrip_and_nibble_order() {
        let insn = Insn::new(0xbf, 1, 2, -3, -4);
        let b = insn.to_bytes();
        assert_eq!(b[1], 0x21, "dst is the low nibble, src the high nibble");
        assert_eq!(Insn::from_bytes(b), insn);
        assert_eq!(Insn::from_u64(insn.to_u64()), insn);
    }
}
