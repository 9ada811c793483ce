//! Checkpoints as `.safetensors` in PyTorch's `state_dict` layout, with the architecture as
//! JSON in the header metadata (`architecture`), so a network trained here loads into the
//! equivalent PyTorch `nn.Sequential` and back.
//!
//! A checkpoint is user input (a file, or an upload to the server): every loader of a model
//! refuses a weight that is NaN, infinite or beyond f32's range (the GPU computes in f32),
//! naming the tensor and the index, before anything uses it.

use super::deeponet::model::{DeepONetArch, DeepONetParams};
use super::deeponet::trainer::DeepONetTrainState;
use super::mlp::model::{Architecture, ModelError, Params};
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("cannot read '{path}': {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write '{path}': {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}' is not a safetensors file: {message}")]
    Format { path: String, message: String },
    #[error(
        "'{path}' has no architecture in its metadata; it was not written by phaseflow or by the fixture's recipe"
    )]
    NoArchitecture { path: String },
    #[error("'{path}': the architecture in its metadata is not valid: {message}")]
    BadArchitecture { path: String, message: String },
    #[error("'{path}': tensor '{name}' holds {dtype}; expected F32 or F64")]
    Dtype {
        path: String,
        name: String,
        dtype: String,
    },
    #[error("'{path}': weight '{name}' holds {value:e} at index {index}; {why}")]
    Weight {
        path: String,
        name: String,
        index: usize,
        value: f64,
        why: &'static str,
    },
    #[error("'{path}': {source}")]
    Model {
        path: String,
        #[source]
        source: ModelError,
    },
}

/// Every tensor of a safetensors file as (shape, f64 values), and its metadata.
pub type Tensors = HashMap<String, (Vec<usize>, Vec<f64>)>;

pub fn read_tensors(path: &Path) -> Result<(Tensors, HashMap<String, String>), CheckpointError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read {
        path: p.clone(),
        source,
    })?;
    let format = |e: safetensors::SafeTensorError| CheckpointError::Format {
        path: p.clone(),
        message: e.to_string(),
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(format)?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(format)?;
    let mut out = HashMap::new();
    for (name, view) in tensors.tensors() {
        let data = view.data();
        let values: Vec<f64> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64)
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect(),
            other => {
                return Err(CheckpointError::Dtype {
                    path: p,
                    name,
                    dtype: format!("{other:?}"),
                });
            }
        };
        out.insert(name, (view.shape().to_vec(), values));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

/// A checkpoint's tensors, the architecture in its metadata read as `T` (`what` the model
/// is, for the message when it is not), and the metadata.
fn read_with_architecture<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<(Tensors, T, HashMap<String, String>), CheckpointError> {
    let p = path.display().to_string();
    let (tensors, meta) = read_tensors(path)?;
    check_weights(
        tensors
            .iter()
            .map(|(name, (_, values))| (name.as_str(), &values[..])),
        &p,
    )?;
    let text = meta
        .get("architecture")
        .ok_or_else(|| CheckpointError::NoArchitecture { path: p.clone() })?;
    let arch = serde_json::from_str(text).map_err(|e| CheckpointError::BadArchitecture {
        path: p,
        message: format!("not {what}: {e}"),
    })?;
    Ok((tensors, arch, meta))
}

/// Refuses the first weight that the GPU cannot hold: NaN, infinite, or finite but beyond
/// f32's range (it would become infinite there). `path` is what the message calls the
/// source. Tensors are checked in name order, so the message is the same every time.
pub fn check_weights<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a [f64])>,
    path: &str,
) -> Result<(), CheckpointError> {
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_by_key(|t| t.0);
    for (name, values) in tensors {
        let bad = values
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite() || v.abs() > f32::MAX as f64);
        if let Some((index, &value)) = bad {
            return Err(CheckpointError::Weight {
                path: path.to_string(),
                name: name.to_string(),
                index,
                value,
                why: if value.is_finite() {
                    "weights must lie within f32's range (±3.4e38), which the GPU computes in"
                } else {
                    "weights must be finite"
                },
            });
        }
    }
    Ok(())
}

/// A network from a checkpoint.
pub fn load(path: &Path) -> Result<(Architecture, Params), CheckpointError> {
    let p = path.display().to_string();
    let (tensors, arch, _): (_, Architecture, _) = read_with_architecture(path, "an MLP")?;
    let params = Params::from_named(&arch, &|name| tensors.get(name).cloned())
        .map_err(|source| CheckpointError::Model { path: p, source })?;
    Ok((arch, params))
}

/// An f32 tensor for the writer.
struct F32Tensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &F32Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes a checkpoint: parameters as f32 (as PyTorch keeps them), the architecture and
/// `extra` entries in the metadata.
pub fn save(
    path: &Path,
    arch: &Architecture,
    params: &Params,
    extra: &[(&str, String)],
) -> Result<(), CheckpointError> {
    let bytes = save_bytes(arch, params, extra).map_err(|e| match e {
        CheckpointError::Format { message, .. } => CheckpointError::Format {
            path: path.display().to_string(),
            message,
        },
        other => other,
    })?;
    std::fs::write(path, bytes).map_err(|source| CheckpointError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// The bytes of the checkpoint `save` writes.
pub fn save_bytes(
    arch: &Architecture,
    params: &Params,
    extra: &[(&str, String)],
) -> Result<Vec<u8>, CheckpointError> {
    let architecture = serde_json::to_string(arch).expect("architectures serialise");
    serialize(params.named(), architecture, extra)
}

/// A DeepONet checkpoint: tensors named as the PyTorch module with submodules `branch`
/// and `trunk` and parameter `b` (see `nn::deeponet::model`), the architecture in the metadata.
pub fn save_deeponet_bytes(
    arch: &DeepONetArch,
    params: &DeepONetParams,
    extra: &[(&str, String)],
) -> Result<Vec<u8>, CheckpointError> {
    let architecture = serde_json::to_string(arch).expect("architectures serialise");
    serialize(params.named(), architecture, extra)
}

/// A DeepONet from a checkpoint written by `save_deeponet_bytes`.
pub fn load_deeponet(path: &Path) -> Result<(DeepONetArch, DeepONetParams), CheckpointError> {
    let (tensors, arch, _): (_, DeepONetArch, _) = read_with_architecture(path, "a DeepONet")?;
    let params = deeponet_params(path, &tensors, &arch, "")?;
    Ok((arch, params))
}

/// The DeepONet tensors named `prefix` + the model's names.
fn deeponet_params(
    path: &Path,
    tensors: &Tensors,
    arch: &DeepONetArch,
    prefix: &str,
) -> Result<DeepONetParams, CheckpointError> {
    let model = |source| CheckpointError::Model {
        path: path.display().to_string(),
        source,
    };
    arch.check().map_err(model)?;
    // A missing or misshapen tensor is named as stored (`branch.layers.4.weight`), not
    // as the net alone calls it.
    let net = |net: &str, a: &Architecture| {
        let stored = |name: String| format!("{prefix}{net}.{name}");
        Params::from_named(a, &|name| tensors.get(&stored(name.to_string())).cloned()).map_err(
            |e| match e {
                ModelError::Missing(name) => ModelError::Missing(stored(name)),
                ModelError::Shape { name, got, want } => ModelError::Shape {
                    name: stored(name),
                    got,
                    want,
                },
                other => other,
            },
        )
    };
    let branch = net("branch", &arch.branch).map_err(model)?;
    let trunk = net("trunk", &arch.trunk).map_err(model)?;
    let name = format!("{prefix}b");
    let bias = match tensors.get(&name) {
        Some((shape, values)) if shape[..] == [arch.outputs] => values.clone(),
        Some((shape, _)) => {
            return Err(model(ModelError::Shape {
                name,
                got: shape.clone(),
                want: vec![arch.outputs],
            }));
        }
        None => return Err(model(ModelError::Missing(name))),
    };
    Ok(DeepONetParams {
        branch,
        trunk,
        bias,
    })
}

/// Where a DeepONet training run stands, stored beside its tensors (`train_state`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Position {
    step: u32,
    samplers: [(u64, usize); 2],
}

/// A DeepONet training run's state, to go on with later (`load_deeponet_state`): the
/// parameters under the model's names (so the file is also a checkpoint of the current
/// network), Adam's moments under `exp_avg.` and `exp_avg_sq.` + those names (PyTorch's
/// names for them), the step and sampler positions as JSON in `train_state`, and `extra`.
pub fn save_deeponet_state_bytes(
    arch: &DeepONetArch,
    state: &DeepONetTrainState,
    extra: &[(&str, String)],
) -> Result<Vec<u8>, CheckpointError> {
    let architecture = serde_json::to_string(arch).expect("architectures serialise");
    let mut named = state.params.named();
    for (prefix, m) in ["exp_avg.", "exp_avg_sq."].iter().zip(&state.moments) {
        named.extend(
            m.named()
                .into_iter()
                .map(|(n, shape, v)| (format!("{prefix}{n}"), shape, v)),
        );
    }
    let position = serde_json::to_string(&Position {
        step: state.step,
        samplers: state.samplers,
    })
    .expect("positions serialise");
    let mut meta = vec![("train_state", position)];
    meta.extend(extra.iter().cloned());
    serialize(named, architecture, &meta)
}

/// A training state written by `save_deeponet_state_bytes`, with its architecture and
/// all of the file's metadata.
pub fn load_deeponet_state(
    path: &Path,
) -> Result<(DeepONetArch, DeepONetTrainState, HashMap<String, String>), CheckpointError> {
    let (tensors, arch, meta): (_, DeepONetArch, _) = read_with_architecture(path, "a DeepONet")?;
    let p = path.display().to_string();
    let position: Position = meta
        .get("train_state")
        .ok_or_else(|| CheckpointError::Format {
            path: p.clone(),
            message: "no train_state in the metadata: it is a model checkpoint, not a \
                      training state"
                .into(),
        })
        .and_then(|text| {
            serde_json::from_str(text).map_err(|e| CheckpointError::Format {
                path: p.clone(),
                message: format!("train_state: {e}"),
            })
        })?;
    let second = deeponet_params(path, &tensors, &arch, "exp_avg_sq.")?;
    // Adam divides by the square root of the second moment: a negative one (a damaged or
    // edited file) would turn the run to NaN some steps later.
    if second.flat().iter().any(|v| *v < 0.0) {
        return Err(CheckpointError::Format {
            path: p,
            message: "exp_avg_sq (Adam's second moment) holds negative values; it is damaged"
                .into(),
        });
    }
    let state = DeepONetTrainState {
        step: position.step,
        params: deeponet_params(path, &tensors, &arch, "")?,
        moments: [deeponet_params(path, &tensors, &arch, "exp_avg.")?, second],
        samplers: position.samplers,
    };
    Ok((arch, state, meta))
}

fn serialize(
    named: Vec<(String, Vec<usize>, &[f64])>,
    architecture: String,
    extra: &[(&str, String)],
) -> Result<Vec<u8>, CheckpointError> {
    let tensors: BTreeMap<String, F32Tensor> = named
        .into_iter()
        .map(|(name, shape, values)| {
            let bytes = values
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect();
            (name, F32Tensor { shape, bytes })
        })
        .collect();
    let mut meta = HashMap::new();
    meta.insert("architecture".to_string(), architecture);
    meta.insert(
        "framework".to_string(),
        format!("phaseflow {}", env!("CARGO_PKG_VERSION")),
    );
    for (k, v) in extra {
        meta.insert(k.to_string(), v.clone());
    }
    safetensors::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), Some(meta)).map_err(|e| {
        CheckpointError::Format {
            path: "<checkpoint>".into(),
            message: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, Init, NetSpec, Strategy};

    /// `bytes` (a checkpoint) with the f32 at flat `index` of tensor `name` set to `value`.
    fn patch(mut bytes: Vec<u8>, name: &str, index: usize, value: f32) -> Vec<u8> {
        let (header_len, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let info = meta.info(name).unwrap();
        let at = 8 + header_len + info.data_offsets.0 + 4 * index;
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        bytes
    }

    fn mlp_bytes() -> Vec<u8> {
        let arch = Architecture::mlp(2, None, &[3], 1, Activation::Tanh);
        let params = Params::init(&arch, Init::Glorot, 1).unwrap();
        save_bytes(&arch, &params, &[]).unwrap()
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("phaseflow-ckpt-{}-{name}", std::process::id()))
    }

    #[test]
    fn non_finite_weights_are_refused_with_the_tensor_named() {
        let path = temp("nan.safetensors");
        std::fs::write(&path, patch(mlp_bytes(), "layers.0.weight", 4, f32::NAN)).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(
            e.contains("weight 'layers.0.weight' holds NaN at index 4; weights must be finite"),
            "{e}"
        );
        std::fs::write(
            &path,
            patch(mlp_bytes(), "layers.2.bias", 0, f32::NEG_INFINITY),
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("'layers.2.bias' holds -inf at index 0"), "{e}");
        // The same file with a finite value there loads, and holds it.
        std::fs::write(&path, patch(mlp_bytes(), "layers.2.bias", 0, 0.25)).unwrap();
        let (_, params) = load(&path).unwrap();
        assert_eq!(params.biases[1][0], 0.25);
        std::fs::remove_file(&path).unwrap();
    }

    /// The server's upload and the CLI's predict both load through `load_deeponet`; resume
    /// through `load_deeponet_state`, whose Adam moments are checked too.
    #[test]
    fn deeponet_loaders_refuse_non_finite_weights() {
        let spec = |inputs| NetSpec {
            inputs,
            hidden: vec![4],
            encoding: None,
        };
        let arch = DeepONetArch::new(
            spec(3),
            spec(1),
            2,
            1,
            Strategy::SplitBoth,
            Activation::Tanh,
        );
        let params = DeepONetParams::init(&arch, Init::Glorot, 3).unwrap();
        let good = save_deeponet_bytes(&arch, &params, &[]).unwrap();
        let path = temp("deeponet.safetensors");
        std::fs::write(&path, &good).unwrap();
        assert!(load_deeponet(&path).is_ok());
        std::fs::write(
            &path,
            patch(good.clone(), "trunk.layers.0.weight", 2, f32::INFINITY),
        )
        .unwrap();
        let e = load_deeponet(&path).unwrap_err().to_string();
        assert!(
            e.contains("weight 'trunk.layers.0.weight' holds inf at index 2"),
            "{e}"
        );
        // A tensor missing (renamed in the header, the same length) is named with its net.
        let header_len = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let header = String::from_utf8(good[8..header_len].to_vec()).unwrap();
        let mut renamed = good[..8].to_vec();
        renamed.extend_from_slice(
            header
                .replace("\"branch.layers.0.weight\"", "\"branch.layers.0.weighx\"")
                .as_bytes(),
        );
        renamed.extend_from_slice(&good[header_len..]);
        std::fs::write(&path, &renamed).unwrap();
        let e = load_deeponet(&path).unwrap_err().to_string();
        assert!(
            e.contains("parameter 'branch.layers.0.weight' is missing"),
            "{e}"
        );
        std::fs::write(&path, patch(good, "b", 0, f32::NAN)).unwrap();
        let e = load_deeponet(&path).unwrap_err().to_string();
        assert!(e.contains("weight 'b' holds NaN at index 0"), "{e}");
        let mut squares = params.clone();
        squares.set_flat(&params.flat().iter().map(|v| v * v).collect::<Vec<_>>());
        let state = DeepONetTrainState {
            step: 5,
            params: params.clone(),
            moments: [params.clone(), squares],
            samplers: [(1, 0), (2, 0)],
        };
        let bytes = save_deeponet_state_bytes(&arch, &state, &[]).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(load_deeponet_state(&path).unwrap().1.step, 5);
        std::fs::write(
            &path,
            patch(
                bytes.clone(),
                "exp_avg_sq.branch.layers.0.bias",
                1,
                f32::NAN,
            ),
        )
        .unwrap();
        let e = load_deeponet_state(&path).err().unwrap().to_string();
        assert!(
            e.contains("'exp_avg_sq.branch.layers.0.bias' holds NaN at index 1"),
            "{e}"
        );
        // A negative second moment (Adam divides by its square root) is damage too.
        std::fs::write(
            &path,
            patch(bytes, "exp_avg_sq.trunk.layers.0.weight", 0, -1e-3),
        )
        .unwrap();
        let e = load_deeponet_state(&path).err().unwrap().to_string();
        assert!(
            e.contains("exp_avg_sq (Adam's second moment) holds negative"),
            "{e}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn weights_beyond_f32_are_refused() {
        let e = check_weights([("b", &[0.0, 1e300][..])], "x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'b' holds 1e300 at index 1; weights must lie within f32's range"),
            "{e}"
        );
        assert!(check_weights([("b", &[f32::MAX as f64, -1.0][..])], "x").is_ok());
    }
}
