//! Every workload ends on any input, and which of them Checked mode proves to terminate
//! (`docs/performance.md`, "The default budget's cost"): those run with no instruction budget
//! at all, so their verified JIT code has no budget charge, and must still compute what native
//! code does.

use bpfx_benches::{INPUT_LEN, Native, random_bytes, workloads};
use bpfx_exec::Env;
use bpfx_verifier::{Config, Mode};

#[test]
fn counted_loop_workloads_are_proven_to_end_and_agree_with_native() {
    let mut proven = Vec::new();
    for w in workloads() {
        let name = w.name();
        let prog = w.program().unwrap_or_else(|e| panic!("{name}: {e}"));
        let cfg = Config {
            mode: Mode::Checked,
            mem_size: Some(INPUT_LEN as u64),
            ..Config::default()
        };
        let v = bpfx_verifier::verify(prog, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        if !v.terminates() {
            continue;
        }
        proven.push(name);
        let input = w.input(INPUT_LEN);
        let expected = w.run_native(&mut input.clone());
        let mut env = Env::new();
        assert_eq!(
            bpfx_interp::run(&v, &mut input.clone(), &mut env),
            Ok(expected),
            "{name}: interpreter"
        );
        let jit = bpfx_jit::compile(&v, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !jit.listing().contains("budget slow paths"),
            "{name}: no budget charge"
        );
        assert_eq!(
            jit.run(&mut input.clone(), &mut env),
            Ok(expected),
            "{name}: JIT"
        );
    }
    eprintln!("proven to terminate: {proven:?}");
    for name in [
        "array_sum",
        "binary_search",
        "bitops",
        "calls",
        "crc32",
        "dense_switch",
        "fnv1a",
        "inet_csum",
        "lower_bound",
        "matmul",
        "mem_copy",
        "mixer",
        "packet",
        "packet_calls",
        "str_compare",
    ] {
        assert!(proven.contains(&name), "{name} not proven: {proven:?}");
    }
}

#[test]
fn every_workload_ends_within_the_default_budget_on_any_input() {
    // bench.h's contract is "any contents": besides the shaped bench input, inputs the
    // shapers never make (all zeros: zero-length records, a program of `case 0`s; all ones;
    // unshaped noise: unsorted keys, garbage headers) must end too, under the budget every
    // unproven run gets, with the native result, on the interpreter and the JIT.
    for w in workloads() {
        let name = w.name();
        let prog = w.program().unwrap_or_else(|e| panic!("{name}: {e}"));
        for len in [INPUT_LEN, 130] {
            let inputs = [
                ("shaped", w.input(len)),
                ("zeros", vec![0; len]),
                ("ones", vec![0xff; len]),
                ("noise", random_bytes(len, 7)),
            ];
            for (what, input) in inputs {
                let expected = w.run_native(&mut input.clone());
                for native in Native::ALL {
                    if let Some(got) = w.run_native_with(native, &mut input.clone()) {
                        assert_eq!(got, expected, "{name}/{what}/{len}: {}", native.id());
                    }
                }
                let cfg = Config {
                    mode: Mode::Checked,
                    mem_size: Some(len as u64),
                    ..Config::default()
                };
                let v = bpfx_verifier::verify(prog.clone(), &cfg)
                    .unwrap_or_else(|e| panic!("{name}/{len}: {e}"));
                let mut env = Env::new();
                assert_eq!(
                    bpfx_interp::run(&v, &mut input.clone(), &mut env),
                    Ok(expected),
                    "{name}/{what}/{len}: interpreter"
                );
                let jit = bpfx_jit::compile(&v, &Default::default())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(
                    jit.run(&mut input.clone(), &mut env),
                    Ok(expected),
                    "{name}/{what}/{len}: JIT"
                );
            }
        }
    }
}
