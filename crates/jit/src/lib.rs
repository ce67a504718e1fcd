//! The bpfx x86-64 JIT: compiles a decoded eBPF [`Program`] to native code that behaves, bit for
//! bit, like the reference interpreter (same `r0`, or the same [`Trap`] at the same pc, and the
//! same memory).
//!
//! ```text
//! VerifiedProgram ─┐ (its Cfg; proofs drop guards)
//! Program ─────────┴─► analysis (plan, guards, calls, blocks: every decision)
//!                        ─► emit (dynasm VecAssembler, one driver, one lowering per class) ──► Vec<u8>
//!                                                                    │ copy, seal R+X (code)
//!                                                                    ▼
//!                       JitProgram::run(input, env) ──► Result<u64, Trap>
//! ```
//!
//! The run-time contract is the exec crate's ([`bpfx_exec`]): entry registers, local calls
//! with 512-byte frames, helper calls that zero r1–r5, legacy packet loads, the budget, traps
//! and the active-stack rule. `docs/jit-x86-64.md` describes the register map, the frames, the
//! context and the guards.
//!
//! # Invariants
//! - **Memory safety.** Every load, store and atomic is either proven in bounds at compile
//!   time (r10 plus a constant inside the current frame, or a verifier proof given to
//!   [`compile`]) or guarded before it happens, against the input, the active stack and the
//!   shared blocks (writable ones for stores and atomics) (`emit/mem.rs`); a failing
//!   guard traps with `OutOfBounds` and writes nothing. A loop whose accesses advance by a
//!   constant step runs without their guards only after one check on entry proved every
//!   address they can reach inside the input (`analysis/loops.rs`, `emit/loops.rs`).
//! - **Budget.** With [`JitOptions::budget`], the run stops at the same instruction as the
//!   interpreter and reports the same budget left (a charge per basic block, exact slow paths).
//!   Code for a program that may not terminate (not proven by the verifier; unverified, with a
//!   backward jump or call) always has the charge, unless [`JitOptions::unbounded`], and runs
//!   under [`bpfx_exec::DEFAULT_BUDGET`] when the run sets none; code for a program proven to
//!   terminate has none unless asked for.
//! - **Hardening.** [`JitOptions::blinding`] keeps program constants out of the code and
//!   [`JitOptions::spectre`] masks guarded addresses; `docs/safety.md` has the threat model.
//! - **W^X.** Code is copied into a mapping (fresh, or one a dropped program left, made
//!   writable again only while nothing can run it) and sealed read+execute before it runs, or,
//!   with [`CodeMemory::DualMapped`], copied through the writable view of a memory whose other
//!   view, the one it runs from, is read+execute; no mapping is ever writable and executable
//!   (`code.rs`, the only module with `unsafe`).
//! - **Position independence.** The code holds no absolute addresses: everything run-specific
//!   (buffers, the helper dispatcher) is reached through the context in r12.
//! - Nothing the decoder accepts makes the compiler panic or the code crash the host.
#![deny(unsafe_code)]

mod abi;
mod analysis;
#[allow(unsafe_code)]
mod code;
mod emit;
mod listing;

use bpfx_bytecode::{Pc, Program};
use bpfx_exec::{End, Env, HelperRet, SharedMem, Trap, TrapKind};
use bpfx_verifier::VerifiedProgram;
use std::fmt;
use std::sync::Arc;

pub use analysis::guards::CompileStats;
pub use emit::{MAX_COLD_BYTES, MAX_INSN_BYTES};

/// The most frames a run may allow ([`Env::max_frames`]): each local call uses 48 bytes of the
/// host thread's stack, so this bounds the native stack a program can take to under 200 KiB.
pub const MAX_FRAMES: u32 = 4096;

/// Compilation options. `docs/safety.md` describes what each hardening option protects
/// against and what it costs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JitOptions {
    /// Emit the instruction-budget charge: one `sub` and branch per basic block, exact to the
    /// instruction (see `docs/jit-x86-64.md`). Code compiled without it pays nothing, and
    /// runs only with `env.budget == None`. A program that may not terminate gets the charge
    /// whatever this says, unless [`Self::unbounded`].
    pub budget: bool,
    /// The embedder's opt-out of the default budget at compile time: code for a program that
    /// may not terminate gets no charge (unless [`Self::budget`]) and its runs no
    /// [`bpfx_exec::DEFAULT_BUDGET`], so a run may never end. Off by default.
    pub unbounded: bool,
    /// Constant blinding: no immediate the program chose (beyond 8-bit values, shift counts
    /// and memory offsets) appears in the executable code; each is materialised as
    /// `v ^ key`, `xor key` with a random key per constant and per compilation.
    pub blinding: bool,
    /// Spectre v1 hardening: after every run-time bounds guard the address is masked with the
    /// guard's own flags (`sbb`/`and`), the guards' slow path ends in `lfence`, and guards are
    /// kept even where a verifier proof would drop them (a proof may rest on the program's own
    /// mispredictable branches).
    pub spectre: bool,
    /// How the code is made executable.
    pub code_memory: CodeMemory,
}

impl JitOptions {
    /// The hardened preset: blinding and Spectre masking on, sealed code memory, no budget
    /// charge (set [`Self::budget`] as well to bound the run time).
    pub fn hardened() -> JitOptions {
        JitOptions {
            budget: false,
            unbounded: false,
            blinding: true,
            spectre: true,
            code_memory: CodeMemory::Sealed,
        }
    }
}

/// How compiled code is made executable. Neither ever has memory that is writable and
/// executable at once; `docs/safety.md` weighs the two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CodeMemory {
    /// A mapping of the program's own, writable only while the code is copied in and then
    /// sealed read+execute (two `mprotect` calls per compilation): once the code can run, no
    /// writable view of it exists anywhere.
    #[default]
    Sealed,
    /// A block of a process-wide arena of `memfd` chunks, each mapped twice, read+write
    /// (never executable) and read+execute (never writable); programs share pages, freed
    /// blocks are reused, and the arena maps another chunk when full. Compiling makes no
    /// system call while the arena has room. The writable view of the code lives as long as
    /// the arena. Where `memfd_create` or the mappings fail, code falls back to
    /// [`CodeMemory::Sealed`] ([`JitProgram::code_memory`] tells which one a program got).
    /// The chunks are shared mappings: after `fork`, parent and child must not both go on
    /// compiling into them.
    DualMapped,
}

/// How many fresh keys blinding tries before it keeps the code it has: each try fails only if a
/// key happens to spell a program constant with its neighbouring bytes (about one compilation
/// in 2^32 per constant), so the last try is never needed in practice.
const BLINDING_TRIES: u32 = 8;

/// Why a program did not compile. Every variant is an internal limit or a host failure: the
/// JIT compiles every program the decoder accepts.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// One instruction's code exceeded its stated worst case (a bug in the lowering).
    #[error("internal error at {pc}: {len} bytes of code exceed the {max}-byte bound")]
    CodeSize {
        /// The instruction.
        pc: Pc,
        /// Bytes emitted.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// dynasm could not resolve a label or relocation (a bug in the lowering).
    #[error("internal error: assembling failed: {0}")]
    Assemble(String),
    /// The executable mapping could not be created or sealed.
    #[error("mapping executable memory failed: {0}")]
    Map(#[from] std::io::Error),
}

/// An ARRAY or PERCPU_ARRAY map whose `map_lookup_elem` calls [`compile_with_maps`] may compute
/// in the code, as the kernel's JIT does (`map_gen_lookup`): value `i` lies at `i * stride` in
/// `block` (for a per-CPU array, CPU `c`'s value at `(c * max_entries + i) * stride`) for
/// every `i < max_entries`, and the key is the little-endian `u32` index.
#[derive(Clone, Debug)]
pub struct InlineArray {
    block: Arc<SharedMem>,
    max_entries: u32,
    stride: u32,
    /// For a per-CPU array, the number of CPUs whose values the block holds.
    cpus: Option<u32>,
}

impl InlineArray {
    /// The array whose `max_entries` values of `stride` bytes fill `block` from its start;
    /// `None` when they would not fit in the block, or the stride is 0 or above `i32::MAX`.
    pub fn new(block: Arc<SharedMem>, max_entries: u32, stride: u32) -> Option<InlineArray> {
        let bytes = u64::from(max_entries).checked_mul(u64::from(stride))?;
        let fits = bytes <= block.len() as u64 && stride != 0 && i32::try_from(stride).is_ok();
        fits.then_some(InlineArray {
            block,
            max_entries,
            stride,
            cpus: None,
        })
    }

    /// The per-CPU array whose `cpus` copies of `max_entries` values of `stride` bytes fill
    /// `block` from its start, CPU by CPU; its lookups give the value of the CPU the run is on
    /// ([`JitProgram::run_to_end_on`]). `None` when they would not fit in the block, one
    /// CPU's values take more than `u32::MAX` bytes, `cpus` is 0, or the stride is 0 or above
    /// `i32::MAX`.
    pub fn per_cpu(
        block: Arc<SharedMem>,
        max_entries: u32,
        stride: u32,
        cpus: u32,
    ) -> Option<InlineArray> {
        let span = u32::try_from(u64::from(max_entries).checked_mul(u64::from(stride))?).ok()?;
        let bytes = u64::from(span).checked_mul(u64::from(cpus))?;
        let fits = bytes <= block.len() as u64 && cpus != 0;
        let mut a = InlineArray::new(block, max_entries, stride).filter(|_| fits)?;
        a.cpus = Some(cpus);
        Some(a)
    }
}

/// What [`compile_with_maps`] may compute in the code rather than call a helper for: the
/// lookups of [`InlineArray`]s; and the maps whose lookups (updates, deletes) it calls
/// directly ([`DirectLookup`]). The code keeps each array's block and each entry alive for as
/// long as it exists.
///
/// Each array is known by its handle: the value the bound program's `lddw` loads into r1 for
/// the call. The embedder promises that helper [`InlineMaps::new`]'s `lookup` called with an
/// array's handle and a pointer to a key does exactly what the inlined code does: reads the
/// 4-byte index at the key, and returns the address of that value in the block when the index
/// is below `max_entries`, 0 otherwise, touching nothing else. The interpreter keeps calling
/// the helper, so the engines agree exactly when the promise holds.
#[derive(Clone, Debug, Default)]
pub struct InlineMaps {
    lookup: Option<u32>,
    /// `map_update_elem`'s and `map_delete_elem`'s helper ids, for direct entries that have them.
    update: Option<u32>,
    delete: Option<u32>,
    arrays: Vec<(u64, InlineArray)>,
    direct: Vec<(u64, DirectLookup)>,
}

/// The lookup function of a [`DirectLookup`]: the value's guest address for `key` (the map's
/// key size in bytes) on CPU `cpu`, or 0.
pub type DirectLookupFn = dyn Fn(&[u8], u32) -> u64 + Send + Sync;

/// The update function of a [`DirectLookup`] ([`DirectLookup::with_update`]): r0 of
/// `map_update_elem` for the key's and the value's bytes, the flags (r4) and the run's CPU.
pub type DirectUpdateFn = dyn Fn(&[u8], &[u8], u64, u32) -> u64 + Send + Sync;

/// The delete function of a [`DirectLookup`] ([`DirectLookup::with_delete`]): r0 of
/// `map_delete_elem` for the key's bytes.
pub type DirectDeleteFn = dyn Fn(&[u8]) -> u64 + Send + Sync;

/// A map whose `map_lookup_elem` calls [`compile_with_maps`] makes directly: the code calls a
/// host entry with the map resolved at compile time rather than the helper dispatcher. The
/// entry reads the key's bytes from the run's stack or input (where the key lies in neither, or
/// is out of bounds, the call goes through the dispatcher as any other, with its checks,
/// traps and messages), then calls `lookup` with them and the run's CPU (the CPU
/// [`JitProgram::run_to_end_on`] is given, below the CPUs of every inlined per-CPU array).
///
/// The embedder promises, as for [`InlineArray`]s, that helper [`InlineMaps::new`]'s `lookup`
/// called with the map's handle and a key does exactly what `lookup` does with the key's bytes
/// (the same result and effects: an LRU map's use mark, a per-CPU map's slot of the run's
/// CPU), so the engines agree.
#[derive(Clone)]
pub struct DirectLookup(Arc<code::DirectEntry>);

impl DirectLookup {
    /// The lookup of a map with `key_size`-byte keys (`None` when that is 0 or above
    /// [`DirectLookup::MAX_KEY`], whose calls stay with the dispatcher). With `per_cpu`, its
    /// result depends on the CPU: runs then ask for the CPU as for inlined per-CPU arrays
    /// ([`JitProgram::per_cpu_inlined`]).
    pub fn new(key_size: u32, per_cpu: bool, lookup: Arc<DirectLookupFn>) -> Option<DirectLookup> {
        let ok = key_size != 0 && key_size as usize <= DirectLookup::MAX_KEY;
        ok.then(|| {
            DirectLookup(Arc::new(code::DirectEntry {
                call: code::direct_lookup,
                update_call: code::direct_update,
                delete_call: code::direct_delete,
                key_size: key_size as usize,
                per_cpu,
                lookup,
                update: None,
                delete: None,
            }))
        })
    }

    /// Also makes the map's `map_update_elem` calls directly ([`InlineMaps::with_update_ids`]),
    /// with `value_size`-byte values (`None` when that is 0): as for the lookup, the key's and
    /// the value's bytes are taken in place from the input or the active frames, or the call
    /// goes through the dispatcher. The embedder promises that the update helper does with the
    /// map's handle exactly what `update` does with the bytes.
    pub fn with_update(self, value_size: u32, update: Arc<DirectUpdateFn>) -> Option<DirectLookup> {
        let mut e = Arc::unwrap_or_clone(self.0);
        e.update = Some((value_size as usize, update));
        (value_size != 0).then(|| DirectLookup(Arc::new(e)))
    }

    /// Also makes the map's `map_delete_elem` calls directly, as the lookups.
    pub fn with_delete(self, delete: Arc<DirectDeleteFn>) -> DirectLookup {
        let mut e = Arc::unwrap_or_clone(self.0);
        e.delete = Some(delete);
        DirectLookup(Arc::new(e))
    }

    /// The longest key a direct entry takes (larger ones go through the dispatcher).
    pub const MAX_KEY: usize = 64;
}

impl fmt::Debug for DirectLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectLookup")
            .field("key_size", &self.0.key_size)
            .field("per_cpu", &self.0.per_cpu)
            .finish()
    }
}

impl InlineMaps {
    /// Nothing inlined yet; `lookup` is `map_lookup_elem`'s helper id.
    pub fn new(lookup: u32) -> InlineMaps {
        InlineMaps {
            lookup: Some(lookup),
            update: None,
            delete: None,
            arrays: Vec::new(),
            direct: Vec::new(),
        }
    }

    /// Also calls `lookup` directly for the `map_lookup_elem` calls on the map whose handle is
    /// `handle` (an array of this handle is no longer inlined).
    pub fn with_direct(mut self, handle: u64, lookup: DirectLookup) -> InlineMaps {
        self.arrays.retain(|(h, _)| *h != handle);
        self.direct.retain(|(h, _)| *h != handle);
        self.direct.push((handle, lookup));
        self
    }

    /// `map_update_elem`'s and `map_delete_elem`'s helper ids: the calls of these on a map
    /// with a direct entry that has an update ([`DirectLookup::with_update`]) or a delete
    /// function are made directly too.
    pub fn with_update_ids(mut self, update: u32, delete: u32) -> InlineMaps {
        self.update = Some(update);
        self.delete = Some(delete);
        self
    }

    /// The position in the table of bases ([`abi::RunCtx::map_bases`]) of the direct entry
    /// of the map whose handle is `handle` (after the arrays'), and which of its functions a
    /// call of helper `id` makes, if it has that one.
    pub(crate) fn direct(&self, id: u32, handle: u64) -> Option<(usize, code::DirectOp)> {
        let j = self.direct.iter().position(|(h, _)| *h == handle)?;
        let e = &self.direct[j].1.0;
        let op = if self.lookup == Some(id) {
            code::DirectOp::Lookup
        } else if self.update == Some(id) && e.update.is_some() {
            code::DirectOp::Update
        } else if self.delete == Some(id) && e.delete.is_some() {
            code::DirectOp::Delete
        } else {
            return None;
        };
        Some((self.arrays.len() + j, op))
    }

    /// The table of bases the code reads through [`abi::RunCtx::map_bases`]: each array's
    /// block address, then each direct entry's address.
    fn bases(&self) -> Box<[u64]> {
        let arrays = self.arrays.iter().map(|(_, a)| a.block.addr());
        let direct = self.direct.iter().map(|(_, d)| Arc::as_ptr(&d.0) as u64);
        arrays.chain(direct).collect()
    }

    /// Whether a direct lookup here depends on the run's CPU.
    fn per_cpu_direct(&self) -> bool {
        self.direct.iter().any(|(_, d)| d.0.per_cpu)
    }

    /// Also inlines the lookups of `array`, whose handle is `handle`.
    pub fn with_array(mut self, handle: u64, array: InlineArray) -> InlineMaps {
        self.arrays.retain(|(h, _)| *h != handle);
        self.direct.retain(|(h, _)| *h != handle);
        self.arrays.push((handle, array));
        self
    }

    /// The position of the array whose handle is `handle`, if `id` is the lookup helper's.
    pub(crate) fn array(&self, id: u32, handle: u64) -> Option<usize> {
        if self.lookup != Some(id) {
            return None;
        }
        self.arrays.iter().position(|(h, _)| *h == handle)
    }

    /// Each array's index bound, stride and, for a per-CPU array, the bytes of one CPU's
    /// values, by position.
    pub(crate) fn shape(&self, i: usize) -> (u32, u32, Option<u32>) {
        let a = &self.arrays[i].1;
        (
            a.max_entries,
            a.stride,
            a.cpus.map(|_| a.max_entries * a.stride),
        )
    }

    /// The fewest CPUs of a per-CPU array here (`u32::MAX` without one).
    fn cpus(&self) -> u32 {
        self.arrays
            .iter()
            .filter_map(|(_, a)| a.cpus)
            .min()
            .unwrap_or(u32::MAX)
    }
}

/// A compiled program, ready to run any number of times.
pub struct JitProgram {
    code: code::ExecCode,
    /// Boxed: only listings read it, and it would double the size of every `JitProgram`.
    layout: Box<emit::Layout>,
    prog: Program,
    opts: JitOptions,
    /// What the verifier assumed, for code from [`compile`]: runs that break it are refused.
    assumed: Option<Box<bpfx_verifier::Assumptions>>,
    /// Whether runs without a budget get [`bpfx_exec::DEFAULT_BUDGET`]: the program may not
    /// terminate and the code was not compiled [`JitOptions::unbounded`] (so it has the charge).
    default_budget: bool,
    /// How many bytes below the stack's top a run can write: the frames its call graph can
    /// occupy (`None`: every frame `max_frames` allows). Only those need zeroing before the
    /// next run. (Any address in an active frame is accessible, even one the program did not
    /// derive from r10, so the bound is per frame, not per offset the program names.)
    stack_reach: Option<usize>,
    /// What the compiler decided about the guards.
    stats: CompileStats,
    /// The arrays whose lookups the code computes and the direct lookups it calls, kept alive
    /// with it; and their blocks' and entries' addresses by position, which the code reads
    /// through [`abi::RunCtx::map_bases`].
    _inlined: InlineMaps,
    map_bases: Box<[u64]>,
    /// The fewest CPUs of an inlined per-CPU array: a run's CPU is taken modulo this.
    cpus: u32,
    /// Whether a direct lookup ([`DirectLookup`]) depends on the run's CPU.
    per_cpu_direct: bool,
}

impl fmt::Debug for JitProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JitProgram")
            .field("insns", &self.prog.len())
            .field("code_len", &self.code_len())
            .field("opts", &self.opts)
            .finish()
    }
}

/// Compiles a verified program: an access the verifier proved in bounds
/// ([`AccessFact::proven`](bpfx_verifier::AccessFact)) gets no guard, every other one is
/// guarded as in [`compile_unverified`]. The code refuses, at pc 0 before anything runs, a run
/// that breaks the proof's [`assumptions`](VerifiedProgram::assumptions), exactly as the
/// interpreter does ([`VerifiedProgram::check_run`]): an input shorter than
/// [`VerifiedProgram::mem_size`] ([`TrapKind::InputTooSmall`]), more frames than it was
/// verified with ([`TrapKind::EnvMismatch`]). A program not proven to
/// [`terminate`](VerifiedProgram::terminates) gets the budget charge (see [`JitOptions`]).
pub fn compile(prog: &VerifiedProgram, opts: &JitOptions) -> Result<JitProgram, JitError> {
    build(prog.program(), opts, Some(prog), &InlineMaps::default())
}

/// [`compile`], with the lookups of `maps`' arrays computed in the code where r1 holds an
/// array's handle from an `lddw` in the call's own basic block (so no other path reaches the
/// call with another map), the verifier proved the key in a stack frame
/// ([`VerifiedProgram::map_call`]) and the map shape its proofs assumed fits the array:
/// the index loaded from the key, compared with `max_entries` and turned into the value's
/// address or null without a branch (so no misprediction can reach past the array, whatever
/// [`JitOptions::spectre`] says), with no helper call. Where r1 holds, the same way, the
/// handle of a map with a [`DirectLookup`], its lookup, update and delete calls call the
/// entry's functions directly. Other calls go through the dispatcher.
pub fn compile_with_maps(
    prog: &VerifiedProgram,
    opts: &JitOptions,
    maps: &InlineMaps,
) -> Result<JitProgram, JitError> {
    build(prog.program(), opts, Some(prog), maps)
}

/// Compiles `prog` without verifier facts: every access that is not r10 plus a constant inside
/// the current frame gets an inline guard. A program with a backward jump or call
/// ([`Program::has_back_edges`]) may not terminate, so it gets the budget charge (see
/// [`JitOptions`]).
pub fn compile_unverified(prog: &Program, opts: &JitOptions) -> Result<JitProgram, JitError> {
    build(prog, opts, None, &InlineMaps::default())
}

fn build(
    prog: &Program,
    opts: &JitOptions,
    facts: Option<&VerifiedProgram>,
    maps: &InlineMaps,
) -> Result<JitProgram, JitError> {
    let may_not_end = facts.map_or_else(|| prog.has_back_edges(), |v| !v.terminates());
    let default_budget = may_not_end && !opts.unbounded;
    let opts = &JitOptions {
        budget: opts.budget || default_budget,
        ..opts.clone()
    };
    let mut tries = 0;
    let assembled = loop {
        tries += 1;
        let seed = if opts.blinding {
            emit::blind::seed()
        } else {
            0
        };
        let a = emit::assemble(prog, opts, facts, maps, seed)?;
        let exposed = a.exposure.as_ref().is_some_and(|e| e.exposed(&a.code));
        if !exposed || tries == BLINDING_TRIES {
            break a;
        }
    };
    let entries = assembled.layout.timer_entries.iter().map(|&(_, at)| at);
    let code =
        code::ExecCode::new(&assembled.code, opts.code_memory)?.with_entries(entries.collect());
    Ok(JitProgram {
        code,
        layout: Box::new(assembled.layout),
        // A reference count: programs share their slots.
        prog: prog.clone(),
        opts: opts.clone(),
        assumed: facts.map(|v| Box::new(v.assumptions().clone())),
        default_budget,
        stack_reach: assembled
            .frames
            .map(|f| f as usize * bpfx_exec::STACK_FRAME_SIZE)
            .map(|reach| direct_stack_reach(prog, facts).map_or(reach, |d| d.min(reach))),
        stats: assembled.stats,
        map_bases: maps.bases(),
        cpus: maps.cpus(),
        per_cpu_direct: maps.per_cpu_direct(),
        _inlined: maps.clone(),
    })
}

/// How many bytes below frame 0's `r10` any run of `prog` may write, when that is known from
/// the instructions alone: the program makes no call (local, helper or kfunc: a helper may
/// write the stack through a pointer argument, a callee writes its own frame), and each store
/// and atomic is either based on `r10` itself, writing `[r10 + off, r10 + off + size)`, or
/// proven by the verifier ([`VerifiedProgram::access`]) to hit a region other than the stack.
/// The run then lends the stack for that many bytes, and the next run zeroes only those
/// ([`bpfx_exec::Stack::lend`]). `None` when a store could reach further.
fn direct_stack_reach(prog: &Program, facts: Option<&VerifiedProgram>) -> Option<usize> {
    use bpfx_bytecode::{Op, Reg};
    use bpfx_verifier::RegionKind;
    let mut reach = 0usize;
    for (pc, op) in prog.iter() {
        let (base, off) = match op {
            Op::Call(_) => return None,
            Op::Store { base, off, .. } | Op::Atomic { base, off, .. } => (*base, *off),
            _ => continue,
        };
        if base == Reg::R10 {
            // `[r10 + off, …)` lies within the top `-off` bytes, or is above the stack and
            // traps.
            reach = reach.max(usize::from(off.unsigned_abs()) * usize::from(off < 0));
            continue;
        }
        let elsewhere = facts.and_then(|v| v.access(pc)).is_some_and(|a| {
            a.proven && !matches!(a.region, RegionKind::Stack | RegionKind::Unknown)
        });
        if !elsewhere {
            return None;
        }
    }
    Some(reach)
}

impl JitProgram {
    /// Runs the program on `input` with `env`, like `bpfx_interp::run_unverified`: the stack is
    /// zeroed first; afterwards (also after a trap) `env.budget` holds what is left and `input`
    /// whatever the program stored.
    ///
    /// A run this code cannot honour traps with [`TrapKind::Unsupported`] at pc 0 before
    /// executing anything: a budget with code compiled without [`JitOptions::budget`], or
    /// `env.max_frames` above [`MAX_FRAMES`]. Code from [`compile`] traps at pc 0 on a run
    /// that breaks the verifier's assumptions ([`VerifiedProgram::check_run`]). A program
    /// that may not terminate runs under [`bpfx_exec::DEFAULT_BUDGET`] when `env` sets no
    /// budget, as on the interpreter ([`Env::begin_default_budget`]).
    ///
    /// A helper that ends the program ([`bpfx_exec::HelperRet`]) ends the run with its value;
    /// one that ends it with a tail call, which this entry cannot follow, traps with
    /// [`TrapKind::Unsupported`] at the `call` ([`JitProgram::run_to_end`] hands it over).
    pub fn run(&self, input: &mut [u8], env: &mut Env) -> Result<u64, Trap> {
        self.enter(input, env, 0)?.value()
    }

    /// [`JitProgram::run`], giving how the run ended: the program's value, or the tail call a
    /// helper ended it with, for the caller to follow ([`End::TailCall`]). Inlined per-CPU
    /// array lookups read CPU 0's values.
    pub fn run_to_end(&self, input: &mut [u8], env: &mut Env) -> Result<End, Trap> {
        self.enter(input, env, 0)
    }

    /// [`JitProgram::run_to_end`] on CPU `cpu`: the values inlined per-CPU array lookups give
    /// ([`InlineArray::per_cpu`]) are that CPU's (taken modulo the arrays' CPUs), as the
    /// lookup helper's must be for the run.
    pub fn run_to_end_on(&self, input: &mut [u8], env: &mut Env, cpu: u32) -> Result<End, Trap> {
        self.enter(input, env, cpu)
    }

    /// Whether the code computes per-CPU array lookups, or calls direct lookups
    /// ([`DirectLookup`]) that depend on the CPU, whose values depend on the CPU
    /// [`JitProgram::run_to_end_on`] is given.
    pub fn per_cpu_inlined(&self) -> bool {
        self.cpus != u32::MAX || self.per_cpu_direct
    }

    /// The body of both entries, inlined into each so that `run` converts the ending in
    /// registers rather than through a returned `End`.
    #[inline(always)]
    fn enter(&self, input: &mut [u8], env: &mut Env, cpu: u32) -> Result<End, Trap> {
        env.begin_run();
        let refuse = |kind| Err(Trap { kind, pc: Pc(0) });
        // The verifier's assumptions first, as the interpreter checks them.
        if let Some(Err(kind)) = self.assumed.as_ref().map(|a| a.check_run(input.len(), env)) {
            return refuse(kind);
        }
        if (env.budget.is_some() && !self.opts.budget) || env.max_frames > MAX_FRAMES {
            return refuse(TrapKind::Unsupported);
        }
        let default = env.begin_default_budget(self.default_budget);
        let r = self.execute(input, env, cpu);
        env.end_default_budget(default);
        r
    }

    /// Runs the timer callback at `entry` (one of
    /// [`VerifiedProgram::timer_callbacks`]) on CPU `cpu` from its own host entry, as
    /// [`bpfx_interp::run_callback`] runs it: a run of its own, in frame 0, with the r1–r5 of
    /// `step` (its bytes at the bottom of that frame: [`bpfx_exec::Env::async_entry`]), no
    /// input, the budget rules of any run of this code. `Unsupported` at `entry` for a pc that
    /// is not a timer callback of code compiled from a verified program, or a callback that
    /// ends in a tail call; `EnvMismatch` for more frames than the proof allows.
    pub fn run_callback(
        &self,
        entry: Pc,
        step: bpfx_exec::CallbackStep,
        env: &mut Env,
        cpu: u32,
    ) -> Result<u64, Trap> {
        let refuse = |kind| Err(Trap { kind, pc: entry });
        env.begin_run();
        let Some(&(_, at)) = self.layout.timer_entries.iter().find(|(p, _)| *p == entry) else {
            return refuse(TrapKind::Unsupported);
        };
        let frames = self.assumed.as_ref().map_or(MAX_FRAMES, |a| a.max_frames);
        if env.max_frames > frames.min(MAX_FRAMES) {
            return refuse(TrapKind::EnvMismatch);
        }
        if env.budget.is_some() && !self.opts.budget {
            return refuse(TrapKind::Unsupported);
        }
        let Some(args) = env.async_entry(step) else {
            return refuse(TrapKind::Unsupported);
        };
        let default = env.begin_default_budget(self.default_budget);
        let r = self.execute_at(&mut [], env, cpu, (at, args));
        env.end_default_budget(default);
        r?.value()
    }

    fn execute(&self, input: &mut [u8], env: &mut Env, cpu: u32) -> Result<End, Trap> {
        self.execute_at(input, env, cpu, (0, [0; 5]))
    }

    /// [`JitProgram::execute`] from the host entry at code offset `entry.0` (0, or a timer
    /// callback's, which starts with r1–r5 `entry.1`).
    fn execute_at(
        &self,
        input: &mut [u8],
        env: &mut Env,
        cpu: u32,
        entry: (usize, [u64; 5]),
    ) -> Result<End, Trap> {
        let bpfx_exec::EnvParts {
            helpers,
            budget,
            stack,
            max_frames,
            shared,
            helper_error,
            fault,
            host,
            engine_cache,
        } = env.parts();
        let len = input.len() as u64;
        // The code writes no deeper than its call graph reaches, nor than `max_frames` allows (`lend` clamps to the buffer, which has exactly that many frames).
        let stack_bytes = stack.lend(self.stack_reach.unwrap_or(usize::MAX));
        let stack_top = stack_bytes.as_mut_ptr() as u64 + stack_bytes.len() as u64;
        let frames_below = u64::from(max_frames.max(1) - 1);
        // The context of the last run of this environment, with this run's fields written.
        let mut cache = code::RunCache::take(engine_cache);
        let ctx = cache.enter(
            input,
            stack,
            stack_top,
            stack_top - frames_below * bpfx_exec::STACK_FRAME_SIZE as u64,
            budget.unwrap_or(u64::MAX),
            helpers,
            shared,
            self.map_bases.as_ptr() as u64,
            // Below every inlined per-CPU array's CPUs, so its value lies in its block.
            u64::from(if cpu < self.cpus {
                cpu
            } else {
                cpu % self.cpus
            }),
            host.map(std::ptr::NonNull::from),
        );
        let r1 = ctx.input_base;
        ctx.cb_args = entry.1;
        let r0 = self.code.call_at(ctx, entry.0);
        if ctx.trap_kind == 0
            && ctx.panic.is_none()
            && ctx.helper_error.is_none()
            && ctx.ended.is_none()
        {
            // The run ended with `exit` or a packet-load halt: no trap, and no helper ended it
            // (the dispatcher stores an ending only with `abi::ENDED` in `trap_kind`), nor
            // failed or panicked.
            let left = ctx.budget;
            cache.leave();
            *engine_cache = Some(cache);
            if let Some(b) = budget.as_mut() {
                *b = left;
            }
            return Ok(End::Return(r0));
        }
        let (trap_kind, trap_pc, fault_access, fault_addr, fault_fp, left) = (
            ctx.trap_kind,
            ctx.trap_pc,
            ctx.fault_access,
            ctx.fault_addr,
            ctx.fault_fp,
            ctx.budget,
        );
        let (panic, failed, ended) = (ctx.panic.take(), ctx.helper_error.take(), ctx.ended.take());
        cache.leave();
        *engine_cache = Some(cache);
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
        if failed.is_some() {
            *helper_error = failed;
        }
        if fault_access != 0 && trap_kind == TrapKind::OutOfBounds as u64 {
            *fault = Some(bpfx_exec::AccessFault::new(
                fault_addr,
                (fault_access & !abi::FAULT_WRITE) as u32,
                fault_access & abi::FAULT_WRITE != 0,
                (r1, len),
                (fault_fp, stack_top),
                shared,
            ));
        }
        if trap_kind == 0 {
            // A helper's message or ending without a trap code (never stored: the dispatcher
            // stores them with one): the run ended with `exit`, as above.
            if let Some(b) = budget.as_mut() {
                *b = left;
            }
            return Ok(End::Return(r0));
        }
        // Nor is `abi::ENDED` a trap code: a helper ended the run (`ended`).
        let trap = TrapKind::from_code(trap_kind as u8);
        if let Some(b) = budget.as_mut() {
            // The charge that found 0 wrapped the counter; the interpreter leaves 0.
            *b = if trap == Some(TrapKind::BudgetExhausted) {
                0
            } else {
                left
            };
        }
        let pc = Pc(trap_pc as u32);
        match (ended, trap) {
            (Some(HelperRet::TailCall(target)), _) => Ok(End::TailCall { pc, target }),
            (Some(HelperRet::Return(r0)), _) => Ok(End::Return(r0)),
            // The dispatcher never stores a `Value`: it hands it to the code.
            (Some(HelperRet::Value(_)) | None, None) => Ok(End::Return(r0)),
            (Some(HelperRet::Value(_)) | None, Some(kind)) => Err(Trap { kind, pc }),
            // The dispatcher serves callback requests itself, or traps: never stored.
            (Some(HelperRet::Callback(_)), _) => Err(Trap {
                kind: TrapKind::Unsupported,
                pc,
            }),
        }
    }

    /// The machine code interleaved with the eBPF source: each instruction in assembly syntax,
    /// then its x86-64 instructions with offset, bytes and Intel syntax; then the cold code and
    /// the stubs.
    pub fn listing(&self) -> String {
        listing::render(&self.prog, self.code.bytes(), &self.layout)
    }

    /// What the compiler did about the program's memory guards: how many accesses it left
    /// unguarded and why, guarded one by one, or covered by a merged guard or a versioned
    /// loop's entry check. Tests and tools read this rather than the listing's text.
    pub fn stats(&self) -> CompileStats {
        self.stats
    }

    /// Size of the machine code in bytes.
    pub fn code_len(&self) -> usize {
        self.code.bytes().len()
    }

    /// The machine code, read through its executable view (for inspection: listings,
    /// hardening checks).
    pub fn code(&self) -> &[u8] {
        self.code.bytes()
    }

    /// The kind of memory the code runs from: the one [`JitOptions::code_memory`] asked for,
    /// or [`CodeMemory::Sealed`] where the dual-mapped arena could not be used.
    pub fn code_memory(&self) -> CodeMemory {
        self.code.memory()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(code: &[u8], needle: &[u8]) -> bool {
        code.windows(needle.len()).any(|w| w == needle)
    }

    /// An inlined array is accepted only when its block holds every value the code can
    /// address: the memory-safety side of `compile_with_maps`, whatever the embedder passes.
    #[test]
    fn inline_arrays_must_fit_their_blocks() {
        let block = SharedMem::new(5 * 24, true);
        assert!(InlineArray::new(block.clone(), 5, 24).is_some());
        assert!(
            InlineArray::new(block.clone(), 6, 24).is_none(),
            "past the block"
        );
        assert!(InlineArray::new(block.clone(), 5, 0).is_none(), "stride 0");
        assert!(
            InlineArray::new(block.clone(), u32::MAX, 1 << 31).is_none(),
            "stride"
        );
        let block = SharedMem::new(3 * 4 * 16, true);
        assert!(InlineArray::per_cpu(block.clone(), 4, 16, 3).is_some());
        assert!(
            InlineArray::per_cpu(block.clone(), 4, 16, 4).is_none(),
            "a CPU too many"
        );
        assert!(
            InlineArray::per_cpu(block.clone(), 4, 16, 0).is_none(),
            "no CPU"
        );
        assert!(
            InlineArray::per_cpu(block, 5, 16, 3).is_none(),
            "past the block"
        );
        let maps = InlineMaps::new(1)
            .with_array(7, InlineArray::new(SharedMem::new(8, true), 1, 8).unwrap())
            .with_array(
                9,
                InlineArray::per_cpu(SharedMem::new(32, true), 2, 8, 2).unwrap(),
            );
        assert_eq!(maps.array(1, 9), Some(1));
        assert_eq!(maps.array(2, 9), None, "another helper");
        assert_eq!(maps.array(1, 8), None, "another handle");
        assert_eq!(maps.shape(1), (2, 8, Some(16)));
        assert_eq!(maps.cpus(), 2);
        assert_eq!(InlineMaps::default().array(1, 7), None, "no lookup helper");
    }

    /// Direct lookups take the slots after the arrays' in the table of bases, each slot the
    /// address of its entry; a handle names one map, the last given; keys of 1 to `MAX_KEY`
    /// bytes only.
    #[test]
    fn direct_lookups_follow_the_arrays_in_the_table_of_bases() {
        let f: Arc<DirectLookupFn> =
            Arc::new(|key: &[u8], cpu: u32| key.len() as u64 + 10 * u64::from(cpu));
        let d = |per_cpu| DirectLookup::new(4, per_cpu, f.clone()).unwrap();
        assert!(DirectLookup::new(0, false, f.clone()).is_none(), "no key");
        assert!(
            DirectLookup::new(65, false, f.clone()).is_none(),
            "a key too long"
        );
        assert!(DirectLookup::new(64, false, f.clone()).is_some());
        let array = || InlineArray::new(SharedMem::new(8, true), 1, 8).unwrap();
        let maps = InlineMaps::new(1)
            .with_array(7, array())
            .with_direct(9, d(false))
            .with_array(8, array())
            .with_direct(11, d(true));
        assert_eq!(maps.direct(1, 9), Some((2, code::DirectOp::Lookup)));
        assert_eq!(maps.direct(1, 11), Some((3, code::DirectOp::Lookup)));
        assert_eq!(maps.direct(2, 9), None, "another helper");
        assert_eq!(maps.direct(1, 7), None, "an array");
        assert!(maps.per_cpu_direct());
        let bases = maps.bases();
        assert_eq!(bases.len(), 4);
        assert_eq!(bases[2], Arc::as_ptr(&maps.direct[0].1.0) as u64);
        // A handle given again names the later map only.
        let maps = maps.with_array(9, array()).with_direct(7, d(false));
        assert_eq!((maps.array(1, 9), maps.direct(1, 9)), (Some(1), None));
        assert_eq!(
            (maps.array(1, 7), maps.direct(1, 7)),
            (None, Some((3, code::DirectOp::Lookup)))
        );
        // Updates and deletes: only with their ids and an entry that has them.
        let up: Arc<DirectUpdateFn> = Arc::new(|_: &[u8], _: &[u8], _: u64, _: u32| 0);
        let del: Arc<DirectDeleteFn> = Arc::new(|_: &[u8]| 0);
        assert!(d(false).with_update(0, up.clone()).is_none(), "no value");
        let full = d(false).with_update(8, up).unwrap().with_delete(del);
        let maps = maps.with_direct(20, full);
        assert_eq!(maps.direct(2, 20), None, "no update id");
        let maps = maps.with_update_ids(2, 3);
        assert_eq!(maps.direct(2, 20), Some((4, code::DirectOp::Update)));
        assert_eq!(maps.direct(3, 20), Some((4, code::DirectOp::Delete)));
        assert_eq!(maps.direct(2, 11), None, "a lookup only");
        assert_eq!(maps.direct(4, 20), None, "another helper");
        assert!(!InlineMaps::new(1).with_direct(9, d(false)).per_cpu_direct());
    }

    #[test]
    fn loop_tops_are_aligned_and_padded_with_nops() {
        use iced_x86::{Decoder, DecoderOptions, Mnemonic};
        // Straight code of every length before a loop moves its top through every offset.
        for k in 0..40 {
            let mut text = String::new();
            for i in 0..k {
                // Three sizes of instruction.
                text += ["mov r0, 1\n", "add r0, 1000\n", "lddw r3, 0x123456789\n"][i % 3];
            }
            text += "top:\nadd r2, 1\njlt r2, 10, top\nexit";
            let prog = Program::decode(bpfx_bytecode::assemble(&text).expect("assembles"))
                .expect("decodes");
            // Without the budget charge the default budget would bring (its block starts
            // move the code around).
            let opts = JitOptions {
                unbounded: true,
                ..JitOptions::default()
            };
            let jit = compile_unverified(&prog, &opts).expect("compiles");
            let insns = jit.layout.main_insns();
            let top = insns[insns.len() - 3].1;
            assert_eq!(top % emit::LOOP_ALIGN, 0, "top at {top:#x} with {k} before");
            // From the end of the instruction before the loop to its top: only no-ops.
            let from = insns.len().checked_sub(4).map_or(jit.layout.body, |i| {
                let mut d =
                    Decoder::with_ip(64, &jit.code()[insns[i].1..], 0, DecoderOptions::NONE);
                insns[i].1 + d.decode().len()
            });
            let mut d = Decoder::with_ip(64, &jit.code()[from..top], 0, DecoderOptions::NONE);
            while d.can_decode() {
                let insn = d.decode();
                assert!(
                    matches!(insn.mnemonic(), Mnemonic::Nop | Mnemonic::Xchg),
                    "{insn} in the padding with {k} before"
                );
            }
        }
    }

    fn program(text: &str) -> Program {
        Program::decode(bpfx_bytecode::assemble(text).expect("assembles")).expect("decodes")
    }

    /// Two loads off `r1 + r3` in a counted loop: one merged guard for both in the main code,
    /// and a versioned copy of the loop without either; Spectre hardening keeps both guards.
    #[test]
    fn stats_count_merged_and_versioned_guards() {
        let prog = program(
            "mov r0, 0
            mov r3, 0
        head:
            mov r4, r1
            add r4, r3
            ldxb r5, [r4+0]
            ldxb r6, [r4+1]
            add r0, r5
            add r3, 2
            jlt r3, r2, head
            exit",
        );
        let opts = JitOptions {
            unbounded: true,
            ..JitOptions::default()
        };
        let s = compile_unverified(&prog, &opts).expect("compiles").stats();
        let want = CompileStats {
            accesses: 2,
            merged_groups: 1,
            merged_accesses: 2,
            versioned_loops: 1,
            versioned_accesses: 2,
            ..CompileStats::default()
        };
        assert_eq!(s, want);
        let opts = JitOptions {
            unbounded: true,
            spectre: true,
            ..JitOptions::default()
        };
        let s = compile_unverified(&prog, &opts).expect("compiles").stats();
        let want = CompileStats {
            accesses: 2,
            inline: 2,
            ..CompileStats::default()
        };
        assert_eq!(s, want);
    }

    /// Frame-constant accesses need no guard; a verifier proof drops one too, except under
    /// Spectre hardening; an access through r1 without a proof keeps its own.
    #[test]
    fn stats_count_elided_guards_by_reason() {
        let text = "stxdw [r10-8], r1
            ldxdw r2, [r10-8]
            ldxb r0, [r1+0]
            exit";
        let s = compile_unverified(&program(text), &JitOptions::default())
            .expect("compiles")
            .stats();
        let frame = CompileStats {
            accesses: 3,
            elided_frame: 2,
            inline: 1,
            ..CompileStats::default()
        };
        assert_eq!(s, frame);
        let config = bpfx_verifier::Config::conformance(bpfx_verifier::Mode::Checked, 8);
        let verified = bpfx_verifier::verify(program(text), &config).expect("verifies");
        let s = compile(&verified, &JitOptions::default())
            .expect("compiles")
            .stats();
        let proven = CompileStats {
            inline: 0,
            elided_proven: 1,
            ..frame
        };
        assert_eq!(s, proven);
        let spectre = JitOptions {
            spectre: true,
            ..JitOptions::default()
        };
        let s = compile(&verified, &spectre).expect("compiles").stats();
        assert_eq!(s, frame);
    }

    #[test]
    fn no_host_address_is_written_into_the_code() {
        // Helper calls go through `[r12 + dispatch]` and stubs through relative jumps, so
        // neither the dispatcher's address nor the code's own shows up as an immediate.
        let insns =
            bpfx_bytecode::assemble("mov r1, 1\ncall 5\nmov r1, 5\ncall r1\nldxb r0, [r1]\nexit")
                .expect("assembles");
        let prog = Program::decode(insns).expect("decodes");
        for opts in [JitOptions::default(), JitOptions::hardened()] {
            let jit = compile_unverified(&prog, &opts).expect("compiles");
            let dispatch = code::dispatch as *const () as u64;
            let own = jit.code().as_ptr() as u64;
            for addr in [dispatch, own] {
                assert!(
                    !contains(jit.code(), &addr.to_le_bytes()),
                    "{addr:#x} in the code"
                );
                // Nor its low half, as a rel32/imm32 would hold it.
                assert!(
                    !contains(jit.code(), &(addr as u32).to_le_bytes()),
                    "{addr:#x}'s low half in the code"
                );
            }
            assert!(
                jit.listing().contains("call qword ptr [r12+"),
                "{}",
                jit.listing()
            );
        }
    }
}
