//! The states the analysis starts from, register reads and writes, and the addressing of
//! stack bytes within the frame's slots.

use super::{Analysis, R};
use crate::config::{ContextKind, MapRef, MapTable};
use crate::domain::{Frame, Off, PtrKind, Scalar, Slot, State, Value};
use crate::error::VerifyErrorKind as K;
use crate::scalar::LEN_ID;
use bpfx_bytecode::{Pc, Reg};

/// The slot of a frame's stack holding byte `b` (an offset from the frame's r10, in
/// `-512..0`), and the byte's bit in that slot's initialisation mask.
pub(super) fn stack_byte(b: i64) -> (usize, u32) {
    let i = ((-b - 1) / 8) as usize;
    (i, (b + 8 * (i as i64 + 1)) as u32)
}

/// Before `new` joins `old` (one context, one pc): where `old` holds a map handle, or a
/// pointer into a map's value, and `new` holds the same for another map of the same shape
/// (equal [`crate::MapDef`]s but for `max_entries`: key and value sizes, type, read-only,
/// program array, inner map), `new` is made to name `old`'s map, so that the join keeps a
/// handle (or a value pointer) instead of `Mixed`. Every rule the analysis applies to a map
/// depends on its definition only (the `for_each_map_elem` bound, the one reader of
/// `max_entries`, takes the largest of the maps of that definition), and the engines take the
/// map from the register at run time, so naming either map is exact: this is how a map chosen
/// by a branch (`r1 = cond ? &a : &b` before `map_lookup_elem`, two connection tables of one
/// layout sized apart) verifies, as the kernel, which explores each path with its own map,
/// accepts it.
pub(super) fn unify_maps(maps: &MapTable, old: &State, new: &mut State) {
    // No maps, nothing to rename (and no scan of every register and slot at every join).
    if *maps == MapTable::default() {
        return;
    }
    let same = |a: MapRef, b: MapRef| maps.interchangeable(a, b);
    let renamed = |o: Value, n: Value| match (o, n) {
        (Value::MapHandle(a) | Value::MapHandleOrNull(a), Value::MapHandle(b)) if same(a, b) => {
            Some(Value::MapHandle(a))
        }
        (Value::MapHandle(a) | Value::MapHandleOrNull(a), Value::MapHandleOrNull(b))
            if same(a, b) =>
        {
            Some(Value::MapHandleOrNull(a))
        }
        (
            Value::Ptr(PtrKind::MapValue { map: a, .. }, _),
            Value::Ptr(
                PtrKind::MapValue {
                    map: b,
                    nullable,
                    id,
                    record,
                },
                off,
            ),
        ) if same(a, b) => Some(Value::Ptr(
            PtrKind::MapValue {
                map: a,
                nullable,
                id,
                record,
            },
            off,
        )),
        _ => None,
    };
    for (fo, fnew) in old.frames().zip(new.frames_mut()) {
        for (o, n) in fo.regs.iter().zip(fnew.regs.iter_mut()) {
            if let Some(v) = renamed(*o, *n) {
                *n = v;
            }
        }
        for i in 0..fo.stack.len() {
            // Shared slots are equal: nothing to rename.
            if fo.stack.shares_slot(&fnew.stack, i) {
                continue;
            }
            if let (Slot::Spill(o), Slot::Spill(v)) = (fo.stack[i], fnew.stack[i])
                && let Some(v) = renamed(o, v)
            {
                fnew.stack[i] = Slot::Spill(v);
            }
        }
    }
}

impl Analysis<'_> {
    pub(super) fn uninit(&self) -> Value {
        // The execution contract zeroes every register at entry and r1–r5 after a helper call;
        // Checked mode relies on that, Strict mode (the kernel's contract) does not.
        if self.strict {
            Value::NotInit
        } else {
            Value::konst(0)
        }
    }

    pub(super) fn entry_state(&self) -> State {
        let mut regs = [self.uninit(); 11];
        // The engines pass the run's input length in r2 (`bpfx_exec::entry_registers`), and
        // only require it to be at least `mem_size`. Where the analysis takes r2 (and, with no
        // memory, r1) for the constants of a run on exactly `mem_size` bytes, the values carry
        // `LEN_ID`: a path reading one makes the proof assume that length exactly
        // (`Analysis::reads_len`, `Assumptions::exact_len`).
        let len = |n: u64| {
            Value::Scalar(Scalar {
                id: LEN_ID,
                ..Scalar::known(n)
            })
        };
        let (r1, r2) = match (self.cfg.mem_size, &self.cfg.context) {
            (Some(0), ContextKind::Memory) => (len(0), len(0)),
            (Some(n), ContextKind::Memory) => (Value::Ptr(PtrKind::Input, Off::known(0)), len(n)),
            // In a context the input is the struct and then the packet: r2 is not the
            // struct's size (the kernel passes nothing in r2).
            (_, ContextKind::Fields(_)) | (None, _) => (
                Value::Ptr(PtrKind::Input, Off::known(0)),
                Value::UNKNOWN_SCALAR,
            ),
        };
        regs[1] = r1;
        regs[2] = r2;
        regs[10] = Value::Ptr(PtrKind::Stack { frame: 0 }, Off::known(0));
        State::new(Frame::new(regs))
    }

    /// Reads a register as an operand: uninitialised is an error in Strict mode and an unknown
    /// scalar in Checked mode.
    pub(super) fn read(&self, pc: Pc, st: &State, r: Reg) -> R<Value> {
        match st.cur().regs[r.index()] {
            Value::NotInit if self.strict => Err(self.err(pc, K::UninitRegister(r))),
            Value::NotInit => Ok(Value::UNKNOWN_SCALAR),
            // A released ring buffer record is as unreadable as an uninitialised register.
            v => self.check_held(pc, st, r, v).map(|()| v),
        }
    }

    pub(super) fn set(st: &mut State, r: Reg, v: Value) {
        st.cur_mut().regs[r.index()] = v;
    }

    /// A rule violation: an error in Strict mode; in Checked mode the result degrades to an
    /// unknown scalar.
    pub(super) fn degrade(&self, pc: Pc, kind: K) -> R<Value> {
        if self.strict {
            Err(self.err(pc, kind))
        } else {
            Ok(Value::UNKNOWN_SCALAR)
        }
    }
}

/// Before two `Strict`-mode states join: packet pointers that sit at different distances
/// from `data` on the two paths, or carry different ids, would join to a plain offset range
/// and lose what a later `data_end` check proves for them (clang's `cur = eth + 1` or
/// `cur = vlan + 1` after up to two VLAN tags, then `if (cur + 40 > data_end)`). The kernel
/// keeps such paths apart; here, the positions holding such pointers on both sides
/// (registers and spills of every frame) are grouped by their id on each side and their shift
/// `c` from `old` to `new`; a group whose pointers without an id are exact gets one fresh id
/// `Z` on both sides (pointers of one id shifted differently land in different groups, each
/// keeping its own relation): each pointer becomes
/// `data + W + lo` for one run-time `W`, with `lo` the lower of its two offsets, and what
/// each side proved for the old pointers (its id's range, or the absolute packet range) is
/// restated for `Z` in `W`'s terms, so the join keeps the smaller of the two. When the group
/// had one id `X` on both sides, `V_X <= W` on both paths (`State::pkt_below`): a later check
/// of a `Z` pointer proves its range for the copies of `X` left unshifted too (clang's
/// `r3 = r9 + 6; r9 += 16; if (…) r9 = r3; if (r9 + 2 > data_end) …; *(u16 *)r3`).
///
/// Returns whether it rewrote anything: the old state then stands for more than the state its
/// node may already have been processed with, so it must be processed again even when the
/// join adds nothing further.
pub(super) fn relate_packets(old: &mut State, new: &mut State, next_id: &mut u32) -> bool {
    use crate::domain::{MAX_TRACKED_OFF, Slot};
    type Pos = (usize, usize);
    fn get(st: &State, (f, i): Pos) -> Option<(u32, i64, i64)> {
        let frame = st.frame(f)?;
        let v = match i.checked_sub(11) {
            None => frame.regs[i],
            Some(s) => match frame.stack[s] {
                Slot::Spill(v) => v,
                Slot::Bytes(_) => return None,
            },
        };
        match v {
            Value::Ptr(PtrKind::Packet { id }, Off::Range(lo, hi)) => Some((id, lo, hi)),
            _ => None,
        }
    }
    fn put(st: &mut State, (f, i): Pos, v: Value) {
        if let Some(frame) = st.frame_mut(f) {
            match i.checked_sub(11) {
                None => frame.regs[i] = v,
                Some(s) => frame.stack[s] = Slot::Spill(v),
            }
        }
    }
    if old.depth() != new.depth() {
        return false;
    }
    let mut rewrote = false;
    // (id in old, id in new, shift from old to new, positions). Pointers of one id on each
    // side but shifted differently go to different groups: each keeps its own relation.
    let mut groups: Vec<(u32, u32, i64, Vec<Pos>)> = Vec::new();
    for f in 0..old.frame_count() {
        let (Some(fo), Some(fnew)) = (old.frame(f), new.frame(f)) else {
            continue;
        };
        for i in 0..11 + crate::domain::SLOTS {
            // What `get` gives, read from the frames at hand; a slot both share is equal on
            // both sides: nothing to relate.
            let (vo, vn) = match i.checked_sub(11) {
                None => (&fo.regs[i], &fnew.regs[i]),
                Some(s) if fo.stack.shares_slot(&fnew.stack, s) => continue,
                Some(s) => match (&fo.stack[s], &fnew.stack[s]) {
                    (Slot::Spill(a), Slot::Spill(b)) => (a, b),
                    _ => continue,
                },
            };
            let (
                &Value::Ptr(PtrKind::Packet { id: ia }, Off::Range(la, ha)),
                &Value::Ptr(PtrKind::Packet { id: ib }, Off::Range(lb, hb)),
            ) = (vo, vn)
            else {
                continue;
            };
            let (a, b) = ((ia, la, ha), (ib, lb, hb));
            if a == b {
                continue;
            }
            let c = b.1 - a.1;
            match groups
                .iter_mut()
                .find(|g| g.0 == a.0 && g.1 == b.0 && g.2 == c)
            {
                Some(g) => g.3.push((f, i)),
                None => groups.push((a.0, b.0, c, vec![(f, i)])),
            }
        }
    }
    for (ida, idb, _, pos) in groups {
        let Some((_, la, ha)) = get(old, pos[0]) else {
            continue;
        };
        let Some((_, lb, hb)) = get(new, pos[0]) else {
            continue;
        };
        let (c, sa, sb) = (lb - la, ha - la, hb - lb);
        // Without an id, a pointer is related to the others only when exact.
        if (ida == 0 && sa != 0) || (idb == 0 && sb != 0) {
            continue;
        }
        let same = pos.iter().all(|&p| match (get(old, p), get(new, p)) {
            (Some((_, l0, h0)), Some((_, l1, h1))) => {
                l1 - l0 == c && h0 - l0 == sa && h1 - l1 == sb
            }
            _ => false,
        });
        if !same {
            continue;
        }
        // old: data + V + la with V in [0, sa]; new: data + U + la + c with U in [0, sb].
        // Shared: W = V - m = U + c - m, m = min(0, c), so the lowest offset is la + m.
        let m = c.min(0);
        let span = (sa - m).max(sb + c - m);
        // What each side proves, as `data + V + n <= data_end` in its own terms.
        let proven = |st: &State, id: u32, s: i64| -> i64 {
            let abs = i64::try_from(st.pkt).unwrap_or(i64::MAX) - s;
            if id == 0 {
                abs
            } else {
                i64::try_from(st.pkt_range(id)).unwrap_or(0).max(abs)
            }
        };
        let (na, nb) = (proven(old, ida, sa), proven(new, idb, sb));
        let ra = (na + m).max(0);
        let rb = (nb - c + m).max(0);
        let mut ok = true;
        for &p in &pos {
            let Some((_, l0, _)) = get(old, p) else {
                continue;
            };
            let lo = l0 + m;
            if lo.unsigned_abs() > MAX_TRACKED_OFF as u64
                || (lo + span).unsigned_abs() > MAX_TRACKED_OFF as u64
            {
                ok = false;
            }
        }
        if !ok {
            continue;
        }
        *next_id += 1;
        let z = *next_id;
        for &p in &pos {
            let Some((_, l0, _)) = get(old, p) else {
                continue;
            };
            let lo = l0 + m;
            let v = Value::Ptr(PtrKind::Packet { id: z }, Off::Range(lo, lo + span));
            put(old, p, v);
            put(new, p, v);
        }
        // One id on both sides, shifted by `c`: `W` is `V` (old) or `V + c` minus `m`, never
        // below `V` on either path, so what `Z` proves holds for the id's other copies too.
        if ida == idb {
            old.pkt_id_below(z, ida);
            new.pkt_id_below(z, idb);
        }
        old.prove_pkt_range(z, ra as u64);
        new.prove_pkt_range(z, rb as u64);
        rewrote = true;
    }
    rewrote
}
