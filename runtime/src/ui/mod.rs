//! The status server: Spark's streaming REST API, a status page in the spirit of Spark's
//! Streaming tab, Prometheus metrics, health and readiness probes, and the event log that
//! keeps the page after the job has ended.
//!
//! A running context serves it by default on `127.0.0.1:4040` (or the next free port), see
//! [`StreamingConf::ui`](crate::StreamingConf::ui); its URL is logged at `start()` and given
//! by [`StreamingContext::ui_url`](crate::StreamingContext::ui_url):
//!
//! | path | what |
//! |---|---|
//! | `/` | the status page |
//! | `/api/v1/applications` | the application, as Spark's REST API |
//! | `/api/v1/applications/{app}/streaming/statistics` | [`api::StreamingStatistics`] |
//! | `.../streaming/batches[?status=QUEUED\|PROCESSING\|COMPLETED]` | [`api::BatchInfo`]s, newest first |
//! | `.../streaming/batches/{id}[/operations]` | a batch, its [`api::OutputOperationInfo`]s |
//! | `.../streaming/receivers[/{id}]` | [`api::ReceiverInfo`]s |
//! | `/metrics` | Prometheus text format |
//! | `/healthz`, `/readyz` | alive; started and keeping up (503 and why otherwise) |
//!
//! Everything is built from the listener events (`StreamingListener`), which a job with a
//! checkpoint directory also appends to its event log; [`serve_history`] serves the same
//! page and API from that log once the job has ended. Started by a cluster launcher, a job
//! announces where both are on standard error ([`announce`]), for `cargo stream status` and
//! `cargo stream ui`.

pub mod announce;
pub mod api;
mod event;
mod event_log;
mod http;
mod page;
mod prometheus;
mod routes;
mod status;
mod svg;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::metrics::{
    BatchInfo, CheckpointInfo, Counters, OutputOperationInfo, ReceiverInfo, StreamingListener,
};
use crate::sync::LockExt;
use crate::time::Time;
use event::Event;
pub(crate) use event_log::EVENTS_DIR;
use event_log::EventLog;
use status::Status;

/// A status server; it stops when dropped.
pub struct UiServer {
    http: http::HttpServer,
}

impl UiServer {
    fn start(listener: TcpListener, status: Arc<Status>, live: bool) -> std::io::Result<Self> {
        let handler: http::Handler = Arc::new(move |req| routes::route(&status, live, req));
        Ok(UiServer {
            http: http::HttpServer::start(listener, handler)?,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    /// The page's URL (`http://127.0.0.1:4040/`).
    pub fn url(&self) -> String {
        let addr = self.local_addr();
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else if addr.is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        format!("http://{host}:{}/", addr.port())
    }
}

/// Serves the status page and the REST API of a job that has ended, from its event log:
/// `dir` is the job's checkpoint directory (or its `events` folder). The statistics are the
/// ones the live page showed when the job ended (the newest 1000 batches, every receiver
/// error, the latest checkpoint), rebuilt from the log when this is called.
///
/// ```no_run
/// let server = cargo_stream_runtime::ui::serve_history("/var/lib/clicks/checkpoint", "127.0.0.1:4040")?;
/// println!("history of the job at {}", server.url());
/// # Ok::<(), cargo_stream_runtime::Error>(())
/// ```
pub fn serve_history(dir: impl AsRef<Path>, addr: impl ToSocketAddrs) -> Result<UiServer> {
    let dir = dir.as_ref();
    let events_dir = if dir.join(EVENTS_DIR).is_dir() {
        dir.join(EVENTS_DIR)
    } else {
        dir.to_owned()
    };
    let status = Arc::new(history(&events_dir)?);
    let listener = TcpListener::bind(addr).map_err(|e| Error::IllegalState(format!(
        "the status server could not listen: {e}; choose another address or port (port 0 picks a free one)"
    )))?;
    UiServer::start(listener, status, false)
        .map_err(|e| Error::IllegalState(format!("could not start the status server: {e}")))
}

/// The statistics rebuilt from the event log in `events_dir`.
fn history(events_dir: &Path) -> Result<Status> {
    let status = Status::new(None);
    for e in event_log::read(events_dir)? {
        status.apply(&e);
    }
    Ok(status)
}

/// What the context gives the status server when it starts.
pub(crate) struct UiSetup {
    pub(crate) app_name: String,
    pub(crate) batch_ms: u64,
    /// Host and first port, `None` when the server is off.
    pub(crate) bind: Option<(String, u16)>,
    /// The event log's folder, `None` when there is no log.
    pub(crate) event_dir: Option<PathBuf>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) inputs: Vec<String>,
    pub(crate) receivers: Vec<(usize, String)>,
    pub(crate) output_ops: usize,
}

/// A running context's status: the statistics, the server and the event log.
pub(crate) struct Ui {
    listener: Arc<UiListener>,
    server: Option<UiServer>,
}

impl Ui {
    /// Starts serving; a server that cannot start is a warning, never an error of the job.
    pub(crate) fn start(setup: UiSetup) -> Ui {
        let status = Arc::new(Status::new(Some(setup.counters.clone())));
        let app_id = format!("local-{}", crate::clock::wall_ms());
        {
            let mut s = status.read();
            s.app_name = setup.app_name.clone();
            s.app_id = app_id.clone();
            s.batch_ms = setup.batch_ms;
            s.inputs = setup.inputs.clone();
        }
        let bind = announce::bind_with_env(setup.bind.clone());
        let server = bind.as_ref().and_then(|(host, port)| {
            let started = http::bind(host, *port)
                .and_then(|l| UiServer::start(l, status.clone(), true));
            match started {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(
                        "status server not started on {host}:{port} (nor the next {} ports): {e}; the job runs without it. Set `StreamingConf::ui_port` (0 for any free port) or `ui(false)`",
                        http::PORT_RETRIES
                    );
                    None
                }
            }
        });
        announce::announce(
            server.as_ref().map(UiServer::local_addr),
            setup.event_dir.as_deref(),
        );
        Ui {
            listener: Arc::new(UiListener {
                status,
                log: Mutex::new(LogState::Pending(Vec::new())),
                app_id,
                setup,
            }),
            server,
        }
    }

    /// The listener that feeds the statistics and the event log.
    pub(crate) fn listener(&self) -> Arc<dyn StreamingListener> {
        self.listener.clone()
    }

    /// The page's URL, when the server runs.
    pub(crate) fn url(&self) -> Option<String> {
        self.server.as_ref().map(UiServer::url)
    }

    /// The context stopped.
    pub(crate) fn stopped(&self) {
        self.listener.record(Event::Stopped {
            time: crate::clock::wall_ms(),
        });
    }
}

/// Events logged before the context has started are held until the log opens.
const MAX_PENDING: usize = 1024;

/// The event log of a running context.
enum LogState {
    /// Not open yet: the context has not started (its checkpoint directory is then this
    /// job's); the events so far.
    Pending(Vec<Event>),
    /// Open, or `None`: no log.
    Open(Option<EventLog>),
}

/// Turns listener calls into events for the statistics and the event log.
struct UiListener {
    status: Arc<Status>,
    log: Mutex<LogState>,
    app_id: String,
    setup: UiSetup,
}

impl UiListener {
    fn record(&self, event: Event) {
        self.status.apply(&event);
        if !event.logged() {
            return;
        }
        match &mut *self.log.locked() {
            LogState::Pending(events) if events.len() < MAX_PENDING => events.push(event),
            LogState::Pending(_) | LogState::Open(None) => {}
            LogState::Open(Some(log)) => log.append(&event),
        }
    }
}

impl StreamingListener for UiListener {
    fn on_streaming_started(&self, time: Time) {
        let started = Event::Started {
            app_name: self.setup.app_name.clone(),
            app_id: self.app_id.clone(),
            batch_ms: self.setup.batch_ms,
            start_time: crate::clock::wall_ms(),
            first_batch: time,
            inputs: self.setup.inputs.clone(),
            receivers: self.setup.receivers.clone(),
            output_ops: self.setup.output_ops,
        };
        self.status.apply(&started);
        let mut state = self.log.locked();
        let log = self
            .setup
            .event_dir
            .clone()
            .and_then(|dir| match EventLog::create(dir) {
                Ok(log) => Some(log),
                Err(e) => {
                    tracing::warn!("no event log (the status history will be missing): {e}");
                    None
                }
            });
        if let Some(log) = &log {
            log.append(&started);
            if let LogState::Pending(events) = &*state {
                events.iter().for_each(|e| log.append(e));
            }
        }
        *state = LogState::Open(log);
    }
    fn on_batch_submitted(&self, info: &BatchInfo) {
        self.record(Event::BatchSubmitted {
            batch: info.clone(),
        });
    }
    fn on_batch_started(&self, info: &BatchInfo) {
        self.record(Event::BatchStarted {
            batch: info.clone(),
        });
    }
    fn on_batch_completed(&self, info: &BatchInfo) {
        self.record(Event::BatchCompleted {
            batch: info.clone(),
        });
    }
    fn on_batch_failed(&self, info: &BatchInfo) {
        self.record(Event::BatchFailed {
            batch: info.clone(),
        });
    }
    fn on_output_operation_started(&self, info: &OutputOperationInfo) {
        self.record(Event::OutputOperationStarted {
            operation: info.clone(),
        });
    }
    fn on_output_operation_completed(&self, info: &OutputOperationInfo) {
        self.record(Event::OutputOperationCompleted {
            operation: info.clone(),
        });
    }
    fn on_checkpoint_written(&self, info: &CheckpointInfo) {
        self.record(Event::Checkpoint {
            checkpoint: info.clone(),
        });
    }
    fn on_receiver_started(&self, info: &ReceiverInfo) {
        self.record(Event::ReceiverStarted {
            receiver: info.clone(),
        });
    }
    fn on_receiver_error(&self, info: &ReceiverInfo) {
        self.record(Event::ReceiverError {
            receiver: info.clone(),
        });
    }
    fn on_receiver_stopped(&self, info: &ReceiverInfo) {
        self.record(Event::ReceiverStopped {
            receiver: info.clone(),
        });
    }
}
