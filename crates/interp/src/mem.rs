//! Memory-instruction semantics that do not depend on where the bytes live: atomic
//! read-modify-write results, store values, and legacy packet loads.

use crate::alu::imm_value;
use bpfx_bytecode::{AtomicOp, Operand, Size, Width};

/// What an atomic instruction does, given the old memory value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AtomicEffect {
    /// The value to write back to memory, or `None` when memory is left alone (a failed
    /// `cmpxchg`).
    pub store: Option<u64>,
    /// The value the fetching forms write to their register (`src`, or r0 for `cmpxchg`): the
    /// old memory value, zero-extended for 32-bit forms.
    pub fetched: u64,
}

/// The effect of `lock op` at `width` on memory holding `old`, with operand `src` and, for
/// `cmpxchg`, the expected value `r0`. Only the low 32 bits of every input count for 32-bit
/// forms.
pub fn atomic(width: Width, op: AtomicOp, old: u64, src: u64, r0: u64) -> AtomicEffect {
    let mask = match width {
        Width::W32 => u64::from(u32::MAX),
        Width::W64 => u64::MAX,
    };
    let (old, src, r0) = (old & mask, src & mask, r0 & mask);
    let store = match op {
        AtomicOp::Add => Some(old.wrapping_add(src) & mask),
        AtomicOp::Or => Some(old | src),
        AtomicOp::And => Some(old & src),
        AtomicOp::Xor => Some(old ^ src),
        AtomicOp::Xchg => Some(src),
        AtomicOp::Cmpxchg => (old == r0).then_some(src),
    };
    AtomicEffect {
        store,
        fetched: old,
    }
}

/// The value a store writes (its low `size` bytes are what reaches memory): a register as is,
/// an immediate sign-extended, so `stdw [..], -1` writes eight `0xff` bytes.
pub fn store_value(src: Operand, reg_value: impl Fn(bpfx_bytecode::Reg) -> u64) -> u64 {
    match src {
        Operand::Reg(r) => reg_value(r),
        Operand::Imm(i) => imm_value(i),
    }
}

/// A legacy packet load (`ldabs*`/`ldind*`): the big-endian value of `size` bytes at byte
/// `offset` of `packet`, zero-extended; `None` when any byte lies outside.
pub fn packet_load(packet: &[u8], offset: u64, size: Size) -> Option<u64> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(size.bytes() as usize)?;
    let bytes = packet.get(start..end)?;
    Some(bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AtomicOp::*;
    use Width::{W32, W64};

    #[test]
    fn arithmetic_atomics_store_and_fetch_old() {
        let e = atomic(W64, Add, 5, 7, 0);
        assert_eq!((e.store, e.fetched), (Some(12), 5));
        let e = atomic(W32, Add, 0xffff_ffff, 1, 0);
        assert_eq!((e.store, e.fetched), (Some(0), 0xffff_ffff));
        assert_eq!(atomic(W64, Or, 0b1010, 0b0101, 0).store, Some(0b1111));
        assert_eq!(atomic(W64, And, 0b1010, 0b0110, 0).store, Some(0b0010));
        assert_eq!(atomic(W64, Xor, 0b1010, 0b0110, 0).store, Some(0b1100));
        // The 32-bit forms ignore the high half of the register operand.
        assert_eq!(atomic(W32, Or, 0, 0xffff_0000_0000_0001, 0).store, Some(1));
    }

    #[test]
    fn xchg_and_cmpxchg() {
        let e = atomic(W64, Xchg, 1, 2, 0);
        assert_eq!((e.store, e.fetched), (Some(2), 1));
        let e = atomic(W64, Cmpxchg, 1, 2, 1);
        assert_eq!((e.store, e.fetched), (Some(2), 1));
        let e = atomic(W64, Cmpxchg, 1, 2, 3);
        assert_eq!((e.store, e.fetched), (None, 1));
        // 32-bit: only r0's low half is compared.
        let e = atomic(W32, Cmpxchg, 7, 9, 0xffff_ffff_0000_0007);
        assert_eq!((e.store, e.fetched), (Some(9), 7));
    }

    #[test]
    fn packet_loads_are_big_endian_and_bounded() {
        let p = [0x11, 0x22, 0x33, 0x44, 0x55];
        assert_eq!(packet_load(&p, 0, Size::B), Some(0x11));
        assert_eq!(packet_load(&p, 1, Size::H), Some(0x2233));
        assert_eq!(packet_load(&p, 1, Size::W), Some(0x2233_4455));
        assert_eq!(packet_load(&p, 2, Size::W), None);
        assert_eq!(packet_load(&p, 5, Size::B), None);
        assert_eq!(packet_load(&p, u64::MAX, Size::W), None);
        assert_eq!(packet_load(&[], 0, Size::B), None);
    }

    #[test]
    fn immediate_stores_sign_extend() {
        assert_eq!(store_value(Operand::Imm(-1), |_| 0), u64::MAX);
        assert_eq!(
            store_value(Operand::Reg(bpfx_bytecode::Reg::R3), |r| r.index() as u64),
            3
        );
    }
}
