//! Termination proofs for counted loops in `Checked` mode, so that such programs need no
//! instruction budget ([`crate::Assumptions::terminates`]).
//!
//! The rule (also in `docs/verifier.md`, "Termination"), all syntactic, on each function's
//! control-flow graph of instructions:
//!
//! 1. No recursion and no callbacks: every local call targets a later pc (a call cycle always
//!    holds a call to a function starting no later than the call), and no `lddw func` exists
//!    (a helper could call it back any number of times). Helpers are assumed to return.
//! 2. Every function's graph is reducible: every jump to an earlier (or the same) pc goes to
//!    an instruction that dominates the jump. Then every cycle holds a back edge `u -> h`
//!    with `h` dominating `u`, and the natural loop of `h` (its body `B`: `h` and every pc
//!    reaching a back-edge source without passing `h`) holds the cycle.
//! 3. Every natural loop (header `h`) has a counter `i`, a step and an exit test:
//!    - the only instruction of `B` writing `i` is the step `i += c` or `i -= c` (immediate,
//!      `c != 0`); if `i` is r0–r5, `B` holds no call and no packet load (calls clobber
//!      r0–r5, local calls restore r6–r9; the kernel's packet loads may clobber r1–r5);
//!    - the test is a conditional branch of `B` with one successor inside `B` and one outside,
//!      comparing `i` with a bound `b` so that taking the successor inside `B` implies
//!      `i < b` or `i <= b` (unsigned or signed) for `c > 0`, `i > b` or `i >= b` for `c < 0`;
//!      `b` is an immediate, or a register other than `i` that `B` never writes (and, if
//!      r0–r5, `B` holds no call or packet load);
//!    - both the step and the test dominate every back-edge source of `h` and lie in no inner
//!      loop (no other natural loop whose header is in `B`), so each runs exactly once per
//!      iteration;
//!    - the comparison's width `w` (64 or 32 bits) is the step's, or the step is 64-bit and
//!      the test 32-bit (the low half then moves by `c mod 2^32`);
//!    - no wrap-around: for an immediate bound, `b + c - 1 <= MAX` (`<`), `b + c <= MAX`
//!      (`<=`), and symmetrically `b + c + 1 >= MIN` (`>`), `b + c >= MIN` (`>=`), with `MAX`
//!      and `MIN` of the comparison's width and signedness; for a register bound, the
//!      comparison is strict and `|c| = 1` (then `i < b <= MAX` gives `i + 1 <= MAX`).
//!
//! Why it is sound: an endless run stays, from some point on, in one frame (no recursion, and
//! each callee ends by induction over the call order), so it visits some set `S` of pcs
//! forever; `S` is strongly connected, so (reducible graph) it has a header `h` dominating it,
//! lies in `h`'s body, and the run takes back edges to `h` forever. Each iteration runs the
//! test (taking the in-loop successor, or the run would leave `B`) and the step exactly once,
//! in an order fixed by dominance, so the counter's values at consecutive tests are
//! `v, v + c, v + 2c, ...` with nothing else writing it or the bound; each satisfies the
//! staying condition, and the wrap-around bound makes that sequence strictly monotonic in the
//! integers while it stays on the right side of the fixed `b`: finitely many iterations.

use bpfx_bytecode::{
    AluOp, CallTarget, Cfg, Cond, Op, Operand, Pc, Program, Reg, RegSet, Successors, Width,
};

/// Work (in visited edges and body pcs) above which the analysis gives up, so that a huge
/// program with deep loop nests costs no more than a few times its size.
const WORK_LIMIT: usize = 1 << 24;

/// Whether every run of the program of `graph` ends, by the rule of this module. `false` means
/// "not proven".
pub(crate) fn proves(graph: &Cfg) -> bool {
    let prog = graph.program();
    if !prog.has_back_edges() {
        return true;
    }
    // Rule 1: calls only forward, no kfunc, no callback.
    if graph.calls().iter().any(|c| c.callee <= c.site)
        || graph.functions().iter().any(|f| f.address_taken)
        || prog
            .iter()
            .any(|(_, op)| matches!(op, Op::Call(CallTarget::Kfunc(_))))
    {
        return false;
    }
    let mut work = 0usize;
    for f in graph.functions() {
        if !Func::new(prog, f.entry.index(), f.end.index()).proves(&mut work) {
            return false;
        }
    }
    true
}

/// One function's graph, with pcs relative to its start.
struct Func<'a> {
    prog: &'a Program,
    start: usize,
    /// Successors inside the function (relative), `None` for a jump leaving it.
    succ: Vec<Vec<usize>>,
    pred: Vec<Vec<usize>>,
    /// Immediate dominator (relative), `usize::MAX` for unreachable pcs; the entry's is itself.
    idom: Vec<usize>,
    /// Dominator-tree preorder interval, for O(1) dominance queries.
    pre: Vec<u32>,
    post: Vec<u32>,
    /// Whether the graph left the function (a structural error the verifier reports).
    broken: bool,
}

impl<'a> Func<'a> {
    fn new(prog: &'a Program, start: usize, end: usize) -> Func<'a> {
        let n = end - start;
        let mut succ = vec![Vec::new(); n];
        let mut broken = false;
        for (rel, s) in succ.iter_mut().enumerate() {
            let pc = start + rel;
            let Some(op) = prog.get(Pc(pc as u32)) else {
                continue;
            };
            for t in Successors::of(op, Pc(pc as u32)).iter().map(Pc::index) {
                if t < start || t >= end {
                    broken = true;
                } else if !s.contains(&(t - start)) {
                    s.push(t - start);
                }
            }
        }
        let mut pred = vec![Vec::new(); n];
        for (u, s) in succ.iter().enumerate() {
            for &v in s {
                pred[v].push(u);
            }
        }
        let mut f = Func {
            prog,
            start,
            succ,
            pred,
            idom: vec![usize::MAX; n],
            pre: vec![0; n],
            post: vec![0; n],
            broken,
        };
        f.dominators();
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
        let mut kids = vec![Vec::new(); n];
        for &u in order.iter().rev().skip(1) {
            kids[self.idom[u]].push(u);
        }
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

    fn proves(&self, work: &mut usize) -> bool {
        if self.broken {
            return false;
        }
        let n = self.succ.len();
        // Back edges by header; any other backward jump makes the graph irreducible.
        let mut sources: Vec<Vec<usize>> = vec![Vec::new(); n];
        for u in (0..n).filter(|&u| self.reachable(u)) {
            for &v in &self.succ[u] {
                if self.dominates(v, u) {
                    sources[v].push(u);
                } else if v <= u {
                    return false;
                }
            }
        }
        let headers: Vec<usize> = (0..n).filter(|&h| !sources[h].is_empty()).collect();
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
                return false;
            }
            body.sort_unstable();
            bodies.push(body);
        }
        let in_body = |k: usize, pc: usize| bodies[k].binary_search(&pc).is_ok();
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
                return false;
            }
            // Runs exactly once per iteration: in no inner loop, and on every way round.
            let once = |pc: usize| innermost[pc] == k && self.dominates(pc, ncd);
            if !self.loop_ends(&bodies[k], |pc| in_body(k, pc), &once) {
                return false;
            }
        }
        true
    }

    /// Whether the loop with `body` (sorted) has a counter, step and exit test as the module
    /// describes. `once(pc)`: `pc` runs exactly once per iteration.
    fn loop_ends(
        &self,
        body: &[usize],
        inside: impl Fn(usize) -> bool,
        once: &impl Fn(usize) -> bool,
    ) -> bool {
        // What calls and packet loads (which the kernel lets clobber r1-r5) in the loop may
        // change, beyond the registers they name.
        let lost = body
            .iter()
            .filter_map(|&u| self.op(u))
            .filter(|op| matches!(op, Op::Call(_) | Op::LoadPacket { .. }))
            .fold(RegSet::EMPTY, |set, op| set | op.clobbers());
        let clobbered = |r: Reg| lost.contains(r);
        // Per register: how many instructions of the loop write it, and the last one.
        let mut writes = [(0usize, 0usize); Reg::COUNT];
        for &u in body {
            if let Some(r) = self.op(u).and_then(|op| op.written_reg()) {
                writes[r.index()].0 += 1;
                writes[r.index()].1 = u;
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
            let next = t + self.op(t).map_or(1, |op| op.slots() as usize);
            let (a, b) = (inside(outs[0]), inside(outs[1]));
            if a == b || !once(t) {
                continue;
            }
            // The condition that holds on the edge staying in the loop.
            let stay_target = if a { outs[0] } else { outs[1] };
            let stay = if stay_target == next {
                match cond.negate() {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                cond
            };
            let mut forms = vec![(lhs, stay, rhs)];
            // Read from the other side (the symmetric conditions are no bound: skipped).
            if let Operand::Reg(r) = rhs
                && stay.swap() != stay
            {
                forms.push((r, stay.swap(), Operand::Reg(lhs)));
            }
            for (i, rel, bound) in forms {
                if clobbered(i) || i == Reg::R10 {
                    continue;
                }
                let (count, step_pc) = writes[i.index()];
                if count != 1 {
                    continue;
                }
                if !once(step_pc) {
                    continue;
                }
                let Some(&Op::Alu {
                    width: sw,
                    op: aop,
                    dst,
                    src: Operand::Imm(k),
                }) = self.op(step_pc)
                else {
                    continue;
                };
                if dst != i || (sw == Width::W32 && width == Width::W64) {
                    continue;
                }
                let raw = match aop {
                    AluOp::Add => i128::from(k),
                    AluOp::Sub => -i128::from(k),
                    _ => continue,
                };
                let bits = width.bits();
                let c = wrap_signed(raw, bits);
                if c == 0 {
                    continue;
                }
                if bound_ok(rel, c, bits, bound, i, |r| {
                    clobbered(r) || writes[r.index()].0 != 0
                }) {
                    return true;
                }
            }
        }
        false
    }
}

/// `v` reduced modulo `2^bits` into `[-2^(bits-1), 2^(bits-1))`.
fn wrap_signed(v: i128, bits: u32) -> i128 {
    let m = 1i128 << bits;
    let r = v.rem_euclid(m);
    if r >= m / 2 { r - m } else { r }
}

/// Whether staying while `i rel bound`, with `i` moving by `c` (nonzero, in `bits`-bit
/// arithmetic), can only last finitely many iterations. `unstable(r)`: register `r` may
/// change inside the loop.
fn bound_ok(
    rel: Cond,
    c: i128,
    bits: u32,
    bound: Operand,
    i: Reg,
    unstable: impl Fn(Reg) -> bool,
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
        Cond::Eq | Cond::Ne | Cond::Set => return false,
    };
    if up != (c > 0) {
        return false;
    }
    match bound {
        Operand::Reg(b) => b != i && !unstable(b) && strict && (c == 1 || c == -1),
        Operand::Imm(k) => {
            // The immediate as the comparison sees it: sign-extended to 64 bits, or its low
            // 32 bits; then read unsigned or signed.
            let m = 1i128 << bits;
            let b = i128::from(k).rem_euclid(m);
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

#[cfg(test)]
mod tests {
    use super::proves;
    use bpfx_bytecode::{Cfg, Program};

    fn p(text: &str) -> bool {
        let prog = bpfx_bytecode::assemble(text).expect("assembles");
        proves(&Cfg::new(&Program::decode(prog).expect("decodes")))
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
        // 32-bit signed, `0x7fffffff` is the largest bound step 1 allows with `<`.
        assert!(p(
            "mov32 r0, 0\ntop:\nadd32 r0, 1\njslt32 r0, 0x7fffffff, top\nexit"
        ));
    }

    #[test]
    fn register_bounds() {
        // Bound in a callee-saved register, step 1, strict.
        assert!(p(
            "mov r6, r1\nmov r0, 0\ntop:\nadd r0, 1\njlt r0, r6, top\nexit"
        ));
        // r2 as bound, no call in the loop.
        assert!(p("mov r0, 0\ntop:\nadd r0, 1\njlt r0, r2, top\nexit"));
        // Down to a register bound.
        assert!(p("mov r0, 100\ntop:\nsub r0, 1\njsgt r0, r7, top\nexit"));
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
        assert!(!p(
            "mov r0, 0\ntop:\nadd r0, 1\nadd r0, 1\njlt r0, 10, top\nexit"
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
        // ... but at 64 bits, `i s<= 2^31 - 1` is far from the top: proven.
        assert!(p(
            "mov r0, 0\ntop:\nadd r0, 1\njsle r0, 0x7fffffff, top\nexit"
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
    fn not_equal_tests_are_not_used() {
        // From 1 with step 2, `i != 10` never fails.
        assert!(!p("mov r0, 1\ntop:\nadd r0, 2\njne r0, 10, top\nexit"));
        assert!(!p("mov r0, 0\ntop:\nadd r0, 1\njne r0, r6, top\nexit"));
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
        // A callback a helper may call any number of times.
        assert!(!p(
            "lddw r2, func(cb)\nmov r0, 0\ntop:\nadd r0, 1\njlt r0, 3, top\nexit\ncb:\nmov r0, 0\nexit"
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
