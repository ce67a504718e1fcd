//! The time and task helpers, and the probe-read helpers, from values the embedder supplies
//! (documented in `/usr/include/linux/bpf.h`):
//!
//! - `jiffies64` (118), `ktime_get_boot_ns` (125), `ktime_get_coarse_ns` (160): from
//!   [`crate::Vm::jiffies`], [`crate::Vm::boot_clock`], [`crate::Vm::coarse_clock`], or by default
//!   derived from the `ktime_get_ns` clock ([`crate::Vm::clock`]): jiffies at [`HZ`] ticks a
//!   second, the boot clock equal to it (a user-space process does not see the host suspend),
//!   and the coarse clock the same time rounded down to the last tick.
//! - `ktime_get_tai_ns` (208): from [`crate::Vm::tai_clock`], or by default the host's wall
//!   clock in nanoseconds since 1970 (`CLOCK_TAI` is `CLOCK_REALTIME` plus the TAI offset,
//!   which is 0 on a host where no time daemon sets it).
//! - `get_current_pid_tgid` (14), `get_current_uid_gid` (15), `get_current_comm` (16),
//!   `get_current_cgroup_id` (80): from the [`Task`] [`crate::Vm::current_task`] gives (by
//!   default pid, tgid, uid and gid 0, named `swapper/0`: the kernel's idle task, what runs
//!   when no process does, in the root cgroup, whose cgroup v2 id is 1).
//! - `probe_read_user` (112), `probe_read_kernel` (113), `probe_read_user_str` (114),
//!   `probe_read_kernel_str` (115): read only memory the embedder lends at chosen addresses
//!   ([`crate::Vm::lend_user`], [`crate::Vm::lend_kernel`]); any other address is `-EFAULT`
//!   with the destination zeroed, as the kernel answers a faulting read, and a kernel read of an
//!   address that is no x86-64 kernel address (user space, the vsyscall page, non-canonical)
//!   `-ERANGE`, as the kernel answers it before reading. The host's own memory is never read.
//!
//! Their ids, names and signatures are entries of the one helper table
//! ([`crate::helpers::TABLE`]).

use crate::helpers::Cx;
use bpfx_exec::{GuestMemory, HelperError};
use std::sync::Arc;

/// `bpf_get_current_pid_tgid`.
pub const GET_CURRENT_PID_TGID: u32 = 14;
/// `bpf_get_current_uid_gid`.
pub const GET_CURRENT_UID_GID: u32 = 15;
/// `bpf_get_current_comm`.
pub const GET_CURRENT_COMM: u32 = 16;
/// `bpf_get_current_task`.
pub const GET_CURRENT_TASK: u32 = 35;
/// `bpf_get_current_cgroup_id`.
pub const GET_CURRENT_CGROUP_ID: u32 = 80;
/// The cgroup v2 id of the root cgroup, where the kernel's idle task runs.
pub const ROOT_CGROUP_ID: u64 = 1;
/// `bpf_probe_read_user`.
pub const PROBE_READ_USER: u32 = 112;
/// `bpf_probe_read_kernel`.
pub const PROBE_READ_KERNEL: u32 = 113;
/// `bpf_probe_read_user_str`.
pub const PROBE_READ_USER_STR: u32 = 114;
/// `bpf_probe_read_kernel_str`.
pub const PROBE_READ_KERNEL_STR: u32 = 115;
/// `bpf_jiffies64`.
pub const JIFFIES64: u32 = 118;
/// `bpf_ktime_get_boot_ns`.
pub const KTIME_GET_BOOT_NS: u32 = 125;
/// `bpf_ktime_get_coarse_ns`.
pub const KTIME_GET_COARSE_NS: u32 = 160;
/// `bpf_ktime_get_tai_ns`.
pub const KTIME_GET_TAI_NS: u32 = 208;

/// The tick rate of the default `jiffies64` (the common `CONFIG_HZ=250`).
pub const HZ: u64 = 250;
/// Nanoseconds per tick at [`HZ`].
const NSEC_PER_JIFFY: u64 = 1_000_000_000 / HZ;
/// The kernel's `TASK_COMM_LEN`: a task's name with its terminating NUL.
pub const TASK_COMM_LEN: usize = 16;

const EINVAL: u64 = (-22i64) as u64;
const EFAULT: u64 = (-14i64) as u64;
const ERANGE: u64 = (-34i64) as u64;

/// x86-64's `TASK_SIZE_MAX` with 4-level page tables: user space ends a page below 2^47.
pub(crate) const TASK_SIZE_MAX: u64 = (1 << 47) - 4096;
/// The x86-64 vsyscall page, which kernel probe reads refuse.
const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;

/// Whether a kernel probe read may try `addr`, as x86-64 decides it: not user space (nor the
/// page after it), not the vsyscall page, a canonical 48-bit address. Otherwise the kernel
/// answers `-ERANGE` without reading.
fn kernel_address(addr: u64) -> bool {
    addr >= TASK_SIZE_MAX + 4096
        && addr & !0xfff != VSYSCALL_PAGE
        && matches!((addr as i64) >> 47, 0 | -1)
}

/// Whether `size` bytes at `addr` lie in user space (the kernel's `access_ok`).
fn user_range(addr: u64, size: u64) -> bool {
    addr <= TASK_SIZE_MAX && size <= TASK_SIZE_MAX - addr
}

/// The task `get_current_pid_tgid`, `get_current_uid_gid` and `get_current_comm` describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Task {
    /// The thread id (the kernel's `pid`).
    pub pid: u32,
    /// The process id (the kernel's `tgid`).
    pub tgid: u32,
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
    /// The name (`comm`): at most 15 bytes and a NUL.
    pub comm: [u8; TASK_COMM_LEN],
    /// The address of its `struct task_struct`, what `get_current_task` returns (0: none;
    /// programs read its fields with `probe_read_kernel` from what `Vm::lend_kernel` lends
    /// there).
    pub addr: u64,
    /// The id of its cgroup (v2), what `get_current_cgroup_id` returns: container tools key
    /// their per-container state by it ([`ROOT_CGROUP_ID`] by default).
    pub cgroup_id: u64,
}

impl Default for Task {
    /// The kernel's idle task on CPU 0: ids 0, named `swapper/0`.
    fn default() -> Task {
        Task::new(0, 0).with_comm("swapper/0")
    }
}

impl Task {
    /// A task with these ids, uid and gid 0, and an empty name.
    pub fn new(pid: u32, tgid: u32) -> Task {
        Task {
            pid,
            tgid,
            uid: 0,
            gid: 0,
            comm: [0; TASK_COMM_LEN],
            addr: 0,
            cgroup_id: ROOT_CGROUP_ID,
        }
    }

    /// In the cgroup of this id ([`Task::cgroup_id`]).
    pub fn with_cgroup_id(self, cgroup_id: u64) -> Task {
        Task { cgroup_id, ..self }
    }

    /// With the address of its `struct task_struct` ([`Task::addr`]).
    pub fn with_addr(self, addr: u64) -> Task {
        Task { addr, ..self }
    }

    /// With user and group ids.
    pub fn with_ids(self, uid: u32, gid: u32) -> Task {
        Task { uid, gid, ..self }
    }

    /// With a name: its first 15 bytes (up to a NUL), as the kernel keeps a task's name.
    pub fn with_comm(self, name: &str) -> Task {
        let mut comm = [0u8; TASK_COMM_LEN];
        let bytes = name.as_bytes();
        let n = bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(bytes.len())
            .min(TASK_COMM_LEN - 1);
        comm[..n].copy_from_slice(&bytes[..n]);
        Task { comm, ..self }
    }

    /// The name, up to its NUL.
    pub fn comm_bytes(&self) -> &[u8] {
        let n = self
            .comm
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(TASK_COMM_LEN);
        &self.comm[..n]
    }
}

/// Memory lent to the probe-read helpers: byte ranges at chosen guest addresses, in the order
/// lent (a later range covering the same address wins).
#[derive(Clone, Debug, Default)]
pub(crate) struct Lent {
    ranges: Vec<(u64, Arc<[u8]>)>,
}

impl Lent {
    pub(crate) fn push(&mut self, addr: u64, bytes: Arc<[u8]>) {
        self.ranges.push((addr, bytes));
    }

    /// The bytes from `addr` to the end of the last-lent range holding `addr`.
    fn from(&self, addr: u64) -> Option<&[u8]> {
        self.ranges.iter().rev().find_map(|(start, bytes)| {
            let off = usize::try_from(addr.checked_sub(*start)?).ok()?;
            // A range running past the end of the address space ends there.
            let room = usize::try_from(u64::MAX - start).unwrap_or(usize::MAX);
            let len = bytes.len().min(room);
            (off < len).then(|| &bytes[off..len])
        })
    }

    /// `len` bytes at `addr`, if one lent range holds them all.
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        self.ranges.iter().rev().find_map(|(start, bytes)| {
            let off = usize::try_from(addr.checked_sub(*start)?).ok()?;
            let end = off.checked_add(len)?;
            let last = u64::try_from(end).ok()?.checked_add(*start);
            (end <= bytes.len() && last.is_some()).then(|| &bytes[off..end])
        })
    }
}

fn err(msg: impl Into<String>) -> HelperError {
    HelperError(msg.into())
}

pub(crate) fn jiffies64(cx: &Cx, _: &mut GuestMemory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(match &cx.hooks.jiffies {
        Some(f) => f(),
        None => (cx.hooks.clock)() / NSEC_PER_JIFFY,
    })
}

pub(crate) fn ktime_get_boot_ns(
    cx: &Cx,
    _: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    Ok(match &cx.hooks.boot_clock {
        Some(f) => f(),
        None => (cx.hooks.clock)(),
    })
}

pub(crate) fn ktime_get_tai_ns(
    cx: &Cx,
    _: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    Ok(match &cx.hooks.tai_clock {
        Some(f) => f(),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    })
}

pub(crate) fn ktime_get_coarse_ns(
    cx: &Cx,
    _: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    Ok(match &cx.hooks.coarse_clock {
        Some(f) => f(),
        None => {
            let now = (cx.hooks.clock)();
            now - now % NSEC_PER_JIFFY
        }
    })
}

pub(crate) fn get_current_pid_tgid(
    cx: &Cx,
    _: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    let t = (cx.hooks.task)();
    Ok(u64::from(t.tgid) << 32 | u64::from(t.pid))
}

/// `get_current_task()`: the task's [`Task::addr`].
pub(crate) fn get_current_task(
    cx: &Cx,
    _: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    Ok((cx.hooks.task)().addr)
}

pub(crate) fn get_current_uid_gid(
    cx: &Cx,
    _: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    let t = (cx.hooks.task)();
    Ok(u64::from(t.gid) << 32 | u64::from(t.uid))
}

/// `get_current_cgroup_id()`: the id of the task's cgroup.
pub(crate) fn get_current_cgroup_id(
    cx: &Cx,
    _: &mut GuestMemory<'_>,
    _: [u64; 5],
) -> Result<u64, HelperError> {
    Ok((cx.hooks.task)().cgroup_id)
}

/// `get_current_comm(buf, size)`: the name, cut to `size - 1` bytes, NUL-terminated and padded
/// with zeros to `size`; 0. A size of 0 (which the kernel's verifier refuses) is `-EINVAL`.
pub(crate) fn get_current_comm(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let size = (a[1] & 0xffff_ffff) as usize;
    if size == 0 {
        return Ok(EINVAL);
    }
    let t = (cx.hooks.task)();
    let name = t.comm_bytes();
    let mut out = vec![0u8; size];
    let n = name.len().min(size - 1);
    out[..n].copy_from_slice(&name[..n]);
    mem.write(a[0], &out)
        .ok_or_else(|| err("get_current_comm: cannot write the buffer"))?;
    Ok(0)
}

/// Which lent memory a probe read reads.
fn lent(cx: &Cx, kernel: bool) -> &Lent {
    if kernel {
        &cx.hooks.lent_kernel
    } else {
        &cx.hooks.lent_user
    }
}

fn write_dst(
    mem: &mut GuestMemory<'_>,
    dst: u64,
    bytes: &[u8],
    name: &str,
) -> Result<(), HelperError> {
    if bytes.is_empty() {
        return Ok(());
    }
    mem.write(dst, bytes)
        .ok_or_else(|| err(format!("{name}: cannot write the destination")))
}

/// `probe_read_kernel` (`kernel`) or `probe_read_user`: `size` bytes at `unsafe_ptr` into
/// `dst`, if lent memory holds them all (0). A kernel read of an address that is no kernel
/// address ([`kernel_address`]) is `-ERANGE`, a user read of a range outside user space
/// ([`user_range`]) or anything not lent `-EFAULT`; `dst` zeroed on each failure. Size 0
/// reads nothing but is checked the same way (0 when the address passes).
pub(crate) fn probe_read(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
    kernel: bool,
) -> Result<u64, HelperError> {
    let name = if kernel {
        "probe_read_kernel"
    } else {
        "probe_read_user"
    };
    let (size, addr) = ((a[1] & 0xffff_ffff) as usize, a[2]);
    let refused = if kernel {
        (!kernel_address(addr)).then_some(ERANGE)
    } else {
        (!user_range(addr, size as u64)).then_some(EFAULT)
    };
    let bytes = match refused {
        Some(_) => None,
        None if size == 0 => return Ok(0),
        None => lent(cx, kernel).read(addr, size).map(<[u8]>::to_vec),
    };
    match bytes {
        Some(bytes) => {
            write_dst(mem, a[0], &bytes, name)?;
            Ok(0)
        }
        None => {
            write_dst(mem, a[0], &vec![0; size], name)?;
            Ok(refused.unwrap_or(EFAULT))
        }
    }
}

/// `probe_read_kernel_str` (`kernel`) or `probe_read_user_str`: the NUL-terminated string at
/// `unsafe_ptr`, at most `size - 1` bytes and a NUL, into `dst`; returns the bytes written,
/// NUL included (the bytes of `dst` after it are left as they were). Size 0: nothing, 0. A
/// kernel read of no kernel address: `-ERANGE`; a user read outside user space, or a string
/// that runs out of lent memory before its NUL and before `size - 1` bytes: `-EFAULT`; `dst`
/// zeroed on each failure.
pub(crate) fn probe_read_str(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
    kernel: bool,
) -> Result<u64, HelperError> {
    let name = if kernel {
        "probe_read_kernel_str"
    } else {
        "probe_read_user_str"
    };
    let (size, addr) = ((a[1] & 0xffff_ffff) as usize, a[2]);
    if size == 0 {
        return Ok(0);
    }
    let refused = if kernel {
        (!kernel_address(addr)).then_some(ERANGE)
    } else {
        (!user_range(addr, 1)).then_some(EFAULT)
    };
    let avail = match refused {
        Some(_) => &[][..],
        None => lent(cx, kernel).from(addr).unwrap_or(&[]),
    };
    let window = &avail[..avail.len().min(size)];
    let out = match window.iter().position(|&b| b == 0) {
        Some(nul) => window[..=nul].to_vec(),
        None if window.len() == size => {
            let mut s = window[..size - 1].to_vec();
            s.push(0);
            s
        }
        None => {
            write_dst(mem, a[0], &vec![0; size], name)?;
            return Ok(refused.unwrap_or(EFAULT));
        }
    };
    write_dst(mem, a[0], &out, name)?;
    Ok(out.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_to_fifteen_bytes() {
        let t = Task::new(1, 2).with_comm("a-very-long-process-name");
        assert_eq!(t.comm_bytes(), b"a-very-long-pro");
        assert_eq!(t.comm[15], 0);
        assert_eq!(Task::default().comm_bytes(), b"swapper/0");
        assert_eq!(Task::new(0, 0).with_comm("ab\0cd").comm_bytes(), b"ab");
    }

    #[test]
    fn address_spaces_as_x86_64_splits_them() {
        assert!(!kernel_address(0));
        assert!(!kernel_address(TASK_SIZE_MAX));
        assert!(!kernel_address(1 << 47), "non-canonical");
        assert!(!kernel_address(0xffff_7fff_ffff_ffff), "non-canonical");
        assert!(kernel_address(0xffff_8000_0000_0000));
        assert!(!kernel_address(VSYSCALL_PAGE + 8));
        assert!(kernel_address(u64::MAX));
        assert!(user_range(0, 0) && user_range(TASK_SIZE_MAX - 8, 8));
        assert!(!user_range(TASK_SIZE_MAX - 8, 9));
        assert!(!user_range(0xffff_8000_0000_0000, 0));
    }

    #[test]
    fn lent_ranges_hold_whole_reads_only() {
        let mut l = Lent::default();
        l.push(0x1000, Arc::from(&b"abcdef"[..]));
        l.push(0x1002, Arc::from(&b"XY"[..]));
        assert_eq!(l.read(0x1000, 6), Some(&b"abcdef"[..]));
        assert_eq!(l.read(0x1002, 2), Some(&b"XY"[..]), "the later range wins");
        assert_eq!(l.read(0x1002, 3), Some(&b"cde"[..]));
        assert_eq!(l.read(0x1004, 3), None, "past the end");
        assert_eq!(l.read(0xfff, 2), None, "before the start");
        assert_eq!(l.from(0x1005), Some(&b"f"[..]));
        assert_eq!(l.from(0x1006), None);
        l.push(u64::MAX - 1, Arc::from(&b"abcd"[..]));
        assert_eq!(l.read(u64::MAX - 1, 1), Some(&b"a"[..]));
        assert_eq!(
            l.read(u64::MAX - 1, 2),
            None,
            "no wrap past the address space"
        );
        assert_eq!(l.from(u64::MAX - 1), Some(&b"a"[..]));
    }
}
