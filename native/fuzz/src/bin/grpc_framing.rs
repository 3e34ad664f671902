//! The worker's length-prefixed gRPC message framing and request reader.
#![no_main]
tandem_fuzz::fuzz_target!(tandem_worker::fuzzing::grpc_framing);
