//! The check's latency histogram without a lock: one atomic add to a bucket
//! and one to the sum per check. `prometheus_client`'s `Histogram` takes a
//! mutex and walks its buckets for each observation, about 60 instructions
//! and a dozen instruction-cache lines on every check; here the bucket is
//! found by arithmetic, because the bounds are 100 µs doubling.
//! Rendered exactly as that `Histogram` with the same bounds renders.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// The first bucket's upper bound, in nanoseconds: 100 µs.
const FIRST_BOUND_NANOS: u64 = 100_000;

/// Finite buckets: 100 µs, 200 µs, … 100 µs × 2¹⁴ (~1.6 s), then `+Inf`.
const FINITE: usize = 15;

/// Latencies in buckets of 100 µs × 2ᵏ. Clones count into the same buckets.
#[derive(Clone, Debug, Default)]
pub struct Latency(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; FINITE + 1],
    sum_nanos: AtomicU64,
}

impl Latency {
    pub fn observe(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.0.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        self.0.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The upper bounds in seconds, as `exponential_buckets(0.0001, 2.0, 15)`
    /// computes them, then `+Inf`.
    fn bounds() -> impl Iterator<Item = f64> {
        prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, FINITE as u16)
            .chain(std::iter::once(f64::INFINITY))
    }
}

/// The bucket of a latency: the first whose bound is at least `nanos`.
fn bucket_of(nanos: u64) -> usize {
    // nanos ≤ 100 µs × 2ᵏ  ⇔  ⌈nanos / 100 µs⌉ ≤ 2ᵏ.
    let units = nanos.div_ceil(FIRST_BOUND_NANOS);
    let k = match units {
        0 | 1 => 0,
        units => (u64::BITS - (units - 1).leading_zeros()) as usize,
    };
    k.min(FINITE)
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = Self::bounds()
            .zip(&self.0.buckets)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = Duration::from_nanos(self.0.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
    use prometheus_client::registry::Registry;

    use super::*;

    #[test]
    fn a_latency_falls_in_the_first_bucket_whose_bound_holds_it() {
        let micros = |m: u64| m * 1_000;
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(micros(100)), 0);
        assert_eq!(bucket_of(micros(100) + 1), 1);
        assert_eq!(bucket_of(micros(200)), 1);
        assert_eq!(bucket_of(micros(200) + 1), 2);
        assert_eq!(bucket_of(micros(400)), 2);
        // The last finite bound: 100 µs × 2¹⁴ = 1.6384 s.
        assert_eq!(bucket_of(micros(1_638_400)), 14);
        assert_eq!(bucket_of(micros(1_638_400) + 1), 15);
        assert_eq!(bucket_of(u64::MAX), 15);
    }

    fn rendered<M>(metric: M) -> String
    where
        M: EncodeMetric + TypedMetric + Clone + std::fmt::Debug + Send + Sync + 'static,
    {
        let family: Family<[(&str, &str); 1], M, _> =
            Family::new_with_constructor(move || metric.clone());
        let _ = family.get_or_create(&[("endpoint", "auth")]);
        let mut registry = Registry::default();
        registry.register("check_duration_seconds", "Time to answer a check", family);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        text
    }

    #[test]
    fn it_renders_as_the_locked_histogram_with_the_same_bounds() {
        let ours = Latency::default();
        let theirs = Histogram::new(exponential_buckets(0.0001, 2.0, 15));
        // Off the bounds (a float sum and an integer sum round apart exactly there).
        let seen = [
            0,
            37_000,
            99_999,
            150_000,
            150_000,
            2_500_000,
            90_000_000,
            3_000_000_000,
        ];
        for nanos in seen {
            ours.observe(Duration::from_nanos(nanos));
            theirs.observe(Duration::from_nanos(nanos).as_secs_f64());
        }
        let (ours, theirs) = (rendered(ours), rendered(theirs));
        assert!(ours.contains("check_duration_seconds_bucket{le=\"0.0002\",endpoint=\"auth\"} 5"));
        assert!(ours.contains("check_duration_seconds_count{endpoint=\"auth\"} 8"));
        assert_eq!(ours, theirs);
    }

    #[test]
    fn clones_count_into_the_same_buckets() {
        let latency = Latency::default();
        latency.clone().observe(Duration::from_micros(150));
        latency.observe(Duration::from_secs(5));
        let text = rendered(latency);
        assert!(
            text.contains("le=\"0.0002\",endpoint=\"auth\"} 1"),
            "{text}"
        );
        assert!(text.contains("le=\"+Inf\",endpoint=\"auth\"} 2"), "{text}");
        assert!(
            text.contains("check_duration_seconds_sum{endpoint=\"auth\"} 5.00015"),
            "{text}"
        );
    }
}
