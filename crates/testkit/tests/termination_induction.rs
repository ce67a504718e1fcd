//! Checked mode's termination proof for induction values (`crates/verifier/src/termination.rs`)
//! against runs: random small loops whose exit test reads the counter, a copy or an offset of
//! it recomputed in the body, or a copy lagging an iteration behind; whose step may be split,
//! on both arms of an if or on one only; whose bound is an immediate, a constant, a value
//! loaded from the stack (a byte or 64 bits), the input length r2, or a clamped value; with
//! `!=`/`==`/order tests at 32 or 64 bits, and near misses (the bound changed in the loop, a
//! call clobbering r0–r5). Each runs on the interpreter under a budget of 10^6 instructions
//! with an input of 0 to 47 bytes. Whenever the verifier claims the program ends, the run must
//! end inside that budget, and the verified JIT (no budget charge) must return the same:
//! every constant of a case lies in one small cluster (10 to 40, 2^64 - 46 to 2^64 - 16, or just
//! below 2^31; byte and length bounds only with the first), offsets of copies move values by at
//! most 5, so no value crosses 0 or 2^31 on its way and a loop that ends at all ends within a
//! few hundred iterations.

use bpfx_bytecode::{Program, assemble};
use bpfx_exec::{Budget, Env, TrapKind};
use bpfx_testkit::generator::Rng;
use bpfx_verifier::{Config, Mode, verify};

const BUDGET: u64 = 1_000_000;
const CASES: u64 = 3000;

struct Gen {
    rng: Rng,
    text: String,
    base: i64,
}

impl Gen {
    fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }

    fn value(&mut self) -> i64 {
        self.base + self.rng.range(0, 30)
    }

    fn w(&mut self) -> &'static str {
        if self.rng.chance(1, 3) { "32" } else { "" }
    }
}

fn generate(seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let base = rng.pick(&[10i64, 10, -46, 0x7fff_ffaf]);
    let mut g = Gen {
        rng,
        text: String::new(),
        base,
    };
    g.line("mov r0, 0");
    // The counter r6: a constant, one constant per way in, or unknown (loaded from the stack).
    let s = g.value();
    match g.rng.below(4) {
        0 | 1 => g.line(format!("mov r6, {s}")),
        2 => {
            let s2 = g.value();
            g.line(format!(
                "mov r6, {s}\njeq r2, 3, start\nmov r6, {s2}\nstart:"
            ));
        }
        _ => g.line(format!("stdw [r10-24], {s}\nldxdw r6, [r10-24]")),
    }
    // The bound r7.
    let b = g.value();
    match g.rng.below(if base == 10 { 6 } else { 3 }) {
        0 => g.line(format!("mov r7, {b}")),
        1 => g.line(format!("stdw [r10-16], {b}\nldxdw r7, [r10-16]")),
        2 => {
            let k = g.value();
            let clamp = g.rng.pick(&["jle", "jlt", "jsle"]);
            g.line(format!(
                "stdw [r10-16], {b}\nldxdw r7, [r10-16]\n{clamp} r7, {k}, clamped\nmov r7, {k}\nclamped:"
            ));
        }
        3 => g.line(format!("stb [r10-2], {}\nldxb r7, [r10-2]", b & 0x7f)),
        4 => g.line("mov r7, r2"),
        _ => g.line("mov r7, r2\nrsh r7, 1"),
    }
    let lag_start = g.value();
    g.line(format!("mov r8, {lag_start}"));
    g.line("head:");
    g.line("add r9, 1");
    // The step and the copies, in random order.
    let c = g.rng.range(-3, 3);
    let sw = g.w();
    let (op, c) = if g.rng.chance(1, 4) {
        ("sub", -c)
    } else {
        ("add", c)
    };
    let mut items = vec![0u8, 1, 2];
    for k in (1..items.len()).rev() {
        let j = g.rng.below(k as u64 + 1) as usize;
        items.swap(k, j);
    }
    if g.rng.chance(1, 4) {
        items.push(3 + g.rng.below(3) as u8);
    }
    let calls = items.contains(&4);
    for item in items {
        match item {
            0 => match g.rng.below(6) {
                0 => {
                    // Split in two.
                    g.line(format!("{op}{sw} r6, {c}"));
                    let back = g.rng.range(-1, 1);
                    g.line(format!("add{sw} r6, {back}"));
                }
                1 => {
                    // On both arms of an if, or on one only.
                    let other = if g.rng.chance(1, 2) { c } else { 0 };
                    g.line(format!(
                        "jset r9, 1, odd\n{op}{sw} r6, {c}\nja even\nodd:\n{op}{sw} r6, {other}\neven:"
                    ));
                }
                _ => g.line(format!("{op}{sw} r6, {c}")),
            },
            1 => {
                let w = g.w();
                let k = g.rng.range(-5, 5);
                let src = g.rng.pick(&["r6", "r6", "r8"]);
                g.line(format!("mov{w} r5, {src}\nadd{w} r5, {k}"));
            }
            2 => g.line("mov r8, r6"),
            3 => g.line("add r7, 1"),
            4 => g.line("call local sub"),
            _ => g.line("mov r5, r0"),
        }
    }
    // The test.
    let x = g.rng.pick(&["r6", "r5", "r8"]);
    let cond = g.rng.pick(&[
        "jlt", "jle", "jgt", "jge", "jslt", "jsle", "jsgt", "jsge", "jne", "jeq",
    ]);
    let tw = g.w();
    let y = if g.rng.chance(1, 2) {
        "r7".to_string()
    } else {
        g.value().to_string()
    };
    if g.rng.chance(1, 2) {
        g.line(format!("{cond}{tw} {x}, {y}, head"));
    } else {
        g.line(format!("{cond}{tw} {x}, {y}, out\nja head\nout:"));
    }
    g.line("mov r0, r9\nexit");
    if calls {
        // A local function clobbering r0-r5.
        g.line("sub:\nmov r1, 7\nmov r2, 9\nmov r3, 11\nmov r4, 0\nmov r5, 2\nmov r0, 1\nexit");
    }
    g.text
}

#[test]
fn a_loop_proven_to_end_ends() {
    let cfg = Config {
        mode: Mode::Checked,
        mem_size: None,
        ..Config::default()
    };
    let (mut proven, mut endless) = (0, 0);
    for seed in 0..CASES {
        let text = generate(seed);
        let prog = Program::decode(assemble(&text).expect("assembles")).expect("decodes");
        let v = verify(prog, &cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        let mut input = vec![0u8; (seed % 48) as usize];
        let mut env = Env::new();
        env.set_budget(Budget::Limit(BUDGET));
        let r = bpfx_interp::run(&v, &mut input, &mut env);
        let exhausted = matches!(r, Err(t) if t.kind == TrapKind::BudgetExhausted);
        if v.terminates() {
            proven += 1;
            assert!(
                !exhausted,
                "seed {seed}: proven to end, but ran out:\n{text}"
            );
            let jit = bpfx_jit::compile(&v, &Default::default()).expect("compiles");
            let mut env = Env::new();
            assert_eq!(jit.run(&mut input, &mut env), r, "seed {seed}: JIT\n{text}");
        } else if exhausted {
            endless += 1;
        }
    }
    eprintln!("{proven} of {CASES} proven, {endless} not proven and endless");
    assert!(proven > CASES / 10, "only {proven} of {CASES} proven");
    assert!(
        endless > CASES / 20,
        "only {endless} of {CASES} run forever"
    );
}
