//! Compiles every .proto with protox (pure Rust, no system protoc) and keeps the
//! descriptor set for gRPC server reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "hotline/identity/v1/identity.proto",
    "hotline/events/v1/identity.proto",
    "hotline/events/v1/activity.proto",
    "hotline/routing/v1/routing.proto",
    "hotline/events/v1/routing.proto",
    "hotline/ticketing/v1/ticketing.proto",
    "hotline/events/v1/ticketing.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out.join("hotline_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
