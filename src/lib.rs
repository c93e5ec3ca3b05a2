//! Causal scaled dot-product attention for `no_std`: fixed sizes, no heap,
//! SIMD lanes, a numerically stable online softmax.
//!
//! For each query position `i` and head `h`:
//!
//! ```text
//! out[i][h] = Σ_{j≤i} softmax_j(scale · q[i][h]·k[j][g]) · v[j][g],   g = h / (H / KVH)
//! ```
//!
//! with `scale = 1/√D` unless you pass one. Position `i` sees positions `0..=i`
//! and never a later one.
//!
//! ```
//! // 4 tokens, head dimension 8, one head.
//! let q = [[0.25f32; 8]; 4];
//! let k = [[0.5f32; 8]; 4];
//! let v = [[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]; 4];
//! let mut out = [[0.0f32; 8]; 4];
//! microattn::causal_attention(&q, &k, &v, &mut out);
//!
//! // The textbook reference agrees within the accuracy contract.
//! let mut naive = [[0.0f32; 8]; 4];
//! microattn::reference::causal_attention(&q, &k, &v, &mut naive);
//! assert!(out.iter().flatten().zip(naive.iter().flatten()).all(|(a, b)| (a - b).abs() < 1e-6));
//! ```
//!
//! # The API
//! - Fixed sizes (const generics, checked at compile time, cannot fail):
//!   [`causal_attention`], [`causal_attention_scaled`], [`causal_multi_head`],
//!   [`causal_multi_head_scaled`], [`attention_weights`], [`softmax`].
//! - Runtime lengths over flat slices: [`Shape`] and [`causal_attention_dyn`],
//!   validated once at the entry, returning [`Error`]; padded batches with a
//!   valid length per sequence: [`causal_attention_padded`].
//! - Incremental decoding in fixed memory: [`KvCache`] (capacity `CAP`,
//!   prefill of a prompt, decode steps, bit-identical to one causal pass over
//!   the same tokens) and [`RingKvCache`] (sliding window of the last
//!   `WINDOW` positions, optionally keeping the first few as attention
//!   sinks), both without heap (sizes under [`KvCache`]'s
//!   [Memory](KvCache#memory)), storing `f32` or, at half the bytes,
//!   [`f16`](struct@f16) or [`bf16`](struct@bf16) ([`Element`]; see
//!   [Storage element](KvCache#storage-element)).
//! - Alignment: with fewer queries than keys, the queries are the last
//!   positions (bottom-right, stated once in [`Shape`]); a cache's prefill
//!   and decode steps place their queries by the same rule.
//! - Scored attention: [`causal_attention_scored`], a [`KvCache`]'s
//!   `prefill_scored` / `step_scored` / `attend_scored` and a
//!   [`RingKvCache`]'s `step_scored` / `attend_scored` (`f32` storage) take
//!   a [`Scoring`]: a per-key mask, a
//!   per-key or per-(query, key) additive bias, ALiBi slopes (computed in
//!   the kernel; [`scoring::alibi_slopes`] gives the standard ones), logit
//!   soft-capping and per-head sink logits.
//! - [`rope`]: rotary position embeddings for queries and keys: a fixed
//!   cos/sin table built by a `const fn` (so a `static` one goes to flash),
//!   half-split (Llama, NeoX) or interleaved (GPT-J) pairs.
//! - [`int8`]: the integer path for cores without an FPU and int8 models:
//!   `i8` tensors with TFLite's per-tensor quantization, prepared
//!   [`int8::Params`], integer-only fixed-size and runtime calls and an
//!   [`int8::KvCache`], bit for bit [`reference::int8`] on every target.
//! - [`entry`]: never-inlined instantiations for the common shapes, easy to
//!   find in a profile or a disassembly.
//! - [`reference`](mod@reference): the textbook version of each of these, the executable
//!   specification, plus the f64 oracle and the accuracy contract as a check.
//! - With the `proptest` feature, `strategies`: the proptest strategies the
//!   crate's own suites use.
//! - With the `rayon` feature, `parallel`: the multi-head and runtime calls
//!   on every core, and the caches' `par_step` / `par_attend` (a decode
//!   step's heads over the pool), bit-identical to the one-thread calls.
//!
//! # Memory
//! No heap, ever. The caller owns `q`, `k`, `v` and `out`. The fused kernel
//! accumulates straight into the caller's output rows; beyond them it keeps
//! a fixed working set that does not grow with N: for a tile of L queries
//! (SIMD targets; L = 16 with AVX-512F, 8 elsewhere) their running maxima
//! and sums, a block of L×L scores and weights, their dimensions transposed
//! and a block of key rows copied out at the kept length (up to 128
//! dimensions: about 12 KB of buffers at D = 64 with 16 lanes, counted from
//! their sizes; longer rows go through the one-query path); for a lone query (decode steps, leftovers, every
//! query on a microcontroller) one block of L scores. A cache's decode step
//! on a SIMD target keeps each head's running maximum and sum and the
//! addresses of one block of L positions' keys and values. No N×N matrix, no
//! N-length score buffer. The reference stores one `[f32; N]` score row on
//! the stack (the fixed-size functions) or recomputes scores (the runtime
//! one).
//!
//! Stack, measured: on microcontrollers one `causal_multi_head::<32, 2, 1,
//! 16>` call and one `KvCache::step` over 32 cached positions each take a
//! few hundred bytes below their caller, per core in the README's footprint
//! table (painted stack in QEMU; see [On
//! microcontrollers](#on-microcontrollers)); neither grows with N. On x86-64
//! built with `-C target-cpu=x86-64-v3`, the frames of the never-inlined
//! [`entry`] functions are 3,320 bytes at D = 16, 3,608 at D = 32 and 5,752
//! at D = 64, mostly the tile's transposed queries and its broadcast
//! weights: `cargo +nightly rustc --release --lib -- -Z emit-stack-sizes -C
//! target-cpu=x86-64-v3`, then `llvm-readobj --stack-sizes`.
//!
//! # Numerical behaviour
//! - **Stability.** Scores are max-subtracted before `exp`, online: the
//!   kernel keeps a running maximum `m` and running sum `l = Σ exp(s − m)`,
//!   and rescales its accumulator by `exp(m_old − m_new)` only when a block of
//!   keys raises the maximum. No `exp` argument is ever positive, so nothing
//!   overflows for any finite scores (±1e4 and beyond).
//! - **`-inf` is a mask.** A key whose score is `-inf` weighs exactly 0 and
//!   its value row is never read, wherever it sits in the row; a row with no
//!   other key sees nothing and is exactly 0. The reference states this rule
//!   in code and every path of the kernel follows it.
//! - **Scores.** The reference sums each score `scale · Σ_d q_d·k_d` as
//!   the textbook does ([`reference::score`]: left to right, each product
//!   and sum rounded on its own). The fused kernel sums it as one
//!   chain, `s = q_d·k_d + s` for `d = 0, 1, …` by the lanes' `mul_add`
//!   (fused where the build has FMA), then `s·scale`, whether its lanes run
//!   across keys (one query) or across queries (a tile): every path of one
//!   build gives a score the same bits, and the a-priori bound covers the
//!   difference from the reference (`γ_{D+2}·scale·Σ_d |q_d·k_d|`).
//! - **exp.** The fused kernel uses its own lane `exp` for `x ≤ 0` (range
//!   reduction, a degree-7 Taylor polynomial, `2ⁿ` from the exponent bits):
//!   at most **1.1 ULP** from the f64 `exp` over every f32 in `[−104, 0]`
//!   whose result is a normal f32 — measured exhaustively at 1.025 ULP in
//!   the default (SSE2) build and 1.059 ULP with AVX2+FMA (`cargo test
//!   --release --lib -- --ignored exp_every_f32`); a dense grid
//!   of that range runs with every `cargo test`. `exp(0) = 1` exactly,
//!   `exp(-inf) = 0`, NaN stays NaN, and a result below
//!   `f32::MIN_POSITIVE` (`x < ln(MIN_POSITIVE) ≈ −87.34`) is exactly 0: no
//!   weight is ever subnormal. [`softmax`], [`attention_weights`] and the
//!   reference use `libm`'s `expf` (0.91 ULP measured over `[−87, 0]`).
//! - **tanh.** Soft-capping uses the kernel's own lane `tanh` (an odd
//!   polynomial below 0.55, `1 − 2e/(1 + e)` with the softmax exp above):
//!   at most **2 ULP** from the f64 `tanh` over every f32, measured
//!   exhaustively at 1.49 ULP with AVX-512 and 1.51 ULP in the SSE2 build
//!   (`cargo test --release --lib -- --ignored tanh`); odd bit for bit,
//!   exactly `±1` from `|x| ≈ 9.01` and at `±∞`, NaN stays NaN. The
//!   reference uses `libm`'s `tanhf`.
//! - **Accuracy contract.** Every fast kernel, whatever its order of
//!   summation, lanes or use of fused multiply-add, is within an a-priori
//!   bound of the f64 oracle [`reference::causal_attention_f64`], value by
//!   value: [`reference::error_bound`] computes the bound per output and
//!   derives it (the scores' roundings, `γ_{D+2}·scale·Σ_d |q_d·k_d|`, move
//!   each weight by a factor within `e^{±Δ}`; the exp's 2 ULP, the rescales,
//!   the sums' `γₙ` and the division add theirs, all against the weighted
//!   magnitudes `Σⱼ wⱼ·|vⱼ|`); [`reference::check_error_bound`] is the check.
//!   The test suites hold every kernel to it over the whole grid, scores up
//!   to ±1e4 included, and so do the fuzz targets.
//!
//!   Beside it, a **precision check** catches a regression that stays inside
//!   that (loose) bound: on the suites' inputs, with `naive32` the reference
//!   in f32, `mass64` = [`reference::attention_mass_f64`] and ε =
//!   `f32::EPSILON`, over a whole output,
//!   `max|out − ref64| ≤ 4·max|naive32 − ref64| + 4ε·max mass64`
//!   ([`reference::check_contract_with_mass`]; [`reference::check_contract`]
//!   is its `max|ref64|` form). It is no promise for every input: a fuzzer
//!   finds rows where the textbook happens to be nearly exact and a kernel
//!   summing in another order, as correct, is a few ULP off (a case in
//!   `tests/fuzz_findings.rs`).
//! - **Exact properties** (bit for bit, within one build): a query's output
//!   does not depend on anything at later positions; position 0's output is
//!   `v[0]`; heads are independent; the same inputs give the same bits;
//!   [`causal_attention_dyn`] gives the same bits as the fixed-size functions;
//!   a query gives the same bits alone (a decode step) as inside a whole run
//!   (a tile of queries), so KV-cache decode steps equal one prefill.
//!   Across builds (SSE2 vs AVX2+FMA vs NEON vs scalar) results differ only
//!   within the contract, since fused multiply-add rounds differently.
//!   A NaN output is NaN on every path; its sign and payload are not part
//!   of the promise (two NaN inputs met in another order, as a tile and a
//!   decode step meet them, give the other one's payload).
//! - **Non-finite values.** A NaN in a visible `q` or `k` row makes that
//!   query's output NaN, and so does one in the `v` row of a key it weighs.
//!   A `+inf` score gives NaN (`inf − inf`). A NaN or infinite `scale` is
//!   rejected by the runtime API and makes every output NaN in the
//!   fixed-size API and the caches. The table below says exactly which
//!   values, and what masked or padded positions do.
//! - **The contract's domain.** The contract holds whenever every score
//!   `scale · q·k` is finite in f32 and the values of a row's visible `v`
//!   column sum to less than `f32::MAX` in magnitude (the kernel divides by
//!   the softmax normaliser last, so its running sum of `weight · v` can
//!   overflow to ±∞ where the textbook's normalised sum does not; the
//!   oracle computes scores in f64 and does not overflow where f32 does).
//!   Flushing weights below `f32::MIN_POSITIVE` to 0 (see the table) moves
//!   an output by less than `2⁻¹²⁶·Σⱼ|vⱼ|` over the flushed keys, which the
//!   a-priori bound counts as a whole weight's error and the mass (so the
//!   precision check) as an allowance of `2⁻¹²⁶/(4ε)·|vⱼ|` per key.
//!
//! # Hostile inputs: the edge-case table
//! Every row is a test in `tests/edge_cases.rs` (padding in `tests/padded.rs`)
//! whose doc comment states the same behaviour. "Keeps its bits" means the
//! result is bit-identical to a run without the hostile value.
//!
//! | Input | Result |
//! |---|---|
//! | Scores up to ±1e4 | The contract (also when a row's values cancel); every output finite. |
//! | q/k entries up to 1e15 (scores up to about 1e31) | The contract; no overflow; each row is exactly the `v` row of its largest score. |
//! | All visible scores equal, however negative | Every weight is `exp(0) = 1`: the mean of the visible `v` rows. |
//! | One score ahead of every other by more than 104 | Exactly that key's `v` row; every other weight is exactly 0. |
//! | NaN in a visible `q` or `k` row | Every value of the rows that read it is NaN; every other value keeps its bits. |
//! | NaN in `v[j][c]` | Column `c` of the rows that see key `j` is NaN, unless key `j`'s score is `−∞` for that row (a masked key: its value is never read); every other value keeps its bits. |
//! | A `+∞` score (infinite entry, or a product that overflows) | The rows that see it are NaN (`∞ − ∞`); rows that do not keep their bits. |
//! | A `−∞` score (a `−∞` entry, or a product that overflows to `−∞`) | A mask: the key weighs exactly 0 and its `v` row is never read (NaN or `±∞` there changes no bit), wherever the key sits; a row whose every visible score is `−∞` sees no key and is exactly `+0.0`. [`softmax`] and [`attention_weights`] give such keys weight 0, and a row of nothing but `−∞` all zeros. |
//! | `±∞` in `v[j][c]` | Column `c` is that infinity where key `j` has a positive weight; NaN where `+∞` and `−∞` meet or the weight is exactly 0 from a finite score (`0·∞`, see the flush below). At a key whose score is `−∞`: never read. Other columns keep their bits. |
//! | `v` near `f32::MAX` | Finite while each visible `v` column sums to less than `f32::MAX` in magnitude; beyond that the kernel's unnormalised sum may overflow to ±∞ (outside the contract's domain). |
//! | Subnormal `q`, `k`, `v` | Ordinary numbers: the contract, no NaN. Products that underflow are 0, so all-subnormal `q`, `k` give the mean of `v`. |
//! | A weight below `f32::MIN_POSITIVE` (a score more than 87.34 below the row's maximum) | Flushed to exactly 0 in the fused kernel (its exp returns 0 below `f32::MIN_POSITIVE`). ([`attention_weights`] and the reference use `libm`'s `expf`, which keeps subnormals.) |
//! | `−0.0` vs `+0.0` | The sign of a zero in `q` or `k` never changes a bit; a visible `v` column of only `−0.0` gives `−0.0`, a mix gives `+0.0` (as the reference). |
//! | Scale | Applied exactly once: `attn(c·q, s) = attn(q, c·s)`, bit for bit when `c` is a power of two. |
//! | `a·v + b` | `a·out + b`, within the two contract bounds and one rounding. |
//! | Lengths and head dims 3, 4, 5, 7, 8, 9, 15, 16, 17 | The contract; row 0 is `v[0]` bit for bit; padded and unpadded runs agree. |
//! | A row that sees no key (a padded query; valid length 0) | Exactly `+0.0`. |
//! | NaN, ±∞ or any bits in padding or at later positions | Never read: no output bit changes. |
//! | NaN or ±∞ `scale` | Runtime and padded APIs: [`Error::NonFiniteScale`]; fixed-size API and caches: every output and log-sum-exp NaN (also where an infinite scale would make every score `−∞`). |
//! | A 16-bit cache ([`f16`](struct@f16) or [`bf16`](struct@bf16) storage): any `f32` keys and values | Each is rounded once on append (nearest, ties to even); the outputs are the bits an `f32` cache gives on the rounded values, so every row of this table applies to those. A finite value past `f16`'s range (`|x| > 65504`, up to rounding) is stored as `±∞` and then acts as the `±∞` rows above say; NaN stays NaN; `bf16` has `f32`'s range. The extra error against the unrounded inputs: [`reference::rounding_error_bound`] (`tests/storage.rs`). |
//! | Integer path ([`int8`]): any `i8` inputs, the extremes included | No special values: [`reference::int8`]'s bits, within its bound; outputs saturate to `-128..=127`; an empty cache gives the output zero point. A zero, subnormal, negative or non-finite scale, a zero point outside `i8`, or a ratio of scales out of range: a typed error from [`int8::Params`] (`tests/int8.rs`, `tests/fuzz_findings.rs`). |
//! | [`Scoring`]: a key masked by the key mask, or given a `−∞` bias | A mask, as a `−∞` score: never read (a NaN value there changes no bit); a row whose every visible key is masked is exactly `+0.0`, with or without a sink logit (`tests/scored.rs`). |
//! | [`Scoring`]: a NaN bias | The rows whose score it joins are NaN; others keep their bits. A `+∞` bias makes the rows that see it NaN (`∞ − ∞`). |
//! | [`Scoring`]: a soft cap and an infinite score (a product that overflows) | `cap·tanh(±∞) = ±cap`: a finite score, no longer a mask or a NaN. |
//! | [`Scoring`]: a soft cap that is zero, negative, infinite or NaN; a NaN or infinite slope or sink logit; a buffer of the wrong length | [`Error::InvalidScoring`] or [`Error::LengthMismatch`] before any arithmetic; nothing is written, a cache keeps what it holds. |
//! | [`Scoring`]: ALiBi past `2²⁴` positions, or a slope so large that `slope·(i − j)` overflows | Distances are exact `f32` integers up to `2²⁴`; an overflowing bias is `−∞`, a mask, where the f64 oracle would keep a tiny weight. |
//!
//! # Masks and padded batches
//! [`causal_attention_padded`] takes a right-padded batch and a valid length
//! per sequence. Each sequence runs over its valid prefix only, so padded
//! keys and values are never read (NaN or ∞ there changes nothing), and each
//! padded query row is exactly `+0.0` — the rule for every row that sees no
//! key. Valid rows have the bits [`causal_attention_dyn`] gives on the
//! unpadded sequence.
//!
//! # No panics
//! No public kernel can panic, for any input: shapes are checked at compile
//! time or returned as [`Error`], and no indexing, division or `unwrap` in a
//! kernel path can fail. This is proved at link time, not just tested:
//! `examples/nopanic` is a `#![no_main]` binary, built for
//! `thumbv7em-none-eabihf` and `thumbv6m-none-eabi`, that calls every
//! public kernel (fixed-size, runtime, padded, the caches, the integer path
//! and the references) with inputs and lengths the optimiser cannot see,
//! and whose panic handler calls a function that does not exist; it links (in
//! `release`, opt-level 3 and `"s"`) only because no panic path survives.
//! `.ci/run` builds it, checks that no `core::panicking` symbol is linked,
//! and checks that a deliberately reachable panic does fail the link.
//! (Unoptimised debug builds keep the unreachable panic paths of overflow
//! checks in the binary; they are never taken.)
//!
//! # Testing
//! The suites in `tests/` hold every kernel to the contract, the exact
//! properties and the edge-case table; `tests/exact.rs` holds the kernel's
//! two paths to the same bits, and `tests/cache.rs` and `tests/ring.rs` the
//! caches' prefills, decode steps and weights, with never-written slots
//! filled with NaN. `.ci/run` runs them on every backend
//! `wide` compiles to: SSE2 and AVX2+FMA natively, NEON cross-compiled and
//! run under `qemu-aarch64`, simd128 under node; the microcontrollers'
//! plain-array lanes run in the firmware ([On
//! microcontrollers](#on-microcontrollers)). The cross runs by hand (Debian:
//! `apt-get install qemu-user gcc-aarch64-linux-gnu`, and node ≥ 20):
//!
//! ```sh
//! rustup target add aarch64-unknown-linux-gnu wasm32-wasip1
//! CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
//! CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
//!     cargo test --release --target aarch64-unknown-linux-gnu
//! CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="-C target-feature=+simd128" \
//! CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings $PWD/.ci/wasi-run.mjs" \
//!     cargo test --release --target wasm32-wasip1
//! ```
//!
//! **Miri** (undefined behaviour, on the interpreter), a step of `.ci/run`:
//! the interpreter is thousands of times slower than a debug build, so
//! `.ci/miri` runs the light suites (padded batches, the runtime API) and
//! the doctests with `PROPTEST_CASES=2`, a fixed `PROPTEST_RNG_SEED` and
//! `-Zmiri-deterministic-floats`, about 7 minutes; the a-priori bound's f64
//! arithmetic is left to the native runs there. Any other suite with
//! `.ci/miri --test NAME`.
//!
//! **Fuzzing** (`cargo-fuzz`, nightly), three targets in `examples/fuzz`:
//! `attention` feeds raw `f32` bit patterns and lengths through
//! [`causal_attention_dyn`] and [`causal_attention_padded`] and checks that
//! nothing panics, the NaN and mask policy, the padding and the contract;
//! `cache` drives sequences of [`KvCache`] and [`RingKvCache`] operations
//! (push, extend, prefill, step, attend, clear, truncate) against a `Vec`
//! model and checks the state after each one, [`Error::CacheFull`] with the
//! cache unchanged, outputs bit-identical to [`causal_attention_dyn`] on the
//! model's positions (the ring: its window) and the contract; `int8`
//! feeds shapes, quantization parameters (invalid ones among them) and `i8`
//! values through [`int8::Params`], the integer runtime and fixed-size
//! APIs and [`int8::KvCache`], and checks the typed errors, the bits of
//! [`reference::int8`], its bound against the oracle, decode steps equal to
//! one pass and [`Error::CacheFull`] with the cache unchanged.
//! `examples/fuzz/seeds/<target>/` holds a small, minimised corpus, the
//! targets' findings among it; `.ci/run` replays every seed, then runs the
//! three targets from the seeds at once for 10 minutes:
//!
//! ```sh
//! cargo +nightly install cargo-fuzz
//! mkdir -p /tmp/corpus
//! cargo +nightly fuzz run --fuzz-dir examples/fuzz attention /tmp/corpus examples/fuzz/seeds/attention -- -max_total_time=600
//! cargo +nightly fuzz run --fuzz-dir examples/fuzz cache
//! ```
//!
//! # Lanes and target features
//! The lanes are the build's widest ([`LANE_NAME`] names them):
//! `wide::f32x16` where the build has AVX-512F (`-C target-cpu=x86-64-v4`,
//! or `native` on such a CPU), `wide::f32x8` elsewhere. `wide` and the
//! kernel pick them when they are compiled, from the target features (no
//! run-time dispatch): a default x86-64 build runs two SSE2 halves without
//! FMA; build with `RUSTFLAGS="-C target-cpu=x86-64-v3"` (any AVX2+FMA CPU:
//! Haswell, Zen and later) for AVX2 + FMA, `x86-64-v4` or `native` for
//! AVX-512F. aarch64 uses NEON, wasm32 needs `-C target-feature=+simd128`,
//! microcontrollers get plain arrays. This repository's own builds (demo,
//! benches, tests) use the machine's CPU through its `.cargo/config.toml`;
//! a crate that depends on microattn chooses its own flags.
//!
//! The flag has to reach the whole crate graph: a `#[target_feature]`
//! attribute on a caller does not help, because `wide`'s types are fixed
//! when `wide` itself is compiled. To make it the default, put it in
//! `.cargo/config.toml`:
//!
//! ```toml
//! [build]
//! rustflags = ["-C", "target-cpu=x86-64-v3"]
//! ```
//!
//! # On microcontrollers
//! The crate builds for bare-metal targets as it is: it has no default
//! features (leave `std` off; it is for hosted builds only).
//!
//! ```sh
//! rustup target add thumbv6m-none-eabi thumbv7em-none-eabihf riscv32imc-unknown-none-elf
//! cargo build --lib --release --target thumbv6m-none-eabi       # Cortex-M0/M0+ (soft float)
//! cargo build --lib --release --target thumbv7em-none-eabihf    # Cortex-M4F/M7F
//! cargo build --lib --release --target riscv32imc-unknown-none-elf   # RISC-V, no FPU, no atomics
//! ```
//!
//! Without an FPU every `f32` operation is a library call: the [`int8`]
//! path does none (CI checks the Cortex-M0 call graph of its kernel), and
//! its cache holds a position in a quarter of the bytes.
//!
//! On targets without SIMD registers (`wide`'s lanes are plain arrays there)
//! every query takes the kernel's one-query path: a tile's lanes would live
//! on the stack, not in registers, and sharing loads saves nothing. Results
//! are the same bits either way.
//!
//! `examples/firmware` is a firmware package of its own (`cortex-m-rt`,
//! semihosting). It runs `causal_multi_head::<32, 2, 1, 16>` on
//! pseudo-random inputs, then the same 32 positions again by
//! `KvCache::<32, 1, 16>::step` decode steps from an empty cache; it checks
//! both inside the firmware against the reference and the accuracy contract
//! (one query position at a time, so that it fits the Cortex-M0's 16 KiB of
//! RAM), and the decode steps bit for bit against the attention call, then
//! prints `PASS` or `FAIL` and exits 0 or 1 through semihosting. The keys
//! and values exist once, in the firmware's cache, which the attention call
//! reads as its `k` and `v`. The three Cortex-M cores and RISC-V print the
//! same bits, equal to those of a default (SSE2, no FMA) x86-64 build. Then
//! the same for the integer path: one `int8::causal_multi_head` call and 32
//! `int8::KvCache::step` decode steps, checked bit for bit against
//! [`reference::int8`] and within its bound of the f64 oracle. With
//! `qemu-system-arm` and `qemu-system-misc` installed (Debian: `apt-get
//! install qemu-system-arm qemu-system-misc`):
//!
//! ```sh
//! cd examples/firmware
//! rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi thumbv8m.main-none-eabihf
//! cargo run --release                                    # Cortex-M4F, QEMU mps2-an386
//! cargo run --release --target thumbv6m-none-eabi        # Cortex-M0, QEMU microbit
//! cargo run --release --target thumbv8m.main-none-eabihf # Cortex-M33, QEMU mps2-an505
//! cargo run --release --target riscv32imc-unknown-none-elf  # RISC-V rv32imc, QEMU virt
//! ```
//!
//! The example `host_check` holds a firmware's log to the contract against
//! the reference computed on the host (CI does this for every core):
//!
//! ```sh
//! cargo run --release > m4f.log      # in examples/firmware
//! cargo run --release --target x86_64-unknown-linux-gnu --example host_check -- m4f.log
//! ```
//!
//! Flash, static RAM, code size, stack and instruction counts per core are
//! the README's footprint table, which `.ci/footprint` measures on this
//! firmware (what each column counts, and the budgets CI holds them to:
//! `benches/README.md`).
//!
//! # Bounded time
//! With the `bounded-time` feature a call executes the same instructions
//! whatever the values of its inputs, for hard real-time budgets: the
//! instruction count depends on the shapes (and, for a cache, on how many
//! positions it holds), never on the data. The outputs are the same bits
//! as without the feature (a NaN's sign and payload aside).
//!
//! - `f32`: every query takes the one-query path, whose data-dependent
//!   steps become selects: the rescale runs on every block (by exactly 1
//!   when the maximum does not grow), the maximum is a compare-and-select
//!   fold, every key of a block is multiplied into a candidate sum that
//!   only an unmasked key's select keeps (a NaN in a masked value still
//!   changes nothing, though the value is loaded), and the end selects
//!   among `acc / l`, NaN and 0. The log-sum-exp output (`libm`'s `logf`)
//!   is not covered.
//! - [`int8`]: every key's weight is computed and masked (no cutoff
//!   skip), and the row's maximum, the normaliser and the output's
//!   saturation are arithmetic on masks, since a core without conditional
//!   execution (the Cortex-M0) turns any comparison that feeds a value
//!   into a branch. Rows of more than 128 keys (sums in `i64`) find the
//!   normaliser's shift and divide bit by bit in a fixed number of steps,
//!   and shift each `i64` sum by six constant amounts selected by masks,
//!   so that cores without a 64-bit shifter or a divider (the Cortex-M0,
//!   `riscv32imc`) call none of the compiler's shift and division
//!   routines. Not covered: the `f32`-output calls.
//!
//! `.ci/footprint` proves it in QEMU: the firmware's `f32` call (plain,
//! and scored with a key mask) on ordinary inputs, large scores, NaNs,
//! all-masked rows and a rising maximum, and its integer call on ordinary
//! inputs, extremes, equal scores and a rising and a falling maximum,
//! each execute one instruction count, which CI requires; the README's
//! footprint table shows the counts and the cost against the default
//! build. On the Cortex-M4F the bounded `f32` call executes 1.67 times the
//! default call's instructions and the integer call 1.48 times; on the
//! Cortex-M0 the integer call 1.36 times. On hosts every query takes the
//! one-query path, so prefill loses the tile path's speed.
//!
//! Where there is no FPU (the Cortex-M0, `riscv32imc`) every `f32`
//! operation is one of the compiler's soft-float routines, whose
//! instructions depend on the operands (NaN, zero and subnormal operands
//! and normalisation take other paths): there the `f32` path is not
//! bounded (the table shows the spread), and the integer path is the one
//! to budget.
//!
//! # Features
//! - `std`: forwards `std` to `wide` (a faster scalar `sqrt` there). The
//!   kernels never need it.
//! - `proptest`: exports `strategies` (implies `std`).
//! - `rayon`: exports `parallel`, the prefill calls split over rayon's
//!   current thread pool in tiles of query positions of a fixed size, so
//!   the bits never depend on the number of threads; and the caches'
//!   `par_step` / `par_attend`, one task per four query heads (implies `std`).
//! - `bounded-time`: every call executes the same instructions whatever
//!   the data ([Bounded time](#bounded-time)); the same bits, slower (the
//!   tile path and every skip are off).
//!
//! # MSRV
//! Rust 1.89 (the minimum of `wide` 1.7).

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::missing_inline_in_public_items)]

#[cfg(any(feature = "std", test))]
extern crate std;

mod attention;
mod cache;
mod check;
mod dynamic;
mod element;
pub mod entry;
mod error;
pub mod int8;
mod kernel;
mod layout;
mod math;
mod padded;
#[cfg(feature = "rayon")]
pub mod parallel;
pub mod reference;
pub mod rope;
mod scored;
pub mod scoring;
mod simd;
mod softmax;
#[cfg(feature = "proptest")]
pub mod strategies;

pub use attention::{
    attention_weights, causal_attention, causal_attention_scaled, causal_multi_head,
    causal_multi_head_scaled, default_scale,
};
pub use cache::{KvCache, RingKvCache};
pub use dynamic::{Shape, causal_attention_dyn};
pub use element::{Element, bf16, f16};
pub use error::{Buffer, Error};
pub use padded::causal_attention_padded;
pub use scored::causal_attention_scored;
pub use scoring::Scoring;
pub use simd::LANE_NAME;
pub use softmax::softmax;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
