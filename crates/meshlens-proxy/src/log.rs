//! Structured JSON logs (tracing), with the filter changeable at runtime through the admin port, and the
//! recent WARN/ERROR events kept in a ring ([`ring`]) for `GET /logs` and `log_events_total`.

pub mod ring;

use std::sync::{Arc, Mutex};

use tracing_subscriber::{EnvFilter, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt};

pub use ring::EventRing;

/// Reads and changes the log filter of a running process, and holds its recent WARN/ERROR events.
pub trait LogLevel: Send + Sync {
    fn get(&self) -> String;
    /// Applies a tracing filter such as `info,meshlens_proxy=debug`; an invalid one changes nothing.
    fn set(&self, filter: &str) -> Result<(), String>;
    /// The recent WARN/ERROR events of this process (or, for [`Fixed`], of what was captured for it).
    fn events(&self) -> &Arc<EventRing>;
}

/// Installs the process-wide JSON logger on stderr, with its event ring. Call once, from `main`.
pub fn init_json(filter: &str) -> Result<Arc<dyn LogLevel>, String> {
    let env_filter = EnvFilter::try_new(filter).map_err(|e| format!("invalid log level '{filter}': {e}"))?;
    let (layer, handle) = reload::Layer::new(env_filter);
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .with_writer(std::io::stderr);
    let events = EventRing::new();
    tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .with(events.layer())
        .try_init()
        .map_err(|e| format!("cannot install logger: {e}"))?;
    Ok(Arc::new(Reloadable { handle, current: Mutex::new(filter.to_string()), events }))
}

struct Reloadable {
    handle: reload::Handle<EnvFilter, Registry>,
    current: Mutex<String>,
    events: Arc<EventRing>,
}

impl LogLevel for Reloadable {
    fn get(&self) -> String {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, filter: &str) -> Result<(), String> {
        let new = EnvFilter::try_new(filter).map_err(|e| format!("invalid log level '{filter}': {e}"))?;
        self.handle.reload(new).map_err(|e| e.to_string())?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = filter.to_string();
        Ok(())
    }

    fn events(&self) -> &Arc<EventRing> {
        &self.events
    }
}

/// A log level holder for embedded proxies (tests) that do not own the process logger.
pub struct Fixed {
    filter: Mutex<String>,
    events: Arc<EventRing>,
}

impl Fixed {
    /// A holder whose event ring nothing feeds.
    pub fn shared(filter: &str) -> Arc<dyn LogLevel> {
        Arc::new(Fixed { filter: Mutex::new(filter.to_string()), events: EventRing::new() })
    }

    /// A holder fed by every event logged on the current thread while the returned guard lives: on a
    /// current-thread runtime, the events of the proxies started there (tests). The first call installs
    /// the process-wide subscriber that hands each event to its thread's holder, unless the process
    /// already has one (then nothing is captured).
    pub fn capturing(filter: &str) -> (Arc<dyn LogLevel>, CaptureGuard) {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            // WARN and ERROR only: every other callsite stays disabled, at no cost.
            let warn = tracing_subscriber::filter::LevelFilter::WARN;
            let _ = tracing_subscriber::registry().with(warn).with(ThreadRing).try_init();
        });
        let events = EventRing::new();
        let previous = CAPTURE.with(|c| c.replace(Some(events.clone())));
        (Arc::new(Fixed { filter: Mutex::new(filter.to_string()), events }), CaptureGuard(previous))
    }
}

thread_local! {
    /// The ring that events logged on this thread go to, while a [`CaptureGuard`] lives.
    static CAPTURE: std::cell::RefCell<Option<Arc<EventRing>>> = const { std::cell::RefCell::new(None) };
}

/// Ends [`Fixed::capturing`] on drop (restoring the thread's previous ring, if any).
pub struct CaptureGuard(Option<Arc<EventRing>>);

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = CAPTURE.try_with(|c| c.replace(previous));
    }
}

/// Hands each event to the ring captured on the thread that logged it.
struct ThreadRing;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ThreadRing {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() > tracing::Level::WARN {
            return;
        }
        let ring = CAPTURE.try_with(|c| c.borrow().clone()).ok().flatten();
        if let Some(ring) = ring {
            ring.record(event);
        }
    }
}

impl LogLevel for Fixed {
    fn get(&self) -> String {
        self.filter.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, filter: &str) -> Result<(), String> {
        EnvFilter::try_new(filter).map_err(|e| format!("invalid log level '{filter}': {e}"))?;
        *self.filter.lock().unwrap_or_else(|e| e.into_inner()) = filter.to_string();
        Ok(())
    }

    fn events(&self) -> &Arc<EventRing> {
        &self.events
    }
}
