//! What the hostile-input tests share: every engine, and for the JIT every option set.

use bpfx::bytecode::{Program as Bytecode, assemble};
use bpfx::{Program, Verified};
use bpfx_jit::JitOptions;

/// Assembles and decodes `text`.
pub(crate) fn code(text: &str) -> Bytecode {
    Bytecode::decode(assemble(text).unwrap()).unwrap()
}

/// The engine matrix every harness of the workspace uses ([`bpfx_testkit::matrix`]): the
/// interpreter (`None`), then the JIT under each option set (default, hardened, blinding
/// alone, Spectre masking alone, dual-mapped code memory), each with its name.
pub(crate) use bpfx_testkit::matrix as engines;

/// `v` on the engine `opts` names.
pub(crate) fn prepare(v: Verified, opts: Option<JitOptions>) -> Program {
    match opts {
        None => v.interpret(),
        Some(o) => v.compile_with(&o).unwrap(),
    }
}

/// Runs assembler `text` as a TC program on `packet` with `meta`, in Checked and Strict mode on
/// every engine, and returns what `pick` keeps of one run (r0 — the verdict's `int`, widened —
/// the packet and the metadata after it), asserting every run keeps the same.
// Only the socket-buffer helper tests run TC programs from assembler text.
#[allow(dead_code)]
pub(crate) fn run_tc_everywhere<T: PartialEq + std::fmt::Debug>(
    text: &str,
    packet: &[u8],
    meta: &bpfx::SkbMeta,
    pick: impl Fn(u64, Vec<u8>, bpfx::SkbMeta) -> T,
) -> T {
    let mut seen = None;
    for mode in [bpfx::Mode::Checked, bpfx::Mode::Strict] {
        for (name, opts) in engines() {
            let obj = bpfx::Vm::new()
                .object(vec![bpfx::ProgramDef::new("p", "tc", code(text))], vec![])
                .unwrap();
            let v = obj
                .program("p")
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}\n{text}"));
            let mut prog = prepare(v, opts);
            let mut p = packet.to_vec();
            let mut m = *meta;
            let r0 = i64::from(prog.run_tc(&mut p, &mut m).unwrap().code()) as u64;
            let got = pick(r0, p, m);
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(s, &got, "{mode:?} {name}"),
            }
        }
    }
    seen.unwrap()
}

/// Runs program `name` of `obj` as XDP on `frame` (a `Packet::new`), in Checked and Strict mode
/// on every engine, and returns the verdict's code and the final frame, asserting every run
/// gives the same.
// Only the kernel-oracle tests of clang-built XDP fixtures use it.
#[allow(dead_code)]
pub(crate) fn run_xdp_everywhere(obj: &bpfx::Object, name: &str, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut seen = None;
    for mode in [bpfx::Mode::Checked, bpfx::Mode::Strict] {
        for (engine, opts) in engines() {
            let v = obj
                .program(name)
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
            let mut prog = prepare(v, opts);
            let mut p = bpfx::Packet::new(frame);
            let out = prog.run_xdp_packet(&mut p).unwrap();
            let got = (out.action.code() as u32, p.to_vec());
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(*s, got, "{name} {mode:?} {engine}"),
            }
        }
    }
    seen.unwrap()
}

/// Runs `f` on program `name` of a fresh object from `open` on every engine in Checked and
/// Strict mode, and returns its result, asserting every run gives the same (with the object, for
/// its maps).
// Only the tests of clang-built fixtures that inspect maps or run state use it.
#[allow(dead_code)]
pub(crate) fn run_object_everywhere<T: PartialEq + std::fmt::Debug>(
    open: impl Fn() -> bpfx::Object,
    name: &str,
    f: impl Fn(&mut Program, &bpfx::Object) -> T,
) -> T {
    let mut seen = None;
    for mode in [bpfx::Mode::Checked, bpfx::Mode::Strict] {
        for (engine, opts) in engines() {
            let obj = open();
            let v = obj
                .program(name)
                .unwrap()
                .verify(mode)
                .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
            let mut prog = prepare(v, opts);
            let got = f(&mut prog, &obj);
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(s, &got, "{name} {mode:?} {engine}"),
            }
        }
    }
    seen.unwrap()
}

/// Runs the test `name` of this test binary again, alone, in a child process whose environment
/// sets `marker` (the test checks it to know it is the child), under `wrapper` (a command and
/// its arguments that start the binary, such as `prlimit --as=N`) when one is given. Returns
/// whether the child succeeded and everything it printed.
// Only the tests that measure or limit the process itself rerun themselves.
#[allow(dead_code)]
pub(crate) fn rerun_alone(name: &str, marker: &str, wrapper: &[&str]) -> (bool, String) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = std::process::Command::new(program);
            cmd.args(args).arg(exe);
            cmd
        }
        None => std::process::Command::new(exe),
    };
    let out = cmd
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(marker, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Refused twins of a fixture (`(object, program, why, checked)` in `dir`): Strict mode refuses
/// each saying `why`; Checked mode refuses it with the same reason when `checked`, and
/// accepts it (guarding or reading what Strict refuses, as the test then runs) otherwise.
#[allow(dead_code)]
pub(crate) fn twins_refused(dir: &std::path::Path, twins: &[(&str, &str, &str, bool)]) {
    for &(file, name, why, checked) in twins {
        let obj = bpfx::Object::open(dir.join(file)).unwrap();
        let prog = || obj.program(name).unwrap();
        let e = prog().verify(bpfx::Mode::Strict).unwrap_err();
        assert!(e.to_string().contains(why), "{file}: {e}");
        match prog().verify(bpfx::Mode::Checked) {
            Err(e) => assert!(checked && e.to_string().contains(why), "{file}: {e}"),
            Ok(_) => assert!(!checked, "{file}: Checked mode accepts it"),
        }
    }
}
