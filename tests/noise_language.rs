//! Stochastic systems in the system language: noise blocks in files and strings, the
//! shipped SDE systems, the diffusion in f64, and every mistake's message and position.

use phaseflow::model::expr::Node;
use phaseflow::model::{
    Calculus, Diagnostic, NoiseKind, Source, System, builtin, builtin_names, parse_system,
};

fn shipped(name: &str) -> System {
    builtin(name)
        .unwrap_or_else(|| panic!("{name} is built in"))
        .unwrap_or_else(|e| panic!("{name} parses:\n{e}"))
}

#[test]
fn shipped_sde_systems_parse_with_their_noise() {
    // (name, kind, Wiener processes, additive)
    let expected = [
        ("ornstein_uhlenbeck", NoiseKind::Diagonal, 1, true),
        ("gbm", NoiseKind::Diagonal, 1, false),
        ("stochastic_lorenz", NoiseKind::Diagonal, 3, true),
        ("noisy_fitzhugh_nagumo", NoiseKind::Diagonal, 2, true),
        ("heston", NoiseKind::General { wiener: 2 }, 2, false),
    ];
    for (name, kind, m, additive) in expected {
        let s = shipped(name);
        let noise = s.noise.as_ref().expect(name);
        assert_eq!(noise.kind, kind, "{name}");
        assert_eq!(noise.calculus, Calculus::Ito, "{name}");
        assert_eq!(s.n_wiener(), m, "{name}");
        let entries = if matches!(kind, NoiseKind::General { .. }) {
            s.dim() * m
        } else {
            s.dim()
        };
        assert_eq!(noise.g.len(), entries, "{name}");
        assert_eq!(s.noise_is_additive(), additive, "{name}");
        assert!(s.meta.tspan.is_some() && s.meta.dt.is_some(), "{name}");
        assert!(!s.meta.reference.is_empty(), "{name}");
        assert!(builtin_names().contains(&name));
    }
    // FitzHugh-Nagumo's recovery variable w has no noise line: a zero entry.
    let fhn = shipped("noisy_fitzhugh_nagumo");
    assert_eq!(fhn.noise.as_ref().unwrap().g[1], Node::Const(0.0));
    assert_eq!(fhn.noise.as_ref().unwrap().nonzero(2), vec![(0, 0)]);
    assert_eq!(
        shipped("heston").noise.unwrap().nonzero(2),
        vec![(0, 0), (1, 0), (1, 1)]
    );
}

#[test]
fn every_builtin_without_noise_is_an_ode() {
    for name in builtin_names() {
        let s = shipped(name);
        if s.noise.is_none() {
            assert_eq!(s.n_wiener(), 0, "{name}");
            assert!(!s.noise_is_additive(), "{name}");
        }
    }
}

#[test]
fn heston_diffusion_in_f64() {
    let s = shipped("heston");
    let p = s.default_params(); // mu, kappa, theta, xi, rho as declared
    let (xi, rho) = (
        p[s.param_index("xi").unwrap()],
        p[s.param_index("rho").unwrap()],
    );
    assert_eq!((xi, rho), (0.3, -0.7));
    let mut g = [f64::NAN; 4];
    let mut aux = Vec::new();
    s.diffusion_f64(0.0, &[2.0, 0.09], &p, &mut aux, &mut g);
    // g[i*2 + k]: S = [sqrt(v) S, 0], v = [xi rho sqrt(v), xi sqrt(1 - rho^2) sqrt(v)].
    // Each is a handful of roundings of numbers near 1, so 1e-15 absolute is ample.
    let want = [
        0.6,
        0.0,
        0.3 * -0.7 * 0.3,
        0.3 * (1.0f64 - 0.49).sqrt() * 0.3,
    ];
    for (k, (a, b)) in g.iter().zip(want).enumerate() {
        assert!((a - b).abs() < 1e-15, "g[{k}] = {a}, want {b}");
    }
    // Full truncation: a negative variance has no diffusion (and its drift uses 0).
    s.diffusion_f64(0.0, &[2.0, -0.01], &p, &mut aux, &mut g);
    assert_eq!(g, [0.0; 4]);
    let mut du = [0.0; 2];
    s.rhs_f64(0.0, &[2.0, -0.01], &p, &mut aux, &mut du);
    assert_eq!(du, [0.05 * 2.0, 2.0 * 0.04]);
}

#[test]
fn gbm_and_ou_diffusion_in_f64() {
    let s = shipped("gbm");
    let mut g = [0.0];
    s.diffusion_f64(0.0, &[3.0], &s.default_params(), &mut Vec::new(), &mut g);
    assert_eq!(g, [0.2 * 3.0]); // sigma*S, one rounding: exactly the product
    let s = shipped("ornstein_uhlenbeck");
    s.diffusion_f64(0.0, &[-7.0], &s.default_params(), &mut Vec::new(), &mut g);
    assert_eq!(g, [0.3]);
}

#[test]
fn noise_from_strings() {
    let s = System::from_equations_with_noise(
        "pair",
        &[("x", 1.0), ("y", 2.0)],
        &[("s", 0.5)],
        "r = s*2\ndx = -x\ndy = -y",
        "dx = r*x\ndy = s + t",
        NoiseKind::Scalar,
        Calculus::Stratonovich,
    )
    .unwrap();
    let noise = s.noise.as_ref().unwrap();
    assert_eq!((s.n_wiener(), noise.calculus), (1, Calculus::Stratonovich));
    assert_eq!(noise.text, "dx = r*x\ndy = s + t");
    let mut g = [0.0; 2];
    s.diffusion_f64(3.0, &[4.0, 0.0], &[0.5], &mut Vec::new(), &mut g);
    assert_eq!(g, [4.0, 3.5]);
    // The noise uses t: the system is non-autonomous, and visit_nodes sees the noise.
    assert!(s.uses_time());
    let mut times = 0;
    s.visit_nodes(&mut |n| times += matches!(n, Node::Time) as usize);
    assert_eq!(times, 1);
    assert!(!noise.is_additive() && !s.noise_is_additive());

    // An auxiliary that depends on parameters only: the noise is additive, which
    // Noise::is_additive (blind to auxiliaries) does not claim but the system knows.
    let s = System::from_equations_with_noise(
        "add",
        &[("x", 1.0)],
        &[("s", 0.5)],
        "r = s*2\ndx = -x",
        "dx = r",
        NoiseKind::Diagonal,
        Calculus::Ito,
    )
    .unwrap();
    assert!(!s.noise.as_ref().unwrap().is_additive());
    assert!(s.noise_is_additive());

    // General noise: unset pairs are zero; the layout is g[i*m + k].
    let s = System::from_equations_with_noise(
        "gen",
        &[("x", 1.0), ("y", 2.0)],
        &[],
        "dx = 0\ndy = 0",
        "dx[3] = 1\ndy[1] = y",
        NoiseKind::General { wiener: 3 },
        Calculus::Ito,
    )
    .unwrap();
    let mut g = [9.0; 6];
    s.diffusion_f64(0.0, &[1.0, 2.0], &[], &mut Vec::new(), &mut g);
    assert_eq!(g, [0.0, 0.0, 1.0, 2.0, 0.0, 0.0]);
    assert_eq!(s.n_wiener(), 3);

    let e = System::from_equations_with_noise(
        "gen",
        &[("x", 1.0)],
        &[],
        "dx = 0",
        "dx[1] = 1",
        NoiseKind::General { wiener: 0 },
        Calculus::Ito,
    )
    .unwrap_err();
    assert!(
        e.first().message.contains("1 to 256 Wiener processes"),
        "{e}"
    );
}

#[test]
fn an_ode_is_unchanged() {
    let s = shipped("lorenz");
    assert!(s.noise.is_none());
    assert_eq!(s.n_wiener(), 0);
    let mut du = [0.0; 3];
    s.rhs_f64(
        0.0,
        &[1.0, 2.0, 3.0],
        &s.default_params(),
        &mut Vec::new(),
        &mut du,
    );
    assert_eq!(du, [10.0, 25.0 - 2.0, 2.0 - 8.0]);
    // diffusion_f64 on an ODE leaves g alone.
    let mut g: [f64; 0] = [];
    s.diffusion_f64(
        0.0,
        &[1.0, 2.0, 3.0],
        &s.default_params(),
        &mut Vec::new(),
        &mut g,
    );
}

/// A two-state file; `noise` goes between the triple quotes of line 8 (its first line is
/// line 9), `extra` is appended as further keys.
fn file(noise: Option<&str>, extra: &str) -> String {
    let mut f = String::from(
        "name = \"pair\"\n\
         states = { x = 1.0, y = 0.0 }\n\
         parameters = { sigma = 0.3 }\n\
         equations = \"\"\"\n\
         dx = -x\n\
         dy = -y\n\
         \"\"\"\n",
    );
    if let Some(n) = noise {
        f += &format!("noise = \"\"\"\n{n}\n\"\"\"\n");
    }
    f + extra
}

fn parse(text: &str) -> Result<System, phaseflow::model::Diagnostics> {
    parse_system(&Source::new("pair.toml", text))
}

fn first_error(noise: Option<&str>, extra: &str) -> Diagnostic {
    let text = file(noise, extra);
    match parse(&text) {
        Ok(_) => panic!("expected an error for\n{text}"),
        Err(e) => e.0.into_iter().next().unwrap(),
    }
}

/// (message, line, column, hint) of a diagnostic, to compare in one assert.
fn seen(d: &Diagnostic) -> (String, usize, usize, String) {
    let (line, col) = d.position().expect("a position in the file");
    (
        d.message.clone(),
        line,
        col,
        d.hint.clone().unwrap_or_default(),
    )
}

fn case(noise: Option<&str>, extra: &str, message: &str, at: (usize, usize), hint: &str) {
    let d = first_error(noise, extra);
    assert_eq!(
        seen(&d),
        (message.to_string(), at.0, at.1, hint.to_string()),
        "noise {noise:?}, extra {extra:?}\n{d}"
    );
}

const GENERAL: &str = "noise_kind = \"general\"\nwiener = 2\n";

#[test]
fn files_read_the_noise_keys() {
    let s = parse(&file(Some("dx = sigma*x"), "")).unwrap();
    let n = s.noise.as_ref().unwrap();
    assert_eq!((n.kind, n.calculus), (NoiseKind::Diagonal, Calculus::Ito));
    assert_eq!(n.text, "dx = sigma*x");
    let s = parse(&file(
        Some("dx = sigma"),
        "noise_kind = \"scalar\"\ncalculus = \"stratonovich\"\n",
    ))
    .unwrap();
    let n = s.noise.as_ref().unwrap();
    assert_eq!(
        (n.kind, n.calculus),
        (NoiseKind::Scalar, Calculus::Stratonovich)
    );
    let s = parse(&file(Some("dx[2] = sigma\ndy[1] = x"), GENERAL)).unwrap();
    assert_eq!(s.noise.unwrap().kind, NoiseKind::General { wiener: 2 });
    // A `dw = ...` helper that only the noise uses is a helper, not a mistyped equation.
    let text = file(Some("dx = dw"), "").replace("dy = -y\n", "dy = -y\ndw = 2*y\n");
    assert!(parse(&text).is_ok(), "{}", parse(&text).unwrap_err());
    let text = file(Some("dx = 1"), "").replace("dy = -y\n", "dy = -y\ndw = 2*y\n");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.first().message, "equation for unknown state 'w'");
    assert_eq!(e.first().position(), Some((7, 1)));
}

#[test]
fn noise_line_mistakes_point_into_the_file() {
    case(
        Some("dx = sigam*x"),
        "",
        "unknown name 'sigam'",
        (9, 6),
        "did you mean 'sigma'?",
    );
    case(
        Some("dx = sigma\ndspeed = sigma"),
        "",
        "noise for unknown state 'speed'",
        (10, 1),
        "the states are: x, y",
    );
    case(
        Some("dyy = sigma"),
        "",
        "noise for unknown state 'yy'",
        (9, 1),
        "did you mean 'dy'? The states are: x, y",
    );
    case(
        Some("dx = sigma\n  dx = 1"),
        "",
        "a second noise line for state 'x'",
        (10, 3),
        "the first one is on line 9; keep one",
    );
    case(
        Some("dx[1] = sigma\ndx[1] = 2"),
        GENERAL,
        "a second noise line for state 'x' and Wiener process 1",
        (10, 1),
        "the first one is on line 9; keep one",
    );
    case(
        Some("dx[3] = sigma"),
        GENERAL,
        "Wiener process 3 is out of range",
        (9, 4),
        "with wiener = 2, k runs from 1 to 2",
    );
    case(
        Some("dx[0] = sigma"),
        GENERAL,
        "'0' is not a Wiener process number",
        (9, 4),
        "Wiener processes are numbered 1, 2, ... up to wiener",
    );
    case(
        Some("dy = 0\ndx[1] = sigma"),
        "",
        "'[k]' picks a Wiener process, which only general noise has",
        (10, 4),
        "write dx = ... for diagonal or scalar noise, or set noise_kind = \"general\" and wiener = N",
    );
    case(
        Some("dx = sigma"),
        GENERAL,
        "general noise needs the Wiener process: write 'dx[k] = ...'",
        (9, 1),
        "k runs from 1 to wiener = 2",
    );
    case(
        Some("a = sigma"),
        "",
        "'a' cannot be defined in the noise block",
        (9, 1),
        "noise lines read dx = expression for a state x; define helpers in the equations, \
         the noise block may use them",
    );
    case(
        Some("x = sigma"),
        "",
        "'x' is a state; its noise is written 'dx = ...'",
        (9, 1),
        "write dx = ...",
    );
    case(
        Some("x' = sigma"),
        "",
        "the noise of 'x' is written 'dx = ...'",
        (9, 1),
        "x' and dx/dt are for equations; the noise block gives the coefficient of dW",
    );
    case(
        Some("dx = dy"),
        "",
        "'dy' is the derivative of 'y' and cannot be used on a right-hand side",
        (9, 6),
        "define a helper, e.g. v = ..., and use it in both dy and here",
    );
    case(
        Some("dx = sigma*x[1]"),
        "",
        "unexpected character '['",
        (9, 13),
        "only round parentheses group expressions",
    );
    case(
        Some("# nothing here"),
        "",
        "the noise block has no lines",
        (9, 1),
        "write one line per noisy state, e.g. dx = sigma*x, or remove 'noise'",
    );
}

#[test]
fn noise_key_mistakes_point_into_the_file() {
    // Line 11 is the first line after the noise block.
    case(
        Some("dx = sigma"),
        "wiener = 2\n",
        "'wiener' is only for general noise",
        (11, 1),
        "diagonal noise has one Wiener process per state and scalar noise one; set \
         noise_kind = \"general\" for another number",
    );
    case(
        Some("dx = sigma"),
        "noise_kind = \"diagnal\"\n",
        "'noise_kind' is 'diagnal'",
        (11, 14),
        "did you mean \"diagonal\"?",
    );
    case(
        Some("dx = sigma"),
        "noise_kind = \"brownian\"\n",
        "'noise_kind' is 'brownian'",
        (11, 14),
        "it is one of \"diagonal\", \"scalar\", \"general\"",
    );
    case(
        Some("dx = sigma"),
        "calculus = \"itoo\"\n",
        "'calculus' is 'itoo'",
        (11, 12),
        "did you mean \"ito\"?",
    );
    case(
        Some("dx = sigma"),
        "calculus = 1\n",
        "'calculus' is not a string",
        (11, 12),
        "it is one of \"ito\", \"stratonovich\"",
    );
    case(
        Some("dx[1] = sigma"),
        "noise_kind = \"general\"\n",
        "general noise needs 'wiener', the number of Wiener processes",
        (11, 14),
        "add wiener = 2 (or however many the noise lines use)",
    );
    for bad in ["0", "257", "1.5", "\"2\""] {
        case(
            Some("dx[1] = sigma"),
            &format!("noise_kind = \"general\"\nwiener = {bad}\n"),
            "'wiener' must be a whole number from 1 to 256",
            (12, 10),
            "",
        );
    }
    for key in [
        "noise_kind = \"scalar\"",
        "calculus = \"ito\"",
        "wiener = 2",
    ] {
        let name = key.split(' ').next().unwrap();
        case(
            None,
            &format!("{key}\n"),
            &format!("'{name}' is given without 'noise'"),
            (8, 1),
            "add noise = \"\"\"dx = ...\"\"\" for a stochastic system, or remove this key",
        );
    }
    case(
        Some("dx = sigma"),
        "noise_knd = \"scalar\"\n",
        "unknown key 'noise_knd' in a system file",
        (11, 1),
        "did you mean 'noise_kind'?",
    );
}

#[test]
fn indexed_targets_belong_to_noise_only() {
    let text = file(None, "").replace("dx = -x", "dx[1] = -x");
    let e = parse(&text).unwrap_err();
    assert_eq!(
        seen(e.first()),
        (
            "'[k]' picks a Wiener process, which only a general noise block has".into(),
            5,
            4,
            "equations give the drift: write dx = ...".into()
        )
    );
    // A bracket inside an equation keeps the message it had before brackets were tokens.
    let text = file(None, "").replace("dx = -x", "dx = -x[2]");
    let e = parse(&text).unwrap_err();
    assert_eq!(
        seen(e.first()),
        (
            "unexpected character '['".into(),
            5,
            8,
            "only round parentheses group expressions".into()
        )
    );
}

#[test]
fn escaped_noise_strings_report_against_the_decoded_text() {
    let text = file(None, "noise = \"dx = sigam\\n\"\n");
    let e = parse(&text).unwrap_err();
    let d = e.first();
    assert_eq!(d.message, "unknown name 'sigam'");
    assert_eq!(d.position(), Some((1, 6)));
    assert_eq!(d.source.as_ref().unwrap().name, "pair.toml (noise)");
    // Without escapes a one-line string points into the file itself.
    let text = file(None, "noise = \"dx = sigam\"\n");
    assert_eq!(parse(&text).unwrap_err().first().position(), Some((8, 15)));
}
