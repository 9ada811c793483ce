//! The WGSL of DeepONet's combine kernels. The two nets run the fused MLP kernels
//! (`nn::mlp::fused`); what is DeepONet's own is the product of their outputs and its loss
//! (`shaders/nn/deeponet/combine.wgsl` for aligned data, `combine_unaligned.wgsl` for
//! unaligned); `deeponet::pair` runs the two nets' fused kernels side by side, and
//! `deeponet::layout` places both nets and b0 in one parameter vector.
//! CPU twin: `deeponet::model`.

pub use super::layout::DeepONetLayout;
use super::model::{DeepONetArch, Strategy};
use super::pair::{PER_LANE, activations as pair_activations, backward_bodies, rename};
use crate::gpu::shader::{ShaderError, compose};
use crate::nn::mlp::fused::{COMPONENTS, LaneSharing, activation_fns};
use std::fmt::Write;

/// One piece of the sum for an output: four terms when both columns start a quad, one
/// otherwise.
enum Term {
    Quad(usize, usize),
    Scalar(usize, usize),
}

fn terms(arch: &DeepONetArch, c: usize) -> Vec<Term> {
    let p = arch.latent;
    let column = |i: usize| match arch.strategy {
        Strategy::SplitBoth => (c * p + i, c * p + i),
        Strategy::SplitBranch => (c * p + i, i),
        Strategy::SplitTrunk => (i, c * p + i),
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < p {
        let (bc, tc) = column(i);
        if bc % 4 == 0 && tc % 4 == 0 && i + 4 <= p {
            out.push(Term::Quad(bc / 4, tc / 4));
            i += 4;
        } else {
            out.push(Term::Scalar(bc, tc));
            i += 1;
        }
    }
    out
}

fn scalar(array: &str, col: usize) -> String {
    format!("{array}[{}].{}", col / 4, COMPONENTS[col % 4])
}

/// `b0 + Σ B·T` for output `c`.
fn sum(arch: &DeepONetArch, c: usize, b0: &str) -> String {
    let mut s = b0.to_string();
    for term in terms(arch, c) {
        match term {
            Term::Quad(bq, tq) => write!(s, " + dot(b[{bq}], t[{tq}])").unwrap(),
            Term::Scalar(bc, tc) => {
                write!(s, " + {} * {}", scalar("b", bc), scalar("t", tc)).unwrap()
            }
        }
    }
    s
}

/// `acc += d · other` over the columns of output `c`; `branch`: `acc` holds the branch's
/// columns and `other` is t.
fn accumulate(arch: &DeepONetArch, c: usize, branch: bool, acc: &str) -> String {
    let mut s = String::new();
    for term in terms(arch, c) {
        match (term, branch) {
            (Term::Quad(bq, tq), true) => writeln!(
                s,
                "        {acc}[{bq}] = fma(vec4<f32>(d{c}), t[{tq}], {acc}[{bq}]);"
            ),
            (Term::Quad(bq, tq), false) => writeln!(
                s,
                "        {acc}[{tq}] = fma(vec4<f32>(d{c}), b[{bq}], {acc}[{tq}]);"
            ),
            (Term::Scalar(bc, tc), true) => writeln!(
                s,
                "        {} += d{c} * {};",
                scalar(acc, bc),
                scalar("t", tc)
            ),
            (Term::Scalar(bc, tc), false) => writeln!(
                s,
                "        {} += d{c} * {};",
                scalar(acc, tc),
                scalar("b", bc)
            ),
        }
        .unwrap();
    }
    s
}

/// `array` [quads] = `act`(quad q of a net's output), where `at(q)` is the element of quad
/// q in the scratch or in the output copy (the same in every lane): loaded a quad per
/// lane (of groups of eight) and shared with subgroupBroadcast, or loaded by every lane.
fn shared_loads(
    sharing: LaneSharing,
    array: &str,
    quads: usize,
    act: &str,
    at: &dyn Fn(&str) -> String,
) -> String {
    let mut s = format!(
        "        var {array}: array<vec4<f32>, {quads}>;
"
    );
    if sharing == LaneSharing::Loads {
        for q in 0..quads {
            writeln!(s, "        {array}[{q}] = {act}({});", at(&format!("{q}u"))).unwrap();
        }
        return s;
    }
    for r in 0..quads.div_ceil(8) {
        let lane_quad = format!("min(lane + {}u, {}u)", 8 * r, quads - 1);
        writeln!(s, "        let v{r} = {act}({});", at(&lane_quad)).unwrap();
        for q in 8 * r..quads.min(8 * r + 8) {
            writeln!(
                s,
                "        {array}[{q}] = subgroupBroadcast(v{r}, {}u);",
                q - 8 * r
            )
            .unwrap();
        }
    }
    s
}

/// `let b0_c = …;` for every output: b0 lies in the trunk's binding, which runs on to the
/// end of the vector.
fn bias_loads(layout: &DeepONetLayout) -> String {
    let bias = layout.bias_off - layout.trunk_off;
    (0..layout.arch.outputs)
        .map(|c| {
            format!(
                "    let b0_{c} = pt[{}u].{};\n",
                (bias + c) / 4,
                COMPONENTS[(bias + c) % 4]
            )
        })
        .collect()
}

/// The activation functions the combine kernels call.
fn combine_activations(layout: &DeepONetLayout) -> String {
    let arch = &layout.arch;
    format!(
        "{}\n{}\n{}",
        activation_fns("branch_out", arch.branch.output_activation),
        activation_fns("trunk_out", arch.trunk.output_activation),
        pair_activations(layout)
    )
}

/// The combine kernel for unaligned data: one invocation per sample, whose function and
/// location sit at the same batch entry of both nets; training (the MSE loss, both nets'
/// output δ and their backward passes) or prediction (G [samples, outputs]).
pub fn combine_unaligned_wgsl(
    layout: &DeepONetLayout,
    train: bool,
    wg: usize,
) -> Result<String, ShaderError> {
    // It reads the nets' outputs from the scratch, where a forward pass with output
    // copies does not write them (the trainer makes copies for aligned data only).
    assert_eq!(
        layout.output_copies, 0,
        "unaligned data takes no output copies"
    );
    let arch = &layout.arch;
    let k = arch.outputs;
    let (bl, tl) = (&layout.branch, &layout.trunk);
    let (b_last, t_last) = (arch.branch.n_linear() - 1, arch.trunk.n_linear() - 1);
    let mut body = String::new();
    let mut end = String::new();
    for c in 0..k {
        writeln!(body, "    let g{c} = {};", sum(arch, c, &format!("b0_{c}"))).unwrap();
        if train {
            writeln!(
                body,
                "    let e{c} = g{c} - targets[at + {c}u];\n    sse += e{c} * e{c};\n    let d{c} = factor * e{c};"
            )
            .unwrap();
            body.push_str(&accumulate(arch, c, true, "acc_b"));
            body.push_str(&accumulate(arch, c, false, "acc_t"));
            writeln!(
                end,
                "    out[s * {}u + {}u] = select(0.0, d{c}, live);",
                k + 1,
                c + 1
            )
            .unwrap();
        } else {
            writeln!(
                body,
                "    if live {{\n        out[s * {k}u + {c}u] = g{c};\n    }}"
            )
            .unwrap();
        }
    }
    if train {
        writeln!(end, "    out[s * {}u] = select(0.0, sse, live);", k + 1).unwrap();
        for (h, n, z, d, quads, acc, dact) in [
            (
                "hb",
                "sb.n",
                bl.z_row[b_last],
                bl.d_row[b_last],
                arch.branch.outputs().div_ceil(4),
                "acc_b",
                "dbranch_out4",
            ),
            (
                "ht",
                "st.n",
                tl.z_row[t_last],
                tl.d_row[t_last],
                arch.trunk.outputs().div_ceil(4),
                "acc_t",
                "dtrunk_out4",
            ),
        ] {
            writeln!(
                end,
                "    for (var q = 0u; q < {quads}u; q++) {{\n        let z = {h}[({z}u + q) * {n} + s];\n        {h}[({d}u + q) * {n} + s] = select(vec4<f32>(0.0), {acc}[q] * {dact}(z), live);\n    }}"
            )
            .unwrap();
        }
    }
    let [branch_backward, trunk_backward] = if train {
        backward_bodies(layout, 1)
    } else {
        [String::new(), String::new()]
    };
    compose(
        "nn/deeponet/combine_unaligned.wgsl",
        &[
            ("ACT", &combine_activations(layout)),
            ("TRAIN", if train { "true" } else { "false" }),
            ("PARAMS", &layout.params_bindings(true)),
            ("K", &k.to_string()),
            ("BQ", &arch.branch.outputs().div_ceil(4).to_string()),
            ("TQ", &arch.trunk.outputs().div_ceil(4).to_string()),
            ("ZB", &bl.z_row[b_last].to_string()),
            ("ZT", &tl.z_row[t_last].to_string()),
            ("BIASES", &bias_loads(layout)),
            ("BODY", &body),
            ("END", &end),
            ("BRANCH_BACKWARD", &branch_backward),
            ("TRUNK_BACKWARD", &trunk_backward),
            ("WG", &wg.to_string()),
            ("LANE_ID", layout.sharing().lane_builtin()),
        ],
    )
}

/// `text` (a row or column task's code for one sample) for slot `s` of the combine
/// kernel's `PER_LANE` samples: each identifier in `names`, and each `ds{c}`, gets the
/// suffix `_s`.
fn for_slot(text: &str, s: usize, names: &[&str]) -> String {
    rename(text, |id| {
        let sum =
            id.len() > 2 && id.starts_with("ds") && id[2..].bytes().all(|b| b.is_ascii_digit());
        (sum || names.contains(&id)).then(|| format!("{id}_{s}"))
    })
}

/// The names of a row task that differ between its slots (functions).
const ROW_SLOT: &[&str] = &["f", "live", "rf", "b", "acc", "sse"];
/// The names of a column task that differ between its slots (points).
const COLUMN_SLOT: &[&str] = &["y", "live", "ry", "t", "acc"];

/// The data row of each step of a task's loop (`row_fn` of the step's batch entry
/// `entry`): with subgroups, lane j loads the row of step `first + j` and subgroupShuffle
/// hands it round (one load for eight steps); without, each invocation loads it.
fn shared_rows(
    sharing: LaneSharing,
    row_fn: &str,
    rows: &str,
    entry: &str,
    row: &str,
) -> [String; 2] {
    match sharing {
        LaneSharing::Subgroup => [
            format!("        let {rows} = {row_fn}(first + lane);"),
            format!("            let {row} = subgroupShuffle({rows}, j);"),
        ],
        LaneSharing::Loads => [
            String::new(),
            format!("            let {row} = {row_fn}({entry});"),
        ],
    }
}

/// The combine kernel: training (row and column tasks, the MSE loss) or prediction (G),
/// `PER_LANE` functions (points) per invocation.
pub fn combine_wgsl(
    layout: &DeepONetLayout,
    train: bool,
    wg: usize,
) -> Result<String, ShaderError> {
    let arch = &layout.arch;
    let k = arch.outputs;
    let (bl, tl) = (&layout.branch, &layout.trunk);
    let (b_last, t_last) = (arch.branch.n_linear() - 1, arch.trunk.n_linear() - 1);
    let bq = arch.branch.outputs().div_ceil(4);
    let tq = arch.trunk.outputs().div_ceil(4);
    let (zb, db) = (bl.z_row[b_last], bl.d_row[b_last]);
    let (zt, dt) = (tl.z_row[t_last], tl.d_row[t_last]);

    // Where each net's output rows are read: its uniform copy (`ob`, `ot`), or the
    // scratch.
    let copies = layout.output_copies > 0;
    let zb_at = |q: &str, s: &str| {
        if copies {
            format!("ob[{q} * sb.n + {s}]")
        } else {
            format!("hb[({zb}u + {q}) * sb.n + {s}]")
        }
    };
    let zt_at = |q: &str, s: &str| {
        if copies {
            format!("ot[{q} * st.n + {s}]")
        } else {
            format!("ht[({zt}u + {q}) * st.n + {s}]")
        }
    };

    // One sample's code, written with the names of slot 0 before renaming.
    let mut row_start = format!(
        "    let f = i + SLOTu * half;
    let live = f < sb.batch;
    let rf = function_row(f);
    var b: array<vec4<f32>, {bq}>;
    var acc: array<vec4<f32>, {bq}>;
    for (var q = 0u; q < {bq}u; q++) {{
        b[q] = branch_out4({});
        acc[q] = vec4<f32>(0.0);
    }}
    var sse = 0.0;
",
        zb_at("q", "f")
    );
    let column_start = format!(
        "    let y = i + SLOTu * half;
    let live = y < st.batch;
    let ry = point_row(y);
    var t: array<vec4<f32>, {tq}>;
    var acc: array<vec4<f32>, {tq}>;
    for (var q = 0u; q < {tq}u; q++) {{
        t[q] = trunk_out4({});
        acc[q] = vec4<f32>(0.0);
    }}
",
        zt_at("q", "y")
    );
    let mut row = format!("            {{\n            let at = (rf * st.m + ry) * {k}u;\n");
    let mut column = format!("            {{\n            let at = (rf * st.m + ry) * {k}u;\n");
    let mut row_end = String::new();
    for c in 0..k {
        writeln!(
            row,
            "            let g{c} = {};",
            sum(arch, c, &format!("b0_{c}"))
        )
        .unwrap();
        if train {
            writeln!(row_start, "    var ds{c} = 0.0;").unwrap();
            writeln!(
                row,
                "            let e{c} = g{c} - targets[at + {c}u];\n            sse += e{c} * e{c};\n            let d{c} = factor * e{c};\n            ds{c} += d{c};"
            )
            .unwrap();
            row.push_str(&accumulate(arch, c, true, "acc"));
            writeln!(
                column,
                "            let d{c} = factor * ({} - targets[at + {c}u]);",
                sum(arch, c, &format!("b0_{c}"))
            )
            .unwrap();
            column.push_str(&accumulate(arch, c, false, "acc"));
        } else {
            writeln!(
                row,
                "            if live {{\n                out[(f * st.batch + y) * {k}u + {c}u] = g{c};\n            }}"
            )
            .unwrap();
        }
    }
    row.push_str("            }\n");
    column.push_str("            }\n");
    if train {
        writeln!(
            row_end,
            "    for (var q = 0u; q < {bq}u; q++) {{\n        let z = {};\n        hb[({db}u + q) * sb.n + f] = select(vec4<f32>(0.0), acc[q] * dbranch_out4(z), live);\n    }}\n    out[f * {w}u] = select(0.0, sse, live);",
            zb_at("q", "f"),
            w = k + 1
        )
        .unwrap();
        for c in 0..k {
            writeln!(
                row_end,
                "    out[f * {}u + {}u] = select(0.0, ds{c}, live);",
                k + 1,
                c + 1
            )
            .unwrap();
        }
    }
    let column_end = format!(
        "    for (var q = 0u; q < {tq}u; q++) {{\n        let z = {};\n        ht[({dt}u + q) * st.n + y] = select(vec4<f32>(0.0), acc[q] * dtrunk_out4(z), live);\n    }}\n",
        zt_at("q", "y")
    );
    let slots = |text: &str, names: &[&str]| -> String {
        (0..PER_LANE)
            .map(|s| for_slot(&text.replace("SLOTu", &format!("{s}u")), s, names))
            .collect()
    };
    let sharing = layout.sharing();
    // From the uniform copies every lane loads the quads itself: on lavapipe a uniform
    // load is a gather within registers, where a storage load is a loop over the lanes.
    let other = if copies { LaneSharing::Loads } else { sharing };
    let load_t = shared_loads(other, "t", tq, "trunk_out4", &|q| zt_at(q, "y"));
    let load_b = shared_loads(other, "b", bq, "branch_out4", &|q| zb_at(q, "f"));
    let [rows_t, row_t] = shared_rows(sharing, "point_row", "rows_t", "y", "ry");
    let [rows_b, row_b] = shared_rows(sharing, "function_row", "rows_b", "f", "rf");
    let act = combine_activations(layout);
    let [branch_backward, trunk_backward] = if train {
        backward_bodies(layout, PER_LANE)
    } else {
        [String::new(), String::new()]
    };
    compose(
        "nn/deeponet/combine.wgsl",
        &[
            ("ACT", &act),
            ("TRAIN", if train { "true" } else { "false" }),
            ("PARAMS", &layout.params_bindings(true)),
            ("OUTPUTS", &layout.output_bindings(false)),
            ("K", &k.to_string()),
            ("PER_LANE", &PER_LANE.to_string()),
            ("ROW_START", &slots(&row_start, ROW_SLOT)),
            ("COLUMN_START", &slots(&column_start, COLUMN_SLOT)),
            ("ROWS_T", &rows_t),
            ("ROW_T", &row_t),
            ("ROWS_B", &rows_b),
            ("ROW_B", &row_b),
            ("LOAD_T", &load_t),
            ("LOAD_B", &load_b),
            ("ROW_BODY", &slots(&row, ROW_SLOT)),
            ("COLUMN_BODY", &slots(&column, COLUMN_SLOT)),
            ("ROW_END", &slots(&row_end, ROW_SLOT)),
            ("COLUMN_END", &slots(&column_end, COLUMN_SLOT)),
            ("BIASES", &bias_loads(layout)),
            ("BRANCH_BACKWARD", &branch_backward),
            ("TRUNK_BACKWARD", &trunk_backward),
            ("WG", &wg.to_string()),
            ("LANE_ID", layout.sharing().lane_builtin()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::deeponet::{DeepONetParams, NetSpec};
    use crate::nn::{Activation, Init};

    fn arch(strategy: Strategy, latent: usize, outputs: usize) -> DeepONetArch {
        DeepONetArch::new(
            NetSpec {
                inputs: 10,
                hidden: vec![12],
                encoding: None,
            },
            NetSpec {
                inputs: 2,
                hidden: vec![9],
                encoding: None,
            },
            latent,
            outputs,
            strategy,
            Activation::Tanh,
        )
    }

    #[test]
    fn pack_and_unpack_are_inverse_with_aligned_regions() {
        let a = arch(Strategy::SplitBranch, 5, 3);
        let layout = DeepONetLayout::new(&a);
        let mut p = DeepONetParams::init(&a, Init::Glorot, 4).unwrap();
        p.bias = vec![0.5, -0.25, 2.0];
        let back = layout.unpack(&layout.pack(&p));
        for (x, y) in p.flat().iter().zip(back.flat()) {
            assert_eq!(*x as f32 as f64, y);
        }
        for (off, size) in layout.regions() {
            assert_eq!(off % 256, 0);
            assert!(off + size <= 4 * layout.len as u64);
        }
        assert!(layout.branch.len <= layout.trunk_off);
        assert!(layout.trunk_off + layout.trunk.len <= layout.bias_off);
    }

    #[test]
    fn sums_use_quads_where_columns_align() {
        // p = 8, split both: output 1 uses columns 8..16 of both nets, two quads.
        let a = arch(Strategy::SplitBoth, 8, 2);
        assert_eq!(sum(&a, 1, "b0"), "b0 + dot(b[2], t[2]) + dot(b[3], t[3])");
        // p = 5, split branch: output 1 reads branch columns 5..10 and trunk 0..5.
        let a = arch(Strategy::SplitBranch, 5, 2);
        let s = sum(&a, 1, "b0");
        assert!(
            s.starts_with("b0 + b[1].y * t[0].x + b[1].z * t[0].y"),
            "{s}"
        );
        assert_eq!(s.matches('*').count(), 5);
    }
}
