//! Termination of loops by a ranking measure over several registers: `hi - lo` for a binary
//! search, a halving window's `size`, the distance of a pointer pair walking towards each
//! other. The rule (also in `docs/verifier.md`, "Termination"), for an innermost natural loop
//! (no other header in its body) whose header is not the function's entry:
//!
//! - **Atoms.** The registers are the loop's atoms, each assumed in `0..=bound` at every visit
//!   of the header, `bound` its unsigned upper bound on the edges entering the header from
//!   outside (`Func::upper_bounds`; the invariant, checked below).
//! - **Paths.** Every path of one iteration (from the header through the body back to it; the
//!   body holds no other cycle) is evaluated exactly: a register's value is an affine form
//!   over the atoms' values at the header with rational coefficients, plus one error atom per
//!   right shift or division by a constant (`x >> s` is `x / 2^s + e`, `-(1 - 2^-s) <= e <= 0`;
//!   `x & (2^s - 1)` is `-2^s·e` with the same `e` for the same `x`), followed through moves, additions and subtractions (64-bit, or 32-bit on values below
//!   2^32), shifts and multiplications by constants, as long as the form's range over the
//!   atoms' ranges stays inside the operation's width (so the machine's wrapping arithmetic
//!   is the integers'); anything else is unknown. Each edge taken on the path adds what its
//!   comparison says about the forms (`x < y`: `y - x - 1 >= 0`). A conditional branch whose
//!   registers were not written since a branch with the same operands decided the
//!   same (or negated) condition takes the same way (the other way is no path).
//! - **Invariant.** On every path, every atom's value at the end is again within its bound,
//!   provable from the path's facts (below); a register for which it fails is given the next
//!   larger bound among the atoms', or stops being an atom, and the paths are evaluated again.
//! - **Measure.** A difference `b - a` of two atoms, or `a - c` or `c - a` for a constant `c`
//!   of a comparison in the body, is the measure `M` if, with `M'` its value at the next
//!   visit (the path's final forms substituted): every path proves `M' >= L` (`L` the least
//!   such bound), and every path proves `M - M' >= 1` from its facts and `M >= L`.
//! - **Proofs** are one step of linear reasoning: `P >= 0` holds if `P - k·G`'s least value
//!   over the atoms' ranges is at least `-k·0` for a fact `G >= 0` and `k >= 0` matching one
//!   coefficient of `G` (or `k = 0`).
//!
//! Why it is sound: by induction over the header's visits the atoms stay within their bounds
//! (entry edges by the upper bounds, back edges by the invariant), so on every path the
//! forms are the registers' exact values and the facts hold. From the second visit on, the
//! previous iteration's path proves `M >= L` there, so every later iteration lowers the
//! integer `M` by at least one while `M >= L`: finitely many iterations. The trip bound
//! counts the values `M` can take from its largest over the atoms' ranges down to `L`, each
//! step lowering it by at least the least proven decrease and, when every path's `M'` is at
//! most `k·M + r` (`k < 1`, `M >= 0`), to at most that: a halving search runs `log2` steps.

use super::{Func, LazyBounds, MAX_INPUT_LEN, WORK_LIMIT, bound_transfer, refine};
use bpfx_bytecode::{AluOp, Cond, Op, Operand, Reg, Width};

/// The most iteration paths followed per loop (and path prefixes, times 16).
const MAX_PATHS: usize = 256;

/// The most steps the geometric trip count is followed.
const MAX_STEPS: u32 = 4096;

/// A rational number, reduced, with a positive denominator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Q {
    n: i128,
    d: i128,
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    // Most numbers here are small: the same gcd in 64-bit arithmetic, without the 128-bit
    // division's library call.
    if let (Ok(x), Ok(y)) = (u64::try_from(a), u64::try_from(b)) {
        let (mut x, mut y) = (x, y);
        while y != 0 {
            (x, y) = (y, x % y);
        }
        return i128::from(x);
    }
    while b != 0 {
        (a, b) = (b, a % b);
    }
    // 2^127 (from `i128::MIN`, which `Q::new` refuses anyway) reduces nothing.
    i128::try_from(a).unwrap_or(1)
}

impl Q {
    const ZERO: Q = Q { n: 0, d: 1 };

    fn int(n: i128) -> Q {
        Q { n, d: 1 }
    }

    fn new(n: i128, d: i128) -> Option<Q> {
        // `i128::MIN` has no negation: such a number is not followed.
        if d == 0 || n == i128::MIN || d == i128::MIN {
            return None;
        }
        // An integer is reduced already (most coefficients are).
        if d == 1 {
            return Some(Q { n, d });
        }
        let g = gcd(n, d).max(1);
        let (n, d) = if g == 1 { (n, d) } else { (n / g, d / g) };
        Some(if d < 0 {
            Q {
                n: n.checked_neg()?,
                d: d.checked_neg()?,
            }
        } else {
            Q { n, d }
        })
    }

    fn add(self, o: Q) -> Option<Q> {
        // Two integers: what the general case computes, without its divisions.
        if self.d == 1 && o.d == 1 {
            return Q::new(self.n.checked_add(o.n)?, 1);
        }
        let g = gcd(self.d, o.d);
        let (a, b) = (self.d / g, o.d / g);
        Q::new(
            self.n.checked_mul(b)?.checked_add(o.n.checked_mul(a)?)?,
            self.d.checked_mul(b)?,
        )
    }

    fn mul(self, o: Q) -> Option<Q> {
        if self.d == 1 && o.d == 1 {
            return Q::new(self.n.checked_mul(o.n)?, 1);
        }
        let (g1, g2) = (gcd(self.n, o.d).max(1), gcd(o.n, self.d).max(1));
        Q::new(
            (self.n / g1).checked_mul(o.n / g2)?,
            (self.d / g2).checked_mul(o.d / g1)?,
        )
    }

    fn neg(self) -> Q {
        Q {
            n: -self.n,
            d: self.d,
        }
    }

    fn div(self, o: Q) -> Option<Q> {
        self.mul(Q::new(o.d, o.n)?)
    }

    fn is_pos(self) -> bool {
        self.n > 0
    }

    fn is_neg(self) -> bool {
        self.n < 0
    }

    fn floor(self) -> i128 {
        if self.d == 1 {
            return self.n;
        }
        self.n.div_euclid(self.d)
    }

    fn ceil(self) -> i128 {
        -(self.neg().floor())
    }

    /// `self <= o`.
    fn le(self, o: Q) -> Option<bool> {
        Some(!o.add(self.neg())?.is_neg())
    }
}

/// An atom: a register at the header (`0..Reg::COUNT`), or an error atom of the path.
type Atom = usize;

/// `c + Σ k·atom`, terms sorted by atom, no zero coefficient.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Form {
    terms: Vec<(Atom, Q)>,
    c: Q,
}

impl Form {
    fn konst(c: i128) -> Form {
        Form {
            terms: Vec::new(),
            c: Q::int(c),
        }
    }

    fn atom(a: Atom) -> Form {
        Form {
            terms: vec![(a, Q::int(1))],
            c: Q::ZERO,
        }
    }

    fn coef(&self, a: Atom) -> Q {
        self.terms
            .iter()
            .find(|&&(b, _)| b == a)
            .map_or(Q::ZERO, |&(_, k)| k)
    }

    /// `self + k·o`.
    fn plus(&self, k: Q, o: &Form) -> Option<Form> {
        // Both term lists are sorted by atom without repeats: merged in one pass.
        let mut terms = Vec::with_capacity(self.terms.len() + o.terms.len());
        let (mut i, mut j) = (0, 0);
        while i < self.terms.len() || j < o.terms.len() {
            let (a, q) = match (self.terms.get(i), o.terms.get(j)) {
                (Some(&(a, p)), Some(&(b, _))) if a < b => {
                    i += 1;
                    (a, p)
                }
                (Some(&(a, p)), Some(&(b, q))) if a == b => {
                    i += 1;
                    j += 1;
                    (a, p.add(q.mul(k)?)?)
                }
                (_, Some(&(b, q))) => {
                    j += 1;
                    (b, q.mul(k)?)
                }
                (Some(&(a, p)), None) => {
                    i += 1;
                    (a, p)
                }
                (None, None) => break,
            };
            if q != Q::ZERO {
                terms.push((a, q));
            }
        }
        Some(Form {
            terms,
            c: self.c.add(o.c.mul(k)?)?,
        })
    }

    fn minus(&self, o: &Form) -> Option<Form> {
        self.plus(Q::int(-1), o)
    }

    fn scale(&self, k: Q) -> Option<Form> {
        Form::konst(0).plus(k, self)
    }

    /// The least and greatest values over the atoms' ranges.
    fn range(&self, ranges: &[(Q, Q)]) -> Option<(Q, Q)> {
        let (mut lo, mut hi) = (self.c, self.c);
        for &(a, k) in &self.terms {
            let (l, h) = *ranges.get(a)?;
            let (x, y) = (k.mul(l)?, k.mul(h)?);
            let (x, y) = if k.is_neg() { (y, x) } else { (x, y) };
            lo = lo.add(x)?;
            hi = hi.add(y)?;
        }
        Some((lo, hi))
    }

    /// `self` with each register atom replaced by its form in `regs` (error atoms do not
    /// occur in a measure).
    fn subst(&self, regs: &[Option<Form>; Reg::COUNT]) -> Option<Form> {
        let mut out = Form {
            terms: Vec::new(),
            c: self.c,
        };
        for &(a, k) in &self.terms {
            out = out.plus(k, regs.get(a)?.as_ref()?)?;
        }
        Some(out)
    }
}

/// The operands of a comparison, with the write counts of its registers: two comparisons
/// with equal keys compare the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    width: Width,
    lhs: (Reg, u32),
    rhs: Result<(Reg, u32), i32>,
}

/// One path of an iteration so far.
#[derive(Clone, Debug)]
struct Path {
    regs: [Option<Form>; Reg::COUNT],
    writes: [u32; Reg::COUNT],
    /// The atoms' ranges: the registers' at the header, then the error atoms'.
    ranges: Vec<(Q, Q)>,
    /// Forms known to be at least 0.
    facts: Vec<Form>,
    decided: Vec<(Key, Cond, bool)>,
    /// The error atom of each `form / k` taken on the path, so that `x >> s` and
    /// `x & (2^s - 1)` of the same `x` share it.
    quotients: Vec<(Form, i128, Atom)>,
}

impl Path {
    fn val(&self, o: Operand, width: Width) -> Option<Form> {
        match (o, width) {
            (Operand::Reg(r), _) => self.regs[r.index()].clone(),
            (Operand::Imm(k), Width::W64) => Some(Form::konst(i128::from(k as i64 as u64))),
            (Operand::Imm(k), Width::W32) => Some(Form::konst(i128::from(k as u32))),
        }
    }

    /// `f` if it lies within `0..2^bits` by the path's facts and the atoms' ranges (the
    /// register values it stands for are integers).
    fn within(&self, f: Form, bits: u32) -> Option<Form> {
        let lo = lower(&f, &self.facts, &self.ranges)?.ceil();
        let hi = lower(&f.scale(Q::int(-1))?, &self.facts, &self.ranges)?
            .neg()
            .floor();
        (lo >= 0 && hi < 1i128 << bits).then_some(f)
    }

    /// `floor(x / k)` as `x / k + e`, `e` the error atom of `(x, k)`, with the atom.
    fn quotient(&mut self, x: &Form, k: i128) -> Option<(Form, Atom)> {
        let e = match self.quotients.iter().find(|(f, d, _)| f == x && *d == k) {
            Some(&(_, _, e)) => e,
            None => {
                self.ranges.push((Q::new(1 - k, k)?, Q::ZERO));
                let e = self.ranges.len() - 1;
                self.quotients.push((x.clone(), k, e));
                e
            }
        };
        Some((x.scale(Q::new(1, k)?)?.plus(Q::int(1), &Form::atom(e))?, e))
    }

    /// Runs a non-branch instruction.
    fn exec(&mut self, op: &Op) {
        let new = match *op {
            Op::Alu {
                width,
                op: aop,
                dst,
                src,
            } => self.alu(width, aop, dst, src).map(|f| (dst, f)),
            _ => None,
        };
        for r in op.clobbers().iter() {
            self.regs[r.index()] = None;
            self.writes[r.index()] += 1;
        }
        if let Some((dst, f)) = new {
            self.regs[dst.index()] = Some(f);
        }
    }

    fn alu(&mut self, width: Width, aop: AluOp, dst: Reg, src: Operand) -> Option<Form> {
        let bits = width.bits();
        let d = self.regs[dst.index()].clone();
        let imm = match src {
            Operand::Imm(k) => Some(i128::from(k)),
            Operand::Reg(_) => None,
        };
        let f = match aop {
            AluOp::Mov => self.val(src, width)?,
            AluOp::Add | AluOp::Sub => {
                let d = self.within(d?, bits)?;
                // A register operand must be a value of the width; an immediate is added as
                // the signed number it is (wrapping to the same value if the sum fits).
                let s = match imm {
                    Some(k) => Form::konst(k),
                    None => self.within(self.val(src, width)?, bits)?,
                };
                let k = Q::int(if aop == AluOp::Add { 1 } else { -1 });
                d.plus(k, &s)?
            }
            AluOp::Rsh | AluOp::Div => {
                let d = self.within(d?, bits)?;
                let k = match (aop, imm?) {
                    (AluOp::Rsh, s @ 1..=31) => 1i128 << s,
                    (AluOp::Div, k @ 1..) => k,
                    _ => return None,
                };
                self.quotient(&d, k)?.0
            }
            // `x & (2^s - 1)` is `x - 2^s·floor(x / 2^s)`, that is `-2^s·e`.
            AluOp::And => {
                let d = self.within(d?, bits)?;
                let k = imm.filter(|&m| m > 0 && (m + 1) & m == 0)? + 1;
                let (_, e) = self.quotient(&d, k)?;
                Form::konst(0).plus(Q::int(-k), &Form::atom(e))?
            }
            AluOp::Lsh | AluOp::Mul => {
                let d = self.within(d?, bits)?;
                let k = match (aop, imm?) {
                    (AluOp::Lsh, s @ 0..=31) => 1i128 << s,
                    (AluOp::Mul, k @ 0..) => k,
                    _ => return None,
                };
                d.scale(Q::int(k))?
            }
            _ => return None,
        };
        self.within(f, bits)
    }

    /// Takes the branch `lhs cond rhs` (`taken` or not): `false` if an earlier branch on the
    /// same values decided the other way.
    fn assume(&mut self, width: Width, cond: Cond, lhs: Reg, rhs: Operand, taken: bool) -> bool {
        let key = Key {
            width,
            lhs: (lhs, self.writes[lhs.index()]),
            rhs: match rhs {
                Operand::Reg(r) => Ok((r, self.writes[r.index()])),
                Operand::Imm(k) => Err(k),
            },
        };
        for &(k, c, out) in &self.decided {
            if k == key
                && ((c == cond && out != taken) || (cond.negate() == Some(c) && out == taken))
            {
                return false;
            }
        }
        self.decided.push((key, cond, taken));
        let holds = if taken { Some(cond) } else { cond.negate() };
        if let (Some(holds), Some(x), Some(y)) = (
            holds,
            self.val(Operand::Reg(lhs), width),
            self.val(rhs, width),
        ) {
            self.facts_of(width, holds, x, y);
        }
        true
    }

    /// What `x holds y` says, when both are values of the width (signed comparisons only
    /// when both are non-negative).
    fn facts_of(&mut self, width: Width, holds: Cond, x: Form, y: Form) {
        let signed = matches!(holds, Cond::Sgt | Cond::Sge | Cond::Slt | Cond::Sle);
        let bits = width.bits() - u32::from(signed);
        let (Some(x), Some(y)) = (self.within(x, bits), self.within(y, bits)) else {
            return;
        };
        let (small, big, strict) = match holds {
            Cond::Lt | Cond::Slt => (&x, &y, true),
            Cond::Le | Cond::Sle => (&x, &y, false),
            Cond::Gt | Cond::Sgt => (&y, &x, true),
            Cond::Ge | Cond::Sge => (&y, &x, false),
            Cond::Eq => {
                self.facts.extend(x.minus(&y));
                self.facts.extend(y.minus(&x));
                return;
            }
            // Unsigned, so `x != 0` is `x >= 1`.
            Cond::Ne if y == Form::konst(0) => (&y, &x, true),
            Cond::Ne if x == Form::konst(0) => (&x, &y, true),
            Cond::Ne | Cond::Set => return,
        };
        let gap = big
            .minus(small)
            .and_then(|g| g.plus(Q::int(1), &Form::konst(-i128::from(strict))));
        self.facts.extend(gap);
    }
}

/// The best lower bound on `p` from the atoms' ranges and one of the facts (each `>= 0`).
fn lower(p: &Form, facts: &[Form], ranges: &[(Q, Q)]) -> Option<Q> {
    lower_with(p, facts, None, ranges)
}

/// [`lower`] with the facts `facts` and then `more`, if any (without a copy of `facts`).
fn lower_with(p: &Form, facts: &[Form], more: Option<&Form>, ranges: &[(Q, Q)]) -> Option<Q> {
    let mut best = p.range(ranges)?.0;
    for g in facts.iter().chain(more) {
        for &(a, ga) in &g.terms {
            let pa = p.coef(a);
            let Some(k) = pa.div(ga).filter(|k| k.is_pos()) else {
                continue;
            };
            let Some((lo, _)) = p.plus(k.neg(), g).and_then(|r| r.range(ranges)) else {
                continue;
            };
            if best.le(lo) == Some(true) {
                best = lo;
            }
        }
    }
    Some(best)
}

impl Func<'_> {
    /// The trip bound of the innermost loop of header `h` with `body` (sorted) by a ranking
    /// measure (the module's rule), or `None`.
    pub(super) fn measure_trips(
        &self,
        h: usize,
        body: &[usize],
        bounds: &mut LazyBounds<'_>,
        work: &mut usize,
    ) -> Option<u128> {
        if h == 0 || body.iter().any(|&u| u != h && bounds.headers[u]) {
            return None;
        }
        // Proven with the input's length below 2^63; counted with it at most 64 KiB.
        let at = self.entry_bounds(h, body, bounds, false, work)?;
        let before = *work;
        let proven = self.ranked(h, body, at, work)?;
        let cost = *work - before;
        let counted = self.entry_bounds(h, body, bounds, true, work)?;
        if counted == at {
            // The same question again (the input's length bounds nothing here): the same
            // answer, charged the same work (whose last step `ranked` checks against the
            // limit, as here).
            *work += cost;
            return (*work <= WORK_LIMIT).then_some(proven);
        }
        self.ranked(h, body, counted, work)
    }

    /// The registers' upper bounds on the edges entering `h` from outside `body`, the most
    /// over them.
    fn entry_bounds(
        &self,
        h: usize,
        body: &[usize],
        bounds: &mut LazyBounds<'_>,
        counted: bool,
        work: &mut usize,
    ) -> Option<[u64; Reg::COUNT]> {
        let headers = bounds.headers;
        let states = if counted {
            bounds
                .counted
                .get_or_insert_with(|| self.upper_bounds(headers, MAX_INPUT_LEN, work))
        } else {
            bounds
                .at
                .get_or_insert_with(|| self.upper_bounds(headers, i64::MAX as u64, work))
        }
        .as_ref()?;
        let mut out: Option<[u64; Reg::COUNT]> = None;
        for &p in &self.pred[h] {
            if body.binary_search(&p).is_ok() || !self.reachable(p) {
                continue;
            }
            let (Some(mut st), Some(op)) = (states[p], self.op(p)) else {
                continue;
            };
            bound_transfer(op, &mut st, &self.slots);
            if let (&Op::Branch { .. }, [_, _]) = (op, &self.succ[p][..]) {
                refine(op, h != p + op.slots() as usize, &mut st);
            }
            let o = out.get_or_insert([0; Reg::COUNT]);
            for (a, b) in o.iter_mut().zip(st) {
                *a = (*a).max(b);
            }
        }
        out
    }

    /// Every path of one iteration from `h`, starting from `init`, at the back edge.
    fn iteration_paths(
        &self,
        h: usize,
        body: &[usize],
        init: Path,
        work: &mut usize,
    ) -> Option<Vec<Path>> {
        let inside = |pc: usize| body.binary_search(&pc).is_ok();
        let mut done = Vec::new();
        let mut pushed = 0usize;
        let mut stack = vec![(h, init)];
        while let Some((u, mut st)) = stack.pop() {
            // A step costs in proportion to what the path carries.
            *work += 1 + st.facts.len() + st.ranges.len();
            if *work > WORK_LIMIT {
                return None;
            }
            let op = self.op(u)?;
            let fall = u + op.slots() as usize;
            let mut next = Vec::with_capacity(2);
            if let (
                &Op::Branch {
                    width,
                    cond,
                    lhs,
                    rhs,
                    ..
                },
                [_, _],
            ) = (op, &self.succ[u][..])
            {
                for &v in self.succ[u].iter().filter(|&&v| inside(v)) {
                    let mut s = st.clone();
                    if s.assume(width, cond, lhs, rhs, v != fall) {
                        next.push((v, s));
                    }
                }
            } else {
                st.exec(op);
                for &v in self.succ[u].iter().filter(|&&v| inside(v)) {
                    next.push((v, st.clone()));
                }
            }
            for (v, s) in next {
                pushed += 1;
                if v == h {
                    done.push(s);
                } else {
                    stack.push((v, s));
                }
            }
            if done.len() > MAX_PATHS || pushed > 16 * MAX_PATHS {
                return None;
            }
        }
        Some(done)
    }

    /// The trip bound by a ranking measure when the registers enter `h` bounded by `entry`.
    fn ranked(
        &self,
        h: usize,
        body: &[usize],
        entry: [u64; Reg::COUNT],
        work: &mut usize,
    ) -> Option<u128> {
        let mut bound: [Option<u64>; Reg::COUNT] = entry.map(Some);
        // The invariant: raise a failing atom's bound to the next larger one, or drop it.
        let (paths, ranges) = 'fix: loop {
            let ranges: Vec<(Q, Q)> = bound
                .iter()
                .map(|b| (Q::ZERO, Q::int(i128::from(b.unwrap_or(0)))))
                .collect();
            let init = Path {
                regs: std::array::from_fn(|r| bound[r].map(|_| Form::atom(r))),
                writes: [0; Reg::COUNT],
                ranges: ranges.clone(),
                facts: Vec::new(),
                decided: Vec::new(),
                quotients: Vec::new(),
            };
            let paths = self.iteration_paths(h, body, init, work)?;
            for r in 0..Reg::COUNT {
                let Some(b) = bound[r] else {
                    continue;
                };
                let holds = paths.iter().all(|p| {
                    p.regs[r]
                        .as_ref()
                        .and_then(|f| Form::konst(i128::from(b)).minus(f))
                        .and_then(|g| lower(&g, &p.facts, &p.ranges))
                        .is_some_and(|l| l.ceil() >= 0)
                });
                if !holds {
                    bound[r] = bound.iter().flatten().copied().filter(|&c| c > b).min();
                    continue 'fix;
                }
            }
            break (paths, ranges);
        };
        if paths.is_empty() {
            // No path returns to the header: one visit per entry.
            return Some(1);
        }
        let atoms: Vec<usize> = (0..Reg::COUNT).filter(|&r| bound[r].is_some()).collect();
        let mut consts = vec![0i128];
        for &u in body {
            if let Some(&Op::Branch {
                rhs: Operand::Imm(k),
                ..
            }) = self.op(u)
                && !consts.contains(&i128::from(k))
            {
                consts.push(i128::from(k));
            }
        }
        let mut measures = Vec::new();
        for &a in &atoms {
            for &b in &atoms {
                if a != b {
                    measures.extend(Form::atom(b).minus(&Form::atom(a)));
                }
            }
            for &c in &consts {
                measures.extend(Form::atom(a).minus(&Form::konst(c)));
                measures.extend(Form::konst(c).minus(&Form::atom(a)));
            }
        }
        let mut best: Option<u128> = None;
        for m in &measures {
            *work += paths.len();
            if *work > WORK_LIMIT {
                return None;
            }
            if let Some(t) = trips(m, &paths, &ranges) {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        best
    }
}

/// The trip bound if `m` is a ranking measure over `paths` (the module's rule).
fn trips(m: &Form, paths: &[Path], ranges: &[(Q, Q)]) -> Option<u128> {
    let next: Vec<Form> = paths
        .iter()
        .map(|p| m.subst(&p.regs))
        .collect::<Option<_>>()?;
    // The least value `M` has at any visit after a back edge.
    let mut floor: Option<i128> = None;
    for (p, n) in paths.iter().zip(&next) {
        let l = lower(n, &p.facts, &p.ranges)?.ceil();
        floor = Some(floor.map_or(l, |f| f.min(l)));
    }
    let floor = floor?;
    let hyp = m.minus(&Form::konst(floor))?;
    // Each path's least decrease, and `M' <= k·M + r` where every path has that shape.
    let mut dmin: Option<i128> = None;
    // `Some(None)`: no path yet; `None`: some path is not of that shape.
    let mut geo: Option<Option<(Q, Q)>> = Some(None);
    let pivot = m.terms.first()?.0;
    for (p, n) in paths.iter().zip(&next) {
        // Integers: a decrease above 0 is at least 1.
        let d = lower_with(&m.minus(n)?, &p.facts, Some(&hyp), &p.ranges)?.ceil();
        if d < 1 {
            return None;
        }
        dmin = Some(dmin.map_or(d, |x| x.min(d)));
        geo = geo.and_then(|acc| {
            let k = n.coef(pivot).div(m.coef(pivot))?;
            let rest = n.plus(k.neg(), m)?;
            if k.is_neg() || rest.terms.iter().any(|&(a, _)| a < Reg::COUNT) {
                return None;
            }
            let r = rest.range(&p.ranges)?.1;
            Some(Some(match acc {
                None => (k, r),
                Some((k0, r0)) => (
                    if k0.le(k)? { k } else { k0 },
                    if r0.le(r)? { r } else { r0 },
                ),
            }))
        });
    }
    let dmin = dmin?;
    let top = m.range(ranges)?.1.floor();
    let steps: u128 = match geo {
        Some(Some((k, r))) if floor >= 0 && !Q::int(1).le(k)? => {
            let mut v = top;
            let mut n = 0u128;
            while v >= floor {
                n += 1;
                if n > u128::from(MAX_STEPS) {
                    return None;
                }
                let shrunk = k.mul(Q::int(v))?.add(r)?.floor();
                v = (v - dmin).min(shrunk);
            }
            n
        }
        _ if top < floor => 0,
        _ => u128::try_from((top - floor) / dmin + 1).ok()?,
    };
    // The first visit, then one per value of the measure.
    Some(steps.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::super::{instruction_bound, proves};
    use bpfx_bytecode::{Cfg, Program};

    fn graph(text: &str) -> Cfg {
        let prog = bpfx_bytecode::assemble(text).expect("assembles");
        Cfg::new(&Program::decode(prog).expect("decodes"))
    }

    fn p(text: &str) -> bool {
        proves(&graph(text), &[])
    }

    fn bound(text: &str) -> Option<u128> {
        instruction_bound(&graph(text))
    }

    /// `while (lo < hi) { mid = lo + (hi - lo) / 2; if (keys[mid] < want) lo = mid + 1; else
    /// hi = mid; }` over the input's u32 keys, tested at the head.
    const SEARCH: &str = "
        mov r6, r2
        rsh r6, 2
        ldxw r9, [r1+0]
        mov r7, 0
        mov r8, r6
    head:
        jge r7, r8, out
        mov r3, r8
        sub r3, r7
        rsh r3, 1
        add r3, r7
        mov r4, r3
        lsh r4, 2
        mov r5, r1
        add r5, r4
        ldxw r5, [r5+0]
        jge r5, r9, left
        mov r7, r3
        add r7, 1
        ja head
    left:
        mov r8, r3
        ja head
    out:
        mov r0, r7
        exit";

    #[test]
    fn binary_search_by_the_window_it_halves() {
        assert!(p(SEARCH));
        // About log2 of the 2^14 keys of a 64 KiB input iterations, not 2^14.
        let b = bound(SEARCH).expect("bounded");
        assert!(b < 40 * 15, "{b}");
        // The midpoint as `(lo + hi) / 2`: the sum is below 2^64 for keys of the input.
        assert!(p(&SEARCH.replace(
            "mov r3, r8\n        sub r3, r7\n        rsh r3, 1\n        add r3, r7",
            "mov r3, r8\n        add r3, r7\n        rsh r3, 1"
        )));
    }

    #[test]
    fn binary_search_that_may_stall_is_not_proven() {
        // `lo = mid`: with `hi = lo + 1`, `mid = lo` and the window stays.
        assert!(!p(&SEARCH.replace("add r7, 1\n", "add r7, 0\n")));
        // `hi = mid + 1`: the same with the other side.
        assert!(!p(
            &SEARCH.replace("mov r8, r3\n", "mov r8, r3\n        add r8, 1\n")
        ));
        // Rounding up (`mid = lo + (hi - lo + 1) / 2`) with `hi = mid`: `mid = hi` stalls.
        assert!(!p(
            &SEARCH.replace("sub r3, r7\n", "sub r3, r7\n        add r3, 1\n")
        ));
        // A bound of unknown size: `lo + hi` may wrap and the search cycle.
        let unbounded = SEARCH.replace("mov r8, r6\n", "ldxdw r8, [r1+8]\n");
        assert!(!p(&unbounded.replace(
            "mov r3, r8\n        sub r3, r7\n        rsh r3, 1\n        add r3, r7",
            "mov r3, r8\n        add r3, r7\n        rsh r3, 1"
        )));
        // The step on one side only, the other leaves the window unchanged.
        assert!(!p(&SEARCH.replace("mov r8, r3\n", "mov r8, r8\n")));
    }

    /// clang's rotated form (`benches/programs/binary_search.c`): the test at the latch, and
    /// two branches on the same comparison of a loaded key.
    const ROTATED: &str = "
        mov r3, r1
        rsh r2, 3
        ldxw r6, [r1+0]
        mov r7, r2
        mov r8, 0
        ja head
    latch:
        mov r8, r0
        jlt r0, r7, head
        mov r0, r8
        exit
    head:
        mov r0, r7
        add r0, r8
        rsh r0, 1
        mov r9, r0
        lsh r9, 2
        mov r1, r3
        add r1, r9
        ldxw r9, [r1+0]
        jlt32 r9, r6, +1
        mov r7, r0
        add r0, 1
        jlt32 r9, r6, latch
        mov r0, r8
        ja latch";

    #[test]
    fn rotated_binary_search_with_correlated_branches() {
        assert!(p(ROTATED));
        // Reloading the key between the two branches makes the mixed paths possible, one
        // of which keeps the window: not proven.
        assert!(!p(&ROTATED.replace(
            "add r0, 1\n        jlt32",
            "add r0, 1\n        ldxw r9, [r1+0]\n        jlt32"
        )));
        // The second branch on a different condition: not the same decision.
        assert!(!p(
            &ROTATED.replace("jlt32 r9, r6, latch", "jle32 r9, r6, latch")
        ));
    }

    /// Branchless lower bound: `while (size > 1) { half = size / 2; if (keys[base + half] <
    /// want) base += half; size -= half; }`.
    const LOWER_BOUND: &str = "
        mov r6, r2
        rsh r6, 2
        ldxw r9, [r1+0]
        mov r7, 0
        mov r8, r6
    head:
        jle r8, 1, done
        mov r3, r8
        rsh r3, 1
        mov r4, r7
        add r4, r3
        lsh r4, 2
        mov r5, r1
        add r5, r4
        ldxw r5, [r5+0]
        jge r5, r9, skip
        add r7, r3
    skip:
        sub r8, r3
        ja head
    done:
        mov r0, r7
        exit";

    #[test]
    fn halving_window_size() {
        assert!(p(LOWER_BOUND));
        assert!(bound(LOWER_BOUND).expect("bounded") < 20 * 15);
        // Division instead of a shift.
        assert!(p(&LOWER_BOUND.replace("rsh r3, 1", "div r3, 2")));
        // `size -= half - 1`: a window of 2 stays 2.
        assert!(!p(
            &LOWER_BOUND.replace("sub r8, r3\n", "sub r8, r3\n        add r8, 1\n")
        ));
        // `while (size > 0)`: a window of 1 has `half = 0` and stays.
        assert!(!p(
            &LOWER_BOUND.replace("jle r8, 1, done", "jle r8, 0, done")
        ));
    }

    /// Two offsets walking towards each other (a palindrome check).
    const PAIR: &str = "
        mov r7, 0
        mov r8, r2
        ja head
    head:
        jge r7, r8, out
        sub r8, 1
        mov r3, r1
        add r3, r7
        ldxb r4, [r3+0]
        mov r3, r1
        add r3, r8
        ldxb r5, [r3+0]
        jne r4, r5, out
        add r7, 1
        ja head
    out:
        mov r0, r7
        exit";

    #[test]
    fn offsets_walking_towards_each_other() {
        assert!(p(PAIR));
        // Only one of them moves on a path: still closer by one.
        assert!(p(&PAIR.replace("add r7, 1\n", "")));
        // Neither moves on the path that skips the step.
        assert!(!p(&PAIR
            .replace("sub r8, 1\n", "")
            .replace("add r7, 1\n", "")));
        // Moving apart.
        assert!(!p(&PAIR
            .replace("sub r8, 1\n", "add r8, 1\n")
            .replace("add r7, 1\n", "")));
        // `!=` instead of `<`: they may cross (odd distance) and never meet.
        assert!(!p(&PAIR.replace("jge r7, r8, out", "jeq r7, r8, out")));
    }

    #[test]
    fn carries_folded_until_they_fit() {
        // RFC 1071's `while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16)` on a sum of any
        // size: `sum` loses at least one per fold while above 0xffff.
        let fold = "
            ldxdw r0, [r1+0]
            jle r0, 0xffff, out
        head:
            mov r3, r0
            rsh r3, 16
            and r0, 0xffff
            add r0, r3
            jgt r0, 0xffff, head
        out:
            exit";
        assert!(p(fold));
        // A mask wider than the shift: the sum may grow (0x1ffff folds to 0x20000).
        assert!(!p(&fold.replace("and r0, 0xffff", "and r0, 0x1ffff")));
        // The shift of another value than the one masked.
        assert!(!p(&fold.replace("mov r3, r0\n", "ldxdw r3, [r1+8]\n")));
    }

    #[test]
    fn bisection_at_32_bits_needs_room_for_the_sum() {
        // Over a byte length below 2^31: `lo + hi` fits 32 bits.
        let bisect = "
            mov32 r6, r2
            rsh r6, 1
            ldxb r9, [r1+0]
            mov r7, 0
            mov r8, r6
        head:
            jge32 r7, r8, out
            mov32 r3, r8
            add32 r3, r7
            rsh32 r3, 1
            mov r5, r1
            add r5, r3
            ldxb r5, [r5+0]
            jge r5, r9, left
            mov32 r7, r3
            add32 r7, 1
            ja head
        left:
            mov32 r8, r3
            ja head
        out:
            mov r0, r7
            exit";
        assert!(p(bisect));
        // Below 2^32 only: the 32-bit sum may wrap.
        assert!(!p(&bisect.replace("rsh r6, 1\n", "")));
    }
}
