//! A right-aligned text table, and the number formats its cells use.

/// Microseconds with a tenth below 1000, whole above.
pub(crate) fn fmt_us(v: f64) -> String {
    if v < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// Whole numbers, with a k or M past ten thousand.
pub(crate) fn fmt_count(v: f64) -> String {
    if v >= 10e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 10e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// A right-aligned text table with one row of column groups above the
/// column names.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) groups: Vec<(String, usize)>,
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn render(&self) -> String {
        const GAP: usize = 2;
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        // Group titles, centred over their columns.
        let mut col = 0;
        let mut line = String::new();
        for (title, span) in &self.groups {
            let span_width: usize =
                widths[col..(col + span).min(n)].iter().sum::<usize>() + GAP * span;
            let title = if title.is_empty() {
                String::new()
            } else {
                format!(" {title} ")
            };
            let fill = if title.is_empty() { ' ' } else { '-' };
            let pad = span_width.saturating_sub(title.chars().count() + GAP);
            let left = pad / 2;
            line.push_str(&" ".repeat(GAP));
            line.extend(std::iter::repeat_n(fill, left));
            line.push_str(&title);
            line.extend(std::iter::repeat_n(fill, pad - left));
            col += span;
        }
        // A table without groups has no line for them (it was a blank
        // line under the report's own blank line).
        if !line.trim().is_empty() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (cell, w) in row.iter().zip(&widths) {
                line.push_str(&" ".repeat(GAP));
                line.push_str(&format!("{cell:>w$}"));
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_easily() {
        assert_eq!(fmt_us(11.26), "11.3");
        assert_eq!(fmt_us(1234.4), "1234");
        assert_eq!(fmt_count(812.0), "812");
        assert_eq!(fmt_count(85_123.0), "85.1k");
        assert_eq!(fmt_count(12_345_678.0), "12.3M");
    }

    #[test]
    fn tables_align_under_their_groups() {
        let table = Table {
            groups: vec![(String::new(), 1), ("UDP".to_owned(), 2)],
            header: vec!["size".to_owned(), "p50".to_owned(), "max".to_owned()],
            rows: vec![vec!["64".to_owned(), "11.3".to_owned(), "1234".to_owned()]],
        };
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "  size   p50   max");
        assert_eq!(lines[2], "    64  11.3  1234");
        assert!(lines[0].contains(" UDP "), "{text}");
        assert!(lines[0].len() <= lines[1].len(), "{text}");
    }
}
