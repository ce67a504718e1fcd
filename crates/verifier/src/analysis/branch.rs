//! Conditional jumps: each edge gets its own copy of the state, narrowed by what taking it
//! proves (scalar ranges, null checks, packet bounds); an edge no value can take is not
//! followed (the kernel's dead-branch pruning).

use super::{Analysis, Flow, R};
use crate::domain::{MAX_TRACKED_OFF, Off, PtrKind, Scalar, Slot, State, Value};
use crate::scalar;
use bpfx_bytecode::{Cond, Operand, Pc, Reg, Width};

impl Analysis<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_branch(
        &self,
        pc: Pc,
        st: State,
        width: Width,
        cond: Cond,
        lhs: Reg,
        rhs: Operand,
        next: Pc,
        target: Pc,
    ) -> R<Flow> {
        let l = self.read(pc, &st, lhs)?;
        let (r, rreg) = self.operand(pc, &st, rhs)?;
        let mut taken = st.clone();
        let mut fall = st;
        let t = refine_edge(&mut taken, width, cond, (lhs, l), (rreg, r), true);
        let f = refine_edge(&mut fall, width, cond, (lhs, l), (rreg, r), false);
        Ok(match (f, t) {
            (true, true) => Flow::Fork([(next, fall), (target, taken)]),
            (true, false) => Flow::Next(next, fall),
            (false, true) => Flow::Next(target, taken),
            (false, false) => Flow::Stop,
        })
    }
}

/// Narrows `st` to the runs that take one edge (`holds`: the condition is true) of a jump on
/// `lhs cond rhs`; returns false when no run can.
fn refine_edge(
    st: &mut State,
    width: Width,
    cond: Cond,
    (lreg, l): (Reg, Value),
    (rreg, r): (Option<Reg>, Value),
    holds: bool,
) -> bool {
    let put = |st: &mut State, reg: Reg, x: Scalar| {
        if x.id != 0 {
            st.set_id(x.id, x);
        }
        st.cur_mut().regs[reg.index()] = Value::Scalar(x);
    };
    match (l, r) {
        (Value::Scalar(mut a), Value::Scalar(mut b)) => {
            if !scalar::refine(&mut a, &mut b, width, cond, holds) {
                return false;
            }
            put(st, lreg, a);
            if let Some(x) = rreg {
                put(st, x, b);
            }
            true
        }
        // A null check: the pointer on the not-equal edge, the scalar 0 on the other; and
        // the same for every copy of it (same id) in any register or spill of any frame.
        (
            Value::Ptr(
                PtrKind::MapValue {
                    map,
                    nullable: true,
                    id,
                },
                o,
            ),
            Value::Scalar(z),
        ) if width == Width::W64 && z.konst() == Some(0) && matches!(cond, Cond::Eq | Cond::Ne) => {
            let is_null = (cond == Cond::Eq) == holds;
            let decide = |o: Off| {
                if is_null {
                    Value::konst(0)
                } else {
                    Value::Ptr(
                        PtrKind::MapValue {
                            map,
                            nullable: false,
                            id: 0,
                        },
                        o,
                    )
                }
            };
            st.cur_mut().regs[lreg.index()] = decide(o);
            if id != 0 {
                let copy = |v: &Value| match *v {
                    Value::Ptr(PtrKind::MapValue { id: x, .. }, o) if x == id => Some(o),
                    _ => None,
                };
                for f in st.frames_mut() {
                    for r in f.regs.iter_mut() {
                        if let Some(o) = copy(r) {
                            *r = decide(o);
                        }
                    }
                    for s in f.stack.iter_mut() {
                        if let Slot::Spill(v) = s
                            && let Some(o) = copy(v)
                        {
                            *s = Slot::Spill(decide(o));
                        }
                    }
                }
            }
            true
        }
        // The same for an inner map's handle from a map of maps.
        (Value::MapHandleOrNull(m), Value::Scalar(z))
            if width == Width::W64
                && z.konst() == Some(0)
                && matches!(cond, Cond::Eq | Cond::Ne) =>
        {
            let is_null = (cond == Cond::Eq) == holds;
            st.cur_mut().regs[lreg.index()] = if is_null {
                Value::konst(0)
            } else {
                Value::MapHandle(m)
            };
            true
        }
        // The metadata rule: `meta + lo <= data` (data itself, as loaded from the context)
        // proves `lo` bytes of metadata.
        (Value::Ptr(PtrKind::PacketMeta, o), Value::Ptr(PtrKind::Packet { id: 0 }, d))
        | (Value::Ptr(PtrKind::Packet { id: 0 }, d), Value::Ptr(PtrKind::PacketMeta, o))
            if width == Width::W64 && d.exact() == Some(0) =>
        {
            let Off::Range(lo, _) = o else { return true };
            let c = if matches!(l, Value::Ptr(PtrKind::PacketMeta, _)) {
                cond
            } else {
                cond.swap()
            };
            let below = match (c, holds) {
                (Cond::Lt, true) | (Cond::Ge, false) => Some(1),
                (Cond::Le, true) | (Cond::Gt, false) => Some(0),
                _ => None,
            };
            if let Some(extra) = below
                && lo + extra > 0
                && lo + extra <= MAX_TRACKED_OFF
            {
                st.meta = st.meta.max((lo + extra) as u64);
            }
            true
        }
        // The kernel's packet rule: `pkt + lo <= data_end` proves `lo` bytes of packet, and
        // with a packet id, `data + V + lo <= data_end` for every pointer sharing that `V`.
        (Value::Ptr(PtrKind::Packet { id }, o), Value::Ptr(PtrKind::PacketEnd, _))
        | (Value::Ptr(PtrKind::PacketEnd, _), Value::Ptr(PtrKind::Packet { id }, o))
            if width == Width::W64 =>
        {
            let Off::Range(lo, _) = o else { return true };
            let c = if matches!(l, Value::Ptr(PtrKind::Packet { .. }, _)) {
                cond
            } else {
                cond.swap()
            };
            // Now `pkt c end`; which relation holds on this edge?
            let below = match (c, holds) {
                (Cond::Lt, true) | (Cond::Ge, false) => Some(1),
                (Cond::Le, true) | (Cond::Gt, false) => Some(0),
                _ => None,
            };
            if let Some(extra) = below
                && lo + extra > 0
                && lo + extra <= MAX_TRACKED_OFF
            {
                st.pkt = st.pkt.max((lo + extra) as u64);
                st.prove_pkt_range(id, (lo + extra) as u64);
            }
            true
        }
        _ => true,
    }
}
