//! Progress of a run: the kernel's compilation as its own phase, then the work done, told by
//! the runner as each dispatch group finishes (so it moves within a chunk), and the
//! trajectories finished, told by the sinks as chunks finish.
//!
//! Shown as a bar on a terminal, never with --quiet or --json. `PHASEFLOW_PROGRESS=lines`
//! prints one plain line per update to stderr instead, whatever stderr is (for logs and
//! tests); `PHASEFLOW_PROGRESS=off` shows nothing.

use crate::ode::{ProgressHook, Sink, SinkError, Status, StepCounts, Tick};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Hidden,
    Bar,
    Lines,
}

impl Mode {
    fn choose(quiet: bool) -> Mode {
        match std::env::var("PHASEFLOW_PROGRESS").as_deref() {
            _ if quiet => Mode::Hidden,
            Ok("lines") => Mode::Lines,
            Ok("off") => Mode::Hidden,
            _ if std::io::stderr().is_terminal() => Mode::Bar,
            _ => Mode::Hidden,
        }
    }
}

/// What the bar, the hook and the sink share.
struct Shared {
    bar: ProgressBar,
    mode: Mode,
    n: usize,
    done: AtomicUsize,
    started: Instant,
}

impl Shared {
    fn message(&self) -> String {
        format!(
            "{}/{} trajectories done",
            self.done.load(Ordering::Relaxed),
            self.n
        )
    }

    fn line(&self, what: &str) {
        if self.mode == Mode::Lines {
            let (pos, len) = (self.bar.position(), self.bar.length().unwrap_or(0));
            let percent = if len == 0 {
                0.0
            } else {
                100.0 * pos as f64 / len as f64
            };
            // Not eprintln: a closed stderr must not stop the run.
            let _ = writeln!(
                std::io::stderr(),
                "progress: {what} · {percent:.1}% of the work · {} · {:.1} s",
                self.message(),
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    fn tick(&self, tick: Tick) {
        match tick {
            Tick::Compiling => {
                self.bar.set_message("compiling the kernel");
                self.line("compiling the kernel");
            }
            Tick::Compiled(took) => {
                self.bar.set_message(self.message());
                self.line(&format!("kernel compiled in {:.2} s", took.as_secs_f64()));
            }
            Tick::Total(total) => self.bar.set_length(total),
            Tick::Done(work) => {
                self.bar.inc(work);
                self.line("running");
            }
        }
    }
}

pub struct Progress {
    shared: Arc<Shared>,
}

impl Progress {
    /// Progress of a run of `n` trajectories, hidden when `quiet`.
    pub fn new(n: usize, quiet: bool) -> Progress {
        let mode = Mode::choose(quiet);
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if mode == Mode::Bar {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% · {msg} · ETA {eta}",
            )
            .expect("valid template"),
        );
        if mode == Mode::Bar {
            // The spinner and the clock move even while the device works on one long group.
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        let shared = Arc::new(Shared {
            bar,
            mode,
            n,
            done: AtomicUsize::new(0),
            started: Instant::now(),
        });
        shared.bar.set_message(shared.message());
        Progress { shared }
    }

    /// The hook the runner tells its phases and work to.
    pub fn hook(&self) -> ProgressHook {
        let shared = self.shared.clone();
        ProgressHook::new(move |tick| shared.tick(tick))
    }

    pub fn finish(&self) {
        self.shared.bar.finish_and_clear();
    }
}

impl Sink for Progress {
    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        let s = &self.shared;
        s.done.fetch_add(chunk.len(), Ordering::Relaxed);
        s.bar.set_message(s.message());
        s.line("chunk finished");
        Ok(())
    }
}
