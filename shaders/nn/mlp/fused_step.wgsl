// The uniform every fused network kernel reads, written by nn::mlp::fused_net::step_words
// once per step.

struct Step {
    n: u32,           // the padded batch: feature-major rows of h are n long (nn::mlp::fused::Scratch)
    batch: u32,       // samples in the batch
    base: u32,        // first position of the batch in the data set (or in `order`)
    m: u32,           // samples in the data set: the row stride of x and targets
    ordered: u32,     // 1: sample s is data row order[base + s]
    per_split: u32,   // samples per partial sum in the weight-gradient pass
    _p0: u32,
    _p1: u32,
}
