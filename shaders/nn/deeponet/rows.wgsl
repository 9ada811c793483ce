// Data rows (functions and points) of DeepONet batch entries, as fused_rows.wgsl does for
// one net (needs sb, st, order_b and order_t). Padding entries read the last one.

fn function_row(f: u32) -> u32 {
    var k = sb.base + min(f, sb.batch - 1u);
    if sb.ordered == 1u {
        k = order_b[k];
    }
    return k;
}

fn point_row(y: u32) -> u32 {
    var k = st.base + min(y, st.batch - 1u);
    if st.ordered == 1u {
        k = order_t[k];
    }
    return k;
}
