//! Rosenbrock–Wanner methods in Hairer & Wanner's transformed form (Solving ODEs II,
//! §IV.7, (7.4')): with W = I/(hγ) − J, stage i solves
//!
//!   W u_i = f(t + α_i h, y + Σ_{j<i} a_ij u_j) + Σ_{j<i} (c_ij / h) u_j + γ_i h ∂f/∂t
//!
//! and y1 = y + Σ m_i u_i, the error estimate is Σ e_i u_i, and the dense output is
//! y(θ) = (1−θ) y + θ (y1 + (1−θ)(q_0 + θ(q_1 + θ q_2))) with q_k = Σ_i h_ki u_i.
//! The same numbers drive the WGSL generator and the CPU twin.

// Coefficients are written as their sources publish them, with more digits than an f64
// holds, so they can be checked against the papers digit for digit.
#![allow(clippy::excessive_precision)]

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rosenbrock {
    pub name: &'static str,
    /// Order of y1.
    pub order: u32,
    /// Order of the embedded solution: the controller's exponents use error_order + 1.
    pub error_order: u32,
    /// Order of the dense output.
    pub dense_order: u32,
    /// The diagonal γ of W = I/(hγ) − J.
    pub gamma: f64,
    /// Row i (i entries): stage i's argument y + Σ_{j<i} a_ij u_j. Row 0 is empty.
    pub a: &'static [&'static [f64]],
    /// Row i (i entries): stage i's right side adds Σ_{j<i} (c_ij / h) u_j.
    pub c: &'static [&'static [f64]],
    /// Stage times t + α_i h.
    pub alpha: &'static [f64],
    /// Stage i's right side adds γ_i h ∂f/∂t (non-autonomous systems only).
    pub gammas: &'static [f64],
    /// y1 = y + Σ m_i u_i.
    pub m: &'static [f64],
    /// The local error estimate Σ e_i u_i.
    pub e: &'static [f64],
    /// Dense-output rows q_k = Σ_i h_ki u_i (at most three).
    pub h: &'static [&'static [f64]],
}

impl Rosenbrock {
    pub fn stages(&self) -> usize {
        self.alpha.len()
    }

    /// The last stage is evaluated at (t + h, y1), so its f is the next step's first
    /// stage's (Rosenbrock23).
    pub fn fsal(&self) -> bool {
        let s = self.stages();
        self.alpha[s - 1] == 1.0 && self.a[s - 1] == &self.m[..s - 1] && self.m[s - 1] == 0.0
    }

    /// Right-hand-side evaluations of one step attempt: every stage but the first, whose f
    /// is f(t, y), kept from the step before (the FSAL stage of an FSAL method, else one
    /// more evaluation after each accepted step, counted there).
    pub fn evals_per_attempt(&self) -> u32 {
        self.stages() as u32 - 1
    }
}

/// Shampine & Reichelt's ode23s (The MATLAB ODE Suite, SIAM J. Sci. Comput. 18 (1997),
/// §3.1), d = 1/(2+√2), e32 = 6+√2. Its algorithm, with slopes k_i and W' = I − h d J,
///
///   k1 = W'⁻¹(F0 + h d T),  F1 = f(t + h/2, y + h k1/2),  k2 = W'⁻¹(F1 − k1) + k1,
///   y1 = y + h k2,  F2 = f(t + h, y1),  k3 = W'⁻¹(F2 − e32 (k2 − F1) − 2 (k1 − F0) + h d T),
///   error = h (k1 − 2 k2 + k3)/6 = ŷ − y1 for ŷ = y + h (k1 + 4 k2 + k3)/6,
///   y(t + θh) = y + h (θ(1−θ) k1 + θ(θ − 2d) k2)/(1 − 2d),
///
/// is a Rosenbrock method in Hairer–Wanner's standard form (κ_i = h k_i; substitute
/// k1 − F0 = h d J k1 + h d T and k2 − F1 = h d J (k2 − k1)): α21 = 1/2, α31 = 0, α32 = 1,
/// Γ = [[d, 0, 0], [−d, d, 0], [d (e32 − 2), −d e32, d]], γ_i (row sums) = d, 0, −d, and
/// y1 = y + κ2. Then Γ⁻¹ = [[1, 0, 0], [1, 1, 0], [2, e32, 1]]/d, and u = Γκ gives
/// a = αΓ⁻¹, C = diag(1/d) − Γ⁻¹, m = e2ᵀΓ⁻¹, e = −(e1 − 2e2 + e3)ᵀΓ⁻¹/6 and
/// q0 = (e1 − e2)ᵀΓ⁻¹/(1 − 2d):
///
///   a21 = 1/(2d), a31 = a32 = 1/d; c21 = −1/d, c31 = −2/d, c32 = −e32/d; m = (1/d, 1/d, 0);
///   e = −(1, e32 − 2, 1)/(6d); h0 = (0, −1/(d(1 − 2d)), 0).
///
/// e carries the minus sign so that, as for RODAS, the estimate is y1 − ŷ and y1 − error
/// is the higher-order companion ŷ (only the estimate's norm drives the steps).
///
/// The tests derive these from (d, e32) and check a step against ode23s's own algorithm.
/// The third stage is f at (t + h, y1): FSAL. The estimate is of y1's error, O(h³), so the
/// controller runs on error_order = 2 (ŷ = y1 − error is the third-order companion).
pub const ROSENBROCK23: Rosenbrock = Rosenbrock {
    name: "rosenbrock23",
    order: 2,
    error_order: 2,
    dense_order: 2,
    gamma: 0.2928932188134524755991556378951509607151,
    a: &[
        &[],
        &[1.707106781186547524400844362104849039285],
        &[
            3.414213562373095048801688724209698078570,
            3.414213562373095048801688724209698078570,
        ],
    ],
    c: &[
        &[],
        &[-3.414213562373095048801688724209698078570],
        &[
            -6.828427124746190097603377448419396157141,
            -25.31370849898476039041350979367758462856,
        ],
    ],
    alpha: &[0.0, 0.5, 1.0],
    gammas: &[
        0.2928932188134524755991556378951509607151,
        0.0,
        -0.2928932188134524755991556378951509607151,
    ],
    m: &[
        3.414213562373095048801688724209698078570,
        3.414213562373095048801688724209698078570,
        0.0,
    ],
    e: &[
        -0.5690355937288491748002814540349496797616,
        -3.080880229039761715468355390876364745236,
        -0.5690355937288491748002814540349496797616,
    ],
    h: &[&[0.0, -8.242640687119285146405066172629094235710, 0.0]],
};

/// Hairer & Wanner's RODAS (Solving ODEs II, 2nd ed., §VI.4 and Table VI.4.1; the
/// coefficients of their code rodas.f, METH = 1, with its dense output D21..D35): six
/// stages, γ = 1/4, stiffly accurate (stages 5 and 6 are at t + h, y1 is stage 6's argument
/// plus u6, and u6 is the error estimate of the embedded third-order solution).
pub const RODAS4: Rosenbrock = Rosenbrock {
    name: "rodas4",
    order: 4,
    error_order: 3,
    dense_order: 3,
    gamma: 0.25,
    a: &[
        &[],
        &[1.544],
        &[0.9466785280815826, 0.2557011698983284],
        &[3.314825187068521, 2.896124015972201, 0.9986419139977817],
        &[
            1.221224509226641,
            6.019134481288629,
            12.53708332932087,
            -0.6878860361058950,
        ],
        &[
            1.221224509226641,
            6.019134481288629,
            12.53708332932087,
            -0.6878860361058950,
            1.0,
        ],
    ],
    c: &[
        &[],
        &[-5.6688],
        &[-2.430093356833875, -0.2063599157091915],
        &[-0.1073529058151375, -9.594562251023355, -20.47028614809616],
        &[
            7.496443313967647,
            -10.24680431464352,
            -33.99990352819905,
            11.70890893206160,
        ],
        &[
            8.083246795921522,
            -7.981132988064893,
            -31.52159432874371,
            16.31930543123136,
            -6.058818238834054,
        ],
    ],
    alpha: &[0.0, 0.386, 0.21, 0.63, 1.0, 1.0],
    gammas: &[0.25, -0.1043, 0.1035, -0.0362, 0.0, 0.0],
    m: &[
        1.221224509226641,
        6.019134481288629,
        12.53708332932087,
        -0.6878860361058950,
        1.0,
        1.0,
    ],
    e: &[0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    h: &[
        &[
            10.12623508344586,
            -7.487995877610167,
            -34.80091861555747,
            -7.992771707568823,
            1.025137723295662,
            0.0,
        ],
        &[
            -0.6762803392801253,
            6.087714651680015,
            16.43084320892478,
            24.76722511418386,
            -6.594389125716872,
            0.0,
        ],
    ],
};

/// Steinebach's Rodas5P (Construction of Rosenbrock–Wanner method Rodas5P and numerical
/// benchmarks within the Julia Differential Equations package, BIT Numer. Math. 63 (2023)
/// 27): eight stages, γ = 0.21193756319429014, stiffly accurate like RODAS (stages 6–8 at
/// t + h; y1 is stage 8's argument plus u8, u8 the error of the embedded fourth-order
/// solution), with a fourth-order dense output of three rows, and built to keep its order
/// on Prothero–Robinson problems.
pub const RODAS5P: Rosenbrock = Rosenbrock {
    name: "rodas5p",
    order: 5,
    error_order: 4,
    dense_order: 4,
    gamma: 0.21193756319429014,
    a: &[
        &[],
        &[3.0],
        &[2.849394379747939, 0.45842242204463923],
        &[-6.954028509809101, 2.489845061869568, -10.358996098473584],
        &[
            2.8029986275628964,
            0.5072464736228206,
            -0.3988312541770524,
            -0.04721187230404641,
        ],
        &[
            -7.502846399306121,
            2.561846144803919,
            -11.627539656261098,
            -0.18268767659942256,
            0.030198172008377946,
        ],
        &[
            -7.502846399306121,
            2.561846144803919,
            -11.627539656261098,
            -0.18268767659942256,
            0.030198172008377946,
            1.0,
        ],
        &[
            -7.502846399306121,
            2.561846144803919,
            -11.627539656261098,
            -0.18268767659942256,
            0.030198172008377946,
            1.0,
            1.0,
        ],
    ],
    c: &[
        &[],
        &[-14.155112264123755],
        &[-17.97296035885952, -2.859693295451294],
        &[147.12150275711716, -1.41221402718213, 71.68940251302358],
        &[
            165.43517024871676,
            -0.4592823456491126,
            42.90938336958603,
            -5.961986721573306,
        ],
        &[
            24.854864614690072,
            -3.0009227002832186,
            47.4931110020768,
            5.5814197821558125,
            -0.6610691825249471,
        ],
        &[
            30.91273214028599,
            -3.1208243349937974,
            77.79954646070892,
            34.28646028294783,
            -19.097331116725623,
            -28.087943162872662,
        ],
        &[
            37.80277123390563,
            -3.2571969029072276,
            112.26918849496327,
            66.9347231244047,
            -40.06618937091002,
            -54.66780262877968,
            -9.48861652309627,
        ],
    ],
    alpha: &[
        0.0,
        0.6358126895828704,
        0.4095798393397535,
        0.9769306725060716,
        0.4288403609558664,
        1.0,
        1.0,
        1.0,
    ],
    gammas: &[
        0.21193756319429014,
        -0.42387512638858027,
        -0.3384627126235924,
        1.8046452872882734,
        2.325825639765069,
        0.0,
        0.0,
        0.0,
    ],
    m: &[
        -7.502846399306121,
        2.561846144803919,
        -11.627539656261098,
        -0.18268767659942256,
        0.030198172008377946,
        1.0,
        1.0,
        1.0,
    ],
    e: &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    h: &[
        &[
            25.948786856663858,
            -2.5579724845846235,
            10.433815404888879,
            -2.3679251022685204,
            0.524948541321073,
            1.1241088310450404,
            0.4272876194431874,
            -0.17202221070155493,
        ],
        &[
            -9.91568850695171,
            -0.9689944594115154,
            3.0438037242978453,
            -24.495224566215796,
            20.176138334709044,
            15.98066361424651,
            -6.789040303419874,
            -6.710236069923372,
        ],
        &[
            11.419903575922262,
            2.8879645146136994,
            72.92137995996029,
            80.12511834622643,
            -52.072871366152654,
            -59.78993625266729,
            -0.15582684282751913,
            4.883087185713722,
        ],
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::stiff::lu;

    const ALL: [&Rosenbrock; 3] = [&ROSENBROCK23, &RODAS4, &RODAS5P];

    /// A problem given by closures: f(t, y), J = ∂f/∂y (row-major) and ∂f/∂t.
    struct Problem<'a> {
        f: &'a dyn Fn(f64, &[f64]) -> Vec<f64>,
        jac: &'a dyn Fn(f64, &[f64]) -> Vec<f64>,
        ft: &'a dyn Fn(f64, &[f64]) -> Vec<f64>,
    }

    /// One step of the transformed form as the module doc states it, written
    /// independently of the twin: (y1, error estimate, dense output at each θ).
    fn step(
        tab: &Rosenbrock,
        pb: &Problem,
        t: f64,
        y: &[f64],
        h: f64,
        thetas: &[f64],
    ) -> (Vec<f64>, Vec<f64>, Vec<Vec<f64>>) {
        let n = y.len();
        let j = (pb.jac)(t, y);
        let ft = (pb.ft)(t, y);
        let mut w: Vec<f64> = j.iter().map(|v| -v).collect();
        for i in 0..n {
            w[i * n + i] += 1.0 / (h * tab.gamma);
        }
        let piv = lu::factor(&mut w, n).unwrap();
        let mut u: Vec<Vec<f64>> = Vec::new();
        for i in 0..tab.stages() {
            let arg: Vec<f64> = (0..n)
                .map(|c| y[c] + (0..i).map(|k| tab.a[i][k] * u[k][c]).sum::<f64>())
                .collect();
            let f = (pb.f)(t + tab.alpha[i] * h, &arg);
            let mut r: Vec<f64> = (0..n)
                .map(|c| {
                    f[c] + (0..i).map(|k| tab.c[i][k] / h * u[k][c]).sum::<f64>()
                        + tab.gammas[i] * h * ft[c]
                })
                .collect();
            lu::solve(&w, n, &piv, &mut r);
            u.push(r);
        }
        let comb = |w: &[f64], c: usize| (0..u.len()).map(|i| w[i] * u[i][c]).sum::<f64>();
        let y1: Vec<f64> = (0..n).map(|c| y[c] + comb(tab.m, c)).collect();
        let err: Vec<f64> = (0..n).map(|c| comb(tab.e, c)).collect();
        let dense = thetas
            .iter()
            .map(|&th| {
                (0..n)
                    .map(|c| {
                        let q: Vec<f64> = tab.h.iter().map(|row| comb(row, c)).collect();
                        let mut poly = 0.0;
                        for qk in q.iter().rev() {
                            poly = qk + th * poly;
                        }
                        (1.0 - th) * y[c] + th * (y1[c] + (1.0 - th) * poly)
                    })
                    .collect()
            })
            .collect();
        (y1, err, dense)
    }

    /// A nonlinear, non-autonomous, coupled test problem: every elementary differential
    /// of low order is non-zero, so every order condition is exercised.
    fn f(t: f64, y: &[f64]) -> Vec<f64> {
        vec![
            -y[1] + 0.5 * y[0] * (1.0 - y[0] * y[0]) + 0.3 * t.sin(),
            y[0] + 0.2 * y[0] * y[1] + 0.1 * (2.0 * t).cos() - 0.4 * t * y[1],
        ]
    }
    fn jac(t: f64, y: &[f64]) -> Vec<f64> {
        vec![
            0.5 - 1.5 * y[0] * y[0],
            -1.0,
            1.0 + 0.2 * y[1],
            0.2 * y[0] - 0.4 * t,
        ]
    }
    fn ft(t: f64, y: &[f64]) -> Vec<f64> {
        vec![0.3 * t.cos(), -0.2 * (2.0 * t).sin() - 0.4 * y[1]]
    }
    const PB: Problem = Problem {
        f: &f,
        jac: &jac,
        ft: &ft,
    };

    /// The exact flow from (t, y) over s, by classical RK4 with steps of 2.5e-5 (its
    /// error, ~1e-18 here, is far below the errors measured).
    fn exact(t: f64, y: &[f64], s: f64) -> Vec<f64> {
        let n = (s / 2.5e-5).ceil() as usize;
        let dt = s / n as f64;
        let mut y = y.to_vec();
        for i in 0..n {
            let ti = t + i as f64 * dt;
            let add = |y: &[f64], k: &[f64], a: f64| -> Vec<f64> {
                y.iter().zip(k).map(|(y, k)| y + a * k).collect()
            };
            let k1 = f(ti, &y);
            let k2 = f(ti + dt / 2.0, &add(&y, &k1, dt / 2.0));
            let k3 = f(ti + dt / 2.0, &add(&y, &k2, dt / 2.0));
            let k4 = f(ti + dt, &add(&y, &k3, dt));
            for c in 0..y.len() {
                y[c] += dt / 6.0 * (k1[c] + 2.0 * k2[c] + 2.0 * k3[c] + k4[c]);
            }
        }
        y
    }

    fn dist(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
    }

    /// Observed local orders (log2 of successive error ratios, minus one) of y1, the
    /// embedded solution y1 − error and the dense output at θ = 0.4.
    fn local_orders(tab: &Rosenbrock) -> [f64; 3] {
        let (t0, y0) = (0.3, [0.8, -0.4]);
        let hs = [0.08, 0.04, 0.02];
        let theta = 0.4;
        let mut errs = [[0.0; 3]; 3];
        for (k, &h) in hs.iter().enumerate() {
            let (y1, est, dense) = step(tab, &PB, t0, &y0, h, &[theta]);
            let ex = exact(t0, &y0, h);
            let emb: Vec<f64> = y1.iter().zip(&est).map(|(y, e)| y - e).collect();
            errs[0][k] = dist(&y1, &ex);
            errs[1][k] = dist(&emb, &ex);
            errs[2][k] = dist(&dense[0], &exact(t0, &y0, theta * h));
        }
        errs.map(|e| (e[1] / e[2]).log2() - 1.0)
    }

    #[test]
    fn local_errors_have_each_methods_orders() {
        for tab in ALL {
            let [main, embedded, dense] = local_orders(tab);
            eprintln!(
                "{}: y1 {main:.2}, embedded {embedded:.2}, dense {dense:.2}",
                tab.name
            );
            // The observed order of an order-p formula tends to p as h -> 0; at these
            // steps it is within 0.35 of it (a missed condition would show as a whole
            // order less).
            let near = |got: f64, want: u32| (got - want as f64).abs() < 0.35;
            assert!(near(main, tab.order), "{}: y1 order {main}", tab.name);
            let emb_order = if tab.name == "rosenbrock23" {
                3
            } else {
                tab.error_order
            };
            assert!(
                near(embedded, emb_order),
                "{}: embedded {embedded}",
                tab.name
            );
            assert!(near(dense, tab.dense_order), "{}: dense {dense}", tab.name);
        }
    }

    /// Builds the transformed coefficients of ode23s from (d, e32) by the matrix algebra
    /// of the doc comment: Γ from the algorithm, u = Γκ.
    #[test]
    #[allow(clippy::needless_range_loop)] // matrix algebra reads best with indices
    fn rosenbrock23_literals_are_ode23s_transformed() {
        let d = 1.0 / (2.0 + 2f64.sqrt());
        let e32 = 6.0 + 2f64.sqrt();
        let g = [[d, 0.0, 0.0], [-d, d, 0.0], [d * (e32 - 2.0), -d * e32, d]];
        // Γ⁻¹ of a lower-triangular matrix by forward substitution, column by column.
        let mut gi = [[0.0; 3]; 3];
        for col in 0..3 {
            for i in 0..3 {
                let rhs = if i == col { 1.0 } else { 0.0 };
                let s: f64 = (0..i).map(|k| g[i][k] * gi[k][col]).sum();
                let v = (rhs - s) / g[i][i];
                gi[i][col] = v;
            }
        }
        let alpha = [[0.0; 3], [0.5, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let row = |v: [f64; 3]| -> [f64; 3] {
            [0, 1, 2].map(|j| (0..3).map(|k| v[k] * gi[k][j]).sum::<f64>())
        };
        let close = |a: f64, b: f64| (a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1.0);
        let t = &ROSENBROCK23;
        for i in 0..3 {
            let a = row(alpha[i]);
            for j in 0..i {
                assert!(close(t.a[i][j], a[j]), "a{i}{j}: {} vs {}", t.a[i][j], a[j]);
                assert!(close(t.c[i][j], -gi[i][j]), "c{i}{j}");
            }
            assert!(close(t.gammas[i], g[i].iter().sum()), "gamma{i}");
            assert!(close(t.alpha[i], alpha[i].iter().sum()), "alpha{i}");
        }
        let m = row([0.0, 1.0, 0.0]);
        let e = row([-1.0 / 6.0, 2.0 / 6.0, -1.0 / 6.0]);
        let q0 = row([1.0 / (1.0 - 2.0 * d), -1.0 / (1.0 - 2.0 * d), 0.0]);
        for j in 0..3 {
            assert!(close(t.m[j], m[j]), "m{j}");
            assert!(close(t.e[j], e[j]), "e{j}: {} vs {}", t.e[j], e[j]);
            assert!(close(t.h[0][j], q0[j]), "h0{j}: {} vs {}", t.h[0][j], q0[j]);
        }
        assert!(close(t.gamma, d));
    }

    /// One step of ode23s exactly as Shampine & Reichelt write it (slopes k_i, W' = I −
    /// h d J), against the transformed form, on y' = A y + b + c t (J = A, T = c).
    #[test]
    fn rosenbrock23_steps_like_ode23s() {
        let d = 1.0 / (2.0 + 2f64.sqrt());
        let e32 = 6.0 + 2f64.sqrt();
        let a = [0.3, -1.2, 0.7, 2.0, -0.5, 0.1, -0.4, 0.9, -3.0];
        let b = [0.5, -0.2, 1.1];
        let cc = [0.8, 0.3, -0.6];
        let lin = |t: f64, y: &[f64]| -> Vec<f64> {
            (0..3)
                .map(|i| (0..3).map(|j| a[i * 3 + j] * y[j]).sum::<f64>() + b[i] + cc[i] * t)
                .collect()
        };
        let pb = Problem {
            f: &lin,
            jac: &|_, _| a.to_vec(),
            ft: &|_, _| cc.to_vec(),
        };
        let (t, h, y) = (0.7, 0.3, [1.0, -0.5, 0.25]);
        let thetas = [0.3, 0.8];
        let (y1, err, dense) = step(&ROSENBROCK23, &pb, t, &y, h, &thetas);

        let mut w: Vec<f64> = a.iter().map(|v| -h * d * v).collect();
        for i in 0..3 {
            w[i * 3 + i] += 1.0;
        }
        let piv = lu::factor(&mut w, 3).unwrap();
        let solve = |mut r: Vec<f64>| {
            lu::solve(&w, 3, &piv, &mut r);
            r
        };
        let comb = |x: &[f64], s: f64, z: &[f64]| -> Vec<f64> {
            x.iter().zip(z).map(|(x, z)| x + s * z).collect()
        };
        let f0 = lin(t, &y);
        let k1 = solve(comb(&f0, h * d, &cc));
        let f1 = lin(t + 0.5 * h, &comb(&y, 0.5 * h, &k1));
        let k2 = comb(&solve(comb(&f1, -1.0, &k1)), 1.0, &k1);
        let ynew = comb(&y, h, &k2);
        let f2 = lin(t + h, &ynew);
        let rhs: Vec<f64> = (0..3)
            .map(|i| f2[i] - e32 * (k2[i] - f1[i]) - 2.0 * (k1[i] - f0[i]) + h * d * cc[i])
            .collect();
        let k3 = solve(rhs);
        // ode23s's estimate h (k1 − 2k2 + k3)/6 with the tableau's sign (y1 − ŷ).
        let est: Vec<f64> = (0..3)
            .map(|i| -h / 6.0 * (k1[i] - 2.0 * k2[i] + k3[i]))
            .collect();
        // Different operation orders: agreement to a few hundred ulps of the stages.
        let tol = 1e-13;
        assert!(dist(&y1, &ynew) < tol, "{y1:?} vs {ynew:?}");
        assert!(dist(&err, &est) < tol, "{err:?} vs {est:?}");
        for (th, got) in thetas.iter().zip(&dense) {
            let want: Vec<f64> = (0..3)
                .map(|i| {
                    y[i] + h * (th * (1.0 - th) * k1[i] + th * (th - 2.0 * d) * k2[i])
                        / (1.0 - 2.0 * d)
                })
                .collect();
            assert!(dist(got, &want) < tol, "θ = {th}: {got:?} vs {want:?}");
        }
    }

    /// R(z) = y1/y0 for y' = λy, z = hλ complex: every stage is a scalar.
    fn stability(tab: &Rosenbrock, z: (f64, f64)) -> (f64, f64) {
        let mul = |a: (f64, f64), b: (f64, f64)| (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0);
        let div = |a: (f64, f64), b: (f64, f64)| {
            let n = b.0 * b.0 + b.1 * b.1;
            ((a.0 * b.0 + a.1 * b.1) / n, (a.1 * b.0 - a.0 * b.1) / n)
        };
        // h = 1: W = 1/γ − z; W u_i = z (1 + Σ a_ij u_j) + Σ c_ij u_j.
        let w = (1.0 / tab.gamma - z.0, -z.1);
        let mut u: Vec<(f64, f64)> = Vec::new();
        for i in 0..tab.stages() {
            let mut arg = (1.0, 0.0);
            let mut r = (0.0, 0.0);
            for (j, uj) in u.iter().enumerate() {
                arg = (arg.0 + tab.a[i][j] * uj.0, arg.1 + tab.a[i][j] * uj.1);
                r = (r.0 + tab.c[i][j] * uj.0, r.1 + tab.c[i][j] * uj.1);
            }
            let za = mul(z, arg);
            u.push(div((za.0 + r.0, za.1 + r.1), w));
        }
        u.iter().zip(tab.m).fold((1.0, 0.0), |acc, (ui, m)| {
            (acc.0 + m * ui.0, acc.1 + m * ui.1)
        })
    }

    #[test]
    fn every_method_is_l_stable() {
        for tab in ALL {
            let abs = |r: (f64, f64)| r.0.hypot(r.1);
            // R(z) = O(1/z) at infinity: R(−1e12) is about 1e-12 times a modest constant.
            let inf = abs(stability(tab, (-1e12, 0.0)));
            assert!(inf < 1e-9, "{}: |R(-1e12)| = {inf:e}", tab.name);
            // A-stability, sampled: |R| <= 1 on the imaginary axis and in the left half
            // plane (the maximum principle puts the maximum on the axis).
            for k in 0..=400 {
                let y = 10f64.powf(-3.0 + 9.0 * k as f64 / 400.0);
                for z in [(0.0, y), (-y, 0.0), (-y, y), (-0.1 * y, y)] {
                    let r = abs(stability(tab, z));
                    assert!(r <= 1.0 + 1e-12, "{}: |R({z:?})| = {r}", tab.name);
                }
            }
        }
    }

    #[test]
    fn fsal_and_evaluation_counts() {
        assert!(ROSENBROCK23.fsal());
        assert_eq!(ROSENBROCK23.evals_per_attempt(), 2);
        assert!(!RODAS4.fsal());
        assert_eq!(RODAS4.evals_per_attempt(), 5);
        assert!(!RODAS5P.fsal());
        assert_eq!(RODAS5P.evals_per_attempt(), 7);
    }

    #[test]
    fn shapes_are_consistent() {
        for tab in ALL {
            let s = tab.stages();
            assert_eq!(tab.a.len(), s);
            assert_eq!(tab.c.len(), s);
            assert_eq!(tab.gammas.len(), s);
            assert_eq!((tab.m.len(), tab.e.len()), (s, s));
            for i in 0..s {
                assert_eq!((tab.a[i].len(), tab.c[i].len()), (i, i), "{}", tab.name);
            }
            assert!(tab.h.iter().all(|r| r.len() == s) && tab.h.len() <= 3);
            assert_eq!(tab.gammas[0], tab.gamma);
        }
    }
}
