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
        (Value::MapHandle(a) | Value::MapHandleOrNull(a, _), Value::MapHandle(b)) if same(a, b) => {
            Some(Value::MapHandle(a))
        }
        (Value::MapHandle(a) | Value::MapHandleOrNull(a, _), Value::MapHandleOrNull(b, id))
            if same(a, b) =>
        {
            Some(Value::MapHandleOrNull(a, id))
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

/// Whether `old` and `new` (one context, one join point) must be kept apart there: some
/// value live by `live` ([`super::Analysis::live_masks`]), in a register or a stack slot of
/// any frame, is of different kinds on the two paths ([`kinds_differ`]), so that their join
/// would keep nothing a rule can use (a pointer joined with a scalar, or with a pointer into
/// another region, is `Mixed`; a map handle joined with another map's handle is too, and one
/// joined with null may be null). The kernel never joins: it explores every path with its
/// own state and prunes a path only where an explored state covers it; keeping such states
/// apart is what lets a load through a register that is a pointer on one path and a scalar
/// on another verify when it is done on the pointer's path only.
///
/// `Checked` mode keeps apart only what `split` says its rules refuse once joined, and, with
/// `paths` ([`Split::Refused`]), the states whose join would lose what a function's paths
/// return or pass on: a live register of the running frame holding a different constant on
/// each side (a status or length a callee returns, known with what its path checked), or a
/// live input pointer linked to one group at different distances (`mem + off + 14` and
/// `mem + off + 18`, whose join keeps no link: "Relations to the input length").
pub(super) fn apart(
    maps: &MapTable,
    old: &State,
    new: &State,
    live: &[(u16, u64)],
    split: Split,
) -> bool {
    // The cheap tests first: the kinds (mostly two scalars, which never differ), then what
    // `split` keeps apart, and only then the whole values.
    let paths = matches!(split, Split::Refused { paths: true, .. });
    let differ = |a: &Value, b: &Value| {
        (kinds_differ(maps, a, b) && split.keeps(a, b) && a != b)
            || (paths && moved_link(*a, *b) && a != b)
    };
    let top = old.depth();
    for (level, (fo, fnew)) in old.frames().zip(new.frames()).enumerate() {
        let (regs, stack) = live.get(level).copied().unwrap_or((u16::MAX, u64::MAX));
        let consts = paths && level == top;
        for (r, (a, b)) in fo.regs.iter().zip(&fnew.regs).enumerate() {
            if regs & (1 << r) == 0 {
                continue;
            }
            let apart = match (a, b) {
                // Two scalars are of one kind and no input pointers: only different
                // constants may keep them apart (what `differ` and `constants_differ` say
                // of them, without comparing the whole values).
                (Value::Scalar(x), Value::Scalar(y)) => consts && scalar_constants_differ(x, y),
                _ => differ(a, b) || (consts && constants_differ(*a, *b)),
            };
            if apart {
                return true;
            }
        }
        // Slots of shared chunks are equal.
        for (_, sa, sb) in fo.stack.unshared(&fnew.stack, stack) {
            let differ = match (sa, sb) {
                (Slot::Spill(Value::Scalar(_)), Slot::Spill(Value::Scalar(_))) => false,
                (Slot::Spill(a), Slot::Spill(b)) => differ(a, b),
                // A spilled pointer on one path, raw bytes on the other: the join keeps bytes.
                (Slot::Spill(v), Slot::Bytes(m)) | (Slot::Bytes(m), Slot::Spill(v)) => {
                    *m != 0
                        && v.is_pointer_like()
                        && !matches!(v, Value::Mixed { .. })
                        && split.keeps(v, &Value::UNKNOWN_SCALAR)
                }
                (Slot::Bytes(_), Slot::Bytes(_)) => false,
            };
            if differ {
                return true;
            }
        }
    }
    false
}

/// Two scalars known exactly, and different.
fn constants_differ(a: Value, b: Value) -> bool {
    match (a, b) {
        (Value::Scalar(x), Value::Scalar(y)) => scalar_constants_differ(&x, &y),
        _ => false,
    }
}

/// [`constants_differ`] of two scalars.
fn scalar_constants_differ(x: &Scalar, y: &Scalar) -> bool {
    match (x.konst(), y.konst()) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// Two input pointers linked to one group of scalars at different deltas.
fn moved_link(a: Value, b: Value) -> bool {
    match (a, b) {
        (
            Value::Ptr(PtrKind::Input { rel: Some(x) }, _),
            Value::Ptr(PtrKind::Input { rel: Some(y) }, _),
        ) => match (x.link, y.link) {
            (Some((g, d)), Some((h, e))) => g == h && d != e,
            _ => false,
        },
        _ => false,
    }
}

/// Which differences of kind keep two states apart at a join point ([`apart`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Split {
    /// Every one: `Strict` mode, the kernel's contract, where a value joined from different
    /// kinds is refused wherever it is used as a pointer or a map handle.
    Every,
    /// Only those whose join no `Checked`-mode rule passes: a map handle on either side (no
    /// helper takes `Mixed`, nor a handle that may be null, as its map), a socket pointer on
    /// either side (no socket helper takes `Mixed`, and its reference must be released), and,
    /// with `context`
    /// (a field context), the context pointer on either side (no access goes through
    /// `Mixed { input: true }`: see `context.rs`). Any other `Mixed` value keeps its accesses
    /// with their run-time guards, so keeping its paths apart would only remove guards, at the
    /// cost of walking the code after the join once per state.
    ///
    /// With `paths` (a forward edge into a join point of a callee, or a call's return
    /// point), also the states whose join would lose a function's paths' results (see
    /// [`apart`]).
    Refused { context: bool, paths: bool },
}

impl Split {
    /// Whether `a` and `b`, of different kinds, keep their states apart.
    fn keeps(self, a: &Value, b: &Value) -> bool {
        let refused = |v: &Value| match v {
            // No socket helper takes a joined socket either, nor may a reference be lost.
            Value::MapHandle(_)
            | Value::MapHandleOrNull(..)
            | Value::Ptr(PtrKind::Sock { .. }, _) => true,
            Value::Ptr(PtrKind::Input { .. }, _) => {
                matches!(self, Split::Refused { context: true, .. })
            }
            _ => false,
        };
        self == Split::Every || refused(a) || refused(b)
    }
}

/// Whether `a` and `b` are values of different kinds, which a join would lose (see [`apart`]):
/// a scalar and a pointer or map handle, pointers into different regions (stack frames, the
/// input or context, the packet, its end or metadata, map values of different maps or
/// layouts, ring buffer records of different sizes or reservations), map handles of different
/// maps, and a map handle and a scalar (null included).
/// Uninitialised and `Mixed` values are of every kind: a state holding one already has
/// nothing a rule trusts there. Maps that [`unify_maps`] renames into each other (one shape)
/// are one kind, and so are packet pointers whatever their offsets and ids (which
/// `relate_packets` and the join keep what they can of), and any two scalars, so that loops
/// still converge.
fn kinds_differ(maps: &MapTable, a: &Value, b: &Value) -> bool {
    use Value::{MapHandle, MapHandleOrNull, Mixed, NotInit, Ptr, Scalar};
    let same_map = |x: &MapRef, y: &MapRef| x == y || maps.interchangeable(*x, *y);
    match (a, b) {
        (NotInit | Mixed { .. }, _) | (_, NotInit | Mixed { .. }) => false,
        (Scalar(_), Scalar(_)) => false,
        // A handle that may be null already stands for null.
        (MapHandleOrNull(..), Scalar(z)) | (Scalar(z), MapHandleOrNull(..)) => z.konst() != Some(0),
        (MapHandle(x) | MapHandleOrNull(x, _), MapHandle(y) | MapHandleOrNull(y, _)) => {
            !same_map(x, y)
        }
        (Ptr(ka, _), Ptr(kb, _)) => match (ka, kb) {
            (PtrKind::Packet { .. }, PtrKind::Packet { .. }) => false,
            // Ring buffer records of different reservations too: which reference a release
            // gives back is the record's id (`refs.rs`), which the join loses.
            (
                PtrKind::MapValue {
                    map: x,
                    record: rx,
                    id: ix,
                    ..
                },
                PtrKind::MapValue {
                    map: y,
                    record: ry,
                    id: iy,
                    ..
                },
            ) => rx != ry || !same_map(x, y) || (rx.is_some() && ix != iy),
            // Sockets of different references too, as records.
            (
                PtrKind::Sock {
                    kind: x,
                    ref_obj: rx,
                    ..
                },
                PtrKind::Sock {
                    kind: y,
                    ref_obj: ry,
                    ..
                },
            ) => x != y || rx != ry,
            _ => ka != kb,
        },
        _ => true,
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
        // `Checked` mode, the default, proves nothing from the length's value instead: r2 is
        // any length of at least `mem_size` (a Rust slice's, so at most `isize::MAX`), so one
        // proof serves inputs of every length, as `ProgramRef::input_size` promises. `Strict`
        // mode, whose programs are proven for one environment, takes it exactly, and so does
        // a program declared to have no input memory (`mem_size` 0: r1 is then null).
        // It is the length as a symbol, though (`SYM_LEN_ID`, `L` with delta 0): comparisons
        // with it and its copies bound values and input pointers relative to it
        // (`scalar::LenRel`, `domain::InRel`), which proves accesses for every length.
        let at_least = |n: u64| {
            let mut s = Scalar::below(crate::scalar::LEN_MAX);
            s.umin = n;
            s.sync();
            Value::Scalar(Scalar {
                id: crate::scalar::SYM_LEN_ID,
                ..s
            })
        };
        let (r1, r2) = match (self.cfg.mem_size, &self.cfg.context) {
            (Some(n), ContextKind::Memory) if n > 0 && !self.strict => {
                (Value::Ptr(PtrKind::INPUT, Off::known(0)), at_least(n))
            }
            (Some(0), ContextKind::Memory) => (len(0), len(0)),
            (Some(n), ContextKind::Memory) => (Value::Ptr(PtrKind::INPUT, Off::known(0)), len(n)),
            // In a context the input is the struct and then the packet: r2 is not the
            // struct's size (the kernel passes nothing in r2).
            (_, ContextKind::Fields(_)) | (None, _) => (
                Value::Ptr(PtrKind::INPUT, Off::known(0)),
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
