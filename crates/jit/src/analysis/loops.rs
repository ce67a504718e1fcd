//! Loop versioning: one range check before an innermost loop stands for the guards of the
//! accesses whose addresses advance by a constant step per iteration.
//!
//! ```text
//! check:                              ; every entry from outside the loop comes here
//!     <entry relations, trip count, one range check per span>   ; any failure: jmp head
//!     jmp  fast
//! head:                               ; the loop as always, every guard in place
//!     ...
//! fast:                               ; out of line: the same loop, proven accesses unguarded
//!     ...                             ; back edges to fast, exits to the main code
//! ```
//!
//! # What is proven, and how
//! The analysis runs over one iteration of a loop whose instructions run at most once per
//! iteration, in order (a *simple* loop: control enters the range `[head, end]` at one
//! instruction, its `entry`, which is `head` or, in a rotated loop, an instruction in the
//! middle; an iteration runs from `entry` to `end`, then on from `head`, and every branch
//! inside goes forward in that order or back to `entry`; calls clobber r0–r5 and may write
//! any stack slot). It
//! describes each register, at every instruction, as an affine [`Form`]: a sum of at most two
//! *symbols* (the value a register held when the iteration started, or an 8-byte stack slot
//! that nothing in the loop writes) and a constant, or as unknown. The state at the back
//! edges says how an iteration changes each register:
//! - `r` → `r`: invariant; `r` → `r + s`: an induction variable with step `s`;
//! - `r` → `q + s` (or a constant, or a stack slot): once one iteration has run, `r` is tied
//!   to `q` (`r = q + s - step(q)` at every iteration start); the check verifies that the
//!   relation already holds on entry, and `r` then moves with `q`.
//!
//! An access whose address is such a form advances by a constant per iteration, so over
//! iterations `0..n` it lies between its first and its last address. The trip count `n` comes
//! from a 64-bit exit test that every continuing iteration passes: `x < b`, `x <= b` or
//! `x != b` for an induction form `x` with a power-of-two step and an invariant `b`; the
//! check computes `n - 1` (refusing counts that could let `x` wrap, or above 2^31), then checks
//! the first and last address of every span of accesses against the input, exactly as a
//! guard would (`addr - input_base < input_ok[size]`). Any failure takes the guarded loop,
//! which is always correct; the fast copy runs only when every access it leaves unguarded is
//! inside the input on every iteration it can reach.
//!
//! An access the analysis cannot describe keeps its guard in the fast copy. Versioning is off
//! with Spectre hardening (the check is a branch the CPU can mispredict) and blinding (the
//! check would show the program's constants). With the budget charge the fast copy charges
//! each basic block as the main copy does; a block whose charge fails runs its slow path (a
//! charge per instruction, every access guarded), which stops the run at the exact pc.

use super::plan::Plan;
use bpfx_bytecode::{
    AccessKind, AluOp, Cfg, Cond, Imm64, Op, Operand, Pc, Program, Reg, RegSet, Width,
};

/// The largest loop considered, in slots (bounds the analysis and the copied code).
const MAX_RANGE: u32 = 1024;
/// The most loops versioned in one program.
const MAX_LOOPS: usize = 64;
/// The most candidate loops analysed in one program (bounds the compile time of programs
/// with many loops the analysis refuses).
const MAX_ATTEMPTS: usize = 256;
/// The most spans one check covers.
const MAX_SPANS: usize = 8;
/// The most entry relations one check verifies.
const MAX_LINKS: usize = 4;
/// The largest step, in bytes per iteration, an address may advance by.
const MAX_STEP: i64 = 1 << 20;
/// The largest span one range check covers (the largest `input_ok` entry).
const MAX_SPAN: i64 = 128;
/// The most iterations a check lets the fast copy run (`n - 1` above it fails the check).
pub(crate) const MAX_TRIPS: i32 = i32::MAX;

/// A value that stays the same during one iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Sym {
    /// What the register held when the iteration started.
    Reg(Reg),
    /// The 8 bytes at `r10 + off`, which no instruction of the loop writes.
    Slot(i16),
}

/// `terms[0] + terms[1] + k`, wrapping; absent terms are 0. Terms are sorted, `None` last, so
/// equal values have equal forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Form {
    pub(crate) terms: [Option<Sym>; 2],
    pub(crate) k: i64,
}

impl Form {
    fn constant(k: i64) -> Form {
        Form {
            terms: [None, None],
            k,
        }
    }

    fn sym(s: Sym) -> Form {
        Form {
            terms: [Some(s), None],
            k: 0,
        }
    }

    fn plus(self, d: i64) -> Form {
        Form {
            k: self.k.wrapping_add(d),
            ..self
        }
    }

    /// `self + other`, if the sum has at most two terms.
    fn add(self, other: Form) -> Option<Form> {
        let mut terms = [None; 2];
        let mut n = 0;
        for t in [self.terms[0], self.terms[1], other.terms[0], other.terms[1]] {
            if t.is_some() {
                *terms.get_mut(n)? = t;
                n += 1;
            }
        }
        if let [Some(a), Some(b)] = terms
            && b < a
        {
            terms = [Some(b), Some(a)];
        }
        Some(Form {
            terms,
            k: self.k.wrapping_add(other.k),
        })
    }

    /// The one term and the constant, if the form has at most one term.
    fn single(self) -> Option<(Option<Sym>, i64)> {
        match self.terms {
            [t, None] => Some((t, self.k)),
            _ => None,
        }
    }
}

/// A register's value: a form, or unknown (`None`).
type Val = Option<Form>;
/// The values of r0–r10.
type State = [Val; Reg::COUNT];

fn meet(a: &mut Option<State>, b: &State) {
    match a {
        None => *a = Some(*b),
        Some(a) => meet_into(a, b),
    }
}

fn meet_into(a: &mut State, b: &State) {
    for (x, y) in a.iter_mut().zip(b) {
        if *x != *y {
            *x = None;
        }
    }
}

/// No state joins at this position yet (see `analyse`).
const NO_JOIN: u32 = u32::MAX;

/// How the loop continues past its exit test: `x < bound`, `x <= bound` or `x != bound`
/// (unsigned, 64-bit), `x` advancing by `1 << shift` per iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TripKind {
    Lt,
    Le,
    Ne,
}

/// The exit test, in iteration-start values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Trip {
    pub(crate) kind: TripKind,
    pub(crate) x: Form,
    pub(crate) bound: Form,
    pub(crate) shift: u32,
}

/// Accesses one range check covers: `size` bytes from `start` in the first iteration,
/// advancing by `step` bytes per iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: Form,
    pub(crate) size: u32,
    pub(crate) step: i64,
}

/// A versioned loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Loop {
    /// The first instruction (every back edge's target).
    pub(crate) head: Pc,
    /// The last instruction (the last back edge).
    pub(crate) end: Pc,
    /// Where control enters from outside: `head`, or, in a rotated loop, the one instruction
    /// in the middle that every entry jumps to (the head is then reached only from inside).
    pub(crate) entry: Pc,
    /// The instruction after `end`, where the loop falls out.
    pub(crate) after: Pc,
    /// Relations the check verifies on entry: the register equals the form.
    pub(crate) links: Vec<(Reg, Form)>,
    pub(crate) trip: Trip,
    pub(crate) spans: Vec<Span>,
    /// The accesses the fast copy leaves unguarded, in pc order.
    pub(crate) unguarded: Vec<Pc>,
}

impl Loop {
    pub(crate) fn contains(&self, pc: Pc) -> bool {
        (self.head..=self.end).contains(&pc)
    }

    pub(crate) fn unguarded(&self, pc: Pc) -> bool {
        self.unguarded.binary_search(&pc).is_ok()
    }
}

/// The versioned loops of a program, in pc order (they never overlap).
#[derive(Debug, Default)]
pub(crate) struct Loops {
    pub(crate) loops: Vec<Loop>,
}

impl Loops {
    /// Finds the loops worth versioning in the program of `cfg`. `guarded(pc)` says whether
    /// the access at `pc` (through the address `plan` folded) needs a guard.
    pub(crate) fn new(cfg: &Cfg, plan: &Plan, guarded: impl Fn(Pc) -> bool) -> Loops {
        let prog = cfg.program();
        let n = prog.len() as u32;
        if !plan.has_backward_jumps() {
            return Loops::default();
        }
        // Every way in other than a fall-through: jumps, branches, calls and function
        // addresses, (target, source).
        let mut edges: Vec<(Pc, Pc)> = Vec::with_capacity(prog.len() / 4);
        for (pc, op) in prog.iter() {
            if let Some(t) = op.jump_target(pc) {
                edges.push((t, pc));
            }
        }
        edges.sort_unstable();
        // Candidate loops: each backward target with its last back edge.
        let mut back: Vec<(Pc, Pc)> = cfg.back_edges().iter().map(|e| (e.to, e.from)).collect();
        back.sort_unstable();
        let mut heads: Vec<(Pc, Pc)> = Vec::with_capacity(back.len() + 1);
        for &(t, src) in &back {
            match heads.last_mut() {
                Some((h, e)) if *h == t => *e = (*e).max(src),
                _ => heads.push((t, src)),
            }
        }
        // Overlapping ranges are one loop with several heads (a `switch` whose cases jump back
        // to different places) or nested loops: their union is a candidate too.
        let mut unions: Vec<(Pc, Pc)> = Vec::new();
        let mut current: Option<(Pc, Pc, usize)> = None;
        for &(h, e) in &heads {
            current = match current {
                Some((ch, ce, k)) if h <= ce => Some((ch, ce.max(e), k + 1)),
                Some((ch, ce, k)) => {
                    if k > 1 {
                        unions.push((ch, ce));
                    }
                    Some((h, e, 1))
                }
                None => Some((h, e, 1)),
            };
        }
        if let Some((ch, ce, k)) = current
            && k > 1
        {
            unions.push((ch, ce));
        }
        heads.extend(unions);
        // Smallest first: an inner loop wins over the loop around it.
        heads.sort_unstable_by_key(|&(h, e)| (e.0 - h.0, h));
        let mut loops: Vec<Loop> = Vec::new();
        let mut attempts = 0;
        for (head, end) in heads {
            if loops.len() == MAX_LOOPS || attempts == MAX_ATTEMPTS {
                break;
            }
            if end.0 - head.0 >= MAX_RANGE
                || end.0 >= n
                || loops.iter().any(|l| l.head <= end && head <= l.end)
            {
                continue;
            }
            let outside = |&(_, src): &(Pc, Pc)| src < head || src > end;
            // Where control enters from outside: the head, or one instruction in the middle (a
            // rotated loop, entered at its test) when nothing else enters, the head included.
            let lo = edges.partition_point(|&(t, _)| t <= head);
            let hi = edges.partition_point(|&(t, _)| t <= end);
            let mut middle = edges[lo..hi].iter().filter(|e| outside(e)).map(|&(t, _)| t);
            let entry = match middle.next() {
                None => head,
                Some(m) if middle.all(|t| t == m) => {
                    let at_head = edges[edges.partition_point(|&(t, _)| t < head)..lo]
                        .iter()
                        .any(outside);
                    if head.0 == 0 || at_head || falls_into(prog, head) {
                        continue;
                    }
                    m
                }
                Some(_) => continue,
            };
            attempts += 1;
            if let Some(l) = analyse(prog, head, end, entry, &guarded) {
                loops.push(l);
            }
        }
        loops.sort_unstable_by_key(|l| l.head);
        Loops { loops }
    }

    /// The index of the versioned loop entered at `pc`.
    pub(crate) fn index_at(&self, pc: Pc) -> Option<usize> {
        self.loops.binary_search_by_key(&pc, |l| l.entry).ok()
    }

    /// Whether `pc` is the first instruction after a versioned loop: control arrives there
    /// from both copies, so nothing may assume code before it ran in the main copy.
    pub(crate) fn is_exit(&self, pc: Pc) -> bool {
        self.loops.binary_search_by_key(&pc, |l| l.after).is_ok()
    }
}

/// What happens to a symbol over one iteration.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Unknown: forms that read it cannot be bounded.
    Varies,
    /// `r + step` after each iteration (0: invariant).
    Step(i64),
    /// Equal to the form (in root symbols) at every iteration start once the relation held
    /// on entry; advances by `step`.
    Linked(Form, i64),
}

/// Whether the instruction before `pc` falls through into it.
fn falls_into(prog: &Program, pc: Pc) -> bool {
    let before = (1..=2)
        .filter_map(|d| pc.0.checked_sub(d))
        .find_map(|i| prog.get(Pc(i)).map(|op| (i, op)));
    before.is_some_and(|(i, op)| i + op.slots() == pc.0 && op.falls_through())
}

/// The analysis of one candidate loop (see the module doc); `None` when nothing is gained.
/// An iteration starts at `entry` and runs in pc order to `end`, then on from `head` (only
/// through jumps) back to `entry` (when `entry` is not `head`: a rotated loop). The steps:
/// the iteration's instructions in order ([`Iteration::new`]), its shape and the frame slots it
/// leaves alone ([`shape`]), one iteration run symbolically ([`run_iteration`]), what each
/// register does over an iteration ([`kinds`]), the exit test ([`find_trip`]) and the spans the
/// check covers ([`find_spans`]).
fn analyse(
    prog: &Program,
    head: Pc,
    end: Pc,
    entry: Pc,
    guarded: &impl Fn(Pc) -> bool,
) -> Option<Loop> {
    // Only the loop's inline guards can be dropped from its fast copy: with none in its
    // range, nothing is gained, and a pass over the range is all it costs to know.
    if !(head.0..=end.0).any(|pc| guarded(Pc(pc))) {
        return None;
    }
    let it = Iteration::new(prog, head, end, entry)?;
    let frame = shape(&it)?;
    let run = run_iteration(&it, &frame, guarded)?;
    let kinds = kinds(&run.back);
    let mut links: Vec<(Reg, Form)> = Vec::new();
    let trip = find_trip(prog, &it, &run.tests, &kinds, &mut links)?;
    let (spans, unguarded) = find_spans(&run.accesses, &kinds, &mut links);
    if unguarded.is_empty() {
        return None;
    }
    Some(Loop {
        head,
        end,
        entry,
        after: it.after,
        links,
        trip,
        spans,
        unguarded,
    })
}

/// One iteration of a candidate loop: its instructions in iteration order, from `entry` to
/// `end`, then from `head` up to `entry`.
struct Iteration {
    head: Pc,
    end: Pc,
    entry: Pc,
    /// The instruction after `end`.
    after: Pc,
    /// Slots from `head` to `after`.
    width: u32,
    ops: Vec<(Pc, Op)>,
}

impl Iteration {
    fn new(prog: &Program, head: Pc, end: Pc, entry: Pc) -> Option<Iteration> {
        let last = prog.get(end)?;
        let after = Pc(end.0 + last.slots());
        let width = after.0 - head.0;
        let mut ops: Vec<(Pc, Op)> = Vec::with_capacity(width as usize);
        for i in (entry.0..=end.0).chain(head.0..entry.0) {
            if let Some(&op) = prog.get(Pc(i)) {
                ops.push((Pc(i), op));
            }
        }
        Some(Iteration {
            head,
            end,
            entry,
            after,
            width,
            ops,
        })
    }

    fn contains(&self, pc: Pc) -> bool {
        (self.head..=self.end).contains(&pc)
    }

    /// An instruction's place in the iteration.
    fn pos(&self, pc: Pc) -> u32 {
        (pc.0 + self.width - self.entry.0) % self.width
    }
}

/// What the loop's stores may write of the frame.
struct FrameWrites {
    /// Something may write anywhere (a call, or a store through another register than r10).
    any_store: bool,
    /// `(offset, size)` of every store and atomic through r10.
    writes: Vec<(i32, i32)>,
}

impl FrameWrites {
    /// Whether the 8-byte slot at `r10 + off` keeps its value over the whole loop.
    fn slot_invariant(&self, off: i16) -> bool {
        let off = i32::from(off);
        !self.any_store
            && (-512..=-8).contains(&off)
            && self
                .writes
                .iter()
                .all(|&(o, s)| o + s <= off || off + 8 <= o)
    }
}

/// The loop's shape: every branch inside goes forward in the iteration, or back to `entry`
/// (else `None`); and the frame writes, which decide which slots are invariant.
fn shape(it: &Iteration) -> Option<FrameWrites> {
    let mut frame = FrameWrites {
        any_store: false,
        writes: Vec::new(),
    };
    for &(pc, op) in &it.ops {
        match op {
            // The run's `may_goto` counter is no register the iteration analysis follows: a
            // loop holding one keeps its plain code.
            Op::MayGoto { .. } => return None,
            Op::Ja { .. } | Op::Branch { .. } => {
                let t = op.jump_target(pc)?;
                if it.contains(t) && t != it.entry && it.pos(t) <= it.pos(pc) {
                    return None;
                }
            }
            // A callee or helper may write anywhere, the caller's frame included.
            Op::Call(_) => frame.any_store = true,
            _ => match op.mem_access() {
                Some(m) if m.kind != AccessKind::Load && m.base == Reg::R10 => {
                    frame.writes.push((i32::from(m.off), m.size.bytes() as i32));
                }
                Some(m) if m.kind != AccessKind::Load => frame.any_store = true,
                _ => {}
            },
        }
    }
    Some(frame)
}

/// One iteration, run symbolically.
struct SymbolicRun {
    /// The state the back edges carry to `entry`.
    back: State,
    /// The guarded accesses the forms describe: pc, address form, size.
    accesses: Vec<(Pc, Form, u32)>,
    /// Each conditional branch, with the state before it.
    tests: Vec<(Pc, State)>,
}

/// Runs one iteration over forms from the registers' iteration-start values; `None` when no
/// path goes round.
fn run_iteration(
    it: &Iteration,
    frame: &FrameWrites,
    guarded: &impl Fn(Pc) -> bool,
) -> Option<SymbolicRun> {
    let slot_invariant = |off: i16| frame.slot_invariant(off);
    let mut start: State = [None; Reg::COUNT];
    for r in Reg::ALL {
        start[r.index()] = Some(Form::sym(Sym::Reg(r)));
    }
    // Per position, the index in `joins` of the state the jumps to it meet in, or NO_JOIN.
    let mut incoming: Vec<u32> = vec![NO_JOIN; it.width as usize];
    // States are large: a join per jump at most, a test per conditional branch, sized once.
    let (mut jumps, mut branches) = (0, 0);
    for (_, op) in &it.ops {
        jumps += usize::from(matches!(op, Op::Ja { .. } | Op::Branch { .. }));
        branches += usize::from(matches!(op, Op::Branch { .. }));
    }
    let mut joins: Vec<State> = Vec::with_capacity(jumps);
    let mut cur: Option<State> = Some(start);
    let mut back: Option<State> = None;
    let mut accesses: Vec<(Pc, Form, u32)> = Vec::with_capacity(8);
    let mut tests: Vec<(Pc, State)> = Vec::with_capacity(branches);
    for &(pc, op) in &it.ops {
        let k = std::mem::replace(&mut incoming[it.pos(pc) as usize], NO_JOIN);
        if let Some(inc) = joins.get(k as usize) {
            meet(&mut cur, inc);
        }
        // In place: a state is large.
        let Some(s) = cur.as_mut() else { continue };
        if let Some(m) = op.mem_access()
            && guarded(pc)
            && let Some(f) = s[m.base.index()]
        {
            accesses.push((pc, f.plus(i64::from(m.off)), m.size.bytes()));
        }
        if let Op::Branch { .. } = op {
            tests.push((pc, *s));
        }
        step(s, &op, &slot_invariant);
        let s = &*s;
        // Where control goes next: a jump's target, and the next instruction (in the pc
        // order, which is the iteration's except where `end` leaves and where the instruction
        // before a rotated loop's entry goes round).
        let mut go = |t: Pc| {
            if t == it.entry {
                meet(&mut back, s);
            } else if it.contains(t) {
                let slot = &mut incoming[it.pos(t) as usize];
                match joins.get_mut(*slot as usize) {
                    Some(j) => meet_into(j, s),
                    None => {
                        *slot = joins.len() as u32;
                        joins.push(*s);
                    }
                }
            }
        };
        if let Some(t) = op
            .jump_target(pc)
            .filter(|_| matches!(op, Op::Ja { .. } | Op::Branch { .. }))
        {
            go(t);
        }
        // The state goes on to the next instruction only when it falls through inside.
        let mut goes_on = false;
        if op.falls_through() {
            let next = Pc(pc.0 + op.slots());
            if next == it.entry || !it.contains(next) {
                go(next);
            } else {
                goes_on = true;
            }
        }
        if !goes_on {
            cur = None;
        }
    }
    Some(SymbolicRun {
        back: back?,
        accesses,
        tests,
    })
}

/// What each register does over an iteration, from the state at the back edges.
fn kinds(back: &State) -> [Kind; Reg::COUNT] {
    let mut kinds = [Kind::Varies; Reg::COUNT];
    for r in Reg::ALL {
        if let Some(f) = back[r.index()]
            && f.terms == [Some(Sym::Reg(r)), None]
        {
            kinds[r.index()] = Kind::Step(f.k);
        }
    }
    for r in Reg::ALL {
        if !matches!(kinds[r.index()], Kind::Varies) {
            continue;
        }
        let Some((term, k)) = back[r.index()].and_then(Form::single) else {
            continue;
        };
        kinds[r.index()] = match term {
            None => Kind::Linked(Form::constant(k), 0),
            Some(Sym::Slot(o)) => Kind::Linked(Form::sym(Sym::Slot(o)).plus(k), 0),
            Some(Sym::Reg(q)) => match kinds[q.index()] {
                Kind::Step(sq) => Kind::Linked(Form::sym(Sym::Reg(q)).plus(k.wrapping_sub(sq)), sq),
                _ => Kind::Varies,
            },
        };
        if matches!(kinds[r.index()], Kind::Linked(g, _) if !fits(g)) {
            kinds[r.index()] = Kind::Varies;
        }
    }
    kinds
}

/// `f` in root symbols (registers that are invariant or step themselves, and slots), with its
/// step per iteration; the relations it relies on are appended to `links`.
fn resolve(
    kinds: &[Kind; Reg::COUNT],
    f: Form,
    links: &mut Vec<(Reg, Form)>,
) -> Option<(Form, i64)> {
    let mut out = Form::constant(f.k);
    let mut step: i64 = 0;
    for t in f.terms.iter().flatten() {
        let (g, s) = match *t {
            Sym::Slot(o) => (Form::sym(Sym::Slot(o)), 0),
            Sym::Reg(r) => match kinds[r.index()] {
                Kind::Varies => return None,
                Kind::Step(s) => (Form::sym(Sym::Reg(r)), s),
                Kind::Linked(g, s) => {
                    if !links.iter().any(|&(l, _)| l == r) {
                        links.push((r, g));
                    }
                    (g, s)
                }
            },
        };
        out = out.add(g)?;
        step = step.checked_add(s)?;
    }
    fits(out).then_some((out, step))
}

/// The exit test: the first one every continuing iteration passes (a test some branch jumps
/// over does not count), with the relations it relies on appended to `links`.
fn find_trip(
    prog: &Program,
    it: &Iteration,
    tests: &[(Pc, State)],
    kinds: &[Kind; Reg::COUNT],
    links: &mut Vec<(Reg, Form)>,
) -> Option<Trip> {
    let first_back_edge = it
        .ops
        .iter()
        .filter(|&&(pc, op)| {
            let jumps = op.jump_target(pc) == Some(it.entry)
                && matches!(op, Op::Ja { .. } | Op::Branch { .. });
            jumps || (op.falls_through() && Pc(pc.0 + op.slots()) == it.entry)
        })
        .map(|&(pc, _)| it.pos(pc))
        .min();
    // The tests come in iteration order: one walk over the instructions before each finds
    // the furthest position a jump before it lands on inside the loop.
    let mut before = it.ops.iter().peekable();
    let mut furthest = 0;
    for &(t, s) in tests {
        let at = it.pos(t);
        if first_back_edge.is_some_and(|b| b < at) {
            break;
        }
        while let Some(&&(pc, op)) = before.peek() {
            if it.pos(pc) >= at {
                break;
            }
            before.next();
            if let Some(x) = op
                .jump_target(pc)
                .filter(|&x| matches!(op, Op::Ja { .. } | Op::Branch { .. }) && it.contains(x))
            {
                furthest = furthest.max(it.pos(x));
            }
        }
        if furthest > at {
            continue;
        }
        // `resolve` only appends: a test that does not qualify leaves what it added.
        let kept = links.len();
        if let Some(found) = exit_test(prog, it.head, it.end, t, &s, &mut |f| {
            resolve(kinds, f, links)
        }) {
            return Some(found);
        }
        links.truncate(kept);
    }
    None
}

/// The spans the check covers: accesses off the same root symbols with the same step, within
/// [`MAX_SPAN`] bytes; and the accesses they cover, which the fast copy leaves unguarded.
fn find_spans(
    accesses: &[(Pc, Form, u32)],
    kinds: &[Kind; Reg::COUNT],
    links: &mut Vec<(Reg, Form)>,
) -> (Vec<Span>, Vec<Pc>) {
    let mut spans: Vec<(Form, i64, i64, i64)> = Vec::new(); // (terms with k = 0, step, lo, hi)
    let mut unguarded = Vec::new();
    for &(pc, f, size) in accesses {
        // As for the exit test: an access that is not versioned leaves no relation behind.
        let kept = links.len();
        let Some((f, step)) = resolve(kinds, f, links) else {
            links.truncate(kept);
            continue;
        };
        if step.abs() > MAX_STEP
            || f.terms.contains(&Some(Sym::Reg(Reg::R10)))
            || links.len() > MAX_LINKS
        {
            links.truncate(kept);
            continue;
        }
        let key = Form { k: 0, ..f };
        let (lo, hi) = (f.k, f.k + i64::from(size));
        let joined = spans.iter().position(|&(g, st, slo, shi)| {
            g == key && st == step && hi.max(shi) - lo.min(slo) <= MAX_SPAN
        });
        match joined {
            Some(j) => {
                let (_, _, slo, shi) = &mut spans[j];
                *slo = (*slo).min(lo);
                *shi = (*shi).max(hi);
            }
            None if spans.len() < MAX_SPANS => spans.push((key, step, lo, hi)),
            None => {
                links.truncate(kept);
                continue;
            }
        }
        unguarded.push(pc);
    }
    let spans = spans
        .into_iter()
        .map(|(key, step, lo, hi)| Span {
            start: key.plus(lo),
            size: ((hi - lo) as u32).next_power_of_two(),
            step,
        })
        .collect();
    (spans, unguarded)
}

/// Whether the check can compute `f` with 32-bit immediates.
fn fits(f: Form) -> bool {
    i32::try_from(f.k).is_ok()
}

/// The trip count's test at `t`, if it has a supported shape (see [`Trip`]).
fn exit_test(
    prog: &Program,
    head: Pc,
    end: Pc,
    t: Pc,
    s: &State,
    resolve: &mut impl FnMut(Form) -> Option<(Form, i64)>,
) -> Option<Trip> {
    let Some(&Op::Branch {
        width: Width::W64,
        cond,
        lhs,
        rhs,
        off,
    }) = prog.get(t)
    else {
        return None;
    };
    // Where each direction goes: out of the loop, directly or through a `ja`?
    let leaves = |to: Pc| {
        if to < head || to > end {
            return true;
        }
        match prog.get(to) {
            Some(Op::Exit) => true,
            Some(op @ Op::Ja { .. }) => op.jump_target(to).is_some_and(|x| x < head || x > end),
            _ => false,
        }
    };
    let taken = t.jump(i32::from(off));
    let cond = match (leaves(taken), leaves(Pc(t.0 + 1))) {
        (false, true) => cond,
        // A signed negation matches no trip kind below.
        (true, false) => cond.negate()?,
        _ => return None,
    };
    let l = s[lhs.index()]?;
    let r = match rhs {
        Operand::Reg(r) => s[r.index()]?,
        Operand::Imm(i) => Form::constant(i64::from(i)),
    };
    let (l, ls) = resolve(l)?;
    let (r, rs) = resolve(r)?;
    // The continue condition as `x op bound`, x increasing.
    let (kind, x, step, bound) = match (cond, ls, rs) {
        (Cond::Lt, s, 0) if s > 0 => (TripKind::Lt, l, s, r),
        (Cond::Le, s, 0) if s > 0 => (TripKind::Le, l, s, r),
        (Cond::Ne, s, 0) if s > 0 => (TripKind::Ne, l, s, r),
        (Cond::Gt, 0, s) if s > 0 => (TripKind::Lt, r, s, l),
        (Cond::Ge, 0, s) if s > 0 => (TripKind::Le, r, s, l),
        (Cond::Ne, 0, s) if s > 0 => (TripKind::Ne, r, s, l),
        _ => return None,
    };
    if step > MAX_STEP || step.count_ones() != 1 {
        return None;
    }
    Some(Trip {
        kind,
        x,
        bound,
        shift: step.trailing_zeros(),
    })
}

/// The effect of `op` on the symbolic registers.
fn step(s: &mut State, op: &Op, slot_invariant: &impl Fn(i16) -> bool) {
    let value: Val = match *op {
        Op::Alu {
            width: Width::W64,
            op,
            dst,
            src,
        } => {
            let d = s[dst.index()];
            match (op, src) {
                (AluOp::Mov, Operand::Reg(r)) => s[r.index()],
                (AluOp::Mov, Operand::Imm(i)) => Some(Form::constant(i64::from(i))),
                (AluOp::Add, Operand::Imm(i)) => d.map(|f| f.plus(i64::from(i))),
                (AluOp::Sub, Operand::Imm(i)) => d.map(|f| f.plus(-i64::from(i))),
                (AluOp::Add, Operand::Reg(r)) => d.zip(s[r.index()]).and_then(|(a, b)| a.add(b)),
                _ => None,
            }
        }
        Op::Alu {
            width: Width::W32,
            op: AluOp::Mov,
            src: Operand::Imm(i),
            ..
        } => Some(Form::constant(i64::from(i as u32))),
        Op::LoadImm64 {
            value: Imm64::Value(v),
            ..
        } => Some(Form::constant(v as i64)),
        Op::Load {
            size: bpfx_bytecode::Size::Dw,
            base: Reg::R10,
            off,
            ..
        } if slot_invariant(off) => Some(Form::sym(Sym::Slot(off))),
        _ => None,
    };
    if let Some(dst) = op.written_reg() {
        s[dst.index()] = value;
    }
    if let Op::Call(_) = op {
        // r0 is the result; r1–r5 are clobbered (zeroed by a helper, anything after a local
        // call); r6–r9 and r10 come back as they were.
        for r in RegSet::CALLER_SAVED.iter() {
            s[r.index()] = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loops(text: &str) -> Vec<Loop> {
        let prog =
            Program::decode(bpfx_bytecode::assemble(text).expect("assembles")).expect("decodes");
        let cfg = Cfg::new(&prog);
        let plan = Plan::new(&cfg, false, false, &mut Default::default());
        Loops::new(&cfg, &plan, |_| true).loops
    }

    fn reg(r: Reg) -> Form {
        Form::sym(Sym::Reg(r))
    }

    /// clang's shape of `for (i = 0; i + 4 <= len; i += 4) sum += *(u32 *)(p + i)`: the
    /// variable the access reads is a copy of the one the loop increments.
    const ROTATED: &str = "
        mov r4, 0
        mov r3, 0
    head:
        mov r5, r1
        add r5, r4
        ldxw r5, [r5+0]
        add r0, r5
        add r3, 4
        mov r5, r4
        add r5, 8
        mov r4, r3
        jgt r5, r2, +1
        ja head
        exit";

    #[test]
    fn a_rotated_counted_loop_is_versioned_with_its_relation() {
        let found = loops(ROTATED);
        assert_eq!(
            found,
            vec![Loop {
                head: Pc(2),
                end: Pc(11),
                entry: Pc(2),
                after: Pc(12),
                // r4 = r3 on every iteration once it held on entry.
                links: vec![(Reg::R4, reg(Reg::R3))],
                trip: Trip {
                    kind: TripKind::Le,
                    x: reg(Reg::R3).plus(8),
                    bound: reg(Reg::R2),
                    shift: 2,
                },
                spans: vec![Span {
                    start: reg(Reg::R1).add(reg(Reg::R3)).expect("two terms"),
                    size: 4,
                    step: 4,
                }],
                unguarded: vec![Pc(4)],
            }]
        );
    }

    #[test]
    fn accesses_off_one_register_share_a_span_and_a_stack_slot_is_a_symbol() {
        // The frame store does not overlap the slot; the store needs no guard either.
        let found = loops(
            "
            stxdw [r10-16], r1
        head:
            ldxdw r6, [r10-16]
            add r6, r3
            ldxb r4, [r6+1]
            ldxb r5, [r6+0]
            stxb [r10-8], r5
            add r3, 2
            jlt r3, 100, head
            exit",
        );
        let [l] = &found[..] else {
            panic!("one loop: {found:?}")
        };
        let slot = Form::sym(Sym::Slot(-16));
        assert_eq!(
            l.spans,
            vec![Span {
                start: slot.add(reg(Reg::R3)).expect("two terms"),
                size: 2,
                step: 2,
            }]
        );
        assert_eq!(l.unguarded, vec![Pc(3), Pc(4)]);
        assert_eq!(l.trip.kind, TripKind::Lt);
        assert_eq!(l.trip.bound, Form::constant(100));
    }

    #[test]
    fn loops_the_check_cannot_bound_are_left_alone() {
        let cases = [
            // The increment is conditional: the step is unknown.
            "head:
                ldxb r4, [r1+0]
                jeq r4, 0, +1
                add r1, 1
                jlt r1, r2, head
                exit",
            // A call in the loop clobbers r1–r5.
            "head:
                ldxb r4, [r1+0]
                call 5
                add r1, 1
                jlt r1, r2, head
                exit",
            // Entered at the head and in the middle.
            "jeq r3, 0, mid
            head:
                ldxb r4, [r1+0]
                add r1, 1
            mid:
                jlt r1, r2, head
                exit",
            // An inner loop inside: only innermost loops are versioned, and the inner one
            // has no access.
            "outer:
                ldxb r4, [r1+0]
            inner:
                add r3, 1
                jlt r3, 10, inner
                add r1, 1
                jlt r1, r2, outer
                exit",
            // A signed test, and a decreasing variable.
            "head:
                ldxb r4, [r1+0]
                add r1, 1
                jslt r1, r2, head
                exit",
            "head:
                ldxb r4, [r1+0]
                add r1, -1
                jgt r1, r2, head
                exit",
        ];
        for text in cases {
            let found = loops(text);
            assert!(found.is_empty(), "{text}: {found:?}");
        }
    }

    #[test]
    fn a_rotated_loop_is_entered_at_its_test() {
        // `while (p < end) sum += *p++` as clang rotates it: the entry jumps to the test.
        let found = loops(
            "ja mid
        head:
            ldxb r4, [r1+0]
            add r0, r4
            add r1, 1
        mid:
            jlt r1, r2, head
            exit",
        );
        let [l] = &found[..] else {
            panic!("one loop: {found:?}")
        };
        assert_eq!((l.head, l.entry, l.end), (Pc(1), Pc(4), Pc(4)));
        assert_eq!(l.unguarded, vec![Pc(1)]);
        // The test comes first in an iteration: `r1 < r2` before the first access.
        assert_eq!(
            l.trip,
            Trip {
                kind: TripKind::Lt,
                x: reg(Reg::R1),
                bound: reg(Reg::R2),
                shift: 0,
            }
        );
    }

    #[test]
    fn cases_that_jump_back_to_different_heads_are_one_loop() {
        // A dispatch loop: one case jumps back past the instruction the others return to.
        let found = loops(
            "ja mid
        top:
            add r0, 1
        next:
            add r3, 1
            jge r3, r2, out
        mid:
            mov r5, r1
            add r5, r3
            ldxb r4, [r5+0]
            jeq r4, 0, top
            jeq r4, 1, next
            add r0, r4
            ja top
        out:
            exit",
        );
        let [l] = &found[..] else {
            panic!("one loop: {found:?}")
        };
        assert_eq!((l.head, l.entry, l.end), (Pc(1), Pc(4), Pc(10)));
        assert_eq!(l.unguarded, vec![Pc(6)]);
    }

    #[test]
    fn a_call_keeps_r6_to_r9_and_clobbers_the_rest() {
        let found = loops(
            "head:
                ldxdw r2, [r6+0]
                call 5
                add r6, 8
                jlt r6, r7, head
                exit",
        );
        let [l] = &found[..] else {
            panic!("one loop: {found:?}")
        };
        assert_eq!(l.unguarded, vec![Pc(0)]);
        assert_eq!(l.trip.bound, reg(Reg::R7));
    }

    #[test]
    fn a_store_through_another_register_makes_every_slot_vary() {
        // The store may overwrite the slot the base comes from: the load through it keeps its
        // guard; the store itself, at a fixed address, is versioned.
        let found = loops(
            "stxdw [r10-16], r1
        head:
            ldxdw r6, [r10-16]
            add r6, r3
            stxb [r2+0], r4
            ldxb r4, [r6+0]
            add r3, 1
            jlt r3, 100, head
            exit",
        );
        let [l] = &found[..] else {
            panic!("one loop: {found:?}")
        };
        assert_eq!(l.unguarded, vec![Pc(3)]);
    }

    #[test]
    fn an_exit_test_skipped_by_a_branch_does_not_bound_the_loop() {
        // `jge r3, 64` is jumped over when r4 is odd: it bounds nothing, and the loop has no
        // other test.
        let found = loops(
            "head:
                ldxb r4, [r1+0]
                add r1, 1
                add r3, 1
                jset r4, 1, +1
                jge r3, 64, +1
                ja head
                exit",
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
