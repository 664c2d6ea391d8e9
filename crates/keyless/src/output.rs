//! How the admin commands print: `--output table|json|yaml` ([`OutputArgs`]), on stdout.
//!
//! - `json`: the server's objects exactly (a list is a JSON array of them), pretty-printed; while
//!   following the activity feed, one compact object per line.
//! - `yaml`: the same values as YAML (`serde_norway`); while following, one document per event.
//! - `id`: only the objects' `id`s, one per line, for shell scripts.
//! - `table`: aligned columns named in capitals ([`Row`]), an absent value shown as `-`; the header is
//!   bold only when stdout is a terminal and `NO_COLOR` is unset or empty.
//!
//! Must not: print anything but data (progress and errors go to stderr), or colour a pipe.

use std::io::{IsTerminal, Write};

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::error::CliError;

/// `--output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns.
    #[default]
    Table,
    /// The server's JSON.
    Json,
    /// The server's objects as YAML.
    Yaml,
    /// Only the objects' IDs, one per line (for scripts: `RULE=$(keyless rules create … -o id)`).
    Id,
}

/// The output flag of the admin commands.
#[derive(Debug, Clone, Args)]
pub(crate) struct OutputArgs {
    /// Output format: aligned columns, the server's JSON objects exactly, YAML, or only the IDs.
    #[arg(
        long,
        short = 'o',
        env = "KEYLESS_OUTPUT",
        value_enum,
        default_value_t = Format::Table,
        global = true
    )]
    pub(crate) output: Format,
}

/// An object shown as one table row.
pub(crate) trait Row {
    /// The column names.
    const HEADERS: &'static [&'static str];
    /// The cells, one per header.
    fn cells(&self) -> Vec<String>;
}

/// `Some(text)` → `text`, `None` → `-`.
pub(crate) fn cell(value: Option<&str>) -> String {
    value.map_or_else(|| "-".to_owned(), str::to_owned)
}

/// Prints one object.
pub(crate) fn one<T: Serialize + Row>(format: Format, object: &T) -> Result<(), CliError> {
    match format {
        Format::Table => write_stdout(&table(T::HEADERS, &[object.cells()])),
        Format::Id => write_stdout(&id_line(object)?),
        _ => document(format, object),
    }
}

/// Prints a list of objects.
pub(crate) fn many<T: Serialize + Row>(format: Format, objects: &[T]) -> Result<(), CliError> {
    match format {
        Format::Table => {
            let rows: Vec<Vec<String>> = objects.iter().map(Row::cells).collect();
            write_stdout(&table(T::HEADERS, &rows))
        }
        Format::Id => {
            let mut text = String::new();
            for object in objects {
                text.push_str(&id_line(object)?);
            }
            write_stdout(&text)
        }
        _ => document(format, objects),
    }
}

/// Prints any value as JSON or YAML (`table` falls back to JSON: the caller decides which values have
/// no table form).
pub(crate) fn document<T: Serialize + ?Sized>(format: Format, value: &T) -> Result<(), CliError> {
    let text = match format {
        Format::Yaml => {
            serde_norway::to_string(value).map_err(|err| CliError::Local(format!("writing YAML: {err}")))?
        }
        Format::Id => id_line(value)?,
        Format::Json | Format::Table => {
            let mut text =
                serde_json::to_string_pretty(value).map_err(|err| CliError::Local(format!("writing JSON: {err}")))?;
            text.push('\n');
            text
        }
    };
    write_stdout(&text)
}

/// The `id` of a serialized object, and a newline; an object without one is an error.
fn id_line<T: Serialize + ?Sized>(value: &T) -> Result<String, CliError> {
    let value = serde_json::to_value(value).map_err(|err| CliError::Local(format!("writing JSON: {err}")))?;
    match value.get("id").and_then(serde_json::Value::as_str) {
        Some(id) => Ok(format!("{id}\n")),
        None => Err(CliError::Local("this answer has no id: use --output json".to_owned())),
    }
}

/// A stream of rows printed as they arrive (the followed activity feed): the table header first, then
/// each row padded to at least the given widths; JSON lines; or YAML documents.
pub(crate) struct Stream {
    format: Format,
    widths: Vec<usize>,
}

impl Stream {
    /// Starts the stream (prints the table header).
    pub(crate) fn start<T: Row>(format: Format, widths: &[usize]) -> Result<Self, CliError> {
        let stream = Stream {
            format,
            widths: widths.to_vec(),
        };
        if format == Format::Table {
            let header: Vec<String> = T::HEADERS.iter().map(|header| (*header).to_owned()).collect();
            write_stdout(&stream.line(&header, color_stdout()))?;
        }
        Ok(stream)
    }

    /// Prints one object.
    pub(crate) fn item<T: Serialize + Row>(&self, object: &T) -> Result<(), CliError> {
        let text = match self.format {
            Format::Table => self.line(&object.cells(), false),
            Format::Id => id_line(object)?,
            Format::Json => {
                let mut line =
                    serde_json::to_string(object).map_err(|err| CliError::Local(format!("writing JSON: {err}")))?;
                line.push('\n');
                line
            }
            Format::Yaml => format!(
                "---\n{}",
                serde_norway::to_string(object).map_err(|err| CliError::Local(format!("writing YAML: {err}")))?
            ),
        };
        write_stdout(&text)
    }

    fn line(&self, cells: &[String], bold: bool) -> String {
        let widths: Vec<usize> = cells
            .iter()
            .enumerate()
            .map(|(idx, cell)| self.widths.get(idx).copied().unwrap_or(0).max(width(cell)))
            .collect();
        format_row(cells, &widths, bold)
    }
}

/// Aligned columns: each as wide as its widest cell, separated by two spaces.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    table_with(headers, rows, color_stdout())
}

fn table_with(headers: &[&str], rows: &[Vec<String>], bold: bool) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| width(header)).collect();
    for row in rows {
        for (idx, cell) in row.iter().enumerate() {
            if let Some(column) = widths.get_mut(idx) {
                *column = (*column).max(width(cell));
            }
        }
    }
    let header: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    let mut out = format_row(&header, &widths, bold);
    for row in rows {
        out.push_str(&format_row(row, &widths, false));
    }
    out
}

fn format_row(cells: &[String], widths: &[usize], bold: bool) -> String {
    let last = cells.len().saturating_sub(1);
    let mut line = String::new();
    for (idx, cell) in cells.iter().enumerate() {
        // Newlines and tabs inside a value would break the columns.
        let cell: String = cell.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        if idx == last {
            line.push_str(&cell);
        } else {
            let pad = widths.get(idx).copied().unwrap_or(0).saturating_sub(width(&cell));
            line.push_str(&cell);
            line.push_str(&" ".repeat(pad + 2));
        }
    }
    if bold {
        line = format!("\x1b[1m{line}\x1b[0m");
    }
    line.push('\n');
    line
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset or empty (no-color.org).
fn color_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// Writes to stdout and flushes (a follower's lines must arrive as they are printed).
pub(crate) fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| CliError::Local(format!("writing to stdout: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_the_widest_cell_and_never_pad_the_last_column() {
        let rows = vec![
            vec!["svac_1".to_owned(), "a".to_owned(), "x".to_owned()],
            vec!["svac_22".to_owned(), "long-name".to_owned(), "two\nlines".to_owned()],
        ];
        assert_eq!(
            table_with(&["ID", "NAME", "NOTE"], &rows, false),
            "ID       NAME       NOTE\nsvac_1   a          x\nsvac_22  long-name  two lines\n"
        );
    }
}
