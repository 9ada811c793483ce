//! Learning-rate schedules as configs and flags spell them.

use super::error::FieldError;
use crate::nn::Schedule;

/// A learning-rate schedule as text: `constant`, `cosine` (down to 0 over `steps`) or
/// `step:EVERY:GAMMA`; a mistake is an error at key `field`.
pub fn parse_schedule(s: &str, steps: u32, field: &str) -> Result<Schedule, FieldError> {
    let bad = || {
        FieldError::new(
            field,
            format!("must be constant, cosine or step:EVERY:GAMMA (e.g. step:1000:0.5); got '{s}'"),
        )
    };
    match s.split(':').collect::<Vec<_>>()[..] {
        ["constant"] => Ok(Schedule::Constant),
        ["cosine"] => Ok(Schedule::Cosine {
            total: steps,
            min_lr: 0.0,
        }),
        ["step", every, gamma] => {
            let every: u32 = every.parse().map_err(|_| bad())?;
            let gamma: f64 = gamma.parse().map_err(|_| bad())?;
            if every == 0 || gamma.is_nan() || gamma <= 0.0 {
                return Err(bad());
            }
            Ok(Schedule::Step { every, gamma })
        }
        _ => Err(bad()),
    }
}
