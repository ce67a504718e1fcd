//! `BPF_MAP_TYPE_STACK_TRACE` (7): stacks of instruction addresses stored by id, the id a
//! program gets from `bpf_get_stackid` (27) and uses as a key of its own maps.
//!
//! # Layout
//! `roundup_pow_of_two(max_entries)` buckets (as the kernel sizes its table), each empty or
//! holding one stack: its frames (at most `value_size / 8`) and their hash. A stack's id is its
//! hash masked by the number of buckets. Host-side only: programs never see the storage.
//!
//! # Semantics (the kernel's, `linux/bpf.h`)
//! - Creation: `key_size` 4, `value_size` a non-zero multiple of 8 of at most
//!   [`PERF_MAX_STACK_DEPTH`] frames, `max_entries` not 0 (`EINVAL`), at most `2^31` (`E2BIG`);
//!   flags only `BPF_F_NUMA_NODE`, `BPF_F_RDONLY`, `BPF_F_WRONLY` (`EINVAL`).
//!   `BPF_F_STACK_BUILD_ID` (build-id + offset records) is refused with `EOPNOTSUPP`: bpfx has
//!   no executables to read build ids from.
//! - Programs: only `bpf_get_stackid` (the verifier refuses the map to every other helper).
//! - Host: lookup of an id gives its frames, zero-filled up to `value_size` (`ENOENT` for an
//!   empty bucket); update is `EINVAL` (the kernel's stack map refuses it); delete empties a
//!   bucket (`ENOENT` when empty); next key walks the occupied ids upwards (the first one after
//!   an absent key).
//!
//! # Concurrency
//! One mutex over the buckets.

use super::{MapImpl, checked_size};
use crate::map::{MapError, MapKind, MapSpec, UpdateFlag};
use bpfx_exec::SharedMem;
use std::hash::{DefaultHasher, Hasher};
use std::sync::{Arc, Mutex};

/// The kernel's `PERF_MAX_STACK_DEPTH` (the default `kernel.perf_event_max_stack`): the most
/// frames a stack trace map's value holds.
pub const PERF_MAX_STACK_DEPTH: u32 = 127;
/// `BPF_F_STACK_BUILD_ID` (map flag): values are build-id records instead of addresses.
pub const BPF_F_STACK_BUILD_ID: u32 = 1 << 5;
/// `BPF_F_SKIP_FIELD_MASK`: the low 8 bits of `get_stackid`'s flags, frames to skip.
pub const BPF_F_SKIP_FIELD_MASK: u64 = 0xff;
/// `BPF_F_USER_STACK`: capture the user stack.
pub const BPF_F_USER_STACK: u64 = 1 << 8;
/// `BPF_F_FAST_STACK_CMP`: compare stacks by hash only.
pub const BPF_F_FAST_STACK_CMP: u64 = 1 << 9;
/// `BPF_F_REUSE_STACKID`: a different stack with the same id replaces the stored one.
pub const BPF_F_REUSE_STACKID: u64 = 1 << 10;

/// The creation flags the kernel accepts: `BPF_F_NUMA_NODE`, `BPF_F_RDONLY`, `BPF_F_WRONLY`
/// (and `BPF_F_STACK_BUILD_ID`, refused apart).
const CREATE_FLAGS: u32 = (1 << 2) | (1 << 3) | (1 << 4);

const EINVAL: i64 = -22;
const EFAULT: i64 = -14;
const EEXIST: i64 = -17;

/// Bytes of a bucket besides its frames: the hash, the boxed slice's pointer and length.
const BUCKET_OVERHEAD: u64 = 24;

/// Checks the shape of a stack trace map as the kernel does and returns its host memory need
/// (every bucket full).
pub(crate) fn host_bytes(spec: &MapSpec) -> Result<u64, String> {
    if spec.flags & BPF_F_STACK_BUILD_ID != 0 {
        return Err(
            "BPF_F_STACK_BUILD_ID stack maps are not supported: bpfx has no executables to \
             read build ids from (EOPNOTSUPP)"
                .into(),
        );
    }
    if spec.flags & !CREATE_FLAGS != 0 {
        return Err(format!(
            "map flags {:#x} are not valid for a stack trace map (EINVAL)",
            spec.flags
        ));
    }
    if spec.key_size != 4
        || spec.value_size < 8
        || !spec.value_size.is_multiple_of(8)
        || spec.value_size / 8 > PERF_MAX_STACK_DEPTH
    {
        return Err(format!(
            "a stack trace map has 4-byte keys and values of 1 to {PERF_MAX_STACK_DEPTH} \
             8-byte frames, not key size {} and value size {} (EINVAL)",
            spec.key_size, spec.value_size
        ));
    }
    if spec.max_entries == 0 {
        return Err("max_entries is 0 (EINVAL)".into());
    }
    if spec.max_entries > 1 << 31 {
        return Err(format!(
            "max_entries {} rounds up past 2^31 buckets (E2BIG)",
            spec.max_entries
        ));
    }
    checked_size(&[(
        u64::from(buckets(spec.max_entries)),
        u64::from(spec.value_size) + BUCKET_OVERHEAD,
    )])
}

/// The number of buckets: `max_entries` rounded up to a power of two (at most `2^31`,
/// checked by [`host_bytes`]).
fn buckets(max_entries: u32) -> u32 {
    max_entries.checked_next_power_of_two().unwrap_or(1 << 31)
}

/// One stored stack.
struct Bucket {
    hash: u64,
    frames: Box<[u64]>,
}

/// A stack trace map.
pub(crate) struct StackTrace {
    value_size: usize,
    buckets: Mutex<Vec<Option<Bucket>>>,
}

fn lock(m: &Mutex<Vec<Option<Bucket>>>) -> std::sync::MutexGuard<'_, Vec<Option<Bucket>>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl StackTrace {
    pub(crate) fn new(spec: &MapSpec) -> Result<StackTrace, crate::map::CreateError> {
        Ok(StackTrace {
            value_size: spec.value_size as usize,
            buckets: Mutex::new(crate::map::try_vec(buckets(spec.max_entries) as usize)?),
        })
    }

    /// `bpf_get_stackid` on the captured stack `frames` (innermost first): the stack's id, or
    /// a negative errno (see the module and [`crate::helpers`] documentation).
    pub(crate) fn get_stackid(&self, frames: &[u64], flags: u64) -> i64 {
        if flags
            & !(BPF_F_SKIP_FIELD_MASK
                | BPF_F_USER_STACK
                | BPF_F_FAST_STACK_CMP
                | BPF_F_REUSE_STACKID)
            != 0
        {
            return EINVAL;
        }
        if flags & BPF_F_USER_STACK != 0 {
            // No user registers in any bpfx context: no user stack to walk.
            return EFAULT;
        }
        let skip = (flags & BPF_F_SKIP_FIELD_MASK) as usize;
        let Some(rest) = frames.get(skip..).filter(|r| !r.is_empty()) else {
            return EFAULT;
        };
        let depth = rest.len().min(self.value_size / 8);
        let frames = &rest[..depth];
        let mut h = DefaultHasher::new();
        for f in frames {
            h.write_u64(*f);
        }
        let hash = h.finish();
        let mut b = lock(&self.buckets);
        let id = (hash & (b.len() as u64 - 1)) as usize;
        if let Some(old) = &b[id] {
            let same =
                old.hash == hash && (flags & BPF_F_FAST_STACK_CMP != 0 || *old.frames == *frames);
            if same {
                return id as i64;
            }
            if flags & BPF_F_REUSE_STACKID == 0 {
                return EEXIST;
            }
        }
        b[id] = Some(Bucket {
            hash,
            frames: frames.into(),
        });
        id as i64
    }

    fn id(key: &[u8]) -> Option<usize> {
        Some(u32::from_le_bytes(key.get(..4)?.try_into().ok()?) as usize)
    }

    fn value(&self, bucket: &Bucket) -> Vec<u8> {
        let mut v = vec![0u8; self.value_size];
        for (chunk, f) in v.chunks_exact_mut(8).zip(bucket.frames.iter()) {
            chunk.copy_from_slice(&f.to_le_bytes());
        }
        v
    }
}

impl MapImpl for StackTrace {
    fn kind(&self) -> MapKind {
        MapKind::StackTrace
    }

    fn block(&self) -> Option<&Arc<SharedMem>> {
        None
    }

    fn prog_lookup(&self, _key: &[u8], _cpu: u32) -> Option<u64> {
        None
    }

    fn prog_update(&self, _: &[u8], _: &[u8], _: u64, _: u32) -> Result<(), MapError> {
        Err(MapError::Unsupported(MapKind::StackTrace))
    }

    fn prog_delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.delete(key)
    }

    fn host_value_size(&self) -> usize {
        self.value_size
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let b = lock(&self.buckets);
        Ok(Self::id(key)
            .and_then(|id| b.get(id)?.as_ref())
            .map(|bucket| self.value(bucket)))
    }

    fn update(&self, _key: &[u8], _value: &[u8], _flag: UpdateFlag) -> Result<(), MapError> {
        Err(MapError::Unsupported(MapKind::StackTrace))
    }

    fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let mut b = lock(&self.buckets);
        Self::id(key)
            .and_then(|id| b.get_mut(id)?.take())
            .map(|_| ())
            .ok_or(MapError::NotFound)
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        let b = lock(&self.buckets);
        let start = match key.and_then(Self::id) {
            Some(id) if b.get(id).is_some_and(Option::is_some) => id + 1,
            _ => 0,
        };
        Ok((start..b.len())
            .find(|&i| b[i].is_some())
            .map(|i| (i as u32).to_le_bytes().to_vec()))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let b = lock(&self.buckets);
        b.iter()
            .enumerate()
            .filter_map(|(i, s)| Some(((i as u32).to_le_bytes().to_vec(), self.value(s.as_ref()?))))
            .collect()
    }

    fn len(&self) -> usize {
        lock(&self.buckets).iter().filter(|s| s.is_some()).count()
    }

    fn as_stack_trace(&self) -> Option<&StackTrace> {
        Some(self)
    }
}

impl crate::map::Map {
    /// `bpf_get_stackid` into this stack trace map with the captured stack `frames`
    /// (innermost first): the id or a negative errno, as the helper returns it.
    pub(crate) fn get_stackid(&self, frames: &[u64], flags: u64) -> Result<i64, MapError> {
        self.ext()
            .and_then(MapImpl::as_stack_trace)
            .map(|s| s.get_stackid(frames, flags))
            .ok_or(MapError::Unsupported(self.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value_size: u32, entries: u32) -> MapSpec {
        MapSpec::new("s", MapKind::StackTrace, 4, value_size, entries)
    }

    #[test]
    fn ids_frames_and_collisions() {
        let m = StackTrace::new(&spec(16, 1)).unwrap();
        // One bucket: every stack has id 0.
        assert_eq!(m.get_stackid(&[0x10, 0x20, 0x30], 0), 0);
        assert_eq!(
            m.get_stackid(&[0x10, 0x20, 0x30], 0),
            0,
            "same stack, same id"
        );
        let v = m.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
        assert_eq!(
            v,
            [0x10u64.to_le_bytes(), 0x20u64.to_le_bytes()].concat(),
            "depth 2"
        );
        assert_eq!(m.get_stackid(&[0x99], 0), EEXIST);
        assert_eq!(m.get_stackid(&[0x99], BPF_F_REUSE_STACKID), 0);
        let v = m.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
        assert_eq!(v, [0x99u64.to_le_bytes(), [0; 8]].concat(), "zero-filled");
        assert_eq!(m.get_stackid(&[0x99], 1), EFAULT, "all frames skipped");
        assert_eq!(m.get_stackid(&[], 0), EFAULT);
        assert_eq!(m.get_stackid(&[0x99], BPF_F_USER_STACK), EFAULT);
        assert_eq!(m.get_stackid(&[0x99], 1 << 11), EINVAL);
        assert_eq!(m.get_stackid(&[0x99], BPF_F_FAST_STACK_CMP), 0);
        assert_eq!(
            m.get_stackid(&[0x5, 0x99], 1),
            0,
            "skip 1 leaves the stored stack"
        );
        assert_eq!(m.delete(&0u32.to_le_bytes()), Ok(()));
        assert_eq!(m.delete(&0u32.to_le_bytes()), Err(MapError::NotFound));
        assert_eq!(m.next_key(None), Ok(None));
    }
}
