// The arithmetic ceiling: each invocation runs eight (gpu::peak::CHAINS) independent vec4 chains of
// a ← a * m + c for ITERATIONS steps (2 flop per component and step) and writes their
// sum, so nothing can be left out. A multiply–add rather than fma(): GPU compilers contract
// it into an FMA instruction all the same, while lavapipe implements fma() with an exact
// slow path (a * m + c ran at 83–94 GFLOP/s here where fma() ran at 55–70), and the
// kernels being measured against this ceiling are written as products and sums too. m and c come from a buffer so the compiler cannot fold
// the loop; |m| < 1 keeps every chain bounded. The CPU twin (gpu::peak::fma_twin) runs
// the same recurrence in f64.
//
// Filled in by gpu::peak: REAL (f32 or f64), ITERATIONS, INIT (the chains' starts),
// SUM (their sum), STEP (one step of every chain).

@group(0) @binding(0) var<storage, read> coefficients: array<{{REAL}}>;
@group(0) @binding(1) var<storage, read_write> out: array<{{REAL}}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    let m = vec4<{{REAL}}>(coefficients[0]);
    let c = vec4<{{REAL}}>(coefficients[1]);
    let start = {{REAL}}(i % 97u) * {{REAL}}(0.01);
{{INIT}}
    for (var k = 0u; k < {{ITERATIONS}}u; k++) {
{{STEP}}
    }
    out[i] = {{SUM}};
}
