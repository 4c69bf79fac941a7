//! A test-only injection point (built only with the `testing` feature): with
//! `GEARTOPO_TEST_PAUSE_AT=POINT` in the environment, apply stops at `POINT`
//! (`after-lock`: every node locked, nothing run; `step`: before each step's
//! round trip) for `GEARTOPO_TEST_PAUSE_MS` milliseconds (default 5000), after
//! saying so on stderr, so that a fault test can kill or interrupt it there.

pub fn at(point: &str) {
    if std::env::var("GEARTOPO_TEST_PAUSE_AT").ok().as_deref() != Some(point) {
        return;
    }
    let ms = std::env::var("GEARTOPO_TEST_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    eprintln!(
        "geartopo-test: paused at {point} (pid {})",
        std::process::id()
    );
    std::thread::sleep(std::time::Duration::from_millis(ms));
}
