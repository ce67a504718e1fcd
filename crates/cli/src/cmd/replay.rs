//! `bpfx replay PROG --pcap IN`: run every packet of a capture through an XDP or TC program,
//! count the verdicts, time each run, and write the packets that pass to an output capture.

use crate::cmd::run as r;
use crate::error::CliError;
use bpfx::Context;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Replay a packet capture through an XDP or TC program.
///
/// The program is loaded, verified and prepared as `run` does (its options: --section,
/// --program, --ctx xdp|tc, --engine, --strict, --hardened, --budget, --mem-limit, the skb
/// fields...). Every packet of the pcap or pcapng capture --pcap (Ethernet link type) runs
/// once per --repeat, each on the maps as the previous runs left them, with the budget given
/// again for each packet. Packets that pass (XDP_PASS, XDP_TX, XDP_REDIRECT; for TC every
/// verdict but TC_ACT_SHOT, TC_ACT_STOLEN, TC_ACT_QUEUED and TC_ACT_TRAP) of every pass go to
/// --out, a pcap with the input's link type and timestamps, with the bytes the program left,
/// in input order. Prints the verdict counts, the redirect targets, packets per second, the
/// median and 99th percentile time per packet and the maps afterwards (with or without
/// --dump-maps). A packet the capture cut short (snaplen) runs as captured and is counted,
/// with a warning. The clock (`bpf_ktime_get_ns`, bpf_timer expiries) is the capture's: each
/// run sees its packet's timestamp (pass p of --repeat shifted by p times the capture's
/// span; never back in time), the bpf_timers due by a packet's time fire before it, and
/// those due by the capture's end after the last. With --threads N, N
/// workers each run their own instance of the program on CPU slot 0..N-1 (per-CPU maps get N
/// slots), packets going to workers by a hash of their flow (the 5-tuple, or the 3-tuple
/// for IP fragments, or the frame's bytes).
#[derive(Debug, clap::Args)]
#[group(id = "replay_args")]
pub(crate) struct Args {
    /// What `run` takes (--out names the output capture here; --mem and --packet are refused).
    #[command(flatten)]
    run: r::Args,
    /// The capture to replay: pcap (microsecond or nanosecond) or pcapng.
    #[arg(long, value_name = "PATH")]
    pcap: PathBuf,
    /// Replay the capture this many times (the maps keep their state between passes).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Worker threads, each running its own instance of the program on its own CPU slot.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
}

impl Args {
    /// Whether --json was given.
    pub(crate) fn json(&self) -> bool {
        self.run.json()
    }
}

/// Replays of at least this many packet runs show a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 100_000;

/// A packet of the capture.
#[derive(Clone, Debug)]
pub(crate) struct Captured {
    /// Time since the epoch.
    pub(crate) ts: Duration,
    /// Length on the wire.
    pub(crate) orig_len: u32,
    /// The bytes captured.
    pub(crate) data: Vec<u8>,
}

/// A whole capture.
#[derive(Debug)]
pub(crate) struct Capture {
    pub(crate) link: DataLink,
    pub(crate) snaplen: u32,
    /// Whether the input had nanosecond timestamps (pcapng: always written as nanoseconds).
    pub(crate) nanos: bool,
    pub(crate) packets: Vec<Captured>,
}

/// Reads a pcap or pcapng capture (by its magic number).
pub(crate) fn read_capture(path: &Path, bytes: &[u8]) -> Result<Capture, CliError> {
    let err = |packet: Option<u64>, reason: String| CliError::Capture {
        path: path.to_path_buf(),
        packet,
        reason,
    };
    if bytes.len() < 4 {
        return Err(err(
            None,
            format!(
                "not a capture: {} bytes, shorter than a pcap or pcapng header",
                bytes.len()
            ),
        ));
    }
    if bytes[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        read_pcapng(bytes, &err)
    } else {
        read_pcap(bytes, &err)
    }
}

/// Why the crate's reader failed, in words: a capture that ends inside a record is truncated.
fn pcap_reason(e: &pcap_file::PcapError) -> String {
    match e {
        pcap_file::PcapError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the capture ends inside this packet's record (truncated file)".to_string()
        }
        pcap_file::PcapError::IncompleteBuffer => {
            "the capture ends inside this packet's record (truncated file)".to_string()
        }
        other => format!("malformed record: {other}"),
    }
}

fn read_pcap(
    bytes: &[u8],
    err: &dyn Fn(Option<u64>, String) -> CliError,
) -> Result<Capture, CliError> {
    let mut reader = PcapReader::new(bytes).map_err(|e| {
        err(
            None,
            format!("not a pcap or pcapng capture (bad file header: {e})"),
        )
    })?;
    let header = reader.header();
    let mut packets = Vec::new();
    // The crate's checked reader refuses a packet longer on the wire than the snaplen, which
    // is what a short snaplen gives: read the raw records and check them here.
    while let Some(raw) = reader.next_raw_packet() {
        let n = packets.len() as u64 + 1;
        let raw = raw.map_err(|e| err(Some(n), pcap_reason(&e)))?;
        let nanos = match header.ts_resolution {
            pcap_file::TsResolution::MicroSecond => u64::from(raw.ts_frac) * 1000,
            pcap_file::TsResolution::NanoSecond => u64::from(raw.ts_frac),
        };
        if nanos >= 1_000_000_000 {
            return Err(err(
                Some(n),
                format!("timestamp fraction {} is a second or more", raw.ts_frac),
            ));
        }
        if raw.incl_len > raw.orig_len {
            return Err(err(
                Some(n),
                format!(
                    "{} bytes captured of a {}-byte packet (more than its length)",
                    raw.incl_len, raw.orig_len
                ),
            ));
        }
        check_snaplen(raw.incl_len as usize, header.snaplen)
            .map_err(|reason| err(Some(n), reason))?;
        packets.push(Captured {
            ts: Duration::new(u64::from(raw.ts_sec), nanos as u32),
            orig_len: raw.orig_len,
            data: raw.data.into_owned(),
        });
    }
    Ok(Capture {
        link: header.datalink,
        snaplen: header.snaplen,
        nanos: header.ts_resolution == pcap_file::TsResolution::NanoSecond,
        packets,
    })
}

/// A record holds at most the capture's snaplen bytes (0: no limit): a longer one means the
/// header or the record is wrong, and which bytes the program should see is not known.
fn check_snaplen(captured: usize, snaplen: u32) -> Result<(), String> {
    if snaplen != 0 && captured > snaplen as usize {
        return Err(format!(
            "{captured} bytes captured, more than the capture's snaplen of {snaplen} bytes"
        ));
    }
    Ok(())
}

/// Nanoseconds from a pcapng timestamp in its interface's units (`if_tsresol`: a power of
/// 10, or of 2 with the top bit set; microseconds by default).
fn pcapng_ns(units: u64, tsresol: u8) -> Option<u64> {
    let units = u128::from(units);
    let ns = if tsresol & 0x80 == 0 {
        let exp = u32::from(tsresol);
        if exp <= 9 {
            units * 10u128.pow(9 - exp)
        } else {
            units / 10u128.checked_pow(exp - 9)?
        }
    } else {
        let exp = u32::from(tsresol & 0x7f);
        if exp >= 128 {
            return None;
        }
        (units * 1_000_000_000) >> exp
    };
    u64::try_from(ns).ok()
}

fn read_pcapng(
    bytes: &[u8],
    err: &dyn Fn(Option<u64>, String) -> CliError,
) -> Result<Capture, CliError> {
    let mut reader = PcapNgReader::new(bytes).map_err(|e| {
        err(
            None,
            format!("not a pcapng capture (bad section header: {e})"),
        )
    })?;
    // Each interface: its link type, snaplen and timestamp resolution.
    let mut interfaces: Vec<(DataLink, u32, u8)> = Vec::new();
    let mut link: Option<DataLink> = None;
    let mut snaplen = 0u32;
    let mut packets = Vec::new();
    while let Some(block) = reader.next_block() {
        let n = packets.len() as u64 + 1;
        let block = block.map_err(|e| err(Some(n), pcap_reason(&e)))?;
        let (iface, units, orig_len, data) = match block {
            Block::SectionHeader(_) => {
                // A new section starts its own interface numbering.
                interfaces.clear();
                continue;
            }
            Block::InterfaceDescription(idb) => {
                let tsresol = idb
                    .options
                    .iter()
                    .find_map(|o| match o {
                        pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                        _ => None,
                    })
                    .unwrap_or(6);
                match link {
                    Some(l) if l != idb.linktype => {
                        return Err(err(
                            None,
                            format!(
                                "interfaces of link types {l:?} and {:?}: one capture replays \
                                 on one link type",
                                idb.linktype
                            ),
                        ));
                    }
                    _ => link = Some(idb.linktype),
                }
                snaplen = snaplen.max(if idb.snaplen == 0 {
                    u32::MAX
                } else {
                    idb.snaplen
                });
                interfaces.push((idb.linktype, idb.snaplen, tsresol));
                continue;
            }
            Block::EnhancedPacket(epb) => (
                epb.interface_id,
                epb.timestamp.as_nanos() as u64,
                epb.original_len,
                epb.data.into_owned(),
            ),
            Block::SimplePacket(spb) => (0, 0, spb.original_len, spb.data.into_owned()),
            Block::Packet(pb) => (
                u32::from(pb.interface_id),
                pb.timestamp,
                pb.original_len,
                pb.data.into_owned(),
            ),
            _ => continue,
        };
        let Some(&(_, if_snaplen, tsresol)) = interfaces.get(iface as usize) else {
            return Err(err(
                Some(n),
                format!("interface {iface} has no description block before the packet"),
            ));
        };
        let ns = pcapng_ns(units, tsresol)
            .ok_or_else(|| err(Some(n), "timestamp out of range".to_string()))?;
        check_snaplen(data.len(), if_snaplen).map_err(|reason| err(Some(n), reason))?;
        let captured = data.len();
        packets.push(Captured {
            ts: Duration::from_nanos(ns),
            // A simple packet block's original length is at least what it holds.
            orig_len: orig_len.max(u32::try_from(captured).unwrap_or(u32::MAX)),
            data,
        });
    }
    Ok(Capture {
        link: link.unwrap_or(DataLink::ETHERNET),
        snaplen: if snaplen == 0 || snaplen == u32::MAX {
            262_144
        } else {
            snaplen
        },
        nanos: true,
        packets,
    })
}

/// FNV-1a, 64 bits: a fixed hash, the same on every host and run.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The packet's flow hash, as receive-side scaling spreads packets: the 5-tuple of IPv4 and
/// IPv6 TCP, UDP and SCTP (after any VLAN tags), the 3-tuple (addresses and protocol) for
/// other IP packets and fragments, and the frame's bytes for anything else.
pub(crate) fn flow_hash(frame: &[u8]) -> u64 {
    flow_tuple_hash(frame).unwrap_or_else(|| fnv1a(&[frame]))
}

fn flow_tuple_hash(frame: &[u8]) -> Option<u64> {
    let be16 = |b: &[u8], at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
    };
    let mut off = 12;
    let mut ethertype = be16(frame, off)?;
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        off += 4;
        ethertype = be16(frame, off)?;
    }
    let l3 = frame.get(off + 2..)?;
    let ports = |proto: u8, l4: &[u8]| -> Option<[u8; 4]> {
        match proto {
            6 | 17 | 132 => Some([*l4.first()?, *l4.get(1)?, *l4.get(2)?, *l4.get(3)?]),
            _ => None,
        }
    };
    match ethertype {
        0x0800 => {
            let ihl = usize::from(l3.first()? & 0x0f) * 4;
            if ihl < 20 || l3.len() < 20 {
                return None;
            }
            let proto = l3[9];
            let frag = be16(l3, 6)? & 0x3fff != 0;
            let addrs = &l3[12..20];
            let p = if frag {
                None
            } else {
                l3.get(ihl..).and_then(|l4| ports(proto, l4))
            };
            Some(fnv1a(&[
                &[4, proto],
                addrs,
                p.as_ref().map_or(&[][..], |p| p),
            ]))
        }
        0x86dd => {
            if l3.len() < 40 {
                return None;
            }
            let proto = l3[6];
            let addrs = &l3[8..40];
            // A fragment header (44) keeps the fragments of one datagram together: 3-tuple.
            let p = l3.get(40..).and_then(|l4| ports(proto, l4));
            Some(fnv1a(&[
                &[6, proto],
                addrs,
                p.as_ref().map_or(&[][..], |p| p),
            ]))
        }
        _ => None,
    }
}

/// The name of verdict `code` in `ctx`.
fn action_name(ctx: Context, code: u64) -> String {
    match ctx {
        Context::Xdp => bpfx::XdpAction::from_code(code).to_string(),
        _ => bpfx::TcAction::from_code(code).to_string(),
    }
}

/// Whether a packet with this verdict goes on: written to the output capture.
fn passes(ctx: Context, code: u64) -> bool {
    match ctx {
        // XDP_PASS, XDP_TX, XDP_REDIRECT: the frame leaves the program (up the stack, back
        // out, or to the redirect target); XDP_ABORTED, XDP_DROP and unknown codes drop it.
        Context::Xdp => matches!(code, 2..=4),
        // The clsact hook drops TC_ACT_SHOT, and TC_ACT_STOLEN, TC_ACT_QUEUED and TC_ACT_TRAP
        // consume the packet; every other code (OK, UNSPEC, PIPE, RECLASSIFY, REDIRECT, ...)
        // lets it go on.
        _ => !matches!(code as u32 as i32, 2 | 4 | 5 | 8),
    }
}

/// What one packet's run gave.
#[derive(Debug)]
struct Done {
    /// r0: the verdict's code.
    code: u64,
    redirect: Option<bpfx::RedirectTarget>,
    /// The packet after the run, when it passes and --out is given.
    out: Option<Vec<u8>>,
    ns: u64,
}

/// A worker's runs (run index, outcome), or the first run that failed and why.
type WorkerResult = Result<Vec<(usize, Done)>, Box<(usize, CliError)>>;

thread_local! {
    /// The CPU slot of the worker running on this thread.
    static WORKER_CPU: Cell<u32> = const { Cell::new(0) };
    /// The clock of the worker running on this thread (`bpf_ktime_get_ns`, and what timers
    /// are armed on and fire by): the time of the packet it runs ([`Clock`]).
    static WORKER_NOW: Cell<u64> = const { Cell::new(0) };
}

/// The replay's clock: each run sees the time of its packet in the capture, in nanoseconds
/// since the epoch, pass `p` (from 0) of a `--repeat` shifted by `p` times the capture's span
/// (its last timestamp less its first), and never earlier than the worker's previous run
/// (a capture out of time order does not turn the clock back).
#[derive(Clone, Copy, Debug)]
struct Clock {
    /// The capture's earliest timestamp.
    first: u64,
    /// Its span.
    span: u64,
}

impl Clock {
    fn new(capture: &Capture) -> Clock {
        let ns = |p: &Captured| u64::try_from(p.ts.as_nanos()).unwrap_or(u64::MAX);
        let first = capture.packets.iter().map(ns).min().unwrap_or(0);
        let last = capture.packets.iter().map(ns).max().unwrap_or(0);
        Clock {
            first,
            span: last - first,
        }
    }

    /// The replay's last time: the capture's last timestamp in the last of `repeat` passes.
    fn end(&self, repeat: u32) -> u64 {
        self.first
            .saturating_add(self.span.saturating_mul(u64::from(repeat)))
    }

    /// The time of run `i` (pass `i / n`, packet `i % n`) after a run at `prev`.
    fn at(&self, capture: &Capture, i: usize, prev: u64) -> u64 {
        let n = capture.packets.len();
        let ts = u64::try_from(capture.packets[i % n].ts.as_nanos()).unwrap_or(u64::MAX);
        let shift = self.span.saturating_mul((i / n) as u64);
        ts.max(self.first).saturating_add(shift).max(prev)
    }
}

/// One worker: runs its packets (global run indices, ascending) on its own program instance.
struct Worker<'a> {
    args: &'a Args,
    ctx: Context,
    obj: &'a bpfx::Object,
    capture: &'a Capture,
    clock: Clock,
    keep: bool,
    /// Whether XDP runs take the slice entry ([`bpfx::Program::xdp_frame_fixed`]).
    slice: bool,
    /// Timer callbacks fired, by every worker.
    fired: &'a AtomicU64,
    /// The first run that failed so far (`usize::MAX`: none): the workers stop at runs after
    /// it, and go on before it, so the error reported is the first run's whatever the timing.
    failed: &'a AtomicUsize,
    progress: Option<&'a indicatif::ProgressBar>,
}

impl Worker<'_> {
    fn run(&self, prog: &mut bpfx::Program, runs: &[usize]) -> WorkerResult {
        let n = self.capture.packets.len();
        let mut done = Vec::with_capacity(runs.len());
        let mut since_tick = 0u64;
        let mut now = 0;
        // The frame of a slice run, and the packet buffer of the other runs (reused: one
        // allocation each for the replay).
        let mut frame = Vec::new();
        let mut packet = bpfx::Packet::new(&[]);
        for &i in runs {
            if i > self.failed.load(Ordering::Relaxed) {
                break;
            }
            let pkt = &self.capture.packets[i % n];
            now = self.clock.at(self.capture, i, now);
            WORKER_NOW.with(|c| c.set(now));
            r::rearm(&self.args.run, prog);
            // The timers due by this packet's time fire first, as the kernel's soft-irq
            // would have fired them before the packet arrived.
            let res = self
                .fire_timers(now)
                .and_then(|_| self.one(prog, &pkt.data, &mut frame, &mut packet));
            match res {
                Ok(d) => done.push((i, d)),
                Err(e) => {
                    self.failed.fetch_min(i, Ordering::Relaxed);
                    return Err(Box::new((i, r::facade_error(self.args.run.file(), e))));
                }
            }
            since_tick += 1;
            if since_tick == 1024 {
                if let Some(p) = self.progress {
                    p.inc(since_tick);
                }
                since_tick = 0;
            }
        }
        if let Some(p) = self.progress {
            p.inc(since_tick);
        }
        Ok(done)
    }

    /// Fires the timers due at `now` ([`bpfx::Object::run_timers`]), counting them.
    fn fire_timers(&self, now: u64) -> Result<bpfx::TimersRun, bpfx::Error> {
        let t = self.obj.run_timers(now)?;
        if t.fired > 0 {
            self.fired.fetch_add(t.fired as u64, Ordering::Relaxed);
        }
        Ok(t)
    }

    fn one(
        &self,
        prog: &mut bpfx::Program,
        data: &[u8],
        frame: &mut Vec<u8>,
        p: &mut bpfx::Packet,
    ) -> Result<Done, bpfx::Error> {
        match self.ctx {
            Context::Xdp if self.slice => {
                // The slice entry: the program's run buffer is reused, and only what the last
                // run may have left in it is zeroed.
                let meta = bpfx::XdpMeta {
                    ingress_ifindex: self.args.run.ingress_ifindex(),
                    ..Default::default()
                };
                frame.clear();
                frame.extend_from_slice(data);
                let t = Instant::now();
                let a = prog.run_xdp_with(frame, &meta);
                let ns = t.elapsed().as_nanos() as u64;
                let code = a?.code();
                Ok(Done {
                    code,
                    out: (self.keep && passes(self.ctx, code)).then(|| frame.clone()),
                    redirect: prog.last_redirect(),
                    ns,
                })
            }
            Context::Xdp => {
                // As `Packet::new` makes it, in the last packet's buffer.
                p.refill(data);
                let meta = bpfx::XdpMeta {
                    ingress_ifindex: self.args.run.ingress_ifindex(),
                    ..Default::default()
                };
                let t = Instant::now();
                let o = prog.run_xdp_packet_with(p, &meta);
                let ns = t.elapsed().as_nanos() as u64;
                let o = o?;
                let code = o.action.code();
                Ok(Done {
                    code,
                    out: (self.keep && passes(self.ctx, code)).then(|| p.to_vec()),
                    redirect: o.redirect,
                    ns,
                })
            }
            _ => {
                // A packet buffer with room: the program may grow or shrink the packet, and
                // the output capture gets the final one.
                p.refill(data);
                let meta = r::skb_meta(&self.args.run, data);
                let t = Instant::now();
                let o = prog.run_tc_packet(p, &meta);
                let ns = t.elapsed().as_nanos() as u64;
                let o = o?;
                let code = u64::from(o.action.code() as u32);
                Ok(Done {
                    code,
                    out: (self.keep && passes(self.ctx, code)).then(|| p.to_vec()),
                    redirect: o.redirect,
                    ns,
                })
            }
        }
    }
}

/// The value at quantile `q` of sorted `v` (nearest rank).
fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let ra = &args.run;
    if ra.has_input() {
        return Err(CliError::Usage(
            "replay takes its packets from --pcap, not --mem or --packet".into(),
        ));
    }
    if matches!(ra.ctx(), Some(r::CtxKind::Memory | r::CtxKind::Socket)) {
        return Err(CliError::Usage(
            "replay runs XDP and TC programs (--ctx xdp|tc)".into(),
        ));
    }
    let threads = args.threads;
    let (obj, name) = r::open_with(ra, |vm| {
        vm.cpus(threads)
            .cpu_id(|| WORKER_CPU.with(|c| c.get()))
            .clock(|| WORKER_NOW.with(|c| c.get()))
    })?;
    let ctx = r::context(&obj, &name, ra.ctx());
    if !matches!(ctx, Context::Xdp | Context::Tc) {
        return Err(CliError::Usage(format!(
            "program `{name}` is not an XDP or TC program (its context is {ctx:?}); replay \
             runs XDP and TC programs: give --ctx xdp or --ctx tc"
        )));
    }
    let bytes = crate::load::read(&args.pcap)?;
    let capture = read_capture(&args.pcap, &bytes)?;
    drop(bytes);
    if capture.link != DataLink::ETHERNET {
        return Err(CliError::Capture {
            path: args.pcap.clone(),
            packet: None,
            reason: format!(
                "link type {} ({:?}) is not Ethernet (1): XDP and TC programs see Ethernet \
                 frames",
                u32::from(capture.link),
                capture.link
            ),
        });
    }
    let cut: Vec<u64> = capture
        .packets
        .iter()
        .enumerate()
        .filter(|(_, p)| (p.data.len() as u64) < u64::from(p.orig_len))
        .map(|(i, _)| i as u64 + 1)
        .collect();
    if !cut.is_empty() {
        let list: Vec<String> = cut.iter().take(5).map(u64::to_string).collect();
        eprintln!(
            "warning: {}: {} packet(s) cut short by the capture's snaplen (packet {}{}): they \
             run as captured",
            args.pcap.display(),
            cut.len(),
            list.join(", "),
            if cut.len() > 5 { ", ..." } else { "" }
        );
    }

    r::init_maps(ra, &obj, &name, 0)?;
    let pref = r::program_ref(ra.file(), &obj, &name, ctx, 0)?;
    let prog = r::prepare(ra, r::verify(ra, pref)?)?;

    // Spread the runs: pass p of packet i is run p * n + i, on the worker its flow hashes to.
    let n = capture.packets.len();
    let total = n * args.repeat as usize;
    let worker_of: Vec<usize> = capture
        .packets
        .iter()
        .map(|p| (flow_hash(&p.data) % u64::from(threads)) as usize)
        .collect();
    let mut runs: Vec<Vec<usize>> = vec![Vec::new(); threads as usize];
    for i in 0..total {
        runs[worker_of[i % n]].push(i);
    }
    let progress = (!ra.json() && std::io::stderr().is_terminal() && total as u64 >= PROGRESS_FROM)
        .then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} packets, {eta} left")
            {
                bar.set_style(style);
            }
            bar
        });
    let failed = AtomicUsize::new(usize::MAX);
    let fired = AtomicU64::new(0);
    let clock = Clock::new(&capture);
    let worker = Worker {
        args,
        ctx,
        obj: &obj,
        capture: &capture,
        clock,
        keep: ra.out().is_some(),
        slice: prog.xdp_frame_fixed(),
        fired: &fired,
        failed: &failed,
        progress: progress.as_ref(),
    };
    let started = Instant::now();
    let results: Vec<WorkerResult> = if threads == 1 {
        let mut prog = prog;
        vec![worker.run(&mut prog, &runs[0])]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = runs
                .iter()
                .enumerate()
                .map(|(cpu, mine)| {
                    let mut prog = prog.clone();
                    let worker = &worker;
                    s.spawn(move || {
                        WORKER_CPU.with(|c| c.set(cpu as u32));
                        worker.run(&mut prog, mine)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Box::new((
                            0,
                            CliError::Usage("a replay worker thread panicked".to_string()),
                        )))
                    })
                })
                .collect()
        })
    };
    let elapsed = started.elapsed();
    if let Some(p) = &progress {
        p.finish_and_clear();
    }
    let mut slots: Vec<Option<Done>> = Vec::new();
    slots.resize_with(total, || None);
    let mut first_err: Option<(usize, CliError)> = None;
    for res in results {
        match res {
            Ok(done) => {
                for (i, d) in done {
                    slots[i] = Some(d);
                }
            }
            Err(failed) => {
                let (i, e) = *failed;
                if first_err.as_ref().is_none_or(|(j, _)| i < *j) {
                    first_err = Some((i, e));
                }
            }
        }
    }
    if let Some((i, e)) = first_err {
        let at = CliError::AtPacket {
            packet: (i % n) as u64 + 1,
            source: Box::new(e),
        };
        let mut detail = serde_json::json!({ "engine": ra.engine().name() });
        if args.repeat > 1 {
            detail["pass"] = (i / n + 1).into();
        }
        return Err(at.detailed(detail));
    }
    let done: Vec<Done> = slots.into_iter().flatten().collect();
    // The replay ends at the capture's last time (of the last pass): the timers due by then
    // fire, those armed by the last packets among them.
    let end = clock.end(args.repeat);
    WORKER_NOW.with(|c| c.set(end));
    let timers = worker
        .fire_timers(end)
        .map_err(|e| r::facade_error(ra.file(), e))?;
    let fired = fired.load(Ordering::Relaxed);

    // Counts, in code order.
    let mut verdicts: BTreeMap<i64, (String, u64)> = BTreeMap::new();
    let mut redirects: BTreeMap<String, (serde_json::Value, u64)> = BTreeMap::new();
    let mut passed = 0u64;
    for d in &done {
        let key = if ctx == Context::Tc {
            i64::from(d.code as u32 as i32)
        } else {
            d.code as i64
        };
        verdicts
            .entry(key)
            .or_insert_with(|| (action_name(ctx, d.code), 0))
            .1 += 1;
        if let Some(t) = &d.redirect {
            redirects
                .entry(r::redirect_text(t))
                .or_insert_with(|| (r::redirect_json(t), 0))
                .1 += 1;
        }
        if passes(ctx, d.code) {
            passed += 1;
        }
    }
    if let Some(path) = ra.out() {
        write_capture(path, &capture, &done)?;
    }
    let mut ns: Vec<u64> = done.iter().map(|d| d.ns).collect();
    ns.sort_unstable();
    let (median, p99) = (quantile(&ns, 0.5), quantile(&ns, 0.99));
    let pps = if elapsed.as_secs_f64() > 0.0 {
        done.len() as f64 / elapsed.as_secs_f64()
    } else {
        0.0
    };

    if ra.json() {
        let mut out = serde_json::json!({
            "engine": ra.engine().name(),
            "context": if ctx == Context::Xdp { "xdp" } else { "tc" },
            "threads": threads,
            "repeat": args.repeat,
            "packets": n,
            "runs": done.len(),
            "truncated": cut.len(),
            "passed": passed,
            "dropped": done.len() as u64 - passed,
            "verdicts": verdicts.iter().map(|(code, (name, count))| serde_json::json!({
                "action": name, "code": code, "count": count,
            })).collect::<Vec<_>>(),
            "redirects": redirects.values().map(|(target, count)| serde_json::json!({
                "target": target, "count": count,
            })).collect::<Vec<_>>(),
            "timers": { "fired": fired, "pending": timers.pending },
            "elapsed_ns": elapsed.as_nanos() as u64,
            "packets_per_second": pps,
            "ns_per_packet_median": median,
            "ns_per_packet_p99": p99,
            "maps": crate::dump::maps_json(&obj),
        });
        if !ra.hist().is_empty() {
            out["hist"] = crate::maps_init::hists(&obj, ra.hist())?.1.into();
        }
        if let Some(path) = ra.out() {
            out["out"] = path.display().to_string().into();
        }
        crate::cmd::write_line(crate::error::json_ok(out))?;
    } else {
        let mut s = format!(
            "{} packets x {} pass(es) = {} runs on {} ({} thread(s)); {} passed, {} dropped\n",
            n,
            args.repeat,
            done.len(),
            ra.engine().name(),
            threads,
            passed,
            done.len() as u64 - passed
        );
        if !cut.is_empty() {
            s.push_str(&format!("cut short by the snaplen: {}\n", cut.len()));
        }
        for (code, (name, count)) in &verdicts {
            s.push_str(&format!("{name} ({code}): {count}\n"));
        }
        for (text, (_, count)) in &redirects {
            s.push_str(&format!("redirect {text}: {count}\n"));
        }
        if fired > 0 || timers.pending > 0 {
            s.push_str(&format!(
                "timers: {fired} fired, {} pending\n",
                timers.pending
            ));
        }
        s.push_str(&format!(
            "{:.0} packets/s; per packet: median {} ns, p99 {} ns\n",
            pps, median, p99
        ));
        if let Some(path) = ra.out() {
            s.push_str(&format!("wrote {passed} packets to {}\n", path.display()));
        }
        s.push_str(&crate::dump::maps_text(&obj));
        s.push_str(&crate::maps_init::hists(&obj, ra.hist())?.0);
        crate::cmd::write_stdout(&s)?;
    }
    Ok(())
}

/// Writes the packets that passed, in run order, as a pcap with the input's link type and
/// timestamps: each packet's bytes as the program left them, its length on the wire grown or
/// shrunk by as much as the program changed it.
fn write_capture(path: &Path, capture: &Capture, done: &[Done]) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let pcap_err = |e: pcap_file::PcapError| match e {
        pcap_file::PcapError::IoError(e) => io(e),
        other => io(std::io::Error::other(other.to_string())),
    };
    let n = capture.packets.len();
    let longest = done
        .iter()
        .filter_map(|d| d.out.as_ref().map(Vec::len))
        .max()
        .unwrap_or(0);
    let header = PcapHeader {
        datalink: capture.link,
        snaplen: capture
            .snaplen
            .max(u32::try_from(longest).unwrap_or(u32::MAX)),
        ts_resolution: if capture.nanos {
            pcap_file::TsResolution::NanoSecond
        } else {
            pcap_file::TsResolution::MicroSecond
        },
        ..PcapHeader::default()
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = PcapWriter::with_header(std::io::BufWriter::new(file), header).map_err(pcap_err)?;
    for (i, d) in done.iter().enumerate() {
        let Some(bytes) = &d.out else { continue };
        let input = &capture.packets[i % n];
        let grown = bytes.len() as i64 - input.data.len() as i64;
        let orig = (i64::from(input.orig_len) + grown).max(bytes.len() as i64);
        let packet = PcapPacket {
            timestamp: input.ts,
            orig_len: u32::try_from(orig).unwrap_or(u32::MAX),
            data: bytes.as_slice().into(),
        };
        w.write_packet(&packet).map_err(pcap_err)?;
    }
    let mut inner = w.into_writer();
    std::io::Write::flush(&mut inner).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_timestamps_follow_the_resolution() {
        assert_eq!(pcapng_ns(1_500_000, 6), Some(1_500_000_000));
        assert_eq!(pcapng_ns(7, 9), Some(7));
        assert_eq!(pcapng_ns(12_000, 12), Some(12));
        assert_eq!(pcapng_ns(1 << 10, 0x80 | 10), Some(1_000_000_000));
    }

    #[test]
    fn flow_hash_keeps_a_flow_together_and_splits_flows() {
        let mut a = vec![0u8; 12];
        a.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip.extend_from_slice(&[0x30, 0x39, 0, 80]);
        a.extend_from_slice(&ip);
        let mut b = a.clone();
        b.push(0xff); // Same flow, other payload.
        assert_eq!(flow_hash(&a), flow_hash(&b));
        let mut c = a.clone();
        c[14 + 20 + 3] = 81; // Another destination port.
        assert_ne!(flow_hash(&a), flow_hash(&c));
        // A fragment hashes on the 3-tuple: its ports are not looked at.
        let mut f = a.clone();
        f[14 + 6] = 0x20;
        let mut g = f.clone();
        g[14 + 20 + 3] = 81;
        assert_eq!(flow_hash(&f), flow_hash(&g));
    }

    #[test]
    fn verdicts_that_pass() {
        assert!(passes(Context::Xdp, 2) && passes(Context::Xdp, 3) && passes(Context::Xdp, 4));
        assert!(!passes(Context::Xdp, 0) && !passes(Context::Xdp, 1) && !passes(Context::Xdp, 9));
        assert!(passes(Context::Tc, 0) && passes(Context::Tc, u64::from(u32::MAX)));
        assert!(!passes(Context::Tc, 2) && !passes(Context::Tc, 4) && passes(Context::Tc, 7));
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
