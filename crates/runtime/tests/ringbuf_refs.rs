//! Ring buffer records as references: `objects/ringbuf_refs.c` (reserve, an early exit that
//! discards, fill, submit; and a branch choosing submit or discard) passes Strict mode with
//! every access proven and runs on every engine in both modes, its records arriving whole;
//! the unsafe twins of `objects/ringbuf_refs_bad_N.c` (a record kept on an early exit, a field
//! written after the submit, a second submit) are refused by Strict mode at the pc and for the
//! reason the kernel gives, and accepted by Checked mode, where every engine runs them alike.
//! With root, `bpftool` and a BPF file system the kernel is asked too: it loads the safe
//! object and runs it to the same verdicts, and refuses each twin; without them the test says
//! why on stderr and compares nothing with the kernel.

#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object, XdpMeta};
use common::{engines, prepare};
use oracle::{compare_xdp, load, objects, unavailable};

/// The interface index every run reports.
const IFINDEX: u32 = 7;

/// A frame of `len` bytes with EtherType `proto` and first byte `first`.
fn frame(len: usize, proto: u16, first: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 13 + 5) as u8).collect();
    if len >= 14 {
        f[12..14].copy_from_slice(&proto.to_be_bytes());
    }
    if len > 0 {
        f[0] = first;
    }
    f
}

/// The record `struct event` the programs fill for frame `f`.
fn event(f: &[u8], kind: u16) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend((f.len() as u32).to_le_bytes());
    r.extend(u16::from_be_bytes([f[12], f[13]]).to_le_bytes());
    r.extend(kind.to_le_bytes());
    r.extend(IFINDEX.to_le_bytes());
    r.extend(u32::from(f[0]).to_le_bytes());
    r
}

/// The frames every program runs on: too short for an Ethernet header, IPv4, IPv6.
fn frames() -> Vec<Vec<u8>> {
    vec![
        frame(6, 0, 0),
        frame(13, 0, 1),
        frame(60, 0x0800, 0x45),
        frame(80, 0x86dd, 0x60),
        frame(14, 0x0800, 9),
    ]
}

/// What program `name` of `ringbuf_refs.o` gives for `f`: its verdict and the record it
/// submits, if any (computed here from the C source's meaning).
fn reference(name: &str, f: &[u8]) -> (u32, Option<Vec<u8>>) {
    const DROP: u32 = 1;
    const PASS: u32 = 2;
    if f.len() < 14 {
        return (DROP, None);
    }
    match name {
        "rb_submit" => (PASS, Some(event(f, 0))),
        _ if f[12..14] == [0x08, 0x00] => (PASS, Some(event(f, 1))),
        _ => (DROP, None),
    }
}

/// One run: the verdict (or the trap's kind and pc) and the records the ring holds after it.
type Run = (Result<u32, String>, Vec<Vec<u8>>);

/// Runs program `name` of the object at `file` on each frame, in `mode` on every engine,
/// asserting all engines agree; returns per frame the verdict (or the run's error) and the
/// records the ring holds after it.
fn run_everywhere(file: &str, name: &str, mode: Mode) -> Vec<Run> {
    let mut seen: Option<Vec<_>> = None;
    for (engine, opts) in engines() {
        let obj = Object::open(objects().join(file)).unwrap();
        let v = obj
            .program(name)
            .unwrap()
            .verify(mode)
            .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
        let mut prog = prepare(v, opts);
        let meta = XdpMeta {
            ingress_ifindex: IFINDEX,
            ..Default::default()
        };
        let got: Vec<_> = frames()
            .iter()
            .map(|f| {
                let mut f = f.clone();
                let verdict = prog
                    .run_xdp_with(&mut f, &meta)
                    .map(|a| a.code() as u32)
                    // The trap's kind and pc (its message names a host address).
                    .map_err(|e| match e.trap() {
                        Some(t) => format!("{:?} at {}", t.kind, t.pc),
                        None => e.to_string(),
                    });
                let records = obj.map("events").unwrap().drain_records().unwrap();
                (verdict, records)
            })
            .collect();
        match &seen {
            None => seen = Some(got),
            Some(s) => assert_eq!(*s, got, "{name} {mode:?} {engine}"),
        }
    }
    seen.unwrap()
}

#[test]
fn records_released_on_every_path_pass_strict_mode_and_arrive_whole() {
    for name in ["rb_submit", "rb_choose"] {
        for mode in [Mode::Checked, Mode::Strict] {
            let obj = Object::open(objects().join("ringbuf_refs.o")).unwrap();
            let v = obj.program(name).unwrap().verify(mode).unwrap();
            let p = v.program();
            let facts: Vec<_> = (0..p.program().len())
                .filter_map(|pc| p.access(bpfx_bytecode::Pc(pc as u32)))
                .filter(|f| f.region == bpfx_verifier::RegionKind::MapValue)
                .collect();
            // The record's five fields.
            assert!(
                facts.len() >= 5 && facts.iter().all(|f| f.proven),
                "{name} {mode:?}: {facts:?}"
            );
            let runs = run_everywhere("ringbuf_refs.o", name, mode);
            for (f, (verdict, records)) in frames().iter().zip(runs) {
                let (want, record) = reference(name, f);
                assert_eq!(verdict, Ok(want), "{name} {mode:?} {} bytes", f.len());
                assert_eq!(
                    records,
                    record.into_iter().collect::<Vec<_>>(),
                    "{name} {mode:?} {} bytes",
                    f.len()
                );
            }
        }
    }
    // The kernel runs rb_submit (the object's first program, the one `bpftool` pins) to the
    // same verdicts; the records stay in its ring.
    let ours: Vec<(u32, Vec<u8>)> = frames()
        .iter()
        .map(|f| (reference("rb_submit", f).0, f.clone()))
        .collect();
    if let Some(n) = compare_xdp(
        "records_released_on_every_path_pass_strict_mode_and_arrive_whole",
        "ringbuf_refs.o",
        &frames(),
        &ours,
    ) {
        assert_eq!(n, 3);
    }
}

/// The unsafe twins: object, Strict mode's refusal, and what the kernel's log says.
const TWINS: [(&str, &str, &str); 3] = [
    (
        "ringbuf_refs_bad_1.o",
        "insn #29: exit: the ring buffer record reserved at insn #7 is not submitted or \
         discarded on every path to exit",
        "Unreleased reference",
    ),
    (
        "ringbuf_refs_bad_2.o",
        "insn #34: stxw [r6+12], r1: r6 is a ring buffer record already submitted or discarded",
        "R6 invalid mem access",
    ),
    (
        "ringbuf_refs_bad_3.o",
        "insn #33: mov r1, r6: r6 is a ring buffer record already submitted or discarded",
        "R1 type=scalar expected=ringbuf_mem",
    ),
];

#[test]
fn unsafe_twins_are_refused_in_strict_mode_and_run_alike_in_checked_mode() {
    for (file, want, _) in TWINS {
        let obj = Object::open(objects().join(file)).unwrap();
        let e = obj
            .program("rb_bad")
            .unwrap()
            .verify(Mode::Strict)
            .expect_err("Strict mode refuses it");
        assert!(e.to_string().ends_with(want), "{file}: {e}");
        // Checked mode accepts it: memory-safe, every engine alike.
        let runs = run_everywhere(file, "rb_bad", Mode::Checked);
        for (f, (verdict, records)) in frames().iter().zip(&runs) {
            let short = f.len() < 14;
            match file {
                // The kept record is discarded when the run ends: nothing arrives.
                "ringbuf_refs_bad_1.o" if short => {
                    assert_eq!((verdict, records.len()), (&Ok(1), 0), "{file}")
                }
                // The write after the submit lands in the committed record.
                "ringbuf_refs_bad_2.o" if !short => {
                    let mut want = event(f, 2);
                    want[12..16].copy_from_slice(&u32::from(f[0]).to_le_bytes());
                    assert_eq!((verdict, records), (&Ok(2), &vec![want]), "{file}");
                }
                // The second submit finds no reserved record there: the helper fails the run,
                // after the first submit committed it.
                "ringbuf_refs_bad_3.o" if !short => {
                    assert!(
                        verdict.as_ref().is_err_and(|e| e.ends_with("at insn #35")),
                        "{file}: {verdict:?}"
                    );
                    assert_eq!(records.len(), 1, "{file}");
                }
                _ if short => assert_eq!((verdict, records.len()), (&Ok(1), 0), "{file}"),
                _ => assert_eq!((verdict, records.len()), (&Ok(2), 1), "{file}"),
            }
        }
    }
}

#[test]
fn the_kernel_agrees_on_each_verdict() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED the_kernel_agrees_on_each_verdict: {why}");
        return;
    }
    if let Err(log) = load(&objects().join("ringbuf_refs.o"), "xdp") {
        panic!("the kernel refuses ringbuf_refs.o: {log}");
    }
    for (file, _, kernel) in TWINS {
        match load(&objects().join(file), "xdp") {
            Ok(_) => panic!("the kernel loads {file}"),
            Err(log) => assert!(log.contains(kernel), "{file}: {log}"),
        }
    }
}
