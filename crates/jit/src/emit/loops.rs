//! The lowering of versioned loops ([`crate::analysis::loops`]): the entry check before the
//! loop and its fast copy, out of line, where the accesses the check proved go unguarded.

use super::alu::Arith;
use super::{CopyKind, Emitter, Exit, Mem, asm, mem_op};
use crate::JitError;
use crate::abi::{ctx, host, x};
use crate::analysis::loops::{Form, MAX_TRIPS, Sym, TripKind};
use bpfx_bytecode::{Pc, Width};
use dynasmrt::DynamicLabel;

/// The labels of one versioned loop.
#[derive(Debug)]
pub(crate) struct LoopLabels {
    /// The check, where every entry from outside the loop arrives.
    pub(crate) check: DynamicLabel,
    /// The fast copy's instructions, one per slot of the loop.
    pub(crate) fast: Vec<DynamicLabel>,
}

impl Emitter<'_> {
    /// Where a jump from `from` (`None`: a call, the entry, or the end of a fast copy) to `to`
    /// lands: inside the fast copy being lowered, its own instruction; at the head of a
    /// versioned loop from outside it, the loop's check; otherwise the instruction.
    pub(crate) fn jump_label(&mut self, from: Option<Pc>, to: Pc) -> DynamicLabel {
        if let CopyKind::Fast(i) = self.kind {
            let l = &self.guards.loops.loops[i];
            if from.is_some_and(|f| l.contains(f)) && l.contains(to) {
                return self.loop_labels[i].fast[(to.0 - l.head.0) as usize];
            }
        }
        if let Some(i) = self.guards.loops.index_at(to)
            && !from.is_some_and(|f| self.guards.loops.loops[i].contains(f))
        {
            return self.loop_labels[i].check;
        }
        self.pc_label(to)
    }

    /// The check before loop `i` (see the module doc): falls to the guarded loop on any
    /// failure, else jumps to the fast copy. Clobbers r9–r11 and flags.
    pub(crate) fn emit_loop_check(&mut self, i: usize) {
        let (entry, head, t) = {
            let l = &self.guards.loops.loops[i];
            (l.entry, l.head, l.trip)
        };
        // Lent out while the check is emitted (nothing below reads the loop list).
        let links = std::mem::take(&mut self.guards.loops.loops[i].links);
        let spans = std::mem::take(&mut self.guards.loops.loops[i].spans);
        let fail = self.pc_label(entry);
        let fast = self.loop_labels[i].fast[(entry.0 - head.0) as usize];
        let check = self.loop_labels[i].check;
        asm!(self; =>check);
        for &(r, f) in &links {
            self.emit_form(x::R10, f);
            asm!(self
                ; cmp r10, Rq(host(r))
                ; jne =>fail
            );
        }
        // r11 = n - 1, the last iteration's index.
        self.emit_form(x::R11, t.bound);
        // A bound below 2^63 keeps x from wrapping before the test stops it.
        asm!(self
            ; test r11, r11
            ; js =>fail
        );
        if t.kind == TripKind::Le {
            asm!(self; add r11, 1);
        }
        self.emit_form(x::R10, t.x);
        let step = 1i32 << t.shift;
        match t.kind {
            TripKind::Lt | TripKind::Le => {
                // x0 >= bound: the test fails in the first iteration. Otherwise the first
                // failing iteration is ceil((bound - x0) / step).
                let ahead = self.new_label();
                let done = self.new_label();
                asm!(self
                    ; sub r11, r10
                    ; ja =>ahead
                    ; xor r11d, r11d
                    ; jmp =>done
                    ; =>ahead
                    ; cmp r11, MAX_TRIPS
                    ; ja =>fail
                );
                if step > 1 {
                    self.emit_arith_ri(Width::W64, Arith::Add, x::R11, step - 1);
                    asm!(self; shr r11, t.shift as i8);
                }
                asm!(self; =>done);
            }
            TripKind::Ne => {
                // x0 <= bound and a whole number of steps apart, or the test never stops x
                // before it wraps.
                asm!(self
                    ; sub r11, r10
                    ; jb =>fail
                    ; cmp r11, MAX_TRIPS
                    ; ja =>fail
                );
                if step > 1 {
                    asm!(self
                        ; test r11, step - 1
                        ; jnz =>fail
                        ; shr r11, t.shift as i8
                    );
                }
            }
        }
        for span in &spans {
            // The first address, then the last: both inside means every one between is.
            self.emit_form(x::R10, span.start);
            asm!(self
                ; sub r10, [BYTE r12 + ctx::INPUT_BASE]
                ; cmp r10, [BYTE r12 + ctx::input_ok(span.size)]
                ; jae =>fail
            );
            if span.step != 0 {
                asm!(self
                    ; imul r9, r11, span.step as i32
                    ; add r9, r10
                    ; cmp r9, [BYTE r12 + ctx::input_ok(span.size)]
                    ; jae =>fail
                );
            }
        }
        self.emit_prepay(i, fail);
        asm!(self; jmp =>fast);
        self.guards.loops.loops[i].links = links;
        self.guards.loops.loops[i].spans = spans;
    }

    /// `dst = f` at the loop's entry (iteration-start values are the registers' own).
    fn emit_form(&mut self, dst: u8, f: Form) {
        let Some(first) = f.terms[0] else {
            self.emit_mov_imm64(dst, f.k as u64);
            return;
        };
        match first {
            Sym::Reg(r) => self.emit_mov(Width::W64, dst, host(r)),
            Sym::Slot(o) => mem_op!(self; (mov Rq(dst),) slot(o); ()),
        }
        match f.terms[1] {
            Some(Sym::Reg(r)) => asm!(self; add Rq(dst), Rq(host(r))),
            Some(Sym::Slot(o)) => mem_op!(self; (add Rq(dst),) slot(o); ()),
            None => {}
        }
        if f.k != 0 {
            // `fits` held when the form was made.
            self.emit_arith_ri(Width::W64, Arith::Add, dst, f.k as i32);
        }
    }

    /// Loop `i`'s fast copy: its instructions with the versioned accesses unguarded (every
    /// other access guarded one by one), back edges to its own head, and control falling out
    /// of it (the last instruction falls through, or it is the skipped `ja` of a fused branch)
    /// continuing in the main code.
    pub(crate) fn emit_loop_copy(&mut self, i: usize) -> Result<(), JitError> {
        let (head, end, entry) = {
            let l = &self.guards.loops.loops[i];
            (l.head, l.end, l.entry)
        };
        if entry != head {
            // Control falls into a rotated loop's entry from inside it: its check cannot stand
            // in the main code's way there, and goes before the copy instead.
            self.layout.loop_checks.push((entry, self.offset()));
            self.emit_loop_check(i);
        }
        self.emit_copy(CopyKind::Fast(i), head, end, Exit::Next)
    }
}

/// The host operand of the stack slot at `r10 + off`.
fn slot(off: i16) -> Mem {
    Mem {
        base: x::RBP,
        index: None,
        disp: i32::from(off),
    }
}
