//! The metrics endpoint: `aibench gpu-exporter` and the job agent's own.
//! Serves the GPUs in dcgm-exporter's names (through NVML, or a recorded
//! scrape served as it is), and, in the agent, the service's process group.

use std::sync::Arc;

use super::nvml::Gpus;

/// Where the GPU part of a scrape comes from.
pub enum Source {
    Nvml(Box<Gpus>),
    /// A recorded scrape, served as it is (tests, demos).
    File(String),
    /// No GPU metrics, and why (said once at start).
    Off(String),
}

impl Source {
    /// NVML when it loads, else off with its reason; `file` wins when given.
    pub fn open(file: Option<&str>) -> Result<Source, String> {
        if let Some(f) = file {
            return crate::inputs::read_to_string(f, crate::inputs::Kind::GpuScrape)
                .map(Source::File)
                .map_err(|e| format!("--from-file: {e}"));
        }
        Ok(match Gpus::open() {
            Ok(g) => Source::Nvml(Box::new(g)),
            Err(why) => Source::Off(why),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Nvml(_) => "NVML".into(),
            Source::File(_) => "a recorded scrape".into(),
            Source::Off(why) => why.clone(),
        }
    }
}

pub struct Exporter {
    pub source: Source,
    pub hostname: String,
    /// The agent's service: its process group and the labels it carries.
    pub service: Option<(i32, String)>,
}

impl Exporter {
    /// One scrape's text.
    pub fn scrape(&self) -> String {
        let mut out = String::new();
        let (up, gpus) = match &self.source {
            Source::Nvml(g) => match g.sample() {
                Ok(s) => (1, super::render(&s, &self.hostname)),
                Err(e) => (0, format!("# {e}\n")),
            },
            Source::File(text) => (1, text.clone()),
            Source::Off(_) => (0, String::new()),
        };
        out.push_str(&gpus);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "# HELP aibench_gpu_metrics_available Whether GPU metrics could be read on this node (NVML, or a recorded scrape).\n\
             # TYPE aibench_gpu_metrics_available gauge\naibench_gpu_metrics_available {up}\n"
        ));
        if let Some((pgid, labels)) = &self.service {
            out.push_str(&super::procstat::render(*pgid, labels));
        }
        out
    }
}

/// Serves `/metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, ex: Arc<Exporter>) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let ex = ex.clone();
            async move {
                let text = tokio::task::spawn_blocking(move || ex.scrape()).await.unwrap_or_default();
                ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
            }
        }),
    );
    axum::serve(listener, app).await
}
