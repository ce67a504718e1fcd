//! Executable memory and the crossing into and out of generated code: the only `unsafe` in
//! bpfx.
//!
//! Code is assembled into a plain `Vec<u8>`, copied into a fresh anonymous read-write mapping
//! and sealed read+execute before anything can call it, so no page is ever writable and
//! executable at once (W^X).

use crate::abi::{FRAME, RunCtx};
use bpfx_exec::{GuestMemory, Region, TrapKind};
use memmap2::{Mmap, MmapMut};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

/// Sealed machine code whose entry point is its first byte.
///
/// # Invariants
/// The mapping is read+execute only, starts with exactly the `len` bytes `emit::assemble`
/// produced (the rest of its last page is `int3`), and those bytes implement
/// `extern "sysv64" fn(*mut RunCtx) -> u64` at offset 0 (see [`crate::abi::emit_prologue`]).
/// `map` is `None` only inside `drop`.
#[derive(Debug)]
pub(crate) struct ExecCode {
    map: Option<Mmap>,
    len: usize,
}

/// Mappings of dropped programs, sealed read+execute, kept for the next compilations: reusing
/// one costs two `mprotect` calls (writable to copy, then sealed again) where a fresh one
/// costs `mmap`, page faults on first touch, `mprotect` and, when dropped, `munmap` with its
/// TLB shootdown; that was most of the compile time of small programs. A mapping is never
/// writable and executable at once: it is writable only while a compilation owns it and
/// nothing can run it.
static POOL: Mutex<Vec<Mmap>> = Mutex::new(Vec::new());
/// Mappings kept at most (the rest are unmapped when dropped).
const POOL_MAX: usize = 32;
/// Largest mapping kept, in bytes.
const POOL_MAX_LEN: usize = 64 * 1024;
/// Mapping sizes are rounded to this (the x86-64 page size), so equal sizes reuse each other.
const PAGE: usize = 4096;

impl ExecCode {
    /// Copies `code` into a mapping (a pooled one of the same size, or a new one) and seals it
    /// read+execute.
    pub(crate) fn new(code: &[u8]) -> std::io::Result<ExecCode> {
        let size = code.len().max(1).div_ceil(PAGE) * PAGE;
        let pooled = POOL.lock().ok().and_then(|mut pool| {
            let i = pool.iter().position(|m| m.len() == size)?;
            Some(pool.swap_remove(i))
        });
        let mut map = match pooled {
            Some(m) => m.make_mut()?,
            None => MmapMut::map_anon(size)?,
        };
        map[..code.len()].copy_from_slice(code);
        // What a previous program left after the new code is never jumped to; `int3` makes
        // sure it could not run even if it were.
        map[code.len()..].fill(0xcc);
        let map = map.make_exec()?;
        Ok(ExecCode {
            map: Some(map),
            len: code.len(),
        })
    }

    /// The sealed bytes (readable, for listings).
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_ref().map_or(&[], |m| &m[..self.len])
    }

    /// Runs the code with `ctx` and returns r0 (meaningful only when `ctx.trap_kind` is 0).
    pub(crate) fn call(&self, ctx: &mut RunCtx) -> u64 {
        // SAFETY: by the type's invariant the mapping holds code implementing
        // `extern "sysv64" fn(*mut RunCtx) -> u64` at offset 0, and it stays mapped while
        // `self` is borrowed. That code reads and writes only `ctx` (exclusively borrowed for
        // the call), the input memory and the stack buffer whose addresses the host stored in
        // `ctx` (exclusively borrowed by `JitProgram::run` for the call), the shared blocks and
        // their span table (borrowed by `run` for the call; shared memory is `AtomicU64` words,
        // which plain machine loads and stores may access), and the native stack below rsp;
        // every guest access is guarded or proven inside those regions (stores and atomics
        // only in writable blocks), and it restores the SysV callee-saved registers and rsp
        // before returning.
        unsafe {
            let entry: extern "sysv64" fn(*mut RunCtx) -> u64 =
                std::mem::transmute::<*const u8, _>(self.bytes().as_ptr());
            entry(ctx)
        }
    }
}

impl Drop for ExecCode {
    /// Returns the mapping to the pool when it has room; no program refers to it any more.
    fn drop(&mut self) {
        let Some(map) = self.map.take() else { return };
        if map.len() <= POOL_MAX_LEN
            && let Ok(mut pool) = POOL.lock()
            && pool.len() < POOL_MAX
        {
            pool.push(map);
        }
    }
}

/// The helper dispatcher called by generated code: finds the helper `ctx.helper_id`, gives it
/// the guest memory of the current frame, and returns its result. Unknown ids and helper
/// errors are recorded in `ctx.trap_kind` (the code then leaves with the pc); a panicking
/// helper is recorded too, and the host resumes the panic once the code has returned.
pub(crate) extern "sysv64" fn dispatch(
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
    ctx: *mut RunCtx,
) -> u64 {
    // SAFETY: generated code passes the context pointer it was entered with (`ExecCode::call`),
    // which is valid and not otherwise accessed while the code runs; the code is suspended in
    // this call, so this is the only live reference.
    let ctx = unsafe { &mut *ctx };
    match catch_unwind(AssertUnwindSafe(|| call_helper(ctx, [a1, a2, a3, a4, a5]))) {
        Ok(Ok(r0)) => r0,
        Ok(Err(kind)) => {
            ctx.trap_kind = u64::from(kind as u8);
            0
        }
        Err(payload) => {
            ctx.panic = Some(payload);
            ctx.trap_kind = u64::from(TrapKind::HelperError as u8);
            0
        }
    }
}

fn call_helper(ctx: &mut RunCtx, args: [u64; 5]) -> Result<u64, TrapKind> {
    // Helper ids are 32-bit; a larger `callx` value names no helper.
    let id = u32::try_from(ctx.helper_id).map_err(|_| TrapKind::UnknownHelper)?;
    // SAFETY: `helpers` points to the `Helpers` that `JitProgram::run` borrows for the whole
    // run.
    let helpers = unsafe { &*ctx.helpers };
    let helper = helpers.get(id).ok_or(TrapKind::UnknownHelper)?;
    // r10 is a frame pointer of the stack (`RunCtx` invariant), so this is the call depth.
    let depth = ((ctx.stack_top - ctx.frame_pointer) / FRAME as u64) as u32;
    // SAFETY: `input_ptr`/`input_len` come from the `&mut [u8]` that `JitProgram::run` holds
    // exclusively for the run and does not touch until the code returns; the generated code is
    // suspended in this call, so this slice is the only access while it lives.
    let input = unsafe { std::slice::from_raw_parts_mut(ctx.input_ptr, ctx.input_len) };
    // SAFETY: as for the input: `stack` comes from the `&mut Stack` that `run` holds for the
    // run, unused by the host until the code returns.
    let stack = unsafe { &mut *ctx.stack };
    // SAFETY: `shared_ptr`/`shared_len` come from the `Env::shared` vector that `run` borrows
    // (through `EnvParts`) for the whole run; nothing mutates it meanwhile.
    let shared = unsafe { std::slice::from_raw_parts(ctx.shared_ptr, ctx.shared_len) };
    let mut memory = GuestMemory {
        input: Region::new(input),
        stack: stack.active_region(depth),
        shared,
    };
    let result = helper(&mut memory, args);
    result.map_err(|e| {
        ctx.helper_error = Some(e);
        TrapKind::HelperError
    })
}
