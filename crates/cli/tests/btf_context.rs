//! `bpfx run` and `bpfx info` of programs in sections that name no type (iproute2's `sec
//! ingress`, `sec egress`, `sec mapper`), whose context only their BTF declares
//! (`crates/runtime/tests/objects/btf_sections.c`): without `--ctx` they must run exactly as
//! with the right `--ctx`, on every engine and in both modes; `--ctx` still wins; the same
//! object built without BTF keeps running as plain memory.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{bpfx, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};

const ENGINES: [&str; 2] = ["interp", "jit"];
const MODES: [&[&str]; 2] = [&[], &["--strict"]];
const BTF: &str = "crates/runtime/tests/objects/btf_sections.o";
const NO_BTF: &str = "crates/runtime/tests/objects/btf_sections-nobtf.o";

fn tmp(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfx-cli-btfctx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// An Ethernet frame to `dst[0]`-first destination with EtherType `proto` and `n` bytes of
/// payload.
fn frame(dst0: u8, proto: u16, n: usize) -> Vec<u8> {
    let mut p = vec![dst0, 2, 3, 4, 5, 6, 0x02, 0xbb, 0, 0, 0, 2];
    p.extend_from_slice(&proto.to_be_bytes());
    p.extend((0..n).map(|i| i as u8));
    p
}

/// The packets every section is run on: IPv4 unicast, IPv6, multicast, a runt.
fn packets() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("v4", tmp("v4.bin", &frame(0x02, 0x0800, 40))),
        ("v6", tmp("v6.bin", &frame(0x02, 0x86dd, 40))),
        ("mcast", tmp("mcast.bin", &frame(0x01, 0x0800, 7))),
        ("runt", tmp("runt.bin", &[0x02; 10])),
    ]
}

/// `bpfx run OBJ --section SECTION --packet P` with `extra`, text and `--json`.
fn run(obj: &str, section: &str, packet: &Path, extra: &[&str]) -> (String, Value) {
    let mut args = vec![
        "run",
        obj,
        "--section",
        section,
        "--packet",
        packet.to_str().unwrap(),
        "--ifindex",
        "3",
        "--mark",
        "0x42",
    ];
    args.extend_from_slice(extra);
    let o = bpfx(&args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    args.push("--json");
    let j = bpfx(&args);
    assert!(j.status.success(), "{args:?}: {}", stderr(&j));
    (stdout(&o), serde_json::from_str(&stdout(&j)).unwrap())
}

#[test]
fn free_sections_run_in_the_context_their_btf_names_as_with_ctx() {
    let packets = packets();
    for (section, ctx, verdicts) in [
        (
            "ingress",
            "tc",
            ["TC_ACT_OK", "TC_ACT_SHOT", "TC_ACT_OK", "TC_ACT_SHOT"],
        ),
        (
            "egress",
            "tc",
            ["TC_ACT_SHOT", "TC_ACT_SHOT", "TC_ACT_SHOT", "TC_ACT_SHOT"],
        ),
        (
            "mapper",
            "xdp",
            ["XDP_PASS", "XDP_PASS", "XDP_DROP", "XDP_DROP"],
        ),
    ] {
        for engine in ENGINES {
            for mode in MODES {
                for ((name, packet), want) in packets.iter().zip(verdicts) {
                    let mut extra = vec!["--engine", engine];
                    extra.extend_from_slice(mode);
                    let implied = run(BTF, section, packet, &extra);
                    extra.extend_from_slice(&["--ctx", ctx]);
                    let given = run(BTF, section, packet, &extra);
                    let what = format!("{section} {engine} {mode:?} {name}");
                    assert_eq!(implied, given, "{what}");
                    assert_eq!(implied.1["action"], want, "{what}");
                    // The object without BTF, told the context, computes the same.
                    assert_eq!(run(NO_BTF, section, packet, &extra), given, "{what}");
                }
            }
        }
    }
    // What the TC programs wrote: ingress records the length in mark, egress the priority.
    let v4 = &packets[0].1;
    let (text, v) = run(BTF, "ingress", v4, &[]);
    assert_eq!(text, "TC_ACT_OK (0)\nmark 0x42 -> 0x36\n");
    assert_eq!(v["skb"]["mark"], 54);
    let (text, _) = run(BTF, "egress", v4, &[]);
    assert_eq!(text, "TC_ACT_SHOT (2)\npriority 0x0 -> 0x36\n");
}

#[test]
fn ctx_overrides_what_btf_implies() {
    // The TC egress program told it is XDP: verified against xdp_md's fields, where its read
    // of __sk_buff's ifindex (offset 40) matches none.
    let v4 = tmp("override.bin", &frame(0x02, 0x0800, 40));
    let o = bpfx(&[
        "run",
        BTF,
        "--section",
        "egress",
        "--packet",
        v4.to_str().unwrap(),
        "--ctx",
        "xdp",
    ]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("invalid access to context at offset 40"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn without_btf_free_sections_stay_plain_memory() {
    let v4 = tmp("nobtf.bin", &frame(0x02, 0x0800, 40));
    let o = bpfx(&[
        "run",
        NO_BTF,
        "--section",
        "ingress",
        "--packet",
        v4.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("--packet is for XDP, TC"),
        "{}",
        stderr(&o)
    );
    let o = bpfx(&["info", NO_BTF]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("  tc_ingress (section ingress, memory context): "),
        "{}",
        stdout(&o)
    );
}

#[test]
fn info_says_which_context_and_why() {
    let o = bpfx(&["info", BTF]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for line in [
        "  tc_ingress (section ingress, tc context from BTF struct __sk_buff): ",
        "  tc_egress (section egress, tc context from BTF struct __sk_buff): ",
        "  xdp_mapper (section mapper, xdp context from BTF struct xdp_md): ",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    for (obj, source, ctx, ty) in [
        (BTF, "btf", "tc", Value::from("__sk_buff")),
        (NO_BTF, "default", "memory", Value::Null),
    ] {
        let o = bpfx(&["info", obj, "--json"]);
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        let p = &v["programs"][0];
        assert_eq!(p["name"], "tc_ingress");
        assert_eq!(p["context"], ctx, "{obj}");
        assert_eq!(p["context_source"], source, "{obj}");
        assert_eq!(p["ctx_type"], ty, "{obj}");
    }
    // A section that names a type keeps saying so.
    let o = bpfx(&[
        "info",
        "crates/runtime/tests/objects/tc_classify.o",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["programs"][0]["context_source"], "section");
    assert_eq!(v["programs"][0]["ctx_type"], "__sk_buff");
}
