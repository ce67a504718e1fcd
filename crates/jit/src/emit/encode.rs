//! The encoder layer: the dynasm wrapper macros every lowering emits through, host memory
//! operands, and the shortest-encoding choices (`xor` for zero, `mov r32` for small unsigned
//! values, imm8 displacements, long `nop`s), each in one named helper.

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

/// Emits `$pre [Rq(base) + disp] $post` with the shortest displacement (disp8 when it fits).
/// A dynamic base always gets a displacement, so rbp and r13 bases need no special case.
macro_rules! at {
    ($e:expr; ($($pre:tt)*) [$b:expr, $d:expr] ($($post:tt)*)) => {{
        let (base, disp): (u8, i32) = ($b, $d);
        match i8::try_from(disp) {
            Ok(d8) => asm!($e; $($pre)* [BYTE Rq(base) + d8] $($post)*),
            Err(_) => asm!($e; $($pre)* [Rq(base) + disp] $($post)*),
        }
    }};
}

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

/// Emits `$pre [mem] $post` for a [`Mem`], with the shortest displacement, like `at!`.
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
        asm!(self; xor Rd(r), Rd(r));
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
            (Width::W32, _) | (Width::W64, 1..) => asm!(self; mov Rd(r), DWORD imm),
            (Width::W64, _) => asm!(self; mov Rq(r), DWORD imm),
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
            Width::W64 => asm!(self; mov Rq(d), Rq(s)),
            Width::W32 => asm!(self; mov Rd(d), Rd(s)),
        }
    }

    /// `d = m`'s address, as [`Self::emit_lea`] when it has no index.
    pub(crate) fn emit_lea_mem(&mut self, d: u8, m: Mem) {
        match m.index {
            None => self.emit_lea(d, m.base, m.disp),
            Some(_) => mem_op!(self; (lea Rq(d),) m; ()),
        }
    }

    /// `d = s + disp` (64-bit), as a plain `mov` when `disp` is 0.
    pub(crate) fn emit_lea(&mut self, d: u8, s: u8, disp: i32) {
        if disp == 0 {
            self.emit_mov(Width::W64, d, s);
        } else {
            at!(self; (lea Rq(d),) [s, disp] ());
        }
    }
}
