//! The codec's sparse layout, expanded in one pass.
//!
//! A sparse payload (see `docs/wire-format.md`) holds a bitmap with one bit
//! per element (least significant bit first; set = non-zero) and the
//! non-zero elements packed in order. Decoding scatters them back into a
//! zeroed buffer. numpy needs two passes and an index array for that; this
//! is one pass that skips whole zero bytes of the bitmap. The Python codec
//! uses it when the native module is present and numpy otherwise, with
//! identical results.

use std::fmt;

/// Sizes that disagree in a sparse payload (the codec reports it as a corrupt frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseError(pub String);

impl fmt::Display for SparseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SparseError {}

fn invalid(msg: impl Into<String>) -> Result<(), SparseError> {
    Err(SparseError(msg.into()))
}

/// Number of set bits among the first `n` bits of `bitmap`.
pub fn count_set(bitmap: &[u8], n: usize) -> usize {
    let full = n / 8;
    let mut c: usize = bitmap[..full].iter().map(|b| b.count_ones() as usize).sum();
    if n % 8 != 0 {
        c += (bitmap[full] & ((1u8 << (n % 8)) - 1)).count_ones() as usize;
    }
    c
}

/// Scatters `values` (packed elements of `itemsize` bytes) into `out` (`n * itemsize` bytes,
/// zeroed by the caller) at the positions whose bit is set in `bitmap`.
///
/// Fails, writing nothing, when the sizes disagree: the bitmap must have `ceil(n / 8)` bytes with
/// no bit set past `n`, and exactly one value per set bit.
pub fn expand(bitmap: &[u8], values: &[u8], itemsize: usize, n: usize, out: &mut [u8]) -> Result<(), SparseError> {
    if itemsize == 0 || n.checked_mul(itemsize) != Some(out.len()) {
        return invalid(format!(
            "output buffer has {} bytes, expected {n} elements of {itemsize}",
            out.len()
        ));
    }
    if bitmap.len() != n.div_ceil(8) {
        return invalid(format!("bitmap has {} bytes, expected {}", bitmap.len(), n.div_ceil(8)));
    }
    if n % 8 != 0 && bitmap[n / 8] >> (n % 8) != 0 {
        return invalid("bitmap has bits set past the last element");
    }
    let nnz = count_set(bitmap, n);
    if values.len() != nnz * itemsize {
        return invalid(format!(
            "bitmap marks {nnz} non-zero elements but {} bytes of values hold {}",
            values.len(),
            values.len() / itemsize
        ));
    }
    match itemsize {
        1 => scatter_bytes(bitmap, values, out),
        2 => scatter::<2>(bitmap, values, out),
        4 => scatter::<4>(bitmap, values, out),
        8 => scatter::<8>(bitmap, values, out),
        k => scatter_dyn(bitmap, values, k, out),
    }
    Ok(())
}

/// `BYTE_MASKS[b]` has byte `i` all ones where bit `i` of `b` is set: the deposit mask of
/// one bitmap byte.
static BYTE_MASKS: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            if (b >> i) & 1 == 1 {
                t[b] |= 0xFFu64 << (8 * i);
            }
            i += 1;
        }
        b += 1;
    }
    t
};

/// The scatter for one-byte elements. Per bitmap byte, the next eight packed values are
/// deposited into the bytes its bits select: one `pdep` instruction where the CPU has BMI2,
/// else a branch-free rank walk (random sparsity patterns would otherwise mispredict a branch
/// on almost every element).
fn scatter_bytes(bitmap: &[u8], values: &[u8], out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("bmi2") {
        // SAFETY: the CPU supports BMI2, checked just above.
        unsafe { scatter_bytes_pdep(bitmap, values, out) };
        return;
    }
    scatter_bytes_portable(bitmap, values, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "bmi2")]
unsafe fn scatter_bytes_pdep(bitmap: &[u8], values: &[u8], out: &mut [u8]) {
    // Inlined here (the closure inherits the target feature), so the deposit is one BMI2
    // instruction; the caller checked that the CPU has BMI2.
    scatter_bytes_with(bitmap, values, out, |w, b| {
        std::arch::x86_64::_pdep_u64(w, BYTE_MASKS[b as usize])
    })
}

fn scatter_bytes_portable(bitmap: &[u8], values: &[u8], out: &mut [u8]) {
    scatter_bytes_with(bitmap, values, out, |w, b| {
        let mut rank = 0u32;
        let mut v = 0u64;
        for i in 0..8 {
            let bit = u64::from((b >> i) & 1);
            // rank <= i <= 7, so the shift stays below 64
            v |= ((w >> (8 * rank)) & 0xFF & 0u64.wrapping_sub(bit)) << (8 * i);
            rank += bit as u32;
        }
        v
    })
}

/// The byte scatter's loop; `deposit(w, b)` spreads the low bytes of `w` over the bytes that
/// the bits of `b` select.
#[inline(always)]
fn scatter_bytes_with(bitmap: &[u8], values: &[u8], out: &mut [u8], deposit: impl Fn(u64, u8) -> u64) {
    let mut src = 0usize;
    for (byte_index, &b) in bitmap.iter().enumerate() {
        if b == 0 {
            continue;
        }
        let base = byte_index * 8;
        if src + 8 <= values.len() && base + 8 <= out.len() {
            let w = u64::from_le_bytes(values[src..src + 8].try_into().expect("8 bytes"));
            out[base..base + 8].copy_from_slice(&deposit(w, b).to_le_bytes());
        } else {
            scatter_tail(b, &values[src..], &mut out[base..]);
        }
        src += b.count_ones() as usize;
    }
}

/// One bitmap byte near the end of the buffers, element by element.
fn scatter_tail(b: u8, values: &[u8], out: &mut [u8]) {
    let mut bits = b;
    let mut src = 0;
    while bits != 0 {
        out[bits.trailing_zeros() as usize] = values[src];
        src += 1;
        bits &= bits - 1;
    }
}

/// The scatter for a compile-time element size (each copy is one load and one store).
fn scatter<const K: usize>(bitmap: &[u8], values: &[u8], out: &mut [u8]) {
    let mut src = 0usize;
    for (byte_index, &b) in bitmap.iter().enumerate() {
        if b == 0 {
            continue; // eight zeros: the buffer is already zero
        }
        let base = byte_index * 8 * K;
        if b == 0xFF && base + 8 * K <= out.len() {
            out[base..base + 8 * K].copy_from_slice(&values[src..src + 8 * K]);
            src += 8 * K;
            continue;
        }
        let mut bits = b;
        while bits != 0 {
            let dst = base + bits.trailing_zeros() as usize * K;
            let v: [u8; K] = values[src..src + K].try_into().expect("K bytes");
            out[dst..dst + K].copy_from_slice(&v);
            src += K;
            bits &= bits - 1;
        }
    }
}

fn scatter_dyn(bitmap: &[u8], values: &[u8], k: usize, out: &mut [u8]) {
    let mut src = 0usize;
    for (byte_index, &b) in bitmap.iter().enumerate() {
        let mut bits = b;
        while bits != 0 {
            let dst = (byte_index * 8 + bits.trailing_zeros() as usize) * k;
            out[dst..dst + k].copy_from_slice(&values[src..src + k]);
            src += k;
            bits &= bits - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: element by element.
    fn naive(bitmap: &[u8], values: &[u8], itemsize: usize, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n * itemsize];
        let mut src = 0;
        for i in 0..n {
            if bitmap[i / 8] >> (i % 8) & 1 == 1 {
                out[i * itemsize..(i + 1) * itemsize].copy_from_slice(&values[src..src + itemsize]);
                src += itemsize;
            }
        }
        out
    }

    #[test]
    fn matches_the_element_by_element_reference() {
        let mut state = 12345u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [0usize, 1, 7, 8, 9, 63, 64, 65, 1000] {
            for itemsize in [1usize, 2, 3, 4, 8] {
                for density in [0u64, 30, 70, 100] {
                    let mut bitmap = vec![0u8; n.div_ceil(8)];
                    let mut values = Vec::new();
                    for i in 0..n {
                        if next() % 100 < density {
                            bitmap[i / 8] |= 1 << (i % 8);
                            for _ in 0..itemsize {
                                values.push((next() % 255 + 1) as u8);
                            }
                        }
                    }
                    let mut out = vec![0u8; n * itemsize];
                    expand(&bitmap, &values, itemsize, n, &mut out).unwrap();
                    assert_eq!(out, naive(&bitmap, &values, itemsize, n), "n {n} itemsize {itemsize}");
                }
            }
        }
    }

    #[test]
    fn both_byte_scatters_agree_with_the_reference() {
        let mut state = 99u64;
        for n in [1usize, 8, 15, 64, 1001] {
            let bitmap: Vec<u8> = (0..n.div_ceil(8))
                .map(|i| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let b = (state >> 56) as u8;
                    if i == n / 8 && n % 8 != 0 {
                        b & ((1u8 << (n % 8)) - 1)
                    } else {
                        b
                    }
                })
                .collect();
            let nnz = count_set(&bitmap, n);
            let values: Vec<u8> = (0..nnz).map(|i| (i % 251 + 1) as u8).collect();
            let expected = naive(&bitmap, &values, 1, n);
            let mut out = vec![0u8; n];
            scatter_bytes_portable(&bitmap, &values, &mut out);
            assert_eq!(out, expected, "portable, n {n}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("bmi2") {
                let mut out = vec![0u8; n];
                // SAFETY: BMI2 is present (checked above).
                unsafe { scatter_bytes_pdep(&bitmap, &values, &mut out) };
                assert_eq!(out, expected, "pdep, n {n}");
            }
        }
    }

    #[test]
    fn inconsistent_sizes_are_refused() {
        let mut out = vec![0u8; 10];
        assert!(expand(&[0b11], &[1], 1, 10, &mut out).is_err()); // bitmap too short
        assert!(expand(&[0b11, 0], &[1], 1, 10, &mut out).is_err()); // one value for two bits
        assert!(expand(&[0, 0b100], &[], 1, 10, &mut out).is_err()); // bit past n
        assert!(expand(&[0, 0], &[], 1, 9, &mut out).is_err()); // wrong output size
        assert!(expand(&[], &[], 2, usize::MAX / 2 + 1, &mut []).is_err()); // n * itemsize overflows
    }
}
