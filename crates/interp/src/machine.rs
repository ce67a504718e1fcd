//! The driver: registers, the frame vector and one loop that executes an [`Op`] at a time.

use crate::alu::{self, imm_value};
use crate::mem;
use bpfx_bytecode::{CallTarget, Imm64, Op, Operand, Pc, Program, Reg, RegSet};
use bpfx_exec::{
    AccessFault, CallbackIter, CallbackStep, End, EnvParts, GuestMemory, HelperError, HelperRet,
    Helpers, Region, SharedMem, Stack, Trap, TrapKind,
};
use std::sync::Arc;

/// What a caller needs back when its callee exits.
struct Frame {
    /// The `call` that created the callee; execution resumes after it.
    call_pc: Pc,
    /// The caller's r6–r9, restored when the callee exits.
    saved: [u64; 4],
    /// For a callback's frame: the helper's iteration, asked what to do when it exits, and
    /// the callback's entry.
    callback: Option<(Box<dyn CallbackIter>, Pc)>,
}

/// Where control goes after an instruction.
enum Flow {
    /// The next instruction in order.
    Next,
    /// A jump or a local call to this pc.
    Jump(Pc),
    /// `exit`: return from the current function, or end the program.
    Exit,
    /// End the whole program at once with this `r0` (an out-of-bounds packet load).
    Halt(u64),
    /// A helper ended the whole program.
    End(End),
}

/// One run's state.
///
/// # Invariants
/// `frames.len()` is the current call depth (0 in the outermost function), always below the
/// effective frame limit, and `regs[10]` is `stack.frame_pointer(depth)`.
pub(crate) struct Machine<'a> {
    prog: &'a Program,
    input: &'a mut [u8],
    helpers: &'a Helpers,
    budget: &'a mut Option<u64>,
    stack: &'a mut Stack,
    /// Frames allowed at once, counting the outermost; at least 1, as `Env` documents.
    max_frames: u32,
    shared: &'a [Arc<SharedMem>],
    helper_error: &'a mut Option<HelperError>,
    /// Where an out-of-bounds access's detail goes ([`bpfx_exec::Env::fault`]).
    fault: &'a mut Option<AccessFault>,
    /// The embedder's run state ([`bpfx_exec::Env::host`]), lent to helper calls.
    host: Option<&'a mut (dyn std::any::Any + Send + Sync + 'static)>,
    /// Where in the input the packet of legacy packet loads begins
    /// ([`bpfx_verifier::VerifiedProgram::packet_base`]).
    packet_base: u64,
    regs: [u64; Reg::COUNT],
    frames: Vec<Frame>,
    /// The verified program's callbacks by `call` pc ([`bpfx_verifier::VerifiedProgram::callback`]);
    /// `None` for an unverified run, which runs no callback.
    callbacks: Option<&'a [(Pc, Pc)]>,
    /// `may_goto`'s counter for this run ([`bpfx_bytecode::MAY_GOTO_BUDGET`] at the start,
    /// callbacks included: one run, one counter).
    may_goto: u64,
}

fn trap(kind: TrapKind, pc: Pc) -> Trap {
    Trap { kind, pc }
}

impl<'a> Machine<'a> {
    /// The same machine, its legacy packet loads reading the input from `base`.
    pub(crate) fn with_packet_base(mut self, base: u64) -> Machine<'a> {
        self.packet_base = base;
        self
    }

    pub(crate) fn new(prog: &'a Program, input: &'a mut [u8], env: EnvParts<'a>) -> Machine<'a> {
        let EnvParts {
            helpers,
            budget,
            stack,
            max_frames,
            shared,
            helper_error,
            fault,
            host,
            ..
        } = env;
        let (r1, r2) = bpfx_exec::entry_registers(input);
        let mut regs = [0; Reg::COUNT];
        regs[1] = r1;
        regs[2] = r2;
        regs[10] = stack.frame_pointer(0);
        Machine {
            prog,
            input,
            helpers,
            budget,
            stack,
            max_frames: max_frames.max(1),
            shared,
            helper_error,
            fault,
            host,
            packet_base: 0,
            regs,
            frames: Vec::new(),
            callbacks: None,
            may_goto: bpfx_bytecode::MAY_GOTO_BUDGET,
        }
    }

    /// The same machine, calling back the verified program's recorded callbacks only.
    pub(crate) fn with_callbacks(mut self, callbacks: &'a [(Pc, Pc)]) -> Machine<'a> {
        self.callbacks = Some(callbacks);
        self
    }

    pub(crate) fn run(self) -> Result<End, Trap> {
        self.run_from(Pc(0))
    }

    /// Runs the function at `entry` in frame 0 with r1–r5 `args` (and r0, r6–r9 zero), as
    /// a run of its own: an async callback's (a timer's), whose `exit` ends the run.
    pub(crate) fn run_callback(mut self, entry: Pc, args: [u64; 5]) -> Result<End, Trap> {
        self.regs[1..6].copy_from_slice(&args);
        self.run_from(entry)
    }

    fn run_from(mut self, entry: Pc) -> Result<End, Trap> {
        let mut pc = entry;
        loop {
            self.charge(pc)?;
            // A decoded program has an instruction at every pc this loop reaches (see `next`),
            // so this is never taken; it stays a trap rather than a panic all the same.
            let op = *self
                .prog
                .get(pc)
                .ok_or_else(|| trap(TrapKind::FellOffEnd, pc))?;
            pc = match self.step(pc, op)? {
                Flow::Next => self.next(pc, op.slots())?,
                Flow::Jump(target) => target,
                Flow::Halt(r0) => return Ok(End::Return(r0)),
                Flow::End(end) => return Ok(end),
                Flow::Exit => match self.frames.pop() {
                    None => return Ok(End::Return(self.regs[0])),
                    Some(frame) => {
                        self.regs[6..10].copy_from_slice(&frame.saved);
                        self.regs[10] = self.stack.frame_pointer(self.depth());
                        match frame.callback {
                            None => self.next(frame.call_pc, 1)?,
                            Some((iter, target)) => {
                                let r0 = self.regs[0];
                                match self.iterate(frame.call_pc, iter, target, Some(r0))? {
                                    Flow::Next => self.next(frame.call_pc, 1)?,
                                    Flow::Jump(t) => t,
                                    _ => return Err(trap(TrapKind::Unsupported, frame.call_pc)),
                                }
                            }
                        }
                    }
                },
            };
        }
    }

    /// Takes one unit of budget for the instruction at `pc`, or traps if none is left.
    fn charge(&mut self, pc: Pc) -> Result<(), Trap> {
        if let Some(left) = self.budget.as_mut() {
            if *left == 0 {
                return Err(trap(TrapKind::BudgetExhausted, pc));
            }
            *left -= 1;
        }
        Ok(())
    }

    /// The instruction after the `slots`-slot one at `pc`, or a trap if `pc` was the last.
    fn next(&self, pc: Pc, slots: u32) -> Result<Pc, Trap> {
        let next = u64::from(pc.0) + u64::from(slots);
        if next < self.prog.len() as u64 {
            Ok(Pc(next as u32))
        } else {
            Err(trap(TrapKind::FellOffEnd, pc))
        }
    }

    fn depth(&self) -> u32 {
        self.frames.len() as u32
    }

    fn reg(&self, r: Reg) -> u64 {
        self.regs[r.index()]
    }

    fn set(&mut self, r: Reg, v: u64) {
        self.regs[r.index()] = v;
    }

    fn operand(&self, src: Operand) -> u64 {
        match src {
            Operand::Reg(r) => self.reg(r),
            Operand::Imm(i) => imm_value(i),
        }
    }

    /// `base + off` with the 16-bit offset sign-extended, wrapping like the hardware would; the
    /// bounds check in [`GuestMemory`] rejects whatever that wraps to.
    fn addr(&self, base: Reg, off: i16) -> u64 {
        self.reg(base).wrapping_add(off as i64 as u64)
    }

    /// What the current function may touch: the input and the active stack frames.
    fn memory(&mut self) -> GuestMemory<'_> {
        let depth = self.depth();
        GuestMemory {
            input: Region::new(self.input),
            stack: self.stack.active_region(depth),
            shared: self.shared,
            host: self.host.as_deref_mut(),
        }
    }

    /// The out-of-bounds trap of a `size`-byte access at `addr` at `pc`, its detail recorded
    /// for the embedder: the regions as the current function sees them.
    fn out_of_bounds(&mut self, pc: Pc, addr: u64, size: usize, write: bool) -> Trap {
        let input = (self.input.as_ptr() as u64, self.input.len() as u64);
        *self.fault = Some(AccessFault::new(
            addr,
            size as u32,
            write,
            input,
            (self.regs[10], self.stack.top()),
            self.shared,
        ));
        trap(TrapKind::OutOfBounds, pc)
    }

    fn step(&mut self, pc: Pc, op: Op) -> Result<Flow, Trap> {
        // r10 is read-only: a write to it decodes (dead code may hold one, as the kernel
        // allows) but never runs. The verifier rejects one on any path it explores, so only an
        // unverified run can get here.
        if op.written_reg() == Some(Reg::R10) {
            return Err(trap(TrapKind::Unsupported, pc));
        }
        match op {
            Op::Alu {
                width,
                op,
                dst,
                src,
            } => {
                let v = alu::alu(width, op, self.reg(dst), self.operand(src));
                self.set(dst, v);
            }
            Op::Neg { width, dst } => self.set(dst, alu::neg(width, self.reg(dst))),
            Op::Movsx {
                width,
                from,
                dst,
                src,
            } => self.set(dst, alu::movsx(width, from, self.reg(src))),
            Op::Endian { order, bits, dst } => {
                self.set(dst, alu::endian(order, bits, self.reg(dst)));
            }
            Op::Load {
                size,
                signed,
                dst,
                base,
                off,
            } => {
                let addr = self.addr(base, off);
                let len = size.bytes() as usize;
                let Some(raw) = self.memory().load(addr, len) else {
                    return Err(self.out_of_bounds(pc, addr, len, false));
                };
                self.set(dst, alu::load_extend(size, signed, raw));
            }
            Op::Store {
                size,
                base,
                off,
                src,
            } => {
                let addr = self.addr(base, off);
                let value = mem::store_value(src, |r| self.reg(r));
                let len = size.bytes() as usize;
                if self.memory().store(addr, len, value).is_none() {
                    return Err(self.out_of_bounds(pc, addr, len, true));
                }
            }
            Op::Atomic {
                width,
                op,
                fetch,
                base,
                off,
                src,
            } => {
                let addr = self.addr(base, off);
                let len = width.bits() as usize / 8;
                let (src_val, r0) = (self.reg(src), self.regs[0]);
                // One read-modify-write: atomic on shared memory, and it needs a writable
                // range even when cmpxchg fails, as `lock cmpxchg` does.
                let old = self.memory().update(addr, len, |old| {
                    mem::atomic(width, op, old, src_val, r0)
                        .store
                        .unwrap_or(old)
                });
                let Some(old) = old else {
                    return Err(self.out_of_bounds(pc, addr, len, true));
                };
                let effect = mem::atomic(width, op, old, src_val, r0);
                if op == bpfx_bytecode::AtomicOp::Cmpxchg {
                    self.regs[0] = effect.fetched;
                } else if fetch {
                    self.set(src, effect.fetched);
                }
            }
            Op::LoadImm64 { dst, value } => {
                let v = match value {
                    Imm64::Value(v) => v,
                    Imm64::Func { off } => u64::from(pc.jump(off).0),
                    Imm64::MapFd(_)
                    | Imm64::MapValue { .. }
                    | Imm64::BtfId(_)
                    | Imm64::MapIdx(_)
                    | Imm64::MapIdxValue { .. } => return Err(trap(TrapKind::Unsupported, pc)),
                };
                self.set(dst, v);
            }
            Op::LoadPacket { size, index, imm } => {
                let base = index.map_or(0, |r| self.reg(r));
                let offset = base.wrapping_add(imm_value(imm));
                let packet = usize::try_from(self.packet_base)
                    .ok()
                    .and_then(|b| self.input.get(b..))
                    .unwrap_or(&[]);
                match mem::packet_load(packet, offset, size) {
                    Some(v) => self.regs[0] = v,
                    None => return Ok(Flow::Halt(0)),
                }
            }
            // Decoding proved every target an instruction start: nothing to check.
            Op::Ja { off, .. } => return Ok(Flow::Jump(pc.jump(off))),
            // The kernel's rewrite: `if cnt == 0 goto +off; cnt -= 1`.
            Op::MayGoto { off } => {
                if self.may_goto == 0 {
                    return Ok(Flow::Jump(pc.jump(i32::from(off))));
                }
                self.may_goto -= 1;
            }
            Op::Branch {
                width,
                cond,
                lhs,
                rhs,
                off,
            } => {
                if cond.eval(self.reg(lhs), self.operand(rhs), width) {
                    return Ok(Flow::Jump(pc.jump(i32::from(off))));
                }
            }
            Op::Call(CallTarget::Helper(id)) => return self.call_helper(pc, id),
            Op::Call(CallTarget::Register(r)) => {
                // Helper ids are 32-bit; a larger value names no helper.
                let id =
                    u32::try_from(self.reg(r)).map_err(|_| trap(TrapKind::UnknownHelper, pc))?;
                return self.call_helper(pc, id);
            }
            Op::Call(CallTarget::Local { off }) => {
                let target = pc.jump(off);
                // Frames in use are depth + 1; the callee's would be depth + 2.
                if self.depth() + 2 > self.max_frames {
                    return Err(trap(TrapKind::CallDepthExceeded, pc));
                }
                let mut saved = [0; 4];
                saved.copy_from_slice(&self.regs[6..10]);
                self.frames.push(Frame {
                    call_pc: pc,
                    saved,
                    callback: None,
                });
                self.regs[10] = self.stack.frame_pointer(self.depth());
                return Ok(Flow::Jump(target));
            }
            Op::Call(CallTarget::Kfunc(_)) => return Err(trap(TrapKind::Unsupported, pc)),
            Op::Exit => return Ok(Flow::Exit),
        }
        Ok(Flow::Next)
    }

    /// Calls helper `id` with r1–r5 through the checked dispatch ([`Helpers::call`]); r0 gets
    /// the result and r1–r5 become 0, unless the helper ended the program.
    fn call_helper(&mut self, pc: Pc, id: u32) -> Result<Flow, Trap> {
        let helpers = self.helpers;
        let mut args = [0; 5];
        for (arg, r) in args.iter_mut().zip(RegSet::ARGS) {
            *arg = self.reg(r);
        }
        let mut error = None;
        let result = helpers.call(id, &mut self.memory(), args, &mut error);
        if error.is_some() {
            *self.helper_error = error;
        }
        self.regs[0] = match result.map_err(|kind| trap(kind, pc))? {
            HelperRet::Value(r0) => r0,
            HelperRet::Return(r0) => return Ok(Flow::End(End::Return(r0))),
            HelperRet::TailCall(target) => return Ok(Flow::End(End::TailCall { pc, target })),
            HelperRet::Callback(req) => {
                // Only a verified program's recorded callbacks run (the JIT's rule too): an
                // unverified run, or a `call` with no record, traps.
                let target = self.callbacks.and_then(|sites| {
                    sites
                        .binary_search_by_key(&pc, |&(p, _)| p)
                        .ok()
                        .map(|i| sites[i].1)
                });
                let target = target.ok_or_else(|| trap(TrapKind::Unsupported, pc))?;
                return self.iterate(pc, req.iter, target, None);
            }
        };
        for r in RegSet::ARGS {
            self.set(r, 0);
        }
        Ok(Flow::Next)
    }

    /// Serves a callback request of the helper `call` at `pc` (the execution contract's
    /// "Callback" rule): asks `iter` for the next step, given the r0 of the callback run that
    /// just ended (`None` before the first), and either enters `target` in a new frame with
    /// the arguments it gives ([`Flow::Jump`]; its `exit` comes back here), or ends the
    /// helper with its result in r0 and r1–r5 zero ([`Flow::Next`] after the `call`).
    fn iterate(
        &mut self,
        pc: Pc,
        mut iter: Box<dyn CallbackIter>,
        target: Pc,
        last: Option<u64>,
    ) -> Result<Flow, Trap> {
        let mut error = None;
        let step = iter.next(&mut self.memory(), last).map_err(|e| {
            error = Some(e);
            trap(TrapKind::HelperError, pc)
        });
        if error.is_some() {
            *self.helper_error = error;
        }
        match step? {
            CallbackStep::Done(r0) => {
                self.regs[0] = r0;
                for r in RegSet::ARGS {
                    self.set(r, 0);
                }
                Ok(Flow::Next)
            }
            step @ (CallbackStep::Call(_) | CallbackStep::CallWithFrame { .. }) => {
                if self.depth() + 2 > self.max_frames {
                    return Err(trap(TrapKind::CallDepthExceeded, pc));
                }
                let args = match step {
                    CallbackStep::CallWithFrame {
                        mut args,
                        bytes,
                        at,
                    } => {
                        let fp = self.stack.frame_pointer(self.depth() + 1);
                        let addr = bpfx_exec::frame_bytes_at(fp, bytes.len())
                            .ok_or_else(|| trap(TrapKind::HelperError, pc))?;
                        self.stack
                            .active_region(self.depth() + 1)
                            .write(addr, &bytes)
                            .ok_or_else(|| trap(TrapKind::HelperError, pc))?;
                        if let Some(a) = args.get_mut(at) {
                            *a = addr;
                        }
                        args
                    }
                    CallbackStep::Call(args) => args,
                    CallbackStep::Done(_) => return Err(trap(TrapKind::Unsupported, pc)),
                };
                let mut saved = [0; 4];
                saved.copy_from_slice(&self.regs[6..10]);
                self.frames.push(Frame {
                    call_pc: pc,
                    saved,
                    callback: Some((iter, target)),
                });
                for (r, a) in RegSet::ARGS.into_iter().zip(args) {
                    self.set(r, a);
                }
                self.regs[10] = self.stack.frame_pointer(self.depth());
                Ok(Flow::Jump(target))
            }
        }
    }
}
