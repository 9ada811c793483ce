// The dispatch window's uniform, and `win`, the copy of it every statement reads: main()
// assigns `win = window_uniform;` before anything else. Lavapipe loads a uniform inside
// divergent control flow (after any early return, in a trajectory's step loop) as a
// per-lane gather, because it cannot assume lane 0 is active; in the adaptive step loop
// that was three gathers an attempt, about an eighth of its time. A copy made while every
// lane is active is loaded once and lives in registers. Included by the ODE, stiff and
// SDE step kernels after their `struct Window`.
@group(0) @binding(0) var<uniform> window_uniform: Window;
var<private> win: Window;
