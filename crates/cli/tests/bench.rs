//! `bpfx bench`, through the built binary, on every engine.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{repo, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bpfx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bpfx"))
}

/// The `error` of the one JSON object a failed `--json` command prints.
fn json_error(o: &Output) -> serde_json::Value {
    let out = stdout(o);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], 1, "{out}");
    assert_eq!(v["ok"], false, "{out}");
    assert_eq!(
        v["error"]["message"],
        stderr(o).trim_end().trim_start_matches("error: ")
    );
    v["error"].clone()
}

const ENGINES: [&str; 2] = ["interp", "jit"];

/// The README's checksum example, measured briefly (the default is 200 ms per engine).
fn bench(engine: &str, extra: &[&str]) -> Output {
    bpfx()
        .args([
            "bench",
            "examples/checksum.asm",
            "--mem",
            "examples/ipv4-header.bin",
            "--min-time",
            "20",
            "--engine",
            engine,
        ])
        .args(extra)
        .current_dir(repo())
        .output()
        .unwrap()
}

#[test]
fn json_is_exactly_one_object_with_the_result_and_every_cost() {
    for engine in ENGINES {
        let o = bench(engine, &["--json"]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let out = stdout(&o);
        assert_eq!(out.lines().count(), 1, "{engine}: {out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["result"], 47201, "{engine}");
        assert_eq!(v["engine"], engine);
        assert_eq!(v["mode"], "checked");
        for key in ["verify_ns", "compile_ns", "runs_per_batch", "batches"] {
            assert!(v[key].is_u64(), "{engine}: {key} in {out}");
        }
        assert!(v["verify_ns"].as_u64().unwrap() > 0, "{engine}");
        assert!(v["batches"].as_u64().unwrap() >= 11, "{engine}");
        let per_run = v["ns_per_run"].as_f64().unwrap();
        assert!(per_run > 0.0, "{engine}: {out}");
        let compiled = v["compile_ns"].as_u64().unwrap();
        match engine {
            "jit" => assert!(compiled > 0, "the JIT compiles"),
            _ => assert_eq!(compiled, 0, "the interpreter compiles nothing"),
        }
    }
}

#[test]
fn text_output_names_every_stage() {
    let o = bench("jit", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let keys: Vec<&str> = out.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        keys,
        ["result", "engine", "verify", "compile", "per run"],
        "{out}"
    );
    assert!(out.starts_with("result:  47201 (0xb861)\n"), "{out}");
    assert!(
        stderr(&o).is_empty(),
        "a short bench prints no progress: {}",
        stderr(&o)
    );
}

fn tmp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfx-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn strict_mode_runs_what_it_proves_and_rejects_the_rest() {
    let mem = tmp("strict-mem.bin", &[7, 2, 3, 4]);
    let inside = tmp("strict-in.asm", b"ldxb %r0, [%r1+0]\nexit\n");
    let outside = tmp("strict-out.asm", b"ldxb %r0, [%r1+8]\nexit\n");
    for engine in ENGINES {
        let run = |prog: &Path| {
            bpfx()
                .arg("bench")
                .arg(prog)
                .arg("--mem")
                .arg(&mem)
                .args(["--engine", engine, "--strict", "--json", "--min-time", "1"])
                .output()
                .unwrap()
        };
        let o = run(&inside);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["mode"], "strict");
        assert_eq!(v["result"], 7);
        let o = run(&outside);
        assert_eq!(o.status.code(), Some(1), "{engine}");
        assert!(stderr(&o).contains("verifier rejected"), "{}", stderr(&o));
        let e = json_error(&o);
        assert_eq!(e["kind"], "verify");
        assert_eq!(e["pc"], 0);
    }
}

#[test]
fn a_trap_fails_the_bench_with_the_instruction() {
    // Reads 8 bytes at offset 8 of a 4-byte input.
    let prog = tmp("oob.asm", b"ldxdw %r0, [%r1+8]\nexit\n");
    let mem = tmp("oob-mem.bin", &[1, 2, 3, 4]);
    for engine in ENGINES {
        let o = bpfx()
            .args(["bench"])
            .arg(&prog)
            .arg("--mem")
            .arg(&mem)
            .args(["--engine", engine, "--json", "--min-time", "1"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{engine}");
        let e = json_error(&o);
        assert_eq!(e["kind"], "trap", "{engine}");
        assert_eq!(e["pc"], 0);
        assert_eq!(e["insn"], "ldxdw r0, [r1+8]");
        assert!(
            stderr(&o).contains("trap at insn #0"),
            "{engine}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_missing_file_is_an_input_error() {
    let o = bpfx()
        .args(["bench", "no/such/file.bin", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = json_error(&o);
    assert_eq!(e["kind"], "io");
    assert!(e["message"].as_str().unwrap().contains("no/such/file.bin"));
}

#[test]
fn both_code_memories_give_the_same_result() {
    for memory in ["sealed", "dual"] {
        let o = bench("jit", &["--json", "--code-memory", memory]);
        assert!(o.status.success(), "{memory}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["result"], 47201, "{memory}");
        assert_eq!(v["code_memory"], memory);
    }
    let o = bench("jit", &["--code-memory", "rwx"]);
    assert!(!o.status.success(), "an unknown code memory is refused");
}

/// Every shipped example object, with the input `run` takes for it.
const EXAMPLES: [(&str, &str, &str); 7] = [
    ("examples/counter.o", "--mem", "examples/tcp-syn.bin"),
    ("examples/globals.o", "--mem", "examples/tcp-syn.bin"),
    ("examples/xdp_parse.o", "--packet", "examples/tcp-syn.bin"),
    ("examples/ringbuf.o", "--packet", "examples/tcp-syn.bin"),
    ("examples/percpu_count.o", "--packet", "examples/arp.bin"),
    ("examples/lpm_block.o", "--packet", "examples/tcp-syn.bin"),
    (
        "examples/perf_sample.o",
        "--packet",
        "examples/telnet-syn.bin",
    ),
];

/// The JIT option sets bench offers, and the interpreter.
const CONFIGS: [&[&str]; 4] = [
    &["--engine", "interp"],
    &["--engine", "jit"],
    &["--engine", "jit", "--hardened"],
    &["--engine", "jit", "--code-memory", "dual"],
];

#[test]
fn every_example_object_benches_as_it_runs() {
    for (obj, flag, input) in EXAMPLES {
        for config in CONFIGS {
            let run = bpfx()
                .args(["run", obj, flag, input, "--json"])
                .args(config)
                .current_dir(repo())
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "run {obj} {config:?}: {}",
                stderr(&run)
            );
            let ran: serde_json::Value = serde_json::from_str(&stdout(&run)).unwrap();
            let o = bpfx()
                .args(["bench", obj, flag, input, "--json", "--min-time", "1"])
                .args(config)
                .current_dir(repo())
                .output()
                .unwrap();
            assert!(o.status.success(), "bench {obj} {config:?}: {}", stderr(&o));
            let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            assert_eq!(v["result"], ran["result"], "{obj} {config:?}");
            assert_eq!(v["action"], ran["action"], "{obj} {config:?}");
            assert_eq!(v["engine"], config[1]);
        }
    }
}

#[test]
fn bench_uses_the_run_options_context_and_maps() {
    for engine in ENGINES {
        // An XDP program's packet is required, as for run.
        let o = bpfx()
            .args(["bench", "examples/xdp_parse.o", "--min-time", "1"])
            .args(["--engine", engine])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(stderr(&o).contains("--packet FILE"), "{}", stderr(&o));
        // The maps after every run: the counter counted each of them.
        let o = bpfx()
            .args([
                "bench",
                "examples/counter.o",
                "--mem",
                "examples/tcp-syn.bin",
            ])
            .args(["--min-time", "1", "--dump-maps", "--engine", engine])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("result:  1 (0x1)"), "{out}");
        assert!(out.contains("map counters"), "{out}");
        // trace_printk output of the first run only.
        let o = bpfx()
            .args([
                "bench",
                "examples/globals.o",
                "--mem",
                "examples/tcp-syn.bin",
            ])
            .args(["--min-time", "1", "--engine", engine])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stderr(&o), "sum=2571 len=54\n");
    }
}

#[test]
fn jit_dump_shows_an_objects_program_as_run_compiles_it() {
    for extra in [
        &[][..],
        &["--mem-size", "54"],
        &["--hardened"],
        &["--budget"],
    ] {
        let o = bpfx()
            .args(["jit-dump", "examples/counter.o"])
            .args(extra)
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("call 1"), "{extra:?}");
    }
    // The XDP context's 32-bit `data`/`data_end` loads appear converted to the runtime's
    // 64-bit pointer fields.
    let o = bpfx()
        .args(["jit-dump", "examples/xdp_parse.o"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("ldxdw r2, [r1+"), "{out}");
    assert!(!out.contains("ldxw r2, [r1+4]"), "{out}");
    // --ctx memory shows it unconverted, as run --ctx memory would refuse or run it.
    let o = bpfx()
        .args([
            "jit-dump",
            "examples/xdp_parse.o",
            "--ctx",
            "memory",
            "--mem-size",
            "64",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ldxw r2, [r1+4]"));
}

/// Every timed run starts from the packet as given: a TC program that grows the head by 8
/// bytes per run leaves a packet 8 bytes longer after the bench, not 8 × runs (the packet is
/// capped at 16064 bytes, so a growing packet would show within the first two thousand runs).
#[test]
fn every_run_starts_from_the_packet_as_given() {
    // tc_resize_probe calls the helper its last 20 bytes name: skb_change_head(skb, 8, 0).
    let mut packet = vec![0u8; 40];
    packet[12..14].copy_from_slice(&[0x08, 0x00]);
    for v in [43u32, 8, 0, 0, 0] {
        packet.extend_from_slice(&v.to_ne_bytes());
    }
    let input = tmp("grow.bin", &packet);
    for engine in ENGINES {
        let out = tmp(&format!("grow-out-{engine}.bin"), b"");
        let o = bpfx()
            .arg("bench")
            .arg(repo().join("crates/runtime/tests/objects/tc_resize_probe.o"))
            .arg("--packet")
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .args(["--engine", engine, "--json", "--min-time", "20"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert!(v["runs_per_batch"].as_u64().unwrap() > 1, "{engine}: {v}");
        let after = std::fs::read(&out).unwrap();
        assert_eq!(after.len(), packet.len() + 8, "{engine}");
        assert_eq!(&after[8..], &packet[..], "{engine}");
    }
}
