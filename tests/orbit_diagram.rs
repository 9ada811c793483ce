//! `phaseflow orbit-diagram`: the Rössler period-doubling cascade counted from the maxima of
//! x, a Lorenz section, the files a run writes, and one clear message for each misuse.
//!
//! The Rössler counts are the classic ones for a = b = 0.1 (period 1 at c = 4, 2 at 6, 4 at
//! 8.5, chaos at 9, the period-3 window at 12 and its doubling to 6 at 12.6, chaos at 13
//! and 18; e.g. K. T. Alligood, T. D. Sauer, J. A. Yorke, Chaos: An Introduction to
//! Dynamical Systems, Springer 1996, figures 9.8 and 9.9; Wikipedia "Rössler attractor")
//! and for a = b = 0.2 (1 at c = 2.5, 2 at 3.5, 4 at 4, chaos at 5), checked beforehand
//! with SciPy's solve_ivp (DOP853, rtol 1e-10) at the same tolerance on distinct values.
//! Near the period-8 bifurcation (c ≈ 8.6) the orbit at c = 8.5 converges slowly: after a
//! transient of 800 two of its branches are still split by 1e-3, after 1500 they agree.

mod common;

use common::cli::{assert_input_error, phaseflow, stderr, stdout, temp_dir};
use phaseflow::io::npy::read_npy;

/// `phaseflow orbit-diagram rossler` with maxima of x, f64 tsit5 at 1e-8, into `out`;
/// returns (params rows, distinct counts, orbit rows).
fn rossler(extra: &[&str], out: &std::path::Path) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut args = vec![
        "orbit-diagram",
        "rossler",
        "--maxima",
        "x",
        "--transient",
        "1500",
        "--time",
        "600",
        "--points",
        "64",
        "--precision",
        "f64",
        "--rtol",
        "1e-8",
        "--atol",
        "1e-8",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = phaseflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, params) = read_npy(&out.join("params.npy")).unwrap();
    let (_, distinct) = read_npy(&out.join("distinct.npy")).unwrap();
    let (_, orbit) = read_npy(&out.join("orbit.npy")).unwrap();
    (params, distinct, orbit)
}

#[test]
fn rossler_period_doubling_with_a_and_b_0_1() {
    let dir = temp_dir("rossler01");
    let out = dir.join("run");
    // c = 4, 4.1, ..., 18: every value below on the grid.
    let (params, distinct, orbit) = rossler(
        &[
            "--param",
            "a=0.1",
            "--param",
            "b=0.1",
            "--sweep",
            "c=4:18:141",
        ],
        &out,
    );
    let at = |c: f64| {
        let j = ((c - 4.0) * 10.0).round() as usize;
        assert!(
            (params[j * 3 + 2] - c).abs() < 1e-12,
            "{}",
            params[j * 3 + 2]
        );
        distinct[j]
    };
    for (c, want) in [(4.0, 1.0), (6.0, 2.0), (8.5, 4.0), (12.0, 3.0), (12.6, 6.0)] {
        assert_eq!(at(c), want, "c = {c}");
    }
    for c in [13.0, 18.0] {
        assert!(at(c) > 30.0, "c = {c}: {} distinct maxima", at(c));
    }
    // The period-1 maximum at c = 4 (SciPy: 6.9278), and every row full.
    let j = 0;
    assert!((orbit[j * 64] - 6.9278).abs() < 1e-3, "{}", orbit[j * 64]);
    let (_, counts) = read_npy(&out.join("counts.npy")).unwrap();
    assert!(counts.iter().all(|&c| c == 64.0), "{counts:?}");
    // The picture exists and is a PNG of the usual size.
    let png = image::open(out.join("orbit.png")).unwrap();
    assert_eq!((png.width(), png.height()), (960, 720));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["points"]["kind"], "maxima");
    assert_eq!(run["points"]["section"], "-y - z = 0");
    assert_eq!(run["precision"], "f64");
    assert_eq!(run["tspan"], serde_json::json!([0.0, 2100.0]));
    assert_eq!(run["method"]["rtol"], 1e-8);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn rossler_period_doubling_with_a_and_b_0_2() {
    let dir = temp_dir("rossler02");
    let out = dir.join("run");
    let (params, distinct, _) = rossler(&["--sweep", "c=2.5:5:11"], &out);
    let at = |c: f64| {
        let j = ((c - 2.5) * 4.0).round() as usize;
        assert!((params[j * 3 + 2] - c).abs() < 1e-12);
        distinct[j]
    };
    assert_eq!(at(2.5), 1.0);
    assert_eq!(at(3.5), 2.0);
    assert_eq!(at(4.0), 4.0);
    assert!(at(5.0) > 30.0, "{}", at(5.0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_lorenz_section_observes_a_state_at_the_crossings() {
    let dir = temp_dir("lorenz");
    let out = dir.join("run");
    let o = phaseflow(&[
        "orbit-diagram",
        "lorenz",
        "--sweep",
        "rho=28:28.5:3",
        "--section",
        "z = 27",
        "--direction",
        "up",
        "--observe",
        "z",
        "--transient",
        "10",
        "--time",
        "20",
        "--points",
        "200",
        "--precision",
        "f64",
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("z at z = 27 (up)"), "{}", stdout(&o));
    let (shape, orbit) = read_npy(&out.join("orbit.npy")).unwrap();
    assert_eq!(shape, vec![3, 200]);
    let (_, counts) = read_npy(&out.join("counts.npy")).unwrap();
    for j in 0..3 {
        // Lorenz turns about 1.3 times per unit time; each turn round a wing crosses z = 27
        // upwards once: some 20 crossings in 20 time units, fewer than K.
        let c = counts[j] as usize;
        assert!((10..60).contains(&c), "{counts:?}");
        for r in 0..200 {
            let v = orbit[j * 200 + r];
            if r < c {
                assert!((v - 27.0).abs() < 1e-9, "on the section: {v}");
            } else {
                assert!(v.is_nan(), "past the count: {v}");
            }
        }
        // Every point on the section is one value.
        let (_, distinct) = read_npy(&out.join("distinct.npy")).unwrap();
        assert_eq!(distinct[j], 1.0);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn misuse_gets_one_clear_message() {
    let base = ["orbit-diagram", "rossler", "-n", "2"];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        phaseflow(&a)
    };
    assert_input_error(&with(&["--maxima", "x"]), "give --sweep PARAM=LO:HI");
    assert_input_error(
        &with(&["--sweep", "c=2:5"]),
        "give --section EQUATION (e.g. --section \"z = 27\") or --maxima STATE",
    );
    assert_input_error(
        &with(&["--sweep", "c=2:5", "--maxima", "x", "--section", "z = 1"]),
        "give either --section EQUATION or --maxima STATE, not both",
    );
    assert_input_error(
        &with(&["--sweep", "c=2:5", "--maxima", "w"]),
        "--maxima w: rossler has no state 'w'",
    );
    assert_input_error(
        &with(&["--sweep", "c=2:5", "--maxima", "x", "--observe", "zz"]),
        "did you mean 'z'?",
    );
    assert_input_error(
        &with(&["--sweep", "c=2:5", "--section", "z = 1"]),
        "give --observe STATE",
    );
    assert_input_error(
        &with(&["--sweep", "c=2:5", "--maxima", "x", "--points", "0"]),
        "--points must be at least 1",
    );
    assert_input_error(
        &with(&["--sweep", "x=2:5", "--maxima", "x"]),
        "--sweep x: rossler has no parameter 'x'",
    );
    assert_input_error(
        &with(&["--sweep", "c=2:5:3", "--sweep", "a=0:1:3", "--maxima", "x"]),
        "sweeps one parameter",
    );
    assert_input_error(
        &with(&["--sweep", "c=2:5", "--maxima", "x", "--direction", "up"]),
        "--direction applies to --section",
    );
    assert_input_error(
        &with(&[
            "--sweep",
            "c=2:5",
            "--section",
            "z = 1",
            "--observe",
            "x",
            "--direction",
            "sideways",
        ]),
        "sideways",
    );
    assert_input_error(
        &with(&["--sweep", "c=2:5", "--section", "z = = 1", "--observe", "x"]),
        "--section",
    );
    assert_input_error(
        &with(&[
            "--sweep",
            "c=2:5",
            "--maxima",
            "x",
            "--tspan",
            "0:10",
            "--transient",
            "20",
        ]),
        "leaves no time after the transient",
    );
    assert_input_error(
        &with(&["--sweep", "c=2:5", "--maxima", "x", "--solver", "rodas5p"]),
        "--solver rodas5p: the points are located as events",
    );
    assert_input_error(
        &with(&["--sweep", "c=2:5", "--maxima", "x", "--overwrite"]),
        "give -o DIR",
    );
    let o = phaseflow(&[
        "orbit-diagram",
        "rossler",
        "-n",
        "100000000",
        "--sweep",
        "c=2:5",
        "--maxima",
        "x",
        "--points",
        "65536",
    ]);
    assert_input_error(&o, "lower -n or --points");
}

#[test]
fn results_already_there_need_overwrite() {
    let dir = temp_dir("overwrite");
    let out = dir.join("run");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("orbit.npy"), b"old").unwrap();
    let o = phaseflow(&[
        "orbit-diagram",
        "rossler",
        "-n",
        "2",
        "--sweep",
        "c=2:5",
        "--maxima",
        "x",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_input_error(&o, "give --overwrite");
    assert_eq!(std::fs::read(out.join("orbit.npy")).unwrap(), b"old");
    let _ = std::fs::remove_dir_all(dir);
}
