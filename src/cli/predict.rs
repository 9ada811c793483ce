//! `phaseflow predict MODEL`: evaluates a DeepONet checkpoint on new input functions at
//! given points; writes G as `.npy` [functions, points, outputs]. With a data file that
//! holds the true values too, prints the errors.

use super::CliError;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::{OutputDir, read_matrix};
use crate::nn::deeponet::{check_inputs, mean_relative_l2};
use crate::nn::deeponet_data::read_aligned;
use crate::nn::{DeepONetNet, Matrix, load_deeponet};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// A DeepONet checkpoint (model.safetensors from `phaseflow train deeponet`)
    model: PathBuf,
    /// Input functions and points in one .npz (ours or DeepXDE's aligned layout); its
    /// values, when present, are compared with the predictions
    #[arg(long, conflicts_with_all = ["functions", "points"])]
    data: Option<PathBuf>,
    /// Input functions at the sensors, .npy [functions, sensors]
    #[arg(long, requires = "points")]
    functions: Option<PathBuf>,
    /// Points, .npy [points, dims]
    #[arg(long, requires = "functions")]
    points: Option<PathBuf>,
    /// Where to write the predictions (.npy, f32 [functions, points, outputs])
    #[arg(long, short)]
    out: PathBuf,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

fn matrix(path: &Path) -> Result<Matrix, CliError> {
    let (data, rows, cols) = read_matrix(path).map_err(|e| CliError::Input(e.to_string()))?;
    Ok(Matrix { rows, cols, data })
}

pub fn run(args: &PredictArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let (arch, params) = load_deeponet(&args.model).map_err(|e| CliError::Input(e.to_string()))?;
    let (u, y, truth) = match (&args.data, &args.functions, &args.points) {
        (Some(path), _, _) => {
            let d = read_aligned(path).map_err(|e| CliError::Input(e.to_string()))?;
            (d.u, d.y, Some((d.g, d.outputs)))
        }
        (None, Some(f), Some(p)) => (matrix(f)?, matrix(p)?, None),
        _ => {
            return Err(CliError::Input(
                "give the inputs: --data FILE.npz, or --functions U.npy and --points Y.npy".into(),
            ));
        }
    };
    check_inputs(&arch, &u, &y).map_err(CliError::Input)?;
    if let Some((_, k)) = &truth
        && *k != arch.outputs
    {
        return Err(CliError::Input(format!(
            "the data has {k} outputs per point; the model has {}",
            arch.outputs
        )));
    }
    let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty());
    let name = args
        .out
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.ends_with(".npy"))
        .ok_or_else(|| CliError::Input("-o must name a .npy file".into()))?;
    let mut out = OutputDir::reopen(parent.unwrap_or(Path::new(".")))
        .map_err(|e| CliError::Input(e.to_string()))?;
    let ctx = GpuContext::new(choice)?;
    let net = DeepONetNet::new(&ctx, &arch, &params)?;
    let clock = Instant::now();
    let g = net.predict(&ctx, &u, &y)?;
    let seconds = clock.elapsed().as_secs_f64();
    let shape = [u.rows as u64, y.rows as u64, arch.outputs as u64];
    let values: Vec<f32> = g.iter().map(|&v| v as f32).collect();
    out.write_npy(name, &shape, &values)
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let written = out.commit().map_err(|e| CliError::Runtime(e.to_string()))?;
    let errors = truth.map(|(t, k)| {
        let mse = g
            .iter()
            .zip(&t)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            / g.len() as f64;
        (mse, mean_relative_l2(&g, &t, y.rows * k))
    });
    let summary = json!({
        "functions": u.rows,
        "points": y.rows,
        "outputs": arch.outputs,
        "seconds": seconds,
        "functions_per_s": u.rows as f64 / seconds,
        "mse": errors.map(|e| e.0),
        "mean_relative_l2": errors.map(|e| e.1),
        "written": written,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        println!(
            "predicted {} functions × {} points in {:.3} s ({:.3e} functions/s, transfers included)",
            u.rows,
            y.rows,
            seconds,
            u.rows as f64 / seconds
        );
        if let Some((mse, rel)) = errors {
            println!("against the file's values: MSE {mse:.4e}, mean relative L2 {rel:.4}");
        }
        for p in &written {
            println!("wrote {}", p.display());
        }
    }
    Ok(())
}
