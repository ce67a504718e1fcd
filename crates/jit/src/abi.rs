//! The host↔JIT contract: register map, the per-run context, frame layout, prologue and
//! epilogue.
//!
//! # Frames
//! ```text
//! native stack (rsp), grows down              eBPF stack (rbp = r10), the exec crate's `Stack`
//! ┌──────────────────────────────┐            ┌──────────────────────┐ ◄ stack_top = frame 0's r10
//! │ host return address          │            │ frame 0 (512 bytes)  │
//! │ saved rbp r12, rbx r13–r15   │ prologue   ├──────────────────────┤ ◄ frame 1's r10
//! │ 8 bytes padding (even count) │            │ frame 1              │
//! ├──────────────────────────────┤ ◄ saved_rsp├──────────────────────┤
//! │ return address (entry call)  │            │ …                    │
//! │ per local call: the r6–r9 the│            ├──────────────────────┤ ◄ lowest_fp
//! │   callee writes, return addr.│            │ frame max_frames - 1 │
//! └──────────────────────────────┘            └──────────────────────┘ ◄ stack base
//! ```
//! Inside every eBPF function that may reach a helper call, `rsp ≡ 8 (mod 16)`, as in any SysV
//! function after its `call`: the prologue pads the registers it saves (rbp and r12, and the
//! hosts of the r6–r9 the program uses) by 8 bytes when they are an even count, and a local
//! call into such a function pads its pushes (the r6–r9 the callee may write) to an odd count
//! of 8-byte slots before the return address. A helper call therefore subtracts 8 before its
//! `call`. A callee that reaches no helper call needs no alignment and gets no padding.
// dynasm converts every dynamic register operand with `.into()`, even from a `u8`.
#![allow(clippy::useless_conversion)]

use crate::emit::{Emitter, asm};
use bpfx_bytecode::Reg;
use bpfx_exec::{Helpers, SharedMem, Stack};
use dynasmrt::DynamicLabel;
use std::any::Any;
use std::mem::offset_of;
use std::sync::Arc;

/// x86-64 register numbers as encoded in ModRM/REX.
pub(crate) mod x {
    pub(crate) const RAX: u8 = 0;
    pub(crate) const RCX: u8 = 1;
    pub(crate) const RDX: u8 = 2;
    pub(crate) const RBX: u8 = 3;
    #[cfg(test)]
    pub(crate) const RSP: u8 = 4;
    pub(crate) const RBP: u8 = 5;
    pub(crate) const RSI: u8 = 6;
    pub(crate) const RDI: u8 = 7;
    pub(crate) const R8: u8 = 8;
    pub(crate) const R9: u8 = 9;
    pub(crate) const R10: u8 = 10;
    pub(crate) const R11: u8 = 11;
    pub(crate) const R12: u8 = 12;
    pub(crate) const R13: u8 = 13;
    pub(crate) const R14: u8 = 14;
    pub(crate) const R15: u8 = 15;
}

/// eBPF register → x86-64 register, indexed by eBPF register number (kernel style).
pub(crate) const REG_MAP: [u8; Reg::COUNT] = [
    x::RAX, // r0: the SysV return register, so a helper's result lands in r0 for free
    x::RDI, // r1: SysV argument 1, so helper calls need no shuffling
    x::RSI, // r2: SysV argument 2
    x::RDX, // r3: SysV argument 3 (and the high half of div: handled in `emit::alu`)
    x::RCX, // r4: SysV argument 4 (and the shift count cl: handled in `emit::alu`)
    x::R8,  // r5: SysV argument 5
    x::RBX, // r6: callee-saved in SysV, so helpers preserve it as eBPF requires
    x::R13, // r7: callee-saved (r12 is the context pointer, see `CTX`)
    x::R14, // r8: callee-saved
    x::R15, // r9: callee-saved
    x::RBP, // r10: callee-saved; read-only in eBPF, so it is only ever moved by local calls
];

/// The host register holding eBPF register `r`.
pub(crate) const fn host(r: Reg) -> u8 {
    REG_MAP[r.index()]
}

/// Holds a pointer to the [`RunCtx`] for the whole run. r12 is callee-saved in SysV, so helper
/// calls preserve it; as a base it costs a SIB byte, which only context accesses pay.
pub(crate) const CTX: u8 = x::R12;

/// Scratch registers, free for any lowering to clobber: caller-saved, and no eBPF register
/// lives there. r9 doubles as the sixth SysV argument, which carries the context pointer to
/// the helper dispatcher.
pub(crate) const SCRATCH: [u8; 3] = [x::R9, x::R10, x::R11];

/// SysV integer argument registers, in order (the register-map tests check against it).
#[cfg(test)]
pub(crate) const SYSV_ARGS: [u8; 6] = [x::RDI, x::RSI, x::RDX, x::RCX, x::R8, x::R9];

/// SysV callee-saved registers, which the prologue saves and the epilogue restores.
#[cfg(test)]
pub(crate) const SYSV_CALLEE_SAVED: [u8; 6] = [x::RBX, x::RBP, x::R12, x::R13, x::R14, x::R15];

/// Size of one eBPF stack frame in bytes, as a displacement.
pub(crate) const FRAME: i32 = bpfx_exec::STACK_FRAME_SIZE as i32;

/// The helper dispatcher's signature: r1–r5, then the context pointer in the sixth argument
/// register; returns the new r0. It records failures, and helpers that end the program, in
/// [`RunCtx::trap_kind`].
pub(crate) type DispatchFn = extern "sysv64" fn(u64, u64, u64, u64, u64, *mut RunCtx) -> u64;

/// Per-run state shared between the host and the generated code (which reaches it through
/// [`CTX`]). The code reads and writes only the fields whose offsets are exported below.
/// Kept between the runs of one environment ([`crate::code::RunCache`]): each run rewrites
/// the fields that belong to it before entering the code.
///
/// # Invariants
/// - `input_ok[k]` is the number of valid start offsets of a `1 << k`-byte access in the
///   input (`len - size + 1`, or 0 when `len < size`), so a guard is one unsigned compare
///   that cannot wrap.
/// - `lowest_fp <= r10 <= stack_top` and `stack_top - r10` is a multiple of 512 throughout.
/// - `trap_kind` is 0 until a fault stores a [`bpfx_exec::TrapKind`] code, or the dispatcher
///   stores [`ENDED`] with the helper's ending in `ended`; the code leaves through the unwind
///   stub right after.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RunCtx {
    /// Address of the input memory (0 when it is empty).
    pub(crate) input_base: u64,
    /// Valid start offsets per access size (1, 2, 4, 8 bytes) and per merged-guard span (16,
    /// 32, 64, 128 bytes).
    pub(crate) input_ok: [u64; 8],
    /// One past the top of the stack buffer: frame 0's r10.
    pub(crate) stack_top: u64,
    /// The r10 of the deepest frame allowed; a local call needs `r10 > lowest_fp`.
    pub(crate) lowest_fp: u64,
    /// Instructions left (`u64::MAX` when the run has no budget); the charge borrows below 0
    /// exactly when the budget is exhausted.
    pub(crate) budget: u64,
    /// The helper id of the current `call`/`callx` (a `callx` register may exceed `u32`).
    pub(crate) helper_id: u64,
    /// r10 at the current helper call: the dispatcher derives the active stack from it.
    pub(crate) frame_pointer: u64,
    /// The helper dispatcher.
    pub(crate) dispatch: DispatchFn,
    // Fields past here are beyond a disp8: only the prologue, the stubs and cold code use them.
    /// 0, or the [`bpfx_exec::TrapKind`] code of the fault that ended the run, or [`ENDED`].
    pub(crate) trap_kind: u64,
    /// The pc of the fault.
    pub(crate) trap_pc: u64,
    /// rsp just before the entry call: the unwind stub restores it to leave from any depth.
    pub(crate) saved_rsp: u64,
    /// Entry r1 and r2.
    pub(crate) entry_r1: u64,
    pub(crate) entry_r2: u64,
    /// What the dispatcher needs to build a `GuestMemory` and find a helper.
    pub(crate) input_ptr: *mut u8,
    pub(crate) input_len: usize,
    pub(crate) helpers: *const Helpers,
    pub(crate) stack: *mut Stack,
    /// The run's shared memory blocks (`Env::shared`), for helpers' `GuestMemory`.
    pub(crate) shared_ptr: *const Arc<SharedMem>,
    pub(crate) shared_len: usize,
    /// The shared blocks as [`SharedSpan`]s for the guards' slow path: writable blocks in
    /// `[shared_begin, shared_wend)`, read-only ones in `[shared_wend, shared_end)` (addresses
    /// of the table of the [`crate::code::RunCache`] holding this context, rebuilt only when
    /// a run lends other blocks; all equal when there is none).
    pub(crate) shared_begin: u64,
    pub(crate) shared_wend: u64,
    pub(crate) shared_end: u64,
    /// A helper's panic, carried across the machine code and resumed by the host.
    pub(crate) panic: Option<Box<dyn Any + Send>>,
    /// A failing helper's message, handed to `Env::helper_error` after the run.
    pub(crate) helper_error: Option<bpfx_exec::HelperError>,
    /// How a helper ended the program ([`bpfx_exec::HelperRet::Return`] or
    /// [`bpfx_exec::HelperRet::TailCall`]), with [`ENDED`] in `trap_kind`.
    pub(crate) ended: Option<bpfx_exec::HelperRet>,
    /// Set to 1 by the code right before the dispatcher call of a `call` that serves
    /// callbacks (one the verifier recorded a callback for); the dispatcher resets it. A
    /// callback request from any other `call` traps with `Unsupported`.
    pub(crate) cb_site: u64,
    /// 1 when the callback request being served wants its callback called with `cb_args`
    /// (the dispatcher or `callback_next` set it), 0 when the helper is done.
    pub(crate) cb_pending: u64,
    /// r1–r5 of the next callback call.
    pub(crate) cb_args: [u64; 5],
    /// Called after each callback run with its r0 ([`CallbackNextFn`]).
    pub(crate) cb_next: CallbackNextFn,
    /// The callback requests being served, innermost last (a callback may call a
    /// callback-taking helper itself).
    pub(crate) callbacks: Vec<Box<dyn bpfx_exec::CallbackIter>>,
    /// `may_goto`'s counter ([`bpfx_bytecode::MAY_GOTO_BUDGET`] at the run's start): the
    /// instruction jumps when it is 0, else decrements it.
    pub(crate) may_goto: u64,
    /// The addresses of the blocks of the arrays whose lookups the code computes
    /// (`InlineMaps`), by position: a table the `JitProgram` owns. After the older fields, so that
    /// adding it moved none of them.
    pub(crate) map_bases: u64,
    /// The CPU the run is on, below the CPUs of every inlined per-CPU array.
    pub(crate) cpu: u64,
    // Written only by the guards' out-of-bounds stubs, read by the host after the run.
    /// 0, or, when a guard found an access outside every region, its size in bytes with
    /// [`FAULT_WRITE`] for a store or atomic; the address is in `fault_addr` and the faulting
    /// function's r10 in `fault_fp` (the host builds [`bpfx_exec::AccessFault`] from them).
    pub(crate) fault_access: u64,
    pub(crate) fault_addr: u64,
    pub(crate) fault_fp: u64,
    /// The embedder's run state (`Env::host`, borrowed by `JitProgram::run` for the run),
    /// for the `GuestMemory` of helper calls; never touched by the code.
    pub(crate) host: Option<std::ptr::NonNull<dyn Any + Send + Sync>>,
}

/// The host function the code calls after each callback run: the callback's r0, the
/// context; returns the helper's result when it is done (`cb_pending` 0), else 0 with the
/// next arguments in `cb_args`. Failures are recorded in [`RunCtx::trap_kind`] as the
/// dispatcher records them.
pub(crate) type CallbackNextFn = extern "sysv64" fn(u64, *mut RunCtx) -> u64;

/// The bit of [`RunCtx::fault_access`] that marks a store or atomic.
pub(crate) const FAULT_WRITE: u64 = 0x100;

/// What the dispatcher stores in [`RunCtx::trap_kind`] when a helper ends the program: not a
/// [`bpfx_exec::TrapKind`] code, but nonzero, so the code leaves at the `call` as for a
/// helper's trap (the pc in `trap_pc`), and the host reads the ending from `ended`.
pub(crate) const ENDED: u64 = 0xff;
const _: () = assert!(bpfx_exec::TrapKind::ALL.len() < ENDED as usize);

/// One shared block as the guards' slow path sees it: its address and, like
/// [`RunCtx::input_ok`], the number of valid start offsets per access size, so the check is
/// one compare that cannot wrap.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct SharedSpan {
    pub(crate) addr: u64,
    pub(crate) ok: [u64; 4],
}

impl SharedSpan {
    pub(crate) fn new(m: &SharedMem) -> SharedSpan {
        let len = m.len() as u64;
        SharedSpan {
            addr: m.addr(),
            ok: [1, 2, 4, 8].map(|size| valid_starts(len, size)),
        }
    }
}

/// Size of a [`SharedSpan`], as the slow path steps through the table.
pub(crate) const SPAN_SIZE: i32 = std::mem::size_of::<SharedSpan>() as i32;

/// Offset of the `ok` entry for an access of `bytes` bytes inside a [`SharedSpan`].
pub(crate) const fn span_ok(bytes: u32) -> i32 {
    offset_of!(SharedSpan, ok) as i32 + 8 * bytes.trailing_zeros() as i32
}

/// Field offsets of [`RunCtx`] as displacements from [`CTX`].
pub(crate) mod ctx {
    use super::{RunCtx, offset_of};
    pub(crate) const INPUT_BASE: i8 = disp(offset_of!(RunCtx, input_base));
    pub(crate) const INPUT_OK: i8 = disp(offset_of!(RunCtx, input_ok));
    pub(crate) const STACK_TOP: i8 = disp(offset_of!(RunCtx, stack_top));
    pub(crate) const LOWEST_FP: i8 = disp(offset_of!(RunCtx, lowest_fp));
    pub(crate) const BUDGET: i8 = disp(offset_of!(RunCtx, budget));
    pub(crate) const HELPER_ID: i8 = disp(offset_of!(RunCtx, helper_id));
    pub(crate) const FRAME_POINTER: i8 = disp(offset_of!(RunCtx, frame_pointer));
    pub(crate) const DISPATCH: i8 = disp(offset_of!(RunCtx, dispatch));
    // Used once per run or on the way out of it: a disp32 costs nothing there.
    pub(crate) const TRAP_KIND: i32 = offset_of!(RunCtx, trap_kind) as i32;
    pub(crate) const MAY_GOTO: i32 = offset_of!(RunCtx, may_goto) as i32;
    pub(crate) const TRAP_PC: i32 = offset_of!(RunCtx, trap_pc) as i32;
    pub(crate) const FAULT_ACCESS: i32 = offset_of!(RunCtx, fault_access) as i32;
    pub(crate) const FAULT_ADDR: i32 = offset_of!(RunCtx, fault_addr) as i32;
    pub(crate) const FAULT_FP: i32 = offset_of!(RunCtx, fault_fp) as i32;
    pub(crate) const SAVED_RSP: i32 = offset_of!(RunCtx, saved_rsp) as i32;
    pub(crate) const ENTRY_R1: i32 = offset_of!(RunCtx, entry_r1) as i32;
    pub(crate) const ENTRY_R2: i32 = offset_of!(RunCtx, entry_r2) as i32;
    // Read only by the guards' slow path, once per miss: a disp32 costs nothing there.
    pub(crate) const SHARED_BEGIN: i32 = offset_of!(RunCtx, shared_begin) as i32;
    pub(crate) const SHARED_WEND: i32 = offset_of!(RunCtx, shared_wend) as i32;
    pub(crate) const SHARED_END: i32 = offset_of!(RunCtx, shared_end) as i32;
    // Used once per callback run, beside two calls: a disp32 costs nothing there.
    pub(crate) const CB_SITE: i32 = offset_of!(RunCtx, cb_site) as i32;
    pub(crate) const CB_PENDING: i32 = offset_of!(RunCtx, cb_pending) as i32;
    pub(crate) const CB_ARGS: i32 = offset_of!(RunCtx, cb_args) as i32;
    pub(crate) const CB_NEXT: i32 = offset_of!(RunCtx, cb_next) as i32;
    // Read once per inlined array lookup, beside a multiply: a disp32 costs little there.
    pub(crate) const MAP_BASES: i32 = offset_of!(RunCtx, map_bases) as i32;
    pub(crate) const CPU: i32 = offset_of!(RunCtx, cpu) as i32;

    /// A field offset as a disp8: every field the code touches is within 127 bytes of r12,
    /// which keeps each context access two bytes shorter (a field past it fails to compile).
    const fn disp(offset: usize) -> i8 {
        assert!(offset < 128, "context field beyond a disp8");
        offset as i8
    }

    /// The `input_ok` entry for an access (or merged-guard span) of `bytes` bytes, a power of
    /// two up to 128.
    pub(crate) const fn input_ok(bytes: u32) -> i8 {
        INPUT_OK + 8 * bytes.trailing_zeros() as i8
    }
}

/// Number of valid start offsets of a `size`-byte access in `len` bytes (see [`RunCtx`]).
pub(crate) const fn valid_starts(len: u64, size: u64) -> u64 {
    if len >= size { len - size + 1 } else { 0 }
}

/// The host entry point at code offset 0, `extern "sysv64" fn(*mut RunCtx) -> u64`: saves the
/// callee-saved registers the code uses (rbp and r12 always, rbx and r13–r15 for the r6–r9
/// that `used` names), sets up the eBPF entry registers (zeroing those that start at 0),
/// calls pc 0 (so every `exit` is a `ret`), then restores and returns r0. The `unwind` stub
/// re-enters the epilogue ([`Stubs::epilogue`](crate::emit::stubs::Stubs)) from any depth by
/// restoring `saved_rsp`. Nothing but r6–r9 lives in rbx and r13–r15 (the scratch registers
/// are caller-saved), so a register no instruction names is never touched. `used` has bit `i`
/// for `ri`.
pub(crate) fn emit_prologue(e: &mut Emitter<'_>, used: u16) {
    let entry = e.jump_label(None, bpfx_bytecode::Pc(0));
    emit_entry(e, used, entry, false);
}

/// A second host entry point, for the timer callback at `callback`
/// ([`bpfx_verifier::VerifiedProgram::timer_callbacks`]): the prologue's, with r1–r5 from
/// [`RunCtx::cb_args`] instead of the input's registers, calling the callback's function in
/// frame 0, then leaving through the prologue's epilogue. It saves exactly what the prologue
/// saves, so the epilogue (and the `unwind` stub, which restores `saved_rsp` and enters it)
/// restores it. Returns the entry's code offset.
pub(crate) fn emit_timer_entry(
    e: &mut Emitter<'_>,
    used: u16,
    callback: bpfx_bytecode::Pc,
) -> usize {
    let at = e.offset();
    let label = e.jump_label(None, callback);
    emit_entry(e, used, label, true);
    at
}

/// The host entry calling `entry` (from the input's registers, or with `callback` the ones
/// in `cb_args`); the main entry (`callback` false) binds the epilogue after its call.
fn emit_entry(e: &mut Emitter<'_>, used: u16, entry: DynamicLabel, callback: bool) {
    let epilogue = e.stubs.epilogue;
    let mut hosts = [0u8; 4];
    let mut n = 0;
    for r in [Reg::R6, Reg::R7, Reg::R8, Reg::R9] {
        if used & (1 << r.index()) != 0 {
            hosts[n] = host(r);
            n += 1;
        }
    }
    let kept = &hosts[..n];
    // rbp, r12 and the kept ones, plus the return address: rsp must be 16-byte aligned at
    // the entry call (see the module doc).
    let pad = n.is_multiple_of(2);
    asm!(e
        ; push rbp
        ; push r12
    );
    for &r in kept {
        asm!(e; push Rq(r));
    }
    if pad {
        asm!(e; sub rsp, 8);
    }
    if callback {
        asm!(e
            ; mov r12, rdi
            ; mov rdi, [r12 + ctx::CB_ARGS]
            ; mov rsi, [r12 + ctx::CB_ARGS + 8]
            ; mov rdx, [r12 + ctx::CB_ARGS + 16]
            ; mov rcx, [r12 + ctx::CB_ARGS + 24]
            ; mov r8, [r12 + ctx::CB_ARGS + 32]
            ; xor eax, eax
        );
    } else {
        asm!(e
            ; mov r12, rdi
            ; mov rdi, [r12 + ctx::ENTRY_R1]
            ; mov rsi, [r12 + ctx::ENTRY_R2]
            ; xor eax, eax
            ; xor edx, edx
            ; xor ecx, ecx
            ; xor r8d, r8d
        );
    }
    for &r in kept {
        asm!(e; xor Rd(r), Rd(r));
    }
    asm!(e
        ; mov rbp, [BYTE r12 + ctx::STACK_TOP]
        ; mov [r12 + ctx::SAVED_RSP], rsp
        ; call =>entry
    );
    if callback {
        // The epilogue's pops match this entry's pushes.
        asm!(e; jmp =>epilogue);
        return;
    }
    asm!(e; =>epilogue);
    if pad {
        asm!(e; add rsp, 8);
    }
    for &r in kept.iter().rev() {
        asm!(e; pop Rq(r));
    }
    asm!(e
        ; pop r12
        ; pop rbp
        ; ret
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn argument_registers_are_sysv_in_order() {
        for i in 1..=5 {
            assert_eq!(REG_MAP[i], SYSV_ARGS[i - 1], "r{i}");
        }
        assert_eq!(REG_MAP[0], x::RAX, "r0 is the return register");
    }

    #[test]
    fn preserved_registers_are_callee_saved() {
        for (i, reg) in REG_MAP.iter().enumerate().skip(6) {
            assert!(SYSV_CALLEE_SAVED.contains(reg), "r{i}");
        }
        assert!(SYSV_CALLEE_SAVED.contains(&CTX));
    }

    #[test]
    fn mapping_is_injective_and_scratch_is_disjoint() {
        let mapped: HashSet<u8> = REG_MAP.iter().copied().collect();
        assert_eq!(
            mapped.len(),
            Reg::COUNT,
            "no two eBPF registers share a host register"
        );
        assert!(!mapped.contains(&x::RSP));
        assert!(!mapped.contains(&CTX));
        for s in SCRATCH {
            assert!(!mapped.contains(&s), "scratch {s} holds an eBPF register");
            assert!(
                !SYSV_CALLEE_SAVED.contains(&s),
                "scratch {s} must be caller-saved"
            );
            assert_ne!(s, CTX);
        }
        assert_eq!(
            SYSV_ARGS[5], SCRATCH[0],
            "the context travels in the sixth argument"
        );
    }

    #[test]
    fn no_ebpf_base_register_needs_a_sib_byte() {
        // rsp and r12 as a ModRM base need a SIB byte; eBPF bases are emitted without one.
        assert!(!REG_MAP.contains(&x::RSP) && !REG_MAP.contains(&x::R12));
    }

    #[test]
    fn valid_starts_never_wrap() {
        assert_eq!(valid_starts(0, 1), 0);
        assert_eq!(valid_starts(3, 4), 0);
        assert_eq!(valid_starts(4, 4), 1);
        assert_eq!(valid_starts(16, 8), 9);
        assert_eq!(ctx::input_ok(8) - ctx::input_ok(1), 24);
    }
}
