//! Termination proofs for counted loops in `Checked` mode, so that such programs need no
//! instruction budget ([`crate::Assumptions::terminates`]).
//!
//! The rule (also in `docs/verifier.md`, "Termination"), all syntactic, on each function's
//! control-flow graph of instructions:
//!
//! 1. No recursion: every local call targets a later pc (a call cycle always holds a call to
//!    a function starting no later than the call), and every callback-taking helper call
//!    (`bpf_loop`, as the analysis recorded it) runs a callback in a later function; such a
//!    call counts as a call of its callback repeated its trip bound times (`nr_loops`' upper
//!    bound, at most 2^23). A function whose address is taken but that no such call runs
//!    never runs. Helpers are assumed to return.
//! 2. Every function's graph is reducible: the edges `u -> h` with `h` dominating `u` (back
//!    edges) aside, it has no cycle. Then every cycle holds a back edge, and the natural loop of
//!    its header `h` (its body `B`: `h` and every pc reaching a back-edge source without
//!    passing `h`) holds the cycle.
//! 3. Every natural loop (header `h`) has an exit test on an induction value:
//!    - one iteration is evaluated symbolically (`Val`): over `B`'s paths from `h` that do not
//!      return to `h`, each register is a constant, `r@h + k` (register `r`'s value at this
//!      iteration's `h` plus `k`, modulo 2^64; after a 32-bit operation only its low half), or
//!      unknown. Moves and additions or subtractions of constants are followed, anything else
//!      the instruction may write (r0–r5 for calls and packet loads) is unknown;
//!    - the counter `i` is `i@h + c` at the end of every back edge, the same `c`, nonzero at
//!      the test's width; or it lags an iteration behind such a counter (`i@h' + d` on every
//!      back edge), moving by its `c` from the second iteration on (not for `!=`);
//!    - the test is a conditional branch of `B` with one successor inside `B` and one outside,
//!      running exactly once per iteration (it dominates every back-edge source and lies in no
//!      inner loop), comparing `x = i@h + k` with a bound `b` that is the same in every
//!      iteration: an immediate, a register holding a constant, or `q@h + k'` with `q`
//!      unchanged on every back edge (known if `q` holds one constant on every way into `h`,
//!      else bounded by `q`'s unsigned upper bound at `h`: `Func::upper_bounds`, where r2 at
//!      the program's entry is the input's length, below 2^63), or an 8-byte stack slot the
//!      loop does not write, filled in the iteration, plus `k'` (bounded by the slot's upper
//!      bound at `h`; slots are followed only when no pointer into a frame can exist:
//!      [`Slots`]);
//!    - a 64-bit test needs `x` and the step followed at 64 bits;
//!    - the staying condition bounds the run: `x < b` or `x <= b` (unsigned or signed) for
//!      `c > 0`, `x > b` or `x >= b` for `c < 0`, without wrap-around: for a known bound,
//!      `b + c - 1 <= MAX` (`<`), `b + c <= MAX` (`<=`), and symmetrically `b + c + 1 >= MIN`
//!      (`>`), `b + c >= MIN` (`>=`), with `MAX` and `MIN` of the comparison's width and
//!      signedness; for an unknown one, the comparison is strict and `|c| = 1`, or upward with
//!      the same condition for the largest bound its upper bound allows. Or `x != b`
//!      with `b` known, `c = ±1`, and `i` set by `mov i, imm` on every way into `h` (found
//!      going back through pcs with one predecessor) so that the first tested value, computed
//!      without wrapping, lies on `b`'s side the counter moves towards. Or `x == b`;
//!    - or the counter grows by a bounded unknown amount of at least 1 (`Val::Grow`: `i@h` plus
//!      a zero-extending load of at most 4 bytes, a mask, or bytes shifted and or-ed into a
//!      field, plus constants, 64-bit; an offset
//!      stepping by a parsed length): the test is the loop's only back-edge source and tests
//!      `i` itself (so the tested value is the next iteration's `i`), staying while `i < b` or
//!      `i <= b` unsigned at 64 bits, with `b + hi` not wrapping for the largest amount `hi`;
//!      at most `b / lo + 1` staying outcomes for the smallest amount `lo`.
//!    - or, for an innermost loop, a ranking measure over several registers ([`measure`]:
//!      `hi - lo`, a halving `size`, two offsets closing in), proven on each iteration path.
//! 4. The instruction bound ([`instruction_bound`]) is at most [`INSTRUCTION_LIMIT`]: each
//!    loop's trip bound (header visits per entry: the staying outcomes of its test in a row,
//!    [`stays`], plus one, plus one for a lagging counter), multiplied through the loops holding
//!    each pc, times the pc's slots plus its callee's bound, summed. Trip counts read r2 at the
//!    program's entry as at most [`MAX_INPUT_LEN`]; the wrap-around test keeps `2^63`.
//!
//! Why it is sound: an endless run stays, from some point on, in one frame (no recursion, and
//! each callee ends by induction over the call order), so it visits some set `S` of pcs
//! forever; `S` is strongly connected, so (reducible graph) it has a header `h` dominating it,
//! lies in `h`'s body, and the run takes back edges to `h` forever. Each iteration starts at
//! `h` and stays in `B`, so the symbolic values hold on its every path: the counter at the
//! `n`-th visit of `h` is `i₀ + n·c`, and the test (taking the in-loop successor, or the run
//! would leave `B`) sees `x₀ + n·c` against the same `b` each iteration. The wrap-around bound
//! makes that sequence strictly monotonic in the integers while it stays on the right side of
//! `b`: finitely many iterations. For `!=`, it counts by one from `x₀` towards `b` and meets it
//! without wrapping; for `==`, consecutive values differ. A lagging counter gives that sequence
//! from the second iteration on, which is all an endless run's tail needs. Upper bounds
//! over-approximate every run reaching a pc (transfers and branch edges only loosen, joins take
//! the maximum, widening goes to `u64::MAX`).
//!
//! Why the count bounds a run: a pc runs at most once per iteration of its innermost loop (a
//! second visit closes a cycle of an inner loop), a loop is entered at most once per iteration
//! of the loop around it (re-entering closes a cycle through its header outside its body), and
//! every iteration but the last takes the test's staying edge, whose values `x₀ + n·c` do not
//! wrap while staying: so at most `(hi - lo) / |c| + 1` of them.

mod measure;

use bpfx_bytecode::{
    AluOp, CallTarget, Cfg, Cond, Op, Operand, Pc, Program, Reg, Size, Successors, Width,
};

/// Work (in visited edges and body pcs) above which the analysis gives up, so that a huge
/// program with deep loop nests costs no more than a few times its size.
const WORK_LIMIT: usize = 1 << 24;

/// How far back from an edge into a loop the counter's initial `mov` is looked for.
const ENTRY_WALK_LIMIT: usize = 4096;

/// The most instructions a run of a program proven to terminate may execute: a program whose
/// instruction bound ([`instruction_bound`]) exceeds it is not proven, and keeps the default
/// budget. The same number as that budget, so that dropping the budget never lets a run go
/// longer than it could with one.
pub(crate) const INSTRUCTION_LIMIT: u64 = bpfx_exec::DEFAULT_BUDGET;

/// The input length the instruction bound assumes (64 KiB, the largest IP packet): loops
/// bounded by the input's length (r2 at the program's entry) are counted as if it were at most
/// this long. Their termination does not rest on it (it holds for any length below 2^63); a
/// longer input lengthens such a run in proportion to the length (to a power of it for loops
/// over it nested: `docs/verifier.md`, "Termination").
pub(crate) const MAX_INPUT_LEN: u64 = 1 << 16;

/// Whether every run of the program of `graph` ends, by the rule of this module, within
/// [`INSTRUCTION_LIMIT`] instructions. `callbacks` are its callback-taking helper calls as the
/// analysis recorded them: `(call, callback entry, most runs of the callback per call)`.
/// `false` means "not proven".
pub(crate) fn proves(graph: &Cfg, callbacks: &[(Pc, Pc, u64)]) -> bool {
    instruction_bound_with(graph, callbacks).is_some_and(|n| n <= u128::from(INSTRUCTION_LIMIT))
}

/// An upper bound on the instruction slots any run of the program of `graph` executes (an
/// input of at most [`MAX_INPUT_LEN`] bytes), by the rule of this module: every pc counts its
/// slots, plus its callee's bound for a local call, times the trip bounds of the loops holding
/// it. `None`: not proven to end.
#[cfg(test)]
pub(crate) fn instruction_bound(graph: &Cfg) -> Option<u128> {
    instruction_bound_with(graph, &[])
}

/// [`instruction_bound`] for a program whose callback-taking helper calls are `callbacks`:
/// `(call, callback entry, most runs of the callback per call)`. Such a call counts as a
/// local call of its callback, that many times over; a function whose address is taken but
/// that no such call runs never runs (the engines call only the callbacks the analysis
/// recorded).
pub(crate) fn instruction_bound_with(graph: &Cfg, callbacks: &[(Pc, Pc, u64)]) -> Option<u128> {
    let prog = graph.program();
    // Rule 1: calls and callbacks only forward, no kfunc (a program without a backward jump
    // or call calls only forward and may keep the others: it runs straight through).
    if prog.has_back_edges()
        && (graph.calls().iter().any(|c| c.callee <= c.site)
            || prog
                .iter()
                .any(|(_, op)| matches!(op, Op::Call(CallTarget::Kfunc(_)))))
    {
        return None;
    }
    if callbacks
        .iter()
        .any(|&(site, cb, _)| graph.function_of(cb) <= graph.function_of(site))
    {
        return None;
    }
    let funcs = graph.functions();
    // Callees first: every call targets a later function.
    let mut costs = vec![0u128; funcs.len()];
    let mut work = 0usize;
    let private = Slots::private(prog);
    for (k, f) in funcs.iter().enumerate().rev() {
        let mut calls = Vec::new();
        for c in graph.calls_from(k) {
            let callee = graph.function_of(c.callee);
            if callee <= k {
                return None;
            }
            calls.push((c.site.index() - f.entry.index(), costs[callee]));
        }
        for &(site, cb, trips) in callbacks {
            if graph.function_of(site) == k {
                let cost = costs[graph.function_of(cb)].checked_mul(u128::from(trips))?;
                calls.push((site.index() - f.entry.index(), cost));
            }
        }
        costs[k] =
            Func::new(prog, f.entry.index(), f.end.index(), private).cost(&calls, &mut work)?;
    }
    Some(costs.first().copied().unwrap_or(0))
}

/// One function's graph, with pcs relative to its start.
struct Func<'a> {
    prog: &'a Program,
    start: usize,
    /// Successors inside the function (relative), `None` for a jump leaving it.
    succ: Rows,
    /// Predecessors (relative); empty in a `forward` function, which needs none.
    pred: Rows,
    /// Immediate dominator (relative), `usize::MAX` for unreachable pcs; the entry's is itself.
    idom: Vec<usize>,
    /// Dominator-tree preorder interval, for O(1) dominance queries.
    pre: Vec<u32>,
    post: Vec<u32>,
    /// Whether the graph left the function (a structural error the verifier reports).
    broken: bool,
    /// Whether every edge goes to a later pc: no cycle, so no dominators are needed and
    /// `idom` only marks the reachable pcs (`Func::cost` counts each once).
    forward: bool,
    /// The stack slots whose values are followed ([`Slots`]).
    slots: Slots,
}

/// At most this many stack slots are followed per function.
const MAX_SLOTS: usize = 8;

/// The 8-byte stack slots of a function (offsets from r10) that its 8-byte loads read, at most
/// [`MAX_SLOTS`], when no instruction of the program reads r10 other than as the base of an
/// access: then nothing but the function's own r10-based stores and atomics can write its
/// frame (a helper or another function could only do so through a pointer into it, which
/// only reading r10 makes). A slot no instruction of a loop writes holds one value in every
/// iteration, so a bound kept there (spilled before the loop, filled in it) bounds a test
/// like a register the loop does not change.
#[derive(Clone, Debug, Default)]
struct Slots {
    offs: Vec<i16>,
}

impl Slots {
    /// Whether no instruction of `prog` reads r10 other than as an access's base.
    fn private(prog: &Program) -> bool {
        let leaks = |op: &Op| match *op {
            Op::Load { .. } => false,
            Op::Store { src, .. } => src == Operand::Reg(Reg::R10),
            Op::Atomic { src, .. } => src == Reg::R10,
            _ => op.reads().contains(Reg::R10),
        };
        !prog.iter().any(|(_, op)| leaks(op))
    }

    /// The slots of the function `start..end` of `prog`, none unless `private`
    /// ([`Self::private`]).
    fn of(prog: &Program, start: usize, end: usize, private: bool) -> Slots {
        if !private {
            return Slots::default();
        }
        let mut offs = Vec::new();
        for pc in start..end {
            if let Some(&Op::Load {
                size: Size::Dw,
                base: Reg::R10,
                off,
                ..
            }) = prog.get(Pc(pc as u32))
                && !offs.contains(&off)
                && offs.len() < MAX_SLOTS
            {
                offs.push(off);
            }
        }
        Slots { offs }
    }

    /// The followed slot an 8-byte load from `r10 + off` reads.
    fn read(&self, op: &Op) -> Option<usize> {
        match *op {
            Op::Load {
                size: Size::Dw,
                base: Reg::R10,
                off,
                ..
            } => self.offs.iter().position(|&o| o == off),
            _ => None,
        }
    }

    /// The followed slots `op` may write: `(slot, whether it is exactly an 8-byte store of
    /// `src` to it)`.
    fn written(&self, op: &Op) -> impl Iterator<Item = (usize, Option<Operand>)> + '_ {
        let hit = match *op {
            Op::Store {
                size,
                base,
                off,
                src,
            } if base == Reg::R10 => Some((off, size.bytes(), Some(src), size == Size::Dw)),
            Op::Atomic {
                width, base, off, ..
            } if base == Reg::R10 => Some((off, width.bits() / 8, None, false)),
            _ => None,
        };
        self.offs.iter().enumerate().filter_map(move |(k, &o)| {
            let (off, len, src, whole) = hit?;
            let (a, b) = (i32::from(off), i32::from(off) + len as i32);
            let (c, d) = (i32::from(o), i32::from(o) + 8);
            (a < d && c < b).then_some((k, if whole && off == o { src } else { None }))
        })
    }
}

/// Adjacency lists in two allocations (compressed rows): row `u` is
/// `items[start[u]..start[u + 1]]`, indexed as a slice.
#[derive(Debug, Default)]
struct Rows {
    start: Vec<u32>,
    items: Vec<usize>,
}

impl Rows {
    /// The number of rows.
    fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// The rows of `n` nodes holding `v` in row `u` for each `(u, v)` of `pairs` (called
    /// twice: once to count, once to fill), in the order `pairs` gives them.
    fn of<I: Iterator<Item = (usize, usize)>>(n: usize, pairs: impl Fn() -> I) -> Rows {
        let mut start = vec![0u32; n + 1];
        for (u, _) in pairs() {
            start[u + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill: Vec<u32> = start[..n].to_vec();
        let mut items = vec![0usize; start[n] as usize];
        for (u, v) in pairs() {
            items[fill[u] as usize] = v;
            fill[u] += 1;
        }
        Rows { start, items }
    }
}

impl std::ops::Index<usize> for Rows {
    type Output = [usize];

    fn index(&self, u: usize) -> &[usize] {
        &self.items[self.start[u] as usize..self.start[u + 1] as usize]
    }
}

impl<'a> Func<'a> {
    fn new(prog: &'a Program, start: usize, end: usize, private: bool) -> Func<'a> {
        let n = end - start;
        let mut broken = false;
        let mut succ = Rows {
            start: Vec::with_capacity(n + 1),
            items: Vec::with_capacity(2 * n),
        };
        succ.start.push(0);
        for rel in 0..n {
            let pc = start + rel;
            if let Some(op) = prog.get(Pc(pc as u32)) {
                let row = succ.items.len();
                for t in Successors::of(op, Pc(pc as u32)).iter().map(Pc::index) {
                    if t < start || t >= end {
                        broken = true;
                    } else if !succ.items[row..].contains(&(t - start)) {
                        succ.items.push(t - start);
                    }
                }
            }
            succ.start.push(succ.items.len() as u32);
        }
        let forward = (0..n).all(|u| succ[u].iter().all(|&v| v > u));
        // Only loops need predecessors (dominators, loop bodies, the ways into a header):
        // a function without a backward edge is counted from its successors alone.
        let pred = if forward {
            Rows::default()
        } else {
            Rows::of(n, || {
                (0..n).flat_map(|u| succ[u].iter().map(move |&v| (v, u)))
            })
        };
        let mut f = Func {
            prog,
            start,
            succ,
            pred,
            idom: vec![usize::MAX; n],
            pre: vec![0; n],
            post: vec![0; n],
            broken,
            forward,
            slots: Slots::of(prog, start, end, private),
        };
        if forward {
            // Reachability in one sweep: every predecessor comes first.
            if n > 0 {
                f.idom[0] = 0;
            }
            for u in 0..n {
                if f.idom[u] != usize::MAX {
                    for &v in &f.succ[u] {
                        f.idom[v] = u;
                    }
                }
            }
        } else {
            f.dominators();
        }
        f
    }

    fn op(&self, rel: usize) -> Option<&Op> {
        self.prog.get(Pc((self.start + rel) as u32))
    }

    /// Cooper–Harvey–Kennedy iterative dominators over reverse postorder, then the tree's
    /// preorder intervals.
    fn dominators(&mut self) {
        let n = self.succ.len();
        if n == 0 {
            return;
        }
        // Iterative DFS postorder from the entry.
        let mut order = Vec::with_capacity(n);
        let mut seen = vec![false; n];
        let mut stack = vec![(0usize, 0usize)];
        seen[0] = true;
        while let Some(&mut (u, ref mut i)) = stack.last_mut() {
            if let Some(&v) = self.succ[u].get(*i) {
                *i += 1;
                if !seen[v] {
                    seen[v] = true;
                    stack.push((v, 0));
                }
            } else {
                order.push(u);
                stack.pop();
            }
        }
        let mut rpo_num = vec![usize::MAX; n];
        for (k, &u) in order.iter().rev().enumerate() {
            rpo_num[u] = k;
        }
        self.idom[0] = 0;
        let mut changed = true;
        while changed {
            changed = false;
            for &u in order.iter().rev().skip(1) {
                let mut new = usize::MAX;
                for &p in &self.pred[u] {
                    if self.idom[p] == usize::MAX {
                        continue;
                    }
                    new = if new == usize::MAX {
                        p
                    } else {
                        let (mut a, mut b) = (p, new);
                        while a != b {
                            while rpo_num[a] > rpo_num[b] {
                                a = self.idom[a];
                            }
                            while rpo_num[b] > rpo_num[a] {
                                b = self.idom[b];
                            }
                        }
                        a
                    };
                }
                if new != self.idom[u] {
                    self.idom[u] = new;
                    changed = true;
                }
            }
        }
        // Dominator-tree intervals.
        let idom = &self.idom;
        let kids = Rows::of(n, || order.iter().rev().skip(1).map(|&u| (idom[u], u)));
        let mut clock = 0u32;
        let mut stack = vec![(0usize, 0usize)];
        self.pre[0] = clock;
        while let Some(&mut (u, ref mut i)) = stack.last_mut() {
            if let Some(&v) = kids[u].get(*i) {
                *i += 1;
                clock += 1;
                self.pre[v] = clock;
                stack.push((v, 0));
            } else {
                self.post[u] = clock;
                stack.pop();
            }
        }
    }

    fn reachable(&self, u: usize) -> bool {
        self.idom[u] != usize::MAX
    }

    /// Whether `a` dominates `b` (both reachable).
    fn dominates(&self, a: usize, b: usize) -> bool {
        self.pre[a] <= self.pre[b] && self.post[b] <= self.post[a]
    }

    /// An upper bound on the instruction slots one call of the function executes, given the
    /// bound of the callee of each local call (by relative call pc), or `None`.
    fn cost(&self, calls: &[(usize, u128)], work: &mut usize) -> Option<u128> {
        if self.broken {
            return None;
        }
        let n = self.succ.len();
        if self.forward {
            // No loop: every reachable pc runs at most once per call.
            return Some(self.total(calls, |_| 1));
        }
        // Back edges by header (edges to a dominator); the other edges must form no cycle, or
        // the graph is irreducible.
        let mut sources: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut indegree = vec![0usize; n];
        for u in (0..n).filter(|&u| self.reachable(u)) {
            for &v in &self.succ[u] {
                if self.dominates(v, u) {
                    sources[v].push(u);
                } else {
                    indegree[v] += 1;
                }
            }
        }
        let mut ready: Vec<usize> = (0..n)
            .filter(|&u| self.reachable(u) && indegree[u] == 0)
            .collect();
        let mut sorted = 0;
        while let Some(u) = ready.pop() {
            sorted += 1;
            for &v in &self.succ[u] {
                if !self.dominates(v, u) {
                    indegree[v] -= 1;
                    if indegree[v] == 0 {
                        ready.push(v);
                    }
                }
            }
        }
        if sorted != (0..n).filter(|&u| self.reachable(u)).count() {
            return None;
        }
        let headers: Vec<usize> = (0..n).filter(|&h| !sources[h].is_empty()).collect();
        let is_header: Vec<bool> = sources.iter().map(|s| !s.is_empty()).collect();
        let mut bounds = LazyBounds {
            headers: &is_header,
            at: None,
            counted: None,
        };
        // Natural-loop bodies, as sorted pc lists.
        let mut bodies: Vec<Vec<usize>> = Vec::with_capacity(headers.len());
        let mut mark = vec![usize::MAX; n];
        for (k, &h) in headers.iter().enumerate() {
            let mut body = vec![h];
            mark[h] = k;
            let mut stack: Vec<usize> = Vec::new();
            for &s in &sources[h] {
                if mark[s] != k {
                    mark[s] = k;
                    body.push(s);
                    stack.push(s);
                }
            }
            while let Some(u) = stack.pop() {
                for &p in &self.pred[u] {
                    *work += 1;
                    if self.reachable(p) && mark[p] != k {
                        mark[p] = k;
                        body.push(p);
                        stack.push(p);
                    }
                }
            }
            *work += body.len();
            if *work > WORK_LIMIT {
                return None;
            }
            body.sort_unstable();
            bodies.push(body);
        }
        // The innermost loop of each pc: loops nest (reducible graph, one loop per header), so it
        // is the smallest body holding the pc.
        let mut by_size: Vec<usize> = (0..headers.len()).collect();
        by_size.sort_unstable_by_key(|&k| std::cmp::Reverse(bodies[k].len()));
        let mut innermost = vec![usize::MAX; n];
        for &k in &by_size {
            for &pc in &bodies[k] {
                innermost[pc] = k;
            }
        }
        let mut mult = vec![1u128; n];
        for (k, &h) in headers.iter().enumerate() {
            // The nearest common dominator of the back-edge sources: a pc dominates them all
            // exactly when it dominates it.
            let mut ncd = sources[h][0];
            for &s in &sources[h][1..] {
                while !self.dominates(ncd, s) {
                    *work += 1;
                    ncd = self.idom[ncd];
                }
            }
            if *work > WORK_LIMIT {
                return None;
            }
            // Runs exactly once per iteration: in no inner loop, and on every way round.
            let once = |pc: usize| innermost[pc] == k && self.dominates(pc, ncd);
            let trips = self.loop_trips(h, &bodies[k], &sources[h], &once, &mut bounds, work)?;
            // A pc runs at most once per iteration of its innermost loop (a second visit in
            // the same iteration would close a cycle, of an inner loop), and a loop is entered
            // at most once per iteration of the loop around it (or per call): so at most the
            // product of the trip bounds of the loops holding it.
            for &pc in &bodies[k] {
                mult[pc] = mult[pc].saturating_mul(trips);
            }
        }
        Some(self.total(calls, |u| mult[u]))
    }

    /// The instruction slots of every reachable pc, plus its callee's bound for a local call,
    /// each `mult(pc)` times.
    fn total(&self, calls: &[(usize, u128)], mult: impl Fn(usize) -> u128) -> u128 {
        let mut total = 0u128;
        for u in (0..self.succ.len()).filter(|&u| self.reachable(u)) {
            let Some(op) = self.op(u) else {
                continue;
            };
            let callee = calls
                .binary_search_by_key(&u, |&(site, _)| site)
                .map_or(0, |k| calls[k].1);
            let each = u128::from(op.slots()).saturating_add(callee);
            total = total.saturating_add(mult(u).saturating_mul(each));
        }
        total
    }

    /// If the loop of header `h` with `body` (sorted) and back-edge sources `latches` has an
    /// exit test on an induction value, as the module describes, the most times its header is
    /// visited per entry into the loop (the smallest bound over such tests). `once(pc)`: `pc`
    /// runs exactly once per iteration.
    fn loop_trips(
        &self,
        h: usize,
        body: &[usize],
        latches: &[usize],
        once: &impl Fn(usize) -> bool,
        bounds: &mut LazyBounds<'_>,
        work: &mut usize,
    ) -> Option<u128> {
        // The followed slots no instruction of the loop writes.
        let mut kept = [false; MAX_SLOTS];
        for (k, kept) in kept.iter_mut().enumerate().take(self.slots.offs.len()) {
            *kept = !body
                .iter()
                .filter_map(|&u| self.op(u))
                .any(|op| self.slots.written(op).any(|(j, _)| j == k));
        }
        let view = SlotView {
            slots: &self.slots,
            kept,
        };
        let states = self.iteration(h, body, bounds.headers, &view, work)?;
        let mut best: Option<u128> = None;
        let at = |pc: usize| body.binary_search(&pc).ok().and_then(|k| states[k]);
        // The values of the registers at the next visit of the header, per back edge.
        let mut next = Vec::with_capacity(latches.len());
        for &u in latches {
            let (Some(mut st), Some(op)) = (at(u), self.op(u)) else {
                return None;
            };
            transfer(op, &mut st, &view);
            next.push(st);
        }
        // `r`'s step: the same `Rel { r, off: c }` on every back edge; `low` if the upper half
        // may not follow (a 32-bit operation on the way).
        let direct = |r: Reg| -> Option<(u64, bool)> {
            let mut found = None;
            for st in &next {
                let Val::Rel { reg, off, low } = st[r.index()] else {
                    return None;
                };
                if reg != r {
                    return None;
                }
                match found {
                    None => found = Some((off, low)),
                    Some((c, l)) if c == off => found = Some((c, l || low)),
                    Some(_) => return None,
                }
            }
            found
        };
        // A counter's step, with whether it holds from the first iteration on: a direct one,
        // or one lagging an iteration behind a direct counter `i` (`Rel { i, off: d }` on
        // every back edge, clang's `r4 = r3` after `r3 += 4`), which moves by `i`'s step from
        // the second iteration on.
        let step = |r: Reg| -> Option<(u64, bool, bool)> {
            if let Some((c, low)) = direct(r) {
                return Some((c, low, true));
            }
            let mut found = None;
            for st in &next {
                let Val::Rel { reg, off, low } = st[r.index()] else {
                    return None;
                };
                match found {
                    None => found = Some((reg, off, low)),
                    Some((g, d, l)) if g == reg && d == off => found = Some((g, d, l || low)),
                    Some(_) => return None,
                }
            }
            let (i, _, low) = found?;
            let (c, step_low) = direct(i)?;
            Some((c, low || step_low, false))
        };
        let inside = |pc: usize| body.binary_search(&pc).is_ok();
        // A `may_goto` run once per iteration whose jump leaves the loop: its counter starts
        // at `MAY_GOTO_BUDGET` per program run and only goes down, so the staying (falling
        // through) outcome comes at most that many times in a row.
        for &t in body {
            if let Some(&Op::MayGoto { .. }) = self.op(t)
                && let [fall, jump] = self.succ[t][..]
                && inside(fall)
                && !inside(jump)
                && once(t)
            {
                let trips = u128::from(bpfx_bytecode::MAY_GOTO_BUDGET) + 1;
                best = Some(best.map_or(trips, |b| b.min(trips)));
            }
        }
        for &t in body {
            let Some(&Op::Branch {
                width,
                cond,
                lhs,
                rhs,
                ..
            }) = self.op(t)
            else {
                continue;
            };
            let outs = &self.succ[t];
            if outs.len() != 2 {
                continue;
            }
            let nxt = t + self.op(t).map_or(1, |op| op.slots() as usize);
            let (a, b) = (inside(outs[0]), inside(outs[1]));
            if a == b || !once(t) {
                continue;
            }
            let Some(st) = at(t) else {
                continue;
            };
            // The condition that holds on the edge staying in the loop.
            let stay_target = if a { outs[0] } else { outs[1] };
            let stay = if stay_target == nxt {
                match cond.negate() {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                cond
            };
            let rhs_val = match rhs {
                Operand::Imm(k) => Val::Const(i64::from(k) as u64),
                Operand::Reg(r) => st[r.index()],
            };
            let lhs_val = st[lhs.index()];
            let bits = width.bits();
            // Read from either side.
            let rhs_reg = match rhs {
                Operand::Reg(r) => Some(r),
                Operand::Imm(_) => None,
            };
            for (x, rel, bound, tested) in [
                (lhs_val, stay, rhs_val, Some(lhs)),
                (rhs_val, stay.swap(), lhs_val, rhs_reg),
            ] {
                // A counter growing by a bounded amount of at least 1 (`Val::Grow`): tested
                // itself, at the loop's only back edge, so that the tested value is the next
                // iteration's counter; unsigned 64-bit and upward only.
                let grow = match x {
                    Val::Grow { reg, lo, hi }
                        if tested == Some(reg)
                            && latches == [t]
                            && bits == 64
                            && lo >= 1
                            && matches!(rel, Cond::Lt | Cond::Le) =>
                    {
                        Some((reg, lo, hi))
                    }
                    _ => None,
                };
                let (i, k, low, c, step_low, from_entry) = match (x, grow) {
                    (_, Some((reg, lo, _))) => (reg, 0, false, i128::from(lo), false, false),
                    (Val::Rel { reg, off, low }, None) => {
                        let Some((c, step_low, from_entry)) = step(reg) else {
                            continue;
                        };
                        (reg, off, low, i128::from(c), step_low, from_entry)
                    }
                    _ => continue,
                };
                if bits == 64 && (low || step_low) {
                    continue;
                }
                let c = wrap_signed(c, bits);
                if c == 0 {
                    continue;
                }
                // The bound the wrap-around test reads, and the one the trip count reads (the
                // input's length at most `MAX_INPUT_LEN` instead of below 2^63).
                // A register's or followed slot's upper bound at the header (`idx` in
                // `Bounds`), plus `off`, as a bound fixed for the loop.
                let mut fixed_at = |idx: usize, off: u64, low: bool| {
                    let headers = bounds.headers;
                    let fixed = |ub: Option<u64>| {
                        let ub = ub.unwrap_or(u64::MAX);
                        let b = match off {
                            0 => ub,
                            d if (d as i64) > 0 => ub.saturating_add(d),
                            _ => u64::MAX,
                        };
                        let top = mask(bits);
                        Bound::Fixed(if low || b > top { top } else { b })
                    };
                    let ub = bounds
                        .at
                        .get_or_insert_with(|| self.upper_bounds(headers, i64::MAX as u64, work))
                        .as_ref()
                        .and_then(|b| b[h])
                        .map(|b| b[idx]);
                    let counted = bounds
                        .counted
                        .get_or_insert_with(|| self.upper_bounds(headers, MAX_INPUT_LEN, work))
                        .as_ref()
                        .and_then(|b| b[h])
                        .map(|b| b[idx]);
                    (fixed(ub), fixed(counted))
                };
                let (bound, counted) = match bound {
                    Val::Const(b) => (Bound::Known(b), Bound::Known(b)),
                    // A slot the loop does not write: the same value in every iteration.
                    Val::Slot { slot, off, low } if bits == 32 || !low => {
                        fixed_at(Reg::COUNT + slot, off, low)
                    }
                    Val::Rel { reg, off, low }
                        if (bits == 32 || !low) && direct(reg) == Some((0, false)) =>
                    {
                        // Unchanged by the loop: its value on entry, if a constant, or else
                        // its upper bound at the header.
                        match self.entry_consts(h, body, reg).as_deref() {
                            Some([v, rest @ ..]) if rest.iter().all(|w| w == v) => {
                                let b = Bound::Known(v.wrapping_add(off));
                                (b, b)
                            }
                            _ => fixed_at(reg.index(), off, low),
                        }
                    }
                    _ => continue,
                };
                // The tested value in the first iteration, where `!=` needs it: one per way in,
                // each the counter's entry value plus the test's offset without wrapping.
                let first = || {
                    if !from_entry {
                        return None;
                    }
                    let offset = wrap_signed(i128::from(k), bits);
                    self.entry_consts(h, body, i)?
                        .into_iter()
                        .map(|v| {
                            let x = i128::from(v & mask(bits)) + offset;
                            u64::try_from(x).ok().filter(|&x| x <= mask(bits))
                        })
                        .collect::<Option<Vec<u64>>>()
                };
                if let Some((_, lo, hi)) = grow {
                    // Staying while `x <= b` (or `<`), the next test sees `x + d` with
                    // `1 <= lo <= d <= hi`: no wrap while `b + hi` does not (`bound_ok` with
                    // the largest step), and at most `b / lo + 1` staying values.
                    if bound_ok(rel, i128::from(hi), bits, bound, || None) {
                        let trips =
                            stays(rel, i128::from(lo), bits, counted, None).saturating_add(1);
                        best = Some(best.map_or(trips, |t| t.min(trips)));
                    }
                    continue;
                }
                if bound_ok(rel, c, bits, bound, first) {
                    // The header runs once per staying test, once more for the iteration
                    // that leaves (or does not reach the test), and once more for a lagging
                    // counter's first iteration, whose tested value is not in the sequence.
                    let stays = stays(
                        rel,
                        c,
                        bits,
                        counted,
                        if from_entry { first() } else { None },
                    );
                    let trips = stays
                        .saturating_add(1)
                        .saturating_add(u128::from(!from_entry));
                    best = Some(best.map_or(trips, |t| t.min(trips)));
                }
            }
        }
        // Else, or for a bound longer than a pass over the input, a ranking measure over
        // several registers (`measure`).
        if best.is_none_or(|b| b > u128::from(MAX_INPUT_LEN) + 2)
            && let Some(t) = self.measure_trips(h, body, bounds, work)
        {
            best = Some(best.map_or(t, |b| b.min(t)));
        }
        best
    }

    /// The registers' values at each pc of `body` (before it runs) relative to their values
    /// at the header `h` in the same iteration: a fixpoint over the body's paths from `h` that
    /// do not return to it. `None` past the work limit.
    fn iteration(
        &self,
        h: usize,
        body: &[usize],
        headers: &[bool],
        view: &SlotView<'_>,
        work: &mut usize,
    ) -> Option<Vec<Option<State>>> {
        let idx = |pc: usize| body.binary_search(&pc).ok();
        let mut states: Vec<Option<State>> = vec![None; body.len()];
        let start = idx(h)?;
        // A slot the loop writes is unknown at the header (one it does not is read as itself).
        states[start] = Some(std::array::from_fn(|i| match Reg::ALL.get(i) {
            Some(&reg) => Val::Rel {
                reg,
                off: 0,
                low: false,
            },
            None => Val::Unknown,
        }));
        let mut queued = vec![false; body.len()];
        let mut queue = vec![start];
        queued[start] = true;
        while let Some(k) = queue.pop() {
            queued[k] = false;
            *work += 1;
            if *work > WORK_LIMIT {
                return None;
            }
            let u = body[k];
            let mut st = states[k]?;
            if let Some(op) = self.op(u) {
                transfer(op, &mut st, view);
            }
            for &v in &self.succ[u] {
                if v == h {
                    continue;
                }
                let Some(j) = idx(v) else {
                    continue;
                };
                let merged = match states[j] {
                    None => st,
                    Some(old) => {
                        let mut m = old;
                        for (a, b) in m.iter_mut().zip(st) {
                            let joined = join(*a, b);
                            // At an inner loop's header a growing amount would grow with every
                            // round of the fixpoint: widened to unknown at once.
                            let grows = matches!(joined, Val::Grow { .. } | Val::Range { .. });
                            *a = if headers[v] && grows && joined != *a {
                                Val::Unknown
                            } else {
                                joined
                            };
                        }
                        m
                    }
                };
                if states[j] != Some(merged) {
                    states[j] = Some(merged);
                    if !queued[j] {
                        queued[j] = true;
                        queue.push(j);
                    }
                }
            }
        }
        Some(states)
    }

    /// Unsigned upper bounds of the registers before each pc (`None`: unreachable), a fixpoint
    /// over the function widened at loop headers. At the program's entry (pc 0 of the first
    /// function) r2 is the input's length, a Rust slice's, so at most `isize::MAX`
    /// (`bpfx_exec::entry_registers`); every other register entering a function is unknown.
    /// `None` past the work limit.
    fn upper_bounds(
        &self,
        headers: &[bool],
        input_len: u64,
        work: &mut usize,
    ) -> Option<Vec<Option<Bounds>>> {
        let n = self.succ.len();
        let mut states: Vec<Option<Bounds>> = vec![None; n];
        if n == 0 {
            return Some(states);
        }
        let mut entry = [u64::MAX; BOUNDS];
        if self.start == 0 {
            entry[Reg::R2.index()] = input_len;
        }
        states[0] = Some(entry);
        let mut queued = vec![false; n];
        let mut queue = vec![0usize];
        queued[0] = true;
        while let Some(u) = queue.pop() {
            queued[u] = false;
            *work += 1;
            if *work > WORK_LIMIT {
                return None;
            }
            let Some(before) = states[u] else {
                continue;
            };
            let Some(op) = self.op(u) else {
                continue;
            };
            let mut after = before;
            bound_transfer(op, &mut after, &self.slots);
            let fall = u + op.slots() as usize;
            for &v in &self.succ[u] {
                let mut st = after;
                if let (&Op::Branch { .. }, [_, _]) = (op, &self.succ[u]) {
                    refine(op, v != fall, &mut st);
                }
                // Joined in place: only a bound that grows changes the state.
                let changed = match &mut states[v] {
                    slot @ None => {
                        *slot = Some(st);
                        true
                    }
                    Some(old) => {
                        let mut changed = false;
                        for (a, b) in old.iter_mut().zip(st) {
                            if b > *a {
                                // Widened at loop headers, so that the fixpoint is reached
                                // in a few rounds.
                                *a = if headers[v] { u64::MAX } else { b };
                                changed = true;
                            }
                        }
                        changed
                    }
                };
                if changed && !queued[v] {
                    queued[v] = true;
                    queue.push(v);
                }
            }
        }
        Some(states)
    }

    /// The constants `r` holds on the edges entering the header `h` from outside `body`: on
    /// each, the nearest instruction writing `r`, found going back through pcs with a single
    /// predecessor, must be `mov r, imm` (or `mov32`). `None` if some edge has none.
    fn entry_consts(&self, h: usize, body: &[usize], r: Reg) -> Option<Vec<u64>> {
        let mut found = Vec::new();
        for &p in &self.pred[h] {
            if body.binary_search(&p).is_ok() || !self.reachable(p) {
                continue;
            }
            let mut u = p;
            let mut steps = 0;
            let v = loop {
                let op = self.op(u)?;
                if op.clobbers().contains(r) {
                    break match *op {
                        Op::Alu {
                            width,
                            op: AluOp::Mov,
                            dst,
                            src: Operand::Imm(k),
                        } if dst == r => Val::Const(i64::from(k) as u64).at(width),
                        _ => return None,
                    };
                }
                steps += 1;
                match &self.pred[u] {
                    // A bounded walk: a long straight run gives up rather than cost.
                    [q] if u != 0 && steps < ENTRY_WALK_LIMIT => u = *q,
                    _ => return None,
                }
            };
            let Val::Const(v) = v else {
                return None;
            };
            found.push(v);
        }
        // The entry (pc 0) is entered from outside the graph: its registers are unknown.
        if h == 0 || found.is_empty() {
            return None;
        }
        Some(found)
    }
}

/// A register's value during one iteration of a loop, from the registers' values at the
/// iteration's start (the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    /// Exactly this value.
    Const(u64),
    /// `reg`'s value at the header plus `off`, modulo 2^64; with `low`, only the low 32 bits
    /// are known to be those of that sum (a 32-bit operation zero-extended on the way).
    Rel { reg: Reg, off: u64, low: bool },
    /// The value of followed stack slot `slot` ([`Slots`]), which the loop does not write,
    /// plus `off`, as `Rel`.
    Slot { slot: usize, off: u64, low: bool },
    /// Some value in `lo..=hi` (at most [`GROW_MAX`]), unknown otherwise: a zero-extending
    /// load or a mask (a parsed length).
    Range { lo: u64, hi: u64 },
    /// `reg`'s value at the header plus some amount in `lo..=hi` (at most [`GROW_MAX`]), 64-bit
    /// arithmetic: an offset advanced by a parsed length.
    Grow { reg: Reg, lo: u64, hi: u64 },
    /// Anything.
    Unknown,
}

/// The registers' values, then the followed stack slots' ([`Slots`]).
type State = [Val; Reg::COUNT + MAX_SLOTS];

impl Val {
    /// The value an operation of `width` leaves: 32-bit ones keep the low half, zero-extended.
    fn at(self, width: Width) -> Val {
        match (width, self) {
            (Width::W64, v) => v,
            (Width::W32, Val::Const(c)) => Val::Const(c & 0xffff_ffff),
            (Width::W32, Val::Rel { reg, off, .. }) => Val::Rel {
                reg,
                off,
                low: true,
            },
            (Width::W32, Val::Slot { slot, off, .. }) => Val::Slot {
                slot,
                off,
                low: true,
            },
            (Width::W32, Val::Unknown | Val::Range { .. } | Val::Grow { .. }) => Val::Unknown,
        }
    }

    /// `self + d` (`d` negated for a subtraction), modulo 2^64.
    fn plus(self, d: Val, negate: bool) -> Val {
        let Val::Const(d) = d else {
            // `c + r` is `r + c`.
            return match (self, negate) {
                (Val::Const(c), false) => d.plus(Val::Const(c), false),
                _ => Val::Unknown,
            };
        };
        let d = if negate { d.wrapping_neg() } else { d };
        match self {
            Val::Const(c) => Val::Const(c.wrapping_add(d)),
            Val::Rel { reg, off, low } => Val::Rel {
                reg,
                off: off.wrapping_add(d),
                low,
            },
            Val::Slot { slot, off, low } => Val::Slot {
                slot,
                off: off.wrapping_add(d),
                low,
            },
            Val::Range { lo, hi } if !negate => Val::grow(None, lo, hi, d),
            Val::Grow { reg, lo, hi } if !negate => Val::grow(Some(reg), lo, hi, d),
            Val::Range { .. } | Val::Grow { .. } | Val::Unknown => Val::Unknown,
        }
    }
}

/// The bound on the amounts [`Val::Range`] and [`Val::Grow`] follow (so that sums of a few
/// never come near wrapping).
const GROW_MAX: u64 = 1 << 32;

impl Val {
    /// `reg@h + (lo..=hi) + d` (`reg` absent: a range), if it stays within [`GROW_MAX`].
    fn grow(reg: Option<Reg>, lo: u64, hi: u64, d: u64) -> Val {
        let (Some(lo), Some(hi)) = (lo.checked_add(d), hi.checked_add(d)) else {
            return Val::Unknown;
        };
        match reg {
            _ if hi > GROW_MAX => Val::Unknown,
            Some(reg) => Val::Grow { reg, lo, hi },
            None => Val::Range { lo, hi },
        }
    }

    /// `self + other` at 64 bits, with the forms [`Val::plus`] does not follow: a register or
    /// a growing value plus a range.
    fn add(self, other: Val) -> Val {
        match (self, other) {
            (
                Val::Rel {
                    reg,
                    off,
                    low: false,
                },
                Val::Range { lo, hi },
            )
            | (
                Val::Range { lo, hi },
                Val::Rel {
                    reg,
                    off,
                    low: false,
                },
            ) if off <= GROW_MAX => Val::grow(Some(reg), lo, hi, off),
            (Val::Grow { reg, lo, hi }, Val::Range { lo: a, hi: b })
            | (Val::Range { lo: a, hi: b }, Val::Grow { reg, lo, hi }) => {
                Val::grow(Some(reg), lo.saturating_add(a), hi.saturating_add(b), 0)
            }
            (Val::Range { lo, hi }, Val::Range { lo: a, hi: b }) => {
                Val::grow(None, lo.saturating_add(a), hi.saturating_add(b), 0)
            }
            _ => self.plus(other, false),
        }
    }
}

/// The value both of two paths may bring.
fn join(a: Val, b: Val) -> Val {
    // A register plus a small constant is a growing value of one amount.
    let widen = |v: Val| match v {
        Val::Rel {
            reg,
            off,
            low: false,
        } if off <= GROW_MAX => Val::Grow {
            reg,
            lo: off,
            hi: off,
        },
        v => v,
    };
    match (widen(a), widen(b)) {
        _ if a == b => return a,
        (
            Val::Grow { reg, lo, hi },
            Val::Grow {
                reg: r,
                lo: l,
                hi: h,
            },
        ) if reg == r => {
            return Val::Grow {
                reg,
                lo: lo.min(l),
                hi: hi.max(h),
            };
        }
        (Val::Range { lo, hi }, Val::Range { lo: l, hi: h }) => {
            return Val::Range {
                lo: lo.min(l),
                hi: hi.max(h),
            };
        }
        _ => {}
    }
    match (a, b) {
        (Val::Rel { reg, off, .. }, Val::Rel { reg: r, off: o, .. }) if reg == r && off == o => {
            Val::Rel {
                reg,
                off,
                low: true,
            }
        }
        (
            Val::Slot { slot, off, .. },
            Val::Slot {
                slot: k, off: o, ..
            },
        ) if slot == k && off == o => Val::Slot {
            slot,
            off,
            low: true,
        },
        _ => Val::Unknown,
    }
}

/// The followed slots of a function ([`Slots`]), and which of them a loop does not write.
struct SlotView<'a> {
    slots: &'a Slots,
    kept: [bool; MAX_SLOTS],
}

/// Runs `op` on `st`: moves, and additions and subtractions of constants, are followed, and
/// 8-byte loads of a followed slot (the slot if the loop does not write it, else what the
/// iteration stored there by a whole 8-byte store); anything else the instruction may write
/// (a call or packet load: r0-r5; any other store or atomic overlapping a slot) becomes
/// unknown.
fn transfer(op: &Op, st: &mut State, view: &SlotView<'_>) {
    let stored: Vec<(usize, Option<Operand>)> = view.slots.written(op).collect();
    for (k, src) in stored {
        st[Reg::COUNT + k] = match src {
            Some(Operand::Reg(r)) => st[r.index()],
            Some(Operand::Imm(i)) => Val::Const(i64::from(i) as u64),
            None => Val::Unknown,
        };
    }
    let new = match *op {
        Op::Load {
            dst, size, signed, ..
        } => match view.slots.read(op) {
            Some(slot) if view.kept[slot] => Some((
                dst,
                Val::Slot {
                    slot,
                    off: 0,
                    low: false,
                },
            )),
            // A slot the loop writes holds what this iteration stored there (a counter kept
            // on the stack), or is unknown.
            Some(slot) => Some((dst, st[Reg::COUNT + slot])),
            // A zero-extending load of at most 4 bytes.
            None if !signed && size.bytes() <= 4 => Some((
                dst,
                Val::Range {
                    lo: 0,
                    hi: u64::MAX >> (64 - 8 * size.bytes()),
                },
            )),
            None => None,
        },
        Op::Alu {
            width,
            op: aop,
            dst,
            src,
        } => {
            let s = match src {
                Operand::Imm(k) => Val::Const(i64::from(k) as u64),
                Operand::Reg(r) => st[r.index()],
            };
            let d = st[dst.index()];
            let v = match (aop, src) {
                (AluOp::Mov, _) => s,
                (AluOp::Add, _) if width == Width::W64 => d.add(s),
                (AluOp::Add, _) => d.plus(s, false),
                (AluOp::Sub, _) => d.plus(s, true),
                // A mask bounds whatever it masks (zero-extended at 32 bits).
                (AluOp::And, Operand::Imm(k)) if k >= 0 => Val::Range {
                    lo: 0,
                    hi: k as u64,
                },
                // Bytes assembled into a big-endian field: `(b0 << 8) | b1`.
                (AluOp::Lsh, Operand::Imm(k)) if width == Width::W64 => match d {
                    Val::Range { hi, .. } if (0..32).contains(&k) => Val::grow(None, 0, hi << k, 0),
                    _ => Val::Unknown,
                },
                (AluOp::Or, _) if width == Width::W64 => match (d, s) {
                    (Val::Range { hi, .. }, Val::Range { hi: h, .. }) => {
                        // Every bit set in either is below the higher one's top bit.
                        let top = hi.max(h);
                        let all = if top == 0 {
                            0
                        } else {
                            u64::MAX >> top.leading_zeros()
                        };
                        Val::grow(None, 0, all, 0)
                    }
                    _ => Val::Unknown,
                },
                _ => Val::Unknown,
            };
            let masked = matches!((aop, src), (AluOp::And, Operand::Imm(k)) if k >= 0);
            Some((dst, if masked { v } else { v.at(width) }))
        }
        _ => None,
    };
    for r in op.clobbers().iter() {
        st[r.index()] = Val::Unknown;
    }
    if let Some((dst, v)) = new {
        st[dst.index()] = v;
    }
}

/// Unsigned upper bounds of the registers, then of the followed stack slots ([`Slots`]).
type Bounds = [u64; BOUNDS];
const BOUNDS: usize = Reg::COUNT + MAX_SLOTS;

/// A function's upper bounds before each pc (`Func::upper_bounds`), computed when a loop
/// first needs them.
struct LazyBounds<'a> {
    /// Which pcs are loop headers (where the fixpoint widens).
    headers: &'a [bool],
    /// With the input's length below 2^63, what a slice's length can be.
    at: Option<Option<Vec<Option<Bounds>>>>,
    /// With the input's length at most [`MAX_INPUT_LEN`], for trip counts.
    counted: Option<Option<Vec<Option<Bounds>>>>,
}

/// Runs `op` on upper bounds: moves, additions, multiplications, right shifts, masks,
/// divisions by constants and loads are followed, and 8-byte stores and loads of the followed stack slots; anything
/// else the instruction may write is unbounded.
fn bound_transfer(op: &Op, st: &mut Bounds, slots: &Slots) {
    // Writes slots from registers: no write here changes what another reads.
    for (k, src) in slots.written(op) {
        st[Reg::COUNT + k] = match src {
            Some(Operand::Reg(r)) => st[r.index()],
            Some(Operand::Imm(i)) => i64::from(i) as u64,
            None => u64::MAX,
        };
    }
    if let (Some(k), Op::Load { dst, .. }) = (slots.read(op), op) {
        st[dst.index()] = st[Reg::COUNT + k];
        return;
    }
    let new = match *op {
        Op::Alu {
            width,
            op: aop,
            dst,
            src,
        } => {
            let s = match src {
                Operand::Imm(k) => i64::from(k) as u64,
                Operand::Reg(r) => st[r.index()],
            };
            let d = st[dst.index()];
            let v = match (aop, src) {
                (AluOp::Mov, _) => s,
                (AluOp::Add, Operand::Reg(_)) => d.saturating_add(s),
                (AluOp::Add, Operand::Imm(k)) if k >= 0 => d.saturating_add(s),
                (AluOp::Rsh, Operand::Imm(k)) => d >> (k & 63),
                (AluOp::Rsh, Operand::Reg(_)) => d,
                (AluOp::And, _) => d.min(s),
                (AluOp::Div, Operand::Imm(k)) if k > 0 => d / s,
                (AluOp::Mul, _) => d.saturating_mul(s),
                _ => u64::MAX,
            };
            let v = match (width, aop, src) {
                (Width::W64, ..) => v,
                // A 32-bit move of a constant is exact; of a register below 2^32, a copy.
                (Width::W32, AluOp::Mov, Operand::Imm(k)) => u64::from(k as u32),
                (Width::W32, AluOp::Mov, Operand::Reg(_)) => v.min(u64::from(u32::MAX)),
                (Width::W32, AluOp::And, Operand::Imm(k)) => u64::from(k as u32),
                (Width::W32, ..) => u64::from(u32::MAX),
            };
            Some((dst, v))
        }
        Op::Load {
            size,
            signed: false,
            dst,
            ..
        } => Some((dst, u64::MAX >> (64 - 8 * size.bytes()))),
        _ => None,
    };
    for r in op.clobbers().iter() {
        st[r.index()] = u64::MAX;
    }
    if let Some((dst, v)) = new {
        st[dst.index()] = v;
    }
}

/// Narrows upper bounds on an edge of the 64-bit unsigned branch `op`: `taken` is whether
/// the condition holds on it.
fn refine(op: &Op, taken: bool, st: &mut Bounds) {
    let &Op::Branch {
        width: Width::W64,
        cond,
        lhs,
        rhs,
        ..
    } = op
    else {
        return;
    };
    let holds = if taken {
        cond
    } else {
        match cond.negate() {
            Some(c) => c,
            None => return,
        }
    };
    let r = match rhs {
        Operand::Imm(k) => i64::from(k) as u64,
        Operand::Reg(r) => st[r.index()],
    };
    let l = st[lhs.index()];
    // `a < b` bounds `a` by `b - 1` (an edge with `b = 0` is never taken: any bound will do).
    match holds {
        Cond::Lt => st[lhs.index()] = l.min(r.saturating_sub(1)),
        Cond::Le | Cond::Eq => st[lhs.index()] = l.min(r),
        Cond::Gt | Cond::Ge => {
            if let Operand::Reg(b) = rhs {
                let cap = if holds == Cond::Gt {
                    l.saturating_sub(1)
                } else {
                    l
                };
                st[b.index()] = r.min(cap);
            }
        }
        _ => {}
    }
    if let (Cond::Eq, Operand::Reg(b)) = (holds, rhs) {
        st[b.index()] = r.min(l);
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// `v` reduced modulo `2^bits` into `[-2^(bits-1), 2^(bits-1))`.
fn wrap_signed(v: i128, bits: u32) -> i128 {
    let m = 1i128 << bits;
    let r = v.rem_euclid(m);
    if r >= m / 2 { r - m } else { r }
}

/// An exit test's bound.
#[derive(Clone, Copy)]
enum Bound {
    /// This value (an immediate, or a register holding this constant at the test in every
    /// iteration), read at the test's width.
    Known(u64),
    /// The same unknown value in every iteration, at most this (unsigned, at the test's
    /// width): a register the loop does not change, plus a constant.
    Fixed(u64),
}

/// Whether staying while `x rel bound`, with `x` moving by `c` (nonzero, in `bits`-bit
/// arithmetic) from one iteration's test to the next, can only last finitely many
/// iterations. `first()`: the values `x` may have at the first iteration's test, if known.
fn bound_ok(
    rel: Cond,
    c: i128,
    bits: u32,
    bound: Bound,
    first: impl Fn() -> Option<Vec<u64>>,
) -> bool {
    let (signed, up, strict) = match rel {
        Cond::Lt => (false, true, true),
        Cond::Le => (false, true, false),
        Cond::Gt => (false, false, true),
        Cond::Ge => (false, false, false),
        Cond::Slt => (true, true, true),
        Cond::Sle => (true, true, false),
        Cond::Sgt => (true, false, true),
        Cond::Sge => (true, false, false),
        // Staying while `x == b`: the next test sees `x + c != b`.
        Cond::Eq => return true,
        // Staying while `x != b`: `x` must reach `b` by steps of 1 without wrapping.
        Cond::Ne => {
            let (Bound::Known(b), Some(x0)) = (bound, first()) else {
                return false;
            };
            let b = b & mask(bits);
            return match c {
                1 => x0.iter().all(|&x| x <= b),
                -1 => x0.iter().all(|&x| x >= b),
                _ => false,
            };
        }
        Cond::Set => return false,
    };
    if up != (c > 0) {
        return false;
    }
    match bound {
        Bound::Fixed(_) if strict && (c == 1 || c == -1) => true,
        // Upward against a bound of known maximum: as for a known bound, at its worst (as
        // large as the maximum allows, read at the test's signedness).
        Bound::Fixed(ub) => {
            let m = 1i128 << bits;
            let max = if signed { m / 2 - 1 } else { m - 1 };
            let b = i128::from(ub).min(max);
            let slack = if strict { 1 } else { 0 };
            up && b + c - slack <= max
        }
        Bound::Known(k) => {
            // The bound as the comparison sees it: its low `bits` bits, read unsigned or
            // signed.
            let m = 1i128 << bits;
            let b = i128::from(k & mask(bits));
            let b = if signed && b >= m / 2 { b - m } else { b };
            let (min, max) = if signed {
                (-(m / 2), m / 2 - 1)
            } else {
                (0, m - 1)
            };
            let slack = if strict { 1 } else { 0 };
            if up {
                b + c - slack <= max
            } else {
                b + c + slack >= min
            }
        }
    }
}

/// How many times, at most, an exit test accepted by [`bound_ok`] takes its staying edge in a
/// row (for one entry into the loop): staying while `x rel bound`, `x` moving by `c` each
/// iteration, from one of the values `first` (if known; else anything at the width). While
/// staying, `x` moves without wrapping ([`bound_ok`]'s condition), so the staying values are
/// `x₀, x₀ + c, ...` in the integers, within `[lo, hi]`.
fn stays(rel: Cond, c: i128, bits: u32, bound: Bound, first: Option<Vec<u64>>) -> u128 {
    let m = 1i128 << bits;
    let (signed, up, strict) = match rel {
        Cond::Lt => (false, true, true),
        Cond::Le => (false, true, false),
        Cond::Gt => (false, false, true),
        Cond::Ge => (false, false, false),
        Cond::Slt => (true, true, true),
        Cond::Sle => (true, true, false),
        Cond::Sgt => (true, false, true),
        Cond::Sge => (true, false, false),
        // The next test after one staying sees `x + c != b`.
        Cond::Eq => return 1,
        // By steps of 1 from `x₀` to `b`.
        Cond::Ne => {
            let (Bound::Known(b), Some(x0)) = (bound, first) else {
                return u128::MAX;
            };
            let b = i128::from(b & mask(bits));
            return x0
                .iter()
                .map(|&x| (i128::from(x & mask(bits)) - b).unsigned_abs())
                .max()
                .unwrap_or(u128::MAX);
        }
        Cond::Set => return u128::MAX,
    };
    let (min, max) = if signed {
        (-(m / 2), m / 2 - 1)
    } else {
        (0, m - 1)
    };
    let read = |v: u64| {
        let v = i128::from(v & mask(bits));
        if signed && v >= m / 2 { v - m } else { v }
    };
    let x0: Option<Vec<i128>> = first.map(|v| v.into_iter().map(read).collect());
    let slack = i128::from(strict);
    let (lo, hi) = if up {
        // A bound of known maximum `ub` (unsigned): at most `ub`, or `max` read signed.
        let b = match bound {
            Bound::Known(k) => read(k),
            Bound::Fixed(ub) => i128::from(ub).min(max),
        };
        let lo = x0.and_then(|v| v.into_iter().min()).unwrap_or(min);
        (lo, b - slack)
    } else {
        let b = match bound {
            Bound::Known(k) => read(k),
            Bound::Fixed(_) => min,
        };
        let hi = x0.and_then(|v| v.into_iter().max()).unwrap_or(max);
        (b + slack, hi)
    };
    if hi < lo {
        0
    } else {
        ((hi - lo) / c.abs()).unsigned_abs() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::{instruction_bound, instruction_bound_with, proves};
    use bpfx_bytecode::{Cfg, Pc, Program};

    fn p(text: &str) -> bool {
        let prog = bpfx_bytecode::assemble(text).expect("assembles");
        proves(&Cfg::new(&Program::decode(prog).expect("decodes")), &[])
    }

    #[test]
    fn straight_line() {
        assert!(p("mov r0, 0\nexit"));
    }

    // Loops that must be proven.

    #[test]
    fn counted_up_rotated() {
        assert!(p("mov r0, 0\ntop:\nadd r0, 1\njlt r0, 10, top\nexit"));
        // Any step, constant bound far from the top.
        assert!(p("mov r0, 0\ntop:\nadd r0, 3\njlt r0, 100, top\nexit"));
        // `<=` and signed forms.
        assert!(p("mov r0, 0\ntop:\nadd r0, 1\njle r0, 10, top\nexit"));
        assert!(p("mov r0, -5\ntop:\nadd r0, 1\njslt r0, 10, top\nexit"));
        assert!(p("mov r0, -5\ntop:\nadd r0, 2\njsle r0, 10, top\nexit"));
        // Bound on the left: `b > i`.
        assert!(p(
            "mov r1, 10\nmov r0, 0\ntop:\nadd r0, 1\njgt r1, r0, top\nexit"
        ));
    }

    #[test]
    fn counted_up_with_test_at_the_head() {
        // while (i < 10) { ...; i++ }: exit test at the head, `ja` back.
        assert!(p(
            "mov r0, 0\nmov r1, 0\ntop:\njge r1, 10, out\nadd r0, r1\nadd r1, 1\nja top\nout:\nexit"
        ));
        // Signed, exit on `i s> 20`.
        assert!(p(
            "mov r1, 0\ntop:\njsgt r1, 20, out\nadd r1, 4\nja top\nout:\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn counted_down() {
        assert!(p("mov r0, 10\ntop:\nsub r0, 1\njgt r0, 0, top\nexit"));
        assert!(p("mov r0, 10\ntop:\nadd r0, -2\njsge r0, 0, top\nexit"));
        assert!(p(
            "mov r0, 10\ntop:\njle r0, 3, out\nsub r0, 1\nja top\nout:\nexit"
        ));
    }

    #[test]
    fn thirty_two_bit() {
        assert!(p("mov32 r0, 0\ntop:\nadd32 r0, 1\njlt32 r0, 10, top\nexit"));
        // A 64-bit step moves the low half alike: fine for a 32-bit test.
        assert!(p("mov r0, 0\ntop:\nadd r0, 1\njlt32 r0, 10, top\nexit"));
        // 32-bit signed, `0x7fffffff` is the largest bound step 1 allows with `<`: it ends,
        // but after 2^31 iterations, past the instruction limit.
        assert!(!p(
            "mov32 r0, 0\ntop:\nadd32 r0, 1\njslt32 r0, 0x7fffffff, top\nexit"
        ));
        assert!(p(
            "mov32 r0, 0\ntop:\nadd32 r0, 1\njslt32 r0, 0x7ffff, top\nexit"
        ));
    }

    #[test]
    fn register_bounds() {
        // Bound in a callee-saved register, step 1, strict: ends, but the bound may be as
        // large as 2^64 - 1, past the instruction limit.
        assert!(!p(
            "mov r6, r1\nmov r0, 0\ntop:\nadd r0, 1\njlt r0, r6, top\nexit"
        ));
        assert!(p(
            "mov r6, r1\nand r6, 0xffff\nmov r0, 0\ntop:\nadd r0, 1\njlt r0, r6, top\nexit"
        ));
        // r2 as bound, no call in the loop.
        assert!(p("mov r0, 0\ntop:\nadd r0, 1\njlt r0, r2, top\nexit"));
        // Down to a register bound: as low as -2^63.
        assert!(!p("mov r0, 100\ntop:\nsub r0, 1\njsgt r0, r7, top\nexit"));
        assert!(p("mov r0, 100\ntop:\nsub r0, 1\njgt r0, r7, top\nexit"));
        // Calls keep r6-r9: counter and bound survive a helper call.
        assert!(p(
            "mov r6, 0\nmov r7, 10\ntop:\ncall 7\nadd r6, 1\njlt r6, r7, top\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn nested_loops() {
        assert!(p(
            "mov r0, 0\nmov r1, 0\nouter:\nmov r2, 0\ninner:\nadd r0, 1\nadd r2, 1\njlt r2, 8, inner\nadd r1, 1\njlt r1, 8, outer\nexit"
        ));
        // Two loops in sequence and a local callee with its own loop.
        assert!(p(
            "mov r0, 0\ncall local f\na:\nadd r0, 1\njlt r0, 5, a\nb:\nadd r0, 1\njlt r0, 9, b\nexit\nf:\nmov r3, 0\nl:\nadd r3, 1\njlt r3, 4, l\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn clang_shape_with_early_exit_and_body_branches() {
        // for (i = 0; i < n; i++) { if (a[i]) break; s += ...; } with an if/else in the body.
        assert!(p(
            "mov r0, 0\nmov r6, 0\nmov r7, 16\ntop:\njeq r6, 3, out\njgt r0, 100, skip\nadd r0, 2\nja join\nskip:\nadd r0, 1\njoin:\nadd r6, 1\njlt r6, r7, top\nout:\nexit"
        ));
    }

    // Twins that must not be proven.

    #[test]
    fn step_zero_or_wrong_sign() {
        assert!(!p("mov r0, 0\ntop:\nadd r0, 0\njlt r0, 10, top\nexit"));
        assert!(!p("mov r0, 0\ntop:\nsub r0, 1\njlt r0, 10, top\nexit"));
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\njgt r0, 10, top\nexit"));
        // 32-bit: adding 2^32 leaves the low half unchanged.
        assert!(!p("mov r0, 0\ntop:\nadd32 r0, 0\njlt32 r0, 10, top\nexit"));
    }

    #[test]
    fn step_not_on_every_path() {
        assert!(!p(
            "mov r0, 0\nmov r1, 0\ntop:\njeq r1, 0, skip\nadd r0, 1\nskip:\njlt r0, 10, top\nexit"
        ));
    }

    #[test]
    fn counter_reset_or_written_twice() {
        assert!(!p(
            "mov r0, 0\ntop:\nmov r0, 0\nadd r0, 1\njlt r0, 10, top\nexit"
        ));
        // Two steps that cancel out.
        assert!(!p(
            "mov r0, 0\ntop:\nadd r0, 1\nsub r0, 1\njlt r0, 10, top\nexit"
        ));
        // A step on one arm of an if only (a step of 1 or 2 is a growing counter, tested at
        // the only back edge: proven).
        assert!(!p(
            "mov r0, 0\ntop:\njeq r1, 0, skip\nadd r0, 1\nskip:\njlt r0, 10, top\nexit"
        ));
        assert!(p(
            "mov r0, 0\ntop:\njeq r1, 0, skip\nadd r0, 1\nskip:\nadd r0, 1\njlt r0, 10, top\nexit"
        ));
        assert!(!p(
            "mov r0, 0\ntop:\nadd r0, 1\nldxdw r0, [r10-8]\njlt r0, 10, top\nexit"
        ));
        // A step in a register.
        assert!(!p(
            "mov r0, 0\nmov r1, 1\ntop:\nadd r0, r1\njlt r0, 10, top\nexit"
        ));
        // The counter clobbered by a packet load (the kernel's may clobber r1-r5); r6 survives.
        assert!(!p(
            "mov r2, 0\ntop:\nldabsb 0\nadd r2, 1\njlt r2, 10, top\nmov r0, 0\nexit"
        ));
        assert!(p(
            "mov r6, 0\ntop:\nldabsb 0\nadd r6, 1\njlt r6, 10, top\nmov r0, 0\nexit"
        ));
        // The counter clobbered by a call (r0-r5).
        assert!(!p(
            "mov r2, 0\ntop:\ncall 7\nadd r2, 1\njlt r2, 10, top\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn bound_written_in_the_loop() {
        assert!(!p(
            "mov r0, 0\nmov r6, 10\ntop:\nadd r0, 1\nadd r6, 1\njlt r0, r6, top\nexit"
        ));
        // A bound in r2 across a helper call.
        assert!(!p(
            "mov r6, 0\ntop:\ncall 7\nadd r6, 1\njlt r6, r2, top\nmov r0, 0\nexit"
        ));
        // The counter as its own bound.
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\njle r0, r0, top\nexit"));
    }

    #[test]
    fn wrap_around() {
        // From an odd start, step 2 jumps over u64::MAX: i < MAX stays forever.
        assert!(!p("mov r0, 1\ntop:\nadd r0, 2\njlt r0, -1, top\nexit"));
        // `i <= MAX` always holds.
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\njle r0, -1, top\nexit"));
        // ... but at 64 bits, `i s<= 2^31 - 1` is far from the top: ends, after 2^31
        // iterations (past the limit); `i s<= 2^20` is proven.
        assert!(!p(
            "mov r0, 0\ntop:\nadd r0, 1\njsle r0, 0x7fffffff, top\nexit"
        ));
        assert!(p(
            "mov r0, 0\ntop:\nadd r0, 1\njsle r0, 0x100000, top\nexit"
        ));
        assert!(!p(
            "mov32 r0, 0\ntop:\nadd32 r0, 1\njle32 r0, -1, top\nexit"
        ));
        assert!(!p(
            "mov32 r0, 0\ntop:\nadd32 r0, 1\njsle32 r0, 0x7fffffff, top\nexit"
        ));
        // Down: `i >= 0` unsigned always holds.
        assert!(!p("mov r0, 10\ntop:\nsub r0, 1\njge r0, 0, top\nexit"));
        // Register bound with a step above 1.
        assert!(!p("mov r0, 0\ntop:\nadd r0, 2\njlt r0, r6, top\nexit"));
        // Register bound with `<=`.
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\njle r0, r6, top\nexit"));
        // A 32-bit step cannot reach a 64-bit bound above 2^32.
        assert!(!p("mov r0, 0\ntop:\nadd32 r0, 1\njlt r0, r6, top\nexit"));
    }

    #[test]
    fn not_equal_tests_need_step_one_from_the_right_side() {
        // From 1 with step 2, `i != 10` never fails.
        assert!(!p("mov r0, 1\ntop:\nadd r0, 2\njne r0, 10, top\nexit"));
        // A register bound: the start may lie above it.
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\njne r0, r6, top\nexit"));
        // Starting above the bound: ends only after wrapping around 2^64 (or 2^32).
        assert!(!p("mov r0, 40\ntop:\nadd r0, 1\njne r0, 31, top\nexit"));
        assert!(!p(
            "mov32 r0, 200\ntop:\nadd32 r0, 1\njne32 r0, 100, top\nexit"
        ));
        assert!(!p("mov r0, 5\ntop:\nsub r0, 1\njne r0, 31, top\nexit"));
        assert!(!p("mov r0, 31\ntop:\nadd r0, -1\njne r0, 31, top\nexit"));
        // The first step wraps below 0 (then 2^64 - 32 more steps): not accepted.
        assert!(!p("mov r0, 0\ntop:\nsub r0, 1\njne r0, 31, top\nexit"));
        assert!(!p(
            "mov r0, 0\ntop:\nmov r5, r0\nsub r5, 1\nadd r0, 1\njne r5, 31, top\nexit"
        ));
        // The start unknown: from an input register, or on one way in.
        assert!(!p("mov r0, r1\ntop:\nadd r0, 1\njne r0, 31, top\nexit"));
        assert!(!p(
            "mov r0, 0\njeq r1, 0, top\nmov r0, r2\ntop:\nadd r0, 1\njne r0, 31, top\nexit"
        ));
        // One way in starts above the bound.
        assert!(!p(
            "mov r0, 0\njeq r1, 0, top\nmov r0, 50\ntop:\nadd r0, 1\njne r0, 31, top\nexit"
        ));
        // A 32-bit step seen by a 64-bit test: the upper half does not follow.
        assert!(!p("mov r0, 0\ntop:\nadd32 r0, 1\njne r0, -1, top\nexit"));
        // The header is the function's entry: the start is the caller's.
        assert!(!p("top:\nadd r1, 1\njne r1, 31, top\nmov r0, 0\nexit"));
    }

    #[test]
    fn not_equal_tests_from_a_known_start() {
        // clang's `i += 1; if i != n`, with the start a constant on every way in.
        assert!(p("mov r0, 0\ntop:\nadd r0, 1\njne r0, 31, top\nexit"));
        assert!(p("mov r0, 31\ntop:\nsub r0, 1\njne r0, 0, top\nexit"));
        assert!(p(
            "mov r0, 0\njeq r1, 0, top\nmov r0, 20\ntop:\nadd r0, 1\njne r0, 31, top\nexit"
        ));
        // Test at the head, 32-bit, with data-dependent early exits (strcmp's loop).
        assert!(p(
            "mov r0, 0\ntop:\njeq32 r0, 31, out\nmov r3, r1\nadd r3, r0\nldxb r4, [r3]\njeq r4, 0, out\nadd32 r0, 1\nja top\nout:\nexit"
        ));
        // Bound on the left in a register holding a constant, start set after a join.
        assert!(p(
            "jeq r1, 0, a\nmov r2, 1\na:\nmov r6, 3\nmov r7, 9\ntop:\nadd r6, 1\njne r7, r6, top\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn equal_tests_staying_in_the_loop() {
        // Staying while `i == b`: the next step leaves `b`.
        assert!(p("mov r0, 0\ntop:\nadd r0, 1\njeq r0, 1, top\nexit"));
        assert!(p("top:\nadd r1, 3\njeq r1, r6, top\nmov r0, 0\nexit"));
        // ... unless the step is 0.
        assert!(!p("top:\nadd r1, 0\njeq r1, r6, top\nmov r0, 0\nexit"));
    }

    #[test]
    fn tests_on_a_copy_or_offset_of_the_counter() {
        // `j = i + 8; if j > n` with `j` recomputed from `i` each iteration (clang's
        // `i + 4 <= n` loops), here against an immediate.
        assert!(p(
            "mov r3, 0\ntop:\nadd r3, 4\nmov r5, r3\nadd r5, 8\njgt r5, 400, out\nja top\nout:\nmov r0, 0\nexit"
        ));
        // Against a register bound, step 1, strict.
        assert!(p(
            "mov r3, 0\ntop:\nmov r5, r3\nadd r5, 8\nadd r3, 1\njge r5, r2, out\nja top\nout:\nmov r0, 0\nexit"
        ));
        // Through 32-bit copies for a 32-bit test.
        assert!(p(
            "mov r3, 0\ntop:\nadd r3, 1\nmov32 r5, r3\nsub32 r5, 2\njlt32 r5, 100, top\nmov r0, 0\nexit"
        ));
        // A step of 2 made of two additions, or one on each arm of an if.
        assert!(p(
            "mov r0, 0\ntop:\nadd r0, 1\nadd r0, 1\njlt r0, 10, top\nexit"
        ));
        assert!(p(
            "mov r0, 0\ntop:\njeq r1, 0, a\nadd r0, 1\nja b\na:\nadd r0, 1\nb:\njlt r0, 10, top\nexit"
        ));
        // The counter moved through another register: `j = i + 4; ...; i = j`.
        assert!(p(
            "mov r4, 0\ntop:\nmov r3, r4\nadd r3, 4\nmov r4, r3\njlt r4, 100, top\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn copies_that_do_not_follow_the_counter() {
        // `j` computed once before the loop: a constant test, endless.
        assert!(!p(
            "mov r3, 0\nmov r5, 8\ntop:\nadd r3, 4\njlt r5, 400, top\nmov r0, 0\nexit"
        ));
        // `j` recomputed on one path only.
        assert!(!p(
            "mov r3, 0\nmov r5, 0\ntop:\nadd r3, 4\njeq r1, 0, t\nmov r5, r3\nt:\njlt r5, 400, top\nmov r0, 0\nexit"
        ));
        // `j` from a scaled counter (not followed), and a copy clobbered by a call.
        assert!(!p(
            "mov r3, 0\ntop:\nadd r3, 1\nmov r5, r3\nmul r5, 0\njlt r5, 400, top\nmov r0, 0\nexit"
        ));
        assert!(!p(
            "mov r6, 0\ntop:\nadd r6, 1\nmov r5, r6\ncall 7\njlt r5, 400, top\nmov r0, 0\nexit"
        ));
        // An offset copy against a register bound of unknown range with a step of 4: may wrap.
        assert!(!p(
            "mov r3, 0\ntop:\nadd r3, 4\nmov r5, r3\nadd r5, 8\njgt r5, r6, out\nja top\nout:\nmov r0, 0\nexit"
        ));
        // Lagging behind a register that does not move: constant from the second iteration.
        assert!(!p(
            "mov r3, 0\ntop:\nadd r3, 4\nmov r5, r4\nadd r5, 8\nmov r4, r7\njgt r5, r2, out\nja top\nout:\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn counters_lagging_an_iteration_behind() {
        // clang's `for (i = 0; i + 8 <= len; i += 4)`: `r3 += 4; r5 = r4 + 8; r4 = r3`, where
        // `r4` holds the previous iteration's `r3`. The input length r2 is below 2^63.
        assert!(p(
            "mov r3, 0\nmov r4, 0\ntop:\nadd r3, 4\nmov r5, r4\nadd r5, 8\nmov r4, r3\njgt r5, r2, out\nja top\nout:\nmov r0, 0\nexit"
        ));
        // Not with `!=`: the first value is not the entry's plus the offset.
        assert!(!p(
            "mov r3, 0\nmov r4, 5\ntop:\nadd r3, 1\nmov r5, r4\nmov r4, r3\njne r5, 10, top\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn register_bounds_of_known_range() {
        // The input length (r2 at the program's entry) is a slice length, below 2^63: a step
        // of 8 and `<=` cannot wrap.
        assert!(p("mov r0, 0\ntop:\nadd r0, 8\njle r0, r2, top\nexit"));
        // A bound shifted right, masked, loaded as a byte, or clamped by a branch.
        assert!(p(
            "mov r3, r2\nrsh r3, 4\nmov r1, 0\ntop:\nadd r1, 8\njlt r1, r3, top\nmov r0, 0\nexit"
        ));
        // Shifted from anything: ends, but may take 2^57 iterations.
        assert!(!p(
            "mov r3, r6\nrsh r3, 4\nmov r1, 0\ntop:\nadd r1, 8\njlt r1, r3, top\nmov r0, 0\nexit"
        ));
        assert!(p(
            "mov r3, r6\nand r3, 0xff\nmov r0, 0\ntop:\nadd r0, 4\njle r0, r3, top\nexit"
        ));
        assert!(p(
            "ldxb r3, [r10-1]\nmov r0, 0\ntop:\nadd r0, 100\njsle r0, r3, top\nexit"
        ));
        assert!(p(
            "jle r6, 100, ok\nmov r6, 100\nok:\nmov r0, 0\ntop:\nadd r0, 4\njle r0, r6, top\nexit"
        ));
        // Kept across an inner loop that does not write it.
        assert!(p(
            "mov r3, r2\nrsh r3, 1\nmov r1, 0\ntop:\nmov r4, 0\nin:\nadd r4, 1\njlt r4, 3, in\nadd r1, 2\njle r1, r3, top\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn bounds_kept_on_the_stack() {
        // clang's spill of the length before the loop and its fill for every test: the slot
        // is written nowhere in the loop, so the fill is the same value each iteration, below
        // the length's bound. 8-byte steps against `x + 16 <= len`.
        let spilled = "
            stxdw [r10-8], r2
            mov r6, 0
        head:
            mov r4, r6
            add r4, 16
            add r6, 8
            ldxdw r1, [r10-8]
            jgt r4, r1, +1
            ja head
            exit";
        assert!(p(spilled));
        // Another slot written in the loop does not matter.
        assert!(p(
            &spilled.replace("add r6, 8", "add r6, 8\nstxdw [r10-16], r6")
        ));
        // The bound's slot written in the loop (all of it, or one byte of it) is no bound.
        assert!(!p(
            &spilled.replace("add r6, 8", "add r6, 8\nstxdw [r10-8], r4")
        ));
        assert!(!p(
            &spilled.replace("add r6, 8", "add r6, 8\nstb [r10-5], 1")
        ));
        assert!(!p(
            &spilled.replace("add r6, 8", "add r6, 8\nlock add [r10-8], r6")
        ));
        // A pointer into the frame could let a helper or a store through it write the slot.
        assert!(!p(&spilled.replace("mov r6, 0", "mov r6, 0\nmov r3, r10")));
        assert!(!p(
            &spilled.replace("mov r6, 0", "mov r6, 0\nstxdw [r10-24], r10")
        ));
        // A slot spilled with an unknown value bounds nothing unless the step is 1.
        let unknown = spilled.replace("stxdw [r10-8], r2", "stxdw [r10-8], r3");
        assert!(!p(&unknown));
        // A 32-bit test against a filled bound of unknown low half could see the counter
        // wrap, as for a register.
        assert!(!p(&spilled.replace("jgt r4, r1, +1", "jgt32 r4, r1, +1")));
    }

    #[test]
    fn counters_kept_on_the_stack() {
        // clang's outer counter under register pressure: spilled at the head, the register
        // reused by an inner loop, filled and stepped before the test.
        let spilled = "
            mov r2, 0
            mov r3, 16
        head:
            stxdw [r10-24], r2
            mov r2, 0
        inner:
            add r2, 1
            jlt r2, r3, inner
            ldxdw r2, [r10-24]
            add r2, 1
            jlt r2, r3, head
            mov r0, 0
            exit";
        assert!(p(spilled));
        // The fill reads a slot the iteration did not store the counter in, or a store of
        // part of it came between: unknown.
        assert!(!p(
            &spilled.replace("ldxdw r2, [r10-24]", "ldxdw r2, [r10-32]")
        ));
        assert!(!p(&spilled.replace(
            "ldxdw r2, [r10-24]",
            "stb [r10-24], 0\nldxdw r2, [r10-24]"
        )));
        // A pointer into the frame could let anything write the slot.
        assert!(!p(&spilled.replace(
            "mov r2, 0\n        inner",
            "mov r4, r10\nmov r2, 0\ninner"
        )));
        // A bound from a product of bounded values (`n * n` with `n <= 16`).
        assert!(p(
            "mov r3, r6\nand r3, 15\nmul r3, r3\nmov r0, 0\ntop:\nadd r0, 3\njle r0, r3, top\nexit"
        ));
        assert!(!p(
            "mov r3, r6\nand r3, 15\nmul r3, r6\nmov r0, 0\ntop:\nadd r0, 3\njle r0, r3, top\nexit"
        ));
    }

    #[test]
    fn offsets_stepping_by_a_parsed_length() {
        // A record walk: the offset moves past a 16-bit length and a 2-byte header, at
        // least 2 and at most 2^16 + 1 per record, while `off <= len`.
        let walk = "
            mov r3, 2
            mov r6, 0
        head:
            ldxh r9, [r1+0]
            mov r7, r3
            add r7, r9
            add r6, 1
            mov r3, r7
            add r3, 2
            jle r3, r2, head
            exit";
        assert!(p(walk));
        // A mask bounds the length as the load did; a strict test too.
        assert!(p(
            &walk.replace("ldxh r9, [r1+0]", "ldxdw r9, [r1+0]\nand r9, 4095")
        ));
        assert!(p(&walk.replace("jle r3, r2, head", "jlt r3, r2, head")));
        // A length that may be 0 with no header: the offset may stay put.
        assert!(!p(&walk.replace("add r3, 2", "add r3, 0")));
        // A length assembled from two bytes, as a big-endian load is.
        assert!(p(&walk.replace(
            "ldxh r9, [r1+0]",
            "ldxb r9, [r1+0]\nldxb r5, [r1+1]\nlsh r9, 8\nor r9, r5"
        )));
        // A length of unbounded size, or added at 32 bits, or a bound the loop moves.
        assert!(!p(&walk.replace("ldxh r9, [r1+0]", "ldxdw r9, [r1+0]")));
        assert!(!p(
            &walk.replace("ldxh r9, [r1+0]", "ldxw r9, [r1+0]\nlsh r9, 32")
        ));
        // A shift by a negative immediate (masked at run time) follows nothing, and panics
        // nowhere.
        assert!(!p(
            &walk.replace("ldxh r9, [r1+0]", "ldxh r9, [r1+0]\nlsh r9, -1")
        ));
        assert!(!p(&walk.replace("add r7, r9", "add32 r7, r9")));
        assert!(!p(&walk.replace("add r6, 1", "add r6, 1\nadd r2, r9")));
        // The tested value is not the next offset (the offset is written after the test).
        let late = walk.replace("jle r3, r2, head", "jgt r3, r2, +2\nmov r3, 2\nja head");
        assert!(!p(&late));
        // Signed, or downward: not this rule.
        assert!(!p(&walk.replace("jle r3, r2, head", "jsle r3, r2, head")));
    }

    #[test]
    fn register_bounds_of_unknown_range() {
        // r2 inside a called function is the caller's: anything.
        assert!(!p(
            "call local f\nexit\nf:\nmov r0, 0\ntop:\nadd r0, 8\njle r0, r2, top\nexit"
        ));
        // r2 written before the loop, by a subtraction or a 64-bit load.
        assert!(!p(
            "sub r2, 1\nmov r0, 0\ntop:\nadd r0, 8\njle r0, r2, top\nexit"
        ));
        assert!(!p(
            "ldxdw r2, [r10-8]\nmov r0, 0\ntop:\nadd r0, 8\njle r0, r2, top\nexit"
        ));
        // A shift by 0, a signed clamp (not followed), a clamp on one way in only.
        assert!(!p(
            "mov r3, r6\nrsh r3, 0\nmov r1, 0\ntop:\nadd r1, 8\njlt r1, r3, top\nmov r0, 0\nexit"
        ));
        assert!(!p(
            "jsle r6, 100, ok\nmov r6, 100\nok:\nmov r0, 0\ntop:\nadd r0, 4\njle r0, r6, top\nexit"
        ));
        assert!(!p(
            "jeq r7, 0, ok\njle r6, 100, ok\nmov r6, 100\nok:\nmov r0, 0\ntop:\nadd r0, 4\njle r0, r6, top\nexit"
        ));
        // A bound the loop grows: widened to anything.
        assert!(!p(
            "mov r3, 10\nmov r0, 0\ntop:\nadd r3, 1\nadd r0, 8\njle r0, r3, top\nexit"
        ));
        // At 32 bits, adding 2^32 - 2 is a step of -2: the wrong way for `<=`.
        assert!(!p(
            "ldxb r3, [r10-1]\nmov32 r0, 0\ntop:\nadd32 r0, -2\njle32 r0, r3, top\nexit"
        ));
    }

    #[test]
    fn backward_jumps_inside_a_loop_body() {
        // A switch whose cases jump back to the latch, above them but below the header
        // (clang's layout): reducible, the header dominates everything.
        assert!(p(
            "mov r5, 0\nja head\nlatch:\nadd r5, 1\njlt r5, r2, head\nja out\nhead:\njeq r1, 0, latch\nadd r0, 1\nja latch\nout:\nexit"
        ));
    }

    #[test]
    fn second_back_edge_bypassing_the_test() {
        assert!(!p(
            "mov r0, 0\ntop:\nadd r0, 1\njeq r1, 0, top\njlt r0, 10, top\nexit"
        ));
        // A ja back to the head before the step.
        assert!(!p(
            "mov r0, 0\ntop:\njeq r1, 5, top\nadd r0, 1\njlt r0, 10, top\nexit"
        ));
    }

    #[test]
    fn loops_without_a_test() {
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\nja top\nexit"));
        assert!(!p("ja +0\nja -1\nexit"));
        // The test's staying edge does not imply the bound.
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\njge r0, 10, top\nexit"));
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\njset r0, 10, top\nexit"));
    }

    #[test]
    fn test_inside_an_inner_loop_does_not_bound_the_outer() {
        // The outer loop's only bounded-looking test runs inside the inner loop.
        assert!(!p(
            "mov r0, 0\nouter:\nmov r2, 0\ninner:\nadd r2, 1\njlt r2, 8, inner\nja outer\nexit"
        ));
        // The step of the outer counter sits in the inner loop: it may wrap before the test.
        assert!(!p(
            "mov r0, 0\nmov r1, 1\nouter:\nmov r2, 0\ninner:\nadd r0, 1\nadd r2, 1\njlt r2, 8, inner\njlt r0, 10, outer\nexit"
        ));
    }

    #[test]
    fn recursion_and_callbacks() {
        assert!(!p("call local f\nexit\nf:\ncall local f\nexit"));
        assert!(!p(
            "mov r0, 0\ncall local g\nexit\ng:\nmov r0, 0\ncall local g\nmov r0, 0\nexit"
        ));
        // A function whose address is taken but that no callback-taking call runs never
        // runs: the loop is proven.
        let text = "lddw r2, func(cb)\nmov r0, 0\ntop:\nadd r0, 1\njlt r0, 3, top\nexit\ncb:\nmov r0, 0\nexit";
        assert!(p(text));
        // Run by a callback-taking call at pc 2 (`call 181`, one slot), 10 times per call:
        // the call costs its slot plus 10 runs of the callback's two instructions.
        let cg = |t: &str| {
            let prog = bpfx_bytecode::assemble(t).expect("assembles");
            Cfg::new(&Program::decode(prog).expect("decodes"))
        };
        let g = cg("lddw r2, func(cb)\ncall 181\nexit\ncb:\nmov r0, 0\nexit");
        let (site, cb) = (Pc(2), Pc(4));
        assert_eq!(
            instruction_bound_with(&g, &[(site, cb, 10)]),
            Some(2 + 1 + 20 + 1)
        );
        assert!(proves(&g, &[(site, cb, 1 << 23)]));
        // A callback that is not after its caller (here the entry itself) is not proven.
        assert_eq!(instruction_bound_with(&g, &[(site, Pc(0), 10)]), None);
    }

    fn bound(text: &str) -> Option<u128> {
        let prog = bpfx_bytecode::assemble(text).expect("assembles");
        instruction_bound(&Cfg::new(&Program::decode(prog).expect("decodes")))
    }

    #[test]
    fn instruction_bounds_count_every_slot_of_every_iteration() {
        // mov; 10 x (add; jlt); exit: exactly what a run executes.
        assert_eq!(
            bound("mov r0, 0\ntop:\nadd r0, 1\njlt r0, 10, top\nexit"),
            Some(22)
        );
        // Test at the head: 11 tests, 10 bodies.
        assert_eq!(
            bound("mov r1, 0\ntop:\njge r1, 10, out\nadd r1, 1\nja top\nout:\nmov r0, 0\nexit"),
            Some(1 + 11 * 3 + 2)
        );
        // Down by 2 from 10 while `s> 0`: the test sees 8, 6, 4, 2 (staying) and 0: 5
        // iterations.
        assert_eq!(
            bound("mov r0, 10\ntop:\nsub r0, 2\njsgt r0, 0, top\nexit"),
            Some(1 + 5 * 2 + 1)
        );
        // `!=` from 0 to 31.
        assert_eq!(
            bound("mov r0, 0\ntop:\nadd r0, 1\njne r0, 31, top\nexit"),
            Some(1 + 31 * 2 + 1)
        );
        // Nested: the inner loop's 8 iterations of 2 slots per outer iteration, 8 of them.
        assert_eq!(
            bound(
                "mov r0, 0\nmov r1, 0\nouter:\nmov r2, 0\ninner:\nadd r0, 1\nadd r2, 1\njlt r2, 8, inner\nadd r1, 1\njlt r1, 8, outer\nexit"
            ),
            Some(2 + 8 * (1 + 8 * 3 + 2) + 1)
        );
        // A call counts its callee's bound (lddw is two slots).
        assert_eq!(
            bound(
                "mov r6, 0\ntop:\ncall local f\nadd r6, 1\njlt r6, 4, top\nexit\nf:\nlddw r0, 1\nexit"
            ),
            Some(1 + 4 * (1 + 3 + 2) + 1)
        );
    }

    #[test]
    fn loops_that_end_only_after_centuries_are_not_proven() {
        // for (i = 0; i < (1ULL << 63); i++): the bound from `lddw` (no `mov` start).
        assert!(!p(
            "lddw r1, 0x8000000000000000\nmov r0, 0\ntop:\nadd r0, 1\njlt r0, r1, top\nexit"
        ));
        // i < u64::MAX by steps of one, and `!=` from 0 up to u64::MAX.
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\njlt r0, -1, top\nexit"));
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\njne r0, -1, top\nexit"));
        // A 32-bit loop to 2^32 - 1, alone and nested three deep.
        assert!(!p(
            "mov32 r3, 0\nl3:\nadd32 r3, 1\njlt32 r3, -1, l3\nmov r0, 0\nexit"
        ));
        assert!(!p(
            "mov32 r1, 0\nl1:\nmov32 r2, 0\nl2:\nmov32 r3, 0\nl3:\nadd32 r3, 1\njlt32 r3, -1, l3\nadd32 r2, 1\njlt32 r2, -1, l2\nadd32 r1, 1\njlt32 r1, -1, l1\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn bounds_multiply_through_nests_and_calls() {
        // Three loops of 2^10 nested: 2^30 iterations of the innermost, past 2^28.
        let nest = |n: u32| {
            format!(
                "mov r1, 0\nl1:\nmov r2, 0\nl2:\nmov r3, 0\nl3:\nadd r3, 1\njlt r3, {n}, l3\nadd r2, 1\njlt r2, {n}, l2\nadd r1, 1\njlt r1, {n}, l1\nmov r0, 0\nexit"
            )
        };
        assert!(!p(&nest(1 << 10)));
        assert!(p(&nest(1 << 8)));
        // A callee looping 2^20 times, called from a loop: 2^4 calls fit, 2^10 do not.
        let calls = |n: u32| {
            format!(
                "mov r6, 0\ntop:\ncall local f\nadd r6, 1\njlt r6, {n}, top\nexit\nf:\nmov r0, 0\nl:\nadd r0, 1\njlt r0, 0x100000, l\nexit"
            )
        };
        assert!(p(&calls(1 << 4)));
        assert!(!p(&calls(1 << 10)));
        // Without any loop: a chain of functions each calling the next 2^12 times in a row is
        // 2^36 instructions.
        let chain = {
            let mut t = String::from("call local f1\nexit\n");
            for k in 1..=3 {
                t += &format!("f{k}:\n");
                for _ in 0..(1 << 12) {
                    t += &format!("call local f{}\n", (k + 1).min(4));
                }
                t += "exit\n";
            }
            t + "f4:\nmov r0, 0\nexit"
        };
        assert!(!p(&chain));
    }

    #[test]
    fn input_length_bounds_count_a_64_kib_input() {
        // One loop over the input, step 1: the test sees 1, ..., 2^16 at most.
        assert!(p("mov r0, 0\ntop:\nadd r0, 1\njlt r0, r2, top\nexit"));
        assert_eq!(
            bound("mov r0, 0\ntop:\nadd r0, 1\njlt r0, r2, top\nexit"),
            Some(1 + (1 << 16) * 2 + 1)
        );
        // Two nested: 2^32.
        assert!(!p(
            "mov r1, 0\nouter:\nmov r3, 0\ninner:\nadd r3, 1\njlt r3, r2, inner\nadd r1, 1\njlt r1, r2, outer\nmov r0, 0\nexit"
        ));
    }

    #[test]
    fn irreducible_cycles() {
        // Two entries into the cycle a <-> b, each with a perfect counted exit.
        assert!(!p(
            "mov r0, 0\njeq r1, 0, b\na:\nadd r0, 1\njge r0, 10, out\nb:\nja a\nout:\nexit"
        ));
    }
}
