//! What the CLI's test files share: the repository's root and the `bpfx` binary run from it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root, where the examples and fixtures' relative paths start.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the `bpfx` binary with `args` from the repository's root.
pub(crate) fn bpfx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfx"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the bpfx binary runs")
}

/// A run's standard output, as text.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A run's standard error, as text.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs program `prog` of object `obj` with `extra` on both engines, in Checked and Strict mode,
/// with `--json --dump-maps`; the outputs (but for the engine's name) must agree, and this is
/// the one they agree on.
pub(crate) fn run_json_everywhere(obj: &str, prog: &str, extra: &[&str]) -> serde_json::Value {
    let mut seen: Option<serde_json::Value> = None;
    for engine in ["interp", "jit"] {
        for mode in [&[][..], &["--strict"]] {
            let mut args = vec![
                "run",
                obj,
                "--program",
                prog,
                "--engine",
                engine,
                "--json",
                "--dump-maps",
            ];
            args.extend_from_slice(mode);
            args.extend_from_slice(extra);
            let o = bpfx(&args);
            assert!(o.status.success(), "{prog} {engine}: {}", stderr(&o));
            let mut v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            v["engine"] = serde_json::Value::Null;
            match &seen {
                None => seen = Some(v),
                Some(s) => assert_eq!(s, &v, "{prog} {engine} {mode:?}"),
            }
        }
    }
    seen.unwrap()
}
