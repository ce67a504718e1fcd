//! Acquired references: ring buffer records that a path must release exactly once, and the
//! `bpf_spin_lock` a path holds (the kernel keeps both in one list of acquired references).
//!
//! `bpf_ringbuf_reserve` hands the program a record it must give back, with
//! `bpf_ringbuf_submit` or `bpf_ringbuf_discard`, on every path before the program exits, and
//! may not touch after that (the kernel's reference tracking: `acquire_reference_state`,
//! `release_reference`, `check_reference_leak`). Only `Strict` mode tracks them.
//!
//! A record pointer carries its reservation's id (`PtrKind::MapValue { id, record: Some(_) }`)
//! through its null check, copies, spills and fills (the kernel's `ref_obj_id`); a state's
//! [`Refs`] lists the ids whose records are held. The null edge of the check drops the
//! reference (no record was reserved); a release drops it, and every pointer that still
//! carries the id is then a released record, which no instruction may read.
//!
//! # Invariants
//! - Ids are unique per reservation visit (fresh at every visit of the `call`), sorted, no
//!   duplicates.
//! - An id absent from a state's list is not held on any path reaching the pc; one marked
//!   [`Held::Always`] is held on every path; [`Held::OnSomePaths`] on some only (a join of a
//!   path that released it, or never reserved it, with one that holds it). Only an `Always`
//!   record may be used or released, and the outermost `exit` needs the list empty.

use bpfx_bytecode::Pc;
use std::fmt;

/// Whether a reference is held on every path to the pc or on some only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Held {
    Always,
    OnSomePaths,
}

/// One acquired reference: the reservation's id, where it was made, and how surely it is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Ref {
    pub(crate) id: u32,
    /// The `call` that reserved it (the kernel's `alloc_insn`).
    pub(crate) at: Pc,
    pub(crate) held: Held,
    /// Whether it is a socket reference (`sk_lookup_*`, released by `sk_release`) rather
    /// than a ring buffer record; socket references are tracked in both modes.
    pub(crate) sock: bool,
}

/// A `bpf_spin_lock` taken (`Strict` mode): the lock's map value (its map and the lookup's
/// pointer id, 0 for a pointer without one) and offset in it, the `call` that took it, and
/// how surely it is held. While it is held the program may call no function but
/// `bpf_spin_unlock` of this lock, use no `ld_abs`/`ld_ind`, and not `exit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Lock {
    pub(crate) map: crate::config::MapRef,
    pub(crate) id: u32,
    pub(crate) off: i64,
    pub(crate) at: Pc,
    pub(crate) held: Held,
}

/// The references a state holds, by increasing id, and the lock it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Refs(Vec<Ref>, Option<Lock>);

impl Refs {
    /// Records that the reservation at `at` made `id` (fresh: larger than every id held).
    pub(crate) fn acquire(&mut self, id: u32, at: Pc) {
        self.acquire_as(id, at, false);
    }

    /// Records that the socket lookup at `at` acquired the reference `id`.
    pub(crate) fn acquire_sock(&mut self, id: u32, at: Pc) {
        self.acquire_as(id, at, true);
    }

    fn acquire_as(&mut self, id: u32, at: Pc, sock: bool) {
        let r = Ref {
            id,
            at,
            held: Held::Always,
            sock,
        };
        match self.0.binary_search_by_key(&id, |r| r.id) {
            Ok(i) => self.0[i] = r,
            Err(i) => self.0.insert(i, r),
        }
    }

    /// The reference `id`, when it is held on some path.
    pub(crate) fn get(&self, id: u32) -> Option<Ref> {
        let i = self.0.binary_search_by_key(&id, |r| r.id).ok()?;
        Some(self.0[i])
    }

    /// How surely `id` is held; `None` when it is not held on any path.
    pub(crate) fn held(&self, id: u32) -> Option<Held> {
        let i = self.0.binary_search_by_key(&id, |r| r.id).ok()?;
        Some(self.0[i].held)
    }

    /// Drops `id` (released, or never reserved: the null edge of its check).
    pub(crate) fn drop_ref(&mut self, id: u32) {
        self.0.retain(|r| r.id != id);
    }

    /// The first reference still held (on some path), for the leak check at `exit`.
    pub(crate) fn first(&self) -> Option<Ref> {
        self.0.first().copied()
    }

    /// The lock held, on every path or on some.
    pub(crate) fn lock(&self) -> Option<Lock> {
        self.1
    }

    /// Records that the lock is taken (`Some`) or released (`None`).
    pub(crate) fn set_lock(&mut self, lock: Option<Lock>) {
        self.1 = lock;
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty() && self.1.is_none()
    }

    /// Joins `other`'s references into these: a reference both hold on every path stays
    /// `Always`, any other held on either side becomes `OnSomePaths`; so does the lock unless
    /// both sides hold the same one on every path. Returns whether `self` changed.
    pub(crate) fn join(&mut self, other: &Refs) -> bool {
        if self == other {
            return false;
        }
        let lock = match (self.1, other.1) {
            (Some(a), Some(b)) if a == b => Some(a),
            (Some(a), _) | (None, Some(a)) => Some(Lock {
                held: Held::OnSomePaths,
                ..a
            }),
            (None, None) => None,
        };
        let lock_changed = lock != self.1;
        self.1 = lock;
        if self.0 == other.0 {
            return lock_changed;
        }
        let mut out = Vec::with_capacity(self.0.len().max(other.0.len()));
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(x), Some(y)) if x.id == y.id => {
                    let held = if x.held == Held::Always && y.held == Held::Always {
                        Held::Always
                    } else {
                        Held::OnSomePaths
                    };
                    let r = Ref { held, ..**x };
                    a.next();
                    b.next();
                    r
                }
                (Some(x), Some(y)) if x.id < y.id => {
                    let r = **x;
                    a.next();
                    Ref {
                        held: Held::OnSomePaths,
                        ..r
                    }
                }
                (Some(x), None) => {
                    let r = **x;
                    a.next();
                    Ref {
                        held: Held::OnSomePaths,
                        ..r
                    }
                }
                (_, Some(y)) => {
                    let r = **y;
                    b.next();
                    Ref {
                        held: Held::OnSomePaths,
                        ..r
                    }
                }
            };
            out.push(next);
        }
        let changed = out != self.0 || lock_changed;
        self.0 = out;
        changed
    }
}

impl fmt::Display for Refs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            let q = match r.held {
                Held::Always => "",
                Held::OnSomePaths => "?",
            };
            let what = if r.sock { "sock" } else { "ref" };
            write!(f, "{what}{q}(id {} from {})", r.id, r.at)?;
        }
        if let Some(l) = self.1 {
            if !self.0.is_empty() {
                write!(f, " ")?;
            }
            let q = match l.held {
                Held::Always => "",
                Held::OnSomePaths => "?",
            };
            write!(f, "lock{q}(+{} from {})", l.off, l.at)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(v: &[(u32, Held)]) -> Refs {
        Refs(
            v.iter()
                .map(|&(id, held)| Ref {
                    id,
                    at: Pc(id),
                    held,
                    sock: false,
                })
                .collect(),
            None,
        )
    }

    #[test]
    fn a_reference_held_on_one_side_only_is_held_on_some_paths_after_a_join() {
        use Held::*;
        let mut a = refs(&[(1, Always), (3, Always), (5, OnSomePaths)]);
        let b = refs(&[(2, Always), (3, Always), (5, Always), (7, Always)]);
        assert!(a.join(&b));
        assert_eq!(
            a,
            refs(&[
                (1, OnSomePaths),
                (2, OnSomePaths),
                (3, Always),
                (5, OnSomePaths),
                (7, OnSomePaths)
            ])
        );
        // Joining again changes nothing, and the join is commutative.
        let before = a.clone();
        assert!(!a.join(&b));
        assert_eq!(a, before);
        let mut c = b.clone();
        c.join(&refs(&[(1, Always), (3, Always), (5, OnSomePaths)]));
        assert_eq!(c, before);
    }

    #[test]
    fn states_holding_other_references_or_records_cover_nothing() {
        use crate::config::MapRef;
        use crate::domain::{Frame, Off, PtrKind, State, Value};
        let record = |id| {
            Value::Ptr(
                PtrKind::MapValue {
                    map: MapRef::Idx(0),
                    nullable: false,
                    id,
                    record: Some(16),
                },
                Off::known(0),
            )
        };
        let state = |r6: Value, r7: Value, ids: &[u32]| {
            let mut regs = [Value::UNKNOWN_SCALAR; 11];
            regs[6] = r6;
            regs[7] = r7;
            let mut st = State::new(Frame::new(regs));
            for &id in ids {
                st.refs.acquire(id, Pc(id));
            }
            st
        };
        let a = state(record(1), record(2), &[1, 2]);
        assert!(a.le(&a));
        // The same references, but r7 a copy of the first record: releasing r6 and r7 here
        // would release one reference twice, so neither state covers the other.
        let b = state(record(1), record(1), &[1, 2]);
        assert!(!b.le(&a) && !a.le(&b));
        // Equal registers, different references held.
        let c = state(record(1), record(2), &[1]);
        assert!(!c.le(&a) && !a.le(&c));
        // A join keeps both values' ids only where equal, and the reference held on one side
        // only is held on some paths.
        let mut j = a.clone();
        assert!(j.join(&c));
        assert_eq!(j.refs.held(1), Some(Held::Always));
        assert_eq!(j.refs.held(2), Some(Held::OnSomePaths));
    }

    #[test]
    fn acquire_and_drop_keep_the_list_sorted() {
        let mut r = Refs::default();
        r.acquire(4, Pc(1));
        r.acquire(2, Pc(0));
        assert_eq!(r.first().map(|x| x.id), Some(2));
        assert_eq!(r.held(4), Some(Held::Always));
        r.drop_ref(2);
        assert_eq!(r.held(2), None);
        assert_eq!(r.first().map(|x| (x.id, x.at)), Some((4, Pc(1))));
        r.drop_ref(4);
        assert_eq!(r.first(), None);
        assert_eq!(r.to_string(), "");
    }
}
