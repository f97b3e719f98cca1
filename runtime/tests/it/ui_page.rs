//! The status page of a running job, opened in a real headless Chromium (Debian's `chromium`,
//! which `.ci/run` installs): its charts and tables render with the job's numbers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::wait_for;
use crate::ui::{DIRECT, Job, RECEIVED, RECEIVER_ERROR, get};

/// The browser, or `None` (with a note) when it is not installed.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() {
        eprintln!(
            "note: no chromium installed (`apt-get install -y chromium`, as .ci/run does); page not opened in a browser"
        );
    }
    found.map(PathBuf::from)
}

/// Runs headless Chromium on `url` with `args`, for at most 90 s; its stdout.
fn headless(browser: &Path, profile: &Path, args: &[String], url: &str) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The element with `id` in `dom`, up to its closing `</tag>`.
fn element<'a>(dom: &'a str, tag: &str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<{tag} id=\"{id}\""))
        .unwrap_or_else(|| panic!("no <{tag} id=\"{id}\"> in the page"));
    let end = dom[start..].find(&format!("</{tag}>")).unwrap() + start;
    &dom[start..end]
}

/// The values of attribute `attr` in `html`, in order.
fn attrs(html: &str, attr: &str) -> Vec<String> {
    html.split(&format!(" {attr}=\""))
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect()
}

#[test]
fn the_page_renders_the_jobs_numbers_in_chromium() {
    let Some(browser) = chromium() else { return };
    let job = Job::start("ui-page");
    let url = job.url();
    assert!(wait_for(10, || get(&url).1.contains(RECEIVER_ERROR)));
    for s in 1..=5 {
        assert!(job.run_batch(s).unwrap());
    }
    let profile = tempfile::tempdir().unwrap();
    let dom = headless(&browser, profile.path(), &["--dump-dom".into()], &url);
    assert!(dom.contains("Streaming Statistics: ui-page"), "{dom}");

    // The header.
    assert!(element(&dom, "b", "completed-batches-count").ends_with(">5"));
    let fed = DIRECT[0] + DIRECT[1] + RECEIVED;
    assert!(element(&dom, "b", "records-count").ends_with(&format!(">{fed}")));
    assert!(element(&dom, "b", "batch-interval").ends_with(">1000 ms"));

    // Four timelines with a point per batch, and their histograms.
    let rates = element(&dom, "svg", "timeline-input-rate");
    assert_eq!(
        attrs(rates, "data-batch"),
        ["1000", "2000", "3000", "4000", "5000"]
    );
    let first = (DIRECT[0] + RECEIVED).to_string();
    let second = DIRECT[1].to_string();
    assert_eq!(
        attrs(rates, "data-value"),
        [first.as_str(), second.as_str(), "0", "0", "0"]
    );
    for id in ["scheduling-delay", "processing-time", "total-delay"] {
        let t = element(&dom, "svg", &format!("timeline-{id}"));
        assert_eq!(attrs(t, "data-batch").len(), 5, "{id}");
        let h = element(&dom, "svg", &format!("histogram-{id}"));
        let counts: u64 = attrs(h, "data-count")
            .iter()
            .map(|c| c.parse::<u64>().unwrap())
            .sum();
        assert_eq!(counts, 5, "{id}");
    }
    assert!(element(&dom, "svg", "timeline-processing-time").contains("class=\"threshold\""));

    // The tables: completed batches with their records and output operations, the receiver
    // with its error, the inputs.
    let completed = element(&dom, "table", "completed-batches");
    assert_eq!(
        attrs(completed, "data-batch-id"),
        ["5000", "4000", "3000", "2000", "1000"]
    );
    let row = &completed[completed.find("data-batch-id=\"1000\"").unwrap()..];
    assert!(
        row.contains(&format!("<td class=\"num records\">{first}</td>")),
        "{row}"
    );
    assert!(row.contains("<td class=\"num ops\">3/3</td>"), "{row}");
    let receivers = element(&dom, "table", "receivers");
    assert!(
        receivers.contains("tells")
            && receivers.contains("ACTIVE")
            && receivers.contains(RECEIVER_ERROR)
    );
    let inputs = element(&dom, "table", "inputs");
    assert!(
        inputs.contains(&format!("<td class=\"num\">{RECEIVED}</td>")),
        "{inputs}"
    );
    assert!(element(&dom, "p", "checkpoint").contains("batch <b>5000</b>"));
    assert!(element(&dom, "table", "active-batches").contains("Batch time"));

    // A screenshot: a real PNG of the page as drawn.
    let png = profile.path().join("page.png");
    headless(
        &browser,
        profile.path(),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,1500".into(),
        ],
        &url,
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    assert_eq!(width, 1280);
    assert!(
        bytes.len() > 30_000,
        "a page with charts, not a blank one: {} bytes",
        bytes.len()
    );
    if let Some(keep) = std::env::var_os("CARGO_STREAM_UI_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
    job.ssc.stop(false).unwrap();
}
