//! `bpfx run` and `bpfx info` on cgroup socket, sock_ops and perf event programs
//! (`crates/runtime/tests/objects/sock_cgroup.c`): the context struct in `--mem`, the fields
//! the program wrote printed after r0, the socket cookies from the flags, on both engines in
//! both modes; a struct of the wrong size is a usage error.

#[allow(dead_code)]
mod common;

use common::{bpfx, run_json_everywhere, stderr, stdout};
use serde_json::Value;
use std::path::PathBuf;

fn object() -> String {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/objects/sock_cgroup.o");
    p.to_str().unwrap().to_string()
}

fn tmp(name: &str, contents: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("bpfx-cli-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p.to_str().unwrap().to_string()
}

/// Runs program `prog` of the fixture with `extra` on every engine and mode
/// ([`common::run_json_everywhere`]).
fn run(prog: &str, extra: &[&str]) -> Value {
    run_json_everywhere(&object(), prog, extra)
}

#[test]
fn connect4_rewrites_the_address_from_a_struct_file() {
    let mut ctx = [0u8; 72];
    ctx[0] = 2; // user_family
    ctx[4..8].copy_from_slice(&[10, 96, 0, 10]); // user_ip4
    ctx[24..26].copy_from_slice(&80u16.to_be_bytes()); // user_port
    ctx[28] = 2; // family
    ctx[32] = 1; // type
    ctx[36] = 6; // protocol
    let mem = tmp("connect4.bin", &ctx);
    let v = run("connect4", &["--mem", &mem, "--socket-cookie", "0x77"]);
    assert_eq!(v["result"], 1);
    assert_eq!(v["context"]["user_ip4"], "192.168.1.20");
    assert_eq!(v["context"]["user_port"], 8080);
    let redirected = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "redirected")
        .unwrap();
    assert_eq!(redirected["entries"][0]["key"], 0x77, "{redirected}");
    // The text form prints the fields after r0.
    let o = bpfx(&["run", &object(), "--program", "connect4", "--mem", &mem]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("1 (0x1)\n") && out.contains("user_ip4: 192.168.1.20\n"),
        "{out}"
    );
}

#[test]
fn sockops_and_perf_events_take_their_structs() {
    let mut ops = [0u8; 216];
    ops[0] = 4; // BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB
    ops[72] = 1; // is_fullsock
    let mem = tmp("ops.bin", &ops);
    let v = run("tcp_events", &["--mem", &mem]);
    assert_eq!(v["result"], 1);
    assert_eq!(v["context"]["bpf_sock_ops_cb_flags"], 12);
    assert_eq!(v["context"]["sk_txhash"], 12);
    assert_eq!(v["context"]["reply"], 0);
    let v = run(
        "tcp_events",
        &["--ctx", "sock_ops", "--mem", &mem, "--netns-cookie", "9"],
    );
    assert_eq!(v["result"], 1);
    let sample = tmp("sample.bin", &[0u8; 184]);
    let v = run("perf_sample", &["--mem", &sample]);
    assert_eq!(v["result"], 0);
    assert_eq!(v.get("context"), None);
}

#[test]
fn a_struct_of_the_wrong_size_is_a_usage_error() {
    for (prog, size, name) in [
        ("connect4", 64, "cgroup_sock_addr"),
        ("sock_create", 72, "cgroup_sock"),
        ("tcp_events", 100, "sock_ops"),
        ("perf_sample", 168, "perf_event"),
    ] {
        let mem = tmp(&format!("{prog}.short"), &vec![0u8; size]);
        let o = bpfx(&["run", &object(), "--program", prog, "--mem", &mem]);
        assert_eq!(o.status.code(), Some(2), "{prog}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(name) && err.contains(&format!("({size} given)")),
            "{prog}: {err}"
        );
    }
}

#[test]
fn info_names_the_types() {
    let o = bpfx(&["info", "--json", &object()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ctx_of = |name: &str| {
        v["programs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| (p["context"].clone(), p["status"].clone()))
            .unwrap()
    };
    for (prog, ctx) in [
        ("connect4", "cgroup_sock_addr"),
        ("post_bind4", "cgroup_sock"),
        ("tcp_events", "sock_ops"),
        ("perf_sample", "perf_event"),
    ] {
        assert_eq!(ctx_of(prog), (ctx.into(), "supported".into()), "{prog}");
    }
}

fn sockopt_object() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/objects/sockopt.o");
    p.to_str().unwrap().to_string()
}

#[test]
fn setsockopt_changes_are_printed_after_the_run() {
    // A sockops TCP_CONNECT_CB on a full IPv4 socket (`tests/objects/sockopt.c`, `tune`).
    let mut ctx = [0u8; 216];
    ctx[0] = 3; // op
    ctx[20] = 2; // family
    ctx[72] = 1; // is_fullsock
    let mem = tmp("tune.bin", &ctx);
    let v = run_json_everywhere(&sockopt_object(), "tune", &["--mem", &mem]);
    assert_eq!(v["result"], 1);
    let o = &v["socket_options"];
    assert_eq!(o["nodelay"], true, "{o}");
    assert_eq!(o["sndbuf"], 2 << 20);
    assert_eq!(o["snd_cwnd"], 40);
    assert_eq!(o["snd_cwnd_clamp"], 100);
    assert_eq!(o["congestion"], "cubic");
    // The text form lists what changed from a new socket's options.
    let o = bpfx(&["run", &sockopt_object(), "--program", "tune", "--mem", &mem]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("sockopt nodelay: true\n")
            && out.contains("sockopt snd_cwnd: 40\n")
            && !out.contains("sockopt congestion"),
        "{out}"
    );
    // A cgroup socket program cannot set options: no table printed.
    let v = run("sock_create", &["--mem", &tmp("sk.bin", &[0u8; 80])]);
    assert!(v.get("socket_options").is_none(), "{v}");
}
