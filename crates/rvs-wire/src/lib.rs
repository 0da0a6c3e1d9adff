//! Packet views and builders. (Being written.)
#![forbid(unsafe_code)]
