//! The emitter: one `VecAssembler`, a dynamic label per eBPF pc that code jumps to, and the
//! driver ([`Emitter::emit_copy`]) that lowers each instruction through the file of its class.
//! It decides nothing about what to emit: [`crate::analysis`] does, before the first byte.
//!
//! Code layout, in order: the prologue/epilogue ([`crate::abi::emit_prologue`]), the body (the
//! main copy: one block per eBPF instruction, in pc order), the fast copies of versioned loops,
//! the fallbacks of merged guards, the budget slow paths (each a copy of some instructions, by
//! the same driver, see [`CopyKind`]), the cold code (out-of-line second guard checks and trap
//! exits, one block per faulting site, see [`stubs::Cold`]), then the shared stubs.
//!
//! Files: `encode.rs` (the dynasm wrapper macros, the direct encoder and shortest
//! encodings), `budget.rs` (charges, slow paths, refunds), `stubs.rs` (cold code, stubs and
//! trap exits), then one file per instruction class: `alu.rs`, `mem.rs` (with the inline
//! guard), `atomic.rs`, `branch.rs`, `select.rs` (if-converted branches), `call.rs`, and
//! `loops.rs` (a versioned loop's check), with `prepaid.rs` (a versioned loop charged once
//! for all its iterations).
//!
//! # Invariants
//! - Every dynasm call goes through [`asm!`], which pins `.arch x64`; width-generic forms go
//!   through [`wide!`], the one place that picks `Rd` or `Rq`. The hot forms (arithmetic,
//!   moves, loads and stores) are written by [`direct`] instead, byte for byte what dynasm
//!   would write for them.
//! - A lowering may clobber only the scratch registers ([`crate::abi::SCRATCH`]) and flags,
//!   besides the eBPF registers the instruction defines.
//! - No instruction's hot code exceeds [`MAX_INSN_BYTES`] and no cold block exceeds
//!   [`MAX_COLD_BYTES`]; the driver checks both.
// dynasm converts every dynamic register operand with `.into()`, even from a `u8`.
#![allow(clippy::useless_conversion)]

mod alu;
mod atomic;
pub(crate) mod blind;
mod branch;
mod budget;
mod call;
mod encode;
mod loops;
mod mem;
mod prepaid;
mod select;
pub(crate) mod stubs;

pub(crate) use crate::analysis::CopyKind;
pub(crate) use encode::{Mem, asm, direct, mem_op, wide};

use crate::abi::{self, CTX, ctx, x};
use crate::analysis::guards::{CompileStats, GuardPlan};
use crate::analysis::{blocks, calls, group, input_base, plan};
use crate::{JitError, JitOptions};
use bpfx_bytecode::{Cfg, Op, Pc, Program};
use bpfx_exec::TrapKind;
use bpfx_verifier::VerifiedProgram;
use dynasmrt::x64::X64Relocation;
use dynasmrt::{AssemblyOffset, DynamicLabel, DynasmApi, VecAssembler};

/// Upper bound on the hot code of one eBPF instruction, in bytes. The largest lowerings, in a
/// budget slow path (a charge per instruction) with Spectre masking and blinding, are a guarded
/// fetch-and/or/xor (`lock cmpxchg` loop: about 100 bytes) and a signed division by a register
/// (zero and -1 checks, parking rax and rdx). The bound leaves room and is checked for every
/// instruction.
pub const MAX_INSN_BYTES: usize = 128;

/// Upper bound on the hot code of a callback-taking helper call (`bpf_loop`) the verifier
/// recorded a callback for: the dispatcher call, then the loop that calls the callback and
/// asks for the next step (about 240 bytes). Such a call is always preceded by an instruction
/// of its own setting the callback register (every call clobbers r1–r5, and the verifier
/// takes only a function's address there), so two instructions' worth of
/// [`MAX_INSN_BYTES`] and [`MAX_COLD_BYTES`] still bounds the code of the pair.
pub(crate) const MAX_CALLBACK_CALL_BYTES: usize = 288;

/// Alignment of loop tops, in bytes (see [`Emitter::emit_loop_align`]): 32, the fetch block
/// of the x86 front ends this was measured on. Side by side on the bench suite, 32 was the
/// best of none, 16, 32 and 64: against no alignment, `array_sum`'s loop ran in 0.39 µs instead
/// of 0.40–0.86 µs (it straddled a boundary or not by luck), `mem_copy` 0.16 against 0.24,
/// `str_compare` 1.22 against 1.64–1.83, `binary_search` 9.0 against 10.0–10.6; 16 made
/// `array_sum` 1.8× slower than 32.
pub(crate) const LOOP_ALIGN: usize = 32;

/// Upper bound on one cold block, in bytes; the largest, a guard's slow-path call with the
/// Spectre `lfence`, a budget refund and a blinded trap pc, is about 70.
pub const MAX_COLD_BYTES: usize = 96;

/// One copy the driver lowered: its kind, its first instruction, where it starts, and its
/// instructions' entries in [`Layout::insns`].
#[derive(Clone, Debug)]
pub(crate) struct CopyLayout {
    pub(crate) kind: CopyKind,
    pub(crate) first: Pc,
    pub(crate) at: usize,
    pub(crate) insns: std::ops::Range<usize>,
}

/// Where each part of the code starts; the listing interleaves the eBPF source by it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layout {
    /// Start of the body (end of the prologue and epilogue).
    pub(crate) body: usize,
    /// Every copy of instructions, in the order emitted (the main copy first).
    pub(crate) copies: Vec<CopyLayout>,
    /// Start offset of each instruction of each copy, copy after copy (see
    /// [`CopyLayout::insns`]); the main copy's are in pc order.
    pub(crate) insns: Vec<(Pc, usize)>,
    /// Start of the fall-off-the-end exit, when the last instruction falls through.
    pub(crate) fell_off: Option<usize>,
    /// Start of the budget slow paths (code compiled with the budget charge).
    pub(crate) slow: usize,
    /// Start offset of each versioned loop's check and its head's pc.
    pub(crate) loop_checks: Vec<(Pc, usize)>,
    /// Start of the cold code.
    pub(crate) cold: usize,
    /// Start offset of each cold block and the pc it belongs to, in emission order.
    pub(crate) cold_blocks: Vec<(Pc, usize)>,
    /// Start of the shared stubs.
    pub(crate) stubs: usize,
    /// The host entry of each timer callback ([`crate::abi::emit_timer_entry`]), by pc.
    pub(crate) timer_entries: Vec<(Pc, usize)>,
}

impl Layout {
    /// The main copy's instructions, in pc order (those emitted so far while it is lowered).
    pub(crate) fn main_insns(&self) -> &[(Pc, usize)] {
        let end = self.copies.first().map_or(0, |c| c.insns.end);
        &self.insns[..end]
    }

    /// The copies of one kind (`Fast` of any loop with `Fast(0)`), with their instructions.
    pub(crate) fn copies_of(
        &self,
        kind: CopyKind,
    ) -> impl Iterator<Item = (&CopyLayout, &[(Pc, usize)])> {
        let same = move |k: CopyKind| match (k, kind) {
            (CopyKind::Fast(_), CopyKind::Fast(_)) => true,
            _ => k == kind,
        };
        self.copies
            .iter()
            .filter(move |c| same(c.kind))
            .map(|c| (c, &self.insns[c.insns.clone()]))
    }
}

/// Code generation state for one program.
pub(crate) struct Emitter<'a> {
    pub(crate) ops: VecAssembler<X64Relocation>,
    opts: &'a JitOptions,
    /// Number of slots of the program.
    slots: usize,
    /// Per slot: the index in `pc_labels` of the label at that instruction's start, or
    /// [`NO_LABEL`]. Labels exist only for the instructions code refers to ([`Self::pc_label`]).
    label_of: Vec<u32>,
    pc_labels: Vec<DynamicLabel>,
    pub(crate) stubs: stubs::Stubs,
    cold: Vec<stubs::Cold>,
    layout: Layout,
    /// The verifier's facts, when compiling a verified program.
    facts: Option<&'a VerifiedProgram>,
    /// The arrays whose lookups are computed in the code.
    inline: &'a crate::InlineMaps,
    /// Basic blocks, for the per-block budget charge.
    blocks: blocks::Blocks,
    /// The copy being lowered.
    kind: CopyKind,
    /// Blocks whose charge failed jump here: (block start, slow-path label).
    slow_blocks: Vec<(Pc, DynamicLabel)>,
    /// The fall-off-the-end exit, when the last instruction falls through.
    fell_off: Option<DynamicLabel>,
    /// Constant blinding state, when [`JitOptions::blinding`] is on.
    pub(crate) blind: Option<blind::Blinder>,
    /// Folded address computations and fused branches ([`plan`]).
    plan: plan::Plan,
    /// What each local call must save ([`calls::Callees`]).
    callees: calls::Callees,
    /// Which accesses are guarded how, and the merged groups and versioned loops that
    /// stand for guards ([`GuardPlan`]).
    guards: GuardPlan,
    /// Merged guards emitted so far: the group, its fallback's label, and where it resumes.
    fallbacks: Vec<(group::Group, DynamicLabel, DynamicLabel)>,
    /// The labels of the versioned loops, in the order of [`GuardPlan::loops`].
    loop_labels: Vec<loops::LoopLabels>,
    /// Which registers hold the input's address, per pc ([`input_base`]); computed when the first
    /// guard needs it.
    input_regs: Option<input_base::InputRegs>,
    /// The program being compiled, and its structure.
    prog: &'a Program,
    cfg: &'a Cfg,
    /// Which forward jumps take the rel8 form ([`branch::Reach`]).
    reach: branch::Reach,
}

/// What [`assemble`] produces.
#[derive(Debug)]
pub(crate) struct Assembled {
    pub(crate) code: Vec<u8>,
    pub(crate) layout: Layout,
    /// Where blinded constants could show (blinding only).
    pub(crate) exposure: Option<blind::Exposure>,
    /// The most stack frames a run can occupy at once (`None`: as many as allowed).
    pub(crate) frames: Option<u32>,
    /// What the guard plan decided.
    pub(crate) stats: CompileStats,
}

/// No label at this slot (see [`Emitter::pc_label`]).
const NO_LABEL: u32 = u32::MAX;

/// The buffers a compilation needs only while it runs, kept per thread for the next one, so
/// that compiling does not allocate (and free) its per-slot tables, label and relocation
/// lists each time: they only grow to the largest program the thread compiled. The code, the
/// layout and everything else a [`crate::JitProgram`] keeps is allocated per compilation.
#[derive(Default)]
struct Scratch {
    /// An assembler whose label and relocation lists are empty, their capacity kept.
    asm: Option<VecAssembler<X64Relocation>>,
    label_of: Vec<u32>,
    pc_labels: Vec<DynamicLabel>,
    cold: Vec<stubs::Cold>,
    slow_blocks: Vec<(Pc, DynamicLabel)>,
    plan: plan::Scratch,
}

/// Programs of more slots than this do not leave their buffers in the scratch (a few MiB).
const SCRATCH_MAX_SLOTS: usize = 1 << 16;

thread_local! {
    /// Taken by a compilation for its run and put back at its end (a compilation that fails
    /// leaves the empty one it took in its place).
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// Compiles `prog` to position-independent machine code whose entry point is offset 0.
/// `facts`, for a verified program, says which accesses are proven in bounds; `seed` keys the
/// constant blinding, when it is on.
pub(crate) fn assemble(
    prog: &Program,
    opts: &JitOptions,
    facts: Option<&VerifiedProgram>,
    inline: &crate::InlineMaps,
    seed: u64,
) -> Result<Assembled, JitError> {
    assemble_reaching(prog, opts, facts, inline, seed, branch::Reach::Estimate)
}

/// `prog` with every instruction that never runs compiled as one that traps with
/// [`TrapKind::Unsupported`] at its pc (a kfunc call, which every analysis and lowering already
/// treats as that trap; an `lddw` keeps its two slots with a `ja +0` after the call), or `None`
/// when there is none. Two kinds never run:
/// - in a verified program, every instruction the analysis never reached
///   ([`VerifiedProgram::reached`]): dead code is never compiled, as the kernel never
///   JIT-compiles what its verifier did not explore;
/// - any instruction that writes r10. Such a write decodes (dead code may hold one, as the
///   kernel allows) but is never compiled: the verifier rejects it on every path it explores,
///   and an unverified run traps there as the interpreter does.
fn trapping_unrun(
    prog: &Program,
    facts: Option<&VerifiedProgram>,
) -> Result<Option<Program>, JitError> {
    let unrun = |pc: Pc, op: &Op| {
        op.written_reg() == Some(bpfx_bytecode::Reg::R10) || facts.is_some_and(|v| !v.reached(pc))
    };
    if !prog.iter().any(|(pc, op)| unrun(pc, op)) {
        return Ok(None);
    }
    let trap = Op::Call(bpfx_bytecode::CallTarget::Kfunc(0));
    let mut ops = Vec::with_capacity(prog.len());
    for (pc, op) in prog.iter() {
        if !unrun(pc, op) {
            ops.push(*op);
            continue;
        }
        ops.push(trap);
        if op.slots() == 2 {
            ops.push(Op::Ja {
                off: 0,
                long: false,
            });
        }
    }
    Program::from_ops(&ops)
        .map(Some)
        .map_err(|e| JitError::Assemble(format!("frame writes as traps: {e}")))
}

/// [`assemble`], with forward jumps short as `reach` says. Should one of them not reach its
/// target after all (dynasm rejects the relocation), the program is assembled again with
/// every forward jump long: the estimate costs compile time when it is wrong, never
/// correctness.
fn assemble_reaching(
    prog: &Program,
    opts: &JitOptions,
    facts: Option<&VerifiedProgram>,
    inline: &crate::InlineMaps,
    seed: u64,
    reach: branch::Reach,
) -> Result<Assembled, JitError> {
    match assemble_with(prog, opts, facts, inline, seed, reach) {
        Err(JitError::Assemble(_)) if reach != branch::Reach::Never => {
            assemble_with(prog, opts, facts, inline, seed, branch::Reach::Never)
        }
        done => done,
    }
}

fn assemble_with(
    prog: &Program,
    opts: &JitOptions,
    facts: Option<&VerifiedProgram>,
    inline: &crate::InlineMaps,
    seed: u64,
    reach: branch::Reach,
) -> Result<Assembled, JitError> {
    let n = prog.len();
    let trapping = trapping_unrun(prog, facts)?;
    let prog = trapping.as_ref().unwrap_or(prog);
    // The program's structure: the verifier's, or built here for an unverified program (or
    // for the frame writes turned into traps).
    let built;
    let cfg: &Cfg = match facts {
        Some(v) if trapping.is_none() => v.cfg(),
        _ => {
            built = Cfg::new(prog);
            &built
        }
    };
    let mut scratch = SCRATCH.with(std::cell::Cell::take);
    let plan = plan::Plan::new(cfg, opts.budget, opts.blinding, &mut scratch.plan);
    let callees = calls::Callees::new(cfg, &plan);
    let guards = GuardPlan::new(cfg, &plan, facts, opts);
    // Sized for typical code (see `capacity`), so the buffers rarely grow while emitting,
    // with a label per instruction of each versioned loop's fast copy on top.
    // Every label is dynamic: the static label tables (hash maps by name) stay empty.
    let fast_labels: usize = guards
        .loops
        .loops
        .iter()
        .map(|l| (l.end.0 - l.head.0 + 2) as usize)
        .sum();
    let labels = capacity::labels(n) + fast_labels;
    let mut ops = match scratch.asm.take() {
        Some(mut ops) => {
            // Its code buffer went with the last compilation's code (`VecAssembler::take`).
            ops.reserve_ops(capacity::code(n, opts));
            ops
        }
        None => VecAssembler::new_with_capacity(
            0,
            capacity::code(n, opts),
            0,
            0,
            labels,
            0,
            capacity::references(n),
        ),
    };
    let stubs = stubs::Stubs::new(&mut ops);
    let merged = guards.groups.len();
    // The listing's records, sized once: every instruction of the main copy, of each
    // versioned loop's fast copy and of each merged guard's fallback, and a copy record each
    // (the budget slow paths, known only once the main code is emitted, add theirs later).
    let versioned = guards.loops.loops.len();
    let copied: usize = guards
        .loops
        .loops
        .iter()
        .map(|l| (l.end.0 - l.head.0 + 1) as usize)
        .sum::<usize>()
        + guards.groups.slots();
    let mut e = Emitter {
        ops,
        opts,
        prog,
        cfg,
        reach,
        slots: n,
        label_of: {
            let mut v = std::mem::take(&mut scratch.label_of);
            v.clear();
            v.resize(n, NO_LABEL);
            v
        },
        pc_labels: reserved(&mut scratch.pc_labels, capacity::labels(n) / 4),
        stubs,
        cold: reserved(&mut scratch.cold, capacity::cold(n)),
        layout: Layout {
            insns: Vec::with_capacity(n + copied),
            copies: Vec::with_capacity(1 + versioned + merged),
            loop_checks: Vec::with_capacity(versioned),
            cold_blocks: Vec::with_capacity(capacity::cold(n)),
            ..Layout::default()
        },
        facts,
        inline,
        blocks: if opts.budget {
            blocks::Blocks::new(cfg, facts.map_or(&[][..], |f| f.callbacks()), |pc| {
                plan.absorbed(pc)
            })
        } else {
            blocks::Blocks::default()
        },
        kind: CopyKind::Main,
        // A charge per block start, in the main code and each fast copy.
        slow_blocks: reserved(
            &mut scratch.slow_blocks,
            if opts.budget { capacity::cold(n) } else { 0 },
        ),
        fell_off: None,
        blind: opts.blinding.then(|| blind::Blinder::new(seed)),
        plan,
        callees,
        guards,
        fallbacks: Vec::with_capacity(merged),
        loop_labels: Vec::new(),
        input_regs: None,
    };
    e.loop_labels = e
        .guards
        .loops
        .loops
        .iter()
        .map(|l| loops::LoopLabels {
            check: e.ops.new_dynamic_label(),
            fast: (l.head.0..=l.end.0)
                .map(|_| e.ops.new_dynamic_label())
                .collect(),
        })
        .collect();
    let used = e.plan.used();
    abi::emit_prologue(&mut e, used);
    for &cb in facts.map_or(&[][..], |f| f.timer_callbacks()) {
        let at = abi::emit_timer_entry(&mut e, used, cb);
        e.layout.timer_entries.push((cb, at));
    }
    e.layout.body = e.offset();
    e.emit_copy(
        CopyKind::Main,
        Pc(0),
        Pc(n.saturating_sub(1) as u32),
        Exit::FellOff,
    )?;
    for i in 0..e.guards.loops.loops.len() {
        e.emit_loop_copy(i)?;
    }
    for (group, from, resume) in std::mem::take(&mut e.fallbacks) {
        e.emit_fallback(group, from, resume)?;
    }
    e.layout.slow = e.offset();
    // The slow paths copy each block once: at most every instruction again, one copy record
    // per block, sized once rather than grown per block.
    if !e.slow_blocks.is_empty() {
        e.layout.insns.reserve(n);
        e.layout.copies.reserve_exact(e.slow_blocks.len());
    }
    let mut slow_blocks = std::mem::take(&mut e.slow_blocks);
    for (start, entry) in slow_blocks.drain(..) {
        e.emit_slow_block(start, entry)?;
    }
    e.kind = CopyKind::Main;
    e.layout.cold = e.offset();
    let mut cold = std::mem::take(&mut e.cold);
    for block in cold.drain(..) {
        let start = e.offset();
        e.layout.cold_blocks.push((block.pc(), start));
        e.emit_cold(&block);
        check_size(block.pc(), e.offset() - start, MAX_COLD_BYTES)?;
    }
    e.layout.stubs = e.offset();
    e.emit_stubs();
    let stats = CompileStats {
        prepaid_loops: e.prepaid_loops(),
        ..e.guards.stats()
    };
    // `take` resolves the relocations as `finalize` does, and keeps the label and relocation
    // lists' capacity for the next compilation.
    let code = e
        .ops
        .take()
        .map_err(|err| JitError::Assemble(err.to_string()))?;
    // A huge program's tables are not worth keeping for the rest of the thread's life.
    if n <= SCRATCH_MAX_SLOTS {
        e.plan.recycle(&mut scratch.plan);
        SCRATCH.with(|s| {
            s.set(Scratch {
                asm: Some(e.ops),
                label_of: e.label_of,
                pc_labels: e.pc_labels,
                cold,
                slow_blocks,
                plan: scratch.plan,
            })
        });
    }
    Ok(Assembled {
        code,
        layout: e.layout,
        exposure: e.blind.map(|b| b.exposure),
        // A callback's frame lies below its caller's, outside the local-call graph: a program
        // with callbacks may reach every frame.
        frames: e
            .callees
            .frames()
            .filter(|_| facts.is_none_or(|f| f.callbacks().is_empty())),
        stats,
    })
}

/// Where control goes after the last instruction of a copy, when it falls through.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Exit {
    /// The main copy: past the program's end, a `FellOffEnd` trap at the last instruction.
    FellOff,
    /// To the main code's next instruction (as a jump from outside the copy would go).
    Next,
    /// To a label in the main code (a merged guard's resume point).
    To(DynamicLabel),
}

impl Emitter<'_> {
    /// The driver, the one loop that lowers instructions: lowers those from `first` to `last`
    /// (inclusive; the program's end bounds it) as a copy of `kind`, recording each in the
    /// layout, then leaves as `exit` says. A copy entered out of line has its entry label
    /// defined just before.
    pub(crate) fn emit_copy(
        &mut self,
        kind: CopyKind,
        first: Pc,
        last: Pc,
        exit: Exit,
    ) -> Result<(), JitError> {
        self.kind = kind;
        let start = self.layout.insns.len();
        self.layout.copies.push(CopyLayout {
            kind,
            first,
            at: self.offset(),
            insns: start..start,
        });
        let copy = self.layout.copies.len() - 1;
        if kind == CopyKind::Slow {
            // A slow path gives back its block's charge first: it charges one at a time.
            let n = self.blocks.starting_at(first).unwrap_or(0);
            asm!(self; add QWORD [BYTE r12 + ctx::BUDGET], n as i32);
        }
        let prog = self.prog;
        let mut leads = 0;
        let mut lowered = None;
        let mut pc = first;
        while pc <= last {
            let Some(&op) = prog.get(pc) else { break };
            if kind == CopyKind::Main
                && let Some(i) = self.guards.loops.index_at(pc)
                && self.guards.loops.loops[i].head == pc
            {
                self.layout.loop_checks.push((pc, self.offset()));
                self.emit_loop_check(i);
            }
            if matches!(kind, CopyKind::Main | CopyKind::Fast(_)) && self.plan.is_loop_head(pc) {
                self.emit_loop_align();
            }
            let at = self.offset();
            self.layout.insns.push((pc, at));
            self.layout.copies[copy].insns.end = self.layout.insns.len();
            match kind {
                CopyKind::Main => {
                    if let Some(label) = self.pc_labels.get(self.label_of[pc.index()] as usize) {
                        let label = *label;
                        asm!(self; =>label);
                    }
                    self.charge_block(pc);
                    if let Some(group) = self.guards.groups.lead(pc, &mut leads) {
                        self.emit_merged_guard(group);
                    }
                }
                CopyKind::Slow => self.charge_one(pc),
                CopyKind::Fallback => {
                    // The main copy charged the run's first block before its merged guard;
                    // the fallback charges the blocks after it.
                    if pc != first {
                        self.charge_block(pc);
                    }
                }
                CopyKind::Fast(i) => {
                    let label = self.loop_labels[i].fast
                        [(pc.0 - self.guards.loops.loops[i].head.0) as usize];
                    asm!(self; =>label);
                    // A prepaid loop's check took the charge of all its iterations.
                    if pc != self.guards.loops.loops[i].head || self.prepaid(i).is_none() {
                        self.charge_block(pc);
                    }
                }
            }
            self.lower(pc, &op);
            if kind == CopyKind::Main
                && let Some(&(group, _, resume)) = self.fallbacks.last()
                && group.last == pc
            {
                asm!(self; =>resume);
            }
            let max = match op {
                Op::Call(bpfx_bytecode::CallTarget::Helper(_))
                    if self.facts.is_some_and(|f| f.callback(pc).is_some()) =>
                {
                    MAX_CALLBACK_CALL_BYTES
                }
                _ => MAX_INSN_BYTES,
            };
            check_size(pc, self.offset() - at, max)?;
            lowered = Some((pc, op));
            pc = Pc(pc.0 + op.slots());
        }
        match exit {
            // Control that runs past the last instruction (it falls through, or a local call
            // in the last slot returns) traps there, as the interpreter does.
            Exit::FellOff => {
                if let Some((pc, _)) = lowered.filter(|(_, op)| op.falls_through()) {
                    self.layout.fell_off = Some(self.offset());
                    let label = self.new_label();
                    self.fell_off = Some(label);
                    asm!(self; =>label);
                    self.emit_trap_now(pc, TrapKind::FellOffEnd);
                }
            }
            // A copy whose last instruction does not end in a taken jump (it falls through, or
            // is a jump to the next instruction or the skipped `ja` of a fused branch, which
            // emit nothing) continues in the main code.
            Exit::Next => {
                if let Some((pc, op)) = lowered {
                    let next = Pc(pc.0 + op.slots());
                    if next.index() < self.slots {
                        let to = self.jump_label(None, next);
                        asm!(self; jmp =>to);
                    } else if let Some(to) = self.fell_off {
                        asm!(self; jmp =>to);
                    }
                }
            }
            Exit::To(to) => asm!(self; jmp =>to),
        }
        Ok(())
    }
}

/// First sizes of the assembler's buffers, by the program's slot count: about what the
/// benchmark programs need (measured), so that a compilation allocates each buffer once;
/// larger code only grows them.
mod capacity {
    use crate::JitOptions;

    /// Bytes of code: the prologue and stubs, then 5 to 17 bytes per slot (the budget's slow
    /// paths copy every block: about 3 times as much).
    pub(super) fn code(slots: usize, opts: &JitOptions) -> usize {
        let per_slot = if opts.budget { 56 } else { 20 };
        512 + per_slot * slots
    }

    /// Dynamic labels (one per jump target and per cold block; well under one per slot).
    pub(super) fn labels(slots: usize) -> usize {
        32 + slots / 2
    }

    /// Cold blocks (one per guard and trapping site; about one per four slots at most).
    pub(super) fn cold(slots: usize) -> usize {
        16 + slots / 4
    }

    /// References to dynamic labels (branches, and jumps to cold blocks and stubs).
    pub(super) fn references(slots: usize) -> usize {
        32 + slots
    }
}

/// `buf`, taken out of the scratch, emptied, with room for `n` items.
fn reserved<T>(buf: &mut Vec<T>, n: usize) -> Vec<T> {
    let mut v = std::mem::take(buf);
    v.clear();
    v.reserve(n);
    v
}

fn check_size(pc: Pc, len: usize, max: usize) -> Result<(), JitError> {
    if len > max {
        return Err(JitError::CodeSize { pc, len, max });
    }
    Ok(())
}

impl<'a> Emitter<'a> {
    /// Current code offset.
    pub(crate) fn offset(&self) -> usize {
        self.ops.offset().0
    }

    /// The label of the instruction at `pc` (an instruction start), made on first use: the
    /// driver defines it when it reaches `pc`, or, when `pc` was already emitted, it is
    /// defined here at that instruction's start.
    pub(crate) fn pc_label(&mut self, pc: Pc) -> DynamicLabel {
        let slot = self.label_of.get(pc.index()).copied().unwrap_or(NO_LABEL);
        if let Some(&label) = self.pc_labels.get(slot as usize) {
            return label;
        }
        let label = self.new_label();
        if let Some(id) = self.label_of.get_mut(pc.index()) {
            *id = self.pc_labels.len() as u32;
            self.pc_labels.push(label);
        }
        let done = self.layout.main_insns();
        if done.last().is_some_and(|&(last, _)| last >= pc)
            && let Ok(k) = done.binary_search_by_key(&pc, |&(p, _)| p)
        {
            // A label made just now is known and undefined, so this cannot fail (were it to,
            // the label would stay undefined and `finalize` would report it).
            let at = AssemblyOffset(done[k].1);
            let _ = self.ops.labels_mut().define_dynamic(label, at);
        }
        label
    }

    fn new_label(&mut self) -> DynamicLabel {
        self.ops.new_dynamic_label()
    }

    /// Lowers one instruction: the dispatch on its class.
    fn lower(&mut self, pc: Pc, op: &Op) {
        let mut action = self.plan.action(pc);
        if self.kind == CopyKind::Slow
            && (matches!(
                action,
                plan::Action::BranchNot(_) | plan::Action::Select { .. }
            ) || self.plan.absorbed(pc))
        {
            // A budget slow path charges a fused or converted branch and the instructions it
            // absorbed one at a time: as written.
            action = plan::Action::Emit;
        }
        let addr = match action {
            plan::Action::Emit => None,
            plan::Action::Skip => return,
            plan::Action::Access(addr) => Some(addr),
            plan::Action::Lea(addr) => {
                if let Some(dst) = op.written_reg() {
                    self.emit_lea_mem(abi::host(dst), addr.into());
                    return;
                }
                None
            }
            action @ (plan::Action::BranchNot(_) | plan::Action::Select { .. }) => {
                if let Op::Branch {
                    width,
                    cond,
                    lhs,
                    rhs,
                    ..
                } = *op
                {
                    // With the budget charge, the block's charge paid for the instructions the
                    // branch absorbed (`rest`): the way that skips them gives them back.
                    let rest = self.blocks.rest(pc) as i32;
                    if let plan::Action::Select { dst, src } = action {
                        self.emit_select(width, cond, lhs, rhs, dst, src);
                        if self.opts.budget {
                            self.emit_select_refund(cond, rest);
                        }
                    } else if let plan::Action::BranchNot(target) = action {
                        self.emit_branch(pc, width, cond, lhs, rhs, target, true);
                        if self.opts.budget {
                            // Falling through skips the `ja`.
                            asm!(self; add QWORD [BYTE r12 + ctx::BUDGET], rest);
                        }
                    }
                    return;
                }
                None
            }
        };
        match *op {
            Op::Alu {
                width,
                op,
                dst,
                src,
            } => self.lower_alu(pc, width, op, dst, src),
            Op::Neg { width, dst } => self.lower_neg(width, dst),
            Op::Movsx {
                width,
                from,
                dst,
                src,
            } => self.lower_movsx(width, from, dst, src),
            Op::Endian { order, bits, dst } => self.lower_endian(order, bits, dst),
            Op::LoadImm64 { dst, value } => self.lower_lddw(pc, dst, value),
            Op::Load {
                size,
                signed,
                dst,
                base,
                off,
            } => {
                let addr = addr.unwrap_or(plan::Addr::plain(base, off));
                self.lower_load(pc, size, signed, dst, addr)
            }
            Op::Store {
                size,
                base,
                off,
                src,
            } => {
                let addr = addr.unwrap_or(plan::Addr::plain(base, off));
                self.lower_store(pc, size, addr, src)
            }
            Op::Atomic {
                width,
                op,
                fetch,
                base,
                off,
                src,
            } => self.lower_atomic(pc, width, op, fetch, base, off, src),
            Op::LoadPacket { size, index, imm } => self.lower_packet(pc, size, index, imm),
            Op::Ja { off, .. } => self.lower_ja(pc, off),
            Op::MayGoto { off } => self.lower_may_goto(pc, off),
            Op::Branch {
                width,
                cond,
                lhs,
                rhs,
                off,
            } => self.lower_branch(pc, width, cond, lhs, rhs, off),
            Op::Call(target) => self.lower_call(pc, target),
            Op::Exit => asm!(self; ret),
        }
    }
}

// The context register is r12 and the scratch registers r9–r11 throughout the lowering files,
// which name them directly in assembly; these checks tie the names to the register map.
const _: () = assert!(CTX == x::R12);
const _: () = assert!(abi::SCRATCH[0] == x::R9);
const _: () = assert!(abi::SCRATCH[1] == x::R10);
const _: () = assert!(abi::SCRATCH[2] == x::R11);
