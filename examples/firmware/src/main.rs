//! microattn on a microcontroller, under QEMU: one causal multi-head
//! attention call on deterministic inputs, then the same positions again by
//! KV-cache decode steps, both checked inside the firmware against the
//! reference and the accuracy contract, the decode steps also bit for bit
//! against the attention call; then the integer path at the same shape
//! (`int8::causal_multi_head` and `int8::KvCache` decode steps), checked bit
//! for bit against its specification, against the `f64` oracle within its
//! bound, and the decode steps bit for bit against the call; then the same
//! decode steps on caches storing `f16` and `bf16`, each bit for bit an
//! `f32` cache's on the widened keys and values (`kv16`); then the `−∞`
//! mask on this target's lanes (`masked_keys_are_never_read`); prints the
//! figures and `PASS`/`FAIL`, then exits 0/1 through semihosting.
//!
//! Also measures, for `.ci/footprint`: the stack one attention call uses
//! below its caller (painted stack), and marks the call with `bench_start` /
//! `bench_end` for QEMU's instruction-count plugin; the stack of one decode
//! step (the last, over all `N` positions), marked with `bench_step_start` /
//! `bench_step_end`; the same for the integer call (`bench_int8_start` /
//! `bench_int8_end`) and decode step (`bench_int8_step_start` / `_end`);
//! and for the last `f16` and `bf16` decode steps (`bench_f16_step_start`,
//! `bench_bf16_step_start` / `_end`).
//!
//! With the `bounded-time` feature (microattn's branch-free kernel) it also
//! runs the bounded-time proof after the f32 run: the attention call on each
//! of the five inputs of `bounded::Case` between `bench_bounded_start` and
//! `bench_bounded_end`, and the scored call (`bounded::scored_attention`,
//! a key mask) on each between `bench_bounded_scored_start` and `_end`, so
//! that the instruction-count plugin sees five runs of each region; it
//! checks each output (the contract, or `+0.0` where every key is masked)
//! and that the scored call gives the plain call's bits. After the integer
//! run, the same for the integer call on each of the five inputs of
//! `int8::Case` (`bench_bounded_int8_start` / `_end`), and for the integer
//! decode step over one row of 160 keys (`int8::long_attention`, the
//! kernel's long-row path) on each (`bench_bounded_int8_long_start` / `_end`), each
//! output checked bit for bit against the specification.
//!
//! The run is this file, the same on every core. The core's own part is in
//! `arch/`: the entry point, semihosting (`hprint!`, `hprintln!`), the stack
//! pointer, the exit, and the panic and fault handlers; `arch/cortex_m.rs`
//! for the Cortex-M0, M4F and M33, `arch/riscv.rs` for riscv32imc.

#![no_std]
#![no_main]

use core::hint::black_box;
use core::mem::size_of;
use core::ptr::{addr_of_mut, write_volatile};

use microattn::Element;
#[cfg(feature = "bounded-time")]
use microattn_firmware::bounded::{self, Case, Verdict};
use microattn_firmware::{self as fw, Accuracy, Decode, Inputs, Queries, int8, kv16};

#[cfg(target_arch = "arm")]
#[path = "arch/cortex_m.rs"]
mod arch;
#[cfg(target_arch = "riscv32")]
#[path = "arch/riscv.rs"]
mod arch;
mod stack;

use arch::{hprint, hprintln};

/// The caller's buffers, in a static so that the stack holds only what a
/// call itself needs: the f32 run's, then the integer run's in the same
/// RAM.
static mut BUFFERS: Buffers = Buffers::Float {
    inputs: Inputs::EMPTY,
    out: [[[0.0; fw::D]; fw::H]; fw::N],
};

/// The f32 run's buffers (queries 4 KiB, keys and values in the KV cache
/// 4 KiB, output 4 KiB), then the integer run's (1 KiB each), then the
/// 16-bit run's caches (8 KiB): one at a time, since the first two at once
/// would leave the Cortex-M0 (16 KiB of RAM) too little stack for the
/// integer checks.
#[expect(
    clippy::large_enum_variant,
    reason = "the variants share RAM on purpose: the larger is the size"
)]
enum Buffers {
    Float {
        inputs: Inputs,
        out: Queries,
    },
    Int8 {
        inputs: int8::Inputs,
        out: int8::Queries,
    },
    Half {
        caches: kv16::Caches,
    },
    #[cfg(feature = "bounded-time")]
    Long {
        inputs: int8::LongInputs,
    },
}

/// Written by the markers so that they have different bodies (otherwise
/// LLVM may merge them into one function).
static mut MARK: u32 = 0;

/// Marker functions for the instruction-count plugin: each a symbol of its
/// own, with a body of its own.
macro_rules! markers {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)*) => {$(
        $(#[$doc])*
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub extern "C" fn $name() {
            // SAFETY: single-threaded firmware, no interrupts; a plain store.
            unsafe { write_volatile(addr_of_mut!(MARK), $value) }
        }
    )*};
}

markers! {
    /// Marks the start of the measured call.
    bench_start = 0x5157_0001;
    /// Marks the end of the measured call.
    bench_end = 0x5157_0002;
    /// Marks the start of the measured integer call.
    bench_int8_start = 0x5157_0003;
    /// Marks the end of the measured integer call.
    bench_int8_end = 0x5157_0004;
    /// Marks the start of the measured f32 decode step (the last).
    bench_step_start = 0x5157_0005;
    /// Marks its end.
    bench_step_end = 0x5157_0006;
    /// Marks the start of the measured integer decode step (the last).
    bench_int8_step_start = 0x5157_0007;
    /// Marks its end.
    bench_int8_step_end = 0x5157_0008;
    /// Marks the start of the measured `f16` decode step (the last).
    bench_f16_step_start = 0x5157_0009;
    /// Marks its end.
    bench_f16_step_end = 0x5157_000A;
    /// Marks the start of the measured `bf16` decode step (the last).
    bench_bf16_step_start = 0x5157_000B;
    /// Marks its end.
    bench_bf16_step_end = 0x5157_000C;
}

// The bounded-time proof's markers (its build only).
#[cfg(feature = "bounded-time")]
markers! {
    /// Marks the start of an attention call of the bounded-time proof.
    bench_bounded_start = 0x5157_000D;
    /// Marks its end.
    bench_bounded_end = 0x5157_000E;
    /// Marks the start of a scored call of the bounded-time proof.
    bench_bounded_scored_start = 0x5157_000F;
    /// Marks its end.
    bench_bounded_scored_end = 0x5157_0010;
    /// Marks the start of an integer call of the bounded-time proof.
    bench_bounded_int8_start = 0x5157_0011;
    /// Marks its end.
    bench_bounded_int8_end = 0x5157_0012;
    /// Marks the start of an integer call over a long row of the
    /// bounded-time proof.
    bench_bounded_int8_long_start = 0x5157_0013;
    /// Marks its end.
    bench_bounded_int8_long_end = 0x5157_0014;
}

/// Runs `step` on a painted stack between the markers `start` and `end`;
/// returns the stack it used below the caller and the caller's stack
/// pointer.
fn measure(step: &mut dyn FnMut(), start: extern "C" fn(), end: extern "C" fn()) -> (usize, usize) {
    let painted = stack::paint();
    let caller_sp = stack::pointer();
    start();
    step();
    end();
    (stack::used_below(caller_sp, painted), caller_sp)
}

/// The run, called by the core's entry point (`arch::main`).
fn run() -> ! {
    #[cfg(feature = "force-panic")]
    panic!("forced panic (CI self-test of the failure path)");
    #[cfg(feature = "force-hang")]
    loop {
        core::hint::spin_loop();
    }

    hprintln!(
        "microattn firmware on {}: causal_multi_head::<N={}, H={}, KVH={}, D={}>, {} multiply-accumulates per call",
        env!("FIRMWARE_TARGET"),
        fw::N,
        fw::H,
        fw::KVH,
        fw::D,
        fw::MACS
    );
    hprintln!(
        "decode steps: {} multiply-accumulates in the last step (over all {} positions)",
        fw::STEP_MACS,
        fw::N
    );

    // SAFETY: `run` runs once and is the only code touching this static;
    // this is the only reference to it.
    let buffers = unsafe { &mut *addr_of_mut!(BUFFERS) };
    let float = match buffers {
        Buffers::Float { inputs, out } => run_float(inputs, out),
        _ => false,
    };
    #[cfg(feature = "bounded-time")]
    let bounded = match buffers {
        Buffers::Float { inputs, out } => run_bounded(inputs, out),
        _ => false,
    };
    #[cfg(not(feature = "bounded-time"))]
    let bounded = true;
    *buffers = Buffers::Int8 {
        inputs: int8::Inputs::EMPTY,
        out: [[[0; fw::D]; fw::H]; fw::N],
    };
    let integer = match buffers {
        Buffers::Int8 { inputs, out } => run_int8(inputs, out),
        _ => false,
    };
    #[cfg(feature = "bounded-time")]
    let bounded = bounded
        && match buffers {
            Buffers::Int8 { inputs, out } => run_bounded_int8(inputs, out),
            _ => false,
        };
    #[cfg(feature = "bounded-time")]
    let bounded = bounded && {
        *buffers = Buffers::Long {
            inputs: int8::LongInputs::EMPTY,
        };
        match buffers {
            Buffers::Long { inputs } => run_bounded_int8_long(inputs),
            _ => false,
        }
    };
    *buffers = Buffers::Half {
        caches: kv16::Caches::EMPTY,
    };
    let sixteen = match buffers {
        Buffers::Half { caches } => run_16(caches),
        _ => false,
    };

    let masked = run_masked();

    if float && bounded && integer && sixteen && masked {
        hprintln!("PASS");
        arch::exit(true)
    } else {
        fail()
    }
}

/// The `−∞` mask check. Never inlined, as the two runs are: its arrays
/// stay out of `run`'s frame, which is on the stack throughout.
#[inline(never)]
fn run_masked() -> bool {
    let masked = fw::masked_keys_are_never_read();
    hprintln!(
        "masked keys: {}",
        if masked {
            "never read (bits as with zeros, masked rows +0.0)"
        } else {
            "READ"
        }
    );
    masked
}

/// The f32 run: the measured call, its checks, the decode steps. `true` if
/// every check passed.
#[inline(never)]
fn run_float(inputs: &mut Inputs, out: &mut Queries) -> bool {
    inputs.generate(fw::SEED);
    let Some((k, v)) = inputs.kv() else {
        hprintln!("inputs: the KV cache does not hold all {} positions", fw::N);
        return false;
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
            step_stack = Some(measure(step, bench_step_start, bench_step_end));
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
    hprintln!(
        "KV cache: KvCache<{}, {}, {}> is {} B",
        fw::N,
        fw::KVH,
        fw::D,
        size_of::<fw::Cache>()
    );
    prefill.verdict.is_ok() && decode.passed()
}

/// The bounded-time proof: for each case of `bounded::Case`, the attention
/// call and then the scored call (a key mask) between their markers, each
/// output checked. `true` if every check passed.
#[cfg(feature = "bounded-time")]
#[inline(never)]
fn run_bounded(inputs: &mut Inputs, out: &mut Queries) -> bool {
    let mut passed = true;
    for case in Case::ALL {
        let name = case.name();
        case.fill(inputs);
        let Some((k, v)) = inputs.kv() else {
            hprintln!(
                "bounded {}: the KV cache does not hold all {} positions",
                name,
                fw::N
            );
            return false;
        };
        bench_bounded_start();
        fw::attention(
            black_box(&inputs.q),
            black_box(k),
            black_box(v),
            black_box(&mut *out),
        );
        bench_bounded_end();
        let verdict = case.check(inputs, out);
        match &verdict {
            Verdict::Contract(acc) => report_bounded(name, acc, out),
            Verdict::Zeros { nonzero: 0 } => {
                hprintln!("bounded {}: every output +0.0", name);
            }
            Verdict::Zeros { nonzero } => {
                hprintln!("bounded {}: {} outputs not +0.0", name, nonzero);
            }
        }
        let plain = fw::bits_hash(out);

        let mask = case.key_mask();
        out.as_flattened_mut().as_flattened_mut().fill(f32::NAN);
        bench_bounded_scored_start();
        let scored = bounded::scored_attention(
            black_box(&mask),
            black_box(&inputs.q),
            black_box(k),
            black_box(v),
            black_box(&mut *out),
        );
        bench_bounded_scored_end();
        let same = scored.is_ok() && fw::bits_hash(out) == plain;
        match scored {
            Err(e) => hprintln!("bounded {}: the scored call failed: {}", name, e),
            Ok(()) => hprintln!(
                "bounded {}: scored call ({} keys masked): bits {} the attention call's",
                name,
                mask.iter().filter(|&&keep| !keep).count(),
                if same { "equal" } else { "DIFFER from" }
            ),
        }
        passed &= verdict.passed() && same;
    }
    hprintln!(
        "bounded time: {} cases, each through the attention call and the scored call: {}",
        Case::ALL.len(),
        if passed { "checks hold" } else { "CHECKS FAIL" }
    );
    passed
}

/// The integer path's bounded-time proof: for each case of `int8::Case`,
/// the integer call between its markers, its output checked bit for bit
/// against the specification and within the bound of the oracle. `true`
/// if every check passed.
#[cfg(feature = "bounded-time")]
#[inline(never)]
fn run_bounded_int8(inputs: &mut int8::Inputs, out: &mut int8::Queries) -> bool {
    let params = match int8::params() {
        Ok(params) => params,
        Err(e) => {
            hprintln!("bounded int8: the parameters are refused: {}", e);
            return false;
        }
    };
    let mut passed = true;
    for case in int8::Case::ALL {
        let name = case.name();
        inputs.fill_case(params, case);
        let (Some(params), Some((k, v))) = (inputs.params(), inputs.kv()) else {
            hprintln!(
                "bounded int8 {}: the KV cache does not hold all {} positions",
                name,
                fw::N
            );
            return false;
        };
        bench_bounded_int8_start();
        int8::attention(
            black_box(params),
            black_box(&inputs.q),
            black_box(k),
            black_box(v),
            black_box(&mut *out),
        );
        bench_bounded_int8_end();
        let accuracy = int8::check_against_reference(inputs, out);
        hprintln!(
            "bounded int8 {}: {} (max |out - oracle| = {} steps)",
            name,
            if accuracy.passed() {
                "the specification's bits, within the bound"
            } else {
                "CHECK FAILS"
            },
            accuracy.max_error
        );
        passed &= accuracy.passed();
    }
    hprintln!(
        "bounded time int8: {} cases through the integer call: {}",
        int8::Case::ALL.len(),
        if passed { "checks hold" } else { "CHECKS FAIL" }
    );
    passed
}

/// The integer path's bounded-time proof over a row longer than 128 keys:
/// for each case of `int8::Case`, the long call
/// ([`int8::long_attention`]) between its markers, its output checked bit
/// for bit against the specification. `true` if every check passed.
#[cfg(feature = "bounded-time")]
#[inline(never)]
fn run_bounded_int8_long(inputs: &mut int8::LongInputs) -> bool {
    let params = match int8::params() {
        Ok(params) => params,
        Err(e) => {
            hprintln!("bounded int8 long: the parameters are refused: {}", e);
            return false;
        }
    };
    let mut passed = true;
    for case in int8::Case::ALL {
        let name = case.name();
        inputs.fill_case(params, case);
        let result = measured_long_call(inputs);
        let ok = result.is_ok() && inputs.is_specified();
        match result {
            Err(e) => hprintln!("bounded int8 long {}: the call failed: {}", name, e),
            Ok(()) => hprintln!(
                "bounded int8 long {}: {}",
                name,
                if ok {
                    "the specification's bits"
                } else {
                    "CHECK FAILS"
                }
            ),
        }
        passed &= ok;
    }
    hprintln!(
        "bounded time int8 long: {} cases through the integer call over {} keys: {}",
        int8::Case::ALL.len(),
        int8::LONG,
        if passed { "checks hold" } else { "CHECKS FAIL" }
    );
    passed
}

/// The long call between its markers. Never inlined: every case runs
/// the same instructions between the markers, wherever the loop over the
/// cases is unrolled.
#[cfg(feature = "bounded-time")]
#[inline(never)]
fn measured_long_call(inputs: &mut int8::LongInputs) -> Result<(), microattn::Error> {
    bench_bounded_int8_long_start();
    let result = int8::long_attention(black_box(inputs));
    bench_bounded_int8_long_end();
    result
}

/// Prints one bounded-time case's contract check on its output `out`.
#[cfg(feature = "bounded-time")]
fn report_bounded(name: &str, acc: &Accuracy, out: &Queries) {
    match &acc.verdict {
        Ok(()) => hprintln!(
            "bounded {}: accuracy contract holds (max |out - ref64| = {:e}, max |ref64| = {:e}, {} outputs NaN where ref64 is)",
            name,
            acc.max_error,
            acc.ref_max,
            out.as_flattened()
                .as_flattened()
                .iter()
                .filter(|x| x.is_nan())
                .count()
        ),
        Err(v) => hprintln!("bounded {}: {}", name, v),
    }
}

/// The integer run: the measured call, its checks, the decode steps.
/// `true` if every check passed.
#[inline(never)]
fn run_int8(inputs: &mut int8::Inputs, out: &mut int8::Queries) -> bool {
    let params = match int8::params() {
        Ok(params) => params,
        Err(e) => {
            hprintln!("int8: the parameters are refused: {}", e);
            return false;
        }
    };
    inputs.generate(params, fw::SEED);
    hprintln!(
        "int8: int8::causal_multi_head::<N={}, H={}, KVH={}, D={}>; (scale, zero point) q ({}, {}), k ({}, {}), v ({}, {}), out ({}, {})",
        fw::N,
        fw::H,
        fw::KVH,
        fw::D,
        int8::QUERY.scale,
        int8::QUERY.zero_point,
        int8::KEY.scale,
        int8::KEY.zero_point,
        int8::VALUE.scale,
        int8::VALUE.zero_point,
        int8::OUTPUT.scale,
        int8::OUTPUT.zero_point
    );
    let (Some(params), Some((k, v))) = (inputs.params(), inputs.kv()) else {
        hprintln!("int8: the KV cache does not hold all {} positions", fw::N);
        return false;
    };
    let painted = stack::paint();
    let caller_sp = stack::pointer();
    bench_int8_start();
    int8::attention(
        black_box(params),
        black_box(&inputs.q),
        black_box(k),
        black_box(v),
        black_box(&mut *out),
    );
    bench_int8_end();
    let used = stack::used_below(caller_sp, painted);
    hprintln!(
        "int8 stack: {} B below the caller for one int8 attention call (caller's stack pointer {} B into the stack)",
        used,
        stack::depth(caller_sp)
    );

    // The checks run the specification and the oracle (2 KiB of scratch
    // each): the run's deepest stack, painted so that an overflow (into the
    // statics below the stack) fails the run instead of passing unseen.
    let painted = stack::paint();
    let caller_sp = stack::pointer();
    let accuracy = int8::check_against_reference(inputs, out);
    let used = stack::used_below(caller_sp, painted);
    let free = caller_sp - painted;
    hprintln!(
        "int8 checks: {} B of stack below the caller, of {} B free",
        used,
        free
    );
    report_int8(&accuracy);
    hprintln!("int8 bits: fnv1a(out) = {:#010x}", int8::bits_hash(out));

    let mut step_stack = None;
    let decode = int8::decode_steps(inputs, out, |i, step| {
        if i + 1 == fw::N {
            step_stack = Some(measure(step, bench_int8_step_start, bench_int8_step_end));
        } else {
            step();
        }
    });
    report_int8_decode(&decode);
    if let Some((used, caller_sp)) = step_stack {
        hprintln!(
            "int8 decode stack: {} B below the caller for one int8 decode step (int8::KvCache::step over {} positions; caller's stack pointer {} B into the stack)",
            used,
            fw::N,
            stack::depth(caller_sp)
        );
    }
    hprintln!(
        "int8 KV cache: int8::KvCache<{}, {}, {}> is {} B",
        fw::N,
        fw::KVH,
        fw::D,
        size_of::<int8::Cache>()
    );
    accuracy.passed() && decode.passed() && used < free
}

/// The 16-bit run: the decode steps on the `f16` cache, then on the `bf16`
/// cache, each against the `f32` cache on the widened keys and values.
/// `true` if every check passed.
#[inline(never)]
fn run_16(caches: &mut kv16::Caches) -> bool {
    let kv16::Caches { f16, bf16, widened } = caches;
    let half = run_element(
        f16,
        widened,
        kv16::decode_step_f16,
        bench_f16_step_start,
        bench_f16_step_end,
    );
    let brain = run_element(
        bf16,
        widened,
        kv16::decode_step_bf16,
        bench_bf16_step_start,
        bench_bf16_step_end,
    );
    half && brain
}

/// The decode steps on `cache` (storing `E`) by `step`, the last between
/// the markers `start` and `end` on a painted stack; prints what they gave.
fn run_element<E: Element>(
    cache: &mut kv16::Cache<E>,
    widened: &mut fw::Cache,
    step: kv16::Step<E>,
    start: extern "C" fn(),
    end: extern "C" fn(),
) -> bool {
    let name = E::NAME;
    let mut step_stack = None;
    let decode = kv16::decode_steps(
        cache,
        widened,
        step,
        fw::SEED,
        kv16::widened::<E>,
        |i, step| {
            if i + 1 == fw::N {
                step_stack = Some(measure(step, start, end));
            } else {
                step();
            }
        },
    );
    if let Some(e) = &decode.error {
        hprintln!("{} decode: step {} failed: {}", name, decode.steps, e);
    }
    if let Some(e) = &decode.widened_error {
        hprintln!(
            "{} decode: the f32 cache's step {} failed: {}",
            name,
            decode.steps,
            e
        );
    }
    hprintln!(
        "{} decode: {} of {} positions by KvCache<{}, {}, {}, {}>::step from an empty cache",
        name,
        decode.steps,
        fw::N,
        fw::N,
        fw::KVH,
        fw::D,
        name
    );
    match decode.first_mismatch {
        None if decode.steps == fw::N => hprintln!(
            "{} decode: bits equal an f32 KvCache's on the widened keys and values at all {} positions",
            name,
            fw::N
        ),
        None => hprintln!(
            "{} decode: bits equal an f32 KvCache's on the widened keys and values at the positions run",
            name
        ),
        Some(first) => hprintln!(
            "{} decode: bits differ from an f32 KvCache's on the widened keys and values at {} positions (first: {})",
            name,
            decode.mismatches,
            first
        ),
    }
    if decode.stored_wrong == 0 {
        hprintln!(
            "{} decode: every key and value stored as its rounding to {}",
            name,
            name
        );
    } else {
        hprintln!(
            "{} decode: {} positions not stored as their rounding to {}",
            name,
            decode.stored_wrong,
            name
        );
    }
    hprintln!("{} bits: fnv1a(out) = {:#010x}", name, decode.bits_hash);
    if let Some((used, caller_sp)) = step_stack {
        hprintln!(
            "{} decode stack: {} B below the caller for one {} decode step (KvCache::step over {} positions; caller's stack pointer {} B into the stack)",
            name,
            used,
            name,
            fw::N,
            stack::depth(caller_sp)
        );
    }
    hprintln!(
        "{} KV cache: KvCache<{}, {}, {}, {}> is {} B",
        name,
        fw::N,
        fw::KVH,
        fw::D,
        name,
        size_of::<kv16::Cache<E>>()
    );
    decode.passed()
}

/// Prints the integer output's comparison with its specification and the
/// oracle.
fn report_int8(acc: &int8::Accuracy) {
    if acc.positions != fw::N {
        hprintln!(
            "int8: checked {} of {} positions (inputs missing)",
            acc.positions,
            fw::N
        );
    }
    match acc.first_mismatch {
        None => hprintln!(
            "int8: bits equal reference::int8::causal_attention_dyn at all {} positions",
            acc.positions
        ),
        Some(first) => hprintln!(
            "int8: bits differ from reference::int8::causal_attention_dyn at {} outputs (first: position {}, value {})",
            acc.mismatches,
            first / (fw::H * fw::D),
            first % (fw::H * fw::D)
        ),
    }
    hprintln!(
        "int8: max |out - oracle| = {} output steps (bound there {})",
        acc.max_error,
        acc.bound_there
    );
    match acc.first_outside {
        None => hprintln!("int8: every output within reference::int8::bound of the oracle"),
        Some(first) => hprintln!(
            "int8: {} outputs outside reference::int8::bound of the oracle (first: position {}, value {})",
            acc.outside,
            first / (fw::H * fw::D),
            first % (fw::H * fw::D)
        ),
    }
}

/// Prints what the integer decode steps gave.
fn report_int8_decode(decode: &int8::Decode) {
    if let Some(e) = &decode.error {
        hprintln!("int8 decode: step {} failed: {}", decode.steps, e);
    }
    hprintln!(
        "int8 decode: {} of {} positions by int8::KvCache::step from an empty cache",
        decode.steps,
        fw::N
    );
    match decode.first_mismatch {
        None if decode.steps == fw::N => hprintln!(
            "int8 decode: bits equal int8::causal_multi_head's at all {} positions",
            fw::N
        ),
        None => hprintln!("int8 decode: bits equal int8::causal_multi_head's at the positions run"),
        Some(first) => hprintln!(
            "int8 decode: bits differ from int8::causal_multi_head's at {} positions (first: {})",
            decode.mismatches,
            first
        ),
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
