//! Hash and LRU hash maps under several threads at once: programs (on every engine) counting
//! through lookups while host threads insert and delete other keys, and LRU inserts racing
//! evictions. The results are exact, whatever the interleaving.

#[allow(dead_code)]
mod common;

use bpfx::{MapKind, MapSpec, Mode, ProgramDef, UpdateFlag, Vm};
use common::{code, engines, prepare};
use std::sync::Arc;

const THREADS: u32 = 4;

/// `counts[input u32] += 1` through `map_lookup_elem` and an atomic add; returns 1 when the
/// key was missing.
const COUNT: &str = "
    ldxw r6, [r1+0]
    stxw [r10-4], r6
    lddw r1, map_idx(0)
    mov r2, r10
    add r2, -4
    call 1
    jne r0, 0, +2
    mov r0, 1
    exit
    mov r1, 1
    lock add [r0+0], r1
    mov r0, 0
    exit";

#[test]
fn programs_count_exactly_while_host_threads_insert_and_delete() {
    for kind in [MapKind::Hash, MapKind::LruHash] {
        for (engine, opts) in engines() {
            let obj = Vm::new()
                .object(
                    vec![ProgramDef::new("count", "test", code(COUNT))],
                    vec![MapSpec::new("counts", kind, 4, 8, 4096)],
                )
                .unwrap();
            let v = obj
                .program("count")
                .unwrap()
                .input_size(4)
                .verify(Mode::Strict)
                .unwrap();
            let prog = prepare(v, opts);
            let counts = obj.map("counts").unwrap();
            // Keys 0..64 are counted by the programs; each host thread owns keys from
            // 1000 * (t + 1) and inserts and deletes them meanwhile.
            for key in 0u32..64 {
                counts
                    .update(&key.to_le_bytes(), &0u64.to_le_bytes(), UpdateFlag::NoExist)
                    .unwrap();
            }
            const ROUNDS: u32 = 300;
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let mut p = prog.clone();
                    s.spawn(move || {
                        for r in 0..ROUNDS {
                            let key = (r * 7 + t * 13) % 64;
                            assert_eq!(p.run(&mut key.to_le_bytes()).unwrap(), 0);
                        }
                    });
                    let m = Arc::clone(&counts);
                    s.spawn(move || {
                        let base = 1000 * (t + 1);
                        for i in 0..200u32 {
                            let key = (base + i).to_le_bytes();
                            m.update(&key, &u64::from(i).to_le_bytes(), UpdateFlag::NoExist)
                                .unwrap();
                            if i % 2 == 0 {
                                m.delete(&key).unwrap();
                            }
                        }
                    });
                }
            });
            let mut expect = vec![0u64; 64];
            for t in 0..THREADS {
                for r in 0..ROUNDS {
                    expect[((r * 7 + t * 13) % 64) as usize] += 1;
                }
            }
            let mut want: Vec<(Vec<u8>, Vec<u8>)> = (0u32..64)
                .map(|k| {
                    (
                        k.to_le_bytes().to_vec(),
                        expect[k as usize].to_le_bytes().to_vec(),
                    )
                })
                .collect();
            for t in 0..THREADS {
                for i in (1..200u32).step_by(2) {
                    let key = 1000 * (t + 1) + i;
                    want.push((
                        key.to_le_bytes().to_vec(),
                        u64::from(i).to_le_bytes().to_vec(),
                    ));
                }
            }
            want.sort();
            let got: Vec<_> = counts.iter().collect();
            assert_eq!(got.len(), want.len(), "{kind} {engine}");
            assert_eq!(got, want, "{kind} {engine}");
            assert_eq!(counts.len(), want.len());
        }
    }
}

/// Threads inserting distinct keys into a small LRU map: it ends full, every key it holds
/// carrying its own value; afterwards, the most recent inserts are all present and the keys
/// evicted for them were the least recently used.
#[test]
fn lru_inserts_from_many_threads_keep_the_map_consistent() {
    const CAP: u32 = 64;
    let m = Arc::new(bpfx::Map::new(MapSpec::new("lru", MapKind::LruHash, 4, 8, CAP)).unwrap());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let m = Arc::clone(&m);
            s.spawn(move || {
                for i in 0..2000u32 {
                    let key = t * 100_000 + i;
                    m.update(
                        &key.to_le_bytes(),
                        &u64::from(key).to_le_bytes(),
                        UpdateFlag::Any,
                    )
                    .unwrap();
                    if i % 3 == 0 {
                        // A use keeps a key fresh; it may already be evicted.
                        let _ = m.lookup(&key.to_le_bytes());
                    }
                }
            });
        }
    });
    assert_eq!(m.len(), CAP as usize);
    let entries: Vec<_> = m.iter().collect();
    assert_eq!(entries.len(), CAP as usize);
    for (k, v) in &entries {
        let key = u32::from_le_bytes(k[..].try_into().unwrap());
        assert_eq!(
            v[..],
            u64::from(key).to_le_bytes(),
            "key {key} has its own value"
        );
    }
    // Sequentially now: use half the survivors, then insert as many new keys: exactly the
    // unused half is evicted.
    let (used, unused) = entries.split_at(CAP as usize / 2);
    for (k, _) in used {
        assert!(m.lookup(k).unwrap().is_some());
    }
    for i in 0..CAP / 2 {
        let key = 9_000_000 + i;
        m.update(
            &key.to_le_bytes(),
            &u64::from(key).to_le_bytes(),
            UpdateFlag::NoExist,
        )
        .unwrap();
    }
    for (k, _) in used {
        assert!(m.lookup(k).unwrap().is_some(), "used keys stay");
    }
    for (k, _) in unused {
        assert_eq!(m.lookup(k), Ok(None), "unused keys were evicted");
    }
    assert_eq!(m.len(), CAP as usize);
}
