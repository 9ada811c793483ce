//! `phaseflow store status|finalize STORE`: where a sharded Zarr store stands, and its
//! summary once every shard is complete.

use super::error::CliError;
use crate::ode::store::{StoreStatus, finalize};
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Inspect or finish a Zarr store written by `simulate -o STORE.zarr`, \
usually by several shard processes (--shard I/M).

  phaseflow store status run.zarr        which shards are complete, running or missing
  phaseflow store finalize run.zarr      write the summary once all shards are complete

The last shard to finish finalizes the store by itself; `finalize` is for stores whose shards \
finished without it (a shard killed after its last chunk), and refuses an incomplete store, \
naming the shards missing. Exit codes: 0 complete (status) or finalized, 1 incomplete \
(status), 2 not a store or not complete (finalize).";

#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    action: Action,
    /// Print JSON instead of text
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Which shards of the store are complete, running, interrupted or not started
    Status {
        /// The store (a folder ending in .zarr)
        store: PathBuf,
    },
    /// Write the run's summary and consolidated metadata once every shard is complete
    Finalize {
        /// The store (a folder ending in .zarr)
        store: PathBuf,
    },
}

pub fn run(args: &StoreArgs) -> Result<(), CliError> {
    match &args.action {
        Action::Status { store } => {
            let status = StoreStatus::read(store).map_err(CliError::Input)?;
            let missing = status.missing();
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status.json()).expect("JSON")
                );
            } else {
                let done = status.shards - missing.len();
                println!(
                    "{}: {} trajectories in {} shard(s), {done} complete{}",
                    store.display(),
                    status.n,
                    status.shards,
                    if status.finalized { ", finalized" } else { "" }
                );
                for m in &missing {
                    println!("  incomplete: shard {m}");
                }
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(CliError::Runtime(format!(
                    "{} of {} shard(s) of '{}' are not complete",
                    missing.len(),
                    status.shards,
                    store.display()
                )))
            }
        }
        Action::Finalize { store } => {
            let record = finalize(store).map_err(CliError::Input)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&record).expect("JSON"));
            } else {
                println!("{}: complete; status {}", store.display(), record["status"]);
            }
            Ok(())
        }
    }
}
