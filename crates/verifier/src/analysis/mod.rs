//! Abstract interpretation over the control-flow graph: a worklist fixpoint with a few stored
//! states per (calling context, join point), transfer functions per instruction class, and the
//! per-pc access facts it leaves behind.
//!
//! Straight-line code is walked with one state mutated in place; a state is stored (and joined)
//! only at the join points [`crate::cfg::Structure::join`] marks, so a million-instruction
//! straight-line program costs one pass and one state. A join point keeps apart (up to
//! [`MAX_PATHS`]) the states whose live values differ in kind (a pointer and a scalar, two
//! maps' handles: [`state::apart`]), as the kernel explores such paths apart, and joins the
//! others ([`Analysis::merge`]). A state arriving at a join point that
//! the stored state of its kinds already covers (the join changes nothing) is not walked again: the
//! kernel's state pruning, done by the join, up to liveness as the kernel's is: values no
//! path reads again ([`crate::cfg::liveness`]) are forgotten in stored states and skipped by
//! the joins ([`Analysis::live_masks`]). States share their stack slots copy-on-write in
//! chunks ([`crate::domain::Stack`]): a branch copies only what a path writes, and merges
//! skip what both states still share. Local calls are analysed per calling
//! context (the chain of call sites, bounded by the frame limit): the callee's frame is pushed
//! onto the state, and its `exit` pops it and flows into the return point of that context.
//!
//! Loops are handled per mode. `Strict` mode explores them iteration by iteration, as the
//! kernel does: each arrival at a loop head over a back-edge starts a new iteration context,
//! states of one iteration join only with each other, and states leaving the loop join again
//! in the context around it. An iteration whose state at the head is covered by an earlier
//! iteration's ([`State::le`]) may repeat forever and is rejected; a loop that keeps producing
//! new states runs into the instruction budget, which names it. A loop each of whose
//! iterations falls through a `may_goto` ([`crate::cfg::LoopInfo::may_goto`]) is bounded by
//! the run's `may_goto` counter instead: a repeating state is pruned, and after a few exact
//! iterations its head widens ([`Analysis::may_goto_iteration`]). `Checked` mode joins the
//! iterations at the head and widens there ([`State::merge_live`]), so its fixpoint is reached in a
//! few rounds whatever the loop does; a head still growing after its share of rounds
//! ([`HEAD_ROUNDS`]), and every head once the budget is spent, takes the certainly stable
//! [`Merge::Hard`] instead, so `Checked` mode never rejects a program for analysis cost.
//!
//! Every rule is a `check_*`-style branch on `self.strict`: in `Strict` mode a violation is an
//! error, in `Checked` mode the value degrades (to an unknown scalar, or an unproven access that
//! keeps its guard). The rule × mode table in `docs/verifier.md` lists them.
//!
//! The module is split by concern:
//!
//! | file        | what                                                                    |
//! |-------------|-------------------------------------------------------------------------|
//! | `mod.rs`    | the engine: worklist, merge at join points, the walk of straight code   |
//! | `ctx.rs`    | calling and iteration contexts, routing along edges, loop latches       |
//! | `state.rs`  | entry states, register reads and writes, stack byte addressing          |
//! | `step.rs`   | the transfer function: one instruction, dispatched by class             |
//! | `alu.rs`    | ALU rules (scalars, pointer arithmetic, packet ids)                     |
//! | `mem.rs`    | loads, stores, atomics: one function per region                         |
//! | `call.rs`   | helper calls and their arguments, local calls, `exit`                   |
//! | `callback.rs` | callback-taking helper calls (`bpf_loop`, `for_each_map_elem`)       |
//! | `branch.rs` | conditional jumps: both edges, each narrowed by its condition           |
//! | `log.rs`    | [`VerifierLog`]                                                          |
//!
//! An invariant of the analysis that does not hold is a verifier bug: it is reported as
//! [`VerifyErrorKind::Internal`](crate::VerifyErrorKind::Internal) at the pc where it showed,
//! never a panic.

mod alu;
mod branch;
mod call;
mod callback;
mod ctx;
mod log;
mod mem;
mod state;
mod step;

pub use log::{LOG_LIMIT, VerifierLog};

use crate::cfg::{Liveness, Loops, Structure};
use crate::config::{Config, ContextKind, ContextLayout, Mode};
use crate::context::CtxFacts;
use crate::domain::{Merge, State};
use crate::error::{VerifyError, VerifyErrorKind as K};
use bpfx_bytecode::{Imm64, Op, Pc, Program};
use ctx::{Ctx, CtxId, CtxKind, CtxTag, Dest};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasherDefault, Hasher};

type R<T> = Result<T, VerifyError>;

/// The maps of the analysis, keyed by small integers (contexts, pcs), which every processed
/// instruction may look up: hashed by [`KeyHasher`] instead of the default SipHash, which
/// guards against adversarial keys the analysis never has (its keys are ids it hands out and
/// pcs of the program) and cost a tenth of the analysis' time.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<KeyHasher>>;
type HashSet<K> = std::collections::HashSet<K, BuildHasherDefault<KeyHasher>>;

/// A multiplicative hash of a few integers (the rotate-xor-multiply of Firefox and rustc's
/// `FxHasher`): each word is folded in with one multiplication.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl KeyHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits and its tag from the top seven: the
        // multiplication leaves the entropy in the high bits, so bring some down.
        self.0.rotate_left(20)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

/// Where the state of a queued node waits.
///
/// The order of the variants is part of the worklist's order (see [`Node`]): among nodes at
/// the same pc and context, a carried state goes first, then a latch, then a stored state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Held {
    /// Handed on to a pc with a single predecessor: in `carried` at this index.
    Carried(CarryId),
    /// In `latches`: the next iteration of the loop whose head is the node's pc.
    Latch,
    /// In `states`, at a join point: the state of this index among the ones kept apart there.
    Stored(u8),
}

/// An index into [`Analysis::carried`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct CarryId(u32);

/// A pending node of the worklist, popped lowest first (fields compared in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Node {
    /// The pc, so that in loop-free code every predecessor of a join point is processed
    /// before it; for a latch, the end of the loop's body, so that every path of the
    /// iteration has reached it.
    prio: Pc,
    pc: Pc,
    ctx: CtxId,
    held: Held,
}

/// What happens after an instruction.
enum Flow {
    /// Continue at this pc, in this context, with this state.
    Next(Pc, State),
    /// Both edges of a branch: the fall-through first, then the target.
    Fork([(Pc, State); 2]),
    /// Continue in another context (a call or a return).
    Enter(CtxId, Pc, State),
    /// The path ends (outermost exit, or a certain run-time trap).
    Stop,
}

pub(crate) struct Analysis<'a> {
    prog: &'a Program,
    cfg: &'a Config,
    strict: bool,
    join: &'a [bool],
    keep: &'a [bool],
    loops: &'a Loops,
    /// What each pc may still read: dead values are forgotten where states are stored.
    liveness: &'a Liveness,
    /// Scratch for [`Analysis::live_masks`]: per frame, the live registers and stack slots.
    masks: Vec<(u16, u64)>,
    ctxs: Vec<Ctx>,
    ctx_ids: HashMap<(Option<CtxId>, CtxTag), CtxId>,
    /// The states stored at each join point, per context: at most [`MAX_PATHS`], kept apart
    /// where they disagree on the kind of a live value ([`state::apart`]); `None` where a
    /// state was handed on and not kept.
    states: HashMap<(CtxId, Pc), Vec<Option<State>>>,
    queued: HashSet<(CtxId, Pc, u8)>,
    /// Pending nodes, lowest first.
    work: BinaryHeap<Reverse<Node>>,
    /// States waiting to start the next iteration, per (iteration context, head), with the pc
    /// of a back-edge that brought them.
    latches: HashMap<(CtxId, Pc), (State, Pc)>,
    /// States at the head of a loop instance (by its `first` context) in iterations 0, 1, 2,
    /// 4, 8, …: an iteration covered by one of them may repeat forever.
    /// Each with its iteration: a late state for iteration `k + 1` (a path that reached the
    /// head after the latch was processed) is compared only with iterations up to `k`.
    snapshots: HashMap<CtxId, Vec<(u32, State)>>,
    /// Per instance (by its `first` context) of a loop bounded by `may_goto`: what its
    /// widening needs ([`Analysis::may_goto_iteration`]).
    may_goto_heads: HashMap<CtxId, ctx::MayGotoHead>,
    /// Per head of a loop bounded by `may_goto`: how many instances of it started.
    may_goto_instances: HashMap<Pc, u32>,
    /// Per loop instance (indexed by its `first` context): the pending nodes in any of its
    /// contexts (its iterations, the loops and calls inside them). When it drops to zero the
    /// instance has handed every state on and its snapshots are freed; without this, a loop
    /// that keeps entering new inner instances kept one full state per instance until the
    /// budget ran out (gigabytes for a 22-instruction program).
    live: Vec<u32>,
    /// The last scalar or packet-pointer id handed out.
    next_id: u32,
    /// Where each socket reference was acquired (the `call`), for the messages about
    /// pointers used after their release.
    sock_refs: HashMap<u32, bpfx_bytecode::Pc>,
    /// Whether some reached instruction reads an entry value carrying `scalar::LEN_ID` (the
    /// input length taken as the constant `mem_size`): the proof then holds only for runs on
    /// exactly `mem_size` bytes ([`crate::Assumptions::exact_len`]).
    pub(crate) reads_len: bool,
    /// States handed to a single-predecessor pc ([`Held::Carried`]), and the free indexes.
    carried: Vec<Option<State>>,
    free: Vec<CarryId>,
    pub(crate) facts: Vec<u8>,
    /// Per pc: whether some path of the analysis reached it.
    pub(crate) reached: Vec<bool>,
    /// The context's fields, when r1 points to a described context struct.
    layout: Option<&'a ContextLayout>,
    /// Context accesses per pc, converted after the analysis (`context.rs`).
    pub(crate) ctx: CtxFacts,
    pub(crate) processed: u64,
    /// `Checked` mode: how many times each loop head's state (by context and pc) grew over a
    /// back-edge. A head past [`HEAD_ROUNDS`] has used its share and is merged with
    /// [`Merge::Hard`] from then on.
    rounds: HashMap<(CtxId, Pc), u32>,
    /// `Checked` mode: the processed-instruction budget ran out, so every loop head is merged
    /// with [`Merge::Hard`] (the analysis goes on: Checked mode never rejects for cost).
    over_budget: bool,
    /// Entries of the functions whose address the program takes (`lddw rX, func`),
    /// increasing: the only values a callback argument may hold.
    func_ptrs: Vec<Pc>,
    /// Per callback-taking helper call reached: the callback it runs (`call.rs`).
    pub(crate) callbacks: std::collections::HashMap<Pc, CallbackSite>,
    /// The root contexts of timer callbacks (`callback.rs`, `enter_timer_callback`), each
    /// with the size of the read-only key copy at the bottom of its frame 0 (0 when unknown).
    async_roots: std::collections::HashMap<CtxId, i64>,
    /// Per helper call taking a map handle: the map and where its key lies, joined over every
    /// visit (`None` once two visits disagree on the map), for [`crate::MapCall`].
    pub(crate) map_calls: std::collections::HashMap<Pc, Option<crate::MapCall>>,
    /// Per store or atomic through a packet pointer: how far from the packet's start it may
    /// write, joined over every visit, for [`crate::VerifiedProgram::packet_write`].
    pub(crate) packet_writes: std::collections::HashMap<Pc, crate::PacketReach>,
    log: Option<&'a mut VerifierLog>,
}

/// A `call` of a callback-taking helper, as the analysis found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CallbackSite {
    /// The callback's entry.
    pub(crate) target: Pc,
    /// What the helper passes it.
    pub(crate) kind: crate::config::CallbackKind,
    /// The most times one call of the helper runs the callback, over every path reaching it
    /// (`bpf_loop`: `nr_loops`' upper bound, at most `BPF_MAX_LOOPS`; `for_each_map_elem`:
    /// the map's `max_entries`, `u64::MAX` when unknown).
    pub(crate) trips: u64,
}

/// Widening rounds a `Checked`-mode loop head gets before it falls back to the certainly
/// stable [`Merge::Hard`]. [`State::merge_live`] moves each bound of each value at most once, so
/// ordinary loops settle in a few rounds; a head still growing after this many is one whose
/// state has many values moving one after another (every register and spill of a large body).
const HEAD_ROUNDS: u32 = 32;

/// The most states kept apart at one join point in one context ([`Analysis::merge`]): past
/// it, an arriving state that fits none is joined into the first, as if there were one.
const MAX_PATHS: usize = 8;

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
            liveness: &st.live,
            masks: Vec::new(),
            ctxs: Vec::new(),
            ctx_ids: HashMap::default(),
            states: HashMap::default(),
            queued: HashSet::default(),
            work: BinaryHeap::new(),
            latches: HashMap::default(),
            snapshots: HashMap::default(),
            may_goto_heads: HashMap::default(),
            may_goto_instances: HashMap::default(),
            live: Vec::new(),
            next_id: 0,
            sock_refs: HashMap::default(),
            reads_len: false,
            carried: Vec::new(),
            free: Vec::new(),
            facts: vec![0; prog.len()],
            reached: vec![false; prog.len()],
            layout: match &cfg.context {
                ContextKind::Fields(l) => Some(l),
                ContextKind::Memory => None,
            },
            ctx: CtxFacts::default(),
            processed: 0,
            rounds: HashMap::default(),
            over_budget: false,
            func_ptrs: Vec::new(),
            callbacks: std::collections::HashMap::new(),
            async_roots: std::collections::HashMap::new(),
            map_calls: std::collections::HashMap::new(),
            packet_writes: std::collections::HashMap::new(),
            log,
        }
    }

    /// Runs the fixpoint from the entry. A function whose address the program takes (`lddw
    /// func`) is analysed where a callback-taking helper is called with it (`call.rs`), in
    /// the caller's context, as the kernel does; one never passed to such a helper is never
    /// run (the engines call only the callbacks the analysis recorded), and its accesses keep
    /// their guards.
    pub(crate) fn run(&mut self, funcs: &[Pc]) -> R<()> {
        let entry = self.entry_state();
        let root = self.intern(
            None,
            CtxTag::Call(Pc(0)),
            CtxKind::Call { call_site: Pc(0) },
        );
        self.merge(root, Pc(0), entry, false)?;
        let callbacks: Vec<Pc> = self
            .prog
            .iter()
            .filter_map(|(pc, op)| match op {
                Op::LoadImm64 {
                    value: Imm64::Func { off },
                    ..
                } => Some(pc.jump(*off)),
                _ => None,
            })
            .collect();
        for &cb in &callbacks {
            if !funcs.contains(&cb) {
                return Err(self.internal(cb, "a callback is not a function entry"));
            }
        }
        self.func_ptrs = callbacks;
        self.func_ptrs.sort_unstable();
        self.func_ptrs.dedup();
        while let Some(Reverse(node)) = self.work.pop() {
            match node.held {
                Held::Latch => self.next_iteration(node.ctx, node.pc)?,
                held => self.process(node.ctx, node.pc, held)?,
            }
            // Released only now: the node's own instances stay live while it is processed.
            self.hold(node.ctx, false);
        }
        Ok(())
    }

    /// Processes one stored or carried node.
    fn process(&mut self, ctx: CtxId, pc: Pc, held: Held) -> R<()> {
        let st = match held {
            Held::Stored(v) => {
                let key = (ctx, pc);
                self.queued.remove(&(ctx, pc, v));
                // Inside a loop iteration nothing is kept: every iteration has its own
                // contexts, so kept states would grow with the iteration count (a late merge
                // into a dropped state only makes a partial state that is processed again,
                // which is sound).
                let keep = self.keep[pc.index()] && (!self.strict || self.loop_of(ctx).is_none());
                let (st, empty) = match self.states.get_mut(&key) {
                    Some(slots) => {
                        let st = match slots.get_mut(usize::from(v)) {
                            Some(slot) if keep => slot.clone(),
                            Some(slot) => slot.take(),
                            None => None,
                        };
                        (st, slots.iter().all(Option::is_none))
                    }
                    None => (None, false),
                };
                if empty {
                    self.states.remove(&key);
                }
                st.ok_or_else(|| self.internal(pc, "a queued node has no stored state"))?
            }
            Held::Carried(slot) => {
                self.free.push(slot);
                self.carried
                    .get_mut(slot.0 as usize)
                    .and_then(Option::take)
                    .ok_or_else(|| self.internal(pc, "a carried state was taken twice"))?
            }
            Held::Latch => return Err(self.internal(pc, "a latch processed as a state")),
        };
        if let CtxKind::Iter {
            head, iter, first, ..
        } = self.ctx_kind(ctx)
            && head == pc
            && (iter == 0 || iter.is_power_of_two())
        {
            self.snapshots
                .entry(first)
                .or_default()
                .push((iter, st.clone()));
        }
        if let CtxKind::Iter {
            head, iter, first, ..
        } = self.ctx_kind(ctx)
            && head == pc
            && self.loops.info.get(&head.0).is_some_and(|i| i.may_goto)
        {
            let processed = self.processed;
            let mut share = self.cfg.insn_budget.saturating_sub(processed) / ctx::EXACT_SHARE;
            if !self.may_goto_heads.contains_key(&first) {
                // The n-th instance of this head gets half the share of the one before.
                let n = self.may_goto_instances.entry(head).or_insert(0);
                share >>= (*n).min(63);
                *n += 1;
            }
            let h = self
                .may_goto_heads
                .entry(first)
                .or_insert_with(|| ctx::MayGotoHead {
                    base: None,
                    rounds: 0,
                    start: processed,
                    share,
                });
            if iter + 2 >= ctx::WIDEN_AFTER {
                h.base = Some(st.clone());
            }
        }
        self.walk(ctx, pc, st)
    }

    /// Queues a node, counting it as live in every loop instance around its context.
    fn push(&mut self, prio: Pc, pc: Pc, ctx: CtxId, held: Held) {
        self.hold(ctx, true);
        self.work.push(Reverse(Node {
            prio,
            pc,
            ctx,
            held,
        }));
    }

    /// Joins `st` into a state stored at (ctx, pc) (widening over a `Checked`-mode
    /// back-edge), queueing that state's node if it changed.
    ///
    /// A join point keeps up to [`MAX_PATHS`] states apart, as the kernel keeps every path's
    /// state: `st` joins the first stored state whose live values are all of its kinds
    /// ([`state::apart`]: a pointer and a scalar, pointers into different regions or maps,
    /// a map handle and null or another map's handle are of different kinds; in `Checked`
    /// mode only the differences its own rules refuse once joined: [`state::Split`]), and is
    /// stored beside them when none is; states of the same kinds join as before, so loops still
    /// converge. Past the bound, `st` joins the first state whatever it holds (which is
    /// sound: a value joined from different kinds is one no rule trusts).
    ///
    /// Values dead at `pc` ([`Analysis::live_masks`]) are forgotten in a state stored there
    /// and skipped by the joins into it and by the kind comparison, so two states differing
    /// only in what no path reads again are one there, and an arriving state that brings
    /// nothing live changes nothing and is not walked again: the kernel's state pruning up to
    /// liveness.
    fn merge(&mut self, ctx: CtxId, pc: Pc, mut st: State, back: bool) -> R<()> {
        self.live_masks(ctx, pc, st.depth());
        let key = (ctx, pc);
        let split = if self.strict {
            state::Split::Every
        } else {
            // A callee's paths, and those leaving it, are kept apart by what they return
            // (`state::apart`); not over a back edge, where the states of a loop join.
            let ret = pc.0 > 0
                && matches!(
                    self.prog.get(Pc(pc.0 - 1)),
                    Some(Op::Call(bpfx_bytecode::CallTarget::Local { .. }))
                );
            state::Split::Refused {
                context: self.layout.is_some(),
                paths: !back && (st.depth() > 0 || ret),
            }
        };
        let slots = self.states.entry(key).or_default();
        // The first state of st's kinds, else the first free place, else the first state.
        let (mut fits, mut free, mut deep, mut covered) = (None, None, false, false);
        for (i, slot) in slots.iter().enumerate() {
            match slot {
                None => {
                    free.get_or_insert(i);
                }
                // The context fixes the call chain, so its states have as many frames.
                Some(old) if old.depth() != st.depth() => deep = true,
                Some(old) if !state::apart(&self.cfg.maps, old, &st, &self.masks, split) => {
                    match fits {
                        None => fits = Some(i),
                        // Another state of its kinds (a state joined past the bound holds
                        // `Mixed` values, of every kind): st is pruned if this one covers it
                        // (the join would change nothing), as the kernel prunes a path
                        // covered by any explored state.
                        Some(_) => {
                            covered |= !old.clone().merge_live(&st, Merge::Join, &self.masks);
                        }
                    }
                }
                Some(_) => {}
            }
        }
        if deep {
            return Err(self.internal(pc, "states of one context differ in depth"));
        }
        if covered {
            return Ok(());
        }
        let full = fits.is_none() && free.is_none() && slots.len() >= MAX_PATHS;
        let v = match (fits, free) {
            (Some(i), _) | (None, Some(i)) => i,
            (None, None) if full => 0,
            (None, None) => {
                slots.push(None);
                slots.len() - 1
            }
        };
        let changed = match &mut slots[v] {
            Some(old) if back => {
                state::unify_maps(&self.cfg.maps, old, &mut st);
                let rounds = self.rounds.entry(key).or_insert(0);
                let how = if self.over_budget || *rounds >= HEAD_ROUNDS {
                    Merge::Hard
                } else {
                    Merge::Widen
                };
                let changed = old.merge_live(&st, how, &self.masks);
                *rounds += u32::from(changed);
                if changed
                    && *rounds == HEAD_ROUNDS
                    && let Some(log) = self.log.as_deref_mut()
                {
                    log.push(format!(
                        "the loop head at {pc} grew {HEAD_ROUNDS} times: widened to a stable state from now on"
                    ));
                }
                changed
            }
            Some(old) => {
                state::unify_maps(&self.cfg.maps, old, &mut st);
                // A rewritten state must run again, whatever the join adds (see there).
                let rewrote = self.strict && state::relate_packets(old, &mut st, &mut self.next_id);
                old.merge_live(&st, Merge::Join, &self.masks) | rewrote
            }
            slot @ None => {
                st.forget(&self.masks);
                *slot = Some(st);
                true
            }
        };
        if full
            && changed
            && let Some(log) = self.log.as_deref_mut()
        {
            log.push(format!(
                "{MAX_PATHS} states of different kinds kept at {pc}: another one joined into the first"
            ));
        }
        let v = v as u8;
        if changed && self.queued.insert((ctx, pc, v)) {
            self.push(pc, pc, ctx, Held::Stored(v));
        }
        Ok(())
    }

    /// Sends `st` along the edge `from -> to` out of `ctx`; returns the context to continue
    /// in at `to` when the walk may go straight on.
    fn flow(
        &mut self,
        ctx: CtxId,
        from: Pc,
        to: Pc,
        st: State,
        last: bool,
    ) -> R<Option<(CtxId, State)>> {
        Ok(match self.route(ctx, to) {
            Dest::Latch(c) => {
                self.latch(c, to, from, st)?;
                None
            }
            Dest::Ctx(c) if self.join[to.index()] || c != ctx => {
                self.merge(c, to, st, !self.strict && to <= from)?;
                None
            }
            Dest::Ctx(c) if last => Some((c, st)),
            Dest::Ctx(c) => {
                let slot = match self.free.pop() {
                    Some(i) => {
                        self.carried[i.0 as usize] = Some(st);
                        i
                    }
                    None => {
                        self.carried.push(Some(st));
                        CarryId((self.carried.len() - 1) as u32)
                    }
                };
                self.push(to, to, c, Held::Carried(slot));
                None
            }
        })
    }

    /// What each frame of a state at `pc` in `ctx` may still read, outermost first, into
    /// `self.masks` ([`crate::cfg::liveness`]): the running frame by the liveness at `pc`,
    /// each caller's by the liveness at its return point (its r0–r5 are overwritten by the
    /// return). A caller's frame above a callback (whose helper may run it again with the
    /// caller's registers), and any frame whose call site the context chain does not give,
    /// counts as wholly live. Both what a stored state forgets and what keeps states apart
    /// ([`state::apart`]) are read from these masks.
    fn live_masks(&mut self, ctx: CtxId, pc: Pc, depth: usize) {
        let mut masks = std::mem::take(&mut self.masks);
        masks.clear();
        masks.resize(depth + 1, (u16::MAX, u64::MAX));
        // In `Strict` mode inside loops too: two states at a loop head that differ only in
        // dead values have the same future, so the loop check (`next_iteration`), which
        // compares them up to these masks, refuses only an iteration that may repeat.
        {
            let at = |p: usize| Some((*self.liveness.regs.get(p)?, *self.liveness.stack.get(p)?));
            if let Some(m) = at(pc.index()) {
                masks[depth] = m;
            }
            let mut call = ctx;
            let mut level = depth;
            while level > 0 {
                level -= 1;
                let (c, site) = self.call_of(call);
                let Some(parent) = self.parent(c) else {
                    break;
                };
                if !matches!(
                    self.prog.get(site),
                    Some(Op::Call(bpfx_bytecode::CallTarget::Local { .. }))
                ) {
                    break;
                }
                let Some((regs, stack)) = at(site.index() + 1) else {
                    break;
                };
                masks[level] = (regs & !bpfx_bytecode::RegSet::CALLER_SAVED.bits(), stack);
                call = parent;
            }
        }
        self.masks = masks;
    }

    fn err(&self, pc: Pc, kind: K) -> VerifyError {
        VerifyError {
            pc,
            op: self.prog.get(pc).copied(),
            kind,
        }
    }

    /// An invariant of the analysis that does not hold at `pc`: a verifier bug.
    fn internal(&self, pc: Pc, what: &'static str) -> VerifyError {
        self.err(pc, K::Internal { what })
    }

    /// Walks straight-line code from `pc` in `ctx`, handing states on at join points, edges
    /// into other contexts and forks.
    fn walk(&mut self, mut ctx: CtxId, mut pc: Pc, mut st: State) -> R<()> {
        loop {
            self.processed += 1;
            if self.processed > self.cfg.insn_budget && !self.strict {
                // Checked mode never rejects for cost: from here on every loop head takes
                // the certainly stable merge, which bounds what is left of the analysis.
                if !self.over_budget {
                    self.over_budget = true;
                    if let Some(log) = self.log.as_deref_mut() {
                        log.push(format!(
                            "budget of {} processed instructions used: every loop head is widened to a stable state",
                            self.cfg.insn_budget
                        ));
                    }
                }
            } else if self.processed > self.cfg.insn_budget {
                let kind = match self.loop_of(ctx) {
                    Some(head) => K::LoopTooComplex {
                        head,
                        budget: self.cfg.insn_budget,
                    },
                    None => K::TooComplex(self.cfg.insn_budget),
                };
                return Err(self.err(pc, kind));
            }
            let Some(&op) = self.prog.get(pc) else {
                return Err(self.internal(pc, "a reachable pc is not an instruction start"));
            };
            self.reached[pc.index()] = true;
            if let Some(log) = self.log.as_deref_mut()
                && log.has_room()
            {
                log.push(format!("{pc}: {op:<28} ; {st}"));
            }
            let flow = match self.step(ctx, pc, &op, st) {
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
                Flow::Next(to, next) => (to, next),
                Flow::Enter(c, p, s) => return self.merge(c, p, s, false),
                Flow::Fork(succs) => {
                    for (to, s) in succs {
                        self.flow(ctx, pc, to, s, false)?;
                    }
                    return Ok(());
                }
            };
            match self.flow(ctx, pc, to, next, true)? {
                Some((c, s)) => {
                    pc = to;
                    ctx = c;
                    st = s;
                }
                None => return Ok(()),
            }
        }
    }
}
