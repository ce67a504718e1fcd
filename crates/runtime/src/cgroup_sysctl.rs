//! cgroup sysctl programs (`BPF_PROG_TYPE_CGROUP_SYSCTL`, section `cgroup/sysctl`): attached
//! to a cgroup, the program runs when one of its tasks reads or writes a file of
//! `/proc/sys`, and allows the access (1) or refuses it (0: `-EPERM`); on a write it may
//! replace the value written. The helpers 101 to 106 read the sysctl's name, its current
//! and new value, set the new value, and parse numbers (`strtol`, `strtoul`, which Linux 6.18
//! offers every program type).
//!
//! ```text
//! bpf_sysctl (the program's view = bpfx's struct)
//!   0  u32 write      (1: a write, 0: a read)   1, 2 or 4-byte loads, read-only
//!   4  u32 file_pos   (the file position)        1, 2 or 4-byte loads, 4-byte stores
//! ```
//!
//! The helpers follow `linux/bpf.h`: a buffer too small for a string gets it cut and
//! NUL-terminated, and `-E2BIG`; the values are the text the file holds (a trailing newline
//! included, as the kernel's handler prints it).

use crate::context::Context;
use crate::error::RunError;
use crate::helpers::Cx;
use crate::program::Program;
use bpfx_exec::{GuestMemory, HelperError};
use bpfx_verifier::{ContextField, ContextLayout, FieldKind};

/// Size of `struct bpf_sysctl`, also bpfx's struct.
pub const SYSCTL_CTX_SIZE: usize = 8;
/// `BPF_F_SYSCTL_BASE_NAME`: `sysctl_get_name` gives the base name alone.
pub const BPF_F_SYSCTL_BASE_NAME: u64 = 1;

/// `bpf_sysctl_get_name`.
pub(crate) const SYSCTL_GET_NAME: u32 = 101;
/// `bpf_sysctl_get_current_value`.
pub(crate) const SYSCTL_GET_CURRENT_VALUE: u32 = 102;
/// `bpf_sysctl_get_new_value`.
pub(crate) const SYSCTL_GET_NEW_VALUE: u32 = 103;
/// `bpf_sysctl_set_new_value`.
pub(crate) const SYSCTL_SET_NEW_VALUE: u32 = 104;
/// `bpf_strtol`.
pub(crate) const STRTOL: u32 = 105;
/// `bpf_strtoul`.
pub(crate) const STRTOUL: u32 = 106;

/// The most bytes `sysctl_set_new_value` takes (`PAGE_SIZE - 1`).
const MAX_NEW_VALUE: usize = 4095;
/// `BPF_STRTOX_BASE_MASK`.
const BASE_MASK: u64 = 0x1f;

const EINVAL: i64 = 22;
const E2BIG: i64 = 7;
const ERANGE: i64 = 34;

/// The `bpf_sysctl` of a cgroup sysctl program, as Linux 6.18 allows it (checked by loading
/// one-field programs with `bpftool`): `write` read whole or narrow, never written;
/// `file_pos` read whole or narrow and written whole (4 bytes). The program returns 0 or 1.
pub fn sysctl_layout() -> ContextLayout {
    ContextLayout::new(vec![
        ContextField::new(0, 4, FieldKind::Scalar, 0).with_narrow(true),
        ContextField::new(4, 4, FieldKind::Scalar, 4)
            .with_narrow(true)
            .with_writable(true),
    ])
    .with_return_range(0, 1)
}

/// One access to a sysctl a program decides on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Sysctl {
    /// The sysctl's name under `/proc/sys`, its directories separated by `/`
    /// (`net/ipv4/tcp_mem`).
    pub name: String,
    /// The text the file holds now (`None`: the kernel could not read it, and
    /// `sysctl_get_current_value` fails with `-EINVAL`).
    pub current: Option<Vec<u8>>,
    /// For a write, the text written (`None`: a read).
    pub new_value: Option<Vec<u8>>,
    /// The file position (`file_pos`).
    pub file_pos: u32,
}

impl Sysctl {
    /// The access a bare `struct bpf_sysctl` describes ([`SYSCTL_CTX_SIZE`] bytes, `None`
    /// otherwise): a write (of an empty value) when `write` is not 0, else a read, at
    /// `file_pos`, of a sysctl with no name and no current value (the command line's and the
    /// C API's form, which name no sysctl).
    pub fn from_ctx(b: &[u8]) -> Option<Sysctl> {
        let b: &[u8; SYSCTL_CTX_SIZE] = b.try_into().ok()?;
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        Some(Sysctl {
            new_value: (word(0) != 0).then(Vec::new),
            file_pos: word(4),
            ..Sysctl::default()
        })
    }
}

/// What the run of a cgroup sysctl program decided.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SysctlOutcome {
    /// The return value (1 allows the access, 0 refuses it with `-EPERM`; the kernel reads
    /// bit 0).
    pub code: u32,
    /// `file_pos` as the program left it.
    pub file_pos: u32,
    /// The value `sysctl_set_new_value` gave the write, if it was called.
    pub new_value: Option<Vec<u8>>,
}

/// The sysctl a running program serves (its helpers' state).
#[derive(Clone, Debug, Default)]
pub(crate) struct SysctlRun {
    pub(crate) sysctl: Sysctl,
    pub(crate) replaced: Option<Vec<u8>>,
}

/// Copies `src` into a buffer of `len` bytes as the kernel's sysctl helpers do: the whole
/// text and NUL padding when it fits (its length), else cut with a NUL last (`-E2BIG`).
fn copy_value(src: &[u8], len: usize) -> (Vec<u8>, i64) {
    let mut out = vec![0u8; len];
    let n = src.len().min(len);
    out[..n].copy_from_slice(&src[..n]);
    if len > src.len() {
        (out, src.len() as i64)
    } else {
        if let Some(last) = out.last_mut() {
            *last = 0;
        }
        (out, -E2BIG)
    }
}

fn state<'m>(mem: &'m mut GuestMemory<'_>) -> Result<&'m mut SysctlRun, HelperError> {
    Ok(&mut crate::helpers::run_state(mem)?.sysctl)
}

fn write_buf(mem: &mut GuestMemory<'_>, name: &str, at: u64, b: &[u8]) -> Result<(), HelperError> {
    mem.write(at, b)
        .ok_or_else(|| HelperError(format!("{name}: cannot write the buffer at {at:#x}")))
}

/// `sysctl_get_name(ctx, buf, buf_len, flags)`: the full name, or with
/// `BPF_F_SYSCTL_BASE_NAME` the last component, NUL-terminated; its length, or `-E2BIG` cut.
pub(crate) fn sysctl_get_name(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let len = a[2] as usize;
    let full = state(mem)?.sysctl.name.clone();
    let name = if a[3] & BPF_F_SYSCTL_BASE_NAME != 0 {
        full.rsplit('/').next().unwrap_or("")
    } else {
        &full
    };
    let (out, ret) = if name.len() < len {
        let mut out = vec![0u8; len];
        out[..name.len()].copy_from_slice(name.as_bytes());
        (out, name.len() as i64)
    } else {
        copy_value(name.as_bytes(), len)
    };
    // `strscpy` writes the string and its NUL only: the rest of the buffer is left as it was.
    let n = if ret >= 0 { ret as usize + 1 } else { len };
    write_buf(mem, "sysctl_get_name", a[1], &out[..n.min(out.len())])?;
    Ok(ret as u64)
}

/// `sysctl_get_current_value(ctx, buf, buf_len)`: the file's text, NUL-padded; its length,
/// `-E2BIG` cut, `-EINVAL` (the buffer zeroed) when the value could not be read.
pub(crate) fn sysctl_get_current_value(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let len = a[2] as usize;
    let cur = state(mem)?.sysctl.current.clone();
    let (out, ret) = match cur.filter(|c| !c.is_empty()) {
        Some(c) => copy_value(&c, len),
        None => (vec![0u8; len], -EINVAL),
    };
    write_buf(mem, "sysctl_get_current_value", a[1], &out)?;
    Ok(ret as u64)
}

/// `sysctl_get_new_value(ctx, buf, buf_len)`: on a write, the text written as
/// `sysctl_get_current_value` copies it; on a read `-EINVAL`, the buffer zeroed.
pub(crate) fn sysctl_get_new_value(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let len = a[2] as usize;
    let st = state(mem)?;
    let new = st.replaced.clone().or_else(|| st.sysctl.new_value.clone());
    let (out, ret) = match new.filter(|n| !n.is_empty()) {
        Some(n) => copy_value(&n, len),
        None => (vec![0u8; len], -EINVAL),
    };
    write_buf(mem, "sysctl_get_new_value", a[1], &out)?;
    Ok(ret as u64)
}

/// `sysctl_set_new_value(ctx, buf, buf_len)`: on a write, the value written becomes
/// `buf_len` bytes of `buf`: 0; `-EINVAL` on a read or for an empty buffer, `-E2BIG` past
/// `PAGE_SIZE - 1` bytes.
pub(crate) fn sysctl_set_new_value(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let len = a[2] as usize;
    let writing = state(mem)?.sysctl.new_value.is_some();
    if !writing || len == 0 {
        return Ok((-EINVAL) as u64);
    }
    if len > MAX_NEW_VALUE {
        return Ok((-E2BIG) as u64);
    }
    let b = mem
        .read(a[1], len)
        .ok_or_else(|| HelperError("sysctl_set_new_value: cannot read the buffer".into()))?;
    state(mem)?.replaced = Some(b);
    Ok(0)
}

/// The kernel's `__bpf_strtoull`: leading white space, a `-` (reported), a base prefix, then
/// digits of `flags`' base (0: by prefix, 8, 10 or 16), read from at most 63 bytes; the
/// bytes consumed and the magnitude, or a negative errno.
fn strtoull(b: &[u8], flags: u64) -> Result<(i64, u64, bool), i64> {
    let mut base = (flags & BASE_MASK) as u32;
    if b.is_empty() || !matches!(base, 0 | 8 | 10 | 16) || flags & !BASE_MASK != 0 {
        return Err(-EINVAL);
    }
    let mut i = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    let negative = b.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    if i == b.len() {
        return Err(-EINVAL);
    }
    let rest = &b[i..b.len().min(i + 63)];
    let rest = &rest[..rest.iter().position(|&c| c == 0).unwrap_or(rest.len())];
    let lower = |k: usize| rest.get(k).map(u8::to_ascii_lowercase);
    if base == 0 {
        base = if rest.first() == Some(&b'0') {
            if lower(1) == Some(b'x') && rest.get(2).is_some_and(u8::is_ascii_hexdigit) {
                16
            } else {
                8
            }
        } else {
            10
        };
    }
    let mut p = 0;
    if base == 16 && rest.first() == Some(&b'0') && lower(1) == Some(b'x') {
        p = 2;
    }
    let (mut val, mut overflow, start) = (0u64, false, p);
    while let Some(c) = lower(p) {
        let d = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'a'..=b'f' => u32::from(c - b'a') + 10,
            _ => break,
        };
        if d >= base {
            break;
        }
        match val
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => val = v,
            None => overflow = true,
        }
        p += 1;
    }
    if overflow {
        return Err(-ERANGE);
    }
    if p == start {
        return Err(-EINVAL);
    }
    Ok(((i + p) as i64, val, negative))
}

fn strtox(mem: &mut GuestMemory<'_>, a: [u64; 5], signed: bool) -> Result<u64, HelperError> {
    let name = if signed { "strtol" } else { "strtoul" };
    let b = mem
        .read(a[0], a[1] as usize)
        .ok_or_else(|| HelperError(format!("{name}: cannot read the buffer")))?;
    let res = strtoull(&b, a[2]).and_then(|(n, v, neg)| {
        let out = match (signed, neg) {
            (true, true) if (v.wrapping_neg() as i64) > 0 => return Err(-ERANGE),
            (true, true) => v.wrapping_neg(),
            (true, false) if (v as i64) < 0 => return Err(-ERANGE),
            (false, true) => return Err(-EINVAL),
            _ => v,
        };
        Ok((n, out))
    });
    match res {
        Ok((n, v)) => {
            write_buf(mem, name, a[3], &v.to_le_bytes())?;
            Ok(n as u64)
        }
        Err(e) => Ok(e as u64),
    }
}

/// `strtol(buf, buf_len, flags, res)`: the `long` at the start of `buf` into `*res`, the
/// bytes consumed; `-EINVAL` (no digits, a bad base or flag), `-ERANGE` (overflow).
pub(crate) fn strtol(_: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    strtox(mem, a, true)
}

/// `strtoul(buf, buf_len, flags, res)`: as `strtol`, unsigned; a `-` is `-EINVAL`.
pub(crate) fn strtoul(_: &Cx, mem: &mut GuestMemory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    strtox(mem, a, false)
}

impl Program {
    /// Runs a cgroup sysctl program ([`Context::CgroupSysctl`]) on one access to `sysctl`.
    pub fn run_sysctl(&mut self, sysctl: &Sysctl) -> Result<SysctlOutcome, RunError> {
        self.expect(Context::CgroupSysctl)?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&u32::from(sysctl.new_value.is_some()).to_le_bytes());
        buf.extend_from_slice(&sysctl.file_pos.to_le_bytes());
        let run = SysctlRun {
            sysctl: sysctl.clone(),
            replaced: None,
        };
        let (res, replaced) = self.exec_with(
            &mut buf,
            |st| st.sysctl = run,
            |st| std::mem::take(&mut st.sysctl).replaced,
        );
        let file_pos = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        self.buf = buf;
        Ok(SysctlOutcome {
            code: res? as u32,
            file_pos,
            new_value: replaced,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoull_reads_as_the_kernel() {
        assert_eq!(strtoull(b"  -42abc", 0), Ok((5, 42, true)));
        assert_eq!(strtoull(b"0x1F", 0), Ok((4, 31, false)));
        assert_eq!(strtoull(b"0x1F", 16), Ok((4, 31, false)));
        assert_eq!(strtoull(b"017", 0), Ok((3, 15, false)));
        assert_eq!(strtoull(b"0x", 0), Ok((1, 0, false)));
        assert_eq!(strtoull(b"19", 8), Ok((1, 1, false)));
        assert_eq!(strtoull(b"4096\t87380\n", 10), Ok((4, 4096, false)));
        assert_eq!(strtoull(b"abc", 10), Err(-EINVAL));
        assert_eq!(strtoull(b"  ", 10), Err(-EINVAL));
        assert_eq!(strtoull(b"1", 2), Err(-EINVAL));
        assert_eq!(strtoull(b"1", 0x20), Err(-EINVAL));
        assert_eq!(strtoull(b"18446744073709551616", 10), Err(-ERANGE));
        assert_eq!(
            strtoull(b"18446744073709551615", 10),
            Ok((20, u64::MAX, false))
        );
    }

    #[test]
    fn values_are_cut_with_a_nul_and_e2big() {
        assert_eq!(copy_value(b"1\n", 4), (vec![b'1', b'\n', 0, 0], 2));
        assert_eq!(copy_value(b"1\n", 2), (vec![b'1', 0], -E2BIG));
        assert_eq!(copy_value(b"1\n", 0), (vec![], -E2BIG));
    }
}
