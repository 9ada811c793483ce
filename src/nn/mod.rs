//! Neural networks on the GPU: MLPs with Fourier-feature encodings (`mlp`), DeepONets
//! (`deeponet`), the training toolkit both use (`train`: passes, samplers, the optimiser
//! and its one Adam pipeline), checkpoints in PyTorch's layout (`checkpoint`) and the
//! fit/predict front door (`fit`). See docs/architecture.md.

pub mod checkpoint;
pub mod deeponet;
pub mod fit;
pub mod mlp;
pub mod train;

pub use checkpoint::{
    CheckpointError, load, load_deeponet, load_deeponet_state, save, save_bytes,
    save_deeponet_bytes, save_deeponet_state_bytes,
};
pub use deeponet::{
    AlignedData, DeepONetArch, DeepONetNet, DeepONetParams, DeepONetTrainConfig,
    DeepONetTrainState, DeepONetTrainer, Metrics, NetSpec, Strategy,
};
pub use fit::{AnyTrainer, FitReport, fit, predict};
pub use mlp::{
    Activation, Architecture, Encoding, EncodingKind, FusedLayout, FusedNet, FusedTrainer, Init,
    Loss, Matrix, ModelError, Params, TrainConfig, TrainConfigError, Trainer, fused_supported,
};
pub use mlp::{Batch, GpuNet};
pub use train::{Optimizer, OptimizerError, Schedule};

#[cfg(test)]
mod tests {
    use crate::embedded::SHADERS;
    use std::collections::BTreeSet;

    fn shader(path: &str) -> &'static str {
        SHADERS
            .iter()
            .find(|(p, _)| *p == path)
            .unwrap_or_else(|| panic!("no shader {path}"))
            .1
    }

    /// The `{{NAME}}` placeholders of a shader file and of the files it includes.
    fn placeholders(path: &str) -> BTreeSet<String> {
        let text = shader(path);
        let mut names: BTreeSet<String> = text
            .split("{{")
            .skip(1)
            .filter_map(|s| s.split_once("}}").map(|(name, _)| name.to_string()))
            .collect();
        for line in text.lines() {
            if let Some(inc) = line.strip_prefix("#include \"") {
                names.extend(placeholders(inc.trim_end_matches('"')));
            }
        }
        names
    }

    /// Every nn kernel template's "Filled in by MODULE: NAME (…), …" comment names the module
    /// that composes it and exactly the placeholders it has (composing already fails on a
    /// value missing or unused, so this ties comment, template and generator together).
    #[test]
    fn template_comments_name_their_generator_and_placeholders() {
        let mut checked = 0;
        for (path, text) in SHADERS.iter().filter(|(p, _)| p.starts_with("nn/")) {
            let Some((_, rest)) = text.split_once("// Filled in by ") else {
                continue;
            };
            let (module, rest) = rest.split_once(": ").unwrap();
            let mut listed = String::new();
            for (i, line) in rest.lines().enumerate() {
                let line = if i == 0 {
                    Some(line)
                } else {
                    line.strip_prefix("//")
                };
                match line {
                    Some(l) if !l.trim().is_empty() => listed += &format!(" {l}"),
                    _ => break,
                }
            }
            let named: BTreeSet<String> = listed
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| {
                    w.starts_with(|c: char| c.is_ascii_uppercase())
                        && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                })
                .map(str::to_string)
                .collect();
            assert_eq!(named, placeholders(path), "{path}: its comment lists");
            let file = module.strip_prefix("nn::").unwrap().replace("::", "/");
            let source =
                std::fs::read_to_string(format!("{}/src/nn/{file}.rs", env!("CARGO_MANIFEST_DIR")))
                    .unwrap_or_else(|e| panic!("{path}: its comment names {module}: {e}"));
            assert!(
                source.contains(&format!("\"{path}\"")),
                "{path}: {module} does not compose it"
            );
            checked += 1;
        }
        assert!(
            checked >= 12,
            "only {checked} templates say who fills them in"
        );
    }
}
