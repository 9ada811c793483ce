// Evaluates one f64 math-library call per invocation, for the library's ulp tests. args[0]
// holds (1, 1) for math_init; call i reads args[i + 1].
#include "common/math_f64.wgsl"

@group(0) @binding(0) var<storage, read> args: array<vec2<f64>>;
@group(0) @binding(1) var<storage, read_write> results: array<f64>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    m64_one = args[0].x;
    let i = (wg.y * groups.x + wg.x) * 64u + lane;
    if i >= arrayLength(&results) {
        return;
    }
    let a = args[i + 1u];
    results[i] = {{CALL}};
}
