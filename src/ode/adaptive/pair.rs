//! Embedded Runge–Kutta pairs for adaptive stepping, with their continuous extensions. The
//! same numbers drive the WGSL generator (`ode::adaptive::kernel`) and the CPU twin
//! (`ode::adaptive::cpu`).
//!
//! Every pair here is FSAL: its last main stage is evaluated at `(t + h, y_new)`, so it is
//! the next step's first stage. Stages are numbered from 0 in the code (the papers count
//! from 1).

// Coefficients are written as their sources publish them, with more digits than an f64
// holds, so they can be checked against the papers digit for digit.
#![allow(clippy::excessive_precision)]

/// How the local error is estimated from the stages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ErrorEstimate {
    /// `h * sum_i e_i k_i` with `e = b - b_hat`, in the scaled RMS norm.
    Single(&'static [f64]),
    /// Dormand–Prince 8(5,3): a fifth-order estimate `e5` tempered by a third-order one
    /// `e3` (which is measured from `b`, i.e. `k`-weights `b - e3`):
    /// `err = h * E5 / sqrt(n * (E5 + 0.01 * E3))`, with `E5`, `E3` the sums of squares.
    Dop853 {
        e5: &'static [f64],
        e3: &'static [f64],
    },
}

/// The form the paper gives a continuous extension in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DenseForm {
    /// Hairer's nested form `y0 + θ(r1 + θ'(r2 + θ(r3 + θ'(r4 + θ(r5 + ...)))))` with
    /// `θ' = 1 - θ`, `r1 = Δ`, `r2 = h k_0 - Δ`, `r3 = 2Δ - h k_0 - h k_fsal` (these three
    /// alone are the cubic Hermite interpolant) and `r4.. = h * sum_i d_i k_i`.
    Nested(&'static [&'static [f64]]),
    /// Tsitouras' interpolant (2011), per stage `b_i(θ) = scale * θ^lead * prod (θ - root)
    /// * quadratic`.
    Factored(&'static [FactoredWeight]),
}

/// One stage's interpolation weight in factored form: (scale, power of θ in front, linear
/// roots, optional monic quadratic `θ² + q1 θ + q0` as `(q1, q0)`).
pub type FactoredWeight = (f64, u32, &'static [f64], Option<(f64, f64)>);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub name: &'static str,
    /// Order of the propagated solution.
    pub order: u32,
    /// Order of the error estimate: the controller's exponents are based on `q + 1`.
    pub error_order: u32,
    /// Order of the continuous extension.
    pub dense_order: u32,
    /// Strictly lower-triangular rows of the main stages; the last row is `b` (FSAL).
    pub a: &'static [&'static [f64]],
    pub c: &'static [f64],
    /// Weights of the solution over the main stages (the FSAL stage's weight is 0).
    pub b: &'static [f64],
    pub error: ErrorEstimate,
    /// Extra stages the continuous extension needs (DOP853), evaluated only in steps that
    /// have a save point inside; rows range over all earlier stages.
    pub extra_a: &'static [&'static [f64]],
    pub extra_c: &'static [f64],
    pub dense: DenseForm,
}

impl Pair {
    /// Main stages, the FSAL stage included.
    pub fn stages(&self) -> usize {
        self.c.len()
    }

    /// Main plus dense-output stages.
    pub fn all_stages(&self) -> usize {
        self.c.len() + self.extra_c.len()
    }

    /// Right-hand-side evaluations per step attempt (the first stage is the previous
    /// step's last).
    pub fn evals_per_attempt(&self) -> u32 {
        self.stages() as u32 - 1
    }

    /// Row `i` of the extended tableau (main stages then extra ones).
    pub fn row(&self, i: usize) -> &'static [f64] {
        if i < self.stages() {
            self.a[i]
        } else {
            self.extra_a[i - self.stages()]
        }
    }

    pub fn node(&self, i: usize) -> f64 {
        if i < self.stages() {
            self.c[i]
        } else {
            self.extra_c[i - self.stages()]
        }
    }

    /// The continuous extension as polynomials: `y(t + θh) = y + h * sum_i w_i(θ) k_i`,
    /// `w_i(θ) = sum_m W[i][m] θ^(m+1)`, over all stages (main then extra).
    pub fn dense_weights(&self) -> Vec<Vec<f64>> {
        let n = self.all_stages();
        let fsal = self.stages() - 1;
        let polys: Vec<Vec<f64>> = match self.dense {
            DenseForm::Nested(d) => {
                // r-vectors as weights over stages (in units of h k_i).
                let delta = |i: usize| self.b.get(i).copied().unwrap_or(0.0);
                let unit = |i: usize, j: usize| f64::from(u8::from(i == j));
                let mut rs: Vec<Vec<f64>> = vec![
                    (0..n).map(delta).collect(),
                    (0..n).map(|i| unit(i, 0) - delta(i)).collect(),
                    (0..n)
                        .map(|i| 2.0 * delta(i) - unit(i, 0) - unit(i, fsal))
                        .collect(),
                ];
                rs.extend(
                    d.iter()
                        .map(|row| (0..n).map(|i| row.get(i).copied().unwrap_or(0.0)).collect()),
                );
                (0..n)
                    .map(|i| {
                        // Innermost first: p = r_last; p = r_k + (θ or θ') * p; then θ * p.
                        let mut p = vec![rs[rs.len() - 1][i]];
                        for k in (0..rs.len() - 1).rev() {
                            // r_k is multiplied (outside) by θ when k is even, θ' when odd;
                            // the factor in front of r_{k+1} is θ' for even k, θ for odd.
                            let inner = if k % 2 == 0 {
                                poly_mul(&p, &[1.0, -1.0])
                            } else {
                                poly_mul(&p, &[0.0, 1.0])
                            };
                            p = poly_add(&[rs[k][i]], &inner);
                        }
                        poly_mul(&p, &[0.0, 1.0])
                    })
                    .collect()
            }
            DenseForm::Factored(factors) => factors
                .iter()
                .map(|&(scale, lead, roots, quad)| {
                    let mut p = vec![scale];
                    for _ in 0..lead {
                        p = poly_mul(&p, &[0.0, 1.0]);
                    }
                    for &r in roots {
                        p = poly_mul(&p, &[-r, 1.0]);
                    }
                    if let Some((q1, q0)) = quad {
                        p = poly_mul(&p, &[q0, q1, 1.0]);
                    }
                    p
                })
                .collect(),
        };
        polys
            .into_iter()
            .map(|p| {
                debug_assert!(p[0].abs() < 1e-15, "w_i(0) must be 0");
                let mut w = p[1..].to_vec();
                w.resize(self.dense_order as usize + 1, 0.0);
                while w.len() > 1 && w.last() == Some(&0.0) {
                    w.pop();
                }
                w
            })
            .collect()
    }
}

fn poly_mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

fn poly_add(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len().max(b.len())];
    for (i, x) in a.iter().enumerate() {
        out[i] += x;
    }
    for (i, y) in b.iter().enumerate() {
        out[i] += y;
    }
    out
}

/// Bogacki & Shampine (1989), "A 3(2) pair of Runge–Kutta formulas", Appl. Math. Lett. 2.
/// Its natural continuous extension is the cubic Hermite interpolant.
pub const BS3: Pair = Pair {
    name: "bs3",
    order: 3,
    error_order: 2,
    dense_order: 3,
    a: &[
        &[],
        &[0.5],
        &[0.0, 0.75],
        &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0],
    ],
    c: &[0.0, 0.5, 0.75, 1.0],
    b: &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0],
    // b - b_hat, b_hat = (7/24, 1/4, 1/3, 1/8).
    error: ErrorEstimate::Single(&[
        2.0 / 9.0 - 7.0 / 24.0,
        1.0 / 3.0 - 0.25,
        4.0 / 9.0 - 1.0 / 3.0,
        -0.125,
    ]),
    extra_a: &[],
    extra_c: &[],
    dense: DenseForm::Nested(&[]),
};

/// Dormand & Prince (1980), "A family of embedded Runge–Kutta formulae", J. Comput. Appl.
/// Math. 6; dense output of Shampine (1986), as in Hairer, Nørsett & Wanner, Solving ODEs I,
/// §II.6.
pub const DP5: Pair = Pair {
    name: "dp5",
    order: 5,
    error_order: 4,
    dense_order: 4,
    a: &[
        &[],
        &[1.0 / 5.0],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[
            19372.0 / 6561.0,
            -25360.0 / 2187.0,
            64448.0 / 6561.0,
            -212.0 / 729.0,
        ],
        &[
            9017.0 / 3168.0,
            -355.0 / 33.0,
            46732.0 / 5247.0,
            49.0 / 176.0,
            -5103.0 / 18656.0,
        ],
        &[
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
        ],
    ],
    c: &[0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0],
    b: &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
        0.0,
    ],
    error: ErrorEstimate::Single(&[
        71.0 / 57600.0,
        0.0,
        -71.0 / 16695.0,
        71.0 / 1920.0,
        -17253.0 / 339200.0,
        22.0 / 525.0,
        -1.0 / 40.0,
    ]),
    extra_a: &[],
    extra_c: &[],
    dense: DenseForm::Nested(&[&[
        -12715105075.0 / 11282082432.0,
        0.0,
        87487479700.0 / 32700410799.0,
        -10690763975.0 / 1880347072.0,
        701980252875.0 / 199316789632.0,
        -1453857185.0 / 822651844.0,
        69997945.0 / 29380423.0,
    ]]),
};

/// Tsitouras (2011), "Runge–Kutta pairs of order 5(4) satisfying only the first column
/// simplifying assumption", Comput. Math. Appl. 62, with its free fourth-order interpolant.
pub const TSIT5: Pair = Pair {
    name: "tsit5",
    order: 5,
    error_order: 4,
    dense_order: 4,
    a: &[
        &[],
        &[0.161],
        &[-0.008480655492356989, 0.335480655492357],
        &[2.897153057105493, -6.359448489975075, 4.3622954328695815],
        &[
            5.325864828439257,
            -11.748883564062828,
            7.4955393428898365,
            -0.09249506636175525,
        ],
        &[
            5.86145544294642,
            -12.92096931784711,
            8.159367898576159,
            -0.071584973281401,
            -0.028269050394068383,
        ],
        &[
            0.09646076681806523,
            0.01,
            0.4798896504144996,
            1.379008574103742,
            -3.290069515436081,
            2.324710524099774,
        ],
    ],
    c: &[0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0],
    b: &[
        0.09646076681806523,
        0.01,
        0.4798896504144996,
        1.379008574103742,
        -3.290069515436081,
        2.324710524099774,
        0.0,
    ],
    error: ErrorEstimate::Single(&[
        -0.00178001105222577714,
        -0.0008164344596567469,
        0.007880878010261995,
        -0.1447110071732629,
        0.5823571654525552,
        -0.45808210592918697,
        1.0 / 66.0,
    ]),
    extra_a: &[],
    extra_c: &[],
    dense: DenseForm::Factored(&[
        (
            -1.0530884977290216,
            1,
            &[1.3299890189751412],
            Some((-1.4364028541716351, 0.7139816917074209)),
        ),
        (
            0.1017,
            2,
            &[],
            Some((-2.1966568338249754, 1.2949852507374631)),
        ),
        (
            2.490627285651252793,
            2,
            &[],
            Some((-2.38535645472061657, 1.57803468208092486)),
        ),
        (
            -16.54810288924490272,
            2,
            &[1.21712927295533244, 0.61620406037800089],
            None,
        ),
        (
            47.37952196281928122,
            2,
            &[1.203071208372362603, 0.658047292653547382],
            None,
        ),
        (-34.87065786149660974, 2, &[1.2, 0.666666666666666667], None),
        (2.5, 2, &[1.0, 0.6], None),
    ]),
};

/// Dormand & Prince 8(5,3) as in Hairer's DOP853 (Hairer, Nørsett & Wanner, Solving ODEs I,
/// §II.10), with its seventh-order dense output (three extra stages).
pub const DOP853: Pair = Pair {
    name: "dop853",
    order: 8,
    error_order: 7,
    dense_order: 7,
    a: &[
        &[],
        &[5.26001519587677318785587544488e-2],
        &[
            1.97250569845378994544595329183e-2,
            5.91751709536136983633785987549e-2,
        ],
        &[
            2.95875854768068491816892993775e-2,
            0.0,
            8.87627564304205475450678981324e-2,
        ],
        &[
            2.41365134159266685502369798665e-1,
            0.0,
            -8.84549479328286085344864962717e-1,
            9.24834003261792003115737966543e-1,
        ],
        &[
            3.7037037037037037037037037037e-2,
            0.0,
            0.0,
            1.70828608729473871279604482173e-1,
            1.25467687566822425016691814123e-1,
        ],
        &[
            3.7109375e-2,
            0.0,
            0.0,
            1.70252211019544039314978060272e-1,
            6.02165389804559606850219397283e-2,
            -1.7578125e-2,
        ],
        &[
            3.70920001185047927108779319836e-2,
            0.0,
            0.0,
            1.70383925712239993810214054705e-1,
            1.07262030446373284651809199168e-1,
            -1.53194377486244017527936158236e-2,
            8.27378916381402288758473766002e-3,
        ],
        &[
            6.24110958716075717114429577812e-1,
            0.0,
            0.0,
            -3.36089262944694129406857109825e0,
            -8.68219346841726006818189891453e-1,
            2.75920996994467083049415600797e1,
            2.01540675504778934086186788979e1,
            -4.34898841810699588477366255144e1,
        ],
        &[
            4.77662536438264365890433908527e-1,
            0.0,
            0.0,
            -2.48811461997166764192642586468e0,
            -5.90290826836842996371446475743e-1,
            2.12300514481811942347288949897e1,
            1.52792336328824235832596922938e1,
            -3.32882109689848629194453265587e1,
            -2.03312017085086261358222928593e-2,
        ],
        &[
            -9.3714243008598732571704021658e-1,
            0.0,
            0.0,
            5.18637242884406370830023853209e0,
            1.09143734899672957818500254654e0,
            -8.14978701074692612513997267357e0,
            -1.85200656599969598641566180701e1,
            2.27394870993505042818970056734e1,
            2.49360555267965238987089396762e0,
            -3.0467644718982195003823669022e0,
        ],
        &[
            2.27331014751653820792359768449e0,
            0.0,
            0.0,
            -1.05344954667372501984066689879e1,
            -2.00087205822486249909675718444e0,
            -1.79589318631187989172765950534e1,
            2.79488845294199600508499808837e1,
            -2.85899827713502369474065508674e0,
            -8.87285693353062954433549289258e0,
            1.23605671757943030647266201528e1,
            6.43392746015763530355970484046e-1,
        ],
        DOP853_B_MAIN,
    ],
    c: &[
        0.0,
        0.526001519587677318785587544488e-01,
        0.789002279381515978178381316732e-01,
        0.118350341907227396726757197510e+00,
        0.281649658092772603273242802490e+00,
        0.333333333333333333333333333333e+00,
        0.25e+00,
        0.307692307692307692307692307692e+00,
        0.651282051282051282051282051282e+00,
        0.6e+00,
        0.857142857142857142857142857142e+00,
        1.0,
        1.0,
    ],
    b: DOP853_B,
    error: ErrorEstimate::Dop853 {
        e5: &[
            0.1312004499419488073250102996e-01,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.1225156446376204440720569753e+01,
            -0.4957589496572501915214079952e+00,
            0.1664377182454986536961530415e+01,
            -0.3503288487499736816886487290e+00,
            0.3341791187130174790297318841e+00,
            0.8192320648511571246570742613e-01,
            -0.2235530786388629525884427845e-01,
            0.0,
        ],
        // b - (bhh1 at stage 0, bhh2 at stage 8, bhh3 at stage 11).
        e3: &[
            5.42937341165687622380535766363e-2 - 0.244094488188976377952755905512,
            0.0,
            0.0,
            0.0,
            0.0,
            4.45031289275240888144113950566e0,
            1.89151789931450038304281599044e0,
            -5.8012039600105847814672114227e0,
            3.1116436695781989440891606237e-1 - 0.733846688281611857341361741547,
            -1.52160949662516078556178806805e-1,
            2.01365400804030348374776537501e-1,
            4.47106157277725905176885569043e-2 - 0.220588235294117647058823529412e-1,
            0.0,
        ],
    },
    extra_a: &[
        &[
            5.61675022830479523392909219681e-2,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            2.53500210216624811088794765333e-1,
            -2.46239037470802489917441475441e-1,
            -1.24191423263816360469010140626e-1,
            1.5329179827876569731206322685e-1,
            8.20105229563468988491666602057e-3,
            7.56789766054569976138603589584e-3,
            -8.298e-3,
        ],
        &[
            3.18346481635021405060768473261e-2,
            0.0,
            0.0,
            0.0,
            0.0,
            2.83009096723667755288322961402e-2,
            5.35419883074385676223797384372e-2,
            -5.49237485713909884646569340306e-2,
            0.0,
            0.0,
            -1.08347328697249322858509316994e-4,
            3.82571090835658412954920192323e-4,
            -3.40465008687404560802977114492e-4,
            1.41312443674632500278074618366e-1,
        ],
        &[
            -4.28896301583791923408573538692e-1,
            0.0,
            0.0,
            0.0,
            0.0,
            -4.69762141536116384314449447206e0,
            7.68342119606259904184240953878e0,
            4.06898981839711007970213554331e0,
            3.56727187455281109270669543021e-1,
            0.0,
            0.0,
            0.0,
            -1.39902416515901462129418009734e-3,
            2.9475147891527723389556272149e0,
            -9.15095847217987001081870187138e0,
        ],
    ],
    extra_c: &[0.1, 0.2, 0.777777777777777777777777777778],
    dense: DenseForm::Nested(&[
        &[
            -0.84289382761090128651353491142e+01,
            0.0,
            0.0,
            0.0,
            0.0,
            0.56671495351937776962531783590e+00,
            -0.30689499459498916912797304727e+01,
            0.23846676565120698287728149680e+01,
            0.21170345824450282767155149946e+01,
            -0.87139158377797299206789907490e+00,
            0.22404374302607882758541771650e+01,
            0.63157877876946881815570249290e+00,
            -0.88990336451333310820698117400e-01,
            0.18148505520854727256656404962e+02,
            -0.91946323924783554000451984436e+01,
            -0.44360363875948939664310572000e+01,
        ],
        &[
            0.10427508642579134603413151009e+02,
            0.0,
            0.0,
            0.0,
            0.0,
            0.24228349177525818288430175319e+03,
            0.16520045171727028198505394887e+03,
            -0.37454675472269020279518312152e+03,
            -0.22113666853125306036270938578e+02,
            0.77334326684722638389603898808e+01,
            -0.30674084731089398182061213626e+02,
            -0.93321305264302278729567221706e+01,
            0.15697238121770843886131091075e+02,
            -0.31139403219565177677282850411e+02,
            -0.93529243588444783865713862664e+01,
            0.35816841486394083752465898540e+02,
        ],
        &[
            0.19985053242002433820987653617e+02,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.38703730874935176555105901742e+03,
            -0.18917813819516756882830838328e+03,
            0.52780815920542364900561016686e+03,
            -0.11573902539959630126141871134e+02,
            0.68812326946963000169666922661e+01,
            -0.10006050966910838403183860980e+01,
            0.77771377980534432092869265740e+00,
            -0.27782057523535084065932004339e+01,
            -0.60196695231264120758267380846e+02,
            0.84320405506677161018159903784e+02,
            0.11992291136182789328035130030e+02,
        ],
        &[
            -0.25693933462703749003312586129e+02,
            0.0,
            0.0,
            0.0,
            0.0,
            -0.15418974869023643374053993627e+03,
            -0.23152937917604549567536039109e+03,
            0.35763911791061412378285349910e+03,
            0.93405324183624310003907691704e+02,
            -0.37458323136451633156875139351e+02,
            0.10409964950896230045147246184e+03,
            0.29840293426660503123344363579e+02,
            -0.43533456590011143754432175058e+02,
            0.96324553959188282948394950600e+02,
            -0.39177261675615439165231486172e+02,
            -0.14972683625798562581422125276e+03,
        ],
    ]),
};

const DOP853_B_MAIN: &[f64] = &[
    5.42937341165687622380535766363e-2,
    0.0,
    0.0,
    0.0,
    0.0,
    4.45031289275240888144113950566e0,
    1.89151789931450038304281599044e0,
    -5.8012039600105847814672114227e0,
    3.1116436695781989440891606237e-1,
    -1.52160949662516078556178806805e-1,
    2.01365400804030348374776537501e-1,
    4.47106157277725905176885569043e-2,
];

const DOP853_B: &[f64] = &[
    5.42937341165687622380535766363e-2,
    0.0,
    0.0,
    0.0,
    0.0,
    4.45031289275240888144113950566e0,
    1.89151789931450038304281599044e0,
    -5.8012039600105847814672114227e0,
    3.1116436695781989440891606237e-1,
    -1.52160949662516078556178806805e-1,
    2.01365400804030348374776537501e-1,
    4.47106157277725905176885569043e-2,
    0.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&Pair; 4] = [&BS3, &DP5, &TSIT5, &DOP853];

    /// Elementary weights of the rooted trees up to order 5 for weights `w` over the stages
    /// of the extended tableau, in the order of `TREE_VALUES`.
    fn elementary(p: &Pair, w: &[f64]) -> Vec<f64> {
        let n = p.all_stages();
        let a = |i: usize, j: usize| p.row(i).get(j).copied().unwrap_or(0.0);
        let c: Vec<f64> = (0..n).map(|i| p.node(i)).collect();
        let mat = |v: &[f64]| -> Vec<f64> {
            (0..n)
                .map(|i| (0..n).map(|j| a(i, j) * v[j]).sum())
                .collect()
        };
        let mul =
            |x: &[f64], y: &[f64]| -> Vec<f64> { x.iter().zip(y).map(|(a, b)| a * b).collect() };
        let dot = |v: &[f64]| -> f64 { w.iter().zip(v).map(|(a, b)| a * b).sum() };
        let one = vec![1.0; n];
        let c2 = mul(&c, &c);
        let c3 = mul(&c2, &c);
        let ac = mat(&c);
        let ac2 = mat(&c2);
        let aac = mat(&ac);
        vec![
            dot(&one),
            dot(&c),
            dot(&c2),
            dot(&ac),
            dot(&c3),
            dot(&mul(&c, &ac)),
            dot(&ac2),
            dot(&aac),
            dot(&mul(&c3, &c)),
            dot(&mul(&c2, &ac)),
            dot(&mul(&ac, &ac)),
            dot(&mul(&c, &ac2)),
            dot(&mat(&c3)),
            dot(&mul(&c, &aac)),
            dot(&mat(&mul(&c, &ac))),
            dot(&mat(&ac2)),
            dot(&mat(&aac)),
        ]
    }

    /// (order of the tree, 1/γ(t)) for the trees in `elementary`.
    const TREE_VALUES: [(u32, f64); 17] = [
        (1, 1.0),
        (2, 0.5),
        (3, 1.0 / 3.0),
        (3, 1.0 / 6.0),
        (4, 0.25),
        (4, 0.125),
        (4, 1.0 / 12.0),
        (4, 1.0 / 24.0),
        (5, 0.2),
        (5, 0.1),
        (5, 0.05),
        (5, 1.0 / 15.0),
        (5, 0.05),
        (5, 1.0 / 30.0),
        (5, 1.0 / 40.0),
        (5, 1.0 / 60.0),
        (5, 1.0 / 120.0),
    ];

    fn pad(v: &[f64], n: usize) -> Vec<f64> {
        let mut v = v.to_vec();
        v.resize(n, 0.0);
        v
    }

    #[test]
    fn rows_sum_to_nodes_and_fsal_rows_are_b() {
        for p in ALL {
            for i in 0..p.all_stages() {
                let s: f64 = p.row(i).iter().sum();
                assert!((s - p.node(i)).abs() < 1e-13, "{} row {i}: {s}", p.name);
            }
            let last = p.a[p.stages() - 1];
            for (j, &bj) in p.b.iter().enumerate() {
                assert_eq!(last.get(j).copied().unwrap_or(0.0), bj, "{}", p.name);
            }
            assert_eq!(p.c[p.stages() - 1], 1.0);
        }
    }

    /// The solution weights satisfy the order conditions up to min(order, 5); the embedded
    /// weights up to the error estimate's order (checked up to 5).
    #[test]
    fn weights_satisfy_order_conditions() {
        for p in ALL {
            let n = p.all_stages();
            let got = elementary(p, &pad(p.b, n));
            for (k, &(order, expect)) in TREE_VALUES.iter().enumerate() {
                if order <= p.order {
                    assert!((got[k] - expect).abs() < 1e-13, "{} tree {k}", p.name);
                }
            }
            let e = match p.error {
                ErrorEstimate::Single(e) => e,
                ErrorEstimate::Dop853 { e5, .. } => e5,
            };
            let embedded: Vec<f64> = (0..n)
                .map(|i| p.b.get(i).copied().unwrap_or(0.0) - e.get(i).copied().unwrap_or(0.0))
                .collect();
            let got = elementary(p, &embedded);
            let mut fails_above = false;
            for (k, &(order, expect)) in TREE_VALUES.iter().enumerate() {
                let ok = (got[k] - expect).abs() < 1e-12;
                if order <= p.error_order.min(5) {
                    assert!(ok, "{} embedded tree {k}", p.name);
                } else if !ok {
                    fails_above = true;
                }
            }
            // An embedded method of order q must not be of order q + 1 (else no estimate).
            if p.error_order < 5 {
                assert!(fails_above, "{}: embedded weights too accurate", p.name);
            }
        }
    }

    /// The continuous extension matches the solution at θ = 1, vanishes at θ = 0 and
    /// satisfies the continuous order conditions (Σ w_i(θ) Φ_i(t) = θ^ρ(t)/γ(t)).
    #[test]
    fn dense_output_has_its_order() {
        for p in ALL {
            let w = p.dense_weights();
            let at = |theta: f64| -> Vec<f64> {
                w.iter()
                    .map(|wi| {
                        wi.iter()
                            .enumerate()
                            .map(|(m, c)| c * theta.powi(m as i32 + 1))
                            .sum()
                    })
                    .collect()
            };
            for (i, wi) in at(1.0).iter().enumerate() {
                let bi = p.b.get(i).copied().unwrap_or(0.0);
                assert!((wi - bi).abs() < 1e-12, "{} w_{i}(1)", p.name);
            }
            for theta in [0.2, 0.5, 0.9] {
                let got = elementary(p, &at(theta));
                for (k, &(order, expect)) in TREE_VALUES.iter().enumerate() {
                    if order <= p.dense_order.min(5) {
                        let want = expect * theta.powi(order as i32);
                        assert!(
                            (got[k] - want).abs() < 1e-12,
                            "{} θ={theta} tree {k}: {} vs {want}",
                            p.name,
                            got[k]
                        );
                    }
                }
            }
        }
    }
}
