//! `bpfx run` and `verify --ctx sk_msg` of sk_msg programs (the runtime's `objects/skmsg.c`)
//! through the built binary on every engine and in both modes.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{bpfx, stderr, stdout};

const ENGINES: [&str; 2] = ["interp", "jit"];
const MODES: [&[&str]; 2] = [&[], &["--strict"]];

fn tmp(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bpfx-cli-sk-msg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

#[test]
fn sk_msg_programs_run_on_a_message_and_resize_it() {
    let obj = "crates/runtime/tests/objects/skmsg.o";
    let data = tmp("msg.bin", b"hello");
    let out = tmp("out.bin", b"");
    for engine in ENGINES {
        for mode in MODES {
            let run = |program: &str, json: bool| {
                let mut args = vec![
                    "run",
                    obj,
                    "--section",
                    "sk_msg",
                    "--program",
                    program,
                    "--packet",
                    data.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                    "--engine",
                    engine,
                ];
                if json {
                    args.push("--json");
                }
                args.extend_from_slice(mode);
                bpfx(&args)
            };
            // The framer pushes a 4-byte length in front of the message.
            let o = run("frame", false);
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(
                stdout(&o),
                "SK_PASS (1)\nmessage: 9 bytes (was 5)\napply_bytes: 9\n",
                "{engine} {mode:?}"
            );
            assert_eq!(std::fs::read(&out).unwrap(), b"\0\0\0\x05hello");
            let o = run("frame", true);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(
                (
                    &v["action"],
                    &v["packet_len"],
                    &v["apply_bytes"],
                    &v["cork_bytes"]
                ),
                (&"SK_PASS".into(), &9.into(), &9.into(), &0.into()),
                "{v}"
            );
            // No socket: the pair map holds none, the message passes unredirected.
            let o = run("redir", false);
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(stdout(&o), "SK_PASS (1)\n", "{engine} {mode:?}");
            assert_eq!(std::fs::read(&out).unwrap(), b"hello");
        }
    }
}

#[test]
fn maps_fill_a_socket_map_that_the_redirect_finds() {
    // `by_slot` redirects to the slot the first byte names: slot 1 holds the socket of cookie 9.
    let maps = tmp("maps.json", br#"{"slots": [{"key": 1, "value": 9}]}"#);
    let data = tmp("m2.bin", b"1GET");
    for engine in ENGINES {
        let o = bpfx(&[
            "run",
            "crates/runtime/tests/objects/skmsg.o",
            "--section",
            "sk_msg",
            "--program",
            "by_slot",
            "--packet",
            data.to_str().unwrap(),
            "--maps",
            maps.to_str().unwrap(),
            "--engine",
            engine,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        assert!(text.starts_with("SK_PASS (redirect) (1)\n"), "{text}");
        assert!(text.contains("`slots`"), "{text}");
    }
}

#[test]
fn verify_ctx_sk_msg_applies_the_sk_msg_rules() {
    // `size` reads whole; a narrow load of it is refused, as the kernel refuses it.
    let good = tmp("good.asm", b"ldxw r0, [r1+68]\nexit\n");
    let bad = tmp("bad.asm", b"ldxh r0, [r1+68]\nexit\n");
    let o = bpfx(&["verify", good.to_str().unwrap(), "--ctx", "sk_msg"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bpfx(&["verify", bad.to_str().unwrap(), "--ctx", "sk_msg"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    let o = bpfx(&[
        "run",
        good.to_str().unwrap(),
        "--ctx",
        "sk_msg",
        "--packet",
        tmp("m.bin", b"abc").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("SK_DROP (3)"), "{}", stdout(&o));
}
