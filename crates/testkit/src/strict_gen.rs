//! A seeded generator of programs written to pass `Strict` verification, for soundness testing.
//!
//! [`generate`](crate::generator::generate)'s programs probe one byte past every bound, so
//! Strict mode rejects nearly all of them. These are shaped the way a careful C programmer (or
//! clang) writes memory-safe code, so that most are accepted and each accepted one is a claim
//! the interpreter can refute:
//!
//! ```text
//! input   8..=64 random bytes (the verifier is told the exact size); helpers: id 5 echo
//! prologue  mov r9, r1; zero fp-8..fp-64; r0–r6 and r8 get constants
//! items     8..=30 of:
//!   alu      any op at either width on r0–r6, register or immediate source
//!   load     ldx{b,h,w,dw} at a constant in-bounds input offset
//!   masked   ldxb r6, [r9+k]; and r6, 2^j-1; r7 = r9 + r6; ldx/stx at [r7+0]
//!   checked  an index bounded by jgt/jge/jlt/jsgt(+jslt)/jgt32, then r7 = r9 + index; ldx/stx
//!   stack    st/stx/ldx at constant frame offsets in fp-64..fp-1
//!   stackvar r7 = r10 - 64 + masked index; ldx/stx at [r7+0]
//!   loop     r8 counts 0..K (or down from K, or through a stack spill); the body indexes
//!            the input with r8
//!   branch   a forward jcc over a few alu items
//!   call     call 5 (echo), then r1–r5 are given constants again
//! epilogue  exit
//! ```
//! A small fraction of accesses are deliberately off by one (a mask, bound or offset one too
//! large); the verifier must reject exactly those programs whose bad access is reachable, so
//! they test precision in one direction and soundness in the other. r7 is the only register
//! that ever holds a pointer other than r9 and r10, and it is reset to a scalar after each use,
//! so ALU items never do pointer arithmetic.

use crate::check::Case;
use crate::generator::Rng;
use bpfx_bytecode::{Program, RegSet, assemble};
use bpfx_exec::Helpers;

/// Input sizes the generator picks from.
const SIZES: [usize; 6] = [8, 16, 24, 32, 48, 64];

/// A generated strict-friendly case with its assembly source (for failure reports).
#[derive(Clone, Debug)]
pub struct StrictCase {
    /// The program, input (whose length is the `mem_size` to verify against) and helpers.
    pub case: Case,
    /// The program as assembly, as it was generated.
    pub text: String,
}

struct Gen {
    rng: Rng,
    n: usize,
    out: String,
    labels: u32,
    /// Per thousand: how often an access is made one byte too wide.
    bad: u64,
}

const ALU: [&str; 13] = [
    "add", "sub", "mul", "div", "mod", "or", "and", "lsh", "rsh", "arsh", "xor", "mov", "sdiv",
];
const SIZES_B: [(&str, usize); 4] = [("b", 1), ("h", 2), ("w", 4), ("dw", 8)];

impl Gen {
    fn line(&mut self, s: impl AsRef<str>) {
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }

    fn label(&mut self) -> String {
        self.labels += 1;
        format!("l{}", self.labels)
    }

    fn bad(&mut self) -> bool {
        self.rng.chance(self.bad, 1000)
    }

    /// A data register, r0–r5.
    fn data_reg(&mut self) -> u8 {
        self.rng.below(6) as u8
    }

    fn size(&mut self) -> (&'static str, usize) {
        let (s, n) = self.rng.pick(&SIZES_B);
        if n > self.n { ("b", 1) } else { (s, n) }
    }

    fn alu(&mut self) {
        let op = self.rng.pick(&ALU);
        let w = if self.rng.chance(1, 3) { "32" } else { "" };
        let d = self.rng.below(7);
        let src = if self.rng.chance(1, 2) {
            format!("r{}", self.rng.below(7))
        } else {
            let imm = match self.rng.below(4) {
                0 => self.rng.range(-3, 70),
                1 => self.rng.pick(&[0, 1, -1, 31, 32, 63, 255, 4096]),
                2 => self.rng.range(i64::from(i32::MIN), i64::from(i32::MAX)),
                _ => self.rng.range(0, 16),
            };
            imm.to_string()
        };
        match self.rng.below(12) {
            0 => {
                let d = self.rng.below(7);
                self.line(format!("neg{w} r{d}"));
            }
            1 => {
                let form = self.rng.pick(&["832", "864", "1632", "1664", "3264"]);
                let s = self.rng.below(7);
                self.line(format!("movsx{form} r{d}, r{s}"));
            }
            2 => {
                let op = self.rng.pick(&["le", "be", "bswap"]);
                let bits = self.rng.pick(&[16, 32, 64]);
                self.line(format!("{op}{bits} r{d}"));
            }
            _ => self.line(format!("{op}{w} r{d}, {src}")),
        }
    }

    /// A load or store of `size` bytes at `[base+off]`.
    fn access(&mut self, base: &str, off: i64, size: &str) {
        let d = self.data_reg();
        let imm = self.rng.range(-5, 300);
        match self.rng.below(4) {
            0 => self.line(format!("st{size} [{base}{off:+}], {imm}")),
            1 => self.line(format!("stx{size} [{base}{off:+}], r{d}")),
            _ => self.line(format!("ldx{size} r{d}, [{base}{off:+}]")),
        }
    }

    fn load(&mut self) {
        let (s, k) = self.size();
        let mut off = self.rng.below((self.n - k + 1) as u64) as i64;
        if self.bad() {
            off = (self.n - k + 1) as i64;
        }
        self.access("r9", off, s);
    }

    /// r6 = a masked byte of input; returns the mask.
    fn masked_index(&mut self, room: usize) -> u64 {
        let k = self.rng.below(self.n as u64);
        self.line(format!("ldxb r6, [r9+{k}]"));
        let mut bits = 0;
        while (1usize << (bits + 1)) <= room && bits < 8 {
            bits += 1;
        }
        let bits = self.rng.below(bits + 1);
        let mut mask = (1u64 << bits) - 1;
        if self.bad() {
            mask = (mask << 1) | 1;
        }
        self.line(format!("and r6, {mask}"));
        mask
    }

    fn masked(&mut self) {
        let (s, k) = self.size();
        self.masked_index(self.n - k + 1);
        self.line("mov r7, r9");
        self.line("add r7, r6");
        self.access("r7", 0, s);
        self.line("mov r7, 0");
    }

    fn checked(&mut self) {
        let (s, k) = self.size();
        // The largest index whose access fits.
        let mut top = (self.n - k) as i64;
        if self.bad() {
            top += 1;
        }
        let skip = self.label();
        let at = self.rng.below(self.n as u64 - 7);
        match self.rng.below(6) {
            0 => {
                self.line(format!("ldxdw r6, [r9+{}]", at.min(self.n as u64 - 8)));
                self.line(format!("jgt r6, {top}, {skip}"));
            }
            1 => {
                self.line(format!("ldxdw r6, [r9+{}]", at.min(self.n as u64 - 8)));
                self.line(format!("jge r6, {}, {skip}", top + 1));
            }
            2 => {
                // The bound in a register, compared the other way round.
                self.line(format!("ldxw r6, [r9+{}]", at.min(self.n as u64 - 4)));
                self.line(format!("mov r5, {}", top + 1));
                self.line(format!("jle r5, r6, {skip}"));
            }
            3 => {
                self.line(format!("ldxdw r6, [r9+{}]", at.min(self.n as u64 - 8)));
                self.line(format!("jsgt r6, {top}, {skip}"));
                self.line(format!("jslt r6, 0, {skip}"));
            }
            4 => {
                self.line(format!("ldxw r6, [r9+{}]", at.min(self.n as u64 - 4)));
                self.line(format!("jgt32 r6, {top}, {skip}"));
            }
            _ => {
                // A copy is checked; the original is used.
                self.line(format!("ldxh r5, [r9+{}]", at.min(self.n as u64 - 2)));
                self.line("mov r6, r5");
                self.line(format!("jgt r6, {top}, {skip}"));
                self.line("mov r6, r5");
            }
        }
        self.line("mov r7, r9");
        self.line("add r7, r6");
        self.access("r7", 0, s);
        self.line("mov r7, 0");
        self.line(format!("{skip}:"));
    }

    fn stack(&mut self) {
        let (s, k) = self.rng.pick(&SIZES_B);
        let slots = (64 / k) as u64;
        let mut off = -((self.rng.below(slots) as i64 + 1) * k as i64);
        if self.bad() {
            // Below the frame, or straddling its top.
            off = if self.rng.chance(1, 2) {
                -513
            } else {
                1 - k as i64
            };
        }
        self.access("r10", off, s);
    }

    fn stack_var(&mut self) {
        let (s, k) = self.rng.pick(&SIZES_B);
        self.masked_index(64 - k + 1);
        self.line("mov r7, r10");
        self.line("add r7, -64");
        self.line("add r7, r6");
        self.access("r7", 0, s);
        self.line("mov r7, 0");
    }

    fn lp(&mut self) {
        let count = self.rng.range(1, self.n.min(16) as i64);
        let head = self.label();
        let kind = self.rng.below(3);
        match kind {
            0 | 2 => self.line("mov r8, 0"),
            _ => self.line(format!("mov r8, {count}")),
        }
        if kind == 2 {
            self.line("stxdw [r10-8], r8");
        }
        self.line(format!("{head}:"));
        if kind == 2 {
            self.line("ldxdw r8, [r10-8]");
        }
        for _ in 0..self.rng.range(1, 4) {
            match self.rng.below(4) {
                0 => self.alu(),
                1 => self.load(),
                2 => self.stack(),
                _ => {
                    // Index the input with the counter (0..count-1, or 1..count counting down).
                    let base = if kind == 1 { -1 } else { 0 };
                    self.line("mov r7, r9");
                    self.line("add r7, r8");
                    let d = self.data_reg();
                    self.line(format!("ldxb r{d}, [r7{base:+}]"));
                    self.line("mov r7, 0");
                }
            }
        }
        match kind {
            0 => {
                self.line("add r8, 1");
                self.line(format!("jlt r8, {count}, {head}"));
            }
            1 => {
                self.line("add r8, -1");
                self.line(format!("jsgt r8, 0, {head}"));
            }
            _ => {
                self.line("add r8, 1");
                self.line("stxdw [r10-8], r8");
                self.line(format!("jne r8, {count}, {head}"));
            }
        }
        // The stack slot may now hold the counter; r8 is a scalar either way.
    }

    fn branch(&mut self) {
        let skip = self.label();
        let cond = self.rng.pick(&[
            "jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset",
        ]);
        let w = if self.rng.chance(1, 3) { "32" } else { "" };
        let l = self.rng.below(7);
        let r = if self.rng.chance(1, 2) {
            format!("r{}", self.rng.below(7))
        } else {
            self.rng.range(-2, 70).to_string()
        };
        self.line(format!("{cond}{w} r{l}, {r}, {skip}"));
        for _ in 0..self.rng.range(1, 3) {
            if self.rng.chance(1, 2) {
                self.alu();
            } else {
                self.masked();
            }
        }
        self.line(format!("{skip}:"));
    }

    fn call(&mut self) {
        let a = self.rng.below(7);
        self.line(format!("mov r1, r{a}"));
        self.line("call 5");
        // The call clobbered the argument registers: give them values again.
        for r in RegSet::ARGS {
            let v = self.rng.range(-4, 100);
            self.line(format!("mov {r}, {v}"));
        }
    }
}

/// The strict-friendly case for `seed`; the same seed always gives the same case.
pub fn generate_strict(seed: u64) -> StrictCase {
    let mut rng = Rng::new(seed ^ 0x5eed_57a1_c7c0_ffee);
    let n = rng.pick(&SIZES);
    let input: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
    let mut g = Gen {
        rng,
        n,
        out: String::new(),
        labels: 0,
        bad: 8,
    };
    g.line("mov r9, r1");
    for i in 1..=8 {
        g.line(format!("stdw [r10-{}], 0", 8 * i));
    }
    for r in 0..=6 {
        let v = g.rng.range(-8, 200);
        g.line(format!("mov r{r}, {v}"));
    }
    g.line("mov r8, 0");
    let items = g.rng.range(8, 30);
    for _ in 0..items {
        match g.rng.below(20) {
            0..=5 => g.alu(),
            6 | 7 => g.load(),
            8 | 9 => g.masked(),
            10..=12 => g.checked(),
            13 | 14 => g.stack(),
            15 => g.stack_var(),
            16 | 17 => g.lp(),
            18 => g.branch(),
            _ => g.call(),
        }
    }
    g.line("exit");
    let slots = assemble(&g.out).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", g.out));
    let prog = Program::decode(slots).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", g.out));
    StrictCase {
        case: Case {
            prog,
            input,
            budget: None,
            helpers: Helpers::conformance(),
        },
        text: g.out,
    }
}
