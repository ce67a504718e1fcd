//! The natively compiled programs (built by `build.rs` with the `cc` crate) and the calls into
//! them: the only foreign code the benches run besides rbpf's JIT.

/// A workload as the build script found it.
#[derive(Debug)]
pub(crate) struct NativeProgram {
    /// File stem, also the eBPF entry function's name.
    pub(crate) name: &'static str,
    /// The committed eBPF object.
    pub(crate) object: &'static [u8],
    /// `u64 NAME(u8 *mem, u64 len)`, natively.
    entry: unsafe extern "C" fn(*mut u8, u64) -> u64,
    /// `void NAME_input(u8 *mem, u64 len)`, when the program shapes its input.
    input: Option<unsafe extern "C" fn(*mut u8, u64)>,
}

include!(concat!(env!("OUT_DIR"), "/programs.rs"));

/// C reads `u32` and `u64` words in place: the buffer must be aligned for them.
const ALIGN: usize = 8;

fn check_aligned(mem: &[u8]) {
    assert!(
        mem.is_empty() || (mem.as_ptr() as usize).is_multiple_of(ALIGN),
        "bench inputs must be {ALIGN}-byte aligned"
    );
}

pub(crate) fn run(program: &NativeProgram, mem: &mut [u8]) -> u64 {
    check_aligned(mem);
    // SAFETY: `entry` is a program of `programs/`, which by `bench.h`'s contract reads and
    // writes only `[mem, mem + len)` for any contents, with aligned accesses (checked above);
    // `mem` is a live, exclusively borrowed buffer of exactly `len` bytes.
    unsafe { (program.entry)(mem.as_mut_ptr(), mem.len() as u64) }
}

pub(crate) fn shape_input(program: &NativeProgram, mem: &mut [u8]) {
    check_aligned(mem);
    if let Some(input) = program.input {
        // SAFETY: as in `run`: input shapers keep to `[mem, mem + len)` too.
        unsafe { input(mem.as_mut_ptr(), mem.len() as u64) }
    }
}
