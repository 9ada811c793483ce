// The data row of batch sample `s` (needs the `step` and `order` bindings). Padding
// invocations (s >= batch) read the last sample; nothing uses their results.

fn data_row(s: u32) -> u32 {
    var k = step.base + min(s, step.batch - 1u);
    if step.ordered == 1u {
        k = order[k];
    }
    return k;
}
