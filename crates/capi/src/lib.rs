//! The C API of bpfx: `libbpfx.so` and `libbpfx.a`, declared by `include/bpfx.h`, plus a
//! uBPF-compatible subset declared by `include/ubpf.h`, so that C and C++ programs embed bpfx
//! (or relink a uBPF program against it unchanged).
//!
//! ```text
//!  C caller ──► ffi.rs / ubpf_ffi.rs ──► vm.rs, object.rs, ubpf.rs ──► bpfx facade
//!              (pointers checked,        (safe state machines:          (crates/runtime:
//!               panics caught,            load → verify → compile        verify, interpret,
//!               status codes)             → run; object, program and     JIT, maps, helpers)
//!                                         map handles; errors as text)
//! ```
//!
//! The library sits at the end of the pipeline, beside the command line: it adds nothing to
//! how programs are verified or run, only the C calling convention and the uBPF vocabulary.
//!
//! # Invariants
//! - **Nothing unwinds into C.** Every exported function runs its body inside
//!   [`std::panic::catch_unwind`]; a panic becomes `BPFX_ERR_INTERNAL` (or uBPF's `-1`).
//! - **Pointers are checked before use.** NULL where a pointer is required, a length without
//!   its buffer, a length above `isize::MAX` or text that is not UTF-8 is an error code, never
//!   a dereference. (A dangling or too-short buffer cannot be detected: the caller's contract.)
//! - **`unsafe` stays in the two FFI modules**, which only turn C pointers into Rust references;
//!   every decision is made in the safe modules.
//! - bpfx's memory safety is never relaxed: uBPF's `ubpf_toggle_bounds_check(vm, false)` is
//!   recorded and reported back, but every access stays proven or checked.
#![deny(unsafe_code)]

mod error;
#[allow(unsafe_code)]
pub mod ffi;
mod object;
mod ubpf;
#[allow(unsafe_code)]
pub mod ubpf_ffi;
mod vm;

#[cfg(test)]
mod header_check;

pub use error::Status;
