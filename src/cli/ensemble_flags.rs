//! The flags that say which trajectories an ensemble holds (how many, parameter sweeps and
//! values, initial states), shared by the commands that run an ensemble for something other
//! than its trajectories (`lyapunov`, `orbit-diagram`). They become `simulate`'s run spec,
//! so they mean, and fail, exactly as `simulate`'s flags do.

use super::error::CliError;
use super::simulate::{no_repeats, parse_assign, to_map};
use crate::spec::{RunSpec, U0Spec};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct EnsembleFlags {
    /// Number of trajectories (implied by a grid or an input file if not given)
    #[arg(short, long, allow_negative_numbers = true)]
    n: Option<usize>,

    /// Set the default initial value of a state
    #[arg(long, value_name = "STATE=VALUE", value_parser = parse_assign)]
    set: Vec<(String, Vec<f64>)>,

    /// Set a parameter for every trajectory
    #[arg(long, value_name = "PARAM=VALUE", value_parser = parse_assign)]
    param: Vec<(String, Vec<f64>)>,

    /// Sweep a parameter linearly over the trajectories (LO:HI), or over a grid when
    /// given twice (LO:HI:COUNT each; the first varies slowest)
    #[arg(long, value_name = "PARAM=LO:HI[:COUNT]", value_parser = parse_assign)]
    sweep: Vec<(String, Vec<f64>)>,

    /// Parameters from an .npy of shape [N, n_params]
    #[arg(long, value_name = "FILE.npy")]
    params: Option<PathBuf>,

    /// Initial states from an .npy of shape [N, dim]
    #[arg(long, value_name = "FILE.npy")]
    u0: Option<PathBuf>,

    /// Initial states uniform at random in a box (repeat per state; others at default)
    #[arg(long, value_name = "STATE=LO:HI", value_parser = parse_assign)]
    u0_uniform: Vec<(String, Vec<f64>)>,

    /// Initial states on a regular grid (repeat per state; the first varies slowest)
    #[arg(long, value_name = "STATE=LO:HI[:COUNT]", value_parser = parse_assign)]
    u0_grid: Vec<(String, Vec<f64>)>,

    /// Trajectory j starts at the default plus j*STEP in one state
    #[arg(long, value_name = "STATE=STEP", value_parser = parse_assign)]
    u0_perturb: Vec<(String, Vec<f64>)>,

    /// Seed of the random initial states [default: 0]
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,
}

impl EnsembleFlags {
    /// The ensemble flags as `simulate`'s spec, with `system` if the command line named
    /// one (a config file may name it instead).
    pub fn spec_of(&self, system: Option<&str>) -> Result<RunSpec, CliError> {
        for (flag, pairs) in [
            ("--sweep", &self.sweep),
            ("--param", &self.param),
            ("--set", &self.set),
            ("--u0-uniform", &self.u0_uniform),
            ("--u0-grid", &self.u0_grid),
            ("--u0-perturb", &self.u0_perturb),
        ] {
            no_repeats(flag, pairs)?;
        }
        let some_map = |pairs: &[(String, Vec<f64>)]| (!pairs.is_empty()).then(|| to_map(pairs));
        let u0 = U0Spec {
            uniform: some_map(&self.u0_uniform),
            grid: some_map(&self.u0_grid),
            perturb: some_map(&self.u0_perturb),
            file: self.u0.clone(),
        };
        let any_u0 =
            u0.uniform.is_some() || u0.grid.is_some() || u0.perturb.is_some() || u0.file.is_some();
        Ok(RunSpec {
            system: system.map(str::to_string),
            n: self.n,
            seed: self.seed,
            set: to_map(&self.set),
            param: to_map(&self.param),
            sweep: to_map(&self.sweep),
            params_file: self.params.clone(),
            u0: any_u0.then_some(u0),
            ..RunSpec::default()
        })
    }
}
