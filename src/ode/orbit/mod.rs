//! Orbit (bifurcation) diagrams: for each value of a swept parameter, the values one
//! state takes where the orbit pierces a section, or at its local maxima, after a
//! transient. They come from an events run (`ode::events`): a section is a continuous
//! record event, a maximum of `x` the down-crossing of `dx/dt` (`maxima`). `problem` holds
//! the checked run (made from a run spec by `spec::orbit::orbit_problem`), `run` carries it
//! out on the GPU keeping at most N × K values (`collect`), `diagram` turns the points into
//! distinct values and the density picture's counts, and `summary` describes a run as JSON
//! (run.json, `--json`, the HTTP server).

pub mod collect;
pub mod diagram;
pub mod maxima;
pub mod problem;
pub mod run;
pub mod summary;

pub use collect::StepTotals;
pub use diagram::{OrbitDiagram, distinct_values};
pub use maxima::maxima_section;
pub use problem::{OrbitKind, OrbitProblem};
pub use run::{OrbitResult, run_orbit_diagram, run_orbit_diagram_with};
pub use summary::{DistinctHistogram, MANY, distinct_histogram};
