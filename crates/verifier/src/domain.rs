//! The abstract domain: what the verifier knows about each register and stack byte at a pc.
//!
//! A [`State`] is one frame per active call level, each with eleven register [`Value`]s and a
//! stack of 64 eight-byte [`Slot`]s. States meet at join points through [`State::join`], the
//! one place where information is merged (and, once ranges exist, widened).
//!
//! # Invariants
//! - The lattice has finite height: scalars are "known constant" or "unknown", pointer offsets
//!   "known" or "unknown", stack bytes "initialised" or not, so every ascending chain of joins
//!   stabilises and the fixpoint terminates without widening.
//! - A `Value::Ptr` with a known offset is exact: at run time the register holds precisely the
//!   base of that region plus that offset, on every path reaching the pc. The per-instruction
//!   "proven" facts rest on this, so anything that may change a tracked stack slot behind the
//!   analysis' back (an unproven store, a helper writing memory) must call [`State::havoc`].

use crate::config::MapRef;
use bpfx_exec::STACK_FRAME_SIZE;
use std::fmt;

/// Number of 8-byte slots in a frame.
pub(crate) const SLOTS: usize = STACK_FRAME_SIZE / 8;

/// What is known of a scalar: a constant, or nothing. Ranges and known bits slot in here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Scalar {
    pub(crate) konst: Option<u64>,
}

impl Scalar {
    pub(crate) const UNKNOWN: Scalar = Scalar { konst: None };

    pub(crate) const fn known(v: u64) -> Scalar {
        Scalar { konst: Some(v) }
    }

    fn join(self, other: Scalar) -> Scalar {
        if self == other { self } else { Scalar::UNKNOWN }
    }
}

/// A pointer's offset from the start (or, for the stack, the top) of its region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Off {
    Known(i64),
    Unknown,
}

/// Offsets beyond this magnitude are forgotten rather than tracked, so arithmetic on them never
/// overflows and no access through them is ever proven.
const MAX_TRACKED_OFF: i64 = 1 << 29;

impl Off {
    /// `self + delta` when both are known and the result stays trackable.
    pub(crate) fn add(self, delta: Option<i64>) -> Off {
        match (self, delta) {
            (Off::Known(a), Some(d)) => match a.checked_add(d) {
                Some(s) if s.unsigned_abs() <= MAX_TRACKED_OFF as u64 => Off::Known(s),
                _ => Off::Unknown,
            },
            _ => Off::Unknown,
        }
    }

    fn join(self, other: Off) -> Off {
        if self == other { self } else { Off::Unknown }
    }
}

/// The region a pointer points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PtrKind {
    /// The stack frame of call level `frame` (0 = outermost); offsets are relative to its `r10`.
    Stack { frame: u32 },
    /// The input memory (or context struct).
    Input,
    /// A value of a map; `nullable` until a comparison with 0 has ruled null out.
    MapValue { map: MapRef, nullable: bool },
    /// Packet data.
    Packet,
    /// The end of the packet (never dereferenceable).
    PacketEnd,
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
    /// Initialised, but of different types on different paths.
    Mixed,
}

impl Value {
    pub(crate) const UNKNOWN_SCALAR: Value = Value::Scalar(Scalar::UNKNOWN);

    pub(crate) const fn konst(v: u64) -> Value {
        Value::Scalar(Scalar::known(v))
    }

    pub(crate) fn is_pointer_like(self) -> bool {
        matches!(self, Value::Ptr(..) | Value::MapHandle(_) | Value::Mixed)
    }

    pub(crate) fn join(self, other: Value) -> Value {
        use Value::*;
        match (self, other) {
            _ if self == other => self,
            (NotInit, _) | (_, NotInit) => NotInit,
            (Scalar(a), Scalar(b)) => Scalar(a.join(b)),
            (Ptr(ka, oa), Ptr(kb, ob)) => match (ka, kb) {
                _ if ka == kb => Ptr(ka, oa.join(ob)),
                (
                    PtrKind::MapValue {
                        map: ma,
                        nullable: na,
                    },
                    PtrKind::MapValue {
                        map: mb,
                        nullable: nb,
                    },
                ) if ma == mb => Ptr(
                    PtrKind::MapValue {
                        map: ma,
                        nullable: na || nb,
                    },
                    oa.join(ob),
                ),
                _ => Mixed,
            },
            _ => Mixed,
        }
    }

    /// A short description for error messages: "a scalar", "a pointer to the stack", ….
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Value::NotInit => "not initialised",
            Value::Scalar(_) => "a scalar",
            Value::Ptr(PtrKind::Stack { .. }, _) => "a pointer to the stack",
            Value::Ptr(PtrKind::Input, _) => "a pointer to the input memory",
            Value::Ptr(PtrKind::MapValue { nullable: true, .. }, _) => {
                "a map value pointer that may be null"
            }
            Value::Ptr(PtrKind::MapValue { .. }, _) => "a pointer to a map value",
            Value::Ptr(PtrKind::Packet, _) => "a packet pointer",
            Value::Ptr(PtrKind::PacketEnd, _) => "the packet end pointer",
            Value::MapHandle(_) => "a map handle",
            Value::Mixed => "a pointer on some paths and a scalar or another pointer on others",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off = |f: &mut fmt::Formatter<'_>, o: &Off| match o {
            Off::Known(v) if *v < 0 => write!(f, "{v}"),
            Off::Known(v) => write!(f, "+{v}"),
            Off::Unknown => write!(f, "+?"),
        };
        match self {
            Value::NotInit => write!(f, "uninit"),
            Value::Scalar(Scalar { konst: Some(k) }) => write!(f, "{:#x}", k),
            Value::Scalar(Scalar { konst: None }) => write!(f, "scalar"),
            Value::Ptr(k, o) => {
                match k {
                    PtrKind::Stack { frame } => write!(f, "fp{frame}")?,
                    PtrKind::Input => write!(f, "input")?,
                    PtrKind::MapValue { map, nullable } => {
                        let q = if *nullable { "_or_null" } else { "" };
                        match map {
                            MapRef::Fd(n) => write!(f, "map_value{q}(fd {n})")?,
                            MapRef::Idx(n) => write!(f, "map_value{q}(idx {n})")?,
                        }
                    }
                    PtrKind::Packet => write!(f, "pkt")?,
                    PtrKind::PacketEnd => write!(f, "pkt_end")?,
                }
                off(f, o)
            }
            Value::MapHandle(MapRef::Fd(n)) => write!(f, "map(fd {n})"),
            Value::MapHandle(MapRef::Idx(n)) => write!(f, "map(idx {n})"),
            Value::Mixed => write!(f, "mixed"),
        }
    }
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

/// One call level: its registers and its 512-byte stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) regs: [Value; 11],
    /// `stack[i]` covers `[r10 - 8(i+1), r10 - 8i)`.
    pub(crate) stack: [Slot; SLOTS],
}

impl Frame {
    pub(crate) fn new(regs: [Value; 11]) -> Frame {
        Frame {
            regs,
            stack: [Slot::EMPTY; SLOTS],
        }
    }
}

/// The abstract state at one pc in one calling context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct State {
    /// Outermost first; the last is the running function's.
    pub(crate) frames: Vec<Frame>,
}

impl State {
    pub(crate) fn cur(&self) -> &Frame {
        self.frames.last().expect("a state has at least one frame")
    }

    pub(crate) fn cur_mut(&mut self) -> &mut Frame {
        self.frames
            .last_mut()
            .expect("a state has at least one frame")
    }

    /// The current depth (0 = outermost).
    pub(crate) fn depth(&self) -> usize {
        self.frames.len() - 1
    }

    /// Joins `other` into `self`; returns whether `self` changed. Both states belong to the same
    /// calling context, so they have as many frames. This is the one place where information
    /// from different paths is merged; widening (once ranges exist) belongs here too.
    pub(crate) fn join(&mut self, other: &State) -> bool {
        debug_assert_eq!(self.frames.len(), other.frames.len());
        let mut changed = false;
        for (a, b) in self.frames.iter_mut().zip(&other.frames) {
            for (ra, rb) in a.regs.iter_mut().zip(&b.regs) {
                let j = ra.join(*rb);
                changed |= j != *ra;
                *ra = j;
            }
            for (sa, sb) in a.stack.iter_mut().zip(&b.stack) {
                let j = sa.join(*sb);
                changed |= j != *sa;
                *sa = j;
            }
        }
        changed
    }

    /// Forgets every spilled value in every frame: some store the analysis cannot place may have
    /// overwritten any of them. Initialised bytes stay initialised (they still hold *some*
    /// bytes), uninitialised ones stay uninitialised (reading them stays suspect).
    pub(crate) fn havoc(&mut self) {
        for f in &mut self.frames {
            for s in f.stack.iter_mut() {
                if let Slot::Spill(_) = s {
                    *s = Slot::Bytes(0xff);
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
        for (d, fr) in self.frames.iter().enumerate() {
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

    #[test]
    fn join_goes_up_and_is_commutative() {
        let vals = [
            Value::NotInit,
            Value::konst(1),
            Value::konst(2),
            Value::UNKNOWN_SCALAR,
            Value::Ptr(PtrKind::Stack { frame: 0 }, Off::Known(-8)),
            Value::Ptr(PtrKind::Stack { frame: 0 }, Off::Known(-16)),
            Value::Ptr(PtrKind::Stack { frame: 1 }, Off::Known(-8)),
            Value::Ptr(PtrKind::Input, Off::Unknown),
            Value::Ptr(
                PtrKind::MapValue {
                    map: MapRef::Fd(1),
                    nullable: true,
                },
                Off::Known(0),
            ),
            Value::Ptr(
                PtrKind::MapValue {
                    map: MapRef::Fd(1),
                    nullable: false,
                },
                Off::Known(0),
            ),
            Value::MapHandle(MapRef::Fd(1)),
            Value::Mixed,
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
        assert_eq!(Value::konst(1).join(Value::konst(2)), Value::UNKNOWN_SCALAR);
        assert_eq!(
            Value::Ptr(PtrKind::Input, Off::Known(1))
                .join(Value::Ptr(PtrKind::Input, Off::Known(2))),
            Value::Ptr(PtrKind::Input, Off::Unknown)
        );
    }

    #[test]
    fn slot_join_keeps_only_common_knowledge() {
        let p = Slot::Spill(Value::Ptr(PtrKind::Input, Off::Known(0)));
        assert_eq!(p.join(Slot::Bytes(0x0f)), Slot::Bytes(0x0f));
        assert_eq!(
            p.join(Slot::Spill(Value::konst(3))),
            Slot::Spill(Value::Mixed)
        );
        assert_eq!(Slot::Bytes(0xf0).join(Slot::Bytes(0x3c)), Slot::Bytes(0x30));
    }
}
