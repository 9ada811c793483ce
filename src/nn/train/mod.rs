//! The training toolkit every trainer (`mlp::layered::Trainer`, `mlp::FusedTrainer`,
//! `deeponet::DeepONetTrainer`) builds on: recorded passes, batch samplers, the optimiser
//! with its one Adam pipeline and gradient clipping, gradient sums over batch splits, and
//! the buffer helpers. Kernels: `shaders/nn/train/`.

pub mod buffers;
pub mod gradients;
pub mod optimizer;
pub mod pass;
pub mod sampler;

pub use optimizer::{Optimizer, OptimizerError, Schedule};

/// The field names of `struct NAME { … }` in WGSL text, in order (for tests that check a
/// kernel's uniform layout against the words the host writes).
#[cfg(test)]
pub(crate) fn wgsl_struct_fields(wgsl: &str, name: &str) -> Vec<String> {
    let start = wgsl
        .find(&format!("struct {name} {{"))
        .unwrap_or_else(|| panic!("no struct {name}"));
    let body = &wgsl[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
    body.lines()
        .map(|l| l.split("//").next().unwrap().trim())
        .filter_map(|l| l.split_once(':').map(|(f, _)| f.trim().to_string()))
        .collect()
}

/// The host's `words` for WGSL `struct NAME` in shader file `path`, by field name: checks
/// that there is one word per field and gives a lookup (panics on an unknown name).
#[cfg(test)]
pub(crate) fn words_by_field<'a>(
    path: &'a str,
    name: &'a str,
    words: &'a [u32],
) -> impl Fn(&str) -> u32 + 'a {
    let wgsl = crate::gpu::shader::compose(path, &[]).unwrap();
    let fields = wgsl_struct_fields(&wgsl, name);
    assert_eq!(fields.len(), words.len(), "{path} {name}: {fields:?}");
    move |field| {
        let at = fields.iter().position(|f| f == field);
        words[at.unwrap_or_else(|| panic!("{path} {name} has no field {field}"))]
    }
}
