//! Compiles every `bpf/*.c` into an eBPF object in `OUT_DIR` (`bpf/foo.c`
//! becomes `$OUT_DIR/foo.o`), which the engine embeds with `include_bytes!`.
//!
//! Needs clang with the BPF target (Debian: `apt-get install clang llvm`) and
//! the libbpf headers that libbpf-sys's build script exposes as
//! `DEP_BPF_INCLUDE`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bpf_dir = manifest_dir.join("bpf");
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
    println!("cargo:rerun-if-env-changed=DEP_BPF_INCLUDE");

    let mut sources = Vec::new();
    let mut headers = Vec::new();
    let entries = std::fs::read_dir(&bpf_dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", bpf_dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", bpf_dir.display())).path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("c") => sources.push(path),
            Some("h") => headers.push(path),
            _ => {}
        }
    }
    sources.sort();
    for path in sources.iter().chain(&headers) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    if sources.is_empty() {
        return;
    }

    let libbpf_include = env::var("DEP_BPF_INCLUDE").unwrap_or_else(|_| {
        panic!("DEP_BPF_INCLUDE is not set: the engine must depend on libbpf-sys directly so its headers are visible")
    });
    let arch_include = format!("/usr/include/{}", multiarch());

    for src in &sources {
        let stem = src.file_stem().and_then(|s| s.to_str()).expect("a bpf/*.c file has a UTF-8 name");
        let obj = out_dir.join(format!("{stem}.o"));
        compile(src, &obj, &arch_include, &libbpf_include);
    }
}

/// The Debian multiarch triplet (`x86_64-linux-gnu`), for `asm/types.h`.
fn multiarch() -> String {
    Command::new("gcc")
        .arg("-print-multiarch")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "x86_64-linux-gnu".to_string())
}

fn compile(src: &Path, obj: &Path, arch_include: &str, libbpf_include: &str) {
    let mut cmd = Command::new("clang");
    cmd.args(["-O2", "-g", "-Wall", "-target", "bpf"])
        .arg(format!("-I{arch_include}"))
        .arg(format!("-I{libbpf_include}"))
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(obj);
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "clang was not found, and it is needed to compile the engine's XDP programs ({}). \
             Install Debian's clang and llvm: `apt-get install clang llvm`",
            src.display()
        ),
        Err(e) => panic!("cannot run clang for {}: {e}", src.display()),
    };
    if !output.status.success() {
        panic!(
            "clang failed to compile {} ({}):\n{}{}",
            src.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Warnings (with -Wall) are shown, not fatal.
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        println!("cargo:warning={line}");
    }
}
