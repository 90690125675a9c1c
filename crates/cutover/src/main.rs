//! The `cutover` binary: thin wiring of the CLI onto the library crates.
fn main() {}
