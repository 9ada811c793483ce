// Statements at the end of main() in the adaptive SDE kernels: the trajectory's time, step,
// W(t) and counters back to `control` and `counts`; a running trajectory that still has
// work in this batch is counted in unfinished[], a stopped one gets NaN in its remaining
// slots. Included by ode/sde/adaptive.wgsl and ode/sde/adaptive_events.wgsl.
    control[i] = t;
    control[i + stride] = h;
    store_w(i, w);
    counts[i] = status;
    counts[i + stride] = accepted;
    counts[i + 2u * stride] = rejected;
    counts[i + 3u * stride] = evals;
    counts[i + 4u * stride] = slot;
    counts[i + 5u * stride] = flags;
    if status == STATUS_RUNNING {
        if slot < win.save_end || slot >= win.n_slots {
            atomicAdd(&unfinished[win.window], 1u);
        }
    } else if status != STATUS_SUCCESS {
        save_nan_from(slot, i);
    }
