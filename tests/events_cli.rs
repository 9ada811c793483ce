//! `phaseflow simulate` with events: events.npy and event_counts.npy, sections, the summary,
//! and one clear message for each misuse.

mod common;

use common::cli::{assert_input_error, phaseflow, stdout, temp_dir};
use phaseflow::io::npy::read_npy;

#[test]
fn a_system_file_with_events_writes_its_log() {
    let dir = temp_dir("ball");
    let out = dir.join("run");
    let o = phaseflow(&[
        "simulate",
        "bouncing_ball",
        "-n",
        "3",
        "--events",
        "5",
        "--precision",
        "f64",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::cli::stderr(&o));
    assert!(stdout(&o).contains("events   "), "{}", stdout(&o));
    let (shape, records) = read_npy(&out.join("events.npy")).unwrap();
    assert_eq!(shape, vec![3, 5, 4]);
    let (shape, counts) = read_npy(&out.join("event_counts.npy")).unwrap();
    assert_eq!(shape, vec![3]);
    // Dropped from 1 m with e = 0.8: impacts at 0.4515 s, then every 2·0.8^k·v1/g, six
    // of them before t = 3 (0.45, 1.17, 1.75, 2.21, 2.58, 2.88); five kept.
    assert_eq!(counts, vec![6.0; 3]);
    let t1 = (2.0f64 / 9.81).sqrt();
    assert!((records[0] - t1).abs() < 1e-9, "{}", records[0]);
    assert_eq!(records[1], 0.0);
    // --overwrite knows the event files as a run's own: the same run replaces them.
    let again = phaseflow(&[
        "simulate",
        "bouncing_ball",
        "-n",
        "2",
        "--events",
        "5",
        "-q",
        "--overwrite",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", common::cli::stderr(&again));
    let (shape, _) = read_npy(&out.join("events.npy")).unwrap();
    assert_eq!(shape, vec![2, 5, 4]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_section_records_points_after_the_transient() {
    let dir = temp_dir("section");
    let out = dir.join("run");
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "4",
        "--section",
        "z = 27",
        "--direction",
        "up",
        "--transient",
        "5",
        "--points",
        "3",
        "--tspan",
        "0:20",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::cli::stderr(&o));
    let (shape, records) = read_npy(&out.join("events.npy")).unwrap();
    assert_eq!(shape, vec![4, 3, 5]);
    let (_, counts) = read_npy(&out.join("event_counts.npy")).unwrap();
    for j in 0..4 {
        assert!(counts[j] > 3.0, "{counts:?}");
        for r in 0..3 {
            let rec = &records[(j * 3 + r) * 5..(j * 3 + r + 1) * 5];
            assert!(rec[0] >= 5.0, "before the transient: {rec:?}");
            // On the section: z = 27 to f32 precision.
            assert!((rec[4] - 27.0).abs() < 1e-3, "{rec:?}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn misuse_gets_one_clear_message() {
    let o = phaseflow(&["simulate", "lorenz", "-n", "2", "--points", "3"]);
    assert_input_error(&o, "applies to systems with events");
    let o = phaseflow(&["simulate", "lorenz", "-n", "2", "--direction", "up"]);
    assert_input_error(&o, "applies to a section");
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "2",
        "--section",
        "z = 27",
        "--direction",
        "sideways",
    ]);
    assert_input_error(&o, "it is up, down or both");
    let o = phaseflow(&["simulate", "lorenz", "-n", "2", "--section", "zz = 27"]);
    assert_input_error(&o, "unknown name 'zz'");
    // A transient past the span's end would record nothing: refused, not an empty log.
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "2",
        "--section",
        "z = 27",
        "--transient",
        "100",
        "--tspan",
        "0:5",
    ]);
    assert_input_error(&o, "no event would be recorded");
}
