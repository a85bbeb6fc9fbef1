//! Loading the engine's BPF programs (compiled from `bpf/*.c` at build time
//! and embedded) with libbpf, and looking up their programs and maps. The one
//! place the engine opens a BPF object.

use std::ffi::{c_int, CStr};

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
