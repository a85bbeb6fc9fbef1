//! Loading the engine's BPF programs (compiled from `bpf/*.c` at build time
//! and embedded) with libbpf, looking up their programs and maps, and every
//! other libbpf call the engine makes, each as a safe function. Errors are
//! positive errno values.

use std::ffi::{c_int, c_void, CStr};

/// A compiled BPF object embedded in the binary, 8-byte aligned for libelf.
#[repr(C, align(8))]
pub(crate) struct Embedded<T: ?Sized>(pub(crate) T);

/// Why an object could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The kernel said EPERM or EACCES.
    NotPermitted,
    /// Anything else, explained.
    Failed(String),
}

/// A loaded libbpf object; closed (with its program and map fds) on drop.
#[derive(Debug)]
pub(crate) struct LoadedObject {
    obj: *mut libbpf_sys::bpf_object,
    what: &'static str,
}

// SAFETY: the object is owned by this value alone and libbpf keeps no
// thread-affine state in it; moving it to another thread is fine.
unsafe impl Send for LoadedObject {}

impl LoadedObject {
    /// Opens and loads the embedded ELF image `bytes`; `name` is the object
    /// name libbpf shows, `what` how errors name it ("the steering program").
    pub(crate) fn load(bytes: &'static [u8], name: &'static CStr, what: &'static str) -> Result<Self, LoadError> {
        let opts = libbpf_sys::bpf_object_open_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as libbpf_sys::size_t,
            object_name: name.as_ptr(),
            ..Default::default()
        };
        // SAFETY: `bytes` is a static ELF image that outlives the call (libbpf
        // copies what it keeps), and `opts` is a valid, fully initialised
        // options struct whose `sz` is its own size; `name` is static.
        let obj = unsafe {
            libbpf_sys::bpf_object__open_mem(bytes.as_ptr().cast(), bytes.len() as libbpf_sys::size_t, &opts)
        };
        if obj.is_null() {
            let err = std::io::Error::last_os_error();
            return Err(LoadError::Failed(format!("libbpf could not open {what}: {err}")));
        }
        // From here on `loaded` owns `obj` and closes it on every return path.
        let loaded = LoadedObject { obj, what };
        // SAFETY: `obj` is the valid object just opened and not yet loaded.
        let ret = unsafe { libbpf_sys::bpf_object__load(loaded.obj) };
        if ret < 0 {
            return Err(match -ret {
                libc::EPERM | libc::EACCES => LoadError::NotPermitted,
                errno => LoadError::Failed(format!(
                    "the kernel refused {what}: {} (libbpf printed the verifier log, if any)",
                    std::io::Error::from_raw_os_error(errno)
                )),
            });
        }
        Ok(loaded)
    }

    /// The fd of the program named `name`.
    pub(crate) fn program_fd(&self, name: &CStr) -> Result<c_int, String> {
        // SAFETY: `obj` is a valid, loaded object and `name` a valid C string.
        let prog = unsafe { libbpf_sys::bpf_object__find_program_by_name(self.obj, name.as_ptr()) };
        if prog.is_null() {
            return Err(format!("{} has no program named {name:?}", self.what));
        }
        // SAFETY: `prog` belongs to the loaded object, which is still open.
        let fd = unsafe { libbpf_sys::bpf_program__fd(prog) };
        if fd < 0 {
            return Err(format!(
                "{}: program {name:?} has no fd: {}",
                self.what,
                std::io::Error::from_raw_os_error(-fd)
            ));
        }
        Ok(fd)
    }

    /// The fd of the map named `name`.
    pub(crate) fn map_fd(&self, name: &CStr) -> Result<c_int, String> {
        // SAFETY: `obj` is a valid, loaded object and `name` a valid C string.
        let map = unsafe { libbpf_sys::bpf_object__find_map_by_name(self.obj, name.as_ptr()) };
        if map.is_null() {
            return Err(format!("{} has no map named {name:?}", self.what));
        }
        // SAFETY: `map` belongs to the loaded object, which is still open.
        let fd = unsafe { libbpf_sys::bpf_map__fd(map) };
        if fd < 0 {
            return Err(format!("{}: map {name:?} has no fd: {}", self.what, std::io::Error::from_raw_os_error(-fd)));
        }
        Ok(fd)
    }
}

impl Drop for LoadedObject {
    fn drop(&mut self) {
        // SAFETY: `obj` was returned by `bpf_object__open_mem`, is owned only by
        // `self` and is closed exactly once, here; this also closes the
        // program and map fds.
        unsafe { libbpf_sys::bpf_object__close(self.obj) };
    }
}

/// A negative libbpf return as `Err(errno)`.
fn check(ret: c_int) -> Result<(), c_int> {
    if ret < 0 {
        Err(ret.saturating_neg())
    } else {
        Ok(())
    }
}

/// Attaches `prog_fd` to `ifindex` as its XDP program (libbpf's
/// `XDP_FLAGS_*` in `flags`), replacing one attached in the same mode.
pub(crate) fn xdp_attach(ifindex: u32, prog_fd: c_int, flags: u32) -> Result<(), c_int> {
    // SAFETY: a netlink request with a program fd; null opts are allowed.
    check(unsafe { libbpf_sys::bpf_xdp_attach(ifindex as c_int, prog_fd, flags, std::ptr::null()) })
}

/// Detaches whatever XDP program runs on `ifindex` in the mode `flags` says.
pub(crate) fn xdp_detach(ifindex: u32, flags: u32) -> Result<(), c_int> {
    // SAFETY: a netlink request on an interface index; null opts are allowed.
    check(unsafe { libbpf_sys::bpf_xdp_detach(ifindex as c_int, flags, std::ptr::null()) })
}

/// Detaches the XDP program of `ifindex` only if it is still `prog_fd`'s:
/// with `old_prog_fd` set libbpf adds XDP_FLAGS_REPLACE, and the kernel
/// refuses (EEXIST) when another program has replaced it.
pub(crate) fn xdp_detach_if_still(ifindex: u32, flags: u32, prog_fd: c_int) -> Result<(), c_int> {
    let opts = libbpf_sys::bpf_xdp_attach_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as libbpf_sys::size_t,
        old_prog_fd: prog_fd,
        ..Default::default()
    };
    // SAFETY: a netlink request; `opts` is a valid options struct whose `sz`
    // is its own size, alive across the call.
    check(unsafe { libbpf_sys::bpf_xdp_detach(ifindex as c_int, flags, &opts) })
}

/// The id of the XDP program the kernel runs on `ifindex` in the mode
/// `flags` says (0: none).
pub(crate) fn xdp_query_id(ifindex: u32, flags: u32) -> Result<u32, c_int> {
    let mut id: u32 = 0;
    // SAFETY: `id` is a valid, writable u32 for the call.
    check(unsafe { libbpf_sys::bpf_xdp_query_id(ifindex as c_int, flags as c_int, &mut id) })?;
    Ok(id)
}

/// The kernel's id of the program `prog_fd`.
pub(crate) fn prog_id(prog_fd: c_int) -> Result<u32, c_int> {
    // SAFETY: `bpf_prog_info` is plain old data; all zeroes is a valid value.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: `info` is writable for `len` bytes.
    check(unsafe { libbpf_sys::bpf_prog_get_info_by_fd(prog_fd, &mut info, &mut len) })?;
    Ok(info.id)
}

/// Types whose bytes are all initialised (no padding), so a map key or
/// value of that type can be handed to the kernel to copy.
pub(crate) trait MapBytes: Copy + sealed::Sealed {}
impl MapBytes for u8 {}
impl MapBytes for u32 {}
impl<const N: usize> MapBytes for [u8; N] {}
mod sealed {
    pub(crate) trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u32 {}
    impl<const N: usize> Sealed for [u8; N] {}
}

/// Sets `key` to `value` in the map `fd`; the types must have the sizes
/// the BPF program declares for that map (the kernel copies that many bytes).
pub(crate) fn map_update<K: MapBytes, V: MapBytes>(fd: c_int, key: &K, value: &V) -> Result<(), c_int> {
    // SAFETY: `key` and `value` point to initialised values without padding
    // (`MapBytes`), readable for the call; the kernel copies the map's key
    // and value sizes, which the callers match with `K` and `V`.
    check(unsafe {
        libbpf_sys::bpf_map_update_elem(
            fd,
            std::ptr::from_ref(key).cast::<c_void>(),
            std::ptr::from_ref(value).cast::<c_void>(),
            u64::from(libbpf_sys::BPF_ANY),
        )
    })
}

/// Deletes `key` from the map `fd` (ENOENT when it was not there).
pub(crate) fn map_delete<K: MapBytes>(fd: c_int, key: &K) -> Result<(), c_int> {
    // SAFETY: `key` points to an initialised value without padding, of the
    // map's key size, readable for the call.
    check(unsafe { libbpf_sys::bpf_map_delete_elem(fd, std::ptr::from_ref(key).cast::<c_void>()) })
}

/// One `BPF_PROG_RUN` of the XDP program `prog_fd` in live-frames mode:
/// `repeat` copies of `frame` go out as `ctx` describes, `batch` per kick.
/// The kernel allows concurrent runs of one program.
pub(crate) fn prog_run_live(
    prog_fd: c_int,
    frame: &[u8],
    ctx: &libbpf_sys::xdp_md,
    repeat: c_int,
    batch: u32,
) -> Result<(), c_int> {
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as libbpf_sys::size_t,
        data_in: frame.as_ptr().cast::<c_void>(),
        data_size_in: frame.len() as u32,
        ctx_in: std::ptr::from_ref(ctx).cast::<c_void>(),
        ctx_size_in: std::mem::size_of::<libbpf_sys::xdp_md>() as u32,
        repeat,
        flags: libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES,
        batch_size: batch,
        ..Default::default()
    };
    // SAFETY: `data_in` and `ctx_in` point to `data_size_in` and
    // `ctx_size_in` readable bytes borrowed across the call; there are no
    // output buffers; `opts.sz` is its own size. A bad `prog_fd` is an
    // error the kernel reports, not memory unsafety.
    check(unsafe { libbpf_sys::bpf_prog_test_run_opts(prog_fd, &mut opts) })
}

/// The values of one key of a per-CPU map of `u64` (BPF_MAP_TYPE_PERCPU_ARRAY),
/// one per possible CPU.
pub(crate) fn map_lookup_percpu_u64(fd: c_int, key: u32) -> Result<Vec<u64>, c_int> {
    // SAFETY: a plain query of the machine's possible CPUs.
    let cpus = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
    let cpus = usize::try_from(cpus).map_err(|_| cpus.saturating_neg())?;
    let mut values = vec![0u64; cpus];
    // SAFETY: `key` is a readable u32 (the map's key size) and `values` is
    // writable for one u64 per possible CPU, which is what the kernel copies
    // for a per-CPU map whose value is a u64 (8 bytes, so no rounding).
    check(unsafe {
        libbpf_sys::bpf_map_lookup_elem(
            fd,
            std::ptr::from_ref(&key).cast::<c_void>(),
            values.as_mut_ptr().cast::<c_void>(),
        )
    })?;
    Ok(values)
}

/// A BPF array map of `u64` created with BPF_F_MMAPABLE, mapped shared into
/// this process: stores here are what the BPF program reads, without a
/// syscall. Unmapped on drop; the mapping keeps the map alive on its own.
#[derive(Debug)]
pub(crate) struct MappedArray {
    base: std::ptr::NonNull<std::sync::atomic::AtomicU64>,
    entries: usize,
    bytes: usize,
}

// SAFETY: the mapping is shared memory accessed only through atomics, and
// owned by this value alone (unmapped once, on drop).
unsafe impl Send for MappedArray {}
// SAFETY: as above: every access is an atomic load or store.
unsafe impl Sync for MappedArray {}

impl MappedArray {
    /// Maps the array map `fd` of `entries` u64 values.
    pub(crate) fn map(fd: c_int, entries: usize) -> std::io::Result<MappedArray> {
        // SAFETY: a plain query of the page size.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
        let bytes = (entries * 8).div_ceil(page) * page;
        // SAFETY: a fresh shared mapping of the map's memory, which the
        // kernel sizes to whole pages (BPF_F_MMAPABLE); no existing memory
        // is touched. The result is checked before use.
        let ptr = unsafe {
            libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = std::ptr::NonNull::new(ptr.cast()).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(MappedArray { base, entries, bytes })
    }

    /// The values, shared with the BPF program.
    pub(crate) fn values(&self) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: the mapping is page-aligned (so aligned for AtomicU64),
        // holds at least `entries` u64 values, lives as long as `self`, and
        // is only accessed atomically (AtomicU64 has u64's layout).
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.entries) }
    }
}

impl Drop for MappedArray {
    fn drop(&mut self) {
        // SAFETY: `base` and `bytes` are exactly the mapping made in `map`,
        // unmapped once, here; no reference into it outlives `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
    }
}
