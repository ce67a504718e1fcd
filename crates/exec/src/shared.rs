//! Memory the embedder lends to programs besides the input and the stack: map values, global
//! data, ring buffers.
//!
//! Such memory may be shared by programs running on several threads at once (the kernel's
//! model: map values are plain memory that programs race on, and use atomics when they care).
//! Safe Rust cannot hand out `&mut [u8]` to memory other threads touch, so the bytes live in
//! `AtomicU64` words: the interpreter and helpers access them through relaxed atomic operations
//! on the containing words, and generated code accesses the same bytes with plain machine loads
//! and stores (which is what relaxed atomics compile to on x86-64).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// `n` zeroed atomic words from a zeroed allocation (`calloc`), which writes nothing: the
/// allocator's fresh pages (every block glibc serves with its own `mmap`, above 128 KiB at
/// first and 32 MiB at most) are the kernel's zero pages until first written, so the block
/// costs resident memory only for the pages used. (Building the words one by one, as
/// collecting `AtomicU64::new(0)` does, writes and so commits every page at once.) `None`
/// when the host cannot give the memory (or `n` words overflow the address space): the
/// caller reports it (a map's creation fails with the runtime's memory error), never an
/// abort.
pub fn zeroed_words(n: usize) -> Option<Box<[AtomicU64]>> {
    use zerocopy::FromZeros;
    <[AtomicU64]>::new_box_zeroed_with_elems(n).ok()
}

/// A fixed-size block of shared guest memory at a stable address.
///
/// # Invariants
/// `len <= words.len() * 8`; the words are never reallocated, so `addr()` stays valid for the
/// block's whole life; bytes past `len` are never accessible to programs.
#[derive(Debug)]
pub struct SharedMem {
    words: Box<[AtomicU64]>,
    len: usize,
    writable: bool,
}

impl SharedMem {
    /// A zeroed block of `len` bytes (8-byte aligned), or `None` when the host cannot give
    /// the memory.
    ///
    /// The words come from a zeroed allocation ([`zeroed_words`]) and are not written here, so
    /// a large block takes address space at once but physical pages only as they are first
    /// touched.
    pub fn try_new(len: usize, writable: bool) -> Option<Arc<SharedMem>> {
        let words = zeroed_words(len.div_ceil(8))?;
        Some(Arc::new(SharedMem {
            words,
            len,
            writable,
        }))
    }

    /// [`SharedMem::try_new`] for a block the caller knows is small (a test's, a fixed
    /// structure's): panics, as any failed allocation does, when the memory cannot be had.
    /// Whatever a program or an object sizes (map storage) uses [`SharedMem::try_new`].
    pub fn new(len: usize, writable: bool) -> Arc<SharedMem> {
        match SharedMem::try_new(len, writable) {
            Some(m) => m,
            None => panic!("cannot allocate {len} bytes of shared memory"),
        }
    }

    /// A block holding a copy of `data`.
    pub fn from_bytes(data: &[u8], writable: bool) -> Arc<SharedMem> {
        let m = SharedMem::new(data.len(), writable);
        m.write(0, data);
        m
    }

    /// Host address of the first byte (what a program sees as a pointer).
    pub fn addr(&self) -> u64 {
        self.words.as_ptr() as u64
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether programs may store into it (read-only data is not).
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The offset of `[addr, addr + len)` inside the block, if it lies wholly inside (no wrap:
    /// the same rule as [`crate::Region::offset_of`]).
    pub fn offset_of(&self, addr: u64, len: usize) -> Option<usize> {
        let rel = addr.wrapping_sub(self.addr());
        let (size, len) = (self.len as u64, len as u64);
        (len <= size && rel <= size - len).then_some(rel as usize)
    }

    fn byte(&self, off: usize) -> u8 {
        (self.words[off / 8].load(Relaxed) >> ((off % 8) * 8)) as u8
    }

    /// Copies bytes out, starting at `off`. Panics if the range is outside the block.
    pub fn read(&self, off: usize, out: &mut [u8]) {
        assert!(off + out.len() <= self.len, "read outside shared memory");
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.byte(off + i);
        }
    }

    /// Copies bytes in, starting at `off`, whatever `writable` says (the host may always write).
    /// Panics if the range is outside the block.
    pub fn write(&self, off: usize, data: &[u8]) {
        assert!(off + data.len() <= self.len, "write outside shared memory");
        // One read-modify-write per touched word, so concurrent writers of other bytes of the
        // same word are never lost.
        let mut i = 0;
        while i < data.len() {
            let at = off + i;
            let (w, shift) = (at / 8, at % 8);
            let n = (8 - shift).min(data.len() - i);
            let mut bits = 0u64;
            let mut mask = 0u64;
            for k in 0..n {
                bits |= u64::from(data[i + k]) << ((shift + k) * 8);
                mask |= 0xffu64 << ((shift + k) * 8);
            }
            let _ = self.words[w].fetch_update(Relaxed, Relaxed, |old| Some((old & !mask) | bits));
            i += n;
        }
    }

    /// Loads a little-endian value of `size` (1, 2, 4 or 8) bytes at `off`, zero-extended.
    pub fn load(&self, off: usize, size: usize) -> u64 {
        let mut b = [0u8; 8];
        self.read(off, &mut b[..size]);
        u64::from_le_bytes(b)
    }

    /// Stores the low `size` bytes of `value` at `off`.
    pub fn store(&self, off: usize, size: usize, value: u64) {
        self.write(off, &value.to_le_bytes()[..size]);
    }

    /// Atomically replaces the `size`-byte value at `off` with `f(old)` and returns `old`. The
    /// update is one atomic operation when the value lies inside one 8-byte word (every
    /// naturally aligned access does); a value straddling two words is updated word by word.
    pub fn update(&self, off: usize, size: usize, f: impl Fn(u64) -> u64) -> u64 {
        let shift = off % 8;
        if shift + size <= 8 {
            let bits = (size * 8) as u32;
            let mask = if bits == 64 {
                u64::MAX
            } else {
                ((1u64 << bits) - 1) << (shift * 8)
            };
            let word = &self.words[off / 8];
            let prev = word
                .fetch_update(Relaxed, Relaxed, |w| {
                    let old = (w & mask) >> (shift * 8);
                    Some((w & !mask) | ((f(old) << (shift * 8)) & mask))
                })
                .expect("the closure always returns Some");
            (prev & mask) >> (shift * 8)
        } else {
            let old = self.load(off, size);
            self.store(off, size, f(old));
            old
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_roundtrip_across_word_boundaries() {
        let m = SharedMem::new(20, true);
        m.write(5, &[1, 2, 3, 4, 5, 6, 7]);
        let mut out = [0u8; 9];
        m.read(4, &mut out);
        assert_eq!(out, [0, 1, 2, 3, 4, 5, 6, 7, 0]);
        m.store(14, 4, 0xdead_beef);
        assert_eq!(m.load(14, 4), 0xdead_beef);
        assert_eq!(m.load(16, 2), 0xdead);
    }

    #[test]
    fn update_returns_old_value_and_keeps_neighbours() {
        let m = SharedMem::from_bytes(&[0xff; 16], true);
        assert_eq!(m.update(4, 4, |v| v.wrapping_add(1)), 0xffff_ffff);
        assert_eq!(m.load(0, 8), 0x0000_0000_ffff_ffff);
        assert_eq!(m.update(0, 8, |_| 7), 0x0000_0000_ffff_ffff);
        assert_eq!(m.update(6, 4, |_| 0x1234_5678), 0xffff_0000);
        assert_eq!(m.load(6, 4), 0x1234_5678);
    }

    #[test]
    fn zeroed_words_are_zero() {
        let w = zeroed_words(1 << 16).unwrap();
        assert_eq!(w.len(), 1 << 16);
        assert!(w.iter().all(|x| x.load(Relaxed) == 0));
        assert!(zeroed_words(0).unwrap().is_empty());
        // More words than the address space holds: refused, not an abort.
        assert!(zeroed_words(usize::MAX / 4).is_none());
        assert!(SharedMem::try_new(usize::MAX - 7, true).is_none());
        let m = SharedMem::new(13, true);
        assert_eq!((m.len(), m.load(8, 4)), (13, 0));
    }

    #[test]
    fn offset_of_never_wraps() {
        let m = SharedMem::new(8, false);
        assert_eq!(m.offset_of(m.addr(), 8), Some(0));
        assert_eq!(m.offset_of(m.addr() + 1, 8), None);
        assert_eq!(m.offset_of(u64::MAX, 2), None);
        assert!(!m.writable());
    }
}
