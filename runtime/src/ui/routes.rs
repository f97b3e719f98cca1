//! Which request gets which answer: the page, Spark's REST API, `/metrics`, `/healthz`,
//! `/readyz`.

use serde::Serialize;

use crate::ui::api::BatchStatus;
use crate::ui::http::{Request, Response};
use crate::ui::prometheus;
use crate::ui::status::{Stats, Status};

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => Response::new(200, "application/json", body),
        Err(e) => Response::text(500, format!("could not serialize the answer: {e}")),
    }
}

fn not_found(what: String) -> Response {
    Response::text(404, what)
}

/// Answers one request from the statistics; `live` for a running job (not a history).
pub(crate) fn route(status: &Status, live: bool, req: &Request) -> Response {
    let path = req.path.trim_end_matches('/');
    if path == "/healthz" {
        return Response::text(200, "ok");
    }
    let stats = status.read();
    match path {
        "" | "/streaming" => {
            return Response::new(200, "text/html; charset=utf-8", stats.page(live));
        }
        "/metrics" => return Response::new(200, prometheus::CONTENT_TYPE, stats.prometheus()),
        "/readyz" => {
            return match stats.readiness() {
                Ok(m) => Response::text(200, m),
                Err(m) => Response::text(503, m),
            };
        }
        "/api/v1/applications" => return json(&vec![stats.application()]),
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/api/v1/applications/") else {
        return not_found(format!(
            "no page at `{}`: try `/`, `/api/v1/applications`, `/metrics`, `/healthz` or `/readyz`",
            req.path
        ));
    };
    let mut parts = rest.split('/');
    let app = parts.next().unwrap_or_default();
    if app != stats.app_id {
        return not_found(format!(
            "unknown app: {app}; this job is `{}`",
            stats.app_id
        ));
    }
    let parts: Vec<&str> = parts.collect();
    api(&stats, req, &parts)
}

fn api(stats: &Stats, req: &Request, parts: &[&str]) -> Response {
    match parts {
        [] => json(&stats.application()),
        ["streaming", "statistics"] => json(&stats.statistics()),
        ["streaming", "receivers"] => json(&stats.receiver_infos()),
        ["streaming", "receivers", id] => {
            let found = id.parse::<usize>().ok().and_then(|id| {
                stats
                    .receiver_infos()
                    .into_iter()
                    .find(|r| r.stream_id == id)
            });
            match found {
                Some(r) => json(&r),
                None => not_found(format!("unknown receiver: {id}")),
            }
        }
        ["streaming", "batches"] => {
            let mut wanted = Vec::new();
            for (k, v) in &req.query {
                if k == "status" {
                    match BatchStatus::parse(v) {
                        Some(s) => wanted.push(s),
                        None => {
                            return Response::text(
                                400,
                                format!(
                                    "illegal status `{v}`: use QUEUED, PROCESSING or COMPLETED"
                                ),
                            );
                        }
                    }
                }
            }
            let list: Vec<_> = stats
                .batches()
                .into_iter()
                .filter(|(s, _)| wanted.is_empty() || wanted.contains(s))
                .map(|(s, b)| stats.batch_info(s, b))
                .collect();
            json(&list)
        }
        ["streaming", "batches", id, rest @ ..] => {
            let found = id.parse::<u64>().ok().and_then(|id| {
                stats
                    .batches()
                    .into_iter()
                    .find(|(_, b)| b.batch_time.millis() == id)
            });
            let Some((s, b)) = found else {
                return not_found(format!("unknown batch: {id}"));
            };
            match rest {
                [] => json(&stats.batch_info(s, b)),
                ["operations"] => json(&stats.operations(b)),
                ["operations", op] => {
                    match op.parse::<usize>().ok().and_then(|op| {
                        stats
                            .operations(b)
                            .into_iter()
                            .find(|o| o.output_op_id == op)
                    }) {
                        Some(o) => json(&o),
                        None => not_found(format!("unknown output operation: {op}")),
                    }
                }
                _ => not_found(format!("no API at `{}`", req.path)),
            }
        }
        _ => not_found(format!("no API at `{}`", req.path)),
    }
}
