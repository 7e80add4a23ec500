//! Trace and span identifiers: 128-bit and 64-bit, written as lowercase hex.

use std::fmt;

/// A 128-bit trace ID. Jaeger writes it as 16 hex digits when the high half is zero, else 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TraceId(pub u128);

/// A 64-bit span ID, always written as 16 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SpanId(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} `{found}` is not 1 to {max} hexadecimal digits")]
    BadHex {
        what: &'static str,
        found: String,
        max: usize,
    },
    #[error("{what} has {found} bytes; expected {expected}")]
    BadLength {
        what: &'static str,
        found: usize,
        expected: &'static str,
    },
}

impl TraceId {
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn high(self) -> u64 {
        (self.0 >> 64) as u64
    }

    pub fn low(self) -> u64 {
        self.0 as u64
    }

    /// Parses 1 to 32 hex digits (shorter IDs are left-padded with zeros, as Jaeger does).
    pub fn from_hex(hex: &str) -> Result<Self, IdError> {
        parse_hex(hex, 32, "trace ID").map(TraceId)
    }

    /// Reads 16 big-endian bytes (OTLP, Jaeger api_v2), or 8 for a 64-bit ID.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        if let Ok(wide) = <[u8; 16]>::try_from(bytes) {
            return Ok(TraceId(u128::from_be_bytes(wide)));
        }
        if let Ok(narrow) = <[u8; 8]>::try_from(bytes) {
            return Ok(TraceId(u128::from(u64::from_be_bytes(narrow))));
        }
        Err(IdError::BadLength {
            what: "trace ID",
            found: bytes.len(),
            expected: "16 (or 8)",
        })
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// Always 32 hex digits (OTLP, Jaeger api_v3, Tempo).
    pub fn to_hex32(self) -> String {
        format!("{:032x}", self.0)
    }
}

impl fmt::Display for TraceId {
    /// Jaeger's form: 16 hex digits when the high half is zero, else 32.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.high() == 0 {
            write!(f, "{:016x}", self.low())
        } else {
            write!(f, "{:032x}", self.0)
        }
    }
}

impl SpanId {
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn from_hex(hex: &str) -> Result<Self, IdError> {
        parse_hex(hex, 16, "span ID").map(|v| SpanId(v as u64))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        let array: [u8; 8] = bytes.try_into().map_err(|_| IdError::BadLength {
            what: "span ID",
            found: bytes.len(),
            expected: "8",
        })?;
        Ok(SpanId(u64::from_be_bytes(array)))
    }

    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

fn parse_hex(hex: &str, max: usize, what: &'static str) -> Result<u128, IdError> {
    let bad = || IdError::BadHex {
        what,
        found: hex.chars().take(40).collect(),
        max,
    };
    if hex.is_empty() || hex.len() > max || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u128::from_str_radix(hex, 16).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_print_like_jaeger() {
        assert_eq!(TraceId(0x1234).to_string(), "0000000000001234");
        let long = TraceId::from_hex("83a9efd15c1c98a977e0711cc93ee28b").unwrap();
        assert_eq!(long.to_string(), "83a9efd15c1c98a977e0711cc93ee28b");
        assert_eq!(
            TraceId(0x1234).to_hex32(),
            "00000000000000000000000000001234"
        );
    }

    #[test]
    fn ids_round_trip_through_bytes() {
        let id = TraceId::from_hex("83a9efd15c1c98a977e0711cc93ee28b").unwrap();
        assert_eq!(TraceId::from_bytes(&id.to_bytes()).unwrap(), id);
        assert_eq!(
            TraceId::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 7]).unwrap(),
            TraceId(7)
        );
        let span = SpanId::from_hex("e127af99e3b3e074").unwrap();
        assert_eq!(SpanId::from_bytes(&span.to_bytes()).unwrap(), span);
    }

    #[test]
    fn bad_ids_say_what_is_wrong() {
        assert_eq!(
            TraceId::from_hex("xyz").unwrap_err().to_string(),
            "trace ID `xyz` is not 1 to 32 hexadecimal digits"
        );
        assert!(TraceId::from_hex(&"a".repeat(33)).is_err());
        assert_eq!(
            SpanId::from_bytes(&[1, 2]).unwrap_err().to_string(),
            "span ID has 2 bytes; expected 8"
        );
    }
}
