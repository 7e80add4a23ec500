//! Binary operators between scalars and vectors: arithmetic (`+ - * / % ^`), comparisons
//! (filters, or 0/1 with `bool`) and the set operators `and`, `or`, `unless`; vector matching
//! with `on`/`ignoring` and `group_left`/`group_right`, with Prometheus's errors when a match
//! is ambiguous and its rules for which labels the result keeps.

use crate::{FastMap, FastSet};

use super::BinaryOp;
use super::QueryError;
use super::eval::{Ctx, step_index};
use super::plan::{Binary, Card};
use super::steps::{Collector, OneToOne, StepSeries, Transposed, Val};
use crate::series::Labels;

pub(crate) fn eval(ctx: &mut Ctx<'_>, b: &Binary) -> Result<Val, QueryError> {
    let lhs = ctx.eval(&b.lhs)?;
    let rhs = ctx.eval(&b.rhs)?;
    let out = match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => {
            return Ok(Val::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&l, &r)| scalar_op(b.op, l, r))
                    .collect(),
            ));
        }
        (Val::Vector(v), Val::Scalar(s)) => vector_scalar(ctx, b, v, &s, false)?,
        (Val::Scalar(s), Val::Vector(v)) => vector_scalar(ctx, b, v, &s, true)?,
        (Val::Vector(l), Val::Vector(r)) if b.op.is_set() => set_op(ctx, b, &l, &r)?,
        (Val::Vector(l), Val::Vector(r)) => vector_vector(ctx, b, &l, &r)?,
        _ => {
            return Err(QueryError::Execution(
                "binary operators apply to scalars and instant vectors only".to_string(),
            ));
        }
    };
    ctx.charge_series(&out)?;
    Ok(Val::Vector(out))
}

/// The value of `l op r`, and whether a comparison holds (always true for arithmetic).
fn apply(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Mod => (l % r, true),
        BinaryOp::Pow => (l.powf(r), true),
        BinaryOp::Eq => (l, l == r),
        BinaryOp::Ne => (l, l != r),
        BinaryOp::Gt => (l, l > r),
        BinaryOp::Lt => (l, l < r),
        BinaryOp::Ge => (l, l >= r),
        BinaryOp::Le => (l, l <= r),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => (f64::NAN, false),
    }
}

/// Between two scalars a comparison (which must carry `bool`) gives 0 or 1.
fn scalar_op(op: BinaryOp, l: f64, r: f64) -> f64 {
    let (value, keep) = apply(op, l, r);
    if op.is_comparison() {
        if keep { 1.0 } else { 0.0 }
    } else {
        value
    }
}

/// Arithmetic drops the metric name; so does `bool`. Filtering comparisons keep it.
fn drops_name(b: &Binary) -> bool {
    !b.op.is_comparison() || b.return_bool
}

/// A vector and a scalar (`swap`: the scalar is on the left). A comparison keeps the vector's
/// value whichever side it is on.
fn vector_scalar(
    ctx: &mut Ctx<'_>,
    b: &Binary,
    series: Vec<StepSeries>,
    scalar: &[f64],
    swap: bool,
) -> Result<Vec<StepSeries>, QueryError> {
    let drop_name = drops_name(b);
    let mut out = OneToOne::new(&series, drop_name);
    for s in series {
        ctx.tick()?;
        let labels = if drop_name {
            s.labels.without_name()
        } else {
            s.labels
        };
        let mut points = s.points;
        points.retain_mut(|(step, v)| {
            let k = scalar.get(*step as usize).copied().unwrap_or(f64::NAN);
            let (l, r) = if swap { (k, *v) } else { (*v, k) };
            let (value, keep) = apply(b.op, l, r);
            if b.return_bool {
                *v = if keep { 1.0 } else { 0.0 };
                true
            } else {
                // A comparison keeps the vector's value; arithmetic keeps every point.
                if !b.op.is_comparison() {
                    *v = value;
                }
                keep
            }
        });
        out.add(labels, points);
    }
    out.finish()
}

/// The signature a series is matched by: the `on` labels, or all but the `ignoring` labels
/// and the metric name.
fn signature(b: &Binary, labels: &Labels) -> Labels {
    if b.on {
        labels.keep(&b.matching)
    } else {
        labels.remove(&b.matching, true)
    }
}

/// Numbers every distinct signature of `series` into `ids`.
fn signatures(b: &Binary, series: &[StepSeries], ids: &mut FastMap<Labels, usize>) -> Vec<usize> {
    series
        .iter()
        .map(|s| {
            let next = ids.len();
            *ids.entry(signature(b, &s.labels)).or_insert(next)
        })
        .collect()
}

fn set_op(
    ctx: &mut Ctx<'_>,
    b: &Binary,
    lhs: &[StepSeries],
    rhs: &[StepSeries],
) -> Result<Vec<StepSeries>, QueryError> {
    let mut ids = FastMap::default();
    let lsig = signatures(b, lhs, &mut ids);
    let rsig = signatures(b, rhs, &mut ids);
    let mut collector = Collector::default();
    let lslot: Vec<usize> = lhs
        .iter()
        .map(|s| collector.slot(s.labels.clone()))
        .collect();
    let rslot: Vec<usize> = rhs
        .iter()
        .map(|s| collector.slot(s.labels.clone()))
        .collect();
    let (left, right) = (
        Transposed::new(lhs, ctx.steps),
        Transposed::new(rhs, ctx.steps),
    );
    let mut present = vec![false; ids.len()];
    let mut marked: Vec<usize> = Vec::new();
    let sig = |sigs: &[usize], i: u32| sigs.get(i as usize).copied().unwrap_or(usize::MAX);
    let slot = |slots: &[usize], i: u32| slots.get(i as usize).copied().unwrap_or(usize::MAX);
    for i in 0..ctx.steps {
        ctx.tick()?;
        let step = step_index(i);
        // Mark the signatures of the side the other side is tested against.
        let marking = if b.op == BinaryOp::Or { &left } else { &right };
        let marking_sigs: &[usize] = if b.op == BinaryOp::Or { &lsig } else { &rsig };
        for &(s, _) in marking.at(i) {
            if let Some(p) = present.get_mut(sig(marking_sigs, s)) {
                *p = true;
                marked.push(sig(marking_sigs, s));
            }
        }
        let is_marked = |g: usize| present.get(g).copied().unwrap_or(false);
        match b.op {
            BinaryOp::And => {
                for &(s, v) in left.at(i) {
                    if is_marked(sig(&lsig, s)) {
                        collector.push(slot(&lslot, s), step, v);
                    }
                }
            }
            BinaryOp::Unless => {
                for &(s, v) in left.at(i) {
                    if !is_marked(sig(&lsig, s)) {
                        collector.push(slot(&lslot, s), step, v);
                    }
                }
            }
            _ => {
                for &(s, v) in left.at(i) {
                    collector.push(slot(&lslot, s), step, v);
                }
                for &(s, v) in right.at(i) {
                    if !is_marked(sig(&rsig, s)) {
                        collector.push(slot(&rslot, s), step, v);
                    }
                }
            }
        }
        for g in marked.drain(..) {
            if let Some(p) = present.get_mut(g) {
                *p = false;
            }
        }
    }
    collector.finish()
}

/// Arithmetic and comparisons between two vectors: each series of the "many" side (both
/// sides are "one" in one-to-one matching) meets the series of the other side with its
/// signature.
fn vector_vector(
    ctx: &mut Ctx<'_>,
    b: &Binary,
    lhs: &[StepSeries],
    rhs: &[StepSeries],
) -> Result<Vec<StepSeries>, QueryError> {
    // group_right is group_left with the sides swapped; values are swapped back below.
    let swapped = matches!(b.card, Card::OneToMany(_));
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let include: &[String] = match &b.card {
        Card::ManyToOne(l) | Card::OneToMany(l) => l,
        _ => &[],
    };
    let one_to_one = matches!(b.card, Card::OneToOne);
    let mut ids = FastMap::default();
    let many_sig = signatures(b, many, &mut ids);
    let one_sig = signatures(b, one, &mut ids);
    let (many_steps, one_steps) = (
        Transposed::new(many, ctx.steps),
        Transposed::new(one, ctx.steps),
    );
    let mut collector = Collector::default();
    let mut result_slot: FastMap<(u32, u32), usize> = FastMap::default();
    // Per signature at the current step: the "one" side's series and value.
    let mut one_at: Vec<Option<(u32, f64)>> = vec![None; ids.len()];
    let mut touched: Vec<usize> = Vec::new();
    let mut matched: FastSet<(usize, usize)> = FastSet::default();
    let sig = |sigs: &[usize], i: u32| sigs.get(i as usize).copied().unwrap_or(usize::MAX);
    for i in 0..ctx.steps {
        ctx.tick()?;
        // Prometheus pairs nothing (and so checks nothing) at a step where a side is empty.
        if one_steps.at(i).is_empty() || many_steps.at(i).is_empty() {
            continue;
        }
        for &(s, v) in one_steps.at(i) {
            let g = sig(&one_sig, s);
            let Some(entry) = one_at.get_mut(g) else {
                continue;
            };
            if let Some((other, _)) = entry {
                let side = if swapped { "left" } else { "right" };
                let (a, c) = (label_of(one, s), label_of(one, *other));
                return Err(QueryError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    match_group(b, &a).prom_string(),
                    a.prom_string(),
                    c.prom_string()
                )));
            }
            *entry = Some((s, v));
            touched.push(g);
        }
        for &(s, v) in many_steps.at(i) {
            let g = sig(&many_sig, s);
            let Some(Some((o, ov))) = one_at.get(g).copied() else {
                continue;
            };
            let (l, r) = if swapped { (ov, v) } else { (v, ov) };
            let (value, keep) = apply(b.op, l, r);
            let value = if b.return_bool {
                if keep { 1.0 } else { 0.0 }
            } else if keep {
                value
            } else {
                continue;
            };
            let slot = match result_slot.get(&(s, o)) {
                Some(&slot) => slot,
                None => {
                    let labels = result_labels(b, &label_of(many, s), &label_of(one, o), include);
                    let slot = collector.slot(labels);
                    result_slot.insert((s, o), slot);
                    slot
                }
            };
            let key = if one_to_one {
                (g, usize::MAX)
            } else {
                (g, slot)
            };
            if !matched.insert(key) {
                return Err(QueryError::Execution(if one_to_one {
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".to_string()
                } else {
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .to_string()
                }));
            }
            collector.push(slot, step_index(i), value);
        }
        for g in touched.drain(..) {
            if let Some(entry) = one_at.get_mut(g) {
                *entry = None;
            }
        }
        matched.clear();
    }
    collector.finish()
}

fn label_of(series: &[StepSeries], i: u32) -> Labels {
    series
        .get(i as usize)
        .map(|s| s.labels.clone())
        .unwrap_or_default()
}

/// The labels Prometheus prints as a "match group".
fn match_group(b: &Binary, labels: &Labels) -> Labels {
    if b.on {
        labels.keep(&b.matching)
    } else {
        labels.remove(&b.matching, true)
    }
}

/// The result's labels: the "many" side's, without the metric name for arithmetic, restricted
/// by `on`/`ignoring` in one-to-one matching, plus the `group_x` labels copied from the "one"
/// side (removed when it lacks them).
fn result_labels(b: &Binary, many: &Labels, one: &Labels, include: &[String]) -> Labels {
    let mut labels = if !b.op.is_comparison() {
        many.without_name()
    } else {
        many.clone()
    };
    if matches!(b.card, Card::OneToOne) {
        labels = if b.on {
            labels.keep(&b.matching)
        } else {
            labels.remove(&b.matching, false)
        };
    }
    for name in include {
        labels = labels.with(name, one.get(name).unwrap_or(""));
    }
    if b.return_bool {
        labels = labels.without_name();
    }
    labels
}
