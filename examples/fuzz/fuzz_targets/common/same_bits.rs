//! The fuzz targets' one comparison of two paths' outputs: the same bits,
//! any NaN matching any NaN. The crate promises NaN where the other path
//! gives NaN, not its payload (the crate docs, "Exact properties"): two NaN
//! inputs met in another order keep the other's payload.

/// `None` if `a` and `b` have the same bits (any NaN for any NaN); else how
/// they differ: how many values, how many of those are NaN on both sides
/// (payload or sign only, which never count), and the first difference.
pub fn difference(a: &[f32], b: &[f32]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("lengths {} and {}", a.len(), b.len()));
    }
    let differ = |x: f32, y: f32| x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan());
    let diff: Vec<usize> = (0..a.len()).filter(|&i| differ(a[i], b[i])).collect();
    let &first = diff.first()?;
    let both_nan = diff
        .iter()
        .filter(|&&i| a[i].is_nan() && b[i].is_nan())
        .count();
    Some(format!(
        "{} of {} values differ, {both_nan} of them NaN on both sides; first at {first}: {:#010x} ({:e}) vs {:#010x} ({:e})",
        diff.len(),
        a.len(),
        a[first].to_bits(),
        a[first],
        b[first].to_bits(),
        b[first]
    ))
}
