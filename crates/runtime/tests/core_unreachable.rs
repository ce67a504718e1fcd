//! The "unreachable" marker of CO-RE programs (`objects/core_unreachable.h`, built as
//! `core_unreachable_0.c` and `_1.c`): a call of helper
//! `0xbad2310` (`bpfx_verifier::BAD_RELO_HELPER`, libbpf's and cilium/ebpf's poisoned call of a
//! failed CO-RE relocation). Guarded by a CO-RE value that rules it out
//! (`core_unreachable_0.o`) it is dead code: accepted in both modes and run on every engine; on
//! a path a run can take (`core_unreachable_1.o`) it is refused in both modes, at its pc (2). Where
//! the kernel can be asked (root, `bpftool`), it loads the first and refuses the second.

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use bpfx::{Mode, Object, XdpAction};
use common::{engines, prepare};
use oracle::objects;

#[test]
fn the_bad_relo_call_is_refused_where_reachable_and_ignored_in_dead_code() {
    for (n, accepted) in [(0, true), (1, false)] {
        let path = objects().join(format!("core_unreachable_{n}.o"));
        let obj = Object::open(&path).unwrap();
        for mode in [Mode::Checked, Mode::Strict] {
            let got = obj.program("xdp_core_unreachable").unwrap().verify(mode);
            if !accepted {
                let e = got.unwrap_err().to_string();
                assert!(
                    e.contains("insn #2: call 195896080") && e.contains("unknown helper 195896080"),
                    "{n} {mode:?}: {e}"
                );
                continue;
            }
            let v = got.unwrap();
            for (engine, opts) in engines() {
                let mut prog = prepare(v.clone(), opts);
                let mut frame = vec![0u8; 60];
                assert_eq!(
                    prog.run_xdp(&mut frame).unwrap(),
                    XdpAction::Pass,
                    "{mode:?} {engine}"
                );
            }
        }
        if let Some(why) = oracle::unavailable() {
            eprintln!("kernel oracle skipped: {why}");
            continue;
        }
        let kernel = oracle::load(&path, "xdp");
        assert_eq!(
            kernel.is_ok(),
            accepted,
            "the kernel on core_unreachable_{n}.o: {:?}",
            kernel.err()
        );
    }
}
