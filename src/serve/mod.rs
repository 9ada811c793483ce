//! `phaseflow serve`: the engine behind HTTP. Simulations are jobs (submit, poll, fetch,
//! cancel); loaded DeepONets answer predictions with batching; results live in a directory
//! that outlasts the process. Everything but `/healthz` can be put behind a bearer token,
//! and the server will not listen beyond loopback without one.

mod analysis;
mod app;
pub use app::valid_name as valid_model_name;
mod conn;
pub mod error;
pub mod estimate;
mod limits;
mod metrics;
pub mod montecarlo;
pub mod request;
pub mod results;

pub use limits::Limits;

use crate::engine::{Engine, EngineConfig, EngineError, Shutdown};
use app::App;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::oneshot;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without a token: anyone who can reach it could run work on \
         this GPU. Give a token (ServeConfig::token), or listen on a loopback address"
    )]
    InsecureBind(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use results directory '{path}': {source}")]
    Results {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("model '{name}': {message}")]
    Model { name: String, message: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    pub token: Option<String>,
    pub results: PathBuf,
    pub limits: Limits,
    pub engine: EngineConfig,
    /// Models to load at start (name, checkpoint), besides those in the results directory.
    pub models: Vec<(String, PathBuf)>,
    /// What happens to unfinished jobs when the server stops.
    pub on_shutdown: Shutdown,
    /// Stop on Ctrl-C and SIGTERM (the command does; an embedding program may not want to).
    pub handle_signals: bool,
}

/// A running server: its address, and the way to stop it.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Opens the results directory and the engine, loads the models, binds the address and
    /// starts serving on a thread of its own; returns once it is listening.
    pub fn start(config: ServeConfig) -> Result<Server, ServeError> {
        if !config.addr.ip().is_loopback() && config.token.is_none() {
            return Err(ServeError::InsecureBind(config.addr));
        }
        // The port first: a busy one is refused before the device is opened (helper-51 saw
        // a process that failed here after opening lavapipe crash at exit, 1 in 19).
        let listener =
            std::net::TcpListener::bind(config.addr).map_err(|source| ServeError::Bind {
                addr: config.addr,
                source,
            })?;
        // The checkpoints named on the command line next, so that a bad one is refused
        // before the results directory is created or the device opened.
        let named = config
            .models
            .iter()
            .map(|(name, path)| {
                crate::nn::load_deeponet(path)
                    .map(|(arch, params)| (name.clone(), arch, params))
                    .map_err(|e| ServeError::Model {
                        name: name.clone(),
                        message: format!("not a DeepONet checkpoint: {e}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let results_err = |source| ServeError::Results {
            path: config.results.display().to_string(),
            source,
        };
        let (store, stored) = results::ResultStore::open(&config.results).map_err(results_err)?;
        let engine = Engine::new(EngineConfig {
            max_jobs: config.limits.max_jobs,
            max_result_bytes: config.limits.max_output_bytes,
            ..config.engine.clone()
        })?;
        // Past every id an earlier server may have handed out, crashed or not.
        engine.continue_ids_from(store.first_free_id(&stored));
        let app = Arc::new(App::new(
            engine,
            store,
            stored,
            config.limits.clone(),
            config.token.clone(),
        ));
        let models: Vec<(String, PathBuf)> = std::fs::read_dir(app.store.models())
            .map_err(results_err)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .filter_map(|p| {
                let name = p.file_stem()?.to_str()?.to_string();
                (!name.starts_with('.')).then_some((name, p))
            })
            .collect();
        for (name, path) in &models {
            app::load_model(&app, name, path).map_err(|e| ServeError::Model {
                name: name.clone(),
                message: e.message,
            })?;
        }
        for (name, arch, params) in &named {
            app::install_model(&app, name, arch, params).map_err(|e| ServeError::Model {
                name: name.clone(),
                message: e.message,
            })?;
        }

        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ServeError::Bind { addr, source })?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("phaseflow-http".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_stack_size(8 << 20)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                runtime.block_on(run(app, listener, stopped, &config));
            })
            .expect("spawning the HTTP thread");
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops: no new connections, unfinished jobs finished or cancelled as configured,
    /// results stored; returns when all is done.
    pub fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.join();
    }

    /// Waits until the server stops (on a signal, with `handle_signals`).
    pub fn wait(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn router(app: Arc<App>) -> Router {
    let body = app.limits.max_body_bytes;
    let model_body = app.limits.max_model_bytes;
    Router::new()
        .route("/v1/simulate", post(app::simulate))
        .route("/v1/lyapunov", post(app::lyapunov))
        .route("/v1/orbit-diagram", post(app::orbit_diagram))
        .route("/v1/basins", post(app::basins))
        .route("/v1/estimate", post(app::estimate))
        .route("/v1/monte-carlo", post(app::monte_carlo))
        .route("/v1/jobs", get(app::list_jobs))
        .route(
            "/v1/jobs/{id}",
            get(app::job_status).delete(app::delete_job),
        )
        .route("/v1/jobs/{id}/result", get(app::job_result))
        .route(
            "/v1/models",
            post(app::upload_model)
                .get(app::list_models)
                .layer(DefaultBodyLimit::max(model_body)),
        )
        .route("/v1/models/{name}/predict", post(app::predict))
        .route("/healthz", get(app::healthz))
        .route("/metrics", get(app::metrics))
        .fallback(app::not_found)
        .layer(DefaultBodyLimit::max(body))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            app::guard,
        ))
        .with_state(app)
}

async fn stop_signal(stopped: oneshot::Receiver<()>, signals: bool) {
    if !signals {
        let _ = stopped.await;
        return;
    }
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = stopped => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    log::info!("stopping: no new requests; unfinished jobs are being finished or cancelled");
}

async fn run(
    app: Arc<App>,
    listener: std::net::TcpListener,
    stopped: oneshot::Receiver<()>,
    config: &ServeConfig,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log::error!("cannot listen: {e}");
            return;
        }
    };
    let listener = conn::TimedListener {
        listener,
        idle: app.limits.idle_timeout,
    };
    let service = router(app.clone()).into_make_service_with_connect_info::<conn::ConnActivity>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(stop_signal(stopped, config.handle_signals))
        .await;
    if let Err(e) = served {
        log::error!("the HTTP server failed: {e}");
    }
    let engine = app.engine.clone();
    let how = config.on_shutdown;
    let _ = tokio::task::spawn_blocking(move || engine.shutdown(how)).await;
    // Every job has now ended; wait until each one's record and result are stored.
    let waiters: Vec<_> =
        std::mem::take(&mut *app.waiters.lock().unwrap_or_else(|p| p.into_inner()));
    for w in waiters {
        let _ = w.await;
    }
}
