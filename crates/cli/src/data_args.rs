//! The data options every command that reads bars shares (`forecast`, `backtest`, `bench`,
//! `compare`): which files, which columns, and how to read them. One clap group, flattened
//! into each command, so that an error's advice (`pass --time-unit ms`) works everywhere.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use chronos2_data::{DataSource, LoadOptions, Missing, ReadOptions, TimeUnit, Zone};

/// Where the bars come from and how to read them.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DataArgs {
    /// Data file of bars: CSV or TSV (delimiter and header detected) or Parquet; `-` reads
    /// standard input; repeat for several files (`backtest` defaults to the BTC-USD bars built
    /// into the program).
    #[arg(long = "data", value_name = "FILE")]
    pub data: Vec<PathBuf>,
    /// Target column(s): `close`, `open,high,low,close` or `ohlc`.
    #[arg(long, default_value = "close")]
    pub target: String,
    /// Timestamp column; default: `timestamp`, `date`, `datetime`, `time`, `open_time`,
    /// `__index_level_0__`, `Gmt time`, `Local time`, `window_start`, `Dates`, `Datum` or an
    /// unnamed first column (a separate time column such as `<TIME>`
    /// is joined to the date); `DATE,TIME` joins two columns.
    #[arg(long, value_name = "COLUMN")]
    pub timestamp_column: Option<String>,
    /// Id column of a long-format file; default: `item_id`, `symbol`, `id` or `ticker` if
    /// present; `none` = the file is one series.
    #[arg(long, value_name = "COLUMN")]
    pub id_column: Option<String>,
    /// The file has no header row (e.g. Binance klines): every row is data.
    #[arg(long)]
    pub no_header: bool,
    /// Column names, comma-separated: with --no-header the names of the columns in order;
    /// otherwise they replace the file's header.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Field delimiter: `,`, `;`, `tab` or `|`; default: detected.
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Unit of epoch timestamps: `s`, `ms`, `us` or `ns`; default: by magnitude.
    #[arg(long, value_name = "UNIT")]
    pub time_unit: Option<String>,
    /// strftime format of the timestamps (`%d/%m/%Y`, `%Y.%m.%d %H:%M`); default: detected.
    #[arg(long, value_name = "FORMAT")]
    pub date_format: Option<String>,
    /// Thousands separator in numbers (`,` reads "29,924.4"); default: detected per column.
    #[arg(long, value_name = "CHAR")]
    pub thousands: Option<String>,
    /// Print timestamps in this zone: `UTC`, an offset (`+02:00`, `-0500`) or a named zone
    /// (`America/New_York`, with its daylight-saving rules); default: the file's own offset.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Missing bars and values: `none` (the trading-day index) or `forward` (fill a full
    /// calendar and missing values by carrying the last bar forward).
    #[arg(long, default_value = "none", value_name = "POLICY")]
    pub fill: String,
    /// Keep the last of rows sharing a timestamp instead of refusing the file.
    #[arg(long)]
    pub keep_last: bool,
    /// Drop rows with a missing value (empty, NaN, null) in a column read.
    #[arg(long)]
    pub drop_missing: bool,
}

/// Standard input, read once (a command may load its data more than once).
fn stdin_bytes() -> Result<&'static [u8]> {
    static STDIN: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    let read = STDIN.get_or_init(|| {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map(|_| bytes)
            .map_err(|e| format!("cannot read standard input (--data -): {e}"))
    });
    match read {
        Ok(bytes) => Ok(bytes),
        Err(message) => bail!("{message}"),
    }
}

/// A one-character flag value; `tab` and `\t` name the tab, `space` the space.
fn one_char(flag: &str, text: &str) -> Result<char> {
    let text = match text {
        "tab" | "\\t" => "\t",
        "space" => " ",
        other => other,
    };
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => bail!("--{flag} `{text}` must be one character, e.g. `,`"),
    }
}

/// Parses `--tz`: `UTC`, an offset (`+02:00`, `-0500`) or a named zone (`Europe/Berlin`).
fn parse_zone(text: &str) -> Result<Zone> {
    Zone::parse(text).with_context(|| {
        format!("cannot read --tz `{text}`; expected UTC, an offset such as +02:00, or a zone such as America/New_York")
    })
}

impl DataArgs {
    /// The sources: each `--data` file (`-` = standard input), or `default` when none is given.
    ///
    /// # Errors
    /// No `--data` and no default, or standard input unreadable.
    pub fn sources(&self, default: Option<DataSource<'static>>) -> Result<Vec<DataSource<'_>>> {
        if self.data.is_empty() {
            return default
                .map(|d| vec![d])
                .context("no data given; pass `--data FILE` (CSV, TSV or Parquet; `-` reads standard input)");
        }
        self.data
            .iter()
            .map(|path| {
                if path == Path::new("-") {
                    stdin_bytes().map(DataSource::Stdin)
                } else {
                    Ok(DataSource::File(path))
                }
            })
            .collect()
    }

    /// The one source of a command that reads one file (`forecast` reads each in turn).
    ///
    /// # Errors
    /// As [`sources`](Self::sources), or more than one `--data`.
    pub fn single_source(&self, default: Option<DataSource<'static>>) -> Result<DataSource<'_>> {
        let mut sources = self.sources(default)?;
        if sources.len() > 1 {
            bail!("this command reads one --data file; {} were given", sources.len());
        }
        Ok(sources.remove(0))
    }

    /// The reading options (columns left empty: each command asks for its own).
    ///
    /// # Errors
    /// A flag value that cannot be read, naming the flag and what it accepts.
    pub fn load_options(&self) -> Result<LoadOptions> {
        let time_unit = match &self.time_unit {
            None => None,
            Some(name) => Some(
                TimeUnit::from_name(name)
                    .with_context(|| format!("unknown --time-unit `{name}`; expected s, ms, us or ns"))?,
            ),
        };
        let delimiter = match &self.delimiter {
            None => None,
            Some(text) => {
                let c = one_char("delimiter", text)?;
                Some(
                    u8::try_from(c)
                        .ok()
                        .filter(u8::is_ascii)
                        .with_context(|| format!("--delimiter `{text}` must be an ASCII character"))?,
                )
            }
        };
        if self.columns.iter().any(|c| c.trim().is_empty()) {
            bail!("--columns has an empty name; give names separated by commas, e.g. timestamp,open,high,low,close");
        }
        let choices = LoadOptions::from_choices(self.id_column.as_deref(), &self.fill, self.keep_last)
            .map_err(anyhow::Error::msg)?;
        Ok(LoadOptions {
            timestamp_column: self.timestamp_column.clone(),
            missing: if self.drop_missing {
                Missing::Drop
            } else {
                Missing::Keep
            },
            read: ReadOptions {
                delimiter,
                no_header: self.no_header,
                column_names: self.columns.iter().map(|c| c.trim().to_string()).collect(),
                time_unit,
                date_format: self.date_format.clone(),
                thousands: self
                    .thousands
                    .as_deref()
                    .map(|t| one_char("thousands", t))
                    .transpose()?,
                tz: self.tz.as_deref().map(parse_zone).transpose()?,
            },
            ..choices
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// The flags an error message suggests: every `` `--flag value` `` and `(--flag value)` in
    /// `text`, with format placeholders (`{}`, `<column>`) replaced by a value, split into
    /// arguments as a shell would (single quotes group).
    fn suggestions(text: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for (open, close) in [("`--", '`'), ("(--", ')')] {
            let mut rest = text;
            while let Some(start) = rest.find(open) {
                let after = &rest[start + 1..];
                let end = after.find(close).unwrap_or(after.len());
                let snippet = &after[..end];
                rest = &after[end..];
                // Cargo's flag in "rebuild with `--features parquet`" is not ours.
                if snippet.starts_with("--features") || snippet.contains('\n') {
                    continue;
                }
                let mut filled = String::new();
                let mut depth = 0;
                for c in snippet.chars() {
                    match c {
                        '{' | '<' => {
                            if depth == 0 {
                                filled.push('x');
                            }
                            depth += 1;
                        }
                        '}' | '>' if depth > 0 => depth -= 1,
                        _ if depth == 0 => filled.push(c),
                        _ => {}
                    }
                }
                let mut args = Vec::new();
                for (i, part) in filled.split('\'').enumerate() {
                    if i % 2 == 1 {
                        args.push(part.to_string());
                    } else {
                        args.extend(part.split_whitespace().map(String::from));
                    }
                }
                // "(--strict makes this an error)": the flag, then prose.
                if open == "(--" && args.len() > 2 {
                    args.truncate(1);
                }
                out.push(args);
            }
        }
        out
    }

    /// Every flag an error message of the reader suggests is accepted by every
    /// command that reads data (the messages of the backtest library by `backtest` and
    /// `compare`, which show them).
    #[test]
    fn every_suggested_flag_is_accepted_by_every_command_that_reads_data() {
        let every = ["forecast", "backtest", "bench", "compare"];
        let sources: [(&str, &[&str]); 8] = [
            (include_str!("../../data/src/lib.rs"), &every),
            (include_str!("../../data/src/table.rs"), &every),
            (include_str!("../../data/src/time.rs"), &every),
            (include_str!("../../data/src/numbers.rs"), &every),
            (include_str!("data_args.rs"), &every),
            (include_str!("../../forecast/src/file.rs"), &["forecast"]),
            (include_str!("../../backtest/src/lib.rs"), &["backtest", "compare"]),
            (
                include_str!("../../backtest/src/walkforward.rs"),
                &["backtest", "compare"],
            ),
        ];
        let accepts = |command: &str, args: &[String]| {
            let argv = ["chronos2", command]
                .into_iter()
                .map(String::from)
                .chain(args.iter().cloned());
            crate::Cli::try_parse_from(argv)
        };
        let mut checked = 0;
        for (text, commands) in sources {
            // Messages: the code before its tests, without comments.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for args in suggestions(&code) {
                for command in commands {
                    // A flag named alone ("(--covariates)") is checked with a value.
                    let with_value = [args.clone(), vec!["x".to_string()]].concat();
                    if let Err(e) = accepts(command, &args) {
                        if args.len() != 1 || accepts(command, &with_value).is_err() {
                            panic!("`chronos2 {command}` does not accept the suggestion {args:?}: {e}");
                        }
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "only {checked} suggestions found");
    }

    /// `forecast`, `backtest`, `bench` and `compare` take every data option, from
    /// this one group.
    #[test]
    fn every_command_that_reads_data_has_every_data_option() {
        use clap::{Args as _, CommandFactory as _};
        let group = DataArgs::augment_args(clap::Command::new("data"));
        let options: Vec<&str> = group.get_arguments().filter_map(|a| a.get_long()).collect();
        assert!(options.len() >= 14 && options.contains(&"time-unit"), "{options:?}");
        let cli = crate::Cli::command();
        for name in ["forecast", "backtest", "bench", "compare"] {
            let command = cli.find_subcommand(name).unwrap();
            let longs: Vec<&str> = command.get_arguments().filter_map(|a| a.get_long()).collect();
            for option in &options {
                assert!(longs.contains(option), "`chronos2 {name}` lacks --{option}");
            }
        }
    }

    #[test]
    fn suggestions_are_found_and_split() {
        let text = "pass `--date-format '%d/%m/%Y %H:%M'` or (--fill none); `--columns {}`; `--target <column>`";
        assert_eq!(
            suggestions(text),
            [
                vec!["--date-format".to_string(), "%d/%m/%Y %H:%M".into()],
                vec!["--columns".into(), "x".into()],
                vec!["--target".into(), "x".into()],
                vec!["--fill".into(), "none".into()],
            ]
        );
    }

    #[test]
    fn zones() {
        assert_eq!(parse_zone("+02:00").unwrap(), Zone::Offset(7200));
        assert!(matches!(parse_zone("America/New_York").unwrap(), Zone::Named(_)));
        let msg = parse_zone("Europe/Londres").unwrap_err().to_string();
        assert!(msg.contains("--tz `Europe/Londres`") && msg.contains("+02:00"), "{msg}");
    }

    #[test]
    fn flag_values_are_checked() {
        let args = DataArgs {
            fill: "none".into(),
            time_unit: Some("sec".into()),
            ..DataArgs::default()
        };
        assert!(args
            .load_options()
            .unwrap_err()
            .to_string()
            .contains("--time-unit `sec`"));
        let args = DataArgs {
            fill: "none".into(),
            delimiter: Some("tab".into()),
            thousands: Some(",".into()),
            ..DataArgs::default()
        };
        let options = args.load_options().unwrap();
        assert_eq!(
            (options.read.delimiter, options.read.thousands),
            (Some(b'\t'), Some(','))
        );
        let args = DataArgs {
            fill: "none".into(),
            thousands: Some(",,".into()),
            ..DataArgs::default()
        };
        assert!(args.load_options().unwrap_err().to_string().contains("one character"));
        assert!(DataArgs::default()
            .sources(None)
            .unwrap_err()
            .to_string()
            .contains("--data FILE"));
    }
}
