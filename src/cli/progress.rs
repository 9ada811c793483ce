//! A progress bar fed by the run like any other sink: trajectory-saves done, rate and ETA.
//! Shown only on a terminal, and never with --quiet or --json.

use crate::ode::device::SaveBatch;
use crate::ode::{Sink, SinkError, Status, StepCounts};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::ops::Range;

pub struct Progress {
    bar: ProgressBar,
    n: usize,
    done: usize,
}

impl Progress {
    /// A bar over `n` trajectories × `n_save` saves, or a hidden one when stderr is not a
    /// terminal or `quiet`.
    pub fn new(n: usize, n_save: usize, quiet: bool) -> Progress {
        let visible = !quiet && std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some((n * n_save) as u64),
            if visible {
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
        let mut p = Progress { bar, n, done: 0 };
        p.message();
        p
    }

    fn message(&mut self) {
        self.bar
            .set_message(format!("{}/{} trajectories done", self.done, self.n));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Sink for Progress {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        self.bar.inc((batch.slots.len() * batch.chunk.len()) as u64);
        Ok(())
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        self.done += chunk.len();
        self.message();
        Ok(())
    }
}
