//! `bpf_timer_init` (169), `bpf_timer_set_callback` (170), `bpf_timer_start` (171) and
//! `bpf_timer_cancel` (172): a timer inside a map value (`struct bpf_timer`, 16 bytes, at the
//! offset the value's BTF gives; the verifier accepts no other pointer in `Strict` mode), and
//! the firing of expired timers ([`crate::Object::run_timers`]).
//!
//! Each map keeps its elements' timers ([`Timers`], a table by element slot, freed with the
//! map: nothing is process-wide), tied to the element by an identifier the helper writes into
//! the timer's first 8 bytes at `bpf_timer_init`: a timer is initialised only while its
//! table has an entry for its element whose identifier its first word still holds. As the
//! kernel does, an element's timer is cancelled and freed when the element is deleted
//! (`bpf_map_delete_elem`, from a program or the host), replaced by an update of a hash or LRU
//! hash map (whatever the new value's bytes, the element's own included), evicted from an LRU
//! map, or updated in an array (the kernel's array update frees the element's special fields;
//! the element stays, its timer must be initialised again). A freed timer never fires.
//!
//! Times are on the [`crate::Vm`]'s clock ([`crate::Vm::clock`], what `bpf_ktime_get_ns`
//! returns): `bpf_timer_start` converts a `CLOCK_BOOTTIME` or `CLOCK_REALTIME` absolute
//! expiry to it by the clocks' difference when it is armed. bpfx has no soft-irq context:
//! the embedder fires the timers that are due with [`crate::Object::run_timers`], each callback
//! on the engine of the program that set it, on the CPU slot of the run that armed it (the
//! kernel fires a timer on the CPU that started it, and `BPF_F_TIMER_CPU_PIN` pins it there).
//! The helpers' results are the kernel's: `bpf_timer_cancel` returns 1 for a timer armed and
//! not cancelled or fired since, and `-EDEADLK` from the timer's own callback. `-EPERM` (a
//! map with no user references) never happens: the object holds its maps while programs run.

use crate::helpers::{Cx, run_state};
use crate::map::Map;
use crate::program::Linked;
use bpfx_bytecode::Pc;
use bpfx_exec::{GuestMemory, HelperError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
const EDEADLK: u64 = (-35i64) as u64;

/// The clocks `bpf_timer_init` accepts (`CLOCK_REALTIME`, `CLOCK_MONOTONIC`,
/// `CLOCK_BOOTTIME`).
const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const CLOCK_BOOTTIME: u64 = 7;

/// `BPF_F_TIMER_ABS`: `nsecs` is an absolute time on the timer's clock.
const BPF_F_TIMER_ABS: u64 = 1 << 0;
/// `BPF_F_TIMER_CPU_PIN`: the callback runs on the CPU that armed the timer.
const BPF_F_TIMER_CPU_PIN: u64 = 1 << 1;

/// A timer's callback: the program that set it (the function's code is that program's) and
/// the function's entry.
#[derive(Clone)]
pub(crate) struct Callback {
    pub(crate) prog: Arc<Linked>,
    pub(crate) entry: Pc,
}

/// One timer's state.
#[derive(Clone)]
struct Timer {
    /// The identifier written into the timer's first word at `bpf_timer_init`.
    id: u64,
    /// The timer's offset in its element's value.
    off: usize,
    /// Its clock id.
    clock: u64,
    /// The callback `bpf_timer_set_callback` gave.
    callback: Option<Callback>,
    /// When armed: the expiry, in nanoseconds on the `Vm`'s clock, and the order it was armed
    /// in (ties fire in that order).
    expires: Option<(u64, u64)>,
    /// The CPU slot of the run that armed it: its callback's.
    cpu: u32,
}

/// The timers of one map's elements, by element slot (an array's index, a hash map's slot).
/// A map frees an element's entry when the element is deleted, replaced or updated
/// ([`Timers::free`]); the table goes with the map.
#[derive(Default)]
pub(crate) struct Timers {
    table: Mutex<HashMap<u32, Timer>>,
    /// Whether a timer was ever initialised here: until then an update or delete of the
    /// map (most maps hold no timer) frees nothing and takes no lock.
    used: AtomicBool,
}

/// One timer due to fire: what [`Timers::due`] found, checked again when it fires
/// ([`Timers::fire`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    pub(crate) expires: u64,
    pub(crate) seq: u64,
    pub(crate) slot: u32,
    id: u64,
}

impl Timers {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Timer>> {
        // Each change is one insert, one removal or one field update: a panic elsewhere
        // leaves nothing half done.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cancels and frees the timer of element `slot` (the element was deleted, replaced or
    /// updated): it never fires, and reads as not initialised.
    pub(crate) fn free(&self, slot: u32) {
        if self.used.load(Ordering::Acquire) {
            self.lock().remove(&slot);
        }
    }

    /// Whether a timer of this map was ever initialised.
    pub(crate) fn used(&self) -> bool {
        self.used.load(Ordering::Acquire)
    }

    /// Frees every timer (the object that owns the map is gone: see `program::object`).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// The armed timers due at `now` (expiring at or before it), in no particular order.
    /// A map none of whose timers was ever initialised takes no lock (a replay asks at
    /// every packet).
    pub(crate) fn due(&self, now: u64) -> Vec<Due> {
        if !self.used() {
            return Vec::new();
        }
        self.lock()
            .iter()
            .filter_map(|(&slot, t)| {
                let (expires, seq) = t.expires?;
                (expires <= now).then_some(Due {
                    expires,
                    seq,
                    slot,
                    id: t.id,
                })
            })
            .collect()
    }

    /// Takes `due` to fire it: its callback and CPU, when the timer is still the one found,
    /// still armed for that expiry and has a callback (it was not freed, cancelled or
    /// started again since); it is then no longer armed.
    pub(crate) fn fire(&self, due: &Due) -> Option<(Callback, u32)> {
        let mut t = self.lock();
        let timer = t.get_mut(&due.slot)?;
        if timer.id != due.id || timer.expires != Some((due.expires, due.seq)) {
            return None;
        }
        timer.expires = None;
        Some((timer.callback.clone()?, timer.cpu))
    }

    /// How many timers are armed, and the earliest expiry.
    pub(crate) fn pending(&self) -> (usize, Option<u64>) {
        if !self.used() {
            return (0, None);
        }
        let t = self.lock();
        let armed = t.values().filter_map(|t| t.expires.map(|(e, _)| e));
        armed.fold((0, None), |(n, first), e| {
            (n + 1, Some(first.map_or(e, |f: u64| f.min(e))))
        })
    }
}

/// Identifiers: odd, so that a zeroed timer never holds one.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// The order timers are armed in.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

fn err(msg: String) -> HelperError {
    HelperError(msg)
}

/// Where the timer at `addr` is: its map, its element's slot and its first word, once the 16
/// bytes are checked to lie 8-aligned in one value of an array, hash or LRU hash map of the
/// program's object (`Strict` mode proved it; `Checked` mode leaves it to here).
fn locate<'c>(
    name: &str,
    cx: &'c Cx,
    mem: &mut GuestMemory<'_>,
    addr: u64,
) -> Result<(&'c Arc<Map>, u32, usize, u64), HelperError> {
    let found = cx.maps.iter().find_map(|m| {
        let map = m.created()?;
        let (slot, off) = map.element_at(addr, TIMER_SIZE)?;
        Some((map, slot, off))
    });
    match (found, mem.load(addr, 8)) {
        (Some((map, slot, off)), Some(word)) if addr.is_multiple_of(8) => {
            Ok((map, slot, off, word))
        }
        _ => Err(err(format!(
            "bpf_timer_{name}: {addr:#x} is not a timer (16 aligned bytes) in a value of an \
             array or hash map of the program's object"
        ))),
    }
}

/// Runs `f` on the initialised timer at `addr` (with its map and slot), or returns `-EINVAL`.
fn with_timer(
    name: &str,
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    addr: u64,
    f: impl FnOnce(&mut Timer, &Map, u32, &mut GuestMemory<'_>) -> Result<u64, HelperError>,
) -> Result<u64, HelperError> {
    let (map, slot, off, word) = locate(name, cx, mem, addr)?;
    let mut t = map.timers().lock();
    match t.get_mut(&slot) {
        Some(timer) if timer.id == word && timer.off == off => f(timer, map, slot, mem),
        _ => Ok(EINVAL),
    }
}

/// `bpf_timer_init(timer, map, flags)`: 0, `-EINVAL` for a clock other than
/// `CLOCK_MONOTONIC`, `CLOCK_REALTIME` and `CLOCK_BOOTTIME` (the low 4 bits of `flags`, the
/// other bits reserved), `-EBUSY` for a timer already initialised.
pub(crate) fn timer_init(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let [addr, _map, flags, ..] = a;
    let (map, slot, off, word) = locate("init", cx, mem, addr)?;
    if !matches!(flags, CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME) {
        return Ok(EINVAL);
    }
    let mut t = map.timers().lock();
    if t.get(&slot)
        .is_some_and(|timer| timer.id == word && timer.off == off)
    {
        return Ok(EBUSY);
    }
    map.timers().used.store(true, Ordering::Release);
    let id = NEXT_ID.fetch_add(2, Ordering::Relaxed);
    if mem.store(addr, 8, id).is_none() {
        return Err(err(format!(
            "bpf_timer_init: the timer at {addr:#x} is in a read-only map value"
        )));
    }
    t.insert(
        slot,
        Timer {
            id,
            off,
            clock: flags,
            callback: None,
            expires: None,
            cpu: 0,
        },
    );
    Ok(0)
}

/// `bpf_timer_set_callback(timer, callback_fn)`: 0, or `-EINVAL` for a timer not
/// initialised. The callback is a function of the running program (the last tail call's
/// target), one the verifier checked as a timer callback.
pub(crate) fn timer_set_callback(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let prog = run_state(mem)?.timer_prog.clone();
    let entry = u32::try_from(a[1]).ok().map(Pc);
    let callback = match (prog, entry) {
        (Some(prog), Some(entry)) if prog.prog.timer_callbacks().contains(&entry) => {
            Callback { prog, entry }
        }
        _ => {
            return Err(err(format!(
                "bpf_timer_set_callback: {:#x} is not a function the verifier checked as a \
                 timer callback of the running program",
                a[1]
            )));
        }
    };
    with_timer("set_callback", cx, mem, a[0], |timer, _, _, _| {
        timer.callback = Some(callback);
        Ok(0)
    })
}

/// `bpf_timer_start(timer, nsecs, flags)`: 0 once the timer is armed to expire `nsecs`
/// from now on its clock (at `nsecs` with `BPF_F_TIMER_ABS`); `-EINVAL` for flags other than
/// `BPF_F_TIMER_ABS` and `BPF_F_TIMER_CPU_PIN`, and for a timer not initialised or with no
/// callback (as the kernel's, which arms only a timer with a callback). A timer armed again
/// expires only at its new time.
pub(crate) fn timer_start(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let [addr, nsecs, flags, ..] = a;
    if flags & !(BPF_F_TIMER_ABS | BPF_F_TIMER_CPU_PIN) != 0 {
        // The timer is checked first, as the kernel reads it before the flags.
        locate("start", cx, mem, addr)?;
        return Ok(EINVAL);
    }
    with_timer("start", cx, mem, addr, |timer, _, _, _| {
        if timer.callback.is_none() {
            return Ok(EINVAL);
        }
        let vm_now = (cx.hooks.clock)();
        let expires = if flags & BPF_F_TIMER_ABS != 0 {
            // The absolute time on the timer's clock, moved to the Vm's by the clocks'
            // difference now.
            let own = now(cx, timer.clock);
            vm_now.saturating_add(nsecs.saturating_sub(own))
        } else {
            vm_now.saturating_add(nsecs)
        };
        timer.expires = Some((expires, NEXT_SEQ.fetch_add(1, Ordering::Relaxed)));
        timer.cpu = cx.cpu();
        Ok(0)
    })
}

/// `bpf_timer_cancel(timer)`: 1 if the timer was armed, 0 if not, `-EINVAL` for a timer not
/// initialised, `-EDEADLK` from the timer's own callback. As the kernel's, it also drops the
/// callback: the timer is neither armed nor has a callback after, so `bpf_timer_start` fails
/// until `bpf_timer_set_callback` again.
pub(crate) fn timer_cancel(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    with_timer("cancel", cx, mem, a[0], |timer, map, slot, mem| {
        if run_state(mem)?.firing == Some((map.id(), slot)) {
            return Ok(EDEADLK);
        }
        timer.callback = None;
        Ok(u64::from(timer.expires.take().is_some()))
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
