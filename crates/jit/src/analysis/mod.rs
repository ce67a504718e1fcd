//! The compiler's decisions, made before any code is emitted: each pass reads the program (and
//! the verifier's facts) and answers questions the lowering in [`crate::emit`] asks, so that
//! `emit/` only lowers.
//!
//! ```text
//! Program ─► liveness ─► fold ─► fusion ─► ifconv ─► plan (an Action per instruction)
//!              plan ─► calls (what a local call saves, the deepest chain of frames)
//!              plan ─► blocks (budget charges per basic block)
//!   plan + facts ─► guards (one verdict per access: elided and why, inline, merged, versioned)
//!                     ├─ loops (versioned loops: one entry check for a loop's guards)
//!                     └─ group (merged guards: one check for a run of accesses)
//!              input_base (which registers hold the input's address, for shorter guards)
//! ```

pub(crate) mod blocks;
pub(crate) mod calls;
mod fold;
mod fusion;
pub(crate) mod group;
mod ifconv;
pub(crate) mod input_base;
mod liveness;
pub(crate) mod loops;
pub(crate) mod plan;
