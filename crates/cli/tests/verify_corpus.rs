//! `bpfx verify` on the verifier corpus (`tests/verifier/{accept,reject}/*.asm`), through the
//! built binary: every directive of a corpus file becomes the flag it stands for, every reject
//! file fails with exit code 1 and exactly the error the verifier's own corpus test snapshotted
//! (`crates/verifier/tests/snapshots/corpus__reject_*.snap`), and every accept file is accepted
//! with as many accesses proven as that test's listing shows.
//!
//! | directive | flag |
//! |---|---|
//! | `# mode: strict` / `checked` | which modes must reject (or accept) |
//! | `# mem: N` / `unknown` / absent | `--mem-size N` / none / `--mem-size 64` |
//! | `# context: packet` | `--ctx packet` |
//! | `# budget: N` | `--insn-budget N` |
//! | `# frames: N` | `--max-frames N` |
//! | `# helper: SPEC` | `--helper SPEC` |
//! | `# map: SPEC` | `--map SPEC` |

use bpfx_testkit::corpus::{CorpusFile, corpus_files};
use bpfx_verifier::Mode;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/verifier");
const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../verifier/tests/snapshots");

/// Exit code for bad input.
const EXIT_INPUT: i32 = 1;
/// Exit code for usage errors (clap's).
const EXIT_USAGE: i32 = 2;

/// The input size a corpus file gets when it names none.
const DEFAULT_MEM: &str = "64";

fn bpfx(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfx"))
        .args(args)
        .output()
        .expect("the bpfx binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("UTF-8 output")
}

/// A corpus file and the flags its directives imply, `--strict` aside.
struct File {
    name: String,
    path: PathBuf,
    only: Option<Mode>,
    flags: Vec<String>,
}

fn files(dir: &str) -> Vec<File> {
    corpus_files(dir).into_iter().map(flags).collect()
}

fn flags(f: CorpusFile) -> File {
    let mut mem = Some(DEFAULT_MEM.to_string());
    let mut flags = Vec::new();
    let mut flag = |f: &str, v: &str| {
        flags.push(f.to_string());
        flags.push(v.to_string());
    };
    for (key, val) in &f.directives {
        match key.as_str() {
            "mem" if val == "unknown" => mem = None,
            "mem" => mem = Some(val.clone()),
            "context" => flag("--ctx", val),
            "budget" => flag("--insn-budget", val),
            "frames" => flag("--max-frames", val),
            "helper" => flag("--helper", val),
            "map" => flag("--map", val),
            _ => {}
        }
    }
    if let Some(n) = mem {
        flag("--mem-size", &n);
    }
    File {
        name: f.name,
        path: f.path,
        only: f.only,
        flags,
    }
}

fn verify(f: &File, strict: bool) -> Output {
    let mut args = vec!["verify".to_string(), f.path.display().to_string()];
    args.extend(f.flags.iter().cloned());
    if strict {
        args.push("--strict".into());
    }
    bpfx(&args)
}

/// The content of the verifier corpus test's snapshot `corpus__{kind}_{name}.snap`.
fn snapshot(kind: &str, name: &str) -> String {
    let path = Path::new(SNAPSHOTS).join(format!("corpus__{kind}_{name}.snap"));
    let snap = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("snapshot {}: {e}", path.display()));
    // An insta snapshot: `---`, header lines, `---`, then the content.
    let body = snap
        .strip_prefix("---\n")
        .and_then(|s| s.split_once("\n---\n"))
        .map(|(_, body)| body)
        .unwrap_or_else(|| panic!("{}: not an insta snapshot", path.display()));
    body.trim_end_matches('\n').to_string()
}

fn assert_rejects(f: &File, strict: bool, want: &str) {
    let out = verify(f, strict);
    let mode = if strict { "strict" } else { "checked" };
    assert_eq!(
        out.status.code(),
        Some(EXIT_INPUT),
        "{} ({mode}): expected a rejection; stdout: {} stderr: {}",
        f.name,
        text(&out.stdout),
        text(&out.stderr)
    );
    // The CLI adds how to give what the verifier lacked, for an unknown input size.
    let hint =
        if want.ends_with("the input memory size is not known, so no access to it can be proven") {
            " (give its size with --mem-size N)"
        } else {
            ""
        };
    assert_eq!(
        text(&out.stderr),
        format!("error: verifier rejected the program: {want}{hint}\n"),
        "{} ({mode})",
        f.name
    );
}

/// Accepts, and returns the `(proven, accesses)` counts the CLI reports.
fn assert_accepts(f: &File, strict: bool) -> (usize, usize) {
    let out = verify(f, strict);
    let mode = if strict { "strict" } else { "checked" };
    assert!(
        out.status.success(),
        "{} ({mode}): rejected: {}",
        f.name,
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    // "accepted (MODE mode): N instructions, P of A memory accesses proven in bounds"
    let counts = stdout
        .split_once("instructions, ")
        .and_then(|(_, rest)| rest.split_once(" memory accesses"))
        .and_then(|(pa, _)| pa.split_once(" of "))
        .and_then(|(p, a)| Some((p.parse().ok()?, a.parse().ok()?)));
    counts.unwrap_or_else(|| panic!("{} ({mode}): unexpected output {stdout}", f.name))
}

/// `(proven, accesses)` of Checked mode in an accept listing: each access line's first
/// annotation (`    ; Stack proven`), not the `strict:` one.
fn listing_counts(listing: &str) -> (usize, usize) {
    let facts: Vec<&str> = listing
        .lines()
        .filter_map(|l| {
            l.split("    ; ")
                .skip(1)
                .find(|a| !a.starts_with("strict:"))
        })
        .collect();
    let proven = facts.iter().filter(|a| a.ends_with(" proven")).count();
    (proven, facts.len())
}

#[test]
fn verify_rejects_each_reject_file_naming_the_snapshotted_error() {
    let files = files("reject");
    assert!(files.len() >= 60, "{} reject files", files.len());
    for f in &files {
        let want = snapshot("reject", &f.name);
        assert_rejects(f, true, &want);
        match f.only {
            Some(Mode::Strict) => {
                assert_accepts(f, false);
            }
            Some(Mode::Checked) => panic!("{}: a reject file cannot be Checked-only", f.name),
            None => assert_rejects(f, false, &want),
        }
    }
}

#[test]
fn verify_accepts_each_accept_file_proving_what_the_listing_shows() {
    let files = files("accept");
    assert!(files.len() >= 15, "{} accept files", files.len());
    for f in &files {
        let listing = snapshot("accept", &f.name);
        assert_eq!(
            assert_accepts(f, false),
            listing_counts(&listing),
            "{}: proven accesses differ from the listing",
            f.name
        );
        match f.only {
            Some(Mode::Checked) => {
                let out = verify(f, true);
                assert_eq!(out.status.code(), Some(EXIT_INPUT), "{}", f.name);
            }
            _ => {
                assert_accepts(f, true);
            }
        }
    }
}

#[test]
fn malformed_helper_and_map_specs_are_usage_errors() {
    let file = Path::new(CORPUS).join("accept/callx_constant.asm");
    let file = file.display().to_string();
    for (flag, spec, why) in [
        ("--helper", "5:echo(any)", "expected `->RET`"),
        (
            "--helper",
            "5:echo(ptr)->scalar",
            "unknown argument kind `ptr`",
        ),
        ("--map", "idx:0,key=8", "needs key=K and value=V"),
    ] {
        let out = bpfx(&["verify".into(), file.clone(), flag.into(), spec.into()]);
        assert_eq!(out.status.code(), Some(EXIT_USAGE), "{flag} {spec}");
        assert!(text(&out.stderr).contains(why), "{}", text(&out.stderr));
    }
}

#[test]
fn plain_program_flags_are_refused_for_objects() {
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/counter.o");
    let obj = obj.display().to_string();
    for (flag, val) in [
        ("--map", "idx:0,key=4,value=8"),
        ("--max-frames", "2"),
        ("--insn-budget", "100"),
        ("--ctx", "packet"),
    ] {
        let out = bpfx(&["verify".into(), obj.clone(), flag.into(), val.into()]);
        assert_eq!(out.status.code(), Some(EXIT_USAGE), "{flag}: a usage error");
        assert!(
            text(&out.stderr).contains("applies to plain programs"),
            "{flag}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn helper_flag_declares_an_embedder_helper_for_an_object() {
    // counter.o calls only standard helpers; replacing map_lookup_elem's signature with one
    // whose result is a plain scalar makes its dereference of the result a Strict rejection.
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/counter.o");
    let obj = obj.display().to_string();
    let base: Vec<String> = ["verify", &obj, "--strict", "--mem-size", "64"]
        .map(String::from)
        .to_vec();
    assert!(bpfx(&base).status.success());
    let mut args = base.clone();
    args.extend(["--helper".into(), "1:lookup(map,key)->scalar".into()]);
    let out = bpfx(&args);
    assert_eq!(out.status.code(), Some(EXIT_INPUT));
    assert!(
        text(&out.stderr).contains("r0 is a scalar, not a pointer to memory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn xdp_parse_is_accepted_in_strict_mode_with_every_access_proven() {
    // The TCP header sits at a variable offset (the IPv4 IHL), checked against data_end
    // through a copy of the pointer: packet ids carry that check to the pointer itself.
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/xdp_parse.o");
    let args: Vec<String> = ["verify", &obj.display().to_string(), "--section", "xdp"]
        .map(String::from)
        .to_vec();
    for strict in [false, true] {
        let mut args = args.clone();
        if strict {
            args.push("--strict".into());
        }
        let out = bpfx(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let (proven, accesses) = stdout
            .split_once("instructions, ")
            .and_then(|(_, rest)| rest.split_once(" memory accesses"))
            .and_then(|(pa, _)| pa.split_once(" of "))
            .and_then(|(p, a)| Some((p.parse::<usize>().ok()?, a.parse::<usize>().ok()?)))
            .unwrap_or_else(|| panic!("unexpected output {stdout}"));
        assert!(accesses > 0, "{stdout}");
        if strict {
            assert_eq!(proven, accesses, "{stdout}");
        } else {
            // Checked mode never proves packet accesses.
            assert!(proven < accesses, "{stdout}");
        }
    }
}

#[test]
fn xdp_parse_in_strict_mode_stops_at_data_end_on_both_engines() {
    // With every packet guard gone (Strict proves them all), a header length that runs past
    // data_end must still be caught by the program's own check, on both engines: IHL 15 puts
    // the TCP header at byte 74, so its 20 bytes need 94.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let syn = std::fs::read(root.join("examples/tcp-syn.bin")).expect("examples/tcp-syn.bin");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verify-corpus-ihl");
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    for (len, want) in [
        (54, "XDP_ABORTED (0)"),
        (93, "XDP_ABORTED (0)"),
        (94, "XDP_PASS (2)"),
    ] {
        let mut pkt = syn.clone();
        pkt[14] = 0x4f;
        pkt.resize(len, 0);
        let path = dir.join(format!("ihl15-{len}.bin"));
        std::fs::write(&path, &pkt).expect("a scratch file");
        for engine in ["interp", "jit"] {
            let args = [
                "run",
                &root.join("examples/xdp_parse.o").display().to_string(),
                "--strict",
                "--packet",
                &path.display().to_string(),
                "--engine",
                engine,
            ]
            .map(String::from);
            let out = bpfx(&args);
            assert!(
                out.status.success(),
                "{engine} {len}: {}",
                text(&out.stderr)
            );
            assert_eq!(text(&out.stdout).trim_end(), want, "{engine} {len}");
        }
    }
}
