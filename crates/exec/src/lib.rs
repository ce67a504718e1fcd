//! The execution contract shared by every bpfx engine (the reference interpreter and the JIT).
//!
//! ```text
//! Program ──► verifier ──► interpreter ─┐
//!                     └──► JIT ─────────┴──► Result<u64, Trap>   (both engines, same contract)
//! ```
//!
//! Both engines take the same [`Env`] (helpers, call-depth limit, instruction budget, stack) and
//! the same input memory, and must produce the same `r0`, or the same [`Trap`] at the same pc,
//! leaving memory byte-for-byte the same. The rules that make this possible live here, once:
//!
//! - **Address space.** Programs see real host addresses. The input memory is one region; the
//!   stack is one buffer of `max_frames` frames of [`STACK_FRAME_SIZE`] bytes, growing down from
//!   its top. The accessible stack is the *active* frames: from the current frame's bottom
//!   (`r10 - 512`) to the top of the buffer, so a function may read its callers' frames through
//!   pointers but never the frames below its own. [`GuestMemory`] is that rule as code.
//! - **Traps.** Every run-time fault is a [`Trap`] `{ kind, pc }` with a stable `#[repr(u8)]`
//!   [`TrapKind`] code, so the JIT can report it across the machine-code boundary. An
//!   out-of-bounds load, store or atomic also leaves its address, size and the regions it was
//!   checked against in [`Env::fault`] ([`AccessFault`]), the same on every engine.
//! - **Helpers** are registered by id in [`Helpers`]: five `u64` arguments, access to guest
//!   memory through [`GuestMemory`], and a [`HelperRet`]: the `u64` result, or the end of the
//!   program (with a value, or a tail call). Engines call them only through
//!   [`Helpers::call`], which first checks each declared memory argument ([`MemArg`]) against
//!   the run's regions, so no helper sees a range outside them.
//! - **Budget.** With [`Env::budget`] set, every executed instruction costs one unit (an `lddw`
//!   counts once); the instruction that finds the budget at zero traps with
//!   [`TrapKind::BudgetExhausted`] before it executes. A run without a budget of a program
//!   whose termination is not proven (by the verifier, or, unverified, by having no backward
//!   jump or call) gets [`DEFAULT_BUDGET`] for that run, unless [`Env::unbounded`] says the
//!   embedder accepts a run that may never end ([`Env::begin_default_budget`] is that rule).
//!
//! # Semantics both engines implement (beyond RFC 9669's arithmetic)
//! - Entry: r1 = address of the input memory, or 0 when it is empty; r2 = its length
//!   ([`entry_registers`]); r10 = the stack top; every other register 0. The stack is zeroed.
//! - Local call: traps with [`TrapKind::CallDepthExceeded`] at the `call` if the new frame would
//!   exceed [`Env::max_frames`]; otherwise r10 moves down one frame and r6–r9 are restored (and
//!   r10 moved back) by the callee's `exit`. r0–r5 pass through unchanged both ways.
//! - Helper call (`call N`, or `callx` with the id in a register): r0 = the result; r1–r5 are
//!   then zero (the ABI clobbers them; zero makes that deterministic). A helper that ends the
//!   program ([`HelperRet::Return`], [`HelperRet::TailCall`]) ends the run at the `call`, from
//!   any call depth, with no trap: with its value as the result, or with an
//!   [`End::TailCall`] for the engine's caller to follow (an engine entry that cannot follow
//!   it traps with [`TrapKind::Unsupported`] at the `call`, [`End::value`]). An unregistered
//!   id traps with [`TrapKind::UnknownHelper`]; a memory argument outside the run's regions with
//!   [`TrapKind::OutOfBounds`] at the `call`, before the helper runs; a helper error with
//!   [`TrapKind::HelperError`]. The message of either of the last two is left in
//!   [`Env::helper_error`] (which every run starts by clearing).
//! - Callback (`HelperRet::Callback`, `bpf_loop` and `for_each_map_elem`): the engine calls
//!   the callback function as a local call from the helper's `call` (a new frame, the depth
//!   checked at every iteration: [`TrapKind::CallDepthExceeded`] at the `call`), with r1–r5
//!   from [`CallbackIter::next`] (for [`CallbackStep::CallWithFrame`], its bytes first copied
//!   to the bottom of the new frame: [`frame_bytes_at`]), until it says [`CallbackStep::Done`];
//!   then r0 = its value and
//!   r1–r5 are zero, as after any helper call. The callback's instructions count against the
//!   budget; a trap inside it has the callback's pc; an error of `next` is a
//!   [`TrapKind::HelperError`] at the `call`. The engines call the function the verifier
//!   recorded for the `call`, and trap with [`TrapKind::Unsupported`] at a `call` it recorded
//!   none for (and at every one in an unverified run).
//! - Legacy packet loads (`ldabs*`, `ldind*`) read big-endian from the packet at `index + imm`
//!   (64-bit wrapping), the packet being the input from the verified program's `packet_base`
//!   on (0 for plain memory; past the context struct for a field context); out of bounds,
//!   the whole program returns 0 at once (the kernel's rule), with no trap.
//! - `lddw` of a function (`src = 4`) loads the absolute pc of the function; the map and BTF
//!   pseudo forms trap with [`TrapKind::Unsupported`] unless an embedder binds them; a kfunc call
//!   traps with [`TrapKind::Unsupported`].
//! - Falling through the last instruction (no `exit` or `ja` there) traps with
//!   [`TrapKind::FellOffEnd`] at that instruction, after it has executed.
#![forbid(unsafe_code)]

mod fault;
mod helpers;
mod memory;
mod shared;
mod trap;

pub use fault::{AccessFault, FaultRegion, LISTED_SHARED, RegionKind};
pub use helpers::{
    ArgLen, CallbackIter, CallbackStep, Callbacks, End, HelperError, HelperFn, HelperRet, Helpers,
    LenFn, MemArg, TailCall,
};
pub use memory::{GuestMemory, Region, STACK_ALIGN, Stack};
pub use shared::{SharedMem, zeroed_words};
use std::sync::Arc;
pub use trap::{Trap, TrapKind};

/// Size of one call frame's stack in bytes.
pub const STACK_FRAME_SIZE: usize = 512;

/// Where [`CallbackStep::CallWithFrame`] puts `len` bytes in a callback's frame whose r10 is
/// `fp`: at the bottom of the frame (`fp - 512`), the part compilers fill last (they allocate
/// from the top), so a callback's own locals rarely overlap them; `None` when they exceed a
/// frame.
pub fn frame_bytes_at(fp: u64, len: usize) -> Option<u64> {
    (len <= STACK_FRAME_SIZE).then(|| fp - STACK_FRAME_SIZE as u64)
}

/// Default limit on nested frames, counting the outermost one (the kernel's `MAX_CALL_FRAMES`).
pub const DEFAULT_MAX_FRAMES: u32 = 8;

/// The instruction budget a run gets when its program may not terminate and the embedder set
/// none ([`Env::budget`] `None`, [`Env::unbounded`] false): 2^28, about 268 million
/// instructions, which the interpreter (release build) runs in about three seconds and the JIT
/// in a few tenths of a second: a looping program stops with [`TrapKind::BudgetExhausted`]
/// instead of hanging, long before anyone would give up waiting, and long after any program
/// that means to finish has. Programs proven to terminate never get it.
pub const DEFAULT_BUDGET: u64 = 1 << 28;

/// How many instructions a run may execute: what an embedder asks for ([`Env::set_budget`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Budget {
    /// No limit for a program proven to terminate; [`DEFAULT_BUDGET`] per run for any other.
    #[default]
    Default,
    /// At most this many instructions, whatever the program (shared by the runs that follow
    /// until it is set again: each run leaves what it did not use).
    Limit(u64),
    /// No limit at all, even for a program that may never end: the embedder's explicit
    /// choice (`--no-budget`).
    Unlimited,
}

impl From<Option<u64>> for Budget {
    /// `Some(n)` is [`Budget::Limit`], `None` [`Budget::Default`].
    fn from(b: Option<u64>) -> Budget {
        b.map_or(Budget::Default, Budget::Limit)
    }
}

/// Helper id the conformance suite expects to exist and to return its first argument.
pub const CONFORMANCE_ECHO_HELPER: u32 = 5;

/// The entry values of r1 and r2 for an input memory: its address (0 when empty) and length.
pub fn entry_registers(input: &[u8]) -> (u64, u64) {
    let addr = if input.is_empty() {
        0
    } else {
        input.as_ptr() as u64
    };
    (addr, input.len() as u64)
}

/// Per-run execution environment, shared by both engines.
#[derive(Debug)]
pub struct Env {
    /// Registered helpers.
    pub helpers: Helpers,
    /// Frames allowed at once, counting the outermost (at least 1).
    pub max_frames: u32,
    /// Instructions the run may still execute; `None` for no limit set by the embedder (a
    /// program that may not terminate then still gets [`DEFAULT_BUDGET`] for the run, unless
    /// [`Env::unbounded`]). Engines decrement it as they run, so after a run it holds what is
    /// left.
    pub budget: Option<u64>,
    /// With no [`Env::budget`], let a program whose termination is not proven run without any
    /// limit (default `false`: such a run gets [`DEFAULT_BUDGET`]).
    pub unbounded: bool,
    /// Shared memory lent to the program (map values, global data, ring buffers): accessible
    /// like the input and the stack, read-only where [`SharedMem::writable`] says so.
    pub shared: Vec<Arc<SharedMem>>,
    /// Why the last run stopped at a helper call ([`TrapKind::HelperError`], or
    /// [`TrapKind::OutOfBounds`] for a memory argument [`Helpers::call`] refused): the failing
    /// helper's own message, or which argument was out of bounds (engines clear it when a run
    /// starts and set it when a call fails), so that a trap can say more than its kind.
    pub helper_error: Option<HelperError>,
    /// What the last run's out-of-bounds load, store or atomic tried to touch, and the regions
    /// it was checked against (engines clear it when a run starts and set it at such a trap;
    /// a helper's memory argument out of bounds leaves its message in [`Env::helper_error`]
    /// instead).
    pub fault: Option<AccessFault>,
    /// The embedder's state of a run (for bpfx's runtime, its run state: the frame, the
    /// redirect target, the inner maps of the run, …), handed to every helper call through
    /// [`GuestMemory::host`] on both engines, so helpers reach it without a lock. Engines never
    /// read or change it themselves.
    pub host: Option<Box<dyn std::any::Any + Send + Sync>>,
    /// What an engine keeps between runs of this environment (the JIT keeps its run context
    /// there, so a run rewrites only the fields that change). Engines own its content, of a
    /// type of their own that they check before use; an embedder has nothing to put there,
    /// and dropping it only costs the next run its rebuild.
    pub engine_cache: Option<Box<dyn std::any::Any + Send + Sync>>,
    stack: Stack,
}

/// The parts of an [`Env`] an engine needs at once during a run.
#[derive(Debug)]
pub struct EnvParts<'a> {
    /// Registered helpers.
    pub helpers: &'a Helpers,
    /// The remaining budget, updated as the run goes.
    pub budget: &'a mut Option<u64>,
    /// The stack buffer.
    pub stack: &'a mut Stack,
    /// Frames allowed at once (at least 1).
    pub max_frames: u32,
    /// Shared memory blocks.
    pub shared: &'a [Arc<SharedMem>],
    /// Where a failing helper call's message goes ([`Env::helper_error`]).
    pub helper_error: &'a mut Option<HelperError>,
    /// Where an out-of-bounds access's detail goes ([`Env::fault`]).
    pub fault: &'a mut Option<AccessFault>,
    /// The embedder's run state ([`Env::host`]), for the [`GuestMemory`] of helper calls.
    pub host: Option<&'a mut (dyn std::any::Any + Send + Sync + 'static)>,
    /// The engine's state kept between runs ([`Env::engine_cache`]).
    pub engine_cache: &'a mut Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Env {
    /// An environment with no helpers, the default frame limit and no budget.
    pub fn new() -> Env {
        Env::with_helpers(Helpers::new())
    }

    /// An environment with these helpers, the default frame limit and no budget.
    pub fn with_helpers(helpers: Helpers) -> Env {
        Env {
            helpers,
            max_frames: DEFAULT_MAX_FRAMES,
            budget: None,
            unbounded: false,
            shared: Vec::new(),
            helper_error: None,
            fault: None,
            host: None,
            engine_cache: None,
            stack: Stack::new(DEFAULT_MAX_FRAMES),
        }
    }

    /// Sets the frame limit (clamped to at least 1), resizing the stack.
    #[inline]
    pub fn set_max_frames(&mut self, frames: u32) {
        self.max_frames = frames.max(1);
        if self.stack.frames() != self.max_frames {
            self.stack = Stack::new(self.max_frames);
        }
    }

    /// Sets [`Env::budget`] and [`Env::unbounded`] from what the embedder asks for.
    pub fn set_budget(&mut self, budget: Budget) {
        (self.budget, self.unbounded) = match budget {
            Budget::Default => (None, false),
            Budget::Limit(n) => (Some(n), false),
            Budget::Unlimited => (None, true),
        };
    }

    /// The one rule for a run's limit, shared by every engine, applied at the start of a run:
    /// [`Env::budget`] when the embedder set one; otherwise [`DEFAULT_BUDGET`] when the
    /// program `may_not_end` and [`Env::unbounded`] is false; otherwise no limit. Installs
    /// the default in [`Env::budget`] for the run and returns whether it did; the engine
    /// hands that to [`Env::end_default_budget`] when the run ends, so the default never
    /// carries over to the next run.
    pub fn begin_default_budget(&mut self, may_not_end: bool) -> bool {
        let default = self.budget.is_none() && may_not_end && !self.unbounded;
        if default {
            self.budget = Some(DEFAULT_BUDGET);
        }
        default
    }

    /// Removes the default budget [`Env::begin_default_budget`] installed (`default` is what
    /// it returned).
    pub fn end_default_budget(&mut self, default: bool) {
        if default {
            self.budget = None;
        }
    }

    /// The stack buffer. Engines zero it at the start of every run, so a run never sees bytes
    /// left by a previous one. It is reallocated only when the frame limit changes.
    #[inline]
    pub fn stack_mut(&mut self) -> &mut Stack {
        self.parts().stack
    }

    /// The r1–r5 an async callback (a timer's, which the kernel runs in a context of its own,
    /// not from a helper call) starts with, in frame 0 of a run of its own: `step`'s
    /// arguments, and for [`CallbackStep::CallWithFrame`] its bytes copied to the bottom of
    /// frame 0 ([`frame_bytes_at`]) with their address in argument `at`. `None` when the
    /// bytes exceed a frame (or `step` is not a call). Engines call it after
    /// [`Env::begin_run`], which zeroes the stack.
    pub fn async_entry(&mut self, step: CallbackStep) -> Option<[u64; 5]> {
        match step {
            CallbackStep::Call(args) => Some(args),
            CallbackStep::CallWithFrame {
                mut args,
                bytes,
                at,
            } => {
                let stack = self.stack_mut();
                let fp = stack.frame_pointer(0);
                let addr = frame_bytes_at(fp, bytes.len())?;
                let start = stack.size() - STACK_FRAME_SIZE;
                stack.bytes_mut()[start..start + bytes.len()].copy_from_slice(&bytes);
                if let Some(a) = args.get_mut(at) {
                    *a = addr;
                }
                Some(args)
            }
            CallbackStep::Done(_) => None,
        }
    }

    /// What every engine does before a run: zero the stack (what earlier runs may have
    /// written of it) and forget the previous run's helper failure and access fault.
    #[inline]
    pub fn begin_run(&mut self) {
        self.stack_mut().clear();
        self.helper_error = None;
        self.fault = None;
    }

    /// Splits the environment into the parts an engine needs at once.
    #[inline]
    pub fn parts(&mut self) -> EnvParts<'_> {
        let max_frames = self.max_frames.max(1);
        if self.stack.frames() != max_frames {
            self.stack = Stack::new(max_frames);
        }
        EnvParts {
            helpers: &self.helpers,
            budget: &mut self.budget,
            stack: &mut self.stack,
            max_frames,
            shared: &self.shared,
            helper_error: &mut self.helper_error,
            fault: &mut self.fault,
            host: self.host.as_deref_mut(),
            engine_cache: &mut self.engine_cache,
        }
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}
