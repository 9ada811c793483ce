//! Shards: one run cut into M parts that M processes (a Slurm job array, a Kubernetes
//! Indexed Job, any launcher) compute independently into one store. A shard is whole
//! blocks of trajectories (the store's chunks along trajectories), so no chunk of any
//! array has two writers.

use std::ops::Range;

/// Environment variables that give a task's index to `--shard auto/M`, looked at in this
/// order: Slurm job arrays, Kubernetes Indexed Jobs.
pub const INDEX_VARIABLES: [&str; 2] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

/// Shard `index` of `count` (counted from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// The most shards a run may be cut into: far more than any cluster's job array, and few
/// enough that `store status` lists them quickly.
pub const MAX_SHARDS: usize = 1 << 20;

impl Shard {
    /// The whole run in one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// `I/M`, or `auto/M` with I from the environment (see `INDEX_VARIABLES`).
    pub fn parse(text: &str) -> Result<Shard, String> {
        Shard::parse_with(text, |k| std::env::var(k).ok())
    }

    /// `parse` with the environment given (tests).
    pub fn parse_with(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let (index, count) = text.trim().split_once('/').ok_or_else(|| {
            format!("'{text}' is not a shard: give I/M (shard I of M, from 0) or auto/M")
        })?;
        let count: usize = count
            .trim()
            .parse()
            .ok()
            .filter(|&m| (1..=MAX_SHARDS).contains(&m))
            .ok_or_else(|| {
                format!("'{text}': the shard count must be a whole number from 1 to {MAX_SHARDS}")
            })?;
        let index = match index.trim() {
            "auto" => auto_index(&env)?,
            i => i.parse::<usize>().map_err(|_| {
                format!("'{text}': the shard index must be a whole number from 0, or auto")
            })?,
        };
        if index >= count {
            return Err(format!(
                "'{text}': shard {index} of {count} does not exist (indices count from 0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// The trajectories of this shard: whole blocks of `block` trajectories, the blocks
    /// shared out as evenly as they go (the first shards get one fewer when they do not).
    pub fn trajectories(&self, n: usize, block: usize) -> Range<usize> {
        let blocks = n.div_ceil(block.max(1));
        let first = |i: usize| (i * blocks / self.count * block).min(n);
        first(self.index)..first(self.index + 1)
    }

    /// The name of this shard's progress file in the store.
    pub fn file_name(&self) -> String {
        format!("{}-of-{}.json", self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The task index from the environment. A Slurm array may start anywhere and step
/// (`--array=1-8`, `--array=0-30:10`): its index counts from `SLURM_ARRAY_TASK_MIN` in steps
/// of `SLURM_ARRAY_TASK_STEP` when those are set.
fn auto_index(env: &impl Fn(&str) -> Option<String>) -> Result<usize, String> {
    for var in INDEX_VARIABLES {
        let Some(value) = env(var) else { continue };
        let index: usize = value
            .trim()
            .parse()
            .map_err(|_| format!("auto: {var}='{value}' is not a whole number from 0"))?;
        let min = match var {
            "SLURM_ARRAY_TASK_ID" => match env("SLURM_ARRAY_TASK_MIN") {
                Some(m) => m.trim().parse::<usize>().map_err(|_| {
                    format!("auto: SLURM_ARRAY_TASK_MIN='{m}' is not a whole number")
                })?,
                None => 0,
            },
            _ => 0,
        };
        let step = match (var, env("SLURM_ARRAY_TASK_STEP")) {
            ("SLURM_ARRAY_TASK_ID", Some(s)) => s
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| {
                format!("auto: SLURM_ARRAY_TASK_STEP='{s}' is not a whole number from 1")
            })?,
            _ => 1,
        };
        let offset = index.checked_sub(min).ok_or_else(|| {
            format!("auto: SLURM_ARRAY_TASK_ID={index} is below SLURM_ARRAY_TASK_MIN={min}")
        })?;
        if offset % step != 0 {
            return Err(format!(
                "auto: SLURM_ARRAY_TASK_ID={index} is not on the array's steps of {step} from {min}"
            ));
        }
        return Ok(offset / step);
    }
    Err(format!(
        "auto/M takes the shard's index from {} (Slurm job arrays) or {} (Kubernetes \
         Indexed Jobs), and neither is set; give the index instead (I/M)",
        INDEX_VARIABLES[0], INDEX_VARIABLES[1]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn parses_explicit_and_environment_indices() {
        assert_eq!(
            Shard::parse_with("2/5", env(&[])),
            Ok(Shard { index: 2, count: 5 })
        );
        assert_eq!(
            Shard::parse_with("auto/4", env(&[("SLURM_ARRAY_TASK_ID", "3")])),
            Ok(Shard { index: 3, count: 4 })
        );
        assert_eq!(
            Shard::parse_with(
                "auto/4",
                env(&[("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_MIN", "1")])
            ),
            Ok(Shard { index: 3, count: 4 })
        );
        assert_eq!(
            Shard::parse_with(
                "auto/4",
                env(&[
                    ("SLURM_ARRAY_TASK_ID", "30"),
                    ("SLURM_ARRAY_TASK_MIN", "0"),
                    ("SLURM_ARRAY_TASK_STEP", "10")
                ])
            ),
            Ok(Shard { index: 3, count: 4 })
        );
        assert_eq!(
            Shard::parse_with("auto/4", env(&[("JOB_COMPLETION_INDEX", "0")])),
            Ok(Shard { index: 0, count: 4 })
        );
    }

    #[test]
    fn refuses_bad_shards_with_a_reason() {
        for (text, says) in [
            ("3", "give I/M"),
            ("3/3", "does not exist"),
            ("0/0", "from 1 to"),
            ("-1/3", "whole number from 0"),
            ("auto/3", "neither is set"),
        ] {
            let e = Shard::parse_with(text, env(&[])).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        let e = Shard::parse_with("auto/3", env(&[("JOB_COMPLETION_INDEX", "x")])).unwrap_err();
        assert!(e.contains("JOB_COMPLETION_INDEX='x'"), "{e}");
        let e = Shard::parse_with("auto/3", env(&[("SLURM_ARRAY_TASK_ID", "7")])).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn shards_cover_the_run_in_whole_blocks() {
        for (n, block, m) in [(10_000, 512, 3), (100, 64, 5), (1, 8, 2), (4096, 4096, 1)] {
            let mut next = 0;
            for index in 0..m {
                let r = Shard { index, count: m }.trajectories(n, block);
                assert_eq!(r.start, next, "n {n} block {block} m {m}");
                assert!(
                    r.start.is_multiple_of(block) && (r.end.is_multiple_of(block) || r.end == n)
                );
                next = r.end;
            }
            assert_eq!(next, n);
        }
    }
}
