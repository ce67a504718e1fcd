//! cgroup device programs (`BPF_PROG_TYPE_CGROUP_DEVICE`, section `cgroup/dev`): attached to
//! a cgroup, the program runs when a task of the cgroup opens a device node or creates one
//! (`mknod`) and decides whether it may: 1 allows, 0 refuses (the system call fails with
//! `-EPERM`). Container runtimes build their device allowlists this way (cgroup v2 has no
//! `devices.allow` file).
//!
//! The context is the kernel's `struct bpf_cgroup_dev_ctx` with the rules of Linux 6.18
//! (checked by loading one-field programs with `bpftool`: [`cgroup_dev_layout`]); bpfx's
//! struct is the UAPI's own layout ([`CGROUP_DEV_CTX_SIZE`] bytes).
//!
//! ```text
//! bpf_cgroup_dev_ctx (the program's view = bpfx's struct, read-only)
//!   0  u32 access_type   (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*   (whole or narrow loads)
//!   4  u32 major                                                     (whole loads only)
//!   8  u32 minor                                                     (whole loads only)
//! ```
//!
//! The kernel has no test run for the type; [`Program::run_cgroup_dev`] is bpfx's.

use crate::context::Context;
use crate::error::RunError;
use crate::program::Program;
use bpfx_verifier::{ContextField, ContextLayout, FieldKind};
use std::fmt;

/// Size of `struct bpf_cgroup_dev_ctx`, also bpfx's struct.
pub const CGROUP_DEV_CTX_SIZE: usize = 12;

/// `BPF_DEVCG_ACC_MKNOD`: the access creates the device node.
pub const BPF_DEVCG_ACC_MKNOD: u16 = 1;
/// `BPF_DEVCG_ACC_READ`: the device is opened for reading.
pub const BPF_DEVCG_ACC_READ: u16 = 2;
/// `BPF_DEVCG_ACC_WRITE`: the device is opened for writing.
pub const BPF_DEVCG_ACC_WRITE: u16 = 4;
/// `BPF_DEVCG_DEV_BLOCK`: a block device.
pub const BPF_DEVCG_DEV_BLOCK: u16 = 1;
/// `BPF_DEVCG_DEV_CHAR`: a character device.
pub const BPF_DEVCG_DEV_CHAR: u16 = 2;

/// The `bpf_cgroup_dev_ctx` of a cgroup device program, as Linux 6.18 allows it (checked by
/// loading one-field programs with `bpftool`): `access_type` read whole or narrow (a 2-byte
/// load of either half, as compilers emit for `access_type & 0xffff` and `access_type >>
/// 16`), `major` and `minor` read whole (4 bytes) only; nothing is writable, nothing past
/// `minor` readable. The program returns 0 (refuse) or 1 (allow).
pub fn cgroup_dev_layout() -> ContextLayout {
    ContextLayout::new(vec![
        ContextField::new(0, 4, FieldKind::Scalar, 0).with_narrow(true),
        ContextField::new(4, 4, FieldKind::Scalar, 4),
        ContextField::new(8, 4, FieldKind::Scalar, 8),
    ])
    .with_return_range(0, 1)
}

/// One device access a cgroup device program decides on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DevAccess {
    /// The kind of device: [`BPF_DEVCG_DEV_BLOCK`] or [`BPF_DEVCG_DEV_CHAR`].
    pub dev_type: u16,
    /// The access: a mask of [`BPF_DEVCG_ACC_MKNOD`], [`BPF_DEVCG_ACC_READ`] and
    /// [`BPF_DEVCG_ACC_WRITE`] (an `open` for reading and writing sets both).
    pub access: u16,
    /// The device's major number.
    pub major: u32,
    /// The device's minor number.
    pub minor: u32,
}

impl DevAccess {
    /// `access` to the character device `major:minor`.
    pub fn char(major: u32, minor: u32, access: u16) -> DevAccess {
        DevAccess {
            dev_type: BPF_DEVCG_DEV_CHAR,
            access,
            major,
            minor,
        }
    }

    /// `access` to the block device `major:minor`.
    pub fn block(major: u32, minor: u32, access: u16) -> DevAccess {
        DevAccess {
            dev_type: BPF_DEVCG_DEV_BLOCK,
            ..DevAccess::char(major, minor, access)
        }
    }

    /// `access_type` as the kernel encodes it: the access in the high half, the device kind
    /// in the low one.
    pub fn access_type(&self) -> u32 {
        (u32::from(self.access) << 16) | u32::from(self.dev_type)
    }

    /// The struct's bytes ([`CGROUP_DEV_CTX_SIZE`], little-endian).
    pub fn to_bytes(&self) -> [u8; CGROUP_DEV_CTX_SIZE] {
        let mut b = [0u8; CGROUP_DEV_CTX_SIZE];
        for (chunk, v) in b
            .chunks_exact_mut(4)
            .zip([self.access_type(), self.major, self.minor])
        {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// The access a struct's bytes describe (exactly [`CGROUP_DEV_CTX_SIZE`]; `None`
    /// otherwise). Any values are taken: the kernel passes what the access was.
    pub fn from_bytes(b: &[u8]) -> Option<DevAccess> {
        let b: &[u8; CGROUP_DEV_CTX_SIZE] = b.try_into().ok()?;
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let access_type = word(0);
        Some(DevAccess {
            dev_type: access_type as u16,
            access: (access_type >> 16) as u16,
            major: word(4),
            minor: word(8),
        })
    }
}

impl fmt::Display for DevAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.dev_type {
            BPF_DEVCG_DEV_BLOCK => "b",
            BPF_DEVCG_DEV_CHAR => "c",
            _ => "?",
        };
        let mut acc = String::new();
        for (bit, c) in [
            (BPF_DEVCG_ACC_READ, 'r'),
            (BPF_DEVCG_ACC_WRITE, 'w'),
            (BPF_DEVCG_ACC_MKNOD, 'm'),
        ] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        write!(f, "{kind} {}:{} {acc}", self.major, self.minor)
    }
}

/// Whether a cgroup device program's return value allows the access: its bit 0, as the kernel
/// reads every cgroup program's verdict (a value outside 0..=1 only passes Checked mode).
pub fn dev_allowed(r0: u64) -> bool {
    r0 & 1 == 1
}

impl Program {
    /// Runs a cgroup device program ([`Context::CgroupDevice`]) on one device access; returns
    /// r0: 1 allows the access, 0 refuses it. Strict mode proves nothing else is returned;
    /// Checked mode does not, and the kernel reads any cgroup program's verdict by its bit 0
    /// ([`dev_allowed`]).
    pub fn run_cgroup_dev(&mut self, access: &DevAccess) -> Result<u64, RunError> {
        self.expect(Context::CgroupDevice)?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&access.to_bytes());
        let res = self.exec_with(&mut buf, |_| (), |_| ()).0;
        self.buf = buf;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_is_the_uapi_layout() {
        let a = DevAccess::char(1, 3, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE);
        let b = a.to_bytes();
        assert_eq!(b, [2, 0, 6, 0, 1, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(DevAccess::from_bytes(&b), Some(a));
        assert_eq!(DevAccess::from_bytes(&b[..11]), None);
        assert_eq!(a.to_string(), "c 1:3 rw");
        assert_eq!(
            DevAccess::block(8, 0, BPF_DEVCG_ACC_MKNOD).to_string(),
            "b 8:0 m"
        );
    }

    #[test]
    fn only_access_type_takes_narrow_loads_and_nothing_is_writable() {
        let l = cgroup_dev_layout();
        let narrow: Vec<bool> = l.fields.iter().map(|f| f.narrow).collect();
        assert_eq!(narrow, [true, false, false]);
        assert!(l.fields.iter().all(|f| !f.writable && f.size == 4));
        assert_eq!(l.return_range, Some((0, 1)));
    }
}
