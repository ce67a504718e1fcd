//! Abstract interpretation over the control-flow graph: a worklist fixpoint with one stored
//! state per (calling context, join point), transfer functions per instruction class, and the
//! per-pc access facts it leaves behind.
//!
//! Straight-line code is walked with one state mutated in place; a state is stored (and joined)
//! only at the join points [`crate::cfg::Structure::join`] marks, so a million-instruction
//! straight-line program costs one pass and one state. Local calls are analysed per calling
//! context (the chain of call sites, bounded by the frame limit): the callee's frame is pushed
//! onto the state, and its `exit` pops it and flows into the return point of that context.
//!
//! Every rule is a `check_*`-style branch on `self.strict`: in `Strict` mode a violation is an
//! error, in `Checked` mode the value degrades (to an unknown scalar, or an unproven access that
//! keeps its guard). The rule × mode table in `docs/verifier.md` lists them.

use crate::cfg::Structure;
use crate::config::{ArgKind, Config, ContextKind, MapRef, Mode, RetKind};
use crate::domain::{Frame, Off, PtrKind, Scalar, Slot, State, Value};
use crate::error::{VerifyError, VerifyErrorKind as K};
use crate::fold;
use crate::verified::{RegionKind, record};
use bpfx_bytecode::{
    AluOp, AtomicOp, CallTarget, Cond, Imm64, Op, Operand, Pc, Program, Reg, Size, Width,
};
use bpfx_exec::STACK_FRAME_SIZE;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

const FRAME: i64 = STACK_FRAME_SIZE as i64;
const NO_PARENT: u32 = u32::MAX;
const STORED: u32 = u32::MAX;

/// The lines of a verification log: every processed instruction with the state before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifierLog {
    lines: Vec<String>,
    truncated: bool,
}

/// Log lines kept at most; a log longer than this keeps its first lines and says so.
pub const LOG_LIMIT: usize = 100_000;

impl VerifierLog {
    /// The lines, in processing order.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Whether lines were dropped after [`LOG_LIMIT`].
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn push(&mut self, line: String) {
        if self.lines.len() < LOG_LIMIT {
            self.lines.push(line);
        } else {
            self.truncated = true;
        }
    }
}

impl std::fmt::Display for VerifierLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        if self.truncated {
            writeln!(f, "(log truncated after {LOG_LIMIT} lines)")?;
        }
        Ok(())
    }
}

/// A calling context: the call site that created it in its parent context.
#[derive(Debug)]
struct Ctx {
    parent: u32,
    call_site: u32,
}

/// What happens after an instruction.
enum Flow {
    /// Continue at this pc with the state as the instruction left it.
    Next(u32),
    /// Continue at these pcs, in this context, with these states.
    Succ(Vec<(u32, State)>),
    /// Continue in another context (a call or a return).
    Enter(u32, u32, State),
    /// The path ends (outermost exit, or a certain run-time trap).
    Stop,
}

/// One memory access, as the transfer function sees it.
#[derive(Clone, Copy)]
enum Acc {
    Load { signed: bool },
    Store { val: Value, src: Option<Reg> },
    Atomic { src: Reg, val: Value },
}

impl Acc {
    fn writes(self) -> bool {
        !matches!(self, Acc::Load { .. })
    }
}

pub(crate) struct Analysis<'a> {
    prog: &'a Program,
    cfg: &'a Config,
    strict: bool,
    join: &'a [bool],
    keep: &'a [bool],
    ctxs: Vec<Ctx>,
    ctx_ids: HashMap<(u32, u32), u32>,
    states: HashMap<(u32, u32), State>,
    queued: HashSet<(u32, u32)>,
    /// Pending nodes, lowest pc first, so that in loop-free code every predecessor of a join
    /// point is processed before it: `(pc, ctx, carried)` where `carried` indexes `carried`
    /// for a state handed to a single-predecessor pc, or is [`STORED`].
    work: BinaryHeap<Reverse<(u32, u32, u32)>>,
    carried: Vec<Option<State>>,
    free: Vec<u32>,
    pub(crate) facts: Vec<u8>,
    processed: u64,
    log: Option<&'a mut VerifierLog>,
}

type R<T> = Result<T, VerifyError>;

impl<'a> Analysis<'a> {
    pub(crate) fn new(
        prog: &'a Program,
        cfg: &'a Config,
        st: &'a Structure,
        log: Option<&'a mut VerifierLog>,
    ) -> Self {
        Analysis {
            prog,
            cfg,
            strict: cfg.mode == Mode::Strict,
            join: &st.join,
            keep: &st.keep,
            ctxs: Vec::new(),
            ctx_ids: HashMap::new(),
            states: HashMap::new(),
            queued: HashSet::new(),
            work: BinaryHeap::new(),
            carried: Vec::new(),
            free: Vec::new(),
            facts: vec![0; prog.len()],
            processed: 0,
            log,
        }
    }

    /// Runs the fixpoint from the entry and from every `lddw func` target (a callback some
    /// helper may run with unknown scalar arguments).
    pub(crate) fn run(&mut self, funcs: &[Pc]) -> R<()> {
        let entry = self.entry_state();
        let root = self.intern(NO_PARENT, 0);
        self.merge(root, 0, entry);
        let callbacks: Vec<Pc> = self
            .prog
            .iter()
            .filter_map(|(pc, op)| match op {
                Op::LoadImm64 {
                    value: Imm64::Func { .. },
                    ..
                } => op.jump_target(pc),
                _ => None,
            })
            .collect();
        for cb in callbacks {
            debug_assert!(funcs.contains(&cb));
            let ctx = self.intern(NO_PARENT, cb.0);
            let st = self.callback_state();
            self.merge(ctx, cb.0, st);
        }
        while let Some(Reverse((pc, ctx, slot))) = self.work.pop() {
            let st = if slot == STORED {
                let key = (ctx, pc);
                self.queued.remove(&key);
                if self.keep[pc as usize] {
                    self.states[&key].clone()
                } else {
                    self.states.remove(&key).expect("a queued node has a state")
                }
            } else {
                self.free.push(slot);
                self.carried[slot as usize]
                    .take()
                    .expect("a carried state is taken once")
            };
            self.walk(ctx, pc, st)?;
        }
        Ok(())
    }

    fn intern(&mut self, parent: u32, call_site: u32) -> u32 {
        let n = self.ctxs.len() as u32;
        *self.ctx_ids.entry((parent, call_site)).or_insert_with(|| {
            self.ctxs.push(Ctx { parent, call_site });
            n
        })
    }

    fn uninit(&self) -> Value {
        // The execution contract zeroes every register at entry and r1–r5 after a helper call;
        // Checked mode relies on that, Strict mode (the kernel's contract) does not.
        if self.strict {
            Value::NotInit
        } else {
            Value::konst(0)
        }
    }

    fn entry_state(&self) -> State {
        let mut regs = [self.uninit(); 11];
        let (r1, r2) = match self.cfg.mem_size {
            Some(0) if self.cfg.context == ContextKind::Memory => {
                (Value::konst(0), Value::konst(0))
            }
            Some(n) => (Value::Ptr(PtrKind::Input, Off::Known(0)), Value::konst(n)),
            None => (
                Value::Ptr(PtrKind::Input, Off::Known(0)),
                Value::UNKNOWN_SCALAR,
            ),
        };
        regs[1] = r1;
        regs[2] = r2;
        regs[10] = Value::Ptr(PtrKind::Stack { frame: 0 }, Off::Known(0));
        State {
            frames: vec![Frame::new(regs)],
        }
    }

    fn callback_state(&self) -> State {
        let other = if self.strict {
            Value::NotInit
        } else {
            Value::UNKNOWN_SCALAR
        };
        let mut regs = [other; 11];
        for r in &mut regs[1..=5] {
            *r = Value::UNKNOWN_SCALAR;
        }
        regs[10] = Value::Ptr(PtrKind::Stack { frame: 0 }, Off::Known(0));
        State {
            frames: vec![Frame::new(regs)],
        }
    }

    /// Joins `st` into the stored state at (ctx, pc), queueing the node if it changed.
    fn merge(&mut self, ctx: u32, pc: u32, st: State) {
        let key = (ctx, pc);
        let changed = match self.states.get_mut(&key) {
            Some(old) => old.join(&st),
            None => {
                self.states.insert(key, st);
                true
            }
        };
        if changed && self.queued.insert(key) {
            self.work.push(Reverse((pc, ctx, STORED)));
        }
    }

    fn err(&self, pc: u32, kind: K) -> VerifyError {
        VerifyError {
            pc: Pc(pc),
            op: self.prog.get(Pc(pc)).copied(),
            kind,
        }
    }

    fn walk(&mut self, ctx: u32, mut pc: u32, mut st: State) -> R<()> {
        loop {
            self.processed += 1;
            if self.processed > self.cfg.insn_budget {
                return Err(self.err(pc, K::TooComplex(self.cfg.insn_budget)));
            }
            let op = *self
                .prog
                .get(Pc(pc))
                .expect("the structural checks keep every reachable pc an instruction start");
            if let Some(log) = self.log.as_deref_mut() {
                log.push(format!("{}: {op:<28} ; {st}", Pc(pc)));
            }
            let flow = match self.step(ctx, pc, &op, &mut st) {
                Ok(f) => f,
                Err(e) => {
                    if let Some(log) = self.log.as_deref_mut() {
                        log.push(e.to_string());
                    }
                    return Err(e);
                }
            };
            match flow {
                Flow::Stop => return Ok(()),
                Flow::Next(n) => {
                    if self.join[n as usize] {
                        self.merge(ctx, n, st);
                        return Ok(());
                    }
                    pc = n;
                }
                Flow::Enter(c, p, s) => {
                    self.merge(c, p, s);
                    return Ok(());
                }
                Flow::Succ(mut succs) => {
                    if succs.len() == 1 && !self.join[succs[0].0 as usize] {
                        let (n, s) = succs.pop().expect("one successor");
                        pc = n;
                        st = s;
                        continue;
                    }
                    for (n, s) in succs {
                        if self.join[n as usize] {
                            self.merge(ctx, n, s);
                        } else {
                            let slot = match self.free.pop() {
                                Some(i) => {
                                    self.carried[i as usize] = Some(s);
                                    i
                                }
                                None => {
                                    self.carried.push(Some(s));
                                    (self.carried.len() - 1) as u32
                                }
                            };
                            self.work.push(Reverse((n, ctx, slot)));
                        }
                    }
                    return Ok(());
                }
            }
        }
    }

    // ---------------------------------------------------------------- registers

    /// Reads a register as an operand: uninitialised is an error in Strict mode and an unknown
    /// scalar in Checked mode.
    fn read(&self, pc: u32, st: &State, r: Reg) -> R<Value> {
        match st.cur().regs[r.index()] {
            Value::NotInit if self.strict => Err(self.err(pc, K::UninitRegister(r))),
            Value::NotInit => Ok(Value::UNKNOWN_SCALAR),
            v => Ok(v),
        }
    }

    fn set(st: &mut State, r: Reg, v: Value) {
        st.cur_mut().regs[r.index()] = v;
    }

    /// A rule violation: an error in Strict mode; in Checked mode the result degrades to an
    /// unknown scalar.
    fn degrade(&self, pc: u32, kind: K) -> R<Value> {
        if self.strict {
            Err(self.err(pc, kind))
        } else {
            Ok(Value::UNKNOWN_SCALAR)
        }
    }

    // ---------------------------------------------------------------- transfer

    fn step(&mut self, ctx: u32, pc: u32, op: &Op, st: &mut State) -> R<Flow> {
        let next = pc + op.slots();
        match *op {
            Op::Alu {
                width,
                op: aop,
                dst,
                src,
            } => {
                let (s, sreg) = match src {
                    Operand::Imm(i) => (Value::konst(fold::imm(i)), None),
                    Operand::Reg(r) => (self.read(pc, st, r)?, Some(r)),
                };
                let v = if aop == AluOp::Mov {
                    self.check_mov(pc, width, s, sreg.unwrap_or(dst))?
                } else {
                    let d = self.read(pc, st, dst)?;
                    self.check_alu(pc, width, aop, dst, d, sreg, s)?
                };
                Self::set(st, dst, v);
            }
            Op::Neg { width, dst } => {
                let d = self.read(pc, st, dst)?;
                let v = match d {
                    Value::Scalar(s) => Value::Scalar(Scalar {
                        konst: s.konst.map(|k| fold::neg(width, k)),
                    }),
                    _ => self.pointer_op(pc, "neg", dst, d)?,
                };
                Self::set(st, dst, v);
            }
            Op::Movsx {
                width,
                from,
                dst,
                src,
            } => {
                let s = self.read(pc, st, src)?;
                let v = match s {
                    Value::Scalar(x) => Value::Scalar(Scalar {
                        konst: x.konst.map(|k| fold::movsx(width, from, k)),
                    }),
                    _ => self.pointer_op(pc, "movsx", src, s)?,
                };
                Self::set(st, dst, v);
            }
            Op::Endian { order, bits, dst } => {
                let d = self.read(pc, st, dst)?;
                let v = match d {
                    Value::Scalar(x) => Value::Scalar(Scalar {
                        konst: x.konst.map(|k| fold::endian(order, bits, k)),
                    }),
                    _ => self.pointer_op(pc, "byte swap", dst, d)?,
                };
                Self::set(st, dst, v);
            }
            Op::Load {
                size,
                signed,
                dst,
                base,
                off,
            } => {
                let b = self.read(pc, st, base)?;
                let v = self.check_mem(pc, st, base, b, off, size.bytes(), Acc::Load { signed })?;
                Self::set(st, dst, v);
            }
            Op::Store {
                size,
                base,
                off,
                src,
            } => {
                let (val, sreg) = match src {
                    Operand::Imm(i) => (Value::konst(fold::imm(i)), None),
                    Operand::Reg(r) => (self.read(pc, st, r)?, Some(r)),
                };
                let b = self.read(pc, st, base)?;
                let acc = Acc::Store { val, src: sreg };
                self.check_mem(pc, st, base, b, off, size.bytes(), acc)?;
            }
            Op::Atomic {
                width,
                op: aop,
                fetch,
                base,
                off,
                src,
            } => {
                let val = self.read(pc, st, src)?;
                if aop == AtomicOp::Cmpxchg {
                    self.read(pc, st, Reg::R0)?;
                }
                let b = self.read(pc, st, base)?;
                let size = width.bits() / 8;
                let old = self.check_mem(pc, st, base, b, off, size, Acc::Atomic { src, val })?;
                match aop {
                    AtomicOp::Cmpxchg => Self::set(st, Reg::R0, old),
                    _ if fetch => Self::set(st, src, old),
                    _ => {}
                }
            }
            Op::LoadImm64 { dst, value } => {
                let v = match value {
                    Imm64::Value(v) => Value::konst(v),
                    Imm64::MapFd(fd) => self.check_map(pc, MapRef::Fd(fd), None)?,
                    Imm64::MapIdx(i) => self.check_map(pc, MapRef::Idx(i), None)?,
                    Imm64::MapValue { fd, off } => self.check_map(pc, MapRef::Fd(fd), Some(off))?,
                    Imm64::MapIdxValue { idx, off } => {
                        self.check_map(pc, MapRef::Idx(idx), Some(off))?
                    }
                    Imm64::BtfId(_) => self.degrade(pc, K::BtfVariable)?,
                    Imm64::Func { .. } => Value::konst(u64::from(
                        op.jump_target(Pc(pc)).expect("lddw func has a target").0,
                    )),
                };
                Self::set(st, dst, v);
            }
            Op::LoadPacket { index, .. } => {
                if let Some(r) = index {
                    let v = self.read(pc, st, r)?;
                    if v.is_pointer_like() {
                        self.degrade(pc, pointer_arith("ldind", r, v))?;
                    }
                }
                Self::set(st, Reg::R0, Value::UNKNOWN_SCALAR);
            }
            Op::Ja { .. } => {
                let t = op.jump_target(Pc(pc)).expect("ja has a target").0;
                return Ok(Flow::Next(t));
            }
            Op::Branch {
                width,
                cond,
                lhs,
                rhs,
                ..
            } => {
                let t = op.jump_target(Pc(pc)).expect("a branch has a target").0;
                return self.check_branch(pc, st, width, cond, lhs, rhs, next, t);
            }
            Op::Call(CallTarget::Helper(id)) => {
                if !self.call_helper(pc, st, id)? {
                    return Ok(Flow::Stop);
                }
            }
            Op::Call(CallTarget::Register(r)) => {
                let v = self.read(pc, st, r)?;
                match v {
                    Value::Scalar(Scalar { konst: Some(id) }) if id <= u64::from(u32::MAX) => {
                        let id = id as u32;
                        if self.cfg.helpers.get(id).is_some() {
                            self.call_helper(pc, st, id)?;
                        } else if self.strict {
                            return Err(self.err(pc, K::UnknownHelper(id)));
                        } else {
                            // The run traps with UnknownHelper here.
                            return Ok(Flow::Stop);
                        }
                    }
                    _ if self.strict => return Err(self.err(pc, K::UnknownCallTarget(r))),
                    _ => {
                        // Any helper may run: it may write any memory it is given.
                        st.havoc();
                        self.clobber_after_helper(st);
                        Self::set(st, Reg::R0, Value::UNKNOWN_SCALAR);
                    }
                }
            }
            Op::Call(CallTarget::Local { .. }) => {
                let entry = op.jump_target(Pc(pc)).expect("a local call has a target").0;
                return self.check_local_call(ctx, pc, st, entry);
            }
            Op::Call(CallTarget::Kfunc(_)) => {
                return Err(self.err(pc, K::Kfunc));
            }
            Op::Exit => return self.check_exit(ctx, pc, st),
        }
        Ok(Flow::Next(next))
    }

    fn check_mov(&self, pc: u32, width: Width, s: Value, sreg: Reg) -> R<Value> {
        match (width, s) {
            (Width::W64, _) => Ok(s),
            (Width::W32, Value::Scalar(x)) => Ok(Value::Scalar(Scalar {
                konst: x.konst.map(|k| k & 0xffff_ffff),
            })),
            (Width::W32, _) => self.degrade(pc, pointer_arith("mov32", sreg, s)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_alu(
        &self,
        pc: u32,
        width: Width,
        op: AluOp,
        dst: Reg,
        d: Value,
        sreg: Option<Reg>,
        s: Value,
    ) -> R<Value> {
        let name = |op: AluOp| match width {
            Width::W64 => op.mnemonic().to_string(),
            Width::W32 => format!("{}32", op.mnemonic()),
        };
        // The register to blame: the pointer operand, the destination first.
        let blame = match sreg {
            Some(r) if !d.is_pointer_like() => (r, s),
            _ => (dst, d),
        };
        let bad = || -> R<Value> {
            self.degrade(
                pc,
                K::PointerArith {
                    op: name(op),
                    reg: blame.0,
                    what: blame.1.describe(),
                },
            )
        };
        match (d, s) {
            (Value::Scalar(a), Value::Scalar(b)) => Ok(Value::Scalar(Scalar {
                konst: match (a.konst, b.konst) {
                    (Some(x), Some(y)) => Some(fold::alu(width, op, x, y)),
                    _ => None,
                },
            })),
            (Value::Ptr(..) | Value::MapHandle(_), Value::Ptr(..) | Value::MapHandle(_))
                if op != AluOp::Sub =>
            {
                self.degrade(
                    pc,
                    K::TwoPointers {
                        op: name(op),
                        dst,
                        src: sreg.expect("a pointer operand is a register"),
                    },
                )
            }
            _ if width == Width::W32 => bad(),
            (Value::Ptr(k, o), Value::Scalar(c)) if arith_ok(k) && op == AluOp::Add => {
                Ok(Value::Ptr(k, o.add(c.konst.map(|v| v as i64))))
            }
            (Value::Scalar(c), Value::Ptr(k, o)) if arith_ok(k) && op == AluOp::Add => {
                Ok(Value::Ptr(k, o.add(c.konst.map(|v| v as i64))))
            }
            (Value::Ptr(k, o), Value::Scalar(c)) if arith_ok(k) && op == AluOp::Sub => Ok(
                Value::Ptr(k, o.add(c.konst.and_then(|v| (v as i64).checked_neg()))),
            ),
            (
                Value::Ptr(PtrKind::Packet | PtrKind::PacketEnd, _),
                Value::Ptr(PtrKind::Packet | PtrKind::PacketEnd, _),
            ) if op == AluOp::Sub => Ok(Value::UNKNOWN_SCALAR),
            (Value::Ptr(ka, oa), Value::Ptr(kb, ob))
                if op == AluOp::Sub && ka == kb && arith_ok(ka) =>
            {
                Ok(Value::Scalar(Scalar {
                    konst: match (oa, ob) {
                        (Off::Known(a), Off::Known(b)) => Some(a.wrapping_sub(b) as u64),
                        _ => None,
                    },
                }))
            }
            _ => bad(),
        }
    }

    fn pointer_op(&self, pc: u32, op: &'static str, r: Reg, v: Value) -> R<Value> {
        self.degrade(pc, pointer_arith(op, r, v))
    }

    fn check_map(&self, pc: u32, map: MapRef, value_off: Option<u32>) -> R<Value> {
        if self.strict && self.cfg.maps.get(map).is_none() {
            return Err(self.err(pc, K::UnknownMap(map)));
        }
        Ok(match value_off {
            None => Value::MapHandle(map),
            Some(off) => Value::Ptr(
                PtrKind::MapValue {
                    map,
                    nullable: false,
                },
                Off::Known(0).add(Some(i64::from(off))),
            ),
        })
    }

    // ---------------------------------------------------------------- memory

    /// Checks a load, store or atomic and applies it to the state; returns the loaded (or, for
    /// atomics, the old) value.
    #[allow(clippy::too_many_arguments)]
    fn check_mem(
        &mut self,
        pc: u32,
        st: &mut State,
        reg: Reg,
        base: Value,
        off: i16,
        size: u32,
        acc: Acc,
    ) -> R<Value> {
        let off = i64::from(off);
        match base {
            Value::Ptr(PtrKind::Stack { frame }, o) => match o.add(Some(off)) {
                Off::Known(a) if a >= -FRAME && a + i64::from(size) <= 0 => {
                    record(&mut self.facts[pc as usize], RegionKind::Stack, true);
                    self.stack_access(pc, st, frame, a, size, acc)
                }
                Off::Known(a) if self.strict => {
                    Err(self.err(pc, K::StackOutOfBounds { off: a, size }))
                }
                Off::Unknown if self.strict => Err(self.err(
                    pc,
                    K::VariableOffset {
                        reg,
                        what: "a pointer to the stack",
                    },
                )),
                _ => Ok(self.unproven(pc, st, RegionKind::Stack, acc)),
            },
            Value::Ptr(PtrKind::Input, o) => {
                self.check_leak(pc, acc, "the input memory")?;
                let at = o.add(Some(off));
                let in_bounds = match (self.cfg.mem_size, at) {
                    (Some(mem), Off::Known(a)) => {
                        a >= 0
                            && (a as u64)
                                .checked_add(u64::from(size))
                                .is_some_and(|e| e <= mem)
                    }
                    _ => false,
                };
                if self.strict && !in_bounds {
                    let kind = match (self.cfg.mem_size, at) {
                        (None, _) => K::InputSizeUnknown,
                        (Some(mem), Off::Known(a)) => K::InputOutOfBounds {
                            off: a,
                            size: u64::from(size),
                            mem,
                        },
                        (Some(_), Off::Unknown) => K::VariableOffset {
                            reg,
                            what: "a pointer to the input memory",
                        },
                    };
                    return Err(self.err(pc, kind));
                }
                // Input accesses keep their guard even when statically in bounds: the engines do
                // not yet check the input length against `mem_size` at entry.
                record(&mut self.facts[pc as usize], RegionKind::Input, false);
                if acc.writes() && !in_bounds {
                    st.havoc();
                }
                Ok(match (acc, self.cfg.context, at) {
                    (Acc::Load { .. }, ContextKind::Packet { data, data_end }, Off::Known(a))
                        if size == 8 =>
                    {
                        if a == i64::from(data) {
                            Value::Ptr(PtrKind::Packet, Off::Known(0))
                        } else if a == i64::from(data_end) {
                            Value::Ptr(PtrKind::PacketEnd, Off::Known(0))
                        } else {
                            Value::UNKNOWN_SCALAR
                        }
                    }
                    _ => Value::UNKNOWN_SCALAR,
                })
            }
            Value::Ptr(PtrKind::MapValue { map, nullable }, o) => {
                if nullable && self.strict {
                    return Err(self.err(pc, K::MaybeNull(reg)));
                }
                self.check_leak(pc, acc, "a map value")?;
                let at = o.add(Some(off));
                let def = self.cfg.maps.get(map);
                let in_bounds = !nullable
                    && match (def, at) {
                        (Some(d), Off::Known(a)) => {
                            a >= 0 && a + i64::from(size) <= i64::from(d.value_size)
                        }
                        _ => false,
                    };
                if self.strict && !in_bounds {
                    let kind = match (def, at) {
                        (None, _) => K::UnknownMap(map),
                        (Some(d), Off::Known(a)) => K::MapValueOutOfBounds {
                            off: a,
                            size: u64::from(size),
                            value_size: d.value_size,
                        },
                        (Some(_), Off::Unknown) => K::VariableOffset {
                            reg,
                            what: "a pointer to a map value",
                        },
                    };
                    return Err(self.err(pc, kind));
                }
                record(&mut self.facts[pc as usize], RegionKind::MapValue, false);
                if acc.writes() && !in_bounds {
                    st.havoc();
                }
                Ok(Value::UNKNOWN_SCALAR)
            }
            Value::Ptr(PtrKind::Packet, _) => {
                if self.strict {
                    return Err(self.err(pc, K::PacketUnproven(reg)));
                }
                Ok(self.unproven(pc, st, RegionKind::Packet, acc))
            }
            _ => {
                if self.strict {
                    let kind = match base {
                        Value::NotInit => K::UninitRegister(reg),
                        _ => K::NotAPointer {
                            reg,
                            what: base.describe(),
                        },
                    };
                    return Err(self.err(pc, kind));
                }
                Ok(self.unproven(pc, st, RegionKind::Unknown, acc))
            }
        }
    }

    /// An access that keeps its run-time guard. A guarded store may land anywhere the guard
    /// admits, including any active stack frame, so it forgets every spill.
    fn unproven(&mut self, pc: u32, st: &mut State, region: RegionKind, acc: Acc) -> Value {
        record(&mut self.facts[pc as usize], region, false);
        if acc.writes() {
            st.havoc();
        }
        Value::UNKNOWN_SCALAR
    }

    /// Strict mode: a pointer stored outside the stack leaks an address.
    fn check_leak(&self, pc: u32, acc: Acc, into: &'static str) -> R<()> {
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

    /// A stack access proven inside frame `frame` at byte offset `a` (from its r10).
    fn stack_access(
        &self,
        pc: u32,
        st: &mut State,
        frame: u32,
        a: i64,
        size: u32,
        acc: Acc,
    ) -> R<Value> {
        let fr = &mut st.frames[frame as usize];
        let slot_of = |b: i64| ((-b - 1) / 8) as usize;
        let pos_of = |b: i64| (b + 8 * (slot_of(b) as i64 + 1)) as u32;
        let aligned8 = size == 8 && a % 8 == 0;
        let uninit = || {
            self.err(
                pc,
                K::UninitStack {
                    frame: frame as u8,
                    off: a,
                    size,
                },
            )
        };
        let partial = || {
            self.err(
                pc,
                K::PartialFill {
                    frame: frame as u8,
                    off: a,
                    size,
                },
            )
        };
        match acc {
            Acc::Load { signed } => {
                if aligned8 {
                    return match fr.stack[slot_of(a)] {
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
                    let b = a + i;
                    let p = pos_of(b);
                    match fr.stack[slot_of(b)] {
                        Slot::Spill(Value::Scalar(Scalar { konst: Some(k) })) => {
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
                Ok(Value::Scalar(Scalar {
                    konst: known.then(|| {
                        if signed {
                            fold::sign_extend(size_t, raw)
                        } else {
                            raw
                        }
                    }),
                }))
            }
            Acc::Store { val, src } => {
                let val = match val {
                    Value::NotInit => Value::UNKNOWN_SCALAR,
                    v => v,
                };
                if aligned8 {
                    fr.stack[slot_of(a)] = Slot::Spill(val);
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
                for b in a..a + i64::from(size) {
                    let s = &mut fr.stack[slot_of(b)];
                    *s = Slot::Bytes(s.init_mask() | (1 << pos_of(b)));
                }
                Ok(Value::UNKNOWN_SCALAR)
            }
            Acc::Atomic { .. } => {
                for b in a..a + i64::from(size) {
                    match fr.stack[slot_of(b)] {
                        Slot::Spill(v) if v.is_pointer_like() && self.strict => {
                            return Err(partial());
                        }
                        Slot::Bytes(m) if m & (1 << pos_of(b)) == 0 && self.strict => {
                            return Err(uninit());
                        }
                        _ => {}
                    }
                }
                if aligned8 {
                    fr.stack[slot_of(a)] = Slot::Spill(Value::UNKNOWN_SCALAR);
                } else {
                    for b in a..a + i64::from(size) {
                        let s = &mut fr.stack[slot_of(b)];
                        *s = Slot::Bytes(s.init_mask() | (1 << pos_of(b)));
                    }
                }
                Ok(Value::UNKNOWN_SCALAR)
            }
        }
    }

    // ---------------------------------------------------------------- control

    #[allow(clippy::too_many_arguments)]
    fn check_branch(
        &self,
        pc: u32,
        st: &mut State,
        width: Width,
        cond: Cond,
        lhs: Reg,
        rhs: Operand,
        next: u32,
        target: u32,
    ) -> R<Flow> {
        let l = self.read(pc, st, lhs)?;
        let r = match rhs {
            Operand::Imm(i) => Value::konst(fold::imm(i)),
            Operand::Reg(x) => self.read(pc, st, x)?,
        };
        // Both sides known: only one edge is feasible.
        if let (
            Value::Scalar(Scalar { konst: Some(a) }),
            Value::Scalar(Scalar { konst: Some(b) }),
        ) = (l, r)
        {
            let t = if cond.eval(a, b, width) { target } else { next };
            return Ok(Flow::Next(t));
        }
        // Equality with a constant refines the register on the equal edge; a null check on a
        // map value pointer refines it on both edges.
        let refine = match (width, cond, l, r) {
            (
                Width::W64,
                Cond::Eq | Cond::Ne,
                Value::Ptr(
                    PtrKind::MapValue {
                        map,
                        nullable: true,
                    },
                    o,
                ),
                Value::Scalar(Scalar { konst: Some(0) }),
            ) => Some((
                Value::konst(0),
                Value::Ptr(
                    PtrKind::MapValue {
                        map,
                        nullable: false,
                    },
                    o,
                ),
            )),
            (
                Width::W64,
                Cond::Eq | Cond::Ne,
                Value::Scalar(Scalar { konst: None }),
                Value::Scalar(Scalar { konst: Some(k) }),
            ) => Some((Value::konst(k), l)),
            _ => None,
        };
        let mut taken = st.clone();
        let mut fall = std::mem::replace(st, empty_state());
        if let Some((eq, ne)) = refine {
            let (t, f) = if cond == Cond::Eq { (eq, ne) } else { (ne, eq) };
            Self::set(&mut taken, lhs, t);
            Self::set(&mut fall, lhs, f);
        }
        Ok(Flow::Succ(vec![(next, fall), (target, taken)]))
    }

    /// Applies helper `id`'s signature; returns false when the call certainly traps.
    fn call_helper(&self, pc: u32, st: &mut State, id: u32) -> R<bool> {
        let Some(sig) = self.cfg.helpers.get(id) else {
            if self.strict {
                return Err(self.err(pc, K::UnknownHelper(id)));
            }
            return Ok(false);
        };
        let regs = st.cur().regs;
        let map_arg = sig
            .args
            .iter()
            .position(|k| *k == ArgKind::MapHandle)
            .map(|i| regs[i + 1]);
        let map = match map_arg {
            Some(Value::MapHandle(m)) => Some(m),
            _ => None,
        };
        let arg_err = |reg: Reg, expected: &'static str, v: Value| {
            self.err(
                pc,
                K::HelperArg {
                    helper: sig.name.clone(),
                    reg,
                    expected,
                    found: v.describe(),
                },
            )
        };
        let mut havoc = false;
        let mut writes: Vec<(u32, i64, u64)> = Vec::new();
        for (i, kind) in sig.args.iter().enumerate().take(5) {
            let reg = Reg::new(i as u8 + 1).expect("r1..=r5");
            let v = regs[i + 1];
            if self.strict && v == Value::NotInit {
                return Err(self.err(pc, K::UninitRegister(reg)));
            }
            match *kind {
                ArgKind::Scalar => {
                    if self.strict && !matches!(v, Value::Scalar(_)) {
                        return Err(arg_err(reg, "a scalar", v));
                    }
                }
                ArgKind::Anything => {}
                ArgKind::MapHandle => {
                    // A map handle is a capability only `lddw` creates: no mode forges one.
                    if !matches!(v, Value::MapHandle(_)) {
                        return Err(arg_err(reg, "a map handle", v));
                    }
                }
                ArgKind::PtrToMem { size_arg } => {
                    let size = match size_arg {
                        Some(j) => match regs.get(j + 1) {
                            Some(Value::Scalar(Scalar { konst: Some(n) })) => Some(*n),
                            _ if self.strict => {
                                let sr = Reg::new(j as u8 + 1).unwrap_or(Reg::R0);
                                return Err(self.err(pc, K::HelperSize(sr, sig.name.clone())));
                            }
                            _ => None,
                        },
                        None => None,
                    };
                    self.helper_mem(pc, st, reg, v, size, true, false, &mut havoc, &mut writes)
                        .map_err(|e| e.unwrap_or_else(|| arg_err(reg, "a pointer to memory", v)))?;
                }
                ArgKind::PtrToStackOrMem => {
                    self.helper_mem(pc, st, reg, v, None, false, false, &mut havoc, &mut writes)
                        .map_err(|e| {
                            e.unwrap_or_else(|| {
                                arg_err(reg, "a pointer to the stack or input memory", v)
                            })
                        })?;
                }
                ArgKind::MapKey | ArgKind::MapValue => {
                    let def = map.and_then(|m| self.cfg.maps.get(m));
                    let size = def.map(|d| {
                        u64::from(if *kind == ArgKind::MapKey {
                            d.key_size
                        } else {
                            d.value_size
                        })
                    });
                    if self.strict && size.is_none() {
                        let m = map.unwrap_or(MapRef::Fd(-1));
                        return Err(self.err(pc, K::UnknownMap(m)));
                    }
                    let expected = if *kind == ArgKind::MapKey {
                        "a pointer to a map key"
                    } else {
                        "a pointer to a map value"
                    };
                    self.helper_mem(pc, st, reg, v, size, true, true, &mut havoc, &mut writes)
                        .map_err(|e| e.unwrap_or_else(|| arg_err(reg, expected, v)))?;
                }
            }
        }
        // Effects: memory the helper may write, then the registers.
        if havoc {
            st.havoc();
        }
        for (frame, a, n) in writes {
            let fr = &mut st.frames[frame as usize];
            for b in a..a + n as i64 {
                let i = ((-b - 1) / 8) as usize;
                let p = (b + 8 * (i as i64 + 1)) as u32;
                let s = &mut fr.stack[i];
                *s = Slot::Bytes(s.init_mask() | (1 << p));
            }
        }
        let r0 = match sig.ret {
            RetKind::Scalar => Value::UNKNOWN_SCALAR,
            RetKind::MapValueOrNull => match map {
                Some(m) => Value::Ptr(
                    PtrKind::MapValue {
                        map: m,
                        nullable: true,
                    },
                    Off::Known(0),
                ),
                None => Value::UNKNOWN_SCALAR,
            },
            RetKind::Void if self.strict => Value::NotInit,
            RetKind::Void => Value::UNKNOWN_SCALAR,
        };
        self.clobber_after_helper(st);
        Self::set(st, Reg::R0, r0);
        Ok(true)
    }

    fn clobber_after_helper(&self, st: &mut State) {
        let v = self.uninit();
        for r in &mut st.cur_mut().regs[1..=5] {
            *r = v;
        }
    }

    /// Checks one memory argument of a helper. `Err(None)` is a type mismatch the caller words;
    /// `Err(Some(e))` a finished error. Records the bytes the helper may write (a precise
    /// stack range) or asks for a havoc.
    #[allow(clippy::too_many_arguments)]
    fn helper_mem(
        &self,
        pc: u32,
        st: &State,
        reg: Reg,
        v: Value,
        size: Option<u64>,
        any_region: bool,
        read_only: bool,
        havoc: &mut bool,
        writes: &mut Vec<(u32, i64, u64)>,
    ) -> Result<(), Option<VerifyError>> {
        let ok_kind = match v {
            Value::Ptr(PtrKind::Stack { .. } | PtrKind::Input, _) => true,
            Value::Ptr(PtrKind::MapValue { nullable, .. }, _) if any_region => {
                if nullable && self.strict {
                    return Err(Some(self.err(pc, K::MaybeNull(reg))));
                }
                true
            }
            Value::Ptr(PtrKind::Packet, _) => any_region && !self.strict,
            _ => false,
        };
        if !ok_kind {
            if self.strict {
                return Err(None);
            }
            *havoc |= !read_only;
            return Ok(());
        }
        // Bounds and initialisation of stack ranges of known size.
        match (v, size) {
            (Value::Ptr(PtrKind::Stack { frame }, Off::Known(a)), Some(n))
                if a >= -FRAME && n <= FRAME as u64 && a + n as i64 <= 0 =>
            {
                if read_only {
                    let fr = &st.frames[frame as usize];
                    for b in a..a + n as i64 {
                        let i = ((-b - 1) / 8) as usize;
                        let p = (b + 8 * (i as i64 + 1)) as u32;
                        if fr.stack[i].init_mask() & (1 << p) == 0 && self.strict {
                            return Err(Some(self.err(
                                pc,
                                K::UninitStack {
                                    frame: frame as u8,
                                    off: a,
                                    size: n as u32,
                                },
                            )));
                        }
                    }
                } else {
                    writes.push((frame, a, n));
                }
                Ok(())
            }
            (Value::Ptr(PtrKind::Stack { .. }, Off::Known(a)), Some(n)) if self.strict => {
                Err(Some(self.err(
                    pc,
                    K::StackOutOfBounds {
                        off: a,
                        size: n.min(u64::from(u32::MAX)) as u32,
                    },
                )))
            }
            (Value::Ptr(PtrKind::Input, Off::Known(a)), Some(n)) if self.strict => {
                match self.cfg.mem_size {
                    Some(mem) if a >= 0 && (a as u64).checked_add(n).is_some_and(|e| e <= mem) => {
                        Ok(())
                    }
                    Some(mem) => Err(Some(self.err(
                        pc,
                        K::InputOutOfBounds {
                            off: a,
                            size: n,
                            mem,
                        },
                    ))),
                    None => Err(Some(self.err(pc, K::InputSizeUnknown))),
                }
            }
            (Value::Ptr(PtrKind::MapValue { map, .. }, Off::Known(a)), Some(n)) if self.strict => {
                let vs = self.cfg.maps.get(map).map_or(0, |d| d.value_size);
                if a >= 0 && a.saturating_add(n as i64) <= i64::from(vs) {
                    Ok(())
                } else {
                    Err(Some(self.err(
                        pc,
                        K::MapValueOutOfBounds {
                            off: a,
                            size: n,
                            value_size: vs,
                        },
                    )))
                }
            }
            (Value::Ptr(kind, Off::Unknown), Some(_)) if self.strict => Err(Some(self.err(
                pc,
                K::VariableOffset {
                    reg,
                    what: Value::Ptr(kind, Off::Unknown).describe(),
                },
            ))),
            _ => {
                // Size unknown (or the helper bounds itself): any writable byte may change.
                *havoc |= !read_only;
                Ok(())
            }
        }
    }

    fn check_local_call(&mut self, ctx: u32, pc: u32, st: &mut State, entry: u32) -> R<Flow> {
        let frames = st.frames.len() + 1;
        if frames > self.cfg.max_frames as usize {
            if self.strict {
                return Err(self.err(
                    pc,
                    K::CallTooDeep {
                        frames,
                        max: self.cfg.max_frames,
                    },
                ));
            }
            // The run traps with CallDepthExceeded here.
            return Ok(Flow::Stop);
        }
        let caller = st.cur().regs;
        let mut regs = if self.strict {
            [Value::NotInit; 11]
        } else {
            caller
        };
        regs[1..=5].copy_from_slice(&caller[1..=5]);
        regs[10] = Value::Ptr(
            PtrKind::Stack {
                frame: (frames - 1) as u32,
            },
            Off::Known(0),
        );
        let callee = self.intern(ctx, pc);
        let mut st = std::mem::replace(st, empty_state());
        st.frames.push(Frame::new(regs));
        Ok(Flow::Enter(callee, entry, st))
    }

    fn check_exit(&mut self, ctx: u32, pc: u32, st: &mut State) -> R<Flow> {
        let r0 = st.cur().regs[0];
        let (parent, call_site) = (
            self.ctxs[ctx as usize].parent,
            self.ctxs[ctx as usize].call_site,
        );
        if parent == NO_PARENT {
            if self.strict {
                match r0 {
                    Value::NotInit => return Err(self.err(pc, K::UninitRegister(Reg::R0))),
                    Value::Scalar(_) => {}
                    v => return Err(self.err(pc, K::ReturnNotScalar(v.describe()))),
                }
            }
            return Ok(Flow::Stop);
        }
        if self.strict && r0 == Value::NotInit {
            return Err(self.err(pc, K::UninitRegister(Reg::R0)));
        }
        let mut st = std::mem::replace(st, empty_state());
        let callee = st.frames.pop().expect("a callee has its own frame");
        let gone = st.frames.len() as u32;
        {
            let caller = st.cur_mut();
            caller.regs[0] = callee.regs[0];
            for r in 1..=5 {
                caller.regs[r] = if self.strict {
                    Value::NotInit
                } else {
                    callee.regs[r]
                };
            }
        }
        // Pointers into the returning frame must not outlive it.
        let dangling =
            |v: &Value| matches!(v, Value::Ptr(PtrKind::Stack { frame }, _) if *frame >= gone);
        let depth = st.frames.len();
        for (d, fr) in st.frames.iter_mut().enumerate() {
            if d + 1 == depth {
                for (r, v) in fr.regs.iter_mut().enumerate() {
                    if dangling(v) {
                        if self.strict {
                            return Err(self.err(pc, K::StackPointerEscapes(format!("r{r}"))));
                        }
                        *v = Value::UNKNOWN_SCALAR;
                    }
                }
            }
            for (i, s) in fr.stack.iter_mut().enumerate() {
                if let Slot::Spill(v) = s
                    && dangling(v)
                {
                    if self.strict {
                        let at = format!("the pointer spilled at fp{d}-{}", 8 * (i + 1));
                        return Err(self.err(pc, K::StackPointerEscapes(at)));
                    }
                    *s = Slot::Spill(Value::UNKNOWN_SCALAR);
                }
            }
        }
        Ok(Flow::Enter(parent, call_site + 1, st))
    }
}

/// Pointer kinds that arithmetic with a scalar keeps.
fn arith_ok(k: PtrKind) -> bool {
    !matches!(
        k,
        PtrKind::PacketEnd | PtrKind::MapValue { nullable: true, .. }
    )
}

fn pointer_arith(op: &str, reg: Reg, v: Value) -> K {
    K::PointerArith {
        op: op.to_string(),
        reg,
        what: v.describe(),
    }
}

/// A placeholder left behind when a state is moved out of a `&mut`; never read.
fn empty_state() -> State {
    State { frames: Vec::new() }
}
