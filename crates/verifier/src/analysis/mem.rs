//! Loads, stores and atomics: one rule per region the base register points into (the stack,
//! the input memory, the context, a map value — which includes global data —, the packet,
//! or nothing the analysis knows), each recording the access's [`RegionKind`] and whether it
//! is proven in bounds.

use super::state::stack_byte;
use super::{Analysis, R};
use crate::config::{ContextLayout, MapRef, SockKind};
use crate::context::{self, CtxOp, Seen};
use crate::domain::{InRel, Off, PtrKind, Scalar, Slot, State, Value};
use crate::error::VerifyErrorKind as K;
use crate::verified::{PacketReach, RegionKind, record};
use bpfx_bytecode::semantics;
use bpfx_bytecode::{AtomicOp, Operand, Pc, Reg, Size, Width};
use bpfx_exec::STACK_FRAME_SIZE;

const FRAME: i64 = STACK_FRAME_SIZE as i64;

/// What a memory access does, as the transfer function sees it.
#[derive(Clone, Copy)]
pub(super) enum Acc {
    Load { signed: bool },
    Store { val: Value, src: Option<Reg> },
    Atomic { src: Reg, val: Value },
}

impl Acc {
    fn writes(self) -> bool {
        !matches!(self, Acc::Load { .. })
    }
}

/// One memory access: the instruction at `pc` reaching `size` bytes at `off` from the pointer
/// in `reg`.
#[derive(Clone, Copy)]
struct Access {
    pc: Pc,
    reg: Reg,
    off: i16,
    size: u32,
    acc: Acc,
}

impl Access {
    fn new(pc: Pc, reg: Reg, off: i16, size: u32, acc: Acc) -> Access {
        Access {
            pc,
            reg,
            off,
            size,
            acc,
        }
    }

    /// The value a load (or an atomic's old value) yields when nothing more is known.
    fn loaded(self) -> Value {
        match self.acc {
            Acc::Load { signed } => Value::Scalar(Scalar::load(self.size, signed)),
            _ => Value::Scalar(Scalar::load(self.size, false)),
        }
    }

    /// The rejection of an access at `at` (instruction offset included) that may leave `what`.
    fn out_of(self, what: &'static str, at: Off) -> K {
        match at {
            Off::Range(lo, hi) => K::RangeOutOfBounds {
                reg: self.reg,
                what,
                lo,
                hi,
                size: u64::from(self.size),
            },
            Off::Unknown => K::VariableOffset {
                reg: self.reg,
                what,
            },
        }
    }
}

impl Analysis<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_load(
        &mut self,
        pc: Pc,
        st: &mut State,
        size: Size,
        signed: bool,
        dst: Reg,
        base: Reg,
        off: i16,
    ) -> R<()> {
        let acc = Acc::Load { signed };
        let v = self.check_mem(st, Access::new(pc, base, off, size.bytes(), acc))?;
        Self::set(st, dst, v);
        Ok(())
    }

    pub(super) fn check_store(
        &mut self,
        pc: Pc,
        st: &mut State,
        size: Size,
        base: Reg,
        off: i16,
        src: Operand,
    ) -> R<()> {
        let (mut val, sreg) = self.operand(pc, st, src)?;
        // A spill of an unknown scalar is a copy: the register and the slot share an id, so
        // a bound learned on either (or on a later fill) narrows both, as the kernel's
        // scalar ids do through `save_register_state`.
        if let (Value::Scalar(x), Some(r), Size::Dw) = (val, sreg, size)
            && x.konst().is_none()
            && matches!(
                self.read(pc, st, base)?,
                Value::Ptr(PtrKind::Stack { .. }, _)
            )
        {
            let x = Scalar {
                id: self.scalar_id(x),
                ..x
            };
            val = Value::Scalar(x);
            Self::set(st, r, val);
        }
        let acc = Acc::Store { val, src: sreg };
        self.check_mem(st, Access::new(pc, base, off, size.bytes(), acc))?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_atomic(
        &mut self,
        pc: Pc,
        st: &mut State,
        width: Width,
        aop: AtomicOp,
        fetch: bool,
        base: Reg,
        off: i16,
        src: Reg,
    ) -> R<()> {
        let val = self.read(pc, st, src)?;
        if aop == AtomicOp::Cmpxchg {
            self.read(pc, st, Reg::R0)?;
        }
        let acc = Acc::Atomic { src, val };
        let old = self.check_mem(st, Access::new(pc, base, off, width.bits() / 8, acc))?;
        match aop {
            AtomicOp::Cmpxchg => Self::set(st, Reg::R0, old),
            _ if fetch => Self::set(st, src, old),
            _ => {}
        }
        Ok(())
    }

    /// Checks a load, store or atomic and applies it to the state; returns the loaded (or, for
    /// atomics, the old) value. The base register is read last, after the operands.
    fn check_mem(&mut self, st: &mut State, a: Access) -> R<Value> {
        let (pc, reg) = (a.pc, a.reg);
        let base = self.read(pc, st, reg)?;
        if let Some(layout) = self.layout {
            if let Value::Ptr(PtrKind::Input { .. }, o) = base {
                return self.mem_context(a, st, layout, o);
            }
            if base == (Value::Mixed { input: true }) && !self.strict {
                return Err(self.err(pc, K::ContextMaybe { reg }));
            }
            self.ctx
                .record(pc, Seen::Other)
                .map_err(|k| self.err(pc, k))?;
        }
        match base {
            Value::Ptr(PtrKind::Stack { frame }, o) => self.mem_stack(a, st, frame, o),
            Value::Ptr(PtrKind::Input { rel }, o) => self.mem_input(a, st, o, rel),
            Value::Ptr(
                PtrKind::MapValue {
                    map,
                    nullable,
                    record,
                    ..
                },
                o,
            ) => self.mem_map_value(a, st, (map, record), nullable, o),
            Value::Ptr(PtrKind::Packet { id }, o) => self.mem_packet(a, st, Some(id), o),
            Value::Ptr(PtrKind::PacketMeta, o) => self.mem_packet(a, st, None, o),
            Value::Ptr(PtrKind::Sock { kind, nullable, .. }, o) => {
                self.mem_sock(a, kind, nullable, o)
            }
            _ => self.mem_untyped(a, st, base),
        }
    }

    /// Through a socket pointer (`sock.rs`): in both modes, a non-null pointer and a load of
    /// a field the kernel allows, at a known offset; never a store. Strict mode proves it
    /// (the engines lend every socket's struct whole); Checked mode keeps the guard, as the
    /// context's `sk` field it may have come from lies in guest-writable memory there.
    fn mem_sock(&mut self, a: Access, kind: SockKind, nullable: bool, o: Off) -> R<Value> {
        if nullable {
            return Err(self.err(a.pc, K::MaybeNull(a.reg)));
        }
        let at = o.add_const(i64::from(a.off));
        let Some(off) = at.exact() else {
            return Err(self.err(a.pc, a.out_of(kind.name(), at)));
        };
        let write = a.acc.writes();
        if write || !crate::sock::load_ok(kind, off, a.size) {
            return Err(self.err(
                a.pc,
                K::SockAccess {
                    kind: kind.name(),
                    off,
                    size: a.size,
                    write,
                },
            ));
        }
        record(
            &mut self.facts[a.pc.index()],
            RegionKind::MapValue,
            self.strict,
        );
        Ok(a.loaded())
    }

    /// Through a stack pointer of frame `frame` at offset `o`.
    fn mem_stack(&mut self, a: Access, st: &mut State, frame: u32, o: Off) -> R<Value> {
        let n = i64::from(a.size);
        match o.add_const(i64::from(a.off)) {
            Off::Range(lo, hi) if lo >= -FRAME && hi + n <= 0 => {
                record(&mut self.facts[a.pc.index()], RegionKind::Stack, true);
                if lo == hi
                    && let Acc::Atomic { .. } = a.acc
                {
                    // The old value is what a load of that size reads first (a spilled
                    // scalar, its id included, for a whole slot), as the kernel reads the
                    // slot before the write that leaves it an unknown scalar.
                    let load = Access {
                        acc: Acc::Load { signed: false },
                        ..a
                    };
                    let old = match self.stack_access(load, st, frame, lo)? {
                        v if v.is_pointer_like() => a.loaded(),
                        v => v,
                    };
                    self.stack_access(a, st, frame, lo)?;
                    return Ok(old);
                }
                if lo == hi {
                    self.stack_access(a, st, frame, lo)
                } else {
                    self.stack_access_var(a, st, frame, (lo, hi))
                }
            }
            Off::Range(x, y) if x == y && self.strict => Err(self.err(
                a.pc,
                K::StackOutOfBounds {
                    off: x,
                    size: a.size,
                },
            )),
            at if self.strict => Err(self.err(a.pc, a.out_of("the stack frame", at))),
            _ => Ok(self.unproven(a.pc, st, RegionKind::Stack, a.acc)),
        }
    }

    /// Through a pointer into the input memory (when it is plain memory, not a context), at
    /// offset `o` with relation `rel` to the input length `L`.
    fn mem_input(&mut self, a: Access, st: &mut State, o: Off, rel: Option<InRel>) -> R<Value> {
        let n = i64::from(a.size);
        self.check_leak(a.pc, a.acc, "the input memory")?;
        let at = o.add_const(i64::from(a.off));
        let in_bounds = match (self.cfg.mem_size, at) {
            (Some(mem), Off::Range(lo, hi)) => {
                lo >= 0 && u64::try_from(hi + n).is_ok_and(|e| e <= mem)
            }
            _ => false,
        };
        // Or relative to the length (`Checked` mode only): the offset `v` is at least `lo` and
        // `v + c <= L`, so `[v + k, v + k + n)` lies inside `[0, L)` when `lo + k >= 0` and
        // `k + n <= c`.
        let k = i64::from(a.off);
        let in_bounds = in_bounds
            || rel.is_some_and(|r| {
                let lo = match o {
                    Off::Range(lo, _) => lo.max(r.lo),
                    Off::Unknown => r.lo,
                };
                lo + k >= 0 && k + n <= r.c
            });
        if self.strict && !in_bounds {
            let kind = match (self.cfg.mem_size, at) {
                (None, _) => K::InputSizeUnknown,
                (Some(mem), Off::Range(x, y)) if x == y => K::InputOutOfBounds {
                    off: x,
                    size: u64::from(a.size),
                    mem,
                },
                (Some(_), at) => a.out_of("the input memory", at),
            };
            return Err(self.err(a.pc, kind));
        }
        // Engines refuse inputs shorter than `mem_size`, so an access inside it needs
        // no guard (`VerifiedProgram::mem_size`).
        record(&mut self.facts[a.pc.index()], RegionKind::Input, in_bounds);
        if a.acc.writes() && !in_bounds {
            self.havoc(st);
        }
        Ok(a.loaded())
    }

    /// Through a pointer into a value of `map` (global data included), or into a record of
    /// `Some(n)` bytes reserved in `map`'s memory (`record`, see [`PtrKind::MapValue`]).
    fn mem_map_value(
        &mut self,
        a: Access,
        st: &mut State,
        (map, rec): (MapRef, Option<u32>),
        nullable: bool,
        o: Off,
    ) -> R<Value> {
        let n = i64::from(a.size);
        if nullable && self.strict {
            return Err(self.err(a.pc, K::MaybeNull(a.reg)));
        }
        let def = self.cfg.maps.get(map);
        // The engines refuse stores into read-only values at run time: such a write is
        // never proven, so it keeps the guard that traps.
        let read_only_write = a.acc.writes() && def.is_some_and(|d| d.read_only);
        if read_only_write && self.strict {
            return Err(self.err(a.pc, K::ReadOnlyMapWrite { reg: a.reg, map }));
        }
        self.check_leak(a.pc, a.acc, "a map value")?;
        let at = o.add_const(i64::from(a.off));
        let in_bounds = !nullable
            && !read_only_write
            && match (def, at) {
                (Some(d), Off::Range(lo, hi)) => {
                    lo >= 0 && hi + n <= i64::from(rec.unwrap_or(d.value_size))
                }
                _ => false,
            };
        if self.strict && !in_bounds {
            let kind = match (def, at) {
                (None, _) => K::UnknownMap(map),
                (Some(d), Off::Range(x, y)) if x == y => K::MapValueOutOfBounds {
                    off: x,
                    size: u64::from(a.size),
                    value_size: rec.unwrap_or(d.value_size),
                },
                (Some(_), at) => a.out_of("the map value", at),
            };
            return Err(self.err(a.pc, kind));
        }
        record(
            &mut self.facts[a.pc.index()],
            RegionKind::MapValue,
            in_bounds,
        );
        if a.acc.writes() && !in_bounds {
            self.havoc(st);
        }
        Ok(a.loaded())
    }

    /// Through a packet pointer with packet id `Some(id)`, or a packet metadata pointer
    /// (`data_meta`, `None`). Only Strict mode proves packet accesses: it alone forbids writes
    /// to the context's data and data_end fields, which the proof trusts ([`packet_covers`]).
    fn mem_packet(&mut self, a: Access, st: &mut State, id: Option<u32>, o: Off) -> R<Value> {
        if a.acc.writes() && self.layout.is_some_and(|l| l.packet_read_only) {
            return Err(self.err(a.pc, K::PacketReadOnly(a.reg)));
        }
        let at = o.add_const(i64::from(a.off));
        if a.acc.writes() {
            self.record_packet_write(a.pc, id, at, a.size);
        }
        let in_bounds = self.strict && packet_covers(st, id, at, i64::from(a.size));
        if self.strict && !in_bounds {
            return Err(self.err(a.pc, K::PacketUnproven(a.reg)));
        }
        self.check_leak(a.pc, a.acc, "the packet")?;
        if in_bounds {
            record(&mut self.facts[a.pc.index()], RegionKind::Packet, true);
            return Ok(a.loaded());
        }
        self.unproven(a.pc, st, RegionKind::Packet, a.acc);
        Ok(a.loaded())
    }

    /// Joins this visit of the packet store or atomic at `pc` (`size` bytes at offset `at`
    /// from a packet pointer with id `Some(id)`, or from `data_meta` with `None`) into
    /// [`Analysis::packet_writes`]: bounded only from `data`, with a known non-negative offset.
    fn record_packet_write(&mut self, pc: Pc, id: Option<u32>, at: Off, size: u32) {
        let reach = match (id, at) {
            (Some(_), Off::Range(lo, hi)) => match (
                u64::try_from(lo),
                u64::try_from(hi)
                    .ok()
                    .and_then(|h| h.checked_add(u64::from(size))),
            ) {
                (Ok(start), Some(end)) => PacketReach::Within { start, end },
                _ => PacketReach::Unbounded,
            },
            _ => PacketReach::Unbounded,
        };
        let joined = match self.packet_writes.get(&pc) {
            Some(prev) => prev.join(reach),
            None => reach,
        };
        self.packet_writes.insert(pc, joined);
    }

    /// Through a value that is not a pointer the analysis follows.
    fn mem_untyped(&mut self, a: Access, st: &mut State, base: Value) -> R<Value> {
        if self.strict {
            let kind = match base {
                Value::NotInit => K::UninitRegister(a.reg),
                _ => K::NotAPointer {
                    reg: a.reg,
                    what: base.describe(),
                },
            };
            return Err(self.err(a.pc, kind));
        }
        Ok(self.unproven(a.pc, st, RegionKind::Unknown, a.acc))
    }

    /// Through the context pointer at offset `base`: the access must be one field's, and is
    /// converted to bpfx's layout after the analysis (`context.rs`).
    fn mem_context(
        &mut self,
        a: Access,
        st: &mut State,
        layout: &ContextLayout,
        base: Off,
    ) -> R<Value> {
        let pc = a.pc;
        self.check_leak(pc, a.acc, "the context")?;
        let op = match a.acc {
            Acc::Load { signed } => CtxOp::Load { signed },
            Acc::Store { .. } => CtxOp::Store,
            Acc::Atomic { .. } => CtxOp::Atomic,
        };
        let mem = self.cfg.mem_size;
        let r = context::check_access(layout, mem, a.reg, base, a.off, a.size, op)
            .map_err(|k| self.err(pc, k))?;
        self.ctx
            .record(pc, Seen::Field(r.access))
            .map_err(|k| self.err(pc, k))?;
        if self.strict && !r.in_bounds {
            let real = r.access.base_off + i64::from(r.access.new_off);
            let kind = match mem {
                Some(mem) => K::InputOutOfBounds {
                    off: real,
                    size: u64::from(r.access.new_size),
                    mem,
                },
                None => K::InputSizeUnknown,
            };
            return Err(self.err(pc, kind));
        }
        // Checked mode keeps context pointers spilled across guarded stores that may have hit
        // them (`havoc`), so its context accesses keep their guard.
        let proven = r.in_bounds && self.strict;
        record(&mut self.facts[pc.index()], RegionKind::Input, proven);
        if a.acc.writes() && !proven {
            self.havoc(st);
        }
        // The packet's socket (`__sk_buff.sk`, may be null) or the message's (`sk_msg_md.sk`,
        // never null): its copies share an id, for the null check.
        if let Value::Ptr(
            PtrKind::Sock {
                kind,
                nullable,
                ref_obj,
                ..
            },
            o,
        ) = r.value
        {
            self.next_id += 1;
            let sock = PtrKind::Sock {
                kind,
                nullable,
                id: self.next_id,
                ref_obj,
            };
            return Ok(Value::Ptr(sock, o));
        }
        Ok(r.value)
    }

    /// Forgets the spills a store the analysis cannot place may have hit. In a field
    /// context's `Checked` mode, values that may be the context pointer are kept (their
    /// accesses stay guarded, see [`Self::mem_context`]), so that no context access loses
    /// its conversion to a guarded store elsewhere.
    pub(super) fn havoc(&self, st: &mut State) {
        // Checked mode also keeps spilled sockets: a reference forgotten could never be
        // released, and Checked mode neither proves socket accesses nor lets a helper take a
        // socket the run's table does not hold.
        let ctx = self.layout.is_some();
        if !self.strict {
            st.havoc_keeping(|v| {
                (ctx && context::maybe_context(v))
                    || matches!(v, Value::Ptr(PtrKind::Sock { .. }, _))
            });
        } else {
            st.havoc();
        }
    }

    /// In a field context's `Checked` mode, a non-pointer result computed from a value that
    /// may be the context pointer stays [`Value::Mixed`] (see `context.rs`).
    pub(super) fn ctx_taint(&self, operands: [Value; 2], v: Value) -> Value {
        if self.layout.is_some() && !self.strict {
            context::taint(operands, v)
        } else {
            v
        }
    }

    /// A stack access proven inside frame `frame` somewhere in `[lo, hi]` (from its r10), at
    /// an offset not known exactly: reads need every byte of the span initialised (Strict),
    /// writes may have hit any slot of it, so spills there become plain initialised bytes.
    fn stack_access_var(
        &self,
        a: Access,
        st: &mut State,
        frame: u32,
        (lo, hi): (i64, i64),
    ) -> R<Value> {
        let (pc, size, acc) = (a.pc, a.size, a.acc);
        let Some(fr) = st.frame_mut(frame as usize) else {
            return Err(self.internal(pc, "a stack pointer names a frame the state has not"));
        };
        let span = lo..hi + i64::from(size);
        if !matches!(acc, Acc::Store { .. }) {
            for b in span.clone() {
                let (i, p) = stack_byte(b);
                match fr.stack[i] {
                    Slot::Spill(v) if v.is_pointer_like() && self.strict => {
                        return Err(self.err(
                            pc,
                            K::PartialFill {
                                frame: frame as u8,
                                off: lo,
                                size,
                            },
                        ));
                    }
                    Slot::Bytes(m) if m & (1 << p) == 0 && self.strict => {
                        return Err(self.err(
                            pc,
                            K::UninitStack {
                                frame: frame as u8,
                                off: lo,
                                size,
                            },
                        ));
                    }
                    _ => {}
                }
            }
        }
        if let Acc::Store {
            val,
            src: Some(reg),
        } = acc
            && val.is_pointer_like()
            && self.strict
        {
            return Err(self.err(
                pc,
                K::PartialSpill {
                    reg,
                    what: val.describe(),
                },
            ));
        }
        if acc.writes() {
            for b in span {
                let s = &mut fr.stack[stack_byte(b).0];
                if let Slot::Spill(_) = s {
                    *s = Slot::Bytes(0xff);
                }
            }
        }
        Ok(a.loaded())
    }

    /// An access that keeps its run-time guard. A guarded store may land anywhere the guard
    /// admits, including any active stack frame, so it forgets every spill.
    fn unproven(&mut self, pc: Pc, st: &mut State, region: RegionKind, acc: Acc) -> Value {
        record(&mut self.facts[pc.index()], region, false);
        if acc.writes() {
            self.havoc(st);
        }
        Value::UNKNOWN_SCALAR
    }

    /// Strict mode: a pointer stored outside the stack leaks an address.
    fn check_leak(&self, pc: Pc, acc: Acc, into: &'static str) -> R<()> {
        let (val, src) = match acc {
            Acc::Store { val, src } => (val, src),
            Acc::Atomic { src, val } => (val, Some(src)),
            Acc::Load { .. } => return Ok(()),
        };
        match src {
            Some(reg) if self.strict && val.is_pointer_like() => Err(self.err(
                pc,
                K::PointerLeak {
                    reg,
                    what: val.describe(),
                    into,
                },
            )),
            _ => Ok(()),
        }
    }

    /// A stack access proven inside frame `frame` at byte offset `at` (from its r10).
    fn stack_access(&self, a: Access, st: &mut State, frame: u32, at: i64) -> R<Value> {
        let (pc, size) = (a.pc, a.size);
        let Some(fr) = st.frame_mut(frame as usize) else {
            return Err(self.internal(pc, "a stack pointer names a frame the state has not"));
        };
        let aligned8 = size == 8 && at % 8 == 0;
        let uninit = || {
            self.err(
                pc,
                K::UninitStack {
                    frame: frame as u8,
                    off: at,
                    size,
                },
            )
        };
        let partial = || {
            self.err(
                pc,
                K::PartialFill {
                    frame: frame as u8,
                    off: at,
                    size,
                },
            )
        };
        match a.acc {
            Acc::Load { signed } => {
                if aligned8 {
                    return match fr.stack[stack_byte(at).0] {
                        Slot::Spill(v) => Ok(v),
                        Slot::Bytes(0xff) => Ok(Value::UNKNOWN_SCALAR),
                        Slot::Bytes(_) if self.strict => Err(uninit()),
                        Slot::Bytes(_) => Ok(Value::UNKNOWN_SCALAR),
                    };
                }
                // Byte by byte: the value is known only if every byte is.
                let mut raw = 0u64;
                let mut known = true;
                for i in 0..i64::from(size) {
                    let (slot, p) = stack_byte(at + i);
                    match fr.stack[slot] {
                        Slot::Spill(Value::Scalar(x)) if x.konst().is_some() => {
                            let k = x.konst().unwrap_or_default();
                            raw |= ((k >> (8 * p)) & 0xff) << (8 * i);
                        }
                        Slot::Spill(v) if v.is_pointer_like() => {
                            if self.strict {
                                return Err(partial());
                            }
                            known = false;
                        }
                        Slot::Spill(_) => known = false,
                        Slot::Bytes(m) => {
                            if m & (1 << p) == 0 && self.strict {
                                return Err(uninit());
                            }
                            known = false;
                        }
                    }
                }
                let size_t = match size {
                    1 => Size::B,
                    2 => Size::H,
                    4 => Size::W,
                    _ => Size::Dw,
                };
                Ok(Value::Scalar(if !known {
                    Scalar::load(size, signed)
                } else if signed {
                    Scalar::known(semantics::sign_extend(size_t, raw))
                } else {
                    Scalar::known(raw)
                }))
            }
            Acc::Store { val, src } => {
                let val = match val {
                    Value::NotInit => Value::UNKNOWN_SCALAR,
                    v => v,
                };
                if aligned8 {
                    fr.stack[stack_byte(at).0] = Slot::Spill(val);
                    return Ok(Value::UNKNOWN_SCALAR);
                }
                if val.is_pointer_like()
                    && self.strict
                    && let Some(reg) = src
                {
                    return Err(self.err(
                        pc,
                        K::PartialSpill {
                            reg,
                            what: val.describe(),
                        },
                    ));
                }
                for b in at..at + i64::from(size) {
                    let (i, p) = stack_byte(b);
                    let s = &mut fr.stack[i];
                    *s = Slot::Bytes(s.init_mask() | (1 << p));
                }
                Ok(Value::UNKNOWN_SCALAR)
            }
            Acc::Atomic { .. } => {
                for b in at..at + i64::from(size) {
                    let (i, p) = stack_byte(b);
                    match fr.stack[i] {
                        Slot::Spill(v) if v.is_pointer_like() && self.strict => {
                            return Err(partial());
                        }
                        Slot::Bytes(m) if m & (1 << p) == 0 && self.strict => {
                            return Err(uninit());
                        }
                        _ => {}
                    }
                }
                if aligned8 {
                    fr.stack[stack_byte(at).0] = Slot::Spill(Value::UNKNOWN_SCALAR);
                } else {
                    for b in at..at + i64::from(size) {
                        let (i, p) = stack_byte(b);
                        let s = &mut fr.stack[i];
                        *s = Slot::Bytes(s.init_mask() | (1 << p));
                    }
                }
                Ok(Value::UNKNOWN_SCALAR)
            }
        }
    }
}

/// Whether `n` bytes at offset `at` from a packet pointer with packet id `Some(id)`, or from a
/// packet metadata pointer (`None`), are proven in bounds. A packet access is
/// `[data + V + lo, + n)` for some `V` in `[0, hi - lo]`: in bounds when its highest end is
/// below the proven range, or its `V`-relative end below the range proven for its id. A
/// metadata access `[data_meta + lo, + n)` is in bounds when its highest end lies below the
/// bytes a comparison with `data` proved.
pub(super) fn packet_covers(st: &State, id: Option<u32>, at: Off, n: i64) -> bool {
    let below = |end: i64, range: u64| u64::try_from(end).is_ok_and(|e| e <= range);
    match (at, id) {
        (Off::Range(lo, hi), Some(id)) => {
            lo >= 0 && (below(hi + n, st.pkt) || below(lo + n, st.pkt_range(id)))
        }
        (Off::Range(lo, hi), None) => lo >= 0 && below(hi + n, st.meta),
        (Off::Unknown, _) => false,
    }
}
