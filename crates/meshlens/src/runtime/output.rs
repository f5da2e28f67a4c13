//! Output of `meshlens up`: every process's lines prefixed with its name (`frontend-0 | …`), coloured per
//! process when stdout is a terminal (and `NO_COLOR` is unset); or, with `--log-dir DIR`, each process's
//! lines appended to `DIR/<name>.log` while the terminal shows only the supervisor's own lines.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

const PALETTE: [&str; 6] = ["\x1b[36m", "\x1b[32m", "\x1b[33m", "\x1b[35m", "\x1b[34m", "\x1b[96m"];
const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";

/// Who wrote a line: a process name and its colour.
#[derive(Clone, Debug)]
pub struct Tag {
    pub name: String,
    color: &'static str,
}

#[derive(Clone, Debug)]
pub struct Output {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    color: bool,
    width: AtomicUsize,
    log_dir: Option<PathBuf>,
    /// Processes whose lines also go to the terminal when a log directory is used.
    echo: Vec<String>,
    files: Mutex<HashMap<String, File>>,
    next_color: AtomicUsize,
}

impl Output {
    /// `color`: use ANSI colours; `log_dir`: write process output to files there instead of stdout,
    /// except for the processes named in `echo`, whose lines go to both.
    pub fn new(color: bool, log_dir: Option<PathBuf>, echo: Vec<String>) -> Self {
        Output {
            inner: Arc::new(Inner {
                color,
                width: AtomicUsize::new(2),
                log_dir,
                echo,
                files: Mutex::new(HashMap::new()),
                next_color: AtomicUsize::new(0),
            }),
        }
    }

    /// Colours when stdout is a terminal and `NO_COLOR` is not set.
    pub fn auto_color() -> bool {
        use std::io::IsTerminal;
        std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }

    /// Pads prefixes to this many characters, so the `|` columns line up.
    pub fn set_width(&self, width: usize) {
        self.inner.width.store(width, Ordering::Relaxed);
    }

    pub fn log_dir(&self) -> Option<&Path> {
        self.inner.log_dir.as_deref()
    }

    /// A tag for a process, with the next colour of the palette.
    pub fn tag(&self, name: &str) -> Tag {
        let i = self.inner.next_color.fetch_add(1, Ordering::Relaxed);
        Tag { name: name.to_owned(), color: PALETTE[i % PALETTE.len()] }
    }

    /// The file a process's output goes to with `--log-dir`.
    pub fn log_file(&self, name: &str) -> Option<PathBuf> {
        self.inner.log_dir.as_ref().map(|d| d.join(format!("{}.log", name.replace('/', "."))))
    }

    /// One line a process wrote.
    pub fn line(&self, tag: &Tag, text: &str) {
        let text = text.trim_end_matches(['\r', '\n']);
        if let Some(path) = self.log_file(&tag.name) {
            let mut files = self.inner.files.lock().unwrap_or_else(PoisonError::into_inner);
            let file = match files.get_mut(&tag.name) {
                Some(f) => f,
                None => match File::options().create(true).append(true).open(&path) {
                    Ok(f) => files.entry(tag.name.clone()).or_insert(f),
                    Err(_) => return,
                },
            };
            let _ = writeln!(file, "{text}");
            drop(files);
            if !self.inner.echo.contains(&tag.name) {
                return;
            }
        }
        self.print(&tag.name, tag.color, text);
    }

    /// A line of the supervisor itself (`up | …`), always on stdout.
    pub fn say(&self, text: &str) {
        for line in text.lines() {
            self.print("up", BOLD, line);
        }
    }

    /// Text without a prefix (the table), always on stdout.
    pub fn raw(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    fn print(&self, name: &str, color: &str, text: &str) {
        let width = self.inner.width.load(Ordering::Relaxed);
        let line = if self.inner.color {
            format!("{color}{name:<width$} |{RESET} {text}\n")
        } else {
            format!("{name:<width$} | {text}\n")
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}
