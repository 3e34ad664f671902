//! Protobuf decoding of every worker request and its conversion into a call.
#![no_main]
tandem_fuzz::fuzz_target!(tandem_worker::fuzzing::requests);
