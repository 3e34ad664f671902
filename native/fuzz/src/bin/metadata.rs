//! `grpc-timeout`, `traceparent` and `grpc-message` parsing in the worker.
#![no_main]
tandem_fuzz::fuzz_target!(tandem_worker::fuzzing::metadata);
