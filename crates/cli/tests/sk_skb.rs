//! `bpfx run`, `info` and `verify --ctx sk_skb` of sk_skb programs (the runtime's
//! `objects/skskb.c`) through the built binary on every engine and in both modes.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{bpfx, stderr, stdout};
use serde_json::Value;

const ENGINES: [&str; 2] = ["interp", "jit"];
const MODES: [&[&str]; 2] = [&[], &["--strict"]];

fn object(name: &str) -> String {
    format!("crates/runtime/tests/objects/{name}")
}

fn tmp(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfx-cli-sk-skb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn sk_skb_programs_run_on_stream_data_and_rewrite_it() {
    let obj = object("skskb.o");
    let data = tmp("data.bin", b"xyz!");
    let out = tmp("out.bin", b"");
    for engine in ENGINES {
        for mode in MODES {
            let mut args = vec![
                "run",
                &obj,
                "--section",
                "sk_skb/stream_verdict",
                "--packet",
                data.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--engine",
                engine,
            ];
            args.extend_from_slice(mode);
            let o = bpfx(&args);
            assert!(o.status.success(), "{}", stderr(&o));
            // No socket: the flows hash holds none for its tuple, so the data passes.
            assert_eq!(stdout(&o), "SK_PASS (1)\n", "{engine} {mode:?}");
            assert_eq!(std::fs::read(&out).unwrap(), b"Xyz!");
            // The stream parser: the data's length.
            let o = bpfx(&[
                "run",
                &obj,
                "--section",
                "sk_skb/stream_parser",
                "--packet",
                data.to_str().unwrap(),
                "--engine",
                engine,
                "--json",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
            assert_eq!(v["result"], 4);
            assert_eq!(v["redirect"], Value::Null);
            assert_eq!(v["action"], Value::Null, "a length, not a verdict");
            let o = bpfx(&[
                "run",
                &obj,
                "--section",
                "sk_skb/stream_parser",
                "--packet",
                data.to_str().unwrap(),
                "--engine",
                engine,
            ]);
            assert_eq!(stdout(&o), "4 (0x4)\n");
            // The bare section: slot 0 of the socket map is empty, SK_DROP.
            let o = bpfx(&[
                "run",
                &obj,
                "--section",
                "sk_skb",
                "--packet",
                data.to_str().unwrap(),
                "--engine",
                engine,
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(stdout(&o), "SK_DROP (0)\n");
        }
    }
}

#[test]
fn info_names_the_context_and_the_socket_maps() {
    let o = bpfx(&["info", &object("skskb.o")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("sk_skb context"), "{text}");
    assert!(
        text.contains("flows (sockhash, key 16 B, value 8 B, max 64, "),
        "{text}"
    );
    assert!(
        text.contains("slots (sockmap, key 4 B, value 8 B, max 4, "),
        "{text}"
    );
}

#[test]
fn verify_ctx_sk_skb_applies_the_sk_skb_rules() {
    // Direct packet writes are allowed, a store to cb[0] is not.
    let write = tmp(
        "write.asm",
        b"ldxw r2, [r1+76]\nldxw r3, [r1+80]\nmov r4, r2\nadd r4, 1\njgt r4, r3, +1\n\
          stb [r2+0], 1\nmov r0, 1\nexit\n",
    );
    let o = bpfx(&[
        "verify",
        write.to_str().unwrap(),
        "--ctx",
        "sk_skb",
        "--strict",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cb = tmp("cb.asm", b"stw [r1+48], 1\nmov r0, 1\nexit\n");
    let o = bpfx(&["verify", cb.to_str().unwrap(), "--ctx", "sk_skb"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // The unsafe twin is refused by Strict mode.
    let o = bpfx(&["verify", &object("skskb_bad.o"), "--strict"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}
