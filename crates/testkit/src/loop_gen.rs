//! A seeded generator of counted loops over the input: the shapes the JIT versions (one range
//! check before the loop, no guards inside), and the near misses it must not.
//!
//! [`generate_loop`] turns a seed into a [`Case`] whose program is one loop walking the input
//! with induction variables, the way compilers write it:
//! ```text
//!         mov r9, r1; mov r8, r2               input base and length
//!         [stxdw [r10-16], r9]                 the base also in a stack slot
//!         mov r3/r4/r5, <start>                induction variables: 0, small, near the
//!                                              length, below 0, or near 2^64
//!         [mov r2, r8; add r2, -k]             an invariant bound
//!         mov r7, 300; mov r0, 0
//!         [jne r8, 7777, head | ja mid]        sometimes entered by a jump, or in the middle
//! head:   <items>                              accesses [base + iv + off] of every size (loads,
//!                                              stores, atomics), increments (sometimes
//!                                              conditional), copies between the variables,
//!                                              calls, forward skips, the hidden counter r7
//!         <exit test>                          jlt/jle/jne x, bound, head; jgt/jge bound, x,
//!                                              head; or jcc x, bound, +1; ja head
//!         exit
//! ```
//! The counter r7 (`add r7, -1; jeq r7, 0, out`, at the top level of the body) ends every
//! loop, so no case needs a budget (`tests/loops.rs` adds budgets to some). Accesses hug the input's
//! end, starts and bounds sit at and around it and at the edges of the 64-bit range, so every
//! run of the guarded loop, the fast copy, and the check between them is exercised: loops that
//! stay inside, loops whose last iteration steps out (a trap at the access's pc, with the stores
//! before it made), relations that do not hold on entry, steps a `jne` bound never meets, and
//! counts that would wrap.

use crate::check::{Case, Mismatch, Outcome, check_with};
use crate::engine::verified_engines;
use crate::generator::Rng;
use bpfx_bytecode::Program;
use bpfx_exec::Helpers;
use bpfx_verifier::{Config, Mode, verify};

/// Largest generated input, in bytes.
pub const MAX_LOOP_INPUT: usize = 160;

/// The induction variables.
const IVS: [&str; 3] = ["r3", "r4", "r5"];

struct Gen {
    rng: Rng,
    text: String,
    labels: u32,
    /// The base is in `[r10-16]` too.
    slot: bool,
    /// The loop calls the subfunction.
    sub: bool,
    /// The counter's test is behind: an early jump back to the head cannot skip it.
    counted: bool,
}

/// The loop case for `seed`.
pub fn generate_loop(seed: u64) -> Case {
    generate_loop_with(Rng::new(seed))
}

/// Runs a generated loop through the verified JIT, against the interpreter, when the verifier
/// accepts it in checked mode; `None` when it does not. The budget is small: Checked mode
/// explores loops that branch back early path by path, and a few generated ones would take a
/// second each.
pub fn check_verified_loop(case: &Case) -> Option<Result<Outcome, Mismatch>> {
    let cfg = Config {
        insn_budget: 20_000,
        ..Config::conformance(Mode::Checked, case.input.len() as u64)
    };
    let v = verify(case.prog.clone(), &cfg).ok()?;
    Some(check_with(case, &verified_engines(v)))
}

/// The loop case whose choices `rng` makes (a fuzzer's bytes through [`Rng::from_bytes`]).
pub fn generate_loop_with(mut rng: Rng) -> Case {
    let len = match rng.below(4) {
        0 => rng.below(16) as usize,
        _ => rng.below(MAX_LOOP_INPUT as u64 + 1) as usize,
    };
    let input = (0..len).map(|_| rng.next_u64() as u8).collect();
    let mut g = Gen {
        rng,
        text: String::new(),
        labels: 0,
        slot: false,
        sub: false,
        counted: false,
    };
    g.program();
    let insns = bpfx_bytecode::assemble(&g.text)
        .unwrap_or_else(|e| panic!("generated loop does not assemble: {e}\n{}", g.text));
    let prog = Program::decode(insns)
        .unwrap_or_else(|e| panic!("generated loop does not decode: {e}\n{}", g.text));
    Case {
        prog,
        input,
        budget: None,
        helpers: Helpers::conformance(),
    }
}

impl Gen {
    fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }

    fn label(&mut self) -> String {
        self.labels += 1;
        format!("l{}", self.labels)
    }

    fn iv(&mut self) -> &'static str {
        self.rng.pick(&IVS)
    }

    fn program(&mut self) {
        self.line("mov r9, r1");
        self.line("mov r8, r2");
        if self.rng.chance(1, 3) {
            self.slot = true;
            self.line("stxdw [r10-16], r9");
        }
        for iv in IVS {
            let start = self.start();
            self.line(start.replace("IV", iv));
        }
        // A relation between two variables that the loop keeps (or, now and then, one that
        // does not hold on entry).
        if self.rng.chance(1, 2) {
            let k = if self.rng.chance(4, 5) {
                0
            } else {
                self.rng.range(-3, 3)
            };
            self.line(format!("mov r4, r3\nadd r4, {k}"));
        }
        if self.rng.chance(1, 2) {
            let k = self.rng.range(0, 12);
            self.line(format!("mov r2, r8\nadd r2, {}", -k));
        }
        let count = self.rng.range(1, 300);
        self.line(format!("mov r7, {count}"));
        self.line("mov r0, 0");
        // Entered by a jump now and then; or in its middle, as a rotated loop.
        let middle = self.rng.chance(1, 8);
        if middle {
            self.line("ja mid");
        } else if self.rng.chance(1, 4) {
            self.line("jne r8, 7777, head\nmov r0, 5");
        }
        self.line("head:");
        // The main induction variable: one unconditional increment per iteration, which the
        // exit test mostly reads.
        let main = self.iv();
        let step = if self.rng.chance(7, 8) {
            self.rng.pick(&[1, 1, 2, 4, 8])
        } else {
            self.step()
        };
        let n = self.rng.range(1, 6);
        let counter_at = self.rng.range(0, n);
        let main_at = self.rng.range(0, n);
        for i in 0..=n {
            if i == counter_at {
                self.line("add r7, -1\njeq r7, 0, out");
                self.counted = true;
            }
            if i == main_at {
                self.line(format!("add {main}, {step}"));
            }
            if i == 1.min(n) && middle {
                self.line("mid:");
            }
            if i < n {
                self.item(0);
            }
        }
        self.exit_test(main);
        self.line("out:");
        self.line("exit");
        // What a call in the loop reaches: it clobbers r1–r5 (r2 may be the bound, r3–r5 the
        // induction variables) and stores into its caller's frame.
        if self.sub {
            self.line("sub:\nmov r1, 3\nmov r2, 0\nadd r0, 1\nstxdw [r10+496], r1\nexit");
        }
    }

    /// An initial value for an induction variable (`IV` stands for it).
    fn start(&mut self) -> String {
        match self.rng.below(10) {
            0..=4 => "mov IV, 0".into(),
            5 => format!("mov IV, {}", self.rng.range(1, 9)),
            6 => format!("mov IV, r8\nadd IV, {}", -self.rng.range(0, 16)),
            7 => format!("mov IV, {}", -self.rng.range(1, 16)),
            8 => format!("lddw IV, {:#x}", u64::MAX - self.rng.below(20)),
            _ => format!("lddw IV, {:#x}", (1u64 << 63) - self.rng.below(20)),
        }
    }

    fn step(&mut self) -> i64 {
        match self.rng.below(10) {
            0..=2 => 1,
            3..=4 => 4,
            5 => 2,
            6 => 8,
            7 => 3,
            8 => -1,
            _ => 16,
        }
    }

    fn item(&mut self, depth: u32) {
        match self.rng.below(10) {
            0..=4 => self.access(),
            5 => {
                let (iv, step) = (self.iv(), self.step());
                self.line(format!("add {iv}, {step}"));
            }
            6 => {
                let (a, b) = (self.iv(), self.iv());
                if a != b {
                    let k = self.rng.range(-2, 8);
                    self.line(format!("mov {a}, {b}\nadd {a}, {k}"));
                }
            }
            7 if self.rng.chance(1, 4) => {
                if self.rng.chance(1, 2) {
                    self.line("call 5");
                } else {
                    self.sub = true;
                    self.line("call local sub");
                }
            }
            7 if self.counted && self.rng.chance(1, 4) => {
                // Back to the head early, skipping the rest of the iteration (the exit test
                // included, unless the loop is rotated past it); never before the counter, so
                // the loop still ends.
                let k = self.rng.range(0, 7);
                self.line(format!("jeq r0, {k}, head"));
            }
            7 if self.slot && self.rng.chance(1, 3) => {
                // A store to the stack: to the slot itself, or elsewhere in the frame.
                let (base, off) = if self.rng.chance(1, 2) {
                    ("r10", -16)
                } else {
                    ("r10", -32)
                };
                if self.rng.chance(1, 2) {
                    self.line(format!("stxdw [{base}{off}], r9"));
                } else {
                    self.line(format!("mov r6, r10\nstxdw [r6{off}], r9"));
                }
            }
            _ if depth < 2 => {
                let skip = self.label();
                let bit = 1 << self.rng.below(3);
                self.line(format!("jset r0, {bit}, {skip}"));
                for _ in 0..self.rng.range(1, 2) {
                    self.item(depth + 1);
                }
                self.line(format!("{skip}:"));
            }
            _ => self.access(),
        }
    }

    /// `[base + iv + off]`: a load into r0, a store, or an atomic add.
    fn access(&mut self) {
        let iv = self.iv();
        if self.slot && self.rng.chance(1, 2) {
            self.line("ldxdw r1, [r10-16]");
        } else {
            self.line("mov r1, r9");
        }
        self.line(format!("add r1, {iv}"));
        let (suffix, bytes) = self.rng.pick(&[("b", 1), ("h", 2), ("w", 4), ("dw", 8)]);
        let off = match self.rng.below(10) {
            0..=4 => 0,
            5..=8 => self.rng.range(-bytes, 8),
            _ => self.rng.range(-16, 64),
        };
        let mem = if off < 0 {
            format!("[r1{off}]")
        } else {
            format!("[r1+{off}]")
        };
        match self.rng.below(10) {
            0..=4 => {
                self.line(format!("ldx{suffix} r6, {mem}"));
                self.line("add r0, r6\nrsh r0, 1\nxor r0, r6");
            }
            5..=7 => self.line(format!("stx{suffix} {mem}, r0")),
            8 => {
                let v = self.rng.range(-128, 127);
                self.line(format!("st{suffix} {mem}, {v}"));
            }
            _ => {
                let w = if bytes == 8 { "" } else { "32" };
                self.line(format!("mov r6, 1\nlock add{w} {mem}, r6"));
            }
        }
    }

    /// The loop's exit test, on `x = iv + k` against a bound.
    fn exit_test(&mut self, main: &'static str) {
        let iv = if self.rng.chance(3, 4) {
            main
        } else {
            self.iv()
        };
        let k = self.rng.range(-4, 12);
        self.line(format!("mov r6, {iv}\nadd r6, {k}"));
        let bound = match self.rng.below(3) {
            0 => "r8".to_string(),
            1 => "r2".to_string(),
            _ => format!("{}", self.rng.range(0, MAX_LOOP_INPUT as i64 + 8)),
        };
        let reg_bound = !bound.starts_with(|c: char| c.is_ascii_digit());
        match self.rng.below(4) {
            0 => {
                let cond = self.rng.pick(&["jlt", "jle", "jne", "jslt"]);
                self.line(format!("{cond} r6, {bound}, head"));
            }
            1 if reg_bound => {
                let cond = self.rng.pick(&["jgt", "jge", "jne"]);
                self.line(format!("{cond} {bound}, r6, head"));
            }
            _ => {
                // Leave on the taken side, go round through a `ja`.
                let cond = self.rng.pick(&["jge", "jgt", "jeq"]);
                self.line(format!("{cond} r6, {bound}, out\nja head"));
            }
        }
    }
}
