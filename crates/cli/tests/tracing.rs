//! `bpfx run` and `bpfx info` on tracing programs (`crates/runtime/tests/objects/tracing.c`):
//! a kprobe on `--args` or a `struct pt_regs` in `--mem`, a tracepoint record in `--mem`, a raw
//! tracepoint's and an fexit's `--args` (and `--ret`), on both engines in both modes.

#[allow(dead_code)]
mod common;

use common::{bpfx, run_json_everywhere, stderr, stdout};
use serde_json::Value;
use std::path::PathBuf;

const ENGINES: [&str; 2] = ["interp", "jit"];

fn object() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/objects/tracing.o");
    p.to_str().unwrap().to_string()
}

fn tmp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfx-cli-tracing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// Runs program `prog` of the fixture with `extra` on every engine and mode
/// ([`common::run_json_everywhere`]).
fn run(prog: &str, extra: &[&str]) -> Value {
    run_json_everywhere(&object(), prog, extra)
}

/// Entry `key` of map `name` in a `--json --dump-maps` output.
fn at(out: &Value, name: &str, key: u64) -> Value {
    out["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no map {name} in {out}"))["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == key)
        .map_or(Value::Null, |e| e["value"].clone())
}

#[test]
fn kprobes_run_on_args_or_a_pt_regs_file() {
    let v = run("trace_openat2", &["--args", "-100,0x7fff00001000,0"]);
    assert_eq!(v["result"], 0);
    assert_eq!(at(&v, "stats", 2), (-100i64) as u64);
    // A kretprobe on a pt_regs file: ax (offset 80) holds -2.
    let mut regs = vec![0u8; 168];
    regs[80..88].copy_from_slice(&(-2i64).to_le_bytes());
    let regs = tmp("regs.bin", &regs);
    let v = run("trace_openat2_ret", &["--mem", regs.to_str().unwrap()]);
    assert_eq!(
        (at(&v, "stats", 0), at(&v, "stats", 1)),
        (1.into(), 2.into())
    );
    // A pt_regs file of the wrong size is a usage error.
    let short = tmp("short.bin", &[0u8; 100]);
    let o = bpfx(&[
        "run",
        &object(),
        "--program",
        "trace_openat2_ret",
        "--mem",
        short.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("struct pt_regs"), "{}", stderr(&o));
}

#[test]
fn tracepoints_run_on_a_record_file() {
    let mut rec = vec![0u8; 48];
    rec[8..12].copy_from_slice(&257i32.to_le_bytes());
    rec[32..40].copy_from_slice(&0o101u64.to_le_bytes());
    let rec = tmp("openat.bin", &rec);
    let v = run("tp_enter_openat", &["--mem", rec.to_str().unwrap()]);
    assert_eq!(v["result"], 257);
    assert_eq!(at(&v, "open_flags", 0o101), 1);
}

#[test]
fn raw_tracepoints_and_fexit_run_on_args() {
    let v = run("raw_sched_switch", &["--args", "1,2,0xffff888000003000"]);
    assert_eq!(at(&v, "switches", 1), 1);
    assert_eq!(at(&v, "switches", 2), 0xffff_8880_0000_3000u64);
    // fexit without a matching fentry records nothing but returns 0; too few arguments for
    // its return slot are refused.
    let v = run(
        "unlink_exit",
        &[
            "--args",
            "-100,7",
            "--ret",
            "-2",
            "--func-ip",
            "0xffffffff81000000",
        ],
    );
    assert_eq!(v["result"], 0);
    let o = bpfx(&["run", &object(), "--program", "unlink_exit", "--args", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at least 24 bytes"), "{}", stderr(&o));
    let o = bpfx(&[
        "run",
        &object(),
        "--program",
        "tp_enter_openat",
        "--args",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn info_lists_tracing_programs_as_supported() {
    let o = bpfx(&["info", &object()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for (prog, ctx) in [
        ("trace_openat2", "kprobe"),
        ("tp_enter_openat", "tracepoint"),
        ("raw_sched_switch", "raw_tracepoint"),
        ("unlink_exit", "tracing"),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(prog))
            .unwrap_or_else(|| panic!("{prog}: {out}"));
        assert!(line.contains(&format!("{ctx} context")), "{line}");
        assert!(!line.contains("unsupported"), "{line}");
    }
}

#[test]
fn a_kprobe_override_is_printed_after_r0() {
    let asm = tmp("override.asm", b"mov r2, -12\ncall 58\nmov r0, 0\nexit\n");
    let asm = asm.to_str().unwrap();
    for engine in ENGINES {
        let o = bpfx(&[
            "run", asm, "--ctx", "kprobe", "--args", "1", "--engine", engine, "--json",
        ]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["override_return"], -12i64 as u64, "{engine}: {v}");
        let o = bpfx(&[
            "run", asm, "--ctx", "kprobe", "--args", "1", "--engine", engine,
        ]);
        assert!(
            stdout(&o).contains("override_return: -12\n"),
            "{engine}: {}",
            stdout(&o)
        );
    }
}
