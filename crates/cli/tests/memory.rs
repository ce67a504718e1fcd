//! The memory limit and per-program outcomes through the `bpfx` binary: `info` on hostile
//! objects stays small (it creates no map), `--mem-limit` refuses what does not fit before it
//! is allocated, and an object with a map bpfx lacks loads, runs its other programs on both
//! engines, and lists every program and map with its status. The objects come from
//! `crates/runtime/tests/objects` (C sources and `build.sh` there).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ENGINES: [&str; 2] = ["interp", "jit"];

/// The dumped map called `name` (`maps` is a list, as in `info --json`).
fn map<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["maps"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no map {name} in {v}"))
}

fn object(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/objects");
    p.join(name).to_str().unwrap().to_string()
}

fn bpfx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfx"))
        .args(args)
        .output()
        .expect("the bpfx binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// The peak resident memory of `bpfx args` in KiB, as GNU time measures it (the child's
/// `ru_maxrss`), with its output; `None` when /usr/bin/time is missing.
fn peak_kib(args: &[&str]) -> Option<(u64, Output)> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let o = Command::new(time)
        .args(["-f", "peak-kib %M"])
        .arg(env!("CARGO_BIN_EXE_bpfx"))
        .args(args)
        .output()
        .expect("/usr/bin/time runs");
    let err = stderr(&o);
    let line = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("peak-kib "))
        .unwrap_or_else(|| panic!("no peak in {err}"));
    Some((line.trim().parse().unwrap(), o))
}

#[test]
fn info_on_hostile_objects_allocates_no_map() {
    // A 16M-entry LRU map (gigabytes of bookkeeping if full; charged by use, so it verifies
    // within the limit) and 16 arrays of 128 MiB (2 GiB together, past the limit).
    for (file, needle, select, verified) in [
        (
            "lru_huge.o",
            "seen (lru_hash, key 4 B, value 4 B, max 16777216, 7382019456 B of memory)",
            ["--section", "socket"],
            0,
        ),
        (
            "arrays16.o",
            "map `a7`: needs 134217984 bytes",
            ["--program", "touch_all"],
            1,
        ),
    ] {
        let path = object(file);
        let Some((kib, o)) = peak_kib(&["info", &path]) else {
            eprintln!(
                "SKIPPED: /usr/bin/time is missing, the peak memory of `bpfx info` is not \
                 measured (apt-get install time)"
            );
            return;
        };
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains(needle), "{}", stdout(&o));
        assert!(kib < 10 * 1024, "{file}: bpfx info peaked at {kib} KiB");
        // Verification creates no map either.
        let (kib, o) = peak_kib(&["verify", &path, select[0], select[1]]).unwrap();
        assert_eq!(o.status.code(), Some(verified), "{}", stderr(&o));
        assert!(kib < 10 * 1024, "{file}: bpfx verify peaked at {kib} KiB");
    }
}

#[test]
fn mem_limit_refuses_maps_before_allocating_them() {
    let path = object("arrays16.o");
    for cmd in ["run", "verify"] {
        // One 128 MiB map under a 64 MiB limit.
        let o = bpfx(&[cmd, &path, "--section", "touch_first", "--mem-limit", "64M"]);
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        let err = stderr(&o);
        assert!(
            err.contains(
                "map `a0`: needs 134217984 bytes, but only 67108864 of the 67108864-byte \
                 memory limit are left (raise the limit with --mem-limit SIZE, or size maps \
                 down with --max-entries NAME=N)"
            ),
            "{cmd}: {err}"
        );
        // All 16 under the default 1 GiB: refused at the eighth, none allocated.
        let o = bpfx(&[cmd, &path, "--section", "touch_all"]);
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        assert!(
            stderr(&o).contains("map `a7`: needs"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    // Verification of one map under the default limit: accepted, nothing created.
    let o = bpfx(&["verify", &path, "--section", "touch_first"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bpfx(&["info", &path, "--mem-limit", "1G", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["memory"]["limit_bytes"], 1u64 << 30);
    assert_eq!(v["memory"]["maps_bytes"], 16 * 134217984u64);
    assert_eq!(v["programs"][0]["status"], "unsupported");
    assert_eq!(v["programs"][1]["status"], "supported");
    let o = bpfx(&["run", &path, "--mem-limit", "lots"]);
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(stderr(&o).contains("not a size in bytes"), "{}", stderr(&o));
}

#[test]
fn an_unsupported_map_fails_only_the_programs_that_name_it() {
    let path = object("mixed.o");
    for engine in ENGINES {
        let o = bpfx(&["run", &path, "--section", "good", "--engine", engine]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        // A socket filter (section `socket`) on an empty packet: nothing to keep.
        assert_eq!(stdout(&o), "DROP (41)\n", "{engine}");
        let o = bpfx(&[
            "run",
            &path,
            "--section",
            "good",
            "--engine",
            engine,
            "--dump-maps",
            "--json",
        ]);
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["result"], 41, "{engine}");
        assert_eq!(map(&v, "runs")["entries"][0]["value"], 1, "{engine}");
        assert_eq!(
            map(&v, "socks")["unavailable"],
            "map type 20 (reuseport_sockarray) is not supported by bpfx"
        );
        let o = bpfx(&["run", &path, "--section", "bad", "--engine", engine]);
        assert_eq!(o.status.code(), Some(1), "{engine}");
        assert!(
            stderr(&o).contains(
                "program `bad`: map `socks`: map type 20 (reuseport_sockarray) is not supported by bpfx"
            ),
            "{engine}: {}",
            stderr(&o)
        );
    }
    let o = bpfx(&["verify", &path, "--section", "good"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bpfx(&["verify", &path, "--section", "bad"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("map `socks`"), "{}", stderr(&o));
}

#[test]
fn info_lists_every_program_and_map_with_its_status() {
    let path = object("mixed.o");
    let o = bpfx(&["info", &path]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for line in [
        "  good (section socket, socket context): 15 instructions\n",
        "  bad (section socket, socket context): 11 instructions; unsupported: map `socks`: \
         map type 20 (reuseport_sockarray) is not supported by bpfx\n",
        "  runs (array, key 4 B, value 8 B, max 1, 264 B of memory)\n",
        "  socks (reuseport_sockarray, key 4 B, value 4 B, max 4): unsupported: map type 20 (reuseport_sockarray) is \
         not supported by bpfx\n",
        "memory: 264 B for all maps, limit 1073741824 B\n",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    let o = bpfx(&["info", &path, "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let programs: Vec<_> = v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].clone(), p["status"].clone(), p["reason"].clone()))
        .collect();
    assert_eq!(
        programs,
        [
            ("good".into(), "supported".into(), Value::Null),
            (
                "bad".into(),
                "unsupported".into(),
                "map `socks`: map type 20 (reuseport_sockarray) is not supported by bpfx".into()
            ),
        ]
    );
    let maps: Vec<_> = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].clone(),
                m["kind"].clone(),
                m["type"].clone(),
                m["status"].clone(),
                m["memory_bytes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        maps,
        [
            (
                "runs".into(),
                "array".into(),
                2.into(),
                "supported".into(),
                264.into()
            ),
            (
                "socks".into(),
                "reuseport_sockarray".into(),
                20.into(),
                "unsupported".into(),
                Value::Null
            ),
        ]
    );
}
