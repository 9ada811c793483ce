//! Symbolic Jacobians (model::derive) emitted as WGSL (wgsl::emit_system_with) and run on
//! the device, against their CPU twin `Program::eval`: every built-in system and one using
//! every function of the language, in f64 and f32.

mod common;
use common::gpu;
use phaseflow::gpu::layout::{Binding, bind_group, bind_group_layout, buffer, pipeline_layout};
use phaseflow::gpu::readback::with_mapped;
use phaseflow::gpu::shader::compose;
use phaseflow::model::derive::{Jacobian, Wrt, jacobian};
use phaseflow::model::wgsl::{ProgramFn, emit_system_with};
use phaseflow::model::{System, builtin, builtin_names};
use phaseflow::ode::Precision;
use phaseflow::ode::codegen::real_lib;
use phaseflow::rng::uniform_f64;
use wgpu::util::DeviceExt;

/// Points per system.
const POINTS: u64 = 64;

/// Inputs read from the point's own parameter slots, by the formula of `Signal::eval`
/// (the kernels' `input_value` reads their parameter buffer the same way).
const INPUT_VALUE: &str = "
fn input_value(first: u32, m: u32, t0: real, inverse_spacing: real, t: real) -> real {
    let s = clamp((t - t0) * inverse_spacing, real(0.0), real(m - 1u));
    let j = min(u32(s), m - 2u);
    let f = s - real(j);
    let a = args[slots + first + j];
    let b = args[slots + first + j + 1u];
    return a + f * (b - a);
}
";

/// One invocation per point: args = [1 (for math_init), then per point t, u, parameter
/// slots]; results = the Jacobian's entries per point.
fn kernel(s: &System, j: &Jacobian, precision: Precision) -> String {
    let fields: Vec<String> = (0..j.entries.len()).map(|k| format!("e{k}")).collect();
    let f = ProgramFn {
        program: &j.program,
        fn_name: "jac",
        struct_name: "Jac",
        fields: fields.clone(),
    };
    let stride = 1 + s.dim() + s.n_param_slots();
    let mut w = compose("common/status.wgsl", &[]).unwrap();
    w.push_str(&real_lib(precision).unwrap());
    w.push_str(
        "@group(0) @binding(0) var<storage, read> args: array<real>;
@group(0) @binding(1) var<storage, read_write> results: array<real>;
var<private> slots: u32;
",
    );
    w.push_str(INPUT_VALUE);
    w.push_str(&emit_system_with(s, &[f], precision));
    w.push_str(&format!(
        "
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
    math_init(args[0]);
    let i = id.x;
    if i >= {POINTS}u {{
        return;
    }}
    let base = 1u + i * {stride}u;
    slots = base + {}u;
    var s: State;
    var p: Params;
",
        1 + s.dim()
    ));
    for c in 0..s.dim() {
        w.push_str(&format!("    s.x{c} = args[base + {}u];\n", 1 + c));
    }
    for c in 0..s.n_params() {
        w.push_str(&format!("    p.p{c} = args[slots + {c}u];\n"));
    }
    w.push_str("    let o = jac(args[base], s, p);\n");
    let n = j.entries.len().max(1);
    for (k, field) in fields.iter().enumerate() {
        w.push_str(&format!("    results[i * {n}u + {k}u] = o.{field};\n"));
    }
    w.push_str("}\n");
    w
}

fn run(s: &System, j: &Jacobian, precision: Precision, args: &[f64]) -> Vec<f64> {
    let ctx = gpu();
    let wgsl = kernel(s, j, precision);
    let f64 = precision == Precision::F64;
    let bytes: Vec<u8> = if f64 {
        bytemuck::cast_slice(args).to_vec()
    } else {
        let v: Vec<f32> = args.iter().map(|&a| a as f32).collect();
        bytemuck::cast_slice(&v).to_vec()
    };
    let size = if f64 { 8 } else { 4 };
    let out_bytes = POINTS * j.entries.len().max(1) as u64 * size;
    let input = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("jacobian args"),
            contents: &bytes,
            usage: wgpu::BufferUsages::STORAGE,
        });
    use wgpu::BufferUsages as U;
    let output = buffer(ctx, "jacobian", out_bytes, U::STORAGE | U::COPY_SRC);
    let staging = buffer(
        ctx,
        "jacobian staging",
        out_bytes,
        U::MAP_READ | U::COPY_DST,
    );
    let storage = |read_only| Binding::Storage { read_only };
    let layout = bind_group_layout(ctx, "jacobian", &[storage(true), storage(false)]);
    let label = format!("{} jacobian", s.name());
    let pipeline = ctx
        .pipeline(&label, &wgsl, &pipeline_layout(ctx, &layout), f64)
        .unwrap_or_else(|e| panic!("{e}\n{wgsl}"));
    let group = bind_group(ctx, "jacobian", &layout, 0, &[&input, &output]);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(POINTS.div_ceil(64) as u32, 1, 1);
    }
    enc.copy_buffer_to_buffer(&output, 0, &staging, 0, out_bytes);
    ctx.queue.submit([enc.finish()]);
    with_mapped(ctx, &staging, out_bytes, |b| {
        if f64 {
            bytemuck::cast_slice::<u8, f64>(b).to_vec()
        } else {
            let v: &[f32] = bytemuck::cast_slice(b);
            v.iter().map(|&x| x as f64).collect()
        }
    })
    .unwrap()
}

/// Random points near the defaults (as in the derive unit tests), each value rounded to
/// the precision so that device and CPU twin see the same numbers.
fn points(s: &System, precision: Precision) -> Vec<f64> {
    let round = |x: f64| match precision {
        Precision::F32 => x as f32 as f64,
        Precision::F64 => x,
    };
    let mut args = vec![1.0];
    for k in 0..POINTS {
        let r = |stream: u32| 2.0 * uniform_f64(31, k, stream) - 1.0;
        args.push(round(1.0 + r(0)));
        for (c, d) in s.default_state().iter().enumerate() {
            args.push(round(d + r(1 + c as u32) * (0.3 * d.abs() + 0.5)));
        }
        for (c, d) in s.default_params().iter().enumerate() {
            args.push(round(d * (1.0 + 0.2 * r(100 + c as u32))));
        }
        for c in 0..s.n_input_values() {
            args.push(round(r(200 + c as u32)));
        }
    }
    args
}

fn every_func() -> System {
    System::from_equations(
        "every_func",
        &[("x", 0.5), ("y", 1.0), ("z", 0.75)],
        &[("q", 1.3), ("w", 0.7)],
        "a = sin(x)*cos(y) + tan(z)
b = asin(x/2) + acos(x/3) + atan(y*z)
c = atan2(y, x) + sinh(z) + cosh(x) + tanh(y - z) + a
e = exp(x*y) + log(y + 2) + log2(z + 2) + log10(x + y + 4)
g = sqrt(x + z + 3) + abs(x - y) + sign(y - x)*z + floor(4*x) + ceil(3*y) - abs(b)
h = min(x, y*z) + max(x*x, z) + clamp(x, y - 1, z) + clamp(y, 0.9, 1.1)
k = pow(x + 2, y) + pow(x + y + 4, y) + pow(2.5, z) + pow(x + 2, q) + (x + 2)^1.5
dx = a*b + c^3 - e/g + q*t
dy = h^-2 + a^2*x + x^4/(1 + y^2) - sin(w*t)*k
dz = k*c - b + g/(1 + h^2) + min(t, x) + max(q, y)
",
    )
    .unwrap()
}

/// The device's Jacobians against the CPU twin's, entry by entry.
///
/// The error is measured relative to the largest entry of the same row (or 1): every entry
/// is a short sum of products of terms about that size, so rounding errs by a few ulp of
/// it, and each f64 library function by at most 4 ulp (tests/math_f64.rs). f64: 1e-13
/// (~450 ulp; measured at most 8e-16 on lavapipe, every_func). f32: 1e-4 (~800 f32 ulp; the
/// device rounds every operation to f32 while the twin works in f64 on the same rounded
/// inputs; measured at most 1.6e-5, cstr, whose Arrhenius entries are quotients of terms
/// near 1e4).
fn compare(s: &System, precision: Precision) {
    let mut wrt: Vec<Wrt> = (0..s.dim()).map(Wrt::State).collect();
    wrt.extend((0..s.n_params()).map(Wrt::Param));
    let j = jacobian(s, &s.rhs, &wrt).unwrap();
    if j.entries.is_empty() {
        return;
    }
    let args = points(s, precision);
    let got = run(s, &j, precision, &args);
    let stride = 1 + s.dim() + s.n_param_slots();
    let n = j.entries.len();
    let rel = match precision {
        Precision::F64 => 1e-13,
        Precision::F32 => 1e-4,
    };
    let mut worst: f64 = 0.0;
    for k in 0..POINTS as usize {
        let a = &args[1 + k * stride..1 + (k + 1) * stride];
        let (t, u, p) = (a[0], &a[1..1 + s.dim()], &a[1 + s.dim()..]);
        let mut want = vec![0.0; n];
        j.program.eval(s, t, u, p, &mut Vec::new(), &mut want);
        for (e, &(r, _)) in j.entries.iter().enumerate() {
            let row = (0..n)
                .filter(|&q| j.entries[q].0 == r)
                .map(|q| want[q].abs())
                .fold(1.0, f64::max);
            let (g, w) = (got[k * n + e], want[e]);
            let err = (g - w).abs() / row;
            worst = worst.max(err);
            assert!(
                err <= rel,
                "{} {precision:?}: entry {:?} at point {k}: device {g}, CPU {w} (|J|row {row})",
                s.name(),
                j.entries[e]
            );
        }
    }
    eprintln!("{} {precision:?}: worst relative error {worst:e}", s.name());
}

#[test]
fn jacobians_on_the_device_match_the_cpu_twin_in_f64() {
    if !gpu().has_f64() {
        eprintln!("skipped: the adapter has no f64");
        return;
    }
    for name in builtin_names() {
        compare(&builtin(name).unwrap().unwrap(), Precision::F64);
    }
    compare(&every_func(), Precision::F64);
}

#[test]
fn jacobians_on_the_device_match_the_cpu_twin_in_f32() {
    for name in builtin_names() {
        compare(&builtin(name).unwrap().unwrap(), Precision::F32);
    }
    compare(&every_func(), Precision::F32);
}
