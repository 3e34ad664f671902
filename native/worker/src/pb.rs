//! Wire types generated from `proto/` by build.rs. Descriptor messages are
//! `tandem_sdk::descriptor::pb`'s own types.

/// `tandem.v1`: the Accelerator service's messages.
#[allow(clippy::all)]
pub mod accelerator {
    include!(concat!(env!("OUT_DIR"), "/tandem.v1.rs"));
}

/// `grpc.health.v1`: the standard health checking protocol.
#[allow(clippy::all)]
pub mod health {
    include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.rs"));
}
