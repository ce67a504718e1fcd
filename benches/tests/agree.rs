//! Every workload computes the same result natively (clang and gcc builds), on bpfx's
//! interpreter and JIT (verified and unverified, under every JIT option set), and on rbpf's
//! interpreter and JIT, on its bench input: the precondition of comparing their speed.

use bpfx_benches::{INPUT_LEN, Native, workloads};
use bpfx_exec::Env;
use bpfx_verifier::{Config, Mode};

#[test]
fn every_engine_agrees_with_native_on_every_workload() {
    let mut count = 0;
    for w in workloads() {
        count += 1;
        let name = w.name();
        let input = w.input(INPUT_LEN);
        let expected = w.run_native(&mut input.clone());
        for native in Native::ALL {
            if let Some(got) = w.run_native_with(native, &mut input.clone()) {
                assert_eq!(
                    got,
                    expected,
                    "{name}: {} against the baseline",
                    native.id()
                );
            }
        }

        let prog = w.program().unwrap_or_else(|e| panic!("{name}: {e}"));
        let cfg = Config {
            mode: Mode::Checked,
            mem_size: Some(INPUT_LEN as u64),
            ..Config::default()
        };
        let verified =
            bpfx_verifier::verify(prog.clone(), &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut env = Env::new();
        let mut mem = input.clone();
        assert_eq!(
            bpfx_interp::run(&verified, &mut mem, &mut env),
            Ok(expected),
            "{name}: interpreter"
        );
        for (set, opts) in bpfx_testkit::engine::jit_option_sets() {
            for (how, jit) in [
                ("verified", bpfx_jit::compile(&verified, &opts)),
                (
                    "unverified",
                    bpfx_jit::compile_unverified(verified.program(), &opts),
                ),
            ] {
                let jit = jit.unwrap_or_else(|e| panic!("{name}: {how} JIT ({set}): {e}"));
                let mut jit_mem = input.clone();
                assert_eq!(
                    jit.run(&mut jit_mem, &mut env),
                    Ok(expected),
                    "{name}: {how} JIT ({set})"
                );
                assert_eq!(
                    jit_mem, mem,
                    "{name}: {how} JIT ({set}): memory differs from the interpreter's"
                );
            }
        }

        let rbpf = w.rbpf(INPUT_LEN).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            rbpf.run_interp(&mut input.clone()),
            Ok(expected),
            "{name}: rbpf interpreter"
        );
        assert_eq!(
            rbpf.jit_error(),
            None,
            "{name}: rbpf's JIT compiles every workload"
        );
        assert_eq!(
            rbpf.run_jit(&mut input.clone()),
            Some(expected),
            "{name}: rbpf JIT"
        );
    }
    assert!(count >= 18, "only {count} workloads");
}

#[test]
fn inputs_are_deterministic_and_shaped() {
    for w in workloads() {
        assert_eq!(w.input(INPUT_LEN), w.input(INPUT_LEN), "{}", w.name());
    }
    // binary_search's shaper sorts its keys: the first half is strictly increasing.
    let w = workloads()
        .find(|w| w.name() == "binary_search")
        .expect("binary_search workload");
    let input = w.input(INPUT_LEN);
    let keys: Vec<u32> = input[..INPUT_LEN / 2]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert!(keys.windows(2).all(|k| k[0] < k[1]));
    // lower_bound's shaper makes non-decreasing keys, with runs of equal ones.
    let w = workloads()
        .find(|w| w.name() == "lower_bound")
        .expect("lower_bound workload");
    let input = w.input(INPUT_LEN);
    let keys: Vec<u32> = input[..INPUT_LEN / 2]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert!(keys.windows(2).all(|k| k[0] <= k[1]));
    assert!(keys.windows(2).any(|k| k[0] == k[1]));
}

#[test]
fn workloads_run_on_any_length() {
    // bench.h's contract: any length, including ones that cut records and words short.
    for w in workloads() {
        for len in [0, 1, 7, 8, 9, 63, 130] {
            let input = w.input(len);
            let expected = w.run_native(&mut input.clone());
            for native in Native::ALL {
                if let Some(got) = w.run_native_with(native, &mut input.clone()) {
                    assert_eq!(
                        got,
                        expected,
                        "{} on {len} bytes: {}",
                        w.name(),
                        native.id()
                    );
                }
            }
            let prog = w.program().unwrap();
            let mut env = Env::new();
            let got = bpfx_interp::run_unverified(&prog, &mut input.clone(), &mut env);
            assert_eq!(got, Ok(expected), "{} on {len} bytes", w.name());
            let jit = bpfx_jit::compile_unverified(&prog, &Default::default()).unwrap();
            let got = jit.run(&mut input.clone(), &mut env);
            assert_eq!(got, Ok(expected), "{} on {len} bytes: JIT", w.name());
        }
    }
}

#[test]
fn generated_programs_have_the_requested_size_and_verify() {
    for n in [4, 10, 11, 1000, 10_007] {
        let prog = bpfx_benches::generate::program(n).unwrap();
        assert_eq!(prog.len(), n);
        let cfg = Config {
            mem_size: Some(bpfx_benches::generate::GENERATED_MEM),
            ..Config::default()
        };
        let verified = bpfx_verifier::verify(prog, &cfg).unwrap();
        let mut mem = bpfx_benches::random_bytes(4096, 1);
        let interp = bpfx_interp::run(&verified, &mut mem.clone(), &mut Env::new());
        let jit = bpfx_jit::compile(&verified, &Default::default()).unwrap();
        assert_eq!(jit.run(&mut mem, &mut Env::new()), interp);
    }
}
