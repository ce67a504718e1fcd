//! TC redirects to a device's neighbour and to its peer, from clang-built TC programs:
//! - `bpf_redirect_neigh` (helper 152, `objects/tc_neigh.c`): without parameters and with a next
//!   hop it returns `TC_ACT_REDIRECT` and records an egress redirect to the device; a parameter
//!   block shorter than `struct bpf_redir_neigh` or a nonzero flag is `TC_ACT_SHOT` with nothing
//!   recorded.
//! - `bpf_redirect_peer` (helper 155, `objects/tc_peer.c`): with flags 0 it returns
//!   `TC_ACT_REDIRECT` and records a redirect to the peer of the device
//!   (`RedirectTarget::Peer`); a nonzero flag is `TC_ACT_SHOT` with nothing recorded; an XDP
//!   program calling it is refused (`objects/tc_peer_xdp.c`).
//!
//! Every engine in both modes; where the kernel can be asked (root, `bpftool`), its test runs
//! give the same return values and packets, and it refuses what bpfx refuses.

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object, RedirectTarget, SkbMeta};
use common::{engines, prepare};
use oracle::objects;

const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

/// An Ethernet + IPv4 UDP frame to 10.0.0.`last`.
fn frame(last: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[192, 0, 2, 9, 10, 0, 0, last]);
    f.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
    f
}

/// The verdict, the packet and the recorded redirect, the same on every engine and mode.
fn run_everywhere(obj: &Object, program: &str, f: &[u8]) -> (u32, Vec<u8>, Option<RedirectTarget>) {
    let mut seen = None;
    for mode in [Mode::Checked, Mode::Strict] {
        for (engine, opts) in engines() {
            let v = obj.program(program).unwrap().verify(mode).unwrap();
            let mut prog = prepare(v, opts);
            let mut p = f.to_vec();
            let mut meta = SkbMeta {
                protocol: 0x0800,
                ifindex: 1,
                ..SkbMeta::default()
            };
            let code = prog.run_tc(&mut p, &mut meta).unwrap().code() as u32;
            let got = (code, p, prog.last_redirect());
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(*s, got, "{mode:?} {engine}"),
            }
        }
    }
    seen.unwrap()
}

#[test]
fn redirect_neigh_redirects_or_refuses_as_the_kernel_does() {
    let file = "tc_neigh.o";
    let obj = Object::open(objects().join(file)).unwrap();
    let out = RedirectTarget::Ifindex {
        ifindex: 7,
        ingress: false,
    };
    let mut runs = Vec::new();
    for (last, want, target) in [
        (1, TC_ACT_REDIRECT, Some(out.clone())),
        (2, TC_ACT_REDIRECT, Some(out.clone())),
        (3, TC_ACT_SHOT, None),
        (4, TC_ACT_SHOT, None),
        (5, TC_ACT_OK, None),
    ] {
        let f = frame(last);
        let (code, packet, redirect) = run_everywhere(&obj, "tc_neigh", &f);
        assert_eq!((code, &redirect), (want, &target), "10.0.0.{last}");
        // The answer lands on the TOS byte, the TTL, or the IP id's first or second byte.
        let mut expect = f.clone();
        if let Some(at) = [Some(15), Some(22), Some(18), Some(19), None][last as usize - 1] {
            expect[at] = want as u8;
        }
        assert_eq!(packet, expect, "10.0.0.{last}");
        runs.push((f, (code, packet)));
    }
    oracle::compare_runs(
        "redirect_neigh_redirects_or_refuses_as_the_kernel_does",
        file,
        "classifier",
        runs.iter().map(|(f, ours)| (&f[..], ours.clone())),
    );
}

#[test]
fn redirect_peer_redirects_or_refuses_as_the_kernel_does() {
    let file = "tc_peer.o";
    let obj = Object::open(objects().join(file)).unwrap();
    let mut runs = Vec::new();
    for (last, want, target, at) in [
        (
            1,
            TC_ACT_REDIRECT,
            Some(RedirectTarget::Peer { ifindex: 9 }),
            Some(15),
        ),
        (2, TC_ACT_SHOT, None, Some(22)),
        (3, TC_ACT_OK, None, None),
    ] {
        let f = frame(last);
        let (code, packet, redirect) = run_everywhere(&obj, "tc_peer", &f);
        assert_eq!((code, &redirect), (want, &target), "10.0.0.{last}");
        // The answer lands on the TOS byte (.1) or the TTL (.2).
        let mut expect = f.clone();
        if let Some(at) = at {
            expect[at] = want as u8;
        }
        assert_eq!(packet, expect, "10.0.0.{last}");
        runs.push((f, (code, packet)));
    }
    let compared = oracle::compare_runs(
        "redirect_peer_redirects_or_refuses_as_the_kernel_does",
        file,
        "classifier",
        runs.iter().map(|(f, ours)| (&f[..], ours.clone())),
    );
    if oracle::unavailable().is_none() {
        assert_eq!(compared, Some(3), "the kernel loads and runs tc_peer.o");
    }
}

#[test]
fn redirect_peer_is_refused_to_xdp_as_the_kernel_refuses_it() {
    let path = objects().join("tc_peer_xdp.o");
    let obj = Object::open(&path).unwrap();
    for mode in [Mode::Checked, Mode::Strict] {
        let err = obj.program("xdp_peer").unwrap().verify(mode).unwrap_err();
        assert!(err.to_string().contains("155"), "{mode:?}: {err}");
    }
    if let Some(why) = oracle::unavailable() {
        eprintln!("kernel oracle skipped: {why}");
        return;
    }
    let kernel = oracle::load(&path, "xdp");
    assert!(
        kernel.is_err(),
        "the kernel loads an XDP program calling redirect_peer"
    );
}
