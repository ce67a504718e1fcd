//! Maps under threads: lookups and updates on HASH, ARRAY, PERCPU_ARRAY and LRU_HASH from 1, 2
//! and 4 threads running programs (`maps/maps.c`: 64 operations per run, each thread its own
//! `Program` clone on its own keys), while a host thread reads the same map through
//! `Map::lookup` without pause. Criterion's time and throughput (`elem/s`) are per program
//! thread: map operations per second of one thread, timed by its own CPU time (the default) or
//! wall time (`BPFX_BENCH_CLOCK=wall`, see `bpfx_benches::replay::Clock`). Threads that
//! serialize on one lock keep one thread's rate in all (each thread 1/N of it in wall time, on
//! N free cores); in CPU time a blocking lock's waits do not show, its contention (the lock's
//! cache line moving between cores, spinning before it blocks) does.
//!
//! ```text
//! cargo bench -p bpfx-benches --bench maps -- --warm-up-time 1 --measurement-time 3
//! ```

use bpfx::{Map, Mode, Object, Program, UpdateFlag};
use bpfx_benches::replay::{Clock, threaded};
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Map operations per run (`OPS` in maps.c).
const OPS: usize = 64;
/// Entries of every map (`ENTRIES` in maps.c).
const ENTRIES: u32 = 4096;
const THREADS: [usize; 3] = [1, 2, 4];
const MAPS: [&str; 4] = ["hash", "array", "percpu_array", "lru_hash"];

/// OPS keys for thread `t`: a deterministic spread over the whole key space, different per
/// thread.
fn keys(t: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (0..OPS)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % u64::from(ENTRIES)) as u32).to_le_bytes()
        })
        .collect()
}

/// `threads` program threads, each running its own clone of `prog` `iters` times on its keys,
/// while the host reads `map` in a loop; one thread's time ([`Clock`]).
fn measure(prog: &Program, map: &Map, threads: usize, iters: u64, clock: Clock) -> Duration {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut k = 0u32;
            while !done.load(Ordering::Relaxed) {
                black_box(map.lookup(&k.to_le_bytes()).ok());
                k = (k + 1) % ENTRIES;
            }
        });
        let took = threaded(threads, clock, |t| {
            let mut p = prog.clone();
            let mut mem = keys(t);
            Box::new(move || {
                for _ in 0..iters {
                    black_box(p.run(&mut mem).expect("the map programs run"));
                }
            })
        });
        done.store(true, Ordering::Relaxed);
        took
    })
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let clock = Clock::from_env();
    let obj = Object::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("maps/maps.o"))
        .expect("maps.o loads");
    for name in MAPS {
        let map = obj.map(name).expect("the bench's map");
        // Every key present, so lookups find and updates replace (an LRU map evicts nothing).
        if map.kind() != bpfx::MapKind::PerCpuArray {
            for k in 0..ENTRIES {
                map.update(
                    &k.to_le_bytes(),
                    &u64::from(k).to_le_bytes(),
                    UpdateFlag::Any,
                )
                .expect("the map holds ENTRIES values");
            }
        }
        for op in ["lookup", "update"] {
            let mut prog = obj
                .program(&format!("{name}_{op}"))
                .expect("the bench's program")
                .verify(Mode::Checked)
                .expect("the map programs verify")
                .compile()
                .expect("the map programs compile");
            // Updates never fail: every key is in range or present.
            let r = prog.run(&mut keys(0)).expect("the map programs run");
            assert!(op == "lookup" || r == 0, "{name}_{op}: {r} updates failed");
            let mut g = c.benchmark_group(format!("maps/{name}/{op}"));
            for threads in THREADS {
                g.throughput(Throughput::Elements(OPS as u64));
                g.bench_with_input(
                    BenchmarkId::from_parameter(format!("{threads}t")),
                    &threads,
                    |b, &t| b.iter_custom(|iters| measure(&prog, &map, t, iters, clock)),
                );
            }
            g.finish();
        }
    }
    c.final_summary();
}
