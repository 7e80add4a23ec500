//! Label sets, samples and label matchers with Prometheus's semantics: a missing label equals the
//! empty string, and regular expressions are anchored at both ends.

use std::sync::Arc;

use regex::Regex;

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label: its name and value, shared between the label sets that hold it.
type Pair = (Arc<str>, Arc<str>);

/// A series' labels, sorted by name, names unique, no empty values (as Prometheus keeps them).
///
/// The set and its strings are shared: cloning a label set (a source handing its series to the
/// evaluator, the evaluator keeping an input's labels in its output) copies no string, and a
/// set derived from another (`keep`, `remove`, `without_name`) shares the strings it keeps.
/// Equality, order and hash are those of the pairs, as before the sharing.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Arc<[Pair]>);

impl Labels {
    /// Labels from pairs in any order; a later pair wins over an earlier one of the same name,
    /// and pairs with an empty value are dropped.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Labels {
        Labels::from_shared(
            pairs
                .into_iter()
                .map(|(name, value)| (Arc::from(name), Arc::from(value))),
        )
    }

    /// [`Labels::new`] from strings already shared: a source that holds its label values as
    /// `Arc<str>` builds a set without copying a string.
    pub fn from_shared(pairs: impl IntoIterator<Item = (Arc<str>, Arc<str>)>) -> Labels {
        let mut pairs: Vec<Pair> = pairs.into_iter().collect();
        // Already sorted with unique names (a source that builds them in order): kept as is.
        if pairs.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)) {
            pairs.retain(|(_, value)| !value.is_empty());
            return Labels(pairs.into());
        }
        // A stable sort keeps equal names in input order, so keeping the last one of each run
        // makes the later pair win.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut labels: Vec<Pair> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            match labels.last_mut() {
                Some(last) if last.0 == name => last.1 = value,
                _ => labels.push((name, value)),
            }
        }
        labels.retain(|(_, value)| !value.is_empty());
        Labels(labels.into())
    }

    /// The value of `name`, if the series has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
            .and_then(|at| self.0.get(at))
            .map(|(_, value)| value.as_ref())
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// These labels without the metric name (the same shared set when there is none).
    pub fn without_name(&self) -> Labels {
        if self.metric_name().is_none() {
            return self.clone();
        }
        self.filtered(|name| name != METRIC_NAME)
    }

    /// Only the labels named in `names`.
    pub fn keep(&self, names: &[String]) -> Labels {
        self.filtered(|name| names.iter().any(|n| n == name))
    }

    /// These labels without those named in `names` (and without the metric name when
    /// `drop_name`).
    pub fn remove(&self, names: &[String], drop_name: bool) -> Labels {
        self.filtered(|name| !(names.iter().any(|n| n == name) || drop_name && name == METRIC_NAME))
    }

    /// An aggregation's group of these labels: only those it names (`by`), or all but those and
    /// the metric name (`without`).
    pub(crate) fn grouping(&self, grouping: &GroupNames<'_>) -> Labels {
        self.filtered(|name| grouping.keeps(name))
    }

    /// The pairs of [`Labels::grouping`], borrowed: a key to find a series' group by, so that a
    /// group's label set is built once rather than once per series in it.
    pub(crate) fn grouping_key<'a>(&'a self, grouping: &GroupNames<'_>) -> Vec<(&'a str, &'a str)> {
        self.iter()
            .filter(|(name, _)| grouping.keeps(name))
            .collect()
    }

    /// These labels with `name` set to `value`, or removed when `value` is empty.
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let mut pairs = self.0.to_vec();
        pairs.retain(|(n, _)| n.as_ref() != name);
        if !value.is_empty() {
            let at = pairs.partition_point(|(n, _)| n.as_ref() < name);
            pairs.insert(at, (Arc::from(name), Arc::from(value)));
        }
        Labels(pairs.into())
    }

    fn filtered(&self, keep: impl Fn(&str) -> bool) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(name, _)| keep(name))
                .cloned()
                .collect(),
        )
    }

    /// The labels as Prometheus prints them in messages: `{__name__="up", job="x"}`.
    pub fn prom_string(&self) -> String {
        let mut out = String::from("{");
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(name);
            out.push('=');
            out.push_str(&format!("{value:?}"));
        }
        out.push('}');
        out
    }

    /// Whether every matcher accepts these labels.
    pub fn matches(&self, matchers: &[Matcher]) -> bool {
        matchers
            .iter()
            .all(|m| m.matches(self.get(&m.name).unwrap_or("")))
    }
}

/// An aggregation's `by` or `without` names, sorted and without repeats: a label is looked up
/// by binary search rather than compared with every name.
pub(crate) struct GroupNames<'a> {
    names: Vec<&'a str>,
    without: bool,
}

impl<'a> GroupNames<'a> {
    pub fn new(names: &'a [String], without: bool) -> GroupNames<'a> {
        let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        GroupNames { names, without }
    }

    /// Whether the aggregation keeps the label `name` in a series' group.
    pub fn keeps(&self, name: &str) -> bool {
        let named = self.names.binary_search(&name).is_ok();
        if self.without {
            !(named || name == METRIC_NAME)
        } else {
            named
        }
    }
}

/// One sample: milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A series with its samples in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// How a [`Matcher`] compares a label's value.
#[derive(Debug, Clone)]
pub enum MatchOp {
    Equal(String),
    NotEqual(String),
    /// The regular expression, compiled anchored (`^(?:…)$`) as Prometheus does.
    Regex(Regex),
    NotRegex(Regex),
}

/// A label matcher of a selector such as `{destination_service_namespace=~"bookinfo|default"}`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
}

impl Matcher {
    pub fn equal(name: &str, value: &str) -> Matcher {
        Matcher {
            name: name.to_string(),
            op: MatchOp::Equal(value.to_string()),
        }
    }

    /// A regex matcher; `pattern` is anchored at both ends as in PromQL.
    pub fn regex(name: &str, pattern: &str, negate: bool) -> Result<Matcher, regex::Error> {
        let anchored = Regex::new(&format!("^(?:{pattern})$"))?;
        Ok(Matcher {
            name: name.to_string(),
            op: if negate {
                MatchOp::NotRegex(anchored)
            } else {
                MatchOp::Regex(anchored)
            },
        })
    }

    /// Whether `value` (the empty string for a missing label) satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match &self.op {
            MatchOp::Equal(v) => value == v,
            MatchOp::NotEqual(v) => value != v,
            MatchOp::Regex(re) => re.is_match(value),
            MatchOp::NotRegex(re) => !re.is_match(value),
        }
    }

    /// The exact value this matcher requires, when it requires one (lets a source use an index).
    pub fn required_value(&self) -> Option<&str> {
        match &self.op {
            MatchOp::Equal(v) if !v.is_empty() => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A label set from literal pairs (the other modules' tests use it too).
    pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }

    #[test]
    fn grouping_keeps_by_labels_or_drops_without_labels_and_the_name() {
        let series = labels(&[
            ("__name__", "req"),
            ("app", "a"),
            ("code", "200"),
            ("ns", "x"),
        ]);
        let names = vec!["code".to_string(), "missing".to_string()];
        assert_eq!(
            series.grouping(&GroupNames::new(&names, false)),
            labels(&[("code", "200")])
        );
        assert_eq!(
            series.grouping_key(&GroupNames::new(&names, false)),
            vec![("code", "200")]
        );
        assert_eq!(
            series.grouping(&GroupNames::new(&names, true)),
            labels(&[("app", "a"), ("ns", "x")])
        );
        assert_eq!(
            series.grouping_key(&GroupNames::new(&names, true)),
            vec![("app", "a"), ("ns", "x")]
        );
        // Names in any order and repeated, some after every label, some before.
        let names: Vec<String> = ["zz", "ns", "code", "a", "code", "__name__"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            series.grouping_key(&GroupNames::new(&names, false)),
            vec![("__name__", "req"), ("code", "200"), ("ns", "x")]
        );
        assert_eq!(
            series.grouping_key(&GroupNames::new(&names, true)),
            vec![("app", "a")]
        );
    }

    #[test]
    fn shared_label_sets_compare_by_content() {
        let a = labels(&[("b", "2"), ("a", "1"), ("c", "")]);
        let b = a.clone().with("c", "3").with("c", "");
        assert_eq!(a, b);
        assert!(labels(&[("a", "1")]) < labels(&[("a", "2")]));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![("a", "1"), ("b", "2")]);
        let shared = |n: &str, v: &str| (Arc::from(n), Arc::from(v));
        let c = Labels::from_shared([
            shared("c", "x"),
            shared("b", "2"),
            shared("a", "1"),
            shared("c", ""),
        ]);
        assert_eq!(c, a, "the later `c` (empty) wins and is dropped");
        let sorted = Labels::from_shared([shared("a", "1"), shared("b", "2"), shared("c", "")]);
        assert_eq!(
            sorted, a,
            "pairs in order: the empty value is still dropped"
        );
    }
}
