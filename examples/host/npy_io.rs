//! Reading and writing `.npy` arrays of little-endian f32 in C order, the only
//! kind the `.npy` mode accepts. `npyz` parses and writes the header; every
//! property of the file is checked before its data is trusted.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::Path;

use npyz::{
    DType, Endianness, NpyFile, NpyHeader, Order, TypeChar, TypeStr, WriteOptions, WriterBuilder,
};

use crate::failure::Failure;

/// The only dtype accepted and written.
const F32_LE: &str = "<f4";

/// An n-dimensional f32 array, values in C order.
pub struct Array {
    /// The shape as stored in the file.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

/// Reads a `.npy` file of little-endian f32 in C order.
///
/// # Errors
/// The file cannot be read, is not `.npy`, has another dtype or byte order,
/// is in Fortran order, or holds a different amount of data than its shape.
pub fn read(path: &Path) -> Result<Array, Failure> {
    let bytes = fs::read(path).map_err(|e| bad_file(path, format!("cannot read: {e}")))?;
    decode(&bytes).map_err(|reason| bad_file(path, reason))
}

/// Writes `data` as a little-endian f32 array of `shape` in C order.
///
/// # Errors
/// The file cannot be created or written.
pub fn write(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), Failure> {
    encode(path, shape, data).map_err(|e| bad_file(path, format!("cannot write: {e}")))
}

/// An error about one file, naming it.
fn bad_file(path: &Path, reason: String) -> Failure {
    Failure::input(format!("{}: {reason}", path.display()))
}

/// The array in a file's bytes, or why it is not an acceptable one.
fn decode(bytes: &[u8]) -> Result<Array, String> {
    check_shape_overflow(bytes)?;
    let mut data = bytes;
    let header = NpyHeader::from_reader(&mut data)
        .map_err(|e| format!("not a .npy file ({})", first_line(&e)))?;
    check_dtype(&header.dtype())?;
    if header.order() == Order::Fortran {
        return Err("array is in Fortran order; save it in C order \
                    (numpy: np.ascontiguousarray)"
            .into());
    }
    let shape = header
        .shape()
        .iter()
        .map(|&dim| usize::try_from(dim).ok())
        .collect::<Option<Vec<usize>>>()
        .ok_or("shape does not fit in memory")?;
    let needed = byte_len(&shape).ok_or("shape does not fit in memory")?;
    if data.len() != needed {
        return Err(format!(
            "shape {shape:?} needs {needed} bytes of data, the file holds {}",
            data.len()
        ));
    }
    let values = NpyFile::with_header(header, data)
        .into_vec::<f32>()
        .map_err(|e| format!("cannot decode the data: {}", first_line(&e)))?;
    Ok(Array {
        shape,
        data: values,
    })
}

/// Rejects a header whose dimensions multiply past `u64`, before `npyz` sees
/// it: npyz 0.9 multiplies them unchecked, which panics in a debug build.
/// Anything this quick look cannot read is left to `npyz` to report.
fn check_shape_overflow(bytes: &[u8]) -> Result<(), String> {
    let Some(dims) = header_text(bytes).and_then(shape_dims) else {
        return Ok(());
    };
    let mut nonzero = dims.iter().filter(|&&dim| dim != 0);
    match nonzero.try_fold(1u64, |count, &dim| count.checked_mul(dim)) {
        Some(_) => Ok(()),
        None => Err(format!(
            "shape {dims:?} overflows: its dimensions multiply past 2^64"
        )),
    }
}

/// The header's text: after the magic, the version and the header length
/// (2 bytes in version 1, 4 in versions 2 and 3).
fn header_text(bytes: &[u8]) -> Option<&str> {
    if !bytes.starts_with(b"\x93NUMPY") {
        return None;
    }
    let (start, len): (usize, usize) = match bytes.get(6)? {
        1 => (
            10,
            usize::from(u16::from_le_bytes(bytes.get(8..10)?.try_into().ok()?)),
        ),
        _ => (
            12,
            usize::try_from(u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?)).ok()?,
        ),
    };
    std::str::from_utf8(bytes.get(start..start.checked_add(len)?)?).ok()
}

/// The integers of the tuple after the `shape` key, if they are integers.
fn shape_dims(header: &str) -> Option<Vec<u64>> {
    let (_, after_key) = header.split_once("shape")?;
    let (_, tuple) = after_key.split_once(['(', '['])?;
    let (dims, _) = tuple.split_once([')', ']'])?;
    dims.split(',')
        .map(str::trim)
        .filter(|dim| !dim.is_empty())
        .map(|dim| dim.parse().ok())
        .collect()
}

/// The first line of an error's message (`npyz` quotes a parser's
/// multi-line report for a bad header; stderr gets one line).
fn first_line(error: &std::io::Error) -> String {
    let message = error.to_string();
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned()
}

/// Accepts exactly little-endian 4-byte floats.
fn check_dtype(dtype: &DType) -> Result<(), String> {
    let is_f32_le = matches!(dtype, DType::Plain(t)
        if t.type_char() == TypeChar::Float
            && t.size_field() == 4
            && t.endianness() == Endianness::Little);
    if is_f32_le {
        Ok(())
    } else {
        Err(format!(
            "dtype {} is not little-endian float32 ('{F32_LE}'); \
             convert it with numpy: a.astype('{F32_LE}')",
            dtype.descr()
        ))
    }
}

/// Bytes of f32 data a shape needs, `None` on overflow.
fn byte_len(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(size_of::<f32>(), |bytes, &dim| bytes.checked_mul(dim))
}

/// Writes the header and the data.
fn encode(path: &Path, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    let dtype: TypeStr = F32_LE.parse().map_err(std::io::Error::other)?;
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = WriteOptions::new()
        .dtype(DType::Plain(dtype))
        .shape(&shape)
        .writer(BufWriter::new(File::create(path)?))
        .begin_nd()?;
    writer.extend(data.iter().copied())?;
    writer.finish()
}
