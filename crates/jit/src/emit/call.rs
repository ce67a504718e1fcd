//! Calls: helpers (`call N`, `callx`), local functions, kfuncs.
//!
//! A helper call is a SysV call to the dispatcher ([`crate::abi::DispatchFn`]) with r1–r5
//! already in the argument registers and the context in r9; the helper id travels in the
//! context. A local call pushes r6–r9 and r10, moves r10 down one frame and `call`s the
//! callee's label, so the callee's `exit` (a `ret`) comes back here to restore them.

use super::{Emitter, asm};
use crate::abi::{ctx, host, x};
use bpfx_bytecode::{CallTarget, Imm64, Op, Pc, Reg};
use bpfx_exec::TrapKind;

impl Emitter<'_> {
    pub(super) fn lower_call(&mut self, pc: Pc, target: CallTarget) {
        match target {
            CallTarget::Helper(id) if let Some(cb) = self.facts.and_then(|f| f.callback(pc)) => {
                self.emit_mov_imm(bpfx_bytecode::Width::W32, x::R11, id as i32);
                asm!(self; mov [BYTE r12 + ctx::HELPER_ID], r11);
                self.emit_callback_call(pc, cb);
            }
            CallTarget::Helper(id) if let Some(array) = self.inlined_lookup(pc, id) => {
                self.emit_inline_lookup(array);
            }
            CallTarget::Helper(id) if let Some((at, op)) = self.direct_call(pc, id) => {
                self.emit_mov_imm(bpfx_bytecode::Width::W32, x::R11, id as i32);
                asm!(self; mov [BYTE r12 + ctx::HELPER_ID], r11);
                self.emit_direct_call(pc, at, op);
            }
            CallTarget::Helper(id) => {
                // Zero-extend the id through r11: a `mov m64, imm32` would sign-extend it.
                self.emit_mov_imm(bpfx_bytecode::Width::W32, x::R11, id as i32);
                asm!(self; mov [BYTE r12 + ctx::HELPER_ID], r11);
                self.emit_helper_call(pc);
            }
            CallTarget::Register(r) => {
                let r = host(r);
                asm!(self; mov [BYTE r12 + ctx::HELPER_ID], Rq(r));
                self.emit_helper_call(pc);
            }
            CallTarget::Local { off } => self.emit_local_call(pc, pc.jump(off)),
            CallTarget::Kfunc(_) => self.emit_trap_now(pc, TrapKind::Unsupported),
        }
    }

    /// The array whose lookup the `call` of helper `id` at `pc` computes in the code, as
    /// `(offset of its base in the table of bases, max_entries, stride, bytes of one CPU's
    /// values for a per-CPU array)`: the one of
    /// [`crate::InlineMaps`] whose handle r1 holds on every path to the call (an `lddw` earlier
    /// in the call's basic block, r1 untouched since), with the key proven in a stack frame
    /// and the shape the proofs of the call assumed (the verifier may join the handles of
    /// maps of one shape) fitting it: a 4-byte key and values no longer than the stride, so
    /// every proven access through the result stays in the block.
    fn inlined_lookup(&self, pc: Pc, id: u32) -> Option<(i32, u32, u32, Option<u32>)> {
        let facts = self.facts?;
        let call = facts.map_call(pc).filter(|c| c.key_on_stack)?;
        let i = self.inline.array(id, self.r1_constant_at(pc)?)?;
        let (max_entries, stride, span) = self.inline.shape(i);
        let def = facts.assumptions().maps.get(call.map)?;
        let fits = def.key_size == 4 && def.value_size <= stride;
        let at = i32::try_from(i.checked_mul(8)?).ok()?;
        fits.then_some((at, max_entries, stride, span))
    }

    /// The offset in the table of bases of the direct entry ([`crate::DirectLookup`]) of the
    /// map whose handle r1 holds on every path to the `call` of helper `id` at `pc` (from an
    /// `lddw` earlier in the call's basic block, r1 untouched since), and which of its
    /// functions the call makes, if it has one for `id`.
    fn direct_call(&self, pc: Pc, id: u32) -> Option<(i32, crate::code::DirectOp)> {
        let (i, op) = self.inline.direct(id, self.r1_constant_at(pc)?)?;
        Some((i32::try_from(i.checked_mul(8)?).ok()?, op))
    }

    /// The constant r1 holds when the instruction at `pc` runs: the value of an `lddw r1`
    /// earlier in the same basic block with no write to r1 (nor call) between, and no jump
    /// into the instructions after it.
    fn r1_constant_at(&self, pc: Pc) -> Option<u64> {
        let mut at = pc;
        loop {
            if self.cfg.is_leader(at) {
                return None;
            }
            let mut prev = Pc(at.0.checked_sub(1)?);
            if !self.prog.is_insn_start(prev) {
                prev = Pc(prev.0.checked_sub(1)?);
            }
            let op = self.prog.get(prev)?;
            match *op {
                Op::LoadImm64 {
                    dst: Reg::R1,
                    value: Imm64::Value(v),
                } => return Some(v),
                _ if op.clobbers().contains(Reg::R1) => return None,
                _ => at = prev,
            }
        }
    }

    /// `r0 = idx < max_entries ? base + idx * stride : 0` for the `u32` index at r2 (plus
    /// `cpu * span` for a per-CPU array, the run's CPU from the context), without a branch:
    /// the compare's borrow becomes an all-ones or zero mask over the address, so no
    /// mispredicted path sees an address past the array. r1–r5 are zeroed after, as after
    /// any helper call.
    fn emit_inline_lookup(
        &mut self,
        (at, max_entries, stride, span): (i32, u32, u32, Option<u32>),
    ) {
        asm!(self; mov eax, DWORD [rsi]);
        self.emit_mov_imm(bpfx_bytecode::Width::W32, x::R10, max_entries as i32);
        asm!(self
            ; cmp eax, r10d
            // -1 when the index is below max_entries (the compare borrowed), else 0.
            ; sbb r10, r10
        );
        if stride.is_power_of_two() {
            asm!(self; shl rax, stride.trailing_zeros() as i8);
        } else {
            self.emit_mov_imm(bpfx_bytecode::Width::W32, x::R11, stride as i32);
            asm!(self; imul rax, r11);
        }
        if let Some(span) = span {
            // cpu * span < the block's length (`JitProgram` keeps the CPU below its CPUs).
            self.emit_mov_imm(bpfx_bytecode::Width::W32, x::R9, span as i32);
            asm!(self
                ; mov r11, [r12 + ctx::CPU]
                ; imul r11, r9
                ; add rax, r11
            );
        }
        asm!(self; mov r9, [r12 + ctx::MAP_BASES]);
        match i8::try_from(at) {
            Ok(at8) => asm!(self; add rax, [BYTE r9 + at8]),
            Err(_) => asm!(self; add rax, [r9 + at]),
        }
        asm!(self
            ; and rax, r10
            ; xor edi, edi
            ; xor esi, esi
            ; xor edx, edx
            ; xor ecx, ecx
            ; xor r8d, r8d
        );
    }

    /// A direct call ([`crate::DirectLookup`]): the entry at `at` in the table of bases, its
    /// function for `op` called with the `call`'s arguments (r1–r2, or r1–r4 for an update),
    /// the entry and the context (`code::DirectFn`, `code::DirectUpdateCall`), the helper id
    /// already in the context for the dispatcher it may defer to. It fails as the dispatcher
    /// does, with this pc.
    fn emit_direct_call(&mut self, pc: Pc, at: i32, op: crate::code::DirectOp) {
        let unwind = self.stubs.unwind;
        let failed = self.cold_leave(pc, unwind);
        let off = op.offset();
        asm!(self; mov [BYTE r12 + ctx::FRAME_POINTER], rbp);
        if op == crate::code::DirectOp::Update {
            // r1–r4 stay in rdi, rsi, rdx, rcx; the entry goes in r8 (r5 is not an argument of
            // the update) and the context in r9.
            asm!(self; mov r8, [r12 + ctx::MAP_BASES]);
            match i8::try_from(at) {
                Ok(at8) => asm!(self; mov r8, [BYTE r8 + at8]),
                Err(_) => asm!(self; mov r8, [r8 + at]),
            }
            asm!(self
                ; mov r9, r12
                // rsp ≡ 8 (mod 16) in eBPF code; SysV wants 0 at the call.
                ; sub rsp, 8
                ; call QWORD [BYTE r8 + off]
                ; add rsp, 8
            );
        } else {
            asm!(self; mov rdx, [r12 + ctx::MAP_BASES]);
            match i8::try_from(at) {
                Ok(at8) => asm!(self; mov rdx, [BYTE rdx + at8]),
                Err(_) => asm!(self; mov rdx, [rdx + at]),
            }
            asm!(self
                ; mov rcx, r12
                ; sub rsp, 8
                ; call QWORD [BYTE rdx + off]
                ; add rsp, 8
            );
        }
        asm!(self
            ; cmp QWORD [r12 + ctx::TRAP_KIND], 0
            ; jne =>failed
            // r1–r5 are zero after a helper call.
            ; xor edi, edi
            ; xor esi, esi
            ; xor edx, edx
            ; xor ecx, ecx
            ; xor r8d, r8d
        );
    }

    fn emit_helper_call(&mut self, pc: Pc) {
        let unwind = self.stubs.unwind;
        let failed = self.cold_leave(pc, unwind);
        asm!(self
            ; mov [BYTE r12 + ctx::FRAME_POINTER], rbp
            ; mov r9, r12
            // rsp ≡ 8 (mod 16) in eBPF code; SysV wants 0 at the call.
            ; sub rsp, 8
            ; call QWORD [BYTE r12 + ctx::DISPATCH]
            ; add rsp, 8
            // The dispatcher recorded UnknownHelper or HelperError: leave with this pc.
            ; cmp QWORD [r12 + ctx::TRAP_KIND], 0
            ; jne =>failed
            // r0 is already in rax. r1–r5 are zero after a helper call (the contract), which
            // also hides whatever the host left in them.
            ; xor edi, edi
            ; xor esi, esi
            ; xor edx, edx
            ; xor ecx, ecx
            ; xor r8d, r8d
        );
    }

    /// A callback-taking helper call (`bpf_loop`) whose callback the verifier recorded: the
    /// dispatcher runs the helper and, if it asks for callbacks, takes the first step
    /// (`cb_pending`, `cb_args`); then a loop calls the callback as a local call (r6–r9
    /// saved, r10 one frame down, the depth checked each time) and hands its r0 to
    /// `callback_next` for the next step, until the helper is done with its result in rax.
    /// Budget and traps need nothing here: the callback's own code charges its instructions
    /// and reports its pcs, and the `call` ends its budget block.
    fn emit_callback_call(&mut self, pc: Pc, callback: Pc) {
        let unwind = self.stubs.unwind;
        let failed = self.cold_leave(pc, unwind);
        let too_deep = self.cold_trap(pc, TrapKind::CallDepthExceeded);
        let label = self.jump_label(None, callback);
        let top = self.new_label();
        let done = self.new_label();
        let saved = [Reg::R6, Reg::R7, Reg::R8, Reg::R9].map(host);
        asm!(self
            ; mov QWORD [r12 + ctx::CB_SITE], 1
            ; mov [BYTE r12 + ctx::FRAME_POINTER], rbp
            ; mov r9, r12
            // rsp ≡ 8 (mod 16) in eBPF code; SysV wants 0 at the call.
            ; sub rsp, 8
            ; call QWORD [BYTE r12 + ctx::DISPATCH]
            ; add rsp, 8
            ; cmp QWORD [r12 + ctx::TRAP_KIND], 0
            ; jne =>failed
            ; =>top
            ; cmp QWORD [r12 + ctx::CB_PENDING], 0
            ; je =>done
            // The callback's frame would be below the deepest one allowed.
            ; cmp rbp, [BYTE r12 + ctx::LOWEST_FP]
            ; jbe =>too_deep
            ; mov rdi, [r12 + ctx::CB_ARGS]
            ; mov rsi, [r12 + ctx::CB_ARGS + 8]
            ; mov rdx, [r12 + ctx::CB_ARGS + 16]
            ; mov rcx, [r12 + ctx::CB_ARGS + 24]
            ; mov r8, [r12 + ctx::CB_ARGS + 32]
        );
        for &r in &saved {
            asm!(self; push Rq(r));
        }
        // Four pushes, the pad and the return address: 48 bytes, so the callee's rsp is
        // ≡ 8 (mod 16) as every function that may call a helper expects.
        asm!(self
            ; sub rsp, 8
            ; sub rbp, crate::abi::FRAME
            ; call =>label
            ; add rbp, crate::abi::FRAME
            ; add rsp, 8
        );
        for &r in saved.iter().rev() {
            asm!(self; pop Rq(r));
        }
        asm!(self
            ; mov [BYTE r12 + ctx::FRAME_POINTER], rbp
            ; mov rdi, rax
            ; mov rsi, r12
            ; sub rsp, 8
            ; call QWORD [r12 + ctx::CB_NEXT]
            ; add rsp, 8
            ; cmp QWORD [r12 + ctx::TRAP_KIND], 0
            ; jne =>failed
            ; jmp =>top
            ; =>done
            // r0 is the helper's result; r1–r5 are zero after a helper call.
            ; xor edi, edi
            ; xor esi, esi
            ; xor edx, edx
            ; xor ecx, ecx
            ; xor r8d, r8d
        );
    }

    /// A local call saves only the callee-saved registers the callee may write (itself or
    /// deeper, [`crate::analysis::calls::Callees`]): r6–r9 come back unchanged either way. r10 is moved
    /// down a frame and back by arithmetic, as every callee leaves it where it found it. With
    /// a helper call anywhere below, the pushes are padded to keep rsp ≡ 8 (mod 16) in the
    /// callee; otherwise nothing below depends on the alignment.
    fn emit_local_call(&mut self, pc: Pc, callee: Pc) {
        let too_deep = self.cold_trap(pc, TrapKind::CallDepthExceeded);
        let label = self.jump_label(None, callee);
        let (regs, helpers) = self.callees.of(callee);
        let mut saved = [0u8; 4];
        let mut count = 0;
        for r in regs {
            saved[count] = host(r);
            count += 1;
        }
        let saved = &saved[..count];
        // The pushes plus the return address must be a multiple of 16 bytes.
        let pad = helpers && count % 2 == 0;
        asm!(self
            // The callee's frame would be below the deepest one allowed.
            ; cmp rbp, [BYTE r12 + ctx::LOWEST_FP]
            ; jbe =>too_deep
        );
        for &r in saved {
            asm!(self; push Rq(r));
        }
        if pad {
            asm!(self; sub rsp, 8);
        }
        asm!(self
            ; sub rbp, crate::abi::FRAME
            ; call =>label
            ; add rbp, crate::abi::FRAME
        );
        if pad {
            asm!(self; add rsp, 8);
        }
        for &r in saved.iter().rev() {
            asm!(self; pop Rq(r));
        }
    }
}
