//! Every command of `bpfx --help` replayed on every shipped example (`examples/`), with and
//! without `--json`, and on the bad inputs a new user meets first (a missing file, a text file,
//! a truncated ELF object, a section that is not there or holds two programs, options that
//! conflict, `-` for standard input).
//!
//! Each invocation is checked against its expected outcome (exit code 0, 1 for bad input or a
//! failed run, 2 for a usage error, docs/cli.md "Exit codes"), and every `--json` output must
//! be exactly one JSON object of the documented schema version with the fields docs/cli.md
//! lists for the command, on success and on failure alike. The table of examples must name
//! every file of `examples/`, and the table of cases every command `bpfx --help` lists, so a
//! new example or command without a case here fails this test.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::repo;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a shipped example is to the commands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Example {
    /// An ELF object whose one program runs on plain memory (`--mem`).
    MemObject,
    /// An ELF object whose one program is an XDP program (`--packet`).
    XdpObject,
    /// Assembler text of a plain-memory program.
    Asm,
    /// Input bytes for `--mem` or `--packet`: not a program (raw bytecode that does not decode).
    Data,
    /// A packet capture for `replay --pcap`.
    Capture,
    /// C source, headers and scripts: text that is not a program.
    Text,
}

/// Every file of `examples/` and what it is.
const EXAMPLES: &[(&str, Example)] = &[
    ("counter.o", Example::MemObject),
    ("globals.o", Example::MemObject),
    ("xdp_parse.o", Example::XdpObject),
    ("lpm_block.o", Example::XdpObject),
    ("percpu_count.o", Example::XdpObject),
    ("perf_sample.o", Example::XdpObject),
    ("ringbuf.o", Example::XdpObject),
    ("checksum.asm", Example::Asm),
    ("arp.bin", Example::Data),
    ("ipv4-header.bin", Example::Data),
    ("tcp-syn.bin", Example::Data),
    ("telnet-syn.bin", Example::Data),
    ("mixed.pcap", Example::Capture),
    ("counter.c", Example::Text),
    ("globals.c", Example::Text),
    ("xdp_parse.c", Example::Text),
    ("lpm_block.c", Example::Text),
    ("percpu_count.c", Example::Text),
    ("perf_sample.c", Example::Text),
    ("ringbuf.c", Example::Text),
    ("bpf_helpers.h", Example::Text),
    ("build.sh", Example::Text),
    ("mixed_pcap.py", Example::Text),
];

/// The packets the XDP examples run on.
const PACKETS: &[&str] = &[
    "examples/arp.bin",
    "examples/tcp-syn.bin",
    "examples/telnet-syn.bin",
];
/// The plain-memory examples' input.
const MEM: &str = "examples/ipv4-header.bin";
const PCAP: &str = "examples/mixed.pcap";
/// An object with two programs in section `socket` (`first`, `second`) and one in `xdp`.
const TWO: &str = "crates/cli/tests/objects/two.o";

/// The commands that take `--json` (docs/cli.md, "JSON output").
const JSON_COMMANDS: &[&str] = &["run", "bench", "replay", "verify", "info"];

/// The expected outcome of one invocation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Exit 0.
    Ok,
    /// Exit 1 with this JSON `error.kind`.
    Fail(&'static str),
    /// Exit 2, JSON `error.kind` `usage`.
    Usage,
}

impl Expect {
    fn code(self) -> i32 {
        match self {
            Expect::Ok => 0,
            Expect::Fail(_) => 1,
            Expect::Usage => 2,
        }
    }
}

/// One invocation of `bpfx`, from the repository's root.
#[derive(Clone, Debug)]
struct Case {
    args: Vec<String>,
    /// A file fed to standard input (relative to the repository's root, or absolute).
    stdin: Option<PathBuf>,
    expect: Expect,
    /// A text the output (stdout, or stderr on failure) must contain.
    contains: Option<String>,
}

fn case(args: &[&str], expect: Expect) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin: None,
        expect,
        contains: None,
    }
}

impl Case {
    fn stdin(mut self, path: &str) -> Case {
        self.stdin = Some(repo().join(path));
        self
    }
    fn contains(mut self, text: &str) -> Case {
        self.contains = Some(text.to_string());
        self
    }
}

/// A scratch directory of this test.
fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bpfx-every-command");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The commands `bpfx --help` lists (without `help`).
fn listed_commands() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfx"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The cases on the shipped examples: every command on every program file, each with the
/// inputs it needs, on both engines and the JIT's option sets where it runs code.
fn example_cases(tmp: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let out_bin = tmp.join("out.bin");
    let out_bin = out_bin.to_str().unwrap();
    let out_pcap = tmp.join("out.pcap");
    let out_pcap = out_pcap.to_str().unwrap();
    for &(name, kind) in EXAMPLES {
        let file = format!("examples/{name}");
        let f = file.as_str();
        match kind {
            Example::XdpObject => {
                for packet in PACKETS {
                    for engine in [
                        &["--engine", "interp"][..],
                        &["--engine", "jit"],
                        &["--hardened"],
                        &["--code-memory", "dual"],
                    ] {
                        let mut args = vec!["run", f, "--packet", packet, "--dump-maps"];
                        args.extend_from_slice(engine);
                        cases.push(case(&args, Expect::Ok));
                    }
                }
                cases.push(case(
                    &["run", f, "--packet", PACKETS[1], "--out", out_bin],
                    Expect::Ok,
                ));
                cases.push(case(&["run", f], Expect::Usage).contains("--packet"));
                cases.push(case(&["run", f, "--mem", MEM], Expect::Usage));
                for engine in ["interp", "jit"] {
                    cases.push(case(
                        &[
                            "bench",
                            f,
                            "--packet",
                            PACKETS[1],
                            "--min-time",
                            "1",
                            "--engine",
                            engine,
                            "--dump-maps",
                        ],
                        Expect::Ok,
                    ));
                    cases.push(case(
                        &["replay", f, "--pcap", PCAP, "--engine", engine],
                        Expect::Ok,
                    ));
                }
                cases.push(case(
                    &[
                        "replay",
                        f,
                        "--pcap",
                        PCAP,
                        "--out",
                        out_pcap,
                        "--threads",
                        "2",
                    ],
                    Expect::Ok,
                ));
                cases.push(case(&["bench", f, "--min-time", "1"], Expect::Usage));
                // Strict mode: the kernel's contract (`ringbuf.o` writes its reserved record,
                // typed as memory of the reserved size).
                let strict = Expect::Ok;
                cases.push(case(&["verify", f, "--strict"], strict));
                cases.push(case(
                    &["run", f, "--strict", "--packet", PACKETS[1]],
                    strict,
                ));
                cases.push(case(&["verify", f], Expect::Ok).contains("accepted"));
                cases.push(case(&["info", f], Expect::Ok));
                cases.push(case(&["disasm", f], Expect::Ok).contains("exit"));
                cases.push(case(&["disasm", f, "--pcs"], Expect::Ok));
                cases.push(case(&["jit-dump", f], Expect::Ok));
                cases.push(case(&["jit-dump", f, "--hardened"], Expect::Ok));
                cases.push(case(&["asm", f, "-o", out_bin], Expect::Fail("asm")));
            }
            Example::MemObject => {
                for engine in [
                    &["--engine", "interp"][..],
                    &["--engine", "jit"],
                    &["--hardened"],
                    &["--code-memory", "dual"],
                ] {
                    let mut args = vec!["run", f, "--mem", MEM, "--dump-maps"];
                    args.extend_from_slice(engine);
                    cases.push(case(&args, Expect::Ok));
                }
                cases.push(case(&["run", f], Expect::Ok));
                cases.push(case(&["run", f, "--packet", PACKETS[0]], Expect::Usage));
                for engine in ["interp", "jit"] {
                    cases.push(case(
                        &[
                            "bench",
                            f,
                            "--mem",
                            MEM,
                            "--min-time",
                            "1",
                            "--engine",
                            engine,
                        ],
                        Expect::Ok,
                    ));
                }
                cases.push(case(&["replay", f, "--pcap", PCAP], Expect::Usage));
                cases.push(case(&["verify", f], Expect::Ok));
                cases.push(case(&["verify", f, "--mem-size", "20"], Expect::Ok));
                cases.push(
                    case(&["verify", f, "--strict"], Expect::Fail("verify")).contains("--mem-size"),
                );
                cases.push(case(
                    &["verify", f, "--strict", "--mem-size", "20"],
                    Expect::Ok,
                ));
                cases.push(case(&["run", f, "--strict", "--mem", MEM], Expect::Ok));
                cases.push(case(&["info", f], Expect::Ok));
                cases.push(case(&["disasm", f], Expect::Ok));
                cases.push(case(&["jit-dump", f], Expect::Ok));
                cases.push(case(&["jit-dump", f, "--mem-size", "20"], Expect::Ok));
                cases.push(case(&["asm", f, "-o", out_bin], Expect::Fail("asm")));
            }
            Example::Asm => {
                // The program's header comment gives the checksum it computes.
                for engine in [
                    &["--engine", "interp"][..],
                    &["--engine", "jit"],
                    &["--hardened"],
                    &["--code-memory", "dual"],
                ] {
                    let mut args = vec!["run", f, "--mem", MEM];
                    args.extend_from_slice(engine);
                    cases.push(case(&args, Expect::Ok).contains("47201"));
                }
                cases.push(case(&["run", f, "--mem", MEM, "--dump-maps"], Expect::Ok));
                cases.push(case(
                    &["bench", f, "--mem", MEM, "--min-time", "1"],
                    Expect::Ok,
                ));
                cases.push(case(&["replay", f, "--pcap", PCAP], Expect::Usage));
                cases.push(case(&["verify", f], Expect::Ok));
                cases.push(case(&["verify", f, "--mem-size", "20"], Expect::Ok));
                cases.push(case(&["info", f], Expect::Fail("elf")));
                cases.push(case(&["disasm", f], Expect::Ok));
                cases.push(case(&["jit-dump", f], Expect::Ok));
                cases.push(case(&["jit-dump", f, "--mem-size", "20"], Expect::Ok));
                cases.push(case(&["asm", f, "-o", out_bin], Expect::Ok));
                cases.push(case(&["run", f, "--section", "x"], Expect::Usage));
            }
            Example::Data | Example::Capture => {
                // Bytes that are not a whole number of instructions: never a program.
                for cmd in ["run", "bench", "verify", "disasm", "jit-dump"] {
                    cases.push(case(&[cmd, f], Expect::Fail("decode")).contains("trailing"));
                }
                cases.push(case(&["info", f], Expect::Fail("elf")));
                cases.push(case(&["asm", f, "-o", out_bin], Expect::Fail("asm")));
                if kind == Example::Data {
                    cases.push(case(
                        &["replay", PACKETS_OBJECT, "--pcap", f],
                        Expect::Fail("capture"),
                    ));
                }
            }
            Example::Text => {
                for cmd in ["run", "bench", "verify", "disasm", "jit-dump"] {
                    cases.push(case(&[cmd, f], Expect::Fail("not_a_program")));
                }
                cases.push(case(&["info", f], Expect::Fail("elf")));
                cases.push(case(
                    &["replay", PACKETS_OBJECT, "--pcap", f],
                    Expect::Fail("capture"),
                ));
            }
        }
    }
    // The conformance plugin on the checksum program, as the bpf_conformance runner calls it:
    // the program's bytes in hex on stdin, the memory's as the first argument.
    let program = std::fs::read_to_string(repo().join("examples/checksum.asm")).unwrap();
    let bytes: Vec<u8> = bpfx_bytecode::assemble(&program)
        .unwrap()
        .iter()
        .flat_map(|i| i.to_bytes())
        .collect();
    let checksum_hex = tmp.join("checksum.hex");
    std::fs::write(&checksum_hex, hex(&bytes)).unwrap();
    let checksum_hex = checksum_hex.to_str().unwrap();
    let mem = hex(&std::fs::read(repo().join(MEM)).unwrap());
    for engine in ["--jit", "--interpret"] {
        cases.push(
            case(&["conformance-plugin", &mem, engine], Expect::Ok)
                .stdin(checksum_hex)
                .contains("b861"),
        );
    }
    cases.push(case(&["conformance-plugin"], Expect::Fail("hex")).stdin("README.md"));
    cases
}

/// An XDP example object, for cases about the other inputs.
const PACKETS_OBJECT: &str = "examples/xdp_parse.o";

/// Bytes as the conformance runner passes them: two hex digits and a space each.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x} ")).collect()
}

/// The error cases of a first try: missing and non-program files, truncated objects, sections
/// that are not there or hold two programs, conflicting options, standard input.
fn error_cases(tmp: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let program_commands = ["run", "bench", "verify", "disasm", "jit-dump", "info"];
    // A missing file.
    for cmd in program_commands {
        cases.push(case(&[cmd, "examples/missing.o"], Expect::Fail("io")).contains("missing.o"));
    }
    cases.push(case(
        &["asm", "missing.asm", "-o", "x.bin"],
        Expect::Fail("io"),
    ));
    cases.push(case(
        &["run", "examples/counter.o", "--mem", "examples/missing.bin"],
        Expect::Fail("io"),
    ));
    cases.push(case(
        &["run", PACKETS_OBJECT, "--packet", "examples/missing.bin"],
        Expect::Fail("io"),
    ));
    cases.push(case(
        &["replay", PACKETS_OBJECT, "--pcap", "missing.pcap"],
        Expect::Fail("io"),
    ));
    // Text that is not a program, whatever its name.
    for cmd in ["run", "bench", "verify", "disasm", "jit-dump"] {
        cases.push(case(&[cmd, "README.md"], Expect::Fail("not_a_program")).contains("Markdown"));
    }
    let renamed = tmp.join("readme.o");
    std::fs::copy(repo().join("README.md"), &renamed).unwrap();
    cases.push(case(
        &["run", renamed.to_str().unwrap()],
        Expect::Fail("not_a_program"),
    ));
    cases.push(case(&["info", "README.md"], Expect::Fail("elf")));
    // An ELF object cut short, at several places: in the header, before the section headers,
    // and inside them.
    let object = std::fs::read(repo().join("examples/xdp_parse.o")).unwrap();
    for cut in [10, 64, 1000, object.len() - 1] {
        let path = tmp.join(format!("cut{cut}.o"));
        std::fs::write(&path, &object[..cut]).unwrap();
        let p = path.to_str().unwrap().to_string();
        for cmd in program_commands {
            cases.push(case(&[cmd, &p], Expect::Fail("elf")).contains("truncated"));
        }
    }
    // Sections and programs.
    for cmd in ["run", "bench", "verify", "disasm", "jit-dump"] {
        cases.push(
            case(&[cmd, PACKETS_OBJECT, "--section", "nope"], Expect::Usage).contains("nope"),
        );
        cases.push(case(&[cmd, TWO], Expect::Usage).contains("first"));
        cases.push(case(&[cmd, TWO, "--section", "socket"], Expect::Usage).contains("second"));
        cases.push(case(&[cmd, TWO, "--program", "third"], Expect::Usage).contains("third"));
    }
    for program in ["first", "second"] {
        cases.push(case(
            &[
                "run",
                TWO,
                "--section",
                "socket",
                "--program",
                program,
                "--packet",
                PACKETS[0],
            ],
            Expect::Ok,
        ));
        cases.push(case(&["verify", TWO, "--program", program], Expect::Ok));
        cases.push(case(&["disasm", TWO, "--program", program], Expect::Ok));
        cases.push(case(&["jit-dump", TWO, "--program", program], Expect::Ok));
    }
    cases.push(case(&["info", TWO], Expect::Ok).contains("second"));
    // Conflicting options.
    for cmd in ["run", "bench"] {
        cases.push(case(
            &[cmd, PACKETS_OBJECT, "--mem", MEM, "--packet", PACKETS[0]],
            Expect::Usage,
        ));
        cases.push(case(
            &[
                "run",
                "examples/counter.o",
                "--engine",
                "interp",
                "--hardened",
            ],
            Expect::Usage,
        ));
        cases.push(case(
            &[
                cmd,
                "examples/counter.o",
                "--engine",
                "interp",
                "--code-memory",
                "dual",
            ],
            Expect::Usage,
        ));
        cases.push(case(
            &[cmd, "examples/counter.o", "--budget", "5", "--no-budget"],
            Expect::Usage,
        ));
    }
    cases.push(case(
        &[
            "replay",
            PACKETS_OBJECT,
            "--pcap",
            PCAP,
            "--packet",
            PACKETS[0],
        ],
        Expect::Usage,
    ));
    cases.push(case(
        &["replay", PACKETS_OBJECT, "--pcap", PCAP, "--mem", MEM],
        Expect::Usage,
    ));
    cases.push(case(
        &["run", "examples/counter.o", "--frob"],
        Expect::Usage,
    ));
    cases.push(case(&["frob"], Expect::Usage));
    // Standard input.
    cases.push(case(&["run", "-", "--mem", MEM], Expect::Ok).stdin("examples/checksum.asm"));
    cases.push(case(&["run", "-", "--mem", MEM], Expect::Ok).stdin("examples/counter.o"));
    cases.push(
        case(&["run", "-", "--packet", PACKETS[1]], Expect::Ok).stdin("examples/xdp_parse.o"),
    );
    cases.push(
        case(&["run", "examples/checksum.asm", "--mem", "-"], Expect::Ok)
            .stdin(MEM)
            .contains("47201"),
    );
    cases.push(case(&["run", "-", "--mem", "-"], Expect::Usage).stdin("examples/checksum.asm"));
    cases.push(
        case(&["bench", "-", "--mem", MEM, "--min-time", "1"], Expect::Ok)
            .stdin("examples/checksum.asm"),
    );
    for cmd in ["verify", "disasm", "jit-dump", "info"] {
        cases.push(case(&[cmd, "-"], Expect::Ok).stdin("examples/xdp_parse.o"));
    }
    cases.push(case(&["asm", "-", "-o", "/dev/null"], Expect::Ok).stdin("examples/checksum.asm"));
    cases.push(case(&["run", "-"], Expect::Fail("not_a_program")).stdin("examples/counter.c"));
    cases
}

/// Checks one output of `--json`: one JSON object of the documented schema, `ok` as the exit
/// code says, the error's kind as expected, and the command's documented fields.
fn check_json(command: &str, stdout: &str, expect: Expect) -> Result<(), String> {
    let mut docs = serde_json::Deserializer::from_str(stdout).into_iter::<Value>();
    let doc = match docs.next() {
        Some(Ok(doc)) => doc,
        Some(Err(e)) => return Err(format!("stdout is not JSON ({e})")),
        None => return Err("nothing on stdout".to_string()),
    };
    if docs.next().is_some() {
        return Err("more than one JSON document on stdout".to_string());
    }
    if doc["schema"].as_u64() != Some(schema_version()) {
        return Err(format!("schema is {}", doc["schema"]));
    }
    if doc["ok"] != Value::Bool(expect == Expect::Ok) {
        return Err(format!("ok is {}", doc["ok"]));
    }
    check_u64_pairs(&doc)?;
    if let Some(maps) = doc.get("maps") {
        check_maps(maps)?;
    }
    match expect {
        Expect::Ok => {
            if doc.get("error").is_some() {
                return Err("an error on success".to_string());
            }
            let fields: &[&str] = match command {
                "run" => &["engine", "result", "result_str"],
                "bench" => &[
                    "engine",
                    "result",
                    "result_str",
                    "code_memory",
                    "hardened",
                    "mode",
                    "verify_ns",
                    "compile_ns",
                    "ns_per_run",
                    "runs_per_batch",
                    "batches",
                ],
                "replay" => &[
                    "engine",
                    "context",
                    "threads",
                    "repeat",
                    "packets",
                    "runs",
                    "truncated",
                    "passed",
                    "dropped",
                    "verdicts",
                    "redirects",
                    "elapsed_ns",
                    "packets_per_second",
                    "ns_per_packet_median",
                    "ns_per_packet_p99",
                    "maps",
                ],
                "verify" => &[
                    "verdict",
                    "mode",
                    "instructions",
                    "memory_accesses",
                    "proven_accesses",
                ],
                "info" => &["programs", "maps", "externs", "license", "memory"],
                other => return Err(format!("{other} takes no --json")),
            };
            for field in fields {
                if doc.get(*field).is_none() {
                    return Err(format!("no `{field}`"));
                }
            }
        }
        Expect::Fail(_) | Expect::Usage => {
            let error = &doc["error"];
            let kind = error["kind"].as_str().unwrap_or_default();
            let want = match expect {
                Expect::Fail(kind) => kind,
                _ => "usage",
            };
            if kind != want {
                return Err(format!("error.kind is {kind:?}, expected {want:?}"));
            }
            if error["message"].as_str().is_none_or(str::is_empty) {
                return Err("no error.message".to_string());
            }
            if kind == "trap" && (error.get("pc").is_none() || error.get("insn").is_none()) {
                return Err("a trap without pc and insn".to_string());
            }
        }
    }
    Ok(())
}

/// Every `X_str` member has its number `X` beside it, with the same value.
fn check_u64_pairs(v: &Value) -> Result<(), String> {
    match v {
        Value::Object(members) => {
            for (k, value) in members {
                if let Some(base) = k.strip_suffix("_str") {
                    let text = value.as_str().ok_or(format!("`{k}` is not a string"))?;
                    let number = members.get(base).and_then(Value::as_u64);
                    if number.map(|n| n.to_string()).as_deref() != Some(text) {
                        return Err(format!("`{k}` = {text:?} but `{base}` = {number:?}"));
                    }
                }
                check_u64_pairs(value)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check_u64_pairs),
        _ => Ok(()),
    }
}

/// `maps` is a list of objects with the documented members.
fn check_maps(maps: &Value) -> Result<(), String> {
    let list = maps.as_array().ok_or("`maps` is not a list")?;
    for map in list {
        for field in ["name", "kind", "key_size", "value_size", "max_entries"] {
            if map.get(field).is_none() {
                return Err(format!("a map without `{field}`: {map}"));
            }
        }
    }
    Ok(())
}

/// The schema version docs/cli.md documents, from its heading "JSON output (`--json`, schema N)".
fn schema_version() -> u64 {
    let doc = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    let heading = doc
        .lines()
        .find(|l| l.starts_with("## JSON output"))
        .expect("docs/cli.md has a JSON output section");
    heading
        .rsplit("schema ")
        .next()
        .and_then(|t| t.trim_end_matches(')').parse().ok())
        .expect("the heading names the schema version")
}

/// Runs one case (plain, or with `--json`) and returns what is wrong with it.
fn check(case: &Case, json: bool) -> Result<(), String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bpfx"));
    cmd.args(&case.args).current_dir(repo());
    if json {
        cmd.arg("--json");
    }
    let stdin = match &case.stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
        None => Stdio::null(),
    };
    let out = cmd
        .stdin(stdin)
        .output()
        .map_err(|e| format!("cannot start: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let detail = || format!("\n    stdout: {stdout:.600}\n    stderr: {stderr:.600}");
    let code = out.status.code();
    let json_command = JSON_COMMANDS.contains(&case.args[0].as_str());
    // `--json` on a command without it is itself a usage error (still printed as JSON).
    let expect = if json && !json_command {
        Expect::Usage
    } else {
        case.expect
    };
    if code != Some(expect.code()) {
        return Err(format!(
            "exit code {code:?}, expected {} ({expect:?}){}",
            expect.code(),
            detail()
        ));
    }
    if expect != Expect::Ok {
        if !stderr.lines().any(|l| l.starts_with("error: ")) {
            return Err(format!("no `error: ` line on stderr{}", detail()));
        }
        if stderr.contains("panicked") {
            return Err(format!("a panic{}", detail()));
        }
    }
    if json {
        check_json(&case.args[0], &stdout, expect)
            .map_err(|e| format!("--json: {e}{}", detail()))?;
    } else if let Some(text) = &case.contains {
        let shown = if expect == Expect::Ok {
            &stdout
        } else {
            &stderr
        };
        if !shown.contains(text.as_str()) {
            return Err(format!("output lacks {text:?}{}", detail()));
        }
    }
    Ok(())
}

#[test]
fn every_command_on_every_example_and_every_first_mistake() {
    let tmp = scratch();

    // The table names every file of examples/.
    let mut files: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut named: Vec<String> = EXAMPLES.iter().map(|(n, _)| n.to_string()).collect();
    named.sort();
    assert_eq!(files, named, "EXAMPLES must list every file of examples/");

    let mut cases = example_cases(&tmp);
    cases.extend(error_cases(&tmp));

    // The cases cover every command `bpfx --help` lists.
    for command in listed_commands() {
        assert!(
            cases.iter().any(|c| c.args[0] == command),
            "no case runs `bpfx {command}`"
        );
    }

    // Every case plain and with --json, on a few threads (each run is a process).
    let jobs: Vec<(&Case, bool)> = cases.iter().flat_map(|c| [(c, false), (c, true)]).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(case, json)) = jobs.get(i) else {
                        break;
                    };
                    if let Err(why) = check(case, json) {
                        let json = if json { " --json" } else { "" };
                        let stdin = case
                            .stdin
                            .as_ref()
                            .map(|p| format!(" < {}", p.display()))
                            .unwrap_or_default();
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("bpfx {}{json}{stdin}: {why}", case.args.join(" ")));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} invocations failed:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n")
    );
}

/// An out-of-bounds access's trap names the address, the size and the regions, in the
/// message and in `error.access`, the same on both engines and every JIT option set.
#[test]
fn an_out_of_bounds_trap_names_the_address_size_and_regions() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bpfx-every-command-oob");
    std::fs::create_dir_all(&tmp).unwrap();
    let prog = tmp.join("oob.asm");
    std::fs::write(&prog, "mov r2, 7\nstxw [r1+62], r2\nmov r0, 0\nexit\n").unwrap();
    let prog = prog.to_str().unwrap();
    for options in [
        &["--engine", "interp"][..],
        &["--engine", "jit"],
        &["--hardened"],
        &["--code-memory", "dual"],
    ] {
        let mut args = vec!["run", prog, "--mem", MEM, "--json"];
        args.extend_from_slice(options);
        let out = Command::new(env!("CARGO_BIN_EXE_bpfx"))
            .args(&args)
            .current_dir(repo())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{options:?}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let error = &doc["error"];
        assert_eq!(error["kind"], "trap", "{options:?}: {doc}");
        assert_eq!(error["pc"], 1, "{options:?}: {doc}");
        let access = &error["access"];
        assert_eq!(access, &doc["trap"]["access"], "{options:?}");
        assert_eq!(
            (&access["size"], &access["write"]),
            (&4.into(), &true.into())
        );
        let regions = access["regions"].as_array().unwrap();
        let kinds: Vec<&str> = regions
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["input", "stack"], "{options:?}: {doc}");
        assert_eq!(
            (&regions[0]["len"], &regions[1]["len"]),
            (&20.into(), &512.into())
        );
        let input = regions[0]["start"].as_u64().unwrap();
        let addr = access["addr"].as_u64().unwrap();
        assert_eq!(addr, input + 62, "{options:?}: {doc}");
        let stack = regions[1]["start"].as_u64().unwrap();
        let message = error["message"].as_str().unwrap();
        let want = format!(
            "write of 4 bytes at {addr:#x}, outside input [{input:#x},+20), stack [{stack:#x},+512)"
        );
        assert!(message.contains(&want), "{options:?}: {message}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&want), "{options:?}: {stderr}");
    }
}

/// `--dump-maps --json` shows each global data section's variables by name, decoded through
/// the object's BTF (8-byte integers as decimal strings), with their bytes in hex; on both
/// engines. examples/globals.o on the IPv4 header: sum 1249, so 1249 * 3 + 1000.
#[test]
fn dumped_global_data_lists_its_variables_decoded_through_btf() {
    for engine in ["interp", "jit"] {
        let out = Command::new(env!("CARGO_BIN_EXE_bpfx"))
            .args([
                "run",
                "examples/globals.o",
                "--mem",
                MEM,
                "--dump-maps",
                "--json",
            ])
            .args(["--engine", engine])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(out.status.success(), "{engine}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let var = |section: &str, name: &str| {
            let map = doc["maps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == section)
                .unwrap_or_else(|| panic!("{engine}: no map {section}: {doc}"));
            map["vars"]
                .as_array()
                .unwrap_or_else(|| panic!("{engine}: {section} has no vars: {map}"))
                .iter()
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("{engine}: no {name} in {map}"))
                .clone()
        };
        assert_eq!(var(".rodata", "multiplier")["value"], "3", "{engine}");
        assert_eq!(var(".data", "base")["value"], "1000", "{engine}");
        assert_eq!(var(".bss", "runs")["value"], "1", "{engine}");
        let last = var(".bss", "last_result");
        assert_eq!(last["value"], (1249 * 3 + 1000).to_string(), "{engine}");
        assert_eq!(last["hex"], "8b12000000000000", "{engine}");
        assert_eq!((&last["offset"], &last["size"]), (&8.into(), &8.into()));
    }
}

/// A BTF-defined map's entries come with `key_btf` and `value_btf`, decoded through the types
/// its definition points `key` and `value` at, beside the raw `key` and `value`: the per-CPU
/// counters of examples/percpu_count.o as `{packets, bytes}` structs, one per CPU; on both
/// engines.
#[test]
fn dumped_map_entries_are_decoded_through_btf() {
    for engine in ["interp", "jit"] {
        let out = Command::new(env!("CARGO_BIN_EXE_bpfx"))
            .args(["run", "examples/percpu_count.o", "--packet", PACKETS[1]])
            .args(["--dump-maps", "--json", "--engine", engine])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(out.status.success(), "{engine}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let counts = &doc["maps"][0];
        assert_eq!(counts["name"], "counts", "{engine}: {doc}");
        let entries = counts["entries"].as_array().unwrap();
        // The TCP SYN is counted under key 0 (docs in examples/percpu_count.c), 54 bytes.
        let e = entries.iter().find(|e| e["key"] == 0).unwrap();
        assert_eq!(e["key_btf"], 0, "{engine}: {e}");
        // Counted on the CPU the run had: summed over CPUs, one packet of 54 bytes.
        let per_cpu = e["value_btf"].as_array().unwrap();
        let sum = |field: &str| -> u64 {
            per_cpu
                .iter()
                .map(|v| v[field].as_str().unwrap().parse::<u64>().unwrap())
                .sum()
        };
        assert_eq!((sum("packets"), sum("bytes")), (1, 54), "{engine}: {e}");
        let raw = e["value"].as_array().unwrap();
        assert_eq!(per_cpu.len(), raw.len(), "{engine}");
        assert!(
            raw.contains(&"01000000000000003600000000000000".into()),
            "{engine}: {e}"
        );
    }
}
