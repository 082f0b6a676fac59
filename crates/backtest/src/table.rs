//! Tables of formatted cells, rendered as aligned plain text or as HTML: the one renderer of
//! the terminal tables (backtest summary, forecasts, benchmarks).
//!
//! ```
//! use chronos2_backtest::table::Table;
//! let mut table = Table::new(["series", "MAE"]);
//! table.push(vec!["BTCUSD".into(), "1.5".into()]);
//! assert_eq!(table.text(""), "series  MAE\nBTCUSD  1.5\n");
//! ```

/// A header and rows of formatted cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    header: Vec<String>,
    /// Rows, one cell per column.
    rows: Vec<Vec<String>>,
    /// How many leading columns are text, aligned left in [`Table::text`].
    left: usize,
}

impl Table {
    /// A table with these column names and no rows; the first column is aligned left.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            left: 1,
        }
    }

    /// Aligns the first `columns` columns left (names, labels) instead of only the first.
    pub fn align_left(mut self, columns: usize) -> Self {
        self.left = columns;
        self
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The chosen columns, in the given order (indices past the last column are skipped); as
    /// many leading columns are aligned left as before.
    pub fn columns(&self, columns: &[usize]) -> Self {
        let pick = |cells: &[String]| columns.iter().filter_map(|&c| cells.get(c).cloned()).collect();
        Self {
            header: pick(&self.header),
            rows: self.rows.iter().map(|row| pick(row)).collect(),
            left: self.left,
        }
    }

    /// Aligned text: the leading text columns aligned left, the others (numbers) right, two
    /// spaces between columns; every line starts with `indent` and ends with a newline, without
    /// trailing spaces.
    pub fn text(&self, indent: &str) -> String {
        let lines = || std::iter::once(&self.header).chain(&self.rows);
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                lines()
                    .filter_map(|cells| cells.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for cells in lines() {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, &w))| {
                    if c < self.left {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            out.push_str(indent);
            out.push_str(parts.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// An HTML table of every column (cells escaped: they may hold user text).
    pub fn html(&self) -> String {
        self.html_opening("<table>")
    }

    /// [`html`](Self::html) with a `class` attribute (e.g. `sortable`).
    pub fn html_with_class(&self, class: &str) -> String {
        self.html_opening(&format!("<table class='{}'>", crate::report::escape_html(class)))
    }

    fn html_opening(&self, opening: &str) -> String {
        let cells = |tag: &str, row: &[String]| {
            row.iter()
                .map(|c| format!("<{tag}>{}</{tag}>", crate::report::escape_html(c)))
                .collect::<String>()
        };
        let mut out = format!("{opening}<thead><tr>{}</tr></thead><tbody>", cells("th", &self.header));
        for row in &self.rows {
            out.push_str(&format!("<tr>{}</tr>", cells("td", row)));
        }
        out.push_str("</tbody></table>");
        out
    }

    /// The header and rows as CSV lines, cells quoted where needed
    /// ([`csv_field`](crate::report::csv_field)).
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<_> = row.iter().map(|c| crate::report::csv_field(c)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

/// `n` and the noun in the number that agrees with it: `1 bar`, `2 bars`, `0 forward passes`.
///
/// ```
/// use chronos2_backtest::table::count;
/// assert_eq!(count(1, "bar", "bars"), "1 bar");
/// assert_eq!(count(3, "forward pass", "forward passes"), "3 forward passes");
/// ```
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut table = Table::new(["name", "value", "unit"]);
        table.push(vec!["a".into(), "1.25".into(), "ms".into()]);
        table.push(vec!["longer name".into(), "10".into(), "µs".into()]);
        table
    }

    #[test]
    fn text_aligns_first_column_left_and_the_rest_right() {
        assert_eq!(
            sample().text("  "),
            "  name         value  unit\n  a             1.25    ms\n  longer name     10    µs\n"
        );
    }

    #[test]
    fn columns_select_and_reorder() {
        let picked = sample().columns(&[2, 1, 7]);
        assert_eq!(picked.text(""), "unit  value\nms     1.25\nµs       10\n");
    }

    #[test]
    fn several_text_columns_align_left() {
        assert_eq!(
            sample().align_left(3).text(""),
            "name         value  unit\na            1.25   ms\nlonger name  10     µs\n"
        );
    }

    #[test]
    fn html_has_a_header_row_and_one_row_per_record() {
        let html = sample().html();
        assert!(html.starts_with("<table><thead><tr><th>name</th><th>value</th><th>unit</th></tr></thead>"));
        assert_eq!(html.matches("<tr>").count(), 3);
        assert!(html.ends_with("<td>µs</td></tr></tbody></table>"));
        assert!(sample()
            .html_with_class("sortable")
            .starts_with("<table class='sortable'><thead>"));
    }

    #[test]
    fn csv_quotes_cells_that_need_it() {
        let mut table = Table::new(["name", "value"]);
        table.push(vec!["a,b".into(), "1".into()]);
        assert_eq!(table.csv(), "name,value\n\"a,b\",1\n");
    }
}
