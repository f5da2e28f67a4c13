//! The live terminal view of `top` (ratatui on crossterm): Linkerd's layout — two key-help lines, a status
//! line, the bold header, the rows — redrawn every 100 ms; `q` or Ctrl-C quits, `a`/← and `d`/→ scroll.
//! The terminal is restored on every way out: return, error (a guard) and panic (ratatui's hook).

use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Text};
use ratatui::widgets::Paragraph;

use super::Feed;
use super::table::TopTable;

const REDRAW: Duration = Duration::from_millis(100);
/// Columns one scroll key moves.
const SCROLL_STEP: u16 = 5;

/// Draws one frame: help and status, then the header and rows shifted left by `scroll` columns.
pub fn draw(frame: &mut Frame<'_>, table: &TopTable, status: &str, scroll: u16) {
    let area = frame.area();
    let help = Rect { height: area.height.min(3), ..area };
    let body = Rect { y: area.y + help.height, height: area.height - help.height, ..area };
    let help_lines = vec![
        Line::raw("(press q to quit)"),
        Line::raw("(press a/LeftArrowKey to scroll left, d/RightArrowKey to scroll right)"),
        Line::raw(status.to_string()),
    ];
    frame.render_widget(Paragraph::new(Text::from(help_lines)), help);
    let (header, rows) = table.lines();
    let mut lines = vec![Line::styled(header, Style::default().add_modifier(Modifier::BOLD))];
    lines.extend(rows.into_iter().map(Line::raw));
    frame.render_widget(Paragraph::new(Text::from(lines)).scroll((0, scroll)), body);
}

/// Restores the terminal when dropped (also when the view returns an error).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the view until the user quits.
pub fn run(mut table: TopTable, feed: Receiver<Feed>) -> anyhow::Result<()> {
    let _restore = Restore;
    let mut terminal = ratatui::try_init()?;
    let mut status = String::new();
    let mut scroll: u16 = 0;
    let mut live = true;
    loop {
        while live {
            match feed.try_recv() {
                Ok(Feed::Event(event)) => table.observe(&event),
                Ok(Feed::Ended(why)) => {
                    status = why.unwrap_or_else(|| "tap stream ended".to_string());
                    live = false;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => live = false,
            }
        }
        terminal.draw(|frame| draw(frame, &table, &status, scroll))?;
        if !event::poll(REDRAW)? {
            continue;
        }
        let Event::Key(key) = event::read()? else { continue };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        let widest = table.lines().0.chars().count() as u16;
        let width = terminal.size()?.width;
        match key.code {
            KeyCode::Char('q') => return Ok(()),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Ok(()),
            KeyCode::Char('a') | KeyCode::Left => scroll = scroll.saturating_sub(SCROLL_STEP),
            KeyCode::Char('d') | KeyCode::Right => {
                scroll = (scroll + SCROLL_STEP).min(widest.saturating_sub(width));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::cmd::top::table::TopOptions;
    use crate::cmd::top::table::tests::sample;

    /// The frame's text, one line per row, trailing spaces trimmed.
    fn frame_text(terminal: &Terminal<TestBackend>) -> String {
        let buffer = terminal.backend().buffer();
        let width = buffer.area.width as usize;
        buffer
            .content()
            .chunks(width)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>().trim_end().to_string() + "\n")
            .collect()
    }

    /// Compares with `tests/testdata/NAME.golden` (`UPDATE_GOLDEN=1` rewrites it).
    fn golden(name: &str, actual: &str) {
        meshlens_testkit::assert_golden(format!("{}/tests/testdata/{name}.golden", env!("CARGO_MANIFEST_DIR")), actual);
    }

    fn render(table: &TopTable, status: &str, scroll: u16, width: u16) -> (Terminal<TestBackend>, String) {
        let mut terminal = Terminal::new(TestBackend::new(width, 9)).unwrap();
        terminal.draw(|f| draw(f, table, status, scroll)).unwrap();
        let text = frame_text(&terminal);
        (terminal, text)
    }

    #[test]
    fn frames_match_golden_files() {
        let (terminal, text) = render(&sample(TopOptions::default()), "", 0, 100);
        golden("top_frame", &text);
        // The header is bold, the rows are not.
        let buffer = terminal.backend().buffer();
        assert!(buffer[(0, 3)].modifier.contains(Modifier::BOLD));
        assert!(!buffer[(0, 4)].modifier.contains(Modifier::BOLD));

        let (_, text) = render(&sample(TopOptions { hide_sources: true, routes: true }), "tap stream ended", 0, 100);
        golden("top_frame_routes", &text);
    }

    #[test]
    fn a_narrow_terminal_scrolls_sideways() {
        let table = sample(TopOptions::default());
        let (_, left) = render(&table, "", 0, 40);
        let (_, shifted) = render(&table, "", 10, 40);
        assert!(left.lines().nth(3).unwrap().starts_with("Source    Destination"), "{left}");
        assert_eq!(left.lines().nth(1), shifted.lines().nth(1), "the help lines stay put");
        assert!(shifted.lines().nth(3).unwrap().starts_with("Destination  Method"), "{shifted}");
    }
}
