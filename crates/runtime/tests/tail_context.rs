//! A Checked program forging its context, then tail-calling a Strict one.
//!
//! In Checked mode packet accesses keep their run-time guards, and a guard admits any byte of
//! the input, which begins with the context struct: a Checked program can rewrite the
//! struct's `data`, `data_end` or `data_meta` pointer (or a read-only scalar such as the
//! socket buffer's `len`) through a packet pointer with a negative offset. A Strict program's
//! packet proofs trust those pointers and its JIT code has no guard, so if it were entered by
//! `bpf_tail_call` with the forged struct it would read outside the packet (out of the
//! host's buffer on the JIT; the interpreter, which checks every access, traps). bpfx
//! re-establishes every host-owned byte of the context before each program of a run starts,
//! tail calls included: these tests check that each forged field reaches the Strict program
//! as the host wrote it, on every engine and JIT option set.

mod common;

use bpfx::{
    Context, MapKind, MapSpec, Mode, Object, Packet, Program, ProgramDef, SkbMeta, StructLayout,
    TcAction, Vm, XdpAction, XdpMeta,
};
use bpfx_jit::JitOptions;
use common::{code, engines, prepare};

/// How far outside the packet the forged bounds reach.
const FAR: i64 = 0x7000;

/// What the Strict readers return when their bounds check fails.
const REFUSED: u64 = 77;

fn object(ctx_section: &str, programs: &[(&str, String)]) -> Object {
    let defs = programs
        .iter()
        .map(|(name, text)| ProgramDef::new(*name, ctx_section, code(text)))
        .collect();
    Vm::new()
        .object(
            defs,
            vec![MapSpec::new("progs", MapKind::ProgArray, 4, 4, 1)],
        )
        .unwrap()
}

/// `name` of `obj`, verified in `mode` (with `context`) on the engine `opts` names.
fn program(
    obj: &Object,
    name: &str,
    context: Context,
    mode: Mode,
    opts: Option<JitOptions>,
) -> Program {
    let v = obj
        .program(name)
        .unwrap()
        .context(context)
        .verify(mode)
        .unwrap_or_else(|e| panic!("{name} {mode:?}: {e}"));
    prepare(v, opts)
}

/// A Checked program that loads the packet pointer `data` from the context field at `data`,
/// stores `value` (computed by `make_value` from r3 = the field read at `src`, r2 = data) at
/// `data + at`, i.e. into the context struct before the packet, then tail-calls slot 0.
fn forger(data: u16, src: u16, make_value: &str, at: i64) -> String {
    format!(
        "ldxw r2, [r1+{data}]\n\
         ldxw r3, [r1+{src}]\n\
         {make_value}\n\
         stxdw [r2{at:+}], r3\n\
         lddw r2, map_idx(0)\n\
         mov r3, 0\n\
         call 12\n\
         mov r0, 99\n\
         exit"
    )
}

/// A Strict program proving `data + FAR + 8 <= data_end` and then reading `[data + FAR]`,
/// unguarded; `REFUSED` when the check fails.
fn far_reader(data: u16, data_end: u16) -> String {
    format!(
        "ldxw r2, [r1+{data}]\n\
         ldxw r3, [r1+{data_end}]\n\
         mov r5, r2\n\
         add r5, {FAR}\n\
         mov r4, r5\n\
         add r4, 8\n\
         jgt r4, r3, +2\n\
         ldxdw r0, [r5+0]\n\
         exit\n\
         mov r0, {REFUSED}\n\
         exit"
    )
}

/// A Strict program proving `data + 8 <= data_end` and reading `[data]`; `REFUSED` when the
/// check fails.
fn reader(data: u16, data_end: u16) -> String {
    format!(
        "ldxw r2, [r1+{data}]\n\
         ldxw r3, [r1+{data_end}]\n\
         mov r4, r2\n\
         add r4, 8\n\
         jgt r4, r3, +2\n\
         ldxdw r0, [r2+0]\n\
         exit\n\
         mov r0, {REFUSED}\n\
         exit"
    )
}

/// A Strict program proving `data_meta + 8 <= data` and reading `[data_meta]`; `REFUSED`
/// when the check fails.
fn meta_reader(data: u16, data_meta: u16) -> String {
    format!(
        "ldxw r2, [r1+{data_meta}]\n\
         ldxw r3, [r1+{data}]\n\
         mov r4, r2\n\
         add r4, 8\n\
         jgt r4, r3, +2\n\
         ldxdw r0, [r2+0]\n\
         exit\n\
         mov r0, {REFUSED}\n\
         exit"
    )
}

/// One attack: the forger's store, the Strict program it tail-calls, and what that program
/// returns on the context the host made.
struct Attack {
    what: &'static str,
    forger: String,
    victim: String,
    want: u64,
}

/// The packet every attack runs on, and its first 8 bytes as a little-endian `u64`.
fn frame() -> Vec<u8> {
    (0..64).collect()
}
const FIRST_8: u64 = 0x0706_0504_0302_0100;

/// The attacks on a context whose program-view `data`, `data_end` and `data_meta` fields are
/// at `d`, `e` and `m` (`m` `None` without metadata), and whose real `data`, `data_end` and
/// `data_meta` pointers lie `to_data`, `to_end` and `to_meta` bytes before the packet.
fn attacks(d: u16, e: u16, m: Option<u16>, to_data: i64, to_end: i64, to_meta: i64) -> Vec<Attack> {
    let mut v = vec![
        Attack {
            what: "data_end moved far past the packet",
            forger: forger(d, e, &format!("add r3, {FAR}"), -to_end),
            victim: far_reader(d, e),
            want: REFUSED,
        },
        Attack {
            what: "data moved far before the packet",
            forger: forger(d, d, &format!("add r3, {}", -FAR), -to_data),
            victim: reader(d, e),
            want: FIRST_8,
        },
    ];
    if let Some(m) = m {
        v.push(Attack {
            what: "data_meta moved far before data",
            forger: forger(d, d, &format!("add r3, {}", -FAR), -to_meta),
            victim: meta_reader(d, m),
            // No metadata: data_meta == data, so no byte before data is proven.
            want: REFUSED,
        });
    }
    v
}

#[test]
fn a_forged_xdp_context_reaches_a_tail_called_strict_program_as_the_host_wrote_it() {
    // bpfx's XDP struct: data at 0, data_end at 8, data_meta at 16, then the headroom
    // (`run_xdp`: 256 bytes) and the frame.
    let before = 40 + 256;
    let frame = frame();
    for attack in attacks(0, 4, Some(8), before, before - 8, before - 16) {
        let obj = object(
            "xdp",
            &[("forger", attack.forger), ("victim", attack.victim)],
        );
        for (name, opts) in engines() {
            let victim = program(&obj, "victim", Context::Xdp, Mode::Strict, opts.clone());
            obj.map("progs").unwrap().set_program(0, &victim).unwrap();
            let mut p = program(&obj, "forger", Context::Xdp, Mode::Checked, opts);
            let what = attack.what;
            let mut packet = frame.clone();
            let got = p.run_xdp(&mut packet);
            let want = XdpAction::from_code(attack.want);
            assert!(matches!(got, Ok(a) if a == want), "{name}, {what}: {got:?}");
            // The same through a packet buffer: the frame stays where the host put it.
            let mut buf = Packet::new(&frame);
            let out = p.run_xdp_packet_with(&mut buf, &XdpMeta::default());
            let out = out.unwrap_or_else(|e| panic!("{name}, {what}: {e}"));
            assert_eq!(out.action, want, "{name}, {what}");
            assert_eq!((out.start, out.len, out.meta_len), (256, 64, 0), "{name}");
        }
    }
}

#[test]
fn a_forged_tc_context_reaches_a_tail_called_strict_program_as_the_host_wrote_it() {
    // bpfx's socket buffer: data at 192, data_end at 200, data_meta at 208, then the
    // headroom (`run_tc`: 256 bytes) and the packet; the program's view has them at 76, 80 and
    // 140.
    let before = 216 + 256;
    let frame = frame();
    for attack in attacks(76, 80, Some(140), before - 192, before - 200, before - 208) {
        let obj = object(
            "tc",
            &[("forger", attack.forger), ("victim", attack.victim)],
        );
        for (name, opts) in engines() {
            let victim = program(&obj, "victim", Context::Tc, Mode::Strict, opts.clone());
            obj.map("progs").unwrap().set_program(0, &victim).unwrap();
            let mut p = program(&obj, "forger", Context::Tc, Mode::Checked, opts);
            let what = attack.what;
            let mut packet = frame.clone();
            let got = p.run_tc(&mut packet, &mut SkbMeta::default());
            let want = TcAction::from_code(attack.want);
            assert!(matches!(got, Ok(a) if a == want), "{name}, {what}: {got:?}");
            // The same through a packet buffer: the packet stays where the host put it.
            let mut buf = Packet::new(&frame);
            let out = p.run_tc_packet(&mut buf, &SkbMeta::default());
            let out = out.unwrap_or_else(|e| panic!("{name}, {what}: {e}"));
            assert_eq!(out.action, want, "{name}, {what}");
            assert_eq!((buf.start(), buf.len()), (256, 64), "{name}");
        }
    }
}

#[test]
fn a_forged_struct_context_reaches_a_tail_called_strict_program_as_the_host_wrote_it() {
    // An embedder's 32-byte struct with data at 8 and data_end at 16; the packet follows.
    let layout = StructLayout::new(32, Some((8, 16))).unwrap();
    let mut v = attacks(8, 16, None, 24, 16, 0);
    // The program's view is bpfx's: the loads are 8 bytes wide.
    for a in &mut v {
        a.forger = a.forger.replace("ldxw", "ldxdw");
        a.victim = a.victim.replace("ldxw", "ldxdw");
    }
    for attack in v {
        let obj = object("", &[("forger", attack.forger), ("victim", attack.victim)]);
        for (name, opts) in engines() {
            let ctx = Context::Struct(layout);
            let victim = program(&obj, "victim", ctx, Mode::Strict, opts.clone());
            obj.map("progs").unwrap().set_program(0, &victim).unwrap();
            let mut p = program(&obj, "forger", ctx, Mode::Checked, opts);
            let what = attack.what;
            let mut packet = frame();
            let mut st = [0u8; 32];
            let got = p.run_ctx(&mut st, &mut packet);
            assert!(
                matches!(got, Ok(r) if r == attack.want),
                "{name}, {what}: {got:?}"
            );
        }
    }
}

/// Runs `forger` (Checked) tail-calling `victim` (Strict) with context `ctx` on every engine,
/// handing each pair of programs to `run`.
fn each_engine(
    section: &str,
    ctx: Context,
    forger: &str,
    victim: &str,
    mut run: impl FnMut(&str, &mut Program),
) {
    let obj = object(
        section,
        &[
            ("forger", forger.to_string()),
            ("victim", victim.to_string()),
        ],
    );
    for (name, opts) in engines() {
        let v = program(&obj, "victim", ctx, Mode::Strict, opts.clone());
        obj.map("progs").unwrap().set_program(0, &v).unwrap();
        let mut p = program(&obj, "forger", ctx, Mode::Checked, opts);
        run(name, &mut p);
    }
}

/// The tail call of the forgers below (r1 = the context).
const TAIL_CALL: &str = "lddw r2, map_idx(0)\nmov r3, 0\ncall 12\nmov r0, 99\nexit";

#[test]
fn forged_read_only_tc_fields_are_the_hosts_again_and_writable_ones_are_kept() {
    // The forger overwrites `len` (offset 0 of the struct, 216 bytes and the 256 of headroom
    // before the packet) and `ifindex` (40) through the packet pointer, and writes `mark` and
    // `cb[0]` through the context, as a TC program may.
    let forger = format!(
        "ldxw r2, [r1+76]\n\
         stw [r2-472], 0xdead\n\
         stw [r2-432], 0xbeef\n\
         stw [r1+8], 5\n\
         stw [r1+48], 6\n\
         {TAIL_CALL}"
    );
    // r0 = len | ifindex << 8 | mark << 24 | cb[0] << 32.
    let victim = "ldxw r0, [r1+0]\n\
                  ldxw r2, [r1+40]\n\
                  lsh r2, 8\n\
                  or r0, r2\n\
                  ldxw r2, [r1+8]\n\
                  lsh r2, 24\n\
                  or r0, r2\n\
                  ldxw r2, [r1+48]\n\
                  lsh r2, 32\n\
                  or r0, r2\n\
                  exit";
    each_engine("tc", Context::Tc, &forger, victim, |name, p| {
        let mut meta = SkbMeta {
            ifindex: 3,
            ..SkbMeta::default()
        };
        let got = p.run_tc(&mut frame(), &mut meta);
        let want = TcAction::from_code(64 | 3 << 8 | 5 << 24 | 6 << 32);
        assert!(matches!(got, Ok(a) if a == want), "{name}: {got:?}");
        assert_eq!((meta.mark, meta.cb[0]), (5, 6), "{name}");
    });
}

#[test]
fn forged_read_only_socket_fields_are_the_hosts_again() {
    // A socket filter has no packet pointer, but in Checked mode it can rebuild the context's
    // address as a number from the two halves of a spill and store through that (guarded:
    // inside the input); here it overwrites `len`.
    let forger = "mov r6, r1\n\
                  stxdw [r10-8], r1\n\
                  ldxw r2, [r10-8]\n\
                  ldxw r3, [r10-4]\n\
                  lsh r3, 32\n\
                  or r2, r3\n\
                  stw [r2+0], 0xdead\n\
                  lddw r2, map_idx(0)\n\
                  mov r3, 0\n\
                  call 12\n\
                  ldxw r0, [r6+0]\n\
                  exit";
    let victim = "ldxw r0, [r1+0]\nexit";
    let obj = object(
        "socket",
        &[
            ("forger", forger.to_string()),
            ("victim", victim.to_string()),
        ],
    );
    for (name, opts) in engines() {
        let ctx = Context::Socket;
        let v = program(&obj, "victim", ctx, Mode::Strict, opts.clone());
        let mut p = program(&obj, "forger", ctx, Mode::Checked, opts);
        let progs = obj.map("progs").unwrap();
        // With the slot empty the tail call fails and the forger reads its own forgery.
        progs.clear_program(0).unwrap();
        let got = p.run_socket(&frame(), &SkbMeta::default()).map(|v| v.code);
        assert!(matches!(got, Ok(0xdead)), "{name}: {got:?}");
        progs.set_program(0, &v).unwrap();
        let got = p.run_socket(&frame(), &SkbMeta::default()).map(|v| v.code);
        assert!(matches!(got, Ok(64)), "{name}: {got:?}");
    }
}

#[test]
fn forged_read_only_xdp_fields_are_the_hosts_again() {
    // `ingress_ifindex` lies at 24 in bpfx's struct: 272 bytes before the packet (`run_xdp`).
    let forger = format!("ldxw r2, [r1+0]\nstw [r2-272], 0xdead\n{TAIL_CALL}");
    let victim = "ldxw r0, [r1+12]\nexit";
    each_engine("xdp", Context::Xdp, &forger, victim, |name, p| {
        let meta = XdpMeta {
            ingress_ifindex: 3,
            ..XdpMeta::default()
        };
        let got = p.run_xdp_with(&mut frame(), &meta);
        assert!(matches!(got, Ok(XdpAction::Tx)), "{name}: {got:?}");
    });
}

#[test]
fn a_struct_keeps_its_writable_bytes_and_comes_back_with_the_hosts_packet_fields() {
    // The forger writes its own bytes (0..8) through the context and data_end (16) through
    // the packet pointer; the victim returns the bytes.
    let layout = StructLayout::new(32, Some((8, 16))).unwrap();
    let forger = format!(
        "ldxdw r2, [r1+8]\n\
         stdw [r1+0], 0x1234\n\
         stdw [r2-16], 0\n\
         {TAIL_CALL}"
    );
    let victim = "ldxdw r0, [r1+0]\nexit";
    each_engine("", Context::Struct(layout), &forger, victim, |name, p| {
        let mut st = [0u8; 32];
        let got = p.run_ctx(&mut st, &mut frame());
        assert!(matches!(got, Ok(0x1234)), "{name}: {got:?}");
        let field = |at: usize| u64::from_le_bytes(st[at..at + 8].try_into().unwrap());
        assert_eq!(field(0), 0x1234, "{name}");
        assert_eq!(
            field(16).wrapping_sub(field(8)),
            64,
            "{name}: the host's bounds"
        );
    });
}

#[test]
fn a_tail_call_after_an_adjust_helper_starts_on_the_frame_the_host_recorded() {
    // The forger grows the metadata by 8 bytes (`xdp_adjust_meta`), fills it, then forges
    // data_meta (16 in bpfx's struct, 280 bytes before the packet of `run_xdp_packet`) to lie
    // far before data; the victim proves `data_meta + 8 <= data` and reads the metadata.
    let forger = format!(
        "mov r6, r1\n\
         mov r2, -8\n\
         call 54\n\
         ldxw r2, [r6+8]\n\
         ldxw r3, [r6+0]\n\
         stdw [r2+0], 0x42\n\
         mov r5, r3\n\
         add r5, {}\n\
         stxdw [r3-280], r5\n\
         mov r1, r6\n\
         {TAIL_CALL}",
        -FAR
    );
    let victim = meta_reader(0, 8);
    each_engine("xdp", Context::Xdp, &forger, &victim, |name, p| {
        let mut packet = Packet::new(&frame());
        let out = p.run_xdp_packet(&mut packet);
        let out = out.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.action, XdpAction::Unknown(0x42), "{name}");
        assert_eq!((out.start, out.len, out.meta_len), (256, 64, 8), "{name}");
        assert_eq!(packet.meta(), 0x42u64.to_le_bytes(), "{name}");
    });
}

#[test]
fn a_tail_call_after_a_resizing_helper_starts_on_the_packet_the_host_recorded() {
    // The forger grows the head by 8 bytes (`skb_change_head`), then forges `data_end` (200
    // in bpfx's struct, 216 + 256 - 8 - 200 = 264 bytes before the new `data`) to lie far
    // past the packet, and `len` (0, 464 before `data`); the victim proves
    // `data + FAR + 8 <= data_end` and reads there (`REFUSED` when the bound fails), or with
    // `len` returns it.
    let forger = format!(
        "mov r6, r1\n\
         mov r2, 8\n\
         mov r3, 0\n\
         call 43\n\
         ldxw r2, [r6+76]\n\
         ldxw r3, [r6+80]\n\
         add r3, {FAR}\n\
         stxdw [r2-264], r3\n\
         stw [r2-464], 0xdead\n\
         mov r1, r6\n\
         {TAIL_CALL}"
    );
    for (victim, want) in [
        (far_reader(76, 80), REFUSED),
        ("ldxw r0, [r1+0]\nexit".to_string(), 72),
    ] {
        each_engine("tc", Context::Tc, &forger, &victim, |name, p| {
            let mut packet = Packet::new(&frame());
            let out = p.run_tc_packet(&mut packet, &SkbMeta::default());
            let out = out.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out.action, TcAction::from_code(want), "{name}");
            assert_eq!((packet.start(), packet.len()), (248, 72), "{name}");
            let mut want_packet = vec![0; 8];
            want_packet.extend(frame());
            assert_eq!(packet.to_vec(), want_packet, "{name}");
        });
    }
}
