//! The exported `bpfx_*` functions of `include/bpfx.h`: each checks its pointers, turns them
//! into Rust references, calls the safe [`crate::vm`] layer inside `catch_unwind`, and returns
//! a status, recording the message for `bpfx_last_error` and `bpfx_vm_error`.
//!
//! The caller's contract (stated once here, and in `bpfx.h`): a non-NULL pointer points to what
//! its type says, for the length given, and stays valid for the call; a `bpfx_vm *` comes from
//! `bpfx_vm_new`, is not yet freed, and is used by one thread at a time. NULL pointers, lengths
//! without buffers, overlapping in/out buffers and bad enum values are detected and reported.

use crate::error::{Fail, Status, c_string, last_error_ptr, set_last_error};
use crate::object::{MapHandle, Obj, ObjectOpts, Prog, ProgOpts};
use crate::vm::{self, HostFn, Vm};
use runtime::Map;
use std::cell::UnsafeCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A `bpfx_status` coming from C: any int may arrive, so it is taken as one (an invalid value
/// in a Rust enum would be undefined behaviour).
pub type StatusCode = std::ffi::c_int;

/// The opaque `bpfx_vm` handed to C.
pub struct BpfxVm(Guarded<Vm>);

/// A handle's value and the calls using it. A call that takes the value exclusively (a run,
/// which may call the embedder's helpers) or shares it (a ring buffer consumer, which calls
/// the embedder's callback) marks the handle first, so that a call on the same handle from
/// inside the helper or callback (or from another thread meanwhile) is refused with
/// `BPFX_ERR_STATE` instead of reaching the value through a second reference, and a free of
/// a handle in use leaves it alone instead of releasing what the running call still uses.
/// The value sits in an `UnsafeCell`, so the handle itself is only ever borrowed shared: the
/// mark can be read while a call holds the value.
pub(crate) struct Guarded<T> {
    value: UnsafeCell<T>,
    /// `EXCLUSIVE` while one call holds the value mutably, else the number of calls sharing it.
    users: AtomicUsize,
}

/// [`Guarded::users`] while a call holds the value mutably.
const EXCLUSIVE: usize = usize::MAX;

impl<T> Guarded<T> {
    pub(crate) fn new(value: T) -> Guarded<T> {
        Guarded {
            value: UnsafeCell::new(value),
            users: AtomicUsize::new(0),
        }
    }

    fn busy(what: &str) -> Fail {
        Fail::new(
            Status::State,
            format!(
                "the {what} is in use by a call that has not returned (a helper or callback \
                 cannot use or free the handle whose call runs it; a handle is used by one \
                 thread at a time)"
            ),
        )
    }

    /// The value, mutably, while the returned guard lives; refused while any call uses it.
    pub(crate) fn exclusive(&self, what: &str) -> Result<Exclusive<'_, T>, Fail> {
        self.users
            .compare_exchange(0, EXCLUSIVE, Ordering::Acquire, Ordering::Relaxed)
            .map_err(|_| Guarded::<T>::busy(what))?;
        Ok(Exclusive(self))
    }

    /// The value, shared, while the returned guard lives; refused while a call holds it
    /// mutably.
    pub(crate) fn shared(&self, what: &str) -> Result<Shared<'_, T>, Fail> {
        self.users
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
                (n < EXCLUSIVE - 1).then(|| n + 1)
            })
            .map_err(|_| Guarded::<T>::busy(what))?;
        Ok(Shared(self))
    }
}

/// A [`Guarded`] value held mutably by one call.
pub(crate) struct Exclusive<'a, T>(&'a Guarded<T>);

impl<T> Exclusive<'_, T> {
    pub(crate) fn get(&mut self) -> &mut T {
        // SAFETY: `users` went from 0 to EXCLUSIVE when this guard was made and stays there
        // until it drops, so no other `Exclusive` or `Shared` of this value exists: this is
        // the only reference to the cell's contents, and it borrows the guard.
        unsafe { &mut *self.0.value.get() }
    }
}

impl<T> Drop for Exclusive<'_, T> {
    fn drop(&mut self) {
        self.0.users.store(0, Ordering::Release);
    }
}

/// A [`Guarded`] value shared by calls.
pub(crate) struct Shared<'a, T>(&'a Guarded<T>);

impl<T> Shared<'_, T> {
    pub(crate) fn get(&self) -> &T {
        // SAFETY: `users` counts this guard and is not EXCLUSIVE while it lives, so no
        // `Exclusive` of this value exists and nothing mutates the cell's contents.
        unsafe { &*self.0.value.get() }
    }
}

impl<T> Drop for Shared<'_, T> {
    fn drop(&mut self) {
        self.0.users.fetch_sub(1, Ordering::Release);
    }
}

/// Frees a boxed [`Guarded`] handle unless a call uses it (then it is left alone and the
/// thread's last error says why); NULL is ignored.
///
/// # Safety
/// `p` is NULL or a live handle from `Box::into_raw`, not used again afterwards unless this
/// refused to free it.
pub(crate) unsafe fn free_guarded<H, T>(p: *mut H, guard: fn(&H) -> &Guarded<T>, what: &str) {
    // SAFETY: NULL (checked) or a live handle (caller contract), borrowed shared only.
    let Some(h) = (unsafe { p.as_ref() }) else {
        return;
    };
    let g = guard(h);
    if g.users
        .compare_exchange(0, EXCLUSIVE, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        set_last_error(&Guarded::<T>::busy(what).message);
        return;
    }
    // SAFETY: a live handle from `Box::into_raw`, freed once (caller contract), and no call
    // uses it (it is marked EXCLUSIVE, so none can start).
    let b = unsafe { Box::from_raw(p) };
    // A panic in a destructor must not cross into C; the memory is then leaked, not reused.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(b)));
}

impl std::fmt::Debug for BpfxVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bpfx_vm")
    }
}

/// `bpfx_xdp_result`: what an XDP run on a packet buffer gave.
#[repr(C)]
#[derive(Debug)]
pub struct BpfxXdpResult {
    /// r0: the `XDP_*` verdict.
    pub action: u64,
    /// Offset of the final frame's first byte in the buffer.
    pub start: usize,
    /// The final frame's length.
    pub len: usize,
    /// Bytes of metadata just before the frame.
    pub meta_len: usize,
}

/// `bpfx_skb_meta`: a TC program's socket-buffer metadata (`bpfx::SkbMeta`), before a run
/// and after it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BpfxSkbMeta {
    /// `pkt_type`.
    pub pkt_type: u32,
    /// `mark`.
    pub mark: u32,
    /// `queue_mapping`.
    pub queue_mapping: u16,
    /// The EtherType, as a number (the program reads it in network byte order).
    pub protocol: u16,
    /// `vlan_present` (0 or 1).
    pub vlan_present: u32,
    /// `vlan_tci`.
    pub vlan_tci: u16,
    /// The VLAN protocol, as a number (read in network byte order).
    pub vlan_proto: u16,
    /// `priority`.
    pub priority: u32,
    /// `ingress_ifindex`.
    pub ingress_ifindex: u32,
    /// `ifindex`.
    pub ifindex: u32,
    /// `tc_index`.
    pub tc_index: u16,
    /// `tc_classid`.
    pub tc_classid: u16,
    /// `cb[0..5]`.
    pub cb: [u32; 5],
    /// `hash`.
    pub hash: u32,
    /// `napi_id`.
    pub napi_id: u32,
    /// `wire_len`.
    pub wire_len: u32,
    /// `gso_segs`.
    pub gso_segs: u32,
    /// `gso_size`.
    pub gso_size: u32,
    /// `tstamp_type`.
    pub tstamp_type: u8,
    /// `tstamp` (nanoseconds).
    pub tstamp: u64,
    /// `hwtstamp`.
    pub hwtstamp: u64,
}

impl From<BpfxSkbMeta> for runtime::SkbMeta {
    fn from(m: BpfxSkbMeta) -> Self {
        runtime::SkbMeta {
            pkt_type: m.pkt_type,
            mark: m.mark,
            queue_mapping: m.queue_mapping,
            protocol: m.protocol,
            vlan_present: m.vlan_present,
            vlan_tci: m.vlan_tci,
            vlan_proto: m.vlan_proto,
            priority: m.priority,
            ingress_ifindex: m.ingress_ifindex,
            ifindex: m.ifindex,
            tc_index: m.tc_index,
            cb: m.cb,
            hash: m.hash,
            tc_classid: m.tc_classid,
            napi_id: m.napi_id,
            tstamp: m.tstamp,
            wire_len: m.wire_len,
            gso_segs: m.gso_segs,
            gso_size: m.gso_size,
            tstamp_type: m.tstamp_type,
            hwtstamp: m.hwtstamp,
            // The C API gives no tunnel key (a packet not received through a tunnel).
            tunnel: None,
        }
    }
}

impl From<runtime::SkbMeta> for BpfxSkbMeta {
    fn from(m: runtime::SkbMeta) -> Self {
        BpfxSkbMeta {
            pkt_type: m.pkt_type,
            mark: m.mark,
            queue_mapping: m.queue_mapping,
            protocol: m.protocol,
            vlan_present: m.vlan_present,
            vlan_tci: m.vlan_tci,
            vlan_proto: m.vlan_proto,
            priority: m.priority,
            ingress_ifindex: m.ingress_ifindex,
            ifindex: m.ifindex,
            tc_index: m.tc_index,
            tc_classid: m.tc_classid,
            cb: m.cb,
            hash: m.hash,
            napi_id: m.napi_id,
            wire_len: m.wire_len,
            gso_segs: m.gso_segs,
            gso_size: m.gso_size,
            tstamp_type: m.tstamp_type,
            tstamp: m.tstamp,
            hwtstamp: m.hwtstamp,
        }
    }
}

/// `bpfx_tc_result`: what a TC run on a packet buffer gave.
#[repr(C)]
#[derive(Debug)]
pub struct BpfxTcResult {
    /// The `TC_ACT_*` verdict (`TC_ACT_UNSPEC` is -1).
    pub action: i32,
    /// Offset of the final packet's first byte in the buffer.
    pub start: usize,
    /// The final packet's length.
    pub len: usize,
}

/// `bpfx_redirect`: where the last run redirected its packet.
#[repr(C)]
#[derive(Debug)]
pub struct BpfxRedirect {
    /// A `BPFX_REDIRECT_*` code.
    pub kind: u32,
    /// The ifindex (`BPFX_REDIRECT_IFINDEX`, `BPFX_REDIRECT_PEER`) or the map key
    /// (`BPFX_REDIRECT_MAP`).
    pub target: u32,
    /// 1: to the device's ingress (`IFINDEX`), or leaving the ingress device out
    /// (`BROADCAST`); else 0.
    pub flags: u32,
    /// The map's name (`MAP`, `BROADCAST`), owned by the VM until its next run; else NULL.
    pub map: *const c_char,
}

/// `BPFX_REDIRECT_NONE`: the run did not redirect.
pub const REDIRECT_NONE: u32 = 0;
/// `BPFX_REDIRECT_IFINDEX`: `bpf_redirect` to a device.
pub const REDIRECT_IFINDEX: u32 = 1;
/// `BPFX_REDIRECT_MAP`: `bpf_redirect_map` to an entry of a map.
pub const REDIRECT_MAP: u32 = 2;
/// `BPFX_REDIRECT_BROADCAST`: `bpf_redirect_map` to every entry of a device map.
pub const REDIRECT_BROADCAST: u32 = 3;
/// `BPFX_REDIRECT_SOCKET`: `bpf_sk_redirect_map`/`bpf_sk_redirect_hash` to the socket of an
/// entry of a socket map (`target` its index) or socket hash (`target` 0).
pub const REDIRECT_SOCKET: u32 = 4;
/// `BPFX_REDIRECT_PEER`: `bpf_redirect_peer` to the peer of a device.
pub const REDIRECT_PEER: u32 = 5;

/// `bpfx_trap_info`: where and why the last run trapped.
#[repr(C)]
#[derive(Debug)]
pub struct BpfxTrapInfo {
    /// The `BPFX_TRAP_*` code (the stable `TrapKind` code).
    pub kind: u32,
    /// The instruction that trapped.
    pub pc: u32,
    /// The message (program, pc, instruction, reason); owned by the VM, valid until its next
    /// run or until it is freed.
    pub message: *const c_char,
}

/// `bpfx_perf_record`: what `bpfx_perf_read` took from a perf event array.
#[repr(C)]
#[derive(Debug)]
pub struct BpfxPerfRecord {
    /// The CPU (buffer index) of the record.
    pub cpu: u32,
    /// Not 0: a lost-records notice, with this count (and no data).
    pub lost: u64,
    /// The sample's full size in bytes (at most `data_cap` of them were copied).
    pub data_len: usize,
}

/// `bpfx_helper_fn`: a helper written in C, with the context pointer given at registration.
pub type HelperFn = unsafe extern "C" fn(u64, u64, u64, u64, u64, *mut c_void) -> u64;

unsafe extern "C" {
    fn malloc(size: usize) -> *mut c_void;
}

/// `text` in a buffer from the C allocator, so the caller frees it with `free()`; NULL when the
/// allocation fails.
pub(crate) fn malloc_string(text: &str) -> *mut c_char {
    let s = c_string(text);
    let bytes = s.as_bytes_with_nul();
    // SAFETY: malloc has no preconditions; its result is checked for NULL before use.
    let p = unsafe { malloc(bytes.len()) }.cast::<u8>();
    if !p.is_null() {
        // SAFETY: `p` is a fresh allocation of `bytes.len()` bytes, which cannot overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
    }
    p.cast()
}

/// The message of a panic caught at the boundary.
pub(crate) fn panic_fail(payload: Box<dyn std::any::Any + Send>) -> Fail {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string());
    Fail::new(
        Status::Internal,
        format!("internal error (please report it): {what}"),
    )
}

/// The VM behind a handle, shared by `bpfx_vm_*` calls.
///
/// # Safety
/// `vm` is NULL or a live handle from `bpfx_vm_new`.
unsafe fn vm_handle<'a>(vm: *const BpfxVm) -> Result<&'a Guarded<Vm>, Fail> {
    // SAFETY: the caller's contract: NULL (checked by `as_ref`) or a live handle, only ever
    // borrowed shared (its value is reached through the `Guarded` cell).
    unsafe { vm.as_ref() }
        .map(|v| &v.0)
        .ok_or_else(|| Fail::null("vm"))
}

/// Runs `body` on the VM, catching panics, and records the outcome as the thread's and the
/// VM's last error. A call on a VM that a call has not returned from (its helper's, or another
/// thread's) is refused with `BPFX_ERR_STATE` and leaves the VM as it was.
///
/// # Safety
/// As [`vm_handle`].
unsafe fn with_vm(vm: *mut BpfxVm, body: impl FnOnce(&mut Vm) -> Result<(), Fail>) -> Status {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded contract of this function.
        let g = unsafe { vm_handle(vm) }?;
        body(g.exclusive("vm")?.get())
    }))
    .unwrap_or_else(|p| Err(panic_fail(p)));
    let (status, message) = match &r {
        Ok(()) => (Status::Ok, ""),
        Err(f) => (f.status, f.message.as_str()),
    };
    set_last_error(message);
    // SAFETY: as above. A call refused because the VM is in use leaves its message alone.
    if let Ok(mut held) = unsafe { vm_handle(vm) }.and_then(|g| g.exclusive("vm")) {
        held.get().error = c_string(message);
    }
    status
}

/// # Safety
/// `p` is NULL or points to `len` readable bytes that stay valid and unchanged for `'a`.
unsafe fn bytes<'a>(p: *const c_void, len: usize, what: &str) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::null(what));
    }
    if len > isize::MAX as usize {
        return Err(Fail::arg(format!("{what}: length {len} is too large")));
    }
    // SAFETY: non-NULL, `len` in range, and the caller's contract for the bytes.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// # Safety
/// `p` is NULL or points to `len` writable bytes that nothing else accesses during `'a`.
unsafe fn bytes_mut<'a>(p: *mut c_void, len: usize, what: &str) -> Result<&'a mut [u8], Fail> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Fail::null(what));
    }
    if len > isize::MAX as usize {
        return Err(Fail::arg(format!("{what}: length {len} is too large")));
    }
    // SAFETY: non-NULL, `len` in range, and the caller's contract for the bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
}

/// [`bytes`] for an argument that must not be NULL even when `len` is 0.
///
/// # Safety
/// As [`bytes`].
unsafe fn required<'a>(p: *const c_void, len: usize, what: &str) -> Result<&'a [u8], Fail> {
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: forwarded contract of this function.
    unsafe { bytes(p, len, what) }
}

/// [`bytes_mut`] for an argument that must not be NULL even when `len` is 0.
///
/// # Safety
/// As [`bytes_mut`].
unsafe fn required_mut<'a>(p: *mut c_void, len: usize, what: &str) -> Result<&'a mut [u8], Fail> {
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: forwarded contract of this function.
    unsafe { bytes_mut(p, len, what) }
}

/// Whether two byte ranges share a byte (a shared and a mutable slice over one byte would be
/// undefined behaviour, so such calls are refused before any slice is made).
/// A NULL pointer is no range: the NULL check that follows reports it.
fn overlap(a: *const c_void, a_len: usize, b: *const c_void, b_len: usize) -> bool {
    let (a, b) = (a as usize, b as usize);
    a != 0
        && b != 0
        && a_len != 0
        && b_len != 0
        && a < b.saturating_add(b_len)
        && b < a.saturating_add(a_len)
}

/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for `'a`.
unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Fail::arg(format!("{what} is not valid UTF-8")))
}

/// The library's version, as a static string.
#[unsafe(no_mangle)]
pub extern "C" fn bpfx_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(s) => s,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

/// A short static description of a status; unknown codes get `"unknown status"`.
#[unsafe(no_mangle)]
pub extern "C" fn bpfx_status_name(status: StatusCode) -> *const c_char {
    Status::from_code(i64::from(status)).map_or(c"unknown status".as_ptr(), |s| s.name().as_ptr())
}

/// The stable lower-case name of a `BPFX_TRAP_*` code (`"out-of-bounds"`, …); `"none"` for 0,
/// `"unknown"` for other values.
#[unsafe(no_mangle)]
pub extern "C" fn bpfx_trap_kind_name(kind: u32) -> *const c_char {
    let name = match u8::try_from(kind)
        .ok()
        .and_then(runtime::TrapKind::from_code)
    {
        Some(k) => trap_kind_cstr(k),
        None if kind == 0 => c"none",
        None => c"unknown",
    };
    name.as_ptr()
}

fn trap_kind_cstr(k: runtime::TrapKind) -> &'static CStr {
    use runtime::TrapKind as T;
    match k {
        T::OutOfBounds => c"out-of-bounds",
        T::CallDepthExceeded => c"call-depth-exceeded",
        T::BudgetExhausted => c"budget-exhausted",
        T::HelperError => c"helper-error",
        T::UnknownHelper => c"unknown-helper",
        T::Unsupported => c"unsupported",
        T::FellOffEnd => c"fell-off-end",
        T::InputTooSmall => c"input-too-small",
        T::EnvMismatch => c"env-mismatch",
    }
}

/// The message of this thread's last `bpfx_*` call that returns a status (empty after a
/// success). Valid until this thread's next such call.
#[unsafe(no_mangle)]
pub extern "C" fn bpfx_last_error() -> *const c_char {
    last_error_ptr()
}

/// A new VM with the standard helpers; NULL only if bpfx failed internally.
#[unsafe(no_mangle)]
pub extern "C" fn bpfx_vm_new() -> *mut BpfxVm {
    match catch_unwind(|| Box::new(BpfxVm(Guarded::new(Vm::new())))) {
        Ok(b) => {
            set_last_error("");
            Box::into_raw(b)
        }
        Err(p) => {
            set_last_error(&panic_fail(p).message);
            std::ptr::null_mut()
        }
    }
}

/// Frees a VM, its maps and its compiled code. NULL is ignored; so is a VM a call has not
/// returned from (a helper freeing the VM that runs it), which `bpfx_last_error` reports.
///
/// # Safety
/// `vm` is NULL or a live handle from `bpfx_vm_new`, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_vm_free(vm: *mut BpfxVm) {
    // SAFETY: forwarded contract; the handle is a box from `bpfx_vm_new`.
    unsafe { free_guarded(vm, |v| &v.0, "vm") }
}

/// The message of the last call made on `vm` (empty after a success; `""` for NULL). Valid
/// until the next call on `vm`.
///
/// # Safety
/// `vm` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_vm_error(vm: *const BpfxVm) -> *const c_char {
    // SAFETY: NULL or a live handle (caller contract); only read.
    match unsafe { vm.as_ref() }.map(|v| v.0.shared("vm")) {
        Some(Ok(v)) => v.get().error.as_ptr(),
        // A helper asking while its run holds the VM: the run sets the message when it ends.
        Some(Err(_)) => c"the vm is in use by a call that has not returned".as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Registers helper `id` (replacing a standard one with that id). `args`/`nargs` give the
/// verifier its signature as `BPFX_ARG_*` codes; `args = NULL, nargs = 0` means unknown.
///
/// # Safety
/// Pointers as documented in `bpfx.h`; `fn` may be called with `ctx` from any thread that
/// runs the program, until the VM is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_register_helper(
    vm: *mut BpfxVm,
    id: u32,
    name: *const c_char,
    func: Option<HelperFn>,
    ctx: *mut c_void,
    args: *const u32,
    nargs: usize,
) -> Status {
    // SAFETY: every pointer is checked by the helpers it goes through.
    unsafe {
        with_vm(vm, |v| {
            let name = text(name, "name")?;
            let func = func.ok_or_else(|| Fail::null("fn"))?;
            let codes = if args.is_null() {
                if nargs != 0 {
                    return Err(Fail::null("args"));
                }
                None
            } else {
                if nargs > vm::MAX_HELPER_ARGS {
                    return Err(Fail::arg(format!(
                        "a helper takes at most {} arguments, not {nargs}",
                        vm::MAX_HELPER_ARGS
                    )));
                }
                // SAFETY: non-NULL with `nargs` (at most 5) elements, by the caller's contract.
                Some(std::slice::from_raw_parts(args, nargs))
            };
            let sig = vm::helper_args(codes)?;
            v.register_helper(id, name, sig, host_fn(func, HelperCtx(ctx)))
        })
    }
}

/// The closure that calls a C helper with its context.
fn host_fn(func: HelperFn, ctx: HelperCtx) -> HostFn {
    Arc::new(move |a: [u64; 5]| {
        // SAFETY: `func` and `ctx` are the embedder's helper and its context, callable from
        // the running thread for the VM's life (the registration contract in `bpfx.h`).
        unsafe { func(a[0], a[1], a[2], a[3], a[4], ctx.get()) }
    })
}

/// The context pointer of a C helper.
struct HelperCtx(*mut c_void);

impl HelperCtx {
    // A method rather than a field access, so closures capture the whole (Send + Sync) wrapper.
    fn get(&self) -> *mut c_void {
        self.0
    }
}

// SAFETY: bpfx never dereferences the pointer; it hands it back to the embedder's helper, whose
// registration contract makes it usable from any thread that runs the program.
unsafe impl Send for HelperCtx {}
// SAFETY: as for `Send`: shared only to be passed back unchanged.
unsafe impl Sync for HelperCtx {}

/// Called by a helper while it runs: when the helper returns, the run stops with
/// `BPFX_TRAP_HELPER_ERROR` and this message. Outside a helper it has no effect.
///
/// # Safety
/// `message` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_helper_fail(message: *const c_char) {
    let _ = catch_unwind(|| {
        // SAFETY: NULL (checked) or NUL-terminated (caller contract).
        let msg = match unsafe { text(message, "message") } {
            Ok(m) => m.to_string(),
            Err(_) => "the helper failed".to_string(),
        };
        vm::helper_fail(msg);
    });
}

/// Loads raw bytecode (`code_len` bytes, 8 per slot) as program `main`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_load_bytecode(
    vm: *mut BpfxVm,
    code: *const c_void,
    code_len: usize,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, and
    // `code` points to `code_len` readable bytes: the contracts of `with_vm` and `required`,
    // which check NULL.
    unsafe { with_vm(vm, |v| v.load_bytecode(required(code, code_len, "code")?)) }
}

/// Loads an ELF object from memory and chooses `program` (by name, else by section; NULL:
/// the first).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_load_elf(
    vm: *mut BpfxVm,
    elf: *const c_void,
    elf_len: usize,
    program: *const c_char,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, `elf`
    // points to `elf_len` readable bytes and `program` is NULL or NUL-terminated: the
    // contracts of `with_vm`, `required` and `text`, which check NULL.
    unsafe {
        with_vm(vm, |v| {
            let program = if program.is_null() {
                None
            } else {
                Some(text(program, "program")?)
            };
            v.load_elf(required(elf, elf_len, "elf")?, program)
        })
    }
}

/// Sets the context of the next verification (`BPFX_CONTEXT_*`; `size` and the offsets only
/// for struct contexts).
///
/// # Safety
/// `vm` as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_set_context(
    vm: *mut BpfxVm,
    kind: u32,
    size: u16,
    data_off: u16,
    data_end_off: u16,
) -> Status {
    // SAFETY: `vm` is NULL or a live handle no other thread uses meanwhile (bpfx.h), all
    // `with_vm` requires; it checks NULL.
    unsafe { with_vm(vm, |v| v.set_context(kind, size, data_off, data_end_off)) }
}

/// Sets the input size the next verification proves accesses against
/// (`BPFX_INPUT_SIZE_UNKNOWN` clears it).
///
/// # Safety
/// `vm` as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_set_input_size(vm: *mut BpfxVm, size: u64) -> Status {
    // SAFETY: `vm` is NULL or a live handle no other thread uses meanwhile (bpfx.h), all
    // `with_vm` requires; it checks NULL.
    unsafe {
        with_vm(vm, |v| {
            v.set_input_size((size != vm::INPUT_SIZE_UNKNOWN).then_some(size));
            Ok(())
        })
    }
}

/// Limits the memory of the VM's maps, global data and JIT code to `bytes`, before loading.
///
/// # Safety
/// `vm` as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_set_mem_limit(vm: *mut BpfxVm, bytes: u64) -> Status {
    // SAFETY: `vm` is NULL or a live handle no other thread uses meanwhile (bpfx.h), all
    // `with_vm` requires; it checks NULL.
    unsafe { with_vm(vm, |v| v.set_mem_limit(bytes)) }
}

/// Sets what each run may execute: `BPFX_BUDGET_DEFAULT`, `BPFX_BUDGET_UNLIMITED` or a number
/// of instructions.
///
/// # Safety
/// `vm` as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_set_budget(vm: *mut BpfxVm, budget: u64) -> Status {
    // SAFETY: `vm` is NULL or a live handle no other thread uses meanwhile (bpfx.h), all
    // `with_vm` requires; it checks NULL.
    unsafe {
        with_vm(vm, |v| {
            v.set_budget(budget);
            Ok(())
        })
    }
}

/// Verifies the loaded program (`BPFX_MODE_*`).
///
/// # Safety
/// `vm` as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_verify(vm: *mut BpfxVm, mode: u32) -> Status {
    // SAFETY: `vm` is NULL or a live handle no other thread uses meanwhile (bpfx.h), all
    // `with_vm` requires; it checks NULL.
    unsafe { with_vm(vm, |v| v.verify(mode)) }
}

/// Prepares the verified program on an engine (`BPFX_ENGINE_*`).
///
/// # Safety
/// `vm` as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_compile(vm: *mut BpfxVm, engine: u32) -> Status {
    // SAFETY: `vm` is NULL or a live handle no other thread uses meanwhile (bpfx.h), all
    // `with_vm` requires; it checks NULL.
    unsafe { with_vm(vm, |v| v.compile(engine)) }
}

/// Runs on `mem` (XDP programs: on a packet; the result is the action).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_run(
    vm: *mut BpfxVm,
    mem: *mut c_void,
    mem_len: usize,
    result: *mut u64,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, `mem`
    // points to `mem_len` writable bytes nothing else accesses during the call, and `result`
    // to a writable `u64`: the contracts of `with_vm` and `bytes_mut`; NULL and overlap are
    // checked before any slice is made.
    unsafe {
        with_vm(vm, |v| {
            if result.is_null() {
                return Err(Fail::null("result"));
            }
            if overlap(mem, mem_len, result.cast(), size_of::<u64>()) {
                return Err(Fail::arg("result lies inside mem"));
            }
            let r = v.run(bytes_mut(mem, mem_len, "mem")?)?;
            // SAFETY: non-NULL, writable by the caller's contract, outside `mem`.
            result.write_unaligned(r);
            Ok(())
        })
    }
}

/// A redirect target as a `bpfx_redirect` (its map name owned by the caller of this).
fn redirect_record(r: Option<&(runtime::RedirectTarget, CString)>) -> BpfxRedirect {
    use runtime::RedirectTarget as T;
    match r {
        None => BpfxRedirect {
            kind: REDIRECT_NONE,
            target: 0,
            flags: 0,
            map: std::ptr::null(),
        },
        Some((T::Ifindex { ifindex, ingress }, _)) => BpfxRedirect {
            kind: REDIRECT_IFINDEX,
            target: *ifindex,
            flags: u32::from(*ingress),
            map: std::ptr::null(),
        },
        Some((T::Peer { ifindex }, _)) => BpfxRedirect {
            kind: REDIRECT_PEER,
            target: *ifindex,
            flags: 0,
            map: std::ptr::null(),
        },
        Some((T::Map { key, .. }, name)) => BpfxRedirect {
            kind: REDIRECT_MAP,
            target: *key,
            flags: 0,
            map: name.as_ptr(),
        },
        Some((
            T::Broadcast {
                exclude_ingress, ..
            },
            name,
        )) => BpfxRedirect {
            kind: REDIRECT_BROADCAST,
            target: 0,
            flags: u32::from(*exclude_ingress),
            map: name.as_ptr(),
        },
        Some((
            T::Socket {
                kind, key, ingress, ..
            },
            name,
        )) => BpfxRedirect {
            kind: REDIRECT_SOCKET,
            target: match (kind, <[u8; 4]>::try_from(&key[..])) {
                (runtime::MapKind::SockMap, Ok(k)) => u32::from_le_bytes(k),
                _ => 0,
            },
            flags: u32::from(*ingress),
            map: name.as_ptr(),
        },
    }
}

/// Runs with an embedder-defined context struct and a packet.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_run_ctx(
    vm: *mut BpfxVm,
    ctx: *mut c_void,
    ctx_len: usize,
    packet: *mut c_void,
    packet_len: usize,
    result: *mut u64,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, `ctx`
    // and `packet` point to `ctx_len` and `packet_len` writable bytes nothing else accesses
    // during the call, and `result` to a writable `u64`: the contracts of `with_vm` and
    // `required_mut`/`bytes_mut`; NULL and overlap are checked before any slice is made.
    unsafe {
        with_vm(vm, |v| {
            if result.is_null() {
                return Err(Fail::null("result"));
            }
            let r8 = (result.cast::<c_void>(), size_of::<u64>());
            if overlap(ctx, ctx_len, packet, packet_len)
                || overlap(ctx, ctx_len, r8.0, r8.1)
                || overlap(packet, packet_len, r8.0, r8.1)
            {
                return Err(Fail::arg("ctx, packet and result must not overlap"));
            }
            let c = required_mut(ctx, ctx_len, "ctx")?;
            let p = bytes_mut(packet, packet_len, "packet")?;
            let r = v.run_ctx(c, p)?;
            // SAFETY: non-NULL, writable by the caller's contract, outside both buffers.
            result.write_unaligned(r);
            Ok(())
        })
    }
}

/// Runs an XDP program on a packet buffer: `start` bytes of headroom, a frame of `len` bytes,
/// the rest of the `buf_len` bytes tailroom; the buffer gets the final frame back.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_run_xdp(
    vm: *mut BpfxVm,
    buf: *mut c_void,
    buf_len: usize,
    start: usize,
    len: usize,
    out: *mut BpfxXdpResult,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, `buf`
    // points to `buf_len` writable bytes nothing else accesses during the call, and `out` to a
    // writable `bpfx_xdp_result`: the contracts of `with_vm` and `required_mut`; NULL and
    // overlap are checked before any slice is made.
    unsafe {
        with_vm(vm, |v| {
            if out.is_null() {
                return Err(Fail::null("out"));
            }
            if overlap(buf, buf_len, out.cast(), size_of::<BpfxXdpResult>()) {
                return Err(Fail::arg("out lies inside buf"));
            }
            let b = required_mut(buf, buf_len, "buf")?;
            let (action, start, len, meta_len) = v.run_xdp(b, start, len)?;
            // SAFETY: non-NULL, writable by the caller's contract, outside `buf`.
            out.write_unaligned(BpfxXdpResult {
                action,
                start,
                len,
                meta_len,
            });
            Ok(())
        })
    }
}

/// Runs a TC program on a packet buffer as `bpfx_run_xdp` runs an XDP program, with the
/// socket-buffer metadata `meta`, which gets the metadata after a successful run.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_run_tc(
    vm: *mut BpfxVm,
    buf: *mut c_void,
    buf_len: usize,
    start: usize,
    len: usize,
    meta: *mut BpfxSkbMeta,
    out: *mut BpfxTcResult,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, `buf`
    // points to `buf_len` writable bytes nothing else accesses during the call, `meta` to a
    // readable and writable `bpfx_skb_meta` and `out` to a writable `bpfx_tc_result`: the
    // contracts of `with_vm` and `required_mut`; NULL and overlap are checked before any
    // slice is made or anything read.
    unsafe {
        with_vm(vm, |v| {
            let mut m = tc_args(buf, buf_len, meta, out)?;
            let b = required_mut(buf, buf_len, "buf")?;
            let r = v.run_tc(b, start, len, &mut m);
            // SAFETY: non-NULL, writable by the caller's contract, outside `buf` (checked by
            // `tc_args`); written whether or not the run succeeded (unchanged if it did not).
            meta.write_unaligned(BpfxSkbMeta::from(m));
            let (action, start, len) = r?;
            // SAFETY: as `meta`.
            out.write_unaligned(BpfxTcResult { action, start, len });
            Ok(())
        })
    }
}

/// `bpfx_run_tc`'s argument checks: `meta` and `out` non-NULL, outside `buf` and apart; the
/// metadata `meta` holds.
///
/// # Safety
/// `meta` is NULL or points to a readable `bpfx_skb_meta`.
unsafe fn tc_args(
    buf: *mut c_void,
    buf_len: usize,
    meta: *mut BpfxSkbMeta,
    out: *mut BpfxTcResult,
) -> Result<runtime::SkbMeta, Fail> {
    if meta.is_null() {
        return Err(Fail::null("meta"));
    }
    if out.is_null() {
        return Err(Fail::null("out"));
    }
    let (m, ml) = (meta.cast::<c_void>(), size_of::<BpfxSkbMeta>());
    let (o, ol) = (out.cast::<c_void>(), size_of::<BpfxTcResult>());
    if overlap(buf, buf_len, m, ml) || overlap(buf, buf_len, o, ol) || overlap(m, ml, o, ol) {
        return Err(Fail::arg("buf, meta and out must not overlap"));
    }
    // SAFETY: non-NULL, readable by the caller's contract; any bit pattern is a valid value.
    Ok(unsafe { meta.read_unaligned() }.into())
}

/// Where the last run redirected its packet (`BPFX_REDIRECT_NONE` when it did not).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_last_redirect(vm: *mut BpfxVm, out: *mut BpfxRedirect) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, and
    // `out` points to a writable `bpfx_redirect`; `with_vm` checks `vm`, the body `out`.
    unsafe {
        with_vm(vm, |v| {
            if out.is_null() {
                return Err(Fail::null("out"));
            }
            let r = redirect_record(v.redirect());
            // SAFETY: non-NULL and writable by the caller's contract.
            out.write_unaligned(r);
            Ok(())
        })
    }
}

/// Where and why the last run trapped; `BPFX_ERR_STATE` if it did not.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_trap(vm: *mut BpfxVm, out: *mut BpfxTrapInfo) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, and
    // `out` points to a writable `BpfxTrapInfo`; `with_vm` checks `vm`, the body `out`.
    unsafe {
        with_vm(vm, |v| {
            if out.is_null() {
                return Err(Fail::null("out"));
            }
            let t = v.trap()?;
            // SAFETY: non-NULL and writable by the caller's contract.
            out.write_unaligned(BpfxTrapInfo {
                kind: u32::from(t.kind),
                pc: t.pc,
                message: t.message.as_ptr(),
            });
            Ok(())
        })
    }
}

/// Copies the value under `key` in map `map` into `value` (exactly the value size).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_lookup(
    vm: *mut BpfxVm,
    map: *const c_char,
    key: *const c_void,
    key_len: usize,
    value: *mut c_void,
    value_len: usize,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, `map`
    // is NUL-terminated, `key` points to `key_len` readable bytes and `value` to `value_len`
    // writable ones nothing else accesses during the call: the contracts of `with_vm`, `text`,
    // `required` and `required_mut`, which check NULL; overlap is checked before any slice.
    unsafe {
        with_vm(vm, |v| {
            let name = text(map, "map")?;
            if overlap(key, key_len, value, value_len) {
                return Err(Fail::arg("key and value must not overlap"));
            }
            let k = required(key, key_len, "key")?;
            v.map_lookup(name, k, required_mut(value, value_len, "value")?)
        })
    }
}

/// Stores `value` under `key` in map `map` (`flags`: 0 any, 1 create only, 2 replace only).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_update(
    vm: *mut BpfxVm,
    map: *const c_char,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
    flags: u64,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, `map`
    // is NUL-terminated, and `key` and `value` point to `key_len` and `value_len` readable
    // bytes: the contracts of `with_vm`, `text` and `required`, which check NULL.
    unsafe {
        with_vm(vm, |v| {
            let name = text(map, "map")?;
            let k = required(key, key_len, "key")?;
            v.map_update(name, k, required(value, value_len, "value")?, flags)
        })
    }
}

/// Removes `key` from map `map` (hash maps).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_delete(
    vm: *mut BpfxVm,
    map: *const c_char,
    key: *const c_void,
    key_len: usize,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, `map`
    // is NUL-terminated and `key` points to `key_len` readable bytes: the contracts of
    // `with_vm`, `text` and `required`, which check NULL.
    unsafe {
        with_vm(vm, |v| {
            let name = text(map, "map")?;
            v.map_delete(name, required(key, key_len, "key")?)
        })
    }
}

/// Takes the next record of perf event array `map` into `out` (and a sample's data into
/// `data`, at most `data_cap` bytes); `BPFX_ERR_NOT_FOUND` when none waits.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_perf_read(
    vm: *mut BpfxVm,
    map: *const c_char,
    out: *mut BpfxPerfRecord,
    data: *mut c_void,
    data_cap: usize,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle no other thread uses meanwhile, `map`
    // is NUL-terminated, `out` points to a writable `bpfx_perf_record` and `data` to
    // `data_cap` writable bytes nothing else accesses during the call: the contracts of
    // `with_vm`, `text` and `bytes_mut`; NULL and overlap are checked before any slice.
    unsafe {
        with_vm(vm, |v| {
            let name = text(map, "map")?;
            if out.is_null() {
                return Err(Fail::null("out"));
            }
            if overlap(out.cast(), size_of::<BpfxPerfRecord>(), data, data_cap) {
                return Err(Fail::arg("out and data must not overlap"));
            }
            let buf = bytes_mut(data, data_cap, "data")?;
            let rec = perf_record(v.perf_read(name)?, buf).ok_or_else(|| {
                Fail::new(Status::NotFound, format!("map `{name}`: no record waits"))
            })?;
            // SAFETY: non-NULL and writable by the caller's contract, outside `data`.
            out.write_unaligned(rec);
            Ok(())
        })
    }
}

/// The JIT listing of the compiled program, in a buffer the caller frees with `free()`; NULL
/// on error (the message says why).
///
/// # Safety
/// `vm` as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_listing(vm: *mut BpfxVm) -> *mut c_char {
    let mut out = std::ptr::null_mut();
    // SAFETY: `vm` is NULL or a live handle no other thread uses meanwhile (bpfx.h), all
    // `with_vm` requires; it checks NULL.
    unsafe {
        with_vm(vm, |v| {
            let text = v.listing()?;
            out = malloc_string(&text);
            if out.is_null() {
                return Err(Fail::new(Status::Internal, "out of memory for the listing"));
            }
            Ok(())
        })
    };
    out
}

// ---------------------------------------------------------------------------------------------
// The object API: objects, programs and maps as handles (libbpf-style), options as sized
// structs.
// ---------------------------------------------------------------------------------------------

/// The opaque `bpfx_object` handed to C.
pub struct BpfxObject(Obj);

/// The opaque `bpfx_program` handed to C.
pub struct BpfxProgram(Guarded<Prog>);

/// The opaque `bpfx_map` handed to C.
pub struct BpfxMap(Guarded<MapHandle>);

impl std::fmt::Debug for BpfxObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bpfx_object")
    }
}

impl std::fmt::Debug for BpfxProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bpfx_program")
    }
}

impl std::fmt::Debug for BpfxMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bpfx_map")
    }
}

/// `bpfx_object_opts`: how an object is opened. Read through its `sz` (libbpf's `opts`
/// pattern): a smaller, older struct leaves the later fields at 0; a larger, newer one must
/// have only zero bytes past this one.
#[repr(C)]
#[derive(Debug)]
pub struct BpfxObjectOpts {
    /// `sizeof` the struct as the caller knows it.
    pub sz: usize,
    /// The memory limit of the object's maps, global data and code, in bytes; 0: the default.
    pub mem_limit: u64,
    /// `__kconfig` values, lines `NAME=VALUE` as in a kernel `.config`; NULL: none.
    pub kconfig: *const c_char,
    /// `max_entries_cnt` map sizes given before the maps are created.
    pub max_entries: *const BpfxMapSize,
    /// How many [`BpfxMapSize`]s `max_entries` points to.
    pub max_entries_cnt: usize,
    /// `inner_maps_cnt` inner map templates of maps of maps.
    pub inner_maps: *const BpfxInnerMap,
    /// How many [`BpfxInnerMap`]s `inner_maps` points to.
    pub inner_maps_cnt: usize,
}

/// `bpfx_inner_map`: the inner map template of a map of maps, given at opening.
#[repr(C)]
#[derive(Debug)]
pub struct BpfxInnerMap {
    /// The map of maps' name.
    pub outer: *const c_char,
    /// The template's `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    /// Its key size in bytes.
    pub key_size: u32,
    /// Its value size in bytes.
    pub value_size: u32,
    /// Its number of entries.
    pub max_entries: u32,
    /// Its `BPF_F_*` flags.
    pub map_flags: u32,
}

/// `bpfx_map_size`: a map's number of entries, given at opening.
#[repr(C)]
#[derive(Debug)]
pub struct BpfxMapSize {
    /// The map's name.
    pub name: *const c_char,
    /// Its number of entries.
    pub max_entries: u32,
}

/// `bpfx_program_opts`: how a program is prepared, read as [`BpfxObjectOpts`] is.
#[repr(C)]
#[derive(Debug)]
pub struct BpfxProgramOpts {
    /// `sizeof` the struct as the caller knows it.
    pub sz: usize,
    /// A `BPFX_ENGINE_*` (0: the interpreter).
    pub engine: u32,
    /// A `BPFX_MODE_*` (0: checked).
    pub mode: u32,
    /// Instructions per run: 0 or `BPFX_BUDGET_DEFAULT`, `BPFX_BUDGET_UNLIMITED`, or a number.
    pub budget: u64,
    /// `BPFX_HARDEN_*` flags (JIT only).
    pub hardening: u32,
    /// A `BPFX_CODE_MEMORY_*` (JIT only).
    pub code_memory: u32,
    /// A `BPFX_CONTEXT_*` (0: what the section implies).
    pub context: u32,
    /// Struct contexts: the struct's size in bytes (at most 65535).
    pub ctx_size: u32,
    /// `BPFX_CONTEXT_STRUCT_PACKET`: the offset of the 64-bit `data` field.
    pub data_off: u32,
    /// `BPFX_CONTEXT_STRUCT_PACKET`: the offset of the 64-bit `data_end` field.
    pub data_end_off: u32,
    /// The input size verification proves memory accesses against (0: unknown).
    pub input_size: u64,
}

/// `bpfx_ringbuf_fn`: called by `bpfx_ringbuf_consume` with each record; a negative return
/// stops the consumer, which returns it.
pub type RingbufFn = unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> c_int;

/// Runs `body` catching panics, and records its outcome as the thread's last error.
fn with_status(body: impl FnOnce() -> Result<(), Fail>) -> Status {
    let r = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|p| Err(panic_fail(p)));
    match r {
        Ok(()) => {
            set_last_error("");
            Status::Ok
        }
        Err(f) => {
            set_last_error(&f.message);
            f.status
        }
    }
}

/// The bytes of a sized options struct, at most `known` of them (the struct this library
/// knows): NULL gives `None` (every default); a smaller `sz` gives only its `sz` bytes, so that
/// a field not wholly inside them reads as 0 through [`u32_at`] and [`u64_at`] (libbpf's
/// `OPTS_HAS`: a size ending inside a pointer never yields half a pointer); a larger one must
/// have only zero bytes beyond `known`.
///
/// # Safety
/// `p` is NULL or points to a struct whose first field is its size in bytes (`size_t sz`),
/// with `sz` readable bytes.
unsafe fn opts_bytes(p: *const c_void, known: usize, what: &str) -> Result<Option<Vec<u8>>, Fail> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, and the struct begins with its `size_t sz` (caller contract).
    let sz = unsafe { p.cast::<usize>().read_unaligned() };
    if sz < size_of::<usize>() {
        return Err(Fail::arg(format!(
            "{what}.sz is {sz}: set it to sizeof the struct"
        )));
    }
    // SAFETY: `sz` readable bytes (caller contract); `bytes` checks the length.
    let all = unsafe { bytes(p, sz, what) }?;
    if let Some(i) = all.iter().skip(known).position(|&b| b != 0) {
        return Err(Fail::arg(format!(
            "{what}: byte {} is not 0, but this library knows only the first {known} bytes of the \
             struct (a newer field it cannot honour)",
            known + i
        )));
    }
    Ok(Some(all[..known.min(sz)].to_vec()))
}

/// The `u32` at `off` of an options struct's bytes, 0 where they do not hold all of it.
fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

/// The `u64` at `off` of an options struct's bytes, 0 where they do not hold all of it.
fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

/// # Safety
/// As [`opts_bytes`].
unsafe fn object_opts(p: *const BpfxObjectOpts) -> Result<ObjectOpts, Fail> {
    // SAFETY: forwarded contract.
    let Some(b) = (unsafe { opts_bytes(p.cast(), size_of::<BpfxObjectOpts>(), "opts") })? else {
        return Ok(ObjectOpts::default());
    };
    let ptr = |off: usize| u64_at(&b, off) as usize;
    let kconfig = ptr(std::mem::offset_of!(BpfxObjectOpts, kconfig)) as *const c_char;
    let sizes = ptr(std::mem::offset_of!(BpfxObjectOpts, max_entries)) as *const BpfxMapSize;
    let count = ptr(std::mem::offset_of!(BpfxObjectOpts, max_entries_cnt));
    let kconfig = if kconfig.is_null() {
        Vec::new()
    } else {
        // SAFETY: a non-NULL `kconfig` is NUL-terminated (bpfx.h).
        kconfig_lines(unsafe { text(kconfig, "opts.kconfig") }?)?
    };
    let mut max_entries = Vec::new();
    // SAFETY: `max_entries` points to `count` structs (bpfx.h).
    let sizes = unsafe { records::<BpfxMapSize>(sizes, count, "opts.max_entries") }?;
    for (i, rec) in sizes.enumerate() {
        let name = u64_at(rec, std::mem::offset_of!(BpfxMapSize, name)) as *const c_char;
        // SAFETY: each entry's `name` is NULL or NUL-terminated (bpfx.h); `text` checks NULL.
        let name = unsafe { text(name, &format!("opts.max_entries[{i}].name")) }?;
        let n = u32_at(rec, std::mem::offset_of!(BpfxMapSize, max_entries));
        max_entries.push((name.to_string(), n));
    }
    let templates = ptr(std::mem::offset_of!(BpfxObjectOpts, inner_maps)) as *const BpfxInnerMap;
    let count = ptr(std::mem::offset_of!(BpfxObjectOpts, inner_maps_cnt));
    let mut inner_maps = Vec::new();
    // SAFETY: `inner_maps` points to `count` structs (bpfx.h).
    let templates = unsafe { records::<BpfxInnerMap>(templates, count, "opts.inner_maps") }?;
    for (i, rec) in templates.enumerate() {
        let field = |off| u32_at(rec, off);
        let outer = u64_at(rec, std::mem::offset_of!(BpfxInnerMap, outer)) as *const c_char;
        // SAFETY: each entry's `outer` is NULL or NUL-terminated (bpfx.h); `text` checks NULL.
        let outer = unsafe { text(outer, &format!("opts.inner_maps[{i}].outer")) }?;
        let spec = map_spec(
            &format!("{outer}.inner"),
            field(std::mem::offset_of!(BpfxInnerMap, map_type)),
            field(std::mem::offset_of!(BpfxInnerMap, key_size)),
            field(std::mem::offset_of!(BpfxInnerMap, value_size)),
            field(std::mem::offset_of!(BpfxInnerMap, max_entries)),
            field(std::mem::offset_of!(BpfxInnerMap, map_flags)),
        )
        .map_err(|f| Fail::arg(format!("opts.inner_maps[{i}]: {}", f.message)))?;
        inner_maps.push((outer.to_string(), spec));
    }
    Ok(ObjectOpts {
        mem_limit: u64_at(&b, std::mem::offset_of!(BpfxObjectOpts, mem_limit)),
        kconfig,
        max_entries,
        inner_maps,
    })
}

/// The bytes of each of the `count` records of type `T` at `p` (an options struct's array).
///
/// # Safety
/// When `count` is not 0, `p` is NULL or points to `count` readable `T`s.
unsafe fn records<'a, T>(
    p: *const T,
    count: usize,
    what: &str,
) -> Result<std::slice::ChunksExact<'a, u8>, Fail> {
    if count != 0 && p.is_null() {
        return Err(Fail::null(what));
    }
    let len = count
        .checked_mul(size_of::<T>())
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| Fail::arg(format!("{what}: {count} entries are too many")))?;
    // SAFETY: `count` readable `T`s at `p`, `len` bytes (caller contract); `bytes` checks NULL
    // and the length.
    let raw = unsafe { bytes(p.cast(), len, what) }?;
    Ok(raw.chunks_exact(size_of::<T>()))
}

/// A map's shape from C (a `BPF_MAP_TYPE_*` number, sizes, entries and `BPF_F_*` flags), for
/// `bpfx_map_create` and `bpfx_object_opts.inner_maps`.
fn map_spec(
    name: &str,
    type_: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
) -> Result<runtime::MapSpec, Fail> {
    let kind = runtime::MapKind::from_kernel(type_).ok_or_else(|| {
        Fail::arg(format!(
            "map type {type_} is not a BPF_MAP_TYPE_* bpfx implements"
        ))
    })?;
    let mut spec = runtime::MapSpec::new(name, kind, key_size, value_size, max_entries);
    spec.flags = flags;
    Ok(spec)
}

/// The `NAME=VALUE` lines of `bpfx_object_opts.kconfig` (libbpf's format: a kernel `.config`'s
/// text, whose empty lines and `#` comments are skipped; spaces around a line are ignored).
fn kconfig_lines(text: &str) -> Result<Vec<(String, String)>, Fail> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((name, value)) if !name.is_empty() && !value.is_empty() => {
                out.push((name.to_string(), value.to_string()));
            }
            _ => {
                return Err(Fail::arg(format!(
                    "opts.kconfig line {}: expected NAME=VALUE, got {line:?}",
                    i + 1
                )));
            }
        }
    }
    Ok(out)
}

/// # Safety
/// As [`opts_bytes`].
unsafe fn program_opts(p: *const BpfxProgramOpts) -> Result<ProgOpts, Fail> {
    // SAFETY: forwarded contract.
    let Some(b) = (unsafe { opts_bytes(p.cast(), size_of::<BpfxProgramOpts>(), "opts") })? else {
        return Ok(ProgOpts::default());
    };
    use std::mem::offset_of;
    Ok(ProgOpts {
        engine: u32_at(&b, offset_of!(BpfxProgramOpts, engine)),
        mode: u32_at(&b, offset_of!(BpfxProgramOpts, mode)),
        budget: u64_at(&b, offset_of!(BpfxProgramOpts, budget)),
        hardening: u32_at(&b, offset_of!(BpfxProgramOpts, hardening)),
        code_memory: u32_at(&b, offset_of!(BpfxProgramOpts, code_memory)),
        context: u32_at(&b, offset_of!(BpfxProgramOpts, context)),
        ctx_size: u32_at(&b, offset_of!(BpfxProgramOpts, ctx_size)),
        data_off: u32_at(&b, offset_of!(BpfxProgramOpts, data_off)),
        data_end_off: u32_at(&b, offset_of!(BpfxProgramOpts, data_end_off)),
        input_size: u64_at(&b, offset_of!(BpfxProgramOpts, input_size)),
    })
}

/// Stores a new handle in `*out` (NULL first, so a failure leaves NULL there).
///
/// # Safety
/// `out` is NULL or points to a writable pointer.
unsafe fn give<T>(out: *mut *mut T, make: impl FnOnce() -> Result<T, Fail>) -> Status {
    if !out.is_null() {
        // SAFETY: non-NULL and writable (caller contract).
        unsafe { out.write_unaligned(std::ptr::null_mut()) };
    }
    with_status(|| {
        if out.is_null() {
            return Err(Fail::null("out"));
        }
        let handle = Box::into_raw(Box::new(make()?));
        // SAFETY: non-NULL and writable (caller contract).
        unsafe { out.write_unaligned(handle) };
        Ok(())
    })
}

/// # Safety
/// `p` is NULL or a live handle of type `T` that no other thread mutates meanwhile.
unsafe fn handle<'a, T>(p: *const T, what: &str) -> Result<&'a T, Fail> {
    // SAFETY: NULL (checked) or live (caller contract).
    unsafe { p.as_ref() }.ok_or_else(|| Fail::null(what))
}

/// Frees a handle made by [`give`]; NULL is ignored.
///
/// # Safety
/// `p` is NULL or a live handle from [`give`], not used again afterwards.
unsafe fn free_handle<T>(p: *mut T) {
    if p.is_null() {
        return;
    }
    // SAFETY: a live handle from `Box::into_raw` in `give`, freed once (caller contract).
    let b = unsafe { Box::from_raw(p) };
    // A panic in a destructor must not cross into C; the memory is then leaked, not reused.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(b)));
}

/// Opens an ELF object from `elf_len` bytes at `elf` into `*out`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_object_open_mem(
    elf: *const c_void,
    elf_len: usize,
    opts: *const BpfxObjectOpts,
    out: *mut *mut BpfxObject,
) -> Status {
    // SAFETY: by bpfx.h, `elf` points to `elf_len` readable bytes, `opts` is NULL or a sized
    // options struct, `out` NULL or writable: the contracts of `give`, `required` and
    // `object_opts`, which check NULL.
    unsafe {
        give(out, || {
            let opts = object_opts(opts)?;
            Ok(BpfxObject(Obj::open(required(elf, elf_len, "elf")?, opts)?))
        })
    }
}

/// Opens the ELF object `elf` into `*out` with the helpers (and memory limit) registered on
/// `vm`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`; the registered helpers' `fn` and `ctx` may be called
/// from any thread that runs the object's programs, until they are all freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_object_open_mem_vm(
    vm: *const BpfxVm,
    elf: *const c_void,
    elf_len: usize,
    opts: *const BpfxObjectOpts,
    out: *mut *mut BpfxObject,
) -> Status {
    // SAFETY: by bpfx.h, `vm` is NULL or a live handle, `elf` points to `elf_len` readable
    // bytes, `opts` is NULL or a sized options struct, `out` NULL or writable: the contracts
    // of `give`, `handle`, `required` and `object_opts`, which check NULL.
    unsafe {
        give(out, || {
            let v = vm_handle(vm)?.shared("vm")?;
            let opts = object_opts(opts)?;
            let elf = required(elf, elf_len, "elf")?;
            Ok(BpfxObject(Obj::open_with(
                v.get().builder().clone(),
                elf,
                opts,
            )?))
        })
    }
}

/// Opens the ELF object in file `path` into `*out`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_object_open_file(
    path: *const c_char,
    opts: *const BpfxObjectOpts,
    out: *mut *mut BpfxObject,
) -> Status {
    // SAFETY: by bpfx.h, `path` is NUL-terminated, `opts` NULL or a sized options struct, `out`
    // NULL or writable: the contracts of `give`, `text` and `object_opts`, which check NULL.
    unsafe {
        give(out, || {
            let opts = object_opts(opts)?;
            let path = text(path, "path")?;
            let elf = std::fs::read(path)
                .map_err(|e| Fail::new(Status::Elf, format!("cannot read {path}: {e}")))?;
            Ok(BpfxObject(Obj::open(&elf, opts)?))
        })
    }
}

/// Frees an object; the programs and maps taken from it stay valid. NULL is ignored.
///
/// # Safety
/// `obj` is NULL or a live handle, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_object_free(obj: *mut BpfxObject) {
    // SAFETY: forwarded contract.
    unsafe { free_handle(obj) }
}

/// The name of the object's program `index` (in the object's order); NULL past the last.
///
/// # Safety
/// `obj` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_object_program_name(
    obj: *const BpfxObject,
    index: usize,
) -> *const c_char {
    // SAFETY: NULL (checked) or a live handle (caller contract); only read.
    match unsafe { obj.as_ref() }.and_then(|o| o.0.program_name(index)) {
        Some(name) => name.as_ptr(),
        None => std::ptr::null(),
    }
}

/// The name of the object's map `index` (in the object's order); NULL past the last.
///
/// # Safety
/// `obj` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_object_map_name(
    obj: *const BpfxObject,
    index: usize,
) -> *const c_char {
    // SAFETY: NULL (checked) or a live handle (caller contract); only read.
    match unsafe { obj.as_ref() }.and_then(|o| o.0.map_name(index)) {
        Some(name) => name.as_ptr(),
        None => std::ptr::null(),
    }
}

/// Sets global variable `name` of `obj` from `len` bytes at `value` (exactly its size).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_object_set_global(
    obj: *const BpfxObject,
    name: *const c_char,
    value: *const c_void,
    len: usize,
) -> Status {
    // SAFETY: by bpfx.h, `obj` is NULL or a live handle, `name` NUL-terminated and `value`
    // points to `len` readable bytes: the contracts of `handle`, `text` and `required`, which
    // check NULL.
    unsafe {
        with_status(|| {
            let o = handle(obj, "obj")?;
            let name = text(name, "name")?;
            o.0.set_global(name, required(value, len, "value")?)
        })
    }
}

/// Reads global variable `name` of `obj` into `len` bytes at `out` (exactly its size).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_object_get_global(
    obj: *const BpfxObject,
    name: *const c_char,
    out: *mut c_void,
    len: usize,
) -> Status {
    // SAFETY: by bpfx.h, `obj` is NULL or a live handle, `name` NUL-terminated and `out`
    // points to `len` writable bytes nothing else accesses during the call: the contracts of
    // `handle`, `text` and `required_mut`, which check NULL.
    unsafe {
        with_status(|| {
            let o = handle(obj, "obj")?;
            let name = text(name, "name")?;
            o.0.get_global(name, required_mut(out, len, "out")?)
        })
    }
}

/// Verifies and prepares program `name` of `obj` with `opts` into `*out`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_object_program(
    obj: *const BpfxObject,
    name: *const c_char,
    opts: *const BpfxProgramOpts,
    out: *mut *mut BpfxProgram,
) -> Status {
    // SAFETY: by bpfx.h, `obj` is NULL or a live handle, `name` NUL-terminated, `opts` NULL or
    // a sized options struct, `out` NULL or writable: the contracts of `give`, `handle`, `text`
    // and `program_opts`, which check NULL.
    unsafe {
        give(out, || {
            let o = handle(obj, "obj")?;
            let name = text(name, "name")?;
            let opts = program_opts(opts)?;
            Ok(BpfxProgram(Guarded::new(o.0.program(name, opts)?)))
        })
    }
}

/// Frees a program (its code; the maps stay while a map handle or another program holds
/// them). NULL is ignored.
///
/// # Safety
/// `prog` is NULL or a live handle, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_program_free(prog: *mut BpfxProgram) {
    // SAFETY: forwarded contract; the handle is a box from `give`.
    unsafe { free_guarded(prog, |p| &p.0, "program") }
}

/// The program's name (`""` for NULL), valid while the handle lives.
///
/// # Safety
/// `prog` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_program_name(prog: *const BpfxProgram) -> *const c_char {
    // SAFETY: NULL (checked) or a live handle (caller contract); only read.
    match unsafe { prog.as_ref() }.map(|p| p.0.shared("program")) {
        Some(Ok(p)) => p.get().name().as_ptr(),
        _ => c"".as_ptr(),
    }
}

/// Runs a program as `bpfx_run` runs the VM's.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_program_run(
    prog: *mut BpfxProgram,
    mem: *mut c_void,
    mem_len: usize,
    result: *mut u64,
) -> Status {
    // SAFETY: by bpfx.h, `prog` is NULL or a live handle no other thread uses meanwhile, `mem`
    // points to `mem_len` writable bytes and `result` to a writable u64 outside them: NULL is
    // checked here and by `bytes_mut`, overlap before any slice is made.
    unsafe {
        with_status(|| {
            let mut held = handle(prog, "prog")?.0.exclusive("program")?;
            let p = held.get();
            if result.is_null() {
                return Err(Fail::null("result"));
            }
            if overlap(result.cast(), size_of::<u64>(), mem, mem_len) {
                return Err(Fail::arg("result and mem must not overlap"));
            }
            let r = p.run(bytes_mut(mem, mem_len, "mem")?)?;
            // SAFETY: non-NULL and writable by the caller's contract, outside `mem`.
            result.write_unaligned(r);
            Ok(())
        })
    }
}

/// Runs a program that takes a struct context, as `bpfx_run_ctx`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_program_run_ctx(
    prog: *mut BpfxProgram,
    ctx: *mut c_void,
    ctx_len: usize,
    packet: *mut c_void,
    packet_len: usize,
    result: *mut u64,
) -> Status {
    // SAFETY: by bpfx.h, `prog` is NULL or a live handle no other thread uses meanwhile, `ctx`
    // and `packet` point to `ctx_len` and `packet_len` writable bytes nothing else accesses
    // during the call, and `result` to a writable `u64`: NULL is checked here and by
    // `required_mut`/`bytes_mut`, overlap before any slice is made.
    unsafe {
        with_status(|| {
            let mut held = handle(prog, "prog")?.0.exclusive("program")?;
            let p = held.get();
            if result.is_null() {
                return Err(Fail::null("result"));
            }
            let r8 = (result.cast::<c_void>(), size_of::<u64>());
            if overlap(ctx, ctx_len, packet, packet_len)
                || overlap(ctx, ctx_len, r8.0, r8.1)
                || overlap(packet, packet_len, r8.0, r8.1)
            {
                return Err(Fail::arg("ctx, packet and result must not overlap"));
            }
            let c = required_mut(ctx, ctx_len, "ctx")?;
            let r = p.run_ctx(c, bytes_mut(packet, packet_len, "packet")?)?;
            // SAFETY: non-NULL, writable by the caller's contract, outside both buffers.
            result.write_unaligned(r);
            Ok(())
        })
    }
}

/// Runs an XDP program on a packet buffer, as `bpfx_run_xdp`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_program_run_xdp(
    prog: *mut BpfxProgram,
    buf: *mut c_void,
    buf_len: usize,
    start: usize,
    len: usize,
    out: *mut BpfxXdpResult,
) -> Status {
    // SAFETY: by bpfx.h, `prog` is NULL or a live handle no other thread uses meanwhile, `buf`
    // points to `buf_len` writable bytes nothing else accesses during the call, and `out` to a
    // writable `bpfx_xdp_result`: NULL is checked here and by `required_mut`, overlap before
    // any slice is made.
    unsafe {
        with_status(|| {
            let mut held = handle(prog, "prog")?.0.exclusive("program")?;
            let p = held.get();
            if out.is_null() {
                return Err(Fail::null("out"));
            }
            if overlap(buf, buf_len, out.cast(), size_of::<BpfxXdpResult>()) {
                return Err(Fail::arg("out lies inside buf"));
            }
            let b = required_mut(buf, buf_len, "buf")?;
            let (action, start, len, meta_len) = p.run_xdp(b, start, len)?;
            // SAFETY: non-NULL, writable by the caller's contract, outside `buf`.
            out.write_unaligned(BpfxXdpResult {
                action,
                start,
                len,
                meta_len,
            });
            Ok(())
        })
    }
}

/// Runs a TC program on a packet buffer, as `bpfx_run_tc`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_program_run_tc(
    prog: *mut BpfxProgram,
    buf: *mut c_void,
    buf_len: usize,
    start: usize,
    len: usize,
    meta: *mut BpfxSkbMeta,
    out: *mut BpfxTcResult,
) -> Status {
    // SAFETY: by bpfx.h, `prog` is NULL or a live handle no other thread uses meanwhile, `buf`
    // points to `buf_len` writable bytes nothing else accesses during the call, `meta` to a
    // readable and writable `bpfx_skb_meta` and `out` to a writable `bpfx_tc_result`: NULL is
    // checked here, by `tc_args` and by `required_mut`, overlap before any slice is made.
    unsafe {
        with_status(|| {
            let mut held = handle(prog, "prog")?.0.exclusive("program")?;
            let p = held.get();
            let mut m = tc_args(buf, buf_len, meta, out)?;
            let b = required_mut(buf, buf_len, "buf")?;
            let r = p.run_tc(b, start, len, &mut m);
            // SAFETY: non-NULL, writable by the caller's contract, outside `buf` (checked by
            // `tc_args`); written whether or not the run succeeded (unchanged if it did not).
            meta.write_unaligned(BpfxSkbMeta::from(m));
            let (action, start, len) = r?;
            // SAFETY: as `meta`.
            out.write_unaligned(BpfxTcResult { action, start, len });
            Ok(())
        })
    }
}

/// Where the program's last run redirected its packet (`BPFX_REDIRECT_NONE` when it did not).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_program_last_redirect(
    prog: *const BpfxProgram,
    out: *mut BpfxRedirect,
) -> Status {
    // SAFETY: by bpfx.h, `prog` is NULL or a live handle and `out` points to a writable
    // `bpfx_redirect`; both are checked for NULL.
    unsafe {
        with_status(|| {
            let p = handle(prog, "prog")?.0.shared("program")?;
            if out.is_null() {
                return Err(Fail::null("out"));
            }
            // SAFETY: non-NULL and writable by the caller's contract.
            out.write_unaligned(redirect_record(p.get().redirect()));
            Ok(())
        })
    }
}

/// The trap of the program's last run; `BPFX_ERR_STATE` if it did not trap.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_program_trap(
    prog: *const BpfxProgram,
    out: *mut BpfxTrapInfo,
) -> Status {
    // SAFETY: by bpfx.h, `prog` is NULL or a live handle and `out` points to a writable
    // `bpfx_trap_info`; both are checked for NULL.
    unsafe {
        with_status(|| {
            let p = handle(prog, "prog")?.0.shared("program")?;
            if out.is_null() {
                return Err(Fail::null("out"));
            }
            let t = p.get().trap()?;
            // SAFETY: non-NULL and writable by the caller's contract.
            out.write_unaligned(BpfxTrapInfo {
                kind: u32::from(t.kind),
                pc: t.pc,
                message: t.message.as_ptr(),
            });
            Ok(())
        })
    }
}

/// A handle on map `name` of `obj` into `*out` (the map is created now if no program
/// created it yet).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_object_map(
    obj: *const BpfxObject,
    name: *const c_char,
    out: *mut *mut BpfxMap,
) -> Status {
    // SAFETY: by bpfx.h, `obj` is NULL or a live handle, `name` NUL-terminated and `out` NULL
    // or writable: the contracts of `give`, `handle` and `text`, which check NULL.
    unsafe {
        give(out, || {
            let o = handle(obj, "obj")?;
            Ok(BpfxMap(Guarded::new(o.0.map(text(name, "name")?)?)))
        })
    }
}

/// Frees a map handle (the map lives on while its object's programs hold it). NULL is ignored.
///
/// # Safety
/// `map` is NULL or a live handle, not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_free(map: *mut BpfxMap) {
    // SAFETY: forwarded contract; the handle is a box from `give`.
    unsafe { free_guarded(map, |m| &m.0, "map") }
}

/// The map's name (`""` for NULL), valid while the handle lives.
///
/// # Safety
/// `map` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_name(map: *const BpfxMap) -> *const c_char {
    // SAFETY: NULL (checked) or a live handle (caller contract); only read.
    match unsafe { map.as_ref() }.map(|m| m.0.shared("map")) {
        Some(Ok(m)) => m.get().name().as_ptr(),
        _ => c"".as_ptr(),
    }
}

/// Reads one property of a map handle; 0 for NULL.
///
/// # Safety
/// `map` is NULL or a live handle.
unsafe fn map_prop<T: Default>(map: *const BpfxMap, f: impl FnOnce(&Map) -> T) -> T {
    // SAFETY: NULL (checked) or a live handle (caller contract); only read.
    match unsafe { map.as_ref() }.map(|m| m.0.shared("map")) {
        Some(Ok(m)) => f(m.get().map()),
        _ => T::default(),
    }
}

/// The map's `BPF_MAP_TYPE_*` number (0 for NULL).
///
/// # Safety
/// `map` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_type(map: *const BpfxMap) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { map_prop(map, |m| m.kind().kernel_type()) }
}

/// The map's key size in bytes (0 for NULL).
///
/// # Safety
/// `map` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_key_size(map: *const BpfxMap) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { map_prop(map, Map::key_size) }
}

/// The map's value size in bytes as declared (one CPU's, for per-CPU maps; 0 for NULL).
///
/// # Safety
/// `map` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_value_size(map: *const BpfxMap) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { map_prop(map, Map::value_size) }
}

/// The size of the value buffer lookups and updates take (per-CPU maps: every CPU's value,
/// each rounded up to 8 bytes; 0 for NULL).
///
/// # Safety
/// `map` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_value_buf_size(map: *const BpfxMap) -> usize {
    // SAFETY: forwarded contract.
    unsafe { map_prop(map, Map::host_value_size) }
}

/// The map's `max_entries` (0 for NULL).
///
/// # Safety
/// `map` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_max_entries(map: *const BpfxMap) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { map_prop(map, Map::max_entries) }
}

/// Copies the value under `key` into `value` (exactly `bpfx_map_value_buf_size` bytes).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_lookup_elem(
    map: *const BpfxMap,
    key: *const c_void,
    key_len: usize,
    value: *mut c_void,
    value_len: usize,
) -> Status {
    // SAFETY: by bpfx.h, `map` is NULL or a live handle, `key` points to `key_len` readable
    // bytes and `value` to `value_len` writable ones nothing else accesses during the call:
    // the contracts of `handle`, `required` and `required_mut`, which check NULL; overlap is
    // checked before any slice is made.
    unsafe {
        with_status(|| {
            let m = handle(map, "map")?.0.shared("map")?;
            let m = m.get();
            if overlap(key, key_len, value, value_len) {
                return Err(Fail::arg("key and value must not overlap"));
            }
            let k = required(key, key_len, "key")?;
            m.lookup(k, required_mut(value, value_len, "value")?)
        })
    }
}

/// Stores `value` under `key` (`flags`: 0 any, 1 create only, 2 replace only).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_update_elem(
    map: *const BpfxMap,
    key: *const c_void,
    key_len: usize,
    value: *const c_void,
    value_len: usize,
    flags: u64,
) -> Status {
    // SAFETY: by bpfx.h, `map` is NULL or a live handle, `key` and `value` point to `key_len`
    // and `value_len` readable bytes: the contracts of `handle` and `required`, which check
    // NULL.
    unsafe {
        with_status(|| {
            let m = handle(map, "map")?.0.shared("map")?;
            let m = m.get();
            let k = required(key, key_len, "key")?;
            m.update(k, required(value, value_len, "value")?, flags)
        })
    }
}

/// Removes `key` (hash maps).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_delete_elem(
    map: *const BpfxMap,
    key: *const c_void,
    key_len: usize,
) -> Status {
    // SAFETY: by bpfx.h, `map` is NULL or a live handle and `key` points to `key_len` readable
    // bytes: the contracts of `handle` and `required`, which check NULL.
    unsafe {
        with_status(|| {
            let m = handle(map, "map")?.0.shared("map")?;
            let m = m.get();
            m.delete(required(key, key_len, "key")?)
        })
    }
}

/// `BPF_MAP_GET_NEXT_KEY`: the key after `key` into `next` (`key` NULL, or a key not in the
/// map: the first key); `BPFX_ERR_NOT_FOUND` (the kernel's `ENOENT`) after the last.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_next_key(
    map: *const BpfxMap,
    key: *const c_void,
    key_len: usize,
    next: *mut c_void,
    next_len: usize,
) -> Status {
    // SAFETY: by bpfx.h, `map` is NULL or a live handle, `key` NULL or pointing to `key_len`
    // readable bytes, `next` to `next_len` writable ones nothing else accesses during the
    // call: the contracts of `handle`, `bytes` and `required_mut`, which check NULL; overlap
    // is checked before any slice is made.
    unsafe {
        with_status(|| {
            let m = handle(map, "map")?.0.shared("map")?;
            let m = m.get();
            if overlap(key, key_len, next, next_len) {
                return Err(Fail::arg("key and next must not overlap"));
            }
            let k = if key.is_null() {
                None
            } else {
                Some(bytes(key, key_len, "key")?)
            };
            m.next_key(k, required_mut(next, next_len, "next")?)
        })
    }
}

/// `EINVAL`, returned negated by `bpfx_ringbuf_consume` for bad arguments.
const EINVAL: c_int = 22;

/// Consumes every record ready in ring buffer `map`, oldest first, calling `cb(ctx, data,
/// size)` with each (libbpf's `ring_buffer__consume`): the number of records consumed (at
/// most `INT_MAX`), the first negative value `cb` returned (the consumer stops; that record
/// is consumed), or `-EINVAL` (NULL `map` or `cb`, or a map that is not a ring buffer; see
/// `bpfx_last_error`).
///
/// # Safety
/// Pointers as documented in `bpfx.h`; `cb` may be called with `ctx` on this thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_ringbuf_consume(
    map: *const BpfxMap,
    cb: Option<RingbufFn>,
    ctx: *mut c_void,
) -> c_int {
    let mut ret: c_int = 0;
    let status = with_status(|| {
        // SAFETY: NULL (checked) or a live handle (caller contract).
        let m = unsafe { handle(map, "map") }?.0.shared("map")?;
        let m = m.get();
        let cb = cb.ok_or_else(|| Fail::null("cb"))?;
        while let Some(rec) = m.ring_pop()? {
            // SAFETY: the embedder's callback with its context (caller contract); the record
            // is valid for the call and not kept by bpfx.
            let r = unsafe { cb(ctx, rec.as_ptr().cast(), rec.len()) };
            if r < 0 {
                ret = r;
                return Ok(());
            }
            ret = ret.saturating_add(1);
        }
        Ok(())
    });
    if status == Status::Ok { ret } else { -EINVAL }
}

/// Takes the next record of perf event array `map`, as `bpfx_perf_read`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_perf_read(
    map: *const BpfxMap,
    out: *mut BpfxPerfRecord,
    data: *mut c_void,
    data_cap: usize,
) -> Status {
    // SAFETY: by bpfx.h, `map` is NULL or a live handle, `out` points to a writable
    // `bpfx_perf_record` and `data` to `data_cap` writable bytes nothing else accesses during
    // the call: NULL and overlap are checked before any slice is made.
    unsafe {
        with_status(|| {
            let m = handle(map, "map")?.0.shared("map")?;
            let m = m.get();
            if out.is_null() {
                return Err(Fail::null("out"));
            }
            if overlap(out.cast(), size_of::<BpfxPerfRecord>(), data, data_cap) {
                return Err(Fail::arg("out and data must not overlap"));
            }
            let buf = bytes_mut(data, data_cap, "data")?;
            let rec = perf_record(m.perf_next()?, buf).ok_or_else(|| {
                Fail::new(
                    Status::NotFound,
                    format!("map `{}`: no record waits", m.map().name()),
                )
            })?;
            // SAFETY: non-NULL and writable by the caller's contract, outside `data`.
            out.write_unaligned(rec);
            Ok(())
        })
    }
}

/// A perf event as a `bpfx_perf_record`, its sample's data copied into `buf` as far as it goes.
fn perf_record(ev: Option<runtime::PerfEvent>, buf: &mut [u8]) -> Option<BpfxPerfRecord> {
    Some(match ev? {
        runtime::PerfEvent::Lost { cpu, count } => BpfxPerfRecord {
            cpu,
            lost: count,
            data_len: 0,
        },
        runtime::PerfEvent::Sample { cpu, data } => {
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            BpfxPerfRecord {
                cpu,
                lost: 0,
                data_len: data.len(),
            }
        }
    })
}

/// Puts `prog` into slot `index` of program array `map`, for `bpf_tail_call`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_prog_array_set(
    map: *const BpfxMap,
    index: u32,
    prog: *const BpfxProgram,
) -> Status {
    // SAFETY: by bpfx.h, `map` and `prog` are NULL or live handles, `prog` not run by another
    // thread meanwhile: the contract of `handle`, which checks NULL.
    unsafe {
        with_status(|| {
            let m = handle(map, "map")?.0.shared("map")?;
            let m = m.get();
            m.set_program(index, handle(prog, "prog")?.0.shared("program")?.get())
        })
    }
}

/// Creates a map of no object (libbpf's `bpf_map_create`).
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_create(
    type_: u32,
    name: *const c_char,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    out: *mut *mut BpfxMap,
) -> Status {
    // SAFETY: by bpfx.h, `name` is NULL or NUL-terminated and `out` NULL or writable: the
    // contracts of `text` and `give`, which check NULL.
    unsafe {
        give(out, || {
            let name = if name.is_null() {
                ""
            } else {
                text(name, "name")?
            };
            let spec = map_spec(name, type_, key_size, value_size, max_entries, map_flags)?;
            Ok(BpfxMap(Guarded::new(MapHandle::create(spec)?)))
        })
    }
}

/// Stores map `inner` under `key` of map of maps `outer`.
///
/// # Safety
/// Pointers as documented in `bpfx.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_map_set_inner(
    outer: *const BpfxMap,
    key: *const c_void,
    key_len: usize,
    inner: *const BpfxMap,
    flags: u64,
) -> Status {
    // SAFETY: by bpfx.h, `outer` and `inner` are NULL or live handles and `key` points to
    // `key_len` readable bytes: the contracts of `handle` and `required`, which check NULL.
    unsafe {
        with_status(|| {
            let m = handle(outer, "outer")?.0.shared("outer")?;
            let k = required(key, key_len, "key")?;
            let inner = handle(inner, "inner")?.0.shared("inner")?;
            m.get().set_inner(k, inner.get(), flags)
        })
    }
}

/// Empties slot `index` of program array `map`.
///
/// # Safety
/// `map` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_prog_array_clear(map: *const BpfxMap, index: u32) -> Status {
    // SAFETY: NULL (checked by `handle`) or a live handle (caller contract).
    unsafe {
        with_status(|| {
            handle(map, "map")?
                .0
                .shared("map")?
                .get()
                .clear_program(index)
        })
    }
}

/// `bpfx_fib_request`: what a program's `bpf_fib_lookup` asks the embedder's forwarding table.
#[repr(C)]
#[derive(Debug)]
pub struct BpfxFibRequest {
    /// The source address, network order (IPv4: the first 4 bytes).
    pub src: [u8; 16],
    /// The destination address, network order (IPv4: the first 4 bytes).
    pub dst: [u8; 16],
    /// The ingress device (the egress with `BPF_FIB_LOOKUP_OUTPUT`).
    pub ifindex: u32,
    /// `tos` (IPv4) or `flowinfo` (IPv6, host order).
    pub tos_or_flowinfo: u32,
    /// `BPF_FIB_LOOKUP_*`.
    pub flags: u32,
    /// The table (`tbid`) with `BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_TBID`, else 0.
    pub table: u32,
    /// Ports, host order.
    pub sport: u16,
    /// The destination port.
    pub dport: u16,
    /// The L3 length the program gave (`tot_len`).
    pub tot_len: u16,
    /// `AF_INET` (2) or `AF_INET6` (10).
    pub family: u8,
    /// `l4_protocol`.
    pub l4_protocol: u8,
    /// 1 when `table` names a table.
    pub has_table: u32,
    /// The program's `BPFX_CONTEXT_*` (XDP or TC).
    pub context: u32,
    /// The mark, with `BPF_FIB_LOOKUP_MARK` (1 << 5) in `flags`; else 0.
    pub mark: u32,
}

/// `bpfx_fib_route`: the route a `bpfx_fib_fn` answers with (zeroed before the call).
#[repr(C)]
#[derive(Debug, Default)]
pub struct BpfxFibRoute {
    /// The gateway (with `has_gateway`), network order, of the request's family.
    pub gateway: [u8; 16],
    /// The preferred source (with `has_src`), network order.
    pub src: [u8; 16],
    /// The egress device.
    pub ifindex: u32,
    /// `rt_metric`.
    pub metric: u32,
    /// The route's MTU.
    pub mtu: u16,
    /// The egress device's MAC.
    pub smac: [u8; 6],
    /// The next hop's MAC (with `has_dmac`; without: `BPF_FIB_LKUP_RET_NO_NEIGH`).
    pub dmac: [u8; 6],
    /// Whether `dmac` is known.
    pub has_dmac: u8,
    /// Whether `gateway` is set.
    pub has_gateway: u8,
    /// Whether `src` is set.
    pub has_src: u8,
}

/// `bpfx_fib_fn`: the embedder's forwarding table; 0 forwards along `*route`, 1 to 6 are
/// `BPF_FIB_LKUP_RET_BLACKHOLE` to `_UNSUPP_LWT`, -19 (`-ENODEV`) an unknown device; other
/// values are `BPF_FIB_LKUP_RET_NOT_FWDED`.
pub type FibFn =
    unsafe extern "C" fn(*const BpfxFibRequest, *mut BpfxFibRoute, *mut c_void) -> c_int;

/// The request in C's form.
fn fib_request(r: &runtime::FibRequest) -> BpfxFibRequest {
    let (family, src, dst) = match (r.src, r.dst) {
        (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
            let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
            a[..4].copy_from_slice(&s.octets());
            b[..4].copy_from_slice(&d.octets());
            (2, a, b)
        }
        (s, d) => (10, ip16(s), ip16(d)),
    };
    BpfxFibRequest {
        src,
        dst,
        ifindex: r.ifindex,
        tos_or_flowinfo: r.tos_or_flowinfo,
        flags: r.flags,
        table: r.table.unwrap_or(0),
        sport: r.sport,
        dport: r.dport,
        tot_len: r.tot_len,
        family,
        l4_protocol: r.l4_protocol,
        has_table: u32::from(r.table.is_some()),
        context: match r.context {
            runtime::Context::Tc => vm::ContextCode::Tc as u32,
            _ => vm::ContextCode::Xdp as u32,
        },
        mark: r.mark.unwrap_or(0),
    }
}

fn ip16(a: std::net::IpAddr) -> [u8; 16] {
    match a {
        std::net::IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v) => v.octets(),
    }
}

/// An address of `family` from C's 16 bytes.
fn ip_of(family: u8, b: [u8; 16]) -> std::net::IpAddr {
    if family == 2 {
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        std::net::IpAddr::V6(std::net::Ipv6Addr::from(b))
    }
}

/// C's answer as the runtime's.
fn fib_answer(code: c_int, family: u8, r: &BpfxFibRoute) -> runtime::FibAnswer {
    use runtime::{FibAnswer, FibFailure};
    let why = match code {
        0 => {
            return FibAnswer::Route(runtime::FibRoute {
                ifindex: r.ifindex,
                smac: r.smac,
                dmac: (r.has_dmac != 0).then_some(r.dmac),
                mtu: r.mtu,
                gateway: (r.has_gateway != 0).then(|| ip_of(family, r.gateway)),
                metric: r.metric,
                src: (r.has_src != 0).then(|| ip_of(family, r.src)),
            });
        }
        1 => FibFailure::Blackhole,
        2 => FibFailure::Unreachable,
        3 => FibFailure::Prohibit,
        5 => FibFailure::ForwardingDisabled,
        6 => FibFailure::UnsupportedLwt,
        -19 => FibFailure::NoDevice,
        _ => FibFailure::NotForwarded,
    };
    FibAnswer::Fail(why)
}

/// Sets the forwarding table `bpf_fib_lookup` asks (NULL: none, every lookup is not
/// forwarded), before loading.
///
/// # Safety
/// Pointers as documented in `bpfx.h`; `fn` may be called with `ctx` from any thread that
/// runs the program, until the VM is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bpfx_set_fib(
    vm: *mut BpfxVm,
    func: Option<FibFn>,
    ctx: *mut c_void,
) -> Status {
    let ctx = HelperCtx(ctx);
    let table = move |req: &runtime::FibRequest| {
        let Some(func) = func else {
            return runtime::FibAnswer::Fail(runtime::FibFailure::NotForwarded);
        };
        let c_req = fib_request(req);
        let mut route = BpfxFibRoute::default();
        // SAFETY: `func` and `ctx` are the embedder's table and its context, callable from the
        // running thread for the VM's life (the contract in `bpfx.h`); both pointers are to
        // live locals for the call.
        let code = unsafe { func(&c_req, &mut route, ctx.get()) };
        fib_answer(code, c_req.family, &route)
    };
    // SAFETY: `vm` is checked by `with_vm`.
    unsafe { with_vm(vm, move |v| v.set_fib(table)) }
}
