//! The abstract domain: what the verifier knows about each register and stack byte at a pc.
//!
//! A [`State`] is one frame per active call level, each with eleven register [`Value`]s and a
//! stack of 64 eight-byte [`Slot`]s, plus the packet length proven by `data_end` checks. States
//! meet at join points through [`State::join`] (or [`State::merge_live`] at the loop heads of
//! `Checked` mode), and [`State::le`] says when one state is covered by another (the loop
//! check of `Strict` mode).
//!
//! # Invariants
//! - Every value over-approximates: at run time a scalar register holds one of the values its
//!   [`Scalar`] stands for, and a `Value::Ptr` with offset range `[lo, hi]` holds the base of
//!   that region plus some offset in `[lo, hi]`, on every path reaching the pc. The
//!   per-instruction "proven" facts rest on this, so anything that may change a tracked stack
//!   slot behind the analysis' back (an unproven store, a helper writing memory) must call
//!   [`State::havoc`].
//! - `pkt` bytes from the packet start lie below `data_end` on every path reaching the pc.
//! - Joins only go up; [`State::merge_live`] makes every ascending chain finite, so the `Checked`
//!   fixpoint terminates; `Strict` mode never widens (it explores loop iterations instead).

use crate::config::{MapRef, SockKind};
use bpfx_exec::STACK_FRAME_SIZE;
use std::fmt;
use std::ops::{Index, IndexMut};
use std::rc::Rc;

/// Number of 8-byte slots in a frame.
pub(crate) const SLOTS: usize = STACK_FRAME_SIZE / 8;

pub(crate) use crate::scalar::Scalar;

/// A pointer's offset from the start (or, for the stack, the top) of its region: somewhere in
/// `[lo, hi]`, or not known at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Off {
    Range(i64, i64),
    Unknown,
}

/// Offsets beyond this magnitude are forgotten rather than tracked, so arithmetic on them never
/// overflows and no access through them is ever proven.
pub(crate) const MAX_TRACKED_OFF: i64 = 1 << 29;

impl Off {
    pub(crate) const fn known(v: i64) -> Off {
        Off::Range(v, v)
    }

    /// The offset, when it is one number.
    pub(crate) fn exact(self) -> Option<i64> {
        match self {
            Off::Range(a, b) if a == b => Some(a),
            _ => None,
        }
    }

    fn checked(lo: Option<i64>, hi: Option<i64>) -> Off {
        match (lo, hi) {
            (Some(lo), Some(hi))
                if lo.unsigned_abs() <= MAX_TRACKED_OFF as u64
                    && hi.unsigned_abs() <= MAX_TRACKED_OFF as u64 =>
            {
                Off::Range(lo, hi)
            }
            _ => Off::Unknown,
        }
    }

    /// `self + c` for a constant `c`.
    pub(crate) fn add_const(self, c: i64) -> Off {
        match self {
            Off::Range(lo, hi) => Off::checked(lo.checked_add(c), hi.checked_add(c)),
            Off::Unknown => Off::Unknown,
        }
    }

    /// `self + s` (or `self - s` when `sub`) for a scalar `s`, through its signed bounds.
    pub(crate) fn add_scalar(self, s: &Scalar, sub: bool) -> Off {
        match self {
            Off::Range(lo, hi) if sub => {
                Off::checked(lo.checked_sub(s.smax), hi.checked_sub(s.smin))
            }
            Off::Range(lo, hi) => Off::checked(lo.checked_add(s.smin), hi.checked_add(s.smax)),
            Off::Unknown => Off::Unknown,
        }
    }

    fn join(self, other: Off) -> Off {
        match (self, other) {
            (Off::Range(a, b), Off::Range(c, d)) => Off::Range(a.min(c), b.max(d)),
            _ => Off::Unknown,
        }
    }

    fn widen(old: Off, new: Off) -> Off {
        let j = old.join(new);
        if j == old { j } else { Off::Unknown }
    }

    fn le(self, other: Off) -> bool {
        match (self, other) {
            (_, Off::Unknown) => true,
            (Off::Range(a, b), Off::Range(c, d)) => c <= a && b <= d,
            (Off::Unknown, Off::Range(..)) => false,
        }
    }
}

/// The region a pointer points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PtrKind {
    /// The stack frame of call level `frame` (0 = outermost); offsets are relative to its `r10`.
    Stack { frame: u32 },
    /// The input memory (or context struct); with `rel`, in plain memory of `Checked` mode,
    /// the offset's bounds relative to the input length ([`InRel`]).
    Input { rel: Option<InRel> },
    /// A value of a map; `nullable` until a comparison with 0 has ruled null out. A nullable
    /// pointer with `id != 0` is one helper call's result: every register and spill with that
    /// id is a copy of it, so a null check of one decides them all (the kernel's
    /// `mark_ptr_or_null_regs`). A pointer proven non-null has id 0, except a record (below),
    /// which keeps its id: in `Strict` mode, the reference it must release (`refs.rs`).
    ///
    /// With `record: Some(n)` it is not a value of `map` but a record of `n` bytes that a
    /// helper reserved in `map`'s memory (`bpf_ringbuf_reserve`, the kernel's
    /// `PTR_TO_MEM | MEM_RINGBUF`): accesses are bounded by `n` instead of the value size.
    MapValue {
        map: MapRef,
        nullable: bool,
        id: u32,
        record: Option<u32>,
    },
    /// Packet data. With `id != 0` the pointer is `data + V + lo` (its offset range being
    /// `[lo, hi]`) for one run-time value `V` in `[0, hi - lo]`, fixed when the id was made by
    /// adding a variable to a packet pointer and shared by every packet pointer with that id
    /// (constant offsets move `lo` and `hi` together): a `data_end` check on one of them bounds
    /// them all ([`State::pkt_ids`]).
    Packet { id: u32 },
    /// The end of the packet (never dereferenceable).
    PacketEnd,
    /// The packet's metadata (`data_meta`): offsets from its start; the bytes below `data`
    /// proven by a comparison with `data` are [`State::meta`].
    PacketMeta,
    /// A socket (`sock.rs`): a kernel-owned struct of the [`SockKind`]'s type, read-only,
    /// at offset 0 (no arithmetic). `nullable` until a comparison with 0; `id` groups the
    /// copies of one helper result or context load, as for map values (0: none); `ref_obj`
    /// is the reference (`refs.rs`) the socket stands for, 0 when none: a lookup's result
    /// (`id == ref_obj`), and what `sk_fullsock`/`tcp_sock` made of it (the kernel's
    /// `ref_obj_id`, which such casts pass on).
    Sock {
        kind: SockKind,
        nullable: bool,
        id: u32,
        ref_obj: u32,
    },
}

impl PtrKind {
    /// A pointer into the input with nothing known relative to its length.
    pub(crate) const INPUT: PtrKind = PtrKind::Input { rel: None };
}

/// The offset `o` of an input pointer relative to the run's input length `L`: `lo <= o` and
/// `o + c <= L` (integers), so `[ptr + k, + n)` lies inside the input when `lo + k >= 0` and
/// `k + n <= c`. With `link: Some((id, d))`, `o` is exactly the value a register linked by
/// scalar id `id` with delta `d` holds (`mem + off`, see [`crate::scalar::LenRel`]), so a
/// relation learnt later of that register's group bounds the pointer too. `lmin` is a lower
/// bound of `L` (`mem_size`), as in [`crate::scalar::LenRel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct InRel {
    pub(crate) lo: i64,
    pub(crate) c: i64,
    pub(crate) link: Option<(u32, i64)>,
    pub(crate) lmin: u64,
}

impl InRel {
    /// The relation, or none when a bound is beyond what is tracked; `c` clamped to
    /// `REL_MAX` (weaker, so still true).
    pub(crate) fn new(lo: i128, c: i128, link: Option<(u32, i64)>, lmin: u64) -> Option<InRel> {
        let max = i128::from(crate::scalar::REL_MAX);
        if lo.abs() > max || c < -max {
            return None;
        }
        Some(InRel {
            lo: lo as i64,
            c: c.min(max) as i64,
            link,
            lmin,
        })
    }

    /// The relation an offset in `o` has when `L >= lmin`.
    fn implied(o: Off, lmin: u64) -> Option<InRel> {
        match o {
            Off::Range(lo, hi) => InRel::new(
                i128::from(lo),
                i128::from(lmin) - i128::from(hi),
                None,
                lmin,
            ),
            Off::Unknown => None,
        }
    }

    /// What holds of two pointers of offsets `a` (relation `ra`) and `b` (`rb`).
    fn join(ra: Option<InRel>, a: Off, rb: Option<InRel>, b: Off) -> Option<InRel> {
        let lmin = ra.or(rb)?.lmin;
        let x = ra.or_else(|| InRel::implied(a, lmin))?;
        let y = rb.or_else(|| InRel::implied(b, lmin))?;
        Some(InRel {
            lo: x.lo.min(y.lo),
            c: x.c.min(y.c),
            link: if x.link == y.link { x.link } else { None },
            lmin,
        })
    }

    /// Whether a pointer with relation `a` (offset `o`) satisfies `self`.
    fn covers(self, a: Option<InRel>, o: Off) -> bool {
        a.or_else(|| InRel::implied(o, self.lmin)).is_some_and(|a| {
            a.lo >= self.lo && a.c >= self.c && (self.link.is_none() || a.link == self.link)
        })
    }
}

/// What a register (or a spilled stack slot) holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Value {
    /// Never written on some path.
    NotInit,
    Scalar(Scalar),
    Ptr(PtrKind, Off),
    /// A map handle from `lddw map_fd` / `map_idx`.
    MapHandle(MapRef),
    /// What `map_lookup_elem` on a map of maps returns: the handle of an inner map of this
    /// shape, or null; a comparison with 0 turns it into a [`Value::MapHandle`]. An id other
    /// than 0 is one lookup call's result, as a map value's ([`PtrKind::MapValue`]): every
    /// register and spill with that id is a copy of it, so a null check of one decides them
    /// all (the kernel's `mark_ptr_or_null_regs`). A handle that may be null for another
    /// reason (a join with null) has id 0.
    MapHandleOrNull(MapRef, u32),
    /// Initialised, but of different types on different paths; with `input`, one of them may
    /// be an input pointer (in a field context, the context pointer: see `context.rs`).
    Mixed {
        input: bool,
    },
}

impl Value {
    pub(crate) const UNKNOWN_SCALAR: Value = Value::Scalar(Scalar::UNKNOWN);

    pub(crate) const fn konst(v: u64) -> Value {
        Value::Scalar(Scalar::known(v))
    }

    pub(crate) fn is_pointer_like(self) -> bool {
        matches!(
            self,
            Value::Ptr(..) | Value::MapHandle(_) | Value::MapHandleOrNull(..) | Value::Mixed { .. }
        )
    }

    /// Whether `self` may be an input pointer on some path.
    pub(crate) fn may_be_input(self) -> bool {
        matches!(
            self,
            Value::Ptr(PtrKind::Input { .. }, _) | Value::Mixed { input: true }
        )
    }

    /// The `Mixed` that two values of different types join to.
    fn mixed(a: Value, b: Value) -> Value {
        Value::Mixed {
            input: a.may_be_input() || b.may_be_input(),
        }
    }

    /// Every scalar and pointer offset pushed up as [`Value::join`] does, but with moving bounds
    /// sent to their extremes (see [`Scalar::widen`]).
    pub(crate) fn widen(self, new: Value) -> Value {
        match (self, new.join(self)) {
            (Value::Scalar(a), Value::Scalar(j)) => Value::Scalar(Scalar::widen(&a, &j)),
            // An input pointer's relation to the length as a scalar's (`Scalar::widen`).
            (Value::Ptr(PtrKind::Input { rel: old }, o), Value::Ptr(PtrKind::Input { rel }, j)) => {
                let rel = if old.is_none() || old == rel {
                    rel
                } else {
                    None
                };
                Value::Ptr(PtrKind::Input { rel }, Off::widen(o, j))
            }
            (Value::Ptr(_, o), Value::Ptr(k, j)) => Value::Ptr(k, Off::widen(o, j)),
            (_, j) => j,
        }
    }

    /// The certainly stable bound of `self` and `new` that a loop head falls back to when
    /// widening takes more than its share of the budget: a scalar that moved becomes unknown
    /// at once, a pointer keeps its kind with an unknown offset (so its accesses stay guarded),
    /// anything else joins (to `Mixed` or `NotInit`, which are stable). Each value thus changes
    /// at most a few times, whatever the loop does.
    pub(crate) fn widen_hard(self, new: Value) -> Value {
        match (self, new.join(self)) {
            // A relation to the input length is kept only where it did not move.
            (Value::Scalar(a), Value::Scalar(j)) if a.contains_ranges(&j) => {
                Value::Scalar(Scalar {
                    id: j.id,
                    delta: j.delta,
                    len: if a.len == j.len { a.len } else { None },
                    ..a
                })
            }
            (Value::Scalar(_), Value::Scalar(j)) => Value::Scalar(Scalar {
                id: j.id,
                delta: j.delta,
                ..Scalar::UNKNOWN
            }),
            (Value::Ptr(PtrKind::Input { rel: old }, o), Value::Ptr(PtrKind::Input { rel }, j)) => {
                let rel = if old == rel { rel } else { None };
                let o = if j != o { Off::Unknown } else { o };
                Value::Ptr(PtrKind::Input { rel }, o)
            }
            (Value::Ptr(_, o), Value::Ptr(k, j)) if j != o => Value::Ptr(k, Off::Unknown),
            (_, j) => j,
        }
    }

    /// Whether every run-time value `self` stands for is one `other` stands for (scalar ids
    /// aside: they only ever add precision, so ignoring them errs towards "covered", which
    /// the loop check treats as "may not terminate").
    pub(crate) fn le(self, other: Value) -> bool {
        use Value::*;
        match (self, other) {
            (_, NotInit) => true,
            (NotInit, _) => false,
            // `input` only adds precision (as scalar ids do): any `Mixed` covers.
            (_, Mixed { .. }) => true,
            (Scalar(a), Scalar(b)) => b.contains(&a),
            (Ptr(ka, oa), Ptr(kb, ob)) => {
                // Packet ids only add precision (see scalar ids above); an input pointer's
                // relation to the length is part of its meaning.
                if let (PtrKind::Input { rel: ra }, PtrKind::Input { rel: rb }) = (ka, kb) {
                    return rb.is_none_or(|r| r.covers(ra, oa)) && oa.le(ob);
                }
                let kind_ok = ka == kb
                    || matches!((ka, kb), (PtrKind::Packet { .. }, PtrKind::Packet { .. }))
                    || matches!(
                        (ka, kb),
                        (
                            PtrKind::MapValue {
                                map: ma,
                                nullable: na,
                                record: ra,
                                id: ia,
                            },
                            PtrKind::MapValue {
                                map: mb,
                                nullable: nb,
                                record: rb,
                                id: ib,
                            },
                        // A record's id is its reference (`refs.rs`): which reference a
                        // release gives back is not precision but meaning, so records of
                        // different reservations never cover each other.
                        ) if ma == mb && ra == rb && (nb || !na) && (ra.is_none() || ia == ib)
                    )
                    // A socket's reference is meaning, as a record's.
                    || matches!(
                        (ka, kb),
                        (
                            PtrKind::Sock { kind: xa, nullable: na, ref_obj: ra, .. },
                            PtrKind::Sock { kind: xb, nullable: nb, ref_obj: rb, .. },
                        ) if xa == xb && ra == rb && (nb || !na)
                    );
                kind_ok && oa.le(ob)
            }
            (MapHandle(a), MapHandle(b)) => a == b,
            // Ids aside, as map values' (they only add precision).
            (MapHandle(a) | MapHandleOrNull(a, _), MapHandleOrNull(b, _)) => a == b,
            (Scalar(z), MapHandleOrNull(..)) => z.konst() == Some(0),
            _ => false,
        }
    }

    pub(crate) fn join(self, other: Value) -> Value {
        use Value::*;
        match (self, other) {
            _ if self == other => self,
            (NotInit, _) | (_, NotInit) => NotInit,
            (Scalar(a), Scalar(b)) => Scalar(a.join(&b)),
            (Ptr(ka, oa), Ptr(kb, ob)) => match (ka, kb) {
                // `data + V + a` and `data + V + b` with a != b is no longer one shift of V.
                (PtrKind::Packet { .. }, PtrKind::Packet { .. }) => {
                    Ptr(PtrKind::Packet { id: 0 }, oa.join(ob))
                }
                (PtrKind::Input { rel: ra }, PtrKind::Input { rel: rb }) => Ptr(
                    PtrKind::Input {
                        rel: InRel::join(ra, oa, rb, ob),
                    },
                    oa.join(ob),
                ),
                _ if ka == kb => Ptr(ka, oa.join(ob)),
                (
                    PtrKind::MapValue {
                        map: ma,
                        nullable: na,
                        id: ia,
                        record: ra,
                    },
                    PtrKind::MapValue {
                        map: mb,
                        nullable: nb,
                        id: ib,
                        record: rb,
                    },
                ) if ma == mb && ra == rb => Ptr(
                    PtrKind::MapValue {
                        map: ma,
                        record: ra,
                        nullable: na || nb,
                        // Copies of one call's result on both sides, or related no more.
                        id: if ia == ib { ia } else { 0 },
                    },
                    oa.join(ob),
                ),
                (
                    PtrKind::Sock {
                        kind: xa,
                        nullable: na,
                        id: ia,
                        ref_obj: ra,
                    },
                    PtrKind::Sock {
                        kind: xb,
                        nullable: nb,
                        id: ib,
                        ref_obj: rb,
                    },
                ) if xa == xb && ra == rb => Ptr(
                    PtrKind::Sock {
                        kind: xa,
                        nullable: na || nb,
                        id: if ia == ib { ia } else { 0 },
                        ref_obj: ra,
                    },
                    oa.join(ob),
                ),
                _ => Value::mixed(self, other),
            },
            // Copies of one lookup's result on both sides keep its id; anything else is
            // related no more (a handle proven non-null on one side may be another map's).
            (MapHandleOrNull(a, ia), MapHandleOrNull(b, ib)) if a == b => {
                MapHandleOrNull(a, if ia == ib { ia } else { 0 })
            }
            (MapHandle(a) | MapHandleOrNull(a, _), MapHandle(b) | MapHandleOrNull(b, _))
                if a == b =>
            {
                MapHandleOrNull(a, 0)
            }
            // A handle on some paths and null on the others (`m = cond ? &map : NULL`, or a
            // handle chosen by a branch that may pick none): one that may be null, as the
            // kernel, exploring each path, sees either a handle or the constant 0. A comparison
            // with 0 decides it (`branch.rs`); no helper takes one that may be null.
            // The null side may be a copy's null from another source: no id.
            (MapHandle(a) | MapHandleOrNull(a, _), Scalar(z))
            | (Scalar(z), MapHandle(a) | MapHandleOrNull(a, _))
                if z.konst() == Some(0) =>
            {
                MapHandleOrNull(a, 0)
            }
            _ => Value::mixed(self, other),
        }
    }

    /// A short description for error messages: "a scalar", "a pointer to the stack", ….
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Value::NotInit => "not initialised",
            Value::Scalar(_) => "a scalar",
            Value::Ptr(PtrKind::Stack { .. }, _) => "a pointer to the stack",
            Value::Ptr(PtrKind::Input { .. }, _) => "a pointer to the input memory",
            Value::Ptr(PtrKind::MapValue { nullable: true, .. }, _) => {
                "a map value pointer that may be null"
            }
            Value::Ptr(PtrKind::MapValue { .. }, _) => "a pointer to a map value",
            Value::Ptr(PtrKind::Packet { .. }, _) => "a packet pointer",
            Value::Ptr(PtrKind::PacketEnd, _) => "the packet end pointer",
            Value::Ptr(PtrKind::PacketMeta, _) => "a packet metadata pointer",
            Value::Ptr(PtrKind::Sock { nullable: true, .. }, _) => {
                "a socket pointer that may be null"
            }
            Value::Ptr(PtrKind::Sock { .. }, _) => "a socket pointer",
            Value::MapHandle(_) => "a map handle",
            Value::MapHandleOrNull(..) => "a map handle that may be null",
            Value::Mixed { .. } => {
                "a pointer on some paths and a scalar or another pointer on others"
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off = |f: &mut fmt::Formatter<'_>, o: &Off| match o {
            Off::Range(v, w) if v == w && *v < 0 => write!(f, "{v}"),
            Off::Range(v, w) if v == w => write!(f, "+{v}"),
            Off::Range(v, w) => write!(f, "+[{v},{w}]"),
            Off::Unknown => write!(f, "+?"),
        };
        match self {
            Value::NotInit => write!(f, "uninit"),
            Value::Scalar(s) => write!(f, "{s}"),
            Value::Ptr(k, o) => {
                match k {
                    PtrKind::Stack { frame } => write!(f, "fp{frame}")?,
                    PtrKind::Input { rel: None } => write!(f, "input")?,
                    PtrKind::Input { rel: Some(r) } => {
                        write!(f, "input[{}..=len-{}", r.lo, r.c)?;
                        if let Some((id, d)) = r.link {
                            write!(f, ",=id{id}{d:+}")?;
                        }
                        write!(f, "]")?;
                    }
                    PtrKind::MapValue {
                        map,
                        nullable,
                        record,
                        ..
                    } => {
                        let q = if *nullable { "_or_null" } else { "" };
                        match record {
                            Some(n) => write!(f, "mem{q}({map}, {n} bytes)")?,
                            None => write!(f, "map_value{q}({map})")?,
                        }
                    }
                    PtrKind::Packet { id: 0 } => write!(f, "pkt")?,
                    PtrKind::Packet { id } => write!(f, "pkt(id {id})")?,
                    PtrKind::PacketEnd => write!(f, "pkt_end")?,
                    PtrKind::PacketMeta => write!(f, "pkt_meta")?,
                    PtrKind::Sock {
                        kind,
                        nullable,
                        ref_obj,
                        ..
                    } => {
                        let q = if *nullable { "_or_null" } else { "" };
                        write!(f, "{}{q}", kind.name())?;
                        if *ref_obj != 0 {
                            write!(f, "(ref {ref_obj})")?;
                        }
                    }
                }
                off(f, o)
            }
            Value::MapHandle(m) => write!(f, "map({m})"),
            Value::MapHandleOrNull(m, _) => write!(f, "map_or_null({m})"),
            Value::Mixed { .. } => write!(f, "mixed"),
        }
    }
}

/// How a state arriving at a join point is merged into the stored one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Merge {
    /// The least upper bound ([`State::join`]).
    Join,
    /// The join with every moving bound sent to its extreme ([`Value::widen`]): where a
    /// `Checked`-mode loop closes.
    Widen,
    /// The certainly stable bound ([`Value::widen_hard`]): where a `Checked`-mode loop closes
    /// once its head has used its share of the budget.
    Hard,
}

/// One 8-byte stack slot: a whole spilled register, or bytes of which some are initialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    /// An 8-byte aligned store of a whole register; fills give the value back with its type.
    Spill(Value),
    /// Raw bytes; bit `i` of the mask says byte `i` (from the slot's lowest address) is
    /// initialised.
    Bytes(u8),
}

impl Slot {
    pub(crate) const EMPTY: Slot = Slot::Bytes(0);

    /// The initialised-bytes mask.
    pub(crate) fn init_mask(self) -> u8 {
        match self {
            Slot::Spill(_) => 0xff,
            Slot::Bytes(m) => m,
        }
    }

    fn le(self, other: Slot) -> bool {
        match (self, other) {
            (Slot::Spill(a), Slot::Spill(b)) => a.le(b),
            (a, Slot::Bytes(m)) => a.init_mask() & m == m,
            (Slot::Bytes(_), Slot::Spill(_)) => false,
        }
    }

    fn widen(self, other: Slot, how: Merge) -> Slot {
        match (self, other.join(self)) {
            (Slot::Spill(a), Slot::Spill(j)) if how == Merge::Hard => Slot::Spill(a.widen_hard(j)),
            (Slot::Spill(a), Slot::Spill(j)) => Slot::Spill(a.widen(j)),
            (_, j) => j,
        }
    }

    fn join(self, other: Slot) -> Slot {
        match (self, other) {
            _ if self == other => self,
            (Slot::Spill(a), Slot::Spill(b)) => match a.join(b) {
                // A spill is always of an initialised value, so the join stays initialised.
                Value::NotInit => Slot::Bytes(0xff),
                v => Slot::Spill(v),
            },
            (a, b) => Slot::Bytes(a.init_mask() & b.init_mask()),
        }
    }
}

/// Slots per copy-on-write chunk of a [`Stack`].
const CHUNK: usize = 8;

/// The bits of `live` (bit `i` for slot `i`) that belong to chunk `c`.
fn chunk_bits(live: u64, c: usize) -> u64 {
    (live >> (c * CHUNK)) & ((1 << CHUNK) - 1)
}

/// The 64 slots of one frame's stack, copy-on-write in chunks of [`CHUNK`] slots: cloning a
/// state (at every branch, and wherever a state is both kept and walked on) shares the chunks,
/// and the first write into a shared chunk through [`IndexMut`] copies that chunk only
/// ([`Rc::make_mut`]). So a path copies what it changes (a spill refined on both edges of a
/// branch copies one chunk per edge, not the whole stack), and chunks that are one allocation
/// are known equal without comparing them ([`Stack::shares_slot`]): joins, the covering test
/// and map renaming skip the parts of two states that no path changed since they parted.
/// Code that may or may not write should read first: taking `&mut` of a slot copies its
/// chunk if it is shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stack([Rc<[Slot; CHUNK]>; SLOTS / CHUNK]);

impl Stack {
    fn empty() -> Stack {
        let chunk = Rc::new([Slot::EMPTY; CHUNK]);
        Stack(std::array::from_fn(|_| Rc::clone(&chunk)))
    }

    /// Whether slot `i` lies in a chunk both share (then it is equal in both).
    pub(crate) fn shares_slot(&self, other: &Stack, i: usize) -> bool {
        Rc::ptr_eq(&self.0[i / CHUNK], &other.0[i / CHUNK])
    }

    /// The number of slots.
    pub(crate) const fn len(&self) -> usize {
        SLOTS
    }

    /// Every slot, from `r10 - 8` down.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.0.iter().flat_map(|c| c.iter())
    }

    /// Empties every slot whose bit in `live` is clear (bit `i` for slot `i`), writing (and so
    /// copying) only the chunks holding a slot that is not empty yet.
    pub(crate) fn forget(&mut self, live: u64) {
        for (c, chunk) in self.0.iter_mut().enumerate() {
            let dead = !(live >> (c * CHUNK)) as u8;
            if dead == 0 {
                continue;
            }
            let stale = |i: usize, s: &Slot| dead & (1 << i) != 0 && *s != Slot::EMPTY;
            if chunk.iter().enumerate().any(|(i, s)| stale(i, s)) {
                for (i, s) in Rc::make_mut(chunk).iter_mut().enumerate() {
                    if dead & (1 << i) != 0 {
                        *s = Slot::EMPTY;
                    }
                }
            }
        }
    }

    /// The chunks, for merges that skip shared ones.
    fn chunks(&self) -> &[Rc<[Slot; CHUNK]>; SLOTS / CHUNK] {
        &self.0
    }

    /// The slots live by `live` (bit `i` for slot `i`) that may differ between `self` and
    /// `other`, with their index: those of the chunks the two do not share. A chunk both
    /// share, or with no live slot, is skipped whole.
    pub(crate) fn unshared<'s>(
        &'s self,
        other: &'s Stack,
        live: u64,
    ) -> impl Iterator<Item = (usize, &'s Slot, &'s Slot)> {
        self.0
            .iter()
            .zip(&other.0)
            .enumerate()
            .filter(move |(c, (a, b))| chunk_bits(live, *c) != 0 && !Rc::ptr_eq(a, b))
            .flat_map(move |(c, (a, b))| {
                a.iter()
                    .zip(b.iter())
                    .enumerate()
                    .filter_map(move |(k, (x, y))| {
                        let i = c * CHUNK + k;
                        (live & (1 << i) != 0).then_some((i, x, y))
                    })
            })
    }

    /// Replaces each spilled value for which `f` gives a new one, copying only the chunks
    /// it writes into.
    fn rewrite_spills(&mut self, f: &mut impl FnMut(&Value) -> Option<Value>) {
        for chunk in &mut self.0 {
            for k in 0..CHUNK {
                if let Slot::Spill(x) = &chunk[k]
                    && let Some(y) = f(x)
                {
                    Rc::make_mut(chunk)[k] = Slot::Spill(y);
                }
            }
        }
    }
}

impl Index<usize> for Stack {
    type Output = Slot;

    fn index(&self, i: usize) -> &Slot {
        &self.0[i / CHUNK][i % CHUNK]
    }
}

impl IndexMut<usize> for Stack {
    fn index_mut(&mut self, i: usize) -> &mut Slot {
        &mut Rc::make_mut(&mut self.0[i / CHUNK])[i % CHUNK]
    }
}

/// One call level: its registers and its 512-byte stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) regs: [Value; 11],
    /// `stack[i]` covers `[r10 - 8(i+1), r10 - 8i)`.
    pub(crate) stack: Stack,
}

impl Frame {
    pub(crate) fn new(regs: [Value; 11]) -> Frame {
        Frame {
            regs,
            stack: Stack::empty(),
        }
    }
}

/// The abstract state at one pc in one calling context.
///
/// A state always has a frame, the running function's: its frames are the callers' (none at
/// depth 0) and that one, so no state is ever without a current frame.
///
/// Boxed whole ([`Parts`], reached through `Deref`): a state moves several times per
/// processed instruction (into and out of the transfer function, along edges, into the
/// worklist), and a pointer moves without a copy of its parts; a clone (one per branch, and
/// per kept state walked on) is one allocation, as the boxed running frame was before.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct State(Box<Parts>);

impl std::ops::Deref for State {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl std::ops::DerefMut for State {
    fn deref_mut(&mut self) -> &mut Parts {
        &mut self.0
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a [`State`] holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parts {
    /// The callers' frames, outermost first.
    callers: Vec<Frame>,
    /// The running function's frame.
    top: Frame,
    /// Bytes from the packet start proven to lie below `data_end`.
    pub(crate) pkt: u64,
    /// Per packet-pointer id (increasing ids, no duplicates): `(id, n)` proves that
    /// `data + V + n <= data_end` for that id's `V` (see [`PtrKind::Packet`]).
    pub(crate) pkt_ids: Vec<(u32, u64)>,
    /// Pairs `(z, x)` of packet ids (increasing, no duplicates) with `V_x <= V_z` on every
    /// path: a join that shifted copies of `x` differently made `z` for them (see
    /// `relate_packets`), so `data + V_z + n <= data_end` proves the same `n` for `x` (the
    /// kernel reaches the same by giving the range to every pointer of one id on each path).
    pub(crate) pkt_below: Vec<(u32, u32)>,
    /// Bytes from `data_meta` proven to lie below `data`.
    pub(crate) meta: u64,
    /// The ring buffer records held (`Strict` mode only; see `refs.rs`). Joined in
    /// `merge_with` (a record held on one side only is held on some paths), and part of `le`
    /// as an equality: a state holding other records covers nothing of this one.
    pub(crate) refs: crate::refs::Refs,
}

impl State {
    /// A state at depth 0 with the frame `top`, nothing proven of the packet.
    pub(crate) fn new(top: Frame) -> State {
        State(Box::new(Parts {
            callers: Vec::new(),
            top,
            pkt: 0,
            pkt_ids: Vec::new(),
            pkt_below: Vec::new(),
            meta: 0,
            refs: crate::refs::Refs::default(),
        }))
    }

    /// The running function's frame.
    pub(crate) fn cur(&self) -> &Frame {
        &self.top
    }

    pub(crate) fn cur_mut(&mut self) -> &mut Frame {
        &mut self.top
    }

    /// The current depth (0 = outermost).
    pub(crate) fn depth(&self) -> usize {
        self.callers.len()
    }

    /// The number of frames, the running function's included.
    pub(crate) fn frame_count(&self) -> usize {
        self.callers.len() + 1
    }

    /// The frame at `level` (0 = outermost), if the state has one there.
    pub(crate) fn frame(&self, level: usize) -> Option<&Frame> {
        match level.cmp(&self.callers.len()) {
            std::cmp::Ordering::Less => self.callers.get(level),
            std::cmp::Ordering::Equal => Some(&self.top),
            std::cmp::Ordering::Greater => None,
        }
    }

    pub(crate) fn frame_mut(&mut self, level: usize) -> Option<&mut Frame> {
        let p = &mut *self.0;
        match level.cmp(&p.callers.len()) {
            std::cmp::Ordering::Less => p.callers.get_mut(level),
            std::cmp::Ordering::Equal => Some(&mut p.top),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// Every frame, outermost first.
    pub(crate) fn frames(&self) -> impl Iterator<Item = &Frame> {
        self.callers.iter().chain(std::iter::once(&self.top))
    }

    pub(crate) fn frames_mut(&mut self) -> impl Iterator<Item = &mut Frame> {
        let p = &mut *self.0;
        p.callers.iter_mut().chain(std::iter::once(&mut p.top))
    }

    /// Replaces each register and spilled value, in every frame, for which `f` gives a new
    /// one (copies of a checked pointer, a dropped relation); slots it leaves stay shared.
    pub(crate) fn rewrite_values(&mut self, mut f: impl FnMut(&Value) -> Option<Value>) {
        for fr in self.frames_mut() {
            for r in fr.regs.iter_mut() {
                if let Some(y) = f(r) {
                    *r = y;
                }
            }
            fr.stack.rewrite_spills(&mut f);
        }
    }

    /// Enters a call: `frame` becomes the running function's.
    pub(crate) fn push_frame(&mut self, frame: Frame) {
        let p = &mut *self.0;
        let caller = std::mem::replace(&mut p.top, frame);
        p.callers.push(caller);
    }

    /// Returns from a call: the caller's frame runs again, and the callee's is handed back.
    /// `None` (the state unchanged) at depth 0, which has no caller.
    pub(crate) fn pop_frame(&mut self) -> Option<Frame> {
        let p = &mut *self.0;
        let caller = p.callers.pop()?;
        Some(std::mem::replace(&mut p.top, caller))
    }

    /// Joins `other` into `self`; returns whether `self` changed. Both states belong to the same
    /// calling context, so they have as many frames. This is the one place where information
    /// from different paths is merged; widening (once ranges exist) belongs here too.
    pub(crate) fn join(&mut self, other: &State) -> bool {
        self.merge_with(other, Merge::Join)
    }

    fn merge_with(&mut self, other: &State, how: Merge) -> bool {
        self.merge_live(other, how, &[])
    }

    /// Forgets what `live` says no path reads again: per frame (outermost first; a frame
    /// past its end is wholly live), the registers whose bit is clear become uninitialised and
    /// the stack slots whose bit is clear empty.
    pub(crate) fn forget(&mut self, live: &[(u16, u64)]) {
        for (f, &(regs, stack)) in self.frames_mut().zip(live) {
            for (r, v) in f.regs.iter_mut().enumerate() {
                if regs & (1 << r) == 0 && *v != Value::NotInit {
                    *v = Value::NotInit;
                }
            }
            if stack != u64::MAX {
                f.stack.forget(stack);
            }
        }
    }

    /// [`State::join`] or [`State::merge_live`] (as `how` says) of a state in which what `live`
    /// says is dead ([`State::forget`]) is already forgotten: dead registers and slots of
    /// `other` are skipped, so they neither change `self` nor count as a change.
    pub(crate) fn merge_live(&mut self, other: &State, how: Merge, live: &[(u16, u64)]) -> bool {
        debug_assert_eq!(self.depth(), other.depth());
        let mut changed = false;
        for (level, (a, b)) in self.frames_mut().zip(other.frames()).enumerate() {
            let (regs, stack) = live.get(level).copied().unwrap_or((u16::MAX, u64::MAX));
            for (r, (ra, rb)) in a.regs.iter_mut().zip(&b.regs).enumerate() {
                // Equal values join to themselves (widening is left to compute: it is the
                // identity there only for tnums in normal form).
                if regs & (1 << r) == 0 || (how == Merge::Join && ra == rb) {
                    continue;
                }
                let j = match how {
                    Merge::Join => ra.join(*rb),
                    Merge::Widen => ra.widen(*rb),
                    Merge::Hard => ra.widen_hard(*rb),
                };
                changed |= j != *ra;
                *ra = j;
            }
            // Chunks shared since the states parted are equal, and a slot merged with itself
            // is itself, widening included (tnums stay in normal form: `scalar.rs` tests it).
            // A shared chunk is written (and so copied) only where the merge changes a slot.
            for c in 0..SLOTS / CHUNK {
                if Rc::ptr_eq(&a.stack.chunks()[c], &b.stack.chunks()[c]) {
                    continue;
                }
                for i in c * CHUNK..(c + 1) * CHUNK {
                    if stack & (1 << i) == 0 {
                        continue;
                    }
                    let (sa, sb) = (&a.stack[i], &b.stack[i]);
                    if how == Merge::Join && sa == sb {
                        continue;
                    }
                    let j = match how {
                        Merge::Join => sa.join(*sb),
                        how => sa.widen(*sb, how),
                    };
                    if j != *sa {
                        changed = true;
                        a.stack[i] = j;
                    }
                }
            }
        }
        // Proven packet lengths only shrink; a stable head gives up one that moves at once,
        // rather than one byte per round.
        let hard = how == Merge::Hard;
        let pkt = match self.pkt.min(other.pkt) {
            p if hard && p != self.pkt => 0,
            p => p,
        };
        changed |= pkt != self.pkt;
        self.pkt = pkt;
        let meta = match self.meta.min(other.meta) {
            m if hard && m != self.meta => 0,
            m => m,
        };
        changed |= meta != self.meta;
        self.meta = meta;
        changed |= self.refs.join(&other.refs);
        if self.pkt_below != other.pkt_below {
            // Only what holds on both sides.
            let before = self.pkt_below.len();
            self.pkt_below
                .retain(|e| other.pkt_below.binary_search(e).is_ok());
            changed |= self.pkt_below.len() != before;
        }
        if hard && self.pkt_ids != other.pkt_ids && !self.pkt_ids.is_empty() {
            self.pkt_ids.clear();
            self.pkt_below.clear();
            return true;
        }
        // Only what both sides proved, for ids both sides know.
        if self.pkt_ids != other.pkt_ids {
            let before = self.pkt_ids.len();
            let mut lowered = false;
            self.pkt_ids.retain_mut(|(id, n)| {
                match other.pkt_ids.binary_search_by_key(id, |e| e.0) {
                    Ok(i) => {
                        let m = other.pkt_ids[i].1;
                        lowered |= m < *n;
                        *n = (*n).min(m);
                        true
                    }
                    Err(_) => false,
                }
            });
            changed |= lowered || self.pkt_ids.len() != before;
        }
        changed
    }

    /// What is proven of the pointers with packet id `id`: `data + V + n <= data_end`.
    pub(crate) fn pkt_range(&self, id: u32) -> u64 {
        match self.pkt_ids.binary_search_by_key(&id, |e| e.0) {
            Ok(i) if id != 0 => self.pkt_ids[i].1,
            _ => 0,
        }
    }

    /// Records `data + V + n <= data_end` for packet id `id` and every id below it
    /// ([`State::pkt_below`]), forgetting ids no register or spill holds any more (so the
    /// lists stay as short as the live pointers).
    pub(crate) fn prove_pkt_range(&mut self, id: u32, n: u64) {
        if id == 0 {
            return;
        }
        // `pkt_below` pairs go from a newer id to an older one: the walk ends.
        let mut todo = vec![id];
        while let Some(z) = todo.pop() {
            match self.pkt_ids.binary_search_by_key(&z, |e| e.0) {
                Ok(i) => self.pkt_ids[i].1 = self.pkt_ids[i].1.max(n),
                Err(i) => self.pkt_ids.insert(i, (z, n)),
            }
            todo.extend(
                self.pkt_below
                    .iter()
                    .filter(|e| e.0 == z && e.1 < z)
                    .map(|e| e.1),
            );
        }
        let live = |st: &State, id: u32| {
            let holds =
                |v: &Value| matches!(v, Value::Ptr(PtrKind::Packet { id: x }, _) if *x == id);
            st.frames().any(|f| {
                f.regs.iter().any(holds)
                    || f.stack
                        .iter()
                        .any(|s| matches!(s, Slot::Spill(v) if holds(v)))
            })
        };
        let ids: Vec<u32> = self.pkt_ids.iter().map(|e| e.0).collect();
        for x in ids {
            if x != id && !live(self, x) {
                self.pkt_ids.retain(|e| e.0 != x);
            }
        }
        let dead: Vec<(u32, u32)> = (self.pkt_below.iter().copied())
            .filter(|&(z, x)| !live(self, z) || !live(self, x))
            .collect();
        self.pkt_below.retain(|e| !dead.contains(e));
    }

    /// Records `V_x <= V_z` for packet ids `x` and `z` (see [`State::pkt_below`]).
    pub(crate) fn pkt_id_below(&mut self, z: u32, x: u32) {
        if x == 0 || x >= z {
            return;
        }
        if let Err(i) = self.pkt_below.binary_search(&(z, x)) {
            self.pkt_below.insert(i, (z, x));
        }
    }

    /// After a helper that may move or resize the packet: every packet and packet-end pointer
    /// in every frame's registers becomes `reg` and every such spill becomes the stack bytes
    /// `slot`, and nothing about the packet's length is proven any more (the program must
    /// load `data` and `data_end` again).
    pub(crate) fn forget_packet(&mut self, reg: Value, slot: Slot) {
        let stale = |v: &Value| {
            matches!(
                v,
                Value::Ptr(
                    PtrKind::Packet { .. } | PtrKind::PacketEnd | PtrKind::PacketMeta,
                    _
                )
            )
        };
        for f in self.frames_mut() {
            for r in f.regs.iter_mut().filter(|r| stale(r)) {
                *r = reg;
            }
            for i in 0..SLOTS {
                if matches!(&f.stack[i], Slot::Spill(v) if stale(v)) {
                    f.stack[i] = slot;
                }
            }
        }
        self.pkt = 0;
        self.pkt_ids.clear();
        self.pkt_below.clear();
        self.meta = 0;
    }

    /// Whether every concrete state `self` stands for is one `other` stands for.
    pub(crate) fn le(&self, other: &State) -> bool {
        self.depth() == other.depth()
            && self.pkt >= other.pkt
            && self.meta >= other.meta
            && self.refs == other.refs
            && self.frames().zip(other.frames()).all(|(a, b)| {
                a.regs.iter().zip(&b.regs).all(|(x, y)| x.le(*y))
                    && a.stack.chunks().iter().zip(b.stack.chunks()).all(|(x, y)| {
                        Rc::ptr_eq(x, y) || x.iter().zip(y.iter()).all(|(x, y)| x.le(*y))
                    })
            })
    }

    /// Every register and spill holding a scalar with this id becomes `s` (whose id it is),
    /// moved by the difference of their deltas ([`Scalar::delta`]).
    pub(crate) fn set_id(&mut self, id: u32, s: Scalar) {
        // A copy with another delta gets `s` moved by the difference, met with what it knew.
        let linked = |x: &Scalar| {
            if x.delta == s.delta {
                s
            } else {
                let m = s.moved_to(x.delta);
                m.meet(x).unwrap_or(m)
            }
        };
        for f in self.frames_mut() {
            for r in f.regs.iter_mut() {
                if let Value::Scalar(x) = r
                    && x.id == id
                {
                    *x = linked(x);
                }
            }
            // A spill the link leaves as it is is not written: its chunk stays shared.
            f.stack.rewrite_spills(&mut |v: &Value| match v {
                Value::Scalar(x) if x.id == id => {
                    let y = linked(x);
                    (y != *x).then_some(Value::Scalar(y))
                }
                _ => None,
            });
        }
    }

    /// Forgets every spilled value in every frame: some store the analysis cannot place may have
    /// overwritten any of them. Initialised bytes stay initialised (they still hold *some*
    /// bytes), uninitialised ones stay uninitialised (reading them stays suspect).
    pub(crate) fn havoc(&mut self) {
        self.havoc_keeping(|_| false);
    }

    /// [`State::havoc`], keeping the spills of values `keep` accepts (the context pointer,
    /// whose accesses stay guarded then: see `context.rs`).
    pub(crate) fn havoc_keeping(&mut self, keep: impl Fn(Value) -> bool) {
        for f in self.frames_mut() {
            for i in 0..SLOTS {
                if let Slot::Spill(v) = f.stack[i]
                    && !keep(v)
                {
                    f.stack[i] = Slot::Bytes(0xff);
                }
            }
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            if first {
                first = false;
                Ok(())
            } else {
                write!(f, " ")
            }
        };
        let top = self.depth();
        for (r, v) in self.cur().regs.iter().enumerate() {
            if *v != Value::NotInit {
                sep(f)?;
                write!(f, "r{r}={v}")?;
            }
        }
        for (d, fr) in self.frames().enumerate() {
            for (i, s) in fr.stack.iter().enumerate() {
                let at = -8 * (i as i64 + 1);
                match s {
                    Slot::Bytes(0) => {}
                    Slot::Bytes(m) => {
                        sep(f)?;
                        write!(f, "fp{d}{at}=bytes({m:#04x})")?;
                    }
                    Slot::Spill(v) => {
                        sep(f)?;
                        write!(f, "fp{d}{at}={v}")?;
                    }
                }
            }
        }
        if self.pkt > 0 {
            sep(f)?;
            write!(f, "pkt_range={}", self.pkt)?;
        }
        if self.meta > 0 {
            sep(f)?;
            write!(f, "meta_range={}", self.meta)?;
        }
        for (id, n) in &self.pkt_ids {
            sep(f)?;
            write!(f, "pkt_range(id {id})={n}")?;
        }
        for (z, x) in &self.pkt_below {
            sep(f)?;
            write!(f, "pkt_id {x}<={z}")?;
        }
        if !self.refs.is_empty() {
            sep(f)?;
            write!(f, "{}", self.refs)?;
        }
        if top > 0 {
            sep(f)?;
            write!(f, "(depth {top})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state whose stack holds spills in several chunks, at depth 1.
    fn spilled() -> State {
        let mut st = State::new(Frame::new([Value::konst(7); 11]));
        for i in [0, 9, 20, 63] {
            st.cur_mut().stack[i] = Slot::Spill(Value::konst(i as u64));
        }
        st.push_frame(Frame::new([Value::NotInit; 11]));
        st.cur_mut().stack[3] = Slot::Bytes(0x0f);
        st
    }

    #[test]
    fn copy_on_write_stacks_copy_only_what_a_path_writes() {
        let a = spilled();
        let mut b = a.clone();
        // Shared after the clone: every slot, in every frame.
        for (fa, fb) in a.frames().zip(b.frames()) {
            assert!((0..SLOTS).all(|i| fa.stack.shares_slot(&fb.stack, i)));
        }
        b.frame_mut(0).unwrap().stack[9] = Slot::Spill(Value::UNKNOWN_SCALAR);
        // The write copied its chunk only, and the original kept its value.
        assert_eq!(a.frame(0).unwrap().stack[9], Slot::Spill(Value::konst(9)));
        assert_eq!(
            b.frame(0).unwrap().stack[9],
            Slot::Spill(Value::UNKNOWN_SCALAR)
        );
        let (fa, fb) = (a.frame(0).unwrap(), b.frame(0).unwrap());
        for i in 0..SLOTS {
            assert_eq!(
                fa.stack.shares_slot(&fb.stack, i),
                i / CHUNK != 1,
                "slot {i}"
            );
        }
        // Joins and covering see the written slot, whichever side is shared.
        assert!(a.le(&b) && !b.le(&a));
        let mut j = a.clone();
        assert!(j.join(&b));
        assert_eq!(j, b);
        let mut j = b.clone();
        assert!(!j.join(&a));
        assert_eq!(j, b);
        // Reads and forgetting leave a shared stack shared when nothing changes.
        let mut c = a.clone();
        c.set_id(12345, Scalar::UNKNOWN);
        c.forget_packet(Value::NotInit, Slot::EMPTY);
        for (fa, fc) in a.frames().zip(c.frames()) {
            assert!((0..SLOTS).all(|i| fa.stack.shares_slot(&fc.stack, i)));
        }
        c.havoc();
        assert_eq!(c.frame(0).unwrap().stack[20], Slot::Bytes(0xff));
        assert_eq!(a.frame(0).unwrap().stack[20], Slot::Spill(Value::konst(20)));
        assert!(a.le(&c) && !c.le(&a));
    }

    #[test]
    fn joins_up_to_liveness_skip_what_no_path_reads() {
        let mut a = spilled();
        a.cur_mut().regs[3] = Value::konst(3);
        a.cur_mut().regs[4] = Value::konst(1);
        let mut b = a.clone();
        b.cur_mut().regs[3] = Value::konst(4);
        b.frame_mut(0).unwrap().stack[9] = Slot::Spill(Value::UNKNOWN_SCALAR);
        b.cur_mut().regs[4] = Value::konst(9);
        // Outermost frame: every register live but slot 9 dead; running frame: r3 dead.
        let live = [(u16::MAX, !(1u64 << 9)), (!(1u16 << 3), u64::MAX)];
        let mut stored = a.clone();
        stored.forget(&live);
        assert_eq!(stored.cur().regs[3], Value::NotInit);
        assert_eq!(stored.frame(0).unwrap().stack[9], Slot::EMPTY);
        assert_eq!(
            stored.frame(0).unwrap().stack[20],
            a.frame(0).unwrap().stack[20]
        );
        // What differs only in dead values changes nothing; a live difference still joins.
        let mut c = b.clone();
        c.cur_mut().regs[4] = a.cur().regs[4];
        assert!(!stored.clone().merge_live(&c, Merge::Join, &live));
        assert!(stored.merge_live(&b, Merge::Join, &live));
        assert_eq!(stored.cur().regs[3], Value::NotInit);
        assert_eq!(stored.cur().regs[4], a.cur().regs[4].join(Value::konst(9)));
        assert_eq!(stored.frame(0).unwrap().stack[9], Slot::EMPTY);
        // Without masks, every value is live.
        assert!(a.clone().merge_live(&c, Merge::Join, &[]));
    }

    #[test]
    fn join_goes_up_and_is_commutative() {
        let vals = [
            Value::NotInit,
            Value::konst(1),
            Value::konst(2),
            Value::UNKNOWN_SCALAR,
            Value::Ptr(PtrKind::Stack { frame: 0 }, Off::known(-8)),
            Value::Ptr(PtrKind::Stack { frame: 0 }, Off::known(-16)),
            Value::Ptr(PtrKind::Stack { frame: 1 }, Off::known(-8)),
            Value::Ptr(PtrKind::INPUT, Off::Unknown),
            Value::Ptr(
                PtrKind::MapValue {
                    map: MapRef::Fd(1),
                    nullable: true,
                    id: 0,
                    record: None,
                },
                Off::known(0),
            ),
            Value::Ptr(
                PtrKind::MapValue {
                    map: MapRef::Fd(1),
                    nullable: false,
                    id: 0,
                    record: None,
                },
                Off::known(0),
            ),
            // Two lookups' results: their join is a nullable pointer of no lookup.
            Value::Ptr(
                PtrKind::MapValue {
                    map: MapRef::Fd(1),
                    nullable: true,
                    id: 3,
                    record: None,
                },
                Off::known(0),
            ),
            Value::Ptr(
                PtrKind::MapValue {
                    map: MapRef::Fd(1),
                    nullable: true,
                    id: 4,
                    record: None,
                },
                Off::known(0),
            ),
            Value::MapHandle(MapRef::Fd(1)),
            Value::Mixed { input: false },
            Value::Mixed { input: true },
        ];
        for a in vals {
            assert_eq!(a.join(a), a);
            for b in vals {
                let j = a.join(b);
                assert_eq!(j, b.join(a), "{a} {b}");
                // Joining again with either side changes nothing: j is an upper bound.
                assert_eq!(j.join(a), j, "{a} {b}");
                assert_eq!(j.join(b), j, "{a} {b}");
            }
        }
        let Value::Scalar(j) = Value::konst(1).join(Value::konst(2)) else {
            panic!("scalars join to a scalar")
        };
        assert_eq!((j.umin, j.umax), (1, 2));
        assert_eq!(
            Value::Ptr(PtrKind::INPUT, Off::known(1))
                .join(Value::Ptr(PtrKind::INPUT, Off::known(2))),
            Value::Ptr(PtrKind::INPUT, Off::Range(1, 2))
        );
        for a in vals {
            for b in vals {
                let j = a.join(b);
                assert!(a.le(j) && b.le(j), "{a} {b} {j}");
                let w = a.widen(b);
                assert!(j.le(w), "{a} {b} {w}");
                let h = a.widen_hard(b);
                assert!(j.le(h), "{a} {b} {h}");
                // Stable: a second arrival of either changes nothing.
                assert_eq!(h.widen_hard(a), h, "{a} {b}");
                assert_eq!(h.widen_hard(b), h, "{a} {b}");
            }
        }
    }

    #[test]
    fn a_lookup_id_survives_a_join_only_where_both_sides_have_it() {
        let v = |nullable, id| {
            Value::Ptr(
                PtrKind::MapValue {
                    map: MapRef::Idx(0),
                    nullable,
                    id,
                    record: None,
                },
                Off::known(0),
            )
        };
        assert_eq!(v(true, 3).join(v(true, 3)), v(true, 3));
        assert_eq!(v(true, 3).join(v(true, 4)), v(true, 0));
        assert_eq!(v(true, 3).join(v(false, 0)), v(true, 0));
        // Ids only add precision: the loop check covers across them.
        assert!(v(true, 3).le(v(true, 4)) && v(false, 0).le(v(true, 4)));
        assert!(!v(true, 3).le(v(false, 0)));
    }

    #[test]
    fn slot_join_keeps_only_common_knowledge() {
        let p = Slot::Spill(Value::Ptr(PtrKind::INPUT, Off::known(0)));
        assert_eq!(p.join(Slot::Bytes(0x0f)), Slot::Bytes(0x0f));
        assert_eq!(
            p.join(Slot::Spill(Value::konst(3))),
            Slot::Spill(Value::Mixed { input: true })
        );
        assert_eq!(Slot::Bytes(0xf0).join(Slot::Bytes(0x3c)), Slot::Bytes(0x30));
    }

    #[test]
    fn a_state_keeps_its_running_frame_and_reaches_frames_by_level() {
        let frame = |r0: u64| Frame::new([Value::konst(r0); 11]);
        let mut st = State::new(frame(0));
        assert_eq!((st.depth(), st.frame_count()), (0, 1));
        assert_eq!(
            st.pop_frame(),
            None,
            "the outermost frame has no caller to return to"
        );
        assert_eq!(st.frame_count(), 1);
        st.push_frame(frame(1));
        st.push_frame(frame(2));
        assert_eq!((st.depth(), st.frame_count()), (2, 3));
        assert_eq!(st.cur().regs[0], Value::konst(2));
        let r0 = |f: Option<&Frame>| f.map(|f| f.regs[0]);
        assert_eq!(r0(st.frame(0)), Some(Value::konst(0)));
        assert_eq!(r0(st.frame(1)), Some(Value::konst(1)));
        assert_eq!(r0(st.frame(2)), Some(Value::konst(2)));
        assert_eq!(r0(st.frame(3)), None);
        assert!(st.frame_mut(3).is_none());
        let levels: Vec<Value> = st.frames().map(|f| f.regs[0]).collect();
        assert_eq!(levels, [0, 1, 2].map(Value::konst));
        assert_eq!(st.pop_frame().map(|f| f.regs[0]), Some(Value::konst(2)));
        assert_eq!(st.cur().regs[0], Value::konst(1));
        assert_eq!(st.pop_frame().map(|f| f.regs[0]), Some(Value::konst(1)));
        assert_eq!(st.pop_frame(), None);
        assert_eq!(st.cur().regs[0], Value::konst(0));
    }
}
