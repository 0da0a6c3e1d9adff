//! Shared code of the rvs binaries (being written).
