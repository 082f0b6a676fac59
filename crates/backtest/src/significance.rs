//! The Diebold-Mariano test of equal forecast accuracy, with the Harvey-Leybourne-Newbold
//! small-sample correction and Student-t p-values.

use serde::Serialize;

/// Result of a Diebold-Mariano test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DieboldMariano {
    /// Number of paired losses.
    pub n: usize,
    /// Mean loss differential `mean(loss_a - loss_b)` (negative: `a` is more accurate).
    pub mean_difference: f64,
    /// HLN-corrected statistic.
    pub statistic: f64,
    /// Two-sided p-value from Student's t with `n - 1` degrees of freedom.
    pub p_value: f64,
}

/// Tests equal accuracy of forecasts `a` and `b` from their per-period losses (e.g. absolute
/// errors), for `h`-step-ahead forecasts: the long-run variance of `d = loss_a - loss_b` uses
/// autocovariances up to lag `h - 1` (rectangular kernel; falls back to lag 0 when that
/// variance is not positive). Statistic `DM = mean(d) / sqrt(V / n)`, scaled by
/// `sqrt((n + 1 - 2h + h(h-1)/n) / n)` (HLN). NaN fields when `n < 3` or `d` is constant.
pub fn diebold_mariano(loss_a: &[f64], loss_b: &[f64], h: usize) -> DieboldMariano {
    let d: Vec<f64> = loss_a
        .iter()
        .zip(loss_b)
        .map(|(a, b)| a - b)
        .filter(|v| v.is_finite())
        .collect();
    let n = d.len();
    let nan = DieboldMariano {
        n,
        mean_difference: f64::NAN,
        statistic: f64::NAN,
        p_value: f64::NAN,
    };
    if n < 3 {
        return nan;
    }
    let nf = n as f64;
    let mean = d.iter().sum::<f64>() / nf;
    let autocovariance = |lag: usize| {
        d[lag..]
            .iter()
            .zip(&d)
            .map(|(x, y)| (x - mean) * (y - mean))
            .sum::<f64>()
            / nf
    };
    let h = h.max(1);
    let mut variance = autocovariance(0) + 2.0 * (1..h.min(n)).map(autocovariance).sum::<f64>();
    if variance <= 0.0 {
        variance = autocovariance(0);
    }
    if variance <= 0.0 {
        return DieboldMariano {
            mean_difference: mean,
            ..nan
        };
    }
    let dm = mean / (variance / nf).sqrt();
    let hf = h as f64;
    let correction = ((nf + 1.0 - 2.0 * hf + hf * (hf - 1.0) / nf) / nf).max(0.0).sqrt();
    let statistic = dm * correction;
    DieboldMariano {
        n,
        mean_difference: mean,
        statistic,
        p_value: 2.0 * (1.0 - student_t_cdf(statistic.abs(), nf - 1.0)),
    }
}

/// CDF of Student's t with `nu` degrees of freedom, via the regularised incomplete beta
/// function: `P(T <= t) = 1 - I_{ν/(ν+t²)}(ν/2, 1/2) / 2` for `t >= 0`.
pub fn student_t_cdf(t: f64, nu: f64) -> f64 {
    let x = nu / (nu + t * t);
    let tail = 0.5 * incomplete_beta(x, nu / 2.0, 0.5);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// Natural log of the gamma function (Lanczos, g = 7, 9 terms; |error| < 1e-13 for x > 0).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// Regularised incomplete beta `I_x(a, b)` by Lentz's continued fraction.
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // Use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) where the fraction converges faster.
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut f = d;
    for m in 1..300 {
        let m = m as f64;
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + numerator / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            f *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * f / a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn student_t_known_values() {
        // t = 2.228 with 10 dof is the 0.975 quantile; t with 1 dof is Cauchy: CDF(1) = 0.75.
        assert!((student_t_cdf(2.228_138_851_986_274, 10.0) - 0.975).abs() < 1e-9);
        assert!((student_t_cdf(1.0, 1.0) - 0.75).abs() < 1e-12);
        assert!((student_t_cdf(0.0, 5.0) - 0.5).abs() < 1e-15);
        assert!((student_t_cdf(-2.0, 30.0) - (1.0 - student_t_cdf(2.0, 30.0))).abs() < 1e-15);
    }

    #[test]
    fn dm_by_hand() {
        // d = [1, 2, 3, 4, 5] - 0: mean 3, γ0 = 2, h = 1: DM = 3 / sqrt(2/5) = 4.7434;
        // HLN factor sqrt((5 + 1 - 2 + 0)/5) = sqrt(0.8): 4.2426.
        let result = diebold_mariano(&[1.0, 2.0, 3.0, 4.0, 5.0], &[0.0; 5], 1);
        assert_eq!(result.n, 5);
        assert!((result.statistic - 3.0 / (0.4f64).sqrt() * 0.8f64.sqrt()).abs() < 1e-12);
        assert!(result.p_value < 0.05);
        // Identical forecasts: no difference, undefined statistic.
        assert!(diebold_mariano(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], 1)
            .statistic
            .is_nan());
    }
}
