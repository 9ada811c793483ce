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

// ---- The library, config files and the review's fixes ----

use common::gpu;
use phaseflow::ode::orbit::{OrbitResult, run_orbit_diagram};
use phaseflow::ode::{RunOptions, Status, Tick};
use phaseflow::spec::{RunSpec, SpecError, load_system, orbit_problem};
use std::path::Path;

/// A small Rössler run (a = b = 0.2, maxima of x, f32 tsit5) as a config file.
const CONFIG: &str = r#"system = "rossler"
n = 6
sweep = { c = [2.5, 4.0] }
param = { a = 0.2, b = 0.2 }
transient = 50
points = 8

[orbit]
maxima = "x"
time = 60
tol = 1e-2
"#;

/// The same run as flags.
const FLAGS: [&str; 17] = [
    "orbit-diagram",
    "rossler",
    "-n",
    "6",
    "--sweep",
    "c=2.5:4",
    "--param",
    "a=0.2",
    "--param",
    "b=0.2",
    "--transient",
    "50",
    "--points",
    "8",
    "--maxima",
    "x",
    "--time=60",
];

fn cli(args: &[&str]) -> std::process::Output {
    let o = phaseflow(args);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

fn bytes(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap()
}

/// run.json without its timing, which differs from run to run.
fn summary_of(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("timing");
    v
}

const DATA: [&str; 5] = [
    "orbit.npy",
    "counts.npy",
    "distinct.npy",
    "params.npy",
    "status.npy",
];

#[test]
fn a_config_file_runs_as_its_flags_do_and_flags_override_it() {
    let dir = temp_dir("config");
    let config = dir.join("rossler.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let (by_file, by_flags) = (dir.join("file"), dir.join("flags"));
    let mut flags = FLAGS.to_vec();
    flags.extend(["--tol", "1e-2", "-q", "-o", by_flags.to_str().unwrap()]);
    cli(&flags);
    // The positional system may be left out: the file names it.
    let json = cli(&[
        "orbit-diagram",
        "--config",
        config.to_str().unwrap(),
        "-q",
        "--json",
        "-o",
        by_file.to_str().unwrap(),
    ]);
    for f in DATA.iter().chain(&["orbit.png"]) {
        assert!(
            bytes(&by_file, f) == bytes(&by_flags, f),
            "{f} differs between the config file and the flags"
        );
    }
    assert_eq!(summary_of(&by_file), summary_of(&by_flags));
    // --json prints run.json.
    let mut printed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    printed.as_object_mut().unwrap().remove("timing");
    assert_eq!(printed, summary_of(&by_file));
    let (shape, _) = read_npy(&by_file.join("orbit.npy")).unwrap();
    assert_eq!(shape, vec![6, 8]);

    // Flags laid over the file: fewer points and another range of c (SYSTEM given as well
    // as the file's is the flag's).
    let over = dir.join("over");
    cli(&[
        "orbit-diagram",
        "rossler",
        "--config",
        config.to_str().unwrap(),
        "--points",
        "4",
        "--sweep",
        "c=2.5:3",
        "-q",
        "-o",
        over.to_str().unwrap(),
    ]);
    let (shape, orbit) = read_npy(&over.join("orbit.npy")).unwrap();
    assert_eq!(shape, vec![6, 4]);
    let (_, params) = read_npy(&over.join("params.npy")).unwrap();
    assert_eq!((params[2], params[5 * 3 + 2]), (2.5, 3.0));
    assert_eq!(params[0], 0.2, "the file's --param a stays");
    // The first points at c = 2.5 agree with the file's own run there (its first row): the
    // same trajectory, the same bits.
    let (_, full) = read_npy(&by_file.join("orbit.npy")).unwrap();
    assert_eq!(orbit[0..4], full[0..4]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn config_mistakes_point_into_the_file() {
    let dir = temp_dir("config-bad");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let run = |p: &Path, extra: &[&str]| {
        let mut a = vec!["orbit-diagram", "--config", p.to_str().unwrap()];
        a.extend_from_slice(extra);
        phaseflow(&a)
    };
    // An unknown key of [orbit]: file:line:column and a caret under it.
    let p = write(
        "typo.toml",
        "system = \"rossler\"\n\n[orbit]\nmaxim = \"x\"\n",
    );
    let o = run(&p, &[]);
    assert_input_error(&o, "typo.toml:4:1");
    assert!(
        stderr(&o).contains("unknown field `maxim`"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("\n  | ^^^^^"), "{}", stderr(&o));
    // A run-config key orbit-diagram does not read, named as the file names it.
    let p = write(
        "saveat.toml",
        "system = \"rossler\"\nsaveat = \"0:1:10\"\nsweep = { c = [2, 5] }\n[orbit]\nmaxima = \"x\"\n",
    );
    assert_input_error(
        &run(&p, &["-n", "2"]),
        "saveat.toml: saveat chooses a simulation's save times; an orbit diagram does not read it",
    );
    // Another command's table.
    let p = write(
        "lyap.toml",
        "system = \"rossler\"\nsweep = { c = [2, 5] }\n[lyapunov]\nk = 2\n",
    );
    assert_input_error(
        &run(&p, &["-n", "2", "--maxima", "x"]),
        "lyap.toml: lyapunov holds the keys of `phaseflow lyapunov`",
    );
    // A key of [orbit] named as the file names it, a flag as a flag.
    let p = write(
        "observe.toml",
        "system = \"rossler\"\nsweep = { c = [2, 5] }\nn = 2\nsection = \"z = 1\"\n[orbit]\nobserve = \"q\"\n",
    );
    assert_input_error(
        &run(&p, &[]),
        "observe.toml: orbit.observe = \"q\": rossler has no state 'q'",
    );
    assert_input_error(
        &run(&p, &["--observe", "w"]),
        "--observe w: rossler has no state 'w'",
    );
    // No system anywhere.
    let p = write("nosystem.toml", "n = 2\n");
    assert_input_error(&run(&p, &[]), "give SYSTEM");
    let _ = std::fs::remove_dir_all(dir);
}

/// The problem the CONFIG file describes, through the library.
fn config_problem(dir: &Path) -> phaseflow::ode::orbit::OrbitProblem {
    let config = dir.join("rossler.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let spec = RunSpec::from_file(&config).unwrap();
    orbit_problem(load_system("rossler").unwrap(), &spec).unwrap()
}

#[test]
fn the_library_writes_what_the_cli_writes() {
    let dir = temp_dir("library");
    let problem = config_problem(&dir);
    let r: OrbitResult = run_orbit_diagram(gpu(), &problem, &RunOptions::default()).unwrap();
    let out = dir.join("cli");
    let mut flags = FLAGS.to_vec();
    flags.extend(["--tol", "1e-2", "-q", "-o", out.to_str().unwrap()]);
    cli(&flags);
    let (shape, orbit) = read_npy(&out.join("orbit.npy")).unwrap();
    assert_eq!(shape, vec![6, 8]);
    for (j, pts) in r.diagram.points.iter().enumerate() {
        for (i, &v) in orbit[j * 8..(j + 1) * 8].iter().enumerate() {
            match pts.get(i) {
                Some(p) => assert_eq!(p.to_bits(), v.to_bits(), "row {j}, point {i}"),
                None => assert!(v.is_nan()),
            }
        }
    }
    let as_f64 = |v: &[u32]| v.iter().map(|&c| c as f64).collect::<Vec<_>>();
    assert_eq!(
        as_f64(&r.counts),
        read_npy(&out.join("counts.npy")).unwrap().1
    );
    assert_eq!(
        as_f64(&r.distinct),
        read_npy(&out.join("distinct.npy")).unwrap().1
    );
    assert_eq!(r.params, read_npy(&out.join("params.npy")).unwrap().1);
    let codes: Vec<f64> = r.status.iter().map(|&s| s as u8 as f64).collect();
    assert_eq!(codes, read_npy(&out.join("status.npy")).unwrap().1);
    assert!(r.status.iter().all(|&s| s == Status::Success));
    // The swept values are params.npy's c column, low to high.
    let c: Vec<f64> = r.params.chunks(3).map(|row| row[2]).collect();
    assert_eq!(r.diagram.values, c);
    assert_eq!((c[0], c[5]), (2.5, 4.0));
    let mut summary = r.summary_json(&problem);
    summary.as_object_mut().unwrap().remove("timing");
    assert_eq!(summary, summary_of(&out));
    assert_eq!(summary["completed"], 6);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cancelling_stops_after_the_work_in_flight() {
    let dir = temp_dir("cancel");
    let mut spec = RunSpec::from_file(&{
        let p = dir.join("rossler.toml");
        std::fs::write(&p, CONFIG).unwrap();
        p
    })
    .unwrap();
    spec.n = Some(96);
    let problem = orbit_problem(load_system("rossler").unwrap(), &spec).unwrap();
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = cancel.clone();
    let mut options = RunOptions {
        cancel: Some(cancel),
        // Stop as soon as any work is done.
        progress: Some(phaseflow::ode::ProgressHook::new(move |t| {
            if matches!(t, Tick::Done(_)) {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        })),
        ..RunOptions::default()
    };
    options.caps.max_chunk = Some(4);
    let r = run_orbit_diagram(gpu(), &problem, &options).unwrap();
    let done = r.stats.completed;
    assert!(done > 0 && done < 96, "completed {done} of 96");
    for j in 0..96 {
        if j < done {
            assert_eq!(
                (r.counts[j], r.status[j]),
                (8, Status::Success),
                "trajectory {j}"
            );
        } else {
            assert_eq!(
                (r.counts[j], r.status[j]),
                (0, Status::Running),
                "trajectory {j}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn spec_errors_name_their_keys() {
    let system = || load_system("rossler").unwrap();
    let spec = |toml_text: &str| -> RunSpec { toml::from_str(toml_text).unwrap() };
    let field = |text: &str| match orbit_problem(system(), &spec(text)) {
        Err(SpecError::Field(f)) => f,
        other => panic!("{text}: {other:?}"),
    };
    let base = "n = 2\nsweep = { c = [2, 5] }\n";
    for (text, key) in [
        ("n = 2\n[orbit]\nmaxima = \"x\"\n", "sweep"),
        (base, "section"),
        (
            &format!("{base}[orbit]\nmaxima = \"w\"\n") as &str,
            "orbit.maxima",
        ),
        (&format!("{base}section = \"z = 1\"\n"), "orbit.observe"),
        (
            &format!("{base}points = 0\n[orbit]\nmaxima = \"x\"\n"),
            "points",
        ),
        (
            &format!("{base}[orbit]\nmaxima = \"x\"\ntol = -1\n"),
            "orbit.tol",
        ),
        (
            &format!("{base}tspan = [0, 10]\n[orbit]\nmaxima = \"x\"\ntime = 5\n"),
            "orbit.time",
        ),
        (
            "n = 2\nsweep = { c = [6, 2] }\n[orbit]\nmaxima = \"x\"\n",
            "sweep.c",
        ),
        (
            &format!("{base}events = 4\n[orbit]\nmaxima = \"x\"\n"),
            "events",
        ),
        (
            &format!("{base}solver = \"rodas5p\"\n[orbit]\nmaxima = \"x\"\n"),
            "solver",
        ),
    ] {
        assert_eq!(field(text).field, key, "{text}");
    }
}

#[test]
fn review_fixes_help_reversed_sweeps_and_still_sections() {
    // The help says what is accepted: one sweep, no --params.
    let help = stdout(&cli(&["orbit-diagram", "--help"]));
    assert!(!help.contains("--params"), "{help}");
    assert!(!help.contains("given twice"), "{help}");
    assert!(help.contains("one parameter, given once"), "{help}");
    assert!(help.contains("--config"), "{help}");
    let base = ["orbit-diagram", "rossler", "-n", "2"];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        phaseflow(&a)
    };
    // A sweep from high to low is refused, with the range the right way round.
    assert_input_error(
        &with(&["--sweep", "c=6:2", "--maxima", "x"]),
        "--sweep c runs from 6 down to 2; an orbit diagram's parameter runs upwards",
    );
    assert_input_error(
        &with(&["--sweep", "c=6:2:5", "--maxima", "x"]),
        "give it as c=2:6:5",
    );
    // A section that cannot change along an orbit, pointed at.
    for section in ["1 = 2", "a = c"] {
        let o = with(&["--sweep", "c=2:5", "--section", section, "--observe", "x"]);
        assert_input_error(&o, "this section depends on neither the state nor t");
        assert!(
            stderr(&o).contains(&format!("1 | {section}\n  | ^^^^^")),
            "{}",
            stderr(&o)
        );
    }
    // t alone moves (a stroboscopic section): accepted.
    let o = phaseflow(&[
        "orbit-diagram",
        "rossler",
        "-n",
        "2",
        "--sweep",
        "c=2:5",
        "--section",
        "t = 60.5",
        "--observe",
        "x",
        "--transient",
        "50",
        "--time",
        "20",
        "--json",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["trajectories_with_k_points"], 0);
    assert_eq!(
        s["distinct_values"]["by_count"][0]["trajectories"], 2,
        "{s}"
    );
}
