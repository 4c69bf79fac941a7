//! The plan's pure per-item work whose results are small (comparing each
//! container with what runs, each node's digest) spread over the machine's
//! cores. A plan of a
//! thousand nodes does this for 10,000 containers after the last read, on the
//! critical path; each item depends only on shared, read-only inputs, so the
//! items are cut into one run of consecutive items per core and the results
//! joined in the items' order: the same plan, the same text, as one thread.

/// Fewer items than this a thread are done on the calling thread: a thread's
/// start costs more than a small plan's whole work (and tests stay one thread).
const MIN_PER_THREAD: usize = 256;

/// `items.iter().map(f).collect()`, on up to one thread per core.
pub(super) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        // The first run on this thread (one thread fewer to start, and what it
        // allocates goes where this thread's memory is), the others each on one.
        let mut runs = items.chunks(chunk);
        let first = runs.next().unwrap_or(&[]);
        let runs: Vec<_> = runs
            .map(|run| s.spawn(move || run.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        out.extend(first.iter().map(f));
        for run in runs {
            match run.join() {
                Ok(results) => out.extend(results),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_the_items_order_whatever_the_threads() {
        for n in [0, 1, 255, 256, 257, 1000, 4099] {
            let items: Vec<usize> = (0..n).collect();
            let out = map(&items, |i| i * 3 + 1);
            assert_eq!(out, items.iter().map(|i| i * 3 + 1).collect::<Vec<_>>());
        }
    }
}
