//! What one series gathers in one time bucket, and its stored form.
//!
//! - An Istio series (one label set of `istio_requests_total` and the three histograms): the
//!   request count and, for duration, request size and response size, a sum and the counts
//!   per bucket of Istio's bounds (not cumulative; the last is above the last bound).
//! - A per-service series (service, operation, span kind, status): calls and a latency sketch.
//!
//! Cells add and subtract, so the same type holds a batch's delta, a bucket, and a series'
//! total since the oldest bucket kept.

use meshtrace_mesh::telemetry::{ISTIO_BUCKETS, RequestNumbers};

use super::sketch::Sketch;
use crate::codec::CorruptError;
use crate::codec::reader::{Reader, put_f64, put_varint};

/// Buckets per histogram: one per bound, and `+Inf`.
pub const BUCKETS: usize = ISTIO_BUCKETS.len() + 1;

/// Stored-form versions (the first byte of a value).
const ISTIO_V1: u8 = 1;
const SERVICE_V1: u8 = 1;

/// A histogram over Istio's bounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hist {
    pub sum: f64,
    pub buckets: [u64; BUCKETS],
}

impl Hist {
    fn observe(&mut self, value: f64) {
        self.sum += value;
        // Prometheus buckets are `le`: a value on a bound counts in that bound's bucket.
        let at = ISTIO_BUCKETS
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(ISTIO_BUCKETS.len());
        if let Some(bucket) = self.buckets.get_mut(at) {
            *bucket = bucket.saturating_add(1);
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(0u64, |n, b| n.saturating_add(*b))
    }

    pub fn add(&mut self, other: &Hist) {
        self.sum += other.sum;
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    pub fn subtract(&mut self, other: &Hist) {
        self.sum -= other.sum;
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine = mine.saturating_sub(*theirs);
        }
        if self.count() == 0 {
            // No rounding residue left behind by sums that were taken back.
            self.sum = 0.0;
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_f64(out, self.sum);
        let used = self.buckets.iter().filter(|b| **b > 0).count();
        put_varint(out, used as u64);
        for (i, count) in self.buckets.iter().enumerate() {
            if *count > 0 {
                put_varint(out, i as u64);
                put_varint(out, *count);
            }
        }
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Hist, CorruptError> {
        let mut hist = Hist::default();
        Hist::decode_into(reader, Some(&mut hist))?;
        Ok(hist)
    }

    /// Reads one stored histogram, into `hist` when given (else checked and passed over, so a
    /// reader that wants one histogram of a cell fails on exactly the cells `decode` fails on).
    fn decode_into(
        reader: &mut Reader<'_>,
        mut hist: Option<&mut Hist>,
    ) -> Result<(), CorruptError> {
        let sum = reader.f64()?;
        if let Some(hist) = hist.as_deref_mut() {
            hist.sum = sum;
        }
        let used = reader.varint()?;
        if used > BUCKETS as u64 {
            return Err(CorruptError("too many histogram buckets"));
        }
        for _ in 0..used {
            let at = usize::try_from(reader.varint()?).unwrap_or(usize::MAX);
            if at >= BUCKETS {
                return Err(CorruptError("a histogram bucket is out of range"));
            }
            let count = reader.varint()?;
            if let Some(bucket) = hist.as_deref_mut().and_then(|h| h.buckets.get_mut(at)) {
                *bucket = count;
            }
        }
        Ok(())
    }
}

/// The requests of one Istio label set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IstioCell {
    pub duration: Hist,
    pub request_bytes: Hist,
    pub response_bytes: Hist,
}

impl IstioCell {
    pub fn observe(&mut self, request: &RequestNumbers) {
        self.duration.observe(request.duration_ms);
        self.request_bytes.observe(request.request_bytes as f64);
        self.response_bytes.observe(request.response_bytes as f64);
    }

    /// `istio_requests_total`: every request is in the duration histogram.
    pub fn requests(&self) -> u64 {
        self.duration.count()
    }

    pub fn add(&mut self, other: &IstioCell) {
        self.duration.add(&other.duration);
        self.request_bytes.add(&other.request_bytes);
        self.response_bytes.add(&other.response_bytes);
    }

    pub fn subtract(&mut self, other: &IstioCell) {
        self.duration.subtract(&other.duration);
        self.request_bytes.subtract(&other.request_bytes);
        self.response_bytes.subtract(&other.response_bytes);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(ISTIO_V1);
        self.duration.encode(&mut out);
        self.request_bytes.encode(&mut out);
        self.response_bytes.encode(&mut out);
        out
    }

    /// Histogram `which` (0 duration, 1 request bytes, 2 response bytes) of a stored cell,
    /// without building the other two; fails where [`IstioCell::decode`] fails.
    pub fn decode_hist(value: &[u8], which: usize) -> Result<Hist, CorruptError> {
        let mut reader = Reader::new(value);
        if reader.byte()? != ISTIO_V1 {
            return Err(CorruptError("unknown Istio cell version"));
        }
        let mut hist = Hist::default();
        for at in 0..3 {
            Hist::decode_into(&mut reader, (at == which).then_some(&mut hist))?;
        }
        if !reader.is_empty() {
            return Err(CorruptError("trailing bytes after an Istio cell"));
        }
        Ok(hist)
    }

    /// Histogram `which` (as in [`IstioCell::decode_hist`]); the duration past 2.
    pub fn hist(&self, which: usize) -> &Hist {
        match which {
            1 => &self.request_bytes,
            2 => &self.response_bytes,
            _ => &self.duration,
        }
    }

    pub fn decode(value: &[u8]) -> Result<IstioCell, CorruptError> {
        let mut reader = Reader::new(value);
        if reader.byte()? != ISTIO_V1 {
            return Err(CorruptError("unknown Istio cell version"));
        }
        let cell = IstioCell {
            duration: Hist::decode(&mut reader)?,
            request_bytes: Hist::decode(&mut reader)?,
            response_bytes: Hist::decode(&mut reader)?,
        };
        if !reader.is_empty() {
            return Err(CorruptError("trailing bytes after an Istio cell"));
        }
        Ok(cell)
    }
}

/// The spans of one per-service key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceCell {
    pub calls: u64,
    /// Durations in µs.
    pub latency: Sketch,
}

impl ServiceCell {
    pub fn observe(&mut self, duration_us: u64) {
        self.calls = self.calls.saturating_add(1);
        self.latency.add(duration_us);
    }

    pub fn add(&mut self, other: &ServiceCell) {
        self.calls = self.calls.saturating_add(other.calls);
        self.latency.merge(&other.latency);
    }

    pub fn subtract(&mut self, other: &ServiceCell) {
        self.calls = self.calls.saturating_sub(other.calls);
        self.latency.subtract(&other.latency);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(SERVICE_V1);
        put_varint(&mut out, self.calls);
        self.latency.encode(&mut out);
        out
    }

    pub fn decode(value: &[u8]) -> Result<ServiceCell, CorruptError> {
        let mut reader = Reader::new(value);
        if reader.byte()? != SERVICE_V1 {
            return Err(CorruptError("unknown service cell version"));
        }
        let cell = ServiceCell {
            calls: reader.varint()?,
            latency: Sketch::decode(&mut reader)?,
        };
        if !reader.is_empty() {
            return Err(CorruptError("trailing bytes after a service cell"));
        }
        Ok(cell)
    }
}

/// A cell of either family.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Boxed: an Istio cell is ten times the size of a service cell.
    Istio(Box<IstioCell>),
    Service(ServiceCell),
}

impl Cell {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Cell::Istio(cell) => cell.encode(),
            Cell::Service(cell) => cell.encode(),
        }
    }

    pub fn add(&mut self, other: &Cell) {
        match (self, other) {
            (Cell::Istio(a), Cell::Istio(b)) => a.add(b),
            (Cell::Service(a), Cell::Service(b)) => a.add(b),
            _ => {}
        }
    }

    pub fn subtract(&mut self, other: &Cell) {
        match (self, other) {
            (Cell::Istio(a), Cell::Istio(b)) => a.subtract(b),
            (Cell::Service(a), Cell::Service(b)) => a.subtract(b),
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_in_le_buckets_and_cells_round_trip() {
        let mut hist = Hist::default();
        for v in [0.0, 0.5, 0.6, 1.0, 7.0, 3_600_000.0, 3_600_001.0] {
            hist.observe(v);
        }
        // 0 and 0.5 in le=0.5; 0.6 and 1 in le=1; 7 in le=10; the bound itself, then +Inf.
        assert_eq!(hist.buckets[0], 2);
        assert_eq!(hist.buckets[1], 2);
        assert_eq!(hist.buckets[3], 1);
        assert_eq!(hist.buckets[18], 1);
        assert_eq!(hist.buckets[19], 1);
        let cell = IstioCell {
            duration: hist.clone(),
            request_bytes: Hist::default(),
            response_bytes: hist,
        };
        assert_eq!(IstioCell::decode(&cell.encode()).unwrap(), cell);
        assert!(IstioCell::decode(&[1, 0, 0]).is_err());
        assert!(IstioCell::decode(&[]).is_err());

        let mut service = ServiceCell::default();
        service.observe(1500);
        service.observe(0);
        assert_eq!(ServiceCell::decode(&service.encode()).unwrap(), service);
        let mut twice = service.clone();
        twice.add(&service);
        twice.subtract(&service);
        assert_eq!(twice, service);
    }
}
