//! Generates the Jaeger api_v2 and api_v3 messages and tonic services from this crate's .proto
//! files, with protox (a protobuf compiler in Rust: nothing to install on the machine).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "jaeger/api_v2/query.proto",
        "jaeger/api_v3/query_service.proto",
    ];
    let descriptors = protox::compile(files, ["protos"])?;
    tonic_prost_build::configure()
        // OTLP types come from the opentelemetry-proto crate, so both sides share them.
        .extern_path(
            ".opentelemetry.proto.trace.v1",
            "::opentelemetry_proto::tonic::trace::v1",
        )
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=protos");
    Ok(())
}
