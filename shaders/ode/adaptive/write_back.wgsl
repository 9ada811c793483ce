// Statements at the end of main() in the adaptive kernels: the trajectory's time, step,
// error history, first stage and counters back to `control` and `counts`; a running
// trajectory that still has work in this batch is counted in unfinished[], a stopped one
// gets NaN in its remaining slots. Included by ode/adaptive/step.wgsl and
// ode/adaptive/events.wgsl.
    control[i] = t;
    control[i + stride] = h;
    control[i + 2u * stride] = real(log_prev);
    store_k0(i, st.k0);
    counts[i] = status;
    counts[i + stride] = accepted;
    counts[i + 2u * stride] = rejected;
    counts[i + 3u * stride] = evals;
    counts[i + 4u * stride] = slot;
    counts[i + 5u * stride] = flags;
    if status == STATUS_RUNNING {
        let waiting = (flags >> WAIT_SHIFT) == win.save_end;
        if !waiting && (slot < win.save_end || final_batch) {
            atomicAdd(&unfinished[win.window], 1u);
        }
    } else if status != STATUS_SUCCESS {
        save_nan_from(slot, i);
    }
