//! `phaseflow systems` on stochastic systems: `show` prints the noise block, the list
//! marks SDEs, JSON carries the noise, and a noise mistake is reported with its position.

#[path = "common/cli.rs"]
mod cli;
use cli::{phaseflow, stderr, stdout};

#[test]
fn show_prints_the_noise_block() {
    let o = phaseflow(&["systems", "show", "heston"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for line in [
        "noise:      general (dS[k]: state S's coefficient of dW_k), multiplicative",
        "calculus:   ito",
        "wiener:     2 processes",
        "    dv[2] = xi*sqrt(1 - rho^2)*sqrt(vp)",
    ] {
        assert!(out.lines().any(|l| l == line), "no line {line:?} in\n{out}");
    }
    let o = phaseflow(&["systems", "show", "ornstein_uhlenbeck"]);
    let out = stdout(&o);
    assert!(out.contains("noise:      diagonal (one Wiener process per state), additive"));
    assert!(out.contains("wiener:     1 process\n"), "{out}");
    // An ODE prints no noise section.
    let o = phaseflow(&["systems", "show", "lorenz"]);
    assert!(!stdout(&o).contains("noise:"), "{}", stdout(&o));
}

#[test]
fn list_marks_stochastic_systems_and_json_carries_the_noise() {
    let o = phaseflow(&["systems"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let row = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name} in\n{out}"))
            .to_string()
    };
    assert!(row("gbm").contains(" SDE "), "{}", row("gbm"));
    assert!(!row("lorenz").contains(" SDE "), "{}", row("lorenz"));

    let o = phaseflow(&["systems", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let get = |name: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    let heston = get("heston");
    assert_eq!(heston["noise"]["kind"], "general");
    assert_eq!(heston["noise"]["wiener"], 2);
    assert_eq!(heston["noise"]["calculus"], "ito");
    assert_eq!(get("stochastic_lorenz")["noise"]["additive"], true);
    assert!(get("lorenz")["noise"].is_null());
}

#[test]
fn a_noise_mistake_is_reported_with_its_position() {
    let dir = std::env::temp_dir().join(format!("phaseflow-noise-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "name = \"bad\"\nstates = { x = 1.0 }\nparameters = { sigma = 1.0 }\n\
         equations = \"dx = -x\"\nnoise = \"\"\"\ndx = sigam\n\"\"\"\n",
    )
    .unwrap();
    let o = phaseflow(&["systems", "show", file.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("unknown name 'sigam'"), "{err}");
    assert!(err.contains("bad.toml:6:6"), "{err}");
    assert!(err.contains("did you mean 'sigma'?"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
