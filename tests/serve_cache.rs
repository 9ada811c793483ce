//! A long-running `phaseflow serve` that receives ever new inline systems keeps its
//! compiled-pipeline cache and its memory bounded (issue 23): 1,000 distinct systems (each
//! one a kernel of its own) through a server with a small `--pipeline-cache`, then
//! `/metrics` must show the evictions and the process's resident memory must have stayed
//! flat.

mod common;

use common::server::ServeProcess;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One request over a fresh connection; (status, body).
fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// System `i`: one or two states with constants of its own, so that no two share a kernel.
fn system(i: usize) -> Value {
    let k = 1.0 + i as f64 / 1024.0;
    let definition = if i.is_multiple_of(2) {
        format!(
            "name = \"s{i}\"\nstates = {{ x = 1.0 }}\nequations = \"\"\"\ndx = -{k} * x\n\"\"\"\n"
        )
    } else {
        format!(
            "name = \"s{i}\"\nstates = {{ x = 1.0, v = 0.0 }}\nequations = \"\"\"\n\
             dx = v\ndv = -{k} * x\n\"\"\"\n"
        )
    };
    let solver = if i % 4 < 2 { "euler" } else { "rk4" };
    json!({"system": {"definition": definition}, "solver": solver, "n": 1,
           "tspan": [0, 1], "dt": 0.25})
}

/// Submits systems `range` a batch at a time, waits for each, and deletes it (a client
/// that fetched its result), so that only the server's own state remains.
fn run_systems(server: &ServeProcess, range: std::ops::Range<usize>) {
    const BATCH: usize = 16;
    let ids: Vec<usize> = range.collect();
    for batch in ids.chunks(BATCH) {
        let jobs: Vec<u64> = batch
            .iter()
            .map(|&i| {
                let (status, body) = call(server.addr, "POST", "/v1/simulate", Some(&system(i)));
                assert_eq!(status, 202, "system {i}: {body}");
                let v: Value = serde_json::from_str(&body).unwrap();
                v["id"].as_u64().unwrap()
            })
            .collect();
        for id in jobs {
            let started = Instant::now();
            loop {
                let (_, body) = call(server.addr, "GET", &format!("/v1/jobs/{id}"), None);
                let v: Value = serde_json::from_str(&body).unwrap();
                match v["state"].as_str().unwrap() {
                    "queued" | "running" => {}
                    "succeeded" => break,
                    other => panic!("job {id} {other}: {v}"),
                }
                assert!(started.elapsed() < Duration::from_secs(60), "job {id}: {v}");
                std::thread::sleep(Duration::from_millis(5));
            }
            let (status, body) = call(server.addr, "DELETE", &format!("/v1/jobs/{id}"), None);
            assert!(status < 300, "{status} {body}");
        }
    }
}

/// A sample of `/metrics` by its full name.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

fn cache_metrics(server: &ServeProcess) -> [f64; 5] {
    let (status, text) = call(server.addr, "GET", "/metrics", None);
    assert_eq!(status, 200);
    [
        "hits_total",
        "misses_total",
        "evictions_total",
        "entries",
        "capacity",
    ]
    .map(|m| metric(&text, &format!("phaseflow_pipeline_cache_{m}")))
}

const SYSTEMS: usize = 1000;
/// Where the baseline is taken: after the first kernels, the allocator's arenas and the
/// driver's caches have grown to their working size.
const WARM_UP: usize = 200;
const CAPACITY: usize = 16;

#[test]
fn a_thousand_distinct_systems_keep_the_cache_and_memory_bounded() {
    let dir = common::cli::temp_dir("serve-cache");
    let capacity = std::env::var("PHASEFLOW_TEST_PIPELINE_CACHE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CAPACITY);
    let server = ServeProcess::start(
        &dir,
        &["--pipeline-cache", &capacity.to_string(), "--runners", "2"],
    );
    let started = Instant::now();
    run_systems(&server, 0..WARM_UP);
    let warm = server.rss_kib();
    let mut samples = vec![(WARM_UP, warm)];
    for k in (WARM_UP..SYSTEMS).step_by(200) {
        run_systems(&server, k..(k + 200).min(SYSTEMS));
        samples.push(((k + 200).min(SYSTEMS), server.rss_kib()));
    }
    let [hits, misses, evictions, entries, cap] = cache_metrics(&server);
    eprintln!(
        "{SYSTEMS} systems in {:.1} s; cache: {hits} hits, {misses} misses, {evictions} \
         evictions, {entries}/{cap} entries; RSS (KiB) after n systems: {samples:?}",
        started.elapsed().as_secs_f64()
    );

    // Every system is a kernel of its own: each one a miss, and all but the last
    // `capacity` evicted. (Each job compiles exactly one pipeline here, so no hits.)
    assert_eq!(cap, capacity as f64);
    assert!(entries <= capacity as f64, "{entries} entries");
    assert_eq!(misses, SYSTEMS as f64);
    assert_eq!(evictions, (SYSTEMS - capacity) as f64);

    // Memory: the bound. Each pipeline lavapipe compiles keeps its LLVM-generated code and
    // the driver's copy of the shader: with the cache unbounded (--pipeline-cache 100000)
    // this test measured the server growing by about 0.74 MiB per system (233 MiB after
    // 200 systems, 827 MiB after 1,000), i.e. ~590 MiB over the 800 systems after the
    // baseline. With the cache bounded at 16 the growth was ~3 MiB (120 -> 123 MiB:
    // allocator noise and the few bytes the server keeps per job id). 32 MiB is ten times
    // the noise and what ~45 retained pipelines would take, so a cache that leaks even
    // every twentieth pipeline fails.
    if let (Some(warm), Some((_, Some(last)))) = (warm, samples.last().copied()) {
        let growth_mib = (last as f64 - warm as f64) / 1024.0;
        assert!(
            growth_mib < 32.0,
            "the server's memory grew by {growth_mib:.1} MiB over {} systems after the first \
             {WARM_UP} (samples: {samples:?})",
            SYSTEMS - WARM_UP
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cache inside one context: distinct kernels miss, repeats hit, the least recently
/// used is evicted past the capacity, and a pipeline still held outlives its eviction.
#[test]
fn a_context_counts_hits_misses_and_evictions() {
    let ctx = common::gpu();
    ctx.set_pipeline_cache_capacity(2);
    let before = ctx.pipeline_cache_stats();
    let layout = ctx
        .device
        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[],
            immediate_size: 0,
        });
    let kernel = |k: u32| {
        let wgsl = format!(
            "var<workgroup> w: u32;\n@compute @workgroup_size(1)\nfn main() {{ w = {k}u; }}\n"
        );
        ctx.pipeline("cache test", &wgsl, &layout, false).unwrap()
    };
    let first = kernel(1);
    kernel(2);
    kernel(1); // a hit; 2 is now the least recently used
    kernel(3); // evicts 2
    kernel(1); // still cached
    kernel(2); // compiled again, evicting 3
    let s = ctx.pipeline_cache_stats();
    assert_eq!(s.capacity, 2);
    assert_eq!(s.entries, 2);
    assert_eq!(s.hits - before.hits, 2, "{s:?}");
    assert_eq!(s.misses - before.misses, 4, "{s:?}");
    assert_eq!(s.evictions - before.evictions, 2, "{s:?}");
    // A pipeline held by its user stays usable whatever the cache did.
    ctx.set_pipeline_cache_capacity(1);
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&first);
        pass.dispatch_workgroups(1, 1, 1);
    }
    ctx.queue.submit([encoder.finish()]);
    ctx.check_errors().unwrap();
}
