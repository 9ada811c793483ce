//! Load generator for `phaseflow serve` on loopback (`cargo bench --bench serve_load`):
//! prediction latency of one function at 100 points, predictions/s with concurrent clients
//! (batched), and jobs/s for small simulations (N = 10^3). Counts and durations are
//! bounded; pass `quick` for a short run.

use phaseflow::engine::{EngineConfig, Shutdown};
use phaseflow::nn::deeponet::data::antiderivative_arch;
use phaseflow::nn::{DeepONetParams, Init, save_deeponet_bytes};
use phaseflow::serve::{Limits, ServeConfig, Server};
use std::time::{Duration, Instant};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, body: &str) -> String {
    let mut r = agent.post(url).send(body).expect("request");
    assert_eq!(r.status().as_u16() / 100, 2, "{url}");
    r.body_mut().read_to_string().expect("body")
}

fn get(agent: &ureq::Agent, url: &str) -> (u16, Vec<u8>) {
    let mut r = agent.get(url).call().expect("request");
    let status = r.status().as_u16();
    (
        status,
        r.body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("body"),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(label: &str, mut ms: Vec<f64>, seconds: f64) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{label:<44} {:>6} requests  {:>8.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        ms.len(),
        ms.len() as f64 / seconds,
        percentile(&ms, 0.5),
        percentile(&ms, 0.99)
    );
}

fn metric(base: &str, name: &str) -> f64 {
    let (_, text) = get(&agent(), &format!("{base}/metrics"));
    String::from_utf8(text)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name} "))
                .map(|v| v.parse().unwrap())
        })
        .unwrap_or(0.0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let dir = std::env::temp_dir().join(format!("phaseflow-serve-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::start(ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: None,
        results: dir.clone(),
        limits: Limits::default(),
        engine: EngineConfig::default(),
        models: Vec::new(),
        on_shutdown: Shutdown::Cancel,
        handle_signals: false,
    })
    .expect("server");
    let base = format!("http://{}", server.addr());
    println!("phaseflow serve on {base}");

    // DeepXDE's antiderivative DeepONet: 100 sensors, 1-D points, width 40.
    let arch = antiderivative_arch(100);
    let params = DeepONetParams::init(&arch, Init::Glorot, 1).unwrap();
    let bytes = save_deeponet_bytes(&arch, &params, &[]).unwrap();
    let mut r = agent()
        .post(format!("{base}/v1/models?name=anti"))
        .send(&bytes[..])
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        201,
        "{}",
        r.body_mut().read_to_string().unwrap()
    );
    let predict_url = format!("{base}/v1/models/anti/predict");
    let y: Vec<f64> = (0..100).map(|i| i as f64 / 99.0).collect();
    let body = |k: usize| {
        let u: Vec<f64> = (0..100)
            .map(|i| ((i * (k + 1)) as f64 * 0.01).sin())
            .collect();
        serde_json::json!({"u": u, "y": y}).to_string()
    };

    // Latency: one client, one request at a time.
    let a = agent();
    for k in 0..20 {
        post(&a, &predict_url, &body(k));
    }
    let (count, limit) = if quick { (100, 5.0) } else { (1000, 20.0) };
    let started = Instant::now();
    let mut ms = Vec::new();
    while ms.len() < count && started.elapsed().as_secs_f64() < limit {
        let t = Instant::now();
        post(&a, &predict_url, &body(ms.len()));
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    summary(
        "predict, 1 client (1 function × 100 points)",
        ms,
        started.elapsed().as_secs_f64(),
    );

    // Throughput: concurrent clients, batched by the server.
    for clients in [8, 32] {
        let passes_before = metric(&base, "phaseflow_prediction_batches_total");
        let answered_before = metric(&base, "phaseflow_predictions_total");
        let duration = Duration::from_secs(if quick { 3 } else { 10 });
        let started = Instant::now();
        let all: Vec<f64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..clients)
                .map(|c| {
                    let (url, body) = (&predict_url, &body);
                    s.spawn(move || {
                        let a = agent();
                        let mut ms = Vec::new();
                        while started.elapsed() < duration {
                            let t = Instant::now();
                            post(&a, url, &body(c));
                            ms.push(t.elapsed().as_secs_f64() * 1e3);
                        }
                        ms
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let seconds = started.elapsed().as_secs_f64();
        let passes = metric(&base, "phaseflow_prediction_batches_total") - passes_before;
        let answered = metric(&base, "phaseflow_predictions_total") - answered_before;
        summary(&format!("predict, {clients} clients"), all, seconds);
        println!(
            "{:<44} {:.1} requests per device pass",
            "",
            answered / passes.max(1.0)
        );
    }

    // Small simulation jobs: submit, poll, fetch the .npz, from 8 clients.
    let jobs = if quick { 32 } else { 128 };
    let spec = serde_json::json!({"system": "lorenz", "n": 1000, "sweep": {"rho": [0, 50]}, "tspan": [0, 1], "dt": 0.001}).to_string();
    let started = Instant::now();
    let per_job: Vec<f64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let (base, spec) = (&base, &spec);
                s.spawn(move || {
                    let a = agent();
                    let mut ms = Vec::new();
                    for _ in 0..jobs / 8 {
                        let t = Instant::now();
                        let v: serde_json::Value =
                            serde_json::from_str(&post(&a, &format!("{base}/v1/simulate"), spec))
                                .unwrap();
                        let id = v["id"].as_u64().unwrap();
                        loop {
                            let (status, _) = get(&a, &format!("{base}/v1/jobs/{id}/result"));
                            if status == 200 {
                                break;
                            }
                            assert_eq!(status, 409);
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        ms.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    ms
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    summary(
        "simulate jobs, N = 10^3 × 1000 RK4 steps, 8 clients",
        per_job,
        started.elapsed().as_secs_f64(),
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
