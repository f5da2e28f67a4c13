//! Structured JSON logs (tracing), with the filter changeable at runtime through the admin port.

use std::sync::{Arc, Mutex};

use tracing_subscriber::{EnvFilter, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt};

/// Reads and changes the log filter of a running proxy.
pub trait LogLevel: Send + Sync {
    fn get(&self) -> String;
    /// Applies a tracing filter such as `info,meshlens_proxy=debug`; an invalid one changes nothing.
    fn set(&self, filter: &str) -> Result<(), String>;
}

/// Installs the process-wide JSON logger on stderr. Call once, from `main`.
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
    tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .try_init()
        .map_err(|e| format!("cannot install logger: {e}"))?;
    Ok(Arc::new(Reloadable { handle, current: Mutex::new(filter.to_string()) }))
}

struct Reloadable {
    handle: reload::Handle<EnvFilter, Registry>,
    current: Mutex<String>,
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
}

/// A log level holder for embedded proxies (tests) that do not own the process logger.
pub struct Fixed(Mutex<String>);

impl Fixed {
    pub fn shared(filter: &str) -> Arc<dyn LogLevel> {
        Arc::new(Fixed(Mutex::new(filter.to_string())))
    }
}

impl LogLevel for Fixed {
    fn get(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, filter: &str) -> Result<(), String> {
        EnvFilter::try_new(filter).map_err(|e| format!("invalid log level '{filter}': {e}"))?;
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = filter.to_string();
        Ok(())
    }
}
