//! Range checks inside deserialisation, so that a bad value is reported at its place in
//! the file (line, column, caret), as a type error would be. For `#[serde(deserialize_with)]`.

use serde::Deserialize;

/// A positive, finite number.
pub fn positive<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "must be a positive, finite number; got {v}"
        )))
    }
}

/// A finite number ≥ 0.
pub fn non_negative<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "must be a finite number ≥ 0; got {v}"
        )))
    }
}

/// A share in [0, 1).
pub fn share<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "must be a share of the training functions from 0 up to (not including) 1; got {v}"
        )))
    }
}

/// A count of at least 1.
pub fn at_least_one<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + PartialOrd + From<u8>,
{
    let v = T::deserialize(d)?;
    if v >= T::from(1) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom("must be at least 1"))
    }
}

/// A positive, finite number where one is given.
pub fn positive_if_given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    positive(d).map(Some)
}

/// Any finite number.
pub fn finite<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "must be a finite number; got {v}"
        )))
    }
}

/// A batch size of at least 1, as `Some`; a missing key is the whole data set.
pub fn batch<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let v = usize::deserialize(d)?;
    if v >= 1 {
        Ok(Some(v))
    } else {
        Err(serde::de::Error::custom(
            "a batch must hold at least 1 (leave the key out for the whole data set)",
        ))
    }
}
