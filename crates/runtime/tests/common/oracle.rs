//! The kernel as an oracle, through `bpftool`: whether it can be one here ([`unavailable`]),
//! loading a fixture as a program of a given type ([`load`], pinned under `/sys/fs/bpf` and
//! unpinned, so unloaded, when the [`Pinned`] drops) and a test run of it ([`kernel_run`],
//! `bpftool prog run`, i.e. the kernel's `BPF_PROG_TEST_RUN`), with a context in and out or
//! without one.
//!
//! Only the kernel-oracle tests (`*_oracle.rs`) include it, by `#[path]`, so the other tests
//! that share `common` do not compile code they never call.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The room `kernel_run` gives the kernel for the output packet (`data_size_out`): more than
/// any fixture's frame, headroom changes included.
const DATA_SIZE_OUT: usize = 8192;

/// Where the fixtures' objects are (`tests/objects`).
pub(crate) fn objects() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/objects"))
}

/// A program (or, from `loadall`, a directory of programs) loaded into the kernel and pinned,
/// unpinned (so unloaded) when dropped.
pub(crate) struct Pinned(PathBuf);

impl Pinned {
    /// Where it is pinned (for `loadall`, the directory of the programs' pins).
    #[allow(dead_code)]
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0).or_else(|_| std::fs::remove_dir_all(&self.0));
    }
}

/// Why the kernel cannot be the oracle here, if it cannot: the test is not root, `bpftool` is
/// missing, or no BPF file system is mounted at `/sys/fs/bpf`.
pub(crate) fn unavailable() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    });
    if !root {
        return Some("not running as root".into());
    }
    match Command::new("bpftool").arg("version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Some("bpftool is not installed".into()),
    }
    if !Path::new("/sys/fs/bpf").is_dir() {
        return Some("no BPF file system at /sys/fs/bpf".into());
    }
    None
}

/// Loads the program of the object at `path` into the kernel as a program of `bpftool`'s type
/// `ty` (`xdp`, `classifier`, `socket`, ...), pinned under a name of this process, this load
/// and the object (tests of one binary run in parallel threads and may load one object at
/// once: a name per load keeps one test from unpinning another's program); the kernel's
/// complaint (the verifier's log) when it refuses.
pub(crate) fn load(path: &Path, ty: &str) -> Result<Pinned, String> {
    bpftool_load(path, "load", Some(ty))
}

/// [`load`] with the program type (and expected attach type) the object's section gives, by
/// libbpf's table.
// Only the tests of types `bpftool prog run` cannot run use it.
#[allow(dead_code)]
pub(crate) fn load_by_section(path: &Path) -> Result<Pinned, String> {
    bpftool_load(path, "load", None)
}

/// Every program of the object at `path`, each of the type its section gives, pinned in one
/// directory.
#[allow(dead_code)]
pub(crate) fn load_all(path: &Path) -> Result<Pinned, String> {
    bpftool_load(path, "loadall", None)
}

/// The kernel's verdict on a fixture and its refused twins (`tests/objects`): it loads every
/// program of `{fixture}.o` by section and refuses each twin; a loud skip where it cannot be
/// the oracle.
#[allow(dead_code)]
pub(crate) fn loads_fixture_refuses_twins<'a>(
    fixture: &str,
    twins: impl IntoIterator<Item = &'a str>,
) {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED kernel oracle for {fixture}: {why}");
        return;
    }
    for file in twins {
        assert!(
            load_by_section(&objects().join(file)).is_err(),
            "the kernel loads {file}"
        );
    }
    load_all(&objects().join(format!("{fixture}.o")))
        .unwrap_or_else(|e| panic!("the kernel refuses {fixture}.o: {e}"));
}

/// [`load`], with the object's maps pinned in a directory of their own (returned second): a
/// pinned map has a user reference, which the kernel's `bpf_timer_init` and
/// `bpf_timer_set_callback` require (`-EPERM` without one).
#[allow(dead_code)]
pub(crate) fn load_pinning_maps(path: &Path, ty: &str) -> Result<(Pinned, Pinned), String> {
    let maps = Pinned(PathBuf::from(format!(
        "/sys/fs/bpf/bpfx_oracle_maps_{}_{}",
        std::process::id(),
        path.file_stem().unwrap().to_string_lossy()
    )));
    let _ = std::fs::remove_dir_all(&maps.0);
    let pin = PathBuf::from(format!("{}_prog", maps.0.display()));
    let prog = Pinned(pin.clone());
    let o = Command::new("bpftool")
        .args(["prog", "load"])
        .arg(path)
        .arg(&pin)
        .args(["type", ty, "pinmaps"])
        .arg(&maps.0)
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok((prog, maps))
}

/// [`load_all`], with the object's maps pinned in a directory of their own (returned second),
/// where `bpftool map` commands reach them.
#[allow(dead_code)]
pub(crate) fn load_all_pinning_maps(path: &Path) -> Result<(Pinned, Pinned), String> {
    let base = format!(
        "/sys/fs/bpf/bpfx_oracle_all_{}_{}",
        std::process::id(),
        path.file_stem().unwrap().to_string_lossy()
    );
    let (progs, maps) = (
        Pinned(PathBuf::from(&base)),
        Pinned(PathBuf::from(format!("{base}_maps"))),
    );
    let _ = std::fs::remove_dir_all(&progs.0);
    let _ = std::fs::remove_dir_all(&maps.0);
    let o = Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(path)
        .arg(&progs.0)
        .arg("pinmaps")
        .arg(&maps.0)
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok((progs, maps))
}

fn bpftool_load(path: &Path, how: &str, ty: Option<&str>) -> Result<Pinned, String> {
    static LOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let pin = PathBuf::from(format!(
        "/sys/fs/bpf/bpfx_oracle_{}_{}_{}",
        std::process::id(),
        LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        path.file_stem().unwrap().to_string_lossy()
    ));
    drop(Pinned(pin.clone()));
    let mut cmd = Command::new("bpftool");
    cmd.args(["prog", how]).arg(path).arg(&pin);
    if let Some(ty) = ty {
        cmd.args(["type", ty]);
    }
    let o = cmd.output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok(Pinned(pin))
}

/// The kernel's test run of `prog` on the packet `data`: the return value (the u32 `bpftool`
/// reports) and the output packet. With `ctx`, the kernel gets it as `ctx_in` and it is
/// overwritten with the kernel's `ctx_out` (which must be as long). The files `bpftool` reads
/// and writes go in `scratch`, which must exist and belong to this test alone.
pub(crate) fn kernel_run(
    prog: &Pinned,
    data: &[u8],
    ctx: Option<&mut [u8]>,
    scratch: &Path,
) -> (u32, Vec<u8>) {
    run_pinned(&prog.0, data, ctx, scratch)
}

/// Loads the fixture `file` as `ty` with its maps pinned (the kernel's timers need a map with
/// a user reference: `-EPERM` without), runs it on each of `frames` in order and asserts each
/// result is `ours`' (bpfx's verdict and output packet for that frame). Skips loudly, naming
/// `test`, where the kernel cannot be an oracle.
#[allow(dead_code)]
pub(crate) fn compare_pinned_runs(
    test: &str,
    file: &str,
    ty: &str,
    frames: &[Vec<u8>],
    ours: &[(u32, Vec<u8>)],
) {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED {test}: {why}");
        return;
    }
    let (prog, _maps) = load_pinning_maps(&objects().join(file), ty)
        .unwrap_or_else(|e| panic!("the kernel refuses {file}: {e}"));
    let scratch = std::env::temp_dir().join(format!("bpfx-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    for (f, o) in frames.iter().zip(ours) {
        assert_eq!(&kernel_run(&prog, f, None, &scratch), o, "{f:02x?}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("{test}: {} runs compared with the kernel's", frames.len());
}

/// [`kernel_run`] of the program named `name` (its function) of the directory [`load_all`]
/// pinned.
#[allow(dead_code)]
pub(crate) fn kernel_run_named(
    dir: &Pinned,
    name: &str,
    data: &[u8],
    ctx: Option<&mut [u8]>,
    scratch: &Path,
) -> (u32, Vec<u8>) {
    run_pinned(&dir.0.join(name), data, ctx, scratch)
}

fn run_pinned(pin: &Path, data: &[u8], ctx: Option<&mut [u8]>, scratch: &Path) -> (u32, Vec<u8>) {
    let [input, output, ctx_in, ctx_out] =
        ["in.bin", "out.bin", "ctx_in.bin", "ctx_out.bin"].map(|f| scratch.join(f));
    std::fs::write(&input, data).unwrap();
    for f in [&output, &ctx_out] {
        let _ = std::fs::remove_file(f);
    }
    let mut run = Command::new("bpftool");
    run.args(["prog", "run", "pinned"])
        .arg(pin)
        .arg("data_in")
        .arg(&input)
        .arg("data_out")
        .arg(&output)
        .args(["data_size_out", &DATA_SIZE_OUT.to_string()]);
    if let Some(ctx) = &ctx {
        std::fs::write(&ctx_in, ctx).unwrap();
        run.arg("ctx_in")
            .arg(&ctx_in)
            .arg("ctx_out")
            .arg(&ctx_out)
            .args(["ctx_size_out", &ctx.len().to_string()]);
    }
    let o = run.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "bpftool prog run: {text} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ret = text
        .split("Return value: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|r| r.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no return value in {text:?}"));
    if let Some(ctx) = ctx {
        let back = std::fs::read(&ctx_out).unwrap();
        assert_eq!(back.len(), ctx.len(), "ctx_out");
        ctx.copy_from_slice(&back);
    }
    (ret, std::fs::read(&output).unwrap_or_default())
}

/// Runs the XDP fixture `file` (section `xdp`) in the kernel on every frame of at least an
/// Ethernet header (the kernel's test run refuses shorter ones) and asserts each verdict and
/// output frame equals `ours` (bpfx's, one per frame). Returns how many frames were compared,
/// or `None` after saying on stderr why `test` compares nothing (no kernel to ask, or the
/// kernel does not load `file`).
// Only the oracle tests of clang-built XDP fixtures use it.
#[allow(dead_code)]
pub(crate) fn compare_xdp(
    test: &str,
    file: &str,
    frames: &[Vec<u8>],
    ours: &[(u32, Vec<u8>)],
) -> Option<usize> {
    let runs = frames
        .iter()
        .zip(ours)
        .filter(|(frame, _)| frame.len() >= 14)
        .map(|(frame, ours)| (&frame[..], ours.clone()));
    compare_runs(test, file, "xdp", runs)
}

/// Runs fixture `file` as a program of kernel type `ty` (`bpftool`'s name: `xdp`,
/// `classifier`, …) in the kernel on each frame of `runs` and asserts it gives what bpfx gave
/// (the verdict and the packet after the run). Returns how many runs were compared, or `None`
/// after saying on stderr why `test` compares nothing (no kernel to ask, or the kernel does not
/// load `file`).
pub(crate) fn compare_runs<'a>(
    test: &str,
    file: &str,
    ty: &str,
    runs: impl IntoIterator<Item = (&'a [u8], (u32, Vec<u8>))>,
) -> Option<usize> {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED {test}: {why}");
        return None;
    }
    let pinned = match load(&objects().join(file), ty) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("SKIPPED {test}: the kernel does not load {file}: {why}");
            return None;
        }
    };
    let scratch = std::env::temp_dir().join(format!("bpfx-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut checked = 0;
    for (frame, ours) in runs {
        let kernel = kernel_run(&pinned, frame, None, &scratch);
        assert_eq!(kernel, ours, "{test}: frame {frame:02x?}");
        checked += 1;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("{test}: {checked} runs compared with the kernel's");
    Some(checked)
}
