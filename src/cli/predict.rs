//! `phaseflow predict MODEL`: evaluates a DeepONet checkpoint on new input functions at
//! given points; writes G as `.npy` [functions, points, outputs] ([samples, outputs] for an
//! unaligned data file). With a data file that holds the true values too, prints the
//! errors.

use super::error::CliError;
use crate::engine::check_prediction_values;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::{OutputDir, read_matrix};
use crate::nn::deeponet::data::read_data;
use crate::nn::deeponet::{DeepONetData, check_inputs};
use crate::nn::{DeepONetNet, Matrix, load_deeponet};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// A DeepONet checkpoint (model.safetensors from `phaseflow train deeponet`)
    model: PathBuf,
    /// Input functions and points in one .npz (ours or DeepXDE's, aligned or unaligned);
    /// its values are compared with the predictions
    #[arg(long, conflicts_with_all = ["functions", "points"])]
    data: Option<PathBuf>,
    /// Input functions at the sensors, .npy [functions, sensors]
    #[arg(long, requires = "points")]
    functions: Option<PathBuf>,
    /// Points, .npy [points, dims]
    #[arg(long, requires = "functions")]
    points: Option<PathBuf>,
    /// Where to write the predictions (.npy, f32 [functions, points, outputs], or
    /// [samples, outputs] for unaligned data)
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
            let d = read_data(path).map_err(|e| CliError::Input(e.to_string()))?;
            let (u, y, _) = d.as_ref().parts();
            (u.clone(), y.clone(), Some(d))
        }
        (None, Some(f), Some(p)) => (matrix(f)?, matrix(p)?, None),
        _ => {
            return Err(CliError::Input(
                "give the inputs: --data FILE.npz, or --functions U.npy and --points Y.npy".into(),
            ));
        }
    };
    check_inputs(&arch, &u, &y).map_err(CliError::Input)?;
    // Nothing to predict is a mistake in the files (it printed a rate of nothing).
    let file = |given: &Option<PathBuf>| given.as_ref().or(args.data.as_ref()).cloned();
    for (rows, what, source) in [
        (u.rows, "functions", file(&args.functions)),
        (y.rows, "points", file(&args.points)),
    ] {
        if rows == 0 {
            let source = source
                .map(|p| format!("{}: ", p.display()))
                .unwrap_or_default();
            return Err(CliError::Input(format!(
                "{source}no {what} (0 rows): nothing to predict"
            )));
        }
    }
    // NaN or a value beyond f32 would pass the device and give a finite wrong answer.
    check_prediction_values(&u, &y).map_err(|e| {
        let file = |given: &Option<PathBuf>| given.as_ref().map(|p| p.display().to_string());
        let source = if e.starts_with('u') {
            file(&args.functions)
        } else {
            file(&args.points)
        };
        let source = source.or_else(|| file(&args.data)).unwrap_or_default();
        CliError::Input(format!("{source}: {e}"))
    })?;
    if let Some(d) = &truth {
        d.as_ref().check(&arch).map_err(CliError::Input)?;
    }
    let unaligned = matches!(truth, Some(DeepONetData::Unaligned(_)));
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
    let g = if unaligned {
        net.predict_samples(&ctx, &u, &y)?
    } else {
        net.predict(&ctx, &u, &y)?
    };
    let seconds = clock.elapsed().as_secs_f64();
    let k = arch.outputs as u64;
    let shape = if unaligned {
        vec![u.rows as u64, k]
    } else {
        vec![u.rows as u64, y.rows as u64, k]
    };
    let values: Vec<f32> = g.iter().map(|&v| v as f32).collect();
    out.write_npy(name, &shape, &values)
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let written = out.commit().map_err(|e| CliError::Runtime(e.to_string()))?;
    let errors = truth.map(|d| {
        let (_, _, t) = d.as_ref().parts();
        let mse = g.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / g.len() as f64;
        let per_output = match arch.outputs {
            0 | 1 => Vec::new(),
            _ => d.as_ref().mean_relative_l2_per_output(&g),
        };
        (mse, d.as_ref().mean_relative_l2(&g), per_output)
    });
    let summary = json!({
        "layout": if unaligned { "unaligned" } else { "aligned" },
        "functions": u.rows,
        "points": if unaligned { 1 } else { y.rows },
        "outputs": arch.outputs,
        "seconds": seconds,
        "functions_per_s": u.rows as f64 / seconds,
        "mse": errors.as_ref().map(|e| e.0),
        "mean_relative_l2": errors.as_ref().map(|e| e.1),
        "mean_relative_l2_per_output": errors.as_ref().map(|e| &e.2),
        "written": written,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        let what = if unaligned {
            format!("{} samples", u.rows)
        } else {
            format!("{} functions × {} points", u.rows, y.rows)
        };
        let unit = if unaligned { "samples" } else { "functions" };
        println!(
            "predicted {what} in {:.3} s ({:.3e} {unit}/s, transfers included)",
            seconds,
            u.rows as f64 / seconds
        );
        if let Some((mse, rel, per_output)) = &errors {
            println!("against the file's values: MSE {mse:.4e}, mean relative L2 {rel:.4}");
            if per_output.len() > 1 {
                let each: Vec<String> = per_output.iter().map(|e| format!("{e:.4}")).collect();
                println!("  mean relative L2 per output: {}", each.join(", "));
            }
        }
        for p in &written {
            println!("wrote {}", p.display());
        }
    }
    Ok(())
}
