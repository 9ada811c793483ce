//! The scenarios `phaseflow bench` knows, as the command line names them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Measured ceilings of the adapter: f32 (and f64) FMA rate and copy bandwidth, from
    /// microkernels checked against their CPU twin
    Peak,
    /// RK4 on Lorenz (the published benchmark's problem: rho over [0, 21], t in [0, 1],
    /// dt = 1e-3), final state only, -n trajectories (default 1048576)
    OdeFixed,
    /// Tsit5 at rtol = atol = 1e-6 on the same problem, -n trajectories (default 1048576)
    OdeAdaptive,
    /// A one-parameter sweep with saving: Lorenz RK4, rho over [0, 50], t in [0, 1], the
    /// state saved every 10 steps, -n trajectories (default 65536)
    OdeSweep,
    /// The same saves streamed to .npy on disk (a temporary directory), -n trajectories
    /// (default 262144)
    OdeStream,
    /// Training throughput: Gaussian Fourier features (128 outputs) → 3×64 ReLU → 1,
    /// full Adam steps on batches of -n samples (default 16384)
    MlpTrain,
    /// Inference throughput of the same network on -n samples (default 1048576)
    MlpInfer,
    /// DeepONet training: DeepXDE's aligned antiderivative set-up (150 functions × 100
    /// points, branch [100, 40, 40], trunk [1, 40, 40], ReLU), full-batch Adam iterations
    DeeponetTrain,
    /// DeepONet inference with the same network: latency of one function at 100 points,
    /// and throughput over -n functions (default 10000)
    DeeponetInfer,
    /// The published GPU ensemble benchmark: Lorenz, rho = linspace(0, 21, N), u0 = (1, 0,
    /// 0), t in [0, 1], f32, final state; Tsit5 with dt = 1e-3 fixed and adaptive at rtol =
    /// atol = 1e-8, N = 8, 32, ... up to -n (default 8388608), with the error achieved
    PaperLorenz,
    /// SDE Monte Carlo: Ornstein–Uhlenbeck (θ = 1, μ = 0.5, σ = 0.3, X0 = 1), t in [0, 1],
    /// 1,000 Euler–Maruyama steps, f32, final states plus ensemble mean and variance, -n
    /// paths (default 1000000)
    SdeEm,
    /// milstein-adaptive on geometric Brownian motion (μ = 1, σ = 0.5) at rtol = atol =
    /// 1e-2, 1e-3, 1e-4, with each one's error against the exact solution on the same
    /// Brownian path, -n paths (default 65536)
    SdeAdaptive,
    /// Stiff kinetics: ROBER (k1 = 0.04·(1 + a), a = linspace(−0.5, 0.5, N), k2 = 3e7,
    /// k3 = 1e4, y0 = (1, 0, 0)), t in [0, 1e5], Rodas5P at rtol = 1e-6, atol = 1e-10, f64,
    /// final state, -n trajectories (default 100000)
    StiffRober,
    /// Basins of attraction: the unforced double-well Duffing oscillator (δ = 0.1) on a
    /// √n × √n grid over (x, v) ∈ [−2, 2]², t in [0, 200], Tsit5 at 1e-6, f32, labelled by
    /// window features, -n grid points (default 1000000)
    Basins,
    /// Lyapunov spectra: the full Lorenz spectrum (σ = 10, β = 8/3, u0 = (1, 0, 0)) for
    /// rho = linspace(0, 200, N), a transient of 20, then T = 100, RK4 dt = 0.005,
    /// renormalised every 0.1, f32 and f64, -n trajectories (default 100000)
    Lyapunov,
    /// Events: a Poincaré section (x = 0, downwards) of harmonic oscillators, ω =
    /// linspace(1, 3, N), t in [0, 100], Tsit5 at 1e-6, f32, every crossing checked against
    /// the exact t_k = (π/2 + 2πk)/ω, timed beside the same run without the section, -n
    /// trajectories (default 100000)
    Events,
    /// Parameter estimation: independent Lorenz fits of (σ, ρ, β), each to 100 noisy
    /// observations (sd 0.1) of its own trajectory over t in (0, 1], Levenberg–Marquardt on
    /// Tsit5 with forward sensitivities at 1e-8 in f64 (1e-6 in f32), -n fits (default 10000)
    Estimate,
    /// Every scenario above at its default size, in one table
    All,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Peak => "peak",
            Scenario::OdeFixed => "ode-fixed",
            Scenario::OdeAdaptive => "ode-adaptive",
            Scenario::OdeSweep => "ode-sweep",
            Scenario::OdeStream => "ode-stream",
            Scenario::MlpTrain => "mlp-train",
            Scenario::MlpInfer => "mlp-infer",
            Scenario::DeeponetTrain => "deeponet-train",
            Scenario::DeeponetInfer => "deeponet-infer",
            Scenario::PaperLorenz => "paper-lorenz",
            Scenario::SdeEm => "sde-em",
            Scenario::SdeAdaptive => "sde-adaptive",
            Scenario::StiffRober => "stiff-rober",
            Scenario::Basins => "basins",
            Scenario::Lyapunov => "lyapunov",
            Scenario::Events => "events",
            Scenario::Estimate => "estimate",
            Scenario::All => "all",
        }
    }

    /// What `all` runs after `peak`, cheapest first.
    pub(super) const EVERY: [Scenario; 16] = [
        Scenario::OdeFixed,
        Scenario::OdeAdaptive,
        Scenario::OdeSweep,
        Scenario::OdeStream,
        Scenario::MlpTrain,
        Scenario::MlpInfer,
        Scenario::DeeponetTrain,
        Scenario::DeeponetInfer,
        Scenario::PaperLorenz,
        Scenario::SdeEm,
        Scenario::SdeAdaptive,
        Scenario::StiffRober,
        Scenario::Basins,
        Scenario::Lyapunov,
        Scenario::Events,
        Scenario::Estimate,
    ];
}
