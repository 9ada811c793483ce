//! The estimation fold on the device (`fold_normals.wgsl`) against its CPU twin on random
//! saves and observations, and the fits that use it against the same fits folded on the
//! host.

mod common;
use common::*;
use phaseflow::ode::Precision;
use phaseflow::ode::estimate::fold::direct::{fold_saves, random_case, worst_deviation};
use phaseflow::ode::estimate::fold::{FoldOutput, GROUP, twin};

/// Within 1e-13 of each term's magnitude (the sum of the absolute values of what it adds):
/// each term is a sum of at most 60 f64 products (and a tree of six additions), each
/// rounded once on either side, or not at all where the device fuses a multiply-add, so
/// the two differ by at most about 70 · 2⁻⁵³ ≈ 8e-15 of that magnitude.
const BOUND: f64 = 1e-13;

/// Each trajectory's JᵀWJ, JᵀWr and cost, and the groups' sums, against the twin: f32
/// and f64 saves, one batch and several (the sums carried between batches), a partial
/// last group, unobserved slots, missing values and a weight of 0.
#[test]
fn the_device_fold_matches_its_twin() {
    let ctx = gpu();
    if !ctx.has_f64() {
        return;
    }
    for precision in [Precision::F32, Precision::F64] {
        for (n, n_slots, dim, n_fit, per_batch) in
            [(150, 12, 3, 3, 5), (64, 9, 1, 1, 9), (70, 7, 2, 5, 3)]
        {
            let seed = (n * 31 + dim * 7 + n_fit) as u64;
            let (data, saves) = random_case(seed, (n, n_slots), (dim, n_fit), precision);
            let what = format!("{precision:?} {dim} states x {n_fit}, {n} trajectories");
            // Not a fold of nothing: every trajectory has observed values.
            let costs = twin::all_terms(&data, &saves, n, false);
            assert!(
                costs.iter().all(|t| t[twin::terms(n_fit) - 1] > 0.0),
                "{what}"
            );
            for output in [FoldOutput::PerTrajectory, FoldOutput::Groups] {
                let (out, stride) =
                    fold_saves(ctx, data.clone(), output, precision, &saves, (n, per_batch))
                        .unwrap();
                if output == FoldOutput::Groups {
                    let reals = stride + n.div_ceil(GROUP) * twin::terms(n_fit);
                    assert_eq!(out.len(), reals, "{what}");
                }
                let worst = worst_deviation(&data, &saves, n, output, (&out, stride));
                assert!(worst <= BOUND, "{what} {output:?}: {worst:e}");
            }
        }
    }
}

/// The deviation measure bites: a twin off by one part in 10⁷ in its cost is caught.
#[test]
fn a_wrong_fold_is_caught() {
    let ctx = gpu();
    if !ctx.has_f64() {
        return;
    }
    let (data, saves) = random_case(3, (80, 8), (2, 2), Precision::F64);
    let (mut out, stride) = fold_saves(
        ctx,
        data.clone(),
        FoldOutput::Groups,
        Precision::F64,
        &saves,
        (80, 3),
    )
    .unwrap();
    assert!(worst_deviation(&data, &saves, 80, FoldOutput::Groups, (&out, stride)) <= BOUND);
    out[stride + 5] *= 1.0 + 1e-7;
    assert!(worst_deviation(&data, &saves, 80, FoldOutput::Groups, (&out, stride)) > 1e-9);
}

/// A fit to 65,560 observation times, more than lavapipe lets one invocation loop over
/// (65,535): only the values at three of them are observed, the last at t = 12, and the
/// cost at the start (r = 1, K = 2; nothing fitted yet) is the closed form's, folded on
/// the device and on the host. The device's fold used to lose the last observation.
#[test]
fn a_fit_to_more_slots_than_one_invocation_may_loop_over_counts_every_one() {
    use phaseflow::ode::RunOptions;
    use phaseflow::ode::estimate::fold::Folding;
    use phaseflow::ode::estimate::{
        EstimationProblem, Observations, Start, Stopping, estimate_folding,
    };
    use phaseflow::ode::sensitivity::{ErrorControl, resolve};
    if !gpu().has_f64() {
        return;
    }
    let spec: phaseflow::spec::RunSpec = toml::from_str(
        "system = 'logistic'\nn = 1\ntspan = [0.0, 12.0]\nsolver = 'tsit5'\nrtol = 1e-10\n\
         atol = 1e-10\nprecision = 'f64'",
    )
    .unwrap();
    let problem = phaseflow::spec::build_problem(&spec).unwrap();
    let n_obs = 65_560;
    let times: Vec<f64> = (1..=n_obs)
        .map(|k| 12.0 * k as f64 / n_obs as f64)
        .collect();
    let mut values = vec![f64::NAN; n_obs];
    let observed = [(99, 0.5), (199, 0.5), (n_obs - 1, 1.7)];
    for (o, y) in observed {
        values[o] = y;
    }
    let names: Vec<String> = ["r", "K"].map(String::from).to_vec();
    let ep = EstimationProblem {
        targets: resolve(problem.system(), &names).unwrap(),
        bounds: vec![(0.1, 5.0), (0.5, 5.0)],
        start: Start::Same(vec![1.0, 2.0]),
        observations: Observations {
            times: times.clone(),
            values,
            weights: vec![1.0],
        },
        error_control: ErrorControl::Include,
        stopping: Stopping {
            max_iterations: 0,
            ..Stopping::for_precision(Precision::F64)
        },
        problem,
    };
    // x(t) = K x0 e^t / (K + x0 (e^t − 1)) with x0 = 0.1, K = 2.
    let exact = |t: f64| 0.2 * t.exp() / (2.0 + 0.1 * (t.exp() - 1.0));
    let want: f64 = observed
        .iter()
        .map(|&(o, y)| 0.5 * (exact(times[o]) - y).powi(2))
        .sum();
    for folding in [Folding::Device, Folding::Host] {
        let fit = estimate_folding(gpu(), &ep, &RunOptions::default(), folding).unwrap();
        assert_eq!(fit.observed[0], 3, "{folding:?}");
        let cost = fit.cost[0];
        assert!(
            (cost - want).abs() < 1e-7,
            "{folding:?}: cost {cost} vs {want}"
        );
    }
}

/// The device folds small fits where it has f64; more than `MAX_DEVICE_FIT` quantities go
/// to the host, and asking the device without f64 is refused by name.
#[test]
fn the_fold_goes_where_it_fits() {
    use phaseflow::ode::estimate::fold::{Folding, MAX_DEVICE_FIT};
    let ctx = gpu();
    let small = if ctx.has_f64() {
        Folding::Device
    } else {
        Folding::Host
    };
    assert_eq!(Folding::for_device(ctx, 3), small);
    assert_eq!(Folding::for_device(ctx, MAX_DEVICE_FIT + 1), Folding::Host);
    assert!(Folding::Host.check(ctx).is_ok());
    assert_eq!(Folding::Device.check(ctx).is_ok(), ctx.has_f64());
}
