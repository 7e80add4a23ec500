//! What the console's server-drawn SVG charts (the Traces tab's scatter, the metrics tabs' line
//! charts) share: the plot area inside a chart's margins, and round values for its axis.

/// A chart's size and the plot area inside its margins, in SVG user units.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Frame {
    /// A `width` × `height` chart with the margins `[left, right, top, bottom]`.
    pub fn new(width: f64, height: f64, [left, right, top, bottom]: [f64; 4]) -> Frame {
        Frame {
            width,
            height,
            left,
            right: width - right,
            top,
            bottom: height - bottom,
        }
    }

    pub fn plot_width(&self) -> f64 {
        self.right - self.left
    }

    pub fn plot_height(&self) -> f64 {
        self.bottom - self.top
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `v`; 1 for a value that is not finite and positive.
pub fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    let nice = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude);
    if nice.is_finite() && nice > 0.0 {
        nice
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_values_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_ceiling(1100.0), 2000.0);
        assert_eq!(nice_ceiling(0.03), 0.05);
        assert_eq!(nice_ceiling(5.0), 5.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(nice_ceiling(-3.0), 1.0);
        assert_eq!(nice_ceiling(f64::INFINITY), 1.0);
    }
}
