//! The CPU twin of the network kernels, in f64: forward, backward and losses, written
//! plainly so tests can hold both the GPU and the PyTorch fixture to it, and hold it to
//! finite differences.

use super::model::{Architecture, Matrix, Params};

/// What the forward pass keeps for the backward pass.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The encoding's arguments z = (2π) x B, [n, features], when there is an encoding.
    pub enc_z: Option<Matrix>,
    /// Input of each linear layer ([n, layers[l]]): the encoded input first.
    pub h: Vec<Matrix>,
    /// Pre-activation of each linear layer.
    pub a: Vec<Matrix>,
    /// The output [n, outputs].
    pub y: Matrix,
}

fn scale(arch: &Architecture) -> f64 {
    match &arch.encoding {
        Some(e) if e.two_pi => 2.0 * std::f64::consts::PI,
        _ => 1.0,
    }
}

/// The network on a batch `x` [n, inputs].
pub fn forward(arch: &Architecture, p: &Params, x: &Matrix) -> Forward {
    let n = x.rows;
    let (enc_z, h0) = match (&arch.encoding, &p.b) {
        (Some(e), Some(b)) => {
            let s = scale(arch);
            let mut z = Matrix::zeros(n, e.features);
            let mut h = Matrix::zeros(n, 2 * e.features);
            for r in 0..n {
                for f in 0..e.features {
                    let mut acc = 0.0;
                    for i in 0..e.inputs {
                        acc += x.at(r, i) * b.at(i, f);
                    }
                    let zf = s * acc;
                    z.data[r * e.features + f] = zf;
                    h.data[r * 2 * e.features + f] = zf.cos();
                    h.data[r * 2 * e.features + e.features + f] = zf.sin();
                }
            }
            (Some(z), h)
        }
        _ => (None, x.clone()),
    };
    let mut h = vec![h0];
    let mut a = Vec::new();
    for l in 0..arch.n_linear() {
        let (w, bias) = (&p.weights[l], &p.biases[l]);
        let input = &h[l];
        let mut pre = Matrix::zeros(n, w.rows);
        for r in 0..n {
            for (o, &b0) in bias.iter().enumerate() {
                let mut acc = b0;
                for i in 0..w.cols {
                    acc += input.at(r, i) * w.at(o, i);
                }
                pre.data[r * w.rows + o] = acc;
            }
        }
        let act = arch.activation_after(l);
        let post = Matrix {
            rows: n,
            cols: w.rows,
            data: pre.data.iter().map(|&v| act.apply(v)).collect(),
        };
        a.push(pre);
        h.push(post);
    }
    let y = h.pop().expect("at least one layer");
    Forward { enc_z, h, a, y }
}

/// Gradients of a loss with respect to every parameter, given dL/dy.
pub fn backward(arch: &Architecture, p: &Params, fwd: &Forward, x: &Matrix, dy: &Matrix) -> Params {
    let n = dy.rows;
    let mut grad_w = Vec::new();
    let mut grad_b = Vec::new();
    let mut upstream = dy.clone(); // dL/d(output of layer l)
    for l in (0..arch.n_linear()).rev() {
        let (w, input, pre) = (&p.weights[l], &fwd.h[l], &fwd.a[l]);
        let act = arch.activation_after(l);
        let da: Vec<f64> = upstream
            .data
            .iter()
            .zip(&pre.data)
            .map(|(&g, &v)| g * act.derivative(v))
            .collect();
        let mut gw = Matrix::zeros(w.rows, w.cols);
        let mut gb = vec![0.0; w.rows];
        for r in 0..n {
            for o in 0..w.rows {
                let d = da[r * w.rows + o];
                gb[o] += d;
                for i in 0..w.cols {
                    gw.data[o * w.cols + i] += d * input.at(r, i);
                }
            }
        }
        let mut down = Matrix::zeros(n, w.cols);
        for r in 0..n {
            for i in 0..w.cols {
                let mut acc = 0.0;
                for o in 0..w.rows {
                    acc += da[r * w.rows + o] * w.at(o, i);
                }
                down.data[r * w.cols + i] = acc;
            }
        }
        grad_w.push(gw);
        grad_b.push(gb);
        upstream = down;
    }
    grad_w.reverse();
    grad_b.reverse();
    let grad_enc = match (&arch.encoding, &p.b, &fwd.enc_z) {
        (Some(e), Some(_), Some(z)) => {
            let s = scale(arch);
            let mut gb = Matrix::zeros(e.inputs, e.features);
            for r in 0..n {
                for f in 0..e.features {
                    let zf = z.at(r, f);
                    let dcos = upstream.at(r, f);
                    let dsin = upstream.at(r, e.features + f);
                    let dz = -dcos * zf.sin() + dsin * zf.cos();
                    for i in 0..e.inputs {
                        gb.data[i * e.features + f] += s * x.at(r, i) * dz;
                    }
                }
            }
            Some(gb)
        }
        _ => None,
    };
    Params {
        b: grad_enc,
        weights: grad_w,
        biases: grad_b,
    }
}

/// Mean squared error over all elements, and its gradient with respect to `y`.
pub fn mse(y: &Matrix, target: &Matrix) -> (f64, Matrix) {
    let count = y.data.len() as f64;
    let mut loss = 0.0;
    let mut dy = Matrix::zeros(y.rows, y.cols);
    for (k, (&v, &t)) in y.data.iter().zip(&target.data).enumerate() {
        let d = v - t;
        loss += d * d;
        dy.data[k] = 2.0 * d / count;
    }
    (loss / count, dy)
}

/// Relative L2 error ‖y − t‖ / ‖t‖ over all elements, and its gradient.
pub fn relative_l2(y: &Matrix, target: &Matrix) -> (f64, Matrix) {
    let diff: f64 = y
        .data
        .iter()
        .zip(&target.data)
        .map(|(v, t)| (v - t) * (v - t))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = target.data.iter().map(|t| t * t).sum::<f64>().sqrt();
    let loss = diff / norm;
    let dy = Matrix {
        rows: y.rows,
        cols: y.cols,
        data: y
            .data
            .iter()
            .zip(&target.data)
            .map(|(v, t)| {
                if diff > 0.0 {
                    (v - t) / (diff * norm)
                } else {
                    0.0
                }
            })
            .collect(),
    };
    (loss, dy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::mlp::model::{Activation, Encoding, EncodingKind, Init};
    use crate::rng::uniform_f64;

    fn arch(act: Activation, encoding: bool) -> Architecture {
        Architecture {
            kind: if encoding { "fourier_mlp" } else { "mlp" }.into(),
            encoding: encoding.then(|| Encoding {
                kind: EncodingKind::Gaussian,
                inputs: 2,
                features: 3,
                two_pi: true,
                order: "cos_then_sin".into(),
                sigma: Some(1.0),
                trainable: true,
            }),
            layers: if encoding {
                vec![6, 5, 4, 2]
            } else {
                vec![2, 5, 4, 2]
            },
            activation: act,
            output_activation: Activation::None,
        }
    }

    fn random(rows: usize, cols: usize, seed: u64) -> Matrix {
        Matrix {
            rows,
            cols,
            data: (0..rows * cols)
                .map(|k| 2.0 * uniform_f64(seed, k as u64, 0) - 1.0)
                .collect(),
        }
    }

    /// Every parameter's gradient against central differences of the loss, for every
    /// activation, with and without an encoding. Step 1e-6 in f64: truncation O(h²) ~1e-12
    /// and rounding ~1e-16/1e-6 = 1e-10, so 1e-7 relative (plus 1e-9 absolute) is tight.
    /// ReLU is checked away from its kink (random inputs land there with probability 0).
    #[test]
    fn gradients_match_central_differences() {
        for act in [
            Activation::Relu,
            Activation::Tanh,
            Activation::Gelu,
            Activation::Silu,
            Activation::Sin,
        ] {
            for encoding in [false, true] {
                let a = arch(act, encoding);
                let mut p = Params::init(&a, Init::Glorot, 7).unwrap();
                for (k, b) in p.biases.iter_mut().flatten().enumerate() {
                    *b = 0.1 * (uniform_f64(9, k as u64, 0) - 0.5);
                }
                let x = random(7, 2, 3);
                let t = random(7, 2, 4);
                let loss = |p: &Params| mse(&forward(&a, p, &x).y, &t).0;
                let fwd = forward(&a, &p, &x);
                let (_, dy) = mse(&fwd.y, &t);
                let grad = backward(&a, &p, &fwd, &x, &dy).flat();
                let base = p.flat();
                let h = 1e-6;
                for k in 0..base.len() {
                    let mut plus = base.clone();
                    plus[k] += h;
                    let mut minus = base.clone();
                    minus[k] -= h;
                    let mut q = p.clone();
                    q.set_flat(&plus);
                    let lp = loss(&q);
                    q.set_flat(&minus);
                    let lm = loss(&q);
                    let fd = (lp - lm) / (2.0 * h);
                    assert!(
                        (fd - grad[k]).abs() <= 1e-7 * fd.abs() + 1e-9,
                        "{act:?} enc={encoding} param {k}: fd {fd} vs {}",
                        grad[k]
                    );
                }
                p.set_flat(&base);
            }
        }
    }

    #[test]
    fn losses_and_their_gradients() {
        let y = Matrix {
            rows: 1,
            cols: 2,
            data: vec![1.0, 3.0],
        };
        let t = Matrix {
            rows: 1,
            cols: 2,
            data: vec![0.0, 1.0],
        };
        let (l, d) = mse(&y, &t);
        assert_eq!(l, 2.5);
        assert_eq!(d.data, vec![1.0, 2.0]);
        let (l, d) = relative_l2(&y, &t);
        assert!((l - 5f64.sqrt()).abs() < 1e-15);
        assert!((d.data[0] - 1.0 / 5f64.sqrt()).abs() < 1e-15);
    }
}
