//! The replay bench's filters (`replay/`): XDP programs written once in C (`replay/bodies.h`),
//! built to eBPF objects (`replay/build.sh`, committed) and natively (`build.rs`, the ceiling),
//! the packets they are replayed over, their map contents, and the Linux kernel's own run of the
//! same objects through `bpftool prog run` (`BPF_PROG_TEST_RUN`) where `bpf()` is available.
//!
//! | filter | what it does per packet |
//! |---|---|
//! | `pass` | returns `XDP_PASS`: the run entry alone |
//! | `fw` | parses Ethernet (one VLAN tag), IPv4, the TCP/UDP ports; a HASH lookup of (source, destination port, protocol); a PERCPU_ARRAY counter of the verdict |
//! | `lb` | the same parse; a HASH lookup of the service, a flow hash, an ARRAY lookup of the backend; rewrites the destination address (IPv4 and TCP/UDP checksums updated) and the MACs; `XDP_TX`; PERCPU_ARRAY counters per backend |

use bpfx::{Mode, Object, Program, UpdateFlag};
use std::path::{Path, PathBuf};
use std::process::Command;

unsafe extern "C" {
    fn bpfx_replay_init();
    fn bpfx_replay_rule(i: u32, key: *mut u32, action: *mut u32) -> i32;
    fn bpfx_replay_vip(i: u32, key: *mut u32, vip: *mut u32) -> i32;
    fn bpfx_replay_backend(i: u32, backend: *mut u32) -> i32;
    fn bpfx_replay_fw(data: *mut u8, data_end: *mut u8) -> u32;
    fn bpfx_replay_lb(data: *mut u8, data_end: *mut u8) -> u32;
}

/// The compiler that built the native filters (`--version` line).
pub fn native_compiler() -> &'static str {
    crate::native::REPLAY_COMPILER
}

/// One of the replay filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Only `XDP_PASS`.
    Pass,
    /// Parse, HASH lookup, per-CPU counters.
    Fw,
    /// Parse, HASH and ARRAY lookups, rewrite, `XDP_TX`, per-CPU counters.
    Lb,
}

impl Filter {
    /// All three.
    pub const ALL: [Filter; 3] = [Filter::Pass, Filter::Fw, Filter::Lb];

    /// The file stem, the program's name and the bench's name.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Pass => "pass",
            Filter::Fw => "fw",
            Filter::Lb => "lb",
        }
    }

    /// The committed eBPF object.
    pub fn object(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("replay")
            .join(format!("{}.o", self.name()))
    }

    /// The entries the host puts into the filter's maps before any run: (map, key, value).
    pub fn entries(self) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        match self {
            Filter::Pass => {}
            Filter::Fw => {
                for i in 0.. {
                    let (mut key, mut action) = ([0u32; 2], [0u32; 1]);
                    // SAFETY: writes one `struct rule_key` (8 bytes, 4-aligned) and one `u32`
                    // into the two buffers, which are that large and aligned.
                    if unsafe { bpfx_replay_rule(i, key.as_mut_ptr(), action.as_mut_ptr()) } == 0 {
                        break;
                    }
                    out.push(("rules", words(&key), words(&action)));
                }
            }
            Filter::Lb => {
                for i in 0.. {
                    let (mut key, mut vip) = ([0u32; 2], [0u32; 2]);
                    // SAFETY: writes one `struct vip_key` and one `struct vip` (8 bytes each,
                    // 4-aligned) into the two buffers.
                    if unsafe { bpfx_replay_vip(i, key.as_mut_ptr(), vip.as_mut_ptr()) } == 0 {
                        break;
                    }
                    out.push(("vips", words(&key), words(&vip)));
                }
                for i in 0.. {
                    let mut backend = [0u32; 3];
                    // SAFETY: writes one `struct backend` (12 bytes, 4-aligned).
                    if unsafe { bpfx_replay_backend(i, backend.as_mut_ptr()) } == 0 {
                        break;
                    }
                    out.push(("backends", i.to_le_bytes().to_vec(), words(&backend)));
                }
            }
        }
        out
    }
}

/// The JIT and the interpreter of `filter` verified in `mode`, on one object, so they share
/// its maps, which hold [`Filter::entries`]; the verifier's error when `mode` refuses it.
pub fn programs(filter: Filter, mode: Mode) -> Result<(Program, Program), bpfx::Error> {
    let obj = Object::open(filter.object()).expect("the replay objects load");
    for (map, key, value) in filter.entries() {
        obj.map(map)
            .expect("the filter's map")
            .update(&key, &value, UpdateFlag::Any)
            .expect("the entries fit the maps");
    }
    let verified = || {
        obj.program(filter.name())
            .expect("the filter's program")
            .verify(mode)
    };
    let jit = verified()?.compile().expect("the filter compiles");
    Ok((jit, verified()?.interpret()))
}

/// One run of `prog` (`Program::run_xdp`) on a copy of `frame` in `work` (the frame after the
/// run): the verdict.
pub fn run_bpfx(prog: &mut Program, frame: &[u8], work: &mut [u8]) -> u32 {
    work.copy_from_slice(frame);
    match prog.run_xdp(work) {
        Ok(action) => action.code() as u32,
        Err(e) => panic!("{}: {e}", prog.name()),
    }
}

fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A frame for the native filters, placed as a kernel driver places it (`NET_IP_ALIGN`): two
/// bytes past a 4-byte boundary, so the IPv4 header and every field the filters read are
/// aligned to their size, as the C requires.
#[derive(Debug)]
pub struct NativeFrame {
    words: Vec<u32>,
    len: usize,
}

impl NativeFrame {
    /// A copy of `frame`.
    pub fn new(frame: &[u8]) -> NativeFrame {
        let mut f = NativeFrame {
            words: vec![0; (frame.len() + 2).div_ceil(4)],
            len: frame.len(),
        };
        f.bytes_mut().copy_from_slice(frame);
        f
    }

    /// The frame's bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        let all: &mut [u8] = bytes_of(&mut self.words);
        &mut all[2..2 + len]
    }
}

fn bytes_of(words: &mut [u32]) -> &mut [u8] {
    // SAFETY: `u8` has no alignment or validity requirement and `u32` no padding: the same
    // memory, exclusively borrowed for the result's lifetime, viewed as its bytes.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 4) }
}

/// Runs the native build of `filter` on `frame` (its verdict; `None` for `pass`, which has
/// nothing to build natively).
pub fn run_native(filter: Filter, frame: &mut NativeFrame) -> Option<u32> {
    static INIT: std::sync::Once = std::sync::Once::new();
    // SAFETY: fills the native tables from constants, once, before any filter reads them.
    INIT.call_once(|| unsafe { bpfx_replay_init() });
    let f = match filter {
        Filter::Pass => return None,
        Filter::Fw => bpfx_replay_fw,
        Filter::Lb => bpfx_replay_lb,
    };
    let bytes = frame.bytes_mut();
    let range = bytes.as_mut_ptr_range();
    // SAFETY: the bodies read and write only between `data` and `data_end`, each access
    // checked against `data_end` before it is made (as the kernel's verifier requires of the
    // same code), at offsets aligned to the access given the frame's placement
    // (`NativeFrame`), plus their own tables (filled by `INIT`) and per-thread counters.
    Some(unsafe { f(range.start, range.end) })
}

/// The frames every filter is replayed over, each `size` bytes (64 or 1500: the frame without
/// its FCS): 64 frames, deterministic, mixing UDP to the load balancer's DNS service from
/// sources the firewall drops or passes, TCP to its web service, SSH the firewall allows
/// explicitly, a VLAN-tagged frame, UDP to no service, and ARP.
pub fn frames(size: usize) -> Vec<Vec<u8>> {
    assert!(size >= 64, "frames are at least 64 bytes");
    (0..64u32)
        .map(|i| {
            let src = [10, 0, 0, (i % 16) as u8];
            let sport = 1024 + (i as u16) * 7;
            match i % 8 {
                0 | 1 => ipv4(size, false, 17, src, [192, 0, 2, 2], sport, 53),
                2 | 3 => ipv4(size, false, 6, src, [192, 0, 2, 1], sport, 80),
                4 => ipv4(size, false, 6, src, [192, 0, 2, 9], sport, 22),
                5 => ipv4(
                    size,
                    true,
                    17,
                    [172, 16, 0, i as u8],
                    [192, 0, 2, 2],
                    sport,
                    53,
                ),
                6 => ipv4(size, false, 17, src, [198, 51, 100, 1], sport, 4789),
                _ => {
                    let mut f = vec![0u8; size];
                    f[..6].fill(0xff);
                    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, i as u8]);
                    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
                    f
                }
            }
        })
        .collect()
}

/// An Ethernet/IPv4/TCP-or-UDP frame of `size` bytes with a valid IPv4 header checksum.
fn ipv4(
    size: usize,
    vlan: bool,
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
) -> Vec<u8> {
    let mut f = vec![0u8; size];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xfe]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src[3]]);
    let mut l3 = 14;
    if vlan {
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&100u16.to_be_bytes());
        l3 = 18;
    }
    f[l3 - 2..l3].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[l3..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((size - l3) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let sum = (0..10).fold(0u32, |s, k| {
        s + u32::from(u16::from_be_bytes([ip[2 * k], ip[2 * k + 1]]))
    });
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let l4 = &mut ip[20..];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        l4[12] = 0x50;
        l4[13] = 0x10;
        l4[16..18].copy_from_slice(&0x1234u16.to_be_bytes());
    } else {
        l4[4..6].copy_from_slice(&((size - l3 - 20) as u16).to_be_bytes());
        l4[6..8].copy_from_slice(&0x5678u16.to_be_bytes());
    }
    f
}

/// The kernel's run of one filter: the object loaded and its maps filled through `bpftool`
/// (pinned under `/sys/fs/bpf`, removed on drop).
#[derive(Debug)]
pub struct Kernel {
    pin: PathBuf,
    maps: PathBuf,
}

/// The kernel's result for one frame.
#[derive(Debug)]
pub struct KernelRun {
    /// The program's return value.
    pub verdict: u32,
    /// The frame after the runs (`data_out`).
    pub frame: Vec<u8>,
    /// `bpftool`'s "duration (average)" over the repeats, in ns (the kernel's test-run loop
    /// included).
    pub ns: f64,
}

fn bpftool(args: &[&str]) -> Result<String, String> {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run bpftool: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "bpftool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn hex(bytes: &[u8]) -> Vec<String> {
    bytes.iter().map(|b| format!("0x{b:02x}")).collect()
}

impl Kernel {
    /// Loads `filter` into the kernel, or says why not (no bpftool, no `bpf()`, not root).
    pub fn load(filter: Filter) -> Result<Kernel, String> {
        let base = format!(
            "/sys/fs/bpf/bpfx_replay_{}_{}",
            std::process::id(),
            filter.name()
        );
        let k = Kernel {
            maps: PathBuf::from(format!("{base}_maps")),
            pin: PathBuf::from(base),
        };
        let obj = filter.object();
        bpftool(&[
            "prog",
            "load",
            &obj.to_string_lossy(),
            &k.pin.to_string_lossy(),
            "type",
            "xdp",
            "pinmaps",
            &k.maps.to_string_lossy(),
        ])?;
        for (map, key, value) in filter.entries() {
            let path = k.maps.join(map);
            let mut args = vec![
                "map".to_string(),
                "update".into(),
                "pinned".into(),
                path.to_string_lossy().into_owned(),
                "key".into(),
            ];
            args.extend(hex(&key));
            args.push("value".into());
            args.extend(hex(&value));
            bpftool(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        Ok(k)
    }

    /// Runs the program `repeat` times on `frame` (`bpftool prog run … repeat N`).
    pub fn run(&self, frame: &[u8], repeat: u32) -> Result<KernelRun, String> {
        let dir = std::env::temp_dir();
        let tag = format!("bpfx_replay_{}", std::process::id());
        let (input, output) = (
            dir.join(format!("{tag}.in")),
            dir.join(format!("{tag}.out")),
        );
        std::fs::write(&input, frame).map_err(|e| e.to_string())?;
        let text = bpftool(&[
            "prog",
            "run",
            "pinned",
            &self.pin.to_string_lossy(),
            "data_in",
            &input.to_string_lossy(),
            "data_out",
            &output.to_string_lossy(),
            "repeat",
            &repeat.to_string(),
        ])?;
        let out = std::fs::read(&output).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&input);
        let _ = std::fs::remove_file(&output);
        // "Return value: 2, duration (average): 24ns"
        let field = |name: &str| {
            text.split(name)
                .nth(1)
                .map(|rest| {
                    rest.trim_start()
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| format!("no {name:?} in bpftool's output: {text}"))
        };
        Ok(KernelRun {
            verdict: field("Return value:")? as u32,
            frame: out,
            // "duration: N ns" when `repeat` is 1.
            ns: field("duration (average):").or_else(|_| field("duration:"))? as f64,
        })
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pin);
        // bpffs refuses `remove_dir_all`'s directory walk: unlink each pin, then the directory.
        if let Ok(pins) = std::fs::read_dir(&self.maps) {
            for pin in pins.flatten() {
                let _ = std::fs::remove_file(pin.path());
            }
        }
        let _ = std::fs::remove_dir(&self.maps);
    }
}

/// How the threaded benches (`replay.rs`, `maps.rs`) time a thread's work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The CPU time the thread itself used (`CLOCK_THREAD_CPUTIME_ID`): what it costs, without
    /// the time the scheduler gave other work on a shared machine (the default; the kernel's
    /// test-run timer likewise leaves out the time it is rescheduled).
    ThreadCpu,
    /// Wall time from a common start: what also shows threads waiting for one another (a lock
    /// that blocks), but counts every other process's time on a loaded machine.
    Wall,
}

impl Clock {
    /// `BPFX_BENCH_CLOCK=wall` chooses [`Clock::Wall`]; anything else [`Clock::ThreadCpu`].
    pub fn from_env() -> Clock {
        match std::env::var("BPFX_BENCH_CLOCK").as_deref() {
            Ok("wall") => Clock::Wall,
            _ => Clock::ThreadCpu,
        }
    }

    /// What this clock reads now, for the calling thread.
    pub fn now(self) -> std::time::Duration {
        match self {
            Clock::Wall => {
                static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
                START.get_or_init(std::time::Instant::now).elapsed()
            }
            Clock::ThreadCpu => {
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: `ts` is a valid, writable `timespec`; the call only writes it.
                let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
                assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
                std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
            }
        }
    }
}

/// Runs `work(t)` on `threads` threads at once (started together) and gives the mean of the
/// times [`Clock`] measured on each: the time one thread took for its share.
pub fn threaded<'a, F>(threads: usize, clock: Clock, work: F) -> std::time::Duration
where
    F: Fn(usize) -> Box<dyn FnMut() + Send + 'a> + Sync,
{
    let barrier = std::sync::Barrier::new(threads);
    let total: std::time::Duration = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mut run = work(t);
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = clock.now();
                    run();
                    clock.now() - start
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread panicked"))
            .sum()
    });
    total / threads as u32
}
