//! The bpfx test kit: what every engine is tested with, written once.
//!
//! ```text
//! .data files ──► data ──► suite ───┐
//! seed ──► generator ──► Case ───────┼──► engines() ──► interpreter, JIT, …
//! edge-case programs ────────────────┘        │
//!                                   check(): every engine, same input, same outcome
//! ```
//!
//! - [`data`] parses the `.data` format of the BPF conformance suite; [`suite`] turns the suite
//!   into runnable tests.
//! - [`engine`] is the engine abstraction and the engine matrix (the interpreter and the JIT
//!   under every option set), defined once for every harness of the workspace; a harness loops
//!   over [`engines`] (or the runtime's tests over [`matrix`]), so a new engine or option set
//!   needs no new test code.
//! - [`check`](mod@check) runs one [`Case`] on the reference interpreter and every engine and
//!   compares result, trap, memory and budget; [`generator`] generates random valid cases for it.
//! - [`corpus`] reads the verifier corpus and the environment each file declares.
//! - [`fuzz`] holds the property behind each fuzz target of `fuzz/`, so `cargo test` replays the
//!   same checks; [`structured`] turns fuzzer bytes into mostly-valid cases.
#![forbid(unsafe_code)]

pub mod check;
pub mod corpus;
pub mod data;
pub mod engine;
pub mod fuzz;
pub mod generator;
mod layout;
pub mod loop_gen;
pub mod strict_gen;
pub mod structured;
pub mod suite;

pub use check::{Case, Mismatch, Outcome, check, check_with, run_corpus};
pub use data::{DataError, DataFile, load_dir};
pub use engine::{
    Engine, InterpEngine, JitEngine, RunError, VerifiedJit, engines, jit_option_sets, matrix,
    sampled_engines, sampled_verified_engines, verified_engines,
};
pub use generator::generate;
pub use loop_gen::{check_verified_loop, generate_loop, generate_loop_with};
