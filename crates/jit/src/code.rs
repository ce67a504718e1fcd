//! Executable memory and the crossing into and out of generated code: the only `unsafe` in
//! bpfx.
//!
//! Code is assembled into a plain `Vec<u8>` and copied into executable memory of one of two
//! kinds ([`CodeMemory`]):
//! - **sealed** (the default): pages of their own in the sealed arena ([`pages`]), writable
//!   only while the copy is made and nothing can run them, then sealed read+execute by
//!   `mprotect` (one call per compilation; dropped programs' pages are made writable again in
//!   batches); where the arena cannot map or seal, a page-rounded anonymous mapping of its own;
//! - **dual-mapped**: a block of a process-wide arena whose chunks are `memfd` files mapped
//!   twice, read+write (never executable) and read+execute (never writable); the code is
//!   copied through the first view and runs from the second, with no system call once the
//!   arena has room ([`arena`]).
//!
//! Either way no mapping is ever writable and executable at once (W^X).

use crate::CodeMemory;
use crate::abi::{ENDED, FRAME, RunCtx, SharedSpan, valid_starts};
use bpfx_exec::{
    CallbackIter, CallbackStep, GuestMemory, HelperRet, Helpers, Region, SharedMem, Stack, TrapKind,
};
use memmap2::{Mmap, MmapMut};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

/// Machine code whose entry point is its first byte.
///
/// # Invariants
/// The memory is mapped read+execute only (through this view), starts with exactly the `len`
/// bytes `emit::assemble` produced (the rest of its page, or of its arena block, is `int3`),
/// and those bytes implement `extern "sysv64" fn(*mut RunCtx) -> u64` at offset 0 (see
/// [`crate::abi::emit_prologue`]) and at each offset of `entries` (the timer callbacks' host
/// entries, [`crate::abi::emit_timer_entry`]). They do not change while `self` lives. A
/// sealed mapping is `None` only inside `drop`.
#[derive(Debug)]
pub(crate) struct ExecCode {
    mem: Memory,
    len: usize,
    entries: Vec<usize>,
}

/// Where the code lives.
#[derive(Debug)]
enum Memory {
    /// Sealed pages of the sealed arena.
    #[cfg(target_os = "linux")]
    Pages(pages::Block),
    /// A sealed mapping of its own.
    Sealed(Option<Mmap>),
    /// A block of the dual-mapped arena.
    Dual(arena::Block),
}

/// Sealed code gets a mapping of its own where the sealed arena ([`pages`]) cannot be used
/// (off Linux, or when it cannot map or seal). Mappings of dropped programs, sealed
/// read+execute, are kept for the next such compilations: reusing one costs two `mprotect` calls (writable to copy, then sealed again) where a fresh one
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
/// The `int3` instruction: what unused code memory is filled with.
const INT3: u8 = 0xcc;

/// The process's dual-mapped arena.
static ARENA: Mutex<arena::Arena> = Mutex::new(arena::Arena::new());
/// The process's sealed arena.
#[cfg(target_os = "linux")]
static PAGES: Mutex<pages::Arena> = Mutex::new(pages::Arena::new());

impl ExecCode {
    /// Copies `code` into executable memory of the `kind` asked for: a block of the
    /// dual-mapped arena, or, for [`CodeMemory::Sealed`] and wherever the dual-mapped arena
    /// cannot map memory, sealed pages of the sealed arena, or where that cannot map or seal
    /// either, a sealed mapping of its own.
    pub(crate) fn new(code: &[u8], kind: CodeMemory) -> std::io::Result<ExecCode> {
        if kind == CodeMemory::DualMapped
            && let Some(block) = arena::Arena::alloc(&ARENA, code, arena::Chunk::map)
        {
            return Ok(ExecCode {
                mem: Memory::Dual(block),
                len: code.len(),
                entries: Vec::new(),
            });
        }
        #[cfg(target_os = "linux")]
        if let Some(block) = pages::Arena::alloc(&PAGES, code, pages::Chunk::map) {
            return Ok(ExecCode {
                mem: Memory::Pages(block),
                len: code.len(),
                entries: Vec::new(),
            });
        }
        ExecCode::sealed(code)
    }

    /// Copies `code` into a mapping (a pooled one of the same size, or a new one) and seals it
    /// read+execute.
    fn sealed(code: &[u8]) -> std::io::Result<ExecCode> {
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
        map[code.len()..].fill(INT3);
        let map = map.make_exec()?;
        Ok(ExecCode {
            mem: Memory::Sealed(Some(map)),
            len: code.len(),
            entries: Vec::new(),
        })
    }

    /// The same code, with the host entries `emit::assemble` placed at `entries` besides
    /// offset 0 (the type's invariant: only offsets of such entries may be given).
    pub(crate) fn with_entries(mut self, entries: Vec<usize>) -> ExecCode {
        self.entries = entries;
        self
    }

    /// The kind of memory the code is in (sealed when the arena could not be used).
    pub(crate) fn memory(&self) -> CodeMemory {
        match self.mem {
            #[cfg(target_os = "linux")]
            Memory::Pages(_) => CodeMemory::Sealed,
            Memory::Sealed(_) => CodeMemory::Sealed,
            Memory::Dual(_) => CodeMemory::DualMapped,
        }
    }

    /// The code's bytes, through the read+execute view (readable, for listings).
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.mem {
            #[cfg(target_os = "linux")]
            Memory::Pages(block) => block.code(),
            Memory::Sealed(map) => map.as_ref().map_or(&[], |m| &m[..self.len]),
            Memory::Dual(block) => block.code(),
        }
    }

    /// Runs the code with `ctx` from the host entry at code offset `entry` and returns r0
    /// (meaningful only when `ctx.trap_kind` is 0): 0, the program's entry, or a timer
    /// callback's ([`crate::abi::emit_timer_entry`]); any other offset is refused with the
    /// `Unsupported` trap code and nothing runs.
    pub(crate) fn call_at(&self, ctx: &mut RunCtx, entry: usize) -> u64 {
        if entry != 0 && !self.entries.contains(&entry) {
            ctx.trap_kind = bpfx_exec::TrapKind::Unsupported as u64;
            ctx.trap_pc = 0;
            return 0;
        }
        // SAFETY: by the type's invariant the memory holds code implementing
        // `extern "sysv64" fn(*mut RunCtx) -> u64` at offset 0, unchanged while `self` lives,
        // and it stays mapped while `self` is borrowed (a sealed mapping is owned; an arena
        // block holds its chunk's read+execute view, see `arena::Block`, a sealed arena's
        // block its chunk, see `pages::Block`). That code reads and
        // writes only `ctx` (exclusively borrowed for the call), the input memory and the
        // stack buffer whose addresses the host stored in `ctx` (exclusively borrowed by
        // `JitProgram::run` for the call), the shared blocks (borrowed by `run` for the call)
        // and their span table (owned by the `RunCache` that holds `ctx`, unchanged while the
        // cache is borrowed, and describing exactly those blocks: see `RunCache`; shared memory is `AtomicU64` words, which plain machine loads
        // and stores may access), and the native stack below rsp; every guest access is
        // guarded or proven inside those regions (stores and atomics only in writable
        // blocks), and it restores the SysV callee-saved registers and rsp before returning.
        //
        // `entry` is 0 or one of `self.entries`, each the offset of a host entry with the same
        // signature and the same contract (`abi::emit_timer_entry`).
        unsafe {
            let entry: extern "sysv64" fn(*mut RunCtx) -> u64 =
                std::mem::transmute::<*const u8, _>(self.bytes().as_ptr().add(entry));
            entry(ctx)
        }
    }
}

impl Drop for ExecCode {
    /// Returns a sealed mapping to the pool when it has room (an arena's block goes back to
    /// its arena by its own `drop`); no program refers to it any more.
    fn drop(&mut self) {
        let Memory::Sealed(map) = &mut self.mem else {
            return;
        };
        let Some(map) = map.take() else { return };
        if map.len() <= POOL_MAX_LEN
            && let Ok(mut pool) = POOL.lock()
            && pool.len() < POOL_MAX
        {
            pool.push(map);
        }
    }
}

/// The run context kept between the runs of one environment (in [`bpfx_exec::Env::engine_cache`],
/// so each `Program` clone, which owns its environment, has its own): built once, then each
/// run rewrites only what belongs to the run (the input's address and bounds, the stack's
/// addresses, the budget, the CPU, the helpers and run state it borrows, the per-run counters
/// and trap fields). The input bounds are recomputed only when the input's length changed, and
/// the shared blocks' span table only when the environment lends other blocks than the last
/// run's.
///
/// # Invariants
/// - Between runs every pointer field of `ctx` is stale and never dereferenced: a run stores
///   the addresses it borrows for that run before entering the code ([`RunCache::enter`]),
///   and `panic`, `helper_error`, `ended` and `callbacks` are empty (the run takes them out).
/// - `ctx.input_ok` holds the bounds of an input of `ctx.input_len` bytes when `bounds_valid`.
/// - `spans` are the spans of `blocks` (writable ones first, `writable` of them), and
///   `ctx.shared_begin/wend/end` point into `spans`, which is not changed while they do.
///   `blocks` holds the blocks themselves (not their addresses), so a block the spans
///   describe cannot be freed and its address reused while the table describes it.
#[derive(Debug)]
pub(crate) struct RunCache {
    pub(crate) ctx: RunCtx,
    bounds_valid: bool,
    blocks: Vec<Arc<SharedMem>>,
    spans: Vec<SharedSpan>,
}

// SAFETY: `RunCache` is `!Send` and `!Sync` only through `RunCtx`'s raw pointers (and its
// `panic` box, which is `Send` but not `Sync`). Between runs none of those pointers is
// dereferenced: a run rewrites each before the code can use it, pointing at what that run
// borrows (the type's invariants), so moving the cache to another thread moves no access to
// anything. The `panic`, `helper_error`, `ended` and `callbacks` fields are empty between runs,
// and during a run the cache is reached only through the `&mut` the run holds. A shared
// `&RunCache` gives access to nothing (no method takes `&self`, the fields are private to this
// crate and read only by `JitProgram::execute` through `&mut`), so sharing one between threads
// cannot race either.
unsafe impl Send for RunCache {}
// SAFETY: as for `Send` above.
unsafe impl Sync for RunCache {}

impl RunCache {
    fn new() -> RunCache {
        RunCache {
            ctx: RunCtx {
                input_base: 0,
                input_ok: [0; 8],
                stack_top: 0,
                lowest_fp: 0,
                budget: u64::MAX,
                trap_kind: 0,
                trap_pc: 0,
                fault_access: 0,
                fault_addr: 0,
                fault_fp: 0,
                helper_id: 0,
                frame_pointer: 0,
                saved_rsp: 0,
                entry_r1: 0,
                entry_r2: 0,
                dispatch,
                map_bases: 0,
                cpu: 0,
                input_ptr: std::ptr::null_mut(),
                input_len: 0,
                helpers: std::ptr::null(),
                stack: std::ptr::null_mut(),
                shared_ptr: std::ptr::null(),
                shared_len: 0,
                shared_begin: 0,
                shared_wend: 0,
                shared_end: 0,
                panic: None,
                helper_error: None,
                ended: None,
                cb_site: 0,
                cb_pending: 0,
                cb_args: [0; 5],
                cb_next: callback_next,
                callbacks: Vec::new(),
                may_goto: bpfx_bytecode::MAY_GOTO_BUDGET,
                host: None,
            },
            bounds_valid: false,
            blocks: Vec::new(),
            spans: Vec::new(),
        }
    }

    /// The cache `slot` holds, or a new one when it holds none (or something else).
    pub(crate) fn take(slot: &mut Option<Box<dyn std::any::Any + Send + Sync>>) -> Box<RunCache> {
        match slot.take().map(|b| b.downcast::<RunCache>()) {
            Some(Ok(cache)) => cache,
            _ => Box::new(RunCache::new()),
        }
    }

    /// Makes `ctx` the context of a run on `input` with these borrows (the fields the code
    /// reads at entry or may read during the run); returns it for the entry call.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn enter(
        &mut self,
        input: &mut [u8],
        stack: &mut Stack,
        stack_top: u64,
        lowest_fp: u64,
        budget: u64,
        helpers: &Helpers,
        shared: &[Arc<SharedMem>],
        map_bases: u64,
        cpu: u64,
        host: Option<std::ptr::NonNull<dyn std::any::Any + Send + Sync>>,
    ) -> &mut RunCtx {
        let (r1, r2) = bpfx_exec::entry_registers(input);
        if !self.bounds_valid || self.ctx.input_len != input.len() {
            self.ctx.input_ok = [1, 2, 4, 8, 16, 32, 64, 128].map(|size| valid_starts(r2, size));
            self.bounds_valid = true;
        }
        if !(self.blocks.len() == shared.len()
            && self
                .blocks
                .iter()
                .zip(shared)
                .all(|(a, b)| Arc::ptr_eq(a, b)))
        {
            self.set_blocks(shared);
        }
        let ctx = &mut self.ctx;
        ctx.input_base = r1;
        ctx.entry_r1 = r1;
        ctx.entry_r2 = r2;
        ctx.input_ptr = input.as_mut_ptr();
        ctx.input_len = input.len();
        ctx.stack_top = stack_top;
        ctx.lowest_fp = lowest_fp;
        ctx.frame_pointer = stack_top;
        ctx.stack = stack;
        ctx.budget = budget;
        ctx.helpers = helpers;
        ctx.shared_ptr = shared.as_ptr();
        ctx.shared_len = shared.len();
        ctx.map_bases = map_bases;
        ctx.cpu = cpu;
        ctx.host = host;
        ctx.trap_kind = 0;
        ctx.fault_access = 0;
        ctx.cb_site = 0;
        ctx.cb_pending = 0;
        ctx.may_goto = bpfx_bytecode::MAY_GOTO_BUDGET;
        ctx
    }

    /// The span table of `shared` (writable blocks first, so stores and atomics scan a prefix
    /// of it), kept for the next runs with the blocks it describes.
    #[cold]
    #[inline(never)]
    fn set_blocks(&mut self, shared: &[Arc<SharedMem>]) {
        self.blocks.clear();
        self.blocks.extend(shared.iter().cloned());
        self.spans.clear();
        self.spans.extend(
            shared
                .iter()
                .filter(|m| m.writable())
                .chain(shared.iter().filter(|m| !m.writable()))
                .map(|m| SharedSpan::new(m)),
        );
        let writable = shared.iter().filter(|m| m.writable()).count();
        let base = self.spans.as_ptr() as u64;
        let at = |n: usize| base + (n * size_of::<SharedSpan>()) as u64;
        self.ctx.shared_begin = at(0);
        self.ctx.shared_wend = at(writable);
        self.ctx.shared_end = at(self.spans.len());
    }

    /// After the code returned: clears what the run left in the context (callback requests
    /// a trap interrupted) and drops its hold on the run state.
    #[inline(always)]
    pub(crate) fn leave(&mut self) {
        self.ctx.host = None;
        if !self.ctx.callbacks.is_empty() {
            self.ctx.callbacks.clear();
        }
    }
}

/// The helper dispatcher called by generated code: calls the helper `ctx.helper_id` through
/// the checked dispatch (`Helpers::call`) with the guest memory of the current frame, and
/// returns its result. Unknown ids, out-of-bounds memory arguments and helper errors are
/// recorded in `ctx.trap_kind` (the code then leaves with the pc), and so is a helper that
/// ends the program ([`ENDED`], its ending in `ctx.ended`); a panicking helper is recorded
/// too, and the host resumes the panic once the code has returned.
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
    let serves_callbacks = std::mem::take(&mut ctx.cb_site) != 0;
    match catch_unwind(AssertUnwindSafe(|| call_helper(ctx, [a1, a2, a3, a4, a5]))) {
        Ok(Ok(HelperRet::Value(r0))) => r0,
        Ok(Ok(HelperRet::Callback(req))) if serves_callbacks => callback_step(ctx, req.iter, None),
        Ok(Ok(HelperRet::Callback(_))) => {
            ctx.trap_kind = u64::from(TrapKind::Unsupported as u8);
            0
        }
        Ok(Ok(ended)) => {
            ctx.ended = Some(ended);
            ctx.trap_kind = ENDED;
            0
        }
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

/// A map whose lookup (and update, delete) the code calls directly ([`crate::DirectLookup`]),
/// reached through the table of bases ([`RunCtx::map_bases`]): the code loads the entry's
/// address from the table and calls the function at [`DirectOp::offset`] with the `call`'s
/// arguments, the entry and the context.
///
/// # Invariants
/// `call`, `update_call` and `delete_call` are [`direct_lookup`], [`direct_update`] and
/// [`direct_delete`]; `key_size` is between 1 and [`crate::DirectLookup::MAX_KEY`], an update's
/// value size above 0.
#[repr(C)]
#[derive(Clone)]
pub(crate) struct DirectEntry {
    pub(crate) call: DirectFn,
    pub(crate) update_call: DirectUpdateCall,
    pub(crate) delete_call: DirectFn,
    pub(crate) key_size: usize,
    pub(crate) per_cpu: bool,
    pub(crate) lookup: Arc<crate::DirectLookupFn>,
    pub(crate) update: Option<(usize, Arc<crate::DirectUpdateFn>)>,
    pub(crate) delete: Option<Arc<crate::DirectDeleteFn>>,
}

/// Which function of a [`DirectEntry`] a `call` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirectOp {
    /// `direct_lookup(r1, r2, entry, ctx)`.
    Lookup,
    /// `direct_update(r1, r2, r3, r4, entry, ctx)`.
    Update,
    /// `direct_delete(r1, r2, entry, ctx)`.
    Delete,
}

impl DirectOp {
    /// The offset in a [`DirectEntry`] of the function the code calls.
    pub(crate) fn offset(self) -> i8 {
        (match self {
            DirectOp::Lookup => std::mem::offset_of!(DirectEntry, call),
            DirectOp::Update => std::mem::offset_of!(DirectEntry, update_call),
            DirectOp::Delete => std::mem::offset_of!(DirectEntry, delete_call),
        }) as i8
    }
}

/// What the code calls for a direct lookup or delete: r1 (the map's handle), r2 (the key's
/// address), the entry, the context.
pub(crate) type DirectFn = extern "sysv64" fn(u64, u64, *const DirectEntry, *mut RunCtx) -> u64;

/// What the code calls for a direct update: r1–r4 (handle, key, value, flags), the entry, the
/// context.
pub(crate) type DirectUpdateCall =
    extern "sysv64" fn(u64, u64, u64, u64, *const DirectEntry, *mut RunCtx) -> u64;

/// A direct map lookup, called by generated code with the helper id already in
/// `ctx.helper_id` and r10 in `ctx.frame_pointer`: takes the key's bytes in place from the run's
/// input or active stack and returns what the entry's lookup gives for them on the run's CPU.
/// A key in neither (a map value, or out of bounds) goes through [`dispatch`] with the same
/// arguments, as a call that is not direct would, so its checks, traps and messages are the
/// dispatcher's. A panicking lookup is recorded as the dispatcher records a helper's.
pub(crate) extern "sysv64" fn direct_lookup(
    handle: u64,
    key: u64,
    entry: *const DirectEntry,
    ctx: *mut RunCtx,
) -> u64 {
    // SAFETY: `entry` is the address the table of bases holds for this call: that of a
    // `DirectEntry` in an `Arc` which the `JitProgram` whose code is running keeps (in its
    // `InlineMaps`) for as long as it lives, never changed after it was made.
    let e = unsafe { &*entry };
    // SAFETY: as in `dispatch`: the context pointer the code was entered with, the only live
    // reference while the code is suspended in this call.
    let run = unsafe { &mut *ctx };
    let Some(k) = owned_bytes(run, key, e.key_size) else {
        return dispatch(handle, key, 0, 0, 0, ctx);
    };
    let cpu = run.cpu as u32;
    let r = catch_unwind(AssertUnwindSafe(|| (e.lookup)(k, cpu)));
    caught(run, r)
}

/// [`direct_lookup`] for `map_update_elem`: the key's and the value's bytes in place, or the
/// dispatcher with the same arguments.
pub(crate) extern "sysv64" fn direct_update(
    handle: u64,
    key: u64,
    value: u64,
    flags: u64,
    entry: *const DirectEntry,
    ctx: *mut RunCtx,
) -> u64 {
    // SAFETY: as in `direct_lookup`.
    let e = unsafe { &*entry };
    // SAFETY: as in `direct_lookup`.
    let run = unsafe { &mut *ctx };
    let Some((value_size, update)) = &e.update else {
        return dispatch(handle, key, value, flags, 0, ctx);
    };
    let (Some(k), Some(v)) = (
        owned_bytes(run, key, e.key_size),
        owned_bytes(run, value, *value_size),
    ) else {
        return dispatch(handle, key, value, flags, 0, ctx);
    };
    let cpu = run.cpu as u32;
    let r = catch_unwind(AssertUnwindSafe(|| update(k, v, flags, cpu)));
    caught(run, r)
}

/// [`direct_lookup`] for `map_delete_elem`.
pub(crate) extern "sysv64" fn direct_delete(
    handle: u64,
    key: u64,
    entry: *const DirectEntry,
    ctx: *mut RunCtx,
) -> u64 {
    // SAFETY: as in `direct_lookup`.
    let e = unsafe { &*entry };
    // SAFETY: as in `direct_lookup`.
    let run = unsafe { &mut *ctx };
    let (Some(delete), Some(k)) = (&e.delete, owned_bytes(run, key, e.key_size)) else {
        return dispatch(handle, key, 0, 0, 0, ctx);
    };
    let r = catch_unwind(AssertUnwindSafe(|| delete(k)));
    caught(run, r)
}

/// A direct call's r0, or its panic recorded as the dispatcher records a helper's.
fn caught(run: &mut RunCtx, r: std::thread::Result<u64>) -> u64 {
    match r {
        Ok(r0) => r0,
        Err(payload) => {
            run.panic = Some(payload);
            run.trap_kind = u64::from(TrapKind::HelperError as u8);
            0
        }
    }
}

/// The `len` bytes at guest address `addr` when they lie wholly in the run's input or in the
/// active stack of the current frame (regions a helper's `GuestMemory` has, [`call_helper`]).
/// The slice borrows the run's input or stack for as long as the context is borrowed: nothing
/// else touches them meanwhile (the code is suspended in the call, and the caller hands the
/// slice only to a map's lookup, which reads the map alone).
fn owned_bytes(ctx: &RunCtx, addr: u64, len: usize) -> Option<&[u8]> {
    let within = |base: u64, size: usize| {
        let rel = addr.wrapping_sub(base);
        let (size, n) = (size as u64, len as u64);
        (n <= size && rel <= size - n).then_some(rel as usize)
    };
    // SAFETY: as in `call_helper`: the input `JitProgram::run` holds exclusively for the run,
    // untouched by the suspended code and by the host while the slice lives (within this
    // call: see above).
    let input = unsafe { std::slice::from_raw_parts(ctx.input_ptr, ctx.input_len) };
    if let Some(at) = within(input.as_ptr() as u64, input.len()) {
        return input.get(at..at + len);
    }
    // SAFETY: as for the input: the stack `run` holds for the run.
    let stack = unsafe { &*ctx.stack };
    // The active region `Stack::active_region` gives a helper at this depth.
    let depth = (ctx.stack_top - ctx.frame_pointer) / FRAME as u64;
    let frames = depth.saturating_add(1).min(u64::from(stack.frames()));
    let all = stack.bytes();
    let active = all.get(all.len() - frames as usize * FRAME as usize..)?;
    let at = within(active.as_ptr() as u64, active.len())?;
    active.get(at..at + len)
}

/// Called by generated code after each run of a callback, with its r0: asks the innermost
/// callback request being served what to do next ([`callback_step`]).
pub(crate) extern "sysv64" fn callback_next(r0: u64, ctx: *mut RunCtx) -> u64 {
    // SAFETY: as in `dispatch`: the context pointer the code was entered with, the only live
    // reference while the code is suspended in this call.
    let ctx = unsafe { &mut *ctx };
    match ctx.callbacks.pop() {
        Some(iter) => callback_step(ctx, iter, Some(r0)),
        // Code calls this only while a request is pending: never taken.
        None => {
            ctx.trap_kind = u64::from(TrapKind::Unsupported as u8);
            0
        }
    }
}

/// One step of a callback request (the execution contract's "Callback" rule): with a next
/// call, its arguments go to `cb_args`, `cb_pending` is 1 and the request is kept; when done,
/// `cb_pending` is 0 and the helper's result is returned. An error or a panic of the
/// iteration is recorded as a helper's.
fn callback_step(ctx: &mut RunCtx, mut iter: Box<dyn CallbackIter>, last: Option<u64>) -> u64 {
    let step = catch_unwind(AssertUnwindSafe(|| {
        let depth = ((ctx.stack_top - ctx.frame_pointer) / FRAME as u64) as u32;
        // SAFETY: as in `call_helper`: the input, stack and shared blocks `JitProgram::run`
        // holds for the run, which the suspended code does not touch meanwhile.
        let input = unsafe { std::slice::from_raw_parts_mut(ctx.input_ptr, ctx.input_len) };
        // SAFETY: as above.
        let stack = unsafe { &mut *ctx.stack };
        // SAFETY: as above.
        let shared = unsafe { std::slice::from_raw_parts(ctx.shared_ptr, ctx.shared_len) };
        // SAFETY: as above: the run state `JitProgram::run` borrows from `Env::host` for the
        // run, which neither the host nor the suspended code touches meanwhile; the reference
        // lives only during this step.
        let host = ctx.host.map(|p| unsafe { &mut *p.as_ptr() });
        let mut memory = GuestMemory {
            input: Region::new(input),
            stack: stack.active_region(depth),
            shared,
            host,
        };
        let step = iter.next(&mut memory, last)?;
        // Bytes lent to the callback go to the top of its frame, one below the caller's; a
        // frame past the last allowed is left alone (the code traps before the call).
        Ok(match step {
            CallbackStep::CallWithFrame {
                mut args,
                bytes,
                at,
            } => {
                let fp = ctx.frame_pointer - FRAME as u64;
                let addr = bpfx_exec::frame_bytes_at(fp, bytes.len()).ok_or_else(|| {
                    bpfx_exec::HelperError("the bytes lent to a callback exceed its frame".into())
                })?;
                if fp >= ctx.lowest_fp {
                    stack.active_region(depth + 1).write(addr, &bytes);
                }
                if let Some(a) = args.get_mut(at) {
                    *a = addr;
                }
                CallbackStep::Call(args)
            }
            step => step,
        })
    }));
    match step {
        Ok(Ok(CallbackStep::Call(args))) => {
            ctx.cb_args = args;
            ctx.cb_pending = 1;
            ctx.callbacks.push(iter);
            0
        }
        Ok(Ok(CallbackStep::Done(r0))) => {
            ctx.cb_pending = 0;
            r0
        }
        // Turned into a `Call` above.
        Ok(Ok(CallbackStep::CallWithFrame { .. })) => {
            ctx.trap_kind = u64::from(TrapKind::Unsupported as u8);
            0
        }
        Ok(Err(e)) => {
            ctx.helper_error = Some(e);
            ctx.trap_kind = u64::from(TrapKind::HelperError as u8);
            0
        }
        Err(payload) => {
            ctx.panic = Some(payload);
            ctx.trap_kind = u64::from(TrapKind::HelperError as u8);
            0
        }
    }
}

fn call_helper(ctx: &mut RunCtx, args: [u64; 5]) -> Result<HelperRet, TrapKind> {
    // Helper ids are 32-bit; a larger `callx` value names no helper.
    let id = u32::try_from(ctx.helper_id).map_err(|_| TrapKind::UnknownHelper)?;
    // SAFETY: `helpers` points to the `Helpers` that `JitProgram::run` borrows for the whole
    // run.
    let helpers = unsafe { &*ctx.helpers };
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
    // SAFETY: `host` comes from the `&mut` run state (`Env::host`) that `run` borrows for the
    // whole run and does not touch until the code returns; this is its only access while the
    // reference lives (the helper call below).
    let host = ctx.host.map(|p| unsafe { &mut *p.as_ptr() });
    let mut memory = GuestMemory {
        input: Region::new(input),
        stack: stack.active_region(depth),
        shared,
        host,
    };
    // The checked dispatch: memory arguments are checked against the regions above (the
    // interpreter's), before the helper runs.
    helpers.call(id, &mut memory, args, &mut ctx.helper_error)
}

/// The dual-mapped code arena: chunks of `memfd` memory, each mapped twice, read+write and
/// read+execute, carved into blocks of [`ALIGN`](arena::ALIGN) bytes.
///
/// # Invariants
/// - No view is both writable and executable: the arena writes only through `rw`, code runs
///   only from `rx`.
/// - A block's bytes are written only while it is being allocated (before any `ExecCode`
///   owns it) and when it is given back (filled with `int3`); so the bytes of a live block
///   never change, and writes to other blocks of the chunk touch other bytes.
/// - Each chunk's free list holds disjoint, sorted, coalesced ranges that no live block
///   overlaps; a chunk leaves the arena only when all of it is free.
mod arena {
    use super::{INT3, PAGE};
    use memmap2::{Mmap, MmapMut};
    use std::io;
    use std::sync::{Arc, Mutex};

    /// Blocks start at and are rounded to multiples of this many bytes (a cache line, so
    /// programs share pages but never a line).
    pub(super) const ALIGN: usize = 64;
    /// Size of an ordinary chunk, in bytes; larger code gets a chunk of its own.
    pub(super) const CHUNK: usize = 256 * 1024;

    /// One `memfd` file mapped twice.
    #[derive(Debug)]
    pub(super) struct Chunk {
        /// Read+write, never executable: written only by the arena, under its lock.
        rw: MmapMut,
        /// Read+execute, never writable: shared with the blocks that run from it.
        rx: Arc<Mmap>,
    }

    impl Chunk {
        /// Maps a new chunk of `size` bytes (a multiple of the page size).
        #[cfg(target_os = "linux")]
        pub(super) fn map(size: usize) -> io::Result<Chunk> {
            use memmap2::MmapOptions;
            use rustix::fs::{MemfdFlags, SealFlags, fcntl_add_seals, memfd_create};
            let fd = memfd_create("bpfx-jit", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
            let file = std::fs::File::from(fd);
            file.set_len(size as u64)?;
            // Nothing can resize the file under the mappings from now on.
            fcntl_add_seals(&file, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
            // SAFETY: the file is this process's own memfd: it has no name in any file
            // system, its descriptor closes when this function returns, and its size is
            // sealed, so nothing else can truncate it under the mapping or write to it; its
            // bytes change only through this mapping (the module's invariants).
            let rw = unsafe { MmapOptions::new().len(size).map_mut(&file)? };
            // SAFETY: as for `rw`; this view is never written through.
            let rx = unsafe { MmapOptions::new().len(size).map_exec(&file)? };
            Ok(Chunk {
                rw,
                rx: Arc::new(rx),
            })
        }

        /// No dual mapping off Linux: code falls back to sealed mappings.
        #[cfg(not(target_os = "linux"))]
        pub(super) fn map(_size: usize) -> io::Result<Chunk> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    /// A chunk and its free ranges.
    #[derive(Debug)]
    struct Slot {
        chunk: Chunk,
        /// Free `(offset, len)` ranges, sorted, disjoint and coalesced.
        free: Vec<(usize, usize)>,
    }

    impl Slot {
        fn size(&self) -> usize {
            self.chunk.rw.len()
        }

        fn is_free(&self) -> bool {
            self.free == [(0, self.size())]
        }

        /// The first free range of at least `size` bytes, taken.
        fn take(&mut self, size: usize) -> Option<usize> {
            let i = self.free.iter().position(|&(_, len)| len >= size)?;
            let (at, len) = self.free[i];
            if len == size {
                self.free.remove(i);
            } else {
                self.free[i] = (at + size, len - size);
            }
            Some(at)
        }

        /// Gives `[at, at + size)` back, merging it with its free neighbours.
        fn give(&mut self, at: usize, size: usize) {
            let i = self.free.partition_point(|&(o, _)| o < at);
            let mut len = size;
            if let Some(&(next, l)) = self.free.get(i)
                && at + size == next
            {
                len += l;
                self.free.remove(i);
            }
            match i.checked_sub(1).and_then(|k| self.free.get_mut(k)) {
                Some(prev) if prev.0 + prev.1 == at => prev.1 += len,
                _ => self.free.insert(i, (at, len)),
            }
        }
    }

    /// The chunks of one arena.
    #[derive(Debug)]
    pub(super) struct Arena {
        slots: Vec<Slot>,
        /// Mapping chunks was refused for good (no `memfd_create`, or executable shared
        /// mappings denied): every compilation falls back to a sealed mapping.
        refused: bool,
    }

    /// A block holding one program's code, given back to its arena when dropped.
    #[derive(Debug)]
    pub(super) struct Block {
        arena: &'static Mutex<Arena>,
        /// The chunk's read+execute view, kept mapped while the block lives.
        rx: Arc<Mmap>,
        at: usize,
        size: usize,
        len: usize,
    }

    impl Block {
        /// The code, through the read+execute view.
        pub(super) fn code(&self) -> &[u8] {
            &self.rx[self.at..self.at + self.len]
        }

        /// `len` bytes of the chunk from `from` bytes past the block's start (tests look at
        /// freed neighbours through it).
        #[cfg(test)]
        pub(super) fn chunk_bytes(&self, from: usize, len: usize) -> &[u8] {
            &self.rx[self.at + from..self.at + from + len]
        }
    }

    impl Drop for Block {
        fn drop(&mut self) {
            // A poisoned lock (a panic while holding it, which nothing here does) leaks the
            // block rather than reusing memory in an unknown state.
            if let Ok(mut arena) = self.arena.lock() {
                arena.give(&self.rx, self.at, self.size);
            }
        }
    }

    impl Arena {
        pub(super) const fn new() -> Arena {
            Arena {
                slots: Vec::new(),
                refused: false,
            }
        }

        /// Copies `code` into a free block of `arena`, mapping a new chunk with `map` when
        /// none has room; `None` when that fails (the caller falls back to a sealed mapping).
        pub(super) fn alloc(
            arena: &'static Mutex<Arena>,
            code: &[u8],
            map: impl FnOnce(usize) -> io::Result<Chunk>,
        ) -> Option<Block> {
            let size = code.len().max(1).next_multiple_of(ALIGN);
            let mut a = arena.lock().ok()?;
            if a.refused {
                return None;
            }
            let found = a
                .slots
                .iter_mut()
                .enumerate()
                .find_map(|(k, slot)| Some((k, slot.take(size)?)));
            let (k, at) = match found {
                Some(found) => found,
                None => {
                    let len = size.max(CHUNK).next_multiple_of(PAGE);
                    match map(len) {
                        Ok(chunk) => {
                            a.slots.push(Slot {
                                chunk,
                                free: vec![(0, len)],
                            });
                            let k = a.slots.len() - 1;
                            (k, a.slots[k].take(size)?)
                        }
                        Err(e) => {
                            // EPERM, EACCES (a sandbox, a policy against executable shared
                            // memory) and ENOSYS will not change: stop asking. Anything else
                            // (out of memory or descriptors) may pass.
                            a.refused = matches!(
                                e.kind(),
                                io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
                            );
                            return None;
                        }
                    }
                }
            };
            let slot = &mut a.slots[k];
            let block = &mut slot.chunk.rw[at..at + size];
            block[..code.len()].copy_from_slice(code);
            block[code.len()..].fill(INT3);
            Some(Block {
                arena,
                rx: Arc::clone(&slot.chunk.rx),
                at,
                size,
                len: code.len(),
            })
        }

        /// Takes back the block `[at, at + size)` of the chunk whose read+execute view is
        /// `rx`, filled with `int3`. A chunk all free is unmapped when it is larger than
        /// [`CHUNK`] or another chunk is all free too, so the arena keeps at most one chunk
        /// it does not use.
        fn give(&mut self, rx: &Arc<Mmap>, at: usize, size: usize) {
            let Some(k) = self.slots.iter().position(|s| Arc::ptr_eq(&s.chunk.rx, rx)) else {
                return;
            };
            let slot = &mut self.slots[k];
            slot.chunk.rw[at..at + size].fill(INT3);
            slot.give(at, size);
            if slot.is_free()
                && (slot.size() > CHUNK
                    || self
                        .slots
                        .iter()
                        .enumerate()
                        .any(|(j, s)| j != k && s.is_free()))
            {
                // The views are unmapped once the last block's `Arc` goes (this one's, as
                // its `drop` returns).
                self.slots.swap_remove(k);
            }
        }

        /// Bytes mapped (each chunk counted once, not per view).
        #[cfg(test)]
        pub(super) fn mapped(&self) -> usize {
            self.slots.iter().map(Slot::size).sum()
        }
    }
}

/// The sealed arena: the pages of private anonymous chunks, each page writable (never
/// executable) while no program owns it, or sealed read+execute (never writable) from the
/// moment its program's code is in it.
///
/// A compilation takes a run of writable pages, copies the code in, fills the rest of its
/// last page with `int3` and seals the run: one `mprotect`. A dropped program's pages are
/// retired, still sealed and holding its old code, with no system call; when no run of
/// writable pages is long enough, every run of retired pages is made writable again, one
/// `mprotect` per run (runs of neighbouring pages coalesce, so that is one call for many
/// programs), and only then is a new chunk mapped. So a compilation and its drop cost one
/// `mprotect` and a small share of another, where a mapping of their own costs two.
///
/// # Invariants
/// - A page is `Writable` (mapped read+write), `Live` (read+execute, owned by exactly one
///   [`Block`]) or `Retired` (read+execute, owned by none); no page is ever writable and
///   executable, and a page is made writable only while no block owns it.
/// - Bytes are written only under the arena's lock, only into `Writable` pages, before a
///   block owns them; so a live block's bytes never change.
/// - A chunk is unmapped only when its last `Arc` goes: the arena's (removed only when no
///   page is `Live`) and those of its blocks.
#[cfg(target_os = "linux")]
mod pages {
    use super::{INT3, PAGE};
    use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
    use std::ffi::c_void;
    use std::io;
    use std::sync::{Arc, Mutex};

    /// Size of an ordinary chunk, in bytes; larger code gets a chunk of its own.
    pub(super) const CHUNK: usize = 256 * 1024;

    /// One private anonymous mapping, unmapped when dropped.
    #[derive(Debug)]
    pub(super) struct Chunk {
        addr: usize,
        len: usize,
    }

    impl Chunk {
        /// Maps a new chunk of `len` bytes (a multiple of the page size), read+write.
        pub(super) fn map(len: usize) -> io::Result<Chunk> {
            // SAFETY: a new private anonymous mapping at an address the kernel chooses
            // overlaps nothing of the process's; the chunk owns it until `drop`.
            let ptr = unsafe {
                rustix::mm::mmap_anonymous(
                    std::ptr::null_mut(),
                    len,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::PRIVATE,
                )?
            };
            Ok(Chunk {
                addr: ptr as usize,
                len,
            })
        }

        /// Sets the protection of pages `[first, first + count)`: read+execute when
        /// `exec`, else read+write.
        fn protect(&self, first: usize, count: usize, exec: bool) -> io::Result<()> {
            let flags = if exec {
                MprotectFlags::READ | MprotectFlags::EXEC
            } else {
                MprotectFlags::READ | MprotectFlags::WRITE
            };
            // SAFETY: the range lies inside this chunk's mapping (the arena's page states
            // cover exactly its pages). The caller changes the protection only of pages no
            // block owns (made writable) or of a block's run just written (sealed), so no
            // reference into the range is invalidated by the change: code is only read, and
            // only from live pages, which stay readable.
            unsafe {
                rustix::mm::mprotect(
                    (self.addr + first * PAGE) as *mut c_void,
                    count * PAGE,
                    flags,
                )?;
            }
            Ok(())
        }

        /// Writes `code` at the start of pages `[first, first + count)` and `int3` over
        /// the rest of them.
        fn write(&self, first: usize, count: usize, code: &[u8]) {
            // SAFETY: the pages are inside the mapping, mapped read+write (`Writable`), and
            // no block owns them, so nothing else reads or writes these bytes; the arena's
            // lock is held by the caller, so no other writer exists either.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut((self.addr + first * PAGE) as *mut u8, count * PAGE)
            };
            bytes[..code.len()].copy_from_slice(code);
            bytes[code.len()..].fill(INT3);
        }
    }

    impl Drop for Chunk {
        fn drop(&mut self) {
            // SAFETY: the mapping is this chunk's own, and the last reference to it (the
            // arena's or a block's `Arc`) is going: no block's code can run or be read from
            // it any more.
            let _ = unsafe { rustix::mm::munmap(self.addr as *mut c_void, self.len) };
        }
    }

    // SAFETY: a chunk is an address range owned by the process; all mutation of its bytes
    // and protections happens under the arena's lock (the module's invariants), and its live
    // pages are only read.
    unsafe impl Send for Chunk {}
    // SAFETY: as for `Send`: shared access only reads live pages, which never change.
    unsafe impl Sync for Chunk {}

    /// What a page is doing (see the module's invariants).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum State {
        Writable,
        Live,
        Retired,
    }

    /// A chunk and the state of each of its pages.
    #[derive(Debug)]
    struct Slot {
        chunk: Arc<Chunk>,
        pages: Vec<State>,
    }

    impl Slot {
        /// The first run of `count` writable pages.
        fn find(&self, count: usize) -> Option<usize> {
            let mut run = 0;
            for (i, &s) in self.pages.iter().enumerate() {
                run = if s == State::Writable { run + 1 } else { 0 };
                if run == count {
                    return Some(i + 1 - count);
                }
            }
            None
        }

        /// Makes every run of retired pages writable again: one `mprotect` per run. A run
        /// the kernel refuses (for lack of memory to split the mapping) stays retired: it
        /// is never written, whatever protection the failed call left it with, and is
        /// tried again next time.
        fn refresh(&mut self) {
            let mut i = 0;
            while i < self.pages.len() {
                if self.pages[i] != State::Retired {
                    i += 1;
                    continue;
                }
                let start = i;
                while self.pages.get(i) == Some(&State::Retired) {
                    i += 1;
                }
                if self.chunk.protect(start, i - start, false).is_ok() {
                    self.pages[start..i].fill(State::Writable);
                }
            }
        }

        fn unused(&self) -> bool {
            !self.pages.contains(&State::Live)
        }
    }

    /// The chunks of one arena.
    #[derive(Debug)]
    pub(super) struct Arena {
        slots: Vec<Slot>,
        /// `mmap` or sealing was refused for good (a policy against executable memory,
        /// say): every compilation falls back to a mapping of its own, which reports the
        /// error if it meets the same refusal.
        refused: bool,
    }

    /// A run of pages holding one program's code, sealed read+execute, retired when dropped.
    #[derive(Debug)]
    pub(super) struct Block {
        arena: &'static Mutex<Arena>,
        /// The chunk, kept mapped while the block lives.
        chunk: Arc<Chunk>,
        first: usize,
        count: usize,
        len: usize,
    }

    impl Block {
        /// The code, read+execute.
        pub(super) fn code(&self) -> &[u8] {
            // SAFETY: the block's pages are live: mapped read+execute while `self.chunk`
            // keeps the mapping, written before the block existed and never again while it
            // lives (the module's invariants); `len` bytes of them are the code.
            unsafe {
                std::slice::from_raw_parts(
                    (self.chunk.addr + self.first * PAGE) as *const u8,
                    self.len,
                )
            }
        }
    }

    impl Block {
        /// The rest of the block's pages after its code (tests check it is `int3`).
        #[cfg(test)]
        pub(super) fn page_tail(&self) -> &[u8] {
            // SAFETY: as for `code`: the whole run is live, mapped read+execute and unchanged
            // while the block lives.
            unsafe {
                std::slice::from_raw_parts(
                    (self.chunk.addr + self.first * PAGE + self.len) as *const u8,
                    self.count * PAGE - self.len,
                )
            }
        }
    }

    impl Drop for Block {
        fn drop(&mut self) {
            // A poisoned lock (a panic while holding it, which nothing here does) leaks the
            // pages rather than reusing memory in an unknown state.
            if let Ok(mut arena) = self.arena.lock() {
                arena.retire(&self.chunk, self.first, self.count);
            }
        }
    }

    impl Arena {
        pub(super) const fn new() -> Arena {
            Arena {
                slots: Vec::new(),
                refused: false,
            }
        }

        /// Copies `code` into a run of writable pages of `arena` and seals it: from a chunk
        /// with room, else after making retired pages writable, else from a new chunk
        /// mapped with `map`. `None` when mapping or sealing fails (the caller falls back to
        /// a mapping of its own).
        pub(super) fn alloc(
            arena: &'static Mutex<Arena>,
            code: &[u8],
            map: impl FnOnce(usize) -> io::Result<Chunk>,
        ) -> Option<Block> {
            let count = code.len().max(1).div_ceil(PAGE);
            let mut a = arena.lock().ok()?;
            if a.refused {
                return None;
            }
            let find = |a: &Arena| {
                a.slots
                    .iter()
                    .enumerate()
                    .find_map(|(k, s)| Some((k, s.find(count)?)))
            };
            let mut found = find(&a);
            if found.is_none() {
                for slot in &mut a.slots {
                    slot.refresh();
                }
                found = find(&a);
            }
            let (k, first) = match found {
                Some(found) => found,
                None => {
                    let len = (count * PAGE).max(CHUNK);
                    match map(len) {
                        Ok(chunk) => {
                            a.slots.push(Slot {
                                chunk: Arc::new(chunk),
                                pages: vec![State::Writable; len / PAGE],
                            });
                            (a.slots.len() - 1, 0)
                        }
                        Err(e) => {
                            a.refused = permanent(&e);
                            return None;
                        }
                    }
                }
            };
            let slot = &mut a.slots[k];
            slot.chunk.write(first, count, code);
            if let Err(e) = slot.chunk.protect(first, count, true) {
                // The pages were not sealed (mprotect changes all or, on a failure midway,
                // some; retired pages are made writable again before use either way).
                slot.pages[first..first + count].fill(State::Retired);
                a.refused = permanent(&e);
                return None;
            }
            slot.pages[first..first + count].fill(State::Live);
            Some(Block {
                arena,
                chunk: Arc::clone(&slot.chunk),
                first,
                count,
                len: code.len(),
            })
        }

        /// Retires pages `[first, first + count)` of `chunk`. A chunk with no live page is
        /// unmapped when it is larger than [`CHUNK`] or another chunk has no live page
        /// either, so the arena keeps at most one chunk it does not use.
        fn retire(&mut self, chunk: &Arc<Chunk>, first: usize, count: usize) {
            let Some(k) = self.slots.iter().position(|s| Arc::ptr_eq(&s.chunk, chunk)) else {
                return;
            };
            let slot = &mut self.slots[k];
            slot.pages[first..first + count].fill(State::Retired);
            if slot.unused()
                && (slot.chunk.len > CHUNK
                    || self
                        .slots
                        .iter()
                        .enumerate()
                        .any(|(j, s)| j != k && s.unused()))
            {
                // Unmapped once the block dropping now lets go of its `Arc` too.
                self.slots.swap_remove(k);
            }
        }

        /// Bytes mapped.
        #[cfg(test)]
        pub(super) fn mapped(&self) -> usize {
            self.slots.iter().map(|s| s.chunk.len).sum()
        }
    }

    /// EPERM, EACCES (a policy against executable memory) and ENOSYS will not change; a
    /// lack of memory may pass.
    fn permanent(e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
        )
    }
}

#[cfg(all(test, target_os = "linux"))]
mod pages_tests {
    use super::pages::{Arena, CHUNK, Chunk};
    use super::{INT3, PAGE};
    use std::sync::Mutex;

    fn arena() -> &'static Mutex<Arena> {
        Box::leak(Box::new(Mutex::new(Arena::new())))
    }

    fn mapped(arena: &Mutex<Arena>) -> usize {
        arena.lock().expect("not poisoned").mapped()
    }

    /// The protection of the page holding `addr`, from `/proc/self/maps` (`"r-xp"`, ...).
    fn protection(addr: usize) -> String {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("procfs");
        maps.lines()
            .find_map(|l| {
                let (range, rest) = l.split_once(' ')?;
                let (lo, hi) = range.split_once('-')?;
                let lo = usize::from_str_radix(lo, 16).ok()?;
                let hi = usize::from_str_radix(hi, 16).ok()?;
                (lo <= addr && addr < hi).then(|| rest[..4].to_string())
            })
            .expect("mapped")
    }

    #[test]
    fn live_code_is_sealed_and_cycles_reuse_one_chunk() {
        let arena = arena();
        let mut live = std::collections::VecDeque::new();
        for i in 0..3_000usize {
            let code = vec![(i % 251) as u8; 1 + (i * 7919) % (3 * PAGE)];
            let block = Arena::alloc(arena, &code, Chunk::map).expect("maps");
            assert_eq!(block.code(), &code[..]);
            live.push_back(block);
            if live.len() > 8 {
                live.pop_front();
            }
            assert!(mapped(arena) <= 2 * CHUNK, "cycle {i}: {}", mapped(arena));
        }
        for block in &live {
            let at = block.code().as_ptr() as usize;
            assert_eq!(protection(at), "r-xp", "live code is read+execute only");
        }
        drop(live);
        assert_eq!(mapped(arena), CHUNK, "one unused chunk is kept");
    }

    #[test]
    fn retired_pages_are_reused_after_the_fresh_ones_and_neighbours_stay_intact() {
        let arena = arena();
        let a = Arena::alloc(arena, &[1; 100], Chunk::map).expect("maps");
        let b = Arena::alloc(arena, &[2; PAGE + 1], Chunk::map).expect("maps");
        let a_at = a.code().as_ptr() as usize;
        let b_at = b.code().as_ptr() as usize;
        assert_eq!(b_at - a_at, PAGE, "pages are taken in order");
        drop(b);
        // Retired: still sealed, not yet writable.
        assert_eq!(protection(b_at), "r-xp");
        // Fill the chunk's fresh pages; the next allocation makes the retired pages writable
        // and takes them.
        let mut rest = Vec::new();
        for _ in 0..(CHUNK / PAGE - 3) {
            rest.push(Arena::alloc(arena, &[3; 10], Chunk::map).expect("maps"));
        }
        let c = Arena::alloc(arena, &[4; 10], Chunk::map).expect("maps");
        assert_eq!(
            c.code().as_ptr() as usize,
            b_at,
            "the retired run is reused"
        );
        assert_eq!(mapped(arena), CHUNK);
        assert_eq!(a.code(), &[1; 100]);
        assert_eq!(c.code(), &[4; 10]);
        assert!(rest.iter().all(|r| r.code() == [3; 10]));
        // The rest of the reused page is `int3`, not the old code.
        assert!(c.page_tail().iter().all(|&x| x == INT3));
        assert_eq!(protection(b_at), "r-xp");
    }

    #[test]
    fn code_larger_than_a_chunk_gets_its_own_and_gives_it_back() {
        let arena = arena();
        let small = Arena::alloc(arena, &[1; 10], Chunk::map).expect("maps");
        let big = vec![0x90; CHUNK + 1];
        let block = Arena::alloc(arena, &big, Chunk::map).expect("maps");
        assert_eq!(block.code(), &big[..]);
        assert!(mapped(arena) > 2 * CHUNK);
        drop(block);
        assert_eq!(mapped(arena), CHUNK);
        assert_eq!(small.code(), &[1; 10]);
    }

    #[test]
    fn a_refused_mapping_falls_back_and_is_not_asked_again() {
        let arena = arena();
        let refused = Arena::alloc(arena, &[1; 10], |_| {
            Err(std::io::ErrorKind::PermissionDenied.into())
        });
        assert!(refused.is_none());
        let again = Arena::alloc(arena, &[1; 10], |_| -> std::io::Result<Chunk> {
            panic!("asked to map again after a refusal")
        });
        assert!(again.is_none());
        let arena = self::arena();
        let failed = Arena::alloc(arena, &[1; 10], |_| {
            Err(std::io::ErrorKind::OutOfMemory.into())
        });
        assert!(failed.is_none());
        assert!(Arena::alloc(arena, &[1; 10], Chunk::map).is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::INT3;
    use super::arena::{ALIGN, Arena, CHUNK, Chunk};
    use std::sync::Mutex;

    /// An arena of the test's own, so that no other test's blocks are counted.
    fn arena() -> &'static Mutex<Arena> {
        Box::leak(Box::new(Mutex::new(Arena::new())))
    }

    fn mapped(arena: &Mutex<Arena>) -> usize {
        arena.lock().expect("not poisoned").mapped()
    }

    #[test]
    fn many_alloc_free_cycles_reuse_the_same_chunk() {
        let arena = arena();
        let mut live = std::collections::VecDeque::new();
        for i in 0..20_000usize {
            let code = vec![(i % 251) as u8; 1 + (i * 7919) % 3000];
            let block = Arena::alloc(arena, &code, Chunk::map).expect("memfd works here");
            assert_eq!(block.code(), &code[..]);
            live.push_back(block);
            if live.len() > 16 {
                live.pop_front();
            }
            assert!(
                mapped(arena) <= 2 * CHUNK,
                "cycle {i}: {} bytes mapped",
                mapped(arena)
            );
        }
        drop(live);
        assert_eq!(mapped(arena), CHUNK, "one free chunk is kept");
    }

    #[test]
    fn a_freed_block_is_int3_reused_and_its_neighbours_are_intact() {
        let arena = arena();
        let a = Arena::alloc(arena, &[1; 100], Chunk::map).expect("maps");
        let b = Arena::alloc(arena, &[2; 100], Chunk::map).expect("maps");
        let c = Arena::alloc(arena, &[3; 10], Chunk::map).expect("maps");
        let b_start = b.code().as_ptr() as usize;
        let a_start = a.code().as_ptr() as usize;
        assert_eq!(
            b_start - a_start,
            128,
            "blocks are packed in {ALIGN}-byte steps"
        );
        drop(b);
        // The freed bytes, through a neighbour's view of the same chunk.
        let freed = a.chunk_bytes(128, 128);
        assert!(freed.iter().all(|&x| x == INT3), "{freed:?}");
        assert_eq!(a.code(), &[1; 100]);
        assert_eq!(c.code(), &[3; 10]);
        let d = Arena::alloc(arena, &[4; 64], Chunk::map).expect("maps");
        assert_eq!(
            d.code().as_ptr() as usize,
            b_start,
            "the freed block is reused"
        );
        assert_eq!(a.code(), &[1; 100]);
        assert_eq!(c.code(), &[3; 10]);
        assert_eq!(d.code(), &[4; 64]);
    }

    #[test]
    fn code_larger_than_a_chunk_gets_its_own_and_gives_it_back() {
        let arena = arena();
        let small = Arena::alloc(arena, &[1; 10], Chunk::map).expect("maps");
        let big = vec![0x90; CHUNK + 1];
        let block = Arena::alloc(arena, &big, Chunk::map).expect("maps");
        assert_eq!(block.code(), &big[..]);
        assert!(mapped(arena) > 2 * CHUNK);
        drop(block);
        assert_eq!(mapped(arena), CHUNK);
        assert_eq!(small.code(), &[1; 10]);
    }

    #[test]
    fn a_refused_mapping_falls_back_and_is_not_asked_again() {
        let arena = arena();
        let refused = Arena::alloc(arena, &[1; 10], |_| {
            Err(std::io::ErrorKind::PermissionDenied.into())
        });
        assert!(refused.is_none());
        let again = Arena::alloc(arena, &[1; 10], |_| -> std::io::Result<Chunk> {
            panic!("asked to map again after a refusal")
        });
        assert!(again.is_none());
        // A transient failure is retried.
        let arena = self::arena();
        let failed = Arena::alloc(arena, &[1; 10], |_| {
            Err(std::io::ErrorKind::OutOfMemory.into())
        });
        assert!(failed.is_none());
        assert!(Arena::alloc(arena, &[1; 10], Chunk::map).is_some());
    }
}
