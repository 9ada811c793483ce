//! Holds the kernel templates' layout comments to the code that writes and reads the
//! buffers they describe: each family's `struct Window` against its `window_uniform`
//! packing, and the `// [outer][..][inner]: row, names` comments of the storage bindings
//! against the generated accessors (`codegen::accessors`), the host reader of saves
//! (`SaveBatch`) and the adaptive family's row constants and outcome decoding. A layout
//! changed on one side only fails here.

use crate::gpu::shader::expand;
use crate::ode::adaptive::kernel::TEMPLATE as ADAPTIVE;
use crate::ode::adaptive::run::{self as adaptive, CONTROL_ROWS, COUNT_ROWS, COUNT_ROWS_ALL};
use crate::ode::codegen::accessors;
use crate::ode::device::SaveBatch;
use crate::ode::fixed::kernel::TEMPLATE as FIXED;
use crate::ode::fixed::run as fixed;
use crate::ode::lyapunov::kernel::{ACC_ROWS, TEMPLATE as LYAPUNOV};
use crate::ode::lyapunov::run as lyapunov;
use crate::ode::runner::{Family, Outcome};
use crate::ode::sde::events::{
    ADAPTIVE_EVENTS_TEMPLATE as SDE_ADAPTIVE_EVENTS, FIXED_EVENTS_TEMPLATE as SDE_FIXED_EVENTS,
};
use crate::ode::sde::kernel::{ADAPTIVE_TEMPLATE as SDE_ADAPTIVE, FIXED_TEMPLATE as SDE_FIXED};
use crate::ode::sde::run::{self as sde, NoiseArgs};
use crate::precision::Precision;

/// The fields of the template's `struct Window`, (name, type) in order.
fn window_fields(template: &str) -> Vec<(String, String)> {
    let text = expand(template).expect("template");
    let body = text
        .split("struct Window {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("a struct Window");
    body.lines()
        .map(|l| l.split("//").next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, ty) = l.trim_end_matches(',').split_once(':').expect("name: type");
            (name.trim().to_string(), ty.trim().to_string())
        })
        .collect()
}

/// Reads packed uniform bytes by the WGSL rules for `fields` (u32 and f32 four bytes,
/// f64 eight, each aligned to its size; the struct padded to its largest alignment).
fn unpack(fields: &[(String, String)], precision: Precision, bytes: &[u8]) -> Vec<(String, f64)> {
    let mut at = 0usize;
    let mut align = 4;
    let mut out = Vec::new();
    for (name, ty) in fields {
        let size = match (ty.as_str(), precision) {
            ("u32", _) | ("real", Precision::F32) => 4,
            ("real", Precision::F64) => 8,
            _ => panic!("unexpected Window field type {ty}"),
        };
        at = at.next_multiple_of(size);
        align = align.max(size);
        let b = &bytes[at..at + size];
        let value = match (ty.as_str(), size) {
            ("u32", _) => u32::from_le_bytes(b.try_into().unwrap()) as f64,
            (_, 4) => f32::from_le_bytes(b.try_into().unwrap()) as f64,
            _ => f64::from_le_bytes(b.try_into().unwrap()),
        };
        out.push((name.clone(), value));
        at += size;
    }
    assert_eq!(bytes.len(), at.next_multiple_of(align), "packed size");
    out
}

fn named(values: &[(&str, f64)]) -> Vec<(String, f64)> {
    values.iter().map(|&(n, v)| (n.to_string(), v)).collect()
}

#[test]
fn fixed_window_struct_matches_its_packing() {
    let w = fixed::WindowArgs {
        n_traj: 2,
        stride: 3,
        step_begin: 4,
        step_end: 5,
        n_steps: 6,
        save_every: 7,
        save_initial: 8,
        save_first: 9,
        save_count: 10,
        t0: 11.0,
        dt: 12.0,
    };
    let want = named(&[
        ("n_traj", 2.0),
        ("stride", 3.0),
        ("step_begin", 4.0),
        ("step_end", 5.0),
        ("n_steps", 6.0),
        ("save_every", 7.0),
        ("save_initial", 8.0),
        ("save_first", 9.0),
        ("save_count", 10.0),
        ("t0", 11.0),
        ("dt", 12.0),
        ("one", 1.0),
    ]);
    for template in [FIXED, crate::ode::fixed::kernel::EVENTS_TEMPLATE] {
        let fields = window_fields(template);
        for precision in [Precision::F32, Precision::F64] {
            let bytes = fixed::window_uniform(precision, &w);
            assert_eq!(
                unpack(&fields, precision, &bytes),
                want,
                "{template} {precision:?}"
            );
        }
    }
}

#[test]
fn adaptive_window_struct_matches_its_packing() {
    let w = adaptive::WindowArgs {
        n_traj: 2,
        stride: 3,
        save_first: 4,
        save_end: 5,
        n_slots: 6,
        max_attempts: 7,
        window: 8,
        max_steps: 9,
        t0: 10.0,
        t1: 11.0,
        dt_initial: 12.0,
        dt_min: 13.0,
        dt_max: 14.0,
    };
    let want = named(&[
        ("n_traj", 2.0),
        ("stride", 3.0),
        ("save_first", 4.0),
        ("save_end", 5.0),
        ("n_slots", 6.0),
        ("max_attempts", 7.0),
        ("window", 8.0),
        ("max_steps", 9.0),
        ("t0", 10.0),
        ("t1", 11.0),
        ("dt_initial", 12.0),
        ("dt_min", 13.0),
        ("dt_max", 14.0),
        ("one", 1.0),
    ]);
    for template in [ADAPTIVE, crate::ode::adaptive::kernel::EVENTS_TEMPLATE] {
        let fields = window_fields(template);
        for precision in [Precision::F32, Precision::F64] {
            let bytes = adaptive::window_uniform(precision, &w);
            assert_eq!(
                unpack(&fields, precision, &bytes),
                want,
                "{template} {precision:?}"
            );
        }
    }
}

const NOISE: NoiseArgs = NoiseArgs {
    traj_base: 20,
    seed_lo: 21,
    seed_hi: 22,
    antithetic: 1,
};

#[test]
fn sde_fixed_window_struct_matches_its_packing() {
    let w = sde::FixedWindow {
        n_traj: 2,
        stride: 3,
        step_begin: 4,
        step_end: 5,
        n_steps: 6,
        save_every: 7,
        save_initial: 8,
        save_first: 9,
        save_count: 10,
        noise: NOISE,
        t0: 11.0,
        dt: 16.0,
    };
    let want = named(&[
        ("n_traj", 2.0),
        ("stride", 3.0),
        ("step_begin", 4.0),
        ("step_end", 5.0),
        ("n_steps", 6.0),
        ("save_every", 7.0),
        ("save_initial", 8.0),
        ("save_first", 9.0),
        ("save_count", 10.0),
        ("traj_base", 20.0),
        ("seed_lo", 21.0),
        ("seed_hi", 22.0),
        ("antithetic", 1.0),
        ("t0", 11.0),
        ("dt", 16.0),
        ("sqrt_dt", 4.0),
        ("one", 1.0),
    ]);
    for template in [SDE_FIXED, SDE_FIXED_EVENTS] {
        let fields = window_fields(template);
        for precision in [Precision::F32, Precision::F64] {
            let bytes = sde::fixed_uniform(precision, &w);
            assert_eq!(
                unpack(&fields, precision, &bytes),
                want,
                "{template} {precision:?}"
            );
        }
    }
}

#[test]
fn sde_adaptive_window_struct_matches_its_packing() {
    let w = sde::AdaptiveWindow {
        n_traj: 2,
        stride: 3,
        save_first: 4,
        save_end: 5,
        n_slots: 6,
        max_attempts: 7,
        window: 8,
        max_steps: 9,
        noise: NOISE,
        depth: 23,
        t0: 10.0,
        t1: 11.0,
        dt_initial: 12.0,
        dt_min: 13.0,
        dt_max: 14.0,
    };
    let want = named(&[
        ("n_traj", 2.0),
        ("stride", 3.0),
        ("save_first", 4.0),
        ("save_end", 5.0),
        ("n_slots", 6.0),
        ("max_attempts", 7.0),
        ("window", 8.0),
        ("max_steps", 9.0),
        ("traj_base", 20.0),
        ("seed_lo", 21.0),
        ("seed_hi", 22.0),
        ("antithetic", 1.0),
        ("depth", 23.0),
        ("t0", 10.0),
        ("t1", 11.0),
        ("dt_initial", 12.0),
        ("dt_min", 13.0),
        ("dt_max", 14.0),
        ("one", 1.0),
    ]);
    for template in [SDE_ADAPTIVE, SDE_ADAPTIVE_EVENTS] {
        let fields = window_fields(template);
        for precision in [Precision::F32, Precision::F64] {
            let bytes = sde::adaptive_uniform(precision, &w);
            assert_eq!(
                unpack(&fields, precision, &bytes),
                want,
                "{template} {precision:?}"
            );
        }
    }
}

/// The layout comment of storage binding `name`: its dimensions, outermost first, and the
/// row names after a colon (if any). The comment trails the binding or is the line above.
fn layout(template: &str, name: &str) -> (Vec<String>, Vec<String>) {
    let text = expand(template).expect("template");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("var<storage") && l.contains(&format!("> {name}:")))
        .unwrap_or_else(|| panic!("{template}: no binding {name}"));
    let comment = lines[at]
        .split_once("//")
        .map(|(_, c)| c)
        .or_else(|| lines[at - 1].trim().strip_prefix("//"))
        .unwrap_or_else(|| panic!("{template}: {name} has no layout comment"))
        .trim();
    let (dims, rows) = comment
        .split_once("]:")
        .map_or((comment, ""), |(d, r)| (d, r));
    let dims = dims
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split("][")
        .map(|d| d.trim().to_string())
        .collect();
    let rows = rows
        .split(',')
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    (dims, rows)
}

/// Offset of an element in a row-major layout: `index` and `size` give each dimension's
/// index and extent by name.
fn offset(dims: &[String], index: &dyn Fn(&str) -> usize, size: &dyn Fn(&str) -> usize) -> usize {
    dims.iter().fold(0, |acc, d| acc * size(d) + index(d))
}

/// Evaluates a generated index expression of `+`, `*`, parentheses, `Nu` literals and the
/// names in `vars`.
fn eval(expr: &str, vars: &[(&str, usize)]) -> usize {
    let spaced = expr
        .replace("win.stride", "stride")
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace('+', " + ")
        .replace('*', " * ");
    let tokens: Vec<String> = spaced
        .split_whitespace()
        .map(|t| match vars.iter().find(|(name, _)| *name == t) {
            Some((_, value)) => value.to_string(),
            None => t.trim_end_matches('u').to_string(),
        })
        .collect();
    fn sum(t: &[String], at: &mut usize) -> usize {
        let mut v = product(t, at);
        while t.get(*at).is_some_and(|s| s == "+") {
            *at += 1;
            v += product(t, at);
        }
        v
    }
    fn product(t: &[String], at: &mut usize) -> usize {
        let mut v = atom(t, at);
        while t.get(*at).is_some_and(|s| s == "*") {
            *at += 1;
            v *= atom(t, at);
        }
        v
    }
    fn atom(t: &[String], at: &mut usize) -> usize {
        *at += 1;
        if t[*at - 1] == "(" {
            let v = sum(t, at);
            *at += 1;
            v
        } else {
            t[*at - 1]
                .parse()
                .unwrap_or_else(|_| panic!("token {}", t[*at - 1]))
        }
    }
    let mut at = 0;
    let v = sum(&tokens, &mut at);
    assert_eq!(at, tokens.len(), "{expr}");
    v
}

const DIM: usize = 3;
const STRIDE: usize = 5;

/// `saved` as the templates state it is what `save_state` writes and `SaveBatch` reads.
#[test]
fn saved_layout_comments_match_writer_and_reader() {
    let code = accessors(DIM, 2);
    let base = code
        .split("fn save_state")
        .nth(1)
        .and_then(|f| f.split("let base = ").nth(1))
        .and_then(|b| b.split(';').next())
        .expect("save_state's base");
    for template in [
        FIXED,
        ADAPTIVE,
        SDE_FIXED,
        SDE_ADAPTIVE,
        SDE_FIXED_EVENTS,
        SDE_ADAPTIVE_EVENTS,
    ] {
        let (dims, _) = layout(template, "saved");
        let size = |d: &str| match d {
            "stride" => STRIDE,
            "dim" => DIM,
            _ => 2,
        };
        for (slot, i, c) in [(0, 0, 0), (0, 1, 2), (1, 0, 1), (1, 4, 2)] {
            let index = |d: &str| match d {
                "slot" => slot,
                "stride" => i,
                "dim" => c,
                other => panic!("{template}: unknown saved dimension {other}"),
            };
            let want = offset(&dims, &index, &size);
            let written = eval(base, &[("slot", slot), ("i", i), ("stride", STRIDE)]) + c;
            assert!(
                code.contains(&format!("saved[base + {c}u] = u.x{c}")),
                "save_state writes component {c} at base + {c}"
            );
            assert_eq!(written, want, "{template}: saved{dims:?} vs save_state");
            let values: Vec<u8> = (0..2 * STRIDE * DIM)
                .flat_map(|k| (k as f32).to_le_bytes())
                .collect();
            let batch = SaveBatch {
                slots: 0..2,
                chunk: 0..STRIDE,
                stride: STRIDE,
                n: STRIDE,
                dim: DIM,
                precision: Precision::F32,
                bytes: &values,
            };
            assert_eq!(batch.get(slot, c, i), want as f64, "{template}: SaveBatch");
        }
    }
}

/// `state` and `params` are component-major, as `load_state` and `load_params` read them.
#[test]
fn state_and_param_layout_comments_match_the_accessors() {
    let code = accessors(DIM, DIM);
    for (buffer, extent) in [("state", "dim"), ("params", "n_params")] {
        let reads: Vec<&str> = code
            .split(&format!("{buffer}["))
            .skip(1)
            .map(|r| r.split(']').next().expect("]"))
            .take(DIM)
            .collect();
        assert_eq!(reads.len(), DIM, "{buffer} reads");
        for template in [
            FIXED,
            ADAPTIVE,
            SDE_FIXED,
            SDE_ADAPTIVE,
            SDE_FIXED_EVENTS,
            SDE_ADAPTIVE_EVENTS,
        ] {
            let (dims, _) = layout(template, buffer);
            for (c, read) in reads.iter().enumerate() {
                let i = 4;
                let index = |d: &str| if d == extent { c } else { i };
                let size = |d: &str| if d == extent { DIM } else { STRIDE };
                assert_eq!(
                    eval(read, &[("i", i), ("stride", STRIDE)]),
                    offset(&dims, &index, &size),
                    "{template}: {buffer}{dims:?} vs {read}"
                );
            }
        }
    }
}

/// The adaptive family's `control` and `counts` rows are the ones its buffers make room
/// for, and `counts` rows are decoded in the order the comment names them.
#[test]
fn adaptive_row_comments_match_the_family() {
    let (control, _) = layout(ADAPTIVE, "control");
    assert_eq!(control, [format!("{CONTROL_ROWS} + dim"), "stride".into()]);
    let (counts, rows) = layout(ADAPTIVE, "counts");
    assert_eq!(counts, [COUNT_ROWS_ALL.to_string(), "stride".into()]);
    assert_eq!(rows.len() as u64, COUNT_ROWS_ALL, "{rows:?}");
    // One trajectory whose row r holds r + 1: decoding must put each row where the
    // comment's name says.
    let stride = 2;
    let words: Vec<u8> = (0..COUNT_ROWS as usize * stride)
        .flat_map(|k| ((k / stride) as u32 + 1).to_le_bytes())
        .collect();
    let system = crate::model::catalog::builtin("lorenz")
        .expect("lorenz is built in")
        .expect("lorenz parses");
    let problem = crate::ode::AdaptiveProblem {
        ensemble: crate::ode::Ensemble::new(&system, 1),
        system,
        solver: crate::ode::Solver::Dp5,
        t0: 0.0,
        t1: 1.0,
        saveat: crate::ode::SaveAt::Final,
        control: crate::ode::Control::default(),
        precision: Precision::F32,
    };
    let family = adaptive::Adaptive::new(&problem).expect("valid");
    let Outcome { status, steps } = family.decode(stride, 1, &words);
    let steps = steps.expect("adaptive runs count steps")[0];
    let by_name = |name: &str| {
        rows.iter()
            .position(|r| r == name)
            .unwrap_or_else(|| panic!("counts names no row {name}: {rows:?}")) as u32
            + 1
    };
    assert_eq!(crate::ode::Status::from_code(by_name("status")), status[0]);
    assert_eq!(steps.accepted, by_name("accepted"));
    assert_eq!(steps.rejected, by_name("rejected"));
    assert_eq!(steps.rhs_evals, by_name("rhs evaluations"));
}

/// The SDE adaptive kernel's `control` rows (t, h, then W of each process) and `counts`
/// rows are the ones `sde::run` makes room for and decodes.
#[test]
fn sde_adaptive_row_comments_match_the_family() {
    for template in [SDE_ADAPTIVE, SDE_ADAPTIVE_EVENTS] {
        let (control, rows) = layout(template, "control");
        assert_eq!(control, ["2 + m".to_string(), "stride".into()]);
        assert_eq!(rows.first().map(String::as_str), Some("t"), "{rows:?}");
        let (counts, rows) = layout(template, "counts");
        assert_eq!(counts, [COUNT_ROWS_ALL.to_string(), "stride".into()]);
        assert_eq!(
            rows[..4],
            ["status", "accepted", "rejected", "drift evaluations"],
            "decoded in this order by sde::run"
        );
    }
}

#[test]
fn lyapunov_window_struct_matches_its_packing() {
    let w = lyapunov::WindowArgs {
        n_traj: 2,
        stride: 3,
        step_begin: 4,
        step_end: 5,
        n_steps: 6,
        n_transient: 7,
        renorm: 8,
        per_block: 9,
        n_renorms: 10,
        n_blocks: 11,
        t0: 12.0,
        dt: 13.0,
        renorm_time: 14.0,
        inv_time: 15.0,
    };
    let want = named(&[
        ("n_traj", 2.0),
        ("stride", 3.0),
        ("step_begin", 4.0),
        ("step_end", 5.0),
        ("n_steps", 6.0),
        ("n_transient", 7.0),
        ("renorm", 8.0),
        ("per_block", 9.0),
        ("n_renorms", 10.0),
        ("n_blocks", 11.0),
        ("t0", 12.0),
        ("dt", 13.0),
        ("renorm_time", 14.0),
        ("inv_time", 15.0),
        ("one", 1.0),
    ]);
    let fields = window_fields(LYAPUNOV);
    for precision in [Precision::F32, Precision::F64] {
        let bytes = lyapunov::window_uniform(precision, &w);
        assert_eq!(unpack(&fields, precision, &bytes), want, "{precision:?}");
    }
}

/// The Lyapunov kernel's `tangent` rows (k vectors, then `ACC_ROWS` sums per exponent) and
/// `results` rows (exponents, then errors) are the ones `lyapunov::run` sizes and decodes.
#[test]
fn lyapunov_row_comments_match_the_family() {
    let (dims, rows) = layout(LYAPUNOV, "tangent");
    assert_eq!(dims, [format!("k*dim + {ACC_ROWS}*k"), "stride".into()]);
    assert_eq!(rows.len(), 1 + ACC_ROWS, "{rows:?}");
    let (dims, rows) = layout(LYAPUNOV, "results");
    assert_eq!(dims, ["2*k".to_string(), "stride".into()]);
    assert_eq!(rows, ["exponents", "errors"]);
    // Two trajectories of Lorenz's full spectrum in rows of stride 3, row r holding r + 1
    // plus a tenth per trajectory: decoding puts rows 0..k as exponents, k..2k as errors.
    let system = crate::model::catalog::builtin("lorenz")
        .expect("lorenz is built in")
        .expect("lorenz parses");
    let problem = crate::ode::lyapunov::LyapunovProblem::new(system, 2, 0.01, 0.0, 1.0);
    let family = lyapunov::Lyapunov::new(&problem).expect("valid");
    let (stride, k) = (3, 3);
    let bytes: Vec<u8> = (0..2 * k * stride)
        .flat_map(|at| ((at / stride) as f32 + 1.0 + 0.1 * (at % stride) as f32).to_le_bytes())
        .collect();
    let Some(crate::ode::ChunkResults::Rows(r)) = family.decode_results(stride, 2, &bytes) else {
        panic!("the Lyapunov family has results");
    };
    assert_eq!(r.width, 2 * k);
    for j in 0..2 {
        for c in 0..2 * k {
            assert!((r.row(j)[c] - (c as f64 + 1.0 + 0.1 * j as f64)).abs() < 1e-6);
        }
    }
}
