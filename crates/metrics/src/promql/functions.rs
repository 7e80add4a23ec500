//! The functions: `rate`, `increase`, `delta` (Prometheus's extrapolated rate), `irate`,
//! `round`, and `histogram_quantile` over classic `le` buckets, each with Prometheus's rules for
//! the edge cases (counter resets, too few samples, missing `+Inf` bucket, non-monotonic
//! buckets, NaN and out-of-range quantiles).

use crate::FastMap;

use super::eval::{Ctx, step_index, window};
use super::plan::{Node, RangeFunc, Selector};
use super::steps::{Collector, OneToOne, StepSeries, Transposed, Val, check_distinct};
use super::{Compat, QueryError};
use crate::series::{Labels, Sample};
use crate::source::{Window, WindowSamples};

/// `rate`, `irate`, `increase` or `delta` of a range selector, at every step.
pub(crate) fn range_function(
    ctx: &mut Ctx<'_>,
    func: RangeFunc,
    selector: &Selector,
) -> Result<Vec<StepSeries>, QueryError> {
    if let Some(windows) = ctx.take_windows(selector) {
        return from_windows(ctx, func, selector, windows);
    }
    let compat = ctx.options.compat;
    let mut out = Vec::new();
    for index in 0..ctx.data(selector).len() {
        let mut points = Vec::new();
        for i in 0..ctx.steps {
            ctx.tick()?;
            let reference = ctx.reference_time(selector, i);
            let samples = ctx
                .data(selector)
                .get(index)
                .map_or(&[][..], |s| s.samples.as_slice());
            let samples = window(
                samples,
                reference,
                selector.range_ms,
                compat.left_open_windows,
            );
            let value = match func {
                RangeFunc::Irate => irate(samples),
                _ => extrapolated(
                    func,
                    &WindowSamples::of(samples),
                    reference,
                    selector.range_ms,
                    compat,
                ),
            };
            if let Some(value) = value {
                points.push((step_index(i), value));
            }
        }
        out.extend(ctx.output_series(selector, index, points, true)?);
    }
    check_distinct(&out)?;
    Ok(out)
}

/// A range function of one step over the windows the source reduced (see
/// [`Ctx::take_windows`]): the same values as over their samples.
fn from_windows(
    ctx: &mut Ctx<'_>,
    func: RangeFunc,
    selector: &Selector,
    windows: Vec<Window>,
) -> Result<Vec<StepSeries>, QueryError> {
    let compat = ctx.options.compat;
    let reference = ctx.reference_time(selector, 0);
    let mut out = Vec::new();
    for window in windows {
        ctx.tick()?;
        let value = extrapolated(func, &window.samples, reference, selector.range_ms, compat);
        let points = value.map(|v| vec![(step_index(0), v)]).unwrap_or_default();
        out.extend(ctx.output_labeled(&window.labels, points, true)?);
    }
    check_distinct(&out)?;
    Ok(out)
}

/// `rate`, `increase` or `delta` of a window ending at `reference` (`irate` has none: it
/// reads the last two samples, which a reduced window does not keep).
fn extrapolated(
    func: RangeFunc,
    samples: &WindowSamples,
    reference: i64,
    range_ms: i64,
    compat: Compat,
) -> Option<f64> {
    let (is_counter, is_rate) = match func {
        RangeFunc::Rate => (true, true),
        RangeFunc::Increase => (true, false),
        RangeFunc::Delta => (false, false),
        RangeFunc::Irate => return None,
    };
    let range_start = reference.saturating_sub(range_ms);
    extrapolated_rate(
        samples,
        range_start,
        reference,
        range_ms,
        is_counter,
        is_rate,
        compat,
    )
}

/// Prometheus's `extrapolatedRate`: the increase over the samples in the window (resets
/// counted for counters), extrapolated towards the window's ends when the first and last
/// samples are near them, never below a counter's zero point; per second for `rate`.
pub(crate) fn extrapolated_rate(
    samples: &WindowSamples,
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
    compat: Compat,
) -> Option<f64> {
    let (first, last) = samples.ends()?;
    let mut result = last.value - first.value;
    if is_counter {
        // In time order, as Prometheus adds them while walking the samples.
        for previous in samples.resets() {
            result += previous;
        }
    }
    let seconds = |ms: i64| ms as f64 / 1000.0;
    let mut to_start = seconds(first.timestamp_ms.saturating_sub(range_start));
    let mut to_end = seconds(range_end.saturating_sub(last.timestamp_ms));
    let sampled = seconds(last.timestamp_ms.saturating_sub(first.timestamp_ms));
    let average = sampled / samples.count().saturating_sub(1) as f64;
    let threshold = average * 1.1;
    let zero_point = |result: f64| -> Option<f64> {
        (is_counter && result > 0.0 && first.value >= 0.0).then(|| sampled * (first.value / result))
    };
    let extrapolated = if compat.zero_cap_after_threshold {
        if to_start >= threshold {
            to_start = average / 2.0;
        }
        if let Some(to_zero) = zero_point(result) {
            if to_zero < to_start {
                to_start = to_zero;
            }
        }
        if to_end >= threshold {
            to_end = average / 2.0;
        }
        sampled + to_start + to_end
    } else {
        if let Some(to_zero) = zero_point(result) {
            if to_zero < to_start {
                to_start = to_zero;
            }
        }
        let mut interval = sampled;
        interval += if to_start < threshold {
            to_start
        } else {
            average / 2.0
        };
        interval += if to_end < threshold {
            to_end
        } else {
            average / 2.0
        };
        interval
    };
    let mut factor = if sampled != 0.0 {
        extrapolated / sampled
    } else {
        1.0
    };
    if is_rate {
        factor /= go_seconds(range_ms);
    }
    Some(result * factor)
}

/// A duration in seconds as Go's `Duration.Seconds()` computes it (whole seconds plus the
/// fraction), so rates divide by exactly the same number.
fn go_seconds(ms: i64) -> f64 {
    let whole = ms / 1000;
    let fraction_ns = (ms % 1000).saturating_mul(1_000_000);
    whole as f64 + fraction_ns as f64 / 1e9
}

/// `irate`: the per-second increase between the last two samples (a drop is a reset).
fn irate(samples: &[Sample]) -> Option<f64> {
    let [.., previous, last] = samples else {
        return None;
    };
    let result = if last.value < previous.value {
        last.value
    } else {
        last.value - previous.value
    };
    let interval = last.timestamp_ms.saturating_sub(previous.timestamp_ms);
    (interval != 0).then(|| result / (interval as f64 / 1000.0))
}

/// `round(v, to_nearest)`: `floor(v / to_nearest + 0.5) * to_nearest`, computed through the
/// inverse as Prometheus does; the metric name is dropped.
pub(crate) fn round(
    ctx: &mut Ctx<'_>,
    expr: &Node,
    to_nearest: Option<&Node>,
) -> Result<Val, QueryError> {
    let series = ctx.eval_vector(expr)?;
    let to_nearest = match to_nearest {
        Some(node) => ctx.eval_scalar(node)?,
        None => vec![1.0; ctx.steps],
    };
    let mut out = OneToOne::new(&series, true);
    for s in series {
        ctx.tick()?;
        let mut points = s.points;
        for (step, v) in &mut points {
            let inverse = 1.0 / to_nearest.get(*step as usize).copied().unwrap_or(f64::NAN);
            *v = (*v * inverse + 0.5).floor() / inverse;
        }
        out.add(s.labels.without_name(), points);
    }
    out.finish().map(Val::Vector)
}

/// `histogram_quantile(q, buckets)`: per step, the buckets grouped by their labels without
/// `le`, each group's quantile labelled without `le` and the metric name.
pub(crate) fn histogram_quantile(
    ctx: &mut Ctx<'_>,
    q: &Node,
    expr: &Node,
) -> Result<Val, QueryError> {
    let q = ctx.eval_scalar(q)?;
    let input = ctx.eval_vector(expr)?;
    let le: Vec<String> = vec!["le".to_string()];
    // Per input series: its group (None when `le` is missing or not a number) and bound.
    let mut groups: FastMap<Labels, usize> = FastMap::default();
    let mut collector = Collector::default();
    let mut group_slot: Vec<usize> = Vec::new();
    let mut member: Vec<Option<(usize, f64)>> = Vec::with_capacity(input.len());
    for s in &input {
        let Some(bound) = s.labels.get("le").and_then(|v| v.parse::<f64>().ok()) else {
            member.push(None);
            continue;
        };
        let key = s.labels.remove(&le, false);
        let next = groups.len();
        let group = *groups.entry(key).or_insert(next);
        if group == group_slot.len() {
            group_slot.push(collector.slot(s.labels.remove(&le, true)));
        }
        member.push(Some((group, bound)));
    }
    let by_step = Transposed::new(&input, ctx.steps);
    let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); group_slot.len()];
    let mut touched: Vec<usize> = Vec::new();
    for i in 0..ctx.steps {
        ctx.tick()?;
        for &(series, count) in by_step.at(i) {
            if let Some(Some((group, bound))) = member.get(series as usize) {
                if let Some(b) = buckets.get_mut(*group) {
                    if b.is_empty() {
                        touched.push(*group);
                    }
                    b.push((*bound, count));
                }
            }
        }
        let q = q.get(i).copied().unwrap_or(f64::NAN);
        for group in touched.drain(..) {
            if let (Some(b), Some(&slot)) = (buckets.get_mut(group), group_slot.get(group)) {
                collector.push(
                    slot,
                    step_index(i),
                    bucket_quantile(q, b, ctx.options.compat),
                );
                b.clear();
            }
        }
    }
    collector.finish().map(Val::Vector)
}

/// Prometheus's `bucketQuantile` over (upper bound, cumulative count) pairs.
/// What Prometheus answers for a quantile it cannot take: `NaN` for `NaN`, `−Inf` below 0,
/// `+Inf` above 1; `None` for a quantile in `[0, 1]`.
pub fn quantile_out_of_range(q: f64) -> Option<f64> {
    if q.is_nan() {
        Some(f64::NAN)
    } else if q < 0.0 {
        Some(f64::NEG_INFINITY)
    } else if q > 1.0 {
        Some(f64::INFINITY)
    } else {
        None
    }
}

pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>, compat: Compat) -> f64 {
    if let Some(value) = quantile_out_of_range(q) {
        return value;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    coalesce(buckets);
    if compat.bucket_tolerance {
        monotonic_ignoring_small_deltas(buckets);
    } else {
        monotonic(buckets);
    }
    let n = buckets.len();
    let (Some(&(_, observations)), true) = (buckets.last(), n >= 2) else {
        return f64::NAN;
    };
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let count_at = |i: usize| buckets.get(i).map_or(f64::NAN, |b| b.1);
    let bound_at = |i: usize| buckets.get(i).map_or(f64::NAN, |b| b.0);
    let b = go_search(n.saturating_sub(1), |i| count_at(i) >= rank);
    if b == n.saturating_sub(1) {
        return bound_at(n.saturating_sub(2));
    }
    if b == 0 && bound_at(0) <= 0.0 {
        return bound_at(0);
    }
    let bucket_end = bound_at(b);
    let mut count = count_at(b);
    let mut bucket_start = 0.0;
    if let Some(previous) = b.checked_sub(1) {
        bucket_start = bound_at(previous);
        count -= count_at(previous);
        rank -= count_at(previous);
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Go's `sort.Search`: the first index in `0..n` where `f` holds, by the same bisection (so a
/// predicate that is not monotonic — NaN counts — lands where Prometheus's does).
fn go_search(n: usize, f: impl Fn(usize) -> bool) -> usize {
    let (mut i, mut j) = (0usize, n);
    while i < j {
        let h = i.saturating_add(j.saturating_sub(i) / 2);
        if f(h) {
            j = h;
        } else {
            i = h.saturating_add(1);
        }
    }
    i
}

/// Merges buckets with the same upper bound (sorted input), adding their counts.
fn coalesce(buckets: &mut Vec<(f64, f64)>) {
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(bound, count) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == bound => last.1 += count,
            _ => merged.push((bound, count)),
        }
    }
    *buckets = merged;
}

/// Before Prometheus 2.49: the running maximum of the counts.
fn monotonic(buckets: &mut [(f64, f64)]) {
    let mut max = buckets.first().map_or(0.0, |b| b.1);
    for b in buckets.iter_mut().skip(1) {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
}

/// Since 2.49: decreases removed, and differences within 1e-12 (relative) ignored.
fn monotonic_ignoring_small_deltas(buckets: &mut [(f64, f64)]) {
    let mut previous = buckets.first().map_or(0.0, |b| b.1);
    for b in buckets.iter_mut().skip(1) {
        let current = b.1;
        if current == previous {
            continue;
        }
        if almost_equal(previous, current, 1e-12) || current < previous {
            b.1 = previous;
            continue;
        }
        previous = current;
    }
}

/// Prometheus's `almost.Equal`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    diff / sum.min(f64::MAX) < epsilon
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests;
