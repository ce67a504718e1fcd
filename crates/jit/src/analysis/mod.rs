//! The compiler's decisions, made before any code is emitted: each pass reads the program's
//! structure ([`bpfx_bytecode::Cfg`], the verifier's for a verified program), the verifier's
//! facts, and what the passes before it decided, and answers questions the lowering in
//! [`crate::emit`] asks, so that `emit/` only lowers.
//!
//! ```text
//! Cfg ─► liveness ─► fold ─► fusion ─► ifconv ─► plan (an Action per instruction)
//! Cfg + plan ─► calls (what a local call saves, the deepest chain of frames)
//! Cfg ─► blocks (budget charges per basic block)
//! Cfg + plan + facts ─► guards (one verdict per access: elided and why, inline, merged, versioned)
//!                         ├─ loops (versioned loops: one entry check for a loop's guards)
//!                         └─ group (merged guards: one check for a run of accesses)
//! Cfg ─► input_base (which registers hold the input's address, for shorter guards)
//! ```

pub(crate) mod blocks;
pub(crate) mod calls;
pub(crate) mod fold;
pub(crate) mod fusion;
pub(crate) mod group;
pub(crate) mod guards;
pub(crate) mod ifconv;
pub(crate) mod input_base;
pub(crate) mod liveness;
pub(crate) mod loops;
pub(crate) mod plan;

/// Which copy of a run of instructions the driver ([`crate::emit::Emitter::emit_copy`])
/// lowers. An instruction may be lowered up to four times, once per kind; the kind decides its
/// guards (through [`guards::GuardPlan::of`]), its budget charge and refunds, and where its
/// jumps land. The analyses decide which copies exist: a slow path per budget block, a
/// fallback per merged group, a fast copy per versioned loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CopyKind {
    /// The program's body, every instruction once, in pc order: block charges, merged guards,
    /// versioned loops' checks before their heads.
    Main,
    /// A basic block's budget slow path, entered when its charge found too little budget: a
    /// charge per instruction, nothing to refund.
    Slow,
    /// A merged guard's fallback, entered when the merged check failed: the group's run with a
    /// guard per access, back to the main code after it.
    Fallback,
    /// The fast copy of versioned loop `i`, entered when its check passed: the accesses the
    /// check proved go unguarded, back edges stay in the copy.
    Fast(usize),
}
