//! The aggregations `sum`, `avg`, `min`, `max` and `count`, with `by` (keep only those labels)
//! or `without` (drop those labels and the metric name), at every step.

use std::collections::hash_map::Entry;

use crate::FastMap;
use crate::series::GroupNames;

use super::QueryError;
use super::eval::{Ctx, step_index};
use super::plan::{AggOp, Node};
use super::steps::{Collector, Transposed, Val};

/// One group's running state at one step.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    seen: bool,
    value: f64,
    compensation: f64,
    mean: f64,
    count: f64,
    incremental: bool,
}

pub(crate) fn eval(
    ctx: &mut Ctx<'_>,
    op: AggOp,
    expr: &Node,
    without: bool,
    grouping: &[String],
) -> Result<Val, QueryError> {
    let input = ctx.eval_vector(expr)?;
    let compat = ctx.options.compat;
    // The group of every input series, found once for all steps, by its kept pairs borrowed
    // from the input; a group's label set is built once, for its first series.
    let mut index: FastMap<Vec<(&str, &str)>, usize> = FastMap::default();
    let mut collector = Collector::default();
    let mut slots: Vec<usize> = Vec::new();
    let mut group_of: Vec<usize> = Vec::with_capacity(input.len());
    let names = GroupNames::new(grouping, without);
    for s in &input {
        let next = index.len();
        match index.entry(s.labels.grouping_key(&names)) {
            Entry::Occupied(entry) => group_of.push(*entry.get()),
            Entry::Vacant(entry) => {
                entry.insert(next);
                slots.push(collector.slot(s.labels.grouping(&names)));
                group_of.push(next);
            }
        }
    }
    let by_step = Transposed::new(&input, ctx.steps);
    let mut groups = vec![Group::default(); slots.len()];
    let mut touched: Vec<usize> = Vec::new();
    for i in 0..ctx.steps {
        ctx.tick()?;
        for &(series, f) in by_step.at(i) {
            let Some(&g) = group_of.get(series as usize) else {
                continue;
            };
            let Some(group) = groups.get_mut(g) else {
                continue;
            };
            if !group.seen {
                *group = Group {
                    seen: true,
                    value: f,
                    compensation: 0.0,
                    mean: f,
                    count: 1.0,
                    incremental: false,
                };
                touched.push(g);
                continue;
            }
            match op {
                AggOp::Sum if compat.kahan_sum => {
                    (group.value, group.compensation) =
                        kahan_add(f, group.value, group.compensation);
                }
                AggOp::Sum => group.value += f,
                AggOp::Avg if compat.direct_mean => direct_mean_add(group, f),
                AggOp::Avg => running_mean_add(group, f),
                AggOp::Count => group.count += 1.0,
                AggOp::Max => {
                    if group.value < f || group.value.is_nan() {
                        group.value = f;
                    }
                }
                AggOp::Min => {
                    if group.value > f || group.value.is_nan() {
                        group.value = f;
                    }
                }
            }
        }
        for g in touched.drain(..) {
            let (Some(group), Some(&slot)) = (groups.get_mut(g), slots.get(g)) else {
                continue;
            };
            let value = match op {
                AggOp::Sum => group.value + group.compensation,
                AggOp::Avg if !compat.direct_mean => group.mean,
                AggOp::Avg if group.incremental => group.mean + group.compensation,
                AggOp::Avg => group.value / group.count + group.compensation / group.count,
                AggOp::Count => group.count,
                AggOp::Min | AggOp::Max => group.value,
            };
            collector.push(slot, step_index(i), value);
            group.seen = false;
        }
    }
    let out = collector.finish()?;
    ctx.charge_series(&out)?;
    Ok(Val::Vector(out))
}

/// Kahan–Neumaier summation step, as Prometheus's `kahansum.Inc`.
fn kahan_add(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// `avg` since Prometheus 2.55: a compensated sum divided at the end, switching to a running
/// mean once the sum would overflow.
fn direct_mean_add(group: &mut Group, f: f64) {
    group.count += 1.0;
    if !group.incremental {
        let (sum, c) = kahan_add(f, group.value, group.compensation);
        if !sum.is_infinite() {
            group.value = sum;
            group.compensation = c;
            return;
        }
        group.incremental = true;
        group.mean = group.value / (group.count - 1.0);
        group.compensation /= group.count - 1.0;
    }
    let q = (group.count - 1.0) / group.count;
    (group.mean, group.compensation) =
        kahan_add(f / group.count, q * group.mean, q * group.compensation);
}

/// `avg` before 2.55: a running mean, which keeps an infinite mean once reached unless a NaN or
/// an infinity of the other sign comes.
fn running_mean_add(group: &mut Group, f: f64) {
    group.count += 1.0;
    if group.mean.is_infinite() {
        if f.is_infinite() && (group.mean > 0.0) == (f > 0.0) {
            return;
        }
        if !f.is_infinite() && !f.is_nan() {
            return;
        }
    }
    group.mean += f / group.count - group.mean / group.count;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensated_sum_keeps_small_terms() {
        let (mut sum, mut c) = (1e16, 0.0);
        for _ in 0..10 {
            (sum, c) = kahan_add(1.0, sum, c);
        }
        assert_eq!(sum + c, 1e16 + 10.0);
    }

    #[test]
    fn running_mean_keeps_an_infinite_mean() {
        let mut group = Group {
            seen: true,
            mean: f64::INFINITY,
            count: 1.0,
            ..Group::default()
        };
        running_mean_add(&mut group, 5.0);
        assert_eq!(group.mean, f64::INFINITY);
        running_mean_add(&mut group, f64::NEG_INFINITY);
        assert!(group.mean.is_nan());
    }
}
