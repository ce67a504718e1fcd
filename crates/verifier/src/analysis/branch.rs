//! Conditional jumps: each edge gets its own copy of the state, narrowed by what taking it
//! proves (scalar ranges, null checks, packet bounds); an edge no value can take is not
//! followed (the kernel's dead-branch pruning).

use super::{Analysis, Flow, R};
use crate::config::ContextKind;
use crate::domain::{InRel, MAX_TRACKED_OFF, Off, PtrKind, Scalar, State, Value};
use crate::scalar::{self, LenRel, SYM_LEN_ID};
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
        let s = self.strict;
        let m = self.len_min();
        let t = refine_edge(&mut taken, (s, m), width, cond, (lhs, l), (rreg, r), true);
        let f = refine_edge(&mut fall, (s, m), width, cond, (lhs, l), (rreg, r), false);
        Ok(match (f, t) {
            (true, true) => Flow::Fork([(next, fall), (target, taken)]),
            (true, false) => Flow::Next(next, fall),
            (false, true) => Flow::Next(target, taken),
            (false, false) => Flow::Stop,
        })
    }

    /// Where the input length is a symbol (`Checked` mode, plain memory of at least
    /// `mem_size > 0` bytes: r2 at entry carries [`SYM_LEN_ID`]), the lower bound of it every
    /// relation records ([`LenRel::lmin`]); `None` elsewhere, where no relation is made.
    pub(super) fn len_min(&self) -> Option<u64> {
        match (self.cfg.mem_size, &self.cfg.context) {
            (Some(n), ContextKind::Memory) if n > 0 && !self.strict => Some(n),
            _ => None,
        }
    }
}

/// Narrows `st` to the runs that take one edge (`holds`: the condition is true) of a jump on
/// `lhs cond rhs`; returns false when no run can. Comparisons of two pointers refine only in
/// `Strict` mode (`strict`), whose pointers are all trusted (`Checked` mode keeps spilled
/// context pointers across stores it cannot place, see `context.rs`), so `Checked` mode's
/// analysis is unchanged by that rule. With `lmin` (see [`Analysis::len_min`]), scalar
/// comparisons also bound values relative to the input length (`len_facts`).
#[allow(clippy::too_many_arguments)]
fn refine_edge(
    st: &mut State,
    (strict, lmin): (bool, Option<u64>),
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
            if let Some(lmin) = lmin {
                len_facts(&mut a, &mut b, width, cond, holds, lmin);
            }
            put(st, lreg, a);
            if let Some(x) = rreg {
                put(st, x, b);
            }
            if lmin.is_some() {
                derive_len(st, &a);
                if rreg.is_some() {
                    derive_len(st, &b);
                }
            }
            true
        }
        // A null check: the pointer on the not-equal edge, the scalar 0 on the other; and
        // the same for every copy of it (same id) in any register or spill of any frame (the
        // kernel's `mark_ptr_or_null_regs`, which also releases a reference on the null edge).
        (
            Value::Ptr(
                PtrKind::MapValue {
                    map,
                    nullable: true,
                    id,
                    record,
                },
                o,
            ),
            Value::Scalar(z),
        ) if width == Width::W64 && z.konst() == Some(0) && matches!(cond, Cond::Eq | Cond::Ne) => {
            let is_null = (cond == Cond::Eq) == holds;
            // A ring buffer record keeps its id, its reference (`refs.rs`): copies made
            // before and after the check are released together. On the null edge nothing
            // was reserved, so there is nothing to release.
            let kept = if record.is_some() { id } else { 0 };
            if is_null && record.is_some() {
                st.refs.drop_ref(id);
            }
            let decide = |o: Off| {
                if is_null {
                    Value::konst(0)
                } else {
                    Value::Ptr(
                        PtrKind::MapValue {
                            map,
                            nullable: false,
                            id: kept,
                            record,
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
                st.rewrite_values(|v| Some(decide(copy(v)?)));
            }
            true
        }
        // The same for a socket: a lookup's reference is dropped on the null edge (nothing
        // was acquired); a cast's stays with the socket it was made from.
        (
            Value::Ptr(
                PtrKind::Sock {
                    kind,
                    nullable: true,
                    id,
                    ref_obj,
                },
                o,
            ),
            Value::Scalar(z),
        ) if width == Width::W64 && z.konst() == Some(0) && matches!(cond, Cond::Eq | Cond::Ne) => {
            let is_null = (cond == Cond::Eq) == holds;
            if is_null && ref_obj != 0 && ref_obj == id {
                st.refs.drop_ref(id);
            }
            let decide = |o: Off| {
                if is_null {
                    Value::konst(0)
                } else {
                    Value::Ptr(
                        PtrKind::Sock {
                            kind,
                            nullable: false,
                            id,
                            ref_obj,
                        },
                        o,
                    )
                }
            };
            st.cur_mut().regs[lreg.index()] = decide(o);
            if id != 0 {
                let copy = |v: &Value| match *v {
                    Value::Ptr(
                        PtrKind::Sock {
                            id: x,
                            nullable: true,
                            ..
                        },
                        o,
                    ) if x == id => Some(o),
                    _ => None,
                };
                st.rewrite_values(|v| Some(decide(copy(v)?)));
            }
            true
        }
        // The same for an inner map's handle from a map of maps: a lookup's id decides every
        // copy in every frame, registers and spills.
        (Value::MapHandleOrNull(m, id), Value::Scalar(z))
            if width == Width::W64
                && z.konst() == Some(0)
                && matches!(cond, Cond::Eq | Cond::Ne) =>
        {
            let is_null = (cond == Cond::Eq) == holds;
            let decided = if is_null {
                Value::konst(0)
            } else {
                Value::MapHandle(m)
            };
            st.cur_mut().regs[lreg.index()] = decided;
            if id != 0 {
                st.rewrite_values(|v| {
                    matches!(*v, Value::MapHandleOrNull(_, x) if x == id).then_some(decided)
                });
            }
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
        // Two pointers into one region: the comparison is one of their offsets.
        (Value::Ptr(ka, Off::Range(al, ah)), Value::Ptr(kb, Off::Range(bl, bh)))
            if strict && width == Width::W64 && ka == kb && comparable(ka, al.min(bl)) =>
        {
            let Some(((al, ah), (bl, bh))) = refine_offsets(cond, holds, (al, ah), (bl, bh)) else {
                return false;
            };
            // A packet pointer with an id is `data + V + lo`: moving `lo` would change `V`.
            if !matches!(ka, PtrKind::Packet { id } if id != 0) {
                st.cur_mut().regs[lreg.index()] = Value::Ptr(ka, Off::Range(al, ah));
                if let Some(x) = rreg {
                    st.cur_mut().regs[x.index()] = Value::Ptr(kb, Off::Range(bl, bh));
                }
            }
            true
        }
        _ => true,
    }
}

/// Whether two pointers of kind `k`, the lower of their offsets being `lo`, compare as their
/// offsets do: one base (the same frame, the input, the packet from `data` or from one `V`
/// of a packet id, the metadata), an address that neither wraps nor crosses the sign bit when
/// the offset is added (the stack lies far from 0; the input and the packet may start at
/// address 0 when empty, so only offsets from 0 up). Map values are not: two pointers of one
/// map may point into different values.
fn comparable(k: PtrKind, lo: i64) -> bool {
    match k {
        PtrKind::Stack { .. } => true,
        PtrKind::Input { .. } | PtrKind::Packet { .. } | PtrKind::PacketMeta => lo >= 0,
        PtrKind::MapValue { .. } | PtrKind::PacketEnd | PtrKind::Sock { .. } => false,
    }
}

/// The offset ranges `a` and `b` of two comparable pointers narrowed to the runs where
/// `a cond b` is `holds` (signed and unsigned agree on such addresses), or `None` when no run
/// takes that edge.
type Range = (i64, i64);
fn refine_offsets(cond: Cond, holds: bool, a: Range, b: Range) -> Option<(Range, Range)> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    // The relation that holds on this edge, as `a rel b`: (orderings allowed).
    let rel: &[std::cmp::Ordering] = match (cond, holds) {
        (Cond::Lt | Cond::Slt, true) | (Cond::Ge | Cond::Sge, false) => &[Less],
        (Cond::Le | Cond::Sle, true) | (Cond::Gt | Cond::Sgt, false) => &[Less, Equal],
        (Cond::Gt | Cond::Sgt, true) | (Cond::Le | Cond::Sle, false) => &[Greater],
        (Cond::Ge | Cond::Sge, true) | (Cond::Lt | Cond::Slt, false) => &[Greater, Equal],
        (Cond::Eq, true) | (Cond::Ne, false) => &[Equal],
        (Cond::Ne, true) | (Cond::Eq, false) => &[Less, Greater],
        (Cond::Set, _) => return Some((a, b)),
    };
    let ((mut al, mut ah), (mut bl, mut bh)) = (a, b);
    match rel {
        [Less] => {
            ah = ah.min(bh - 1);
            bl = bl.max(al + 1);
        }
        [Less, Equal] => {
            ah = ah.min(bh);
            bl = bl.max(al);
        }
        [Greater] => {
            al = al.max(bl + 1);
            bh = bh.min(ah - 1);
        }
        [Greater, Equal] => {
            al = al.max(bl);
            bh = bh.min(ah);
        }
        [Equal] => {
            (al, ah) = (al.max(bl), ah.min(bh));
            (bl, bh) = (al, ah);
        }
        _ => {
            // `!=`: only two equal constants are refuted.
            if al == ah && bl == bh && al == bl {
                return None;
            }
        }
    }
    (al <= ah && bl <= bh).then_some(((al, ah), (bl, bh)))
}

/// The relations to the input length `L` that `a cond b` being `holds` gives (bpfx's own; the
/// kernel bounds packets by comparing pointers with `data_end` instead): when one side is
/// below the other, that side is below whatever bound the other has, `L + d` itself for a
/// copy of the length (`SYM_LEN_ID` with delta `d`). Only where the comparison orders the
/// values as integers: unsigned at 64 bits; at 32 bits when both sides fit in 32 bits; signed
/// when both are non-negative (on this edge).
fn len_facts(a: &mut Scalar, b: &mut Scalar, width: Width, cond: Cond, holds: bool, lmin: u64) {
    use Cond::*;
    let signed = matches!(cond, Slt | Sle | Sgt | Sge);
    let fits = |x: &Scalar| x.umax <= u64::from(u32::MAX);
    if (width == Width::W32 && !(fits(a) && fits(b))) || (signed && (a.smin < 0 || b.smin < 0)) {
        return;
    }
    // (whether `a` is the lower side, the gap `s`): `lower + s <= upper`.
    let rels: &[(bool, i128)] = match (cond, holds) {
        (Le | Sle, true) | (Gt | Sgt, false) => &[(true, 0)],
        (Lt | Slt, true) | (Ge | Sge, false) => &[(true, 1)],
        (Ge | Sge, true) | (Lt | Slt, false) => &[(false, 0)],
        (Gt | Sgt, true) | (Le | Sle, false) => &[(false, 1)],
        (Eq, true) | (Ne, false) => &[(true, 0), (false, 0)],
        _ => &[],
    };
    let (a0, b0) = (*a, *b);
    for &(a_lower, s) in rels {
        let (lower, upper) = if a_lower {
            (&mut *a, &b0)
        } else {
            (&mut *b, &a0)
        };
        let new = below(upper, s, lmin);
        *lower = lower.with_len(LenRel::stronger(new, lower.len));
    }
}

/// What `x + s <= y` says of `x` relative to the input length.
fn below(y: &Scalar, s: i128, lmin: u64) -> Option<LenRel> {
    let own = y
        .len
        .and_then(|r| LenRel::new(i128::from(r.c) + s, r.base, r.lmin));
    // `y = L + d` (mod 2^64) is `L + d` exactly when it cannot have wrapped below 0: `L` is at
    // least `lmin`, or `y` is below 2^63 (a wrapped value would be at least 2^64 - 2^31).
    let d = i128::from(y.delta);
    let len = (y.id == SYM_LEN_ID && (i128::from(lmin) + d >= 0 || y.umax <= i64::MAX as u64))
        .then(|| LenRel::new(s - d, None, lmin))
        .flatten();
    // A tag is kept over the length's own bound: it says as much once `ref` is known, and
    // it joins with the tags of other visits (`L - off` for a constant `off` in a loop's
    // first round, a variable one in the next).
    match (len, own) {
        (Some(l), Some(o)) if o.base.is_none() => LenRel::stronger(Some(l), Some(o)),
        (l, None) => l,
        (_, o) => o,
    }
}

/// After `v` was refined: when it bounds `v + ref + c <= L` with `ref` a value of the group
/// `g` of linked scalars (`base: Some((g, dref))`), every register and spill of that group
/// and every input pointer linked to it is bounded by `L` by `v`'s lower bound: a member `x`
/// with delta `dx` is `ref + dx - dref` (exactly: both are below 2^63), so `x + (umin(v) + c
/// - dx + dref) <= L` (`off + rec <= L` and `rec >= 14` give `off <= L - 14`).
fn derive_len(st: &mut State, v: &Scalar) {
    let Some(LenRel {
        c,
        base: Some((g, dref)),
        lmin,
    }) = v.len
    else {
        return;
    };
    let k = i128::from(v.umin) + i128::from(c);
    let dref = i128::from(dref);
    let update = |x: &Value| -> Option<Value> {
        match *x {
            Value::Scalar(s) if s.id == g && s.umax <= i64::MAX as u64 => {
                let n = LenRel::new(k - (i128::from(s.delta) - dref), None, lmin);
                let y = s.with_len(LenRel::stronger(s.len, n));
                (y != s).then_some(Value::Scalar(y))
            }
            Value::Ptr(PtrKind::Input { rel: Some(p) }, o) => {
                let (lg, dp) = p.link?;
                if lg != g {
                    return None;
                }
                let n = InRel::new(
                    i128::from(p.lo),
                    k - (i128::from(dp) - dref),
                    p.link,
                    p.lmin,
                )?;
                (n.c > p.c).then_some(Value::Ptr(PtrKind::Input { rel: Some(n) }, o))
            }
            _ => None,
        }
    };
    st.rewrite_values(update);
}
