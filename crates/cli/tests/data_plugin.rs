//! The repository's own `.data` files (`tests/data/`) through `bpfx conformance-plugin`, the way
//! the upstream conformance runner drives it: the program as hex on stdin, the memory as the
//! first argument; r0 in hex on stdout, or a non-zero exit naming the trap on stderr.

use bpfx_testkit::suite::{Expect, load_own, own_dir};
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Bytes as the runner writes them: two hex digits and two spaces each.
fn runner_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}  ")).collect()
}

/// `bpfx [MEM] conformance-plugin OPT` with `prog` on stdin.
fn plugin(mem: &[u8], opt: &str, prog: &[u8]) -> Output {
    let mut args = Vec::new();
    if !mem.is_empty() {
        args.push(runner_hex(mem));
    }
    args.extend(["conformance-plugin".to_string(), opt.to_string()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_bpfx"))
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bpfx starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(format!("{}\n", runner_hex(prog)).as_bytes())
        .expect("the program is written");
    drop(stdin);
    child.wait_with_output().expect("bpfx ends")
}

#[test]
fn own_data_files_pass_through_the_plugin_on_both_engines() {
    let tests = load_own(&own_dir()).expect("tests/data loads");
    assert!(tests.len() >= 40, "only {} files", tests.len());
    for test in &tests {
        let name = &test.file.name;
        let prog = test.prog.to_bytes();
        for opt in ["--interpret", "--jit"] {
            let o = plugin(&test.file.mem, opt, &prog);
            let (out, err) = (
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
            );
            match &test.expect {
                Expect::Result(r0) => {
                    assert!(o.status.success(), "{name} {opt}: {err}");
                    assert_eq!(out, format!("{r0:x}\n"), "{name} {opt}");
                }
                Expect::Trap(trap) | Expect::Error(trap) => {
                    assert!(!o.status.success(), "{name} {opt}: {out}");
                    let (at, kind) = trap.split_once(": ").expect("`insn N: kind`");
                    let pc = at.trim_start_matches("insn ");
                    assert!(
                        err.contains(&format!("trap at insn #{pc}")) && err.contains(kind),
                        "{name} {opt}: expected `{trap}`, got {err}"
                    );
                }
            }
        }
    }
}
