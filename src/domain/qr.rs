//! QR codes for LPA activation strings, rendered locally (PNG and SVG).

use qrcode::{Color, EcLevel, QrCode, render::svg};

/// Pixels per QR module and the quiet zone (in modules) the QR standard asks for.
const SCALE: usize = 8;
const QUIET: usize = 4;

#[derive(Debug, thiserror::Error)]
#[error("cannot encode this activation code as a QR code: {0}")]
pub struct QrError(String);

fn encode(data: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| QrError(e.to_string()))
}

/// A black-on-white greyscale PNG.
pub fn png(data: &str) -> Result<Vec<u8>, QrError> {
    let code = encode(data)?;
    let modules = code.width();
    let side = (modules + 2 * QUIET) * SCALE;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
            for y in my * SCALE..(my + 1) * SCALE {
                pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| QrError(e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| QrError(e.to_string()))?;
    }
    Ok(out)
}

pub fn svg(data: &str) -> Result<String, QrError> {
    Ok(encode(data)?
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_png_and_svg() {
        let lpa = "LPA:1$rsp.example.com$ABCD-1234-EFGH-5678";
        let bytes = png(lpa).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert!(info.width >= 200);
        let s = svg(lpa).unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg"));
    }
}
