//! Images as fields to fit: PNG in (grey or RGB, values scaled to [0, 1]) and out.

use std::path::Path;

/// Pixels row by row from the top, `channels` values each (1: grey, 3: RGB), in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}' is not a PNG image phaseflow can read: {message}")]
    Decode { path: String, message: String },
    #[error(
        "'{path}' is {width} × {height} pixels, which would take {gib:.1} GiB as samples; \
         images of at most {MAX_PIXELS} pixels (4096 × 4096) are read"
    )]
    TooLarge {
        path: String,
        width: u64,
        height: u64,
        gib: f64,
    },
}

/// The most pixels `read_png` decodes: a small file can declare a huge image, and its
/// samples (f64, up to 3 channels, plus their coordinates) are allocated in full.
pub const MAX_PIXELS: u64 = 1 << 24;

/// Host bytes one pixel takes once read: 3 channels and 2 coordinates, as f64.
const BYTES_PER_PIXEL: u64 = 5 * 8;

impl Image {
    /// Reads a PNG; colour images become RGB, grey ones stay grey, alpha is dropped and
    /// 16-bit channels keep their precision.
    pub fn read_png(path: &Path) -> Result<Image, ImageError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
            path: p.clone(),
            source,
        })?;
        let decode_error = |e: image::ImageError| ImageError::Decode {
            path: p.clone(),
            message: e.to_string(),
        };
        // The header's size is checked before anything of that size is allocated.
        let (w, h) =
            image::io::Reader::with_format(std::io::Cursor::new(&bytes), image::ImageFormat::Png)
                .into_dimensions()
                .map_err(decode_error)?;
        let pixels = w as u64 * h as u64;
        if pixels > MAX_PIXELS {
            return Err(ImageError::TooLarge {
                path: p,
                width: w as u64,
                height: h as u64,
                gib: (pixels * BYTES_PER_PIXEL) as f64 / (1u64 << 30) as f64,
            });
        }
        let img =
            image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).map_err(|e| {
                ImageError::Decode {
                    path: p,
                    message: e.to_string(),
                }
            })?;
        let (width, height) = (img.width() as usize, img.height() as usize);
        let grey = !img.color().has_color();
        let (channels, data): (usize, Vec<f64>) = if grey {
            let g = img.to_luma16();
            (
                1,
                g.into_raw().iter().map(|&v| v as f64 / 65535.0).collect(),
            )
        } else {
            let c = img.to_rgb16();
            (
                3,
                c.into_raw().iter().map(|&v| v as f64 / 65535.0).collect(),
            )
        };
        Ok(Image {
            width,
            height,
            channels,
            data,
        })
    }

    /// The coordinates of every pixel's centre, row by row: (x, y) in (0, 1)², y downwards.
    pub fn pixel_centres(&self) -> Vec<f64> {
        let mut xy = Vec::with_capacity(2 * self.width * self.height);
        for r in 0..self.height {
            for c in 0..self.width {
                xy.push((c as f64 + 0.5) / self.width as f64);
                xy.push((r as f64 + 0.5) / self.height as f64);
            }
        }
        xy
    }

    /// PNG bytes, values clamped to [0, 1] and rounded to 8 bits.
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        let byte = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let color = match self.channels {
            1 => image::ColorType::L8,
            3 => image::ColorType::Rgb8,
            n => return Err(format!("images have 1 or 3 channels, not {n}")),
        };
        let bytes: Vec<u8> = self.data.iter().map(|&v| byte(v)).collect();
        encode_png(self.width as u32, self.height as u32, &bytes, color)
    }

    /// Peak signal-to-noise ratio against `reference` in dB (see `psnr`).
    pub fn psnr(&self, reference: &Image) -> f64 {
        psnr(&self.data, &reference.data)
    }
}

/// PNG bytes of an 8-bit image stored row by row from the top.
pub fn encode_png(
    width: u32,
    height: u32,
    pixels: &[u8],
    color: image::ColorType,
) -> Result<Vec<u8>, String> {
    use image::ImageEncoder;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(pixels, width, height, color)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Peak signal-to-noise ratio of `values` against `reference` in dB, peak 1, values
/// clamped to [0, 1] as a picture would show them (how the Fourier feature paper reports
/// image fits).
pub fn psnr(values: &[f64], reference: &[f64]) -> f64 {
    let mse = values
        .iter()
        .zip(reference)
        .map(|(a, b)| (a.clamp(0.0, 1.0) - b).powi(2))
        .sum::<f64>()
        / values.len() as f64;
    -10.0 * mse.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_keeps_8_bit_values_and_channels() {
        let dir = std::env::temp_dir().join(format!("phaseflow-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for channels in [1, 3] {
            let data: Vec<f64> = (0..5 * 3 * channels)
                .map(|i| ((i * 37) % 256) as f64 / 255.0)
                .collect();
            let img = Image {
                width: 5,
                height: 3,
                channels,
                data,
            };
            let path = dir.join(format!("c{channels}.png"));
            std::fs::write(&path, img.to_png().unwrap()).unwrap();
            let back = Image::read_png(&path).unwrap();
            assert_eq!((back.width, back.height, back.channels), (5, 3, channels));
            for (a, b) in back.data.iter().zip(&img.data) {
                assert!((a - b).abs() < 1e-12, "{a} vs {b}");
            }
            assert!(back.psnr(&img) > 100.0);
        }
        let centres = Image {
            width: 2,
            height: 1,
            channels: 1,
            data: vec![0.0; 2],
        }
        .pixel_centres();
        assert_eq!(centres, vec![0.25, 0.5, 0.75, 0.5]);
        // 16-bit channels keep their precision: 1/65535 steps survive.
        let deep =
            image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 2, vec![0u16, 1, 65534, 65535])
                .unwrap();
        let mut bytes = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageLuma16(deep)
            .write_to(&mut bytes, image::ImageOutputFormat::Png)
            .unwrap();
        std::fs::write(dir.join("deep.png"), bytes.into_inner()).unwrap();
        let deep = Image::read_png(&dir.join("deep.png")).unwrap();
        assert_eq!(deep.channels, 1);
        assert_eq!(deep.data, vec![0.0, 1.0 / 65535.0, 65534.0 / 65535.0, 1.0]);
        std::fs::write(dir.join("bad.png"), b"not a png").unwrap();
        assert!(matches!(
            Image::read_png(&dir.join("bad.png")),
            Err(ImageError::Decode { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
