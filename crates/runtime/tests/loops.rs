//! Loops ended by a ranking measure over several registers (`docs/verifier.md`,
//! "Termination"): binary searches over sorted u32 keys (tested at the head, and in clang's
//! rotated form), a branchless lower bound halving its window, a 32-bit bisection over a byte
//! length, two offsets walking towards each other. Each is proven to terminate in Checked mode
//! and computes what a Rust model computes, on the interpreter and the JIT under every option
//! set, on several inputs. Their unsound twins (a search that can stall, a 32-bit sum that can
//! wrap) stay unproven and run under the default budget, and the stalling search, fed the
//! input that stalls it, is stopped by it on every engine.

use bpfx::bytecode::{Program as Bytecode, assemble};
use bpfx::{Mode, Program, ProgramDef, TrapKind, Verified, Vm};
use bpfx_testkit::jit_option_sets;

fn verified(text: &str) -> Verified {
    let code = Bytecode::decode(assemble(text).unwrap()).unwrap();
    let obj = Vm::new()
        .object(vec![ProgramDef::new("prog", "test", code)], vec![])
        .unwrap();
    obj.program("prog").unwrap().verify(Mode::Checked).unwrap()
}

/// The interpreter, then the JIT under every option set.
fn programs(v: &Verified) -> Vec<(String, Program)> {
    let mut out = vec![("interp".to_string(), v.clone().interpret())];
    for (name, opts) in jit_option_sets() {
        out.push((name.to_string(), v.clone().compile_with(&opts).unwrap()));
    }
    out
}

/// A deterministic byte stream.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn u32s(mem: &[u8]) -> Vec<u32> {
    mem.chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The first half holds `n = len / 8` u32 keys (made sorted, with repeats), the second the
/// queries, a third of them keys.
fn search_input(len: usize, seed: u64) -> Vec<u8> {
    let mut mem = bytes(len, seed);
    let n = len / 8;
    let mut k = 0u32;
    for i in 0..n {
        k += u32::from(mem[4 * i] & 7);
        mem[4 * i..4 * i + 4].copy_from_slice(&k.to_le_bytes());
    }
    let keys = u32s(&mem[..4 * n]);
    for q in 0..n {
        let at = 4 * (n + q);
        let r = u32::from_le_bytes(mem[at..at + 4].try_into().unwrap());
        let v = if r % 3 == 0 {
            keys[(r as usize / 3) % n]
        } else {
            r % (k + 8)
        };
        mem[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    mem
}

/// `Σ_q lower_bound(keys, queries[q]) * (q + 1)`.
fn search_model(mem: &[u8]) -> u64 {
    let n = mem.len() / 8;
    let keys = u32s(&mem[..4 * n]);
    let queries = u32s(&mem[4 * n..8 * n]);
    queries
        .iter()
        .enumerate()
        .map(|(q, &want)| keys.partition_point(|&k| k < want) as u64 * (q as u64 + 1))
        .sum()
}

/// The outer loop over the queries around an inner search at `search:` that leaves the lower
/// bound in r7 (`keys` at r1, `n` in r6, the query in r9); `r8` and `r3`–`r5` are free.
fn over_queries(search: &str) -> String {
    format!(
        "
        mov r6, r2
        rsh r6, 3
        mov r0, 0
        mov r2, 0
    next:
        jge r2, r6, end
        mov r3, r6
        add r3, r2
        lsh r3, 2
        mov r4, r1
        add r4, r3
        ldxw r9, [r4+0]
        {search}
        mov r3, r2
        add r3, 1
        mul r7, r3
        add r0, r7
        mov r2, r3
        ja next
    end:
        exit"
    )
}

/// `lo = 0, hi = n; while (lo < hi) { mid = lo + (hi - lo) / 2; if (keys[mid] < want) lo = mid
/// + 1; else hi = mid; }`, tested at the head.
const SEARCH: &str = "
        mov r7, 0
        mov r8, r6
    head:
        jge r7, r8, found
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
    found:";

/// The same search as clang rotates it: `mid = (lo + hi) / 2`, the test at the latch, and
/// the comparison of the key made twice, once per arm.
const ROTATED: &str = "
        mov r7, r6
        mov r8, 0
        jeq r6, 0, found
        ja head
    latch:
        mov r8, r5
        jlt r5, r7, head
        ja found
    head:
        mov r5, r7
        add r5, r8
        rsh r5, 1
        mov r3, r5
        lsh r3, 2
        mov r4, r1
        add r4, r3
        ldxw r4, [r4+0]
        jlt32 r4, r9, +1
        mov r7, r5
        add r5, 1
        jlt32 r4, r9, latch
        mov r5, r8
        ja latch
    found:
        mov r7, r8";

/// Branchless lower bound: `base = 0, size = n; while (size > 1) { half = size / 2; if
/// (keys[base + half] < want) base += half; size -= half; } base += keys[base] < want`.
const HALVING: &str = "
        mov r7, 0
        mov r8, r6
        jeq r6, 0, found
    head:
        jle r8, 1, last
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
    last:
        mov r4, r7
        lsh r4, 2
        mov r5, r1
        add r5, r4
        ldxw r5, [r5+0]
        jge r5, r9, found
        add r7, 1
    found:";

#[test]
fn searches_over_sorted_keys_are_proven_and_agree() {
    for (what, inner) in [
        ("head-tested", SEARCH),
        ("rotated", ROTATED),
        ("halving", HALVING),
    ] {
        let v = verified(&over_queries(inner));
        assert!(v.program().terminates(), "{what}");
        for (name, mut p) in programs(&v) {
            for (len, seed) in [(0, 1), (8, 2), (24, 3), (200, 4), (4096, 5), (4100, 6)] {
                let mem = search_input(len, seed);
                assert_eq!(
                    p.run(&mut mem.clone()).ok(),
                    Some(search_model(&mem)),
                    "{what}/{name}/{len}"
                );
            }
        }
    }
}

/// The first position in the input's first half whose byte is at least the input's last
/// byte (the half sorted), by a 32-bit bisection over the byte length (below 2^31: `lo + hi`
/// fits 32 bits).
const BISECT: &str = "
        mov r0, 0
        jeq r2, 0, out
        mov r3, r1
        add r3, r2
        ldxb r9, [r3-1]
        mov32 r6, r2
        rsh r6, 1
        mov r7, 0
        mov r8, r6
    head:
        jge32 r7, r8, done
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
    done:
        mov r0, r7
    out:
        exit";

#[test]
fn a_bisection_over_a_byte_length_is_proven_and_agrees() {
    let v = verified(BISECT);
    assert!(v.program().terminates());
    for (name, mut p) in programs(&v) {
        for (len, seed) in [(0, 1), (1, 2), (2, 3), (7, 4), (300, 5), (4096, 6)] {
            let mut mem = bytes(len, seed);
            if len == 0 {
                assert_eq!(p.run(&mut mem).ok(), Some(0), "{name}");
                continue;
            }
            mem[..len / 2].sort_unstable();
            let want = mem[len - 1];
            let expected = mem[..len / 2].partition_point(|&b| b < want) as u64;
            assert_eq!(p.run(&mut mem).ok(), Some(expected), "{name}/{len}");
        }
    }
}

/// How many byte pairs from both ends match before the first mismatch (a palindrome check).
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
fn offsets_walking_towards_each_other_are_proven_and_agree() {
    let v = verified(PAIR);
    assert!(v.program().terminates());
    let model = |m: &[u8]| {
        let (mut i, mut j) = (0, m.len());
        while i < j {
            j -= 1;
            if m[i] != m[j] {
                break;
            }
            i += 1;
        }
        i as u64
    };
    for (name, mut p) in programs(&v) {
        for len in [0usize, 1, 2, 5, 64, 1001] {
            let mut pal: Vec<u8> = bytes(len, len as u64);
            for k in 0..len / 2 {
                pal[len - 1 - k] = pal[k];
            }
            let mut near = pal.clone();
            if len > 8 {
                near[len - 4] ^= 1;
            }
            for mem in [pal, near, bytes(len, 9)] {
                assert_eq!(
                    p.run(&mut mem.clone()).ok(),
                    Some(model(&mem)),
                    "{name}/{len}"
                );
            }
        }
    }
}

fn budget_trap(r: Result<u64, bpfx::RunError>) -> bool {
    matches!(r, Err(bpfx::RunError::Trap { trap, .. }) if trap.kind == TrapKind::BudgetExhausted)
}

#[test]
fn a_search_that_can_stall_is_not_proven_and_the_budget_stops_it() {
    // `lo = mid` instead of `mid + 1`: with `hi = lo + 1`, `mid = lo` and nothing moves.
    let stall = over_queries(&SEARCH.replace("add r7, 1\n", ""));
    let v = verified(&stall);
    assert!(!v.program().terminates());
    // Keys all 0, a query of 1: every key is below it, `lo` climbs to `n - 1` and stays.
    let mut mem = vec![0u8; 64];
    mem[32..36].copy_from_slice(&1u32.to_le_bytes());
    for (name, mut p) in programs(&v) {
        assert!(budget_trap(p.run(&mut mem.clone())), "{name}");
    }
}

#[test]
fn a_bisection_whose_sum_can_wrap_is_not_proven() {
    // Without the halving of the length, `lo + hi` in 32 bits may pass 2^32.
    let v = verified(&BISECT.replace("rsh r6, 1\n", ""));
    assert!(!v.program().terminates());
    // It still ends on real inputs, under the budget, with the same result on every engine
    // (the keys are the whole input here).
    let mut mem = bytes(100, 3);
    mem.sort_unstable();
    let want = mem[99];
    let expected = mem.partition_point(|&b| b < want) as u64;
    for (name, mut p) in programs(&v) {
        assert_eq!(p.run(&mut mem.clone()).ok(), Some(expected), "{name}");
    }
}
