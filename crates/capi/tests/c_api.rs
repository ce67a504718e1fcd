//! The C API from C: builds `libbpfx.a`/`libbpfx.so`, compiles `tests/c/test_capi.c` (every
//! function of `bpfx.h`, with its error paths, linked statically) and `tests/c/ubpf_style.c`
//! (a uBPF embedder, linked dynamically against `-lbpfx`) with the system C compiler, runs
//! them (under valgrind when it is installed) and compares what they print with the same
//! programs run on the engines in Rust through the facade.

use bpfx_bytecode::Program as Bytecode;
use runtime::{
    ArgKind, Budget, CodeMemory, Context, Engine, GuestMemory, HelperError, HelperRet, HelperSig,
    JitOptions, MapKind, MapSpec, Mode, Object, ProgramDef, RetKind, StructLayout, UpdateFlag, Vm,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

fn repo() -> PathBuf {
    Path::new(MANIFEST).join("../..")
}

fn examples() -> PathBuf {
    repo().join("examples")
}

fn example(name: &str) -> Vec<u8> {
    let p = examples().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The libraries, built by cargo for the profile the tests use (so no dependency is built
/// twice): `(libbpfx.a, directory of libbpfx.so)`. `cargo test` builds a package's library
/// only when its tests link it, which a library without an `rlib` is not, hence this build.
fn libraries() -> &'static (PathBuf, PathBuf) {
    static LIBS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    LIBS.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let out = Command::new(cargo)
            .args([
                "build",
                "--profile",
                "test",
                "-p",
                "bpfx-capi",
                "--lib",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(MANIFEST)
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "building libbpfx failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (mut a, mut so) = (None, None);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            for f in msg["filenames"].as_array().into_iter().flatten() {
                let f = PathBuf::from(f.as_str().unwrap_or_default());
                match f.file_name().and_then(|n| n.to_str()) {
                    Some("libbpfx.a") => a = Some(f),
                    Some("libbpfx.so") => so = Some(f),
                    _ => {}
                }
            }
        }
        let a = a.expect("cargo reported libbpfx.a");
        let so = so.expect("cargo reported libbpfx.so");
        (a, so.parent().unwrap().to_path_buf())
    })
}

fn work_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi-c-tests");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Assembled bytecode.
fn bytecode(asm: &str) -> Bytecode {
    let insns = bpfx_bytecode::assemble(asm).expect("assembles");
    Bytecode::decode(insns).expect("decodes")
}

fn write_program(dir: &Path, name: &str, asm: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytecode(asm).to_bytes()).unwrap();
    p
}

const HELPERS: &str = "
    mov %r6, %r1
    ldxdw %r1, [%r6]
    call 4096           # scale(x), with the multiplier from the helper's context
    stxdw [%r6+8], %r0
    ldxdw %r1, [%r6+16]
    call 4097           # check_flag(flag): fails on 0, else flag + 1
    exit
";
const OOB: &str = "ldxdw %r0, [%r1+64]\nexit";
const CTX: &str = "
    ldxdw %r2, [%r1]        # data
    ldxdw %r3, [%r1+8]      # data_end
    mov %r0, %r3
    sub %r0, %r2            # packet length
    ldxdw %r4, [%r1+16]     # the embedder's own field
    add %r0, %r4
    exit
";
const UNKNOWN_HELPER: &str = "mov %r1, 5\ncall 77\nexit";

const UBPF_HELPERS: &str = "
    mov %r6, %r1
    mov %r7, %r2
    mov %r1, 1
    mov %r2, 2
    mov %r3, 3
    mov %r4, 4
    mov %r5, 5
    call 0              # gather_bytes(1, 2, 3, 4, 5)
    mov %r8, %r0
    mov %r1, %r6
    mov %r2, %r7
    call 9              # memfrob(mem, len): rewrites the memory in place
    ldxb %r1, [%r6]
    mul %r1, %r1
    call 10             # sqrti(b * b)
    add %r8, %r0
    mov %r0, %r8
    exit
";
const UBPF_UNWIND: &str = "
    ldxdw %r1, [%r1]
    call 11             # unwind(x): x == 0 stops the program with 0
    add %r0, 100
    exit
";

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

fn compile_c(source: &str, out: &Path, link: &[String]) {
    let mut cmd = Command::new(cc());
    cmd.args(["-std=c11", "-g", "-O1", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(repo().join("include"))
        .arg(Path::new(MANIFEST).join("tests/c").join(source))
        .arg("-o")
        .arg(out)
        .args(link);
    let o = cmd.output().expect("the C compiler runs");
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn valgrind() -> Option<PathBuf> {
    let ok = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| PathBuf::from("valgrind"))
}

/// Runs a compiled C program (under valgrind when installed: any invalid access or leak
/// fails the run) and returns its stdout.
fn run_c(exe: &Path, args: &[&Path]) -> String {
    let mut cmd = match valgrind() {
        Some(v) => {
            let mut c = Command::new(v);
            c.args([
                "--error-exitcode=97",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
                "--show-leak-kinds=definite,indirect",
                "--quiet",
            ])
            .arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args(args);
    let o = cmd.output().expect("the program runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "{cmd:?} exited with {}:\nstdout:\n{}\nstderr:\n{stderr}",
        o.status,
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).expect("UTF-8 output")
}

fn static_link() -> Vec<String> {
    let (a, _) = libraries();
    // What a Rust static library needs from the system on Linux.
    let mut v = vec![a.display().to_string()];
    v.extend(
        [
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    v
}

fn dynamic_link() -> Vec<String> {
    let (_, dir) = libraries();
    vec![
        format!("-L{}", dir.display()),
        format!("-Wl,-rpath,{}", dir.display()),
        "-lbpfx".to_string(),
    ]
}

fn u64_at(mem: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(mem[i * 8..i * 8 + 8].try_into().unwrap())
}

fn sig(args: Vec<ArgKind>) -> HelperSig {
    HelperSig::new("h", args, RetKind::Scalar)
}

/// The Rust side of `test_capi.c`'s helpers.
fn capi_vm(args: Vec<ArgKind>) -> Vm {
    Vm::new()
        .register_helper(0x1000, sig(args.clone()), |_, a| Ok(a[0] * 3))
        .register_helper(0x1001, sig(args), |_, a| {
            if a[0] == 0 {
                Err(HelperError("flag is zero".into()))
            } else {
                Ok(a[0] + 1)
            }
        })
}

fn raw_object(vm: &Vm, asm: &str) -> Object {
    vm.object(vec![ProgramDef::new("main", "", bytecode(asm))], Vec::new())
        .unwrap()
}

/// What `test_capi.c` must print, from the engines in Rust.
fn expected_capi() -> String {
    let mut out = String::new();
    let names = ["interp", "jit"];
    // checksum
    let obj = raw_object(
        &Vm::new(),
        &String::from_utf8(example("checksum.asm")).unwrap(),
    );
    let v = obj.program("main").unwrap().verify(Mode::Checked).unwrap();
    for (e, name) in Engine::ALL.iter().zip(names) {
        let mut p = v.clone().engine(*e, false).unwrap();
        let r = p.run(&mut example("ipv4-header.bin")).unwrap();
        writeln!(out, "checksum.{name} {r}").unwrap();
    }
    // helpers, declared scalars, strict
    let obj = raw_object(&capi_vm(vec![ArgKind::Scalar]), HELPERS);
    let v = obj
        .program("main")
        .unwrap()
        .input_size(24)
        .verify(Mode::Strict)
        .unwrap();
    for (e, name) in Engine::ALL.iter().zip(names) {
        let mut p = v.clone().engine(*e, false).unwrap();
        let mut mem: Vec<u8> = [7u64, 0, 3].iter().flat_map(|x| x.to_le_bytes()).collect();
        let r = p.run(&mut mem).unwrap();
        writeln!(out, "helpers.{name} {r} {}", u64_at(&mem, 1)).unwrap();
        mem[16..24].fill(0);
        match p.run(&mut mem) {
            Err(runtime::RunError::Trap { trap, .. }) => {
                writeln!(out, "helpers_trap.{name} {} {}", trap.kind as u8, trap.pc.0).unwrap()
            }
            other => panic!("expected a trap, got {other:?}"),
        }
    }
    // helpers, unknown signature, checked, JIT
    let obj = raw_object(
        &capi_vm(vec![ArgKind::PtrToMem { size_arg: None }; 5]),
        HELPERS,
    );
    let mut p = obj
        .program("main")
        .unwrap()
        .input_size(24)
        .verify(Mode::Checked)
        .unwrap()
        .compile()
        .unwrap();
    let mut mem: Vec<u8> = [7u64, 0, 3].iter().flat_map(|x| x.to_le_bytes()).collect();
    let r = p.run(&mut mem).unwrap();
    writeln!(out, "helpers_unknown_sig.jit {r} {}", u64_at(&mem, 1)).unwrap();
    // out of bounds
    let obj = raw_object(&Vm::new(), OOB);
    let v = obj.program("main").unwrap().verify(Mode::Checked).unwrap();
    for (e, name) in Engine::ALL.iter().zip(names) {
        let mut p = v.clone().engine(*e, false).unwrap();
        match p.run(&mut [0u8; 8]) {
            Err(runtime::RunError::Trap { trap, .. }) => writeln!(
                out,
                "oob.{name} {} {} {}",
                trap.kind as u8,
                trap.pc.0,
                trap.kind.name()
            )
            .unwrap(),
            other => panic!("expected a trap, got {other:?}"),
        }
    }
    // counter.o
    let obj = Vm::new().load(&example("counter.o")).unwrap();
    let v = obj
        .program("packet_filter")
        .unwrap()
        .verify(Mode::Checked)
        .unwrap();
    let mut jit = v.clone().compile().unwrap();
    let r: Vec<u64> = ["tcp-syn.bin", "tcp-syn.bin", "arp.bin"]
        .iter()
        .map(|f| jit.run(&mut example(f)).unwrap())
        .collect();
    writeln!(out, "counter.jit {} {} {}", r[0], r[1], r[2]).unwrap();
    let ipv4 = |obj: &Object| {
        let v = obj
            .map("counters")
            .unwrap()
            .lookup(&0x0800u32.to_le_bytes())
            .unwrap()
            .unwrap();
        u64::from_le_bytes(v.try_into().unwrap())
    };
    writeln!(out, "counter.ipv4 {}", ipv4(&obj)).unwrap();
    v.interpret().run(&mut example("tcp-syn.bin")).unwrap();
    writeln!(out, "counter.ipv4_after {}", ipv4(&obj)).unwrap();
    // xdp_parse.o
    let obj = Vm::new().load(&example("xdp_parse.o")).unwrap();
    let first = obj.programs().next().unwrap().name.to_string();
    let v = obj.program(&first).unwrap().verify(Mode::Checked).unwrap();
    for (e, name) in Engine::ALL.iter().zip(names) {
        let mut p = v.clone().engine(*e, false).unwrap();
        let a: Vec<u64> = ["tcp-syn.bin", "telnet-syn.bin", "arp.bin"]
            .iter()
            .map(|f| p.run_xdp(&mut example(f)).unwrap().code())
            .collect();
        writeln!(out, "xdp.{name} {} {} {}", a[0], a[1], a[2]).unwrap();
    }
    // perf_sample.o: the 20-byte sample of each frame (header, length, CPU), then one read
    // into a 4-byte buffer
    for name in names {
        let mut line = format!("perf.{name}");
        for f in ["tcp-syn.bin", "arp.bin"] {
            let p = example(f);
            write!(line, " 20:{}:{:02x}{:02x}:1", p.len(), p[12], p[13]).unwrap();
        }
        writeln!(out, "{line}").unwrap();
    }
    writeln!(out, "perf.truncated 20").unwrap();
    // struct context
    let obj = raw_object(&Vm::new(), CTX);
    let layout = StructLayout {
        size: 24,
        packet: Some((0, 8)),
    };
    let v = obj
        .program("main")
        .unwrap()
        .context(Context::Struct(layout))
        .verify(Mode::Strict)
        .unwrap();
    for (e, name) in Engine::ALL.iter().zip(names) {
        let mut p = v.clone().engine(*e, false).unwrap();
        let mut ctx: Vec<u8> = [0u64, 0, 100]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let r = p.run_ctx(&mut ctx, &mut [0u8; 10]).unwrap();
        writeln!(out, "ctx.{name} {r}").unwrap();
    }
    // TC and socket-filter contexts: skb->len of the whole frame, then of its first 20 bytes
    for name in names {
        writeln!(out, "skb.{name} {} 20", example("tcp-syn.bin").len()).unwrap();
    }
    out
}

#[test]
fn test_capi_c_exercises_the_whole_header() {
    let dir = work_dir().join("capi");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("checksum.bin"), {
        let asm = String::from_utf8(example("checksum.asm")).unwrap();
        bytecode(&asm).to_bytes()
    })
    .unwrap();
    write_program(&dir, "helpers.bin", HELPERS);
    write_program(&dir, "oob.bin", OOB);
    write_program(&dir, "ctx.bin", CTX);
    write_program(&dir, "unknown_helper.bin", UNKNOWN_HELPER);
    let exe = dir.join("test_capi");
    compile_c("test_capi.c", &exe, &static_link());
    let got = run_c(&exe, &[&examples(), &dir]);
    assert_eq!(got, expected_capi());
}

/// The Rust side of `ubpf_style.c`'s external functions, with uBPF's unwind rule: the
/// helper ends the run with result 0 when it returns 0.
fn ubpf_vm() -> Vm {
    let s = || sig(vec![ArgKind::PtrToMem { size_arg: None }; 5]);
    Vm::new()
        .register_helper(0, s(), |_, a| {
            Ok((a[0] << 32)
                | (u64::from(a[1] as u32) << 24)
                | (u64::from(a[2] as u32) << 16)
                | (u64::from(a[3] as u32) << 8)
                | u64::from(a[4] as u32))
        })
        .register_helper(9, s(), |m: &mut GuestMemory<'_>, a| {
            let len = usize::try_from(a[1]).map_err(|_| HelperError("len".into()))?;
            let mut bytes = m
                .read(a[0], len)
                .ok_or_else(|| HelperError("memfrob: not guest memory".into()))?;
            bytes.iter_mut().for_each(|b| *b ^= 42);
            m.write(a[0], &bytes)
                .ok_or_else(|| HelperError("memfrob: not writable".into()))?;
            Ok(0)
        })
        .register_helper(10, s(), |_, a| Ok(a[0].isqrt()))
        .register_ending_helper(11, s(), |_, a| {
            Ok(if a[0] == 0 {
                HelperRet::Return(0)
            } else {
                HelperRet::Value(a[0])
            })
        })
}

/// What `ubpf_style.c` prints for `prog` on `mem`, from the engines in Rust (interpreter
/// first, then the JIT on the same object, as the C program does).
fn expected_ubpf(obj: &Object, mem: &[u8]) -> String {
    let name = obj.programs().next().unwrap().name.to_string();
    let v = obj
        .program(&name)
        .unwrap()
        .context(Context::Memory)
        .verify(Mode::Checked)
        .unwrap();
    let mut out = String::new();
    for (e, label) in Engine::ALL.iter().zip(["interp", "jit"]) {
        let mut p = v.clone().engine(*e, false).unwrap();
        let mut m = mem.to_vec();
        let r0 = p.run(&mut m).unwrap_or_else(|e| panic!("{e}"));
        let hex: String = m.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(out, "{label} {r0:#x} {hex}").unwrap();
    }
    out
}

#[test]
fn ubpf_style_program_runs_unchanged_with_the_rust_results() {
    let dir = work_dir().join("ubpf");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("ubpf_style");
    compile_c("ubpf_style.c", &exe, &dynamic_link());

    let helpers = write_program(&dir, "helpers.bin", UBPF_HELPERS);
    let unwind = write_program(&dir, "unwind.bin", UBPF_UNWIND);
    let header = examples().join("ipv4-header.bin");
    let five = dir.join("five.bin");
    std::fs::write(&five, 5u64.to_le_bytes()).unwrap();
    let zero = dir.join("zero.bin");
    std::fs::write(&zero, 0u64.to_le_bytes()).unwrap();
    let counter = examples().join("counter.o");

    let cases: Vec<(PathBuf, PathBuf, Object)> = vec![
        (
            helpers.clone(),
            header.clone(),
            raw_object(&ubpf_vm(), UBPF_HELPERS),
        ),
        (
            unwind.clone(),
            five.clone(),
            raw_object(&ubpf_vm(), UBPF_UNWIND),
        ),
        (
            unwind.clone(),
            zero.clone(),
            raw_object(&ubpf_vm(), UBPF_UNWIND),
        ),
        (
            counter.clone(),
            examples().join("tcp-syn.bin"),
            ubpf_vm().load(&example("counter.o")).unwrap(),
        ),
        (
            counter.clone(),
            examples().join("arp.bin"),
            ubpf_vm().load(&example("counter.o")).unwrap(),
        ),
    ];
    for (prog, mem, obj) in &cases {
        let got = run_c(&exe, &[prog, mem]);
        let want = expected_ubpf(obj, &std::fs::read(mem).unwrap());
        assert_eq!(got, want, "{} on {}", prog.display(), mem.display());
    }
    // The unwind helper stopped the program: 0, not 100.
    let zero_run = run_c(&exe, &[&unwind, &zero]);
    assert!(zero_run.starts_with("interp 0x0 "), "{zero_run}");
}

#[test]
fn library_exports_exactly_what_the_headers_declare() {
    let (_, dir) = libraries();
    let so = dir.join("libbpfx.so");
    let o = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&so)
        .output()
        .expect("nm runs");
    assert!(o.status.success());
    let mut exported: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T"
                && (name.starts_with("bpfx_")
                    || name.starts_with("ubpf_")
                    || name == "as_external_function_t"))
                .then(|| name.to_string())
        })
        .collect();
    exported.sort();
    let mut declared = Vec::new();
    for h in ["bpfx.h", "ubpf.h"] {
        let text = std::fs::read_to_string(repo().join("include").join(h)).unwrap();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("typedef") || line.starts_with('*') || line.starts_with("/*") {
                continue;
            }
            if let Some(open) = line.find('(') {
                let name = line[..open].rsplit([' ', '*']).next().unwrap();
                if name.starts_with("bpfx_")
                    || name.starts_with("ubpf_")
                    || name == "as_external_function_t"
                {
                    declared.push(name.to_string());
                }
            }
        }
    }
    declared.sort();
    declared.dedup();
    assert_eq!(exported, declared);
}

#[test]
fn headers_compile_as_c_and_cpp() {
    let dir = work_dir();
    let src = dir.join("both.c");
    std::fs::write(
        &src,
        "#include <bpfx.h>\n#include <ubpf.h>\nint main(void) { return 0; }\n",
    )
    .unwrap();
    for (compiler, std) in [(cc(), "-std=c99"), ("c++".to_string(), "-std=c++11")] {
        let mut cmd = Command::new(&compiler);
        cmd.args([
            std,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
        ]);
        if compiler == "c++" {
            cmd.args(["-x", "c++"]);
        }
        let o = cmd
            .arg("-I")
            .arg(repo().join("include"))
            .arg(&src)
            .output()
            .expect("the compiler runs");
        assert!(
            o.status.success(),
            "{cmd:?}:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The example of `docs/c-api.md`, extracted from the page: it builds, runs clean, prints what
/// the engines in Rust compute, and what the page shows it printing.
#[test]
fn docs_example_builds_and_runs() {
    let page = std::fs::read_to_string(repo().join("docs/c-api.md")).unwrap();
    let section = page
        .split("## A complete embedding example")
        .nth(1)
        .expect("the example section");
    let code = section
        .split("```c\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .expect("a C block");
    let shown: Vec<&str> = section
        .split("$ ./app examples/counter.o examples/tcp-syn.bin\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the shown output")
        .lines()
        .collect();
    let dir = work_dir().join("docs");
    std::fs::create_dir_all(&dir).unwrap();
    let built = dir.join("app.c");
    std::fs::write(&built, code).unwrap();
    let exe = dir.join("app");
    let mut cmd = Command::new(cc());
    cmd.args(["-std=c11", "-g", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(repo().join("include"))
        .arg(&built)
        .arg("-o")
        .arg(&exe)
        .args(static_link());
    let o = cmd.output().expect("the C compiler runs");
    assert!(
        o.status.success(),
        "{cmd:?}:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = run_c(
        &exe,
        &[
            &examples().join("counter.o"),
            &examples().join("tcp-syn.bin"),
        ],
    );

    let obj = Vm::new().load(&example("counter.o")).unwrap();
    let mut p = obj
        .program("packet_filter")
        .unwrap()
        .verify(Mode::Checked)
        .unwrap()
        .compile()
        .unwrap();
    let verdict = p.run(&mut example("tcp-syn.bin")).unwrap();
    let count = obj
        .map("counters")
        .unwrap()
        .lookup(&0x0800u32.to_le_bytes())
        .unwrap()
        .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
    let want = format!("verdict {verdict}\nIPv4 frames: {count}\nlisting: yes\n");
    assert_eq!(got, want);
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        shown,
        "the page shows other output"
    );
}

/// The struct-context reproducer: `data + 8 <= data_end`, then an unguarded load of `[data]`.
fn packet_reader(data: u16, data_end: u16) -> String {
    format!(
        "ldxdw %r2, [%r1+{data}]\nldxdw %r3, [%r1+{data_end}]\nmov %r4, %r2\nadd %r4, 8\n\
         jgt %r4, %r3, +2\nldxdw %r0, [%r2]\nexit\nmov %r0, 0\nexit"
    )
}

/// `hostile.c`'s layouts, in its order, and its helper programs.
const LAYOUTS: [(u16, u16, u16); 9] = [
    (16, 4, 0),
    (16, 8, 8),
    (16, 0, 0),
    (24, 8, 4),
    (16, 0, 16),
    (8, 8, 0),
    (65535, 0, 65528),
    (16, 0, 8),
    (16, 8, 0),
];
const FILL: [(&str, &str); 9] = [
    (
        "fill_wild",
        "lddw %r1, 0x414141414000\nmov %r2, 8\ncall 4096\nexit",
    ),
    ("fill_oversize", "mov %r2, 4096\ncall 4096\nexit"),
    ("fill_before", "add %r1, -1\nmov %r2, 4\ncall 4096\nexit"),
    (
        "fill_wrap",
        "add %r1, 8\nlddw %r2, 0xfffffffffffffffc\ncall 4096\nexit",
    ),
    ("fill_huge", "lddw %r2, 0x8000000000000000\ncall 4096\nexit"),
    (
        "fill_stack",
        "mov %r1, %r10\nadd %r1, -8\nmov %r2, 16\ncall 4096\nexit",
    ),
    ("fill_ok", "mov %r2, 16\ncall 4096\nexit"),
    ("fill_tail", "add %r1, 12\nmov %r2, 4\ncall 4096\nexit"),
    (
        "fill_frame",
        "mov %r1, %r10\nadd %r1, -512\nmov %r2, 512\ncall 4096\nexit",
    ),
];

/// What `hostile.c` must print, from the engines in Rust.
fn expected_hostile() -> String {
    let mut out = String::new();
    let names = ["interp", "jit"];
    for (size, d, e) in LAYOUTS {
        let status = if StructLayout::new(size, Some((d, e))).is_ok() {
            0
        } else {
            2 // BPFX_ERR_ARGUMENT
        };
        writeln!(out, "layout {size} {d} {e} {status}").unwrap();
    }
    let obj = raw_object(&Vm::new(), &packet_reader(8, 0));
    let v = obj
        .program("main")
        .unwrap()
        .context(Context::Struct(
            StructLayout::new(16, Some((8, 0))).unwrap(),
        ))
        .verify(Mode::Strict)
        .unwrap();
    for (e, name) in Engine::ALL.iter().zip(names) {
        let mut p = v.clone().engine(*e, false).unwrap();
        let mut packet = 0x1122_3344_5566_7788u64.to_le_bytes();
        let full = p.run_ctx(&mut [0; 16], &mut packet).unwrap();
        let short = p.run_ctx(&mut [0; 16], &mut packet[..4]).unwrap();
        writeln!(out, "reader.{name} {full} {short}").unwrap();
    }
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c = calls.clone();
    let vm = Vm::new().register_helper(
        0x1000,
        sig(vec![
            ArgKind::PtrToMem { size_arg: Some(1) },
            ArgKind::Scalar,
        ]),
        move |mem: &mut GuestMemory<'_>, a| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let len = usize::try_from(a[1]).map_err(|_| HelperError("size".into()))?;
            mem.write(a[0], &vec![0x41; len])
                .ok_or_else(|| HelperError("fill: not guest memory".into()))?;
            Ok(a[1])
        },
    );
    for (prog, asm) in FILL {
        let obj = raw_object(&vm, asm);
        let v = obj.program("main").unwrap().verify(Mode::Checked).unwrap();
        for (e, name) in Engine::ALL.iter().zip(names) {
            let mut p = v.clone().engine(*e, false).unwrap();
            let mut mem = [7u8; 16];
            calls.store(0, std::sync::atomic::Ordering::Relaxed);
            let (status, kind, pc, r0) = match p.run(&mut mem) {
                Ok(r) => (0, 0, 0, r),
                Err(runtime::RunError::Trap { trap, .. }) => (9, trap.kind as u8, trap.pc.0, 0),
                Err(e) => panic!("{prog}: {e}"),
            };
            let n = calls.load(std::sync::atomic::Ordering::Relaxed);
            writeln!(
                out,
                "{prog}.{name} {status} {kind} {pc} {r0} {n} {} {}",
                mem[0], mem[15]
            )
            .unwrap();
        }
    }
    out
}

/// What `budget.c` prints, from the same programs run through the facade.
fn expected_budget(endless: &str, count: &str) -> String {
    let vm = Vm::new();
    let mut out = String::new();
    let mut line = |label: &str, engine: Engine, r: Result<u64, runtime::RunError>| {
        let what = match r {
            Ok(r0) => format!("result {r0}"),
            Err(runtime::RunError::Trap { trap, .. }) => {
                format!("trap {} {}", trap.kind.name(), trap.pc.0)
            }
            Err(e) => panic!("{label}: {e}"),
        };
        writeln!(out, "{label} {} {what}", engine.name()).unwrap();
    };
    for engine in Engine::ALL {
        let verified = |asm: &str| {
            raw_object(&vm, asm)
                .program("main")
                .unwrap()
                .verify(Mode::Checked)
                .unwrap()
        };
        let mut p = verified(endless).engine(engine, false).unwrap();
        line("default", engine, p.run(&mut []));
        let mut p = verified(endless).engine(engine, true).unwrap();
        for label in ["limit-1001", "limit-1001-again"] {
            p.set_budget(Some(1001));
            line(label, engine, p.run(&mut []));
        }
        p.set_budget(None);
        line("default-again", engine, p.run(&mut []));
        let mut p = verified(count).engine(engine, false).unwrap();
        line("count-default", engine, p.run(&mut []));
        p.set_budget(runtime::Budget::Unlimited);
        line("count-unlimited", engine, p.run(&mut []));
        let mut p = verified(count).engine(engine, true).unwrap();
        for (label, n) in [("count-limit-21", 21), ("count-limit-22", 22)] {
            p.set_budget(Some(n));
            line(label, engine, p.run(&mut []));
        }
    }
    out
}

/// Hostile context layouts and helper memory arguments from C (`tests/c/hostile.c`, under
/// valgrind when installed): every reproducer is refused or traps, on both engines, and the
/// C helper never sees an out-of-bounds range.
#[test]
fn hostile_c_layouts_and_helper_arguments_are_stopped() {
    let dir = work_dir().join("hostile");
    std::fs::create_dir_all(&dir).unwrap();
    write_program(&dir, "ctx_overlap.bin", &packet_reader(4, 0));
    write_program(&dir, "ctx_reader.bin", &packet_reader(8, 0));
    for (name, asm) in FILL {
        write_program(&dir, &format!("{name}.bin"), asm);
    }
    let exe = dir.join("hostile");
    compile_c("hostile.c", &exe, &static_link());
    let got = run_c(&exe, &[&dir]);
    let want = expected_hostile();
    // The reproducers, as the C side saw them: refused layouts, trapped calls.
    assert!(want.starts_with("layout 16 4 0 2\n"), "{want}");
    assert!(want.contains("fill_wild.jit 9 1 3 0 0 7 7\n"), "{want}");
    assert!(want.contains("fill_oversize.jit 9 1 1 0 0 7 7\n"), "{want}");
    assert_eq!(got, want);
}

#[test]
fn budget_c_ends_every_run() {
    let dir = work_dir().join("budget");
    std::fs::create_dir_all(&dir).unwrap();
    let endless = std::fs::read_to_string(repo().join("tests/endless/loop.asm")).unwrap();
    let count = "mov %r0, 0\nadd %r0, 1\njlt %r0, 10, -2\nexit";
    write_program(&dir, "loop.bin", &endless);
    write_program(&dir, "count.bin", count);
    let exe = dir.join("budget");
    compile_c("budget.c", &exe, &static_link());
    // Not under valgrind: the default budget's 2^28 instructions would take it many minutes.
    let o = Command::new(&exe).arg(&dir).output().expect("runs");
    assert!(
        o.status.success(),
        "budget.c failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = String::from_utf8(o.stdout).unwrap();
    assert_eq!(got, expected_budget(&endless, count));
    assert!(
        got.contains("default interp trap budget-exhausted 2\n"),
        "{got}"
    );
    assert!(
        got.contains("default jit trap budget-exhausted 2\n"),
        "{got}"
    );
    assert!(got.contains("count-unlimited jit result 10\n"), "{got}");
}

/// Handles used from inside their own calls (`tests/c/reentry.c`, under valgrind when
/// installed): a C helper calling back into the VM or the program whose run calls it (running
/// it again, loading another program into it, freeing it), a ring buffer callback freeing
/// the map it consumes, and a uBPF helper unloading and destroying the VM that runs it, on the
/// interpreter and the JIT. Before the handles kept track of the calls using them, the helper's
/// `bpfx_load_bytecode` freed the code still running (the JIT returned into freed memory),
/// its `bpfx_run` recursed until the host stack overflowed, and the callback's `bpfx_map_free`
/// freed the handle the consumer went on reading.
#[test]
fn handles_are_not_reentered_or_freed_from_their_own_callbacks() {
    let dir = work_dir().join("reentry");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("reentry");
    compile_c("reentry.c", &exe, &static_link());
    let got = run_c(&exe, &[&Path::new(MANIFEST).join("tests/objects")]);
    // The VM helper counts 9 refusals; host_scale(7, 3) = 2100 plus 4 refusals, and
    // use_host adds 1; the first record's callback consumes the other two from inside.
    let want = "interp vm reentry 9 9\njit vm reentry 9 9\n\
                interp program reentry 2105 2105\njit program reentry 2105 2105\n\
                ring reentry consumed 1 records 1 refused 2 nested 2\n\
                ubpf reentry 3 3\n";
    assert_eq!(got, want);
}

/// What `xdp.c` prints, from the same programs run through the facade on packet buffers.
fn expected_xdp(objects: &Path, redirect: &str) -> String {
    let mut out = String::new();
    let frame: Vec<u8> = (0..200u32).map(|i| (i * 5 + 1) as u8).collect();
    let mut ipip = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00];
    ipip.extend_from_slice(&[
        0x45, 0, 0, 40, 0, 0, 0, 0, 64, 4, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ]);
    ipip.extend_from_slice(&[
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    let vm = Vm::new();
    let trunc = vm.open(objects.join("xdp_trunc.o")).unwrap();
    let decap = vm.open(objects.join("xdp_decap.o")).unwrap();
    let bare = raw_object(&vm, redirect);
    for (engine, name) in Engine::ALL.iter().zip(["interp", "jit"]) {
        let mut line = |label: &str, obj: &Object, prog: &str, ctx: Option<Context>, f: &[u8]| {
            let mut pref = obj.program(prog).unwrap();
            if let Some(c) = ctx {
                pref = pref.context(c);
            }
            let mut p = pref
                .verify(Mode::Strict)
                .unwrap()
                .engine(*engine, false)
                .unwrap();
            let mut packet = runtime::Packet::with_room(f, 256, 100);
            let o = p.run_xdp_packet(&mut packet).unwrap();
            writeln!(
                out,
                "{label} {name} action {} start {} len {} meta {}",
                o.action.code(),
                o.start,
                o.len,
                o.meta_len
            )
            .unwrap();
            o.redirect
        };
        line("trunc", &trunc, "xdp_trunc", None, &frame);
        line("short", &trunc, "xdp_trunc", None, &frame[..60]);
        line("decap", &decap, "xdp_decap", None, &ipip);
        let r = line("redirect", &bare, "main", Some(Context::Xdp), &frame[..60]);
        let (kind, target, flags) = match r {
            Some(runtime::RedirectTarget::Ifindex { ifindex, ingress }) => {
                (1, ifindex, ingress as u32)
            }
            other => panic!("{other:?}"),
        };
        writeln!(
            out,
            "redirect {name} kind {kind} target {target} flags {flags}"
        )
        .unwrap();
    }
    out
}

/// XDP packet buffers from C (`tests/c/xdp.c`): `bpfx_run_xdp` on the runtime's truncation and
/// decapsulation fixtures and `bpfx_last_redirect` after `bpf_redirect`, on both engines, with
/// the facade's results.
#[test]
fn xdp_packet_buffers_and_redirects_from_c() {
    let dir = work_dir().join("xdp");
    std::fs::create_dir_all(&dir).unwrap();
    let redirect = "mov %r1, 7\nmov %r2, 0\ncall 23\nexit";
    write_program(&dir, "redirect.bin", redirect);
    let objects = repo().join("crates/runtime/tests/objects");
    let exe = dir.join("xdp");
    compile_c("xdp.c", &exe, &static_link());
    let got = run_c(&exe, &[&objects, &dir]);
    assert_eq!(got, expected_xdp(&objects, redirect));
}

/// What `tc.c` prints, from the same programs run through the facade on packet buffers with
/// the same metadata (`Program::run_tc_packet`), for the VM and the object API alike.
fn expected_tc(objects: &Path) -> String {
    let mut tcp = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00];
    tcp.extend_from_slice(&[
        0x45, 0x10, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ]);
    tcp.extend_from_slice(&[
        0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0,
    ]);
    tcp.extend_from_slice(&[0; 6]);
    let mut telnet = tcp.clone();
    telnet[37] = 23;
    let fnv = |b: &[u8]| {
        b.iter().fold(2166136261u32, |h, &x| {
            (h ^ u32::from(x)).wrapping_mul(16777619)
        })
    };
    let vm = Vm::new();
    let mut out = String::new();
    for (engine, name) in Engine::ALL.iter().zip(["interp", "jit"]) {
        let mut line = |label: &str, file: &str, prog: &str, protocol: u16, pkt: &[u8]| {
            let obj = vm.open(objects.join(file)).unwrap();
            let mut p = obj
                .program(prog)
                .unwrap()
                .verify(Mode::Strict)
                .unwrap()
                .engine(*engine, false)
                .unwrap();
            let meta = runtime::SkbMeta {
                protocol,
                ifindex: 3,
                ingress_ifindex: 3,
                mark: 0x1234,
                hash: 0xabcd,
                tstamp: 1000,
                ..Default::default()
            };
            let mut packet = runtime::Packet::with_room(pkt, 256, 100);
            let o = p.run_tc_packet(&mut packet, &meta).unwrap();
            let m = o.meta;
            for api in ["vm", "program"] {
                writeln!(
                    out,
                    "{label} {api} {name} action {} start {} len {} fnv {} mark {} priority {} \
                     cb {} {} {} protocol {}",
                    o.action.code(),
                    packet.start(),
                    packet.len(),
                    fnv(packet.frame()),
                    m.mark,
                    m.priority,
                    m.cb[0],
                    m.cb[1],
                    m.cb[2],
                    m.protocol
                )
                .unwrap();
            }
        };
        line("classify", "tc_classify.o", "tc_classify", 0x0800, &tcp);
        line("telnet", "tc_classify.o", "tc_classify", 0x0800, &telnet);
        line("other", "tc_classify.o", "tc_classify", 0x86dd, &tcp);
        line("ipip", "tc_ipip.o", "tc_ipip", 0x0800, &tcp);
    }
    out
}

/// TC packet buffers from C (`tests/c/tc.c`): `bpfx_run_tc` and `bpfx_program_run_tc` on the
/// runtime's classifier (metadata read and written) and IPIP encapsulation (the packet cut and
/// grown) fixtures, on both engines, with the facade's results; argument and program-type
/// refusals.
#[test]
fn tc_packet_buffers_and_metadata_from_c() {
    let dir = work_dir().join("tc");
    std::fs::create_dir_all(&dir).unwrap();
    let objects = repo().join("crates/runtime/tests/objects");
    let exe = dir.join("tc");
    compile_c("tc.c", &exe, &static_link());
    let got = run_c(&exe, &[&objects]);
    assert_eq!(got, expected_tc(&objects));
}

/// What `object.c` prints, from the same object driven through the facade: the programs of one
/// object sharing their maps, tail calls through a program array the host fills, key walks,
/// ring buffer records, a budget trap and strict verification, on the interpreter and on the
/// JIT with every option set.
fn expected_object(objects: &Path) -> String {
    let mut out = String::new();
    let path = objects.join("shared_maps.o");
    let vm = Vm::new();
    let obj = vm.open(&path).unwrap();
    for name in obj.maps().map(|m| m.name().to_string()).collect::<Vec<_>>() {
        let m = obj.map(&name).unwrap();
        writeln!(
            out,
            "map {name} type {} key {} value {} max {} buf {}",
            m.kind().kernel_type(),
            m.key_size(),
            m.value_size(),
            m.max_entries(),
            m.host_value_size()
        )
        .unwrap();
    }
    let configs = configs();
    for (c, opts) in configs {
        let prep = |obj: &Object, name: &str, mode, budget: bool| {
            let v = obj.program(name)?.verify(mode)?;
            match &opts {
                None => Ok(v.interpret()),
                Some(o) => v.compile_with(&JitOptions {
                    budget,
                    ..o.clone()
                }),
            }
        };
        let obj = vm.open(&path).unwrap();
        let mut count = prep(&obj, "count", Mode::Checked, false).unwrap();
        let stage2 = prep(&obj, "stage2", Mode::Checked, false).unwrap();
        let mut total = prep(&obj, "total", Mode::Checked, false).unwrap();
        let (counts, events, jumps) = (
            obj.map("counts").unwrap(),
            obj.map("events").unwrap(),
            obj.map("jumps").unwrap(),
        );
        let run = |p: &mut runtime::Program, input: &[u8], out: &mut String, what: &str| {
            let r = p.run(&mut input.to_vec()).unwrap();
            writeln!(out, "{c} {what} {r}").unwrap();
        };
        let events_out = |out: &mut String, limit: usize| {
            let mut n = 0;
            while n < limit {
                let Some(rec) = events.pop_record().unwrap() else {
                    break;
                };
                let len = u32::from_le_bytes(rec[..4].try_into().unwrap());
                let first = u32::from_le_bytes(rec[4..8].try_into().unwrap());
                writeln!(out, "{c} event len {len} first {first}").unwrap();
                n += 1;
            }
            n
        };
        run(&mut count, b"abc", &mut out, "count");
        jumps.set_program(0, &stage2).unwrap();
        run(&mut count, b"\x10zzzz", &mut out, "count");
        run(&mut count, b"abc", &mut out, "count");
        counts
            .update(
                &9u32.to_le_bytes(),
                &100u64.to_le_bytes(),
                UpdateFlag::NoExist,
            )
            .unwrap();
        run(&mut total, b"", &mut out, "total");
        let mut entries: Vec<(u32, u64)> = counts
            .iter()
            .map(|(k, v)| {
                (
                    u32::from_le_bytes(k[..].try_into().unwrap()),
                    u64::from_le_bytes(v[..].try_into().unwrap()),
                )
            })
            .collect();
        entries.sort();
        for (k, v) in entries {
            writeln!(out, "{c} key {k} value {v}").unwrap();
        }
        counts.delete(&9u32.to_le_bytes()).unwrap();
        let n = events_out(&mut out, usize::MAX);
        writeln!(out, "{c} consumed {n}").unwrap();
        jumps.clear_program(0).unwrap();
        run(&mut count, b"q", &mut out, "count");
        run(&mut count, b"rs", &mut out, "count");
        // The stopping callback still sees (and prints) its record.
        events_out(&mut out, 1);
        let n = events_out(&mut out, usize::MAX);
        writeln!(out, "{c} consumed {n}").unwrap();

        let again = vm.open(&path).unwrap();
        let mut short = prep(&again, "total", Mode::Checked, true).unwrap();
        short.set_budget(Budget::Limit(4));
        let kind = match short.run(&mut []) {
            Err(runtime::RunError::Trap { trap, .. }) => trap.kind,
            other => panic!("{c}: {other:?}"),
        };
        writeln!(out, "{c} budget trap {}", kind.name()).unwrap();
        for name in ["count", "stage2", "total"] {
            let verdict = match prep(&again, name, Mode::Strict, false) {
                Ok(_) => "ok",
                Err(runtime::Error::Verify { .. } | runtime::Error::Link { .. }) => "rejected",
                Err(e) => panic!("{c} strict {name}: {e}"),
            };
            writeln!(out, "{c} strict {name} {verdict}").unwrap();
        }
    }
    out
}

/// The object API from C (`tests/c/object.c`, under valgrind when installed: no invalid
/// access and no leak whatever order the handles are freed in): several programs of one
/// object sharing maps, map handles, key iteration, the ring buffer consumer, tail calls, the
/// sized options structs, on the interpreter and the JIT with every option set, with the
/// facade's results.
#[test]
fn object_api_from_c_shares_maps_between_programs() {
    let dir = work_dir().join("object");
    std::fs::create_dir_all(&dir).unwrap();
    let objects = Path::new(MANIFEST).join("tests/objects");
    let exe = dir.join("object");
    compile_c("object.c", &exe, &static_link());
    let runtime_objects = repo().join("crates/runtime/tests/objects");
    let got = run_c(&exe, &[&objects, &examples(), &runtime_objects]);
    let mut expected = expected_object(&objects);
    expected.push_str(&expected_examples_by_handle());
    expected.push_str(&expected_threads(&objects));
    expected.push_str(&expected_contexts(&objects));
    expected.push_str(&expected_xdp_programs(&runtime_objects));
    expected.push_str(&expected_globals_by_name());
    expected.push_str(&expected_host_helpers(&objects));
    assert_eq!(got, expected);
    // What the comparison rests on, stated once.
    for (c, line) in [("interp", "count 7"), ("jit-dual", "total 105")] {
        assert!(expected.contains(&format!("{c} {line}\n")), "{expected}");
    }
    assert!(expected.contains("jit-hardened budget trap budget-exhausted\n"));
    assert!(expected.contains("interp key 1000 value 2\n"));
    assert_eq!(expected.matches("interp event len").count(), 5);
    assert_eq!(expected.matches("jit perf sample len 20").count(), 2);
    assert!(expected.contains("jit percpu key 0 packets 3 bytes 162\n"));
    assert!(expected.contains("jit threads ok 100 100 consumed 200\n"));
    assert!(expected.contains("jit threads key 1000 value 200\n"));
    assert!(expected.contains("jit ctx 3030\n"));
    assert!(expected.contains("jit forward 3 action 4 redirect 2 target 3 map tx_ports\n"));
    // (1 + 2 + 3 + 4 + 5) * 5 + 10, plus the runs before.
    assert!(expected.contains("jit globals multiplier 3\n"));
    assert!(expected.contains("interp globals run 85\ninterp globals run 86\n"));
    assert!(expected.contains("jit globals runs 2 last 86\n"));
    // 7 * 3 + 100 + 1.
    assert!(expected.contains("interp host helper 122\njit host helper 122\n"));
}

/// What `object.c`'s `host_helpers` prints: host_helper.o with its helper registered on the
/// facade's `Vm`.
fn expected_host_helpers(objects: &Path) -> String {
    let mut out = String::new();
    let elf = std::fs::read(objects.join("host_helper.o")).unwrap();
    for (engine, e) in Engine::ALL.iter().zip(["interp", "jit"]) {
        let vm = Vm::new().register_helper(
            0x10000,
            HelperSig::new(
                "host_scale",
                vec![ArgKind::Scalar, ArgKind::Scalar],
                RetKind::Scalar,
            ),
            |_, a| Ok(a[0] * a[1] + 100),
        );
        let obj = vm.load(&elf).unwrap();
        let mut p = obj
            .program("use_host")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap()
            .engine(*engine, false)
            .unwrap();
        let r = p.run(&mut [0u8; 7]).unwrap();
        writeln!(out, "{e} host helper {r}").unwrap();
    }
    out
}

/// What `object.c`'s `globals_by_name` prints, through the facade's `Object::set_global` and
/// `get_global`.
fn expected_globals_by_name() -> String {
    let mut out = String::new();
    for (engine, e) in Engine::ALL.iter().zip(["interp", "jit"]) {
        let vm = Vm::new();
        let obj = vm.load(&example("globals.o")).unwrap();
        let m: u64 = obj.get_global("multiplier").unwrap();
        writeln!(out, "{e} globals multiplier {m}").unwrap();
        obj.set_global("multiplier", 5u64).unwrap();
        obj.set_global("base", 10u64).unwrap();
        let mut p = obj
            .program("sum_bytes")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap()
            .engine(*engine, false)
            .unwrap();
        for _ in 0..2 {
            let r = p.run(&mut [1, 2, 3, 4, 5]).unwrap();
            writeln!(out, "{e} globals run {r}").unwrap();
        }
        let runs: u64 = obj.get_global("runs").unwrap();
        let last: u64 = obj.get_global("last_result").unwrap();
        writeln!(out, "{e} globals runs {runs} last {last}").unwrap();
    }
    out
}

/// Every function of the object API in `bpfx.h` is in `docs/c-api.md`'s section on it.
#[test]
fn object_api_functions_are_documented() {
    let header = std::fs::read_to_string(repo().join("include/bpfx.h")).unwrap();
    let api = header
        .split("The object API (libbpf-style)")
        .nth(1)
        .expect("the object API part of the header");
    let page = std::fs::read_to_string(repo().join("docs/c-api.md")).unwrap();
    let section = page
        .split("## Objects, programs and maps")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the object API section");
    let mut names: Vec<&str> = api
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("bpfx_") && api.contains(&format!("{w}(")))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 25, "{names:?}");
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !section.contains(&format!("`{n}")))
        .collect();
    assert!(missing.is_empty(), "not in docs/c-api.md: {missing:?}");
}

/// What `object.c`'s `examples_by_handle` prints: the perf sampler's records and the per-CPU
/// counters of the examples, through the facade.
fn expected_examples_by_handle() -> String {
    let mut out = String::new();
    let packet = example("tcp-syn.bin");
    for (engine, e) in Engine::ALL.iter().zip(["interp", "jit"]) {
        let vm = Vm::new();
        let obj = vm.load(&example("perf_sample.o")).unwrap();
        let mut p = obj
            .program("xdp_perf_sample")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap()
            .engine(*engine, false)
            .unwrap();
        for _ in 0..2 {
            let a = p.run_xdp(&mut packet.clone()).unwrap();
            writeln!(out, "{e} perf action {}", a.code()).unwrap();
        }
        let events = obj.map("events").unwrap();
        while let Some(ev) = events.perf_next().unwrap() {
            match ev {
                runtime::PerfEvent::Sample { data, .. } => writeln!(
                    out,
                    "{e} perf sample len {} lost 0 frame-len {}",
                    data.len(),
                    u16::from_le_bytes([data[14], data[15]])
                )
                .unwrap(),
                runtime::PerfEvent::Lost { count, .. } => {
                    writeln!(out, "{e} perf sample len 0 lost {count} frame-len 0").unwrap()
                }
            }
        }
        let obj = vm.load(&example("percpu_count.o")).unwrap();
        let mut p = obj
            .program("xdp_percpu_count")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap()
            .engine(*engine, false)
            .unwrap();
        for _ in 0..3 {
            p.run_xdp(&mut packet.clone()).unwrap();
        }
        let counts = obj.map("counts").unwrap();
        for key in 0..counts.max_entries() {
            let v = counts.lookup(&key.to_le_bytes()).unwrap().unwrap();
            let (mut packets, mut bytes) = (0, 0);
            for cpu in v.chunks_exact(16) {
                packets += u64_at(cpu, 0);
                bytes += u64_at(cpu, 1);
            }
            writeln!(out, "{e} percpu key {key} packets {packets} bytes {bytes}").unwrap();
        }
        writeln!(
            out,
            "{e} percpu value {} buf {}",
            counts.value_size(),
            counts.host_value_size()
        )
        .unwrap();
    }
    out
}

/// What `object.c`'s `threads` prints: two threads run `count` (tail-calling `stage2`)
/// `THREAD_RUNS` times each on inputs of 1 to 4 bytes; here the same runs one after the other.
fn expected_threads(objects: &Path) -> String {
    const THREAD_RUNS: usize = 100;
    let mut out = String::new();
    for (engine, e) in Engine::ALL.iter().zip(["interp", "jit"]) {
        let obj = Vm::new().open(objects.join("shared_maps.o")).unwrap();
        let prep = |name| {
            obj.program(name)
                .unwrap()
                .verify(Mode::Checked)
                .unwrap()
                .engine(*engine, false)
                .unwrap()
        };
        let (mut count, stage2) = (prep("count"), prep("stage2"));
        obj.map("jumps").unwrap().set_program(0, &stage2).unwrap();
        let counts = obj.map("counts").unwrap();
        let keys = [1u32, 2, 3, 4, 1000];
        for k in keys {
            counts
                .update(&k.to_le_bytes(), &0u64.to_le_bytes(), UpdateFlag::Any)
                .unwrap();
        }
        let mut ok = [0; 2];
        for n in &mut ok {
            for i in 0..THREAD_RUNS {
                let mut buf = b"thrd"[..1 + i % 4].to_vec();
                if count.run(&mut buf).unwrap() == 7 {
                    *n += 1;
                }
            }
        }
        let consumed = obj.map("events").unwrap().drain_records().unwrap().len();
        writeln!(
            out,
            "{e} threads ok {} {} consumed {consumed}",
            ok[0], ok[1]
        )
        .unwrap();
        for k in keys {
            let v = counts.lookup(&k.to_le_bytes()).unwrap().unwrap();
            writeln!(out, "{e} threads key {k} value {}", u64_at(&v, 0)).unwrap();
        }
    }
    out
}

/// What `object.c`'s `contexts` prints: the struct-context program on a 3-byte and a 1-byte
/// packet, and `count` verified for 4-byte inputs.
fn expected_contexts(objects: &Path) -> String {
    let mut out = String::new();
    for (engine, e) in Engine::ALL.iter().zip(["interp", "jit"]) {
        let obj = Vm::new().open(objects.join("struct_ctx.o")).unwrap();
        let layout = StructLayout::new(24, Some((8, 16))).unwrap();
        let mut p = obj
            .program("read_ctx")
            .unwrap()
            .context(Context::Struct(layout))
            .verify(Mode::Checked)
            .unwrap()
            .engine(*engine, false)
            .unwrap();
        let mut ctx = [0u8; 24];
        ctx[..4].copy_from_slice(&3u32.to_le_bytes());
        for len in [3, 1] {
            let r = p.run_ctx(&mut ctx, &mut [10, 20, 30][..len]).unwrap();
            writeln!(out, "{e} ctx {r}").unwrap();
        }
        let obj = Vm::new().open(objects.join("shared_maps.o")).unwrap();
        let mut p = obj
            .program("count")
            .unwrap()
            .input_size(4)
            .verify(Mode::Checked)
            .unwrap()
            .engine(*engine, false)
            .unwrap();
        let r = p.run(&mut [1, 2, 3, 4]).unwrap();
        writeln!(out, "{e} sized {r}").unwrap();
    }
    out
}

/// What `object.c`'s `xdp_programs` prints: `forward` with port 3 of its device map filled
/// (redirected) and port 2 empty (passed), and `xdp_trunc` in packet buffers.
fn expected_xdp_programs(dir: &Path) -> String {
    let mut out = String::new();
    for (engine, e) in Engine::ALL.iter().zip(["interp", "jit"]) {
        let obj = Vm::new().open(dir.join("devmap_tx.o")).unwrap();
        let mut p = obj
            .program("forward")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap()
            .engine(*engine, false)
            .unwrap();
        obj.map("tx_ports")
            .unwrap()
            .update(&3u32.to_le_bytes(), &9u32.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
        for last in [2u8, 3] {
            let mut frame = [0u8; 64];
            frame[5] = last;
            let action = p.run_xdp(&mut frame).unwrap().code();
            let (kind, target, map) = match p.last_redirect() {
                None => (0, 0, "-".to_string()),
                Some(runtime::RedirectTarget::Map { map, key, .. }) => (2, key, map),
                other => panic!("{other:?}"),
            };
            writeln!(
                out,
                "{e} forward {last} action {action} redirect {kind} target {target} map {map}"
            )
            .unwrap();
        }
        let obj = Vm::new().open(dir.join("xdp_trunc.o")).unwrap();
        let mut p = obj
            .program("xdp_trunc")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap()
            .engine(*engine, false)
            .unwrap();
        let buf: Vec<u8> = (0..556u32).map(|i| (i * 5 + 1) as u8).collect();
        // The C test runs both frames in one buffer: the second sees what the first left.
        let mut buf = buf;
        for len in [60usize, 200] {
            let total = 256 + len + 100;
            let mut packet = runtime::Packet::with_room(&buf[256..256 + len], 256, 100);
            packet.buffer_mut().copy_from_slice(&buf[..total]);
            let o = p.run_xdp_packet(&mut packet).unwrap();
            buf[..total].copy_from_slice(packet.buffer());
            writeln!(
                out,
                "{e} trunc {len} action {} start {} len {} meta {}",
                o.action.code(),
                o.start,
                o.len,
                o.meta_len
            )
            .unwrap();
        }
    }
    out
}

/// An Ethernet + IPv4 + UDP frame to `dst` (TTL 64, a correct header checksum).
fn udp4_frame(dst: [u8; 4]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 3, 1, 2, 0, 0, 0, 3, 2, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1];
    ip.extend_from_slice(&dst);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
    f
}

/// What `fib.c` prints, from the router fixture run through the facade with the same table.
fn expected_fib(objects: &Path, frames: &[(&str, Vec<u8>)]) -> String {
    use runtime::{FibAnswer, FibFailure, FibRoute};
    use std::sync::{Arc, Mutex};
    let out = Arc::new(Mutex::new(String::new()));
    let log = out.clone();
    let table = move |req: &runtime::FibRequest| {
        let dst = match req.dst {
            std::net::IpAddr::V4(a) => a.octets(),
            std::net::IpAddr::V6(_) => [0; 4],
        };
        let family = if req.dst.is_ipv4() { 2 } else { 10 };
        writeln!(
            log.lock().unwrap(),
            "request family {family} proto {} dst {}.{}.{}.{} tot_len {} ifindex {} context 2 \
             flags {} table {}/{}",
            req.l4_protocol,
            dst[0],
            dst[1],
            dst[2],
            dst[3],
            req.tot_len,
            req.ifindex,
            req.flags,
            u32::from(req.table.is_some()),
            req.table.unwrap_or(0)
        )
        .unwrap();
        match dst {
            [10, 1, ..] => {
                FibAnswer::Route(FibRoute::new(7, [2, 0, 0, 0, 7, 1], [2, 0, 0, 0, 7, 2]))
            }
            [10, 9, ..] => FibAnswer::Fail(FibFailure::Unreachable),
            _ => FibAnswer::Fail(FibFailure::NotForwarded),
        }
    };
    let with = Vm::new().fib(table);
    let without = Vm::new();
    for (engine, name) in Engine::ALL.iter().zip(["interp", "jit"]) {
        for (vm, runs) in [(&with, frames), (&without, &frames[..1])] {
            let obj = vm.open(objects.join("xdp_fib.o")).unwrap();
            let mut p = obj
                .program("xdp_router")
                .unwrap()
                .verify(Mode::Strict)
                .unwrap()
                .engine(*engine, false)
                .unwrap();
            for (label, frame) in runs {
                let label = if std::ptr::eq(vm, &without) {
                    "no-table"
                } else {
                    label
                };
                let mut packet = runtime::Packet::new(frame);
                let o = p.run_xdp_packet(&mut packet).unwrap();
                let (kind, target) = match o.redirect {
                    Some(runtime::RedirectTarget::Ifindex { ifindex, .. }) => (1, ifindex),
                    None => (0, 0),
                    other => panic!("{other:?}"),
                };
                let hex: String = packet.frame().iter().map(|b| format!("{b:02x}")).collect();
                writeln!(
                    out.lock().unwrap(),
                    "{label} {name} action {} redirect {kind} {target} frame {hex}",
                    o.action.code()
                )
                .unwrap();
            }
        }
    }
    out.lock().unwrap().clone()
}

/// `bpfx_set_fib` (`tests/c/fib.c`): the router fixture's `bpf_fib_lookup` answered by a C
/// table, on both engines, with the facade's results (requests, verdicts, redirects, frames).
#[test]
fn fib_lookup_through_a_c_forwarding_table() {
    let dir = work_dir().join("fib");
    std::fs::create_dir_all(&dir).unwrap();
    let frames = [
        ("routed", udp4_frame([10, 1, 2, 3])),
        ("unreachable", udp4_frame([10, 9, 0, 1])),
        ("unrouted", udp4_frame([192, 168, 0, 1])),
    ];
    for (name, f) in &frames {
        std::fs::write(dir.join(format!("{name}.bin")), f).unwrap();
    }
    let objects = repo().join("crates/runtime/tests/objects");
    let exe = dir.join("fib");
    compile_c("fib.c", &exe, &static_link());
    let got = run_c(&exe, &[&objects, &dir]);
    let want = expected_fib(&objects, &frames);
    // The routed frame leaves with the route's MACs and TTL 63.
    assert!(want.contains("routed interp action 4 redirect 1 7 frame 020000000702020000000701"));
    assert_eq!(got, want);
}

/// The engine and JIT option sets of `tests/c/configs.h`, by name (`None`: the interpreter).
fn configs() -> [(&'static str, Option<JitOptions>); 6] {
    let jit = |blinding, spectre, code_memory| {
        Some(JitOptions {
            blinding,
            spectre,
            code_memory,
            ..JitOptions::default()
        })
    };
    [
        ("interp", None),
        ("jit", jit(false, false, CodeMemory::Sealed)),
        ("jit-hardened", jit(true, true, CodeMemory::Sealed)),
        ("jit-blinding", jit(true, false, CodeMemory::Sealed)),
        ("jit-spectre", jit(false, true, CodeMemory::Sealed)),
        ("jit-dual", jit(false, false, CodeMemory::DualMapped)),
    ]
}

/// What `inner_map.c` prints: xdp_legacy_mim.o opened with its inner map template in
/// `bpfx_object_opts.inner_maps`, its program run on every configuration through the facade
/// with the template given to the `Vm` and the tables made by `Map::new` and stored by
/// `Map::set_inner`; what C refuses, with its status.
fn expected_inner_map(objects: &Path) -> String {
    let elf = std::fs::read(objects.join("xdp_legacy_mim.o")).unwrap();
    let template = MapSpec::new("tenants.inner", MapKind::Hash, 4, 4, 16);
    let mut out =
        String::from("create key-size-0 map operation failed\ncreate bad-type bad argument\n");
    for (c, opts) in configs() {
        writeln!(out, "{c} declared verifier rejected the program").unwrap();
        let obj = Vm::new()
            .inner_map("tenants", template.clone())
            .load(&elf)
            .unwrap();
        let v = obj
            .program("xdp_legacy_mim")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap();
        let mut p = match &opts {
            None => v.interpret(),
            Some(o) => v.compile_with(o).unwrap(),
        };
        let mut verdicts = |out: &mut String, what: &str| {
            write!(out, "{c} {what}").unwrap();
            for (tos, daddr) in [(0, 5), (1, 5), (1, 6), (2, 5), (3, 9)] {
                let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
                f.extend_from_slice(&[0x45, tos, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0]);
                f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, daddr]);
                write!(out, " {}", p.run_xdp(&mut f).unwrap().code()).unwrap();
            }
            out.push('\n');
        };
        verdicts(&mut out, "empty");
        let tenants = obj.map("tenants").unwrap();
        for (key, daddr, verdict) in [(1u32, 5, 1u32), (3, 9, 3)] {
            let t = std::sync::Arc::new(runtime::Map::new(template.clone()).unwrap());
            t.update(&[10, 0, 0, daddr], &verdict.to_ne_bytes(), UpdateFlag::Any)
                .unwrap();
            tenants.set_inner(&key.to_ne_bytes(), &t).unwrap();
        }
        for (what, status) in [
            ("create-only-taken", "map operation failed"),
            ("other-shape", "map operation failed"),
            ("past-end", "map operation failed"),
            ("not-of-maps", "map operation failed"),
            ("null-inner", "null pointer"),
        ] {
            writeln!(out, "{c} {what} {status}").unwrap();
        }
        verdicts(&mut out, "tables");
        tenants.delete(&1u32.to_ne_bytes()).unwrap();
        verdicts(&mut out, "deleted");
        for (what, status) in [
            ("lpm-prealloc", "verifier rejected the program"),
            ("missing", "bad argument"),
            ("bad-type", "bad argument"),
            ("null-name", "null pointer"),
            ("null-array", "null pointer"),
        ] {
            writeln!(out, "{c} {what} {status}").unwrap();
        }
    }
    out
}

#[test]
fn maps_of_maps_get_their_template_and_tables_from_c() {
    let dir = work_dir().join("inner_map");
    std::fs::create_dir_all(&dir).unwrap();
    let objects = repo().join("crates/runtime/tests/objects");
    let exe = dir.join("inner_map");
    compile_c("inner_map.c", &exe, &static_link());
    let got = run_c(&exe, &[&objects]);
    let want = expected_inner_map(&objects);
    // What the comparison rests on, stated once: tenant 1's table drops 10.0.0.5, tenant 3's
    // bounces 10.0.0.9, and deleting tenant 1's table passes its frames again.
    assert!(want.contains("jit-dual tables 2 1 2 2 3\n"), "{want}");
    assert!(want.contains("interp deleted 2 2 2 2 3\n"), "{want}");
    assert_eq!(got, want);
}

/// What `opts.c` prints: sized_config.o opened with `__kconfig` values and map sizes given in
/// `bpfx_object_opts`, its program run on every configuration through the facade with the
/// same values given to the `Vm`; the options C refuses, with their status.
fn expected_opts(objects: &Path) -> String {
    let elf = std::fs::read(objects.join("sized_config.o")).unwrap();
    let configs = configs();
    let mut out = String::new();
    for (c, opts) in configs {
        let run = |out: &mut String, what: &str, vm: Vm| {
            let obj = vm.load(&elf).unwrap();
            let slots = obj.map("slots").unwrap();
            match obj.program("sized").unwrap().verify(Mode::Checked) {
                // The strong extern without a value: refused when the program is prepared.
                Err(_) => {
                    writeln!(out, "{c} {what} program verifier rejected the program").unwrap()
                }
                Ok(v) => {
                    let mut p = match &opts {
                        None => v.interpret(),
                        Some(o) => v.compile_with(o).unwrap(),
                    };
                    let action = p.run_xdp(&mut [0; 64]).unwrap().code();
                    let (status, value) = match slots.lookup(&3u32.to_ne_bytes()).unwrap() {
                        Some(v) => ("ok", u64::from_ne_bytes(v[..8].try_into().unwrap())),
                        None => ("no entry with that key", 0),
                    };
                    writeln!(
                        out,
                        "{c} {what} max {} action {action} slot3 {status} {value}",
                        slots.max_entries()
                    )
                    .unwrap();
                }
            }
        };
        run(&mut out, "none", Vm::new());
        run(&mut out, "hz", Vm::new().kconfig("CONFIG_HZ", "250"));
        run(
            &mut out,
            "big",
            Vm::new()
                .kconfig("CONFIG_HZ", "0x3e8")
                .max_entries("slots", 8),
        );
        run(
            &mut out,
            "small",
            Vm::new()
                .kconfig("CONFIG_HZ", "100")
                .max_entries("slots", 2),
        );
        for (what, status) in [
            ("missing", "bad argument"),
            ("bad-line", "bad argument"),
            ("null-array", "null pointer"),
            ("null-name", "null pointer"),
        ] {
            writeln!(out, "{c} {what} open {status}").unwrap();
        }
        run(&mut out, "old-struct", Vm::new());
        run(&mut out, "torn-struct", Vm::new());
    }
    out
}

#[test]
fn object_opts_give_kconfig_values_and_map_sizes_from_c() {
    let dir = work_dir().join("opts");
    std::fs::create_dir_all(&dir).unwrap();
    let objects = Path::new(MANIFEST).join("tests/objects");
    let exe = dir.join("opts");
    compile_c("opts.c", &exe, &static_link());
    let got = run_c(&exe, &[&objects]);
    let want = expected_opts(&objects);
    // What the comparison rests on, stated once: the values given, the sizes given.
    assert!(
        want.contains("interp hz max 1024 action 2 slot3 ok 250\n"),
        "{want}"
    );
    assert!(
        want.contains("jit-dual big max 8 action 2 slot3 ok 1000\n"),
        "{want}"
    );
    assert!(
        want.contains("jit small max 2 action 0 slot3 no entry with that key 0\n"),
        "{want}"
    );
    assert_eq!(got, want);
}
