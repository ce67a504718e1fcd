//! The natively compiled programs (built by `build.rs` with the `cc` crate, once with clang and
//! once with gcc) and the calls into them: the only foreign code the benches run besides
//! rbpf's JIT.

/// `u64 NAME(u8 *mem, u64 len)`, natively.
type Entry = unsafe extern "C" fn(*mut u8, u64) -> u64;

/// A workload as the build script found it.
#[derive(Debug)]
pub(crate) struct NativeProgram {
    /// File stem, also the eBPF entry function's name.
    pub(crate) name: &'static str,
    /// The committed eBPF object.
    pub(crate) object: &'static [u8],
    /// The entry per compiler, in [`crate::Native::ALL`] order; `None` for a compiler that
    /// did not build the workloads.
    entries: [Option<Entry>; 2],
    /// `void NAME_input(u8 *mem, u64 len)`, when the program shapes its input.
    input: Option<unsafe extern "C" fn(*mut u8, u64)>,
}

include!(concat!(env!("OUT_DIR"), "/programs.rs"));

/// The `--version` line of compiler `index` (in [`crate::Native::ALL`] order), if it built
/// the workloads.
pub(crate) fn compiler(index: usize) -> Option<&'static str> {
    COMPILERS[index]
}

/// C reads `u32` and `u64` words in place: the buffer must be aligned for them.
const ALIGN: usize = 8;

fn check_aligned(mem: &[u8]) {
    assert!(
        mem.is_empty() || (mem.as_ptr() as usize).is_multiple_of(ALIGN),
        "bench inputs must be {ALIGN}-byte aligned"
    );
}

/// Runs the build of compiler `index`; `None` when that compiler did not build the workloads.
pub(crate) fn run(program: &NativeProgram, index: usize, mem: &mut [u8]) -> Option<u64> {
    let entry = program.entries[index]?;
    check_aligned(mem);
    // SAFETY: `entry` is a program of `programs/`, which by `bench.h`'s contract reads and
    // writes only `[mem, mem + len)` for any contents, with aligned accesses (checked above)
    // except through `bench.h`'s unaligned helpers; `mem` is a live, exclusively borrowed
    // buffer of exactly `len` bytes.
    Some(unsafe { entry(mem.as_mut_ptr(), mem.len() as u64) })
}

pub(crate) fn shape_input(program: &NativeProgram, mem: &mut [u8]) {
    check_aligned(mem);
    if let Some(input) = program.input {
        // SAFETY: as in `run`: input shapers keep to `[mem, mem + len)` too.
        unsafe { input(mem.as_mut_ptr(), mem.len() as u64) }
    }
}
