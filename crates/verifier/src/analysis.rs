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
//! Loops are handled per mode. `Strict` mode explores them iteration by iteration, as the
//! kernel does: each arrival at a loop head over a back-edge starts a new iteration context,
//! states of one iteration join only with each other, and states leaving the loop join again
//! in the context around it. An iteration whose state at the head is covered by an earlier
//! iteration's ([`State::le`]) may repeat forever and is rejected; a loop that keeps producing
//! new states runs into the instruction budget, which names it. `Checked` mode joins the
//! iterations at the head and widens there ([`State::widen`]), so its fixpoint is reached in a
//! few rounds whatever the loop does.
//!
//! Every rule is a `check_*`-style branch on `self.strict`: in `Strict` mode a violation is an
//! error, in `Checked` mode the value degrades (to an unknown scalar, or an unproven access that
//! keeps its guard). The rule × mode table in `docs/verifier.md` lists them.

use crate::cfg::{Loops, Structure};
use crate::config::{ArgKind, Config, ContextKind, ContextLayout, MapRef, Mode, RetKind};
use crate::context::{self, CtxFacts, CtxOp, Seen};
use crate::domain::{Frame, MAX_TRACKED_OFF, Off, PtrKind, Scalar, Slot, State, Value};
use crate::error::{VerifyError, VerifyErrorKind as K};
use crate::scalar;
use crate::verified::{RegionKind, record};
use bpfx_bytecode::semantics;
use bpfx_bytecode::{
    AluOp, AtomicOp, CallTarget, Cond, Imm64, Op, Operand, Pc, Program, Reg, Size, Width,
};
use bpfx_exec::STACK_FRAME_SIZE;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

const FRAME: i64 = STACK_FRAME_SIZE as i64;
const NO_PARENT: u32 = u32::MAX;
const STORED: u32 = u32::MAX;
const LATCH: u32 = u32::MAX - 1;

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
        if self.has_room() {
            self.lines.push(line);
        }
    }

    /// Whether another line fits; once one does not, the log is marked truncated (callers
    /// check first, so a full log costs no formatting).
    fn has_room(&mut self) -> bool {
        self.truncated |= self.lines.len() >= LOG_LIMIT;
        !self.truncated
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

/// A context: a call (the call site that created it in its parent context), or one iteration
/// of a loop (`Strict` mode).
#[derive(Debug, Clone, Copy)]
struct Ctx {
    parent: u32,
    kind: CtxKind,
}

#[derive(Debug, Clone, Copy)]
enum CtxKind {
    /// The entry, a callback, or a local call made at `call_site` in the parent.
    Call { call_site: u32 },
    /// Iteration `iter` of the loop at `head`, entered in context `base`; `first` is the
    /// context of iteration 0 (it names the loop instance).
    Iter {
        head: u32,
        iter: u32,
        base: u32,
        first: u32,
    },
}

/// Interning tags of iteration contexts (call contexts use the call site's pc).
const TAG_ENTER: u64 = 1 << 32;
const TAG_NEXT: u64 = 2 << 32;

/// Where a state flowing along an edge goes.
enum Dest {
    /// Into this context at the target pc.
    Ctx(u32),
    /// Back to the head of the loop this iteration context runs: the next iteration.
    Latch(u32),
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
    loops: &'a Loops,
    ctxs: Vec<Ctx>,
    ctx_ids: HashMap<(u32, u64), u32>,
    states: HashMap<(u32, u32), State>,
    queued: HashSet<(u32, u32)>,
    /// Pending nodes, lowest priority first: `(priority, pc, ctx, carried)` where `carried`
    /// indexes `carried` for a state handed to a single-predecessor pc, is [`STORED`], or is
    /// [`LATCH`] for the next iteration of a loop. The priority is the pc, so that in loop-free
    /// code every predecessor of a join point is processed before it; a latch waits until the
    /// end of its loop's body, so that every path of the iteration has reached it.
    work: BinaryHeap<Reverse<(u32, u32, u32, u32)>>,
    /// States waiting to start the next iteration, per (iteration context, head), with the pc
    /// of a back-edge that brought them.
    latches: HashMap<(u32, u32), (State, u32)>,
    /// States at the head of a loop instance (by its `first` context) in iterations 0, 1, 2,
    /// 4, 8, …: an iteration covered by one of them may repeat forever.
    snapshots: HashMap<u32, Vec<State>>,
    /// Per loop instance (indexed by its `first` context): the pending nodes in any of its
    /// contexts (its iterations, the loops and calls inside them). When it drops to zero the
    /// instance has handed every state on and its snapshots are freed; without this, a loop
    /// that keeps entering new inner instances kept one full state per instance until the
    /// budget ran out (gigabytes for a 22-instruction program).
    live: Vec<u32>,
    next_id: u32,
    carried: Vec<Option<State>>,
    free: Vec<u32>,
    pub(crate) facts: Vec<u8>,
    /// The context's fields, when r1 points to a described context struct.
    layout: Option<&'a ContextLayout>,
    /// Context accesses per pc, converted after the analysis (`context.rs`).
    pub(crate) ctx: CtxFacts,
    pub(crate) processed: u64,
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
            loops: &st.loops,
            ctxs: Vec::new(),
            ctx_ids: HashMap::new(),
            states: HashMap::new(),
            queued: HashSet::new(),
            work: BinaryHeap::new(),
            latches: HashMap::new(),
            snapshots: HashMap::new(),
            live: Vec::new(),
            next_id: 0,
            carried: Vec::new(),
            free: Vec::new(),
            facts: vec![0; prog.len()],
            layout: match &cfg.context {
                ContextKind::Fields(l) => Some(l),
                ContextKind::Memory => None,
            },
            ctx: CtxFacts::default(),
            processed: 0,
            log,
        }
    }

    /// Runs the fixpoint from the entry and from every `lddw func` target (a callback some
    /// helper may run with unknown scalar arguments).
    pub(crate) fn run(&mut self, funcs: &[Pc]) -> R<()> {
        let entry = self.entry_state();
        let root = self.intern(NO_PARENT, 0, CtxKind::Call { call_site: 0 });
        self.merge(root, 0, entry, false);
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
            let ctx = self.intern(
                NO_PARENT,
                u64::from(cb.0),
                CtxKind::Call { call_site: cb.0 },
            );
            let st = self.callback_state();
            self.merge(ctx, cb.0, st, false);
        }
        while let Some(Reverse((_, pc, ctx, slot))) = self.work.pop() {
            if slot == LATCH {
                self.next_iteration(ctx, pc)?;
            } else {
                self.process(ctx, pc, slot)?;
            }
            // Released only now: the node's own instances stay live while it is processed.
            self.hold(ctx, false);
        }
        Ok(())
    }

    /// Processes one stored or carried node.
    fn process(&mut self, ctx: u32, pc: u32, slot: u32) -> R<()> {
        {
            let st = if slot == STORED {
                let key = (ctx, pc);
                self.queued.remove(&key);
                // Inside a loop iteration nothing is kept: every iteration has its own contexts,
                // so kept states would grow with the iteration count (a late merge into a dropped
                // state only makes a partial state that is processed again, which is sound).
                if self.keep[pc as usize] && (!self.strict || self.loop_of(ctx).is_none()) {
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
            if let CtxKind::Iter {
                head, iter, first, ..
            } = self.ctxs[ctx as usize].kind
                && head == pc
                && (iter == 0 || iter.is_power_of_two())
            {
                self.snapshots.entry(first).or_default().push(st.clone());
            }
            self.walk(ctx, pc, st)
        }
    }

    /// Queues a node, counting it as live in every loop instance around its context.
    fn push(&mut self, prio: u32, pc: u32, ctx: u32, slot: u32) {
        self.hold(ctx, true);
        self.work.push(Reverse((prio, pc, ctx, slot)));
    }

    /// Counts a pending node in (`add`) or out of every loop instance enclosing `ctx`, and
    /// frees the snapshots of an instance left with none. A later arrival at a freed
    /// instance's head from outside starts its snapshots afresh; snapshots only let a
    /// repeating loop be rejected before the budget does it, so fewer of them is still sound.
    fn hold(&mut self, mut ctx: u32, add: bool) {
        if !self.strict || self.loops.info.is_empty() {
            return;
        }
        while ctx != NO_PARENT {
            let c = self.ctxs[ctx as usize];
            match c.kind {
                CtxKind::Iter { first, base, .. } => {
                    let f = first as usize;
                    if self.live.len() <= f {
                        self.live.resize(f + 1, 0);
                    }
                    if add {
                        self.live[f] += 1;
                    } else {
                        self.live[f] -= 1;
                        if self.live[f] == 0 {
                            self.snapshots.remove(&first);
                        }
                    }
                    ctx = base;
                }
                CtxKind::Call { .. } => ctx = c.parent,
            }
        }
    }

    fn intern(&mut self, parent: u32, tag: u64, kind: CtxKind) -> u32 {
        let n = self.ctxs.len() as u32;
        *self.ctx_ids.entry((parent, tag)).or_insert_with(|| {
            self.ctxs.push(Ctx { parent, kind });
            n
        })
    }

    /// Where a state leaving `ctx` for `to` goes: out of every loop whose body `to` is not in,
    /// then into a new loop at its head, or around the current loop.
    fn route(&mut self, ctx: u32, to: u32) -> Dest {
        if !self.strict || self.loops.info.is_empty() {
            return Dest::Ctx(ctx);
        }
        let mut c = ctx;
        while let CtxKind::Iter { head, base, .. } = self.ctxs[c as usize].kind {
            if self.loops.contains(head, to) {
                break;
            }
            c = base;
        }
        if !self.loops.is_head(to) {
            return Dest::Ctx(c);
        }
        if let CtxKind::Iter { head, .. } = self.ctxs[c as usize].kind
            && head == to
        {
            return Dest::Latch(c);
        }
        let first = self.ctxs.len() as u32;
        let id = self.intern(
            c,
            TAG_ENTER | u64::from(to),
            CtxKind::Iter {
                head: to,
                iter: 0,
                base: c,
                first,
            },
        );
        Dest::Ctx(id)
    }

    /// Holds a state that went around the loop until every path of its iteration has.
    fn latch(&mut self, ctx: u32, head: u32, from: u32, st: State) {
        let end = self.loops.info.get(&head).map_or(head, |i| i.end);
        match self.latches.get_mut(&(ctx, head)) {
            Some((old, _)) => {
                old.join(&st);
            }
            None => {
                self.latches.insert((ctx, head), (st, from));
                self.push(end, head, ctx, LATCH);
            }
        }
    }

    /// Starts the next iteration of the loop `ctx` runs, unless its state repeats.
    fn next_iteration(&mut self, ctx: u32, head: u32) -> R<()> {
        let Some((st, from)) = self.latches.remove(&(ctx, head)) else {
            return Ok(());
        };
        let CtxKind::Iter {
            iter, base, first, ..
        } = self.ctxs[ctx as usize].kind
        else {
            unreachable!("latches are only made in iteration contexts")
        };
        if self
            .snapshots
            .get(&first)
            .is_some_and(|snaps| snaps.iter().any(|old| st.le(old)))
        {
            let e = self.err(from, K::Loop(Pc(head)));
            if let Some(log) = self.log.as_deref_mut() {
                log.push(e.to_string());
            }
            return Err(e);
        }
        let next = self.intern(
            ctx,
            TAG_NEXT | u64::from(head),
            CtxKind::Iter {
                head,
                iter: iter + 1,
                base,
                first,
            },
        );
        self.merge(next, head, st, false);
        Ok(())
    }

    /// The head of the innermost loop `ctx` is iterating, if any.
    fn loop_of(&self, mut ctx: u32) -> Option<u32> {
        while ctx != NO_PARENT {
            match self.ctxs[ctx as usize].kind {
                CtxKind::Iter { head, .. } => return Some(head),
                CtxKind::Call { .. } => ctx = self.ctxs[ctx as usize].parent,
            }
        }
        None
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
            Some(n) => (Value::Ptr(PtrKind::Input, Off::known(0)), Value::konst(n)),
            None => (
                Value::Ptr(PtrKind::Input, Off::known(0)),
                Value::UNKNOWN_SCALAR,
            ),
        };
        regs[1] = r1;
        regs[2] = r2;
        regs[10] = Value::Ptr(PtrKind::Stack { frame: 0 }, Off::known(0));
        State {
            frames: vec![Frame::new(regs)],
            pkt: 0,
            pkt_ids: Vec::new(),
            meta: 0,
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
        regs[10] = Value::Ptr(PtrKind::Stack { frame: 0 }, Off::known(0));
        State {
            frames: vec![Frame::new(regs)],
            pkt: 0,
            pkt_ids: Vec::new(),
            meta: 0,
        }
    }

    /// Joins `st` into the stored state at (ctx, pc) (widening over a `Checked`-mode
    /// back-edge), queueing the node if it changed.
    fn merge(&mut self, ctx: u32, pc: u32, st: State, back: bool) {
        let key = (ctx, pc);
        let changed = match self.states.get_mut(&key) {
            Some(old) if back => old.widen(&st),
            Some(old) => old.join(&st),
            None => {
                self.states.insert(key, st);
                true
            }
        };
        if changed && self.queued.insert(key) {
            self.push(pc, pc, ctx, STORED);
        }
    }

    /// Sends `st` along the edge `from -> to` out of `ctx`; returns the context to continue
    /// in at `to` when the walk may go straight on.
    fn flow(
        &mut self,
        ctx: u32,
        from: u32,
        to: u32,
        st: State,
        last: bool,
    ) -> Option<(u32, State)> {
        match self.route(ctx, to) {
            Dest::Latch(c) => {
                self.latch(c, to, from, st);
                None
            }
            Dest::Ctx(c) if self.join[to as usize] || c != ctx => {
                self.merge(c, to, st, !self.strict && to <= from);
                None
            }
            Dest::Ctx(c) if last => Some((c, st)),
            Dest::Ctx(c) => {
                let slot = match self.free.pop() {
                    Some(i) => {
                        self.carried[i as usize] = Some(st);
                        i
                    }
                    None => {
                        self.carried.push(Some(st));
                        (self.carried.len() - 1) as u32
                    }
                };
                self.push(to, to, c, slot);
                None
            }
        }
    }

    fn err(&self, pc: u32, kind: K) -> VerifyError {
        VerifyError {
            pc: Pc(pc),
            op: self.prog.get(Pc(pc)).copied(),
            kind,
        }
    }

    fn walk(&mut self, mut ctx: u32, mut pc: u32, mut st: State) -> R<()> {
        loop {
            self.processed += 1;
            if self.processed > self.cfg.insn_budget {
                let kind = match self.loop_of(ctx) {
                    Some(head) => K::LoopTooComplex {
                        head: Pc(head),
                        budget: self.cfg.insn_budget,
                    },
                    None => K::TooComplex(self.cfg.insn_budget),
                };
                return Err(self.err(pc, kind));
            }
            let op = *self
                .prog
                .get(Pc(pc))
                .expect("the structural checks keep every reachable pc an instruction start");
            if let Some(log) = self.log.as_deref_mut()
                && log.has_room()
            {
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
            let (to, next) = match flow {
                Flow::Stop => return Ok(()),
                Flow::Next(n) => (n, st),
                Flow::Enter(c, p, s) => {
                    self.merge(c, p, s, false);
                    return Ok(());
                }
                Flow::Succ(mut succs) if succs.len() == 1 => succs.pop().expect("one successor"),
                Flow::Succ(succs) => {
                    for (to, s) in succs {
                        self.flow(ctx, pc, to, s, false);
                    }
                    return Ok(());
                }
            };
            match self.flow(ctx, pc, to, next, true) {
                Some((c, s)) => {
                    pc = to;
                    ctx = c;
                    st = s;
                }
                None => return Ok(()),
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
                    Operand::Imm(i) => (Value::konst(semantics::imm_value(i)), None),
                    Operand::Reg(r) => (self.read(pc, st, r)?, Some(r)),
                };
                let v = if aop == AluOp::Mov {
                    let v = self.check_mov(pc, width, s, sreg.unwrap_or(dst))?;
                    match (v, sreg) {
                        // A copy of an unknown scalar: both registers get one id, so that a
                        // comparison of either narrows both.
                        (Value::Scalar(x), Some(r))
                            if width == Width::W64 && x.konst().is_none() =>
                        {
                            let id = if x.id != 0 {
                                x.id
                            } else {
                                self.next_id += 1;
                                self.next_id
                            };
                            let x = Scalar { id, ..x };
                            Self::set(st, r, Value::Scalar(x));
                            Value::Scalar(x)
                        }
                        _ => v,
                    }
                } else {
                    let d = self.read(pc, st, dst)?;
                    let v = self.check_alu(pc, width, aop, dst, d, sreg, s)?;
                    let v = self.ctx_taint([d, s], v);
                    self.packet_id(d, s, v)
                };
                let v = if aop == AluOp::Mov {
                    self.ctx_taint([s, s], v)
                } else {
                    v
                };
                Self::set(st, dst, v);
            }
            Op::Neg { width, dst } => {
                let d = self.read(pc, st, dst)?;
                let v = match d {
                    Value::Scalar(s) => Value::Scalar(s.neg(width)),
                    _ => self.pointer_op(pc, "neg", dst, d)?,
                };
                let v = self.ctx_taint([d, d], v);
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
                    Value::Scalar(x) => Value::Scalar(x.movsx(width, from)),
                    _ => self.pointer_op(pc, "movsx", src, s)?,
                };
                let v = self.ctx_taint([s, s], v);
                Self::set(st, dst, v);
            }
            Op::Endian { order, bits, dst } => {
                let d = self.read(pc, st, dst)?;
                let v = match d {
                    Value::Scalar(x) => Value::Scalar(x.endian(order, bits)),
                    _ => self.pointer_op(pc, "byte swap", dst, d)?,
                };
                let v = self.ctx_taint([d, d], v);
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
                    Operand::Imm(i) => (Value::konst(semantics::imm_value(i)), None),
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
                if let ContextKind::Fields(layout) = &self.cfg.context
                    && !layout.packet_loads
                {
                    return Err(self.err(pc, K::PacketLoadNotAllowed));
                }
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
                if crate::POISONED_HELPERS.contains(&id) && self.cfg.helpers.get(id).is_none() {
                    return Err(self.err(pc, K::UnknownHelper(id)));
                }
                if !self.call_helper(pc, st, id)? {
                    return Ok(Flow::Stop);
                }
            }
            Op::Call(CallTarget::Register(r)) => {
                let v = self.read(pc, st, r)?;
                match v {
                    Value::Scalar(x) if x.konst().is_some_and(|id| id <= u64::from(u32::MAX)) => {
                        let id = x.konst().unwrap_or_default();
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
                        self.havoc(st);
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
            (Width::W32, Value::Scalar(x)) => Ok(Value::Scalar(x.truncate(4))),
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
            (Value::Scalar(a), Value::Scalar(b)) => Ok(Value::Scalar(a.alu(width, op, &b))),
            (
                Value::Ptr(..) | Value::MapHandle(_) | Value::MapHandleOrNull(_),
                Value::Ptr(..) | Value::MapHandle(_) | Value::MapHandleOrNull(_),
            ) if op != AluOp::Sub => self.degrade(
                pc,
                K::TwoPointers {
                    op: name(op),
                    dst,
                    src: sreg.expect("a pointer operand is a register"),
                },
            ),
            _ if width == Width::W32 => bad(),
            (Value::Ptr(k, o), Value::Scalar(c)) if arith_ok(k) && op == AluOp::Add => {
                Ok(Value::Ptr(k, o.add_scalar(&c, false)))
            }
            (Value::Scalar(c), Value::Ptr(k, o)) if arith_ok(k) && op == AluOp::Add => {
                Ok(Value::Ptr(k, o.add_scalar(&c, false)))
            }
            (Value::Ptr(k, o), Value::Scalar(c)) if arith_ok(k) && op == AluOp::Sub => {
                Ok(Value::Ptr(k, o.add_scalar(&c, true)))
            }
            (
                Value::Ptr(PtrKind::Packet { .. } | PtrKind::PacketEnd | PtrKind::PacketMeta, _),
                Value::Ptr(PtrKind::Packet { .. } | PtrKind::PacketEnd | PtrKind::PacketMeta, _),
            ) if op == AluOp::Sub => Ok(Value::UNKNOWN_SCALAR),
            // Two map value pointers may point into different values: their difference says
            // nothing about offsets.
            (Value::Ptr(ka, oa), Value::Ptr(kb, ob))
                if op == AluOp::Sub && ka == kb && arith_ok(ka) =>
            {
                Ok(Value::Scalar(match (ka, oa, ob) {
                    (PtrKind::MapValue { .. }, _, _) => Scalar::UNKNOWN,
                    (_, Off::Range(a, b), Off::Range(c, d)) => {
                        let mut s = Scalar::UNKNOWN;
                        s.smin = a - d;
                        s.smax = b - c;
                        s.sync();
                        s
                    }
                    _ => Scalar::UNKNOWN,
                }))
            }
            _ => bad(),
        }
    }

    /// The packet id of `v`, the result of an ALU operation on `d` and `s`: pointer ± scalar
    /// keeps the id when the scalar is one number (the offset range moves as a whole, so `V` is
    /// unchanged), and otherwise makes a fresh one: a new `V`, the offset minus its new lower
    /// bound. An unknown offset relates to nothing.
    fn packet_id(&mut self, d: Value, s: Value, v: Value) -> Value {
        let Value::Ptr(PtrKind::Packet { id }, o) = v else {
            return v;
        };
        let c = match (d, s) {
            (Value::Scalar(c), _) | (_, Value::Scalar(c)) => c,
            _ => return v,
        };
        let id = match o {
            Off::Unknown => 0,
            Off::Range(..) if c.smin == c.smax => id,
            Off::Range(..) => {
                self.next_id += 1;
                self.next_id
            }
        };
        Value::Ptr(PtrKind::Packet { id }, o)
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
                Off::known(0).add_const(i64::from(off)),
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
        if let Some(layout) = self.layout {
            if let Value::Ptr(PtrKind::Input, o) = base {
                return self.check_ctx_mem(pc, st, reg, layout, o, off, size, acc);
            }
            if base == (Value::Mixed { input: true }) && !self.strict {
                return Err(self.err(pc, K::ContextMaybe { reg }));
            }
            self.ctx
                .record(pc, Seen::Other)
                .map_err(|k| self.err(pc, k))?;
        }
        let off = i64::from(off);
        let n = i64::from(size);
        let loaded = || match acc {
            Acc::Load { signed } => Value::Scalar(Scalar::load(size, signed)),
            _ => Value::Scalar(Scalar::load(size, false)),
        };
        let out_of = |what: &'static str, at: Off| -> K {
            match at {
                Off::Range(lo, hi) => K::RangeOutOfBounds {
                    reg,
                    what,
                    lo,
                    hi,
                    size: u64::from(size),
                },
                Off::Unknown => K::VariableOffset { reg, what },
            }
        };
        match base {
            Value::Ptr(PtrKind::Stack { frame }, o) => match o.add_const(off) {
                Off::Range(lo, hi) if lo >= -FRAME && hi + n <= 0 => {
                    record(&mut self.facts[pc as usize], RegionKind::Stack, true);
                    if lo == hi {
                        self.stack_access(pc, st, frame, lo, size, acc)
                    } else {
                        self.stack_access_var(pc, st, frame, (lo, hi), size, acc)
                    }
                }
                Off::Range(a, b) if a == b && self.strict => {
                    Err(self.err(pc, K::StackOutOfBounds { off: a, size }))
                }
                at if self.strict => Err(self.err(pc, out_of("the stack frame", at))),
                _ => Ok(self.unproven(pc, st, RegionKind::Stack, acc)),
            },
            Value::Ptr(PtrKind::Input, o) => {
                self.check_leak(pc, acc, "the input memory")?;
                let at = o.add_const(off);
                let in_bounds = match (self.cfg.mem_size, at) {
                    (Some(mem), Off::Range(lo, hi)) => {
                        lo >= 0 && u64::try_from(hi + n).is_ok_and(|e| e <= mem)
                    }
                    _ => false,
                };
                if self.strict && !in_bounds {
                    let kind = match (self.cfg.mem_size, at) {
                        (None, _) => K::InputSizeUnknown,
                        (Some(mem), Off::Range(a, b)) if a == b => K::InputOutOfBounds {
                            off: a,
                            size: u64::from(size),
                            mem,
                        },
                        (Some(_), at) => out_of("the input memory", at),
                    };
                    return Err(self.err(pc, kind));
                }
                // Engines refuse inputs shorter than `mem_size`, so an access inside it needs
                // no guard (`VerifiedProgram::mem_size`).
                record(&mut self.facts[pc as usize], RegionKind::Input, in_bounds);
                if acc.writes() && !in_bounds {
                    self.havoc(st);
                }
                Ok(loaded())
            }
            Value::Ptr(PtrKind::MapValue { map, nullable }, o) => {
                if nullable && self.strict {
                    return Err(self.err(pc, K::MaybeNull(reg)));
                }
                let def = self.cfg.maps.get(map);
                // The engines refuse stores into read-only values at run time: such a write is
                // never proven, so it keeps the guard that traps.
                let read_only_write = acc.writes() && def.is_some_and(|d| d.read_only);
                if read_only_write && self.strict {
                    return Err(self.err(pc, K::ReadOnlyMapWrite { reg, map }));
                }
                self.check_leak(pc, acc, "a map value")?;
                let at = o.add_const(off);
                let in_bounds = !nullable
                    && !read_only_write
                    && match (def, at) {
                        (Some(d), Off::Range(lo, hi)) => {
                            lo >= 0 && hi + n <= i64::from(d.value_size)
                        }
                        _ => false,
                    };
                if self.strict && !in_bounds {
                    let kind = match (def, at) {
                        (None, _) => K::UnknownMap(map),
                        (Some(d), Off::Range(a, b)) if a == b => K::MapValueOutOfBounds {
                            off: a,
                            size: u64::from(size),
                            value_size: d.value_size,
                        },
                        (Some(_), at) => out_of("the map value", at),
                    };
                    return Err(self.err(pc, kind));
                }
                record(
                    &mut self.facts[pc as usize],
                    RegionKind::MapValue,
                    in_bounds,
                );
                if acc.writes() && !in_bounds {
                    self.havoc(st);
                }
                Ok(loaded())
            }
            Value::Ptr(PtrKind::Packet { id }, o) => {
                // Only Strict mode proves packet accesses: it alone forbids writes to the
                // context's data and data_end fields, which the proof trusts. The access is
                // `[data + V + lo + off, + n)` for some `V` in `[0, hi - lo]`: in bounds when
                // its highest end is below the proven range, or its `V`-relative end below
                // the range proven for its id.
                let at = o.add_const(off);
                let below = |end: i64, range: u64| u64::try_from(end).is_ok_and(|e| e <= range);
                let in_bounds = self.strict
                    && match at {
                        Off::Range(lo, hi) => {
                            lo >= 0 && (below(hi + n, st.pkt) || below(lo + n, st.pkt_range(id)))
                        }
                        Off::Unknown => false,
                    };
                if self.strict && !in_bounds {
                    return Err(self.err(pc, K::PacketUnproven(reg)));
                }
                self.check_leak(pc, acc, "the packet")?;
                if in_bounds {
                    record(&mut self.facts[pc as usize], RegionKind::Packet, true);
                    return Ok(loaded());
                }
                self.unproven(pc, st, RegionKind::Packet, acc);
                Ok(loaded())
            }
            Value::Ptr(PtrKind::PacketMeta, o) => {
                // As packet accesses (Strict mode alone proves them): `[data_meta + lo + off,
                // + n)` is in bounds when its highest end lies below the bytes a comparison
                // with `data` proved.
                let at = o.add_const(off);
                let in_bounds = self.strict
                    && match at {
                        Off::Range(lo, hi) => {
                            lo >= 0 && u64::try_from(hi + n).is_ok_and(|e| e <= st.meta)
                        }
                        Off::Unknown => false,
                    };
                if self.strict && !in_bounds {
                    return Err(self.err(pc, K::PacketUnproven(reg)));
                }
                self.check_leak(pc, acc, "the packet")?;
                if in_bounds {
                    record(&mut self.facts[pc as usize], RegionKind::Packet, true);
                    return Ok(loaded());
                }
                self.unproven(pc, st, RegionKind::Packet, acc);
                Ok(loaded())
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

    /// An access through the context pointer: it must be one field's, and is converted to
    /// bpfx's layout after the analysis (`context.rs`).
    #[allow(clippy::too_many_arguments)]
    fn check_ctx_mem(
        &mut self,
        pc: u32,
        st: &mut State,
        reg: Reg,
        layout: &ContextLayout,
        base: Off,
        off: i16,
        size: u32,
        acc: Acc,
    ) -> R<Value> {
        self.check_leak(pc, acc, "the context")?;
        let op = match acc {
            Acc::Load { signed } => CtxOp::Load { signed },
            Acc::Store { .. } => CtxOp::Store,
            Acc::Atomic { .. } => CtxOp::Atomic,
        };
        let mem = self.cfg.mem_size;
        let r = context::check_access(layout, mem, reg, base, off, size, op)
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
        record(&mut self.facts[pc as usize], RegionKind::Input, proven);
        if acc.writes() && !proven {
            self.havoc(st);
        }
        Ok(r.value)
    }

    /// Forgets the spills a store the analysis cannot place may have hit. In a field
    /// context's `Checked` mode, values that may be the context pointer are kept (their
    /// accesses stay guarded, see [`Self::check_ctx_mem`]), so that no context access loses
    /// its conversion to a guarded store elsewhere.
    fn havoc(&self, st: &mut State) {
        if self.layout.is_some() && !self.strict {
            st.havoc_keeping(context::maybe_context);
        } else {
            st.havoc();
        }
    }

    /// In a field context's `Checked` mode, a non-pointer result computed from a value that
    /// may be the context pointer stays [`Value::Mixed`] (see `context.rs`).
    fn ctx_taint(&self, operands: [Value; 2], v: Value) -> Value {
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
        pc: u32,
        st: &mut State,
        frame: u32,
        (lo, hi): (i64, i64),
        size: u32,
        acc: Acc,
    ) -> R<Value> {
        let fr = &mut st.frames[frame as usize];
        let slot_of = |b: i64| ((-b - 1) / 8) as usize;
        let pos_of = |b: i64| (b + 8 * (slot_of(b) as i64 + 1)) as u32;
        let span = lo..hi + i64::from(size);
        if !matches!(acc, Acc::Store { .. }) {
            for b in span.clone() {
                match fr.stack[slot_of(b)] {
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
                    Slot::Bytes(m) if m & (1 << pos_of(b)) == 0 && self.strict => {
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
                let s = &mut fr.stack[slot_of(b)];
                if let Slot::Spill(_) = s {
                    *s = Slot::Bytes(0xff);
                }
            }
        }
        Ok(match acc {
            Acc::Load { signed } => Value::Scalar(Scalar::load(size, signed)),
            _ => Value::Scalar(Scalar::load(size, false)),
        })
    }

    /// An access that keeps its run-time guard. A guarded store may land anywhere the guard
    /// admits, including any active stack frame, so it forgets every spill.
    fn unproven(&mut self, pc: u32, st: &mut State, region: RegionKind, acc: Acc) -> Value {
        record(&mut self.facts[pc as usize], region, false);
        if acc.writes() {
            self.havoc(st);
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
        let (r, rreg) = match rhs {
            Operand::Imm(i) => (Value::konst(semantics::imm_value(i)), None),
            Operand::Reg(x) => (self.read(pc, st, x)?, Some(x)),
        };
        let mut taken = st.clone();
        let mut fall = std::mem::replace(st, empty_state());
        let t = refine_edge(&mut taken, width, cond, (lhs, l), (rreg, r), true);
        let f = refine_edge(&mut fall, width, cond, (lhs, l), (rreg, r), false);
        // An edge no value can take is not analysed (the kernel's dead-branch pruning).
        let mut succs = Vec::with_capacity(2);
        if f {
            succs.push((next, fall));
        }
        if t {
            succs.push((target, taken));
        }
        Ok(if succs.is_empty() {
            Flow::Stop
        } else {
            Flow::Succ(succs)
        })
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
        let mut writes: Vec<(u32, i64, u64, u64)> = Vec::new();
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
                    let Value::MapHandle(m) = v else {
                        return Err(arg_err(reg, "a map handle", v));
                    };
                    // A map of maps is read by `map_lookup_elem` only (the kernel's
                    // map/helper compatibility rule): no mode passes it to another helper.
                    let lookup = sig.args == [ArgKind::MapHandle, ArgKind::MapKey]
                        && sig.ret == RetKind::MapValueOrNull;
                    if !lookup && self.cfg.maps.get(m).is_some_and(|d| d.inner.is_some()) {
                        return Err(self.err(
                            pc,
                            K::HelperArg {
                                helper: sig.name.clone(),
                                reg,
                                expected: "a map handle other than a map of maps",
                                found: "the handle of a map of maps",
                            },
                        ));
                    }
                }
                ArgKind::ProgArray => {
                    // The map's type decides what the helper does with it: no mode accepts
                    // another kind of map where a program array is due.
                    let Value::MapHandle(m) = v else {
                        return Err(arg_err(reg, "the handle of a program array", v));
                    };
                    if !self.cfg.maps.get(m).is_some_and(|d| d.prog_array) {
                        return Err(self.err(
                            pc,
                            K::HelperArg {
                                helper: sig.name.clone(),
                                reg,
                                expected: "the handle of a program array",
                                found: "the handle of a map that is not a program array",
                            },
                        ));
                    }
                }
                ArgKind::PtrToReadOnlyMemOrNull { size_arg }
                    if v == Value::konst(0)
                        && size_arg
                            .and_then(|j| regs.get(j + 1))
                            .is_some_and(|s| matches!(s, Value::Scalar(x) if x.umax == 0)) => {}
                ArgKind::PtrToMem { size_arg }
                | ArgKind::PtrToReadOnlyMem { size_arg }
                | ArgKind::PtrToReadOnlyMemOrNull { size_arg } => {
                    let reads_only = !matches!(kind, ArgKind::PtrToMem { .. });
                    // A size known as a range is checked at its maximum (and only its minimum
                    // is surely written).
                    let size = match size_arg {
                        Some(j) => match regs.get(j + 1) {
                            Some(Value::Scalar(x)) if x.umax <= MAX_TRACKED_OFF as u64 => {
                                Some((x.umin, x.umax))
                            }
                            _ if self.strict => {
                                let sr = Reg::new(j as u8 + 1).unwrap_or(Reg::R0);
                                return Err(self.err(pc, K::HelperSize(sr, sig.name.clone())));
                            }
                            _ => None,
                        },
                        None => None,
                    };
                    self.helper_mem(
                        pc,
                        st,
                        reg,
                        v,
                        size,
                        true,
                        reads_only,
                        &mut havoc,
                        &mut writes,
                    )
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
                ArgKind::MapKey | ArgKind::MapValue | ArgKind::MapValueOut => {
                    let def = map.and_then(|m| self.cfg.maps.get(m));
                    let size = def.map(|d| {
                        let n = u64::from(if *kind == ArgKind::MapKey {
                            d.key_size
                        } else {
                            d.value_size
                        });
                        (n, n)
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
                    // The key and the value to store are read; a value out is written.
                    let reads_only = *kind != ArgKind::MapValueOut;
                    self.helper_mem(
                        pc,
                        st,
                        reg,
                        v,
                        size,
                        true,
                        reads_only,
                        &mut havoc,
                        &mut writes,
                    )
                    .map_err(|e| e.unwrap_or_else(|| arg_err(reg, expected, v)))?;
                }
            }
        }
        // Effects: memory the helper may write, then the registers. The first `sure` bytes
        // are written; the rest up to `n` may be, which still ends any spill there.
        if havoc {
            self.havoc(st);
        }
        for (frame, a, sure, n) in writes {
            let fr = &mut st.frames[frame as usize];
            for b in a..a + n as i64 {
                let i = ((-b - 1) / 8) as usize;
                let p = (b + 8 * (i as i64 + 1)) as u32;
                let s = &mut fr.stack[i];
                let written = if b < a + sure as i64 { 1 << p } else { 0 };
                *s = Slot::Bytes(s.init_mask() | written);
            }
        }
        let r0 = match sig.ret {
            RetKind::Scalar => Value::UNKNOWN_SCALAR,
            RetKind::MapValueOrNull => match map {
                Some(m) if let Some(inner) = self.cfg.maps.get(m).and_then(|d| d.inner) => {
                    Value::MapHandleOrNull(inner)
                }
                Some(m) => Value::Ptr(
                    PtrKind::MapValue {
                        map: m,
                        nullable: true,
                    },
                    Off::known(0),
                ),
                None => Value::UNKNOWN_SCALAR,
            },
            RetKind::Void if self.strict => Value::NotInit,
            RetKind::Void => Value::UNKNOWN_SCALAR,
        };
        self.clobber_after_helper(st);
        if sig.changes_packet {
            // As the kernel does: in Strict mode an invalidated pointer is uninitialised (any
            // use is an error), in Checked mode an unknown scalar whose accesses keep their
            // run-time guards.
            let (reg, slot) = if self.strict {
                (Value::NotInit, Slot::EMPTY)
            } else {
                (Value::UNKNOWN_SCALAR, Slot::Bytes(0xff))
            };
            st.forget_packet(reg, slot);
        }
        Self::set(st, Reg::R0, r0);
        Ok(true)
    }

    fn clobber_after_helper(&self, st: &mut State) {
        let v = self.uninit();
        for r in &mut st.cur_mut().regs[1..=5] {
            *r = v;
        }
    }

    /// Checks one memory argument of a helper, of `size = (min, max)` bytes when known.
    /// `Err(None)` is a type mismatch the caller words; `Err(Some(e))` a finished error.
    /// Records the bytes the helper may write (a precise stack range: `min` written, up to
    /// `max` touched) or asks for a havoc.
    #[allow(clippy::too_many_arguments)]
    fn helper_mem(
        &self,
        pc: u32,
        st: &State,
        reg: Reg,
        v: Value,
        size: Option<(u64, u64)>,
        any_region: bool,
        read_only: bool,
        havoc: &mut bool,
        writes: &mut Vec<(u32, i64, u64, u64)>,
    ) -> Result<(), Option<VerifyError>> {
        let (sure, size) = match size {
            Some((lo, hi)) => (lo, Some(hi)),
            None => (0, None),
        };
        // A helper writing the packet context could forge data_end, which packet proofs trust.
        if self.strict
            && !read_only
            && matches!(v, Value::Ptr(PtrKind::Input, _))
            && matches!(self.cfg.context, ContextKind::Fields(_))
        {
            return Err(Some(self.err(pc, K::ContextFieldWrite { reg })));
        }
        let ok_kind = match v {
            Value::Ptr(PtrKind::Stack { .. } | PtrKind::Input, _) => true,
            Value::Ptr(PtrKind::MapValue { map, nullable }, _) if any_region => {
                if nullable && self.strict {
                    return Err(Some(self.err(pc, K::MaybeNull(reg))));
                }
                // Checked mode leaves it to the helper: guest memory refuses the write.
                if !read_only && self.strict && self.cfg.maps.get(map).is_some_and(|d| d.read_only)
                {
                    return Err(Some(self.err(pc, K::ReadOnlyMapWrite { reg, map })));
                }
                true
            }
            Value::Ptr(PtrKind::Packet { .. } | PtrKind::PacketMeta, _) => {
                any_region && !self.strict
            }
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
        // Only exact offsets are checked here; a range is treated as unknown.
        let v = match v {
            Value::Ptr(k, o) if o.exact().is_none() => Value::Ptr(k, Off::Unknown),
            v => v,
        };
        let at = match v {
            Value::Ptr(_, o) => o.exact().unwrap_or(0),
            _ => 0,
        };
        match (v, size) {
            (Value::Ptr(PtrKind::Stack { frame }, Off::Range(..)), Some(n))
                if at >= -FRAME && n <= FRAME as u64 && at + n as i64 <= 0 =>
            {
                let a = at;
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
                    writes.push((frame, a, sure, n));
                }
                Ok(())
            }
            (Value::Ptr(PtrKind::Stack { .. }, Off::Range(..)), Some(n)) if self.strict => {
                let a = at;
                Err(Some(self.err(
                    pc,
                    K::StackOutOfBounds {
                        off: a,
                        size: n.min(u64::from(u32::MAX)) as u32,
                    },
                )))
            }
            (Value::Ptr(PtrKind::Input, Off::Range(..)), Some(n)) if self.strict => {
                let a = at;
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
            (Value::Ptr(PtrKind::MapValue { map, .. }, Off::Range(..)), Some(n)) if self.strict => {
                let a = at;
                let vs = self.cfg.maps.get(map).map_or(0, |d| d.value_size);
                if a >= 0
                    && (a as u64)
                        .checked_add(n)
                        .is_some_and(|e| e <= u64::from(vs))
                {
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
            Off::known(0),
        );
        let callee = self.intern(ctx, u64::from(pc), CtxKind::Call { call_site: pc });
        let mut st = std::mem::replace(st, empty_state());
        st.frames.push(Frame::new(regs));
        Ok(Flow::Enter(callee, entry, st))
    }

    fn check_exit(&mut self, ctx: u32, pc: u32, st: &mut State) -> R<Flow> {
        let r0 = st.cur().regs[0];
        // A return from inside a loop leaves its iterations behind.
        let mut call = ctx;
        let call_site = loop {
            match self.ctxs[call as usize].kind {
                CtxKind::Iter { base, .. } => call = base,
                CtxKind::Call { call_site } => break call_site,
            }
        };
        let parent = self.ctxs[call as usize].parent;
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
    State {
        frames: Vec::new(),
        pkt: 0,
        pkt_ids: Vec::new(),
        meta: 0,
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
        // A null check: the pointer on the not-equal edge, the scalar 0 on the other.
        (
            Value::Ptr(
                PtrKind::MapValue {
                    map,
                    nullable: true,
                },
                o,
            ),
            Value::Scalar(z),
        ) if width == Width::W64 && z.konst() == Some(0) && matches!(cond, Cond::Eq | Cond::Ne) => {
            let is_null = (cond == Cond::Eq) == holds;
            st.cur_mut().regs[lreg.index()] = if is_null {
                Value::konst(0)
            } else {
                Value::Ptr(
                    PtrKind::MapValue {
                        map,
                        nullable: false,
                    },
                    o,
                )
            };
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
