//! OS access for rvs (being written).
