//! The context of programs whose section names no type, taken from their BTF (the struct the
//! first parameter points to): `tests/objects/btf_sections.c` in iproute2's `sec ingress`,
//! `sec egress`, `sec mapper`, run through the API on the interpreter and the JIT with every
//! option set, in Checked and Strict mode, exactly as with the context given; the same object
//! without BTF stays plain memory; and the precedence (section, BTF, iproute2's tail-call
//! siblings, plain memory) on hand-made program definitions.

mod common;

use bpfx::{
    Context, ContextSource, Mode, Object, ProgramDef, SkbMeta, SockHook, TcAction, Vm, XdpAction,
};
use common::{code, engines, prepare};
use std::path::PathBuf;

const MODES: [Mode; 2] = [Mode::Checked, Mode::Strict];

fn object(name: &str) -> Object {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects")).join(name);
    Object::open(path).unwrap()
}

/// An Ethernet frame whose destination starts with `dst0`, EtherType `proto`, `n` payload bytes.
fn frame(dst0: u8, proto: u16, n: usize) -> Vec<u8> {
    let mut p = vec![dst0, 2, 3, 4, 5, 6, 0x02, 0xbb, 0, 0, 0, 2];
    p.extend_from_slice(&proto.to_be_bytes());
    p.extend((0..n).map(|i| i as u8));
    p
}

fn packets() -> [Vec<u8>; 4] {
    [
        frame(0x02, 0x0800, 40),
        frame(0x02, 0x86dd, 40),
        frame(0x01, 0x0800, 7),
        vec![0x02; 10],
    ]
}

/// Runs TC program `name` of `obj` (its context `ctx`, or the default) on every packet,
/// returning each verdict and the metadata after it.
fn tc_runs(
    obj: &Object,
    name: &str,
    ctx: Option<Context>,
    mode: Mode,
    opts: Option<bpfx::JitOptions>,
) -> Vec<(TcAction, SkbMeta)> {
    let mut r = obj.program(name).unwrap();
    if let Some(c) = ctx {
        r = r.context(c);
    }
    let mut prog = prepare(r.verify(mode).unwrap(), opts);
    packets()
        .iter()
        .map(|p| {
            let mut meta = SkbMeta {
                protocol: u16::from_be_bytes([
                    p.get(12).copied().unwrap_or(0),
                    p.get(13).copied().unwrap_or(0),
                ]),
                ifindex: 3,
                mark: 0x42,
                ..SkbMeta::default()
            };
            let mut p = p.clone();
            let v = prog.run_tc(&mut p, &mut meta).unwrap();
            (v, meta)
        })
        .collect()
}

#[test]
fn free_sections_take_the_context_their_btf_declares() {
    let obj = object("btf_sections.o");
    let info: Vec<_> = obj
        .programs()
        .map(|p| {
            (
                p.name,
                p.section,
                p.context(),
                p.context_source(),
                p.ctx_type,
            )
        })
        .collect();
    assert_eq!(
        info,
        [
            (
                "tc_ingress",
                "ingress",
                Context::Tc,
                ContextSource::Btf,
                Some("__sk_buff")
            ),
            (
                "tc_egress",
                "egress",
                Context::Tc,
                ContextSource::Btf,
                Some("__sk_buff")
            ),
            (
                "xdp_mapper",
                "mapper",
                Context::Xdp,
                ContextSource::Btf,
                Some("xdp_md")
            ),
        ]
    );
    let bare = object("btf_sections-nobtf.o");
    for p in bare.programs() {
        assert_eq!(
            (p.context(), p.context_source(), p.ctx_type),
            (Context::Memory, ContextSource::Default, None),
            "{}",
            p.name
        );
    }
}

#[test]
fn btf_contexts_run_as_the_given_context_on_every_engine() {
    let obj = object("btf_sections.o");
    let bare = object("btf_sections-nobtf.o");
    for mode in MODES {
        for (engine, opts) in engines() {
            for name in ["tc_ingress", "tc_egress"] {
                let implied = tc_runs(&obj, name, None, mode, opts.clone());
                assert_eq!(
                    implied,
                    tc_runs(&obj, name, Some(Context::Tc), mode, opts.clone()),
                    "{name} {engine} {mode:?}"
                );
                assert_eq!(
                    implied,
                    tc_runs(&bare, name, Some(Context::Tc), mode, opts.clone()),
                    "{name} {engine} {mode:?}"
                );
                let verdicts: Vec<_> = implied.iter().map(|(v, _)| *v).collect();
                let want = if name == "tc_ingress" {
                    // OK (mark = 54), IPv6 shot, OK (mark = 21), runt shot.
                    assert_eq!((implied[0].1.mark, implied[2].1.mark), (54, 21));
                    [TcAction::Ok, TcAction::Shot, TcAction::Ok, TcAction::Shot]
                } else {
                    // mark 0x42: every packet shot; priority = ifindex * 16 + (len & 15).
                    assert_eq!(implied[0].1.priority, 3 * 16 + (54 & 15));
                    [TcAction::Shot; 4]
                };
                assert_eq!(verdicts, want, "{name} {engine} {mode:?}");
            }
            let xdp = |o: &Object, ctx: Option<Context>| {
                let mut r = o.program("xdp_mapper").unwrap();
                if let Some(c) = ctx {
                    r = r.context(c);
                }
                let mut prog = prepare(r.verify(mode).unwrap(), opts.clone());
                packets().map(|mut p| prog.run_xdp(&mut p).unwrap())
            };
            let implied = xdp(&obj, None);
            assert_eq!(
                implied,
                [
                    XdpAction::Pass,
                    XdpAction::Pass,
                    XdpAction::Drop,
                    XdpAction::Drop
                ],
                "{engine} {mode:?}"
            );
            assert_eq!(implied, xdp(&obj, Some(Context::Xdp)), "{engine} {mode:?}");
            assert_eq!(implied, xdp(&bare, Some(Context::Xdp)), "{engine} {mode:?}");
        }
    }
}

#[test]
fn without_btf_the_program_stays_plain_memory_and_an_explicit_context_wins() {
    // Without BTF the default is plain memory, as before: run_tc is refused for it.
    let bare = object("btf_sections-nobtf.o");
    let v = bare.program("tc_ingress").unwrap().verify(Mode::Checked);
    let mut prog = v.unwrap().interpret();
    assert_eq!(prog.context(), Context::Memory);
    let mut p = packets()[0].clone();
    assert!(prog.run_tc(&mut p, &mut SkbMeta::default()).is_err());
    // The BTF object told it is XDP is checked against xdp_md's fields: tc_egress
    // reads ifindex at offset 40, which xdp_md does not have.
    let obj = object("btf_sections.o");
    let err = obj
        .program("tc_egress")
        .unwrap()
        .context(Context::Xdp)
        .verify(Mode::Checked)
        .unwrap_err();
    assert!(err.to_string().contains("offset 40"), "{err}");
}

fn def(name: &str, section: &str, ctx_type: Option<&str>) -> ProgramDef {
    let mut d = ProgramDef::new(name, section, code("mov r0, 0\nexit\n"));
    d.ctx_type = ctx_type.map(str::to_string);
    d
}

#[test]
fn the_section_wins_then_btf_then_the_tail_call_siblings() {
    let obj = Vm::new()
        .object(
            vec![
                // A section that names a type keeps it whatever BTF says.
                def("a", "xdp", Some("__sk_buff")),
                def("b", "socket", Some("__sk_buff")),
                // Free sections: BTF decides, where the struct is one type's alone.
                def("c", "ingress", Some("pt_regs")),
                def("d", "out", Some("bpf_sock_ops")),
                def("e", "unwrap", Some("bpf_perf_event_data")),
                def("f", "mapper", Some("bpf_sock")),
                def("g", "foo", Some("bpf_sockopt")),
                // bpf_sock_addr needs a hook; an unknown struct names nothing.
                def("h", "bar", Some("bpf_sock_addr")),
                def("i", "baz", Some("my_struct")),
                def("j", "qux", None),
                // .text functions are plain functions, whatever their BTF says.
                def("k", ".text", Some("xdp_md")),
            ],
            vec![],
        )
        .unwrap();
    let got: Vec<_> = obj
        .programs()
        .map(|p| (p.name, p.context(), p.context_source()))
        .collect();
    assert_eq!(
        got,
        [
            ("a", Context::Xdp, ContextSource::Section),
            ("b", Context::Socket, ContextSource::Section),
            ("c", Context::Kprobe, ContextSource::Btf),
            ("d", Context::SockOps, ContextSource::Btf),
            ("e", Context::PerfEvent, ContextSource::Btf),
            ("f", Context::Sock(SockHook::Create), ContextSource::Btf),
            (
                "g",
                Context::Unsupported("cgroup_sockopt"),
                ContextSource::Btf
            ),
            ("h", Context::Memory, ContextSource::Default),
            ("i", Context::Memory, ContextSource::Default),
            ("j", Context::Memory, ContextSource::Default),
            ("k", Context::Memory, ContextSource::Default),
        ]
    );
    // The default of Object::program is the same.
    let prog = obj.program("c").unwrap().verify(Mode::Checked).unwrap();
    assert_eq!(prog.interpret().context(), Context::Kprobe);
    // An iproute2 tail-call section with no BTF context takes its siblings' (by BTF here)...
    let tail = Vm::new()
        .object(
            vec![
                def("main", "ingress", Some("__sk_buff")),
                def("t", "1/0", None),
            ],
            vec![],
        )
        .unwrap();
    let got: Vec<_> = tail
        .programs()
        .map(|p| (p.context(), p.context_source()))
        .collect();
    assert_eq!(
        got,
        [
            (Context::Tc, ContextSource::Btf),
            (Context::Tc, ContextSource::Object)
        ]
    );
    // ...but its own BTF comes first, and siblings that disagree leave it plain memory.
    let mixed = Vm::new()
        .object(
            vec![
                def("x", "mapper", Some("xdp_md")),
                def("y", "ingress", Some("__sk_buff")),
                def("t", "1/0", Some("xdp_md")),
                def("u", "1/1", None),
            ],
            vec![],
        )
        .unwrap();
    let got: Vec<_> = mixed
        .programs()
        .map(|p| (p.context(), p.context_source()))
        .collect();
    assert_eq!(
        got[2..],
        [
            (Context::Xdp, ContextSource::Btf),
            (Context::Memory, ContextSource::Default)
        ]
    );
}
