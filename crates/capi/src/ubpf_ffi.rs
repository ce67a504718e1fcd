//! The exported `ubpf_*` functions of `include/ubpf.h`, with uBPF's signatures and return
//! conventions (0 / -1, `char **errmsg` allocated with `malloc` for the caller to `free`), and
//! the trampolines `ubpf_compile` returns.
//!
//! Failures are also printed to stderr, as uBPF's default error printer does, and recorded as
//! the thread's `bpfx_last_error`.

use crate::error::set_last_error;
use crate::ffi::{Guarded, free_guarded, malloc_string, panic_fail};
use crate::ubpf::{self, JIT_SLOTS, UbpfVm};
use crate::vm::HostFn;
use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// The opaque `struct ubpf_vm`.
pub struct UbpfVmHandle(Guarded<UbpfVm>);

impl std::fmt::Debug for UbpfVmHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ubpf_vm")
    }
}

/// `external_function_t`: a helper with five `uint64_t` arguments.
pub type ExternalFn = unsafe extern "C" fn(u64, u64, u64, u64, u64) -> u64;

/// `ubpf_jit_fn`: what `ubpf_compile` returns.
pub type JitFn = unsafe extern "C" fn(*mut c_void, usize) -> u64;

/// Reports a failure the uBPF way: stderr, `*errmsg` (when given), the thread's last error.
///
/// # Safety
/// `errmsg` is NULL or writable.
unsafe fn report(errmsg: *mut *mut c_char, message: &str) {
    eprintln!("uBPF error: {message}");
    set_last_error(message);
    if !errmsg.is_null() {
        // SAFETY: non-NULL and writable (caller contract).
        unsafe { errmsg.write(malloc_string(message)) };
    }
}

/// Runs `body` on the VM behind `vm`, catching panics; 0 on success, -1 on failure.
///
/// # Safety
/// `vm` is NULL or a live handle from `ubpf_create`, not used by another thread meanwhile;
/// `errmsg` is NULL or writable.
unsafe fn with_vm(
    vm: *mut UbpfVmHandle,
    errmsg: *mut *mut c_char,
    body: impl FnOnce(&mut UbpfVm) -> Result<(), String>,
) -> c_int {
    if !errmsg.is_null() {
        // SAFETY: non-NULL and writable (caller contract); uBPF callers expect NULL on success.
        unsafe { errmsg.write(std::ptr::null_mut()) };
    }
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: NULL (checked) or a live handle (caller contract), borrowed shared only: a
        // call on it from the helper of its own run is refused by `exclusive`.
        let v = unsafe { vm.as_ref() }.ok_or("vm is NULL")?;
        let mut held = v.0.exclusive("vm").map_err(|f| f.message)?;
        body(held.get())
    }))
    .unwrap_or_else(|p| Err(panic_fail(p).message));
    match r {
        Ok(()) => {
            set_last_error("");
            0
        }
        Err(m) => {
            // SAFETY: forwarded contract.
            unsafe { report(errmsg, &m) };
            -1
        }
    }
}

/// # Safety
/// `p` is NULL or points to `len` bytes valid for `'a` (readable; writable when mutated).
unsafe fn slice_mut<'a>(p: *mut c_void, len: usize, what: &str) -> Result<&'a mut [u8], String> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(format!("{what} is NULL with length {len}"));
    }
    if len > isize::MAX as usize {
        return Err(format!("{what}: length {len} is too large"));
    }
    // SAFETY: non-NULL, length in range, the caller's contract for the bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
}

/// # Safety
/// As [`slice_mut`], read-only.
unsafe fn slice<'a>(p: *const c_void, len: usize, what: &str) -> Result<&'a [u8], String> {
    if p.is_null() {
        return Err(format!("{what} is NULL"));
    }
    if len > isize::MAX as usize {
        return Err(format!("{what}: length {len} is too large"));
    }
    // SAFETY: non-NULL, length in range, the caller's contract for the bytes.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// A new VM; NULL only if bpfx failed internally.
#[unsafe(no_mangle)]
pub extern "C" fn ubpf_create() -> *mut UbpfVmHandle {
    catch_unwind(|| Box::into_raw(Box::new(UbpfVmHandle(Guarded::new(UbpfVm::new())))))
        .unwrap_or(std::ptr::null_mut())
}

/// Frees a VM and its trampoline slot. NULL is ignored; so is a VM a call has not returned
/// from (a helper destroying the VM that runs it), which `bpfx_last_error` reports.
///
/// # Safety
/// `vm` is NULL or a live handle from `ubpf_create`, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ubpf_destroy(vm: *mut UbpfVmHandle) {
    // SAFETY: forwarded contract; the handle is a box from `ubpf_create`.
    unsafe { free_guarded(vm, |v| &v.0, "vm") }
}

/// Records the previous bounds-check setting and returns it; bpfx always checks.
///
/// # Safety
/// `vm` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ubpf_toggle_bounds_check(vm: *mut UbpfVmHandle, enable: bool) -> bool {
    // SAFETY: NULL (checked) or a live handle, borrowed shared only.
    match unsafe { vm.as_ref() }.map(|v| v.0.exclusive("vm")) {
        Some(Ok(mut v)) => v.get().toggle_bounds_check(enable),
        _ => false,
    }
}

/// Casts a function address to `external_function_t`.
///
/// # Safety
/// `f` is NULL or the address of a function with the `external_function_t` signature.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn as_external_function_t(f: *mut c_void) -> Option<ExternalFn> {
    // SAFETY: on this platform data and function pointers have one size and representation;
    // NULL becomes `None`; the signature is the caller's promise.
    unsafe { std::mem::transmute::<*mut c_void, Option<ExternalFn>>(f) }
}

/// The closure that calls an external function.
fn host_fn(func: ExternalFn) -> HostFn {
    Arc::new(move |a: [u64; 5]| {
        // SAFETY: the embedder's function, callable with any arguments from the running thread
        // (uBPF's contract for external functions).
        unsafe { func(a[0], a[1], a[2], a[3], a[4]) }
    })
}

/// Registers `fn` at `index` (NULL unregisters); 0 on success, -1 for a NULL VM.
///
/// # Safety
/// `vm` is NULL or a live handle; `name` NULL or NUL-terminated; `fn` callable from any thread
/// that runs the program.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ubpf_register(
    vm: *mut UbpfVmHandle,
    index: c_uint,
    name: *const c_char,
    func: Option<ExternalFn>,
) -> c_int {
    // SAFETY: forwarded contract; `name` is checked for NULL before it is read.
    unsafe {
        with_vm(vm, std::ptr::null_mut(), |v| {
            let name = if name.is_null() {
                format!("helper_{index}")
            } else {
                CStr::from_ptr(name).to_string_lossy().into_owned()
            };
            v.register(index, &name, func.map(host_fn));
            Ok(())
        })
    }
}

/// Loads raw bytecode; 0 on success, -1 with `*errmsg` (to `free`) on failure.
///
/// # Safety
/// `vm` NULL or live; `code` NULL or `code_len` readable bytes; `errmsg` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ubpf_load(
    vm: *mut UbpfVmHandle,
    code: *const c_void,
    code_len: u32,
    errmsg: *mut *mut c_char,
) -> c_int {
    // SAFETY: forwarded contract; pointers checked.
    unsafe {
        with_vm(vm, errmsg, |v| {
            v.load(slice(code, code_len as usize, "code")?)
        })
    }
}

/// Loads the first program of an ELF object.
///
/// # Safety
/// As [`ubpf_load`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ubpf_load_elf(
    vm: *mut UbpfVmHandle,
    elf: *const c_void,
    elf_len: usize,
    errmsg: *mut *mut c_char,
) -> c_int {
    // SAFETY: forwarded contract; pointers checked.
    unsafe {
        with_vm(vm, errmsg, |v| {
            v.load_elf(slice(elf, elf_len, "elf")?, None)
        })
    }
}

/// Loads the program of an ELF object named (or in the section named) `main_section_name`.
///
/// # Safety
/// As [`ubpf_load`]; `main_section_name` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ubpf_load_elf_ex(
    vm: *mut UbpfVmHandle,
    elf: *const c_void,
    elf_len: usize,
    main_section_name: *const c_char,
    errmsg: *mut *mut c_char,
) -> c_int {
    // SAFETY: forwarded contract; pointers checked.
    unsafe {
        with_vm(vm, errmsg, |v| {
            let name = if main_section_name.is_null() {
                None
            } else {
                Some(
                    CStr::from_ptr(main_section_name)
                        .to_str()
                        .map_err(|_| "main_section_name is not UTF-8".to_string())?,
                )
            };
            v.load_elf(slice(elf, elf_len, "elf")?, name)
        })
    }
}

/// Unloads the code (and frees the VM's trampoline); registered functions stay.
///
/// # Safety
/// `vm` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ubpf_unload_code(vm: *mut UbpfVmHandle) {
    // SAFETY: forwarded contract.
    unsafe {
        with_vm(vm, std::ptr::null_mut(), |v| {
            v.unload();
            Ok(())
        })
    };
}

/// Runs the program on the interpreter with r1 = `mem`, r2 = `mem_len`; 0 and the result in
/// `*bpf_return_value`, or -1.
///
/// # Safety
/// `vm` NULL or live; `mem` NULL or `mem_len` writable bytes; `bpf_return_value` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ubpf_exec(
    vm: *const UbpfVmHandle,
    mem: *mut c_void,
    mem_len: usize,
    bpf_return_value: *mut u64,
) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: NULL (checked) or live; only shared access (runs take the VM's lock).
        let v = unsafe { vm.as_ref() }.ok_or("vm is NULL")?;
        let v = v.0.shared("vm").map_err(|f| f.message)?;
        if bpf_return_value.is_null() {
            return Err("bpf_return_value is NULL".to_string());
        }
        // SAFETY: the caller's contract for `mem`.
        let mem = unsafe { slice_mut(mem, mem_len, "mem") }?;
        if (bpf_return_value as usize).wrapping_sub(mem.as_ptr() as usize) < mem.len() {
            return Err("bpf_return_value lies inside mem".to_string());
        }
        let r0 = v.get().exec(mem)?;
        // SAFETY: non-NULL, writable (caller contract), outside `mem`.
        unsafe { bpf_return_value.write_unaligned(r0) };
        Ok(())
    }))
    .unwrap_or_else(|p| Err(panic_fail(p).message));
    match r {
        Ok(()) => {
            set_last_error("");
            0
        }
        Err(m) => {
            // SAFETY: no errmsg.
            unsafe { report(std::ptr::null_mut(), &m) };
            -1
        }
    }
}

/// Compiles the program and returns a function C calls as `fn(mem, mem_len)`; the same one
/// on every call for a VM. NULL with `*errmsg` on failure.
///
/// # Safety
/// As [`ubpf_load`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ubpf_compile(
    vm: *mut UbpfVmHandle,
    errmsg: *mut *mut c_char,
) -> Option<JitFn> {
    let mut slot = None;
    // SAFETY: forwarded contract.
    let rc = unsafe {
        with_vm(vm, errmsg, |v| {
            slot = Some(v.compile()?);
            Ok(())
        })
    };
    if rc != 0 {
        return None;
    }
    slot.and_then(|s| TRAMPOLINES.get(s).copied())
}

/// Sets the helper whose 0 return stops the program (the run then returns 0); -1 if one is
/// already set.
///
/// # Safety
/// `vm` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ubpf_set_unwind_function_index(
    vm: *mut UbpfVmHandle,
    idx: c_uint,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { with_vm(vm, std::ptr::null_mut(), |v| v.set_unwind(idx)) }
}

/// Trampoline `N`: runs the program compiled into slot `N`. A trap (or a slot with no program)
/// returns `UINT64_MAX` and prints the reason, since the signature has no error channel.
extern "C" fn trampoline<const N: usize>(mem: *mut c_void, mem_len: usize) -> u64 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ubpf_jit_fn`'s contract: `mem` is NULL or `mem_len` writable bytes.
        let mem = unsafe { slice_mut(mem, mem_len, "mem") }?;
        ubpf::run_slot(N, mem)
    }))
    .unwrap_or_else(|p| Err(panic_fail(p).message));
    match r {
        Ok(v) => {
            set_last_error("");
            v
        }
        Err(m) => {
            // SAFETY: no errmsg.
            unsafe { report(std::ptr::null_mut(), &m) };
            u64::MAX
        }
    }
}

macro_rules! trampolines {
    ($($n:literal)*) => {
        [$(trampoline::<$n> as JitFn),*]
    };
}

/// One trampoline per slot: distinct functions (each body names its own slot).
static TRAMPOLINES: [JitFn; JIT_SLOTS] = trampolines!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61
    62 63
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampolines_are_distinct_functions() {
        let mut addrs: Vec<usize> = TRAMPOLINES.iter().map(|f| *f as usize).collect();
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), JIT_SLOTS);
    }
}
