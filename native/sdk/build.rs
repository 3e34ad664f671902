//! Generates the descriptor and repository manifest types from `proto/`
//! (the one source of truth).

fn main() {
    let proto_root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let descriptor = format!("{proto_root}/tandem/v1/descriptor.proto");
    let repository = format!("{proto_root}/tandem/v1/repository.proto");
    println!("cargo:rerun-if-changed={descriptor}");
    println!("cargo:rerun-if-changed={repository}");
    prost_build::Config::new()
        .compile_protos(&[descriptor.as_str(), repository.as_str()], &[proto_root])
        .expect("protoc must be installed (make setup installs protobuf-compiler)");
}
