//! Checked mode's termination proof for counted loops (`crates/verifier/src/termination.rs`)
//! against runs: random small looping programs, near misses included (step 0 or of the wrong
//! sign, a step on one path only, the counter or bound written in the loop, a back edge that
//! bypasses the test, calls that clobber r0–r5, `jne`/`jeq`/`jset` tests, wrap-around near the
//! top of the range, 32-bit steps and tests), each run on the interpreter under a budget of
//! 10^6 instructions. Whenever the verifier claims the program ends, the run must end inside
//! that budget (and the verified JIT, compiled without the budget charge under every option set,
//! must return the same): every constant of a case lies in one small cluster (near 0, near 2^64 as small
//! negatives, or just below 2^31), so a loop that ends at all ends within a few dozen
//! iterations, and one that does not never does.

use bpfx_bytecode::{Program, assemble};
use bpfx_exec::{Budget, Env, TrapKind};
use bpfx_testkit::generator::Rng;
use bpfx_testkit::jit_option_sets;
use bpfx_verifier::{Config, Mode, verify};

const BUDGET: u64 = 1_000_000;
const CASES: u64 = 4000;

struct Gen {
    rng: Rng,
    text: String,
    labels: u32,
    /// The cluster every constant is drawn from: its lowest value.
    base: i64,
}

impl Gen {
    fn label(&mut self) -> String {
        self.labels += 1;
        format!("l{}", self.labels)
    }

    fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }

    fn value(&mut self, lo: i64, hi: i64) -> i64 {
        self.base + self.rng.range(lo, hi)
    }

    /// A bound: often at an edge of the cluster, where the wrap-around rules matter (near 0,
    /// `u64::MAX`, `u32::MAX`, `i32::MAX`).
    fn bound(&mut self) -> i64 {
        match self.rng.below(4) {
            0 => self.value(0, 2),
            1 => self.value(38, 40),
            _ => self.value(0, 40),
        }
    }

    fn w(&mut self) -> &'static str {
        if self.rng.chance(1, 3) { "32" } else { "" }
    }

    /// One loop with counter `i` and bound register `b`; `inner` names the counter and bound of
    /// a loop nested inside, if any.
    fn looping(&mut self, i: &str, b: &str, inner: Option<(&str, &str)>) {
        let start = self.value(4, 36);
        // 64-bit moves: a 32-bit one of a negative value would leave the cluster.
        self.line(format!("mov {i}, {start}"));
        let bound = self.bound();
        self.line(format!("mov {b}, {bound}"));
        let head = self.label();
        let out = self.label();
        self.line(format!("{head}:"));
        let step = self.rng.range(-3, 3);
        let (op, c) = if self.rng.chance(1, 4) {
            ("sub", -step)
        } else {
            ("add", step)
        };
        let c_up = step > 0;
        let sw = self.w();
        let step_line = format!("{op}{sw} {i}, {c}");
        let test_at_head = self.rng.chance(1, 3);
        // The test: a condition, an operand order, a width, an immediate or the register.
        // Mostly a test in the step's direction, at the step's width; any test otherwise.
        let fitting = self.rng.chance(2, 3);
        let cond = match (fitting, c_up) {
            (true, true) => self.rng.pick(&["jlt", "jle", "jslt", "jsle"]),
            (true, false) => self.rng.pick(&["jgt", "jge", "jsgt", "jsge"]),
            (false, _) => self.rng.pick(&[
                "jlt", "jle", "jgt", "jge", "jslt", "jsle", "jsgt", "jsge", "jne", "jeq", "jset",
            ]),
        };
        let tw = if fitting { sw } else { self.w() };
        let rhs = if self.rng.chance(1, 2) {
            b.to_string()
        } else {
            self.bound().to_string()
        };
        let swap = rhs == b && !fitting && self.rng.chance(1, 2);
        let (l, r) = if swap {
            (rhs.clone(), i.to_string())
        } else {
            (i.to_string(), rhs)
        };
        if test_at_head {
            self.line(format!("{cond}{tw} {l}, {r}, {out}"));
        }
        // The body: the step somewhere, maybe conditional, and some near misses.
        let n = self.rng.below(4);
        let mut items: Vec<u8> = (0..n).map(|_| self.rng.below(8) as u8).collect();
        let at = self.rng.below(items.len() as u64 + 1) as usize;
        items.insert(at, 100);
        let mut inner = inner;
        for item in items {
            match item {
                100 => {
                    if self.rng.chance(1, 6) {
                        let skip = self.label();
                        let k = self.rng.range(0, 2);
                        self.line(format!("jeq r9, {k}, {skip}"));
                        self.line(&step_line);
                        self.line(format!("{skip}:"));
                    } else {
                        self.line(&step_line);
                    }
                }
                0 if self.rng.chance(1, 3) => {
                    let v = self.value(0, 40);
                    self.line(format!("mov {i}, {v}"));
                }
                1 if self.rng.chance(1, 3) => {
                    let k = self.rng.range(-1, 1);
                    self.line(format!("add {b}, {k}"));
                }
                2 => self.line("call local sub"),
                3 if self.rng.chance(1, 3) => {
                    let k = self.rng.range(0, 2);
                    self.line(format!("jeq r9, {k}, {head}"));
                }
                4 => {
                    let skip = self.label();
                    let k = self.rng.range(0, 2);
                    self.line(format!("jgt r9, {k}, {skip}"));
                    self.line("add r1, 1");
                    self.line(format!("{skip}:"));
                }
                5 => {
                    if let Some((ii, ib)) = inner.take() {
                        self.looping(ii, ib, None);
                    }
                }
                _ => self.line("add r1, 3"),
            }
        }
        if test_at_head {
            self.line(format!("ja {head}"));
        } else if self.rng.chance(1, 4) {
            // Test with the exit as the taken edge.
            let neg = match cond {
                "jlt" => "jge",
                "jle" => "jgt",
                "jgt" => "jle",
                "jge" => "jlt",
                "jslt" => "jsge",
                "jsle" => "jsgt",
                "jsgt" => "jsle",
                "jsge" => "jslt",
                "jne" => "jeq",
                "jeq" => "jne",
                _ => "jset",
            };
            self.line(format!("{neg}{tw} {l}, {r}, {out}"));
            self.line(format!("ja {head}"));
        } else {
            self.line(format!("{cond}{tw} {l}, {r}, {head}"));
        }
        self.line(format!("{out}:"));
    }
}

fn generate(seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let base = rng.pick(&[0i64, -41, 0x7fff_ffd7]);
    let mut g = Gen {
        rng,
        text: String::new(),
        labels: 0,
        base,
    };
    g.line("mov r0, 0\nmov r1, 0\ncall local sub");
    let r9 = g.rng.range(0, 2);
    g.line(format!("mov r9, {r9}"));
    let (i, b) = g
        .rng
        .pick(&[("r6", "r7"), ("r2", "r3"), ("r3", "r8"), ("r0", "r6")]);
    let inner = g.rng.pick(&[("r8", "r4"), ("r4", "r5"), ("r7", "r2")]);
    let nested = g.rng.chance(1, 3).then_some(inner);
    g.looping(i, b, nested);
    g.line("exit");
    // A local function clobbering r0-r5 (callee-saved r6-r9 survive the call).
    g.line("sub:");
    g.line("mov r1, 7\nmov r2, 9\nmov r3, 11\nmov r4, 0\nmov r5, 2\nmov r0, 1\nmov r6, 5\nexit");
    g.text
}

#[test]
fn a_loop_proven_to_end_ends() {
    let cfg = Config {
        mode: Mode::Checked,
        mem_size: Some(0),
        ..Config::default()
    };
    let (mut proven, mut endless) = (0, 0);
    for seed in 0..CASES {
        let text = generate(seed);
        let prog = Program::decode(assemble(&text).expect("assembles")).expect("decodes");
        let v = verify(prog, &cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        let mut env = Env::new();
        env.set_budget(Budget::Limit(BUDGET));
        let r = bpfx_interp::run(&v, &mut [], &mut env);
        let exhausted = matches!(r, Err(t) if t.kind == TrapKind::BudgetExhausted);
        if v.terminates() {
            proven += 1;
            assert!(
                !exhausted,
                "seed {seed}: proven to end, but ran out:\n{text}"
            );
            // Proven, so the verified JIT compiles it without the budget charge, under every
            // option set: same result, no budget needed.
            for (name, opts) in jit_option_sets() {
                let jit = bpfx_jit::compile(&v, &opts).expect("compiles");
                let mut env = Env::new();
                assert_eq!(
                    jit.run(&mut [], &mut env),
                    r,
                    "seed {seed}, {name}:\n{text}"
                );
            }
        } else if exhausted {
            endless += 1;
        }
    }
    eprintln!("{proven} of {CASES} proven, {endless} not proven and endless");
    // The property is not vacuous: many cases are proven, and near misses that never end exist.
    assert!(proven > CASES / 10, "only {proven} of {CASES} proven");
    assert!(
        endless > CASES / 20,
        "only {endless} of {CASES} run forever"
    );
}
