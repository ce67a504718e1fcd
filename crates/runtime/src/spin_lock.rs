//! `bpf_spin_lock` (93) and `bpf_spin_unlock` (94): a lock inside a map value (`struct
//! bpf_spin_lock`, 4 bytes) that serialises the programs updating the value on several
//! threads, as the kernel's does on several CPUs.
//!
//! The lock is kept on the host side, in a table keyed by the lock's address, not in the
//! guest's 4 bytes: a program can write those bytes (bpfx does not track the value's BTF
//! fields as the kernel does), and a lock word left set would make every later run wait
//! forever. The rules that keep every run finite, where the kernel's verifier proves them
//! instead:
//!
//! - a run holds at most one lock: a second `bpf_spin_lock` fails the run (the kernel refuses
//!   nested locks);
//! - the lock a run still holds when it ends (by `exit`, or a trap) is released then (the
//!   kernel refuses a program that can exit holding one);
//! - a lock another run on the same thread holds (an embedder's helper running a program from
//!   within a run) fails the run instead of waiting for itself;
//! - a waiting run holds no lock, and the run it waits for ends, so waits end.
//!
//! The table's mutex orders the runs: what one run wrote under the lock is seen by the next
//! run that takes it, on both engines.

use crate::helpers::{Cx, run_state};
use bpfx_exec::{GuestMemory, HelperError};
use std::collections::HashMap;
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;

/// `bpf_spin_lock`.
pub const SPIN_LOCK: u32 = 93;
/// `bpf_spin_unlock`.
pub const SPIN_UNLOCK: u32 = 94;

/// The locks held, by address, with the thread whose run holds each.
struct Table {
    held: Mutex<HashMap<u64, ThreadId>>,
    freed: Condvar,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| Table {
    held: Mutex::new(HashMap::new()),
    freed: Condvar::new(),
});

fn held() -> MutexGuard<'static, HashMap<u64, ThreadId>> {
    // The table is consistent at every unlock (each change is one insert or remove), so a
    // panic elsewhere while it was locked leaves nothing half done.
    TABLE.held.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A lock a run holds: released when dropped (by `bpf_spin_unlock`, at the run's end, or
/// with the run state if a panic unwinds through the run).
#[derive(Debug)]
pub(crate) struct HeldLock(u64);

impl Drop for HeldLock {
    fn drop(&mut self) {
        held().remove(&self.0);
        TABLE.freed.notify_all();
    }
}

fn err(msg: String) -> HelperError {
    HelperError(msg)
}

/// Takes the lock at `addr` for the calling thread's run, waiting while another thread's run
/// holds it.
fn acquire(addr: u64) -> Result<HeldLock, HelperError> {
    let me = std::thread::current().id();
    let mut h = held();
    loop {
        match h.get(&addr) {
            None => {
                h.insert(addr, me);
                return Ok(HeldLock(addr));
            }
            Some(t) if *t == me => {
                return Err(err(format!(
                    "bpf_spin_lock: the lock at {addr:#x} is held by another run on this thread, \
                     which would wait for itself"
                )));
            }
            Some(_) => h = TABLE.freed.wait(h).unwrap_or_else(PoisonError::into_inner),
        }
    }
}

/// `bpf_spin_lock(lock)`: 0 once the run holds the lock.
pub(crate) fn spin_lock(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    // Strict mode proved a map value's 4 aligned bytes; Checked mode leaves it to here.
    if !mem.shared.iter().any(|b| b.offset_of(a[0], 4).is_some()) {
        return Err(err(format!(
            "bpf_spin_lock: {:#x} is not 4 readable bytes of a map value",
            a[0]
        )));
    }
    let st = run_state(mem)?;
    if let Some(h) = &st.held_lock {
        return Err(err(format!(
            "bpf_spin_lock: the run already holds the lock at {:#x} (one lock at a time, as \
             the kernel's verifier requires)",
            h.0
        )));
    }
    st.held_lock = Some(acquire(a[0])?);
    Ok(0)
}

/// `bpf_spin_unlock(lock)`: 0 once the run's lock is released.
pub(crate) fn spin_unlock(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let st = run_state(mem)?;
    match st.held_lock.take() {
        Some(h) if h.0 == a[0] => Ok(0),
        Some(h) => {
            let held = h.0;
            st.held_lock = Some(h);
            Err(err(format!(
                "bpf_spin_unlock: the run holds the lock at {held:#x}, not {:#x}",
                a[0]
            )))
        }
        None => Err(err(format!(
            "bpf_spin_unlock: the run holds no lock ({:#x} was not locked by it)",
            a[0]
        ))),
    }
}
