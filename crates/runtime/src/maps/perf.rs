//! `BPF_MAP_TYPE_PERF_EVENT_ARRAY` (4) and `bpf_perf_event_output` (helper 25): records a
//! program sends to the host through a buffer per CPU.
//!
//! # Layout
//! One buffer per CPU index below `min(max_entries, cpus)`: the index of a buffer is the CPU
//! it belongs to, as libbpf's `perf_buffer__new` opens one perf event per CPU and stores it at
//! the CPU's index. A map declared with `max_entries` 0 gets one index per CPU (libbpf's
//! rule). Each buffer holds [`crate::MapConfig::perf_buffer_size`] bytes (default
//! [`super::DEFAULT_PERF_BUFFER_SIZE`], set with [`crate::Vm::perf_buffer_size`]), counted as
//! the kernel's ring counts them: a sample takes its 8-byte header, its 4-byte size and its
//! data, padded to 8 bytes; a lost-records notice 24 bytes. Records are kept host-side (no
//! guest memory: programs never see the buffer), so the map has no block.
//!
//! # Semantics (the kernel's, `bpf_perf_event_output` in `linux/bpf.h`)
//! - `flags & BPF_F_INDEX_MASK` is the index, or `BPF_F_CURRENT_CPU` for the running CPU's;
//!   any other flag bit is `EINVAL`, except `BPF_F_CTXLEN_MASK` for programs whose context
//!   carries a packet (XDP, or a struct with `data`/`data_end`): the helper appends that many
//!   packet bytes to the record (`EFAULT` past the packet's end; `EINVAL` for other
//!   contexts); an index at or past `max_entries` is `E2BIG`; an index without a buffer
//!   `ENOENT`; a buffer of another CPU than the running one `EOPNOTSUPP` (the kernel's rule
//!   for per-CPU perf events).
//! - A record that does not fit in the CPU's free space is dropped and counted (`ENOSPC`); the
//!   count reaches the host as a [`PerfEvent::Lost`] before the CPU's next sample, or at the
//!   end of the drain when no sample followed.
//! - The host sees each CPU's records in the order they were written; a sample's data is the
//!   kernel's raw sample: the bytes written, then zeros up to a size of `4 mod 8` bytes.
//!
//! # Concurrency
//! Each buffer has its own lock, taken by the program running on that CPU and by the host
//! while it drains: programs on different CPUs never contend.

use super::{MapConfig, MapImpl, checked_size};
use crate::map::{MapError, MapKind, MapSpec, UpdateFlag};
use bpfx_exec::SharedMem;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// `BPF_F_INDEX_MASK`: the index part of `perf_event_output`'s flags.
pub const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
/// `BPF_F_CURRENT_CPU`: the index of the running CPU.
pub const BPF_F_CURRENT_CPU: u64 = BPF_F_INDEX_MASK;

/// Bytes of a record's header in the ring (`struct perf_event_header`).
const HEADER: u64 = 8;
/// Bytes of a lost-records notice (header, id, count).
const LOST_RECORD: u64 = 24;
/// The smallest per-CPU buffer accepted, in bytes.
pub const MIN_PERF_BUFFER_SIZE: u32 = 64;

/// What the host reads from a perf event array.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PerfEvent {
    /// A record a program sent (`PERF_RECORD_SAMPLE` with raw data).
    Sample {
        /// The CPU (buffer index) it was written to.
        cpu: u32,
        /// The raw data: the bytes written, zero-padded to a size of `4 mod 8`.
        data: Vec<u8>,
    },
    /// Records dropped because the buffer was full (`PERF_RECORD_LOST`).
    Lost {
        /// The CPU whose buffer was full.
        cpu: u32,
        /// How many records were dropped.
        count: u64,
    },
}

/// Checks a perf event array's shape and returns its host memory need.
pub(crate) fn host_bytes(spec: &MapSpec, cfg: &MapConfig) -> Result<u64, String> {
    if spec.key_size != 4 || spec.value_size != 4 {
        return Err(format!(
            "perf event array keys and values are 4 bytes, not {} and {} (EINVAL)",
            spec.key_size, spec.value_size
        ));
    }
    if cfg.perf_buffer_size < MIN_PERF_BUFFER_SIZE {
        return Err(format!(
            "perf buffers must hold at least {MIN_PERF_BUFFER_SIZE} bytes, not {}",
            cfg.perf_buffer_size
        ));
    }
    let entries = entries(spec, cfg);
    let bufs = entries.min(cfg.cpus.max(1));
    checked_size(&[
        (u64::from(bufs), u64::from(cfg.perf_buffer_size)),
        (u64::from(entries), 8),
    ])
}

/// The number of indexes: `max_entries`, or one per CPU when it is 0.
pub(crate) fn entries(spec: &MapSpec, cfg: &MapConfig) -> u32 {
    if spec.max_entries == 0 {
        cfg.cpus.max(1)
    } else {
        spec.max_entries
    }
}

/// A perf event array.
pub(crate) struct PerfEventArray {
    entries: u32,
    capacity: u64,
    bufs: Box<[Mutex<Buffer>]>,
}

/// One CPU's buffer.
///
/// # Invariants
/// `used` is the ring size of the records in `events`, at most the capacity.
#[derive(Default)]
struct Buffer {
    events: VecDeque<Event>,
    used: u64,
    /// Dropped records not yet reported.
    lost: u64,
}

enum Event {
    Sample(Vec<u8>),
    Lost(u64),
}

/// The raw sample size the kernel reports for `len` bytes: padded so that the size field and
/// the data end on an 8-byte boundary.
fn raw_size(len: u64) -> u64 {
    (len + 4).next_multiple_of(8) - 4
}

fn lock(m: &Mutex<Buffer>) -> MutexGuard<'_, Buffer> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PerfEventArray {
    pub(crate) fn new(spec: &MapSpec, cfg: &MapConfig) -> PerfEventArray {
        let entries = entries(spec, cfg);
        PerfEventArray {
            entries,
            capacity: u64::from(cfg.perf_buffer_size),
            bufs: (0..entries.min(cfg.cpus.max(1)))
                .map(|_| Mutex::new(Buffer::default()))
                .collect(),
        }
    }

    /// `perf_event_output` from a program running on `cpu`.
    pub(crate) fn output(&self, flags: u64, cpu: u32, data: &[u8]) -> Result<(), MapError> {
        if flags & !BPF_F_INDEX_MASK != 0 {
            return Err(MapError::Flags(flags));
        }
        let index = match flags {
            BPF_F_CURRENT_CPU => u64::from(cpu),
            i => i,
        };
        if index >= u64::from(self.entries) {
            return Err(MapError::Full);
        }
        let buf = self.bufs.get(index as usize).ok_or(MapError::NotFound)?;
        if index != u64::from(cpu) {
            return Err(MapError::OtherCpu);
        }
        let mut b = lock(buf);
        let raw = raw_size(data.len() as u64);
        let need = HEADER + 4 + raw + if b.lost > 0 { LOST_RECORD } else { 0 };
        if b.used + need > self.capacity {
            b.lost += 1;
            return Err(MapError::OutOfSpace);
        }
        if b.lost > 0 {
            let n = std::mem::take(&mut b.lost);
            b.events.push_back(Event::Lost(n));
        }
        let mut v = data.to_vec();
        v.resize(raw as usize, 0);
        b.events.push_back(Event::Sample(v));
        b.used += need;
        Ok(())
    }

    /// Takes every record of every CPU, CPU by CPU, each CPU's in order, and hands them to
    /// `f`; returns how many there were.
    pub(crate) fn poll(&self, mut f: impl FnMut(PerfEvent)) -> usize {
        let mut n = 0;
        for (cpu, buf) in self.bufs.iter().enumerate() {
            let cpu = cpu as u32;
            // Taken out under the lock and handed over without it, so `f` may take its time.
            let (events, lost) = {
                let mut b = lock(buf);
                b.used = 0;
                (std::mem::take(&mut b.events), std::mem::take(&mut b.lost))
            };
            for e in events {
                f(match e {
                    Event::Sample(data) => PerfEvent::Sample { cpu, data },
                    Event::Lost(count) => PerfEvent::Lost { cpu, count },
                });
                n += 1;
            }
            if lost > 0 {
                f(PerfEvent::Lost { cpu, count: lost });
                n += 1;
            }
        }
        n
    }

    /// Takes the next record: the oldest of the lowest CPU that has one (the order of
    /// [`PerfEventArray::poll`]).
    pub(crate) fn next(&self) -> Option<PerfEvent> {
        for (cpu, buf) in self.bufs.iter().enumerate() {
            let cpu = cpu as u32;
            let mut b = lock(buf);
            if let Some(e) = b.events.pop_front() {
                return Some(match e {
                    Event::Sample(data) => {
                        b.used -= HEADER + 4 + data.len() as u64;
                        PerfEvent::Sample { cpu, data }
                    }
                    Event::Lost(count) => {
                        b.used -= LOST_RECORD;
                        PerfEvent::Lost { cpu, count }
                    }
                });
            }
            if b.lost > 0 {
                let count = std::mem::take(&mut b.lost);
                return Some(PerfEvent::Lost { cpu, count });
            }
        }
        None
    }

    fn pending(&self) -> usize {
        self.bufs
            .iter()
            .map(|b| {
                let b = lock(b);
                b.events.len() + usize::from(b.lost > 0)
            })
            .sum()
    }
}

impl MapImpl for PerfEventArray {
    fn kind(&self) -> MapKind {
        MapKind::PerfEventArray
    }

    fn block(&self) -> Option<&Arc<SharedMem>> {
        None
    }

    fn prog_lookup(&self, _key: &[u8], _cpu: u32) -> Option<u64> {
        None
    }

    fn prog_update(&self, _: &[u8], _: &[u8], _: u64, _: u32) -> Result<(), MapError> {
        Err(MapError::Unsupported(MapKind::PerfEventArray))
    }

    fn prog_delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::Unsupported(MapKind::PerfEventArray))
    }

    fn host_value_size(&self) -> usize {
        4
    }

    fn lookup(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Err(MapError::Unsupported(MapKind::PerfEventArray))
    }

    fn update(&self, _: &[u8], _: &[u8], _: UpdateFlag) -> Result<(), MapError> {
        Err(MapError::Unsupported(MapKind::PerfEventArray))
    }

    fn delete(&self, _key: &[u8]) -> Result<(), MapError> {
        Err(MapError::Unsupported(MapKind::PerfEventArray))
    }

    fn next_key(&self, _key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        Err(MapError::Unsupported(MapKind::PerfEventArray))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        Vec::new()
    }

    /// Records waiting to be read (lost-record notices included).
    fn len(&self) -> usize {
        self.pending()
    }

    fn as_perf(&self) -> Option<&PerfEventArray> {
        Some(self)
    }
}

impl crate::map::Map {
    fn perf(&self) -> Result<&PerfEventArray, MapError> {
        self.ext()
            .and_then(MapImpl::as_perf)
            .ok_or(MapError::Unsupported(self.kind()))
    }

    /// Takes every record waiting in a perf event array, CPU by CPU and in order within each
    /// CPU, and hands each to `f` (libbpf's `perf_buffer__consume`, with the sample and lost
    /// callbacks as one); returns how many it handed over.
    pub fn perf_poll(&self, f: impl FnMut(PerfEvent)) -> Result<usize, MapError> {
        Ok(self.perf()?.poll(f))
    }

    /// Every record waiting in a perf event array (see [`crate::Map::perf_poll`]).
    pub fn perf_drain(&self) -> Result<Vec<PerfEvent>, MapError> {
        let mut out = Vec::new();
        self.perf()?.poll(|e| out.push(e));
        Ok(out)
    }

    /// Takes the next record of a perf event array, in the order of [`crate::Map::perf_poll`]
    /// (the space it took is free again); `None` when none waits.
    pub fn perf_next(&self) -> Result<Option<PerfEvent>, MapError> {
        Ok(self.perf()?.next())
    }

    /// `perf_event_output` into this map from a program running on `cpu`.
    pub(crate) fn perf_output(&self, flags: u64, cpu: u32, data: &[u8]) -> Result<(), MapError> {
        self.perf()?.output(flags, cpu, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(cpus: u32, size: u32) -> PerfEventArray {
        let cfg = MapConfig {
            cpus,
            perf_buffer_size: size,
        };
        let spec = MapSpec::new("e", MapKind::PerfEventArray, 4, 4, 0);
        host_bytes(&spec, &cfg).unwrap();
        PerfEventArray::new(&spec, &cfg)
    }

    #[test]
    fn records_in_order_with_lost_counts() {
        let p = array(2, 64);
        // Each 10-byte record takes 8 + 4 + 12 = 24 bytes: two fit in 64.
        assert_eq!(p.output(BPF_F_CURRENT_CPU, 1, &[1; 10]), Ok(()));
        assert_eq!(p.output(1, 1, &[2; 10]), Ok(()));
        assert_eq!(p.output(1, 1, &[3; 10]), Err(MapError::OutOfSpace));
        assert_eq!(
            p.output(BPF_F_CURRENT_CPU, 1, &[4; 10]),
            Err(MapError::OutOfSpace)
        );
        assert_eq!(p.output(0, 0, &[5; 3]), Ok(()));
        assert_eq!(p.output(0, 1, &[5; 3]), Err(MapError::OtherCpu));
        assert_eq!(p.output(2, 1, &[5; 3]), Err(MapError::Full));
        assert_eq!(p.output(1 << 32, 1, &[5; 3]), Err(MapError::Flags(1 << 32)));
        assert_eq!(p.len(), 4);
        let mut got = Vec::new();
        assert_eq!(p.poll(|e| got.push(e)), 4);
        let padded = |b: u8, n: usize, to: usize| {
            let mut v = vec![b; n];
            v.resize(to, 0);
            v
        };
        assert_eq!(
            got,
            vec![
                PerfEvent::Sample {
                    cpu: 0,
                    data: padded(5, 3, 4)
                },
                PerfEvent::Sample {
                    cpu: 1,
                    data: padded(1, 10, 12)
                },
                PerfEvent::Sample {
                    cpu: 1,
                    data: padded(2, 10, 12)
                },
                PerfEvent::Lost { cpu: 1, count: 2 },
            ]
        );
        // Drained: room again; a loss is reported before the next sample.
        assert_eq!(p.output(1, 1, &[6; 44]), Ok(()));
        assert_eq!(p.output(1, 1, &[7; 1]), Err(MapError::OutOfSpace));
        let mut got = Vec::new();
        p.poll(|e| got.push(e));
        assert_eq!(got.len(), 2);
        assert_eq!(p.output(1, 1, &[8; 1]), Ok(()));
        got.clear();
        p.poll(|e| got.push(e));
        assert_eq!(
            got,
            vec![PerfEvent::Sample {
                cpu: 1,
                data: padded(8, 1, 4)
            }]
        );
        assert_eq!(p.output(1, 1, &[9; 100]), Err(MapError::OutOfSpace));
        assert_eq!(p.output(1, 1, &[9; 1]), Ok(()));
        got.clear();
        p.poll(|e| got.push(e));
        assert_eq!(
            got,
            vec![
                PerfEvent::Lost { cpu: 1, count: 1 },
                PerfEvent::Sample {
                    cpu: 1,
                    data: padded(9, 1, 4)
                }
            ]
        );
    }

    #[test]
    fn one_record_at_a_time_frees_its_space() {
        let p = array(2, 64);
        p.output(1, 1, &[1; 10]).unwrap();
        p.output(1, 1, &[2; 10]).unwrap();
        assert_eq!(p.output(1, 1, &[3; 10]), Err(MapError::OutOfSpace));
        p.output(0, 0, &[4; 4]).unwrap();
        let sample = |cpu, b: u8, n: usize, to: usize| {
            let mut data = vec![b; n];
            data.resize(to, 0);
            PerfEvent::Sample { cpu, data }
        };
        assert_eq!(p.next(), Some(sample(0, 4, 4, 4)));
        assert_eq!(p.next(), Some(sample(1, 1, 10, 12)));
        // One sample taken: room for the lost notice and another sample.
        assert_eq!(p.output(1, 1, &[5; 2]), Ok(()));
        assert_eq!(p.next(), Some(sample(1, 2, 10, 12)));
        assert_eq!(p.next(), Some(PerfEvent::Lost { cpu: 1, count: 1 }));
        assert_eq!(p.next(), Some(sample(1, 5, 2, 4)));
        assert_eq!(p.next(), None);
        assert_eq!(
            p.output(1, 1, &[6; 36]),
            Ok(()),
            "all 64 bytes are free again"
        );
    }

    #[test]
    fn shapes() {
        let cfg = MapConfig {
            cpus: 4,
            perf_buffer_size: 4096,
        };
        let spec = MapSpec::new("e", MapKind::PerfEventArray, 4, 4, 0);
        assert_eq!(host_bytes(&spec, &cfg), Ok(4 * 4096 + 4 * 8));
        assert!(host_bytes(&MapSpec::new("e", MapKind::PerfEventArray, 4, 8, 0), &cfg).is_err());
        let small = MapConfig {
            perf_buffer_size: 8,
            ..cfg
        };
        assert!(host_bytes(&spec, &small).is_err());
        // More indexes than CPUs: the extra ones have no buffer.
        let p = PerfEventArray::new(&MapSpec::new("e", MapKind::PerfEventArray, 4, 4, 6), &cfg);
        assert_eq!(p.output(5, 3, &[0]), Err(MapError::NotFound));
    }
}
