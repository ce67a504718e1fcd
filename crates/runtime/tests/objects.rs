//! The example objects of `examples/` (clang-built, committed) through the API on both engines:
//! the documented results and map contents.

use bpfx::{Engine, Mode, Object, Vm, XdpAction};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

fn example(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).join(name)
}

fn packet(name: &str) -> Vec<u8> {
    std::fs::read(example(name)).expect("example packet exists")
}

fn u64s(v: &[u8]) -> u64 {
    u64::from_le_bytes(v.try_into().unwrap())
}

#[test]
fn counter_counts_frames_per_ethertype() {
    for engine in Engine::ALL {
        let obj = Object::open(example("counter.o")).unwrap();
        let names: Vec<_> = obj.programs().map(|p| p.name.to_string()).collect();
        assert_eq!(names, ["packet_filter"]);
        let mut prog = obj
            .program("packet_filter")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap()
            .engine(engine, false)
            .unwrap();
        let mut syn = packet("tcp-syn.bin");
        let mut arp = packet("arp.bin");
        assert_eq!(prog.run(&mut syn).unwrap(), 1, "{engine:?}");
        assert_eq!(prog.run(&mut syn).unwrap(), 1, "{engine:?}");
        assert_eq!(prog.run(&mut arp).unwrap(), 0, "{engine:?}");
        assert_eq!(prog.run(&mut [0u8; 4]).unwrap(), 0, "{engine:?}: too short");
        let counters: Vec<(u32, u64)> = obj
            .map("counters")
            .unwrap()
            .iter()
            .map(|(k, v)| (u32::from_le_bytes(k.try_into().unwrap()), u64s(&v)))
            .collect();
        assert_eq!(counters, [(0x0800, 2), (0x0806, 1)], "{engine:?}");
    }
}

#[test]
fn xdp_parse_passes_syn_drops_telnet_and_counts() {
    for engine in Engine::ALL {
        let obj = Object::open(example("xdp_parse.o")).unwrap();
        let mut prog = obj
            .program("xdp_parse")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap()
            .engine(engine, false)
            .unwrap();
        let mut syn = packet("tcp-syn.bin");
        assert_eq!(
            prog.run_xdp(&mut syn).unwrap(),
            XdpAction::Pass,
            "{engine:?}"
        );
        let mut telnet = packet("telnet-syn.bin");
        assert_eq!(
            prog.run_xdp(&mut telnet).unwrap(),
            XdpAction::Drop,
            "{engine:?}"
        );
        let mut arp = packet("arp.bin");
        assert_eq!(
            prog.run_xdp(&mut arp).unwrap(),
            XdpAction::Pass,
            "{engine:?}"
        );
        let mut short = syn[..30].to_vec();
        assert_eq!(
            prog.run_xdp(&mut short).unwrap(),
            XdpAction::Aborted,
            "{engine:?}"
        );
        let stats: Vec<u64> = obj
            .map("stats")
            .unwrap()
            .iter()
            .map(|(_, v)| u64s(&v))
            .collect();
        assert_eq!(stats, [1, 0, 2, 2], "{engine:?}");
        assert!(matches!(
            prog.run(&mut syn),
            Err(bpfx::RunError::WrongContext { .. })
        ));
    }
}

#[test]
fn globals_use_rodata_data_bss_and_a_subprogram() {
    for engine in Engine::ALL {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let vm = Vm::new().trace_sink(move |s| sink.lock().unwrap().push(s.to_string()));
        let obj = vm.open(example("globals.o")).unwrap();
        let mut prog = obj
            .program("sum_bytes")
            .unwrap()
            .verify(Mode::Checked)
            .unwrap()
            .engine(engine, false)
            .unwrap();
        let mut syn = packet("tcp-syn.bin");
        let sum: u64 = syn.iter().map(|&b| u64::from(b)).sum();
        assert_eq!(prog.run(&mut syn).unwrap(), sum * 3 + 1000, "{engine:?}");
        assert_eq!(prog.run(&mut syn).unwrap(), sum * 3 + 1001, "{engine:?}");
        assert_eq!(
            *lines.lock().unwrap(),
            vec![format!("sum={sum} len=54\n"); 2],
            "{engine:?}"
        );
        let bss = obj.map(".bss").unwrap();
        let (_, v) = bss.iter().next().unwrap();
        assert_eq!(u64s(&v[0..8]), 2, "runs");
        assert_eq!(u64s(&v[8..16]), sum * 3 + 1001, "last_result");
    }
}

#[test]
fn ringbuf_reports_each_packet() {
    // Both modes prove the record's accesses against the reserved size (a constant, as Strict
    // mode requires): every engine, the JIT under each option set (Spectre hardening keeps the
    // guards), runs them as proven and the records arrive whole.
    for ((engine, opts), mode) in bpfx_testkit::matrix()
        .into_iter()
        .flat_map(|e| [(e.clone(), Mode::Checked), (e, Mode::Strict)])
    {
        let obj = Object::open(example("ringbuf.o")).unwrap();
        let verified = obj.program("xdp_events").unwrap().verify(mode).unwrap();
        let facts = verified.program();
        let facts: Vec<_> = (0..facts.program().len())
            .filter_map(|pc| facts.access(bpfx_bytecode::Pc(pc as u32)))
            .filter(|f| f.region == bpfx_verifier::RegionKind::MapValue)
            .collect();
        // The record's five fields and the global sequence number.
        assert!(
            facts.len() >= 6 && facts.iter().all(|f| f.proven),
            "{mode:?}: {facts:?}"
        );
        let mut prog = match &opts {
            None => verified.interpret(),
            Some(o) => verified.compile_with(o).unwrap(),
        };
        let mut syn = packet("tcp-syn.bin");
        let meta = bpfx::XdpMeta {
            ingress_ifindex: 7,
            ..Default::default()
        };
        assert_eq!(
            prog.run_xdp_with(&mut syn, &meta).unwrap(),
            XdpAction::Pass,
            "{engine:?} {mode:?}"
        );
        let mut short = [0u8; 6];
        assert_eq!(
            prog.run_xdp(&mut short).unwrap(),
            XdpAction::Drop,
            "{engine:?} {mode:?}"
        );
        let records = obj.map("events").unwrap().drain_records().unwrap();
        let want: Vec<Vec<u8>> = [(54u32, 0x0800u16, 0u16, 7u32, 0u32), (6, 0, 1, 0, 1)]
            .iter()
            .map(|&(len, proto, flags, ifindex, seq)| {
                let mut r = Vec::new();
                r.extend(len.to_le_bytes());
                r.extend(proto.to_le_bytes());
                r.extend(flags.to_le_bytes());
                r.extend(ifindex.to_le_bytes());
                r.extend(seq.to_le_bytes());
                r
            })
            .collect();
        assert_eq!(records, want, "{engine:?} {mode:?}");
    }
}
