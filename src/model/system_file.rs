//! System files: TOML with the equations as a string. Read through toml's spanned document
//! so that every problem, including those inside the equations, points into the file.
//!
//! ```toml
//! name = "lorenz"
//! description = "Lorenz's convection model"
//! reference = "E. N. Lorenz, J. Atmos. Sci. 20 (1963) 130-141"
//! states = { x = 1.0, y = 0.0, z = 0.0 }
//! parameters = { sigma = 10.0, rho = 28.0, beta = 2.6666666666666665 }
//! tspan = [0.0, 10.0]   # optional suggestion
//! dt = 0.001            # optional suggestion
//! # optional time-dependent inputs, used in equations as u(t) (or u):
//! # inputs = { u = { sensors = 100, span = [0.0, 1.0], default = 0.0 } }
//! equations = """
//! dx = sigma*(y - x)
//! dy = x*(rho - z) - y
//! dz = x*y - beta*z
//! """
//! ```
//!
//! A stochastic system, dX = f dt + g dW, adds a noise block (see `model::noise`):
//!
//! ```toml
//! noise = """
//! dx = sigma*x           # diagonal (default) or scalar: one line per noisy state
//! """
//! noise_kind = "diagonal"  # or "scalar" (one Wiener process), or "general":
//! # wiener = 2             # general only: lines read dS[k] = ..., k = 1 .. wiener
//! calculus = "ito"         # or "stratonovich"
//! ```
//!
//! A Jacobian ∂f/∂u may be given by hand (see `model::jacobian`): one line per entry that
//! is not zero, checked against the symbolic Jacobian when the file is loaded.
//!
//! ```toml
//! jacobian = """
//! d(dx)/d(x) = -sigma
//! d(dx)/d(y) = sigma
//! """
//! ```

use super::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
use super::event::{Action, Direction, EventKind, EventSource, MAX_EVENTS, resolve_events};
use super::jacobian::resolve_hand_jacobian;
use super::noise::{Calculus, MAX_WIENER, NoiseKind, NoiseSource};
use super::parser::parse_expression_in;
use super::resolve::Resolver;
use super::signal::Input;
use super::system::{Meta, System, Var};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

const KEYS: [&str; 15] = [
    "name",
    "description",
    "reference",
    "states",
    "parameters",
    "equations",
    "tspan",
    "dt",
    "inputs",
    "noise",
    "noise_kind",
    "wiener",
    "calculus",
    "jacobian",
    "events",
];

/// Reads a system file from disk. I/O problems become a diagnostic too.
pub fn load_system_file(path: &Path) -> Result<System, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::bare(format!("cannot read system file '{}': {e}", path.display()))
    })?;
    parse_system(&Source::new(path.display().to_string(), text))
}

/// Parses and checks a system file's text.
pub fn parse_system(source: &Arc<Source>) -> Result<System, Diagnostics> {
    let doc = DeTable::parse(&source.text).map_err(|e| toml_error(source, &e))?;
    let doc = doc.get_ref();
    let mut errors = Vec::new();
    let mut err = |d: Diagnostic| errors.push(d);
    let whole = 0..source.text.len().min(1);

    for (key, _) in doc.iter() {
        let k: &str = key.get_ref();
        if !KEYS.contains(&k) {
            let hint = match did_you_mean(k, KEYS) {
                Some(m) => format!("did you mean '{m}'?"),
                None => format!("the keys are: {}", KEYS.join(", ")),
            };
            err(Diagnostic::new(
                format!("unknown key '{k}' in a system file"),
                source,
                key.span(),
            )
            .with_hint(hint));
        }
    }
    let entry = |k: &str| doc.iter().find(|(key, _)| **key.get_ref() == *k);
    let get = |k: &str| entry(k).map(|(_, v)| v);

    let string = |k: &str,
                  required: bool,
                  err: &mut dyn FnMut(Diagnostic)|
     -> Option<(String, Range<usize>)> {
        match get(k) {
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Some((s.to_string(), v.span())),
                _ => {
                    err(Diagnostic::new(
                        format!("'{k}' must be a string"),
                        source,
                        v.span(),
                    ));
                    None
                }
            },
            None if required => {
                err(Diagnostic::new(
                    format!("the system file has no '{k}'"),
                    source,
                    whole.clone(),
                )
                .with_hint(format!("add {k} = \"...\"")));
                None
            }
            None => None,
        }
    };

    let name = string("name", true, &mut err);
    // The name is shown in messages, file names and kernels' comments: one line of
    // printable text.
    if let Some((text, span)) = &name
        && (text.chars().any(char::is_control) || text.chars().count() > 200)
    {
        err(Diagnostic::new(
            "the system's name must be one line of printable text, at most 200 characters",
            source,
            span.clone(),
        ));
    }
    let description = string("description", false, &mut err);
    let reference = string("reference", false, &mut err);
    let equations = string("equations", true, &mut err);
    let states = match get("states") {
        Some(v) => vars(source, v, "states", &mut err),
        None => {
            err(
                Diagnostic::new("the system file has no 'states'", source, whole.clone())
                    .with_hint(
                        "add states = { x = 1.0, ... } with each state's default initial value",
                    ),
            );
            Vec::new()
        }
    };
    let params =
        get("parameters").map_or_else(Vec::new, |v| vars(source, v, "parameters", &mut err));
    let dt = get("dt").and_then(|v| match number(v.get_ref()) {
        Some(x) if x > 0.0 && x.is_finite() => Some(x),
        _ => {
            err(Diagnostic::new(
                "'dt' must be a positive number",
                source,
                v.span(),
            ));
            None
        }
    });
    let tspan = get("tspan").and_then(|v| {
        let pair = match v.get_ref() {
            DeValue::Array(a) if a.len() == 2 => number(a[0].get_ref()).zip(number(a[1].get_ref())),
            _ => None,
        };
        match pair {
            Some((a, b)) if a < b && a.is_finite() && b.is_finite() => Some((a, b)),
            _ => {
                err(Diagnostic::new(
                    "'tspan' must be [start, end] with start < end",
                    source,
                    v.span(),
                ));
                None
            }
        }
    });

    let inputs = get("inputs").map_or_else(Vec::new, |v| inputs(source, v, tspan, &mut err));

    let noise = string("noise", false, &mut err);
    let jacobian = string("jacobian", false, &mut err);
    let noise_keys = NoiseKeys {
        kind: entry("noise_kind"),
        wiener: entry("wiener"),
        calculus: entry("calculus"),
    };
    let noise_setup = noise_keys.check(source, noise.is_some(), &mut err);
    let events = get("events").map_or_else(Vec::new, |v| events(source, v, &mut err));

    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    let (name, _) = name.expect("checked above");
    let (eq_text, eq_span) = equations.expect("checked above");
    let meta = Meta {
        name,
        description: description.map(|d| d.0).unwrap_or_default(),
        reference: reference.map(|d| d.0).unwrap_or_default(),
        tspan,
        dt,
    };
    let (eq_source, eq_range) = string_source(source, eq_span, &eq_text, "equations");
    let noise = noise.map(|(text, span)| {
        let (source, range) = string_source(source, span, &text, "noise");
        let (kind, calculus) = noise_setup.expect("checked with the other keys");
        NoiseSource {
            source,
            range,
            kind,
            calculus,
        }
    });
    let mut system = System::build_with_noise(
        meta,
        (states, params, inputs),
        &eq_source,
        eq_range,
        noise.as_ref(),
    )?;
    if let Some((text, span)) = jacobian {
        let (source, range) = string_source(source, span, &text, "jacobian");
        system.hand_jacobian = Some(resolve_hand_jacobian(&system, &source, range)?);
    }
    system.events = resolve_events(&system, &events)?;
    Ok(system)
}

impl System {
    /// The system with events written as `[[events]]` tables (TOML text, the same keys as
    /// in a system file), resolved and checked as a file's are; for the library and the
    /// CLI's `--section`. Appends to any events the system has.
    pub fn with_events(mut self, text: &str) -> Result<System, Diagnostics> {
        let source = Source::new(format!("<{} events>", self.name()), text);
        let sources = event_tables(&source)?;
        let mut all = std::mem::take(&mut self.events);
        let mut new = resolve_events(&self, &sources)?;
        // Default names continue the numbering of the events already there.
        for (k, e) in new.iter_mut().enumerate() {
            if sources[k].name.is_none() {
                e.name = format!("event{}", all.len() + k);
            }
        }
        all.append(&mut new);
        if all.len() > MAX_EVENTS {
            return Err(
                Diagnostic::bare(format!("a system may have at most {MAX_EVENTS} events")).into(),
            );
        }
        for (k, e) in all.iter().enumerate() {
            if all[..k].iter().any(|o| o.name == e.name) {
                return Err(
                    Diagnostic::bare(format!("a second event named '{}'", e.name))
                        .with_hint("event names are unique")
                        .into(),
                );
            }
        }
        self.events = all;
        Ok(self)
    }

    /// A continuous record event `condition = 0` (a Poincaré section, the CLI's
    /// `--section "z = 27"`: condition `z - (27)`), appended to the system's events.
    pub fn with_section(self, section: &str, direction: Direction) -> Result<System, Diagnostics> {
        let (lhs, rhs) = section.split_once('=').ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::bare(format!("the section '{section}' has no '='"))
                    .with_hint("write it as an equation, e.g. --section \"z = 27\""),
            )
        })?;
        // Each side is parsed where it is written first, so that a mistake points into
        // the flag's text rather than the condition made from it.
        let flag = Source::new("--section", section);
        let eq = lhs.len();
        let mut resolver = Resolver::new(&flag, &self.states, &self.params, &self.inputs);
        for (i, def) in self.aux.iter().enumerate() {
            resolver.aux_names.entry(def.name.clone()).or_insert(i);
        }
        let mut aux_used = vec![false; self.aux.len()];
        for range in [0..eq, eq + 1..section.len()] {
            if section[range.clone()].trim().is_empty() {
                return Err(Diagnostics::from(
                    Diagnostic::new("this side of the section is empty", &flag, range)
                        .with_hint("write it as an equation, e.g. --section \"z = 27\""),
                ));
            }
            let expr = parse_expression_in(&flag, range).map_err(Diagnostics::from)?;
            // Names resolved here too, so an unknown one is shown in the flag's text.
            resolver.expr(&expr, &mut aux_used);
        }
        if !resolver.errors.is_empty() {
            return Err(Diagnostics(std::mem::take(&mut resolver.errors)));
        }
        let condition = format!("({}) - ({})", lhs.trim(), rhs.trim());
        let text = format!(
            "[[events]]\nname = \"section\"\ncondition = {}\ndirection = \"{}\"\n",
            toml_string(&condition),
            direction.name()
        );
        self.with_events(&text)
    }
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `[[events]]` tables of a TOML text that holds nothing else (`System::with_events`).
pub fn event_tables(source: &Arc<Source>) -> Result<Vec<EventSource>, Diagnostics> {
    let doc = DeTable::parse(&source.text).map_err(|e| toml_error(source, &e))?;
    let doc = doc.get_ref();
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (key, v) in doc.iter() {
        if **key.get_ref() == *"events" {
            out = events(source, v, &mut |d| errors.push(d));
        } else {
            errors.push(
                Diagnostic::new(
                    format!("unknown key '{}' among events", key.get_ref()),
                    source,
                    key.span(),
                )
                .with_hint("write [[events]] tables only"),
            );
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(errors))
    }
}

const EVENT_KEYS: [&str; 6] = ["name", "condition", "kind", "direction", "action", "assign"];

/// `[[events]]`: an array of tables with the keys of `EVENT_KEYS` (see `model::event`).
fn events(
    source: &Arc<Source>,
    value: &Spanned<DeValue>,
    err: &mut dyn FnMut(Diagnostic),
) -> Vec<EventSource> {
    const EXAMPLE: &str = "[[events]]\ncondition = \"y\"\ndirection = \"down\"";
    let DeValue::Array(tables) = value.get_ref() else {
        err(Diagnostic::new(
            "'events' must be an array of tables, written [[events]]",
            source,
            value.span(),
        )
        .with_hint(EXAMPLE));
        return Vec::new();
    };
    let mut out = Vec::new();
    for table in tables.iter() {
        let DeValue::Table(fields) = table.get_ref() else {
            err(Diagnostic::new(
                "each event must be a table, written [[events]]",
                source,
                table.span(),
            )
            .with_hint(EXAMPLE));
            continue;
        };
        let mut ok = true;
        let mut name = None;
        let mut condition = None;
        let mut kind = EventKind::Continuous;
        let mut direction = None;
        let mut action = Action::Record;
        let mut assign = None;
        // Whether 'condition' was written at all, right or wrong: one mistake, one message.
        let mut condition_given = false;
        for (key, v) in fields.iter() {
            let k: &str = key.get_ref();
            condition_given |= k == "condition";
            let text = match v.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                _ => None,
            };
            if !EVENT_KEYS.contains(&k) {
                let hint = match did_you_mean(k, EVENT_KEYS) {
                    Some(m) => format!("did you mean '{m}'?"),
                    None => format!("an event's keys are: {}", EVENT_KEYS.join(", ")),
                };
                err(
                    Diagnostic::new(format!("unknown key '{k}' in an event"), source, key.span())
                        .with_hint(hint),
                );
                ok = false;
                continue;
            }
            let Some(text) = text else {
                err(Diagnostic::new(
                    format!("'{k}' must be a string"),
                    source,
                    v.span(),
                ));
                ok = false;
                continue;
            };
            let mut choice = |names: &[&str]| -> Option<String> {
                if names.contains(&text.as_str()) {
                    return Some(text.clone());
                }
                let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                let hint = did_you_mean(&text, names.iter().copied())
                    .map(|m| format!("did you mean \"{m}\"?"))
                    .unwrap_or_else(|| format!("it is one of {}", quoted.join(", ")));
                err(
                    Diagnostic::new(format!("'{k}' is '{text}'"), source, v.span()).with_hint(hint),
                );
                None
            };
            match k {
                "name" => name = Some((text.clone(), v.span())),
                "condition" if text.trim().is_empty() => {
                    err(
                        Diagnostic::new("'condition' is empty", source, v.span()).with_hint(
                            "an expression whose zero crossing fires the event, e.g. \"y\"",
                        ),
                    );
                    ok = false;
                }
                "condition" => {
                    condition = Some(string_source(source, v.span(), &text, "condition"))
                }
                "kind" => match choice(&["continuous", "discrete"]).as_deref() {
                    Some("discrete") => kind = EventKind::Discrete,
                    Some(_) => kind = EventKind::Continuous,
                    None => ok = false,
                },
                "direction" => match choice(&Direction::NAMES) {
                    Some(d) => direction = Direction::from_name(&d).map(|d| (d, v.span())),
                    None => ok = false,
                },
                "action" => match choice(&Action::NAMES).as_deref() {
                    Some("terminate") => action = Action::Terminate,
                    Some("assign") => action = Action::Assign,
                    Some(_) => action = Action::Record,
                    None => ok = false,
                },
                _ => assign = Some(string_source(source, v.span(), &text, "assign")),
            }
        }
        let Some(condition) = condition else {
            if condition_given {
                continue;
            }
            err(
                Diagnostic::new("an event has no 'condition'", source, table.span()).with_hint(
                    "add condition = \"...\", an expression whose zero crossing fires it",
                ),
            );
            continue;
        };
        if ok {
            out.push(EventSource {
                name,
                kind,
                direction,
                action,
                condition,
                assign,
                table: (source.clone(), table.span()),
            });
        }
    }
    out
}

/// Where a string value's text is to be read from: the file itself when the string is
/// written verbatim (so positions in it are positions in the file), else, when it has
/// escapes, the decoded text as a source of its own (named after the key).
fn string_source(
    source: &Arc<Source>,
    span: Range<usize>,
    text: &str,
    key: &str,
) -> (Arc<Source>, Range<usize>) {
    match raw_string_range(source, span, text) {
        Some(range) => (source.clone(), range),
        None => (
            Source::new(format!("{} ({key})", source.name), text.to_string()),
            0..text.len(),
        ),
    }
}

type Entry<'a> = Option<(
    &'a Spanned<std::borrow::Cow<'a, str>>,
    &'a Spanned<DeValue<'a>>,
)>;

/// The keys that go with `noise`, as found in the file.
struct NoiseKeys<'a> {
    kind: Entry<'a>,
    wiener: Entry<'a>,
    calculus: Entry<'a>,
}

impl NoiseKeys<'_> {
    /// The noise kind and calculus, after checking the keys' values and that they go
    /// together; `None` when something was reported (or, without `noise`, always).
    fn check(
        &self,
        source: &Arc<Source>,
        has_noise: bool,
        err: &mut dyn FnMut(Diagnostic),
    ) -> Option<(NoiseKind, Calculus)> {
        if !has_noise {
            for (key, _) in [self.kind, self.wiener, self.calculus]
                .into_iter()
                .flatten()
            {
                err(Diagnostic::new(
                    format!("'{}' is given without 'noise'", key.get_ref()),
                    source,
                    key.span(),
                )
                .with_hint(
                    "add noise = \"\"\"dx = ...\"\"\" for a stochastic system, or remove this key",
                ));
            }
            return None;
        }
        let mut ok = true;
        let mut name_of = |entry: Entry, names: &[&str]| -> Option<String> {
            let (key, v) = entry?;
            let found = match v.get_ref() {
                DeValue::String(s) if names.contains(&s.as_ref()) => return Some(s.to_string()),
                DeValue::String(s) => format!("'{s}'"),
                _ => "not a string".to_string(),
            };
            let hint = match v.get_ref() {
                DeValue::String(s) => {
                    did_you_mean(s, names.iter().copied()).map(|m| format!("did you mean \"{m}\"?"))
                }
                _ => None,
            }
            .unwrap_or_else(|| {
                let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                format!("it is one of {}", quoted.join(", "))
            });
            err(
                Diagnostic::new(format!("'{}' is {found}", key.get_ref()), source, v.span())
                    .with_hint(hint),
            );
            ok = false;
            None
        };
        let kind = name_of(self.kind, &NoiseKind::NAMES);
        let calculus = name_of(self.calculus, &Calculus::NAMES);
        let calculus = calculus
            .and_then(|c| Calculus::from_name(&c))
            .unwrap_or_default();
        let kind = match (kind.as_deref(), self.wiener) {
            (Some("general"), Some((_, v))) => match number(v.get_ref()) {
                Some(m) if m.fract() == 0.0 && (1.0..=MAX_WIENER as f64).contains(&m) => {
                    NoiseKind::General { wiener: m as usize }
                }
                _ => {
                    err(Diagnostic::new(
                        format!("'wiener' must be a whole number from 1 to {MAX_WIENER}"),
                        source,
                        v.span(),
                    ));
                    return None;
                }
            },
            (Some("general"), None) => {
                let (_, v) = self.kind.expect("read above");
                err(Diagnostic::new(
                    "general noise needs 'wiener', the number of Wiener processes",
                    source,
                    v.span(),
                )
                .with_hint("add wiener = 2 (or however many the noise lines use)"));
                return None;
            }
            (_, Some((key, _))) => {
                let hint = if ok {
                    "diagonal noise has one Wiener process per state and scalar noise one; \
                     set noise_kind = \"general\" for another number"
                } else {
                    "only general noise takes 'wiener'"
                };
                err(
                    Diagnostic::new("'wiener' is only for general noise", source, key.span())
                        .with_hint(hint),
                );
                return None;
            }
            (Some("scalar"), None) => NoiseKind::Scalar,
            (_, None) => NoiseKind::Diagonal,
        };
        ok.then_some((kind, calculus))
    }
}

/// Turns a TOML syntax error into a diagnostic with a caret.
pub fn toml_error(source: &Arc<Source>, e: &toml::de::Error) -> Diagnostics {
    let span = e.span().unwrap_or(0..0);
    let message = e.message().trim().replace('\n', " ");
    Diagnostic::new(format!("invalid TOML: {message}"), source, span).into()
}

fn vars(
    source: &Arc<Source>,
    value: &Spanned<DeValue>,
    what: &str,
    err: &mut dyn FnMut(Diagnostic),
) -> Vec<Var> {
    let DeValue::Table(table) = value.get_ref() else {
        err(Diagnostic::new(
            format!("'{what}' must be a table of name = value"),
            source,
            value.span(),
        )
        .with_hint(format!("{what} = {{ x = 1.0, y = 0.0 }}")));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, v) in table.iter() {
        match number(v.get_ref()) {
            Some(x) if x.is_finite() => out.push(Var {
                name: key.get_ref().to_string(),
                default: x,
                span: Some(key.span()),
            }),
            _ => err(Diagnostic::new(
                format!("the default of '{}' must be a finite number", key.get_ref()),
                source,
                v.span(),
            )),
        }
    }
    out
}

/// `inputs = { u = { sensors = 100, span = [0.0, 1.0], default = 0.0 } }`; the span
/// defaults to the system's `tspan`, the default value to 0.
fn inputs(
    source: &Arc<Source>,
    value: &Spanned<DeValue>,
    tspan: Option<(f64, f64)>,
    err: &mut dyn FnMut(Diagnostic),
) -> Vec<Input> {
    const EXAMPLE: &str = "inputs = { u = { sensors = 100, span = [0.0, 1.0] } }";
    let DeValue::Table(table) = value.get_ref() else {
        err(Diagnostic::new(
            "'inputs' must be a table of name = { ... }",
            source,
            value.span(),
        )
        .with_hint(EXAMPLE));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, v) in table.iter() {
        let name = key.get_ref().to_string();
        let DeValue::Table(fields) = v.get_ref() else {
            err(
                Diagnostic::new(format!("input '{name}' must be a table"), source, v.span())
                    .with_hint(EXAMPLE),
            );
            continue;
        };
        let mut input = Input::new(name.clone(), 0, tspan.unwrap_or((f64::NAN, f64::NAN)));
        input.span = Some(key.span());
        let mut has_sensors = false;
        for (field, fv) in fields.iter() {
            let bad = |what: &str| Diagnostic::new(what.to_string(), source, fv.span());
            match &**field.get_ref() {
                "sensors" => match number(fv.get_ref()) {
                    Some(x) if x >= 2.0 && x.fract() == 0.0 && x <= 1e6 => {
                        input.sensors = x as usize;
                        has_sensors = true;
                    }
                    _ => err(bad("'sensors' must be a whole number from 2 to 1,000,000")),
                },
                "span" => {
                    let pair = match fv.get_ref() {
                        DeValue::Array(a) if a.len() == 2 => {
                            number(a[0].get_ref()).zip(number(a[1].get_ref()))
                        }
                        _ => None,
                    };
                    match pair {
                        Some((a, b)) if a < b && a.is_finite() && b.is_finite() => {
                            (input.t0, input.t1) = (a, b);
                        }
                        _ => err(bad("'span' must be [start, end] with start < end")),
                    }
                }
                "default" => match number(fv.get_ref()) {
                    Some(x) if x.is_finite() => input.default = x,
                    _ => err(bad("'default' must be a finite number")),
                },
                other => err(Diagnostic::new(
                    format!("unknown key '{other}' in input '{name}'"),
                    source,
                    field.span(),
                )
                .with_hint("an input has sensors, span and default")),
            }
        }
        if !has_sensors {
            err(
                Diagnostic::new(format!("input '{name}' has no 'sensors'"), source, v.span())
                    .with_hint(EXAMPLE),
            );
        } else if input.t0.is_nan() {
            err(Diagnostic::new(
                format!("input '{name}' has no 'span' and the system has no 'tspan'"),
                source,
                v.span(),
            )
            .with_hint("add span = [start, end] for the sensor times"));
        }
        out.push(input);
    }
    out
}

fn number(v: &DeValue) -> Option<f64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .ok()
            .map(|i| i as f64),
        DeValue::Float(f) => {
            let s = f.as_str().replace('_', "");
            match s.trim_start_matches('+') {
                "inf" => Some(f64::INFINITY),
                "-inf" => Some(f64::NEG_INFINITY),
                "nan" | "-nan" => Some(f64::NAN),
                s => s.parse().ok(),
            }
        }
        _ => None,
    }
}

/// Where a string value's characters sit in the file, when they are written there verbatim
/// (no escapes): then equation positions are file positions.
fn raw_string_range(source: &Source, span: Range<usize>, value: &str) -> Option<Range<usize>> {
    let raw = source.text.get(span.clone())?;
    let delim = ["\"\"\"", "'''", "\"", "'"]
        .into_iter()
        .find(|d| raw.starts_with(d))?;
    let mut start = span.start + delim.len();
    let end = span.end.checked_sub(delim.len())?;
    if delim.len() == 3 {
        // TOML trims a newline right after the opening delimiter.
        if source.text[start..].starts_with("\r\n") {
            start += 2;
        } else if source.text[start..].starts_with('\n') {
            start += 1;
        }
    }
    (source.text.get(start..end)? == value).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"name = "decay"
description = "exponential decay"
states = { x = 1.0 }
parameters = { k = 0.5 }
equations = """
dx = -k*x
"""
"#;

    #[test]
    fn reads_a_system_file() {
        let s = parse_system(&Source::new("decay.toml", FILE)).unwrap();
        assert_eq!(s.name(), "decay");
        assert_eq!(s.states[0].name, "x");
        assert_eq!(s.params[0].default, 0.5);
    }

    /// A name goes into kernels' comments and file names: a line break in it would end
    /// the comment and put the rest into the kernel.
    #[test]
    fn a_name_is_one_line_of_printable_text() {
        let text = FILE.replace("\"decay\"", "\"a\\nconst zz: f32 = 1.0; //\"");
        let e = parse_system(&Source::new("decay.toml", text)).unwrap_err();
        assert!(
            e.first().message.contains("one line of printable text"),
            "{e}"
        );
        assert_eq!(e.first().position(), Some((1, 8)));
        let long = FILE.replace("decay", &"d".repeat(201));
        assert!(parse_system(&Source::new("decay.toml", long)).is_err());
    }

    #[test]
    fn equation_errors_point_into_the_file() {
        let text = FILE.replace("-k*x", "-kk*x");
        let e = parse_system(&Source::new("decay.toml", text)).unwrap_err();
        let d = e.first();
        assert_eq!(d.position(), Some((6, 7)), "{e}");
        assert_eq!(d.hint.as_deref(), Some("did you mean 'k'?"));
        assert!(e.to_string().contains("--> decay.toml:6:7"), "{e}");
    }

    #[test]
    fn missing_equation_points_at_the_state() {
        let text = FILE.replace("{ x = 1.0 }", "{ x = 1.0, y = 2.0 }");
        let e = parse_system(&Source::new("decay.toml", text)).unwrap_err();
        assert_eq!(e.first().message, "state 'y' has no equation");
        assert_eq!(e.first().position(), Some((3, 21)));
    }

    #[test]
    fn structural_errors() {
        let e = parse_system(&Source::new("f", FILE.replace("states", "sates"))).unwrap_err();
        assert!(
            e.0.iter()
                .any(|d| d.message == "unknown key 'sates' in a system file"
                    && d.hint.as_deref() == Some("did you mean 'states'?"))
        );
        let e = parse_system(&Source::new("f", FILE.replace("k = 0.5", "k = \"a\""))).unwrap_err();
        assert!(
            e.first()
                .message
                .contains("default of 'k' must be a finite number")
        );
        let e = parse_system(&Source::new("f", "name = \n")).unwrap_err();
        assert!(e.first().message.starts_with("invalid TOML"), "{e}");
        assert_eq!(e.first().position(), Some((1, 8)), "{e}");
    }
}
