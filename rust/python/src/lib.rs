//! `jointdnn_edge._core`: thin PyO3 bindings of `jointdnn-core`, one file per concept.
//!
//! Each method converts its arguments (`values.rs`: Python values read by
//! attribute name), releases the GIL around the work, and calls plain Rust in
//! `jointdnn-core`; errors are converted in `errors.rs`. Cost arrays are read
//! from numpy's buffers (no Python lists) and copied into Rust vectors before
//! the GIL is released (`problem.rs`); `sparse_expand` works on numpy's memory
//! in place. Results are typed frozen classes (`results.rs`), never positional tuples.

mod errors;
mod lut;
mod problem;
mod results;
mod values;

use jointdnn_core::lut::CELL_MAX_WORK;
use numpy::{PyReadonlyArray1, PyReadwriteArray1};
use pyo3::prelude::*;

use errors::{ToPyResult, CODEC_ERROR};

/// Scatters packed non-zero elements into `out` (zeroed, `n * itemsize` bytes) by a bitmap
/// (the codec's sparse layout); raises `CodecError` on inconsistent sizes.
#[pyfunction]
fn sparse_expand(
    py: Python<'_>,
    bitmap: PyReadonlyArray1<u8>,
    values: PyReadonlyArray1<u8>,
    itemsize: usize,
    n: usize,
    mut out: PyReadwriteArray1<u8>,
) -> PyResult<()> {
    let (Ok(bitmap), Ok(values), Ok(out)) = (bitmap.as_slice(), values.as_slice(), out.as_slice_mut()) else {
        return Err(CODEC_ERROR.new_err(py, "sparse_expand needs contiguous uint8 arrays"));
    };
    // The slices are numpy's memory, read and written with the GIL released (no copy: this is
    // the codec's hot path). The codec passes arrays it just made and shares with no thread.
    py.detach(|| jointdnn_core::sparse::expand(bitmap, values, itemsize, n, out))
        .into_py_result(py)
}

/// Number of cores the parallel lookup-table build uses.
#[pyfunction]
fn parallelism() -> usize {
    rayon::current_num_threads()
}

const _: () = assert!(CELL_MAX_WORK == 16777216);

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<problem::Problem>()?;
    m.add_class::<lut::LutIndex>()?;
    m.add_class::<results::Solution>()?;
    m.add_class::<results::Candidate>()?;
    m.add_class::<results::LutCell>()?;
    m.add_class::<results::LutAnswer>()?;
    m.add_function(wrap_pyfunction!(parallelism, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_expand, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
