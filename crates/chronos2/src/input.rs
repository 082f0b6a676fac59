//! The inputs and outputs of one model call, in the reference's tensor terms.
//!
//! Shapes use the letters of [`crate::encoder`]: B rows, T context steps, F known-future steps,
//! M output patches, P patch size, Q quantiles, S tokens, D hidden size.

use crate::config::Config;
use crate::error::Error;

/// One batch for `Chronos2Model.forward`: a `(B, T)` context (NaN = missing), optional group
/// ids, optional known future covariates `(B, F)`, and the number of output patches M.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInput {
    context: Vec<f32>,
    rows: usize,
    group_ids: Option<Vec<i64>>,
    future_covariates: Option<Vec<f32>>,
    future_covariates_mask: Option<Vec<f32>>,
    future_length: usize,
    num_output_patches: usize,
}

impl ModelInput {
    /// A batch of `rows` rows laid out row-major in `context` (`rows * T` values), each row its
    /// own group, one output patch.
    ///
    /// # Errors
    /// [`Error::Input`] if `rows` is 0 or does not divide the number of values.
    pub fn new(context: Vec<f32>, rows: usize) -> Result<Self, Error> {
        if rows == 0 || !context.len().is_multiple_of(rows) || context.is_empty() {
            return Err(Error::Input(format!(
                "context has {} values, which is not a positive multiple of {rows} rows",
                context.len()
            )));
        }
        Ok(Self {
            context,
            rows,
            group_ids: None,
            future_covariates: None,
            future_covariates_mask: None,
            future_length: 0,
            num_output_patches: 1,
        })
    }

    /// A batch from rows of different lengths, left-padded with NaN to the longest (as the
    /// reference pipeline pads a batch).
    ///
    /// # Errors
    /// [`Error::Input`] if there are no rows or all rows are empty.
    pub fn from_rows<R: AsRef<[f32]>>(rows: &[R]) -> Result<Self, Error> {
        let length = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
        let mut context = Vec::with_capacity(rows.len() * length);
        for row in rows {
            let row = row.as_ref();
            context.extend(std::iter::repeat_n(f32::NAN, length - row.len()));
            context.extend_from_slice(row);
        }
        Self::new(context, rows.len())
    }

    /// Sets the group id of each row (rows with equal ids attend to each other).
    pub fn with_group_ids(mut self, group_ids: Vec<i64>) -> Self {
        self.group_ids = Some(group_ids);
        self
    }

    /// Sets known future covariates `(B, F)`, row-major; NaN = unknown.
    pub fn with_future_covariates(mut self, values: Vec<f32>, future_length: usize) -> Self {
        self.future_covariates = Some(values);
        self.future_length = future_length;
        self
    }

    /// Sets an explicit mask for the future covariates `(B, F)` (1 = known).
    pub fn with_future_covariates_mask(mut self, mask: Vec<f32>) -> Self {
        self.future_covariates_mask = Some(mask);
        self
    }

    /// Sets the number of output patches M (horizon `M * P`).
    pub fn with_output_patches(mut self, num_output_patches: usize) -> Self {
        self.num_output_patches = num_output_patches;
        self
    }

    /// Rows B.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Context length T (before truncation to the model's context length).
    pub fn length(&self) -> usize {
        self.context.len() / self.rows
    }

    /// The `(B, T)` context.
    pub fn context(&self) -> &[f32] {
        &self.context
    }

    /// Group ids as given, if any (without allocating).
    pub fn explicit_group_ids(&self) -> Option<&[i64]> {
        self.group_ids.as_deref()
    }

    /// Group ids (default: `0..B`, every row alone).
    pub fn group_ids(&self) -> Vec<i64> {
        self.group_ids
            .clone()
            .unwrap_or_else(|| (0..self.rows as i64).collect())
    }

    /// Known future covariates `(B, F)` and F, if set.
    pub fn future_covariates(&self) -> Option<(&[f32], usize)> {
        self.future_covariates.as_deref().map(|v| (v, self.future_length))
    }

    /// The future covariates' explicit mask, if set.
    pub fn future_covariates_mask(&self) -> Option<&[f32]> {
        self.future_covariates_mask.as_deref()
    }

    /// Output patches M.
    pub fn num_output_patches(&self) -> usize {
        self.num_output_patches
    }

    /// Checks the shapes against each other and against `config` (the reference's
    /// `_validate_input`, plus M within `max_output_patches`).
    ///
    /// # Errors
    /// [`Error::Input`] naming the argument and both shapes.
    pub fn validate(&self, config: &Config) -> Result<(), Error> {
        let b = self.rows;
        let bad = |msg: String| Err(Error::Input(msg));
        if let Some(ids) = &self.group_ids {
            if ids.len() != b {
                return bad(format!(
                    "group_ids has {} entries, expected one per row ({b})",
                    ids.len()
                ));
            }
        }
        let m = self.num_output_patches;
        if m == 0 || m > config.max_output_patches {
            return bad(format!(
                "num_output_patches must be in 1..={}, found {m}",
                config.max_output_patches
            ));
        }
        if let Some(values) = &self.future_covariates {
            let f = self.future_length;
            if values.len() != b * f {
                return bad(format!(
                    "future_covariates has {} values, expected B*F = {b}*{f}",
                    values.len()
                ));
            }
            if f > m * config.patch_size {
                return bad(format!(
                    "num_output_patches={m} must be large enough for the future covariates: {f} > {m} * {}",
                    config.patch_size
                ));
            }
        }
        if let Some(mask) = &self.future_covariates_mask {
            match &self.future_covariates {
                None => return bad("future_covariates_mask needs future_covariates".into()),
                Some(values) if values.len() != mask.len() => {
                    return bad(format!(
                        "future_covariates_mask has {} values, future_covariates has {}",
                        mask.len(),
                        values.len()
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// The quantile forecasts of one model call: `(B, Q, H)` with `H = M * P`, in the data's units.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelOutput {
    /// `(B, Q, H)`, row-major. Not sorted: quantiles may cross, as in the reference.
    pub quantile_preds: Vec<f32>,
    /// Rows B.
    pub rows: usize,
    /// Quantile levels Q.
    pub num_quantiles: usize,
    /// Horizon H.
    pub horizon: usize,
    /// Instance-norm location per row, `(B)`.
    pub loc: Vec<f32>,
    /// Instance-norm scale per row, `(B)`.
    pub scale: Vec<f32>,
}

impl ModelOutput {
    /// An empty output, to be filled by an engine that reuses its allocation.
    pub fn empty() -> Self {
        Self {
            quantile_preds: Vec::new(),
            rows: 0,
            num_quantiles: 0,
            horizon: 0,
            loc: Vec::new(),
            scale: Vec::new(),
        }
    }

    /// The forecast of row `row` at quantile index `quantile`, `(H)`.
    pub fn series(&self, row: usize, quantile: usize) -> &[f32] {
        let start = (row * self.num_quantiles + quantile) * self.horizon;
        &self.quantile_preds[start..start + self.horizon]
    }
}

/// The encoder's output (`Chronos2Model.encode`): final hidden states `(B, S, D)` with
/// `S = N + 1 + M` tokens (context patches, REG, future patches).
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    /// `(B, S, D)`, row-major, after the final RMS norm.
    pub hidden: Vec<f32>,
    /// Rows B.
    pub rows: usize,
    /// Tokens S.
    pub tokens: usize,
    /// Hidden size D.
    pub d_model: usize,
    /// Context patches N.
    pub num_context_patches: usize,
    /// Instance-norm location per row.
    pub loc: Vec<f32>,
    /// Instance-norm scale per row.
    pub scale: Vec<f32>,
}
