//! `phaseflow info`: the adapters on this machine and which one a run would use.

use super::error::CliError;
use crate::gpu::context::subgroups_wanted;
use crate::gpu::{AdapterChoice, chosen_index, list_adapters};

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

pub fn run(args: &InfoArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    // Refused here as by every command that opens a device.
    let wanted = subgroups_wanted()?;
    let adapters = list_adapters();
    let chosen = chosen_index(choice);
    if args.json {
        let value = serde_json::json!({
            "adapters": adapters,
            "chosen": chosen.as_ref().ok(),
            "error": chosen.as_ref().err().map(|e| e.to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&value).expect("JSON"));
        return chosen.map(|_| ()).map_err(CliError::from);
    }
    if adapters.is_empty() {
        println!("no GPU adapters found");
    }
    for a in &adapters {
        let mark = if chosen.as_ref().ok() == Some(&a.index) {
            "*"
        } else {
            " "
        };
        println!(
            "{mark} [{}] {} ({}, {})",
            a.index, a.name, a.backend, a.device_type
        );
        println!("      driver: {} {}", a.driver, a.driver_info);
        // What the fused network kernels do with them (nn::mlp::fused::LaneSharing).
        let subgroups = match a.subgroup_sizes {
            None => "none (fused network kernels: every lane loads its own)".to_string(),
            Some([lo, hi]) => {
                let use_ = if !wanted {
                    "not used: PHASEFLOW_SUBGROUPS=off"
                } else if lo >= 8 {
                    "fused network kernels share loads through them"
                } else {
                    "narrower than 8: fused network kernels load in every lane"
                };
                format!("{lo}–{hi} lanes ({use_})")
            }
        };
        println!("      subgroups: {subgroups}");
        println!(
            "      f64: {} · timestamps: {} · storage binding: {} · buffer: {} · workgroups/dim: {} · invocations/workgroup: {}",
            if a.shader_f64 { "yes" } else { "no" },
            if a.timestamps { "yes" } else { "no" },
            mib(a.max_storage_buffer_binding_size),
            mib(a.max_buffer_size),
            a.max_compute_workgroups_per_dimension,
            a.max_compute_invocations_per_workgroup,
        );
    }
    chosen?;
    println!("\n* = chosen (choose another with --adapter INDEX|NAME or PHASEFLOW_ADAPTER)");
    Ok(())
}
