//! Where the graph page puts each node: a layered drawing from left to right (callers in
//! earlier columns than the services they call), with each box (a namespace, an app inside it)
//! kept to a horizontal band of its own so that boxes never overlap.
//!
//! The steps are the usual ones of a layered drawing, kept simple:
//! 1. cycles are broken by reversing the edges a depth-first walk finds going back;
//! 2. each node's column is the longest path to it from a node nobody calls;
//! 3. inside each band and column, nodes are ordered by the mean row of their neighbours
//!    (barycenters), sweeping left to right then right to left a few times, which removes most
//!    crossings of a mesh graph;
//! 4. a band is as tall as its fullest column.
//!
//! Everything is linear or `n log n` in the nodes and edges; the input is bounded by the
//! graph's own caps.

use std::collections::BTreeMap;

/// Horizontal distance between columns, and vertical between rows (px).
pub const COLUMN: f64 = 220.0;
pub const ROW: f64 = 72.0;
/// Space around a band's rows, per level of nesting (a namespace box around app boxes).
pub const PAD: f64 = 18.0;
const MARGIN: f64 = 40.0;
/// Between two bands, so that neighbouring boxes do not touch.
const GAP: f64 = 8.0;
const SWEEPS: usize = 4;

/// A node to place: the boxes it sits in, outermost first (e.g. `[namespace, app]`; empty for
/// none).
pub struct Item {
    pub boxes: Vec<String>,
}

/// A box drawn around the nodes of one band path prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxArea {
    pub path: Vec<String>,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

#[derive(Debug)]
pub struct Layout {
    /// Each item's centre.
    pub points: Vec<(f64, f64)>,
    pub boxes: Vec<BoxArea>,
    pub width: f64,
    pub height: f64,
}

/// Places `items` for `edges` (pairs of item indexes; out-of-range pairs and self-loops are
/// ignored).
pub fn layout(items: &[Item], edges: &[(usize, usize)]) -> Layout {
    let n = items.len();
    let edges: Vec<(usize, usize)> = edges
        .iter()
        .copied()
        .filter(|&(a, b)| a < n && b < n && a != b)
        .collect();
    let forward = acyclic(n, &edges);
    let columns = columns(n, &forward);
    let bands = bands(items);
    let rows = order(n, &forward, &columns, &bands);
    place(items, &columns, &bands, &rows)
}

fn adjacency(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); n];
    for &(a, b) in edges {
        if let Some(list) = out.get_mut(a) {
            list.push(b);
        }
    }
    out
}

/// The edges with those that close a cycle reversed (an iterative depth-first walk: an edge to
/// a node still on the walk's stack goes back).
fn acyclic(n: usize, edges: &[(usize, usize)]) -> Vec<(usize, usize)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let out = adjacency(n, edges);
    let mut mark = vec![Mark::New; n];
    let mut back = std::collections::HashSet::new();
    for start in 0..n {
        if mark.get(start) != Some(&Mark::New) {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        if let Some(m) = mark.get_mut(start) {
            *m = Mark::Open;
        }
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            match out.get(node).and_then(|list| list.get(*next)) {
                Some(&to) => {
                    *next = next.saturating_add(1);
                    match mark.get(to) {
                        Some(Mark::New) => {
                            if let Some(m) = mark.get_mut(to) {
                                *m = Mark::Open;
                            }
                            stack.push((to, 0));
                        }
                        Some(Mark::Open) => {
                            back.insert((node, to));
                        }
                        _ => {}
                    }
                }
                None => {
                    if let Some(m) = mark.get_mut(node) {
                        *m = Mark::Done;
                    }
                    stack.pop();
                }
            }
        }
    }
    edges
        .iter()
        .map(|&(a, b)| {
            if back.contains(&(a, b)) {
                (b, a)
            } else {
                (a, b)
            }
        })
        .collect()
}

/// Each node's column: the longest path to it in the acyclic edges (Kahn's order).
fn columns(n: usize, forward: &[(usize, usize)]) -> Vec<usize> {
    let out = adjacency(n, forward);
    let mut incoming = vec![0usize; n];
    for &(_, b) in forward {
        if let Some(count) = incoming.get_mut(b) {
            *count = count.saturating_add(1);
        }
    }
    let mut column = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&v| incoming.get(v) == Some(&0)).collect();
    while let Some(v) = ready.pop() {
        let next = column.get(v).copied().unwrap_or(0).saturating_add(1);
        for &w in out.get(v).map(Vec::as_slice).unwrap_or_default() {
            if let Some(c) = column.get_mut(w) {
                *c = (*c).max(next);
            }
            if let Some(count) = incoming.get_mut(w) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    ready.push(w);
                }
            }
        }
    }
    column
}

/// The bands, sorted by box path, and each item's band.
struct Bands {
    paths: Vec<Vec<String>>,
    of: Vec<usize>,
}

fn bands(items: &[Item]) -> Bands {
    let mut index: BTreeMap<&[String], usize> = BTreeMap::new();
    for item in items {
        index.insert(item.boxes.as_slice(), 0);
    }
    for (i, slot) in index.values_mut().enumerate() {
        *slot = i;
    }
    Bands {
        paths: index.keys().map(|p| p.to_vec()).collect(),
        of: items
            .iter()
            .map(|item| index.get(item.boxes.as_slice()).copied().unwrap_or(0))
            .collect(),
    }
}

/// Each node's row inside its band and column, by barycenter sweeps.
fn order(n: usize, forward: &[(usize, usize)], columns: &[usize], bands: &Bands) -> Vec<usize> {
    let width = columns
        .iter()
        .copied()
        .max()
        .map_or(0, |c| c.saturating_add(1));
    // The cells: (band, column) → nodes in order, first by input order.
    let mut cells: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for v in 0..n {
        let key = (
            bands.of.get(v).copied().unwrap_or(0),
            columns.get(v).copied().unwrap_or(0),
        );
        cells.entry(key).or_default().push(v);
    }
    let preds = adjacency(n, &forward.iter().map(|&(a, b)| (b, a)).collect::<Vec<_>>());
    let succs = adjacency(n, forward);
    let mut row = vec![0usize; n];
    let number = |cells: &BTreeMap<(usize, usize), Vec<usize>>, row: &mut Vec<usize>| {
        // A global row per node: bands stacked in order, each as tall as its fullest cell, so
        // that barycenters compare across bands.
        let mut band_start = 0usize;
        let mut current = None;
        let mut tallest = 0usize;
        for (&(band, _), nodes) in cells {
            if current != Some(band) {
                band_start = band_start.saturating_add(tallest);
                tallest = 0;
                current = Some(band);
            }
            tallest = tallest.max(nodes.len());
            for (i, &v) in nodes.iter().enumerate() {
                if let Some(r) = row.get_mut(v) {
                    *r = band_start.saturating_add(i);
                }
            }
        }
    };
    number(&cells, &mut row);
    for sweep in 0..SWEEPS {
        let rightwards = sweep % 2 == 0;
        let neighbours = if rightwards { &preds } else { &succs };
        let column_order: Vec<usize> = if rightwards {
            (0..width).collect()
        } else {
            (0..width).rev().collect()
        };
        for column in column_order {
            for ((_, c), nodes) in &mut cells {
                if *c != column {
                    continue;
                }
                let key = |v: usize| -> f64 {
                    let list = neighbours.get(v).map(Vec::as_slice).unwrap_or_default();
                    if list.is_empty() {
                        return row.get(v).copied().unwrap_or(0) as f64;
                    }
                    let sum: f64 = list
                        .iter()
                        .map(|&u| row.get(u).copied().unwrap_or(0) as f64)
                        .sum();
                    sum / list.len() as f64
                };
                let mut keyed: Vec<(f64, usize)> = nodes.iter().map(|&v| (key(v), v)).collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                *nodes = keyed.into_iter().map(|(_, v)| v).collect();
            }
            number(&cells, &mut row);
        }
    }
    // Back to rows inside each cell.
    let mut local = vec![0usize; n];
    for nodes in cells.values() {
        for (i, &v) in nodes.iter().enumerate() {
            if let Some(r) = local.get_mut(v) {
                *r = i;
            }
        }
    }
    local
}

/// Coordinates: bands stacked top to bottom, each as tall as its fullest column, padded by
/// one `PAD` per box level around it; boxes span their members' columns.
fn place(items: &[Item], columns: &[usize], bands: &Bands, rows: &[usize]) -> Layout {
    let band_count = bands.paths.len();
    let mut tallest = vec![1usize; band_count];
    for (v, &band) in bands.of.iter().enumerate() {
        if let Some(t) = tallest.get_mut(band) {
            *t = (*t).max(rows.get(v).copied().unwrap_or(0).saturating_add(1));
        }
    }
    let depth = |band: usize| bands.paths.get(band).map_or(0, Vec::len) as f64;
    // Each band's top; a band that opens a box (its first level differs from the band
    // before) gets the box's padding above.
    let mut tops = Vec::with_capacity(band_count);
    let mut y = MARGIN;
    for band in 0..band_count {
        let path = bands.paths.get(band).map(Vec::as_slice).unwrap_or_default();
        let previous = band
            .checked_sub(1)
            .and_then(|b| bands.paths.get(b))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let shared = shared_prefix(path, previous);
        let opened = path.len().saturating_sub(shared) as f64;
        let closed = previous.len().saturating_sub(shared) as f64;
        y += PAD * (opened + closed);
        if band > 0 {
            y += GAP;
        }
        tops.push(y);
        y += tallest.get(band).copied().unwrap_or(1) as f64 * ROW;
    }
    y += PAD * bands.paths.last().map_or(0, Vec::len) as f64 + MARGIN;
    let height = y;
    let points: Vec<(f64, f64)> = (0..items.len())
        .map(|v| {
            let band = bands.of.get(v).copied().unwrap_or(0);
            let column = columns.get(v).copied().unwrap_or(0) as f64;
            let row = rows.get(v).copied().unwrap_or(0) as f64;
            let top = tops.get(band).copied().unwrap_or(MARGIN);
            (
                MARGIN + PAD * depth(band) + COLUMN * (column + 0.5),
                top + ROW * (row + 0.5),
            )
        })
        .collect();
    let width_columns = columns
        .iter()
        .copied()
        .max()
        .map_or(1, |c| c.saturating_add(1));
    let width = 2.0 * MARGIN + COLUMN * width_columns as f64 + 2.0 * PAD * max_depth(bands);
    Layout {
        boxes: boxes(bands, &tops, &tallest, columns),
        points,
        width,
        height,
    }
}

fn max_depth(bands: &Bands) -> f64 {
    bands.paths.iter().map(Vec::len).max().unwrap_or(0) as f64
}

fn shared_prefix(a: &[String], b: &[String]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// One box per distinct path prefix: from the top of its first band to the bottom of its
/// last, across the columns its members use, inset by its level.
fn boxes(bands: &Bands, tops: &[f64], tallest: &[usize], columns: &[usize]) -> Vec<BoxArea> {
    // Prefix → (first band, last band).
    let mut spans: BTreeMap<Vec<String>, (usize, usize)> = BTreeMap::new();
    for (band, path) in bands.paths.iter().enumerate() {
        for level in 1..=path.len() {
            let prefix = path
                .get(..level)
                .map(<[String]>::to_vec)
                .unwrap_or_default();
            let span = spans.entry(prefix).or_insert((band, band));
            span.1 = band;
        }
    }
    // Columns used per band.
    let mut used: Vec<Option<(usize, usize)>> = vec![None; bands.paths.len()];
    for (v, &band) in bands.of.iter().enumerate() {
        let column = columns.get(v).copied().unwrap_or(0);
        if let Some(slot) = used.get_mut(band) {
            *slot = Some(match *slot {
                Some((lo, hi)) => (lo.min(column), hi.max(column)),
                None => (column, column),
            });
        }
    }
    let deepest = max_depth(bands);
    spans
        .into_iter()
        .filter_map(|(path, (first, last))| {
            let (lo, hi) = (first..=last)
                .filter_map(|b| used.get(b).copied().flatten())
                .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))?;
            let level = path.len() as f64;
            // The first band opened every level from this box's down to its own, one PAD
            // each (see `place`); the last band closes as many.
            let levels_below =
                |band: usize| bands.paths.get(band).map_or(0, Vec::len) as f64 - level;
            let top = tops.get(first).copied()? - PAD * (1.0 + levels_below(first));
            let bottom = tops.get(last).copied()?
                + tallest.get(last).copied().unwrap_or(1) as f64 * ROW
                + PAD * (1.0 + levels_below(last));
            let left = MARGIN + PAD * (level - 1.0) + COLUMN * lo as f64;
            let right = MARGIN + PAD * (2.0 * deepest - level + 1.0) + COLUMN * (hi as f64 + 1.0);
            Some(BoxArea {
                path,
                x: left,
                y: top,
                width: right - left,
                height: bottom - top,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn items(boxes: &[&[&str]]) -> Vec<Item> {
        boxes
            .iter()
            .map(|b| Item {
                boxes: b.iter().map(std::string::ToString::to_string).collect(),
            })
            .collect()
    }

    #[test]
    fn callers_stand_left_of_what_they_call_even_around_a_cycle() {
        // gateway → productpage → reviews → ratings, and ratings → reviews closes a cycle.
        let nodes = items(&[&[], &[], &[], &[]]);
        let edges = [(0, 1), (1, 2), (2, 3), (3, 2)];
        let layout = layout(&nodes, &edges);
        let x: Vec<f64> = layout.points.iter().map(|p| p.0).collect();
        assert!(x.windows(2).all(|w| w[0] < w[1]), "{x:?}");
        // One column each: the same steps between them.
        assert!((x[1] - x[0] - COLUMN).abs() < 1e-9 && (x[3] - x[2] - COLUMN).abs() < 1e-9);
    }

    #[test]
    fn barycenters_uncross_two_parallel_chains() {
        // a → d and b → c, with c listed before d: the sweep puts d beside a.
        let nodes = items(&[&[], &[], &[], &[]]);
        let layout = layout(&nodes, &[(0, 3), (1, 2)]);
        let (a, b, c, d) = (
            layout.points[0],
            layout.points[1],
            layout.points[2],
            layout.points[3],
        );
        assert_eq!(a.1 < b.1, d.1 < c.1, "{:?}", layout.points);
    }

    #[test]
    fn boxes_of_different_namespaces_never_overlap_and_hold_their_nodes() {
        let nodes = items(&[
            &["bookinfo", "reviews"],
            &["bookinfo", "reviews"],
            &["bookinfo", "ratings"],
            &["travel", "cars"],
            &["travel"],
        ]);
        let layout = layout(&nodes, &[(0, 2), (1, 2), (3, 0), (4, 3)]);
        let find = |path: &[&str]| {
            layout
                .boxes
                .iter()
                .find(|b| {
                    b.path
                        == path
                            .iter()
                            .map(std::string::ToString::to_string)
                            .collect::<Vec<_>>()
                })
                .unwrap()
                .clone()
        };
        let (bookinfo, travel) = (find(&["bookinfo"]), find(&["travel"]));
        assert!(
            bookinfo.y + bookinfo.height <= travel.y || travel.y + travel.height <= bookinfo.y,
            "{bookinfo:?} {travel:?}"
        );
        let inside = |b: &BoxArea, p: (f64, f64)| {
            b.x < p.0 && p.0 < b.x + b.width && b.y < p.1 && p.1 < b.y + b.height
        };
        let reviews = find(&["bookinfo", "reviews"]);
        assert!(inside(&reviews, layout.points[0]) && inside(&reviews, layout.points[1]));
        assert!(!inside(&reviews, layout.points[2]));
        for v in 0..3 {
            assert!(inside(&bookinfo, layout.points[v]), "{v}");
        }
        assert!(inside(&travel, layout.points[3]) && inside(&travel, layout.points[4]));
        for b in &layout.boxes {
            assert!(b.x >= 0.0 && b.x + b.width <= layout.width, "{b:?}");
            assert!(b.y >= 0.0 && b.y + b.height <= layout.height, "{b:?}");
        }
    }

    #[test]
    fn no_two_nodes_share_a_place() {
        let boxes: Vec<Vec<String>> = (0..60).map(|i| vec![format!("ns{}", i % 4)]).collect();
        let nodes: Vec<Item> = boxes.into_iter().map(|boxes| Item { boxes }).collect();
        let edges: Vec<(usize, usize)> =
            (0..200).map(|i| (i * 7 % 60, (i * 13 + 5) % 60)).collect();
        let layout = layout(&nodes, &edges);
        let mut seen = std::collections::HashSet::new();
        for p in &layout.points {
            assert!(seen.insert((p.0 as i64, p.1 as i64)), "{p:?}");
        }
    }
}
