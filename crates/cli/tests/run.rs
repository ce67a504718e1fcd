//! `bpfx run`, `jit-dump` and `conformance-plugin`, through the built binary, on every engine.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{repo, stderr, stdout};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bpfx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bpfx"))
}

const ENGINES: [&str; 2] = ["interp", "jit"];

/// `bpfx ARGS` from the repository's root (where the examples' paths start).
fn in_repo(args: &[&str]) -> Output {
    bpfx().args(args).current_dir(repo()).output().unwrap()
}

/// `bpfx run` of the README's checksum example on `engine`, with `extra` flags.
fn checksum(engine: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "examples/checksum.asm",
        "--mem",
        "examples/ipv4-header.bin",
        "--engine",
        engine,
    ];
    args.extend_from_slice(extra);
    in_repo(&args)
}

fn tmp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfx-cli-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn readme_example_computes_the_ipv4_checksum_on_every_engine() {
    for engine in ENGINES {
        let o = checksum(engine, &[]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        assert_eq!(stdout(&o), "47201 (0xb861)\n", "{engine}");
    }
}

#[test]
fn json_output_is_one_object_with_result_and_engine() {
    for engine in ENGINES {
        let o = checksum(engine, &["--json"]);
        assert!(o.status.success());
        let out = stdout(&o);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("\"result\":47201"), "{out}");
        assert!(out.contains(&format!("\"engine\":\"{engine}\"")), "{out}");
    }
}

#[test]
fn a_trap_names_kind_pc_and_instruction_and_exits_1() {
    // Reads 4 bytes at offset 2 of a 4-byte memory.
    let prog = tmp("oob.asm", b"mov %r0, 0\nldxw %r0, [%r1+2]\nexit\n");
    let mem = tmp("oob.mem", &[1, 2, 3, 4]);
    for engine in ENGINES {
        let o = bpfx()
            .arg("run")
            .arg(&prog)
            .arg("--mem")
            .arg(&mem)
            .args(["--engine", engine])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{engine}");
        // With the address, the size and the regions it was checked against.
        let text = stderr(&o);
        assert!(
            text.starts_with(
                "error: trap at insn #1: ldxw r0, [r1+2]: memory access out of bounds \
                 (read of 4 bytes at 0x"
            ) && text.contains(",+4), stack [")
                && text.ends_with(",+512))\n"),
            "{engine}: {text}"
        );
        let o = bpfx()
            .arg("run")
            .arg(&prog)
            .arg("--mem")
            .arg(&mem)
            .args(["--engine", engine, "--json"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        let out = stdout(&o);
        assert!(out.contains("\"kind\":\"out-of-bounds\""), "{out}");
        assert!(out.contains("\"pc\":1"), "{out}");
    }
}

#[test]
fn budget_stops_at_the_same_pc_on_every_engine() {
    for engine in ENGINES {
        let o = checksum(engine, &["--budget", "10", "--json"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stdout(&o).contains("\"kind\":\"budget-exhausted\",\"message\":\"instruction budget exhausted\",\"pc\":10"), "{}", stdout(&o));
        let o = checksum(engine, &["--budget", "100000", "--json"]);
        assert!(o.status.success());
        assert!(stdout(&o).contains("\"budget_left\":"), "{}", stdout(&o));
    }
}

fn plugin(args: &[&str], stdin: &str) -> Output {
    let mut child = bpfx()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn conformance_plugin_speaks_the_runner_protocol() {
    // ldxw r0, [r1+0]; exit — with memory first, as the runner passes it.
    let prog = "61  10  00  00  00  00  00  00  95  00  00  00  00  00  00  00  \n";
    for opt in ["--interpret", "--jit"] {
        let o = plugin(&["aa  bb  cc  dd  ", "conformance-plugin", opt], prog);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "ddccbbaa\n");
        // Without memory, r1 is 0 and the load faults: non-zero exit, message on stderr.
        let o = plugin(&["conformance-plugin", opt], prog);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("insn #0"), "{}", stderr(&o));
    }
    let o = plugin(&["conformance-plugin"], "zz\n");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn jit_dump_interleaves_ebpf_and_x86() {
    let o = in_repo(&["jit-dump", "examples/checksum.asm"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("ldxh r6, [r3+0]"), "{out}");
    assert!(out.contains("movzx"), "{out}");
    assert!(out.contains("be16 r6"), "{out}");
}

#[test]
fn jit_dump_with_a_memory_size_shows_the_verified_code() {
    // The checksum loop walks the input two bytes at a time: one check before the loop
    // stands for its guards, verified or not (here without the default budget's charge).
    for args in [&[][..], &["--mem-size", "20"][..]] {
        let mut all = vec!["jit-dump", "examples/checksum.asm", "--no-budget"];
        all.extend_from_slice(args);
        let o = in_repo(&all);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("; loop at insn #4: entry check"), "{out}");
        assert!(
            out.contains("; loop at insn #4: copy run after a passed check"),
            "{out}"
        );
    }
    // A program the verifier rejects is reported with its pc, as `run` does.
    let prog = tmp("wild.asm", b"mov %r0, 0\nja -2\nexit\n");
    let o = bpfx()
        .args(["jit-dump", "--mem-size", "8"])
        .arg(&prog)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("insn #"), "{}", stderr(&o));
}

#[test]
fn verify_accepts_or_rejects_naming_pc_and_reason() {
    let o = in_repo(&["verify", "examples/checksum.asm", "--mem-size", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("accepted (checked mode)"),
        "{}",
        stdout(&o)
    );
    // Reads r7 before any write: strict mode rejects it at the read.
    let prog = tmp("uninit.asm", b"mov %r0, %r7\nexit\n");
    let o = bpfx()
        .arg("verify")
        .arg(&prog)
        .arg("--strict")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: verifier rejected the program: insn #0: mov r0, r7:"),
        "{err}"
    );
    let o = bpfx()
        .arg("verify")
        .arg(&prog)
        .args(["--strict", "--json", "--log"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("\"verdict\":\"rejected\"") && out.contains("\"pc\":0"),
        "{out}"
    );
    assert!(!stderr(&o).is_empty(), "the log goes to stderr with --json");
}

#[test]
fn run_refuses_a_program_the_verifier_rejects() {
    // A jump out of a function into the middle of another is structural: rejected in every mode.
    let prog = tmp("unreachable.asm", b"mov %r0, 1\nexit\nmov %r0, 2\nexit\n");
    for engine in ENGINES {
        let o = bpfx()
            .arg("run")
            .arg(&prog)
            .args(["--engine", engine])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{engine}");
        assert!(stderr(&o).contains("insn #2"), "{}", stderr(&o));
    }
}

#[test]
fn xdp_context_read_through_a_moved_copy_on_every_engine() {
    // r6 = ctx + 4: `[r6+0]` is xdp_md.data_end; the program returns the packet's length.
    let prog = tmp(
        "xdp_len.asm",
        b"mov %r6, %r1\nadd %r6, 4\nldxw %r0, [%r6+0]\nldxw %r2, [%r1+0]\nsub %r0, %r2\nexit\n",
    );
    let packet = repo().join("examples/tcp-syn.bin");
    let len = std::fs::metadata(&packet).unwrap().len();
    for engine in ENGINES {
        for mode in [&[][..], &["--strict"][..]] {
            let o = bpfx()
                .arg("run")
                .arg(&prog)
                .args(["--ctx", "xdp", "--engine", engine])
                .arg("--packet")
                .arg(&packet)
                .args(mode)
                .output()
                .unwrap();
            assert!(o.status.success(), "{engine} {mode:?}: {}", stderr(&o));
            assert_eq!(
                stdout(&o),
                format!("XDP_UNKNOWN({len}) ({len})\n"),
                "{engine} {mode:?}"
            );
        }
    }
    // An access that matches no xdp_md field is a verifier error naming the pc.
    let prog = tmp("xdp_bad.asm", b"mov %r0, 0\nldxw %r0, [%r1+2]\nexit\n");
    let o = bpfx()
        .arg("run")
        .arg(&prog)
        .args(["--ctx", "xdp"])
        .arg("--packet")
        .arg(&packet)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: verifier rejected the program: insn #1: ldxw r0, [r1+2]: invalid access to \
         context at offset 2 size 4\n"
    );
}

/// The one JSON object `--json` printed, checked for the schema version and `ok`.
fn json_doc(o: &Output, ok: bool) -> serde_json::Value {
    let out = stdout(o);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], 1, "{out}");
    assert_eq!(v["ok"], ok, "{out}");
    if !ok {
        // The message is the one on stderr.
        let err = stderr(o);
        let first = err.lines().next().unwrap_or_default();
        assert_eq!(
            v["error"]["message"],
            first.trim_start_matches("error: "),
            "{out}"
        );
    }
    v
}

#[test]
fn every_json_failure_prints_one_error_object() {
    let unreachable = tmp(
        "json-unreachable.asm",
        b"mov %r0, 1\nexit\nmov %r0, 2\nexit\n",
    );
    let oob = tmp("json-oob.asm", b"ldxdw %r0, [%r1+8]\nexit\n");
    let unreachable = unreachable.to_str().unwrap();
    let oob = oob.to_str().unwrap();
    for engine in ENGINES {
        for (args, kind, code, pc) in [
            (&["run", "no/such.o"][..], "io", 1, None),
            (&["run", unreachable], "verify", 1, Some(2)),
            (&["run", "examples/xdp_parse.o"], "usage", 2, None),
            (
                &["run", "examples/counter.o", "--section", "nope"],
                "usage",
                2,
                None,
            ),
            (&["run", "README.md"], "not_a_program", 1, None),
            (&["run", oob], "trap", 1, Some(0)),
            (&["bench", "examples/xdp_parse.o"], "usage", 2, None),
            (&["bench", unreachable], "verify", 1, Some(2)),
            (&["bench", oob, "--min-time", "1"], "trap", 1, Some(0)),
            (&["verify", unreachable], "verify", 1, Some(2)),
            (&["info", "examples/checksum.asm"], "elf", 1, None),
            (
                &["run", "examples/checksum.asm", "--no-such-flag"],
                "usage",
                2,
                None,
            ),
        ] {
            let mut args = args.to_vec();
            args.push("--json");
            if matches!(args[0], "run" | "bench") {
                args.extend(["--engine", engine]);
            }
            let o = in_repo(&args);
            assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
            let v = json_doc(&o, false);
            assert_eq!(v["error"]["kind"], kind, "{args:?}");
            match pc {
                Some(pc) => assert_eq!(v["error"]["pc"], pc, "{args:?}"),
                None => assert!(v["error"].get("pc").is_none(), "{args:?}"),
            }
        }
    }
    // A trap keeps what ran: the engine and the trap's details.
    let o = in_repo(&["run", oob, "--json", "--engine", "interp"]);
    let v = json_doc(&o, false);
    assert_eq!(v["engine"], "interp");
    assert_eq!(v["error"]["insn"], "ldxdw r0, [r1+8]");
    assert_eq!(v["trap"]["kind"], "out-of-bounds");
    // verify's rejection keeps its verdict.
    let o = in_repo(&["verify", unreachable, "--json"]);
    assert_eq!(json_doc(&o, false)["verdict"], "rejected");
}

#[test]
fn json_successes_carry_ok_and_the_result_as_a_string_too() {
    // r0 = 2^64 - 1: more than a double holds exactly.
    let max = tmp("json-max.asm", b"mov %r0, -1\nexit\n");
    let max = max.to_str().unwrap();
    for engine in ENGINES {
        for args in [
            &["run", max][..],
            &["run", max, "--dump-maps"],
            &["bench", max, "--min-time", "1"],
        ] {
            let o = in_repo(&[args, &["--json", "--engine", engine][..]].concat());
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
            let v = json_doc(&o, true);
            assert_eq!(v["result_str"], "18446744073709551615", "{args:?}");
            assert_eq!(v["result"].as_u64(), Some(u64::MAX), "{args:?}");
        }
        // `maps` is a list of named maps in run and in info.
        let o = in_repo(&[
            "run",
            "examples/counter.o",
            "--mem",
            "examples/tcp-syn.bin",
            "--dump-maps",
            "--json",
            "--engine",
            engine,
        ]);
        let run = json_doc(&o, true);
        let info = json_doc(&in_repo(&["info", "examples/counter.o", "--json"]), true);
        for v in [&run, &info] {
            let maps = v["maps"].as_array().unwrap();
            assert_eq!(maps.len(), 1, "{v}");
            assert_eq!(maps[0]["name"], "counters");
            assert_eq!(maps[0]["key_size"], 4);
            assert_eq!(maps[0]["value_size"], 8);
        }
        assert_eq!(run["maps"][0]["entries"][0]["value"], 1);
    }
    let o = in_repo(&["verify", "examples/checksum.asm", "--json"]);
    assert_eq!(json_doc(&o, true)["verdict"], "accepted");
}

#[test]
fn conflicting_options_are_usage_errors() {
    for cmd in ["run", "bench"] {
        for (extra, says) in [
            (
                &["--engine", "interp", "--hardened"][..],
                "--hardened is an option of the JIT, not of --engine interp",
            ),
            (
                &["--engine", "interp", "--code-memory", "dual"],
                "--code-memory is an option of the JIT, not of --engine interp",
            ),
            (
                &["--engine", "interp", "--code-memory", "sealed"],
                "--code-memory is an option of the JIT",
            ),
            (
                &["--packet", "examples/tcp-syn.bin"],
                "'--mem <PATH>' cannot be used with '--packet <PATH>'",
            ),
        ] {
            let mut args = vec![
                cmd,
                "examples/checksum.asm",
                "--mem",
                "examples/ipv4-header.bin",
                "--min-time",
                "1",
            ];
            if cmd == "run" {
                args.truncate(4);
            }
            args.extend(extra);
            let o = in_repo(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}");
            assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
            assert!(stdout(&o).is_empty());
        }
        // The JIT takes them.
        for extra in [&["--hardened"][..], &["--code-memory", "dual"]] {
            let mut args = vec![cmd, "examples/checksum.asm", "--engine", "jit"];
            args.extend(extra);
            if cmd == "bench" {
                args.extend(["--min-time", "1"]);
            }
            let o = in_repo(&args);
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        }
    }
}
