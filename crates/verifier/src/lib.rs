//! The bpfx verifier: decides which programs may run, and is the only producer of
//! [`VerifiedProgram`].
//!
//! ```text
//! Program ──► cfg::check ──► Analysis (worklist) ──► VerifiedProgram ──► interpreter
//!             (structure,     (types, init, ranges,   (+ access facts)   └─► JIT
//!              loops)          loop iterations)
//! ```
//!
//! Two stages, both iterative (no recursion anywhere, so a million-instruction program cannot
//! exhaust the host stack):
//!
//! 1. **Structure** ([`cfg`], on the graph of [`bpfx_bytecode::Cfg`], which decoding already
//!    proved lands every target on an instruction start): no path falls off the end of
//!    the program or of a function, no instruction is unreachable, calls name a registered
//!    helper or a local function, r10 is never written; in [`Mode::Strict`], the natural loops
//!    are found and must nest.
//! 2. **Abstract interpretation** (`analysis` over `domain`): each register is
//!    uninitialised, a scalar (known bits and signed/unsigned 64- and 32-bit bounds, `scalar.rs`),
//!    a pointer (stack, input, map value, packet) with an offset range, a map handle, or
//!    "mixed"; each stack byte is uninitialised, initialised, or part of a spilled register that
//!    keeps its type. Both edges of every branch narrow what they compare. Local calls get their
//!    own frame in a per-call-site context; in Strict mode, loops are explored iteration by
//!    iteration, which proves they terminate, within a processed-instruction budget.
//!
//! [`Mode::Strict`] rejects what it cannot prove; [`Mode::Checked`] (the default) rejects only
//! structural faults and lets everything else run under the engines' run-time guards, degrading
//! what it cannot type to unknown scalars. `docs/verifier.md` has the rule × mode table.
//!
//! The result carries per-instruction [`AccessFact`]s: an engine may drop the guard of an access
//! exactly when the fact says `proven`. When r1 points to a context described field by field
//! ([`ContextKind::Fields`]), every access through the context pointer is checked against one
//! field during the analysis and rewritten into an access of bpfx's real layout after it
//! ([`ContextAccess`], `context.rs`), keeping every pc.
#![forbid(unsafe_code)]

mod analysis;
mod cfg;
mod config;
mod context;
mod domain;
mod error;
mod refs;
mod scalar;
mod sock;
mod spec;
mod termination;
mod verified;

pub use analysis::{LOG_LIMIT, VerifierLog};

/// Helper ids loaders write into instructions they could not resolve — libbpf's (and
/// `bpfx-elf`'s) poisoned calls of absent weak kfuncs (`2_002_000_000 + extern`) and loads of
/// maps not created (`2_001_000_000 + map`). As in the kernel, which checks helper ids only
/// on the paths it explores, a call of one is refused where it is reachable, in every mode,
/// and ignored in dead code (a weak kfunc guarded by `bpf_ksym_exists`).
pub const POISONED_HELPERS: std::ops::Range<u32> = 2_001_000_000..2_003_000_000;

/// The helper id libbpf and cilium/ebpf write over an instruction whose CO-RE relocation
/// failed (`0xbad2310`, "bad relo"), and which programs call on purpose to mark a path the
/// kernel they run on must never reach (inspektor-gadget's `bpf_core_unreachable()`, guarding
/// a `bpf_core_enum_value` that came out 0). Treated as [`POISONED_HELPERS`] are: refused where
/// reachable, in every mode, and ignored in dead code, as the kernel does.
pub const BAD_RELO_HELPER: u32 = 0xbad2310;

/// Whether `id` is a poisoned helper id ([`POISONED_HELPERS`] or [`BAD_RELO_HELPER`]).
pub fn is_poisoned_helper(id: u32) -> bool {
    POISONED_HELPERS.contains(&id) || id == BAD_RELO_HELPER
}
pub use config::{
    ArgKind, CallbackKind, Config, ContextField, ContextKind, ContextLayout, DEFAULT_INSN_BUDGET,
    FieldKind, HelperSig, HelperTable, MapDef, MapRef, MapTable, Mode, RetKind, SockKind, SockRet,
    iterable_map_type, map_type_name,
};
pub use context::ContextAccess;
pub use error::{VerifyError, VerifyErrorKind};
pub use spec::{SpecError, parse_helper, parse_map};
pub use verified::{AccessFact, Assumptions, MapCall, PacketReach, RegionKind, VerifiedProgram};

use bpfx_bytecode::{Pc, Program};

/// Verifies `prog` under `cfg`.
pub fn verify(prog: Program, cfg: &Config) -> Result<VerifiedProgram, VerifyError> {
    run(prog, cfg, None)
}

/// Verifies `prog` under `cfg`, also returning the log: every instruction the analysis
/// processed, with the abstract state before it, and the error (if any) as the last line.
pub fn verify_with_log(
    prog: Program,
    cfg: &Config,
) -> (Result<VerifiedProgram, VerifyError>, VerifierLog) {
    let mut log = VerifierLog::default();
    let res = run(prog, cfg, Some(&mut log));
    (res, log)
}

fn run(
    prog: Program,
    cfg: &Config,
    log: Option<&mut VerifierLog>,
) -> Result<VerifiedProgram, VerifyError> {
    let structure = cfg::check(&prog, cfg)?;
    let mut a = analysis::Analysis::new(&prog, cfg, &structure, log);
    a.run(&structure.funcs)?;
    let facts = std::mem::take(&mut a.facts);
    let mut callbacks: Vec<(Pc, analysis::CallbackSite)> = a.callbacks.drain().collect();
    callbacks.sort_unstable_by_key(|&(site, _)| site);
    let reached = std::mem::take(&mut a.reached);
    let mut map_calls: Vec<(Pc, MapCall)> = a
        .map_calls
        .drain()
        .filter_map(|(pc, site)| Some((pc, site?)))
        .collect();
    map_calls.sort_unstable_by_key(|&(pc, _)| pc);
    let mut packet_writes: Vec<(Pc, PacketReach)> = a.packet_writes.drain().collect();
    packet_writes.sort_unstable_by_key(|&(pc, _)| pc);
    let ctx = std::mem::take(&mut a.ctx).into_accesses();
    let processed = a.processed;
    let exact_len = a.reads_len;
    drop(a);
    let converted = context::convert(prog, &ctx)?;
    // Conversion rewrites context accesses in place: the structure stays, on the new program.
    let graph = if ctx.is_empty() {
        structure.cfg
    } else {
        bpfx_bytecode::Cfg::new(&converted)
    };
    let packet_base = match cfg.context {
        ContextKind::Fields(_) => cfg.mem_size.unwrap_or(0),
        ContextKind::Memory => 0,
    };
    let trips: Vec<(Pc, Pc, u64)> = callbacks
        .iter()
        .map(|&(site, cb)| (site, cb.target, cb.trips))
        .collect();
    let assumed = verified::Assumptions::new(&graph, cfg, &trips, exact_len);
    let mut timer_callbacks: Vec<Pc> = callbacks
        .iter()
        .filter(|(_, cb)| cb.kind == CallbackKind::Timer)
        .map(|&(_, cb)| cb.target)
        .collect();
    timer_callbacks.sort_unstable();
    timer_callbacks.dedup();
    Ok(VerifiedProgram::new(graph, facts, assumed, processed)
        .with_timer_callbacks(timer_callbacks)
        .with_callbacks(
            callbacks
                .iter()
                .map(|&(site, cb)| (site, cb.target))
                .collect(),
        )
        .with_reached(reached)
        .with_map_calls(map_calls)
        .with_packet_writes(packet_writes)
        .with_context_accesses(ctx)
        .with_packet_base(packet_base))
}
