//! Host side of the firmware check: reads the output of a firmware run (a
//! QEMU log) and holds the firmware's output to the accuracy contract against
//! the reference computed **on the host** from the same inputs.
//!
//! ```sh
//! cargo run --release 2>&1 | tee m4f.log     # in examples/firmware
//! cargo run --release --target x86_64-unknown-linux-gnu --example host_check -- m4f.log
//! ```
//!
//! Checks, for each log: the run said `PASS`; its `out` lines are the whole
//! output and their checksum and bit hash are the ones the firmware printed;
//! `check_contract(firmware_out, host_naive32, host_ref64)` holds over the
//! whole output; the run did its decode steps and found them bit for bit
//! equal to the attention call and within the contract. Also says whether
//! the firmware's bits equal the host's fast kernel's (they need not: fused
//! multiply-add and lane order may differ).
//!
//! The integer run: the log says its output equals the specification and is
//! within the bound, and its decode steps equal the call; its bit hash is
//! the host's own integer output's (the integer path gives the same bits
//! on every target).
//!
//! The 16-bit run: the log says all `N` decode steps ran on the `f16` and
//! the `bf16` cache, each bit for bit the `f32` cache's on the widened keys
//! and values, each position stored as its rounding.
//!
//! Before reading the logs it checks the firmware's own checks on the host:
//! the streamed contract check gives `check_contract`'s verdict, and the
//! decode check passes on the host's output and catches a changed bit and a
//! step that did not run; the integer checks pass on the host's integer
//! output and catch an output one step off and a changed decode row; the
//! 16-bit decode check passes on the host and sees the rounding (an `f32`
//! cache fed the unrounded keys and values differs).
//!
//! Exit status 0 when every log passes, 1 otherwise.

use std::process::ExitCode;

use microattn::Shape;
use microattn::reference::{self, check_contract};
use microattn_firmware::{self as fw, D, H, Inputs, KVH, KeysValues, N, Queries, int8, kv16};

fn main() -> ExitCode {
    let logs: Vec<String> = std::env::args().skip(1).collect();
    if logs.is_empty() {
        eprintln!("usage: host_check <firmware log>...");
        return ExitCode::from(2);
    }

    let inputs = generated();
    let Some((k, v)) = inputs.kv() else {
        eprintln!("error: the generated inputs lack keys and values");
        return ExitCode::FAILURE;
    };
    let mut naive: Box<Queries> = Box::new([[[0.0; D]; H]; N]);
    reference::causal_multi_head(&inputs.q, k, v, &mut naive);
    let mut ref64 = vec![0.0f64; N * H * D];
    let shape = Shape::new(N, N, H, KVH, D);
    let flat = |x: &KeysValues| x.as_flattened().as_flattened().to_vec();
    if let Err(e) = reference::causal_attention_f64(
        &shape,
        inputs.q.as_flattened().as_flattened(),
        &flat(k),
        &flat(v),
        &mut ref64,
    ) {
        eprintln!("error: the f64 oracle refused the firmware's shape: {e}");
        return ExitCode::FAILURE;
    }
    let mut host: Box<Queries> = Box::new([[[0.0; D]; H]; N]);
    fw::attention(&inputs.q, k, v, &mut host);

    if let Err(e) = check_streamed_check(&inputs, &host, &naive, &ref64) {
        eprintln!("error: the firmware's streamed contract check is wrong: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = check_decode_check(&host) {
        eprintln!("error: the firmware's decode check is wrong: {e}");
        return ExitCode::FAILURE;
    }
    let host8 = match check_int8_checks() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("error: the firmware's integer checks are wrong: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host8_hash = format!("{:#010x}", int8::bits_hash(&host8));
    if let Err(e) = check_kv16_check() {
        eprintln!("error: the firmware's 16-bit decode check is wrong: {e}");
        return ExitCode::FAILURE;
    }

    let mut ok = true;
    for log in &logs {
        match check_log(log, &naive, &ref64, &host)
            .and_then(|line| {
                check_int8_log(log, &host8_hash).map(|line8| format!("{line}; {line8}"))
            })
            .and_then(|line| check_kv16_log(log).map(|line16| format!("{line}; {line16}")))
        {
            Ok(line) => println!("{log}: {line}"),
            Err(e) => {
                println!("{log}: FAIL: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One log's verdict: `Ok` with a summary line, or what is wrong.
fn check_log(path: &str, naive: &Queries, ref64: &[f64], host: &Queries) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    if !text.lines().any(|l| l.trim() == "PASS") {
        return Err("the firmware did not print PASS".into());
    }
    for line in [
        format!("decode: {N} of {N} positions by KvCache::step from an empty cache"),
        format!("decode: bits equal causal_multi_head's at all {N} positions"),
        "decode: accuracy contract holds".to_string(),
    ] {
        if !text.lines().any(|l| l.trim() == line) {
            return Err(format!("no line {line:?}"));
        }
    }
    let out = parse_output(&text)?;
    let printed_hash = field(&text, "bits: fnv1a(out) = ")?;
    let hash = format!("{:#010x}", fw::bits_hash(&out));
    if printed_hash != hash {
        return Err(format!(
            "the dump hashes to {hash}, the firmware printed {printed_hash}"
        ));
    }
    let printed_sum = field(&text, "checksum: sum(out) = ")?;
    if printed_sum != fw::checksum(&out).to_string() {
        return Err(format!(
            "the dump sums to {}, the firmware printed {printed_sum}",
            fw::checksum(&out)
        ));
    }
    let flat = out.as_flattened().as_flattened();
    check_contract(flat, naive.as_flattened().as_flattened(), ref64).map_err(|v| v.to_string())?;
    let max_error = flat
        .iter()
        .zip(ref64)
        .map(|(&o, &r)| (f64::from(o) - r).abs())
        .fold(0.0f64, f64::max);
    let same = *out == *host;
    Ok(format!(
        "contract holds against the host's reference (max |out - ref64| = {max_error:e}); \
         checksum {printed_sum}; bits {} the host's fast kernel; \
         decode steps equal to the attention call bit for bit",
        if same { "equal" } else { "differ from" }
    ))
}

/// The firmware checks the contract one query position at a time
/// (`check_against_reference`); it must give `check_contract`'s verdict on
/// the whole output: on the host's output, and on copies broken by a small
/// error, a large one and a NaN.
fn check_streamed_check(
    inputs: &Inputs,
    host: &Queries,
    naive: &Queries,
    ref64: &[f64],
) -> Result<(), String> {
    let naive = naive.as_flattened().as_flattened();
    type Breakage = (&'static str, usize, fn(f32) -> f32);
    let cases: [Breakage; 4] = [
        ("unchanged", 0, |x| x),
        ("off by 1e-6", 77, |x| x + 1e-6),
        ("off by 0.5", 500, |x| x + 0.5),
        ("NaN", 1000, |_| f32::NAN),
    ];
    for (name, index, change) in cases {
        let mut out = Box::new(*host);
        let flat = out.as_flattened_mut().as_flattened_mut();
        flat[index] = change(flat[index]);
        let whole = check_contract(flat, naive, ref64).map_err(|v| v.index);
        let streamed = fw::check_against_reference(inputs, &out)
            .verdict
            .map_err(|v| v.index);
        if whole != streamed {
            return Err(format!(
                "{name}: whole output {whole:?}, streamed {streamed:?}"
            ));
        }
        println!("streamed check agrees with check_contract ({name}: {whole:?})");
    }
    Ok(())
}

/// The inputs every firmware run uses.
fn generated() -> Box<Inputs> {
    let mut inputs = Box::new(Inputs::EMPTY);
    inputs.generate(fw::SEED);
    inputs
}

/// The firmware's decode check (`decode_steps`) on the host: it passes
/// against the host's own attention output (decode steps equal one prefill
/// bit for bit in one build); it reports a prefill row changed in one bit as
/// that one mismatch; it reports a step that did not run as an error.
fn check_decode_check(host: &Queries) -> Result<(), String> {
    let mut inputs = generated();
    let decode = fw::decode_steps(&mut inputs, host, |_, step| step());
    if !decode.passed() {
        return Err(format!("fails on the host's own output: {decode:?}"));
    }
    if inputs.kv().is_none() {
        return Err("the cache does not hold all positions after the steps".into());
    }
    println!(
        "decode check passes on the host: {} steps, bits equal the host's attention call",
        decode.steps
    );

    let mut changed = Box::new(*host);
    changed[5][1][3] = f32::from_bits(changed[5][1][3].to_bits() ^ 1);
    let decode = fw::decode_steps(&mut generated(), &changed, |_, step| step());
    if decode.passed() || decode.mismatches != 1 || decode.first_mismatch != Some(5) {
        return Err(format!("missed one changed bit at position 5: {decode:?}"));
    }
    println!("decode check catches one changed bit (position 5)");

    let decode = fw::decode_steps(&mut generated(), host, |i, step| {
        if i != 3 {
            step();
        }
    });
    if decode.passed() || decode.steps != 3 || decode.error.is_none() {
        return Err(format!("missed a step that did not run: {decode:?}"));
    }
    println!("decode check catches a step that did not run (position 3)");
    Ok(())
}

/// The integer run of one log: its checks passed, and its output's bits
/// are the host's.
fn check_int8_log(path: &str, host_hash: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    for line in [
        format!("int8: bits equal reference::int8::causal_attention_dyn at all {N} positions"),
        "int8: every output within reference::int8::bound of the oracle".to_string(),
        format!("int8 decode: {N} of {N} positions by int8::KvCache::step from an empty cache"),
        format!("int8 decode: bits equal int8::causal_multi_head's at all {N} positions"),
    ] {
        if !text.lines().any(|l| l.trim() == line) {
            return Err(format!("no line {line:?}"));
        }
    }
    let printed = field(&text, "int8 bits: fnv1a(out) = ")?;
    if printed != host_hash {
        return Err(format!(
            "the integer output hashes to {printed}, the host's to {host_hash}: not the same bits"
        ));
    }
    Ok(format!(
        "integer output bit for bit the host's ({host_hash})"
    ))
}

/// The firmware's integer checks on the host: they pass on the host's own
/// integer output; they report an output one step off as that one
/// mismatch, and one moved past the bound as outside it; the decode check
/// reports a changed row. Returns the host's integer output.
fn check_int8_checks() -> Result<Box<int8::Queries>, String> {
    let params = int8::params().map_err(|e| e.to_string())?;
    let mut inputs = Box::new(int8::Inputs::EMPTY);
    inputs.generate(params, fw::SEED);
    let (Some(params), Some((k, v))) = (inputs.params(), inputs.kv()) else {
        return Err("the generated integer inputs lack their cache".into());
    };
    let mut out: Box<int8::Queries> = Box::new([[[0; D]; H]; N]);
    int8::attention(params, &inputs.q, k, v, &mut out);

    let acc = int8::check_against_reference(&inputs, &out);
    if !acc.passed() {
        return Err(format!("fails on the host's own output: {acc:?}"));
    }
    println!(
        "integer check passes on the host: max |out - oracle| = {} output steps",
        acc.max_error
    );

    // Position 7, head 1, dim 2: one step off, then four, toward 0 (so
    // that the i8 cannot overflow).
    let index = 7 * H * D + D + 2;
    let mut changed = out.clone();
    let x = &mut changed[7][1][2];
    let toward_zero = if *x > 0 { -1 } else { 1 };
    *x += toward_zero;
    let acc = int8::check_against_reference(&inputs, &changed);
    if acc.passed() || acc.mismatches != 1 || acc.first_mismatch != Some(index) {
        return Err(format!("missed an output one step off: {acc:?}"));
    }
    changed[7][1][2] += 3 * toward_zero;
    let acc = int8::check_against_reference(&inputs, &changed);
    if acc.outside != 1 || acc.first_outside != Some(index) {
        return Err(format!("missed an output four steps off: {acc:?}"));
    }
    println!("integer check catches an output one step off, and four steps outside the bound");

    let decode = int8::decode_steps(&mut inputs, &out, |_, step| step());
    if !decode.passed() {
        return Err(format!(
            "decode check fails on the host's own output: {decode:?}"
        ));
    }
    let decode = int8::decode_steps(&mut inputs, &changed, |_, step| step());
    if decode.passed() || decode.mismatches != 1 || decode.first_mismatch != Some(7) {
        return Err(format!(
            "decode check missed a changed row at position 7: {decode:?}"
        ));
    }
    println!("integer decode check passes on the host and catches a changed row (position 7)");
    Ok(out)
}

/// The 16-bit run of one log: all steps ran on both caches and equal the
/// `f32` cache's on the widened keys and values.
fn check_kv16_log(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    for name in ["f16", "bf16"] {
        for line in [
            format!(
                "{name} decode: {N} of {N} positions by KvCache<{N}, {KVH}, {D}, {name}>::step from an empty cache"
            ),
            format!(
                "{name} decode: bits equal an f32 KvCache's on the widened keys and values at all {N} positions"
            ),
            format!("{name} decode: every key and value stored as its rounding to {name}"),
        ] {
            if !text.lines().any(|l| l.trim() == line) {
                return Err(format!("no line {line:?}"));
            }
        }
    }
    Ok("f16 and bf16 decode steps bit for bit the f32 cache's on the widened values".into())
}

/// The firmware's 16-bit decode check on the host: it passes with the
/// widened keys and values, and reports mismatches when the `f32` cache is
/// fed the unrounded ones (so it would see a kernel that did not round).
fn check_kv16_check() -> Result<(), String> {
    let mut caches = Box::new(kv16::Caches::EMPTY);
    let kv16::Caches { f16, bf16, widened } = &mut *caches;
    let decode = kv16::decode_steps(
        f16,
        widened,
        kv16::decode_step_f16,
        fw::SEED,
        kv16::widened::<microattn::f16>,
        |_, step| step(),
    );
    if !decode.passed() {
        return Err(format!("f16: fails on the host: {decode:?}"));
    }
    let decode = kv16::decode_steps(
        bf16,
        widened,
        kv16::decode_step_bf16,
        fw::SEED,
        kv16::widened::<microattn::bf16>,
        |_, step| step(),
    );
    if !decode.passed() {
        return Err(format!("bf16: fails on the host: {decode:?}"));
    }
    let decode = kv16::decode_steps(
        f16,
        widened,
        kv16::decode_step_f16,
        fw::SEED,
        |x| x,
        |_, step| step(),
    );
    if decode.passed() || decode.mismatches == 0 {
        return Err(format!(
            "f16 against the unrounded keys and values: no mismatch seen: {decode:?}"
        ));
    }
    println!(
        "16-bit decode check passes on the host and sees the rounding ({} of {N} f16 steps differ from an f32 cache on the unrounded values)",
        decode.mismatches
    );
    Ok(())
}

/// The rest of the line after `prefix`.
fn field<'a>(text: &'a str, prefix: &str) -> Result<&'a str, String> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
        .ok_or_else(|| format!("no line starting with {prefix:?}"))
}

/// The `out <i>: <hex bits>...` lines, one per query position.
fn parse_output(text: &str) -> Result<Box<Queries>, String> {
    let mut out: Box<Queries> = Box::new([[[f32::NAN; D]; H]; N]);
    let mut seen = [false; N];
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("out ") else {
            continue;
        };
        let (index, words) = rest
            .split_once(':')
            .ok_or_else(|| format!("bad line {line:?}"))?;
        let i: usize = index
            .parse()
            .map_err(|_| format!("bad position in {line:?}"))?;
        let row = out
            .get_mut(i)
            .ok_or_else(|| format!("position {i} out of range"))?
            .as_flattened_mut();
        let words: Vec<&str> = words.split_whitespace().collect();
        if words.len() != row.len() {
            return Err(format!(
                "position {i}: {} values, expected {}",
                words.len(),
                row.len()
            ));
        }
        for (x, w) in row.iter_mut().zip(words) {
            *x = f32::from_bits(
                u32::from_str_radix(w, 16).map_err(|_| format!("bad hex {w:?} at position {i}"))?,
            );
        }
        seen[i] = true;
    }
    match seen.iter().position(|s| !s) {
        Some(i) => Err(format!("no output line for position {i}")),
        None => Ok(out),
    }
}
