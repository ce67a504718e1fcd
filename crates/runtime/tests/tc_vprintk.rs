//! `bpf_trace_vprintk` (helper 177) from a TC program (`objects/tc_vprintk.c`): `trace_printk`
//! with its arguments as an array of u64s (`data_len / 8` of them, at most twelve): the line
//! goes to the trace sink and its length is the answer; a `data_len` not a multiple of 8 or
//! above 96, fewer arguments than conversions, or a format without its NUL is `-EINVAL`
//! with nothing written. Every engine in both modes; where the kernel can be asked (root,
//! `bpftool`), its test runs give the same answers.

// The oracle runs clang-built objects only: `common::code` (assembled programs) goes unused.
#[allow(dead_code)]
mod common;

#[path = "common/oracle.rs"]
mod oracle;

use std::sync::{Arc, Mutex};

use bpfx::{Mode, SkbMeta, Vm};
use common::{engines, prepare};
use oracle::objects;

const EINVAL: i32 = -22;

fn frame(len: u8, which: u8) -> Vec<u8> {
    let args: Vec<u64> = [(-5i64) as u64, 7, 255, u64::MAX]
        .into_iter()
        .chain(10..19)
        .collect();
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0, len, which];
    for a in args {
        f.extend_from_slice(&a.to_le_bytes());
    }
    f.extend_from_slice(&[0xee; 12]);
    f
}

#[test]
fn trace_vprintk_formats_an_array_of_arguments() {
    let file = "tc_vprintk.o";
    let four = "vals -5 7 ff -1\n";
    let twelve = "-5 7 255 -1 10 11 12 13 14 15 16 17\n";
    // (data_len, format, the line or None for -EINVAL)
    let cases: &[(u8, u8, Option<&str>)] = &[
        (32, 0, Some(four)),
        (40, 0, Some(four)),
        (24, 0, None),
        (0, 0, None),
        (12, 0, None),
        (31, 0, None),
        (96, 1, Some(twelve)),
        (88, 1, None),
        (104, 1, None),
        (32, 2, None),
    ];
    let mut ours = Vec::new();
    for &(len, which, want) in cases {
        let f = frame(len, which);
        let mut seen = None;
        for mode in [Mode::Checked, Mode::Strict] {
            for (engine, opts) in engines() {
                let lines = Arc::new(Mutex::new(Vec::<String>::new()));
                let sink = lines.clone();
                let vm = Vm::new().trace_sink(move |s| sink.lock().unwrap().push(s.to_string()));
                let obj = vm.open(objects().join(file)).unwrap();
                let v = obj.program("tc_vprintk").unwrap().verify(mode).unwrap();
                let mut prog = prepare(v, opts);
                let mut p = f.clone();
                let mut meta = SkbMeta {
                    protocol: 0x0800,
                    ..SkbMeta::default()
                };
                let code = prog.run_tc(&mut p, &mut meta).unwrap().code() as u32;
                let got = (code, p, lines.lock().unwrap().clone());
                match &seen {
                    None => seen = Some(got),
                    Some(s) => assert_eq!(*s, got, "{mode:?} {engine}"),
                }
            }
        }
        let (code, p, lines) = seen.unwrap();
        let at = 120 + 4 * usize::from(which);
        let ret = i32::from_le_bytes(p[at..at + 4].try_into().unwrap());
        match want {
            Some(line) => assert_eq!(
                (code, ret, lines),
                (0, line.len() as i32, vec![line.to_string()]),
                "{len} {which}"
            ),
            None => assert_eq!((code, ret, lines.len()), (0, EINVAL, 0), "{len} {which}"),
        }
        ours.push((f, (code, p)));
    }
    oracle::compare_runs(
        "trace_vprintk_formats_an_array_of_arguments",
        file,
        "classifier",
        ours.iter().map(|(f, want)| (&f[..], want.clone())),
    );
}
