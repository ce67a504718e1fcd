//! sk_lookup programs (`objects/sk_lookup.c`, the dispatcher the kernel's documentation
//! describes): a TCP dispatcher selecting the socket a SOCKMAP holds for the destination port,
//! a UDP steering program that replaces an earlier selection and reads it back through
//! `ctx->sk`, and one that clears a selection; on every engine and JIT option set in both
//! modes, with the sockets of the `Vm`'s table. `bpf_sk_assign`'s errnos (`-EEXIST`,
//! `-ESOCKTNOSUPPORT`, `-EPROTOTYPE`, `-EAFNOSUPPORT`, `-EINVAL`), the refused twins
//! (`objects/sk_lookup_bad_N.c`: a context write, a return value of 2, a socket never released)
//! and the context's field rules (narrow loads, `sk` whole only, nothing past
//! `ingress_ifindex`).
//!
//! The kernel is the oracle where it can be asked (root, `bpftool`): its verifier loads
//! `sk_lookup.o` and refuses the twins, and its test run (`BPF_PROG_TEST_RUN` with a `ctx_in`)
//! gives the same verdicts, context and map contents as bpfx for lookups whose SOCKMAP slot is
//! empty (a test cannot put a socket into the kernel's map through `bpftool`).

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use bpfx::{
    Context, Mode, Object, Program, SkLookup, SkLookupOutcome, Socket, SocketId, SocketTable,
    UpdateFlag, Vm,
};
use oracle::objects;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const TCP: u32 = 6;
const UDP: u32 = 17;
const LISTEN: u32 = 10;
const ESTABLISHED: u32 = 1;

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

/// The table: a TCP listener on 127.0.0.1:9000 (cookie 0x100), an unconnected UDP socket on
/// 0.0.0.0:7 (0x200), an established TCP socket (0x300), a TCP listener on [::]:9000 (0x400).
fn table() -> SocketTable {
    let mut t = SocketTable::new();
    let any4 = (v4([0; 4]), 0);
    let mut add = |mut s: Socket, cookie| {
        s.cookie = cookie;
        t.add(s);
    };
    add(Socket::tcp((v4([127, 0, 0, 1]), 9000), any4, LISTEN), 0x100);
    add(Socket::udp((v4([0; 4]), 7), any4), 0x200);
    add(
        Socket::tcp(
            (v4([127, 0, 0, 1]), 9001),
            (v4([10, 0, 0, 2]), 5555),
            ESTABLISHED,
        ),
        0x300,
    );
    add(
        Socket::tcp(
            (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 9000),
            (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
            LISTEN,
        ),
        0x400,
    );
    t
}

const LISTENER: SocketId = SocketId(0);
const UDP_SOCK: SocketId = SocketId(1);
const LISTENER6: SocketId = SocketId(3);

fn lookup(protocol: u32, remote: (IpAddr, u16), local_port: u16) -> SkLookup {
    let local = match remote.0 {
        IpAddr::V4(_) => v4([127, 0, 0, 1]),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SkLookup::new(protocol, remote, (local, local_port)).unwrap()
}

fn client() -> (IpAddr, u16) {
    (v4([10, 1, 2, 3]), 0x1234)
}

/// Fills `obj`'s maps: the SOCKMAP's slots hold the cookies 0x100, 0x300, 0x400 and 0x999 (no
/// socket has it), and `ports` steers 80..=83 to slots 0..=3.
fn fill(obj: &Object, slots: &[u64]) {
    let m = obj.map("redir_map").unwrap();
    for (i, c) in slots.iter().enumerate() {
        m.update(&(i as u32).to_le_bytes(), &c.to_le_bytes(), UpdateFlag::Any)
            .unwrap();
    }
    let p = obj.map("ports").unwrap();
    for i in 0..4u16 {
        p.update(
            &(80 + i).to_le_bytes(),
            &u32::from(i).to_le_bytes(),
            UpdateFlag::Any,
        )
        .unwrap();
    }
}

fn u64_at(obj: &Object, map: &str, i: u32) -> Vec<u8> {
    obj.map(map)
        .unwrap()
        .lookup(&i.to_le_bytes())
        .unwrap()
        .unwrap()
}

/// `name` of `sk_lookup.o` on every engine in both modes with the table's sockets, `f` given
/// each program and its object (maps filled with `slots`); every run agrees.
fn everywhere<T: PartialEq + std::fmt::Debug>(
    name: &str,
    slots: &[u64],
    f: impl Fn(&mut Program, &Object) -> T,
) -> T {
    let vm = Vm::new().sockets(table());
    common::run_object_everywhere(
        || vm.open(objects().join("sk_lookup.o")).unwrap(),
        name,
        |p, obj| {
            fill(obj, slots);
            f(p, obj)
        },
    )
}

fn outcome(code: u32, selected: Option<SocketId>, cookie: u64) -> SkLookupOutcome {
    SkLookupOutcome {
        code,
        pass: code == 1,
        selected,
        no_reuseport: false,
        cookie,
    }
}

#[test]
fn the_section_and_the_btf_type_give_the_sk_lookup_context() {
    let obj = Object::open(objects().join("sk_lookup.o")).unwrap();
    for name in ["dispatch", "echo_v4", "reset"] {
        let p = obj.program(name).unwrap().load().unwrap();
        assert_eq!(p.context(), Context::SkLookup, "{name}");
    }
    assert_eq!(Context::parse("sk_lookup"), Some(Context::SkLookup));
    assert_eq!(Context::for_section("sk_lookup"), Context::SkLookup);
    assert_eq!(
        Context::for_section("sk_lookup/dispatcher"),
        Context::SkLookup
    );
    assert_eq!(Context::for_section("sk_lookupx"), Context::Memory);
    assert_eq!(
        Context::for_btf_type("bpf_sk_lookup"),
        Some(Context::SkLookup)
    );
    assert_eq!(Context::SkLookup.name(), "sk_lookup");
}

#[test]
fn the_dispatcher_selects_the_sockmap_socket_of_the_port() {
    let slots = [0x100, 0x300, 0x400, 0x999];
    let runs = everywhere("dispatch", &slots, |p, obj| {
        let mut out = Vec::new();
        for (l, sel) in [
            // Slot 0: the IPv4 listener.
            (lookup(TCP, client(), 80), None),
            // Slot 1: an established socket cannot be selected (-ESOCKTNOSUPPORT).
            (lookup(TCP, client(), 81), None),
            // Slot 2: the IPv6 listener is dual-stack: it serves IPv4.
            (lookup(TCP, client(), 82), None),
            // Slot 3: no socket has the cookie: the lookup gives NULL.
            (lookup(TCP, client(), 83), None),
            // Not steered: the regular lookup.
            (lookup(TCP, client(), 84), None),
            (lookup(UDP, client(), 80), None),
            // An earlier program selected a socket: -EEXIST without REPLACE.
            (lookup(TCP, client(), 80), Some(LISTENER6)),
            // An IPv6 connection to the IPv4 listener: -EAFNOSUPPORT.
            (lookup(TCP, (IpAddr::V6(Ipv6Addr::LOCALHOST), 1), 80), None),
        ] {
            out.push(p.run_sk_lookup(&l, sel).unwrap());
        }
        (out, u64_at(obj, "stats", 0), u64_at(obj, "stats", 1))
    });
    let (out, selected, failed) = runs;
    assert_eq!(
        out,
        [
            outcome(1, Some(LISTENER), 0x100),
            outcome(0, None, 0),
            outcome(1, Some(LISTENER6), 0x400),
            outcome(0, None, 0),
            outcome(1, None, 0),
            outcome(1, None, 0),
            outcome(0, Some(LISTENER6), 0x400),
            outcome(0, None, 0),
        ]
    );
    assert_eq!(out[0].to_string(), "SK_PASS (socket 0)");
    assert_eq!(out[1].to_string(), "SK_DROP");
    assert_eq!(selected, 2u64.to_le_bytes());
    assert_eq!(failed, 3u64.to_le_bytes());
}

#[test]
fn udp_steering_replaces_the_selection_and_reads_it_through_ctx_sk() {
    // Slot 0 holds the UDP socket; then the TCP listener (-EPROTOTYPE for a datagram).
    for (slot, want_sel, want_code, want_pad) in [
        (0x200, Some(UDP_SOCK), 1, 1),
        (0x100, Some(LISTENER6), 0, 0),
    ] {
        let (out, last, other) = everywhere("echo_v4", &[slot], |p, obj| {
            let l = lookup(UDP, client(), 7).on(5);
            let out = p.run_sk_lookup(&l, Some(LISTENER6)).unwrap();
            let last = u64_at(obj, "last", 0);
            // Not from 10.0.0.0/8: passed on untouched.
            let other = p
                .run_sk_lookup(&lookup(UDP, (v4([192, 168, 0, 1]), 9), 7), None)
                .unwrap();
            (out, last, other)
        });
        assert_eq!((out.code, out.selected), (want_code, want_sel), "{slot:#x}");
        // ifindex 5, the port's network-order bytes, AF_INET, ctx->sk's reading.
        assert_eq!(last, [5, 0, 0, 0, 0x12, 0x34, 2, want_pad], "{slot:#x}");
        assert_eq!(other, outcome(1, None, 0));
    }
}

#[test]
fn reset_clears_a_selection_for_another_port() {
    let got = everywhere("reset", &[], |p, _| {
        [
            p.run_sk_lookup(&lookup(TCP, client(), 9000), Some(LISTENER))
                .unwrap(),
            p.run_sk_lookup(&lookup(TCP, client(), 80), Some(LISTENER))
                .unwrap(),
            p.run_sk_lookup(&lookup(TCP, client(), 80), None).unwrap(),
            // An id the table does not hold: no selection.
            p.run_sk_lookup(&lookup(TCP, client(), 80), Some(SocketId(99)))
                .unwrap(),
        ]
    });
    assert_eq!(
        got,
        [
            outcome(1, Some(LISTENER), 0x100),
            outcome(1, None, 0),
            outcome(1, None, 0),
            outcome(1, None, 0),
        ]
    );
}

#[test]
fn other_contexts_cannot_run_as_sk_lookup() {
    let obj = Object::open(objects().join("skmsg.o")).unwrap();
    let v = obj.program("redir").unwrap().verify(Mode::Checked).unwrap();
    let mut p = common::prepare(v, None);
    let e = p
        .run_sk_lookup(&lookup(TCP, client(), 80), None)
        .unwrap_err();
    assert!(e.to_string().contains("sk_lookup"), "{e}");
}

/// The refused twins: (file, program, refused in Checked mode too).
const TWINS: [(&str, &str, bool); 3] = [
    ("sk_lookup_bad_0.o", "rewrite_port", true),
    ("sk_lookup_bad_1.o", "verdict_two", false),
    ("sk_lookup_bad_2.o", "leak", true),
];

#[test]
fn the_twins_are_refused() {
    for (file, name, checked) in TWINS {
        let obj = Object::open(objects().join(file)).unwrap();
        let e = obj.program(name).unwrap().verify(Mode::Strict).unwrap_err();
        eprintln!("{file}: {e}");
        assert_eq!(
            obj.program(name).unwrap().verify(Mode::Checked).is_err(),
            checked,
            "{file}"
        );
    }
}

/// One-instruction-load programs against the context: (offset, size, accepted), as Linux 6.18
/// answered for each (`bpftool prog load` of one-field programs).
#[test]
fn the_context_takes_the_loads_the_kernel_takes() {
    use bpfx::ProgramDef;
    let cases: &[(u16, u8, bool)] = &[
        (0, 8, true),
        (0, 4, false),
        (4, 4, false),
        (8, 1, true),
        (9, 1, true),
        (8, 2, true),
        (10, 2, true),
        (8, 4, true),
        (8, 8, false),
        (36, 4, true),
        (36, 2, true),
        (38, 2, true),
        (37, 1, true),
        (39, 1, true),
        (62, 2, true),
        (64, 4, true),
        (66, 2, true),
        (68, 4, false),
        (68, 1, false),
    ];
    for &(off, size, ok) in cases {
        let w = match size {
            1 => "b",
            2 => "h",
            4 => "w",
            _ => "dw",
        };
        let text = format!("ldx{w} r2, [r1+{off}]\nmov r0, 1\nexit\n");
        for mode in [Mode::Checked, Mode::Strict] {
            let obj = Vm::new()
                .object(
                    vec![ProgramDef::new("p", "sk_lookup", common::code(&text))],
                    vec![],
                )
                .unwrap();
            let got = obj.program("p").unwrap().verify(mode);
            assert_eq!(got.is_ok(), ok, "{size} bytes at {off} {mode:?}: {got:?}");
        }
    }
    // Nothing is writable.
    let obj = Vm::new()
        .object(
            vec![ProgramDef::new(
                "p",
                "sk_lookup",
                common::code("stw [r1+60], 80\nmov r0, 1\nexit\n"),
            )],
            vec![],
        )
        .unwrap();
    assert!(obj.program("p").unwrap().verify(Mode::Checked).is_err());
}

/// The struct the kernel's test run takes (`ctx_in`) for `l`.
fn ctx_in(l: &SkLookup) -> Vec<u8> {
    let mut b = vec![0u8; bpfx::SK_LOOKUP_CTX_SIZE];
    let put = |b: &mut Vec<u8>, at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
    put(&mut b, 8, &l.family().to_le_bytes());
    put(&mut b, 12, &l.protocol.to_le_bytes());
    if let (IpAddr::V4(r), IpAddr::V4(a)) = (l.remote.0, l.local.0) {
        put(&mut b, 16, &r.octets());
        put(&mut b, 40, &a.octets());
    }
    put(&mut b, 36, &l.remote.1.to_be_bytes());
    put(&mut b, 60, &u32::from(l.local.1).to_le_bytes());
    put(&mut b, 64, &l.ingress_ifindex.to_le_bytes());
    assert_eq!(SkLookup::from_ctx(&b), Some(*l));
    b
}

/// The kernel's test run of the pinned sk_lookup program `pin` on `ctx` (`ctx_in`; no packet:
/// the kernel refuses one for this type), which becomes its `ctx_out`: the return value.
fn kernel_run(pin: &std::path::Path, ctx: &mut [u8], scratch: &std::path::Path) -> u32 {
    let (cin, cout) = (scratch.join("ctx_in.bin"), scratch.join("ctx_out.bin"));
    std::fs::write(&cin, &*ctx).unwrap();
    let text = bpftool(&[
        "prog",
        "run",
        "pinned",
        pin.to_str().unwrap(),
        "ctx_in",
        cin.to_str().unwrap(),
        "ctx_out",
        cout.to_str().unwrap(),
        "ctx_size_out",
        &ctx.len().to_string(),
    ]);
    ctx.copy_from_slice(&std::fs::read(&cout).unwrap());
    text.split("Return value: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("no return value in {text:?}"))
}

fn bpftool(args: &[&str]) -> String {
    let o = std::process::Command::new("bpftool")
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "bpftool {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_kernel_loads_the_fixture_refuses_the_twins_and_agrees_on_test_runs() {
    if let Some(why) = oracle::unavailable() {
        eprintln!("SKIPPED kernel oracle for sk_lookup: {why}");
        return;
    }
    for (file, _, _) in TWINS {
        assert!(
            oracle::load_by_section(&objects().join(file)).is_err(),
            "the kernel loads {file}"
        );
    }
    let obj_path = objects().join("sk_lookup.o");
    let (progs_dir, maps_dir) = oracle::load_all_pinning_maps(&obj_path)
        .unwrap_or_else(|e| panic!("the kernel refuses sk_lookup.o: {e}"));
    let maps = maps_dir.path().display().to_string();
    // ports[80] = slot 0, which stays empty in both.
    bpftool(&[
        "map",
        "update",
        "pinned",
        &format!("{maps}/ports"),
        "key",
        "80",
        "0",
        "value",
        "0",
        "0",
        "0",
        "0",
    ]);
    let scratch = std::env::temp_dir().join(format!("bpfx-sk-lookup-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let vm = Vm::new().sockets(table());
    let ours = vm.open(obj_path.clone()).unwrap();
    ours.map("ports")
        .unwrap()
        .update(&80u16.to_le_bytes(), &0u32.to_le_bytes(), UpdateFlag::Any)
        .unwrap();
    let runs = [
        ("dispatch", lookup(TCP, client(), 80)),
        ("dispatch", lookup(TCP, client(), 84)),
        ("dispatch", lookup(UDP, client(), 80)),
        ("echo_v4", lookup(UDP, client(), 7)),
        ("echo_v4", lookup(UDP, (v4([192, 168, 1, 1]), 53), 9)),
        ("reset", lookup(TCP, client(), 80)),
    ];
    let mut progs: Vec<(String, Program)> = Vec::new();
    for (name, l) in runs {
        let mut ctx = ctx_in(&l);
        let ret = kernel_run(&progs_dir.path().join(name), &mut ctx, &scratch);
        if !progs.iter().any(|(n, _)| n == name) {
            let v = ours.program(name).unwrap().verify(Mode::Strict).unwrap();
            progs.push((name.to_string(), common::prepare(v, None)));
        }
        let p = &mut progs.iter_mut().find(|(n, _)| n == name).unwrap().1;
        let out = p.run_sk_lookup(&l, None).unwrap();
        assert_eq!(ret, out.code, "{name} {l:?}");
        assert_eq!(ctx[..8], out.cookie.to_le_bytes(), "{name} {l:?}");
        // The rest of ctx_out is what went in.
        assert_eq!(ctx[8..], ctx_in(&l)[8..], "{name}");
        let kernel_last = bpftool(&[
            "-j",
            "map",
            "lookup",
            "pinned",
            &format!("{maps}/last"),
            "key",
            "0",
            "0",
            "0",
            "0",
        ]);
        let ours_last: String = u64_at(&ours, "last", 0)
            .iter()
            .map(|b| format!("\"{b:#04x}\""))
            .collect::<Vec<_>>()
            .join(",");
        assert!(
            kernel_last.contains(&format!("\"value\":[{ours_last}]")),
            "{name}: {kernel_last} vs {ours_last}"
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "sk_lookup: {} test runs compared with the kernel's",
        runs.len()
    );
}
