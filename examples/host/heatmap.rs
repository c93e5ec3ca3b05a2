//! A causal attention matrix as a terminal heatmap: query tokens on rows, the
//! tokens they read from on columns, one cell per weight.
//!
//! In colour, a cell's background shade is its weight (ANSI 256 colours);
//! in plain text a character from [`RAMP`] is. Both print the weight to two
//! decimals, and `·` for a weight of exactly 0 (what the causal mask gives
//! above the diagonal), so the triangle is visible either way. Two matrices
//! side by side ([`render_pair`]) take narrower cells that print the weight
//! in percent.

use std::io::{self, IsTerminal, Write};

/// Width of one cell: a shade (plain text only), the weight in columns 3..=6.
const CELL: usize = 8;
/// Column of a cell that labels and the `·` of a zero weight are centred on.
const CENTRE: usize = 4;
/// Width of a narrow cell (two matrices side by side): a space, a shade
/// (plain text only), the weight in percent in columns 2..=4.
const NARROW: usize = 5;
/// Column of a narrow cell that labels and the `·` are centred on.
const NARROW_CENTRE: usize = 3;
/// Between the two matrices of a pair.
const SEPARATOR: &str = " │";

/// Plain shades, from weight 0 to weight 1.
const RAMP: [char; 10] = [' ', '.', ':', '-', '=', '+', '*', '#', '%', '@'];

/// Background colours (xterm 256-colour palette) for the same ten levels:
/// dark grey, then navy through teal and green to yellow.
const COLOURS: [u8; 10] = [236, 17, 19, 26, 32, 38, 43, 84, 155, 226];

/// Levels from here up are bright: black text on them, white below.
const FIRST_BRIGHT: usize = 6;

/// How to draw the cells.
#[derive(Clone, Copy)]
pub enum Palette {
    /// ANSI 256-colour backgrounds.
    Colour,
    /// Characters only.
    Plain,
}

impl Palette {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty
    /// (<https://no-color.org>), plain text otherwise.
    pub fn for_stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if io::stdout().is_terminal() && !no_color {
            Palette::Colour
        } else {
            Palette::Plain
        }
    }
}

/// Prints `weights` (row `i`: what token `i` reads from each token) with
/// `labels` on rows and columns, then a legend.
pub fn render<const N: usize>(
    out: &mut dyn Write,
    labels: &[&str; N],
    weights: &[[f32; N]; N],
    palette: Palette,
) -> io::Result<()> {
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    // Column labels alternate between two lines, so long ones never touch.
    for parity in [0, 1] {
        let placed = column_labels(labels, parity, label_width + CENTRE, CELL);
        writeln!(out, "{}", label_line(placed))?;
    }
    for (label, row) in labels.iter().zip(weights) {
        let cells: String = row.iter().map(|&w| cell(w, palette)).collect();
        writeln!(out, "{label:>label_width$}{}", cells.trim_end())?;
    }
    writeln!(out, "{}", legend(palette))
}

/// Two matrices over the same `labels` side by side, each under its title,
/// with narrow cells (weights in percent), then a legend.
pub fn render_pair<const N: usize>(
    out: &mut dyn Write,
    labels: &[&str; N],
    [(left_title, left), (right_title, right)]: [(&str, &[[f32; N]; N]); 2],
    palette: Palette,
) -> io::Result<()> {
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let second = label_width + N * NARROW + SEPARATOR.chars().count();
    writeln!(
        out,
        "{:label_width$} {left_title:<width$}{:sep$} {right_title}",
        "",
        "",
        width = N * NARROW - 1,
        sep = SEPARATOR.chars().count(),
    )?;
    let (first, second) = (label_width + NARROW_CENTRE, second + NARROW_CENTRE);
    for parity in [0, 1] {
        let placed = column_labels(labels, parity, first, NARROW);
        let placed = placed.chain(column_labels(labels, parity, second, NARROW));
        writeln!(out, "{}", label_line(placed))?;
    }
    let cells =
        |row: &[f32; N]| -> String { row.iter().map(|&w| narrow_cell(w, palette)).collect() };
    for ((label, a), b) in labels.iter().zip(left).zip(right) {
        let line = format!("{label:>label_width$}{}{SEPARATOR}{}", cells(a), cells(b));
        writeln!(out, "{}", line.trim_end())?;
    }
    writeln!(
        out,
        "shade: 0 [{}] 1, numbers: weight in %    · = exactly 0 (the causal mask)",
        shades(palette)
    )
}

/// The labels of columns `j` with `j % 2 == parity` and their centres, for
/// a matrix whose first column is centred at `first` and whose cells are
/// `step` wide.
fn column_labels<'a>(
    labels: &'a [&'a str],
    parity: usize,
    first: usize,
    step: usize,
) -> impl Iterator<Item = (usize, &'a str)> {
    let placed = labels.iter().enumerate().skip(parity).step_by(2);
    placed.map(move |(j, &label)| (first + j * step, label))
}

/// One line of labels, each centred on its column, moved right where it
/// would touch the one before.
fn label_line<'a>(placed: impl Iterator<Item = (usize, &'a str)>) -> String {
    let mut line = String::new();
    let mut width = 0;
    for (centre, label) in placed {
        let len = label.chars().count();
        let start = centre
            .saturating_sub(len / 2)
            .max(width + usize::from(width > 0));
        line.extend(std::iter::repeat_n(' ', start - width));
        line.push_str(label);
        width = start + len;
    }
    line
}

/// The shade level 0..=9 of a weight in [0, 1] (NaN gives 0).
fn level(w: f32) -> usize {
    let top = RAMP.len() - 1;
    ((w.clamp(0.0, 1.0) * top as f32).round() as usize).min(top)
}

/// One cell, `CELL` characters wide on screen.
fn cell(w: f32, palette: Palette) -> String {
    if w == 0.0 {
        return format!("{}·{}", " ".repeat(CENTRE), " ".repeat(CELL - CENTRE - 1));
    }
    let level = level(w);
    match palette {
        Palette::Plain => {
            let shade = RAMP.get(level).copied().unwrap_or('?');
            format!(" {shade} {w:.2} ")
        }
        Palette::Colour => {
            let background = COLOURS.get(level).copied().unwrap_or(0);
            let text = if level >= FIRST_BRIGHT { 16 } else { 231 };
            format!("\x1b[48;5;{background}m\x1b[38;5;{text}m   {w:.2} \x1b[0m")
        }
    }
}

/// One narrow cell, `NARROW` characters wide on screen: the weight in
/// percent, rounded (a weight below 0.5 % prints 0; only exactly 0 is `·`).
fn narrow_cell(w: f32, palette: Palette) -> String {
    if w == 0.0 {
        let after = NARROW - NARROW_CENTRE - 1;
        return format!("{}·{}", " ".repeat(NARROW_CENTRE), " ".repeat(after));
    }
    let level = level(w);
    let percent = (w.clamp(0.0, 1.0) * 100.0).round() as u32;
    match palette {
        Palette::Plain => {
            let shade = RAMP.get(level).copied().unwrap_or('?');
            format!(" {shade}{percent:>3}")
        }
        Palette::Colour => {
            let background = COLOURS.get(level).copied().unwrap_or(0);
            let text = if level >= FIRST_BRIGHT { 16 } else { 231 };
            format!("\x1b[48;5;{background}m\x1b[38;5;{text}m  {percent:>3}\x1b[0m")
        }
    }
}

/// What the shades mean.
fn legend(palette: Palette) -> String {
    let shades = shades(palette);
    format!("shade: 0 [{shades}] 1    · = exactly 0 (the causal mask: a later token)")
}

/// The ten shades from weight 0 to weight 1, as the legend shows them.
fn shades(palette: Palette) -> String {
    match palette {
        Palette::Plain => RAMP.iter().collect(),
        Palette::Colour => COLOURS
            .iter()
            .map(|c| format!("\x1b[48;5;{c}m  \x1b[0m"))
            .collect(),
    }
}
