//! DeepONet's branch and trunk nets in one dispatch per stage of a training step: forward,
//! backward (inside the combine kernel) and weight gradients (with the loss and b0's
//! gradient), so that a step is four dispatches (these three and Adam's) instead of
//! nine. On lavapipe a dispatch has a fixed cost of 0.03 – 0.05 ms, a fifth of one small
//! net's pass (docs/performance.md, "where a DeepONet step goes").
//!
//! The kernels reuse the single-net bodies of `nn::mlp::fused` unchanged: those name their
//! bindings `p`, `x`, `h`, `g`, `step` and their activations `act…`; here each net's body
//! gets its own names (`pb`, `hb`, `sb`, `branch_act4`, … and `pt`, `ht`, `st`,
//! `trunk_act4`, …) by renaming identifiers, and the templates
//! (`shaders/nn/deeponet_{forward,weight_grad,combine}.wgsl`) run one net or the other
//! by workgroup. CPU twin: `nn::deeponet::model`.

use super::layout::DeepONetLayout;
use super::model::DataLayout;
use crate::gpu::shader::{ShaderError, compose};
use crate::nn::mlp::fused::{
    FusedLayout, LaneSharing, OutputDelta, Scratch, activation_fns, backward_body, forward_body,
    weight_grad_parts,
};

/// One net's side of a paired kernel.
#[derive(Clone, Copy)]
enum Side {
    Branch,
    Trunk,
}

impl Side {
    fn prefix(self) -> &'static str {
        match self {
            Side::Branch => "branch",
            Side::Trunk => "trunk",
        }
    }

    /// The function that maps this net's batch entries to data rows
    /// (`shaders/nn/deeponet/rows.wgsl`).
    fn row_fn(self) -> &'static str {
        match self {
            Side::Branch => "function_row",
            Side::Trunk => "point_row",
        }
    }

    /// The suffix of this net's bindings and uniform.
    fn letter(self) -> &'static str {
        match self {
            Side::Branch => "b",
            Side::Trunk => "t",
        }
    }

    /// The paired kernels' name for identifier `id` of a single-net body, if it changes.
    fn rename(self, id: &str) -> Option<String> {
        let (prefix, letter) = (self.prefix(), self.letter());
        match id {
            "p" | "x" | "h" => Some(format!("{id}{letter}")),
            "step" => Some(format!("s{letter}")),
            _ if id.starts_with("act") => Some(format!("{prefix}_{id}")),
            _ if id.starts_with("dact") => Some(format!("d{prefix}_{}", &id[1..])),
            _ if id.starts_with("group") => Some(format!("{prefix}_{id}")),
            _ => None,
        }
    }
}

/// `text` with every identifier that `name` maps replaced; identifiers after a `.` are
/// members (`v.x`) and are left alone.
pub(crate) fn rename(text: &str, name: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let id = &text[start..i];
            let member = start > 0 && bytes[start - 1] == b'.';
            match name(id).filter(|_| !member) {
                Some(new) => out.push_str(&new),
                None => out.push_str(id),
            }
        } else if c.is_ascii_digit() {
            // A number with its suffix (`8u`, `1e-3`) is not an identifier.
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            out.push_str(&text[start..i]);
        } else {
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..i + len]);
            i += len;
        }
    }
    out
}

/// Both nets' activation functions under their prefixes.
pub(crate) fn activations(layout: &DeepONetLayout) -> String {
    sides(layout)
        .map(|(side, l)| {
            let p = side.prefix();
            format!(
                "{}\n{}",
                activation_fns(&format!("{p}_act"), l.arch.activation),
                activation_fns(&format!("{p}_act_out"), l.arch.output_activation)
            )
        })
        .join("\n")
}

fn sides(layout: &DeepONetLayout) -> [(Side, &FusedLayout); 2] {
    [(Side::Branch, &layout.branch), (Side::Trunk, &layout.trunk)]
}

/// Functions (points) per invocation of the paired forward kernel and of the aligned
/// combine kernel (its products and both backward bodies). Each weight a lane loads and
/// broadcasts, and each quad of the other net's output in the combine kernel's products,
/// then serves two samples: on lavapipe every load from a storage buffer is a loop over
/// the lanes, and with one sample per invocation the branch's pass made about 1,600 such
/// loads per lane for 5,600 FMAs (docs/performance.md, "where a DeepONet step goes").
/// Two took the antiderivative set-up's forward pass from 0.26 to 0.21 ms for 0.5 s more
/// compilation on lavapipe; four to 0.19 ms for 3 s more, which a run earns back only
/// after about 100,000 iterations. In the combine kernel two took 1.64 to 1.14 ms
/// (docs/performance.md, "fewer storage loads"). Both nets' batches are padded to
/// `wg · PER_LANE`. The scratch stays feature-major, so the weight gradients read it as
/// before.
pub const PER_LANE: usize = 2;

/// The paired forward kernel with `wg` invocations per workgroup, each running
/// `PER_LANE` samples of one net.
pub fn forward_pair_wgsl(layout: &DeepONetLayout, wg: usize) -> Result<String, ShaderError> {
    let [b, t] = sides(layout).map(|(side, l)| {
        let mut l = l.clone();
        l.scratch = Scratch {
            blocked: false,
            per_lane: PER_LANE,
        };
        // The copy's name (`ob`, `ot`) is final: the renaming leaves it alone.
        let copy = format!("o{}", side.letter());
        let copy = (layout.output_copies > 0).then_some(copy.as_str());
        rename(&forward_body(&l, side.row_fn(), copy), |id| side.rename(id))
    });
    compose(
        "nn/deeponet/forward.wgsl",
        &[
            ("ACT", &activations(layout)),
            ("PARAMS", &layout.params_bindings(false)),
            ("OUTPUTS", &layout.output_bindings(true)),
            ("BRANCH", &b),
            ("TRUNK", &t),
            ("WG", &wg.to_string()),
            ("PER_LANE", &PER_LANE.to_string()),
            ("LANE_ID", layout.sharing().lane_builtin()),
        ],
    )
}

/// Both nets' backward bodies (the output δ given by the combine kernel, which runs them
/// after its row and column tasks), under their own names, each running `per_lane`
/// samples per invocation (s + k · n / per_lane), so that each weight a lane loads and
/// broadcasts serves them all.
pub fn backward_bodies(layout: &DeepONetLayout, per_lane: usize) -> [String; 2] {
    sides(layout).map(|(side, l)| {
        let mut l = l.clone();
        l.scratch = Scratch {
            blocked: false,
            per_lane,
        };
        rename(&backward_body(&l, OutputDelta::Given), |id| side.rename(id))
    })
}

/// The paired weight-gradient kernel and its workgroups along x (the loss workgroup, then
/// the branch's and the trunk's tasks).
pub fn weight_grad_pair_wgsl(
    layout: &DeepONetLayout,
    data: DataLayout,
    wg: usize,
) -> Result<(String, usize), ShaderError> {
    let k = layout.arch.outputs;
    let count = match data {
        DataLayout::Aligned => format!("sb.batch * st.batch * {k}u"),
        DataLayout::Unaligned => format!("sb.batch * {k}u"),
    };
    let [b, t] = sides(layout).map(|(side, l)| (side, weight_grad_parts(l)));
    let body = |(side, parts): &(Side, crate::nn::mlp::fused::WeightGradParts)| {
        rename(&parts.body, |id| side.rename(id))
    };
    // The trunk's chain reads its task as `u` and writes at `trunk_base` (the template's
    // names for the task and gradient copy shifted to the trunk's).
    let trunk_dispatch = rename(&t.1.dispatch, |id| match id {
        "t" => Some("u".into()),
        "base" => Some("trunk_base".into()),
        _ => Side::Trunk.rename(id),
    });
    // After the loss workgroup: numbered along the subgroups (clusters of eight lanes hold
    // eight consecutive tasks), or along the workgroup without subgroups.
    let (lane_ids, task, lane, cluster) = match layout.sharing() {
        LaneSharing::Subgroup => (
            "@builtin(subgroup_id) subgroup: u32,\n    @builtin(subgroup_size) size: u32,\n    @builtin(subgroup_invocation_id) lane_id: u32,",
            format!("(wg.x - 1u) * {wg}u + subgroup * size + lane_id"),
            "lane_id & 7u",
            "lane_id & ~7u",
        ),
        LaneSharing::Loads => (
            "",
            format!("(wg.x - 1u) * {wg}u + local"),
            "local & 7u",
            "0u",
        ),
    };
    let wgsl = compose(
        "nn/deeponet/weight_grad.wgsl",
        &[
            ("ACT", &activations(layout)),
            ("K", &k.to_string()),
            ("COUNT", &count),
            ("BIAS", &layout.bias_off.to_string()),
            ("LEN", &layout.len.to_string()),
            ("TRUNK_OFF", &layout.trunk_off.to_string()),
            ("TB", &b.1.tasks.to_string()),
            ("TT", &t.1.tasks.to_string()),
            ("BRANCH", &body(&b)),
            ("TRUNK", &body(&t)),
            (
                "BRANCH_DISPATCH",
                &rename(&b.1.dispatch, |id| Side::Branch.rename(id)),
            ),
            ("TRUNK_DISPATCH", &trunk_dispatch),
            ("WG", &wg.to_string()),
            ("LANE_IDS", lane_ids),
            ("TASK", &task),
            ("LANE", lane),
            ("CLUSTER", cluster),
        ],
    )?;
    Ok((wgsl, 1 + (b.1.tasks + t.1.tasks).div_ceil(wg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_touches_identifiers_only() {
        let text = "let v = act4(h[at]) + p[w0].x * x0; g[base + 8u] = step.n; h.x = 1e-3;";
        let out = rename(text, |id| Side::Trunk.rename(id));
        assert_eq!(
            out,
            "let v = trunk_act4(ht[at]) + pt[w0].x * x0; g[base + 8u] = st.n; ht.x = 1e-3;"
        );
        assert_eq!(
            rename("dact_out4(z) * dact4(z)", |id| Side::Branch.rename(id)),
            "dbranch_act_out4(z) * dbranch_act4(z)"
        );
    }
}
