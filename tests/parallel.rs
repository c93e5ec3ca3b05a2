//! The calls of `microattn::parallel` (feature `rayon`) against their plain
//! one-thread counterparts, in rayon pools of exactly 1, 2 and 3 threads:
//!
//! - the runtime call gives the plain call's bits (`to_bits`, NaN
//!   included), over the test grid, fewer queries than keys (a cached
//!   prefix) and lengths of several tiles of query positions, whole or not,
//!   with edge values, any bits at all (NaN, ±∞) and any scale;
//! - the fixed-size calls give the plain fixed-size calls' bits, at shapes
//!   shorter than a tile, of one tile, and of several tiles and a part, for
//!   single-head, multi-query, grouped-query and multi-head attention, NaN
//!   and infinite scales included;
//! - an invalid call returns the plain call's error and leaves `out`
//!   untouched; `q_len = 0` writes nothing.
//!
//! Each check is also shown to fail on a deliberately broken parallel call.
#![cfg(feature = "rayon")]

mod common;

use std::sync::LazyLock;

use common::{Kernel, prop, runner, same_bits, tokens};
use microattn::parallel::TILE_POSITIONS;
use microattn::strategies::{
    Case, HEAD_GROUPS, Magnitude, any_values, cross_shape, edgy_case, fixed_case, grid_shape, scale,
};
use microattn::{Buffer, Error, Shape, parallel};
use proptest::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Where this suite's proptest failures are kept (committed).
const REGRESSIONS: &str = "proptest-regressions/parallel.txt";

/// The plain runtime call.
const PLAIN: Kernel = microattn::causal_attention_dyn;
/// The parallel runtime call.
const PARALLEL: Kernel = parallel::causal_attention_dyn;

/// Pools of exactly 1, 2 and 3 threads, built once for the whole suite.
static POOLS: LazyLock<[ThreadPool; 3]> = LazyLock::new(|| {
    [1, 2, 3].map(|n| {
        ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("a rayon pool")
    })
});

/// Output poison, distinct bits so that a missed write shows.
const POISON: u32 = 0x7fa5_5a5a;

/// Runs `kernel` on `case` into a poisoned output; `Err` if it rejects it.
fn run(kernel: Kernel, case: &Case) -> Result<Vec<f32>, Error> {
    let len = case.shape.q_elems().expect("test bug: shape overflows");
    let mut out = vec![f32::from_bits(POISON); len];
    kernel(&case.shape, &case.q, &case.k, &case.v, &mut out)?;
    Ok(out)
}

/// `parallel` gives the bits of `plain` on `case` in every pool of
/// [`POOLS`], starting from a poisoned output.
fn same_bits_in_every_pool(plain: Kernel, parallel: Kernel, case: &Case) -> Result<(), String> {
    let want = run(plain, case).map_err(|e| format!("plain call rejected the case: {e}"))?;
    for pool in POOLS.iter() {
        let threads = pool.current_num_threads();
        let got = pool
            .install(|| run(parallel, case))
            .map_err(|e| format!("{threads} threads: rejected {:?}: {e}", case.shape))?;
        same_bits(&format!("{threads} threads, {:?}", case.shape), &got, &want)?;
    }
    Ok(())
}

/// Self-attention and prefix shapes of up to four tiles of query positions
/// and a few more (so tiles whole and cut), with the grid's head groups.
fn tiled_shape() -> impl Strategy<Value = Shape> {
    let max_len = 4 * TILE_POSITIONS + 3;
    (
        1..=max_len,
        prop::sample::select(vec![1usize, 3, 8, 9, 17, 33]),
        prop::sample::select(HEAD_GROUPS.to_vec()),
    )
        .prop_flat_map(|(kv_len, d, (h, kvh))| {
            prop_oneof![
                Just(Shape::new(kv_len, kv_len, h, kvh, d)),
                (0..=kv_len).prop_map(move |q_len| Shape::new(q_len, kv_len, h, kvh, d)),
            ]
        })
}

/// A case on `shape` with any scale: edge values, or any bits at all.
fn case_on(shape: Shape) -> impl Strategy<Value = Case> {
    let bound = Magnitude::Ordinary.bound(shape.head_dim);
    let (qn, kvn) = (shape.q_elems().unwrap_or(0), shape.kv_elems().unwrap_or(0));
    let any_bits = (any_values(qn), any_values(kvn), any_values(kvn))
        .prop_map(move |(q, k, v)| Case { shape, q, k, v });
    let values = prop_oneof![4 => edgy_case(shape, bound), 1 => any_bits];
    (values, scale(shape.head_dim)).prop_map(|(mut c, s)| {
        c.shape = c.shape.with_scale(s);
        c
    })
}

/// A runtime case: the test grid, fewer queries than keys, or several tiles.
fn runtime_case() -> impl Strategy<Value = Case> {
    prop_oneof![1 => grid_shape(), 1 => cross_shape(), 2 => tiled_shape()].prop_flat_map(case_on)
}

proptest! {
    #![proptest_config(common::config(64, REGRESSIONS))]

    #[test]
    fn runtime_call_is_the_plain_bits_in_every_pool(c in runtime_case()) {
        prop(same_bits_in_every_pool(PLAIN, PARALLEL, &c))?;
    }
}

/// The plain call with the default scale.
fn plain_default<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    fixed_call::<N, H, KVH, D>(s, (q, k, v), out, |q, k, v, o| {
        microattn::causal_multi_head(q, k, v, o)
    })
}

/// The parallel call with the default scale.
fn parallel_default<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    fixed_call::<N, H, KVH, D>(s, (q, k, v), out, |q, k, v, o| {
        parallel::causal_multi_head(q, k, v, o)
    })
}

/// The plain call with the case's scale.
fn plain_scaled<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    let scale = s.scale;
    fixed_call::<N, H, KVH, D>(s, (q, k, v), out, |q, k, v, o| {
        microattn::causal_multi_head_scaled(q, k, v, scale, o)
    })
}

/// The parallel call with the case's scale.
fn parallel_scaled<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    let scale = s.scale;
    fixed_call::<N, H, KVH, D>(s, (q, k, v), out, |q, k, v, o| {
        parallel::causal_multi_head_scaled(q, k, v, scale, o)
    })
}

/// The arrays of a fixed-size instance.
type Tokens<const N: usize, const H: usize, const D: usize> = [[[f32; D]; H]; N];

/// Runs `f` on the case's flat buffers as the arrays of instance
/// `(N, H, KVH, D)`; `out` is copied in and back.
fn fixed_call<const N: usize, const H: usize, const KVH: usize, const D: usize>(
    s: &Shape,
    (q, k, v): (&[f32], &[f32], &[f32]),
    out: &mut [f32],
    f: impl FnOnce(&Tokens<N, H, D>, &Tokens<N, KVH, D>, &Tokens<N, KVH, D>, &mut Tokens<N, H, D>),
) -> Result<(), Error> {
    assert_eq!(
        (s.q_len, s.kv_len, s.heads, s.kv_heads, s.head_dim),
        (N, N, H, KVH, D),
        "test bug: case shape is not the instance's"
    );
    let mut o = tokens::<N, H, D>(out);
    f(
        &tokens::<N, H, D>(q),
        &tokens::<N, KVH, D>(k),
        &tokens::<N, KVH, D>(v),
        &mut o,
    );
    out.copy_from_slice(o.as_flattened().as_flattened());
    Ok(())
}

/// Both fixed-size parallel calls of instance `(N, H, KVH, D)` give their
/// plain calls' bits in every pool, on `cases` random cases with any scale
/// (NaN and ±∞ among them: every output NaN in both).
fn fixed_instance<const N: usize, const H: usize, const KVH: usize, const D: usize>(cases: u32) {
    let shape = Shape::new(N, N, H, KVH, D);
    let default = case_on(shape).prop_map(move |c| Case { shape, ..c });
    let scales = prop_oneof![
        8 => scale(D),
        1 => prop::sample::select(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]),
    ];
    let scaled = (case_on(shape), scales).prop_map(|(mut c, s)| {
        c.shape = c.shape.with_scale(s);
        c
    });
    runner(cases, REGRESSIONS)
        .run(&(default, scaled), |(d, s)| {
            prop(same_bits_in_every_pool(
                plain_default::<N, H, KVH, D>,
                parallel_default::<N, H, KVH, D>,
                &d,
            ))?;
            prop(same_bits_in_every_pool(
                plain_scaled::<N, H, KVH, D>,
                parallel_scaled::<N, H, KVH, D>,
                &s,
            ))
        })
        .unwrap_or_else(|e| panic!("instance ({N}, {H}, {KVH}, {D}): {e}"));
}

/// The instances' lengths straddle tiles of 32 positions: below, exactly,
/// one more, and several with a part.
#[test]
fn fixed_size_calls_are_the_plain_bits_in_every_pool() {
    assert_eq!(TILE_POSITIONS, 32, "the instances below assume tiles of 32");
    fixed_instance::<1, 1, 1, 8>(16);
    fixed_instance::<31, 2, 1, 7>(16);
    fixed_instance::<32, 4, 4, 3>(16);
    fixed_instance::<33, 4, 2, 16>(16);
    fixed_instance::<64, 1, 1, 64>(8);
    fixed_instance::<70, 8, 1, 9>(8);
    fixed_instance::<100, 4, 2, 17>(8);
    fixed_instance::<161, 2, 2, 1>(8);
}

/// An invalid call: `(shape, q, k, v, out)` lengths and the error the plain
/// call returns.
fn invalid_calls() -> Vec<(Shape, [usize; 4], Error)> {
    let big = usize::MAX;
    let ok = Shape::new(40, 50, 4, 2, 8);
    let (qn, kvn) = (40 * 4 * 8, 50 * 2 * 8);
    let mismatch = |buffer, expected, actual| Error::LengthMismatch {
        buffer,
        expected,
        actual,
    };
    vec![
        (
            Shape::new(40, 40, 0, 1, 8),
            [qn, kvn, kvn, qn],
            Error::ZeroDimension { field: "heads" },
        ),
        (
            Shape::new(40, 40, 2, 0, 8),
            [qn, kvn, kvn, qn],
            Error::ZeroDimension { field: "kv_heads" },
        ),
        (
            Shape::new(40, 40, 2, 1, 0),
            [qn, kvn, kvn, qn],
            Error::ZeroDimension { field: "head_dim" },
        ),
        (
            Shape::new(40, 40, 3, 2, 8),
            [40 * 24, 40 * 16, 40 * 16, 40 * 24],
            Error::HeadsNotMultiple {
                heads: 3,
                kv_heads: 2,
            },
        ),
        (
            Shape::new(51, 50, 4, 2, 8),
            [51 * 32, kvn, kvn, 51 * 32],
            Error::QueryLongerThanKeys {
                q_len: 51,
                kv_len: 50,
            },
        ),
        (
            ok.with_scale(f32::NAN),
            [qn, kvn, kvn, qn],
            Error::NonFiniteScale,
        ),
        (
            ok.with_scale(f32::INFINITY),
            [qn, kvn, kvn, qn],
            Error::NonFiniteScale,
        ),
        (Shape::new(big, big, 2, 1, 1), [4; 4], Error::SizeOverflow),
        (
            ok,
            [qn - 1, kvn, kvn, qn],
            mismatch(Buffer::Query, qn, qn - 1),
        ),
        (
            ok,
            [qn, kvn + 1, kvn, qn],
            mismatch(Buffer::Key, kvn, kvn + 1),
        ),
        (ok, [qn, kvn, 0, qn], mismatch(Buffer::Value, kvn, 0)),
        (
            ok,
            [qn, kvn, kvn, qn - 8],
            mismatch(Buffer::Output, qn, qn - 8),
        ),
    ]
}

/// `kernel` (in every pool) returns `expected` on the invalid call and
/// leaves `out` untouched.
fn rejects(kernel: Kernel, (s, lens, expected): &(Shape, [usize; 4], Error)) -> Result<(), String> {
    let [q, k, v, out] = lens.map(|n| vec![0.5f32; n]);
    for pool in POOLS.iter() {
        let mut o = vec![f32::from_bits(POISON); out.len()];
        let got = pool.install(|| kernel(s, &q, &k, &v, &mut o));
        if got != Err(*expected) {
            return Err(format!("{s:?}: {got:?}, expected {expected:?}"));
        }
        if let Some(i) = o.iter().position(|x| x.to_bits() != POISON) {
            return Err(format!("{s:?}: out[{i}] written on error {expected:?}"));
        }
    }
    Ok(())
}

#[test]
fn invalid_calls_are_the_plain_errors_and_write_nothing() {
    for call in invalid_calls() {
        rejects(PLAIN, &call).unwrap_or_else(|e| panic!("test bug: plain call: {e}"));
        rejects(PARALLEL, &call).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn no_queries_is_valid_and_writes_nothing() {
    let s = Shape::new(0, 70, 4, 1, 8);
    let kv = vec![0.5f32; 70 * 8];
    for pool in POOLS.iter() {
        let mut out: [f32; 0] = [];
        assert_eq!(
            pool.install(|| PARALLEL(&s, &[], &kv, &kv, &mut out)),
            Ok(())
        );
    }
}

/// A parallel call that cuts the queries into one tile per thread and runs
/// each over the keys from its own first query on: every tile but the
/// first forgets the keys before it. Right on one thread only.
fn offset_forgetting(
    s: &Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), Error> {
    use rayon::prelude::*;
    PLAIN(s, q, k, v, out)?;
    let (token, kv_token) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let per = s.q_len.div_ceil(rayon::current_num_threads()).max(1);
    let offset = s.kv_len - s.q_len;
    out.par_chunks_mut(per * token)
        .zip(q.par_chunks(per * token))
        .enumerate()
        .try_for_each(|(t, (out, q))| {
            let n = q.len() / token;
            let (forgotten, last) = (t * per, t * per + offset + n);
            let kv = (forgotten * kv_token)..(last * kv_token);
            let tile = Shape::new(n, last - forgotten, s.heads, s.kv_heads, s.head_dim)
                .with_scale(s.scale);
            PLAIN(&tile, q, &k[kv.clone()], &v[kv], out)
        })
}

/// A parallel call that writes zeros before it checks.
fn eager(s: &Shape, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<(), Error> {
    out.fill(0.0);
    PARALLEL(s, q, k, v, out)
}

#[test]
fn pool_check_catches_a_thread_count_dependent_split() {
    let shape = Shape::new(40, 70, 4, 2, 8);
    let case = fixed_case(shape, 1.0, 7);
    assert!(same_bits_in_every_pool(PLAIN, PARALLEL, &case).is_ok());
    let verdict = same_bits_in_every_pool(PLAIN, offset_forgetting, &case);
    assert!(
        verdict.as_ref().is_err_and(|e| e.starts_with("2 threads")),
        "{verdict:?}"
    );
}

#[test]
fn error_check_catches_a_write_before_the_check() {
    let calls = invalid_calls();
    assert!(calls.iter().all(|c| rejects(eager, c).is_err()));
}
