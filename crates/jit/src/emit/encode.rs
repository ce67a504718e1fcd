//! The encoder layer: the dynasm wrapper macros, the direct encoder of the hot forms
//! ([`direct`]: arithmetic, moves, loads and stores written as bytes, the same bytes dynasm
//! writes), host memory operands, and the shortest-encoding choices (`xor` for zero, `mov r32`
//! for small unsigned values, imm8 displacements, long `nop`s), each in one named helper.

use super::{Emitter, LOOP_ALIGN};
use crate::abi;
use crate::analysis::plan::Addr;
use bpfx_bytecode::Width;

/// Emits x86-64 code into an [`Emitter`]: `asm!(e; mnemonic operands ; …)`.
macro_rules! asm {
    ($e:expr; $($t:tt)*) => {
        {
            #[allow(unused_imports)]
            use dynasmrt::{DynasmApi as _, DynasmLabelApi as _};
            dynasmrt::dynasm!($e.ops ; .arch x64 ; $($t)*)
        }
    };
}
pub(crate) use asm;

/// Emits a width-generic instruction: `R(n)` is the 32-bit (`Rd`) or 64-bit (`Rq`) register
/// `n` as `$w` says, and `[r11]` a dword or qword memory operand. The only place where the
/// width of an operation picks its registers.
macro_rules! wide {
    ($e:expr, $w:expr; $mn:ident R($a:expr), R($b:expr), BYTE $i:expr) => {
        match $w {
            Width::W32 => asm!($e; $mn Rd($a), Rd($b), BYTE $i),
            Width::W64 => asm!($e; $mn Rq($a), Rq($b), BYTE $i),
        }
    };
    ($e:expr, $w:expr; $mn:ident R($a:expr), R($b:expr), DWORD $i:expr) => {
        match $w {
            Width::W32 => asm!($e; $mn Rd($a), Rd($b), DWORD $i),
            Width::W64 => asm!($e; $mn Rq($a), Rq($b), DWORD $i),
        }
    };
    ($e:expr, $w:expr; $mn:ident R($a:expr), R($b:expr)) => {
        match $w {
            Width::W32 => asm!($e; $mn Rd($a), Rd($b)),
            Width::W64 => asm!($e; $mn Rq($a), Rq($b)),
        }
    };
    ($e:expr, $w:expr; $mn:ident R($a:expr), BYTE $i:expr) => {
        match $w {
            Width::W32 => asm!($e; $mn Rd($a), BYTE $i),
            Width::W64 => asm!($e; $mn Rq($a), BYTE $i),
        }
    };
    ($e:expr, $w:expr; $mn:ident R($a:expr), DWORD $i:expr) => {
        match $w {
            Width::W32 => asm!($e; $mn Rd($a), DWORD $i),
            Width::W64 => asm!($e; $mn Rq($a), DWORD $i),
        }
    };
    ($e:expr, $w:expr; $mn:ident R($a:expr), cl) => {
        match $w {
            Width::W32 => asm!($e; $mn Rd($a), cl),
            Width::W64 => asm!($e; $mn Rq($a), cl),
        }
    };
    ($e:expr, $w:expr; $mn:ident R($a:expr), [r11]) => {
        match $w {
            Width::W32 => asm!($e; $mn Rd($a), DWORD [r11]),
            Width::W64 => asm!($e; $mn Rq($a), QWORD [r11]),
        }
    };
    ($e:expr, $w:expr; $mn:ident R($a:expr)) => {
        match $w {
            Width::W32 => asm!($e; $mn Rd($a)),
            Width::W64 => asm!($e; $mn Rq($a)),
        }
    };
    ($e:expr, $w:expr; lock $mn:ident [r11], R($s:expr)) => {
        match $w {
            Width::W32 => asm!($e; lock $mn DWORD [r11], Rd($s)),
            Width::W64 => asm!($e; lock $mn QWORD [r11], Rq($s)),
        }
    };
    ($e:expr, $w:expr; $mn:ident [r11], R($s:expr)) => {
        match $w {
            Width::W32 => asm!($e; $mn DWORD [r11], Rd($s)),
            Width::W64 => asm!($e; $mn QWORD [r11], Rq($s)),
        }
    };
}
pub(crate) use wide;

/// A host memory operand: `[base + index + disp]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mem {
    pub(crate) base: u8,
    pub(crate) index: Option<u8>,
    pub(crate) disp: i32,
}

impl From<Addr> for Mem {
    /// The operand of an eBPF address: its registers' host registers.
    fn from(a: Addr) -> Mem {
        Mem {
            base: abi::host(a.base),
            index: a.index.map(abi::host),
            disp: a.disp,
        }
    }
}

/// Emits `$pre [mem] $post` for a [`Mem`] through dynasm, with disp8 when it fits (the forms
/// the [`direct`] encoder does not cover).
macro_rules! mem_op {
    ($e:expr; ($($pre:tt)*) $m:expr; ($($post:tt)*)) => {{
        let m: $crate::emit::Mem = $m;
        let (base, disp) = (m.base, m.disp);
        match (m.index, i8::try_from(disp)) {
            (None, Ok(d8)) => asm!($e; $($pre)* [BYTE Rq(base) + d8] $($post)*),
            (None, Err(_)) => asm!($e; $($pre)* [Rq(base) + disp] $($post)*),
            (Some(i), Ok(d8)) => asm!($e; $($pre)* [BYTE Rq(base) + Rq(i) * 1 + d8] $($post)*),
            (Some(i), Err(_)) => asm!($e; $($pre)* [Rq(base) + Rq(i) * 1 + disp] $($post)*),
        }
    }};
}
pub(crate) use mem_op;

impl Emitter<'_> {
    /// `r = 0`, as `xor r32, r32` (also clears the high half).
    pub(crate) fn emit_zero(&mut self, r: u8) {
        direct::rr(&mut self.ops, Width::W32, 0x31, r, r);
    }

    /// `r = imm` at `width`, where a 64-bit destination takes the sign-extended immediate:
    /// `xor` for 0, `mov r32, imm32` when the result's high half is zero, otherwise the
    /// sign-extending `mov r64, imm32`.
    pub(crate) fn emit_mov_imm(&mut self, width: Width, r: u8, imm: i32) {
        if self.blinds(i64::from(imm)) {
            match width {
                Width::W32 => self.emit_blinded_u32(r, imm as u32),
                Width::W64 => self.emit_blinded_sext(r, imm),
            }
            return;
        }
        match (width, imm) {
            (_, 0) => self.emit_zero(r),
            (Width::W32, _) | (Width::W64, 1..) => direct::mov_r32_imm(&mut self.ops, r, imm),
            (Width::W64, _) => direct::ri32(&mut self.ops, Width::W64, 0xc7, 0, r, imm),
        }
    }

    /// `r = v` for a full 64-bit value, with the shortest of `xor`, `mov r32, imm32`,
    /// sign-extending `mov r64, imm32` and `movabs`.
    pub(crate) fn emit_mov_imm64(&mut self, r: u8, v: u64) {
        let fits = u32::try_from(v).is_ok() || i32::try_from(v as i64).is_ok();
        if !fits && self.blinds(v as i64) {
            self.emit_blinded_u64(r, v);
        } else if let Ok(v32) = u32::try_from(v) {
            self.emit_mov_imm(Width::W32, r, v32 as i32);
        } else if let Ok(s32) = i32::try_from(v as i64) {
            self.emit_mov_imm(Width::W64, r, s32);
        } else {
            asm!(self; mov Rq(r), QWORD v as i64);
        }
    }

    /// Pads with no-ops to the next multiple of [`LOOP_ALIGN`] bytes, as the top of a loop:
    /// the loop's first instructions then start a fetch block (compilers align loops the same
    /// way). The padding runs only when control falls into the loop from above, as at most
    /// four long `nop`s.
    pub(crate) fn emit_loop_align(&mut self) {
        let pad = (LOOP_ALIGN - self.offset() % LOOP_ALIGN) % LOOP_ALIGN;
        self.emit_nops(pad);
    }

    /// `n` bytes of no-ops, in as few instructions as the recommended long forms allow.
    pub(crate) fn emit_nops(&mut self, mut n: usize) {
        while n > 0 {
            let k = n.min(9);
            match k {
                1 => asm!(self; nop),
                2 => asm!(self; xchg ax, ax),
                3 => asm!(self; nop DWORD [rax]),
                4 => asm!(self; nop DWORD [BYTE rax + 0]),
                5 => asm!(self; nop DWORD [BYTE rax + rax * 1 + 0]),
                6 => asm!(self; nop WORD [BYTE rax + rax * 1 + 0]),
                7 => asm!(self; nop DWORD [DWORD rax + 0]),
                8 => asm!(self; nop DWORD [DWORD rax + rax * 1 + 0]),
                _ => asm!(self; nop WORD [DWORD rax + rax * 1 + 0]),
            }
            n -= k;
        }
    }

    /// `d = s` at `width`. A 32-bit move is emitted even when `d == s`: it zero-extends.
    pub(crate) fn emit_mov(&mut self, width: Width, d: u8, s: u8) {
        match width {
            Width::W64 if d == s => {}
            _ => direct::rr(&mut self.ops, width, 0x89, s, d),
        }
    }

    /// `d = m`'s address, as [`Self::emit_lea`] when it has no index.
    pub(crate) fn emit_lea_mem(&mut self, d: u8, m: Mem) {
        match m.index {
            None => self.emit_lea(d, m.base, m.disp),
            Some(_) => direct::rm(&mut self.ops, direct::OpSize::Quad, 0x8d, d, m),
        }
    }

    /// `d = s + disp` (64-bit), as a plain `mov` when `disp` is 0.
    pub(crate) fn emit_lea(&mut self, d: u8, s: u8, disp: i32) {
        if disp == 0 {
            self.emit_mov(Width::W64, d, s);
        } else {
            let m = Mem {
                base: s,
                index: None,
                disp,
            };
            direct::rm(&mut self.ops, direct::OpSize::Quad, 0x8d, d, m);
        }
    }
}

/// The direct encoder: the hot forms of the lowering (register-register and
/// register-immediate arithmetic, moves, loads and stores at `[base + index + disp]`) written
/// as bytes, without dynasm's generated code. Each form writes exactly the bytes dynasm writes
/// for the same instruction with dynamic registers (the `direct_*_forms_match_dynasm` tests
/// compare them form by form): a REX prefix always, even when no bit of it is set, and a SIB
/// byte for every memory operand. Each writes its bytes as one or two fixed-size arrays: one
/// capacity check and a few stores each, where a byte at a time checks the capacity per byte.
pub(crate) mod direct {
    use bpfx_bytecode::Width;
    use dynasmrt::VecAssembler;
    use dynasmrt::x64::X64Relocation;

    type Ops = VecAssembler<X64Relocation>;

    /// The REX prefix: `w` for a 64-bit operand size, the high bits of the ModRM reg field, of
    /// the SIB index and of the ModRM rm (or SIB base) field.
    fn rex(w: bool, reg: u8, index: u8, base: u8) -> u8 {
        0x40 | u8::from(w) << 3 | (reg & 8) >> 1 | (index & 8) >> 2 | (base & 8) >> 3
    }

    /// The ModRM byte of two registers.
    fn modrm(reg: u8, rm: u8) -> u8 {
        0xc0 | (reg & 7) << 3 | (rm & 7)
    }

    /// `opcode` with register operands: `reg` in the ModRM reg field (or the opcode extension
    /// `/n`), `rm` in its rm field.
    pub(crate) fn rr(ops: &mut Ops, w: Width, opcode: u8, reg: u8, rm: u8) {
        let rex = rex(w == Width::W64, reg, 0, rm);
        ops.extend(&[rex, opcode, modrm(reg, rm)]);
    }

    /// [`rr`] with a two-byte opcode (`0F xx`).
    pub(crate) fn rr2(ops: &mut Ops, w: Width, opcode: [u8; 2], reg: u8, rm: u8) {
        let rex = rex(w == Width::W64, reg, 0, rm);
        ops.extend(&[rex, opcode[0], opcode[1], modrm(reg, rm)]);
    }

    /// `opcode /ext rm, imm8`.
    pub(crate) fn ri8(ops: &mut Ops, w: Width, opcode: u8, ext: u8, rm: u8, imm: i8) {
        let rex = rex(w == Width::W64, 0, 0, rm);
        ops.extend(&[rex, opcode, modrm(ext, rm), imm as u8]);
    }

    /// `opcode /ext rm, imm32`.
    pub(crate) fn ri32(ops: &mut Ops, w: Width, opcode: u8, ext: u8, rm: u8, imm: i32) {
        let rex = rex(w == Width::W64, 0, 0, rm);
        let [a, b, c, d] = imm.to_le_bytes();
        ops.extend(&[rex, opcode, modrm(ext, rm), a, b, c, d]);
    }

    /// `mov r32, imm32` (`B8+r`).
    pub(crate) fn mov_r32_imm(ops: &mut Ops, r: u8, imm: i32) {
        let [a, b, c, d] = imm.to_le_bytes();
        ops.extend(&[rex(false, 0, 0, r), 0xb8 | (r & 7), a, b, c, d]);
    }

    /// A memory operand's operand size: what the REX.W bit and the `66` prefix say.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum OpSize {
        /// Byte and doubleword operations (their opcode says which).
        Plain,
        /// A word: the `66` prefix.
        Word,
        /// A quadword: REX.W.
        Quad,
    }

    /// `opcode` (one byte, or two when above `0xff`: `0x0fb6` is `0F B6`) with `reg` (or
    /// `/ext`) and the memory operand `[base + index + disp]`: a SIB byte always (no index:
    /// index field 100), disp8 when it fits, else disp32.
    pub(crate) fn rm(ops: &mut Ops, size: OpSize, opcode: u16, reg: u8, m: super::Mem) {
        if size == OpSize::Word {
            ops.extend(&[0x66]);
        }
        let rex = rex(size == OpSize::Quad, reg, m.index.unwrap_or(0), m.base);
        let sib = (m.index.unwrap_or(4) & 7) << 3 | (m.base & 7);
        let reg = (reg & 7) << 3;
        let [lo, hi] = opcode.to_le_bytes();
        let [d0, d1, d2, d3] = m.disp.to_le_bytes();
        match (hi, i8::try_from(m.disp)) {
            (0, Ok(d8)) => ops.extend(&[rex, lo, 0x44 | reg, sib, d8 as u8]),
            (0, Err(_)) => ops.extend(&[rex, lo, 0x84 | reg, sib, d0, d1, d2, d3]),
            (_, Ok(d8)) => ops.extend(&[rex, hi, lo, 0x44 | reg, sib, d8 as u8]),
            (_, Err(_)) => ops.extend(&[rex, hi, lo, 0x84 | reg, sib, d0, d1, d2, d3]),
        }
    }

    /// `mov` of an immediate to memory (`C6 /0 ib`, `66 C7 /0 iw`, `C7 /0 id`, `REX.W C7 /0
    /// id`): `imm` truncated to `bytes` (1, 2 or 4; 4 for a quadword, sign-extended).
    pub(crate) fn mov_m_imm(ops: &mut Ops, size: OpSize, bytes: u32, m: super::Mem, imm: i32) {
        let opcode = if bytes == 1 { 0xc6 } else { 0xc7 };
        rm(ops, size, opcode, 0, m);
        let [a, b, c, d] = imm.to_le_bytes();
        match bytes {
            1 => ops.extend(&[a]),
            2 => ops.extend(&[a, b]),
            _ => ops.extend(&[a, b, c, d]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::direct::{self, OpSize};
    use super::{Mem, Width};
    use dynasmrt::VecAssembler;
    use dynasmrt::x64::X64Relocation;

    /// The bytes the closure writes, through dynasm or the direct encoder.
    fn dynasm(f: impl FnOnce(&mut VecAssembler<X64Relocation>)) -> Vec<u8> {
        let mut ops = VecAssembler::<X64Relocation>::new(0);
        f(&mut ops);
        ops.finalize().expect("assembles")
    }

    /// Emits `$($t)*` through dynasm at `.arch x64`.
    macro_rules! dy {
        ($($t:tt)*) => {
            dynasm(|ops| {
                #[allow(unused_imports)]
                use dynasmrt::DynasmApi as _;
                dynasmrt::dynasm!(ops ; .arch x64 ; $($t)*)
            })
        };
    }

    const REGS: std::ops::Range<u8> = 0..16;
    const DISPS: [i32; 6] = [0, 1, -128, 127, 128, -0x1234_5678];

    /// Every memory operand the lowerings form: each base (not rsp), with or without an
    /// index (not rsp), at displacements around the disp8 limits.
    fn mems() -> Vec<Mem> {
        let mut v = Vec::new();
        for base in REGS.filter(|&r| r != 4) {
            for index in std::iter::once(None).chain(REGS.filter(|&r| r != 4).map(Some)) {
                for disp in DISPS {
                    v.push(Mem { base, index, disp });
                }
            }
        }
        v
    }

    /// `mem_op!`'s dynasm forms for an `Rq(reg)` operand and a memory operand.
    macro_rules! dy_mem {
        (($($pre:tt)*) $m:expr; ($($post:tt)*)) => {{
            let m: Mem = $m;
            let (base, disp) = (m.base, m.disp);
            match (m.index, i8::try_from(disp)) {
                (None, Ok(d8)) => dy!($($pre)* [BYTE Rq(base) + d8] $($post)*),
                (None, Err(_)) => dy!($($pre)* [Rq(base) + disp] $($post)*),
                (Some(i), Ok(d8)) => dy!($($pre)* [BYTE Rq(base) + Rq(i) * 1 + d8] $($post)*),
                (Some(i), Err(_)) => dy!($($pre)* [Rq(base) + Rq(i) * 1 + disp] $($post)*),
            }
        }};
    }

    #[test]
    fn direct_register_forms_match_dynasm() {
        for d in REGS {
            for s in REGS {
                let rr = |w, op, reg, rm| dynasm(|ops| direct::rr(ops, w, op, reg, rm));
                assert_eq!(rr(Width::W64, 0x01, s, d), dy!(add Rq(d), Rq(s)));
                assert_eq!(rr(Width::W32, 0x01, s, d), dy!(add Rd(d), Rd(s)));
                assert_eq!(rr(Width::W64, 0x29, s, d), dy!(sub Rq(d), Rq(s)));
                assert_eq!(rr(Width::W32, 0x21, s, d), dy!(and Rd(d), Rd(s)));
                assert_eq!(rr(Width::W64, 0x09, s, d), dy!(or Rq(d), Rq(s)));
                assert_eq!(rr(Width::W32, 0x31, s, d), dy!(xor Rd(d), Rd(s)));
                assert_eq!(rr(Width::W64, 0x3b, d, s), dy!(cmp Rq(d), Rq(s)));
                assert_eq!(rr(Width::W32, 0x3b, d, s), dy!(cmp Rd(d), Rd(s)));
                assert_eq!(rr(Width::W64, 0x85, s, d), dy!(test Rq(d), Rq(s)));
                assert_eq!(rr(Width::W32, 0x89, s, d), dy!(mov Rd(d), Rd(s)));
                assert_eq!(rr(Width::W64, 0x89, s, d), dy!(mov Rq(d), Rq(s)));
                assert_eq!(
                    dynasm(|ops| direct::rr2(ops, Width::W64, [0x0f, 0xaf], d, s)),
                    dy!(imul Rq(d), Rq(s))
                );
                assert_eq!(
                    dynasm(|ops| direct::rr2(ops, Width::W32, [0x0f, 0xaf], d, s)),
                    dy!(imul Rd(d), Rd(s))
                );
            }
            for imm in [0i32, 1, -1, 127, -128, 128, -129, i32::MAX, i32::MIN] {
                let i32v = |w, op, ext| dynasm(|ops| direct::ri32(ops, w, op, ext, d, imm));
                assert_eq!(i32v(Width::W64, 0x81, 0), dy!(add Rq(d), DWORD imm));
                assert_eq!(i32v(Width::W32, 0x81, 5), dy!(sub Rd(d), DWORD imm));
                assert_eq!(i32v(Width::W64, 0x81, 7), dy!(cmp Rq(d), DWORD imm));
                assert_eq!(i32v(Width::W32, 0xf7, 0), dy!(test Rd(d), DWORD imm));
                assert_eq!(i32v(Width::W64, 0xc7, 0), dy!(mov Rq(d), DWORD imm));
                assert_eq!(
                    dynasm(|ops| direct::mov_r32_imm(ops, d, imm)),
                    dy!(mov Rd(d), DWORD imm)
                );
                if let Ok(b) = i8::try_from(imm) {
                    let i8v = |w, op, ext| dynasm(|ops| direct::ri8(ops, w, op, ext, d, b));
                    assert_eq!(i8v(Width::W64, 0x83, 0), dy!(add Rq(d), BYTE b));
                    assert_eq!(i8v(Width::W32, 0x83, 1), dy!(or Rd(d), BYTE b));
                    assert_eq!(i8v(Width::W64, 0x83, 4), dy!(and Rq(d), BYTE b));
                    assert_eq!(i8v(Width::W32, 0x83, 6), dy!(xor Rd(d), BYTE b));
                    assert_eq!(i8v(Width::W64, 0xc1, 4), dy!(shl Rq(d), BYTE b));
                    assert_eq!(i8v(Width::W32, 0xc1, 5), dy!(shr Rd(d), BYTE b));
                    assert_eq!(i8v(Width::W64, 0xc1, 7), dy!(sar Rq(d), BYTE b));
                }
            }
        }
    }

    #[test]
    fn direct_memory_forms_match_dynasm() {
        for m in mems() {
            for r in REGS {
                let rm = |size, op| dynasm(|ops| direct::rm(ops, size, op, r, m));
                assert_eq!(rm(OpSize::Quad, 0x8d), dy_mem!((lea Rq(r),) m; ()));
                assert_eq!(
                    rm(OpSize::Plain, 0x0fb6),
                    dy_mem!((movzx Rd(r), BYTE) m; ())
                );
                assert_eq!(
                    rm(OpSize::Plain, 0x0fb7),
                    dy_mem!((movzx Rd(r), WORD) m; ())
                );
                assert_eq!(rm(OpSize::Plain, 0x8b), dy_mem!((mov Rd(r), DWORD) m; ()));
                assert_eq!(rm(OpSize::Quad, 0x8b), dy_mem!((mov Rq(r), QWORD) m; ()));
                assert_eq!(rm(OpSize::Quad, 0x0fbe), dy_mem!((movsx Rq(r), BYTE) m; ()));
                assert_eq!(rm(OpSize::Quad, 0x0fbf), dy_mem!((movsx Rq(r), WORD) m; ()));
                assert_eq!(rm(OpSize::Quad, 0x63), dy_mem!((movsxd Rq(r), DWORD) m; ()));
                assert_eq!(rm(OpSize::Plain, 0x88), dy_mem!((mov BYTE) m; (, Rb(r))));
                assert_eq!(rm(OpSize::Word, 0x89), dy_mem!((mov WORD) m; (, Rw(r))));
                assert_eq!(rm(OpSize::Plain, 0x89), dy_mem!((mov DWORD) m; (, Rd(r))));
                assert_eq!(rm(OpSize::Quad, 0x89), dy_mem!((mov QWORD) m; (, Rq(r))));
            }
            for i in [0i32, -1, 0x7f, -0x80, 0x1234_5678] {
                let imm = |size, n| dynasm(|ops| direct::mov_m_imm(ops, size, n, m, i));
                assert_eq!(imm(OpSize::Plain, 1), dy_mem!((mov BYTE) m; (, i as i8)));
                assert_eq!(imm(OpSize::Word, 2), dy_mem!((mov WORD) m; (, i as i16)));
                assert_eq!(imm(OpSize::Plain, 4), dy_mem!((mov DWORD) m; (, i)));
                assert_eq!(imm(OpSize::Quad, 8), dy_mem!((mov QWORD) m; (, i)));
            }
        }
    }
}
