//! Operator data made by the ensemble engine (`nn::deeponet::generate`) and normalisation
//! stored with a DeepONet (`nn::deeponet::scaling`).

mod common;
use common::{assert_close, gpu, random_matrix, system};
use phaseflow::nn::deeponet::data::antiderivative_arch;
use phaseflow::nn::deeponet::forward_aligned;
use phaseflow::nn::deeponet::generate::{GenerateError, OperatorDataSpec, SignalSource, generate};
use phaseflow::nn::deeponet::grf::Grf;
use phaseflow::nn::deeponet::scaling::{Affine, Scaling};
use phaseflow::nn::{DeepONetNet, DeepONetParams, Init};
use phaseflow::ode::{Precision, SavePlan, Solver, fixed::cpu};

fn spec(name: &str, functions: usize, signals: Vec<SignalSource>) -> OperatorDataSpec {
    let s = system(name);
    OperatorDataSpec {
        initial: s.default_state(),
        params: s.default_params(),
        t0: s.meta.tspan.unwrap().0,
        t1: s.meta.tspan.unwrap().1,
        system: s,
        signals,
        functions,
        seed: 3,
        points: 100,
        steps_per_point: 10,
        solver: Solver::Rk4,
        outputs: vec![0],
        precision: Precision::F32,
    }
}

fn grf(length_scale: f64, scale: f64) -> SignalSource {
    SignalSource::Grf {
        length_scale,
        scale,
        offset: 0.0,
    }
}

/// The antiderivative from an ensemble run: branch inputs are the random field at the
/// sensors (stream 0 of the seed), and the labels are the exact integrals of the
/// interpolated inputs, i.e. cumulative trapezoid sums (RK4 steps never straddle a sensor;
/// f32 rounding over 990 steps stays below 5e-6 for values of order 1).
#[test]
fn antiderivative_labels_are_exact_integrals_of_the_sampled_functions() {
    let s = spec("antiderivative", 500, vec![grf(0.2, 1.0)]);
    let out = generate(gpu(), &s).unwrap();
    let d = &out.data;
    assert_eq!(
        (d.functions(), d.points(), d.outputs, d.u.cols),
        (500, 100, 1, 100)
    );
    let times = s.system.inputs[0].times();
    let want = Grf::rbf(&times, 0.2).unwrap().sample_stream(3, 0, 500);
    assert_eq!(d.u, want);
    assert_eq!(d.y.data[..3], [0.0, 1.0 / 99.0, 2.0 / 99.0]);
    assert_eq!(d.y.data[99], 1.0);
    let mut worst = 0.0f64;
    for f in 0..500 {
        let u: Vec<f64> = d.u.data[f * 100..(f + 1) * 100]
            .iter()
            .map(|&v| v as f32 as f64)
            .collect();
        let mut exact = 0.0;
        for k in 0..100 {
            if k > 0 {
                exact += 0.5 / 99.0 * (u[k - 1] + u[k]);
            }
            worst = worst.max((d.g[f * 100 + k] - exact).abs());
        }
    }
    assert!(worst < 5e-6, "{worst}");
}

/// Two inputs from independent streams drive the reactor; every function's labels (both
/// states) match the CPU twin integrating the same signals in f64. The reactor's
/// temperature is near 384 K, so 1e-5 relative is a few f32 roundings per step.
#[test]
fn two_inputs_two_outputs_match_the_cpu_twin() {
    let mut s = spec("cstr", 40, vec![grf(1.0, 1.0), grf(1.0, 0.05)]);
    s.points = 11;
    s.steps_per_point = 98;
    s.outputs = vec![0, 1];
    let out = generate(gpu(), &s).unwrap();
    let d = &out.data;
    assert_eq!((d.u.cols, d.points(), d.outputs), (100, 11, 2));
    // The two halves of a row come from different streams: not equal up to scale.
    let (tc, cf) = (&d.u.data[..50], &d.u.data[50..100]);
    assert!(tc.iter().zip(cf).any(|(a, b)| (a * 0.05 - b).abs() > 1e-3));
    let problem = s.problem(&d.u).unwrap();
    let plan = SavePlan::new(problem.save, problem.grid.n_steps).unwrap();
    for f in [0, 17, 39] {
        let slots: Vec<f64> = problem
            .ensemble
            .param_slots(f..f + 1)
            .iter()
            .map(|&v| v as f32 as f64)
            .collect();
        let (twin, _) = cpu::integrate(
            &problem.system,
            Solver::Rk4.tableau().unwrap(),
            &problem.ensemble.states(f..f + 1),
            &slots,
            &problem.grid,
            &plan,
        );
        for p in 0..11 {
            for c in 0..2 {
                let (got, want) = (d.g[(f * 11 + p) * 2 + c], twin[p * 2 + c]);
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "function {f} point {p} output {c}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn bad_specs_are_refused_before_any_work() {
    let message = |s: &OperatorDataSpec| match generate(gpu(), s) {
        Err(GenerateError::Spec(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(message(&spec("lorenz", 4, vec![])).contains("has no inputs"));
    assert!(message(&spec("cstr", 4, vec![grf(1.0, 1.0)])).contains("2 inputs but 1"));
    let table = SignalSource::Table(random_matrix(3, 100, 1, 0));
    assert!(message(&spec("antiderivative", 4, vec![table])).contains("[3, 100]"));
    assert!(message(&spec("antiderivative", 4, vec![grf(-1.0, 1.0)])).contains("length scale"));
}

/// A network with a `Scaling` predicts in data units: the twin on scaled inputs, restored.
#[test]
fn predictions_come_back_in_the_datas_units() {
    let mut arch = antiderivative_arch(10);
    let params = DeepONetParams::init(&arch, Init::Glorot, 4).unwrap();
    let u = random_matrix(7, 10, 5, 0);
    let y = random_matrix(9, 1, 6, 0);
    let affine = |n: usize, m: f64, s: f64| Affine {
        mean: (0..n).map(|i| m + i as f64).collect(),
        std: (0..n).map(|i| s * (1.0 + 0.1 * i as f64)).collect(),
    };
    let scaling = Scaling {
        u: affine(10, 0.3, 2.0),
        y: affine(1, -0.5, 0.25),
        g: affine(1, 384.0, 7.0),
    };
    arch.scaling = Some(scaling.clone());
    let got = DeepONetNet::new(gpu(), &arch, &params)
        .unwrap()
        .predict(gpu(), &u, &y)
        .unwrap();
    let (su, sy) = scaling.inputs(&u, &y);
    let mut want = forward_aligned(&arch, &params, &su, &sy).g;
    scaling.g.restore(&mut want);
    // f32 network outputs of order 1, times std 7, next to a mean of 384.
    assert_close("scaled predictions", &got, &want, 1e-6);
    // A checkpoint keeps it.
    let bytes = phaseflow::nn::save_deeponet_bytes(&arch, &params, &[]).unwrap();
    let path = std::env::temp_dir().join(format!("scaled-{}.safetensors", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let (loaded, _) = phaseflow::nn::load_deeponet(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(loaded.scaling, Some(scaling));
}
