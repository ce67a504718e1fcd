//! `--maps FILE`, `--seed N` and `--hist MAP` of `bpfx run` and `bpfx replay`, on both
//! engines: the fixture `objects/maps_init.o` copies what it reads from arrays, hashes,
//! per-CPU arrays and a map of maps into `seen` (and holds a queue only the host fills), tail-calls through a program array and
//! counts frame lengths in a log2 histogram; `examples/lpm_block.o` drops the sources an LPM
//! trie lists. Bad init files are refused naming the map, the entry and the reason.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use common::{bpfx, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const ENGINES: [&str; 2] = ["interp", "jit"];
const FIXTURE: &str = "crates/cli/tests/objects/maps_init.o";
const PACKET: &str = "examples/tcp-syn.bin";
const MIXED: &str = "examples/mixed.pcap";

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// Writes `text` to a file of this test process and returns its path.
fn file(name: &str, text: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bpfx-cli-maps-init-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `bpfx run` of the fixture's `entry` on the SYN packet, with `extra` options.
fn run_fixture(engine: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        FIXTURE,
        "--program",
        "entry",
        "--ctx",
        "xdp",
        "--packet",
        PACKET,
        "--engine",
        engine,
    ];
    args.extend_from_slice(extra);
    bpfx(&args)
}

/// `bpfx replay --json` of the fixture's `entry` over examples/mixed.pcap on `engine` with
/// `threads` workers, its maps filled from `init`.
fn replay_fixture(engine: &str, threads: &str, init: &Path) -> Output {
    bpfx(&[
        "replay",
        FIXTURE,
        "--program",
        "entry",
        "--pcap",
        MIXED,
        "--threads",
        threads,
        "--engine",
        engine,
        "--json",
        "--maps",
        init.to_str().unwrap(),
    ])
}

/// The entries of map `name` in a `--json --dump-maps` output, as (key, value).
fn entries(out: &Value, name: &str) -> Vec<(Value, Value)> {
    let map = out["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no map {name} in {out}"));
    map["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["key"].clone(), e["value"].clone()))
        .collect()
}

/// Entry `k` of array map `name`.
fn at(out: &Value, name: &str, k: u64) -> Value {
    entries(out, name)
        .into_iter()
        .find(|(key, _)| *key == k)
        .map(|(_, v)| v)
        .unwrap_or(Value::Null)
}

const INIT: &str = r#"{
  "thresholds": [{"key": 1, "value": 1500}],
  "ports": [{"key": "07000000", "value": [42, 0, 0, 0, 0, 0, 0, 0]}],
  "pcpu": [{"key": 0, "value": 5}],
  "inner_b": [{"key": 0, "value": 99}],
  "outer": [{"key": 0, "value": "inner_b"}],
  "jmp": [{"key": 0, "value": "tail"}],
  "pending": [{"value": 7}, {"value": "08000000"}]
}"#;

#[test]
fn an_init_file_fills_arrays_hashes_per_cpu_maps_maps_of_maps_and_program_arrays() {
    let init = file("init.json", INIT);
    for engine in ENGINES {
        // Without the file: every lookup misses or reads zero, and the empty slot falls
        // through to XDP_PASS.
        let o = run_fixture(engine, &["--json", "--dump-maps"]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let before = json(&o);
        assert_eq!(before["action"], "XDP_PASS", "{engine}");
        assert_eq!(at(&before, "seen", 0), 0, "{engine}");
        assert_eq!(at(&before, "seen", 1), u64::MAX, "{engine}");
        assert_eq!(at(&before, "seen", 3), u64::MAX, "{engine}");

        let o = run_fixture(
            engine,
            &["--json", "--dump-maps", "--maps", init.to_str().unwrap()],
        );
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let out = json(&o);
        // Slot 0 of `jmp` holds `tail`: the tail call returns XDP_TX.
        assert_eq!(out["action"], "XDP_TX", "{engine}");
        assert_eq!(at(&out, "seen", 0), 1500, "{engine}: thresholds[1]");
        assert_eq!(at(&out, "seen", 1), 42, "{engine}: ports[7]");
        assert_eq!(at(&out, "seen", 2), 5, "{engine}: pcpu[0]");
        assert_eq!(at(&out, "seen", 3), 99, "{engine}: outer[0][0]");
        assert_eq!(entries(&out, "ports"), vec![(7.into(), 42.into())]);
        // A queue takes keyless entries, pushed in order.
        assert_eq!(
            entries(&out, "pending"),
            vec![("".into(), 7.into()), ("".into(), 8.into())]
        );
        let jmp = out["maps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "jmp")
            .unwrap();
        assert_eq!(
            jmp["programs"],
            serde_json::json!([{"index": 0, "program": "tail"}])
        );
    }
}

#[test]
fn an_init_file_fills_the_maps_of_a_replay() {
    // The same file before a replay of the 19 frames of examples/mixed.pcap: every frame
    // tail-calls `tail` through the program array filled by name (XDP_TX), after copying
    // what it read of the array, the hash, the per-CPU array and the map of maps.
    let init = file("init-replay.json", INIT);
    for engine in ENGINES {
        for threads in ["1", "2"] {
            let o = replay_fixture(engine, threads, &init);
            assert!(o.status.success(), "{engine}: {}", stderr(&o));
            let out = json(&o);
            let what = format!("{engine}, {threads} thread(s)");
            assert_eq!(
                out["verdicts"],
                serde_json::json!([{"action": "XDP_TX", "code": 3, "count": 19}]),
                "{what}"
            );
            assert_eq!(at(&out, "seen", 0), 1500, "{what}: thresholds[1]");
            assert_eq!(at(&out, "seen", 1), 42, "{what}: ports[7]");
            assert_eq!(at(&out, "seen", 3), 99, "{what}: outer[0][0]");
            // Per-CPU: the slots the file gave (CPU 0 only; other slots zero).
            let pcpu = at(&out, "seen", 2);
            assert!(pcpu == 5 || (threads == "2" && pcpu == 0), "{what}: {pcpu}");
            let lens: u64 = entries(&out, "lens")
                .iter()
                .map(|(_, v)| v.as_u64().unwrap())
                .sum();
            assert_eq!(lens, 19, "{what}");
        }
    }
}

#[test]
fn a_dump_reads_back_as_an_init_file() {
    // `--dump-maps --json` entries of a run are an init file's entries.
    let init = file("dumped-from.json", INIT);
    let o = run_fixture(
        "interp",
        &["--json", "--dump-maps", "--maps", init.to_str().unwrap()],
    );
    let out = json(&o);
    let seen = out["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "seen")
        .unwrap()["entries"]
        .clone();
    // Refill `thresholds` with what `seen` held: seen[0] = 1500 lands in thresholds[0].
    let refill = serde_json::json!({ "thresholds": seen.as_array().unwrap()[..4] });
    let refill = file("refill.json", &refill.to_string());
    let o = run_fixture(
        "jit",
        &["--json", "--dump-maps", "--maps", refill.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out2 = json(&o);
    assert_eq!(at(&out2, "thresholds", 0), 1500);
    // seen[1] of the first run (42) is thresholds[1] now, read into seen[0].
    assert_eq!(at(&out2, "seen", 0), 42);
}

#[test]
fn an_lpm_blocklist_from_an_init_file_drops_the_listed_prefix() {
    // The SYN packet's source is 192.168.1.10.
    let listed = file(
        "lpm.json",
        r#"{"blocklist": [
            {"key": {"prefixlen": 24, "data": "192.168.1.0"}, "value": 0},
            {"key": {"prefixlen": 8, "data": [10, 0, 0, 0]}, "value": 0}
        ]}"#,
    );
    let other = file(
        "lpm-other.json",
        r#"{"blocklist": [{"key": {"prefixlen": 24, "data": "192.168.2.0"}, "value": 0}]}"#,
    );
    for engine in ENGINES {
        let run = |init: &Path| {
            let o = bpfx(&[
                "run",
                "examples/lpm_block.o",
                "--ctx",
                "xdp",
                "--packet",
                PACKET,
                "--engine",
                engine,
                "--json",
                "--dump-maps",
                "--maps",
                init.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{engine}: {}", stderr(&o));
            json(&o)
        };
        let out = run(&listed);
        assert_eq!(out["action"], "XDP_DROP", "{engine}");
        // The /24's hit counter (key: prefixlen 24 little-endian, then the address).
        let hits: Vec<_> = entries(&out, "blocklist")
            .into_iter()
            .filter(|(_, v)| *v == 1)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            hits,
            vec![Value::from(0x0001_a8c0_0000_0018u64)],
            "{engine}"
        );
        let out = run(&other);
        assert_eq!(out["action"], "XDP_PASS", "{engine}");
    }
}

#[test]
fn a_per_cpu_value_takes_one_value_per_cpu_in_a_replay() {
    // Two replay threads: two CPU slots, each given its own value.
    let init = file("pcpu.json", r#"{"pcpu": [{"key": 0, "value": [5, 6]}]}"#);
    for engine in ENGINES {
        let o = replay_fixture(engine, "2", &init);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let out = json(&o);
        assert_eq!(
            entries(&out, "pcpu"),
            vec![(0.into(), serde_json::json!([5, 6]))]
        );
        // One thread: one CPU, and a list of two is refused.
        let o = bpfx(&[
            "replay",
            FIXTURE,
            "--program",
            "entry",
            "--pcap",
            MIXED,
            "--engine",
            engine,
            "--maps",
            init.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{engine}");
        assert!(
            stderr(&o).contains(
                "map `pcpu`: entry 0: value: a list of 2 per-CPU values, the map has 1 CPUs"
            ),
            "{engine}: {}",
            stderr(&o)
        );
    }
}

/// A bad init file: its name, its text, the map and entry the error names, and a part of the
/// message.
type BadCase = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<u64>,
    &'static str,
);

#[test]
fn bad_init_files_name_the_map_the_entry_and_the_reason() {
    let cases: [BadCase; 8] = [
        (
            "unknown.json",
            r#"{"nope": []}"#,
            Some("nope"),
            None,
            "map `nope`: the object has no such map (its maps: ",
        ),
        (
            "size.json",
            r#"{"ports": [{"key": 7, "value": 1}, {"key": 8, "value": "0102"}]}"#,
            Some("ports"),
            Some(1),
            "map `ports`: entry 1: value: 2 bytes, expected 8",
        ),
        (
            "keysize.json",
            r#"{"ports": [{"key": 4294967296, "value": 1}]}"#,
            Some("ports"),
            Some(0),
            "map `ports`: entry 0: key: 4294967296 does not fit in 4 bytes",
        ),
        (
            "syntax.json",
            "{\"ports\": [{\"key\": 7,\n \"value\": }]}",
            None,
            None,
            "not JSON: expected value at line 2 column 11",
        ),
        (
            "shape.json",
            r#"[1, 2]"#,
            None,
            None,
            "expected an object mapping map names to lists",
        ),
        (
            "program.json",
            r#"{"jmp": [{"key": 0, "value": "missing"}]}"#,
            Some("jmp"),
            Some(0),
            "map `jmp`: entry 0: value: program `missing`: ",
        ),
        (
            "range.json",
            r#"{"thresholds": [{"key": 4, "value": 1}]}"#,
            Some("thresholds"),
            Some(0),
            "map `thresholds`: entry 0: cannot store it: ",
        ),
        (
            "inner.json",
            r#"{"outer": [{"key": 0, "value": "ports"}]}"#,
            Some("outer"),
            Some(0),
            "map `outer`: entry 0: cannot store it: inner map `ports`: ",
        ),
    ];
    for engine in ENGINES {
        for (name, text, map, entry, message) in cases {
            let path = file(name, text);
            let o = run_fixture(engine, &["--maps", path.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(1), "{engine} {name}");
            assert!(o.stdout.is_empty(), "{engine} {name}: no run output");
            let err = stderr(&o);
            assert!(
                err.starts_with(&format!("error: {}: ", path.display())) && err.contains(message),
                "{engine} {name}: {err}"
            );
            let o = run_fixture(engine, &["--json", "--maps", path.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(1), "{engine} {name}");
            let out = json(&o);
            assert_eq!(out["ok"], false);
            assert_eq!(out["error"]["kind"], "maps_init", "{engine} {name}");
            assert_eq!(out["error"]["map"].as_str(), map, "{engine} {name}");
            assert_eq!(out["error"]["entry"].as_u64(), entry, "{engine} {name}");
            assert!(
                out["error"]["message"].as_str().unwrap().contains(message),
                "{engine} {name}: {out}"
            );
        }
    }
    // A missing file is an I/O error.
    let o = run_fixture("jit", &["--maps", "/nonexistent/init.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/init.json"));
}

/// seen[4] and seen[5], the two random numbers of a run with `--seed seed`.
fn draws(engine: &str, seed: &str) -> (Value, Value) {
    let o = run_fixture(engine, &["--json", "--dump-maps", "--seed", seed]);
    assert!(o.status.success(), "{engine}: {}", stderr(&o));
    let out = json(&o);
    (at(&out, "seen", 4), at(&out, "seen", 5))
}

#[test]
fn a_seed_makes_prandom_repeat_on_both_engines() {
    let first = draws("interp", "1234");
    assert_ne!(first.0, first.1, "two draws of one run differ");
    for engine in ENGINES {
        assert_eq!(
            draws(engine, "1234"),
            first,
            "{engine}: same seed, same numbers"
        );
        assert_eq!(draws(engine, "0x4d2"), first, "{engine}: the seed in hex");
        assert_ne!(draws(engine, "1235"), first, "{engine}: another seed");
    }
    // A replay on one thread draws the same sequence every time.
    let replay = |engine: &str| {
        let o = bpfx(&[
            "replay",
            FIXTURE,
            "--program",
            "entry",
            "--pcap",
            MIXED,
            "--engine",
            engine,
            "--seed",
            "99",
            "--json",
        ]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let out = json(&o);
        (at(&out, "seen", 4), at(&out, "seen", 5))
    };
    let a = replay("interp");
    assert_eq!(replay("interp"), a);
    assert_eq!(replay("jit"), a);
    let o = run_fixture("jit", &["--seed", "x"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a seed that is not a number is a usage error"
    );
}

/// The histogram as bpftrace's `hist()` prints it, built from the counts independently of
/// the CLI: entry 0 is [0, 2), entry k [2^k, 2^(k+1)).
fn expected_hist(name: &str, counts: &[u64]) -> String {
    let label = |p: u32| -> String {
        let units = ["", "K", "M", "G", "T", "P", "E"];
        let u = (p / 10).min(6);
        format!("{}{}", 1u128 << (p - 10 * u), units[u as usize])
    };
    let mut s = format!("@{name}:\n");
    let first = counts.iter().position(|&c| c > 0).unwrap();
    let last = counts.iter().rposition(|&c| c > 0).unwrap();
    let max = *counts.iter().max().unwrap();
    for (k, &c) in counts.iter().enumerate().take(last + 1).skip(first) {
        let head = if k == 0 {
            "[0, 2)".to_string()
        } else {
            format!("[{}, {})", label(k as u32), label(k as u32 + 1))
        };
        let bar = "@".repeat((c as f64 / max as f64 * 52.0) as usize);
        s.push_str(&format!("{head:<16}{c:>8} |{bar:<52}|\n"));
    }
    s.push('\n');
    s
}

#[test]
fn hist_renders_a_log2_array_as_bpftrace_does() {
    // Counts put in by the init file, plus the run's own: the 54-byte frame is in [32, 64).
    let init = file(
        "hist.json",
        r#"{"lens": [{"key": 0, "value": 3}, {"key": 3, "value": 7}, {"key": 11, "value": 20}]}"#,
    );
    let mut counts = vec![0u64; 16];
    counts[0] = 3;
    counts[3] = 7;
    counts[5] = 1;
    counts[11] = 20;
    let want = expected_hist("lens", &counts);
    assert!(want.contains("[1K, 2K)") && want.contains("[8, 16)"));
    for engine in ENGINES {
        let o = run_fixture(
            engine,
            &["--maps", init.to_str().unwrap(), "--hist", "lens"],
        );
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        assert_eq!(stdout(&o), format!("XDP_PASS (2)\n{want}"), "{engine}");
        let o = run_fixture(
            engine,
            &["--json", "--maps", init.to_str().unwrap(), "--hist", "lens"],
        );
        let out = json(&o);
        let buckets = out["hist"]["lens"].as_array().unwrap();
        assert_eq!(buckets.len(), 12, "{engine}: buckets 0 to 11");
        assert_eq!(
            buckets[0],
            serde_json::json!({"low": 0, "high": 2, "count": 3})
        );
        assert_eq!(
            buckets[11],
            serde_json::json!({"low": 2048, "high": 4096, "count": 20})
        );
    }
}

#[test]
fn hist_after_a_replay_counts_every_frame_length() {
    // The lengths of the capture's frames, read here with pcap-file.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bytes = std::fs::read(repo.join(MIXED)).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    let mut counts = vec![0u64; 16];
    while let Some(p) = reader.next_raw_packet() {
        let len = p.unwrap().data.len() as u64;
        let slot = if len < 2 {
            0
        } else {
            63 - len.leading_zeros() as usize
        };
        counts[slot] += 1;
    }
    let want = expected_hist("lens", &counts);
    for engine in ENGINES {
        let o = bpfx(&[
            "replay",
            FIXTURE,
            "--program",
            "entry",
            "--pcap",
            MIXED,
            "--engine",
            engine,
            "--hist",
            "lens",
        ]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let text = stdout(&o);
        assert!(text.ends_with(&want), "{engine}: {text}\nwant:\n{want}");
        // --dump-maps is unchanged by --hist: the map's entries are printed as before.
        assert!(text.contains("map lens (array, key 4 B, value 8 B, max 16):"));
    }
}

#[test]
fn hist_refuses_what_is_not_a_log2_array() {
    for engine in ENGINES {
        let o = run_fixture(engine, &["--hist", "ports"]);
        assert_eq!(o.status.code(), Some(2), "{engine}");
        assert!(stderr(&o).contains("--hist ports: a histogram is an array or per-CPU array"));
        let o = run_fixture(engine, &["--hist", "nothere", "--json"]);
        assert_eq!(o.status.code(), Some(2), "{engine}");
        assert_eq!(json(&o)["error"]["kind"], "usage");
    }
}

#[test]
fn a_seed_applies_to_a_bare_program_too() {
    let asm = file("prandom.asm", "call 7\nexit\n");
    let r0 = |engine: &str, seed: &str| {
        let o = bpfx(&[
            "run",
            asm.to_str().unwrap(),
            "--engine",
            engine,
            "--seed",
            seed,
            "--json",
        ]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        json(&o)["result"].clone()
    };
    let a = r0("interp", "5");
    assert_eq!(r0("jit", "5"), a);
    assert_eq!(r0("interp", "5"), a);
    assert_ne!(r0("jit", "6"), a);
}

#[test]
fn bench_fills_the_maps_before_its_runs() {
    let init = file("bench.json", INIT);
    for engine in ENGINES {
        let o = bpfx(&[
            "bench",
            FIXTURE,
            "--program",
            "entry",
            "--ctx",
            "xdp",
            "--packet",
            PACKET,
            "--engine",
            engine,
            "--min-time",
            "1",
            "--json",
            "--dump-maps",
            "--maps",
            init.to_str().unwrap(),
            "--hist",
            "lens",
        ]);
        assert!(o.status.success(), "{engine}: {}", stderr(&o));
        let out = json(&o);
        assert_eq!(out["action"], "XDP_TX", "{engine}");
        assert_eq!(at(&out, "seen", 0), 1500, "{engine}");
        // Every run counted the 54-byte frame in [32, 64).
        let buckets = out["hist"]["lens"].as_array().unwrap();
        assert_eq!(buckets.len(), 1, "{engine}");
        assert_eq!(buckets[0]["low"], 32);
        assert_eq!(buckets[0]["count"], at(&out, "lens", 5));
        assert!(buckets[0]["count"].as_u64().unwrap() >= 1);
    }
}
