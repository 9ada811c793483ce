//! What run.json says about a run: the system, the method and its settings (grid or
//! controller, step counts), the status counts, the adapter and the timing.

use crate::gpu::GpuContext;
use crate::ode::adaptive::problem::Tolerance;
use crate::ode::sde::Steps as SdeSteps;
use crate::ode::{Problem, RunStats, Save, Tally};
use serde_json::json;

/// The fixed-grid part of `method_json`.
fn grid_json(grid: &crate::ode::TimeGrid, save: Save) -> serde_json::Value {
    json!({
        "t0": grid.t0,
        "t1": grid.t1(),
        "dt": grid.dt,
        "steps": grid.n_steps,
        "save_every": match save { Save::Final => None, Save::Every(k) => Some(k) },
    })
}

/// The adaptive part of `method_json`.
fn control_json(
    (t0, t1): (f64, f64),
    c: &crate::ode::Control,
    saveat: &crate::ode::SaveAt,
    tally: &Tally,
) -> serde_json::Value {
    let tol = |t: &Tolerance| match t {
        Tolerance::All(v) => json!(v),
        Tolerance::PerState(v) => json!(v),
    };
    json!({
        "t0": t0,
        "t1": t1,
        "rtol": tol(&c.rtol),
        "atol": tol(&c.atol),
        "dt_initial": c.dt_initial,
        "dtmin": c.dt_min,
        "dtmax": c.dt_max.unwrap_or(t1 - t0),
        "max_steps": c.max_steps,
        "safety": c.safety,
        "max_growth": c.max_growth,
        "max_shrink": c.max_shrink,
        "saveat": match saveat { crate::ode::SaveAt::Final => None, crate::ode::SaveAt::Times(t) => Some(t.len()) },
        "steps": {
            "accepted": tally.accepted,
            "rejected": tally.rejected,
            "rhs_evals": tally.rhs_evals,
            "attempts_mean": (tally.accepted + tally.rejected) as f64 / tally.trajectories.max(1) as f64,
            "attempts_max": tally.max_attempts,
        },
    })
}

/// What the run integrated and how, by kind of solver.
pub fn method_json(p: &Problem, tally: &Tally) -> serde_json::Value {
    match p {
        Problem::Fixed(f) => grid_json(&f.grid, f.save),
        Problem::Sde(sde) => {
            let mut m = match &sde.steps {
                SdeSteps::Fixed { grid, save } => grid_json(grid, *save),
                SdeSteps::Adaptive {
                    t0,
                    t1,
                    saveat,
                    control,
                    depth,
                } => {
                    let mut m = control_json((*t0, *t1), control, saveat, tally);
                    m["brownian_depth"] = json!(depth);
                    m
                }
            };
            let noise = sde.system.noise.as_ref();
            m["seed"] = json!(sde.noise.seed);
            m["antithetic"] = json!(sde.noise.antithetic);
            m["noise"] = json!({
                "kind": noise.map(|n| n.kind),
                "calculus": noise.map(|n| n.calculus),
                "wiener": sde.system.n_wiener(),
            });
            m
        }
        Problem::Adaptive(_) | Problem::Stiff(_) => {
            let (t0, t1, saveat, c) = p.ode_control().expect("a controlled ODE run");
            let mut m = control_json((t0, t1), c, saveat, tally);
            if p.is_stiff() {
                m["steps"]["jacobians"] = json!(tally.jacobians);
                m["steps"]["switches"] = json!(tally.switches);
                m["steps"]["trajectories_switched"] = json!(tally.switched);
            }
            m
        }
    }
}

pub fn summary_json(
    ctx: &GpuContext,
    p: &Problem,
    tally: &Tally,
    stats: &RunStats,
    n_save: usize,
) -> serde_json::Value {
    let system = p.system();
    let names = |v: &[crate::model::Var]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
    json!({
        "phaseflow": env!("CARGO_PKG_VERSION"),
        "system": system.name(),
        "equations": system.equations,
        "states": names(&system.states),
        "parameters": names(&system.params),
        "solver": p.solver(),
        "adaptive": p.is_adaptive(),
        "precision": p.precision(),
        "n": p.ensemble().n,
        "method": method_json(p, tally),
        "n_save": n_save,
        "status": crate::ode::solution::status_counts_json(tally.status_counts()),
        "adapter": { "name": ctx.summary.name, "backend": ctx.summary.backend, "type": ctx.summary.device_type, "driver": ctx.summary.driver_info },
        "timing": {
            "setup_s": stats.setup.as_secs_f64(),
            "compile_s": stats.compile.as_secs_f64(),
            "solve_s": stats.solve.as_secs_f64(),
            "gpu_s": stats.gpu.map(|d| d.as_secs_f64()),
            "host_s": stats.host.as_secs_f64(),
            "trajectory_steps": stats.trajectory_steps,
            "trajectory_steps_per_s": stats.throughput(),
            "chunks": stats.chunks,
            "dispatches": stats.dispatches,
        },
    })
}
