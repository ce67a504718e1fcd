//! The Strict-mode corpus programs of the loop-shape and pointer-comparison rules, run: each
//! is verified in Strict mode (every access proven) and in Checked mode, and every engine of
//! the matrix, through the verified JIT, computes what a Rust reference computes, on inputs
//! that take every exit. `tests/verifier/accept/{loop_rotated_head_in_middle,
//! pointer_compare_same_region}.asm`; their unsafe twins are the `reject/` files of the same
//! names, whose rejections `crates/verifier/tests/corpus.rs` snapshots.

use bpfx_bytecode::{Program, assemble};
use bpfx_testkit::generator::Rng;
use bpfx_testkit::{Case, check_with, verified_engines};
use bpfx_verifier::{Config, Mode, VerifiedProgram, verify};

fn load(name: &str) -> Program {
    let path = format!(
        "{}/../../tests/verifier/accept/{name}.asm",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    Program::decode(assemble(&text).unwrap()).unwrap()
}

/// Strict and Checked verifications of `name` over `mem` bytes; Strict proves every access it
/// reaches.
fn both(name: &str, mem: u64) -> Vec<VerifiedProgram> {
    [Mode::Strict, Mode::Checked]
        .into_iter()
        .map(|mode| {
            let cfg = Config {
                mode,
                mem_size: Some(mem),
                ..Config::default()
            };
            let v = verify(load(name), &cfg).unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
            if mode == Mode::Strict {
                let facts: Vec<bool> = v
                    .program()
                    .iter()
                    .filter_map(|(pc, _)| v.access(pc).map(|a| a.proven))
                    .collect();
                assert!(!facts.is_empty() && facts.iter().all(|p| *p), "{name}");
            }
            v
        })
        .collect()
}

fn run(name: &str, vs: &[VerifiedProgram], input: &[u8], expected: u64) {
    for v in vs {
        let case = Case {
            prog: v.program().clone(),
            input: input.to_vec(),
            budget: None,
            helpers: Default::default(),
        };
        let out = check_with(&case, &verified_engines(v.clone()))
            .unwrap_or_else(|m| panic!("{name}: the engines disagree: {m:?}"));
        assert_eq!(
            out.result,
            Ok(expected),
            "{name} {:?} on {input:02x?}",
            v.mode()
        );
    }
}

/// The rotated loop: r0 = byte 0; while ((r0 & 255) == 0 || (r0 & 255) as i32 > 59) — the
/// jsgt is 64-bit, on the masked value — { if r0 == 7 stop; r0 = next byte; at most 4 }.
fn rotated_ref(m: &[u8]) -> u64 {
    let mut r0 = u64::from(m[0]);
    let mut r3 = 0;
    let mut r4 = 4;
    loop {
        r0 &= 255;
        if !(r0 == 0 || r0 > 59) {
            return r0;
        }
        if r0 == 7 {
            return r0;
        }
        r0 = u64::from(m[r3 + 1]);
        r3 += 1;
        r4 -= 1;
        if r4 == 0 {
            return r0;
        }
    }
}

#[test]
fn rotated_loop_entered_at_its_bottom_test() {
    let vs = both("loop_rotated_head_in_middle", 64);
    let mut rng = Rng::new(0x5eed);
    let mut exits = std::collections::HashSet::new();
    for round in 0..200 {
        // Bytes that keep looping (0, above 59) and that stop it (1..=59).
        let mut m: Vec<u8> = (0..64)
            .map(|_| [0u8, 60, 200, 255, 7, 30][rng.below(6) as usize])
            .collect();
        if round % 7 == 0 {
            m[..6].copy_from_slice(&[0, 0, 200, 0, 255, 0]);
        }
        let want = rotated_ref(&m);
        exits.insert(want);
        run("loop_rotated_head_in_middle", &vs, &m, want);
    }
    assert!(exits.len() >= 4, "{exits:?}");
}

/// RFC 1071 sum of the 16-bit big-endian words of 20 bytes, unfolded (an odd tail would be
/// the last byte shifted up: with 20 bytes it never is).
fn sum_ref(m: &[u8]) -> u64 {
    m.chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum()
}

#[test]
fn pointer_comparison_in_one_region_prunes_the_infeasible_tail() {
    let vs = both("pointer_compare_same_region", 20);
    let mut rng = Rng::new(0xc0ffee);
    for _ in 0..50 {
        let m: Vec<u8> = (0..20).map(|_| rng.below(256) as u8).collect();
        run("pointer_compare_same_region", &vs, &m, sum_ref(&m));
    }
    run("pointer_compare_same_region", &vs, &[0xff; 20], 10 * 0xffff);
}
