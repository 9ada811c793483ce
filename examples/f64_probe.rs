//! Evaluates one call of the f64 math library on the device for given arguments, printing
//! every result with its bits: a developer's tool for chasing a driver's f64 deviation that
//! `phaseflow selftest` reports (`math-f64`).
//!
//!     cargo run --release --example f64_probe -- 'm64_sinh(a.x)' 699.3825583443397
//!     cargo run --release --example f64_probe -- 'm64_pow(a.x, a.y)' 2.04e-5,59.89

use phaseflow::gpu::math_f64::evaluate;
use phaseflow::gpu::{AdapterChoice, GpuContext};
use std::process::ExitCode;

fn parse(arg: &str) -> Option<(f64, f64)> {
    let mut it = arg.split(',').map(|s| s.trim().parse::<f64>());
    let x = it.next()?.ok()?;
    let y = it.next().unwrap_or(Ok(0.0)).ok()?;
    Some((x, y))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((call, rest)) = args.split_first() else {
        eprintln!("usage: f64_probe 'CALL over a.x, a.y' X[,Y] ...");
        return ExitCode::from(2);
    };
    let Some(points) = rest.iter().map(|a| parse(a)).collect::<Option<Vec<_>>>() else {
        eprintln!("arguments are numbers X or pairs X,Y");
        return ExitCode::from(2);
    };
    let ctx = match GpuContext::new(&AdapterChoice::Best) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    match evaluate(&ctx, call, &points) {
        Ok(got) => {
            for ((x, y), g) in points.iter().zip(got) {
                println!(
                    "{call} at ({x:e}, {y:e}) = {g:e}  bits {:016x}",
                    g.to_bits()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
