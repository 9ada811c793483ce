//! Basins of attraction on small grids, against what the systems' geometry says: the
//! double-well Duffing oscillator's two wells and their point symmetry, a stable fixed point
//! inside an unstable cycle inside a stable one (basins a disc and the rest of the plane),
//! classification by an expression, labels independent of chunking, and the command line.

mod common;
use common::cli::{assert_input_error, phaseflow, stdout, temp_dir};
use common::gpu;
use phaseflow::model::System;
use phaseflow::ode::basins::{
    self, BasinsProblem, BasinsResult, DIVERGED, Match, Method, run_basins,
};
use phaseflow::ode::{
    AdaptiveProblem, Axis, Control, Ensemble, InitialStates, Precision, Problem, RunOptions,
    SaveAt, Solver, Tolerance,
};
use phaseflow::schedule::PlanCaps;

const DOUBLE_WELL: &str = "dx = v\ndv = -delta*v + x - x^3";

fn double_well() -> System {
    System::from_equations(
        "double_well",
        &[("x", 0.0), ("v", 0.0)],
        &[("delta", 0.2)],
        DOUBLE_WELL,
    )
    .unwrap()
}

/// r' = r (r − 1)(2 − r), θ' = 1 in Cartesian form: the origin is stable, r = 1 an unstable
/// cycle, r = 2 a stable one; the origin's basin is the open unit disc.
fn rings() -> System {
    System::from_equations(
        "rings",
        &[("x", 0.0), ("y", 0.0)],
        &[],
        "dx = x*(sqrt(x^2 + y^2) - 1)*(2 - sqrt(x^2 + y^2)) - y\n\
         dy = y*(sqrt(x^2 + y^2) - 1)*(2 - sqrt(x^2 + y^2)) + x",
    )
    .unwrap()
}

/// A `count` × `count` grid over the two states, [-half, half] each, Tsit5 in f32 from 0 to
/// `t1`, the window's saves set for `method`.
fn problem(system: System, half: f64, count: usize, t1: f64, method: Method) -> BasinsProblem {
    let mut ensemble = Ensemble::new(&system, count * count);
    ensemble.initial = InitialStates::Grid(vec![
        Axis::grid(1, -half, half, count),
        Axis::grid(0, -half, half, count),
    ]);
    let mut run = Problem::Adaptive(AdaptiveProblem {
        system,
        solver: Solver::Tsit5,
        t0: 0.0,
        t1,
        saveat: SaveAt::Final,
        control: Control {
            rtol: Tolerance::All(1e-6),
            atol: Tolerance::All(1e-6),
            ..Control::default()
        },
        ensemble,
        precision: Precision::F32,
    });
    let window = match &method {
        Method::Features { window, .. } => *window,
        Method::Expression(_) => 0.0,
    };
    basins::save_window(&mut run, window, 200).unwrap();
    BasinsProblem {
        run,
        method,
        max_attractors: 8,
    }
}

fn features(window: f64) -> Method {
    Method::Features {
        window,
        tol: Match::default(),
        escape: None,
    }
}

/// Whether grid point (ix, iy) has a 4-neighbour with another label.
fn on_boundary(r: &BasinsResult, ix: usize, iy: usize) -> bool {
    let (nx, ny) = (r.grid.nx() as i64, r.grid.ny() as i64);
    let here = r.label(ix, iy);
    [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)]
        .iter()
        .any(|(dx, dy)| {
            let (x, y) = (ix as i64 + dx, iy as i64 + dy);
            (0..nx).contains(&x) && (0..ny).contains(&y) && r.label(x as usize, y as usize) != here
        })
}

/// 40 × 40 points over [-2, 2]² (no point at the saddle), δ = 0.2, t = 0..100 (the wells
/// contract at δ/2: e^-10 of the distance is left), window 10.
fn duffing_result(options: &RunOptions) -> BasinsResult {
    let p = problem(double_well(), 2.0, 40, 100.0, features(10.0));
    basins::run_basins(gpu(), &p, options).unwrap()
}

#[test]
fn double_well_has_two_symmetric_basins_around_its_wells() {
    let r = duffing_result(&RunOptions::default());
    assert_eq!(r.attractors.len(), 2, "{:?}", r.attractors);
    assert_eq!(r.diverged, 0);
    // Numbered by their features: the left well (x = −1) first. Both are fixed points:
    // window minimum = maximum = the well, v = 0.
    for (a, x) in r.attractors.iter().zip([-1.0, 1.0]) {
        let f = &a.features; // [min x, min v, max x, max v]
        for (got, want) in f.iter().zip([x, 0.0, x, 0.0]) {
            assert!((got - want).abs() < 1e-3, "{f:?}");
        }
        assert!((a.final_state[0] - x).abs() < 1e-3);
    }
    let (nx, ny) = (r.grid.nx(), r.grid.ny());
    // Energy E = v²/2 − x²/2 + x⁴/4 only falls, so a point below the saddle's level (E < 0)
    // stays in the well it starts in, on the side of sign(x).
    let mut inside = 0;
    for iy in 0..ny {
        for ix in 0..nx {
            let (x, v) = (r.grid.x_at(ix), r.grid.y_at(iy));
            let e = v * v / 2.0 - x * x / 2.0 + x.powi(4) / 4.0;
            if e < -1e-3 {
                inside += 1;
                assert_eq!(r.label(ix, iy), i32::from(x > 0.0), "({x}, {v})");
            }
        }
    }
    assert!(inside > 100, "{inside}");
    // (x, v) → (−x, −v) maps the system to itself and one well to the other: the mirrored
    // point has the other label, except where f32 rounding decides a point next to the
    // boundary (the saddle's stable manifold).
    let mut mismatched = 0;
    for iy in 0..ny {
        for ix in 0..nx {
            let (a, b) = (r.label(ix, iy), r.label(nx - 1 - ix, ny - 1 - iy));
            if a != 1 - b {
                mismatched += 1;
                assert!(on_boundary(&r, ix, iy), "({ix}, {iy}): {a} vs {b}");
            }
        }
    }
    assert!(mismatched <= 8, "{mismatched}");
    let f = r.fractions();
    assert!(
        (f[0] - 0.5).abs() <= mismatched as f64 / 1600.0 + 1e-12,
        "{f:?}"
    );
    assert!((f[0] + f[1] - 1.0).abs() < 1e-12);
}

#[test]
fn labels_do_not_depend_on_chunks_or_batches() {
    let whole = duffing_result(&RunOptions::default());
    let options = RunOptions {
        caps: PlanCaps {
            max_chunk: Some(97),
            max_slots_per_batch: Some(7),
            ..PlanCaps::default()
        },
        ..RunOptions::default()
    };
    let cut = duffing_result(&options);
    assert!(cut.stats.chunks > 10, "{}", cut.stats.chunks);
    assert_eq!(cut.labels, whole.labels);
    assert_eq!(cut.attractors, whole.attractors);
}

#[test]
fn fixed_point_inside_a_limit_cycle_gets_the_unit_disc() {
    // 40 × 40 points over [-2.5, 2.5]²; t = 0..40 (a point 1e-3 off r = 1 leaves it in about
    // 7 time units), window 10 ≥ one turn (2π), 200 saves in it: the cycle's sampled extremes
    // are within 2(1 − cos 0.025) ≈ 6e-4 of ±2.
    let p = problem(rings(), 2.5, 40, 40.0, features(10.0));
    let r = run_basins(gpu(), &p, &RunOptions::default()).unwrap();
    assert_eq!(r.attractors.len(), 2, "{:?}", r.attractors);
    assert_eq!(r.diverged, 0);
    // Sorted by min x: the cycle (−2) before the fixed point (0).
    let (cycle, point) = (&r.attractors[0], &r.attractors[1]);
    for (got, want) in cycle.features.iter().zip([-2.0, -2.0, 2.0, 2.0]) {
        assert!((got - want).abs() < 2e-3, "{:?}", cycle.features);
    }
    assert!(
        point.features.iter().all(|v| v.abs() < 1e-3),
        "{:?}",
        point.features
    );
    let mut disc = 0;
    for iy in 0..40 {
        for ix in 0..40 {
            let radius = r.grid.x_at(ix).hypot(r.grid.y_at(iy));
            assert!(
                (radius - 1.0).abs() > 1e-3,
                "a grid point sits on the unstable cycle"
            );
            let want = if radius < 1.0 { 1 } else { 0 };
            disc += want as usize;
            assert_eq!(r.label(ix, iy), want, "r = {radius}");
        }
    }
    assert_eq!(point.count, disc);
    // The disc's area over the square's: π / 25, to the grid's resolution.
    assert!(
        (point.fraction - std::f64::consts::PI / 25.0).abs() < 0.01,
        "{}",
        point.fraction
    );
    // A smooth boundary: 5 × 5 boxes on it hold two labels, never above ln 2.
    let e = r.entropy(5);
    assert_eq!(e.boxes, 64);
    assert!(e.boundary_boxes > 0 && !e.fractal(), "{e:?}");
}

#[test]
fn fixed_steps_in_f64_find_the_same_disc() {
    // RK4 has no save times of its own: the window is covered by saving every k-th step of
    // the whole run, and only the saves inside it count.
    let mut p = problem(rings(), 2.5, 40, 40.0, features(10.0));
    let Problem::Adaptive(a) = &p.run else {
        unreachable!()
    };
    p.run = Problem::Fixed(phaseflow::ode::FixedStepProblem {
        system: a.system.clone(),
        solver: Solver::Rk4,
        grid: phaseflow::ode::TimeGrid::from_span(0.0, 40.0, 0.01).unwrap(),
        save: phaseflow::ode::Save::Final,
        ensemble: a.ensemble.clone(),
        precision: Precision::F64,
    });
    basins::save_window(&mut p.run, 10.0, 200).unwrap();
    let times = p.check().unwrap();
    // Every 5th of 4,000 steps and the initial state; 201 of them in [30, 40].
    assert_eq!(times.len(), 801);
    assert_eq!(times.iter().filter(|&&t| t >= 30.0).count(), 201);
    let r = run_basins(gpu(), &p, &RunOptions::default()).unwrap();
    assert_eq!(r.attractors.len(), 2, "{:?}", r.attractors);
    for iy in 0..40 {
        for ix in 0..40 {
            let radius = r.grid.x_at(ix).hypot(r.grid.y_at(iy));
            assert_eq!(r.label(ix, iy), i32::from(radius < 1.0), "r = {radius}");
        }
    }
}

#[test]
fn an_expression_classifies_like_the_features_do() {
    let system = double_well();
    let sign = basins::expression(&system, "sign(x)", "classify").unwrap();
    let p = problem(system, 2.0, 40, 100.0, Method::Expression(sign));
    let r = run_basins(gpu(), &p, &RunOptions::default()).unwrap();
    let values: Vec<f64> = r.attractors.iter().map(|a| a.features[0]).collect();
    assert_eq!(values, [-1.0, 1.0]);
    let features = duffing_result(&RunOptions::default());
    assert_eq!(r.labels, features.labels);
    assert!(r.labels.iter().all(|&l| l != DIVERGED));
}

#[test]
fn escaping_and_unsettled_trajectories_are_reported() {
    // x' = x: everything but the x = 0 column runs away. With an escape radius they diverge;
    // the column stays put at its own (different) points, more than the limit allows.
    let system =
        System::from_equations("runaway", &[("x", 0.0), ("y", 0.0)], &[], "dx = x\ndy = 0")
            .unwrap();
    let mut p = problem(
        system,
        1.0,
        5,
        10.0,
        Method::Features {
            window: 1.0,
            tol: Match::default(),
            escape: Some(100.0),
        },
    );
    p.max_attractors = 10;
    let r = run_basins(gpu(), &p, &RunOptions::default()).unwrap();
    assert_eq!(r.diverged, 20);
    assert_eq!(r.attractors.len(), 5); // (0, y) for 5 values of y
    p.max_attractors = 3;
    let e = run_basins(gpu(), &p, &RunOptions::default()).unwrap_err();
    assert!(e.to_string().starts_with("more than 3 attractors"), "{e}");
}

fn write_system(dir: &std::path::Path) -> String {
    let path = dir.join("double_well.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"double_well\"\nstates = {{ x = 0.0, v = 0.0 }}\nparameters = {{ delta = 0.2 \
             }}\ntspan = [0.0, 100.0]\nequations = \"\"\"\n{DOUBLE_WELL}\n\"\"\"\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn the_command_writes_labels_attractors_and_a_picture() {
    let dir = temp_dir("cli");
    let system = write_system(&dir);
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let args = [
        "basins",
        &system,
        "--grid",
        "x=-2:2:20",
        "--grid",
        "v=-2:2:16",
        "--window",
        "10",
        "-q",
        "-o",
        o,
    ];
    let run = phaseflow(&args);
    assert!(run.status.success(), "{}", common::cli::stderr(&run));
    let text = stdout(&run);
    assert!(text.contains("2 attractors"), "{text}");
    assert_eq!(text.matches("fixed point at x = ").count(), 2, "{text}");
    let (labels, shape) = read_i32(&out.join("basins.npy"));
    assert_eq!(shape, [16, 20]);
    // Row k is v's k-th value, column j is x's: points below the saddle's energy are in
    // the well of their side (see the library test above).
    for (k, &label) in labels.iter().enumerate() {
        let (x, v) = (
            -2.0 + 4.0 * (k % 20) as f64 / 19.0,
            -2.0 + 4.0 * (k / 20) as f64 / 15.0,
        );
        if v * v / 2.0 - x * x / 2.0 + x.powi(4) / 4.0 < -1e-3 {
            assert_eq!(label, i32::from(x > 0.0), "({x}, {v})");
        }
    }
    assert!(labels.iter().all(|&l| l == 0 || l == 1));
    let (finals, k) = phaseflow::io::read_matrix(&out.join("attractors.npy"))
        .map(|(d, r, _)| (d, r))
        .unwrap();
    assert_eq!(k, 2);
    assert!(
        (finals[0] + 1.0).abs() < 1e-3 && (finals[2] - 1.0).abs() < 1e-3,
        "{finals:?}"
    );
    let png = image::open(out.join("basins.png")).unwrap();
    assert!(png.width() > 500 && png.height() > 500);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("basins.json")).unwrap()).unwrap();
    let f: f64 = json["attractors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["fraction"].as_f64().unwrap())
        .sum();
    assert!((f - 1.0).abs() < 1e-12);
    // A second run into the same directory is refused without --overwrite.
    assert_input_error(&phaseflow(&args), "already holds basins");

    // --classify: the same labels from sign(x).
    let out2 = dir.join("classified");
    let classified = phaseflow(&[
        "basins",
        &system,
        "--grid",
        "x=-2:2:20",
        "--grid",
        "v=-2:2:16",
        "--classify",
        "sign(x)",
        "-q",
        "-o",
        out2.to_str().unwrap(),
    ]);
    assert!(
        classified.status.success(),
        "{}",
        common::cli::stderr(&classified)
    );
    assert_eq!(read_i32(&out2.join("basins.npy")).0, labels);
}

#[test]
fn bad_flags_get_one_clear_message() {
    let dir = temp_dir("errors");
    let system = write_system(&dir);
    let s = system.as_str();
    let cases: [(&[&str], &str); 7] = [
        (
            &["basins", s, "--grid", "x=-2:2:20"],
            "give --grid exactly twice",
        ),
        (
            &["basins", s, "--grid", "x=-2:2:20", "--grid", "x=0:1:3"],
            "given twice",
        ),
        (
            &["basins", s, "--grid", "x=-2:2:20", "--grid", "q=0:1:3"],
            "'q' is not a state",
        ),
        (
            &["basins", s, "--grid", "x=-2:2:2.5", "--grid", "v=0:1:3"],
            "whole number",
        ),
        (
            &[
                "basins",
                s,
                "--grid",
                "x=-2:2:4",
                "--grid",
                "v=0:1:3",
                "--classify",
                "sign(z)",
            ],
            "unknown name 'z'",
        ),
        (
            &[
                "basins", s, "--grid", "x=-2:2:4", "--grid", "v=0:1:3", "--window", "500",
            ],
            "longer than the run",
        ),
        (
            &[
                "basins",
                s,
                "--grid",
                "x=-2:2:4",
                "--grid",
                "v=0:1:3",
                "--classify",
                "x",
                "--window",
                "3",
            ],
            "--window applies",
        ),
    ];
    for (args, message) in cases {
        assert_input_error(&phaseflow(args), message);
    }
}

/// An i32 .npy's values and shape.
fn read_i32(path: &std::path::Path) -> (Vec<i32>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let head = String::from_utf8_lossy(&bytes[10..10 + header]).into_owned();
    assert!(head.contains("'<i4'"), "{head}");
    let shape: Vec<usize> = head
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data = bytes[10 + header..]
        .chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (data, shape)
}
