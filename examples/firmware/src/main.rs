//! microattn on a microcontroller, under QEMU: one causal multi-head
//! attention call on deterministic inputs, then the same positions again by
//! KV-cache decode steps, both checked inside the firmware against the
//! reference and the accuracy contract, the decode steps also bit for bit
//! against the attention call; then the `−∞` mask on this target's lanes
//! (`masked_keys_are_never_read`); prints the figures and `PASS`/`FAIL`,
//! then exits 0/1 through semihosting.
//!
//! Also measures, for `.ci/footprint`: the stack one attention call uses
//! below its caller (painted stack), and marks the call with `bench_start` /
//! `bench_end` for QEMU's instruction-count plugin; and the stack of one
//! decode step (the last, over all `N` positions).
//!
//! The run is this file, the same on every core. The core's own part is in
//! `arch/`: the entry point, semihosting (`hprint!`, `hprintln!`), the stack
//! pointer, the exit, and the panic and fault handlers; `arch/cortex_m.rs`
//! for the Cortex-M0, M4F and M33, `arch/riscv.rs` for riscv32imc.

#![no_std]
#![no_main]

use core::hint::black_box;
use core::ptr::{addr_of_mut, write_volatile};

use microattn_firmware::{self as fw, Accuracy, Decode, Inputs, Queries};

#[cfg(target_arch = "arm")]
#[path = "arch/cortex_m.rs"]
mod arch;
#[cfg(target_arch = "riscv32")]
#[path = "arch/riscv.rs"]
mod arch;
mod stack;

use arch::{hprint, hprintln};

/// The caller's buffers: inputs (queries 4 KiB, keys and values in the KV
/// cache 4 KiB) and output (4 KiB), in statics so that the stack holds only
/// what the attention call itself needs.
static mut INPUTS: Inputs = Inputs::EMPTY;
static mut OUT: Queries = [[[0.0; fw::D]; fw::H]; fw::N];

/// Written by the markers so that they have different bodies (otherwise
/// LLVM may merge them into one function).
static mut MARK: u32 = 0;

/// Marks the start of the measured call for the instruction-count plugin.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn bench_start() {
    // SAFETY: single-threaded firmware, no interrupts; a plain store.
    unsafe { write_volatile(addr_of_mut!(MARK), 0x5157_0001) }
}

/// Marks the end of the measured call.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn bench_end() {
    // SAFETY: as in `bench_start`.
    unsafe { write_volatile(addr_of_mut!(MARK), 0x5157_0002) }
}

/// The run, called by the core's entry point (`arch::main`).
fn run() -> ! {
    #[cfg(feature = "force-panic")]
    panic!("forced panic (CI self-test of the failure path)");
    #[cfg(feature = "force-hang")]
    loop {
        core::hint::spin_loop();
    }

    // SAFETY: `run` runs once and is the only code touching these statics;
    // these are the only references to them.
    let (inputs, out) = unsafe { (&mut *addr_of_mut!(INPUTS), &mut *addr_of_mut!(OUT)) };
    inputs.generate(fw::SEED);

    hprintln!(
        "microattn firmware on {}: causal_multi_head::<N={}, H={}, KVH={}, D={}>",
        env!("FIRMWARE_TARGET"),
        fw::N,
        fw::H,
        fw::KVH,
        fw::D
    );

    let Some((k, v)) = inputs.kv() else {
        hprintln!("inputs: the KV cache does not hold all {} positions", fw::N);
        fail();
    };
    // The measured call: the stack below this frame is painted first, and
    // the markers bracket the call for the instruction counter.
    let painted = stack::paint();
    let caller_sp = stack::pointer();
    bench_start();
    fw::attention(
        black_box(&inputs.q),
        black_box(k),
        black_box(v),
        black_box(&mut *out),
    );
    bench_end();
    let used = stack::used_below(caller_sp, painted);
    hprintln!(
        "stack: {} B below the caller for one attention call (caller's stack pointer {} B into the stack)",
        used,
        stack::depth(caller_sp)
    );

    let prefill = fw::check_against_reference(inputs, out);
    report("prefill", &prefill);
    hprintln!("checksum: sum(out) = {}", fw::checksum(out));
    hprintln!("bits: fnv1a(out) = {:#010x}", fw::bits_hash(out));
    dump(out);

    // The same positions by decode steps; the last step (over all N
    // positions) runs on a painted stack.
    let mut step_stack = None;
    let decode = fw::decode_steps(inputs, out, |i, step| {
        if i + 1 == fw::N {
            let painted = stack::paint();
            let caller_sp = stack::pointer();
            step();
            step_stack = Some((stack::used_below(caller_sp, painted), caller_sp));
        } else {
            step();
        }
    });
    report_decode(&decode);
    if let Some((used, caller_sp)) = step_stack {
        hprintln!(
            "decode stack: {} B below the caller for one decode step (KvCache::step over {} positions; caller's stack pointer {} B into the stack)",
            used,
            fw::N,
            stack::depth(caller_sp)
        );
    }

    let masked = fw::masked_keys_are_never_read();
    hprintln!(
        "masked keys: {}",
        if masked {
            "never read (bits as with zeros, masked rows +0.0)"
        } else {
            "READ"
        }
    );

    if prefill.verdict.is_ok() && decode.passed() && masked {
        hprintln!("PASS");
        arch::exit(true)
    } else {
        fail()
    }
}

/// Prints `FAIL` and exits 1.
fn fail() -> ! {
    hprintln!("FAIL");
    arch::exit(false)
}

/// Prints what the decode steps gave: steps run, bit equality with the
/// attention call, the contract's quantities and verdict.
fn report_decode(decode: &Decode) {
    if let Some(e) = &decode.error {
        hprintln!("decode: step {} failed: {}", decode.steps, e);
    }
    hprintln!(
        "decode: {} of {} positions by KvCache::step from an empty cache",
        decode.steps,
        fw::N
    );
    match decode.first_mismatch {
        None if decode.steps == fw::N => hprintln!(
            "decode: bits equal causal_multi_head's at all {} positions",
            fw::N
        ),
        None => hprintln!("decode: bits equal causal_multi_head's at the positions run"),
        Some(first) => hprintln!(
            "decode: bits differ from causal_multi_head's at {} positions (first: {})",
            decode.mismatches,
            first
        ),
    }
    report("decode", &decode.accuracy);
}

/// Prints the contract's quantities and its verdict.
fn report(what: &str, acc: &Accuracy) {
    hprintln!(
        "{}: max |out - ref64| = {:e}, max |naive32 - ref64| = {:e}, max |ref64| = {:e}",
        what,
        acc.max_error,
        acc.naive_error,
        acc.ref_max
    );
    match &acc.verdict {
        Ok(()) => hprintln!("{}: accuracy contract holds", what),
        Err(v) => hprintln!("{}: {}", what, v),
    }
}

/// The output's bits, one line per query position, for the host check
/// (`examples/host_check.rs`).
fn dump(out: &Queries) {
    for (i, row) in out.iter().enumerate() {
        hprint!("out {}:", i);
        for x in row.as_flattened() {
            hprint!(" {:08x}", x.to_bits());
        }
        hprintln!();
    }
}
