//! `Cfg` against an oracle that reads the raw slots (opcode class and operation, `off`, `imm`,
//! `src`) instead of `Op`, on every program of the conformance suite that decodes and on a few
//! call graphs of our own.

use bpfx_bytecode::{CallDepth, CallSite, Cfg, Edge, Insn, Pc, Program, assemble};
use std::path::PathBuf;

/// Per slot, from the wire fields alone: the instruction's length in slots, its fall-through
/// (if any), its jump target (if any), its local-call target and its `lddw func` target.
struct Raw {
    start: bool,
    fall: Option<u32>,
    jump: Option<u32>,
    call: Option<u32>,
    func: Option<u32>,
}

fn raw(insns: &[Insn]) -> Vec<Raw> {
    let mut out: Vec<Raw> = (0..insns.len())
        .map(|_| Raw {
            start: false,
            fall: None,
            jump: None,
            call: None,
            func: None,
        })
        .collect();
    let mut pc = 0usize;
    while pc < insns.len() {
        let i = insns[pc];
        let rel = |off: i64| (pc as i64 + off + 1) as u32;
        let class = i.code & 7;
        let op = i.code & 0xf0;
        let r = &mut out[pc];
        r.start = true;
        let mut len = 1;
        if i.code == 0x18 {
            len = 2;
            r.func = (i.src == 4).then(|| rel(i64::from(i.imm)));
        }
        r.fall = Some((pc + len) as u32);
        if class == 5 || class == 6 {
            match op {
                0x00 => {
                    let off = if class == 6 { i.imm } else { i32::from(i.off) };
                    r.jump = Some(rel(i64::from(off)));
                    r.fall = None;
                }
                0x90 => r.fall = None,
                0x80 => r.call = (i.src == 1).then(|| rel(i64::from(i.imm))),
                _ => r.jump = Some(rel(i64::from(i.off))),
            }
        }
        pc += len;
    }
    out
}

/// Frames of the longest call chain from `f`, or `None` on a cycle (small programs: plain
/// recursion is fine here).
fn chain(f: usize, funcs: &[u32], calls: &[(u32, u32, u32)], open: &mut Vec<usize>) -> Option<u32> {
    if open.contains(&f) {
        return None;
    }
    open.push(f);
    let mut deepest = 0;
    for &(_, caller, callee) in calls {
        if caller == funcs[f] {
            let c = funcs
                .iter()
                .position(|&e| e == callee)
                .expect("callee is an entry");
            deepest = deepest.max(chain(c, funcs, calls, open)?);
        }
    }
    open.pop();
    Some(deepest + 1)
}

fn check(prog: &Program) {
    let cfg = Cfg::new(prog);
    let raw = raw(prog.insns());
    let n = raw.len();
    let insns: Vec<usize> = (0..n).filter(|&p| raw[p].start).collect();

    for &p in &insns {
        let s = cfg.successors(Pc(p as u32));
        assert_eq!(s.fall.map(|x| x.0), raw[p].fall, "fall-through of {p}");
        assert_eq!(s.jump.map(|x| x.0), raw[p].jump, "jump of {p}");
    }

    let mut entries: Vec<u32> = vec![0];
    entries.extend(insns.iter().filter_map(|&p| raw[p].call.or(raw[p].func)));
    entries.sort_unstable();
    entries.dedup();
    let got: Vec<u32> = cfg.functions().iter().map(|f| f.entry.0).collect();
    assert_eq!(got, entries, "function entries");
    for (k, f) in cfg.functions().iter().enumerate() {
        let end = entries.get(k + 1).copied().unwrap_or(n as u32);
        assert_eq!(f.end.0, end);
        assert_eq!(
            f.called,
            insns.iter().any(|&p| raw[p].call == Some(f.entry.0))
        );
        assert_eq!(
            f.address_taken,
            insns.iter().any(|&p| raw[p].func == Some(f.entry.0))
        );
    }

    let back: Vec<Edge> = insns
        .iter()
        .filter_map(|&p| {
            let to = raw[p].jump.filter(|&t| t as usize <= p)?;
            Some(Edge {
                from: Pc(p as u32),
                to: Pc(to),
            })
        })
        .collect();
    assert_eq!(cfg.back_edges(), back.as_slice());

    let mut leaders = vec![false; n];
    for &e in &entries {
        leaders[e as usize] = true;
    }
    for &p in &insns {
        let ends = raw[p].jump.is_some() || raw[p].fall.is_none() || raw[p].call.is_some();
        if let Some(t) = raw[p].jump {
            leaders[t as usize] = true;
        }
        if ends && p + 1 < n {
            leaders[p + 1] = true;
        }
    }
    let want: Vec<Pc> = (0..n)
        .filter(|&p| leaders[p])
        .map(|p| Pc(p as u32))
        .collect();
    assert_eq!(cfg.leaders().collect::<Vec<_>>(), want, "leaders");

    let calls: Vec<(u32, u32, u32)> = insns
        .iter()
        .filter_map(|&p| {
            let callee = raw[p].call?;
            let caller = *entries.iter().rev().find(|&&e| e as usize <= p)?;
            Some((p as u32, caller, callee))
        })
        .collect();
    let got: Vec<(u32, u32, u32)> = cfg
        .calls()
        .iter()
        .map(|c: &CallSite| (c.site.0, c.caller.0, c.callee.0))
        .collect();
    assert_eq!(got, calls, "call sites");
    for (k, _) in entries.iter().enumerate() {
        let from: Vec<u32> = cfg.calls_from(k).iter().map(|c| c.site.0).collect();
        let want: Vec<u32> = calls
            .iter()
            .filter(|c| c.1 == entries[k])
            .map(|c| c.0)
            .collect();
        assert_eq!(from, want);
    }

    let depth = (0..entries.len())
        .map(|f| chain(f, &entries, &calls, &mut Vec::new()))
        .try_fold(0, |m, c| c.map(|c| m.max(c)));
    match (depth, cfg.call_depth()) {
        (Some(d), CallDepth::Frames(f)) => assert_eq!(d, f),
        (None, CallDepth::Recursive { call }) => {
            assert!(calls.contains(&(call.site.0, call.caller.0, call.callee.0)))
        }
        (want, got) => panic!("call depth: oracle {want:?}, Cfg {got:?}"),
    }
}

#[test]
fn every_conformance_program_matches_the_oracle() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/bpf_conformance/assembled_tests.jsonl");
    let text = std::fs::read_to_string(&path).expect("the conformance suite beside the repo");
    let mut checked = 0;
    for line in text.lines() {
        let key = "\"program_hex\": \"";
        let start = line.find(key).expect("program_hex") + key.len();
        let hex = &line[start..start + line[start..].find('"').expect("closing quote")];
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        if let Ok(prog) = Program::from_bytes(&bytes) {
            check(&prog);
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} programs decoded");
}

#[test]
fn call_graphs_of_our_own_match_the_oracle() {
    for text in [
        // A diamond: main -> f, g; f -> h; g -> h.
        "call local f\ncall local g\nexit\nf:\ncall local h\nexit\ng:\ncall local h\nexit\nh:\nmov r0, 0\nexit",
        // A callback calling a later function, and a loop around a call.
        "lddw r2, func(cb)\nmov r0, 0\ntop:\ncall local h\njlt r0, 3, top\nexit\ncb:\ncall local h\nexit\nh:\nadd r0, 1\nexit",
        // Mutual recursion, with a non-recursive caller.
        "call local a\nexit\na:\njeq r1, 0, +1\ncall local b\nexit\nb:\ncall local a\nexit",
        // Self-recursion of the entry, and a ja32.
        "ja32 +0\njeq r1, 0, +1\ncall local -3\nexit",
    ] {
        check(&Program::decode(assemble(text).expect("assembles")).expect("decodes"));
    }
}
