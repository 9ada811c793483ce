//! DeepONet's device layout: one f32 parameter vector holds the branch's fused layout,
//! then the trunk's, then b0, each region starting at a multiple of 64 floats (256 bytes,
//! the largest storage offset alignment WebGPU allows), so each net's kernels bind their
//! region as if it were the whole vector and one Adam dispatch updates everything.

use super::model::{DeepONetArch, DeepONetParams};
use crate::nn::mlp::fused::{FusedLayout, LaneSharing};

/// Floats between region starts: 256 bytes.
pub const REGION_ALIGN: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct DeepONetLayout {
    pub arch: DeepONetArch,
    pub branch: FusedLayout,
    pub trunk: FusedLayout,
    /// Float offsets of the trunk's region and of b0.
    pub trunk_off: usize,
    pub bias_off: usize,
    /// Floats in the whole vector.
    pub len: usize,
    /// Quads of each net's output copy, or 0 for none: with aligned data on CPU adapters
    /// the forward kernel writes each net's output-layer z rows (feature-major, row q of
    /// sample s at q · n + s) to a buffer of their own instead of the scratch, which the
    /// combine kernel binds as a uniform array of this many quads
    /// (`trainer::with_output_copies`).
    pub output_copies: usize,
}

impl DeepONetLayout {
    pub fn new(arch: &DeepONetArch) -> DeepONetLayout {
        let branch = FusedLayout::new(&arch.branch);
        let trunk = FusedLayout::new(&arch.trunk);
        let trunk_off = branch.len.next_multiple_of(REGION_ALIGN);
        let bias_off = (trunk_off + trunk.len).next_multiple_of(REGION_ALIGN);
        DeepONetLayout {
            arch: arch.clone(),
            branch,
            trunk,
            trunk_off,
            bias_off,
            len: bias_off + arch.outputs.next_multiple_of(4),
            output_copies: 0,
        }
    }

    /// This layout with both nets' kernels (and the combine kernels) sharing loads as
    /// `sharing` says.
    pub fn with_sharing(mut self, sharing: LaneSharing) -> DeepONetLayout {
        self.branch.sharing = sharing;
        self.trunk.sharing = sharing;
        self
    }

    /// This layout with both nets' layers of at most `outputs` (padded) outputs computed in
    /// one block in the forward pass (`FusedLayout::whole_layer`).
    pub fn with_whole_layer(mut self, outputs: usize) -> DeepONetLayout {
        self.branch.whole_layer = outputs;
        self.trunk.whole_layer = outputs;
        self
    }

    /// This layout with both nets' weight-gradient tasks of `outputs` outputs where their
    /// layers allow (`FusedLayout::grad_outputs`).
    pub fn with_grad_outputs(mut self, outputs: usize) -> DeepONetLayout {
        self.branch.grad_outputs = outputs;
        self.trunk.grad_outputs = outputs;
        self
    }

    /// This layout with both nets' parameters read from uniform bindings
    /// (`FusedLayout::uniform_params`).
    pub fn with_uniform_params(mut self, uniform: bool) -> DeepONetLayout {
        self.branch.uniform_params = uniform;
        self.trunk.uniform_params = uniform;
        self
    }

    /// This layout with the nets' outputs copied to uniform arrays of `quads` quads
    /// (`output_copies`; 0: none).
    pub fn with_output_copies(mut self, quads: usize) -> DeepONetLayout {
        self.output_copies = quads;
        self
    }

    /// The declarations of the output copies' bindings 10 (`ob`, the branch's) and 11
    /// (`ot`), as the forward kernel writes them (`writable`) or the combine kernel reads
    /// them; empty without copies.
    pub fn output_bindings(&self, writable: bool) -> String {
        if self.output_copies == 0 {
            return String::new();
        }
        let decl = |binding: u32, name: &str| {
            if writable {
                format!(
                    "@group(0) @binding({binding}) var<storage, read_write> {name}: array<vec4<f32>>;"
                )
            } else {
                format!(
                    "@group(0) @binding({binding}) var<uniform> {name}: array<vec4<f32>, {}>;",
                    self.output_copies
                )
            }
        };
        format!("{}\n{}", decl(10, "ob"), decl(11, "ot"))
    }

    /// The declarations of the parameters' bindings 2 (`pb`, the branch's region) and 3
    /// (`pt`, the trunk's, to the end of the vector when `with_bias`), as the forward and
    /// combine kernels bind them.
    pub fn params_bindings(&self, with_bias: bool) -> String {
        let regions = if with_bias {
            self.regions_with_bias()
        } else {
            self.regions()
        };
        let quads = |r: (u64, u64)| (r.1 / 16) as usize;
        format!(
            "{}\n{}",
            self.branch.params_binding(2, "pb", quads(regions[0])),
            self.trunk.params_binding(3, "pt", quads(regions[1]))
        )
    }

    /// How the kernels share loads between lanes (the same for both nets).
    pub fn sharing(&self) -> LaneSharing {
        self.branch.sharing
    }

    /// Bytes of the branch's, the trunk's and b0's regions: (offset, size).
    pub fn regions(&self) -> [(u64, u64); 3] {
        [
            (0, 4 * self.branch.len as u64),
            (4 * self.trunk_off as u64, 4 * self.trunk.len as u64),
            (
                4 * self.bias_off as u64,
                4 * (self.len - self.bias_off) as u64,
            ),
        ]
    }

    /// As `regions`, but the trunk's runs on to the end of the vector (b0 included), as
    /// the combine kernel binds it.
    pub fn regions_with_bias(&self) -> [(u64, u64); 3] {
        let mut r = self.regions();
        r[1].1 = 4 * (self.len - self.trunk_off) as u64;
        r
    }

    pub fn pack(&self, p: &DeepONetParams) -> Vec<f32> {
        let mut out = vec![0.0f32; self.len];
        let b = self.branch.pack(&p.branch);
        out[..b.len()].copy_from_slice(&b);
        let t = self.trunk.pack(&p.trunk);
        out[self.trunk_off..self.trunk_off + t.len()].copy_from_slice(&t);
        for (c, v) in p.bias.iter().enumerate() {
            out[self.bias_off + c] = *v as f32;
        }
        out
    }

    pub fn unpack(&self, v: &[f32]) -> DeepONetParams {
        DeepONetParams {
            branch: self.branch.unpack(&v[..self.branch.len]),
            trunk: self
                .trunk
                .unpack(&v[self.trunk_off..self.trunk_off + self.trunk.len]),
            bias: (0..self.arch.outputs)
                .map(|c| v[self.bias_off + c] as f64)
                .collect(),
        }
    }
}
