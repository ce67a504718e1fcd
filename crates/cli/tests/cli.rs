//! The `bpfx` binary end to end: help, `asm` and `disasm` roundtrips, exit codes and messages,
//! and the program loader on raw, text and ELF inputs.

use bpfx_bytecode::assemble;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bpfx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfx"))
        .args(args)
        .output()
        .expect("the bpfx binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// A fresh directory for one test under Cargo's scratch directory for integration tests.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bpfx-cli")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn to_bytes(text: &str) -> Vec<u8> {
    assemble(text)
        .unwrap()
        .iter()
        .flat_map(|i| i.to_bytes())
        .collect()
}

/// Exit code for bad input.
const EXIT_INPUT: i32 = 1;
/// Exit code for usage errors (clap's).
const EXIT_USAGE: i32 = 2;

#[test]
fn help_works_for_the_tool_and_each_subcommand() {
    let top = bpfx(&["--help"]);
    assert!(top.status.success(), "{}", stderr(&top));
    let text = stdout(&top);
    assert!(text.contains("asm") && text.contains("disasm"), "{text}");
    for (sub, option) in [
        ("asm", "--output"),
        ("disasm", "--pcs"),
        ("disasm", "--section"),
    ] {
        let out = bpfx(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}: {}", stderr(&out));
        assert!(
            stdout(&out).contains(option),
            "{sub} --help: {}",
            stdout(&out)
        );
    }
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &["asm"][..],
        &["frob"],
        &["disasm", "a", "b"],
        &["asm", "x.asm"],
    ] {
        let out = bpfx(args);
        assert_eq!(out.status.code(), Some(EXIT_USAGE), "{args:?}");
    }
}

const SOURCE: &str = "\
# sum the first two bytes of memory
    mov %r0, 0
    ldxb r2, [%r1]
    ldxb r3, [r1+1]
    add r0, r2
    jeq r3, 0, done
    add r0, r3
    call local helper
done:
    exit
helper:
    lddw r4, 0x1122334455667788
    exit
";

const CANONICAL: &str = "\
mov r0, 0
ldxb r2, [r1+0]
ldxb r3, [r1+1]
add r0, r2
jeq r3, 0, +2
add r0, r3
call local +1
exit
lddw r4, 0x1122334455667788
exit
";

#[test]
fn asm_then_disasm_roundtrips() {
    let dir = scratch("roundtrip");
    let src = dir.join("prog.asm");
    let bin = dir.join("prog.bin");
    std::fs::write(&src, SOURCE).unwrap();
    let out = bpfx(&["asm", path_str(&src), "-o", path_str(&bin)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&bin).unwrap(), to_bytes(SOURCE));

    let out = bpfx(&["disasm", path_str(&bin)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), CANONICAL);

    // The disassembly assembles back to the same bytes, under any extension.
    let again = dir.join("again.txt");
    let bin2 = dir.join("again.bin");
    std::fs::write(&again, stdout(&out)).unwrap();
    let out = bpfx(&["asm", path_str(&again), "--output", path_str(&bin2)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&bin2).unwrap(), std::fs::read(&bin).unwrap());

    // The loader takes assembler text directly.
    let out = bpfx(&["disasm", path_str(&src)]);
    assert_eq!(stdout(&out), CANONICAL);

    let out = bpfx(&["disasm", "--pcs", path_str(&bin)]);
    let listing = stdout(&out);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines[0], " 0: mov r0, 0");
    assert_eq!(lines[4], " 4: jeq r3, 0, +2  # -> 7");
    assert_eq!(lines[8], " 8: lddw r4, 0x1122334455667788");
    assert_eq!(lines[9], "10: exit");
}

#[test]
fn assembler_errors_name_the_file_line_and_token() {
    let dir = scratch("asm-error");
    let src = dir.join("bad.asm");
    std::fs::write(&src, "mov r0, 1\n# fine so far\nfrob r1, 2\nexit\n").unwrap();
    let out = bpfx(&["asm", path_str(&src), "-o", path_str(&dir.join("x.bin"))]);
    assert_eq!(out.status.code(), Some(EXIT_INPUT));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("bad.asm") && err.contains("line 3") && err.contains("`frob`"),
        "{err}"
    );
    assert!(!dir.join("x.bin").exists(), "no output on error");
}

#[test]
fn invalid_programs_are_reported_with_pc_and_instruction() {
    let dir = scratch("decode-error");
    // Assembles, but the jump leaves the program.
    let src = dir.join("jump.asm");
    std::fs::write(&src, "mov r0, 0\nja +5\nexit\n").unwrap();
    let out = bpfx(&["asm", path_str(&src), "-o", path_str(&dir.join("x.bin"))]);
    assert_eq!(out.status.code(), Some(EXIT_INPUT));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: ") && err.contains("insn #1: ja +5: target"),
        "{err}"
    );

    // Raw bytecode with an unknown opcode: shown as raw fields.
    let bin = dir.join("bad.bin");
    let mut bytes = to_bytes("mov r0, 0");
    bytes.extend_from_slice(&[0xff, 0, 0, 0, 0, 0, 0, 0]);
    std::fs::write(&bin, &bytes).unwrap();
    let out = bpfx(&["disasm", path_str(&bin)]);
    assert_eq!(out.status.code(), Some(EXIT_INPUT));
    let err = stderr(&out);
    assert!(
        err.contains("insn #1") && err.contains("unknown opcode 0xff"),
        "{err}"
    );

    // A length that is not a multiple of 8.
    std::fs::write(&bin, &bytes[..12]).unwrap();
    let err = stderr(&bpfx(&["disasm", path_str(&bin)]));
    assert!(err.contains("4 trailing bytes"), "{err}");

    let missing = dir.join("missing.bin");
    let out = bpfx(&["disasm", path_str(&missing)]);
    assert_eq!(out.status.code(), Some(EXIT_INPUT));
    assert!(stderr(&out).contains("missing.bin"));
}

/// One section of a hand-built ELF object.
struct Section {
    name: &'static str,
    ty: u32,
    flags: u64,
    data: Vec<u8>,
    link: u32,
    info: u32,
}

/// A section without link or info.
fn plain(name: &'static str, ty: u32, flags: u64, data: Vec<u8>) -> Section {
    Section {
        name,
        ty,
        flags,
        data,
        link: 0,
        info: 0,
    }
}

/// A minimal little-endian ELF64 relocatable object for `machine` with `sections` after the
/// null section (so the first has index 1); `.shstrtab` is added last.
fn elf(machine: u16, sections: Vec<Section>) -> Vec<u8> {
    let mut shstrtab = vec![0u8];
    let mut names = Vec::new();
    for name in sections.iter().map(|s| s.name).chain([".shstrtab"]) {
        names.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(name.as_bytes());
        shstrtab.push(0);
    }
    let mut all = sections;
    all.push(plain(".shstrtab", SHT_STRTAB, 0, shstrtab));
    let mut out = vec![0u8; 64];
    let mut headers = vec![vec![0u8; 64]];
    for (k, s) in all.iter().enumerate() {
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        let offset = out.len() as u64;
        out.extend_from_slice(&s.data);
        let entsize: u64 = match s.ty {
            SHT_SYMTAB => 24,
            SHT_REL => 16,
            _ => 0,
        };
        let mut h = Vec::with_capacity(64);
        h.extend_from_slice(&names[k].to_le_bytes());
        h.extend_from_slice(&s.ty.to_le_bytes());
        h.extend_from_slice(&s.flags.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes()); // addr
        h.extend_from_slice(&offset.to_le_bytes());
        h.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
        h.extend_from_slice(&s.link.to_le_bytes());
        h.extend_from_slice(&s.info.to_le_bytes());
        h.extend_from_slice(&8u64.to_le_bytes()); // align
        h.extend_from_slice(&entsize.to_le_bytes());
        headers.push(h);
    }
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let shoff = out.len() as u64;
    for h in &headers {
        out.extend_from_slice(h);
    }
    let shnum = headers.len() as u16;
    let mut eh = Vec::with_capacity(64);
    eh.extend_from_slice(b"\x7fELF");
    eh.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little-endian, version 1, SysV
    eh.extend_from_slice(&[0; 8]);
    eh.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
    eh.extend_from_slice(&machine.to_le_bytes());
    eh.extend_from_slice(&1u32.to_le_bytes());
    eh.extend_from_slice(&0u64.to_le_bytes()); // entry
    eh.extend_from_slice(&0u64.to_le_bytes()); // phoff
    eh.extend_from_slice(&shoff.to_le_bytes());
    eh.extend_from_slice(&0u32.to_le_bytes()); // flags
    eh.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    eh.extend_from_slice(&0u16.to_le_bytes()); // phentsize
    eh.extend_from_slice(&0u16.to_le_bytes()); // phnum
    eh.extend_from_slice(&64u16.to_le_bytes()); // shentsize
    eh.extend_from_slice(&shnum.to_le_bytes());
    eh.extend_from_slice(&(shnum - 1).to_le_bytes()); // shstrndx: the last one
    out[..64].copy_from_slice(&eh);
    out
}

const EM_BPF: u16 = 247;
const EM_X86_64: u16 = 62;
const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_REL: u32 = 9;
/// `SHF_ALLOC | SHF_EXECINSTR`.
const EXEC: u64 = 0x2 | 0x4;

#[test]
fn elf_objects_load_one_plain_section() {
    let dir = scratch("elf");
    let xdp = to_bytes("mov r0, 2\nexit");
    let tc = to_bytes("mov r0, 7\nexit");
    let write = |name: &str, bytes: Vec<u8>| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    // One executable section (plus an empty `.text`, as clang leaves it): no --section needed,
    // whatever the file is called.
    let single = write(
        "single.bin",
        elf(
            EM_BPF,
            vec![
                plain(".text", SHT_PROGBITS, EXEC, vec![]),
                plain("xdp", SHT_PROGBITS, EXEC, xdp.clone()),
            ],
        ),
    );
    let out = bpfx(&["disasm", path_str(&single)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "mov r0, 2\nexit\n");

    // Several: --section picks one; without it the error lists them.
    let multi = write(
        "multi.o",
        elf(
            EM_BPF,
            vec![
                plain("xdp", SHT_PROGBITS, EXEC, xdp.clone()),
                plain("tc", SHT_PROGBITS, EXEC, tc.clone()),
                plain(".data", SHT_PROGBITS, 0x3, vec![1, 2, 3, 4]),
            ],
        ),
    );
    let out = bpfx(&["disasm", path_str(&multi), "--section", "tc"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "mov r0, 7\nexit\n");
    let out = bpfx(&["disasm", path_str(&multi)]);
    assert_eq!(out.status.code(), Some(EXIT_USAGE));
    let err = stderr(&out);
    assert!(
        err.contains("--program NAME (or --section NAME)")
            && err.contains("(section xdp), ")
            && err.contains("(section tc)")
            && !err.contains(".data"),
        "{err}"
    );
    let err = stderr(&bpfx(&["disasm", path_str(&multi), "--section", "kprobe"]));
    assert!(
        err.contains("no section named `kprobe`") && err.contains("xdp, tc"),
        "{err}"
    );

    // A relocation that cannot be applied is refused, naming the section and the offset.
    let relocated = write(
        "reloc.o",
        elf(
            EM_BPF,
            vec![
                plain("prog", SHT_PROGBITS, EXEC, to_bytes("lddw r1, 0\nexit")),
                plain(".strtab", SHT_STRTAB, 0, vec![0]),
                Section {
                    link: 2,
                    info: 1,
                    ..plain(".symtab", SHT_SYMTAB, 0, vec![0; 24])
                },
                // One R_BPF_64_64 (type 1) against symbol 0 at offset 0 of section 1.
                Section {
                    link: 3,
                    info: 1,
                    ..plain(
                        ".relprog",
                        SHT_REL,
                        0,
                        [0u64, 1].map(u64::to_le_bytes).concat(),
                    )
                },
            ],
        ),
    );
    let out = bpfx(&["disasm", path_str(&relocated)]);
    assert_eq!(out.status.code(), Some(EXIT_INPUT));
    let err = stderr(&out);
    assert!(
        err.contains("section \"prog\": relocation at offset 0x0"),
        "{err}"
    );

    let x86 = write(
        "x86.o",
        elf(EM_X86_64, vec![plain(".text", SHT_PROGBITS, EXEC, xdp)]),
    );
    let err = stderr(&bpfx(&["disasm", path_str(&x86)]));
    assert!(err.contains("not a BPF object"), "{err}");

    let truncated = write("trunc.o", b"\x7fELF\x02\x01\x01".to_vec());
    let out = bpfx(&["disasm", path_str(&truncated)]);
    assert_eq!(out.status.code(), Some(EXIT_INPUT));
    let err = stderr(&out);
    assert!(
        err.contains("truncated ELF object: 7 bytes, shorter than the 64-byte ELF header"),
        "{err}"
    );

    let raw = write("raw.bin", tc);
    let out = bpfx(&["disasm", path_str(&raw), "--section", "tc"]);
    assert_eq!(out.status.code(), Some(EXIT_USAGE));
    assert!(stderr(&out).contains("--section and --program apply only to ELF objects"));
}

#[test]
fn text_files_are_refused_by_what_they_look_like() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = scratch("text_files");
    let asm = std::fs::read_to_string(repo.join("examples/checksum.asm")).unwrap();
    let named_bin = dir.join("checksum.bin");
    std::fs::write(&named_bin, &asm).unwrap();
    let no_ext = dir.join("checksum");
    std::fs::write(&no_ext, &asm).unwrap();
    let readme = repo.join("README.md");
    let c = repo.join("examples/counter.c");
    let c_as_o = dir.join("counter.o");
    std::fs::copy(&c, &c_as_o).unwrap();
    for (path, looks) in [
        (
            readme.as_path(),
            "this looks like Markdown text, not a program",
        ),
        (c.as_path(), "this looks like C source, not a program"),
        (
            c_as_o.as_path(),
            "this looks like C source, though named .o",
        ),
        (named_bin.as_path(), "assembler text (name it .asm or .s"),
        (no_ext.as_path(), "assembler text (name it .asm or .s"),
    ] {
        for cmd in ["run", "disasm", "verify", "bench", "jit-dump"] {
            let out = bpfx(&[cmd, path_str(path)]);
            assert_eq!(out.status.code(), Some(EXIT_INPUT), "{cmd} {path:?}");
            let err = stderr(&out);
            assert!(err.contains(looks), "{cmd}: {err}");
            assert!(
                err.contains("bpfx takes an ELF object")
                    && err.contains("raw little-endian bytecode")
                    && err.contains(".asm or .s"),
                "{err}"
            );
            assert!(!err.contains("trailing bytes"), "{err}");
        }
    }
    // The same text named .asm assembles, and raw bytecode under any name decodes.
    let named_asm = dir.join("checksum.asm");
    std::fs::write(&named_asm, &asm).unwrap();
    let raw = dir.join("prog");
    std::fs::write(&raw, to_bytes("mov r0, 3\nexit")).unwrap();
    for path in [&named_asm, &raw] {
        let out = bpfx(&["disasm", path_str(path)]);
        assert!(out.status.success(), "{path:?}: {}", stderr(&out));
    }
}

#[test]
fn a_truncated_object_says_truncated_once() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let obj = std::fs::read(repo.join("examples/xdp_parse.o")).unwrap();
    let dir = scratch("truncated");
    let path = dir.join("cut.o");
    for len in [4, 63, 64, 300, obj.len() / 2, obj.len() - 1] {
        std::fs::write(&path, &obj[..len]).unwrap();
        let out = bpfx(&["run", path_str(&path), "--packet", path_str(&path)]);
        assert_eq!(out.status.code(), Some(EXIT_INPUT), "{len}");
        let err = stderr(&out);
        assert!(
            err.contains("cut.o: truncated ELF object: "),
            "{len}: {err}"
        );
        assert!(
            err.contains(&format!("past the end of the file ({len} bytes)"))
                || err.contains(&format!("{len} bytes, shorter than the 64-byte ELF header")),
            "{len}: {err}"
        );
        assert_eq!(err.matches("ELF object").count(), 1, "{len}: {err}");
        assert!(!err.contains("malformed"), "{len}: {err}");
    }
}

/// `bpfx ARGS` from the repository's root with `input` on standard input.
fn with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bpfx"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_dash_reads_the_program_from_standard_input() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let asm = std::fs::read(repo.join("examples/checksum.asm")).unwrap();
    let raw = to_bytes(&String::from_utf8(asm.clone()).unwrap());
    let obj = std::fs::read(repo.join("examples/xdp_parse.o")).unwrap();
    for engine in ["interp", "jit"] {
        for input in [&asm, &raw] {
            for cmd in ["run", "bench"] {
                let o = with_stdin(
                    &[
                        cmd,
                        "-",
                        "--mem",
                        "examples/ipv4-header.bin",
                        "--engine",
                        engine,
                        "--json",
                        "--min-time",
                        "1",
                    ][..if cmd == "run" { 7 } else { 9 }],
                    input,
                );
                assert!(o.status.success(), "{cmd} {engine}: {}", stderr(&o));
                let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
                assert_eq!(v["result"], 47201, "{cmd} {engine}");
            }
        }
        let o = with_stdin(
            &[
                "run",
                "-",
                "--packet",
                "examples/tcp-syn.bin",
                "--engine",
                engine,
            ],
            &obj,
        );
        assert_eq!(stdout(&o), "XDP_PASS (2)\n", "{}", stderr(&o));
    }
    // Standard input is read once.
    let o = with_stdin(&["run", "-", "--mem", "-"], &asm);
    assert_eq!(o.status.code(), Some(EXIT_USAGE));
    assert!(stderr(&o).contains("standard input (-) can be read once"));
}

#[test]
fn the_assembler_takes_semicolon_comments_and_names_its_dialect() {
    let help = stdout(&bpfx(&["asm", "--help"]));
    assert!(
        help.contains("bpf_conformance suite's") && help.contains("`#` or `;` starts a comment"),
        "{help}"
    );
    let text = "; checks the comment syntax\nmov r0, 5 ; five\nadd r0, 2 # two\nexit;\n";
    let o = with_stdin(&["run", "-"], text.as_bytes());
    assert_eq!(stdout(&o), "7 (0x7)\n", "{}", stderr(&o));
    // Every example in the help assembles.
    let o = with_stdin(
        &["disasm", "-"],
        b"mov r0, 1\nldxw r2, [r1+4]\nstxdw [r10-8], r1\njeq r1, 0, +2\nlddw r1, 0x1122334455667788\ncall 1\nexit\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A reader that stops before the output arrives (`bpfx info --json x.o | head -c 0`) ends the
/// output quietly: no panic message, success, for the JSON and the text forms of every command
/// that prints a result. Whether the reader is gone before the write depends on scheduling; the
/// command is run a few times so the closed pipe is met at least once in practice.
#[test]
fn closed_stdout_is_not_a_panic() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/xdp_parse.o");
    let packet = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/tcp-syn.bin");
    let commands: [&[&str]; 5] = [
        &["info", "--json", example],
        &["info", example],
        &["verify", "--json", example],
        &["run", "--json", example, "--packet", packet],
        &["run", example, "--packet", packet],
    ];
    for args in commands {
        for _ in 0..3 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_bpfx"))
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("the bpfx binary runs");
            drop(child.stdout.take());
            let out = child.wait_with_output().unwrap();
            let err = stderr(&out);
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        }
    }
}
