//! The memory limit of a [`crate::Vm`]: one pool of bytes that every map's storage and every
//! program's JIT code draw from, checked before the memory is allocated.
//!
//! What a map will take is computed from its [`crate::MapSpec`] alone
//! ([`crate::MapSpecExt::memory_bytes`], one function per map kind beside the kind's code in
//! `map.rs`), so a hostile object is refused before anything of its size exists. A [`Charge`]
//! holds the bytes while the thing it pays for lives, and gives them back when dropped.
//!
//! Most kinds are charged their whole bound at creation. The hash family (hash, LRU hash,
//! per-CPU hashes) and LPM tries are charged their fixed part at creation and then a chunk of
//! slots at a time, as their slot allocator first hands out a slot of the chunk
//! ([`Charge::grow`], in `map::Slots`): a map declared large but used sparsely holds what it
//! has used, and an insert the pool has no room for fails with `ENOMEM`.
//!
//! # Invariants
//! `used` is the sum of the live charges' bytes and never exceeds `limit`: a charge is taken
//! with one compare-and-swap that fails rather than overshoots.

use crate::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The memory limit of a [`crate::Vm`] unless [`crate::Vm::mem_limit`] sets another, in
/// bytes: 1 GiB. It bounds every map, alone or together: there is no other bound of one map,
/// as in the kernel (whose memory cgroup is the only bound of its maps).
pub const DEFAULT_MEM_LIMIT: u64 = 1 << 30;

/// How much address space the maps charged by use may reserve together in one [`crate::Vm`]
/// (64 GiB, whatever the memory limit): a hash-family map reserves its whole slab at creation
/// but is charged only as it uses slots, so without this bound an object of many large hash
/// maps could reserve more address space than the host gives, and the allocation would abort
/// the process instead of failing the load. Untouched, the reservation costs no memory.
pub const MAX_RESERVED_BYTES: u64 = 64 << 30;

/// The bytes a [`crate::Vm`] (and its clones, and every object opened from them) may hold.
#[derive(Debug)]
pub(crate) struct Pool {
    limit: u64,
    used: AtomicU64,
    /// Address space reserved by maps charged by use (never more than `reserve_cap`).
    reserved: AtomicU64,
    /// [`MAX_RESERVED_BYTES`], or a test's smaller bound.
    reserve_cap: u64,
}

impl Pool {
    pub(crate) fn new(limit: u64) -> Arc<Pool> {
        Pool::with_reserve_cap(limit, MAX_RESERVED_BYTES)
    }

    /// A pool whose maps charged by use may reserve `reserve_cap` bytes of address space.
    pub(crate) fn with_reserve_cap(limit: u64, reserve_cap: u64) -> Arc<Pool> {
        Arc::new(Pool {
            limit,
            used: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            reserve_cap,
        })
    }

    /// Address space reserved by maps charged by use, in bytes.
    #[cfg(test)]
    pub(crate) fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed)
    }

    /// The limit, in bytes.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes held by live charges.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether `need` more bytes for `what` would fit beside what is held and `pending` bytes
    /// about to be asked for; takes nothing.
    pub(crate) fn check(
        &self,
        what: impl FnOnce() -> String,
        need: u64,
        pending: u64,
    ) -> Result<(), Error> {
        let used = self.used().saturating_add(pending);
        if used.checked_add(need).is_some_and(|t| t <= self.limit) {
            Ok(())
        } else {
            Err(self.refusal(what(), need, used))
        }
    }

    fn refusal(&self, what: String, need: u64, used: u64) -> Error {
        Error::MemoryLimit {
            what,
            need,
            used,
            limit: self.limit,
        }
    }

    /// Takes `need` bytes for `what`, or refuses without taking any.
    pub(crate) fn charge(
        self: &Arc<Pool>,
        what: impl FnOnce() -> String,
        need: u64,
    ) -> Result<Charge, Error> {
        self.take(what, need)?;
        Ok(Charge {
            pool: self.clone(),
            bytes: need,
            reserved: 0,
        })
    }

    /// Adds `need` to `used` in one compare-and-swap, or refuses without adding any.
    fn take(&self, what: impl FnOnce() -> String, need: u64) -> Result<(), Error> {
        let limit = self.limit;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(need).filter(|&t| t <= limit)
            })
            .map(|_| ())
            .map_err(|used| self.refusal(what(), need, used))
    }
}

/// Bytes taken from a [`Pool`] (and address space reserved from it), given back when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    pool: Arc<Pool>,
    bytes: u64,
    reserved: u64,
}

impl Charge {
    /// A charge of 0 bytes on the same pool, to [`Charge::grow`] later.
    pub(crate) fn sibling(&self) -> Charge {
        Charge {
            pool: self.pool.clone(),
            bytes: 0,
            reserved: 0,
        }
    }

    /// Also holds `bytes` of address space for `what` (a map charged by use reserves its slab
    /// at creation), within [`MAX_RESERVED_BYTES`] for the pool's maps together; refuses with
    /// [`Error::MemoryLimit`] (naming the address space) without holding any.
    pub(crate) fn reserve(
        mut self,
        what: impl FnOnce() -> String,
        bytes: u64,
    ) -> Result<Charge, Error> {
        let cap = self.pool.reserve_cap;
        match self
            .pool
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                r.checked_add(bytes).filter(|&t| t <= cap)
            }) {
            Ok(_) => {
                self.reserved += bytes;
                Ok(self)
            }
            Err(used) => Err(Error::MemoryLimit {
                what: format!(
                    "{}'s address space (maps charged by use may reserve \
                     {MAX_RESERVED_BYTES} bytes together)",
                    what()
                ),
                need: bytes,
                used,
                limit: cap,
            }),
        }
    }

    /// Takes `more` bytes for `what` besides those held, or refuses without taking any (the
    /// error is [`Pool::charge`]'s).
    pub(crate) fn grow(&mut self, what: impl FnOnce() -> String, more: u64) -> Result<(), Error> {
        self.pool.take(what, more)?;
        self.bytes += more;
        Ok(())
    }

    /// Keeps only `bytes` of the charge (a bound charged before allocating, once the real size
    /// is known); never grows it.
    pub(crate) fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            self.pool
                .used
                .fetch_sub(self.bytes - bytes, Ordering::AcqRel);
            self.bytes = bytes;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.pool
            .reserved
            .fetch_sub(self.reserved, Ordering::AcqRel);
        self.pool.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_fit_the_limit_and_are_given_back() {
        let pool = Pool::new(100);
        let a = pool.charge(|| "a".into(), 60).unwrap();
        let e = pool.charge(|| "b".into(), 41).unwrap_err();
        assert_eq!(
            e.to_string(),
            "b: needs 41 bytes, but only 40 of the 100-byte memory limit are left"
        );
        assert_eq!(pool.used(), 60, "a refused charge takes nothing");
        assert!(pool.check(|| "c".into(), 40, 0).is_ok());
        assert!(pool.check(|| "c".into(), 40, 1).is_err());
        assert!(pool.charge(|| "d".into(), u64::MAX).is_err(), "no overflow");
        let mut b = pool.charge(|| "b".into(), 40).unwrap();
        b.shrink_to(10);
        assert_eq!(pool.used(), 70);
        b.shrink_to(20);
        assert_eq!(pool.used(), 70, "never grows");
        drop(a);
        drop(b);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn a_charge_grows_within_the_limit() {
        let pool = Pool::new(100);
        let base = pool.charge(|| "base".into(), 10).unwrap();
        let mut c = base.sibling();
        assert_eq!(pool.used(), 10);
        c.grow(|| "more".into(), 50).unwrap();
        let e = c.grow(|| "more".into(), 41).unwrap_err();
        assert_eq!(
            e.to_string(),
            "more: needs 41 bytes, but only 40 of the 100-byte memory limit are left"
        );
        assert_eq!(pool.used(), 60, "a refused growth takes nothing");
        c.grow(|| "more".into(), 40).unwrap();
        assert_eq!(pool.used(), 100);
        drop(c);
        assert_eq!(pool.used(), 10, "the grown charge comes back whole");
        drop(base);
        assert_eq!(pool.used(), 0);
    }
}
