//! `bpfx replay`: a capture of mixed traffic (IPv4 and IPv6; TCP, UDP and ICMP; VLAN tags;
//! IPv4 fragments; ARP; runts; a frame cut short by the snaplen), written here with the
//! `pcap-file` crate as pcap and as pcapng, replayed through the XDP filter
//! `examples/xdp_parse.o`, the TC classifier and the XDP decapsulator of the runtime's
//! fixtures on both engines: the verdict counts and maps equal what this file computes from
//! the programs' C source, the output captures are byte-identical on both engines and hold
//! what the programs left, one and two threads agree, and bad captures are refused naming
//! the packet.

// Each test file uses part of what the CLI tests share.
#[allow(dead_code)]
mod common;

use bpfx_rng::Rng;
use common::{bpfx, stderr};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgWriter};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const ENGINES: [&str; 2] = ["interp", "jit"];
const XDP_PARSE: &str = "examples/xdp_parse.o";
const TC_CLASSIFY: &str = "crates/runtime/tests/objects/tc_classify.o";
const XDP_DECAP: &str = "crates/runtime/tests/objects/xdp_decap.o";

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("bpfx-cli-replay-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---- The traffic -------------------------------------------------------------------------

const SNAPLEN: u32 = 128;

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn vlan(vid: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00];
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(proto: u8, src: [u8; 4], frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&(20 + payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[0, 9]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&[10, 0, 0, 2]);
    h.extend_from_slice(payload);
    h
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&[0xfd; 16]);
    h.extend_from_slice(&[0xfe; 16]);
    h.extend_from_slice(payload);
    h
}

fn tcp(sport: u16, dport: u16, flags: u8, payload: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    h.extend(std::iter::repeat_n(0x61, payload));
    h
}

fn udp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&(8 + payload as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend(std::iter::repeat_n(0x62, payload));
    h
}

/// One frame on the wire.
fn frame(rng: &mut Rng) -> Vec<u8> {
    let ports = [22u16, 23, 53, 80, 443, 8080];
    let port = ports[rng.below(ports.len() as u64) as usize];
    let sport = 1024 + rng.below(60000) as u16;
    let src = [10, 1, rng.below(4) as u8, rng.below(250) as u8 + 1];
    let flags = [0x02u8, 0x12, 0x10, 0x18, 0x11][rng.below(5) as usize];
    let pay = rng.below(80) as usize;
    match rng.below(13) {
        0..=3 => eth(0x0800, &ipv4(6, src, 0x4000, &tcp(sport, port, flags, pay))),
        4 => eth(0x0800, &ipv4(17, src, 0, &udp(sport, port, pay))),
        5 => eth(
            0x0800,
            &ipv4(1, src, 0, &[8, 0, 0, 0, 0, 1, 0, 1, 0x70, 0x69]),
        ),
        6 => eth(0x86dd, &ipv6(6, &tcp(sport, port, flags, pay))),
        7 => eth(0x86dd, &ipv6(17, &udp(sport, port, pay))),
        8 => vlan(7, 0x0800, &ipv4(6, src, 0, &tcp(sport, port, flags, pay))),
        // The fragments of one TCP segment: the first with the header, the second at offset
        // 3 * 8 bytes (its bytes are payload, read as a header by a parser that does not look
        // at the offset, as xdp_parse does not).
        9 => eth(0x0800, &ipv4(6, src, 0x2000, &tcp(sport, port, flags, 4))),
        10 => eth(
            0x0800,
            &ipv4(
                6,
                src,
                3,
                &[
                    0, 23, 0, 23, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 2, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4,
                ],
            ),
        ),
        11 => eth(0x0806, &[0; 28]),
        // A runt: shorter than an Ethernet header.
        _ => vec![0xaa; 1 + rng.below(13) as usize],
    }
}

/// A capture record: the time, the length on the wire, the bytes kept (at most the snaplen).
#[derive(Clone, Debug, PartialEq)]
struct Rec {
    ts: Duration,
    orig_len: u32,
    data: Vec<u8>,
}

/// The mixed traffic, with a long frame cut short by the snaplen every 17 packets.
fn traffic(count: usize) -> Vec<Rec> {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|i| {
            let mut f = frame(&mut rng);
            if i % 17 == 16 {
                f = eth(
                    0x0800,
                    &ipv4(6, [10, 9, 9, 9], 0, &tcp(5000, 80, 0x02, 300)),
                );
            }
            // The destination MAC's last byte: the port xdp_redirect picks.
            if f.len() >= 6 {
                f[5] = i as u8;
            }
            let kept = f.len().min(SNAPLEN as usize);
            Rec {
                ts: Duration::new(
                    1_700_000_000 + i as u64 / 4,
                    (i as u32 % 4) * 250_000_000 + i as u32 * 1000,
                ),
                orig_len: f.len() as u32,
                data: f[..kept].to_vec(),
            }
        })
        .collect()
}

fn write_pcap(path: &Path, recs: &[Rec], link: DataLink) {
    let header = PcapHeader {
        datalink: link,
        snaplen: SNAPLEN,
        ts_resolution: pcap_file::TsResolution::MicroSecond,
        endianness: pcap_file::Endianness::Little,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for r in recs {
        w.write_packet(&PcapPacket::new(r.ts, r.orig_len, &r.data))
            .unwrap();
    }
}

fn write_pcapng(path: &Path, recs: &[Rec]) {
    write_pcapng_snaplen(path, recs, SNAPLEN);
}

/// [`write_pcapng`] with the interface's snaplen given.
fn write_pcapng_snaplen(path: &Path, recs: &[Rec], snaplen: u32) {
    let mut w = PcapNgWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    w.write_block(&Block::InterfaceDescription(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen,
        // Nanosecond units: the writer stores the Duration's nanoseconds as they are.
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    }))
    .unwrap();
    for r in recs {
        w.write_block(&Block::EnhancedPacket(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: r.ts,
            original_len: r.orig_len,
            data: r.data.as_slice().into(),
            options: vec![],
        }))
        .unwrap();
    }
}

/// Reads a pcap's raw records (the crate's checked reader refuses packets longer on the wire
/// than the snaplen, which a cut packet is).
fn read_pcap(path: &Path) -> (PcapHeader, Vec<Rec>) {
    let bytes = std::fs::read(path).unwrap();
    let mut r = PcapReader::new(&bytes[..]).unwrap();
    let header = r.header();
    let unit = match header.ts_resolution {
        pcap_file::TsResolution::MicroSecond => 1000,
        pcap_file::TsResolution::NanoSecond => 1,
    };
    let mut recs = Vec::new();
    while let Some(p) = r.next_raw_packet() {
        let p = p.unwrap();
        assert_eq!(p.incl_len as usize, p.data.len());
        assert!(p.incl_len <= header.snaplen);
        recs.push(Rec {
            ts: Duration::new(u64::from(p.ts_sec), p.ts_frac * unit),
            orig_len: p.orig_len,
            data: p.data.into_owned(),
        });
    }
    (header, recs)
}

// ---- What the programs do, from their C source -------------------------------------------

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

/// examples/xdp_parse.c: the verdict code and the `stats` counters it bumps.
fn xdp_parse(f: &[u8], stats: &mut [u64; 4]) -> u64 {
    const ABORTED: u64 = 0;
    const DROP: u64 = 1;
    const PASS: u64 = 2;
    if f.len() < 14 {
        return ABORTED;
    }
    if be16(f, 12) != 0x0800 {
        stats[0] += 1;
        return PASS;
    }
    if f.len() < 34 {
        return ABORTED;
    }
    if f[14 + 9] != 6 {
        stats[1] += 1;
        return PASS;
    }
    let tcp = 14 + usize::from(f[14] & 0x0f) * 4;
    if tcp + 20 > f.len() {
        return ABORTED;
    }
    stats[2] += 1;
    let flags = f[tcp + 13];
    if flags & 0x02 != 0 && flags & 0x10 == 0 {
        stats[3] += 1;
    }
    if be16(f, tcp + 2) == 23 { DROP } else { PASS }
}

/// crates/runtime/tests/objects/tc_classify.c: the verdict code (skb->protocol is the
/// frame's EtherType, as `bpfx run` sets it).
fn tc_classify(f: &[u8]) -> u64 {
    const OK: u64 = 0;
    const SHOT: u64 = 2;
    let proto = if f.len() >= 14 { be16(f, 12) } else { 0 };
    if proto != 0x0800 {
        return OK;
    }
    if f.len() < 34 || f[14 + 9] != 6 {
        return SHOT;
    }
    let tcp = 14 + usize::from(f[14] & 0x0f) * 4;
    if tcp + 20 > f.len() || be16(f, tcp + 2) == 23 {
        return SHOT;
    }
    OK
}

/// Verdict counts as `replay --json` lists them: (action code, count), in code order.
fn counts(codes: impl Iterator<Item = u64>) -> Vec<(i64, u64)> {
    let mut m = std::collections::BTreeMap::new();
    for c in codes {
        *m.entry(c as i64).or_insert(0u64) += 1;
    }
    m.into_iter().collect()
}

fn verdicts(v: &Value) -> Vec<(i64, u64)> {
    v["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["code"].as_i64().unwrap(), e["count"].as_u64().unwrap()))
        .collect()
}

fn stats_map(v: &Value) -> Vec<u64> {
    let maps = v["maps"].as_array().unwrap();
    let stats = maps.iter().find(|m| m["name"] == "stats").unwrap();
    stats["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_u64().unwrap())
        .collect()
}

/// [`replay`] on `engine` with `threads` workers, the packets that pass written to `out`.
fn replay_to(prog: &str, pcap: &Path, engine: &str, threads: &str, out: &Path) -> Value {
    replay(
        prog,
        pcap,
        &[
            "--engine",
            engine,
            "--threads",
            threads,
            "--out",
            path_str(out),
        ],
    )
}

fn replay(prog: &str, pcap: &Path, extra: &[&str]) -> Value {
    let mut a = vec!["replay", prog, "--pcap", path_str(pcap), "--json"];
    a.extend_from_slice(extra);
    let o = bpfx(&a);
    assert!(o.status.success(), "{a:?}: {}", stderr(&o));
    json(&o)
}

// ---- Tests -------------------------------------------------------------------------------

#[test]
fn xdp_filter_verdicts_maps_and_output_on_both_engines() {
    let d = dir();
    let recs = traffic(300);
    let cut = recs
        .iter()
        .filter(|r| r.data.len() < r.orig_len as usize)
        .count();
    assert!(cut > 0);
    let mut stats = [0u64; 4];
    let codes: Vec<u64> = recs
        .iter()
        .map(|r| xdp_parse(&r.data, &mut stats))
        .collect();
    let expected = counts(codes.iter().copied());
    // The traffic exercises every verdict of the filter.
    assert_eq!(expected.len(), 3, "{expected:?}");
    let passed: Vec<&Rec> = recs
        .iter()
        .zip(&codes)
        .filter(|(_, c)| **c == 2)
        .map(|(r, _)| r)
        .collect();

    let pcap = d.join("xdp.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    let pcapng = d.join("xdp.pcapng");
    write_pcapng(&pcapng, &recs);
    let mut outputs = Vec::new();
    for engine in ENGINES {
        for (input, threads) in [(&pcap, "1"), (&pcapng, "1"), (&pcap, "2")] {
            let out = d.join(format!("xdp-{engine}-{threads}-{}.pcap", outputs.len()));
            let v = replay_to(XDP_PARSE, input, engine, threads, &out);
            let what = format!("{engine} {} threads {threads}", input.display());
            assert_eq!(verdicts(&v), expected, "{what}");
            assert_eq!(stats_map(&v), stats.to_vec(), "{what}");
            assert_eq!(v["packets"], 300, "{what}");
            assert_eq!(v["truncated"].as_u64().unwrap() as usize, cut, "{what}");
            assert_eq!(
                v["passed"].as_u64().unwrap() as usize,
                passed.len(),
                "{what}"
            );
            assert_eq!(v["schema"], 1);
            assert!(
                v["ns_per_packet_median"].as_u64().unwrap()
                    <= v["ns_per_packet_p99"].as_u64().unwrap()
            );
            // xdp_parse changes no byte: the output holds the packets that passed, as they
            // came, with their timestamps and lengths, in input order.
            let (header, got) = read_pcap(&out);
            assert_eq!(header.datalink, DataLink::ETHERNET);
            assert_eq!(got.len(), passed.len(), "{what}");
            for (g, p) in got.iter().zip(&passed) {
                assert_eq!(g, *p, "{what}");
            }
            outputs.push(std::fs::read(&out).unwrap());
        }
    }
    // Byte-identical captures: one thread or two, pcap or pcapng input, interpreter or JIT
    // (pcapng input gives nanosecond timestamps, so compare those within their kind).
    for (i, o) in outputs.iter().enumerate() {
        let twin = if i % 3 == 1 { &outputs[1] } else { &outputs[0] };
        assert!(o == twin, "output {i} differs");
    }
}

#[test]
fn jit_option_sets_give_the_interpreters_output() {
    let d = dir();
    let recs = traffic(120);
    let pcap = d.join("opts.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    let run = |name: &str, opts: &[&str]| {
        let out = d.join(format!("opts-{name}.pcap"));
        let mut a = vec!["--threads", "2", "--out", path_str(&out)];
        a.extend_from_slice(opts);
        let v = replay(TC_CLASSIFY, &pcap, &a);
        (verdicts(&v), std::fs::read(&out).unwrap())
    };
    let reference = run("interp", &["--engine", "interp"]);
    for (name, opts) in [
        ("jit", &["--engine", "jit"][..]),
        ("hardened", &["--engine", "jit", "--hardened"][..]),
        ("dual", &["--engine", "jit", "--code-memory", "dual"][..]),
        ("strict", &["--engine", "jit", "--strict"][..]),
    ] {
        assert!(run(name, opts) == reference, "{name}");
    }
}

#[test]
fn redirects_are_counted_by_target_and_written_as_rewritten() {
    let d = dir();
    let recs = traffic(150);
    // crates/cli/tests/objects/xdp_redirect.c: the destination MAC's last byte picks the port.
    let mut expected_codes = Vec::new();
    let mut targets = std::collections::BTreeMap::new();
    let mut expected_out = Vec::new();
    for r in &recs {
        if r.data.len() < 6 {
            expected_codes.push(1);
            continue;
        }
        let port = r.data[5] & 3;
        let mut out = r.clone();
        if port == 0 {
            expected_codes.push(2);
        } else {
            expected_codes.push(4);
            *targets.entry(10 + u64::from(port)).or_insert(0u64) += 1;
            out.data[5] = 0xee;
        }
        expected_out.push(out);
    }
    let pcap = d.join("redirect.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    for engine in ENGINES {
        let out = d.join(format!("redirect-{engine}.pcap"));
        let v = replay_to(
            "crates/cli/tests/objects/xdp_redirect.o",
            &pcap,
            engine,
            "2",
            &out,
        );
        assert_eq!(
            verdicts(&v),
            counts(expected_codes.iter().copied()),
            "{engine}"
        );
        let got: std::collections::BTreeMap<u64, u64> = v["redirects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["target"]["kind"], "ifindex");
                assert_eq!(e["target"]["ingress"], false);
                (
                    e["target"]["ifindex"].as_u64().unwrap(),
                    e["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got, targets, "{engine}");
        assert_eq!(read_pcap(&out).1, expected_out, "{engine}");
    }
}

#[test]
fn repeat_runs_every_packet_again_on_the_same_maps() {
    let d = dir();
    let recs = traffic(40);
    let mut stats = [0u64; 4];
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.extend(recs.iter().map(|r| xdp_parse(&r.data, &mut stats)));
    }
    let pcap = d.join("repeat.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    for engine in ENGINES {
        let v = replay(XDP_PARSE, &pcap, &["--engine", engine, "--repeat", "3"]);
        assert_eq!(v["runs"], 120);
        assert_eq!(verdicts(&v), counts(codes.iter().copied()), "{engine}");
        assert_eq!(stats_map(&v), stats.to_vec(), "{engine}");
    }
}

#[test]
fn tc_classifier_verdicts_and_output_on_both_engines() {
    let d = dir();
    let recs = traffic(200);
    let codes: Vec<u64> = recs.iter().map(|r| tc_classify(&r.data)).collect();
    let expected = counts(codes.iter().copied());
    assert_eq!(expected.len(), 2, "{expected:?}");
    let pcap = d.join("tc.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    let mut outputs = Vec::new();
    for engine in ENGINES {
        for threads in ["1", "2"] {
            let out = d.join(format!("tc-{engine}-{threads}.pcap"));
            let v = replay_to(TC_CLASSIFY, &pcap, engine, threads, &out);
            assert_eq!(v["context"], "tc");
            assert_eq!(verdicts(&v), expected, "{engine} {threads}");
            let (_, got) = read_pcap(&out);
            let passed: Vec<&Rec> = recs
                .iter()
                .zip(&codes)
                .filter(|(_, c)| **c == 0)
                .map(|(r, _)| r)
                .collect();
            assert_eq!(got.len(), passed.len());
            outputs.push(std::fs::read(&out).unwrap());
        }
    }
    assert!(outputs.iter().all(|o| *o == outputs[0]));
}

#[test]
fn xdp_decapsulation_writes_the_frames_it_rewrote() {
    let d = dir();
    let inner4 = ipv4(17, [192, 168, 0, 1], 0, &udp(1000, 2000, 6));
    let inner6 = ipv6(17, &udp(1000, 2000, 3));
    let recs: Vec<Rec> = [
        eth(0x0800, &ipv4(4, [10, 0, 0, 1], 0, &inner4)),
        eth(0x0800, &ipv4(17, [10, 0, 0, 1], 0, &udp(1, 2, 5))),
        eth(0x0800, &ipv4(41, [10, 0, 0, 1], 0, &inner6)),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, f)| Rec {
        ts: Duration::new(100 + i as u64, 5000),
        orig_len: f.len() as u32,
        data: f,
    })
    .collect();
    let pcap = d.join("decap.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    let mut outputs = Vec::new();
    for engine in ENGINES {
        let out = d.join(format!("decap-{engine}.pcap"));
        let v = replay(
            XDP_DECAP,
            &pcap,
            &["--engine", engine, "--out", path_str(&out)],
        );
        assert_eq!(verdicts(&v), vec![(2, 3)], "{engine}");
        let (_, got) = read_pcap(&out);
        assert_eq!(got.len(), 3);
        // The outer header is gone and the EtherType says what the frame now carries.
        assert_eq!(got[0].data, eth(0x0800, &inner4));
        assert_eq!(got[0].orig_len, recs[0].orig_len - 20);
        assert_eq!(got[1], recs[1]);
        assert_eq!(got[2].data, eth(0x86dd, &inner6));
        assert_eq!(got[2].ts, recs[2].ts);
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn text_output_names_verdicts_rate_and_maps() {
    let d = dir();
    let pcap = d.join("text.pcap");
    let recs = traffic(30);
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    let cut: Vec<String> = (1..=30)
        .filter(|&n| recs[n - 1].data.len() < recs[n - 1].orig_len as usize)
        .map(|n| n.to_string())
        .collect();
    assert!(cut.len() > 1 && cut.len() <= 5, "{cut:?}");
    let o = bpfx(&["replay", XDP_PARSE, "--pcap", path_str(&pcap)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("XDP_PASS (2): "), "{text}");
    assert!(text.contains("packets/s; per packet: median "), "{text}");
    assert!(text.contains("map stats (array"), "{text}");
    // The packets cut short by the snaplen: a warning names them.
    let warning = format!(
        "{} packet(s) cut short by the capture's snaplen (packet {}): they run as captured",
        cut.len(),
        cut.join(", ")
    );
    assert!(stderr(&o).contains(&warning), "{}", stderr(&o));
    // No progress bar when stderr is not a terminal.
    assert!(!stderr(&o).contains("packets/s"));
}

#[test]
fn the_shipped_example_capture_replays() {
    for engine in ENGINES {
        let v = replay(
            XDP_PARSE,
            Path::new("examples/mixed.pcap"),
            &["--engine", engine],
        );
        assert_eq!(v["packets"], 19);
        assert_eq!(v["truncated"], 1);
        assert_eq!(verdicts(&v), vec![(1, 1), (2, 18)]);
    }
}

fn fails(args: &[&str]) -> (Value, String) {
    let mut a = args.to_vec();
    a.push("--json");
    let o = bpfx(&a);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    (json(&o), stderr(&o))
}

#[test]
fn a_truncated_capture_names_the_packet() {
    let d = dir();
    let pcap = d.join("whole.pcap");
    write_pcap(&pcap, &traffic(10), DataLink::ETHERNET);
    let mut bytes = std::fs::read(&pcap).unwrap();
    bytes.truncate(bytes.len() - 3);
    let cut = d.join("cut.pcap");
    std::fs::write(&cut, &bytes).unwrap();
    let (v, err) = fails(&["replay", XDP_PARSE, "--pcap", path_str(&cut)]);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "capture");
    assert_eq!(v["error"]["packet"], 10);
    assert!(
        err.contains("packet 10: the capture ends inside this packet's record (truncated file)"),
        "{err}"
    );

    // The same, cut inside the 7th record's header, as pcapng.
    let ng = d.join("whole.pcapng");
    write_pcapng(&ng, &traffic(10));
    let bytes = std::fs::read(&ng).unwrap();
    let cutng = d.join("cut.pcapng");
    std::fs::write(&cutng, &bytes[..bytes.len() - 1]).unwrap();
    let (v, err) = fails(&["replay", XDP_PARSE, "--pcap", path_str(&cutng)]);
    assert_eq!(v["error"]["packet"], 10, "{err}");
}

#[test]
fn another_link_type_is_refused() {
    let d = dir();
    let pcap = d.join("raw.pcap");
    write_pcap(&pcap, &traffic(3), DataLink::LINUX_SLL);
    let (v, err) = fails(&["replay", XDP_PARSE, "--pcap", path_str(&pcap)]);
    assert_eq!(v["error"]["kind"], "capture");
    assert!(
        err.contains("link type 113 (LINUX_SLL) is not Ethernet (1)"),
        "{err}"
    );
}

#[test]
fn a_pcapng_capture_on_two_link_types_is_refused() {
    let d = dir();
    let path = d.join("two-links.pcapng");
    let mut w = PcapNgWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for linktype in [DataLink::ETHERNET, DataLink::LINUX_SLL] {
        w.write_block(&Block::InterfaceDescription(InterfaceDescriptionBlock {
            linktype,
            snaplen: 0,
            options: vec![],
        }))
        .unwrap();
    }
    drop(w);
    let (v, err) = fails(&["replay", XDP_PARSE, "--pcap", path_str(&path)]);
    assert_eq!(v["error"]["kind"], "capture");
    assert!(
        err.contains("interfaces of link types ETHERNET and LINUX_SLL"),
        "{err}"
    );
}

#[test]
fn malformed_records_and_files_are_refused() {
    let d = dir();
    // Packet 2 claims more bytes captured than it had on the wire.
    let pcap = d.join("bad.pcap");
    write_pcap(&pcap, &traffic(3), DataLink::ETHERNET);
    let mut bytes = std::fs::read(&pcap).unwrap();
    let first = 24 + 16 + u32::from_le_bytes(bytes[24 + 8..24 + 12].try_into().unwrap()) as usize;
    let orig = first + 12;
    bytes[orig..orig + 4].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&pcap, &bytes).unwrap();
    let (v, err) = fails(&["replay", XDP_PARSE, "--pcap", path_str(&pcap)]);
    assert_eq!(v["error"]["packet"], 2);
    assert!(
        err.contains("packet 2: ") && err.contains("of a 1-byte packet"),
        "{err}"
    );

    let junk = d.join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture at all").unwrap();
    let (v, err) = fails(&["replay", XDP_PARSE, "--pcap", path_str(&junk)]);
    assert_eq!(v["error"]["kind"], "capture");
    assert!(err.contains("not a pcap or pcapng capture"), "{err}");
}

#[test]
fn a_trap_names_the_first_packet_it_stops_at() {
    let d = dir();
    // xdp_parse runs 23 instructions on ARP and 49 on a TCP segment: a budget of 35 per
    // packet passes the ARP frames and stops at the first TCP one, packet 4 of every pass.
    let arp = eth(0x0806, &[0; 28]);
    let syn = eth(0x0800, &ipv4(6, [10, 0, 0, 1], 0, &tcp(1000, 80, 0x02, 0)));
    let recs: Vec<Rec> = [&arp, &arp, &arp, &syn, &arp, &syn]
        .iter()
        .map(|f| Rec {
            ts: Duration::ZERO,
            orig_len: f.len() as u32,
            data: f.to_vec(),
        })
        .collect();
    let pcap = d.join("trap.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    for engine in ENGINES {
        for threads in ["1", "2", "3"] {
            let (v, err) = fails(&[
                "replay",
                XDP_PARSE,
                "--pcap",
                path_str(&pcap),
                "--budget",
                "35",
                "--engine",
                engine,
                "--threads",
                threads,
            ]);
            assert_eq!(v["error"]["kind"], "trap", "{err}");
            assert_eq!(v["error"]["packet"], 4, "{engine} {threads}: {err}");
            assert_eq!(v["engine"], engine);
            assert!(err.contains("packet 4: trap at insn #"), "{err}");
            assert!(err.contains("instruction budget exhausted"), "{err}");
        }
    }
}

/// Little-endian u64s from a dumped value's hex string.
fn words(hex: &Value) -> Vec<u64> {
    let hex = hex.as_str().unwrap();
    (0..hex.len() / 16)
        .map(|i| {
            let b: Vec<u8> = (0..8)
                .map(|j| u8::from_str_radix(&hex[i * 16 + j * 2..i * 16 + j * 2 + 2], 16).unwrap())
                .collect();
            u64::from_le_bytes(b.try_into().unwrap())
        })
        .collect()
}

/// (per class, per CPU slot: packets) and the `by_cpu` counts of examples/percpu_count.o.
fn percpu_counts(v: &Value) -> (Vec<Vec<u64>>, Vec<u64>) {
    let maps = v["maps"].as_array().unwrap();
    let counts = maps.iter().find(|m| m["name"] == "counts").unwrap();
    let per_class = counts["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|slot| words(slot)[0])
                .collect()
        })
        .collect();
    let bss = maps.iter().find(|m| m["name"] == ".bss").unwrap();
    let by_cpu = words(&bss["entries"][0]["value"])[..64].to_vec();
    (per_class, by_cpu)
}

#[test]
fn threads_get_their_own_cpu_slots_and_the_split_is_deterministic() {
    let d = dir();
    let recs = traffic(200);
    let pcap = d.join("percpu.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    // examples/percpu_count.c's classes: IPv4, ARP, other, shorter than Ethernet.
    let mut classes = [0u64; 4];
    for r in &recs {
        let class = match r.data.get(12..14) {
            None => 3,
            Some([0x08, 0x00]) => 0,
            Some([0x08, 0x06]) => 1,
            Some(_) => 2,
        };
        classes[class] += 1;
    }
    let mut splits = Vec::new();
    for engine in ENGINES {
        for threads in [1usize, 3] {
            let v = replay(
                "examples/percpu_count.o",
                &pcap,
                &["--engine", engine, "--threads", &threads.to_string()],
            );
            let (per_class, by_cpu) = percpu_counts(&v);
            let what = format!("{engine} {threads}");
            // Per-CPU maps have one slot per worker; each class's slots add up to its count.
            for (class, slots) in per_class.iter().enumerate() {
                assert_eq!(slots.len(), threads, "{what}");
                assert_eq!(slots.iter().sum::<u64>(), classes[class], "{what}");
            }
            // bpf_get_smp_processor_id() is the worker's slot: what each CPU counted in
            // `by_cpu` is what its per-CPU slots hold, and no CPU past the workers ran.
            for (cpu, n) in by_cpu.iter().enumerate() {
                let slots: u64 = per_class
                    .iter()
                    .map(|s| s.get(cpu).copied().unwrap_or(0))
                    .sum();
                assert_eq!(*n, slots, "{what} cpu {cpu}");
            }
            assert_eq!(by_cpu.iter().sum::<u64>(), 200, "{what}");
            if threads == 3 {
                assert!(by_cpu[..3].iter().all(|&n| n > 0), "{what}: {by_cpu:?}");
                splits.push(by_cpu);
            }
        }
    }
    // The same packets go to the same workers on every engine and run.
    assert_eq!(splits[0], splits[1]);
}

/// The `n` numbers CPU `cpu`'s `get_prandom_u32` stream gives for `seed` (splitmix64; CPU 0
/// starts from the seed, CPU k from splitmix64's mix of the seed and k), as
/// crates/runtime/src/helpers.rs draws them.
fn prandom_stream(seed: u64, cpu: u64, n: u64) -> Vec<u64> {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let mut state = if cpu == 0 {
        seed
    } else {
        mix(seed ^ cpu.wrapping_mul(0xd1b5_4a32_d192_ed03))
    };
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            u64::from(mix(state) as u32)
        })
        .collect()
}

#[test]
fn a_seeded_replay_on_several_threads_is_reproducible() {
    let d = dir();
    let recs = traffic(200);
    let pcap = d.join("random.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    // crates/cli/tests/objects/xdp_random_drop.c drops a frame when its random number is odd
    // and sums the numbers (entry 0) and counts them (entry 1) per CPU in `drawn`.
    let mut runs = Vec::new();
    for engine in ENGINES {
        for attempt in 0..2 {
            let out = d.join(format!("random-{engine}-{attempt}.pcap"));
            let v = replay(
                "crates/cli/tests/objects/xdp_random_drop.o",
                &pcap,
                &[
                    "--engine",
                    engine,
                    "--threads",
                    "2",
                    "--seed",
                    "7",
                    "--out",
                    path_str(&out),
                ],
            );
            let what = format!("{engine} run {attempt}");
            let maps = v["maps"].as_array().unwrap();
            let drawn = &maps.iter().find(|m| m["name"] == "drawn").unwrap()["entries"];
            let slots = |entry: usize| -> Vec<u64> {
                drawn[entry]["value"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|slot| slot.as_u64().unwrap())
                    .collect()
            };
            let (sums, draws) = (slots(0), slots(1));
            assert_eq!(draws.len(), 2, "{what}");
            assert_eq!(draws.iter().sum::<u64>(), 200, "{what}");
            // Each worker drew from its own CPU's stream, in the order of its packets.
            let mut dropped = 0;
            for cpu in 0..2 {
                let stream = prandom_stream(7, cpu as u64, draws[cpu]);
                assert!(draws[cpu] > 0, "{what}: {draws:?}");
                assert_eq!(sums[cpu], stream.iter().sum::<u64>(), "{what} cpu {cpu}");
                dropped += stream.iter().filter(|r| *r & 1 == 1).count() as u64;
            }
            assert_eq!(
                verdicts(&v),
                vec![(1, dropped), (2, 200 - dropped)],
                "{what}"
            );
            runs.push((verdicts(&v), sums, std::fs::read(&out).unwrap()));
        }
    }
    // Every run, on either engine, gives the same verdicts, maps and output capture.
    for (i, r) in runs.iter().enumerate() {
        assert!(*r == runs[0], "run {i} differs");
    }
    // The two CPUs' streams differ.
    assert_ne!(prandom_stream(7, 0, 8), prandom_stream(7, 1, 8));
}

#[test]
fn usage_errors() {
    let d = dir();
    let pcap = d.join("u.pcap");
    write_pcap(&pcap, &traffic(2), DataLink::ETHERNET);
    let o = bpfx(&[
        "replay",
        "examples/counter.o",
        "--pcap",
        path_str(&pcap),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(json(&o)["error"]["kind"], "usage");
    let o = bpfx(&[
        "replay",
        XDP_PARSE,
        "--pcap",
        path_str(&pcap),
        "--packet",
        "examples/arp.bin",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = bpfx(&[
        "replay",
        XDP_PARSE,
        "--pcap",
        path_str(&pcap),
        "--threads",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_tc_encapsulation_writes_the_grown_frames() {
    // crates/runtime/tests/objects/tc_ipip.c: IPv4 frames get an outer IPv4 header (20 bytes
    // after the Ethernet header, protocol 4); others pass unchanged.
    let d = dir();
    let frames = [
        eth(0x0800, &ipv4(17, [10, 0, 0, 1], 0, &udp(1, 2, 5))),
        eth(0x0806, &[0; 28]),
        eth(0x0800, &ipv4(6, [10, 0, 0, 2], 0, &tcp(5, 80, 0x02, 10))),
    ];
    let recs: Vec<Rec> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| Rec {
            ts: Duration::new(1_700_000_000 + i as u64, 0),
            orig_len: f.len() as u32,
            data: f.clone(),
        })
        .collect();
    let pcap = d.join("ipip.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    for engine in ENGINES {
        let out = d.join(format!("ipip-{engine}.pcap"));
        let v = replay(
            "crates/runtime/tests/objects/tc_ipip.o",
            &pcap,
            &["--engine", engine, "--out", path_str(&out)],
        );
        assert_eq!(v["context"], "tc");
        let (_, got) = read_pcap(&out);
        assert_eq!(got.len(), 3, "{engine}");
        for (g, f) in got.iter().zip(&frames) {
            if f[12..14] == [0x08, 0x00] {
                assert_eq!(g.data.len(), f.len() + 20, "{engine}");
                assert_eq!(g.orig_len as usize, f.len() + 20, "{engine}");
                assert_eq!((g.data[14], g.data[23]), (0x45, 4), "{engine}");
                assert_eq!(g.data[..14], f[..14], "{engine}");
                assert_eq!(g.data[34..], f[14..], "{engine}");
            } else {
                assert_eq!(&g.data, f, "{engine}");
            }
        }
    }
}

/// crates/runtime/tests/objects/xdp_ct_timer.c: a conntrack entry per IPv4 address pair whose
/// bpf_timer (600 s, re-armed by every packet of the flow) deletes it. The replay's clock is
/// the capture's, and the timers due by a packet's time fire before it: flow A's entry expires
/// between its second packet (t0 + 1 s) and its third (t0 + 701 s), which finds no entry and
/// starts the flow again.
#[test]
fn timers_fire_on_the_captures_clock() {
    const CT_TIMER: &str = "crates/runtime/tests/objects/xdp_ct_timer.o";
    let d = dir();
    let t0 = Duration::new(1_700_000_000, 0);
    let flow = |src: [u8; 4], secs: u64| {
        let f = eth(0x0800, &ipv4(17, src, 0, &[0u8; 48]));
        Rec {
            ts: t0 + Duration::from_secs(secs),
            orig_len: f.len() as u32,
            data: f,
        }
    };
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 3]);
    let recs = [flow(a, 0), flow(a, 1), flow(b, 700), flow(a, 701)];
    let pcap = d.join("ct-timer.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    // The twelve s32 words the program writes after the IPv4 header.
    let results = |r: &Rec| -> Vec<i32> {
        r.data[34..82]
            .chunks(4)
            .map(|w| i32::from_le_bytes(w.try_into().unwrap()))
            .collect()
    };
    const EINVAL: i32 = -22;
    const EBUSY: i32 = -16;
    for engine in ENGINES {
        for threads in ["1", "2"] {
            let what = format!("{engine}, {threads} thread(s)");
            let out = d.join(format!("ct-timer-{engine}-{threads}.pcap"));
            let v = replay_to(CT_TIMER, &pcap, engine, threads, &out);
            assert_eq!(verdicts(&v), vec![(2, 4)], "{what}");
            // A's first timer fired before its third packet; A's new timer and B's are armed.
            assert_eq!(v["timers"]["fired"], 1, "{what}");
            assert_eq!(v["timers"]["pending"], 2, "{what}");
            let got = read_pcap(&out).1;
            assert_eq!(got.len(), 4, "{what}");
            // Packet 2 knows the flow (init: -EBUSY; one packet before it).
            assert_eq!(results(&got[1])[0], EBUSY, "{what}");
            assert_eq!(results(&got[1])[7], 1, "{what}");
            // Packet 4 finds none: a new flow again (start before init: -EINVAL).
            assert_eq!(results(&got[3])[0], EINVAL, "{what}");
            assert_eq!(results(&got[3])[9], 0, "{what}");
            // The table: A (counted afresh: one packet) and B.
            let maps = v["maps"].as_array().unwrap();
            let ct = maps.iter().find(|m| m["name"] == "ct").unwrap();
            let entries = ct["entries"].as_array().unwrap();
            assert_eq!(entries.len(), 2, "{what}: {ct}");
            for e in entries {
                assert_eq!(words(&e["value"])[0], 1, "{what}: {e}");
            }
        }
    }
    // Text output names the timers.
    let o = bpfx(&["replay", CT_TIMER, "--pcap", path_str(&pcap)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("timers: 1 fired, 2 pending"), "{text}");
}

/// A flow whose packets come less than the timeout apart keeps its entry: its timer, re-armed
/// by each packet, is still pending at the capture's end, and a second pass (`--repeat`)
/// continues the clock from where the first ended.
#[test]
fn timers_not_due_by_the_captures_end_stay_armed() {
    const CT_TIMER: &str = "crates/runtime/tests/objects/xdp_ct_timer.o";
    let d = dir();
    let t0 = Duration::new(1_700_000_000, 0);
    let recs: Vec<Rec> = [0u64, 1, 599]
        .iter()
        .map(|&s| {
            let f = eth(0x0800, &ipv4(17, [10, 0, 0, 1], 0, &[0u8; 48]));
            Rec {
                ts: t0 + Duration::from_secs(s),
                orig_len: f.len() as u32,
                data: f,
            }
        })
        .collect();
    let pcap = d.join("ct-armed.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    for engine in ENGINES {
        // Once: every packet re-arms the flow's timer 600 s ahead. Twice (the second pass
        // 599 s later than the first): still re-armed in time, the flow counts 6 packets.
        for (repeat, packets) in [("1", 3), ("2", 6)] {
            let v = replay(CT_TIMER, &pcap, &["--engine", engine, "--repeat", repeat]);
            assert_eq!(v["timers"]["fired"], 0, "{engine} x{repeat}");
            assert_eq!(v["timers"]["pending"], 1, "{engine} x{repeat}");
            let maps = v["maps"].as_array().unwrap();
            let ct = maps.iter().find(|m| m["name"] == "ct").unwrap();
            assert_eq!(words(&ct["entries"][0]["value"])[0], packets, "{engine}");
        }
    }
}

/// A record holding more bytes than the capture's snaplen (the pcap header's, or its pcapng
/// interface's) is refused naming the packet: which of its bytes a program should see is not
/// known. Packets the snaplen cut short (fewer bytes than on the wire) run, with a warning.
#[test]
fn a_record_longer_than_the_snaplen_is_refused() {
    let d = dir();
    let short = |n: usize| {
        let f = eth(0x0806, &vec![0; n]);
        Rec {
            ts: Duration::ZERO,
            orig_len: f.len() as u32,
            data: f,
        }
    };
    // Packets of 42, 42 and 114 bytes; the header's snaplen set to 64.
    let recs = [short(28), short(28), short(100)];
    let pcap = d.join("snaplen.pcap");
    write_pcap(&pcap, &recs, DataLink::ETHERNET);
    let mut bytes = std::fs::read(&pcap).unwrap();
    bytes[16..20].copy_from_slice(&64u32.to_le_bytes());
    std::fs::write(&pcap, &bytes).unwrap();
    let (v, err) = fails(&["replay", XDP_PARSE, "--pcap", path_str(&pcap)]);
    assert_eq!(v["error"]["kind"], "capture");
    assert_eq!(v["error"]["packet"], 3);
    assert!(
        err.contains("packet 3: 114 bytes captured, more than the capture's snaplen of 64 bytes"),
        "{err}"
    );

    // pcapng: the interface's snaplen.
    let ng = d.join("snaplen.pcapng");
    write_pcapng_snaplen(&ng, &recs, 64);
    let (v, err) = fails(&["replay", XDP_PARSE, "--pcap", path_str(&ng)]);
    assert_eq!(v["error"]["packet"], 3, "{err}");
    assert!(
        err.contains("more than the capture's snaplen of 64 bytes"),
        "{err}"
    );

    // With the snaplen the file had (128), every packet runs.
    bytes[16..20].copy_from_slice(&128u32.to_le_bytes());
    std::fs::write(&pcap, &bytes).unwrap();
    let v = replay(XDP_PARSE, &pcap, &[]);
    assert_eq!(v["runs"], 3);
}
