//! The error type of the runtime-length API.

use core::fmt;

/// Which caller buffer an [`Error::LengthMismatch`] is about.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buffer {
    /// The queries, `q_len × heads × head_dim` values.
    Query,
    /// The keys, `kv_len × kv_heads × head_dim` values.
    Key,
    /// The values, `kv_len × kv_heads × head_dim` values.
    Value,
    /// The output, `q_len × heads × head_dim` values.
    Output,
    /// The log-sum-exp output of a KV-cache prefill, one value per query
    /// position and head.
    LogSumExp,
    /// A per-key mask, one entry per key position.
    KeyMask,
    /// A per-key additive bias, one value per key position.
    KeyBias,
    /// A per-(query, key) additive bias, `q_len × kv_len` values (shared by
    /// every head) or `heads × q_len × kv_len` (one plane per head).
    ScoreBias,
    /// ALiBi slopes, one per query head.
    Slopes,
    /// Sink logits, one per query head.
    Sinks,
}

impl fmt::Display for Buffer {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Buffer::Query => "query",
            Buffer::Key => "key",
            Buffer::Value => "value",
            Buffer::Output => "output",
            Buffer::LogSumExp => "log-sum-exp",
            Buffer::KeyMask => "key mask",
            Buffer::KeyBias => "key bias",
            Buffer::ScoreBias => "score bias",
            Buffer::Slopes => "ALiBi slopes",
            Buffer::Sinks => "sink logits",
        })
    }
}

/// Why a [`Shape`](crate::Shape) or its buffers were rejected.
///
/// Returned by [`causal_attention_dyn`](crate::causal_attention_dyn) and
/// [`causal_attention_padded`](crate::causal_attention_padded) before any
/// arithmetic runs: on an error the output buffer is untouched.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// `heads`, `kv_heads` or `head_dim` is zero.
    ZeroDimension {
        /// The field that is zero: `"heads"`, `"kv_heads"` or `"head_dim"`.
        field: &'static str,
    },
    /// `heads` is not a multiple of `kv_heads`, so query heads cannot be
    /// grouped over key/value heads.
    HeadsNotMultiple {
        /// Number of query heads.
        heads: usize,
        /// Number of key/value heads.
        kv_heads: usize,
    },
    /// More queries than keys: with bottom-right alignment the first queries
    /// would see no key at all.
    QueryLongerThanKeys {
        /// Number of query positions.
        q_len: usize,
        /// Number of key/value positions.
        kv_len: usize,
    },
    /// A buffer's length is not the one the shape implies.
    LengthMismatch {
        /// The buffer with the wrong length.
        buffer: Buffer,
        /// The length the shape implies.
        expected: usize,
        /// The length passed.
        actual: usize,
    },
    /// A buffer length implied by the shape does not fit in `usize`.
    SizeOverflow,
    /// The scale is NaN or infinite.
    NonFiniteScale,
    /// A [`KvCache`](crate::KvCache) cannot take `requested` more positions:
    /// it holds `len` of its `capacity`. Nothing was written: the cache and
    /// every output buffer are as they were, and the caller keeps its data.
    CacheFull {
        /// Positions the cache can hold (`CAP`).
        capacity: usize,
        /// Positions it holds.
        len: usize,
        /// Positions the call tried to append.
        requested: usize,
    },
    /// A padded batch's `valid_lens` does not have one entry per sequence
    /// ([`causal_attention_padded`](crate::causal_attention_padded)).
    ValidLensLength {
        /// The number of sequences, `batch`.
        expected: usize,
        /// The number of valid lengths passed.
        actual: usize,
    },
    /// A sequence of a padded batch claims more valid positions than the
    /// shape has keys ([`causal_attention_padded`](crate::causal_attention_padded)).
    ValidLenTooLong {
        /// Index of the sequence in the batch.
        sequence: usize,
        /// Its valid length.
        valid_len: usize,
        /// The shape's key length, the largest valid length.
        kv_len: usize,
    },
    /// A quantization parameter of the integer path was rejected when
    /// [`int8::Params`](crate::int8::Params) were prepared.
    InvalidQuantization {
        /// The tensor or parameter: `"query"`, `"key"`, `"value"`,
        /// `"output"` or `"score scale"`.
        what: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The integer path's head dimension is larger than
    /// [`int8::MAX_HEAD_DIM`](crate::int8::MAX_HEAD_DIM), the size of its
    /// fixed scratch.
    HeadDimTooLarge {
        /// The head dimension passed.
        head_dim: usize,
        /// The largest one accepted.
        max: usize,
    },
    /// A scoring parameter was rejected: a soft cap that is not finite and
    /// positive, an ALiBi slope or a sink logit that is not finite.
    InvalidScoring {
        /// The parameter: `"soft cap"`, `"slope"` or `"sink"`.
        what: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A position is past the end of a table built for positions
    /// `0..max` (a RoPE table).
    PositionOutOfRange {
        /// The position asked for.
        position: usize,
        /// The number of positions the table holds.
        max: usize,
    },
    /// A RoPE parameter was rejected.
    InvalidRope {
        /// Why it was rejected.
        reason: &'static str,
    },
}

impl fmt::Display for Error {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::ZeroDimension { field } => write!(f, "shape field `{field}` is zero"),
            Error::HeadsNotMultiple { heads, kv_heads } => write!(
                f,
                "heads ({heads}) is not a multiple of kv_heads ({kv_heads})"
            ),
            Error::QueryLongerThanKeys { q_len, kv_len } => write!(
                f,
                "q_len ({q_len}) exceeds kv_len ({kv_len}): the first queries would see no key"
            ),
            Error::LengthMismatch {
                buffer,
                expected,
                actual,
            } => write!(
                f,
                "{buffer} buffer has {actual} values, the shape needs {expected}"
            ),
            Error::SizeOverflow => f.write_str("buffer size implied by the shape overflows usize"),
            Error::NonFiniteScale => f.write_str("scale is NaN or infinite"),
            Error::CacheFull {
                capacity,
                len,
                requested,
            } => write!(
                f,
                "KV cache full: holds {len} of {capacity} positions, cannot append {requested}"
            ),
            Error::ValidLensLength { expected, actual } => write!(
                f,
                "{actual} valid lengths for a batch of {expected} sequences"
            ),
            Error::ValidLenTooLong {
                sequence,
                valid_len,
                kv_len,
            } => write!(
                f,
                "sequence {sequence} has valid length {valid_len}, more than kv_len ({kv_len})"
            ),
            Error::InvalidQuantization { what, reason } => {
                write!(f, "invalid {what} quantization: {reason}")
            }
            Error::HeadDimTooLarge { head_dim, max } => write!(
                f,
                "head_dim ({head_dim}) exceeds the integer path's largest ({max})"
            ),
            Error::InvalidScoring { what, reason } => write!(f, "invalid {what}: {reason}"),
            Error::PositionOutOfRange { position, max } => {
                write!(f, "position {position} is past the table's {max} positions")
            }
            Error::InvalidRope { reason } => write!(f, "invalid RoPE parameters: {reason}"),
        }
    }
}

impl core::error::Error for Error {}
