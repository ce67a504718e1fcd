//! `bpf_strncmp` (182), for every program type: a buffer against a constant string.

use crate::helpers::Cx;
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_strncmp`.
pub const STRNCMP: u32 = 182;

/// `bpf_strncmp(s1, s1_sz, s2)`: compares the string in the `s1_sz` bytes at `s1` with the
/// NUL-terminated string `s2`, as C's `strncmp(s1, s2, s1_sz)` with the kernel's answers: 0
/// when they are equal up to a NUL or the `s1_sz`-th byte, else -1 or 1 as the first byte
/// that differs (as an unsigned char) is lower or higher in `s1`. `s2` is read up to its NUL
/// or the `s1_sz`-th byte; a byte of it the program cannot read fails the run (the kernel
/// accepts only a string the verifier saw terminated in a read-only map value).
pub(crate) fn strncmp(
    _cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (s1, n, s2) = (a[0], a[1] & 0xffff_ffff, a[2]);
    let left = mem
        .read(s1, n as usize)
        .ok_or_else(|| HelperError(format!("strncmp: cannot read {n} bytes at {s1:#x}")))?;
    for (i, &c1) in left.iter().enumerate() {
        let at = s2.wrapping_add(i as u64);
        let c2 = mem
            .load(at, 1)
            .ok_or_else(|| HelperError(format!("strncmp: cannot read the string at {at:#x}")))?
            as u8;
        if c1 != c2 {
            return Ok(if c1 < c2 { -1i64 as u64 } else { 1 });
        }
        if c1 == 0 {
            break;
        }
    }
    Ok(0)
}
