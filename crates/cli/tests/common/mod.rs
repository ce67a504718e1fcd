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
