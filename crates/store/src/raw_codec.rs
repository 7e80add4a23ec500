//! A gRPC codec of which one side is a message's encoded bytes, passed through untouched, and the
//! other an OTLP export reply. The store serves OTLP/gRPC with it the server's way round
//! ([`ServerCodec`]): it takes the request's bytes and decodes them itself, so that an
//! undecodable message is answered `InvalidArgument` with what was wrong (tonic's own codec
//! would answer `Internal`). Clients use it the other way round ([`ClientCodec`]): to send bytes
//! encoded beforehand (load that measures the server, not the client) or bytes the store must
//! refuse.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::error::ErrorCode;

/// Encodes `E`s and decodes `D`s; one of them is [`Bytes`], the message as it is on the wire.
pub struct RawCodec<E, D>(PhantomData<fn() -> (E, D)>);

/// Takes export requests as bytes, sends replies.
pub type ServerCodec = RawCodec<ExportTraceServiceResponse, Bytes>;
/// Sends export requests as bytes, takes replies.
pub type ClientCodec = RawCodec<Bytes, ExportTraceServiceResponse>;

/// What goes over the wire through a [`RawCodec`].
pub trait Wire: Sized + Send + 'static {
    fn put(self, dst: &mut EncodeBuf<'_>) -> Result<(), Status>;
    fn take(src: &mut DecodeBuf<'_>) -> Result<Self, Status>;
}

/// The bytes as they are.
impl Wire for Bytes {
    fn put(self, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(self);
        Ok(())
    }

    fn take(src: &mut DecodeBuf<'_>) -> Result<Self, Status> {
        Ok(src.copy_to_bytes(src.remaining()))
    }
}

impl Wire for ExportTraceServiceResponse {
    fn put(self, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        self.encode(dst)
            .map_err(|e| ErrorCode::Internal.status(e.to_string()))
    }

    fn take(src: &mut DecodeBuf<'_>) -> Result<Self, Status> {
        Self::decode(src).map_err(|e| ErrorCode::Internal.status(e.to_string()))
    }
}

impl<E, D> Default for RawCodec<E, D> {
    fn default() -> Self {
        RawCodec(PhantomData)
    }
}

impl<E, D> Clone for RawCodec<E, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E, D> Copy for RawCodec<E, D> {}

impl<E: Wire, D: Wire> Codec for RawCodec<E, D> {
    type Encode = E;
    type Decode = D;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl<E: Wire, D: Wire> Encoder for RawCodec<E, D> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.put(dst)
    }
}

impl<E: Wire, D: Wire> Decoder for RawCodec<E, D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        D::take(src).map(Some)
    }
}
