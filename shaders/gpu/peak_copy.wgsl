// The memory ceiling: a grid-stride copy of vec4<f32> from one buffer to another (every
// byte read once and written once).

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = groups.x * 64u;
    for (var i = gid.x; i < arrayLength(&src); i += stride) {
        dst[i] = src[i];
    }
}
