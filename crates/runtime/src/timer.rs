//! `bpf_timer_init` (169), `bpf_timer_set_callback` (170), `bpf_timer_start` (171) and
//! `bpf_timer_cancel` (172): a timer inside a map value (`struct bpf_timer`, 16 bytes, at the
//! offset the value's BTF gives; the verifier accepts no other pointer in `Strict` mode).
//!
//! The timer's state is kept on the host side, in a table keyed by the timer's address, and
//! tied to the element by an identifier the helper writes into the timer's first 8 bytes at
//! `bpf_timer_init`: a timer is initialised only while its first word still holds the
//! identifier of the table's entry for its address. The kernel cancels and frees an element's
//! timer when the element is deleted or overwritten (`bpf_map_update_elem`,
//! `bpf_map_delete_elem`, from programs or user space); here, a deleted element's slot is
//! reused with the bytes of the new value, and an overwrite copies the new value's bytes over
//! the timer, so the identifier is gone and the timer reads as uninitialised (and not armed)
//! again — unless the new value's first timer word is the old identifier (a value copied from
//! the element itself), where the kernel would still free the timer and bpfx keeps it. An
//! entry whose identifier is gone is replaced by the next `bpf_timer_init` at its address.
//!
//! Callbacks never fire: `bpf_timer_start` records the timer as armed, with its expiry on its
//! clock, and nothing runs the callback (bpfx has no soft-irq context to run it in; the
//! embedder API to fire expired timers is not there yet). The helpers' results are the
//! kernel's: `bpf_timer_cancel` returns 1 for a timer armed and not cancelled since.
//! `-EPERM` (a map with no user references) never happens: the object holds its maps while
//! programs run. `-EDEADLK` (a callback cancelling its own timer) cannot happen either, since
//! no callback runs.

use crate::helpers::Cx;
use bpfx_exec::{GuestMemory, HelperError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

/// `bpf_timer_init`.
pub const TIMER_INIT: u32 = 169;
/// `bpf_timer_set_callback`.
pub const TIMER_SET_CALLBACK: u32 = 170;
/// `bpf_timer_start`.
pub const TIMER_START: u32 = 171;
/// `bpf_timer_cancel`.
pub const TIMER_CANCEL: u32 = 172;

/// `sizeof(struct bpf_timer)`.
pub(crate) const TIMER_SIZE: usize = 16;

const EINVAL: u64 = (-22i64) as u64;
const EBUSY: u64 = (-16i64) as u64;

/// The clocks `bpf_timer_init` accepts (`CLOCK_REALTIME`, `CLOCK_MONOTONIC`,
/// `CLOCK_BOOTTIME`).
const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const CLOCK_BOOTTIME: u64 = 7;

/// `BPF_F_TIMER_ABS`: `nsecs` is an absolute time on the timer's clock.
const BPF_F_TIMER_ABS: u64 = 1 << 0;
/// `BPF_F_TIMER_CPU_PIN`: the callback runs on the CPU that armed the timer.
const BPF_F_TIMER_CPU_PIN: u64 = 1 << 1;

/// One timer's state.
#[derive(Clone, Copy, Debug)]
struct Timer {
    /// The identifier written into the timer's first word at `bpf_timer_init`.
    id: u64,
    /// Its clock id.
    clock: u64,
    /// The callback `bpf_timer_set_callback` gave (its instruction index).
    callback: Option<u64>,
    /// When armed: the expiry, in nanoseconds on `clock`.
    expires: Option<u64>,
}

static TABLE: LazyLock<Mutex<HashMap<u64, Timer>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Identifiers: odd, so that a zeroed timer never holds one.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn table() -> MutexGuard<'static, HashMap<u64, Timer>> {
    // Each change is one insert or one field update: a panic elsewhere leaves nothing half done.
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn err(msg: String) -> HelperError {
    HelperError(msg)
}

/// The timer word at `addr`, once the 16 bytes are checked to lie in a map's memory
/// (`Strict` mode proved it; `Checked` mode leaves it to here).
fn timer_word(name: &str, mem: &mut GuestMemory<'_>, addr: u64) -> Result<u64, HelperError> {
    let in_map = mem
        .shared
        .iter()
        .any(|b| b.offset_of(addr, TIMER_SIZE).is_some());
    match mem
        .load(addr, 8)
        .filter(|_| in_map && addr.is_multiple_of(8))
    {
        Some(w) => Ok(w),
        None => Err(err(format!(
            "bpf_timer_{name}: {addr:#x} is not a timer (16 aligned bytes) in a map value"
        ))),
    }
}

/// Runs `f` on the initialised timer at `addr`, or returns `-EINVAL`.
fn with_timer(
    name: &str,
    mem: &mut GuestMemory<'_>,
    addr: u64,
    f: impl FnOnce(&mut Timer) -> u64,
) -> Result<u64, HelperError> {
    let word = timer_word(name, mem, addr)?;
    let mut t = table();
    Ok(match t.get_mut(&addr) {
        Some(timer) if timer.id == word => f(timer),
        _ => EINVAL,
    })
}

/// `bpf_timer_init(timer, map, flags)`: 0, `-EINVAL` for a clock other than
/// `CLOCK_MONOTONIC`, `CLOCK_REALTIME` and `CLOCK_BOOTTIME` (the low 4 bits of `flags`, the
/// other bits reserved), `-EBUSY` for a timer already initialised.
pub(crate) fn timer_init(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let [addr, _map, flags, ..] = a;
    let word = timer_word("init", mem, addr)?;
    if !matches!(flags, CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME) {
        return Ok(EINVAL);
    }
    let mut t = table();
    if t.get(&addr).is_some_and(|timer| timer.id == word) {
        return Ok(EBUSY);
    }
    let id = NEXT_ID.fetch_add(2, Ordering::Relaxed);
    if mem.store(addr, 8, id).is_none() {
        return Err(err(format!(
            "bpf_timer_init: the timer at {addr:#x} is in a read-only map value"
        )));
    }
    t.insert(
        addr,
        Timer {
            id,
            clock: flags,
            callback: None,
            expires: None,
        },
    );
    Ok(0)
}

/// `bpf_timer_set_callback(timer, callback_fn)`: 0, or `-EINVAL` for a timer not
/// initialised.
pub(crate) fn timer_set_callback(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    with_timer("set_callback", mem, a[0], |timer| {
        timer.callback = Some(a[1]);
        0
    })
}

/// `bpf_timer_start(timer, nsecs, flags)`: 0 once the timer is armed to expire `nsecs`
/// from now on its clock (at `nsecs` with `BPF_F_TIMER_ABS`); `-EINVAL` for flags other than
/// `BPF_F_TIMER_ABS` and `BPF_F_TIMER_CPU_PIN`, and for a timer not initialised or with no
/// callback (as the kernel's, which arms only a timer with a callback).
pub(crate) fn timer_start(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let [addr, nsecs, flags, ..] = a;
    let word = timer_word("start", mem, addr)?;
    if flags & !(BPF_F_TIMER_ABS | BPF_F_TIMER_CPU_PIN) != 0 {
        return Ok(EINVAL);
    }
    let clock = match table().get(&addr) {
        Some(timer) if timer.id == word && timer.callback.is_some() => timer.clock,
        _ => return Ok(EINVAL),
    };
    let expires = if flags & BPF_F_TIMER_ABS != 0 {
        nsecs
    } else {
        now(cx, clock).saturating_add(nsecs)
    };
    with_timer("start", mem, addr, |timer| {
        timer.expires = Some(expires);
        0
    })
}

/// `bpf_timer_cancel(timer)`: 1 if the timer was armed, 0 if not, `-EINVAL` for a timer not
/// initialised. As the kernel's, it also drops the callback: the timer is neither armed nor
/// has a callback after, so `bpf_timer_start` fails until `bpf_timer_set_callback` again.
pub(crate) fn timer_cancel(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    with_timer("cancel", mem, a[0], |timer| {
        timer.callback = None;
        u64::from(timer.expires.take().is_some())
    })
}

/// Now on the timer's clock, in nanoseconds: the runtime's clocks (`Vm::clock`,
/// `Vm::boot_clock`) for `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME`, the host's wall clock for
/// `CLOCK_REALTIME`.
fn now(cx: &Cx, clock: u64) -> u64 {
    match clock {
        CLOCK_BOOTTIME => match &cx.hooks.boot_clock {
            Some(f) => f(),
            None => (cx.hooks.clock)(),
        },
        CLOCK_REALTIME => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        _ => (cx.hooks.clock)(),
    }
}
