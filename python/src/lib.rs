//! The native half of the `phaseflow` Python package (PyO3): systems, engines and jobs,
//! with results as NumPy arrays that own the engine's buffers. The pure-Python half
//! (`phaseflow/__init__.py`) adds `simulate`, `Result` and `Result.to_xarray`.

mod analysis;
mod convert;
mod deeponet;
mod errors;
mod estimate;
mod generate;
mod mlp;
mod montecarlo;
mod run;
mod rundir;
mod store;
mod system;
mod train;

use pyo3::prelude::*;

#[pymodule]
fn _phaseflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<system::PySystem>()?;
    m.add_class::<run::PyEngine>()?;
    m.add_class::<run::PyJob>()?;
    m.add_class::<deeponet::PyDeepONet>()?;
    m.add_class::<mlp::PyMLP>()?;
    m.add_function(wrap_pyfunction!(system::systems, m)?)?;
    m.add_function(wrap_pyfunction!(run::info, m)?)?;
    m.add_function(wrap_pyfunction!(train::train_deeponet, m)?)?;
    m.add_function(wrap_pyfunction!(estimate::estimate_fits, m)?)?;
    m.add_function(wrap_pyfunction!(mlp::fit_mlp, m)?)?;
    m.add_function(wrap_pyfunction!(rundir::simulate_to_dir, m)?)?;
    m.add_function(wrap_pyfunction!(rundir::resume_dir, m)?)?;
    m.add_function(wrap_pyfunction!(store::simulate_to_store, m)?)?;
    m.add_function(wrap_pyfunction!(store::create_store, m)?)?;
    m.add_function(wrap_pyfunction!(store::store_status, m)?)?;
    m.add_function(wrap_pyfunction!(store::finalize_store, m)?)?;
    m.add_function(wrap_pyfunction!(generate::generate_deeponet_data, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
