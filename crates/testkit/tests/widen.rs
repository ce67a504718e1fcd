//! Checked mode never rejects a program for the cost of its analysis: C programs with loops
//! costly to explore (a prime counter with trial division, pairwise string comparison, a
//! triple nest with data-dependent exits) and one with many sequential branches are accepted
//! in Checked mode, and every engine of the matrix, through the verified JIT, computes what a
//! Rust reference computes. Strict mode explores the string comparison and the triple nest to
//! their end (clang's overlapping loop shapes included), and their Strict verification runs on
//! every engine too; it rejects the prime counter, whose loop it cannot explore within the
//! budget, with an error naming the loop.
//!
//! The programs are `tests/verifier/clang/{primes,strcmp,nest3,branches}.c`, built by that
//! directory's `build.sh` (`clang-19 -O2 -g -target bpf -mcpu=v3`); the objects are committed.
//! Verification time and processed instructions are printed, never asserted.

use bpfx_testkit::corpus::clang_object;
use bpfx_testkit::generator::Rng;
use bpfx_testkit::{Case, check_with, verified_engines};
use bpfx_verifier::{Config, ContextKind, Mode, VerifiedProgram, VerifyErrorKind, verify};
use std::time::Instant;

fn config(name: &str, mode: Mode, mem: usize) -> (bpfx_bytecode::Program, Config) {
    let (prog, helpers, maps) = clang_object(name);
    let cfg = Config {
        mode,
        mem_size: Some(mem as u64),
        helpers,
        maps,
        context: ContextKind::Memory,
        ..Config::default()
    };
    (prog, cfg)
}

/// Budgets the programs are also verified under: far too small for any of them, so the
/// analysis finishes with every loop head merged to a stable state (`Merge::Hard`).
const SMALL_BUDGETS: [u64; 3] = [1, 20, 120];

/// Verifies `name` in Checked mode over `mem` bytes of input, with the default budget and
/// then with each of [`SMALL_BUDGETS`], printing the cost; every verdict is an acceptance.
fn checked(name: &str, mem: usize) -> Vec<VerifiedProgram> {
    let mut out = Vec::new();
    for budget in std::iter::once(None).chain(SMALL_BUDGETS.map(Some)) {
        let (prog, mut cfg) = config(name, Mode::Checked, mem);
        if let Some(b) = budget {
            cfg.insn_budget = b;
        }
        let t = Instant::now();
        let v = verify(prog, &cfg)
            .unwrap_or_else(|e| panic!("{name}: Checked mode rejects (budget {budget:?}): {e}"));
        println!(
            "{name}: Checked mode, budget {budget:?}: {} instructions processed in {:?}",
            v.insns_processed(),
            t.elapsed()
        );
        out.push(v);
    }
    // With the default budget, the widened loop heads are not the cost: a few rounds each.
    assert!(out[0].insns_processed() < 100_000, "{name}");
    out
}

/// Runs each verification of the program on `input` on every engine (the interpreter, then
/// the verified JIT under every option set, unproven accesses guarded) and compares r0 with
/// `expected`.
fn run(name: &str, vs: &[VerifiedProgram], input: Vec<u8>, expected: u64) {
    for v in vs {
        let case = Case {
            prog: v.program().clone(),
            input: input.clone(),
            budget: None,
            helpers: Default::default(),
        };
        let out = check_with(&case, &verified_engines(v.clone()))
            .unwrap_or_else(|m| panic!("{name}: the engines disagree: {m:?}"));
        assert_eq!(out.result, Ok(expected), "{name}");
    }
}

/// Strict mode either proves the program (returned) or names a loop of it as too costly to
/// explore.
fn strict(name: &str, mem: usize, heads: &[u32]) -> Option<VerifiedProgram> {
    let (prog, cfg) = config(name, Mode::Strict, mem);
    let t = Instant::now();
    match verify(prog, &cfg) {
        Ok(v) => {
            println!(
                "{name}: Strict mode accepts: {} instructions processed in {:?}",
                v.insns_processed(),
                t.elapsed()
            );
            Some(v)
        }
        Err(e) => {
            println!("{name}: Strict mode rejects in {:?}: {e}", t.elapsed());
            match e.kind {
                VerifyErrorKind::LoopTooComplex { head, .. }
                | VerifyErrorKind::Loop(head)
                | VerifyErrorKind::IrreducibleLoop(head) => {
                    assert!(
                        heads.contains(&head.0),
                        "{name}: {e} names no loop head of {heads:?}"
                    );
                    assert!(e.to_string().contains(&format!("{head}")), "{name}: {e}");
                }
                _ => panic!("{name}: Strict mode rejects for another reason: {e}"),
            }
            None
        }
    }
}

fn primes_ref(mem: &[u8]) -> u64 {
    let word = |i: usize| u32::from_le_bytes([mem[i], mem[i + 1], mem[i + 2], mem[i + 3]]);
    let limit = word(0) & 0xffff;
    let mut count: u32 = 0;
    let mut digest = u64::from(word(4) | 1);
    for n in 2..=limit {
        let mut prime = n == 2 || n & 1 == 1;
        if n > 2 && prime {
            let mut d: u32 = 3;
            while d < 46341 {
                if d.wrapping_mul(d) > n {
                    break;
                }
                if n % d == 0 {
                    prime = false;
                    break;
                }
                d += 2;
            }
        }
        if prime {
            count += 1;
            digest = digest.wrapping_mul(1_000_003).wrapping_add(u64::from(n));
            digest = digest % 0xffff_fffb + digest / 65537;
        }
    }
    (u64::from(count) << 32) ^ digest
}

#[test]
fn prime_counter_with_trial_division() {
    let v = checked("primes", 8);
    // The trial division's bound (`d * d > n`) is not one the exploration can follow to
    // its end within the budget: rejected, naming the inner loop's head (its
    // depth-first-search head, clang's rotated loop test).
    assert!(strict("primes", 8, &[30]).is_none());
    for (limit, seed) in [
        (0u32, 7u32),
        (1, 1),
        (2, 2),
        (3, 3),
        (97, 5),
        (1000, 9),
        (65535, 11),
    ] {
        let mut mem = limit.to_le_bytes().to_vec();
        mem.extend_from_slice(&seed.to_le_bytes());
        let expected = primes_ref(&mem);
        run("primes", &v, mem, expected);
    }
    // The reference itself, by hand for one prime, 2: digest (1 * 1000003 + 2) % (2^32 - 5)
    // + (1000005 / 65537 = 15).
    assert_eq!(
        primes_ref(&[2, 0, 0, 0, 0, 0, 0, 0]),
        (1 << 32) ^ (1_000_005 + 15)
    );
}

const SLOT: usize = 64;
const PAIRS: usize = 256;

fn strcmp_ref(mem: &[u8]) -> u64 {
    let mut digest: u64 = 0;
    for i in 0..PAIRS {
        let a = &mem[i * 2 * SLOT..][..SLOT];
        let b = &mem[(i * 2 + 1) * SLOT..][..SLOT];
        let mut k = 0usize;
        let mut order: i64 = 0;
        while k < 16 {
            if a[k] != b[k] {
                order = if a[k] < b[k] { -1 } else { 1 };
                break;
            }
            if a[k] == 0 {
                break;
            }
            k += 1;
        }
        if order == 0 && k == 16 {
            for w in 2..SLOT / 8 {
                let word = |s: &[u8]| u64::from_be_bytes(s[w * 8..][..8].try_into().expect("8"));
                let (x, y) = (word(a), word(b));
                if x != y {
                    order = if x < y { -1 } else { 1 };
                    break;
                }
            }
        }
        digest = digest
            .wrapping_mul(3)
            .wrapping_add((order + 1) as u64)
            .wrapping_add((k as u64) << 8);
    }
    digest
}

/// Pairs that differ (or end) at every depth: in the byte part, at a zero byte, in any word,
/// or not at all.
fn strcmp_input(rng: &mut Rng) -> Vec<u8> {
    let mut mem = vec![0u8; 2 * PAIRS * SLOT];
    for i in 0..PAIRS {
        let (a, b) = mem[i * 2 * SLOT..][..2 * SLOT].split_at_mut(SLOT);
        for x in a.iter_mut() {
            *x = 1 + rng.below(255) as u8;
        }
        b.copy_from_slice(a);
        match rng.below(4) {
            0 => b[rng.below(16) as usize] = rng.next_u64() as u8,
            1 => {
                let z = rng.below(16) as usize;
                a[z] = 0;
                b[z] = 0;
                b[z + 1 + rng.below((SLOT - z - 1) as u64) as usize] ^= 0x5a;
            }
            2 => b[16 + rng.below(48) as usize] = rng.next_u64() as u8,
            _ => {}
        }
    }
    mem
}

#[test]
fn string_comparison_of_slot_pairs() {
    let mem = 2 * PAIRS * SLOT;
    let mut v = checked("strcmp_pairs", mem);
    // Clang's overlapping loop shapes no longer stop Strict mode: it explores them to the end.
    v.push(strict("strcmp_pairs", mem, &[]).expect("Strict mode accepts strcmp_pairs"));
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for _ in 0..4 {
        let input = strcmp_input(&mut rng);
        let expected = strcmp_ref(&input);
        run("strcmp_pairs", &v, input, expected);
    }
}

fn nest3_ref(mem: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let limit = u32::from(mem[4096]) | (u32::from(mem[4097]) << 8);
    for i in 0..16usize {
        let plane = &mem[i * 256..];
        if plane[0] == 0xff {
            break;
        }
        let mut sum: u32 = 0;
        for j in 0..16 {
            let row = &plane[j * 16..];
            let marker = row[15];
            for (k, &x) in row[..15].iter().enumerate() {
                if x == marker {
                    break;
                }
                sum += u32::from(x) * (k as u32 + 1);
                acc = acc.wrapping_mul(33).wrapping_add(u64::from(x));
            }
            if sum > limit {
                break;
            }
        }
        acc ^= u64::from(sum) << (i & 31);
    }
    acc
}

#[test]
fn triple_nest_with_data_dependent_exits() {
    let mem = 4098;
    let mut v = checked("nest3", mem);
    v.push(strict("nest3", mem, &[]).expect("Strict mode accepts nest3"));
    let mut rng = Rng::new(0x0123_4567_89ab_cdef);
    for round in 0..6 {
        // Few distinct byte values, so markers match early and late.
        let mut input: Vec<u8> = (0..mem).map(|_| rng.below(24) as u8).collect();
        if round % 2 == 1 {
            input[256 * (1 + rng.below(15) as usize)] = 0xff;
        }
        let limit = [100u16, 2000, 20000, 65535][round % 4];
        input[4096..].copy_from_slice(&limit.to_le_bytes());
        let expected = nest3_ref(&input);
        run("nest3", &v, input, expected);
    }
}

const BRANCHES: u64 = 40;

fn branches_ref(mem: &[u8]) -> u64 {
    let mut acc = u64::from(mem[63]);
    for i in 0..BRANCHES {
        let (x, k) = (u64::from(mem[i as usize]), (i * 37 + 11) & 0xff);
        let taken = match i % 4 {
            0 => x > k,
            1 => x < k,
            2 => x == k,
            _ => x & k != 0,
        };
        if taken {
            acc = acc.wrapping_mul(3 + 2 * i).wrapping_add(i * 1009 + 1);
        }
    }
    acc
}

#[test]
fn forty_sequential_branches() {
    let v = checked("branches", 64);
    let (prog, cfg) = config("branches", Mode::Strict, 64);
    verify(prog, &cfg).expect("Strict mode accepts sequential branches");
    let mut rng = Rng::new(42);
    for _ in 0..16 {
        let mut input: Vec<u8> = (0..64).map(|_| rng.next_u64() as u8).collect();
        for i in (2..BRANCHES as usize).step_by(4) {
            if rng.below(2) == 0 {
                input[i] = ((i as u64 * 37 + 11) & 0xff) as u8;
            }
        }
        let expected = branches_ref(&input);
        run("branches", &v, input, expected);
    }
}

/// Generated loops (`bpfx_testkit::loop_gen`): Checked mode rejects none of them for cost,
/// whatever the budget, and wherever it accepts, every engine through the verified JIT agrees
/// with the interpreter, proofs made under a spent budget included.
#[test]
fn generated_loops_are_never_rejected_for_cost_in_checked_mode() {
    let mut accepted = 0;
    for seed in 0..400u64 {
        let case = bpfx_testkit::generate_loop(seed);
        for budget in [1, 50, 1_000_000] {
            let cfg = Config {
                insn_budget: budget,
                ..Config::conformance(Mode::Checked, case.input.len() as u64)
            };
            match verify(case.prog.clone(), &cfg) {
                Ok(v) => {
                    accepted += 1;
                    if let Err(m) = check_with(&case, &verified_engines(v)) {
                        panic!("seed {seed}, budget {budget}: {m:?}");
                    }
                }
                Err(e) => assert!(
                    !matches!(
                        e.kind,
                        VerifyErrorKind::TooComplex(_) | VerifyErrorKind::LoopTooComplex { .. }
                    ),
                    "seed {seed}, budget {budget}: {e}"
                ),
            }
        }
    }
    println!("{accepted} verifications accepted of {}", 400 * 3);
    assert!(accepted >= 400, "only {accepted} accepted");
}

/// A loop head whose state keeps growing past its share of widening rounds: 40 stack slots
/// shifted down by one per iteration, so one more slot changes each round. The head falls
/// back to the stable merge (the log says so) and the analysis still ends; every engine agrees
/// with the reference (slot `fp-8` holds 7 once 40 iterations have run).
#[test]
fn a_head_past_its_share_of_rounds_is_widened_to_a_stable_state() {
    use bpfx_bytecode::{Program, assemble};
    const SLOTS: usize = 40;
    let mut text = String::from("mov r0, 0\nldxb r2, [r1+0]\nmov r3, 0\n");
    for i in 1..=SLOTS {
        text += &format!("stxdw [r10-{}], r3\n", 8 * i);
    }
    text += "l:\n";
    for i in 1..SLOTS {
        text += &format!(
            "ldxdw r3, [r10-{}]\nstxdw [r10-{}], r3\n",
            8 * (i + 1),
            8 * i
        );
    }
    text += &format!("mov r3, 7\nstxdw [r10-{}], r3\n", 8 * SLOTS);
    text += "add r0, 1\njlt r0, r2, l\nldxdw r0, [r10-8]\nexit\n";
    let prog = Program::decode(assemble(&text).expect("assembles")).expect("decodes");
    let cfg = Config::conformance(Mode::Checked, 1);
    let (v, log) = bpfx_verifier::verify_with_log(prog, &cfg);
    let v = v.expect("Checked mode accepts");
    println!("shift: {} instructions processed", v.insns_processed());
    assert!(
        log.lines()
            .iter()
            .any(|l| l.contains("widened to a stable state")),
        "the head never fell back:\n{log}"
    );
    for n in [0u8, 1, 39, 40, 41, 255] {
        let expected = if u64::from(n).max(1) >= SLOTS as u64 {
            7
        } else {
            0
        };
        let case = Case {
            prog: v.program().clone(),
            input: vec![n],
            budget: None,
            helpers: Default::default(),
        };
        let out = check_with(&case, &verified_engines(v.clone()))
            .unwrap_or_else(|m| panic!("n = {n}: the engines disagree: {m:?}"));
        assert_eq!(out.result, Ok(expected), "n = {n}");
    }
}

/// Local calls fanning out: each of `LEVELS` functions calls the next `FAN` times, so there
/// are `FAN^(LEVELS-1)` call chains, each a calling context of its own (contexts are not
/// merged: the cost grows with the number of chains). Checked mode accepts it under the
/// default budget and under a budget of 1 (no loop to widen: the analysis simply goes on), and
/// every engine agrees with the reference.
#[test]
fn fanned_out_call_chains_are_accepted_whatever_the_budget() {
    use bpfx_bytecode::{Program, assemble};
    const LEVELS: usize = 5;
    const FAN: usize = 4;
    let mut text = String::from("ldxb r6, [r1+0]\nmov r1, r6\ncall local f1\nexit\n");
    for l in 1..=LEVELS {
        text += &format!("f{l}:\nmov r6, r1\nmov r7, 0\n");
        if l < LEVELS {
            for k in 0..FAN {
                text += &format!(
                    "mov r1, r6\nadd r1, {k}\ncall local f{}\nadd r7, r0\n",
                    l + 1
                );
            }
        } else {
            text += "mov r7, r6\nand r7, 3\n";
        }
        text += "mov r0, r7\nexit\n";
    }
    let prog = Program::decode(assemble(&text).expect("assembles")).expect("decodes");
    let mut vs = Vec::new();
    for budget in [1_000_000, 1] {
        let cfg = Config {
            insn_budget: budget,
            ..Config::conformance(Mode::Checked, 1)
        };
        let t = Instant::now();
        let v = verify(prog.clone(), &cfg).expect("Checked mode accepts");
        println!(
            "calls, budget {budget}: {} instructions processed in {:?}",
            v.insns_processed(),
            t.elapsed()
        );
        vs.push(v);
    }
    // f_l(x) = sum over k of f_{l+1}(x + k); f_LEVELS(x) = x & 3.
    fn f(l: usize, x: u64) -> u64 {
        if l == LEVELS {
            return x & 3;
        }
        (0..FAN as u64).map(|k| f(l + 1, x + k)).sum()
    }
    for n in [0u8, 1, 2, 200] {
        run("calls", &vs, vec![n], f(1, u64::from(n)));
    }
}
