//! Every `unsafe` block of the engine, and every call into libc, libbpf or
//! xsk-rs, lives under this module; the rest of the crate is safe code
//! (`#![deny(unsafe_code)]` at the crate root holds it to that).
//!
//! - [`syscall!`] is the one funnel for libc calls that return -1 and set
//!   errno: the call, the check and the `io::Error`, in one place.
//! - `bpf` loads the embedded BPF objects and wraps each libbpf call the
//!   steering and the live generator make in a safe function.
//! - `afxdp` is the AF_XDP port on xsk-rs; `slab` and `ring` are the
//!   in-memory port's frame memory and descriptor rings.
//! - `nic` holds the NIC's filter memberships and its flags; `packet` is a
//!   raw AF_PACKET socket for sending test and probe frames.
#![allow(unsafe_code)]

/// Calls `libc::$fn(args…)`, mapping a `-1` return to the thread's errno as
/// an `io::Error`: the engine's one funnel for libc calls (mio's `syscall!`).
///
/// The caller still writes the `unsafe` (the arguments are what must be
/// valid, and only the call site can say why they are) with a `// SAFETY:`
/// comment in front of it.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        let ret = libc::$fn($($arg),*);
        if ret == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }};
}

pub(crate) mod afxdp;
pub(crate) mod bpf;
pub(crate) mod nic;
pub(crate) mod packet;
pub(crate) mod ring;
pub(crate) mod slab;

/// The running kernel's release (`uname -r`), for error messages.
pub(crate) fn kernel_release() -> String {
    // SAFETY: `utsname` is plain old data; all zeroes is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable `utsname` for the call.
    if unsafe { syscall!(uname(&mut uts)) }.is_err() {
        return "of unknown release".to_string();
    }
    // SAFETY: on success `release` holds a NUL-terminated string within the array.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    release.to_string_lossy().into_owned()
}

/// CLOCK_MONOTONIC in nanoseconds: the clock `bpf_ktime_get_ns()` reads in
/// a BPF program, so a deadline written here means the same there.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists (the call goes through the vDSO, no syscall).
    let _ = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}
