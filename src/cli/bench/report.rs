//! A benchmark's results: a table on the terminal, JSON for machines (with what a later
//! comparison needs: adapter, driver, versions, commit, ceilings), and with `-o` a
//! directory of results.json, results.csv and, over several sizes, log–log plots of time
//! and throughput against size.

use super::row::Row;
use super::scenario::Scenario;
use crate::cli::error::CliError;
use crate::gpu::GpuContext;
use crate::gpu::peak::Peak;
use crate::io::{Chart, OutputDir, Scale, Series};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;

pub(super) struct Report<'a> {
    pub(super) ctx: &'a GpuContext,
    pub(super) scenario: Scenario,
    pub(super) peak: Peak,
    pub(super) rows: Vec<Row>,
}

fn row_json(r: &Row, peak: &Peak) -> Value {
    json!({
        "scenario": r.scenario,
        "variant": r.what,
        "size": r.size,
        "precision": r.precision,
        "wall_seconds": r.seconds,
        "gpu_seconds": r.gpu_seconds,
        "throughput": r.throughput(),
        "unit": format!("{}/s", r.unit),
        "flops": r.flops,
        "flops_per_s": r.flops_per_s(),
        "share_of_peak_flops": r.share_of_peak_flops(peak),
        "bytes": r.bytes,
        "bytes_per_s": r.bytes_per_s(),
        "share_of_peak_bandwidth": r.share_of_peak_bytes(peak),
        "check": r.check,
        "error": r.error,
        "note": r.note,
        "gpu_seconds_per_pass": r.passes.iter()
            .map(|(l, t)| json!({"pass": l, "seconds": t}))
            .collect::<Vec<_>>(),
    })
}

fn or_dash(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

impl Report<'_> {
    pub(super) fn json(&self) -> Value {
        json!({
            "scenario": self.scenario.name(),
            "phaseflow": env!("CARGO_PKG_VERSION"),
            "commit": env!("PHASEFLOW_COMMIT"),
            "wgpu": env!("PHASEFLOW_WGPU_VERSION"),
            "naga": env!("PHASEFLOW_NAGA_VERSION"),
            "adapter": self.ctx.summary,
            "peak": self.peak,
            "results": self.rows.iter().map(|r| row_json(r, &self.peak)).collect::<Vec<_>>(),
        })
    }

    pub(super) fn print(&self, as_json: bool) {
        if as_json {
            println!(
                "{}",
                serde_json::to_string_pretty(&self.json()).expect("JSON")
            );
        } else {
            print!("{}", self.table());
        }
    }

    fn table(&self) -> String {
        let a = &self.ctx.summary;
        let p = &self.peak;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "phaseflow bench {} · {} ({}, {}, {}) · phaseflow {} commit {} · wgpu {}",
            self.scenario.name(),
            a.name,
            a.device_type,
            a.backend,
            a.driver_info,
            env!("CARGO_PKG_VERSION"),
            env!("PHASEFLOW_COMMIT"),
            env!("PHASEFLOW_WGPU_VERSION"),
        );
        let _ = writeln!(
            s,
            "peak     f32 FMA {:.1} GFLOP/s · f64 FMA {} · copy {:.2} GB/s (read + written) · timed by {} · microkernels checked against their twin",
            p.f32_flops / 1e9,
            or_dash(p.f64_flops, |f| format!("{:.1} GFLOP/s", f / 1e9)),
            p.bytes_per_s / 1e9,
            if p.timestamps {
                "GPU timestamps"
            } else {
                "wall clock"
            },
        );
        if self.rows.is_empty() {
            return s;
        }
        let _ = writeln!(
            s,
            "\n{:<15} {:<15} {:>9} {:>11} {:>11} {:>30} {:>8} {:>6} {:>8} {:>6}",
            "scenario",
            "variant",
            "size",
            "wall ms",
            "GPU ms",
            "throughput",
            "GFLOP/s",
            "peak",
            "GB/s",
            "bw"
        );
        for r in &self.rows {
            let percent = |v: Option<f64>| or_dash(v, |x| format!("{:.0}%", 100.0 * x));
            let _ = writeln!(
                s,
                "{:<15} {:<15} {:>9} {:>11.3} {:>11} {:>30} {:>8} {:>6} {:>8} {:>6}",
                r.scenario,
                r.what,
                r.size,
                1e3 * r.seconds,
                or_dash(r.gpu_seconds, |g| format!("{:.3}", 1e3 * g)),
                format!("{:.3e} {}/s", r.throughput(), r.unit),
                or_dash(r.flops_per_s(), |f| format!("{:.2}", f / 1e9)),
                percent(r.share_of_peak_flops(p)),
                or_dash(r.bytes_per_s(), |b| format!("{:.3}", b / 1e9)),
                percent(r.share_of_peak_bytes(p)),
            );
        }
        let _ = writeln!(
            s,
            "\nchecks (each result against its CPU twin before timing)"
        );
        for r in &self.rows {
            let error = r
                .error
                .map(|e| format!("; error vs reference {e:.2e}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  {} {} {}: {}{error}",
                r.scenario, r.what, r.size, r.check
            );
        }
        for r in &self.rows {
            if let Some(note) = &r.note {
                let _ = writeln!(s, "  {} {} {}: {note}", r.scenario, r.what, r.size);
            }
            if !r.passes.is_empty() {
                let parts: Vec<String> = r
                    .passes
                    .iter()
                    .map(|(l, t)| format!("{l} {:.3}", 1e3 * t))
                    .collect();
                let _ = writeln!(
                    s,
                    "  {} {} {} GPU ms per pass: {}",
                    r.scenario,
                    r.what,
                    r.size,
                    parts.join(", ")
                );
            }
        }
        let _ = writeln!(
            s,
            "\nthroughput: per second of wall time; GFLOP/s and GB/s: counted work per second of GPU time (wall where no timestamps); peak, bw: share of the measured ceilings"
        );
        s
    }

    fn csv(&self) -> String {
        let mut s = String::from(
            "scenario,variant,size,precision,wall_seconds,gpu_seconds,throughput,unit,flops_per_s,share_of_peak_flops,bytes_per_s,error\n",
        );
        let num = |v: Option<f64>| v.map(|x| format!("{x:e}")).unwrap_or_default();
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{},{},{},{},{:e},{},{:e},{}/s,{},{},{},{}",
                r.scenario,
                r.what,
                r.size,
                match r.precision {
                    crate::precision::Precision::F32 => "f32",
                    crate::precision::Precision::F64 => "f64",
                },
                r.seconds,
                num(r.gpu_seconds),
                r.throughput(),
                r.unit,
                num(r.flops_per_s()),
                num(r.share_of_peak_flops(&self.peak)),
                num(r.bytes_per_s()),
                num(r.error),
            );
        }
        s
    }

    /// Series per (scenario, variant) over the sizes it ran at, for the plots; only those
    /// with two sizes or more.
    fn curves(&self, value: impl Fn(&Row) -> Option<f64>) -> Vec<Series> {
        let mut by_variant: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &self.rows {
            if let Some(v) = value(r) {
                by_variant
                    .entry(format!("{} {}", r.scenario, r.what))
                    .or_default()
                    .push((r.size as f64, v));
            }
        }
        by_variant
            .into_iter()
            .filter(|(_, points)| points.len() >= 2)
            .map(|(label, points)| Series { label, points })
            .collect()
    }

    /// results.json, results.csv and, where a variant ran at several sizes, time.png and
    /// throughput.png; all appear together or not at all.
    pub(super) fn write(&self, mut dir: OutputDir) -> Result<(), CliError> {
        let fail = |e: crate::io::OutputError| CliError::Runtime(e.to_string());
        dir.write_json("results.json", &self.json()).map_err(fail)?;
        dir.write_bytes("results.csv", self.csv().as_bytes())
            .map_err(fail)?;
        let mut time = self.curves(|r| Some(r.seconds));
        for series in self.curves(|r| r.gpu_seconds) {
            time.push(Series {
                label: format!("{} (GPU)", series.label),
                points: series.points,
            });
        }
        let throughput = self.curves(|r| Some(r.throughput()));
        if !time.is_empty() {
            let unit = self.rows[0].unit;
            let same_unit = self.rows.iter().all(|r| r.unit == unit);
            let unit = if same_unit {
                unit
            } else {
                "work (units in results.csv)"
            };
            let charts = [
                ("time.png", "time per run vs size", "seconds", time),
                (
                    "throughput.png",
                    "throughput vs size",
                    &*format!("{unit} per second"),
                    throughput,
                ),
            ];
            for (file, title, y_label, series) in charts {
                let chart = Chart {
                    title: format!("phaseflow bench {}: {title}", self.scenario.name()),
                    x_label: "size (trajectories, samples or functions)".into(),
                    y_label: y_label.into(),
                    x_scale: Scale::Log,
                    y_scale: Scale::Log,
                    series,
                };
                let png = chart
                    .to_png()
                    .map_err(|e| CliError::Runtime(e.to_string()))?;
                dir.write_bytes(file, &png).map_err(fail)?;
            }
        }
        let written = dir.commit().map_err(fail)?;
        if !written.is_empty() {
            eprintln!(
                "wrote {}",
                written
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }
}
