//! The bpfx benchmark harness: the workloads (C programs in `programs/`, compiled once to eBPF
//! objects with clang and, at build time, natively with clang-19 and with gcc), their inputs,
//! and the engines they run on side by side.
//!
//! ```text
//! programs/NAME.c ──clang-19 -O2 -target bpf──► NAME.o ──► load::program ──► Program ─► bpfx interp / JIT
//!        │                                                       └──► raw bytes ─────► rbpf 0.4.1 (JIT, interp)
//!        └──cc (build.rs)──► native NAME: clang-19 -O2 (the baseline), gcc -O2 (second column)
//! ```
//!
//! The criterion benches (`exec.rs`, `compile.rs`) and the agreement test (`tests/agree.rs`)
//! are thin loops over [`workloads`]: a new `programs/*.c` with its object is a new benchmark.
//!
//! Two benches run whole programs through the `bpfx` runtime instead: `replay.rs`, XDP filters
//! (`replay/`, see [`replay`]) per packet on 1 to N threads against their native build and the
//! kernel's JIT; and `maps.rs`, map lookups and updates from 1, 2 and 4 threads while the host
//! reads (`maps/maps.c`).
//!
//! # Invariants
//! - Every workload returns the same `u64` natively (with each compiler built), on both bpfx
//!   engines and on both rbpf engines, for the same input (`tests/agree.rs` asserts it, and each bench group asserts it
//!   once before timing).
//! - Native code and rbpf's JIT run without bounds checks. They are only ever handed the
//!   programs of this crate, which by the contract of `programs/bench.h` touch nothing outside
//!   `[mem, mem + len)` (and their own stack) for any input contents.
#![deny(unsafe_code)]

pub mod generate;
pub mod load;
#[allow(unsafe_code)]
mod native;
#[allow(unsafe_code)]
mod peer;
#[allow(unsafe_code)]
pub mod replay;
pub mod report;

pub use load::LoadError;
pub use peer::{Rbpf, rbpf_jit_compile};
/// The peer runtime, for benches that drive it directly.
pub use rbpf;

use bpfx_bytecode::Program;

/// Input size every execution bench uses, in bytes: large enough that the per-run entry cost
/// is small beside the loop, small enough to stay in L1.
pub const INPUT_LEN: usize = 4096;

/// A native compiler of the workloads' C (`build.rs`), both at `-O2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Native {
    /// clang-19: the baseline every ratio is taken against, when it is installed.
    Clang,
    /// gcc: the second column, and the baseline where clang is not installed.
    Gcc,
}

impl Native {
    /// Both, the baseline first.
    pub const ALL: [Native; 2] = [Native::Clang, Native::Gcc];

    /// Position in [`Native::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Native::Clang => 0,
            Native::Gcc => 1,
        }
    }

    /// The benchmark id of this column (`native-clang`, `native-gcc`).
    pub fn id(self) -> &'static str {
        match self {
            Native::Clang => "native-clang",
            Native::Gcc => "native-gcc",
        }
    }

    /// The column's heading in the tables.
    pub fn label(self) -> &'static str {
        match self {
            Native::Clang => "clang -O2",
            Native::Gcc => "gcc -O2",
        }
    }

    /// The compiler's `--version` line, or `None` when it did not build the workloads (not
    /// installed, or turned off with `BPFX_BENCH_CLANG=none`).
    pub fn version(self) -> Option<&'static str> {
        native::compiler(self.index())
    }

    /// Whether this compiler built the workloads.
    pub fn built(self) -> bool {
        self.version().is_some()
    }

    /// The baseline: clang when it built the workloads, else gcc (the build script stops when
    /// neither did).
    pub fn baseline() -> Native {
        if Native::Clang.built() {
            Native::Clang
        } else {
            Native::Gcc
        }
    }
}

/// One benchmark program.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    program: &'static native::NativeProgram,
}

/// Every workload, in file-name order.
pub fn workloads() -> impl Iterator<Item = Workload> {
    native::PROGRAMS.iter().map(|program| Workload { program })
}

impl Workload {
    /// The program's name (its file stem).
    pub fn name(&self) -> &'static str {
        self.program.name
    }

    /// The eBPF object, as committed.
    pub fn object(&self) -> &'static [u8] {
        self.program.object
    }

    /// The program's bytecode: the entry section followed by the functions it calls, with
    /// the call relocations applied.
    pub fn bytecode(&self) -> Result<Vec<u8>, LoadError> {
        load::bytecode(self.program.object)
    }

    /// The decoded program.
    pub fn program(&self) -> Result<Program, LoadError> {
        let bytes = self.bytecode()?;
        Program::from_bytes(&bytes).map_err(LoadError::Decode)
    }

    /// The workload's input of `len` bytes: a seeded pseudo-random fill (the same every time),
    /// then shaped by the program's own `NAME_input` when it has one (sorted keys, strings,
    /// packets).
    pub fn input(&self, len: usize) -> Vec<u8> {
        let mut mem = random_bytes(len, fnv(self.name().as_bytes()));
        native::shape_input(self.program, &mut mem);
        mem
    }

    /// Runs the program compiled natively by the baseline compiler ([`Native::baseline`]) on
    /// `mem`.
    ///
    /// # Panics
    /// If `mem` is not 8-byte aligned: the C programs read words in place.
    pub fn run_native(&self, mem: &mut [u8]) -> u64 {
        self.run_native_with(Native::baseline(), mem)
            .expect("the baseline compiler built every workload")
    }

    /// Runs the program compiled natively by `native` on `mem`; `None` when that compiler did
    /// not build the workloads.
    ///
    /// # Panics
    /// If `mem` is not 8-byte aligned: the C programs read words in place.
    pub fn run_native_with(&self, native: Native, mem: &mut [u8]) -> Option<u64> {
        native::run(self.program, native.index(), mem)
    }

    /// rbpf 0.4.1 set up for this workload on inputs of `len` bytes (see [`Rbpf`] for how its
    /// calling convention is bridged).
    pub fn rbpf(&self, len: usize) -> Result<Rbpf, LoadError> {
        Rbpf::new(&self.bytecode()?, len)
    }
}

/// A seeded xorshift64* stream of bytes: deterministic, so every run of the benches sees the
/// same inputs.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len.next_multiple_of(8));
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
