//! `phaseflow estimate` and `simulate --sensitivities` as a user drives them: observations
//! made by `simulate`, fitted back by `estimate`; the files each writes; one clear message
//! for each misuse.

mod common;

use common::cli::{assert_input_error, phaseflow, stderr, stdout, temp_dir};
use phaseflow::io::npy::{read_npy, write_npy};
use std::path::{Path, PathBuf};

const W: [f64; 3] = [0.6, 1.0, 1.4];

/// Observations of three harmonic oscillators (w = 0.6, 1.0, 1.4; x0 = 1, v0 = 0) at
/// t = 0.25, 0.5, ..., 5, made by `simulate --saveat` in f64 at tolerance 1e-11 and
/// rearranged from [n_save, N, dim] to [N, n_obs, dim]. Returns (observations, times).
fn harmonic_observations(dir: &Path) -> (PathBuf, PathBuf) {
    observations_of(dir, &["--sweep", "w=0.6:1.4"])
}

/// As `harmonic_observations`, with the ensemble flags `ensemble` instead of the sweep.
fn observations_of(dir: &Path, ensemble: &[&str]) -> (PathBuf, PathBuf) {
    let sim = dir.join("sim");
    let mut args = vec![
        "simulate",
        "harmonic",
        "-n",
        "3",
        "--tspan",
        "0:5",
        "--solver",
        "tsit5",
        "--rtol",
        "1e-11",
        "--atol",
        "1e-11",
        "--precision",
        "f64",
        "--saveat",
        "0.25:0.25:5",
        "-q",
        "-o",
        sim.to_str().unwrap(),
    ];
    args.extend_from_slice(ensemble);
    let o = phaseflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let (shape, states) = read_npy(&sim.join("states.npy")).unwrap();
    assert_eq!(shape, vec![20, 3, 2]);
    let (_, times) = read_npy(&sim.join("times.npy")).unwrap();
    let times: Vec<f64> = times[..20].to_vec();
    assert!((times[0] - 0.25).abs() < 1e-12 && (times[19] - 5.0).abs() < 1e-12);
    let mut obs = vec![0.0; 3 * 20 * 2];
    for k in 0..20 {
        for j in 0..3 {
            for i in 0..2 {
                obs[(j * 20 + k) * 2 + i] = states[(k * 3 + j) * 2 + i];
            }
        }
    }
    let (o_path, t_path) = (dir.join("obs.npy"), dir.join("t.npy"));
    write_npy(&o_path, &[3, 20, 2], &obs).unwrap();
    write_npy(&t_path, &[20], &times).unwrap();
    (o_path, t_path)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn estimate_recovers_what_simulate_made() {
    let dir = temp_dir("recover");
    let (obs, times) = harmonic_observations(&dir);
    let fits = dir.join("fits");
    let args = [
        "estimate",
        "harmonic",
        "--observations",
        s(&obs),
        "--times",
        s(&times),
        "--fit",
        "w=0.1:3:0.9",
        "--fit",
        "x0=-5:5:0.5",
        "-o",
        s(&fits),
    ];
    let o = phaseflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("status   3 converged"), "{text}");
    let (shape, est) = read_npy(&fits.join("estimates.npy")).unwrap();
    assert_eq!(shape, vec![3, 2]);
    for (j, w) in W.iter().enumerate() {
        // The data carry the simulate run's error (1e-11 tolerance): the fit lands on it.
        assert!((est[2 * j] - w).abs() < 1e-7, "w {j}: {}", est[2 * j]);
        assert!(
            (est[2 * j + 1] - 1.0).abs() < 1e-7,
            "x0 {j}: {}",
            est[2 * j + 1]
        );
    }
    let (shape, status) = read_npy(&fits.join("fit_status.npy")).unwrap();
    assert_eq!((shape, status), (vec![3], vec![1.0; 3]));
    let (shape, cov) = read_npy(&fits.join("covariance.npy")).unwrap();
    assert_eq!(shape, vec![3, 2, 2]);
    assert!(cov.iter().all(|c| c.is_finite()));
    let (_, se) = read_npy(&fits.join("stderr.npy")).unwrap();
    assert!((se[0] - cov[0].sqrt()).abs() <= 1e-12 * se[0].max(1e-300));
    let (_, cost) = read_npy(&fits.join("cost.npy")).unwrap();
    assert!(cost.iter().all(|c| *c < 1e-14), "{cost:?}");
    let (_, iterations) = read_npy(&fits.join("iterations.npy")).unwrap();
    assert!(iterations.iter().all(|&i| (1.0..50.0).contains(&i)));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fits.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["fitted"], serde_json::json!(["w", "x0"]));
    assert_eq!(run["status"]["converged"], 3);
    // fit.png: three panels (the three trajectories; the worst is among them) in two rows,
    // each state's fitted curve drawn in its colour (x blue, v red).
    let png = image::open(fits.join("fit.png")).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (1200, 2 * 420 + 60));
    let count = |c: [u8; 3]| png.pixels().filter(|p| p.0 == c).count();
    let (blue, red) = (count([31, 119, 180]), count([214, 39, 40]));
    assert!(blue > 2000 && red > 2000, "{blue} blue, {red} red pixels");

    // The results are not replaced without --overwrite.
    let again = phaseflow(&args);
    assert_input_error(&again, "give --overwrite");
    let mut with = args.to_vec();
    with.push("--overwrite");
    with.push("--json");
    let o = phaseflow(&with);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["trajectories"], 3);
    assert_eq!(json["segments"], 1);

    // Multiple shooting lands on the same fit (the single-shooting finish polishes it).
    with.extend(["--segments", "4"]);
    let o = phaseflow(&with);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (
            json["segments"].clone(),
            json["status"]["converged"].clone()
        ),
        (4.into(), 3.into())
    );
    let (_, shot) = read_npy(&fits.join("estimates.npy")).unwrap();
    for (a, b) in shot.iter().zip(&est) {
        assert!((a - b).abs() < 1e-7, "{a} vs {b}");
    }
}

/// `--shared`: one frequency behind three oscillators that started at x0 = 1, 1.5, 2 is
/// found from all of them at once (the data carry simulate's 1e-11 error); the files are
/// the shared fit's, and --overwrite over a per-trajectory run leaves none of its files.
#[test]
fn a_shared_fit_finds_one_frequency_behind_all_trajectories() {
    let dir = temp_dir("shared");
    let (obs, times) = observations_of(&dir, &["--param", "w=1.2", "--u0-perturb", "x=0.5"]);
    let fits = dir.join("fits");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "estimate",
            "harmonic",
            "--observations",
            s(&obs),
            "--times",
            s(&times),
            "--fit",
            "w=0.1:3:0.9",
            "--u0-perturb",
            "x=0.5",
            "-o",
            s(&fits),
        ];
        a.extend_from_slice(extra);
        phaseflow(&a)
    };
    let o = args(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fits.join("fit_status.npy").exists());
    let o = args(&["--shared", "--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("one fit of w to 3 trajectories"), "{text}");
    assert!(text.contains("status   converged"), "{text}");
    let (shape, est) = read_npy(&fits.join("estimates.npy")).unwrap();
    assert_eq!(shape, vec![1]);
    assert!((est[0] - 1.2).abs() < 1e-7, "w {}", est[0]);
    let (shape, cov) = read_npy(&fits.join("covariance.npy")).unwrap();
    assert_eq!((shape, cov.len()), (vec![1, 1], 1));
    let (shape, costs) = read_npy(&fits.join("trajectory_cost.npy")).unwrap();
    assert_eq!(shape, vec![3]);
    assert!(costs.iter().all(|c| *c < 1e-14), "{costs:?}");
    for stale in ["cost.npy", "iterations.npy", "fit_status.npy"] {
        assert!(!fits.join(stale).exists(), "{stale} left over");
    }
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fits.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["shared"], true);
    assert_eq!(run["status"], "converged");
    assert_eq!(run["observed_values"], 3 * 20 * 2);

    let start = dir.join("start.npy");
    write_npy(&start, &[3, 1], &[1.0f64; 3]).unwrap();
    let o = args(&["--shared", "--overwrite", "--start", s(&start)]);
    assert_input_error(&o, "a shared fit has one");
}

#[test]
fn estimate_refuses_bad_input_with_one_message() {
    let dir = temp_dir("refuse");
    let (obs, times) = harmonic_observations(&dir);
    let base = |extra: &[&str]| {
        let mut a = vec![
            "estimate",
            "harmonic",
            "--observations",
            s(&obs),
            "--times",
            s(&times),
        ];
        a.extend_from_slice(extra);
        phaseflow(&a)
    };
    assert_input_error(&base(&["--fit", "omega=0:1"]), "omega");
    assert_input_error(
        &base(&["--fit", "w=0.1:3", "--segments", "0"]),
        "--segments 0",
    );
    let too_many = base(&["--fit", "w=0.1:3", "--segments", "100000"]);
    assert_input_error(&too_many, "two of the");
    let huge = base(&["--fit", "w=0.1:3", "--segments", "18446744073709551615"]);
    assert_input_error(&huge, "two of the");
    assert_input_error(
        &base(&["--fit", "w=0.1:3", "--segments", "2", "--shared"]),
        "does not combine with a shared fit",
    );
    assert_input_error(&base(&["--fit", "w=2:1"]), "LO < HI");
    assert_input_error(&base(&["--fit", "w=0:1:5"]), "start within");
    assert_input_error(&base(&["--fit", "w=0:1:0.5:3"]), "LO:HI or LO:HI:START");
    assert_input_error(
        &base(&["--fit", "w=0.1:3", "--weights", "y=1"]),
        "not a state",
    );
    assert_input_error(&base(&["--fit", "w=0.1:3", "--weights", "x=-1"]), ">= 0");
    assert_input_error(&base(&["--fit", "w=0.1:3", "-n", "4"]), "3 trajectories");
    assert_input_error(
        &base(&["--fit", "w=0.1:3", "--sensitivity-error", "some"]),
        "include or exclude",
    );
    // Shapes: times against observations, a start file, a mask; a system of another size.
    let short = dir.join("short.npy");
    write_npy(&short, &[19], &[0.5f64; 19]).unwrap();
    let o = phaseflow(&[
        "estimate",
        "harmonic",
        "--observations",
        s(&obs),
        "--times",
        s(&short),
        "--fit",
        "w=0.1:3",
    ]);
    assert_input_error(&o, "it needs [20]");
    assert_input_error(
        &base(&["--fit", "w=0.1:3", "--start", s(&short)]),
        "it needs [N, n_fit] = [3, 1]",
    );
    assert_input_error(
        &base(&["--fit", "w=0.1:3", "--mask", s(&short)]),
        "--mask has shape",
    );
    let o = phaseflow(&[
        "estimate",
        "lorenz",
        "--observations",
        s(&obs),
        "--times",
        s(&times),
        "--fit",
        "rho=1:60",
    ]);
    assert_input_error(&o, "lorenz has 3 states");
    let missing = dir.join("missing.npy");
    let o = phaseflow(&[
        "estimate",
        "harmonic",
        "--observations",
        s(&missing),
        "--times",
        s(&times),
        "--fit",
        "w=0.1:3",
    ]);
    assert_input_error(&o, "--observations");
    assert!(!dir.join("fits").exists());

    // Ensemble files of the wrong width, a start outside its bounds, f32 asked for what it
    // cannot resolve, another command's run directory.
    let narrow = dir.join("u0.npy");
    write_npy(&narrow, &[3, 1], &[1.0f64; 3]).unwrap();
    assert_input_error(
        &base(&["--fit", "w=0.1:3", "--u0", s(&narrow)]),
        "has 1 columns but the system has 2 states",
    );
    let far = dir.join("far.npy");
    write_npy(&far, &[3, 1], &[1.0f64, 100.0, 1.0]).unwrap();
    assert_input_error(
        &base(&["--fit", "w=0.1:3", "--start", s(&far)]),
        "--start row 1, column 0 (w) is 100, outside its bounds",
    );
    assert_input_error(
        &base(&["--fit", "w=0.1:3", "--precision", "f32", "--rtol", "1e-12"]),
        "below what f32 resolves",
    );
    let sim = dir.join("sim");
    assert_input_error(
        &base(&["--fit", "w=0.1:3", "-o", s(&sim), "--overwrite"]),
        "holds another run",
    );
    assert!(!sim.join("estimates.npy").exists());
}

/// A trajectory with nothing observed is not "converged": it is underdetermined, with NaN
/// cost and covariance, and the others fit as before.
#[test]
fn a_trajectory_with_too_few_observations_is_underdetermined() {
    let dir = temp_dir("underdetermined");
    let (obs, times) = harmonic_observations(&dir);
    let (shape, mut values) = read_npy(&obs).unwrap();
    // Trajectory 1 observed once: fewer values than the two fitted quantities.
    for v in &mut values[40..80] {
        *v = f64::NAN;
    }
    values[41] = 0.5;
    write_npy(
        &obs,
        &shape.iter().map(|&d| d as u64).collect::<Vec<_>>(),
        &values,
    )
    .unwrap();
    let fits = dir.join("fits");
    let o = phaseflow(&[
        "estimate",
        "harmonic",
        "--observations",
        s(&obs),
        "--times",
        s(&times),
        "--fit",
        "w=0.1:3:0.9",
        "--fit",
        "x0=-5:5:0.5",
        "-o",
        s(&fits),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("1 underdetermined"), "{}", stdout(&o));
    let (_, status) = read_npy(&fits.join("fit_status.npy")).unwrap();
    assert_eq!(status, vec![1.0, 5.0, 1.0]);
    let (_, cost) = read_npy(&fits.join("cost.npy")).unwrap();
    assert!(
        cost[1].is_nan() && cost[0] < 1e-14 && cost[2] < 1e-14,
        "{cost:?}"
    );
    let (_, est) = read_npy(&fits.join("estimates.npy")).unwrap();
    assert_eq!(&est[2..4], &[0.9, 0.5]);
}

#[test]
fn simulate_writes_sensitivities_beside_the_states() {
    let dir = temp_dir("sens");
    let out = dir.join("run");
    let o = phaseflow(&[
        "simulate",
        "harmonic",
        "-n",
        "2",
        "--tspan",
        "0:2",
        "--solver",
        "tsit5",
        "--rtol",
        "1e-10",
        "--atol",
        "1e-10",
        "--precision",
        "f64",
        "--saveat",
        "0:0.5:2",
        "--sensitivities",
        "w,x0",
        "-q",
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (shape, sens) = read_npy(&out.join("sensitivities.npy")).unwrap();
    assert_eq!(shape, vec![5, 2, 2, 2]);
    // x = x0 cos(w t) (v0 = 0): dx/dw = -x0 t sin(w t), dx/dx0 = cos(w t); w = x0 = 1.
    for k in 0..5 {
        let t = 0.5 * k as f64;
        let at = |i: usize, c: usize| sens[((k * 2 + 1) * 2 + i) * 2 + c];
        assert!((at(0, 0) + t * t.sin()).abs() < 1e-8, "dx/dw at {t}");
        assert!((at(0, 1) - t.cos()).abs() < 1e-8, "dx/dx0 at {t}");
    }
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run["sensitivities"]["names"],
        serde_json::json!(["w", "x0"])
    );
}

#[test]
fn sensitivities_refuse_what_they_cannot_do() {
    let sim = |extra: &[&str]| {
        let mut a = vec!["simulate", "-n", "2", "--tspan", "0:1", "-q"];
        a.extend_from_slice(extra);
        phaseflow(&a)
    };
    assert_input_error(&sim(&["harmonic", "--sensitivities", "omega"]), "omega");
    assert_input_error(
        &sim(&["gbm", "--sensitivities", "mu"]),
        "--sensitivities are for ordinary differential equations",
    );
    assert_input_error(
        &sim(&["bouncing_ball", "--sensitivities", "e"]),
        "--sensitivities are not computed for systems with events",
    );
    let stiff = ["rober", "--solver", "rodas4", "--sensitivities", "k1"];
    let mut exclude = stiff.to_vec();
    exclude.extend(["--sensitivity-error", "exclude"]);
    assert_input_error(&sim(&exclude), "the stiff solvers control the error");
    assert!(sim(&stiff).status.success());
    assert_input_error(
        &sim(&[
            "harmonic",
            "--sensitivities",
            "w",
            "--outputs",
            "montecarlo",
            "-o",
            s(&temp_dir("sens-mc").join("out")),
        ]),
        "written beside the states (sensitivities.npy): add states to",
    );
    assert_input_error(
        &sim(&["harmonic", "--sensitivity-error", "exclude"]),
        "--sensitivities",
    );
}
