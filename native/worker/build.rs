//! Generates the wire types from `proto/` (the one source of truth). The
//! descriptor messages map onto `tandem_sdk::descriptor`, so `Describe`
//! returns the registry's kernel set as it is.

fn main() {
    let proto_root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let accelerator = format!("{proto_root}/tandem/v1/accelerator.proto");
    let health = format!("{proto_root}/grpc/health/v1/health.proto");
    for file in [&accelerator, &health, &format!("{proto_root}/tandem/v1/descriptor.proto")] {
        println!("cargo:rerun-if-changed={file}");
    }
    let mut config = prost_build::Config::new();
    for name in [
        "KernelSet",
        "KernelDescriptor",
        "StateKindDescriptor",
        "TensorSpec",
        "ParamSpec",
        "KernelFlags",
        "Dim",
        "DType",
        "ParamType",
        "Limit",
        "OutputSymbol",
    ] {
        config.extern_path(format!(".tandem.v1.{name}"), format!("::tandem_sdk::descriptor::pb::{name}"));
    }
    config
        .bytes(["."])
        .compile_protos(&[accelerator.as_str(), health.as_str()], &[proto_root])
        .expect("protoc must be installed (make setup installs protobuf-compiler)");
}
