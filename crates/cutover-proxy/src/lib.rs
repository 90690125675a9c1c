//! The data plane: an L7 load balancer with weighted target groups, health checks and draining.

pub mod config;
