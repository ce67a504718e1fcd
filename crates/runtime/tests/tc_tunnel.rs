//! `bpf_skb_set_tunnel_key` (21) and `bpf_skb_get_tunnel_key` (20) from a TC program
//! (`objects/tc_tunnel.c`): the sizes (44 and the older 28, 24, 22 and 8), the flags, the
//! reserved fields, the families (`-EPROTO` for the other one), a zeroed buffer on every
//! error, the kernel's swapped addresses when a key set is read back, and the key the embedder
//! says the packet came with (`SkbMeta::tunnel`), given back as the program left it. Every
//! engine in both modes; where the kernel can be asked (root, `bpftool`), its test runs give
//! the same answers and packets for every run that starts without a key (the kernel's test
//! runs have none).

// Not every helper of `common` is used here.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{
    Mode, Object, SkbMeta, TUNNEL_CSUM, TUNNEL_DONT_FRAGMENT, TUNNEL_KEY, TUNNEL_NOCACHE,
    TUNNEL_SEQ, TunnelKey, Vm,
};
use common::{engines, prepare};
use oracle::objects;

const EINVAL: i32 = -22;
const EPROTO: i32 = -71;
/// `get`'s buffer before the call.
const FILL: u8 = 0xa5;
const NONE: u8 = 0xff;

/// A `struct bpf_tunnel_key` (44 bytes, little-endian fields).
#[allow(clippy::too_many_arguments)]
fn key(
    id: u32,
    remote: [u8; 16],
    tos: u8,
    ttl: u8,
    ext: u16,
    label: u32,
    local: [u8; 16],
) -> [u8; 44] {
    let mut k = [0u8; 44];
    k[0..4].copy_from_slice(&id.to_le_bytes());
    k[4..20].copy_from_slice(&remote);
    k[20] = tos;
    k[21] = ttl;
    k[22..24].copy_from_slice(&ext.to_le_bytes());
    k[24..28].copy_from_slice(&label.to_le_bytes());
    k[28..44].copy_from_slice(&local);
    k
}

/// An IPv4 address field: the host-order integer, the other 12 bytes `rest`.
fn v4(a: [u8; 4], rest: u8) -> [u8; 16] {
    let mut w = [rest; 16];
    w[0..4].copy_from_slice(&u32::from_be_bytes(a).to_le_bytes());
    w
}

fn v6(first: u8) -> [u8; 16] {
    std::array::from_fn(|i| first + i as u8)
}

/// The address bytes of a [`TunnelKey`] for IPv4 address `a`.
fn net4(a: [u8; 4]) -> [u8; 16] {
    let mut w = [0u8; 16];
    w[0..4].copy_from_slice(&a);
    w
}

const REMOTE: [u8; 4] = [10, 0, 0, 1];
const LOCAL: [u8; 4] = [10, 0, 0, 2];

fn key4() -> [u8; 44] {
    key(
        0x1234_5678,
        v4(REMOTE, 0x11),
        0x10,
        64,
        0,
        0,
        v4(LOCAL, 0x22),
    )
}

fn key6() -> [u8; 44] {
    key(0xdead_beef, v6(0x10), 0x20, 7, 0, 0xfff1_2345, v6(0x30))
}

/// The frame asking for a set of `set` = (size, flags) and a get of `get` = (size, flags)
/// (flags [`NONE`]: no call), with `k` for set.
fn frame(set: (u8, u8), get: (u8, u8), k: &[u8; 44]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[set.0, set.1, get.0, get.1]);
    f.extend_from_slice(k);
    f.resize(114, 0);
    f
}

/// What one frame gives: set's answer, get's, get's buffer, the key after the run, the
/// verdict and the packet; the same on every engine in both modes.
#[derive(Clone, Debug, PartialEq)]
struct Got {
    set: i32,
    get: i32,
    out: [u8; 44],
    after: Option<TunnelKey>,
    code: u32,
    packet: Vec<u8>,
}

fn run(obj: &Object, f: &[u8], tunnel: Option<TunnelKey>) -> Got {
    let mut seen: Option<Got> = None;
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, opts) in engines() {
            let v = obj.program("tc_tunnel").unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            let mut p = f.to_vec();
            let mut meta = SkbMeta {
                protocol: 0x0800,
                ifindex: 1,
                tunnel,
                ..SkbMeta::default()
            };
            let code = prog.run_tc(&mut p, &mut meta).unwrap().code() as u32;
            let got = Got {
                set: i32::from_le_bytes(p[62..66].try_into().unwrap()),
                get: i32::from_le_bytes(p[66..70].try_into().unwrap()),
                out: p[70..114].try_into().unwrap(),
                after: meta.tunnel,
                code,
                packet: p,
            };
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(*s, got, "{mode:?} {engine} {f:02x?}"),
            }
        }
    }
    seen.unwrap()
}

/// `want` for the first `n` bytes of get's buffer, the rest untouched.
fn first(want: &[u8; 44], n: usize) -> [u8; 44] {
    std::array::from_fn(|i| if i < n { want[i] } else { FILL })
}

#[test]
fn tunnel_keys_as_the_kernel_sets_and_reads_them() {
    let obj = Object::open(objects().join("tc_tunnel.o")).unwrap();
    let zero = [0u8; 44];
    let mut kernel_cases = Vec::new();
    let mut check = |set: (u8, u8), get: (u8, u8), k: [u8; 44], want: (i32, i32, [u8; 44])| {
        let f = frame(set, get, &k);
        let g = run(&obj, &f, None);
        assert_eq!(
            (g.code, g.set, g.get, g.out),
            (0, want.0, want.1, want.2),
            "set {set:?} get {get:?}"
        );
        kernel_cases.push((f, g.code, g.packet));
        g.after
    };

    // No key: -EINVAL and the buffer zeroed (as far as the size goes).
    assert_eq!(check((44, NONE), (44, 0), key4(), (0, EINVAL, zero)), None);
    check((44, NONE), (8, 0), key4(), (0, EINVAL, first(&zero, 8)));
    check((44, NONE), (44, 1), key4(), (0, EINVAL, zero));

    // An IPv4 key set and read back: the remote address reads as the local one and back.
    let back4 = key(0x1234_5678, v4(LOCAL, 0), 0x10, 64, 0, 0, v4(REMOTE, 0));
    let after = check((44, 0), (44, 0), key4(), (0, 0, back4));
    let sent = TunnelKey {
        ipv6: false,
        id: 0x1234_5678,
        src: net4(LOCAL),
        dst: net4(REMOTE),
        tos: 0x10,
        ttl: 64,
        label: 0,
        flags: TUNNEL_KEY | TUNNEL_CSUM | TUNNEL_NOCACHE,
    };
    assert_eq!(after, Some(sent));
    for n in [8u8, 22, 24, 28] {
        check((44, 0), (n, 0), key4(), (0, 0, first(&back4, n.into())));
    }
    for n in [1u8, 20, 40] {
        check((44, 0), (n, 0), key4(), (0, EINVAL, first(&zero, n.into())));
    }
    // The other family, and flags get does not know.
    check((44, 0), (44, 1), key4(), (0, EPROTO, zero));
    check((44, 0), (20, 1), key4(), (0, EPROTO, first(&zero, 20)));
    check((44, 0), (44, 2), key4(), (0, EINVAL, zero));
    // BPF_F_TUNINFO_FLAGS: the flags as tunnel_flags (big-endian).
    for (flags, tf) in [
        (0u8, TUNNEL_KEY | TUNNEL_CSUM | TUNNEL_NOCACHE),
        (2, TUNNEL_KEY | TUNNEL_NOCACHE),
        (
            4,
            TUNNEL_KEY | TUNNEL_CSUM | TUNNEL_NOCACHE | TUNNEL_DONT_FRAGMENT,
        ),
        (8, TUNNEL_KEY | TUNNEL_CSUM | TUNNEL_NOCACHE | TUNNEL_SEQ),
        (16, TUNNEL_CSUM | TUNNEL_NOCACHE),
        (30, TUNNEL_NOCACHE | TUNNEL_DONT_FRAGMENT | TUNNEL_SEQ),
    ] {
        let mut want = back4;
        want[22..24].copy_from_slice(&tf.to_be_bytes());
        let after = check((44, flags), (44, 16), key4(), (0, 0, want));
        assert_eq!(after.map(|k| k.flags), Some(tf), "{flags}");
    }
    // Set's sizes: the older layouts read the rest as zeros.
    let k = key4();
    for n in [8u8, 22, 24, 28] {
        // The remote address's first word is within every size (it reads back as the local
        // address); the local address (bytes 28..44) only within 44, so it reads back as 0;
        // tos and ttl from 22 on.
        let at22 = u8::from(n >= 22);
        let want = key(
            0x1234_5678,
            [0; 16],
            0x10 * at22,
            64 * at22,
            0,
            0,
            v4(REMOTE, 0),
        );
        check((n, 0), (44, 0), k, (0, 0, want));
    }
    for n in [1u8, 20, 40] {
        assert_eq!(check((n, 0), (44, 0), k, (EINVAL, EINVAL, zero)), None);
    }
    assert_eq!(check((44, 32), (44, 0), k, (EINVAL, EINVAL, zero)), None);
    // The reserved fields: tunnel_ext, and a label without IPv6 (but not beyond the size).
    let ext = key(1, v4(REMOTE, 0), 0, 0, 1, 0, v4(LOCAL, 0));
    let label = key(1, v4(REMOTE, 0), 0, 0, 0, 5, v4(LOCAL, 0));
    check((44, 0), (44, 0), ext, (EINVAL, EINVAL, zero));
    check((44, 0), (44, 0), label, (EINVAL, EINVAL, zero));
    check((24, 0), (44, 0), ext, (EINVAL, EINVAL, zero));
    let short = key(1, [0; 16], 0, 0, 0, 0, v4(REMOTE, 0));
    check((22, 0), (44, 0), label, (0, 0, short));
    check((22, 0), (44, 0), ext, (0, 0, short));

    // IPv6: the label keeps its 20 bits; size 8 is IPv4's only.
    let back6 = key(0xdead_beef, v6(0x30), 0x20, 7, 0, 0x0001_2345, v6(0x10));
    let after = check((44, 1), (44, 1), key6(), (0, 0, back6));
    assert_eq!(
        after,
        Some(TunnelKey {
            ipv6: true,
            id: 0xdead_beef,
            src: v6(0x30),
            dst: v6(0x10),
            tos: 0x20,
            ttl: 7,
            label: 0x0001_2345,
            flags: TUNNEL_KEY | TUNNEL_CSUM | TUNNEL_NOCACHE,
        })
    );
    check((44, 1), (28, 1), key6(), (0, 0, first(&back6, 28)));
    check((44, 1), (8, 1), key6(), (0, EINVAL, first(&zero, 8)));
    check((44, 1), (44, 0), key6(), (0, EPROTO, zero));
    check((44, 1), (44, 3), key6(), (0, EINVAL, zero));
    let mut want = back6;
    want[22..24].copy_from_slice(&(TUNNEL_KEY | TUNNEL_NOCACHE).to_be_bytes());
    check((44, 3), (44, 17), key6(), (0, 0, want));
    let mut ext6 = key6();
    ext6[22] = 1;
    check((44, 1), (44, 1), ext6, (EINVAL, EINVAL, zero));

    // A packet that came with a key: get reads its source as the remote end, a failed set
    // keeps it, and it comes back unchanged.
    let came = TunnelKey {
        ipv6: false,
        id: 42,
        src: net4([192, 0, 2, 1]),
        dst: net4([192, 0, 2, 2]),
        tos: 3,
        ttl: 9,
        label: 0,
        flags: TUNNEL_KEY,
    };
    let incoming = key(42, v4([192, 0, 2, 1], 0), 3, 9, 0, 0, v4([192, 0, 2, 2], 0));
    for set in [(44, NONE), (20, 0), (44, 64)] {
        let g = run(&obj, &frame(set, (44, 0), &key4()), Some(came));
        assert_eq!(
            (g.get, g.out, g.after),
            (0, incoming, Some(came)),
            "{set:?}"
        );
    }
    let mut flagged = incoming;
    flagged[22..24].copy_from_slice(&TUNNEL_KEY.to_be_bytes());
    let g = run(&obj, &frame((44, NONE), (44, 16), &key4()), Some(came));
    assert_eq!((g.get, g.out), (0, flagged));
    let g = run(&obj, &frame((44, NONE), (44, 1), &key4()), Some(came));
    assert_eq!((g.get, g.out), (EPROTO, zero));
    // A set replaces it.
    let g = run(&obj, &frame((44, 0), (44, 0), &key4()), Some(came));
    assert_eq!((g.set, g.get, g.out, g.after), (0, 0, back4, Some(sent)));

    oracle::compare_runs(
        "tunnel_keys_as_the_kernel_sets_and_reads_them",
        "tc_tunnel.o",
        "classifier",
        kernel_cases
            .iter()
            .map(|(f, code, packet)| (&f[..], (*code, packet.clone()))),
    );
}

/// A size the verifier does not know (Checked mode leaves the bounds to the helper) past the
/// buffer: the run fails, naming the helper and the argument, on every engine, with or
/// without a key (and no buffer of that size is made).
#[test]
fn a_get_past_its_buffer_fails_the_run() {
    // r3 = the packet's length (unknown to the verifier) << 24: about 2 GB.
    let text = "mov r2, r10\nadd r2, -48\nldxw r3, [r1+0]\nlsh r3, 24\nmov r4, 0\ncall 20\nexit";
    for tunnel in [None, Some(TunnelKey::default())] {
        for (engine, opts) in engines() {
            let obj = Vm::new()
                .object(
                    vec![bpfx::ProgramDef::new("p", "tc", common::code(text))],
                    vec![],
                )
                .unwrap();
            let v = obj.program("p").unwrap().verify(Mode::Checked).unwrap();
            let mut prog = prepare(v, opts);
            let mut p = frame((44, NONE), (44, 0), &key4());
            let mut meta = SkbMeta {
                tunnel,
                ..SkbMeta::default()
            };
            let e = prog.run_tc(&mut p, &mut meta).unwrap_err();
            assert!(
                e.to_string()
                    .contains("helper 20: argument r2 names 1912602624 bytes"),
                "{engine}: {e}"
            );
        }
    }
}
