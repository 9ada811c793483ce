//! Host memory stays bounded when the output is much larger: a run that streams 480 MB of
//! saved states to disk peaks far below that. Alone in its own test binary, because the
//! peak is read for all children of this process together (getrusage).

use std::process::Command;

#[test]
fn host_memory_stays_bounded_while_output_streams_to_disk() {
    let out = std::env::temp_dir().join(format!("phaseflow-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // 200,000 trajectories × 201 saves × 3 states × 4 bytes = 482 MB of states.
    let o = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args([
            "simulate",
            "lorenz",
            "-n",
            "200000",
            "--sweep",
            "rho=0:50",
            "--tspan",
            "0:2",
            "--dt",
            "0.001",
            "--save-every",
            "10",
            "--gpu-memory",
            "64M",
            "-q",
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("binary runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let states = std::fs::metadata(out.join("states.npy")).unwrap().len();
    let _ = std::fs::remove_dir_all(&out);
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: filled by the successful call above.
    let peak = unsafe { usage.assume_init() }.ru_maxrss as u64 * 1024; // kB on Linux
    println!("states.npy {states} bytes, peak RSS {peak} bytes");
    // The process itself (binary, driver, pipelines) is ~80 MB; the 64 MB device budget
    // is host memory on a CPU adapter; the host adds only what a readback slot holds.
    assert!(states > 480_000_000);
    assert!(peak < 250 << 20, "peak RSS {peak} bytes");
}
