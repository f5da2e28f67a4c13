//! `meshlens top`: the tap stream of a resource aggregated live (reference/linkerd.md §1.5) — rows by
//! source, destination, method and path (or `--routes`), with Count, Best, Worst, Last and Success Rate,
//! sorted by count. In a terminal, a full-screen view; on a pipe, the table printed every `--interval`.

mod screen;
mod table;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use meshlens_api::tap::TapEvent;

use super::client::ControlArg;
use super::tap_stream::{self, TapTargetArgs};
use table::{TopOptions, TopTable};

/// What the stream reader hands the view.
pub enum Feed {
    Event(Box<TapEvent>),
    /// The stream is over: why, when it broke.
    Ended(Option<String>),
}

/// Live aggregated traffic of a resource.
#[derive(Args, Debug)]
pub struct TopArgs {
    #[command(flatten)]
    target: TapTargetArgs,
    /// Hide the Source column (rows merge across sources).
    #[arg(long)]
    hide_sources: bool,
    /// One row per ServiceProfile route instead of per method and path.
    #[arg(long)]
    routes: bool,
    /// When stdout is not a terminal: print the table this often.
    #[arg(long, default_value = "2s", value_parser = meshlens_api::duration::parse)]
    interval: Duration,
    #[command(flatten)]
    control: ControlArg,
}

pub fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let (request, filter) = args.target.request()?;
    let base = args.control.url();
    let table = TopTable::new(TopOptions { hide_sources: args.hide_sources, routes: args.routes });
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    // Opened before the terminal is taken over, so that a refusal prints as a plain error.
    let mut stream = runtime.block_on(tap_stream::open(&base, &request, &filter))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        runtime.block_on(async {
            loop {
                let feed = match stream.next().await {
                    Some(Ok(event)) => Feed::Event(Box::new(event)),
                    Some(Err(e)) => Feed::Ended(Some(format!("{e:#}"))),
                    None => Feed::Ended(None),
                };
                let last = matches!(feed, Feed::Ended(_));
                if tx.send(feed).is_err() || last {
                    return;
                }
            }
        })
    });
    if std::io::stdout().is_terminal() {
        screen::run(table, rx)?;
        Ok(ExitCode::SUCCESS)
    } else {
        print_periodically(table, rx, args.interval)
    }
}

/// Pipe mode: the table every `interval`, and once more when the stream ends.
fn print_periodically(mut table: TopTable, feed: mpsc::Receiver<Feed>, interval: Duration) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout();
    let mut next = Instant::now() + interval;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        let ended = match feed.recv_timeout(wait) {
            Ok(Feed::Event(event)) => {
                table.observe(&event);
                None
            }
            Ok(Feed::Ended(why)) => Some(why),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(None),
        };
        if ended.is_some() || Instant::now() >= next {
            // A closed pipe ends `top` quietly.
            if writeln!(stdout, "{}", table.text()).and_then(|_| stdout.flush()).is_err() {
                return Ok(ExitCode::SUCCESS);
            }
            next = Instant::now() + interval;
        }
        match ended {
            None => {}
            Some(None) => {
                eprintln!("tap stream ended");
                return Ok(ExitCode::SUCCESS);
            }
            Some(Some(why)) => anyhow::bail!("{why}"),
        }
    }
}
