//! The optimisation settings of an MLP fit (`phaseflow fit`): what is wrong with them is
//! wrong whatever the data, so they are checked before any data is read.

use super::error::FieldError;
use super::schedule::parse_schedule;
use crate::nn::Schedule;
use serde::{Deserialize, Serialize};

/// How a fit optimises; keys as `phaseflow fit` names its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSettings {
    /// Optimiser steps.
    pub steps: u32,
    pub lr: f64,
    /// `constant`, `cosine` or `step:EVERY:GAMMA`.
    pub schedule: String,
    pub weight_decay: f64,
    /// Samples per step; all of them (up to a cap) when not given.
    pub batch: Option<usize>,
    /// Clip the gradient to this global L2 norm.
    pub clip: Option<f64>,
    /// Scale of the Fourier-feature encoding.
    pub sigma: f64,
    /// Read the loss back every K steps.
    pub log_every: Option<u32>,
}

impl Default for FitSettings {
    fn default() -> Self {
        FitSettings {
            steps: 5000,
            lr: 1e-3,
            schedule: "constant".into(),
            weight_decay: 0.0,
            batch: None,
            clip: None,
            sigma: 10.0,
            log_every: None,
        }
    }
}

fn positive_finite(field: &str, v: f64) -> Result<(), FieldError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be a positive, finite number; got {v}"),
        ))
    }
}

impl FitSettings {
    /// One sentence for the first wrong setting: a step count or interval of 0, a rate or
    /// scale that is not a positive, finite number.
    pub fn check(&self) -> Result<(), FieldError> {
        if self.steps == 0 {
            return Err(FieldError::new("steps", "must be at least 1"));
        }
        if self.log_every == Some(0) {
            return Err(FieldError::new(
                "log_every",
                "must be at least 1 (the loss is read back every K steps)",
            ));
        }
        if self.batch == Some(0) {
            return Err(FieldError::new("batch", "must be at least 1"));
        }
        positive_finite("lr", self.lr)?;
        positive_finite("sigma", self.sigma)
    }

    /// The learning-rate schedule over `steps`.
    pub fn schedule(&self) -> Result<Schedule, FieldError> {
        parse_schedule(&self.schedule, self.steps, "schedule")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_setting_is_named() {
        let bad = [
            (
                FitSettings {
                    steps: 0,
                    ..FitSettings::default()
                },
                "steps",
            ),
            (
                FitSettings {
                    log_every: Some(0),
                    ..FitSettings::default()
                },
                "log_every",
            ),
            (
                FitSettings {
                    batch: Some(0),
                    ..FitSettings::default()
                },
                "batch",
            ),
            (
                FitSettings {
                    lr: f64::NAN,
                    ..FitSettings::default()
                },
                "lr",
            ),
            (
                FitSettings {
                    sigma: -1.0,
                    ..FitSettings::default()
                },
                "sigma",
            ),
        ];
        for (settings, field) in bad {
            assert_eq!(settings.check().unwrap_err().field, field);
        }
        assert!(FitSettings::default().check().is_ok());
        let odd = FitSettings {
            schedule: "sometimes".into(),
            ..FitSettings::default()
        };
        assert!(
            odd.schedule()
                .unwrap_err()
                .to_string()
                .starts_with("schedule must be")
        );
    }
}
