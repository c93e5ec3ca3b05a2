//! Picks the memory map of the QEMU machine that runs the compilation target,
//! so that one package serves four boards. Targets without a machine (the
//! host) build the library only and need none.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=FIRMWARE_TARGET={target}");
    let map = match target.as_str() {
        "thumbv7em-none-eabihf" | "thumbv7em-none-eabi" => "memory/mps2-an386.x",
        "thumbv6m-none-eabi" => "memory/microbit.x",
        t if t.starts_with("thumbv8m.main-none-eabi") => "memory/mps2-an505.x",
        "riscv32imc-unknown-none-elf" => "memory/qemu-virt.x",
        _ => return,
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy(map, out.join("memory.x")).expect("copy the memory map");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={map}");
}
