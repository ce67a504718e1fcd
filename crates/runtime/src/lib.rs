//! bpfx: run clang-built eBPF objects in user space, unmodified — the public facade over the
//! whole pipeline, with the maps, helpers and contexts programs expect from the kernel.
//!
//! ```text
//! prog.o ──► bpfx-elf ──► Object (maps created) ──► ProgramRef ──► verify ──► Verified
//!                                                     (context)      │  (bound to the maps)
//!                                                      interpret() ◄─┴─► compile() (x86-64 JIT)
//!                                                               └──► Program::run / run_xdp
//! ```
//!
//! ```no_run
//! use bpfx::{Mode, Object, XdpAction};
//! let obj = Object::open("examples/xdp_parse.o")?;
//! let mut prog = obj.program("xdp_parse")?.verify(Mode::Checked)?.compile()?;
//! let mut packet = std::fs::read("examples/tcp-syn.bin").unwrap();
//! let action: XdpAction = prog.run_xdp(&mut packet)?;
//! for (key, value) in obj.map("stats")?.iter() {
//!     println!("{key:?} -> {value:?}");
//! }
//! # Ok::<(), bpfx::Error>(())
//! ```
//!
//! - **Maps** ([`Map`]): array, hash, LRU hash, ring buffer, program array; their values are
//!   guest memory ([`bpfx_exec::SharedMem`]) that programs on any number of threads and the host
//!   share. Global data sections are one-element array maps.
//! - **Helpers**: the kernel's ids and semantics (map operations, time, random numbers, CPU id,
//!   `trace_printk`, tail calls, ring buffers), plus embedder helpers registered on a [`Vm`]
//!   with a signature the verifier enforces.
//! - **Contexts** ([`Context`]): plain memory, XDP (`struct xdp_md` rewritten to real pointers
//!   as the kernel does), or an embedder-defined struct.
//!
//! `docs/runtime.md` describes the design: map storage, handle binding, tail calls, the XDP
//! rewrite.
#![forbid(unsafe_code)]

mod context;
mod error;
mod helpers;
mod map;
mod program;

/// The instruction model, for embedders that build programs by hand ([`ProgramDef`]).
pub use bpfx_bytecode as bytecode;
pub use bpfx_exec::{Budget, DEFAULT_BUDGET, GuestMemory, HelperError, Trap, TrapKind};
pub use bpfx_verifier::{ArgKind, Assumptions, HelperSig, Mode, RetKind, VerifiedProgram};
pub use context::{
    Context, ContextError, StructLayout, XDP_CTX_SIZE, XdpAction, XdpMeta, rewrite_xdp,
};
pub use error::Error;
pub use helpers::{
    GET_PRANDOM_U32, GET_SMP_PROCESSOR_ID, KTIME_GET_NS, MAP_DELETE_ELEM, MAP_LOOKUP_ELEM,
    MAP_UPDATE_ELEM, MAX_TAIL_CALLS, RINGBUF_DISCARD, RINGBUF_OUTPUT, RINGBUF_RESERVE,
    RINGBUF_SUBMIT, TAIL_CALL, TRACE_PRINTK,
};
pub use map::{MAX_MAP_BYTES, Map, MapError, MapKind, MapSpec, UpdateFlag};
pub use program::{Engine, Object, Program, ProgramDef, ProgramInfo, ProgramRef, Verified, Vm};
